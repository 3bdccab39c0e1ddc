/**
 * The cache tier of one node: the memory namespaces' keys with TTLs (lazy and active expiry),
 * `maxmemory` with Redis's sampled eviction policies, per-namespace statistics, the append-only
 * file, and read-through from a namespace's origin.
 */
import { EventEmitter } from 'node:events';
import { closeSync, existsSync, fdatasync, fdatasyncSync, fsyncSync, openSync, readFileSync, renameSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { InvalidArgumentError, OutOfMemoryError, UnavailableError } from '../errors.js';
import { AofFile, encodeCommand, parseAof } from './aof.js';
import { globLiteralPrefix, globMatch } from './glob.js';
import { DEFAULT_ORIGIN_TIMEOUT_MS, MAX_ORIGIN_BODY_BYTES, fetchOrigin, newOriginState, originUrl, type OriginState } from './origin.js';
import {
  DEFAULT_CACHE_CONFIG,
  EVICTION_POLICIES,
  type AofExecutor,
  type AofLoadResult,
  type AppendFsync,
  type CacheConfig,
  type CacheEvents,
  type CacheInfo,
  type CacheNamespace,
  type CacheTierOptions,
  type EvictionPolicy,
  type NamespaceStats,
  type ReadThroughResult,
  type ScanOptions,
  type SetOptions,
} from './types.js';
import { ByteSlab, slotSize } from './slab.js';
import { EntryTable } from './entries.js';
import { Deque, ENTRY_OVERHEAD_BYTES, STRING_OVERHEAD_BYTES, SortedSet, isRaw, markRaw, memberFromBytes, memberToBytes, valueMemory, type CacheValue } from './values.js';

/** Name of the append-only file in the data dir. */
export const AOF_FILE = 'appendonly.aof';
/** Name of the file that keeps CONFIG SET changes of tier settings across restarts. */
export const CONFIG_FILE = 'cache-config.json';
/** Redis's initial LFU counter of a new key (so it is not evicted before it had a chance). */
export const LFU_INIT_VAL = 5;
/**
 * The value of every entry that holds a string: its bytes are in the tier's {@link ByteSlab}
 * (or, past 4 KiB, a buffer the entry owns), and readers get a copy ({@link CacheTier.lookup}).
 * An overwrite copies the new bytes into the same slot when they fit its size, so it stores no
 * new object in an entry that has reached the old generation, and a new key adds no Buffer
 * object. Each young object stored into an old entry (a fresh Buffer and its wrapper) left a
 * pointer for V8's scavenger to follow and a survivor to copy, about 0.3 µs per write at every
 * young-generation pause, and those pauses were the p99 of SET at -P 1 (docs/performance.md §4).
 */
const HELD_STRING: CacheValue = Object.freeze({ type: 'string', value: Buffer.alloc(0) }) as CacheValue;
const NO_BYTES = Buffer.alloc(0);
/**
 * An entry's `soff` (its string's slab slot, ≥ 0) also says how its value is held, so a write
 * to a held string reads no array but the entry's record: -1, not a held string (the value is
 * in `values`); -2, a held string in a buffer of its own (`sbuf`).
 */
const NOT_HELD = -1;
const OWN_BUFFER = -2;

/** Size of the eviction pool (Redis EVPOOL_SIZE). */
export const EVICTION_POOL_SIZE = 16;
/** Width of one LFU counter's band of eviction scores: ms of idle time, capped at ~317 years (255 bands × 1e13 < 2^53). */
const LFU_TIER_SPAN = 1e13;
/** Keys sampled per active-expiry round (Redis ACTIVE_EXPIRE_CYCLE_KEYS_PER_LOOP). */
export const ACTIVE_EXPIRE_KEYS_PER_LOOP = 20;
/** Another round runs while more than this share of the sample had expired (Redis: 10 %). */
export const ACTIVE_EXPIRE_ACCEPTABLE_STALE = 0.1;
/** Elements per command in a rewritten AOF (Redis AOF_REWRITE_ITEMS_PER_CMD). */
const REWRITE_ITEMS_PER_CMD = 64;
/** Entries serialised per rewrite slice before yielding to the event loop. */
const REWRITE_SLICE = 2000;

interface NsCounters {
  prefix: string;
  hits: number;
  misses: number;
  evicted: number;
  expired: number;
  keys: number;
  memory: number;
}

interface RewriteState {
  epoch: number;
  startSeq: number;
  /** Commands propagated since the rewrite started, appended after the snapshot. */
  buffer: Buffer[];
  /** Serialised snapshot entries not yet written to the temporary file. */
  out: Buffer[];
  promise: Promise<void>;
}

type Waiter = { resolve: () => void; reject: (e: Error) => void };

const CONFIG_NAMES = Object.keys(DEFAULT_CACHE_CONFIG) as (keyof CacheConfig)[];

/**
 * Parses a Redis memory size: bytes, or with a unit `k`/`m`/`g` (×1000) or `kb`/`mb`/`gb` (×1024),
 * case-insensitive. @returns undefined when it is not one.
 */
export function parseMemory(text: string): number | undefined {
  const m = /^(\d+)(b|k|kb|m|mb|g|gb)?$/i.exec(text.trim());
  if (m === null) return undefined;
  const mult: Record<string, number> = { b: 1, k: 1e3, kb: 1024, m: 1e6, mb: 1024 ** 2, g: 1e9, gb: 1024 ** 3 };
  const n = Number(m[1]) * (mult[(m[2] ?? 'b').toLowerCase()] ?? 1);
  return Number.isSafeInteger(n) ? n : undefined;
}

/**
 * Start-up settings from their Redis text forms (the `beacon serve --maxmemory 1gb
 * --maxmemory-policy allkeys-lfu --appendonly yes --appendfsync always` flags), checked as
 * CONFIG SET checks them.
 * @throws InvalidArgumentError naming the setting.
 */
export async function parseCacheSettings(raw: Partial<Record<keyof CacheConfig, string>>): Promise<Partial<CacheConfig>> {
  const probe = new CacheTier({ namespaces: () => undefined, dataDir: '/nonexistent-cache-settings-probe' });
  const out: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(raw) as [keyof CacheConfig, string | undefined][]) {
    if (value === undefined) continue;
    if (name === 'appendonly') {
      const v = value.toLowerCase();
      if (v !== 'yes' && v !== 'no') throw badConfig(name, "argument must be 'yes' or 'no'");
      out.appendonly = v === 'yes';
      continue;
    }
    await probe.setConfig(name, value, false);
    out[name] = probe.config[name];
  }
  return out as Partial<CacheConfig>;
}

function badConfig(name: string, why: string): InvalidArgumentError {
  return new InvalidArgumentError(`CONFIG SET failed (possibly related to argument '${name}') - ${why}`, { field: name });
}

/** Formats a score as Redis prints it (and as ZADD parses it back exactly). */
function formatScore(n: number): string {
  if (n === Infinity) return 'inf';
  if (n === -Infinity) return '-inf';
  return String(n);
}

/**
 * The cache tier of a node. Synchronous for every data operation (the RESP listener runs one
 * command at a time on the event loop); the AOF and origin parts are async. Events: see
 * {@link CacheEvents}.
 *
 * Write protocol: `ensureMemory()` (may throw OutOfMemoryError) → `lookupWrite(key)` → mutate
 * the value in place, or `set(key, value)` → `modified(key)` → `propagate(argv, key)` → `await
 * durable()` before acknowledging (with `appendfsync always`). The tier itself propagates what
 * it decides alone: `DEL` for expired and evicted keys, `SET … PXAT` for origin fills. A write
 * made outside the RESP listener (the HTTP face) is recorded with `changedOutside`.
 */
