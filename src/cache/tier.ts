/**
 * The cache tier of one node: the memory namespaces' keys with TTLs (lazy and active expiry),
 * `maxmemory` with Redis's sampled eviction policies, per-namespace statistics, the append-only
 * file, and read-through from a namespace's origin.
 */
import { EventEmitter } from 'node:events';
import { BeaconError, InvalidArgumentError } from '../errors.js';
export { OutOfMemoryError } from '../errors.js';
import type { CacheValue, CacheValueType } from './values.js';

/** Thrown by the bodies not written yet (the interface is published first for the RESP listener). */
function notImplemented(what: string): never {
  throw new BeaconError('internal', `${what} is not implemented yet`);
}

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

/** Statistics of one memory namespace (and of the whole tier under prefix `*`). */
export interface NamespaceStats {
  prefix: string;
  hits: number;
  misses: number;
  evicted: number;
  expired: number;
  keys: number;
  /** Counted bytes of the namespace's entries. */
  memory: number;
}

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

/**
 * The cache tier of a node. Synchronous for every data operation (the RESP listener runs one
 * command at a time on the event loop); the AOF and origin parts are async. Events: see
 * {@link CacheEvents}.
 *
 * Write protocol for in-place mutations: `lookupWrite(key)` → mutate the value → `modified(key)`
 * → `propagate(argv)` → `await durable()` before acknowledging (with `appendfsync always`).
 */
export class CacheTier extends EventEmitter<CacheEvents> {
  constructor(readonly options: CacheTierOptions) {
    super();
  }

  /** True when `key` is governed by a memory namespace (the longest matching prefix has `storage: "memory"`). */
  isMemoryKey(key: string): boolean {
    return this.options.namespaces(key) !== undefined;
  }

  /** The memory namespace governing `key`, if any. */
  namespaceOf(key: string): CacheNamespace | undefined {
    return this.options.namespaces(key);
  }

  /**
   * A read: the value of `key`, or undefined. Expires the key if its TTL passed, counts a hit or
   * a miss for its namespace and touches its LRU/LFU data (Redis's `lookupKeyRead`).
   */
  lookup(key: string): CacheValue | undefined {
    void key;
    return notImplemented('lookup');
  }

  /** Like {@link lookup} without statistics or LRU/LFU touch (TYPE, TTL, OBJECT, EXISTS-style checks still expire). */
  peek(key: string): CacheValue | undefined {
    void key;
    return notImplemented('peek');
  }

  /**
   * The value of `key` for an in-place mutation (Redis's `lookupKeyWrite`): expires, touches
   * LRU/LFU, no hit/miss. Call {@link modified} after mutating.
   */
  lookupWrite(key: string): CacheValue | undefined {
    void key;
    return notImplemented('lookupWrite');
  }

  /**
   * Stores `value` under `key` (replacing any value of any type). May evict other keys.
   * @throws OutOfMemoryError when over `maxmemory` and nothing can be evicted;
   *   InvalidArgumentError when `key` is not in a memory namespace.
   */
  set(key: string, value: CacheValue, opts: SetOptions = {}): void {
    void key;
    void value;
    void opts;
    notImplemented('set');
  }

  /**
   * Records that the value of `key` was mutated in place: recounts its memory (and evicts if
   * over `maxmemory`); an empty hash/list/set/zset is deleted, as Redis does.
   */
  modified(key: string): void {
    void key;
    notImplemented('modified');
  }

  /**
   * Evicts until under `maxmemory`; call before a command that may grow memory (Redis's
   * `performEvictions` before a `denyoom` command).
   * @throws OutOfMemoryError when still over the limit and the policy cannot free anything.
   */
  ensureMemory(): void {
    notImplemented('ensureMemory');
  }

  /** Removes `key`. @returns whether it existed (and was not expired). */
  delete(key: string): boolean {
    void key;
    return notImplemented('delete');
  }

  /**
   * Sets (ms since the epoch) or removes (`null`) the expiry of `key`. A time in the past
   * deletes the key (as EXPIRE with a negative TTL does). @returns false when there is no key.
   */
  expireAt(key: string, atMs: number | null): boolean {
    void key;
    void atMs;
    return notImplemented('expireAt');
  }

  /** The absolute expiry of `key` in ms: `-2` no key, `-1` no expiry (PEXPIRETIME's convention). */
  expireTimeMs(key: string): number {
    void key;
    return notImplemented('expireTimeMs');
  }

