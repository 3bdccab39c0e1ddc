/**
 * The value types a cache entry holds (Redis's string, hash, list, set and sorted set), with the
 * data structures behind lists (a ring-buffer deque) and sorted sets (score map + ordered array).
 */

/**
 * How hash fields, set members and sorted-set members are held as JS strings: one character per
 * byte (`latin1`), so any byte sequence round-trips exactly (Redis members are binary-safe).
 * Convert with {@link memberFromBytes} / {@link memberToBytes}.
 */
export const MEMBER_ENCODING: BufferEncoding = 'latin1';

/** A member/field string from its bytes (see {@link MEMBER_ENCODING}). */
export function memberFromBytes(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString(MEMBER_ENCODING);
}

/** The bytes of a member/field string (see {@link MEMBER_ENCODING}). */
export function memberToBytes(s: string): Buffer {
  return Buffer.from(s, MEMBER_ENCODING);
}

/**
 * A double-ended queue of values (Redis's list): O(1) push/pop at both ends and O(1) index
 * access; inserts and removals in the middle are O(n).
 */
export class Deque<T> {
  private buf: (T | undefined)[];
  private head = 0;
  private len = 0;

  constructor(items?: Iterable<T>) {
    this.buf = new Array<T | undefined>(8);
    if (items !== undefined) for (const it of items) this.pushBack(it);
  }

  /** Number of elements. */
  get length(): number {
    return this.len;
  }

  private grow(): void {
    const next = new Array<T | undefined>(this.buf.length * 2);
    for (let i = 0; i < this.len; i++) next[i] = this.buf[(this.head + i) % this.buf.length];
    this.buf = next;
    this.head = 0;
  }

  /** Appends at the tail (RPUSH). */
  pushBack(v: T): void {
    if (this.len === this.buf.length) this.grow();
    this.buf[(this.head + this.len) % this.buf.length] = v;
    this.len++;
  }

  /** Prepends at the head (LPUSH). */
  pushFront(v: T): void {
    if (this.len === this.buf.length) this.grow();
    this.head = (this.head - 1 + this.buf.length) % this.buf.length;
    this.buf[this.head] = v;
    this.len++;
  }

  /** Removes and returns the head (LPOP), or undefined when empty. */
  popFront(): T | undefined {
    if (this.len === 0) return undefined;
    const v = this.buf[this.head];
    this.buf[this.head] = undefined;
    this.head = (this.head + 1) % this.buf.length;
    this.len--;
    return v;
  }

  /** Removes and returns the tail (RPOP), or undefined when empty. */
  popBack(): T | undefined {
    if (this.len === 0) return undefined;
    const i = (this.head + this.len - 1) % this.buf.length;
    const v = this.buf[i];
    this.buf[i] = undefined;
    this.len--;
    return v;
  }

  /** The element at `index` (0-based; negative counts from the tail, -1 is the last), or undefined. */
  at(index: number): T | undefined {
    const i = index < 0 ? this.len + index : index;
    if (i < 0 || i >= this.len) return undefined;
    return this.buf[(this.head + i) % this.buf.length];
  }

  /** Replaces the element at `index` (negative counts from the tail). @returns false when out of range. */
  set(index: number, v: T): boolean {
    const i = index < 0 ? this.len + index : index;
    if (i < 0 || i >= this.len) return false;
    this.buf[(this.head + i) % this.buf.length] = v;
    return true;
  }

  /** Elements `[start, stop]` inclusive, Redis LRANGE index rules (negative from the tail, clamped). */
  range(start: number, stop: number): T[] {
    let s = start < 0 ? this.len + start : start;
    let e = stop < 0 ? this.len + stop : stop;
    if (s < 0) s = 0;
    if (e >= this.len) e = this.len - 1;
    const out: T[] = [];
    for (let i = s; i <= e; i++) out.push(this.buf[(this.head + i) % this.buf.length] as T);
    return out;
  }

  /** Every element, head to tail. */
  toArray(): T[] {
    return this.range(0, -1);
  }

  /** Replaces the whole content (used by LINSERT, LREM, LTRIM after computing the new sequence). */
  replaceAll(items: T[]): void {
    let cap = 8;
    while (cap < items.length) cap *= 2;
    this.buf = new Array<T | undefined>(cap);
    for (let i = 0; i < items.length; i++) this.buf[i] = items[i];
    this.head = 0;
    this.len = items.length;
  }

  *[Symbol.iterator](): IterableIterator<T> {
    for (let i = 0; i < this.len; i++) yield this.buf[(this.head + i) % this.buf.length] as T;
  }
}

