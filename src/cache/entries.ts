/**
 * The cache tier's entries as records: each entry is an integer id, its numeric fields live in
 * one 64-byte record (a cache line) of a typed array outside the JavaScript heap, and its value
 * and namespace in plain arrays indexed by that id.
 *
 * Why not one object per entry: a new key used to add an entry object of ~170 bytes that
 * survived V8's young-generation collection and was copied twice (to the survivor space, then to
 * the old generation). At `SET` rates of 50k/s that made each scavenge pause 2.3–2.6 ms, the p99
 * of SET and INCR at `-P 1` (docs/performance.md §4). With records a new key leaves nothing on
 * the JavaScript heap to copy but pointers to objects that are already old.
 *
 * Why records and not one typed array per field: a write touched ~15 fields, each in its own
 * array, so each in its own cache line and memory page; at 100,000 keys that was ~15 cache and
 * TLB misses per key and most of MSET's time (docs/performance.md §4). A record puts the fields
 * one command touches in one line.
 *
 * Keys are held off the heap as well: their characters in a {@link ByteSlab} of the table's
 * own, found through an open-addressing index of (30-bit hash, id) pairs in an Int32Array, so a
 * look-up reads the index line, the record and the key's bytes.
 *
 * The id is also SCAN's slot: an entry keeps its id for life, a new entry takes a free id, and
 * the table does not grow while the key count is bounded (Redis's SCAN guarantee).
 */
import { ByteSlab, isWide, slotSize, stringBytes } from './slab.js';
import type { CacheValue } from './values.js';

/**
 * Records are allocated in chunks of 2^12 entries (256 KiB), so the table grows by adding a
 * chunk and never copies: doubling one array stalled the event loop 8 ms at 65,536 entries and
 * 18 ms at 131,072 (docs/performance.md §4).
 */
const CHUNK_BITS = 12;
const CHUNK = 1 << CHUNK_BITS;
const CHUNK_MASK = CHUNK - 1;
/** The index starts with this many slots (a power of two) and doubles when half full. */
const INITIAL_SLOTS = 2048;
/** Old index slots moved into the doubled index per added key while it is being rehashed. */
const REHASH_STEP = 64;
/** An index slot of the old (being rehashed) index whose entry moved or was removed: probes go on past it. */
const MOVED = -1;

// One record per entry: 64 bytes, one cache line, read through a Float64Array and an Int32Array
// over the same buffer. Slots of the Float64Array (8 per record):
const F_STRIDE = 8;
const F_EXPIRE_AT = 0;
const F_LRU = 1;
const F_MEM = 2;
const F_SEQ = 3;
// Slots of the Int32Array (16 per record; 0–7 are the four doubles above):
const I_STRIDE = 16;
const I_SOFF = 8;
const I_SLEN = 9;
const I_KOFF = 10;
const I_KLEN = 11;
const I_KHASH = 12;
const I_LDT = 13;
const I_VIDX = 14;
const I_BITS = 15;
// Bits of I_BITS: the LFU counter in bits 0–7, then flags.
const LFU_MASK = 0xff;
const SRAW_BIT = 1 << 8;
const KWIDE_BIT = 1 << 9;
const LIVE_BIT = 1 << 10;

/** FNV-1a over the key's UTF-16 code units, cut to 30 bits so it is a small integer (unboxed) in every V8 build. */
export function hashKey(key: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
  return h >>> 2;
}

/**
 * Entries by id. The numeric fields of an entry are read and written through the accessors
 * below (`expireAt(id)`, `setExpireAt(id, v)`, …), which address the entry's record; a free id
 * has no live bit ({@link alive}). Ids are reused, so a holder of an id across commands must
 * check it still names the same entry (`seq`).
 */