export class CacheTier extends EventEmitter<CacheEvents> {
  /** The entries (keys, values and fields) by id; an id is also SCAN's cursor position (src/cache/entries.ts). */
  private readonly t = new EntryTable<NsCounters>();
  /** Ids of the entries with an expiry. */
  private volatile: number[] = [];
  private nextSeq = 1;
  private used = 0;
  private readonly counters = new Map<string, NsCounters>();
  private readonly total = { hits: 0, misses: 0, evicted: 0, expired: 0 };
  /** Redis's eviction pool: candidates by ascending idle score, each with the `seq` that names its entry (ids are reused). */
  private pool: { id: number; seq: number; idle: number }[] = [];
  private cfg: CacheConfig;
  private readonly now: () => number;
  /** The clock reading entries' `lru` counts from (so it stays a small integer for ~24 days). */
  private readonly epoch: number;
  /** The bytes of string values up to 4 KiB. */
  private readonly slab = new ByteSlab();
  private readonly random: () => number;
  private aof: AofFile | undefined;
  private aofBaseSize = 0;
  private lastRewriteOk = true;
  private rewriting: RewriteState | undefined;
  private rewriteEpoch = 0;
  private loading = false;
  private closed = false;
  private timers: NodeJS.Timeout[] = [];
  private readonly origins = new Map<string, OriginState>();
  private readonly flights = new Map<string, Promise<ReadThroughResult>>();
  private executor: AofExecutor | undefined;
  /**
   * Whether the timer runs active-expiry cycles (Redis's `DEBUG SET-ACTIVE-EXPIRE 0|1`): off,
   * expired keys go only when touched (lazy expiry). Tests of lazy expiry turn it off.
   */
  activeExpire = true;

  constructor(readonly options: CacheTierOptions) {
    super();
    this.now = options.now ?? Date.now;
    this.epoch = this.now();
    this.random = options.random ?? Math.random;
    this.cfg = { ...DEFAULT_CACHE_CONFIG, ...this.savedConfig(), ...(options.config ?? {}) };
  }

  // --- namespaces -------------------------------------------------------------------------------

  /** True when `key` is governed by a memory namespace (the longest matching prefix has `storage: "memory"`). */
  isMemoryKey(key: string): boolean {
    return this.options.namespaces(key) !== undefined;
  }

  /** The memory namespace governing `key`, if any. */
  namespaceOf(key: string): CacheNamespace | undefined {
    return this.options.namespaces(key);
  }

  private countersFor(prefix: string): NsCounters {
    let c = this.counters.get(prefix);
    if (c === undefined) {
      c = { prefix, hits: 0, misses: 0, evicted: 0, expired: 0, keys: 0, memory: 0 };
      this.counters.set(prefix, c);
    }
    return c;
  }

  private countMiss(key: string): void {
    this.total.misses++;
    const ns = this.options.namespaces(key);
    if (ns !== undefined) this.countersFor(ns.prefix).misses++;
  }

  // --- entries ----------------------------------------------------------------------------------

  private isExpired(e: number): boolean {
    const at = this.t.expireAt(e);
    return at !== 0 && at <= this.now() && !this.loading;
  }

  /** Removes `e` if its TTL passed. @returns whether it did. */
  private expireIfNeeded(e: number): boolean {
    if (!this.isExpired(e)) return false;
    this.removeEntry(e, 'expired');
    return true;
  }

  private minutes(): number {
    return Math.floor(this.now() / 60_000);
  }

  /** Redis's LFUDecrAndReturn: the counter after decay by one per `lfu-decay-time` minutes idle. */
  private lfuDecayed(e: number, minutes = this.minutes()): number {
    const lfu = this.t.lfu(e);
    const period = this.cfg['lfu-decay-time'];
    if (period <= 0) return lfu;
    const periods = Math.floor((minutes - this.t.ldt(e)) / period);
    return periods > lfu ? 0 : lfu - periods;
  }

  /** Redis's LFULogIncr: increments with probability 1/((counter - LFU_INIT_VAL)·factor + 1). */
  private lfuIncr(counter: number): number {
    if (counter >= 255) return 255;
    const base = Math.max(0, counter - LFU_INIT_VAL);
    const p = 1 / (base * this.cfg['lfu-log-factor'] + 1);
    return this.random() < p ? counter + 1 : counter;
  }

  /** Updates `e`'s LRU time and LFU counter; `now` when the caller already read the clock. */
  private touch(e: number, now = this.now()): void {
    const t = this.t;
    const minutes = Math.floor(now / 60_000);
    t.setLru(e, now - this.epoch);
    t.setLfu(e, this.lfuIncr(this.lfuDecayed(e, minutes)));
    t.setLdt(e, minutes);
  }

  private setExpire(e: number, at: number): void {
    const t = this.t;
    t.setExpireAt(e, at);
    if (at !== 0 && t.vidx(e) < 0) {
      t.setVidx(e, this.volatile.length);
      this.volatile.push(e);
    } else if (at === 0 && t.vidx(e) >= 0) this.unlinkVolatile(e);
  }

  private unlinkVolatile(e: number): void {
    const t = this.t;
    const last = this.volatile.pop() as number;
    if (last !== e) {
      const at = t.vidx(e);
      this.volatile[at] = last;
      t.setVidx(last, at);
    }
    t.setVidx(e, -1);
  }

  private recount(e: number): void {
    const t = this.t;
    const soff = t.soff(e);
    const mem =
      ENTRY_OVERHEAD_BYTES +
      t.keyBytes(e) +
      (soff >= 0 ? slotSize(t.slen(e)) : soff === OWN_BUFFER ? (t.sbuf[e] as Buffer).length + STRING_OVERHEAD_BYTES : valueMemory(t.values[e] as CacheValue));
    const delta = mem - t.mem(e);
    if (delta === 0) return; // an overwrite of the same size: the namespace's counters are not read
    this.used += delta;
    (t.ns[e] as NsCounters).memory += delta;
    t.setMem(e, mem);
  }

  private removeEntry(e: number, why: 'deleted' | 'expired' | 'evicted'): void {
    const t = this.t;
    this.beforeWrite(e);
    // The key as a string only for what is announced (its bytes go with the entry).
    const key = why === 'deleted' ? '' : t.keyOf(e);
    const ns = t.ns[e] as NsCounters;
    const mem = t.mem(e);
    this.dropHeld(e);
    if (t.vidx(e) >= 0) this.unlinkVolatile(e);
    t.remove(e, HELD_STRING, NO_BYTES);
    this.used -= mem;
    ns.keys--;
    ns.memory -= mem;
    if (why === 'expired') {
      this.total.expired++;
      ns.expired++;
    } else if (why === 'evicted') {
      this.total.evicted++;
      ns.evicted++;
    }
    if (why !== 'deleted') {
      this.propagate([Buffer.from('DEL'), Buffer.from(key)]);
      this.emit(why, key);
    }
  }

  /** The rewrite's copy-on-write hook: serialise a snapshot entry before it changes. */
  private beforeWrite(e: number): void {
    const rw = this.rewriting;
    const t = this.t;
    if (rw !== undefined && t.alive(e) && t.seq(e) < rw.startSeq && t.dumped(e) !== rw.epoch) {
      t.setDumped(e, rw.epoch);
      rw.out.push(this.serialize(e));
    }
  }

  /**
   * A read: the value of `key`, or undefined. Expires the key if its TTL passed, counts a hit or
   * a miss for its namespace and touches its LRU/LFU data (Redis's `lookupKeyRead`).
   */
  lookup(key: string): CacheValue | undefined {
    const e = this.t.find(key);
    if (e === undefined || this.expireIfNeeded(e)) {
      this.countMiss(key);
      return undefined;
    }
    this.total.hits++;
    (this.t.ns[e] as NsCounters).hits++;
    this.touch(e);
    return this.heldValue(e);
  }

  /** The value of `e` as readers get it: a held string is copied out (its buffer is rewritten in place). */
  private heldValue(e: number): CacheValue {
    const t = this.t;
    const soff = t.soff(e);
    if (soff === NOT_HELD) return t.values[e] as CacheValue;
    // A string outside the slab has a buffer of exactly its length.
    const bytes = soff >= 0 ? this.slab.read(soff, t.slen(e)) : Buffer.from(t.sbuf[e] as Buffer);
    if (t.sraw(e)) markRaw(bytes);
    return { type: 'string', value: bytes };
  }

