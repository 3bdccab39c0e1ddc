/** The node's Prometheus metrics (prom-client): one registry per node, named per Prometheus conventions. */
import { statfsSync } from 'node:fs';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

/** One label set's share of a {@link SeriesHistogram} and its {@link SeriesCounter}. */
export interface RequestSeries {
  /** Counts one request that took `seconds`: one histogram observation and one counter increment. */
  observe(seconds: number): void;
}

type Labels = Record<string, string>;

/** A histogram series held by its caller: per-bucket counts (not cumulative), then sum and count. */
class HistogramSeries {
  readonly counts: Float64Array;
  sum = 0;
  count = 0;
  constructor(
    readonly labels: Labels,
    readonly upperBounds: readonly number[],
  ) {
    this.counts = new Float64Array(upperBounds.length);
  }
  observe(v: number): void {
    const b = this.upperBounds;
    for (let i = 0; i < b.length; i++) {
      if (v <= (b[i] as number)) {
        this.counts[i] = (this.counts[i] as number) + 1;
        break;
      }
    }
    this.sum += v;
    this.count++;
  }
}

/**
 * A prom-client Histogram whose hot label sets are held by the caller ({@link series}): recording
 * one is a bucket search and three additions. prom-client's own `labels(...).observe()` converts,
 * validates and hashes the labels on every call (with the counter beside it, ~2.8 µs and ~700
 * bytes per HTTP request, issue 17). Values observed through prom-client's API are exported too;
 * the exposition is prom-client's (`_bucket` with `le`, `_sum`, `_count` per label set).
 */
export class SeriesHistogram extends Histogram<string> {
  private readonly held = new Map<string, HistogramSeries>();
  private readonly bounds: readonly number[];
  private readonly metricName: string;

  constructor(config: ConstructorParameters<typeof Histogram<string>>[0] & { buckets: number[] }) {
    super(config);
    this.bounds = [...config.buckets].sort((a, b) => a - b);
    this.metricName = config.name;
  }

  /** The series of `labels` (created on first use, kept until {@link reset}). */
  series(labels: Labels): HistogramSeries {
    const key = JSON.stringify(labels);
    let s = this.held.get(key);
    if (s === undefined) this.held.set(key, (s = new HistogramSeries({ ...labels }, this.bounds)));
    return s;
  }

  /**
   * What the registry reads for the exposition (prom-client's own `get()` reads it too): the
   * values prom-client holds, then the held series'. Not in prom-client's type declarations.
   */
  async getForPromString(): Promise<{ values: object[] }> {
    const data = await (Histogram.prototype as unknown as { getForPromString(this: unknown): Promise<{ values: object[] }> }).getForPromString.call(this);
    const name = this.metricName;
    const values = data.values;
    for (const s of this.held.values()) {
      if (s.count === 0) continue;
      let acc = 0;
      for (let i = 0; i < s.upperBounds.length; i++) {
        acc += s.counts[i] as number;
        values.push({ labels: { le: s.upperBounds[i] }, sharedLabels: s.labels, value: acc, metricName: `${name}_bucket`, exemplar: null });
      }
      values.push({ labels: { le: '+Inf' }, sharedLabels: s.labels, value: s.count, metricName: `${name}_bucket`, exemplar: null });
      values.push({ labels: {}, sharedLabels: s.labels, value: s.sum, metricName: `${name}_sum` });
      values.push({ labels: {}, sharedLabels: s.labels, value: s.count, metricName: `${name}_count` });
    }
    return data;
  }

  override reset(): void {
    super.reset();
    // prom-client's constructor calls reset() before this class's fields exist.
    const held = this.held as Map<string, HistogramSeries> | undefined;
    if (held === undefined) return;
    for (const s of held.values()) {
      s.counts.fill(0);
      s.sum = 0;
      s.count = 0;
    }
  }
}

/** A counter series held by its caller. */
class CounterSeries {
  value = 0;
  constructor(readonly labels: Labels) {}
}

/** A prom-client Counter whose hot label sets are held by the caller, as {@link SeriesHistogram}. */
export class SeriesCounter extends Counter<string> {
  private readonly held = new Map<string, CounterSeries>();

  /** The series of `labels` (created on first use, kept until {@link reset}). */
  series(labels: Labels): CounterSeries {
    const key = JSON.stringify(labels);
    let s = this.held.get(key);
    if (s === undefined) this.held.set(key, (s = new CounterSeries({ ...labels })));
    return s;
  }

  override async get(): Promise<Awaited<ReturnType<Counter<string>['get']>>> {
    const data = await super.get();
    const values = [...data.values];
    for (const s of this.held.values()) if (s.value > 0) values.push({ value: s.value, labels: { ...s.labels } });
    return { ...data, values };
  }

