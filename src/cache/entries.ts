/**
 * The cache tier's entries as columns: each entry is an integer id, and its fields live in
 * typed arrays (numbers) and plain arrays (key, value, namespace) indexed by that id.
 *
 * Why columns and not one object per entry: a new key used to add an entry object of ~170
 * bytes that survived V8's young-generation collection and was copied twice (to the survivor
 * space, then to the old generation). At `SET` rates of 50k/s that made each scavenge pause
 * 2.3–2.6 ms, the p99 of SET and INCR at `-P 1` (docs/performance.md §4). With columns a new
 * key leaves only its key string to copy; every other field is a number written into a typed
 * array outside the JavaScript heap, or a pointer to an object that is already old.
 *
 * Keys are held the same way: their characters in a {@link ByteSlab} of the table's own, found
 * through a `Map` from a 30-bit hash of the key (a small integer, stored unboxed) to the first
 * id of a chain of ids with that hash. A new key therefore leaves nothing on the JavaScript heap
 * for the scavenger either: before, its key string survived two young-generation collections,
 * and with ~3,000 new keys per collection that made each pause 2.4 ms against 0.8 ms for writes
 * to existing keys (docs/performance.md §4).
 *
 * The id is also SCAN's slot: an entry keeps its id for life, a new entry takes a free id, and
 * the table does not grow while the key count is bounded (Redis's SCAN guarantee).
 */
import { ByteSlab, isWide, slotSize, stringBytes } from './slab.js';
import type { CacheValue } from './values.js';

const INITIAL_CAPACITY = 1024;

/** FNV-1a over the key's UTF-16 code units, cut to 30 bits so it is a small integer (unboxed) in every V8 build. */
export function hashKey(key: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
  return h >>> 2;
}

/**
 * Entries by id. Fields are public columns for the tier's hot paths; `live[id] === 0` marks a free
 * id. Ids are reused, so a holder of an id across commands
 * must check it still names the same entry (`seq`).
 */
export class EntryTable<N> {
  /** 1 for a live id. */
  live = new Uint8Array(INITIAL_CAPACITY);
  /** SCAN's table size: one past the highest live id (trailing free ids are trimmed). */
  top = 0;
  /** Value by id (the tier's `HELD_STRING` for a string whose bytes are in `soff`/`sbuf`). */
  values: CacheValue[] = [];
  /** The namespace counters an entry counts in. */
  ns: N[] = [];
  /** A string longer than a slab slot: a buffer the entry owns; an empty buffer otherwise. */
  sbuf: Buffer[] = [];
  /** A string's slot in the tier's ByteSlab; -1 when none. */
  soff = new Int32Array(INITIAL_CAPACITY);
  /** A string's length in bytes. */
  slen = new Int32Array(INITIAL_CAPACITY);
  /** 1: the held string came from an in-place edit (OBJECT ENCODING `raw`). */
  sraw = new Uint8Array(INITIAL_CAPACITY);
  /** ms since the epoch; 0 = no expiry. */
  expireAt = new Float64Array(INITIAL_CAPACITY);
  /** ms of the last access (LRU), counted from the tier's epoch. */
  lru = new Float64Array(INITIAL_CAPACITY);
  /** Redis's 8-bit logarithmic access counter (LFU). */
  lfu = new Uint8Array(INITIAL_CAPACITY);
  /** Minute of the LFU counter's last decrement. */
  ldt = new Int32Array(INITIAL_CAPACITY);
  /** Bytes counted in `used_memory`. */
  mem = new Float64Array(INITIAL_CAPACITY);
  /** Insertion order, unique per entry ever made (an AOF rewrite serialises entries older than its start; a reused id has a new seq). */
  seq = new Float64Array(INITIAL_CAPACITY);
  /** Position in {@link dense}. */
  didx = new Int32Array(INITIAL_CAPACITY);
  /** Index in the tier's volatile (has-expiry) array, -1 when none. */
  vidx = new Int32Array(INITIAL_CAPACITY);
  /** The AOF rewrite epoch in which this entry was already serialised. */
  dumped = new Int32Array(INITIAL_CAPACITY);
  /** Every live id, packed, for O(1) uniform sampling (eviction, RANDOMKEY). */
  dense: number[] = [];
  /** The key's slot in {@link keySlab}; -1 for a key too long for a slot (in {@link longKeys}). */
  private koff = new Int32Array(INITIAL_CAPACITY);
  /** The key's length in bytes in the slab. */
  private klen = new Int32Array(INITIAL_CAPACITY);
  /** 1: the key is stored two bytes per character. */
  private kwide = new Uint8Array(INITIAL_CAPACITY);
  /** The key's hash ({@link hashKey}). */
  private khash = new Int32Array(INITIAL_CAPACITY);
  /** The next id of the same hash, -1 at the end of the chain. */
  private next = new Int32Array(INITIAL_CAPACITY);
  /** Hash → the first id of its chain. */
  private index = new Map<number, number>();
  private keySlab = new ByteSlab();
  private longKeys = new Map<number, string>();
  private free: number[] = [];
  private capacity = INITIAL_CAPACITY;

  /** @param hash the key hash (a small integer); tests pass a poor one to make long chains. */
  constructor(private readonly hash: (key: string) => number = hashKey) {}

  /** Live entries. */
  get size(): number {
    return this.dense.length;
  }

  /** Whether `id` names a live entry. */
  alive(id: number): boolean {
    return this.live[id] === 1;
  }

  /** The key hash the table uses ({@link hashKey} unless a test gave another). */
  hashOf(key: string): number {
    return this.hash(key);
  }

