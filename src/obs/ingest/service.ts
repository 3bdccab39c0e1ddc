/**
 * One node's metrics store: the time-series store in the data directory, ingestion, and scraping
 * (itself and `--scrape-config`); in PostgreSQL mode also the shared store every node queries.
 */
import { join } from 'node:path';
import { Counter, Gauge } from 'prom-client';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import { Tsdb, type Querier, type TsdbOptions } from '../tsdb/index.js';
import type { PostgresTsdb } from '../tsdb-postgres/index.js';
import { DEFAULT_LABEL_LIMITS, type LabelLimits } from './batch.js';
import { Ingester } from './ingester.js';
import { DEFAULT_SCRAPE_INTERVAL_MS, Scraper, loadScrapeConfig, type ScrapeTarget } from './scrape.js';

/** Default query timeout: 2 minutes (Prometheus's `--query.timeout`). */
export const DEFAULT_QUERY_TIMEOUT_MS = 120_000;
/** Default most samples one query may load (Prometheus's `--query.max-samples`). */
export const DEFAULT_QUERY_MAX_SAMPLES = 50_000_000;

/** Options of {@link startMetricsStore}; each has the default `beacon serve` uses. */
export interface MetricsStoreOptions {
  /** Raw sample retention, ms (`--metrics-retention`, default 15 d). */
  retentionMs?: number;
  /** Out-of-order window, ms (`--ooo-window`, default 10 min). */
  oooWindowMs?: number;
  /** Most series in the store (`--max-series`). */
  maxSeries?: number;
  /** Most new series per push (`--max-series-per-push`). */
  maxSeriesPerPush?: number;
  /** Samples per second per principal (`--ingest-rate-limit`, default 100 000; null: none). */
  samplesPerSecond?: number | null;
  labelLimits?: LabelLimits;
  /** A Prometheus-style scrape configuration file (`--scrape-config`). */
  scrapeConfig?: string;
  /** Interval of the node scraping its own metrics, ms; 0 turns it off. Default 15 s. */
  selfScrapeIntervalMs?: number;
  /** Query timeout, ms (`--query-timeout`). */
  queryTimeoutMs?: number;
  /** Most samples per query (`--query-max-samples`). */
  maxQuerySamples?: number;
  /** Keep samples in memory only (tests). */
  inMemory?: boolean;
  /** Store tuning (fsync and checkpoint intervals) for tests. */
  tsdb?: Partial<Pick<TsdbOptions, 'fsyncIntervalMs' | 'checkpointIntervalMs' | 'checkpointWalBytes' | 'rollups'>>;
  /**
   * PostgreSQL mode (the node's `--backend` is PostgreSQL): samples are flushed to that database
   * and queries see every node's samples (docs/metrics.md, "PostgreSQL mode").
   */
  postgres?: {
    /** The backend URL (its migrations, 007 included, have run). */
    url: string;
    /** Interval between flushes to PostgreSQL, ms (default 2 s: the most a query on another node lags). */
    flushIntervalMs?: number;
    /** Interval between compaction passes, ms (default 60 s; 0: this node never compacts). */
    compactIntervalMs?: number;
  };
}

/** A running metrics store. */
export interface MetricsStore {
  /** The node's local store (its own pushes and scrapes). */
  tsdb: Tsdb;
  /** What queries read: the local store, or in PostgreSQL mode every node's samples. */
  querier: Querier;
  /**
   * What the Prometheus query API reads: {@link querier}, except that in PostgreSQL mode it falls
   * back to the local store while PostgreSQL cannot be read, with the reason in {@link partial}.
   */
  apiQuerier: Querier;
  /** Why the API's last answers were partial (PostgreSQL unreadable), if they were. */
  partial(): string | undefined;
  /** The shared store in PostgreSQL mode. */
  shared: PostgresTsdb | undefined;
  ingester: Ingester;
  queryTimeoutMs: number;
  maxQuerySamples: number;
  version: string;
  /** Starts scraping: the node itself as `instance` (its `host:port`), and the configured targets. */
  startScraping(instance: string): void;
  /** The scraper, once started. */
  scraper: Scraper | undefined;
  /** Stops scraping and closes the store (a final checkpoint; in PostgreSQL mode a last flush first). Never rejects. */
  stop(): Promise<void>;
}

/**
 * Opens the store in `<dataDir>/tsdb` (replaying its WAL) and reads the scrape configuration; in
 * PostgreSQL mode starts flushing to the database (what the outbox kept from a previous run first).
 * @throws InvalidArgumentError for a bad scrape configuration; an fs error when the directory is unusable.
 */