export class EntryTable<N> {
  /** SCAN's table size: one past the highest live id (trailing free ids are trimmed). */
  top = 0;
  /** Value by id (the tier's `HELD_STRING` for a string whose bytes are in the slab or `sbuf`). */
  values: CacheValue[] = [];
  /** The namespace counters an entry counts in. */
  ns: N[] = [];
  /** A string longer than a slab slot: a buffer the entry owns; an empty buffer otherwise. */
  sbuf: Buffer[] = [];
  /** Every live id, packed, for O(1) uniform sampling (eviction, RANDOMKEY). */
  dense: number[] = [];
  /** The records by chunk: {@link F_STRIDE} doubles or {@link I_STRIDE} int32s per id, one buffer per chunk. */
  private fchunks: Float64Array[] = [];
  private ichunks: Int32Array[] = [];
  /** Per id, two int32s read only off the hot path: the position in {@link dense}, the AOF rewrite epoch. */
  private coldChunks: Int32Array[] = [];
  /**
   * The index, open addressing with linear probing: slot `s` holds a key hash at `2s` and its
   * id + 1 at `2s + 1` (0 = empty). The hash beside the id means a probe reads no record but
   * the one whose key it compares.
   */
  private slots = new Int32Array(2 * INITIAL_SLOTS);
  private mask = INITIAL_SLOTS - 1;
  /**
   * While the index doubles, the old one (Redis's incremental rehash, `dict.c`): each add moves
   * {@link REHASH_STEP} of its slots into {@link slots}, so no one command pays for moving them
   * all (9 ms at 131,072 keys). A look-up that misses the new index probes the old one, where
   * moved and removed entries are {@link MOVED} marks. null when no rehash runs.
   */
  private old: Int32Array | null = null;
  private oldMask = 0;
  /** The next old slot to move. */
  private oldCursor = 0;
  private keySlab = new ByteSlab();
  private longKeys = new Map<number, string>();
  private free: number[] = [];
  private capacity = 0;

  /** @param hash the key hash (a small integer); tests pass a poor one to make long probe runs. */
  constructor(private readonly hash: (key: string) => number = hashKey) {}

  /** Live entries. */
  get size(): number {
    return this.dense.length;
  }

  /** The record chunk of `id` as doubles (slot `(id & CHUNK_MASK) * F_STRIDE + F_…`). */
  private fc(id: number): Float64Array {
    return this.fchunks[id >>> CHUNK_BITS] as Float64Array;
  }

  /** The record chunk of `id` as int32s (slot `(id & CHUNK_MASK) * I_STRIDE + I_…`). */
  private ic(id: number): Int32Array {
    return this.ichunks[id >>> CHUNK_BITS] as Int32Array;
  }

  /** Field `slot` (F_…) of `id`'s record. */
  private getF(id: number, slot: number): number {
    return this.fc(id)[(id & CHUNK_MASK) * F_STRIDE + slot] as number;
  }
  private setF(id: number, slot: number, v: number): void {
    this.fc(id)[(id & CHUNK_MASK) * F_STRIDE + slot] = v;
  }

  /** Field `slot` (I_…) of `id`'s record. */
  private getI(id: number, slot: number): number {
    return this.ic(id)[(id & CHUNK_MASK) * I_STRIDE + slot] as number;
  }
  private setI(id: number, slot: number, v: number): void {
    this.ic(id)[(id & CHUNK_MASK) * I_STRIDE + slot] = v;
  }

  /** Whether `id` names a live entry. */
  alive(id: number): boolean {
    return id < this.capacity && (this.getI(id, I_BITS) & LIVE_BIT) !== 0;
  }

  /** The key hash the table uses ({@link hashKey} unless a test gave another). */
  hashOf(key: string): number {
    return this.hash(key);
  }

  /** The id of `key`, or undefined when it has no entry. `h`: its {@link hashOf}, when the caller has it. */
  find(key: string, h = this.hash(key)): number | undefined {
    const slots = this.slots;
    const mask = this.mask;
    for (let s = h & mask; ; s = (s + 1) & mask) {
      const id1 = slots[2 * s + 1] as number;
      if (id1 === 0) return this.old === null ? undefined : this.findOld(key, h);
      if (slots[2 * s] === h && this.keyIs(id1 - 1, key)) return id1 - 1;
    }
  }

