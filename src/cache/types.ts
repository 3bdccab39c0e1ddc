/** The types and settings of the cache tier (Redis's CONFIG names and INFO fields). */
import type { CacheNamespaceSample } from '../obs/index.js';
import type { CacheValue, CacheValueType } from './values.js';

/** The eviction policies of `maxmemory-policy` (Redis's names and meanings). */
export const EVICTION_POLICIES = [
  'noeviction',
  'allkeys-lru',
  'allkeys-lfu',
  'allkeys-random',
  'volatile-lru',
  'volatile-lfu',
  'volatile-random',
  'volatile-ttl',
] as const;
/** One of {@link EVICTION_POLICIES}. */
export type EvictionPolicy = (typeof EVICTION_POLICIES)[number];

/** `appendfsync`: when the AOF is flushed to disk. */
export type AppendFsync = 'always' | 'everysec' | 'no';

/**
 * The tier's settings, under Redis's CONFIG names. Sizes in bytes, times as Redis defines them.
 */
export interface CacheConfig {
  /** Bytes of counted memory (`used_memory`) before eviction starts; 0 = no limit. */
  maxmemory: number;
  'maxmemory-policy': EvictionPolicy;
  /** Keys sampled per eviction round (Redis default 5). */
  'maxmemory-samples': number;
  /** LFU counter logarithm factor (Redis default 10). */
  'lfu-log-factor': number;
  /** Minutes for the LFU counter to decay by one (Redis default 1; 0 = never). */
  'lfu-decay-time': number;
  /** Whether writes are appended to `appendonly.aof` in the data dir. */
  appendonly: boolean;
  appendfsync: AppendFsync;
  /** Automatic rewrite when the AOF grew by this percentage since the last rewrite (0 = off). */
  'auto-aof-rewrite-percentage': number;
  /** ... and is at least this many bytes. */
  'auto-aof-rewrite-min-size': number;
  /** Active expiry cycles per second (Redis `hz`, default 10). */
  hz: number;
}

/** The defaults of {@link CacheConfig} (Redis's defaults). */
export const DEFAULT_CACHE_CONFIG: Readonly<CacheConfig> = {
  maxmemory: 0,
  'maxmemory-policy': 'noeviction',
  'maxmemory-samples': 5,
  'lfu-log-factor': 10,
  'lfu-decay-time': 1,
  appendonly: false,
  appendfsync: 'everysec',
  'auto-aof-rewrite-percentage': 100,
  'auto-aof-rewrite-min-size': 64 * 1024 * 1024,
  hz: 10,
};

/** The origin of a read-through namespace (namespace policy `origin`). */
export interface OriginPolicy {
  /**
   * `http://` or `https://` URL template: `{key}` is replaced by the URL-encoded full key,
   * `{id}` by the key without the namespace prefix.
   */
  url: string;
  /** Milliseconds before a fetch counts as failed. Default 1000. */
  timeoutMs?: number;
  /** Seconds a fetched value lives; default the namespace's `defaultTtl`, else no expiry. */
  ttlSeconds?: number;
  /** Circuit breaker tuning; defaults from seed 002: 50 % failures over 10 s, half-open after 30 s. */
  breaker?: BreakerOptions;
}

/** Circuit-breaker tuning of an origin. */
export interface BreakerOptions {
  /** Failure ratio (0–1] at or above which the breaker opens. Default 0.5. */
  failureRatio?: number;
  /** The rolling window, ms. Default 10 000. */
  windowMs?: number;
  /** Fewest requests in the window before the ratio can open the breaker. Default 20. */
  minRequests?: number;
  /** Ms the breaker stays open before letting one trial request through. Default 30 000. */
  halfOpenAfterMs?: number;
}

/** A memory namespace as the tier sees it (from the namespace policy with `storage: "memory"`). */
export interface CacheNamespace {
  prefix: string;
  /** Seconds: a write that gives no expiry gets this TTL. */
  defaultTtl?: number;
  origin?: OriginPolicy;
  /** Copies of each key across a cache cluster, the primary included (1 … 3; default 1). */
  replicationFactor?: number;
  /** `sync`: a write is answered once every live replica has it; `async` (default): once the primary has it. */
  replication?: 'sync' | 'async';
}