  /** The Redis type of `key`'s value, or undefined when it has none (expires it if its TTL passed; no copy). */
  typeOf(key: string): CacheValue['type'] | undefined {
    const e = this.t.find(key);
    if (e === undefined || this.expireIfNeeded(e)) return undefined;
    return (this.t.values[e] as CacheValue).type;
  }

  /**
   * Whether `key` has an entry, without expiring or touching it (WATCH's view of a key).
   * @param live true: only an entry whose TTL has not passed counts; false: any entry still held.
   */
  contains(key: string, live = true): boolean {
    const e = this.t.find(key);
    return e !== undefined && (!live || !this.isExpired(e));
  }

  /** Like {@link lookup} without statistics or LRU/LFU touch (TYPE, TTL, EXISTS-style checks); still expires. */
  peek(key: string): CacheValue | undefined {
    const e = this.t.find(key);
    if (e === undefined || this.expireIfNeeded(e)) return undefined;
    return this.heldValue(e);
  }

  /**
   * The value of `key` for an in-place mutation (Redis's `lookupKeyWrite`): expires, touches
   * LRU/LFU, no hit/miss. Call {@link modified} after mutating; mutate nothing obtained otherwise
   * (an AOF rewrite in progress relies on this call to copy the value first). A string comes back
   * as a copy: store a changed string with {@link set}.
   */
  lookupWrite(key: string): CacheValue | undefined {
    const e = this.t.find(key);
    if (e === undefined || this.expireIfNeeded(e)) return undefined;
    this.touch(e);
    this.beforeWrite(e);
    return this.heldValue(e);
  }

  /**
   * Stores `value` under `key` (replacing any value of any type), after evicting what
   * `maxmemory` needs. Without `expireAtMs`, a new key gets its namespace's default TTL. An
   * expiry in the past deletes the key instead (as SET … PXAT with a past time does).
   * @throws OutOfMemoryError when over `maxmemory` and nothing can be evicted;
   *   InvalidArgumentError when `key` is not in a memory namespace.
   */
  set(key: string, value: CacheValue, opts: SetOptions = {}): void {
    const ns = this.memoryNamespace(key);
    this.ensureMemory();
    this.store(ns, key, value, opts);
  }

  /**
   * Stores `values[i]` under `keys[i]`, in order, as one write (Redis's MSET): every key is
   * checked to be in a memory namespace and `maxmemory` is enforced once, before the first
   * key is written, so the batch is applied whole or not at all (Redis evicts before a command,
   * never in the middle of one). A key given twice ends with its last value. `opts` as for
   * {@link set}, applied to every key.
   * @throws OutOfMemoryError when over `maxmemory` and nothing can be evicted (nothing written);
   *   InvalidArgumentError when a key is not in a memory namespace (nothing written).
   */
  setMany(keys: readonly string[], values: readonly CacheValue[], opts: SetOptions = {}): void {
    const n = keys.length;
    if (values.length !== n) throw new InvalidArgumentError(`setMany: ${n} keys but ${values.length} values`);
    const spaces = new Array<CacheNamespace>(n);
    for (let i = 0; i < n; i++) spaces[i] = this.memoryNamespace(keys[i] as string);
    this.ensureMemory();
    for (let i = 0; i < n; i++) this.store(spaces[i] as CacheNamespace, keys[i] as string, values[i] as CacheValue, opts);
  }

  /** The memory namespace of `key`. @throws InvalidArgumentError when none governs it. */
  private memoryNamespace(key: string): CacheNamespace {
    const ns = this.options.namespaces(key);
    if (ns === undefined) throw new InvalidArgumentError(`'${key}' is not in a memory namespace (no namespace policy with storage "memory" governs it)`, { key });
    return ns;
  }

  /** {@link set} after its checks: `ns` governs `key` and memory was made. */
  private store(ns: CacheNamespace, key: string, value: CacheValue, opts: SetOptions): void {
    // Hashed once: a new key is added with the hash its look-up used.
    const h = this.t.hashOf(key);
    let e = this.t.find(key, h);
    if (e !== undefined && this.expireIfNeeded(e)) e = undefined;
    const now = this.now();
    let expireAt: number;
    if (opts.expireAtMs !== undefined) expireAt = opts.expireAtMs ?? 0;
    else if (opts.keepTtl === true && e !== undefined) expireAt = this.t.expireAt(e);
    else if (ns.defaultTtl !== undefined && !this.loading) expireAt = now + ns.defaultTtl * 1000;
    else expireAt = 0;
    if (expireAt !== 0 && expireAt <= now && !this.loading) {
      if (e !== undefined) this.removeEntry(e, 'deleted');
      return;
    }
    if (e !== undefined) {
      this.beforeWrite(e);
      this.hold(e, value);
      this.recount(e);
      this.setExpire(e, expireAt);
      this.touch(e, now);
      return;
    }
    const counters = this.countersFor(ns.prefix);
    const t = this.t;
    const id = t.add(key, HELD_STRING, counters, NO_BYTES, h);
    t.setLru(id, now - this.epoch);
    t.setLfu(id, LFU_INIT_VAL);
    t.setLdt(id, Math.floor(now / 60_000));
    t.setSeq(id, this.nextSeq++);
    this.hold(id, value);
    counters.keys++;
    this.recount(id);
    if (expireAt !== 0) this.setExpire(id, expireAt);
  }

  /**
   * Makes `value` the value of `e`. A string's bytes are copied into a slab slot (the same slot
   * when the new length needs the same slot size), or past 4 KiB into a buffer of its own.
   */
  private hold(e: number, value: CacheValue): void {
    const t = this.t;
    if (value.type !== 'string') {
      this.dropHeld(e);
      t.values[e] = value;
      return;
    }
    const bytes = value.value;
    const len = bytes.length;
    const size = slotSize(len);
    const soff = t.soff(e);
    if (soff >= 0 ? size === slotSize(t.slen(e)) : soff === OWN_BUFFER && size < 0 && (t.sbuf[e] as Buffer).length === len) {
      if (soff >= 0) this.slab.write(soff, bytes);
      else bytes.copy(t.sbuf[e] as Buffer);
    } else {
      this.dropHeld(e);
      t.values[e] = HELD_STRING;
      const h = size < 0 ? -1 : this.slab.alloc(size);
      if (h >= 0) {
        this.slab.write(h, bytes);
        t.setSoff(e, h);
      } else {
        t.setSoff(e, OWN_BUFFER);
        t.sbuf[e] = Buffer.from(bytes);
      }
    }
    t.setSlen(e, len);
    t.setSraw(e, isRaw(bytes));
  }

  /** Frees `e`'s string bytes (its slab slot), leaving it with none. */
  private dropHeld(e: number): void {
    const t = this.t;
    const soff = t.soff(e);
    if (soff >= 0) this.slab.release(soff, slotSize(t.slen(e)));
    else if (soff === OWN_BUFFER) t.sbuf[e] = NO_BYTES;
    t.setSoff(e, NOT_HELD);
    t.setSlen(e, 0);
    t.setSraw(e, false);
  }

  /**
   * Records that the value of `key` was mutated in place (after {@link lookupWrite}): recounts
   * its memory; an empty hash, list, set or sorted set is deleted, as Redis does.
   */
  modified(key: string): void {
    const e = this.t.find(key);
    if (e === undefined) return;
    const v = this.t.values[e] as CacheValue;
    const empty =
      (v.type === 'hash' && v.value.size === 0) ||
      (v.type === 'list' && v.value.length === 0) ||
      (v.type === 'set' && v.value.size === 0) ||
      (v.type === 'zset' && v.value.size === 0);
    if (empty) this.removeEntry(e, 'deleted');
    else this.recount(e);
  }