  /** {@link find} in the old index during a rehash (moved and removed entries are {@link MOVED} marks). */
  private findOld(key: string, h: number): number | undefined {
    const old = this.old as Int32Array;
    const mask = this.oldMask;
    for (let s = h & mask; ; s = (s + 1) & mask) {
      const id1 = old[2 * s + 1] as number;
      if (id1 === 0) return undefined;
      if (id1 > 0 && old[2 * s] === h && this.keyIs(id1 - 1, key)) return id1 - 1;
    }
  }

  private keyIs(id: number, key: string): boolean {
    const i = this.ic(id);
    const r = (id & CHUNK_MASK) * I_STRIDE;
    const off = i[r + I_KOFF] as number;
    if (off < 0) return this.longKeys.get(id) === key;
    return this.keySlab.equalsString(off, i[r + I_KLEN] as number, ((i[r + I_BITS] as number) & KWIDE_BIT) !== 0, key);
  }

  /** Bytes the key of live entry `id` takes (counted in `used_memory`). */
  keyBytes(id: number): number {
    return this.getI(id, I_KLEN);
  }

  /** The key of live entry `id` (a new string each call). */
  keyOf(id: number): string {
    const i = this.ic(id);
    const r = (id & CHUNK_MASK) * I_STRIDE;
    const off = i[r + I_KOFF] as number;
    if (off < 0) return this.longKeys.get(id) as string;
    return this.keySlab.readString(off, i[r + I_KLEN] as number, ((i[r + I_BITS] as number) & KWIDE_BIT) !== 0);
  }

  // --- fields ---------------------------------------------------------------------------------

  /** ms since the epoch; 0 = no expiry. */
  expireAt(id: number): number {
    return this.getF(id, F_EXPIRE_AT);
  }
  setExpireAt(id: number, ms: number): void {
    this.setF(id, F_EXPIRE_AT, ms);
  }
  /** ms of the last access (LRU), counted from the tier's epoch. */
  lru(id: number): number {
    return this.getF(id, F_LRU);
  }
  setLru(id: number, ms: number): void {
    this.setF(id, F_LRU, ms);
  }
  /** Bytes counted in `used_memory`. */
  mem(id: number): number {
    return this.getF(id, F_MEM);
  }
  setMem(id: number, bytes: number): void {
    this.setF(id, F_MEM, bytes);
  }
  /** Insertion order, unique per entry ever made (an AOF rewrite serialises entries older than its start; a reused id has a new seq). */
  seq(id: number): number {
    return this.getF(id, F_SEQ);
  }
  setSeq(id: number, seq: number): void {
    this.setF(id, F_SEQ, seq);
  }
  /** A string's slot in the tier's ByteSlab; negative when none (-1 on a new entry; the tier gives the negatives meanings). */
  soff(id: number): number {
    return this.getI(id, I_SOFF);
  }
  setSoff(id: number, off: number): void {
    this.setI(id, I_SOFF, off);
  }
  /** A string's length in bytes. */
  slen(id: number): number {
    return this.getI(id, I_SLEN);
  }
  setSlen(id: number, len: number): void {
    this.setI(id, I_SLEN, len);
  }
  /** Index in the tier's volatile (has-expiry) array, -1 when none. */
  vidx(id: number): number {
    return this.getI(id, I_VIDX);
  }
  setVidx(id: number, at: number): void {
    this.setI(id, I_VIDX, at);
  }
  /** Minute of the LFU counter's last decrement. */
  ldt(id: number): number {
    return this.getI(id, I_LDT);
  }
  setLdt(id: number, minute: number): void {
    this.setI(id, I_LDT, minute);
  }
  /** Redis's 8-bit logarithmic access counter (LFU). */
  lfu(id: number): number {
    return this.getI(id, I_BITS) & LFU_MASK;
  }
  setLfu(id: number, counter: number): void {
    this.setI(id, I_BITS, (this.getI(id, I_BITS) & ~LFU_MASK) | (counter & LFU_MASK));
  }
  /** Whether the held string came from an in-place edit (OBJECT ENCODING `raw`). */
  sraw(id: number): boolean {
    return (this.getI(id, I_BITS) & SRAW_BIT) !== 0;
  }
  setSraw(id: number, raw: boolean): void {
    const bits = this.getI(id, I_BITS);
    this.setI(id, I_BITS, raw ? bits | SRAW_BIT : bits & ~SRAW_BIT);
  }

