/** One node's metrics store: the time-series store in the data directory, ingestion, and scraping (itself and `--scrape-config`). */
import { join } from 'node:path';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import { Tsdb, type TsdbOptions } from '../tsdb/index.js';
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
}

/** A running metrics store. */
export interface MetricsStore {
  tsdb: Tsdb;
  ingester: Ingester;
  queryTimeoutMs: number;
  maxQuerySamples: number;
  version: string;
  /** Starts scraping: the node itself as `instance` (its `host:port`), and the configured targets. */
  startScraping(instance: string): void;
  /** The scraper, once started. */
  scraper: Scraper | undefined;
  /** Stops scraping and closes the store (a final checkpoint). */
  stop(): void;
}

/**
 * Opens the store in `<dataDir>/tsdb` (replaying its WAL) and reads the scrape configuration.
 * @throws InvalidArgumentError for a bad scrape configuration; an fs error when the directory is unusable.
 */
export function startMetricsStore(o: MetricsStoreOptions & { dataDir: string; metrics: Metrics; logger: Logger; version: string }): MetricsStore {
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
  const ingester = new Ingester(tsdb, { samplesPerSecond: o.samplesPerSecond, labelLimits: o.labelLimits ?? DEFAULT_LABEL_LIMITS }, o.metrics);
  const store: MetricsStore = {
    tsdb,
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
    stop() {
      store.scraper?.stop();
      o.metrics.tsdbSource = undefined;
      tsdb.close();
    },
  };
  return store;
}