export async function startMetricsStore(o: MetricsStoreOptions & { dataDir: string; metrics: Metrics; logger: Logger; version: string }): Promise<MetricsStore> {
  const targets: ScrapeTarget[] = o.scrapeConfig !== undefined ? loadScrapeConfig(o.scrapeConfig) : [];
  const tsdb = new Tsdb({
    dir: o.inMemory === true ? null : join(o.dataDir, 'tsdb'),
    ...(o.retentionMs !== undefined ? { retentionMs: o.retentionMs } : {}),
    ...(o.oooWindowMs !== undefined ? { oooWindowMs: o.oooWindowMs } : {}),
    ...(o.maxSeries !== undefined ? { maxSeries: o.maxSeries } : {}),
    ...(o.maxSeriesPerPush !== undefined ? { maxNewSeriesPerPush: o.maxSeriesPerPush } : {}),
    ...(o.tsdb ?? {}),
  });
  o.logger.info({ series: tsdb.seriesCount, ms: Math.round(tsdb.openMs) }, 'time-series store opened');
  o.metrics.tsdbSource = tsdb;
  let shared: PostgresTsdb | undefined;
  if (o.postgres !== undefined) {
    // Loaded on demand, so a SQLite node never loads pg.
    const { PostgresTsdb } = await import('../tsdb-postgres/index.js');
    const pg = o.postgres;
    shared = new PostgresTsdb({
      url: pg.url,
      local: tsdb,
      dir: o.inMemory === true ? null : join(o.dataDir, 'tsdb'),
      ...(pg.flushIntervalMs !== undefined ? { flushIntervalMs: pg.flushIntervalMs } : {}),
      ...(pg.compactIntervalMs !== undefined ? { compactIntervalMs: pg.compactIntervalMs } : {}),
      onError: (err, what) => o.logger.warn({ err, pendingSamples: shared?.pendingSamples }, what === 'flush' ? 'flushing samples to PostgreSQL failed; retrying' : 'time-series compaction failed; retrying'),
    });
    registerSharedMetrics(o.metrics, shared);
    o.logger.info({ pendingSamples: shared.pendingSamples }, 'time-series store in PostgreSQL mode');
    shared.start();
  }
  const ingester = new Ingester(tsdb, { samplesPerSecond: o.samplesPerSecond, labelLimits: o.labelLimits ?? DEFAULT_LABEL_LIMITS }, o.metrics);
  const store: MetricsStore = {
    tsdb,
    querier: shared ?? tsdb,
    apiQuerier: shared?.tolerant ?? tsdb,
    partial: () => shared?.readFailure(),
    shared,
    ingester,
    queryTimeoutMs: o.queryTimeoutMs ?? DEFAULT_QUERY_TIMEOUT_MS,
    maxQuerySamples: o.maxQuerySamples ?? DEFAULT_QUERY_MAX_SAMPLES,
    version: o.version,
    scraper: undefined,
    startScraping(instance: string) {
      const all = [...targets];
      const self = o.selfScrapeIntervalMs ?? DEFAULT_SCRAPE_INTERVAL_MS;
      if (self > 0) {
        all.unshift({
          job: 'beacon',
          url: 'internal',
          instance,
          intervalMs: self,
          timeoutMs: Math.min(self, 10_000),
          honorLabels: false,
          labels: [],
          collect: () => o.metrics.registry.metrics(),
        });
      }
      store.scraper = new Scraper(ingester, all, o.logger);
      store.scraper.start();
    },
    async stop() {
      store.scraper?.stop();
      o.metrics.tsdbSource = undefined;
      await shared?.close();
      try {
        tsdb.close();
      } catch (err) {
        o.logger.warn({ err }, 'the time-series store could not write its last checkpoint; the WAL still holds every sample');
      }
    },
  };
  return store;
}

/** The shared store's figures on the node's `/metrics`. */
function registerSharedMetrics(metrics: Metrics, shared: PostgresTsdb): void {
  let flushed = 0;
  let errors = 0;
  new Counter({
    name: 'beacon_tsdb_postgres_samples_flushed_total',
    help: 'Samples this node flushed to PostgreSQL (PostgreSQL mode).',
    registers: [metrics.registry],
    collect() {
      this.inc(shared.samplesFlushed - flushed);
      flushed = shared.samplesFlushed;
    },
  });
  new Counter({
    name: 'beacon_tsdb_postgres_flush_errors_total',
    help: 'Failed flushes to PostgreSQL (each is retried; the samples wait in the outbox).',
    registers: [metrics.registry],
    collect() {
      this.inc(shared.flushErrors - errors);
      errors = shared.flushErrors;
    },
  });
  new Gauge({
    name: 'beacon_tsdb_postgres_outbox_samples',
    help: 'Samples acknowledged by this node and not yet flushed to PostgreSQL.',
    registers: [metrics.registry],
    collect() {
      this.set(shared.pendingSamples);
    },
  });
  new Gauge({
    name: 'beacon_tsdb_postgres_last_flush_timestamp_seconds',
    help: 'When this node last flushed to PostgreSQL successfully (0: not yet).',
    registers: [metrics.registry],
    collect() {
      this.set(shared.lastFlushAt / 1000);
    },
  });
}