/** Finds the memory namespace governing a key (the longest matching prefix), if that namespace is a memory one. */
export type NamespaceResolver = (key: string) => CacheNamespace | undefined;

/** Minimal logging the tier needs (pino's shape). */
export interface CacheLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

/** Options of {@link CacheTier}. */
export interface CacheTierOptions {
  /** The namespace rule (wired to the PolicyStore by the node). */
  namespaces: NamespaceResolver;
  /** Directory of `appendonly.aof`; without it `appendonly yes` is refused. */
  dataDir?: string;
  /** Initial settings (CONFIG SET changes them later). */
  config?: Partial<CacheConfig>;
  /** Wall clock in ms since the epoch; tests pass a fake one. Default `Date.now`. */
  now?: () => number;
  /** Uniform [0,1) random source for sampling and the LFU counter; tests pass a seeded one. */
  random?: () => number;
  logger?: CacheLogger;
  /** Largest value an origin may return, bytes. Default 1 MiB. */
  maxValueBytes?: number;
}

/** Options of {@link CacheTier.set}. */
export interface SetOptions {
  /**
   * Absolute expiry in ms since the epoch; `null` = no expiry. Omitted: the namespace's default
   * TTL for a new key, or (with `keepTtl`) the existing key's expiry.
   */
  expireAtMs?: number | null;
  /** Keep the current expiry of an existing key (SET … KEEPTTL). */
  keepTtl?: boolean;
}

/** Options of {@link CacheTier.scan}. */
export interface ScanOptions {
  /** Keys to look at in this call (a hint, as in Redis). Default 10. */
  count?: number;
  /** A Redis glob the returned keys must match. */
  match?: string;
  /** Only keys whose value is of this type. */
  type?: CacheValueType;
}

/**
 * Statistics of one memory namespace (and of the whole tier under prefix `*`): hits, misses,
 * evicted and expired keys, keys, counted memory bytes, origin requests and failures, and the
 * origin breaker's state. The shape the metrics registry exports (`CacheNamespaceSample`).
 */
export type NamespaceStats = CacheNamespaceSample;

/** What INFO shows about the tier (Redis field names). */
export interface CacheInfo {
  used_memory: number;
  maxmemory: number;
  maxmemory_policy: EvictionPolicy;
  keyspace_hits: number;
  keyspace_misses: number;
  evicted_keys: number;
  expired_keys: number;
  keys: number;
  expires: number;
  aof_enabled: 0 | 1;
  aof_rewrite_in_progress: 0 | 1;
  aof_last_bgrewrite_status: 'ok' | 'err';
  aof_current_size: number;
  aof_base_size: number;
  /** AOF replay on start: 1 while loading (ioredis waits for `loading:0`). */
  loading: 0 | 1;
  namespaces: NamespaceStats[];
}

/** The events of the tier, for keyspace notifications (`expired`, `evicted`). */
export interface CacheEvents {
  /** A key removed because its TTL passed (lazily or by the active cycle). */
  expired: [key: string];
  /** A key removed by `maxmemory` eviction. */
  evicted: [key: string];
  /**
   * A change made outside the RESP listener (the HTTP face: `set`, `del`; an origin fill: `set`),
   * so the RESP listener can publish keyspace notifications for it (Redis event names), mark
   * WATCHed keys and wake blocked clients. Emitted by `CacheTier.changedOutside`.
   */
  notify: [event: string, key: string];
}

/**
 * Runs one AOF command while loading: the RESP listener registers its command executor so every
 * command it propagates can be replayed; without one, a built-in executor handles what the HTTP
 * face and the rewrite write (SET … PXAT, DEL, PEXPIREAT, PERSIST, HSET, RPUSH, SADD, ZADD, FLUSHALL).
 * @throws on a command it does not know or bad arguments (the load logs it and goes on).
 */
export type AofExecutor = (argv: Buffer[]) => void;

/** What {@link CacheTier.loadAof} did. */
export interface AofLoadResult {
  commands: number;
  /** Bytes of a truncated last record that were ignored (and cut from the file). */
  truncatedBytes: number;
  /** Commands that failed to replay (logged). */
  failed: number;
}

/** Outcome of {@link CacheTier.readThrough}. */
export type ReadThroughResult =
  | { outcome: 'hit'; value: CacheValue }
  | { outcome: 'loaded'; value: CacheValue }
  | { outcome: 'miss'; reason: string };