/** One bound of a score range: a number (±Infinity allowed) and whether it is exclusive (`(1.5`). */
export interface ScoreBound {
  value: number;
  exclusive: boolean;
}

/**
 * One bound of a lex range (ZRANGEBYLEX): `-`/`+` are the open ends; otherwise a member string
 * (see {@link MEMBER_ENCODING}) with `[` inclusive or `(` exclusive.
 */
export type LexBound = { kind: 'min' } | { kind: 'max' } | { kind: 'value'; value: string; exclusive: boolean };

/** A member with its score. */
export interface ScoredMember {
  member: string;
  score: number;
}

/** Orders by score, then by member bytes (Redis's tie-break). */
function cmp(aScore: number, aMember: string, bScore: number, bMember: string): number {
  if (aScore !== bScore) return aScore < bScore ? -1 : 1;
  return aMember < bMember ? -1 : aMember > bMember ? 1 : 0;
}

/**
 * A sorted set (Redis's zset): score lookup by member in O(1), rank and range by rank, score or
 * lex in O(log n + m). Inserts and removals are O(n) array moves, which stays fast (memmove) for
 * the leaderboard sizes a cache holds.
 */
export class SortedSet {
  private readonly scores = new Map<string, number>();
  private readonly order: ScoredMember[] = [];

  /** Number of members (ZCARD). */
  get size(): number {
    return this.order.length;
  }

  /** The score of `member`, or undefined (ZSCORE). */
  score(member: string): number | undefined {
    return this.scores.get(member);
  }

