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
 * The id is also SCAN's slot: an entry keeps its id for life, a new entry takes a free id, and
 * the table does not grow while the key count is bounded (Redis's SCAN guarantee).
 */
import type { CacheValue } from './values.js';

const INITIAL_CAPACITY = 1024;

/**
 * Entries by id. Fields are public columns for the tier's hot paths; `keys[id] === null` (or an
 * id past `keys.length`) marks a free id. Ids are reused, so a holder of an id across commands
 * must check it still names the same entry (`seq`).
 */
export class EntryTable<N> {
  /** Key by id; null for a free id. Its length is SCAN's table size (trailing free ids are trimmed). */
  keys: (string | null)[] = [];
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
  private free: number[] = [];
  private capacity = INITIAL_CAPACITY;

  /** Live entries. */
  get size(): number {
    return this.dense.length;
  }

  /** Whether `id` names a live entry. */
  alive(id: number): boolean {
    const k = this.keys[id];
    return k !== null && k !== undefined;
  }

  /**
   * A new entry for `key`: the most recently freed id, else a new one at the end. Numeric fields
   * start at 0 except `soff`/`vidx` (-1); the caller sets the rest.
   */
  add(key: string, value: CacheValue, ns: N, noBytes: Buffer): number {
    let id: number | undefined;
    while ((id = this.free.pop()) !== undefined) {
      if (id < this.keys.length && this.keys[id] === null) break; // stale after a trailing trim
    }
    if (id === undefined) {
      id = this.keys.length;
      if (id >= this.capacity) this.grow();
      this.keys.push(key);
    } else this.keys[id] = key;
    if (id < this.values.length) {
      this.values[id] = value;
      this.ns[id] = ns;
      this.sbuf[id] = noBytes;
    } else {
      this.values.push(value);
      this.ns.push(ns);
      this.sbuf.push(noBytes);
    }
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
    const keys = this.keys;
    keys[id] = null;
    this.values[id] = placeholder;
    this.sbuf[id] = noBytes;
    if (id === keys.length - 1) {
      while (keys.length > 0 && keys[keys.length - 1] === null) keys.pop();
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
    this.keys = [];
    this.values = [];
    this.ns = [];
    this.sbuf = [];
    this.dense = [];
    this.free = [];
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
    this.capacity = cap;
  }
}