  /**
   * Evicts until counted memory is at most `maxmemory`; call before a command that may grow
   * memory (Redis's `performEvictions` before a `denyoom` command). No-op without a limit.
   * @throws OutOfMemoryError when still over the limit and the policy cannot free anything
   *   (`noeviction`, or a volatile policy with no key that has a TTL).
   */
  ensureMemory(): void {
    const max = this.cfg.maxmemory;
    if (max === 0 || this.used <= max || this.loading) return;
    if (this.cfg['maxmemory-policy'] === 'noeviction') throw new OutOfMemoryError();
    while (this.used > max) {
      const victim = this.pickVictim();
      if (victim === undefined) throw new OutOfMemoryError();
      this.removeEntry(victim, 'evicted');
    }
  }

  private sample(fromVolatile: boolean): number | undefined {
    const arr = fromVolatile ? this.volatile : this.t.dense;
    if (arr.length === 0) return undefined;
    return arr[Math.floor(this.random() * arr.length)];
  }

  /** How good an eviction candidate `e` is under `policy`: higher is evicted first (Redis's "idle"). */
  private idleScore(e: number, policy: EvictionPolicy): number {
    const lru = this.t.lru(e);
    if (policy.endsWith('-lru')) return this.now() - this.epoch - lru;
    // Among keys of one LFU counter, the least recently used goes first: the counter is
    // logarithmic, so one value covers keys hit once and keys hit ten times, and a key not
    // referenced for longest is the likelier one-hit wonder (bench/cache-hitrate.ts: 80.1 % → 80.9 %
    // on the Zipf trace). Redis breaks these ties by sampling order alone.
    if (policy.endsWith('-lfu')) return (255 - this.lfuDecayed(e)) * LFU_TIER_SPAN + Math.min(LFU_TIER_SPAN - 1, Math.max(0, this.now() - this.epoch - lru));
    return Number.MAX_SAFE_INTEGER - this.t.expireAt(e); // volatile-ttl: the sooner it expires, the better
  }

  /** Picks the key to evict: random, or the best of the eviction pool after sampling (Redis's approximation). */
  private pickVictim(): number | undefined {
    const policy = this.cfg['maxmemory-policy'];
    const fromVolatile = policy.startsWith('volatile-');
    if ((fromVolatile ? this.volatile.length : this.t.size) === 0) return undefined;
    if (policy.endsWith('-random')) {
      for (let i = 0; i < 16; i++) {
        const e = this.sample(fromVolatile);
        if (e !== undefined) return e;
      }
      return fromVolatile ? this.volatile[0] : this.t.dense[0];
    }
    for (let round = 0; round < 16; round++) {
      const samples = this.cfg['maxmemory-samples'];
      for (let i = 0; i < samples; i++) {
        const e = this.sample(fromVolatile);
        if (e !== undefined) this.poolInsert(e, this.idleScore(e, policy));
      }
      while (this.pool.length > 0) {
        const best = this.pool.pop() as { id: number; seq: number; idle: number };
        const e = best.id;
        if (this.t.alive(e) && this.t.seq(e) === best.seq && (!fromVolatile || this.t.vidx(e) >= 0)) return e;
      }
    }
    return undefined;
  }

  /** Inserts into the pool kept sorted by ascending idle, at most {@link EVICTION_POOL_SIZE} long. */
  private poolInsert(e: number, idle: number): void {
    const pool = this.pool;
    const seq = this.t.seq(e);
    const existing = pool.findIndex((p) => p.id === e && p.seq === seq);
    if (existing >= 0) pool.splice(existing, 1);
    if (pool.length >= EVICTION_POOL_SIZE && idle <= (pool[0] as { idle: number }).idle) return;
    let i = 0;
    while (i < pool.length && (pool[i] as { idle: number }).idle < idle) i++;
    pool.splice(i, 0, { id: e, seq, idle });
    if (pool.length > EVICTION_POOL_SIZE) pool.shift();
  }

  /** OBJECT FREQ: the key's LFU counter after decay (0–255), or undefined when there is no key. */
  objectFreq(key: string): number | undefined {
    const e = this.t.find(key);
    if (e === undefined || this.expireIfNeeded(e)) return undefined;
    return this.lfuDecayed(e);
  }

  /** OBJECT IDLETIME: whole seconds since the key was last read or written, or undefined when there is no key. */
  objectIdleTime(key: string): number | undefined {
    const e = this.t.find(key);
    if (e === undefined || this.expireIfNeeded(e)) return undefined;
    return Math.floor((this.now() - this.epoch - this.t.lru(e)) / 1000);
  }

  /** MEMORY USAGE: the bytes `key` is counted as in `used_memory` (key, value, overheads), or undefined when there is no key. */
  memoryUsage(key: string): number | undefined {
    const e = this.t.find(key);
    if (e === undefined || this.expireIfNeeded(e)) return undefined;
    return this.t.mem(e);
  }

  /** Removes `key`. @returns whether it existed (and had not expired). */
  delete(key: string): boolean {
    const e = this.t.find(key);
    if (e === undefined || this.expireIfNeeded(e)) return false;
    this.removeEntry(e, 'deleted');
    return true;
  }

  /**
   * Sets (ms since the epoch) or removes (`null`) the expiry of `key`. A time in the past
   * deletes the key (as EXPIRE with a past time does). @returns false when there is no key.
   */
  expireAt(key: string, atMs: number | null): boolean {
    const e = this.t.find(key);
    if (e === undefined || this.expireIfNeeded(e)) return false;
    this.beforeWrite(e);
    if (atMs === null) this.setExpire(e, 0);
    else if (atMs <= this.now() && !this.loading) this.removeEntry(e, 'deleted');
    else this.setExpire(e, Math.max(1, atMs));
    return true;
  }

  /** The absolute expiry of `key` in ms: `-2` no key, `-1` no expiry (PEXPIRETIME's convention). */
  expireTimeMs(key: string): number {
    const e = this.t.find(key);
    if (e === undefined || this.expireIfNeeded(e)) return -2;
    const at = this.t.expireAt(e);
    return at === 0 ? -1 : at;
  }

  /** Ms left to live: `-2` no key, `-1` no expiry (PTTL's convention). */
  ttlMs(key: string): number {
    const at = this.expireTimeMs(key);
    return at < 0 ? at : Math.max(0, at - this.now());
  }

  /**
   * One step of SCAN. Cursor `"0"` starts; a returned cursor `"0"` ends. A full iteration returns
   * every key present from its start to its end at least once (keys added or removed meanwhile
   * may or may not appear), as Redis guarantees: a cursor is a slot index and an entry never
   * changes slot. Visits `count` keys, or `10 × count` empty slots, per call.
   * @throws InvalidArgumentError `invalid cursor` for a cursor that is not a number.
   */
  scan(cursor: string, opts: ScanOptions = {}): { cursor: string; keys: string[] } {
    if (!/^\d{1,20}$/.test(cursor)) throw new InvalidArgumentError('invalid cursor', { cursor });
    const count = Math.max(1, opts.count ?? 10);
    const t = this.t;
    const top = t.top;
    const keys: string[] = [];
    const expired: string[] = [];
    const prefix = opts.match !== undefined ? globLiteralPrefix(opts.match) : '';
    let i = Math.min(Number(cursor), top);
    let visited = 0;
    let empty = 0;
    for (; i < top && visited < count && empty < count * 10; i++) {
      if (!t.alive(i)) {
        empty++;
        continue;
      }
      visited++;
      const key = t.keyOf(i);
      if (this.isExpired(i)) {
        expired.push(key);
        continue;
      }
      if (opts.type !== undefined && (t.values[i] as CacheValue).type !== opts.type) continue;
      if (opts.match !== undefined && (!key.startsWith(prefix) || !globMatch(opts.match, key))) continue;
      keys.push(key);
    }
    const next = i < top ? String(i) : '0';
    this.removeExpired(expired);
    return { cursor: next, keys };
  }

  /**
   * Removes, without keyspace events, the entries among ids `from … from + budget − 1` whose key
   * `drop` accepts, and logs a `DEL` of each to the AOF (the cache across nodes drops the keys of
   * slots this node stopped serving this way). @returns the next id to look at, or 0 when the
   * whole table was visited.
   */
  dropWhere(from: number, budget: number, drop: (key: string) => boolean): number {
    const t = this.t;
    const end = Math.min(t.top, from + budget);
    for (let e = from; e < end; e++) {
      if (!t.alive(e)) continue;
      const key = t.keyOf(e);
      if (!drop(key)) continue;
      this.removeEntry(e, 'deleted');
      this.propagate([Buffer.from('DEL'), Buffer.from(key)]);
    }
    return end >= t.top ? 0 : end;
  }