  override reset(): void {
    super.reset();
    // prom-client's constructor calls reset() before this class's fields exist.
    const held = this.held as Map<string, CounterSeries> | undefined;
    if (held === undefined) return;
    for (const s of held.values()) s.value = 0;
  }
}

/** Every metric a node exports at `/metrics`. Durations are in seconds. */
export class Metrics {
  readonly registry = new Registry();
  readonly httpDuration = new SeriesHistogram({
    name: 'beacon_http_request_duration_seconds',
    help: 'HTTP request latency by method, route and status code.',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });
  readonly writeDuration = new Histogram({
    name: 'beacon_write_duration_seconds',
    help: 'Time from a write request entering the kv core to it being durable, by operation.',
    labelNames: ['op'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });
  readonly commitDuration = new Histogram({
    name: 'beacon_backend_commit_duration_seconds',
    help: 'Duration of one group-commit backend transaction.',
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });
  readonly commitBatchSize = new Histogram({
    name: 'beacon_backend_commit_batch_size',
    help: 'Write requests per group-commit transaction.',
    buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024],
    registers: [this.registry],
  });
  readonly watchPropagation = new Histogram({
    name: 'beacon_watch_propagation_seconds',
    help: 'Time from a revision being committed to its events being written to a watcher connection.',
    labelNames: ['transport'] as const,
    // Up to 30 s: the default rules alert on a p99 above 5 s, which the latency buckets cannot show.
    buckets: [...LATENCY_BUCKETS, 10, 30],
    registers: [this.registry],
  });
  // --- alerting (issue 13): Prometheus's prometheus_rule_* metrics under Beacon's prefix ------------
  readonly ruleGroupDuration = new Histogram({
    name: 'beacon_rule_group_duration_seconds',
    help: 'Time one evaluation of a rule group took, by rule_group (file;group).',
    labelNames: ['rule_group'] as const,
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });
  readonly ruleEvaluationFailures = new Counter({
    name: 'beacon_rule_evaluation_failures_total',
    help: 'Rule evaluations that failed (the rule shows the error), by rule_group.',
    labelNames: ['rule_group'] as const,
    registers: [this.registry],
  });
  readonly ruleGroupMissed = new Counter({
    name: 'beacon_rule_group_iterations_missed_total',
    help: 'Rule group evaluations skipped because the previous one was still running, by rule_group.',
    labelNames: ['rule_group'] as const,
    registers: [this.registry],
  });
  // --- end alerting --------------------------------------------------------------------------------
  readonly watchEventsSent = new Counter({
    name: 'beacon_watch_events_sent_total',
    help: 'Watch events written to watchers.',
    labelNames: ['transport'] as const,
    registers: [this.registry],
  });
  readonly watchers = new Gauge({
    name: 'beacon_watchers',
    help: 'Active watches, by state (synced: live; unsynced: catching up from the log).',
    labelNames: ['state'] as const,
    registers: [this.registry],
  });
  // --- watch limits (issue 9 findings 2 and 5) ---------------------------------------------------
  readonly watchLimitHits = new Counter({
    name: 'beacon_watch_limit_hits_total',
    help: 'Watch limits hit, by limit: per_connection and per_principal (a watch refused with too_many_requests), catchup_bytes (a catch-up read waited for the node-wide catch-up budget).',
    labelNames: ['limit'] as const,
    registers: [this.registry],
  });
  readonly watchCatchUpBytes = new Gauge({
    name: 'beacon_watch_catchup_bytes',
    help: 'Bytes of log chunks held for watch catch-up (bounded by --watch-catchup-bytes).',
    registers: [this.registry],
  });
  readonly watchStreamsClosed = new Counter({
    name: 'beacon_watch_streams_closed_total',
    help: 'Watch connections closed because their credentials ended, by reason (expired, revoked, permission).',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  // --- end watch limits ----------------------------------------------------------------------------
  readonly errors = new Counter({
    name: 'beacon_errors_total',
    help: 'Errors answered to clients, by code.',
    labelNames: ['code'] as const,
    registers: [this.registry],
  });
  readonly jsonLimitRejections = new Counter({
    name: 'beacon_json_limit_rejections_total',
    help: 'Requests refused for JSON over a limit, by limit (max_json_depth, max_schema_depth, max_schema_bytes, max_schema_ref_expansion).',
    labelNames: ['limit'] as const,
    registers: [this.registry],
  });
  /** `/v1/cache` requests this node sent on to the node that serves the key's slot (docs/operations/cache-cluster.md). */
  readonly cacheHttpForwarded = new Counter({
    name: 'beacon_cache_cluster_http_forwarded_total',
    help: "/v1/cache requests this node forwarded to the node serving the key's slot.",
    registers: [this.registry],
  });
  readonly historyRetentionRemoved = new Counter({
    name: 'beacon_history_retention_removed_total',
    help: 'Log rows removed by namespace history retention (historyRetention policies).',
    registers: [this.registry],
  });
  readonly historyRetentionPasses = new Counter({
    name: 'beacon_history_retention_passes_total',
    help: 'History retention passes run by this node, by outcome (ok or error).',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });
  // --- time-series store (issue 12) ---------------------------------------------------------------
  readonly httpRequests = new SeriesCounter({
    name: 'beacon_http_requests_total',
    help: 'HTTP requests answered, by method, route and status code.',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [this.registry],
  });
  readonly tsdbSamplesIngested = new Counter({
    name: 'beacon_tsdb_samples_ingested_total',
    help: 'Samples stored in the time-series store, by push format (json, text, remote_write, scrape).',
    labelNames: ['format'] as const,
    registers: [this.registry],
  });
  readonly tsdbRejected = new Counter({
    name: 'beacon_tsdb_pushes_rejected_total',
    help: 'Pushes refused whole, by reason (out_of_order, too_many_labels, rate_limited, …).',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  readonly tsdbQueryDuration = new Histogram({
    name: 'beacon_tsdb_query_duration_seconds',
    help: 'Duration of Prometheus API queries, by endpoint (query, query_range, series, labels, label_values).',
    labelNames: ['endpoint'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });
  /** What the store gauges read at each scrape; set by the node once the store is open. */
  tsdbSource: { seriesCount: number; chunkBytes(): { raw: number; rollups: number }; sampleCount(): number; diskBytes(): number } | undefined;
  readonly tsdbSeries = new Gauge({
    name: 'beacon_tsdb_series',
    help: 'Series in the time-series store.',
    registers: [this.registry],
    collect: () => {
      if (this.tsdbSource !== undefined) this.tsdbSeries.set(this.tsdbSource.seriesCount);
    },
  });
  readonly tsdbStorageBytes = new Gauge({
    name: 'beacon_tsdb_storage_bytes',
    help: 'Bytes of the time-series store: compressed chunks of raw samples and of rollups (in memory), and its files on disk.',
    labelNames: ['where'] as const,
    registers: [this.registry],
    collect: () => {
      if (this.tsdbSource === undefined) return;
      const c = this.tsdbSource.chunkBytes();
      this.tsdbStorageBytes.set({ where: 'raw_chunks' }, c.raw);
      this.tsdbStorageBytes.set({ where: 'rollup_chunks' }, c.rollups);
      this.tsdbStorageBytes.set({ where: 'disk' }, this.tsdbSource.diskBytes());
    },
  });
  readonly tsdbSamples = new Gauge({
    name: 'beacon_tsdb_samples',
    help: 'Raw samples held by the time-series store.',
    registers: [this.registry],
    collect: () => {
      if (this.tsdbSource !== undefined) this.tsdbSamples.set(this.tsdbSource.sampleCount());
    },
  });
  // --- end time-series store ------------------------------------------------------------------------
  // --- notifications (issue 13): fields match NotifyMetrics and AlertmanagerMetrics in obs/notify ----
  readonly notificationsTotal = new Counter({
    name: 'beacon_notifications_total',
    help: 'Notifications delivered by the built-in notifier, by receiver and integration (webhook, email).',
    labelNames: ['receiver', 'integration'] as const,
    registers: [this.registry],
  });
  readonly notificationsFailedTotal = new Counter({
    name: 'beacon_notifications_failed_total',
    help: 'Failed notification attempts (each retry counts), by receiver and integration.',
    labelNames: ['receiver', 'integration'] as const,
    registers: [this.registry],
  });
  readonly notificationLatency = new Histogram({
    name: 'beacon_notification_latency_seconds',
    help: 'Duration of one notification attempt, by receiver and integration.',
    labelNames: ['receiver', 'integration'] as const,
    buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });
  readonly alertmanagerAlertsSent = new Counter({
    name: 'beacon_alertmanager_alerts_sent_total',
    help: 'Alerts accepted by an Alertmanager, by Alertmanager URL.',
    labelNames: ['alertmanager'] as const,
    registers: [this.registry],
  });
  readonly alertmanagerErrors = new Counter({
    name: 'beacon_alertmanager_errors_total',
    help: 'Alerts in requests to an Alertmanager that failed (error status, timeout, refused), by Alertmanager URL.',
    labelNames: ['alertmanager'] as const,
    registers: [this.registry],
  });
  readonly alertmanagerAlertsDropped = new Counter({
    name: 'beacon_alertmanager_alerts_dropped_total',
    help: "Alerts dropped because an Alertmanager's queue was full, by Alertmanager URL.",
    labelNames: ['alertmanager'] as const,
    registers: [this.registry],
  });
  // --- end notifications ---------------------------------------------------------------------------
  readonly leases: Gauge;
  readonly keys: Gauge;
  readonly revision: Gauge;
  readonly compactRevision: Gauge;

  constructor(source: { leaseCount: () => number; keyCount: () => number; revision: () => number; compactRevision: () => number }) {
    const reg = [this.registry];
    this.leases = new Gauge({ name: 'beacon_leases', help: 'Live leases.', registers: reg, collect() { this.set(source.leaseCount()); } });
    this.keys = new Gauge({ name: 'beacon_keys', help: 'Live keys in the view.', registers: reg, collect() { this.set(source.keyCount()); } });
    this.revision = new Gauge({ name: 'beacon_revision', help: 'The revision the view has applied.', registers: reg, collect() { this.set(source.revision()); } });
    this.compactRevision = new Gauge({
      name: 'beacon_compact_revision',
      help: 'The compact revision: history at or below it is gone.',
      registers: reg,
      collect() {
        this.set(source.compactRevision());
      },
    });
    collectDefaultMetrics({ register: this.registry, prefix: 'beacon_' });
  }

  /**
   * The series of HTTP requests with these labels, in `beacon_http_request_duration_seconds` and
   * `beacon_http_requests_total` together; hold it and call `observe(seconds)` per request.
   */
  httpSeries(labels: { method: string; route: string; status: string }): RequestSeries {
    const h = this.httpDuration.series(labels);
    const c = this.httpRequests.series(labels);
    return {
      observe: (seconds) => {
        h.observe(seconds);
        c.value++;
      },
    };
  }

  // --- cache tier (issue 11) -----------------------------------------------------------------------
  /**
   * Registers the cache tier's per-namespace series, read from `source` at each scrape:
   * `beacon_cache_{hits,misses,evicted,expired,origin_requests,origin_failures}_total`,
   * `beacon_cache_keys`, `beacon_cache_memory_bytes` (counted bytes, as INFO used_memory) and
   * `beacon_cache_origin_breaker_open` (1 open, 0.5 half-open, 0 closed), each labelled `namespace`.
   */
  registerCacheMetrics(source: () => CacheNamespaceSample[], maxmemory?: () => number): void {
    const reg = [this.registry];
    if (maxmemory !== undefined) {
      new Gauge({
        name: 'beacon_cache_maxmemory_bytes',
        help: 'The cache tier maxmemory of this node in bytes (0: no limit).',
        registers: reg,
        collect() {
          this.set(maxmemory());
        },
      });
    }
    const counter = (name: string, help: string, field: keyof CacheNamespaceSample): void => {
      new Counter({
        name,
        help,
        labelNames: ['namespace'] as const,
        registers: reg,
        collect() {
          this.reset();
          for (const s of source()) this.inc({ namespace: s.prefix }, Number(s[field] ?? 0));
        },
      });
    };
    const gauge = (name: string, help: string, value: (s: CacheNamespaceSample) => number | undefined): void => {
      new Gauge({
        name,
        help,
        labelNames: ['namespace'] as const,
        registers: reg,
        collect() {
          this.reset();
          for (const s of source()) {
            const v = value(s);
            if (v !== undefined) this.set({ namespace: s.prefix }, v);
          }
        },
      });
    };
    counter('beacon_cache_hits_total', 'Cache lookups that found the key, by memory namespace.', 'hits');
    counter('beacon_cache_misses_total', 'Cache lookups that did not find the key, by memory namespace.', 'misses');
    counter('beacon_cache_evicted_total', 'Keys evicted by maxmemory, by memory namespace.', 'evicted');
    counter('beacon_cache_expired_total', 'Keys removed because their TTL passed, by memory namespace.', 'expired');
    counter('beacon_cache_origin_requests_total', 'Read-through fetches sent to the origin, by memory namespace.', 'originRequests');
    counter('beacon_cache_origin_failures_total', 'Read-through fetches that failed (timeout, error, status other than 200/404).', 'originFailures');
    gauge('beacon_cache_keys', 'Keys held in the cache tier, by memory namespace.', (s) => s.keys);
    gauge('beacon_cache_memory_bytes', 'Counted memory of the cache entries (INFO used_memory), by memory namespace.', (s) => s.memory);
    gauge('beacon_cache_origin_breaker_open', "The origin's circuit breaker: 1 open, 0.5 half-open, 0 closed.", (s) =>
      s.breaker === undefined ? undefined : s.breaker === 'open' ? 1 : s.breaker === 'half-open' ? 0.5 : 0,
    );
  }

  /**
   * The cache tier across nodes (docs/operations/cache-cluster.md): commands forwarded to a
   * slot's owner and those that failed, MOVED replies, ring changes this node applied, the ring's
   * epoch and the slots this node serves. Read from `source` at scrape time.
   */
  registerCacheClusterMetrics(source: () => CacheClusterSample): void {
    const reg = [this.registry];
    const counter = (name: string, help: string, field: keyof CacheClusterSample): void => {
      new Counter({
        name,
        help,
        registers: reg,
        collect() {
          this.reset();
          this.inc(source()[field]);
        },
      });
    };
    const gauge = (name: string, help: string, field: keyof CacheClusterSample): void => {
      new Gauge({
        name,
        help,
        registers: reg,
        collect() {
          this.set(source()[field]);
        },
      });
    };
    counter('beacon_cache_cluster_forwarded_total', "Commands (RESP) this node forwarded to the node serving the key's slot.", 'forwarded');
    counter('beacon_cache_cluster_forward_errors_total', 'Forwarded commands whose owner did not answer (the client got TRYAGAIN).', 'forwardErrors');
    counter('beacon_cache_cluster_moved_total', 'MOVED replies this node sent to cluster clients.', 'moved');
    counter('beacon_cache_cluster_ring_changes_total', 'Cache ring epochs this node applied (joins, leaves and failovers).', 'ringChanges');
    gauge('beacon_cache_cluster_ring_epoch', 'The cache ring epoch in force on this node.', 'epoch');
    gauge('beacon_cache_cluster_slots', 'Slots (of 16,384) this node is the primary of.', 'slots');
    gauge('beacon_cache_cluster_replication_in_flight', 'Writes this node sent to replicas that have not acknowledged them yet (replication lag, in writes).', 'replicationInFlight');
    counter('beacon_cache_cluster_promoted_slots_total', 'Slots this node took over as primary from being their replica (failovers).', 'promotedSlots');
    counter('beacon_cache_cluster_handover_keys_total', 'Keys this node handed over to the new primary of a slot it served (a node joined).', 'handoverKeys');
    counter('beacon_cache_cluster_handover_missed_slots_total', "Slots this node began serving empty because their previous primary's hand-over did not come in time.", 'handoverMissedSlots');
    gauge('beacon_cache_cluster_confirmed', "1 while this node's ring membership is confirmed (it serves its slots), 0 when fenced.", 'confirmed');
  }
  // --- end cache tier ------------------------------------------------------------------------------

  /**
   * The file system that holds the data directory `dir`: its size and the bytes free to this
   * process (`statfs`, read at scrape time), for the default rule `BeaconStorageFull` (seed 003:
   * storage > 90 % of capacity). A file system that cannot be read reports nothing.
   */
  registerDataDirMetrics(dir: string): void {
    const read = (): { capacity: number; free: number } | undefined => {
      try {
        const st = statfsSync(dir);
        return { capacity: st.blocks * st.bsize, free: st.bavail * st.bsize };
      } catch {
        return undefined;
      }
    };
    for (const [name, help, field] of [
      ['beacon_data_dir_capacity_bytes', 'Size of the file system holding the data directory, in bytes.', 'capacity'],
      ['beacon_data_dir_free_bytes', 'Bytes of that file system free to this node (not reserved for root).', 'free'],
    ] as const) {
      new Gauge({
        name,
        help,
        registers: [this.registry],
        collect() {
          const v = read();
          if (v === undefined) this.reset();
          else this.set(v[field]);
        },
      });
    }
  }
}

/** The cache cluster's figures of one node (see {@link Metrics.registerCacheClusterMetrics}). */
export interface CacheClusterSample {
  forwarded: number;
  forwardErrors: number;
  moved: number;
  ringChanges: number;
  epoch: number;
  slots: number;
  confirmed: number;
  replicationInFlight: number;
  promotedSlots: number;
  handoverKeys: number;
  handoverMissedSlots: number;
}

/** One memory namespace's figures as the cache tier reports them (see {@link Metrics.registerCacheMetrics}). */
export interface CacheNamespaceSample {
  prefix: string;
  hits: number;
  misses: number;
  evicted: number;
  expired: number;
  keys: number;
  memory: number;
  originRequests: number;
  originFailures: number;
  breaker?: 'closed' | 'open' | 'half-open';
}