  /** The AOF rewrite epoch in which this entry was already serialised (0: none). */
  dumped(id: number): number {
    return (this.coldChunks[id >>> CHUNK_BITS] as Int32Array)[(id & CHUNK_MASK) * 2 + 1] as number;
  }
  setDumped(id: number, epoch: number): void {
    (this.coldChunks[id >>> CHUNK_BITS] as Int32Array)[(id & CHUNK_MASK) * 2 + 1] = epoch;
  }

  /** Position of `id` in {@link dense}. */
  private didx(id: number): number {
    return (this.coldChunks[id >>> CHUNK_BITS] as Int32Array)[(id & CHUNK_MASK) * 2] as number;
  }
  private setDidx(id: number, at: number): void {
    (this.coldChunks[id >>> CHUNK_BITS] as Int32Array)[(id & CHUNK_MASK) * 2] = at;
  }

  // --- adding and removing --------------------------------------------------------------------

  /**
   * A new entry for `key`, which must have none: the most recently freed id, else a new one at
   * the end. Numeric fields start at 0 except `soff`/`vidx` (-1); the caller sets the rest.
   * `h`: the key's {@link hashOf}, when the caller has it.
   */
  add(key: string, value: CacheValue, ns: N, noBytes: Buffer, h = this.hash(key)): number {
    let id: number | undefined;
    while ((id = this.free.pop()) !== undefined) {
      if (id < this.top && !this.alive(id)) break; // stale after a trailing trim
    }
    if (id === undefined) {
      id = this.top;
      if (id >= this.capacity) this.grow();
    }
    if (id >= this.top) this.top = id + 1;
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
    const f = this.fc(id);
    const o = (id & CHUNK_MASK) * F_STRIDE;
    f[o + F_EXPIRE_AT] = 0;
    f[o + F_LRU] = 0;
    f[o + F_MEM] = 0;
    f[o + F_SEQ] = 0;
    const i = this.ic(id);
    const r = (id & CHUNK_MASK) * I_STRIDE;
    i[r + I_SOFF] = -1;
    i[r + I_SLEN] = 0;
    i[r + I_KOFF] = off;
    i[r + I_KLEN] = len;
    i[r + I_KHASH] = h;
    i[r + I_LDT] = 0;
    i[r + I_VIDX] = -1;
    i[r + I_BITS] = LIVE_BIT | (wide ? KWIDE_BIT : 0);
    this.setDumped(id, 0);
    this.setDidx(id, this.dense.length);
    this.dense.push(id);
    if (this.old !== null) this.rehashStep();
    else if (2 * this.dense.length > this.slots.length / 2) this.startRehash();
    this.place(h, id);
    return id;
  }

  /** Frees `id` (the caller released its bytes and volatile link); its value is dropped for the collector. */
  remove(id: number, placeholder: CacheValue, noBytes: Buffer): void {
    const i = this.ic(id);
    const r = (id & CHUNK_MASK) * I_STRIDE;
    i[r + I_BITS] = 0;
    this.values[id] = placeholder;
    this.sbuf[id] = noBytes;
    this.unindex(i[r + I_KHASH] as number, id);
    const off = i[r + I_KOFF] as number;
    if (off >= 0) this.keySlab.release(off, slotSize(i[r + I_KLEN] as number));
    else this.longKeys.delete(id);
    if (id === this.top - 1) {
      while (this.top > 0 && !this.alive(this.top - 1)) this.top--;
    } else this.free.push(id);
    const last = this.dense.pop() as number;
    if (last !== id) {
      const at = this.didx(id);
      this.dense[at] = last;
      this.setDidx(last, at);
    }
  }