  /**
   * Calls `visit` with the key of every live entry among ids `from … from + budget − 1`, in id
   * order, for a pass over the table in steps (a copy or hand-over of slots between nodes). A
   * key created after the pass went by its id is not visited. @returns the next id to look at,
   * or 0 when the whole table was visited.
   */
  visitKeys(from: number, budget: number, visit: (key: string) => void): number {
    const t = this.t;
    const end = Math.min(t.top, from + budget);
    for (let e = from; e < end; e++) if (t.alive(e)) visit(t.keyOf(e));
    return end >= t.top ? 0 : end;
  }

  /** Every live key matching a Redis glob (KEYS). */
  keys(pattern: string): string[] {
    const out: string[] = [];
    const expired: string[] = [];
    const prefix = globLiteralPrefix(pattern);
    const all = pattern === '*';
    for (const e of this.t.dense) {
      const key = this.t.keyOf(e);
      if (!all && (!key.startsWith(prefix) || !globMatch(pattern, key))) continue;
      if (this.isExpired(e)) expired.push(key);
      else out.push(key);
    }
    this.removeExpired(expired);
    return out;
  }

  /** Removes those of `keys` whose TTL passed (by key: an 'expired' listener may change the tier meanwhile). */
  private removeExpired(keys: readonly string[]): void {
    for (const key of keys) {
      const e = this.t.find(key);
      if (e !== undefined) this.expireIfNeeded(e);
    }
  }

  /** A random live key, or undefined when there is none (RANDOMKEY). */
  randomKey(): string | undefined {
    for (let tries = 0; tries < 100 && this.t.size > 0; tries++) {
      const e = this.sample(false);
      if (e === undefined || this.expireIfNeeded(e)) continue;
      return this.t.keyOf(e);
    }
    for (const e of this.t.dense.slice()) if (!this.expireIfNeeded(e)) return this.t.keyOf(e);
    return undefined;
  }

  /** Keys held (DBSIZE; keys whose TTL passed but that were not collected yet count, as in Redis). */
  dbsize(): number {
    return this.t.size;
  }

  /** Keys with an expiry (INFO keyspace `expires=`). */
  volatileCount(): number {
    return this.volatile.length;
  }

  /** Counted memory in bytes (INFO `used_memory`). */
  usedMemory(): number {
    return this.used;
  }

  /**
   * Removes every key (FLUSHALL/FLUSHDB) without events; the caller propagates `FLUSHALL`.
   * @returns how many keys were removed.
   */
  flush(): number {
    const n = this.t.size;
    // Every id goes, and the slab's slots with it: no later release may hand one to a new value.
    this.t.clear();
    this.slab.reset();
    this.volatile = [];
    this.pool = [];
    this.used = 0;
    for (const c of this.counters.values()) {
      c.keys = 0;
      c.memory = 0;
    }
    return n;
  }

  /**
   * One active-expiry cycle (Redis's `activeExpireCycle`, slow mode): samples
   * {@link ACTIVE_EXPIRE_KEYS_PER_LOOP} keys that have a TTL, removes the expired ones, and
   * repeats while more than 10 % of a sample had expired and `budgetMs` of CPU time is left.
   * Run `hz` times a second by {@link open}; exposed for tests with a fake clock.
   * @returns how many keys it removed.
   */
  activeExpireCycle(budgetMs = 25): number {
    const start = performance.now();
    let removed = 0;
    for (;;) {
      const n = Math.min(ACTIVE_EXPIRE_KEYS_PER_LOOP, this.volatile.length);
      if (n === 0) break;
      let expired = 0;
      for (let i = 0; i < n && this.volatile.length > 0; i++) {
        const e = this.volatile[Math.floor(this.random() * this.volatile.length)] as number;
        if (this.isExpired(e)) {
          this.removeEntry(e, 'expired');
          expired++;
        }
      }
      removed += expired;
      if (expired <= n * ACTIVE_EXPIRE_ACCEPTABLE_STALE || performance.now() - start >= budgetMs) break;
    }
    return removed;
  }

  // --- configuration ----------------------------------------------------------------------------

  /** The current settings. */
  get config(): Readonly<CacheConfig> {
    return this.cfg;
  }

  private savedConfig(): Partial<CacheConfig> {
    const dir = this.options.dataDir;
    if (dir === undefined) return {};
    try {
      const raw = JSON.parse(readFileSync(join(dir, CONFIG_FILE), 'utf8')) as Record<string, unknown>;
      const out: Record<string, unknown> = {};
      for (const k of CONFIG_NAMES) if (k in raw && typeof raw[k] === typeof DEFAULT_CACHE_CONFIG[k]) out[k] = raw[k];
      return out as Partial<CacheConfig>;
    } catch {
      return {};
    }
  }

  private formatConfig(name: keyof CacheConfig): string {
    const v = this.cfg[name];
    return typeof v === 'boolean' ? (v ? 'yes' : 'no') : String(v);
  }

  /** CONFIG GET: `[name, value]` pairs whose names match the glob (case-insensitive), values as Redis prints them. */
  getConfig(pattern: string): [string, string][] {
    return CONFIG_NAMES.filter((n) => globMatch(pattern, n, true)).map((n) => [n, this.formatConfig(n)]);
  }

  /**
   * CONFIG SET of one tier setting from its Redis text form (`maxmemory 100mb`, `appendonly yes`).
   * Lowering `maxmemory` evicts at once; turning `appendonly` on writes the AOF from the current
   * data (a rewrite) before resolving. Changes are kept in `cache-config.json` in the data dir
   * (an automatic CONFIG REWRITE), so they survive a restart.
   * @param persist false: do not write `cache-config.json` (checking a value only)
   * @returns false when `name` is not a tier setting (the caller handles other names).
   * @throws InvalidArgumentError with Redis's wording for a bad value.
   */
  async setConfig(name: string, value: string, persist = true): Promise<boolean> {
    const n = name.toLowerCase() as keyof CacheConfig;
    if (!CONFIG_NAMES.includes(n)) return false;
    const int = (min: number, max = Number.MAX_SAFE_INTEGER): number => {
      if (!/^-?\d+$/.test(value.trim())) throw badConfig(n, "argument couldn't be parsed into an integer");
      const x = Number(value);
      if (x < min || x > max) throw badConfig(n, `argument must be between ${min} and ${max} inclusive`);
      return x;
    };
    const yesNo = (): boolean => {
      const v = value.toLowerCase();
      if (v !== 'yes' && v !== 'no') throw badConfig(n, "argument must be 'yes' or 'no'");
      return v === 'yes';
    };
    switch (n) {
      case 'maxmemory': {
        const m = parseMemory(value);
        if (m === undefined) throw badConfig(n, "argument couldn't be parsed into an integer");
        this.cfg.maxmemory = m;
        try {
          this.ensureMemory();
        } catch {
          // noeviction: writes are refused until memory goes down, as in Redis
        }
        break;
      }
      case 'maxmemory-policy': {
        const v = value.toLowerCase() as EvictionPolicy;
        if (!EVICTION_POLICIES.includes(v)) throw badConfig(n, `argument(s) must be one of the following: ${EVICTION_POLICIES.join(', ')}`);
        this.cfg[n] = v;
        this.pool = [];
        break;
      }
      case 'maxmemory-samples':
        this.cfg[n] = int(1, 64);
        break;
      case 'lfu-log-factor':
        this.cfg[n] = int(0);
        break;
      case 'lfu-decay-time':
        this.cfg[n] = int(0);
        break;
      case 'appendfsync': {
        const v = value.toLowerCase();
        if (v !== 'always' && v !== 'everysec' && v !== 'no') throw badConfig(n, 'argument(s) must be one of the following: always, everysec, no');
        this.cfg.appendfsync = v as AppendFsync;
        this.aof?.setFsync(v as AppendFsync);
        break;
      }
      case 'auto-aof-rewrite-percentage':
        this.cfg[n] = int(0);
        break;
      case 'auto-aof-rewrite-min-size': {
        const m = parseMemory(value);
        if (m === undefined) throw badConfig(n, "argument couldn't be parsed into an integer");
        this.cfg[n] = m;
        break;
      }
      case 'hz':
        this.cfg.hz = int(1, 500);
        if (this.timers.length > 0) this.startTimers();
        break;
      case 'appendonly': {
        const on = yesNo();
        if (on && this.options.dataDir === undefined) throw badConfig(n, 'this tier has no data directory for the append-only file');
        if (on && !this.cfg.appendonly) {
          this.cfg.appendonly = true;
          try {
            await this.rewriteAof();
          } catch (err) {
            this.cfg.appendonly = false;
            throw err;
          }
        } else if (!on && this.cfg.appendonly) {
          this.cfg.appendonly = false;
          this.aof?.close();
          this.aof = undefined;
        }
        break;
      }
    }
    if (persist) this.saveConfig();
    return true;
  }