  private indexOf(score: number, member: string): number {
    let lo = 0;
    let hi = this.order.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const m = this.order[mid] as ScoredMember;
      if (cmp(m.score, m.member, score, member) < 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /**
   * Sets the score of `member` (ZADD). @returns `added` when the member is new, `updated` when
   * its score changed, `unchanged` otherwise. NaN scores are refused by the caller (Redis: "not a valid float").
   */
  add(member: string, score: number): 'added' | 'updated' | 'unchanged' {
    const old = this.scores.get(member);
    if (old !== undefined) {
      if (old === score) return 'unchanged';
      this.order.splice(this.indexOf(old, member), 1);
    }
    this.scores.set(member, score);
    this.order.splice(this.indexOf(score, member), 0, { member, score });
    return old === undefined ? 'added' : 'updated';
  }

  /** Removes `member` (ZREM). @returns whether it was there. */
  remove(member: string): boolean {
    const old = this.scores.get(member);
    if (old === undefined) return false;
    this.order.splice(this.indexOf(old, member), 1);
    this.scores.delete(member);
    return true;
  }

  /** 0-based rank of `member` in ascending order (or descending with `reverse`), or undefined (ZRANK/ZREVRANK). */
  rank(member: string, reverse = false): number | undefined {
    const s = this.scores.get(member);
    if (s === undefined) return undefined;
    const i = this.indexOf(s, member);
    return reverse ? this.order.length - 1 - i : i;
  }

  /** Members with ranks `[start, stop]` inclusive, Redis ZRANGE index rules (negative from the end, clamped). */
  rangeByRank(start: number, stop: number, reverse = false): ScoredMember[] {
    const n = this.order.length;
    let s = start < 0 ? n + start : start;
    let e = stop < 0 ? n + stop : stop;
    if (s < 0) s = 0;
    if (e >= n) e = n - 1;
    if (s > e) return [];
    if (!reverse) return this.order.slice(s, e + 1);
    const out: ScoredMember[] = [];
    for (let i = n - 1 - s; i >= n - 1 - e; i--) out.push(this.order[i] as ScoredMember);
    return out;
  }

  private firstAtOrAbove(min: ScoreBound): number {
    let lo = 0;
    let hi = this.order.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const s = (this.order[mid] as ScoredMember).score;
      if (s < min.value || (min.exclusive && s === min.value)) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Members with `min ≤ score ≤ max` (bounds may be exclusive), ascending; `offset`/`count` as ZRANGEBYSCORE LIMIT (count < 0: all). */
  rangeByScore(min: ScoreBound, max: ScoreBound, offset = 0, count = -1): ScoredMember[] {
    const out: ScoredMember[] = [];
    let skipped = 0;
    for (let i = this.firstAtOrAbove(min); i < this.order.length; i++) {
      const m = this.order[i] as ScoredMember;
      if (m.score > max.value || (max.exclusive && m.score === max.value)) break;
      if (skipped < offset) {
        skipped++;
        continue;
      }
      if (count >= 0 && out.length >= count) break;
      out.push(m);
    }
    return out;
  }

  /** How many members have a score in the range (ZCOUNT). */
  countByScore(min: ScoreBound, max: ScoreBound): number {
    return this.rangeByScore(min, max).length;
  }

  /**
   * Members between two lex bounds, ascending (ZRANGEBYLEX). As in Redis, meaningful only when
   * all members share one score; members are compared bytewise.
   */
  rangeByLex(min: LexBound, max: LexBound, offset = 0, count = -1): ScoredMember[] {
    const out: ScoredMember[] = [];
    let skipped = 0;
    const aboveMin = (m: string): boolean =>
      min.kind === 'min' ? true : min.kind === 'max' ? false : min.exclusive ? m > min.value : m >= min.value;
    const belowMax = (m: string): boolean =>
      max.kind === 'max' ? true : max.kind === 'min' ? false : max.exclusive ? m < max.value : m <= max.value;
    for (const m of this.order) {
      if (!aboveMin(m.member)) continue;
      if (!belowMax(m.member)) break;
      if (skipped < offset) {
        skipped++;
        continue;
      }
      if (count >= 0 && out.length >= count) break;
      out.push(m);
    }
    return out;
  }

  /** Every member in ascending order (score, then member). */
  entries(): readonly ScoredMember[] {
    return this.order;
  }
}

/**
 * A cache entry's value, by Redis type. Strings are bytes; hash fields and set/zset members are
 * strings in {@link MEMBER_ENCODING}. Values are mutated in place by the RESP layer between
 * {@link CacheTier.lookupWrite} and {@link CacheTier.modified}.
 */
export type CacheValue =
  | { type: 'string'; value: Buffer }
  | { type: 'hash'; value: Map<string, Buffer> }
  | { type: 'list'; value: Deque<Buffer> }
  | { type: 'set'; value: Set<string> }
  | { type: 'zset'; value: SortedSet };

/** Strings that Redis would hold `raw` (results of in-place edits), held weakly: a replaced value drops out by itself. */
const rawStrings = new WeakSet<Buffer>();

/** Marks `b` as the product of an in-place string edit (OBJECT ENCODING then answers `raw`, as Redis does). */
export function markRaw(b: Buffer): void {
  rawStrings.add(b);
}

/** Whether `b` was marked by {@link markRaw}. */
export function isRaw(b: Buffer): boolean {
  return rawStrings.has(b);
}

/** The Redis type name of a value, as TYPE and SCAN … TYPE spell it. */
export type CacheValueType = CacheValue['type'];

/**
 * Per-entry bytes counted on top of key and value: the key string's header, its map slot, the
 * entry's columns (src/cache/entries.ts: ~70 bytes of typed arrays and four array slots) and its
 * sampling slot. Calibrated with bench/cache-memory.ts (Node 20): for 1,000,000 keys of 100-byte
 * strings the counted `used_memory` is within a few percent of the heap and buffer growth
 * measured after a full GC (290 B/key with columns; it was 240 with one object per entry).
 */
export const ENTRY_OVERHEAD_BYTES = 160;

/** Bytes counted per Buffer object besides its bytes (the typed-array object on the heap). */
const BUFFER_OVERHEAD_BYTES = 120;

/** Bytes counted for a string value held by the tier besides its buffer's size (that buffer's object). */
export const STRING_OVERHEAD_BYTES = BUFFER_OVERHEAD_BYTES;

/**
 * The memory a value is counted as, in bytes: payload bytes plus a per-element overhead (the
 * counting behind `used_memory` and `maxmemory`; an estimate of the heap it holds, calibrated as
 * {@link ENTRY_OVERHEAD_BYTES} says, not an exact measure).
 */
export function valueMemory(v: CacheValue): number {
  switch (v.type) {
    case 'string':
      return v.value.length + BUFFER_OVERHEAD_BYTES;
    case 'hash': {
      let n = 64;
      for (const [f, b] of v.value) n += f.length + b.length + BUFFER_OVERHEAD_BYTES + 64;
      return n;
    }
    case 'list': {
      let n = 64;
      for (const b of v.value) n += b.length + BUFFER_OVERHEAD_BYTES + 8;
      return n;
    }
    case 'set': {
      let n = 64;
      for (const m of v.value) n += m.length + 48;
      return n;
    }
    case 'zset': {
      let n = 96;
      for (const m of v.value.entries()) n += m.member.length + 112;
      return n;
    }
  }
}