  /** Forgets every entry. */
  clear(): void {
    this.top = 0;
    this.values = [];
    this.ns = [];
    this.sbuf = [];
    this.dense = [];
    this.free = [];
    this.fchunks = [];
    this.ichunks = [];
    this.coldChunks = [];
    this.capacity = 0;
    this.slots = new Int32Array(2 * INITIAL_SLOTS);
    this.mask = INITIAL_SLOTS - 1;
    this.old = null;
    this.keySlab = new ByteSlab();
    this.longKeys = new Map();
  }

  /** Puts `id` (hash `h`) in the first empty slot of its probe run. */
  private place(h: number, id: number): void {
    const slots = this.slots;
    const mask = this.mask;
    let s = h & mask;
    while ((slots[2 * s + 1] as number) !== 0) s = (s + 1) & mask;
    slots[2 * s] = h;
    slots[2 * s + 1] = id + 1;
  }

  /** Takes `id` out of the index it is in: the new one by shifting its run back, the old one by a {@link MOVED} mark. */
  private unindex(h: number, id: number): void {
    const slots = this.slots;
    const mask = this.mask;
    let hole = h & mask;
    for (;;) {
      const id1 = slots[2 * hole + 1] as number;
      if (id1 === id + 1) break;
      if (id1 === 0) {
        // Not moved yet: it is in the old index.
        const old = this.old as Int32Array;
        let s = h & this.oldMask;
        while ((old[2 * s + 1] as number) !== id + 1) s = (s + 1) & this.oldMask;
        old[2 * s + 1] = MOVED;
        return;
      }
      hole = (hole + 1) & mask;
    }
    for (let s = (hole + 1) & mask; (slots[2 * s + 1] as number) !== 0; s = (s + 1) & mask) {
      // The member at `s` may fill the hole unless its home lies cyclically in (hole, s].
      const home = (slots[2 * s] as number) & mask;
      const stays = hole <= s ? hole < home && home <= s : hole < home || home <= s;
      if (stays) continue;
      slots[2 * hole] = slots[2 * s] as number;
      slots[2 * hole + 1] = slots[2 * s + 1] as number;
      hole = s;
    }
    slots[2 * hole] = 0;
    slots[2 * hole + 1] = 0;
  }

  /**
   * Starts doubling the index: new keys go to the doubled one, and the old one's entries follow
   * {@link REHASH_STEP} slots per add. The old index has twice the entries' count in slots, so it
   * is emptied before the doubled one is half full.
   */
  private startRehash(): void {
    this.old = this.slots;
    this.oldMask = this.mask;
    this.oldCursor = 0;
    const length = this.slots.length; // 2 int32s per slot: twice the slots
    this.slots = new Int32Array(2 * length);
    this.mask = length - 1;
    this.rehashStep();
  }

  private rehashStep(): void {
    const old = this.old as Int32Array;
    const end = Math.min(this.oldCursor + REHASH_STEP, old.length / 2);
    for (let s = this.oldCursor; s < end; s++) {
      const id1 = old[2 * s + 1] as number;
      if (id1 > 0) {
        this.place(old[2 * s] as number, id1 - 1);
        old[2 * s + 1] = MOVED; // later look-ups of the old index go on past it
      }
    }
    this.oldCursor = end;
    if (end === old.length / 2) this.old = null;
  }

  /** Adds one chunk of records: no copy of the chunks before it. */
  private grow(): void {
    const f = new Float64Array(CHUNK * F_STRIDE);
    this.fchunks.push(f);
    this.ichunks.push(new Int32Array(f.buffer));
    this.coldChunks.push(new Int32Array(CHUNK * 2));
    this.capacity += CHUNK;
  }
}