  private saveConfig(): void {
    const dir = this.options.dataDir;
    if (dir === undefined) return;
    const tmp = join(dir, `${CONFIG_FILE}.tmp`);
    writeFileSync(tmp, JSON.stringify(this.cfg, null, 2), { mode: 0o600 });
    renameSync(tmp, join(dir, CONFIG_FILE));
  }

  /** CONFIG RESETSTAT: zeroes hits, misses, evicted and expired counters. */
  resetStats(): void {
    this.total.hits = this.total.misses = this.total.evicted = this.total.expired = 0;
    for (const c of this.counters.values()) c.hits = c.misses = c.evicted = c.expired = 0;
    for (const o of this.origins.values()) o.requests = o.failures = 0;
  }

  /** Statistics per memory namespace (those that held a key or counted a miss since start). */
  namespaceStats(): NamespaceStats[] {
    return [...this.counters.values()].map((c) => {
      const s: NamespaceStats = { ...c, originRequests: 0, originFailures: 0 };
      for (const [id, o] of this.origins) {
        if (!id.startsWith(`${c.prefix}\n`)) continue;
        s.originRequests += o.requests;
        s.originFailures += o.failures;
        s.breaker = o.breaker.state;
      }
      return s;
    });
  }

  /** INFO's view of the tier. */
  info(): CacheInfo {
    return {
      used_memory: this.used,
      maxmemory: this.cfg.maxmemory,
      maxmemory_policy: this.cfg['maxmemory-policy'],
      keyspace_hits: this.total.hits,
      keyspace_misses: this.total.misses,
      evicted_keys: this.total.evicted,
      expired_keys: this.total.expired,
      keys: this.t.size,
      expires: this.volatile.length,
      aof_enabled: this.cfg.appendonly ? 1 : 0,
      aof_rewrite_in_progress: this.rewriting !== undefined ? 1 : 0,
      aof_last_bgrewrite_status: this.lastRewriteOk ? 'ok' : 'err',
      aof_current_size: this.aof?.size ?? 0,
      aof_base_size: this.aofBaseSize,
      loading: this.loading ? 1 : 0,
      namespaces: this.namespaceStats(),
    };
  }

  // --- append-only file -------------------------------------------------------------------------

  /**
   * Appends a successful write command to the AOF (when `appendonly` is on). Relative expiries
   * must already be absolute (`EX 10` → `PXAT <ms>`), so a replay at any later time is right.
   * With `expiryOf`, a `PEXPIREAT expiryOf <ms>` follows when that key now has an expiry (use it
   * when a namespace's default TTL may have applied, e.g. a plain SET or HSET creating a key).
   */
  propagate(argv: readonly (Buffer | string)[], expiryOf?: string): void {
    if (this.loading || !this.cfg.appendonly) return;
    if (this.rewriting !== undefined) {
      const enc = encodeCommand(argv);
      this.aof?.append(enc);
      this.rewriting.buffer.push(enc);
    } else this.aof?.appendCommand(argv);
    if (expiryOf !== undefined) {
      const e = this.t.find(expiryOf);
      const at = e === undefined ? 0 : this.t.expireAt(e);
      if (at !== 0) this.propagate(['PEXPIREAT', expiryOf, String(at)]);
    }
  }

  /**
   * Resolves when every command propagated so far is as durable as `appendfsync` promises:
   * written and fsynced for `always` (acknowledge only after this), at once otherwise.
   * @throws UnavailableError when the AOF cannot be written.
   */
  durable(): Promise<void> {
    return this.aof?.durable() ?? Promise.resolve();
  }

  private aofPath(): string {
    if (this.options.dataDir === undefined) throw new UnavailableError('the cache tier has no data directory for the append-only file');
    return join(this.options.dataDir, AOF_FILE);
  }

  /**
   * Registers the executor AOF replay uses (the RESP listener's command table); it must be set
   * before {@link open} to take part in the load (or passed to `open`).
   */
  setExecutor(exec: AofExecutor | undefined): void {
    this.executor = exec;
  }

  /** Replays one command through the executor (built-in when none is registered). */
  private exec(argv: Buffer[]): void {
    (this.executor ?? ((a: Buffer[]) => this.builtinExec(a)))(argv);
  }

  /**
   * Loads the AOF (when `appendonly` is on) by replaying each command through `exec` (default:
   * the built-in executor). A truncated last record is cut off with a warning; a MULTI without
   * its EXEC at the end is dropped. Then starts the active expiry cycle and the AOF timers.
   * @throws UnavailableError when the file cannot be read or is corrupt before its end.
   */
  async open(exec?: AofExecutor): Promise<AofLoadResult> {
    if (exec !== undefined) this.executor = exec;
    const result: AofLoadResult = { commands: 0, truncatedBytes: 0, failed: 0 };
    if (this.cfg.appendonly) {
      const path = this.aofPath();
      if (existsSync(path)) {
        const buf = readFileSync(path);
        const parsed = parseAof(buf);
        this.loading = true;
        try {
          let multi: Buffer[][] | undefined;
          let beforeMulti = 0;
          for (let c = 0; c < parsed.commands.length; c++) {
            const argv = parsed.commands[c] as Buffer[];
            const name = (argv[0] as Buffer).toString('latin1').toUpperCase();
            if (name === 'MULTI') {
              multi = [];
              beforeMulti = c === 0 ? 0 : (parsed.ends[c - 1] as number);
              continue;
            }
            if (name === 'EXEC') {
              for (const a of multi ?? []) this.replay(a, result);
              multi = undefined;
              continue;
            }
            if (multi !== undefined) multi.push(argv);
            else this.replay(argv, result);
          }
          if (multi !== undefined) {
            // As Redis does: the file is cut back to before the unfinished MULTI.
            this.options.logger?.warn({ commands: multi.length }, 'the append-only file ends inside a MULTI without EXEC; that transaction was not applied and is cut off');
            parsed.truncated = true;
            parsed.validBytes = beforeMulti;
          }
        } finally {
          this.loading = false;
        }
        if (parsed.truncated) {
          result.truncatedBytes = buf.length - parsed.validBytes;
          this.options.logger?.warn(
            { path, validBytes: parsed.validBytes, truncatedBytes: result.truncatedBytes },
            'the append-only file ends with a truncated command (a crash mid-write?); it was ignored and cut off',
          );
        }
        this.aof = new AofFile(path, this.cfg.appendfsync, (err) => this.onAofError(err));
        if (parsed.truncated) this.aof.truncate(parsed.validBytes);
        this.options.logger?.info({ path, commands: result.commands, keys: this.t.size }, 'append-only file loaded');
      } else {
        this.aof = new AofFile(path, this.cfg.appendfsync, (err) => this.onAofError(err));
      }
      this.aofBaseSize = this.aof.size;
    }
    this.startTimers();
    return result;
  }