  /** The id of `key`, or undefined when it has no entry. `h`: its {@link hashOf}, when the caller has it. */
  find(key: string, h = this.hash(key)): number | undefined {
    let id = this.index.get(h);
    while (id !== undefined && id >= 0) {
      if (this.keyIs(id, key)) return id;
      id = this.next[id] as number;
    }
    return undefined;
  }

  private keyIs(id: number, key: string): boolean {
    const off = this.koff[id] as number;
    if (off < 0) return this.longKeys.get(id) === key;
    return this.keySlab.equalsString(off, this.klen[id] as number, this.kwide[id] === 1, key);
  }

  /** Bytes the key of live entry `id` takes (counted in `used_memory`). */
  keyBytes(id: number): number {
    return this.klen[id] as number;
  }

  /** The key of live entry `id` (a new string each call). */
  keyOf(id: number): string {
    const off = this.koff[id] as number;
    if (off < 0) return this.longKeys.get(id) as string;
    return this.keySlab.readString(off, this.klen[id] as number, this.kwide[id] === 1);
  }

  /**
   * A new entry for `key`, which must have none: the most recently freed id, else a new one at
   * the end. Numeric fields start at 0 except `soff`/`vidx` (-1); the caller sets the rest.
   * `h`: the key's {@link hashOf}, when the caller has it.
   */
  add(key: string, value: CacheValue, ns: N, noBytes: Buffer, h = this.hash(key)): number {
    let id: number | undefined;
    while ((id = this.free.pop()) !== undefined) {
      if (id < this.top && this.live[id] === 0) break; // stale after a trailing trim
    }
    if (id === undefined) {
      id = this.top;
      if (id >= this.capacity) this.grow();
    }
    if (id >= this.top) this.top = id + 1;
    this.live[id] = 1;
    if (id < this.values.length) {
      this.values[id] = value;
      this.ns[id] = ns;
      this.sbuf[id] = noBytes;
    } else {
      this.values.push(value);
      this.ns.push(ns);
      this.sbuf.push(noBytes);
    }
    const wide = isWide(key);
    const len = stringBytes(key, wide);
    const size = slotSize(len);
    const off = size < 0 ? -1 : this.keySlab.alloc(size);
    if (off >= 0) this.keySlab.writeString(off, key, wide);
    else this.longKeys.set(id, key);
    this.koff[id] = off;
    this.klen[id] = len;
    this.kwide[id] = wide ? 1 : 0;
    this.khash[id] = h;
    const head = this.index.get(h);
    this.next[id] = head ?? -1;
    this.index.set(h, id);
    this.soff[id] = -1;
    this.slen[id] = 0;
    this.sraw[id] = 0;
    this.expireAt[id] = 0;
    this.lru[id] = 0;
    this.lfu[id] = 0;
    this.ldt[id] = 0;
    this.mem[id] = 0;
    this.seq[id] = 0;
    this.vidx[id] = -1;
    this.dumped[id] = 0;
    this.didx[id] = this.dense.length;
    this.dense.push(id);
    return id;
  }

  /** Frees `id` (the caller released its bytes and volatile link); its value is dropped for the collector. */
  remove(id: number, placeholder: CacheValue, noBytes: Buffer): void {
    this.live[id] = 0;
    this.values[id] = placeholder;
    this.sbuf[id] = noBytes;
    // Out of its hash chain.
    const h = this.khash[id] as number;
    const after = this.next[id] as number;
    const head = this.index.get(h) as number;
    if (head === id) {
      if (after < 0) this.index.delete(h);
      else this.index.set(h, after);
    } else {
      let p = head;
      while ((this.next[p] as number) !== id) p = this.next[p] as number;
      this.next[p] = after;
    }
    const off = this.koff[id] as number;
    if (off >= 0) this.keySlab.release(off, slotSize(this.klen[id] as number));
    else this.longKeys.delete(id);
    if (id === this.top - 1) {
      while (this.top > 0 && this.live[this.top - 1] === 0) this.top--;
    } else this.free.push(id);
    const last = this.dense.pop() as number;
    if (last !== id) {
      const at = this.didx[id] as number;
      this.dense[at] = last;
      this.didx[last] = at;
    }
  }

  /** Forgets every entry. */
  clear(): void {
    this.live.fill(0);
    this.top = 0;
    this.values = [];
    this.ns = [];
    this.sbuf = [];
    this.dense = [];
    this.free = [];
    this.index = new Map();
    this.keySlab = new ByteSlab();
    this.longKeys = new Map();
  }

  private grow(): void {
    const cap = this.capacity * 2;
    const widen = <T extends Int32Array | Float64Array | Uint8Array>(a: T, make: new (n: number) => T): T => {
      const b = new make(cap);
      b.set(a);
      return b;
    };
    this.soff = widen(this.soff, Int32Array);
    this.slen = widen(this.slen, Int32Array);
    this.sraw = widen(this.sraw, Uint8Array);
    this.expireAt = widen(this.expireAt, Float64Array);
    this.lru = widen(this.lru, Float64Array);
    this.lfu = widen(this.lfu, Uint8Array);
    this.ldt = widen(this.ldt, Int32Array);
    this.mem = widen(this.mem, Float64Array);
    this.seq = widen(this.seq, Float64Array);
    this.didx = widen(this.didx, Int32Array);
    this.vidx = widen(this.vidx, Int32Array);
    this.dumped = widen(this.dumped, Int32Array);
    this.live = widen(this.live, Uint8Array);
    this.koff = widen(this.koff, Int32Array);
    this.klen = widen(this.klen, Int32Array);
    this.kwide = widen(this.kwide, Uint8Array);
    this.khash = widen(this.khash, Int32Array);
    this.next = widen(this.next, Int32Array);
    this.capacity = cap;
  }
}