  /** Ms left to live: `-2` no key, `-1` no expiry (PTTL's convention). */
  ttlMs(key: string): number {
    void key;
    return notImplemented('ttlMs');
  }

  /**
   * One step of SCAN. Cursor `"0"` starts; a returned cursor `"0"` ends. A full iteration returns
   * every key present from its start to its end at least once (keys added or removed meanwhile
   * may or may not appear), as Redis guarantees.
   * @throws InvalidArgumentError for a cursor this tier never returned ("ERR invalid cursor").
   */
  scan(cursor: string, opts: ScanOptions = {}): { cursor: string; keys: string[] } {
    void cursor;
    void opts;
    return notImplemented('scan');
  }

  /** Every live key matching a Redis glob (KEYS). */
  keys(pattern: string): string[] {
    void pattern;
    return notImplemented('keys');
  }

  /** A random live key, or undefined when empty (RANDOMKEY). */
  randomKey(): string | undefined {
    return notImplemented('randomKey');
  }

  /** Live keys (DBSIZE; keys whose TTL passed but not yet collected are counted, as in Redis). */
  dbsize(): number {
    return notImplemented('dbsize');
  }

  /** Removes every key (FLUSHALL/FLUSHDB). @returns how many were removed. */
  flush(): number {
    return notImplemented('flush');
  }

  /** The current settings. */
  get config(): Readonly<CacheConfig> {
    return notImplemented('config');
  }

  /** CONFIG GET: `[name, value]` pairs whose names match the glob (case-insensitive), values as Redis prints them. */
  getConfig(pattern: string): [string, string][] {
    void pattern;
    return notImplemented('getConfig');
  }

  /**
   * CONFIG SET of one tier setting from its Redis text form (`maxmemory 100mb`, `appendonly yes`).
   * Turning `appendonly` on writes the AOF from the current data (a rewrite) before returning.
   * @returns false when `name` is not a tier setting (the caller handles other names).
   * @throws InvalidArgumentError with Redis's wording for a bad value.
   */
  async setConfig(name: string, value: string): Promise<boolean> {
    void name;
    void value;
    return notImplemented('setConfig');
  }

  /** CONFIG RESETSTAT: zeroes hits, misses, evicted and expired counters. */
  resetStats(): void {
    notImplemented('resetStats');
  }

  /** INFO's view of the tier. */
  info(): CacheInfo {
    return notImplemented('info');
  }

  /**
   * Appends a successful write command to the AOF (when `appendonly` is on). Relative expiries
   * must already be absolute (`EX 10` → `PXAT <ms>`), so a replay at any later time is right.
   */
  propagate(argv: Buffer[]): void {
    void argv;
    notImplemented('propagate');
  }

  /**
   * Resolves when every command propagated so far is as durable as `appendfsync` promises:
   * written and fsynced for `always` (acknowledge only after this), immediately otherwise.
   * @throws UnavailableError when the AOF cannot be written.
   */
  durable(): Promise<void> {
    return notImplemented('durable');
  }

  /**
   * Loads the AOF (when `appendonly` is on) by replaying each command through `exec` (default:
   * the built-in executor). A truncated last record is cut off with a warning; a corrupt record
   * elsewhere stops the load with an error. Then starts the active expiry cycle and AOF timers.
   * @throws UnavailableError when the file cannot be read or is corrupt before its end.
   */
  async open(exec?: AofExecutor): Promise<AofLoadResult> {
    void exec;
    return notImplemented('open');
  }

  /**
   * Rewrites the AOF from the current entries (BGREWRITEAOF) without stalling commands: the
   * snapshot is written in slices between commands, writes arriving meanwhile are buffered and
   * appended, and the new file replaces the old one atomically.
   * @throws UnavailableError when the rewrite fails (the old file stays in use).
   */
  async rewriteAof(): Promise<void> {
    return notImplemented('rewriteAof');
  }

  /**
   * A read that falls back to the namespace's origin on a miss: one origin request per key at a
   * time (single-flight), the value stored with the origin's TTL; while the breaker is open, or
   * when there is no origin, a miss with the reason.
   */
  async readThrough(key: string): Promise<ReadThroughResult> {
    void key;
    return notImplemented('readThrough');
  }

  /** Stops timers, flushes and closes the AOF. */
  async close(): Promise<void> {
    return notImplemented('close');
  }
}

void InvalidArgumentError;