  private replay(argv: Buffer[], result: AofLoadResult): void {
    result.commands++;
    try {
      this.exec(argv);
    } catch (err) {
      result.failed++;
      if (result.failed <= 10) {
        this.options.logger?.warn({ err, command: (argv[0] as Buffer).toString('latin1') }, 'a command of the append-only file failed to replay');
      }
    }
  }

  private onAofError(err: Error): void {
    this.options.logger?.warn({ err }, 'writing the append-only file failed; acknowledgements wait until it works again');
  }

  private startTimers(): void {
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    const hz = this.cfg.hz;
    const cycle = setInterval(() => {
      if (this.activeExpire) this.activeExpireCycle(250 / hz);
    }, Math.round(1000 / hz));
    const second = setInterval(() => this.everySecond(), 1000);
    cycle.unref();
    second.unref();
    this.timers.push(cycle, second);
  }

  private everySecond(): void {
    const aof = this.aof;
    if (aof === undefined) return;
    if (this.cfg.appendfsync === 'everysec') aof.sync();
    const pct = this.cfg['auto-aof-rewrite-percentage'];
    if (pct > 0 && this.rewriting === undefined && aof.size >= this.cfg['auto-aof-rewrite-min-size'] && aof.size >= this.aofBaseSize * (1 + pct / 100)) {
      this.options.logger?.info({ size: aof.size, baseSize: this.aofBaseSize }, 'starting an automatic append-only file rewrite');
      this.rewriteAof().catch(() => undefined);
    }
  }

  /** The commands that rebuild `e` (chunked as Redis does), then its absolute expiry. */
  private serialize(e: number): Buffer {
    return Buffer.concat(this.commandsOf(e).map((argv) => encodeCommand(argv)));
  }

  /**
   * The commands that recreate live `key` as it is now (value and absolute expiry), as the AOF
   * rewrite writes them: the cache tier across nodes sends them to a new replica. Undefined for
   * a key that is absent or expired.
   */
  recreate(key: string): Buffer[][] | undefined {
    const e = this.t.find(key);
    if (e === undefined || this.isExpired(e)) return undefined;
    return this.commandsOf(e);
  }

  private commandsOf(e: number): Buffer[][] {
    const k = Buffer.from(this.t.keyOf(e));
    const cmds: Buffer[][] = [];
    const v = this.heldValue(e);
    const chunked = (name: string, items: Buffer[], per: number): void => {
      for (let i = 0; i < items.length; i += REWRITE_ITEMS_PER_CMD * per) {
        cmds.push([Buffer.from(name), k, ...items.slice(i, i + REWRITE_ITEMS_PER_CMD * per)]);
      }
    };
    switch (v.type) {
      case 'string':
        cmds.push([Buffer.from('SET'), k, v.value]);
        break;
      case 'hash':
        chunked('HSET', [...v.value].flatMap(([f, b]) => [memberToBytes(f), b]), 2);
        break;
      case 'list':
        chunked('RPUSH', v.value.toArray(), 1);
        break;
      case 'set':
        chunked('SADD', [...v.value].map(memberToBytes), 1);
        break;
      case 'zset':
        chunked('ZADD', v.value.entries().flatMap((m) => [Buffer.from(formatScore(m.score)), memberToBytes(m.member)]), 2);
        break;
    }
    const at = this.t.expireAt(e);
    if (at !== 0) cmds.push([Buffer.from('PEXPIREAT'), k, Buffer.from(String(at))]);
    return cmds;
  }

  /**
   * Rewrites the AOF from the current entries (BGREWRITEAOF) without stalling commands: the
   * snapshot is serialised in slices between commands (an entry about to change is serialised
   * first, so the file is the state at the rewrite's start), commands arriving meanwhile are
   * buffered and appended, and the new file replaces the old one with an atomic rename. A call
   * during a rewrite joins it.
   * @throws UnavailableError when the rewrite fails (the old file stays in use).
   */
  rewriteAof(): Promise<void> {
    if (this.rewriting !== undefined) return this.rewriting.promise;
    if (!this.cfg.appendonly) return Promise.reject(new UnavailableError('the append-only file is off (CONFIG SET appendonly yes first)'));
    const path = this.aofPath();
    const state: RewriteState = { epoch: ++this.rewriteEpoch, startSeq: this.nextSeq, buffer: [], out: [], promise: Promise.resolve() };
    // Ids are reused: an id counts only while its entry is older than the rewrite (`seq`).
    const snapshot = this.t.dense.slice();
    this.rewriting = state;
    const tmp = `${path}.rewrite`;
    state.promise = (async () => {
      let fd: number | undefined;
      try {
        fd = openSync(tmp, 'w', 0o600);
        const writeOut = (): void => {
          if (state.out.length === 0) return;
          const buf = Buffer.concat(state.out);
          state.out = [];
          let off = 0;
          while (off < buf.length) off += writeSync(fd as number, buf, off, buf.length - off);
        };
        for (let i = 0; i < snapshot.length; i += REWRITE_SLICE) {
          const end = Math.min(snapshot.length, i + REWRITE_SLICE);
          for (let j = i; j < end; j++) {
            const e = snapshot[j] as number;
            const t = this.t;
            const at = t.expireAt(e);
            if (t.alive(e) && t.seq(e) < state.startSeq && t.dumped(e) !== state.epoch && (at === 0 || at > this.now())) {
              t.setDumped(e, state.epoch);
              state.out.push(this.serialize(e));
            }
          }
          writeOut();
          await new Promise<void>((r) => setImmediate(r));
          if (this.closed) throw new UnavailableError('the node is shutting down');
        }
        writeOut();
        // Most bytes reach the disk off the event loop; the swap below then syncs only the tail.
        await new Promise<void>((resolve, reject) => fdatasync(fd as number, (err) => (err === null ? resolve() : reject(err))));
        if (this.closed) throw new UnavailableError('the node is shutting down');
        // The swap: synchronous, so no command runs between the last buffered write and the rename.
        writeOut();
        state.out = state.buffer;
        state.buffer = [];
        writeOut();
        fdatasyncSync(fd);
        closeSync(fd);
        fd = undefined;
        renameSync(tmp, path);
        this.syncDir();
        const old = this.aof;
        const waiters: Waiter[] = old?.takeWaiters() ?? [];
        old?.abandon();
        this.aof = new AofFile(path, this.cfg.appendfsync, (err) => this.onAofError(err));
        this.aofBaseSize = this.aof.size;
        for (const w of waiters) w.resolve();
        this.lastRewriteOk = true;
        this.options.logger?.info({ path, bytes: this.aof.size, keys: this.t.size }, 'append-only file rewritten');
      } catch (err) {
        this.lastRewriteOk = false;
        if (fd !== undefined) closeSync(fd);
        rmSync(tmp, { force: true });
        if (!this.closed) this.options.logger?.warn({ err }, 'append-only file rewrite failed; the old file stays in use');
        throw err instanceof UnavailableError ? err : new UnavailableError('the append-only file rewrite failed', { cause: err });
      } finally {
        this.rewriting = undefined;
      }
    })();
    return state.promise;
  }

  private syncDir(): void {
    try {
      const dfd = openSync(this.options.dataDir as string, 'r');
      try {
        fsyncSync(dfd);
      } finally {
        closeSync(dfd);
      }
    } catch {
      // some filesystems refuse fsync on a directory; the rename is still atomic
    }
  }

  /**
   * The built-in AOF executor: the commands the HTTP face, the tier and the rewrite write.
   * @throws InvalidArgumentError for any other command or bad arguments.
   */
  builtinExec(argv: Buffer[]): void {
    const name = (argv[0] ?? Buffer.alloc(0)).toString('latin1').toUpperCase();
    const key = argv[1]?.toString('utf8') ?? '';
    const need = (n: number): void => {
      if (argv.length < n) throw new InvalidArgumentError(`wrong number of arguments for '${name.toLowerCase()}' command`);
    };
    const num = (b: Buffer | undefined): number => {
      const x = Number(b?.toString('latin1'));
      if (!Number.isFinite(x)) throw new InvalidArgumentError('value is not an integer or out of range');
      return x;
    };
    const writable = <T extends CacheValue['type']>(type: T, make: () => Extract<CacheValue, { type: T }>): Extract<CacheValue, { type: T }> => {
      const cur = this.lookupWrite(key);
      if (cur !== undefined && cur.type === type) return cur as Extract<CacheValue, { type: T }>;
      const v = make();
      this.set(key, v, { expireAtMs: null });
      return v;
    };
    switch (name) {
      case 'SET': {
        need(3);
        const opts: SetOptions = { expireAtMs: null };
        for (let i = 3; i < argv.length; i++) {
          const o = (argv[i] as Buffer).toString('latin1').toUpperCase();
          if (o === 'PXAT') opts.expireAtMs = num(argv[++i]);
          else if (o === 'EXAT') opts.expireAtMs = num(argv[++i]) * 1000;
          else if (o === 'KEEPTTL') {
            delete opts.expireAtMs;
            opts.keepTtl = true;
          } else throw new InvalidArgumentError(`SET option ${o} is not replayable (expiries must be absolute)`);
        }
        this.set(key, { type: 'string', value: Buffer.from(argv[2] as Buffer) }, opts);
        return;
      }
      case 'DEL':
      case 'UNLINK':
        need(2);
        for (const k of argv.slice(1)) this.delete(k.toString('utf8'));
        return;
      case 'PEXPIREAT':
        need(3);
        this.expireAt(key, num(argv[2]));
        return;
      case 'EXPIREAT':
        need(3);
        this.expireAt(key, num(argv[2]) * 1000);
        return;
      case 'PERSIST':
        need(2);
        this.expireAt(key, null);
        return;
      case 'HSET': {
        need(4);
        const h = writable('hash', () => ({ type: 'hash', value: new Map() })).value;
        for (let i = 2; i + 1 < argv.length; i += 2) h.set(memberFromBytes(argv[i] as Buffer), Buffer.from(argv[i + 1] as Buffer));
        this.modified(key);
        return;
      }
      case 'RPUSH': {
        need(3);
        const l = writable('list', () => ({ type: 'list', value: new Deque<Buffer>() })).value;
        for (const b of argv.slice(2)) l.pushBack(Buffer.from(b));
        this.modified(key);
        return;
      }
      case 'SADD': {
        need(3);
        const s = writable('set', () => ({ type: 'set', value: new Set<string>() })).value;
        for (const b of argv.slice(2)) s.add(memberFromBytes(b));
        this.modified(key);
        return;
      }
      case 'ZADD': {
        need(4);
        const z = writable('zset', () => ({ type: 'zset', value: new SortedSet() })).value;
        for (let i = 2; i + 1 < argv.length; i += 2) {
          const t = (argv[i] as Buffer).toString('latin1').toLowerCase();
          const score = t === 'inf' || t === '+inf' ? Infinity : t === '-inf' ? -Infinity : num(argv[i]);
          z.add(memberFromBytes(argv[i + 1] as Buffer), score);
        }
        this.modified(key);
        return;
      }
      case 'FLUSHALL':
      case 'FLUSHDB':
        this.flush();
        return;
      case 'SELECT':
      case 'MULTI':
      case 'EXEC':
        return;
      default:
        throw new InvalidArgumentError(`unknown command '${name}' in the append-only file`);
    }
  }

  // --- read-through -----------------------------------------------------------------------------

  /**
   * A read that falls back to the namespace's origin on a miss: one origin request per key at a
   * time however many callers wait (single-flight); the value is stored with the origin's TTL
   * (else the namespace's default TTL). Without an origin, while the breaker is open, or when
   * the origin fails, it answers a miss with the reason, at once.
   */
  readThrough(key: string): Promise<ReadThroughResult> {
    const hit = this.lookup(key);
    if (hit !== undefined) return Promise.resolve({ outcome: 'hit', value: hit });
    return this.fetch(key);
  }

  /**
   * {@link readThrough} after a miss the caller has already counted (RESP GET): fetches `key`
   * from its namespace's origin, single-flight, and stores it. Never `hit`; never rejects.
   */
  fetch(key: string): Promise<ReadThroughResult> {
    const ns = this.options.namespaces(key);
    const origin = ns?.origin;
    if (ns === undefined || origin === undefined) return Promise.resolve({ outcome: 'miss', reason: 'the key is not in the cache (its namespace has no origin)' });
    const url = originUrl(origin.url, ns.prefix, key);
    if (url === undefined) return Promise.resolve({ outcome: 'miss', reason: `'${key}' cannot be fetched from the origin (its id would be a '.' or '..' path segment, or empty)` });
    const inFlight = this.flights.get(key);
    if (inFlight !== undefined) return inFlight;
    const id = `${ns.prefix}\n${origin.url}`;
    let state = this.origins.get(id);
    if (state === undefined) {
      state = newOriginState(origin, this.now);
      this.origins.set(id, state);
    }
    const refused = state.breaker.acquire();
    if (refused !== undefined) return Promise.resolve({ outcome: 'miss', reason: refused });
    const st = state;
    const flight = (async (): Promise<ReadThroughResult> => {
      st.requests++;
      const res = await fetchOrigin(url, origin.timeoutMs ?? DEFAULT_ORIGIN_TIMEOUT_MS, this.options.maxValueBytes ?? MAX_ORIGIN_BODY_BYTES);
      st.breaker.record(res.ok || !res.failure);
      if (!res.ok) {
        if (res.failure) st.failures++;
        return { outcome: 'miss', reason: res.reason };
      }
      const current = this.peek(key);
      if (current !== undefined) return { outcome: 'loaded', value: current }; // written while we fetched: that write wins
      const value: CacheValue = { type: 'string', value: res.body };
      const ttl = origin.ttlSeconds ?? ns.defaultTtl;
      const expireAtMs = ttl !== undefined ? this.now() + ttl * 1000 : null;
      try {
        this.set(key, value, { expireAtMs });
        // A fill is not an acknowledged write: it is not held back until replicas have it.
        void this.changedOutside('set', key, ['SET', key, res.body, ...(expireAtMs !== null ? ['PXAT', String(expireAtMs)] : [])]);
      } catch (err) {
        this.options.logger?.warn({ err, key }, 'a value fetched from the origin could not be cached');
      }
      return { outcome: 'loaded', value };
    })().finally(() => this.flights.delete(key));
    this.flights.set(key, flight);
    return flight;
  }

  /**
   * Set by the RESP listener of a cache cluster: sends a write made outside the listener (the
   * HTTP face, an origin fill) to the replicas of the key's slot, as it sends its own writes.
   * Resolves once a `sync` namespace's replicas all have it: undefined, or why some did not;
   * returns undefined when there is nothing to wait for (no replicas, `async` replication).
   */
  replicateWrite: ((key: string, argv: Buffer[]) => Promise<string | undefined> | undefined) | undefined;

  /**
   * Records a write made outside the RESP listener after it was applied (`set` or `del` of
   * `key`, as the command `argv`): the AOF, keyspace notifications and WATCH (the `notify`
   * event), and the replicas in a cache cluster ({@link replicateWrite}, whose result it
   * returns: await it before acknowledging the write).
   */
  changedOutside(event: 'set' | 'del', key: string, argv: readonly (Buffer | string)[]): Promise<string | undefined> | undefined {
    this.propagate(argv);
    this.emit('notify', event, key);
    return this.replicateWrite?.(
      key,
      argv.map((a) => (typeof a === 'string' ? Buffer.from(a, 'utf8') : a)),
    );
  }

  /** The origin breaker state of `prefix`'s namespace, if it has fetched anything. */
  breakerState(prefix: string): 'closed' | 'open' | 'half-open' | undefined {
    for (const [id, o] of this.origins) if (id.startsWith(`${prefix}\n`)) return o.breaker.state;
    return undefined;
  }

  /** Stops timers, flushes, fsyncs and closes the AOF (a rewrite in progress is abandoned). */
  async close(): Promise<void> {
    this.closed = true;
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    await this.rewriting?.promise.catch(() => undefined);
    this.aof?.close();
    this.aof = undefined;
  }
}
