/** The in-memory view: the latest revision of every live key, for point reads and ordered range scans. */
import { compareKeys, type KeyValue } from '../mvcc/index.js';

/** Up to this many pending changes are spliced into the sorted array one by one; more are merged. */
const SPLICE_LIMIT = 256;

/** A code unit where UTF-16 order and UTF-8 byte order can disagree (surrogates, U+E000–U+FFFF). */
const HIGH_UNIT = /[\ud800-\uffff]/;

/**
 * Sorts keys in UTF-8 byte order, in place: with the engine's native string order (UTF-16 code
 * units, several times faster than a comparator at a million keys) when no key holds a code unit
 * at or above U+D800, where the two orders agree; with {@link compareKeys} otherwise.
 */
function sortKeys(keys: string[]): string[] {
  for (const k of keys) if (HIGH_UNIT.test(k)) return keys.sort(compareKeys);
  return keys.sort();
}

/**
 * A sorted map from key to its latest {@link KeyValue}. Point reads are a hash lookup; ranges walk
 * a sorted key array. New keys are kept in a small unsorted side list and merged on the next
 * range scan, and removed keys are filtered then, so a stream of creates costs O(1) each and a
 * scan after k changes costs O(k log n) splices for small k, or one O(n + k log k) merge.
 */
export class View {
  private readonly map = new Map<string, KeyValue>();
  private sorted: string[] = [];
  private added: string[] = [];
  private removed: string[] = [];
  /** Total UTF-8 bytes of keys and values held, for the keys/bytes gauges. */
  bytes = 0;

  /** The number of live keys. */
  get size(): number {
    return this.map.size;
  }

  /** The latest kv of `key`, or undefined when it does not exist. */
  get(key: string): KeyValue | undefined {
    return this.map.get(key);
  }

  /** Stores `kv` as the latest state of its key. */
  set(kv: KeyValue): void {
    const old = this.map.get(kv.key);
    if (old === undefined) {
      // A key past every sorted key extends the sorted index as it is (a view snapshot loads in
      // key order): no sort of a million keys at the first range read.
      const last = this.sorted.length === 0 ? undefined : this.sorted[this.sorted.length - 1];
      if (this.added.length === 0 && (last === undefined || compareKeys(last, kv.key) < 0)) this.sorted.push(kv.key);
      else this.added.push(kv.key);
      this.bytes += Buffer.byteLength(kv.key);
    } else {
      this.bytes -= old.value.byteLength;
    }
    this.bytes += kv.value.byteLength;
    this.map.set(kv.key, kv);
    if (old === undefined) this.bound();
  }

  // Churn without range scans must not grow the pending lists without limit: settle once they
  // outgrow the map (amortised O(1) per change).
  private bound(): void {
    if (this.added.length + this.removed.length > Math.max(4096, this.map.size)) this.settle();
  }

  /** Removes `key`; returns its last kv when it existed. */
  delete(key: string): KeyValue | undefined {
    const old = this.map.get(key);
    if (old === undefined) return undefined;
    this.map.delete(key);
    this.removed.push(key);
    this.bound();
    this.bytes -= Buffer.byteLength(old.key) + old.value.byteLength;
    return old;
  }

  /** Removes every key. */
  clear(): void {
    this.map.clear();
    this.sorted = [];
    this.added = [];
    this.removed = [];
    this.bytes = 0;
  }

  private settle(): void {
    if (this.added.length === 0 && this.removed.length === 0) return;
    // A few changes: binary-search and splice each (a native memmove), instead of an O(n) merge.
    if (this.added.length + this.removed.length <= SPLICE_LIMIT) {
      for (const k of this.removed) {
        if (this.map.has(k)) continue; // re-created since
        const i = this.lowerBound(k);
        if (this.sorted[i] === k) this.sorted.splice(i, 1);
      }
      for (const k of this.added) {
        if (!this.map.has(k)) continue; // deleted since
        const i = this.lowerBound(k);
        if (this.sorted[i] !== k) this.sorted.splice(i, 0, k);
      }
      this.added = [];
      this.removed = [];
      return;
    }
    if (this.removed.length === 0) {
      this.mergeAdded();
      return;
    }
    const added = this.added.length > 0 ? sortKeys([...new Set(this.added)]) : [];
    const out: string[] = [];
    const old = this.sorted;
    let i = 0;
    let j = 0;
    const keep = (k: string): void => {
      if (this.map.has(k) && (out.length === 0 || out[out.length - 1] !== k)) out.push(k);
    };
    while (i < old.length && j < added.length) {
      const c = compareKeys(old[i] as string, added[j] as string);
      if (c <= 0) keep(old[i++] as string);
      else keep(added[j++] as string);
    }
    while (i < old.length) keep(old[i++] as string);
    while (j < added.length) keep(added[j++] as string);
    this.sorted = out;
    this.added = [];
    this.removed = [];
  }

  /**
   * Merges the added keys into the sorted index when nothing was removed since the last merge: then
   * every sorted key is live and no added key is among them (a key is added only when absent
   * from the map, which for a sorted key means it was removed), so the sorted runs between added
   * keys are copied without a lookup or a comparison each — a few hundred keys from the log
   * after a view snapshot of a million cost one tight copy, not a million map lookups.
   */
  private mergeAdded(): void {
    const added = sortKeys([...new Set(this.added)]);
    const old = this.sorted;
    const out: string[] = new Array(old.length + added.length);
    let o = 0;
    let from = 0;
    for (const k of added) {
      if (!this.map.has(k)) continue;
      const at = this.lowerBound(k, from);
      for (let i = from; i < at; i++) out[o++] = old[i] as string;
      out[o++] = k;
      from = at;
    }
    for (let i = from; i < old.length; i++) out[o++] = old[i] as string;
    out.length = o;
    this.sorted = out;
    this.added = [];
  }

  private lowerBound(key: string, from = 0): number {
    let lo = from;
    let hi = this.sorted.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (compareKeys(this.sorted[mid] as string, key) < 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /**
   * Visits the kvs in `[key, rangeEnd)` in key order (`rangeEnd` null: unbounded; undefined: the
   * single key). The visitor returns false to stop.
   */
  scan(key: string, rangeEnd: string | null | undefined, visit: (kv: KeyValue) => boolean | void): void {
    if (rangeEnd === undefined) {
      const kv = this.map.get(key);
      if (kv !== undefined) visit(kv);
      return;
    }
    this.settle();
    for (let i = this.lowerBound(key); i < this.sorted.length; i++) {
      const k = this.sorted[i] as string;
      if (rangeEnd !== null && compareKeys(k, rangeEnd) >= 0) break;
      const kv = this.map.get(k);
      if (kv !== undefined && visit(kv) === false) break;
    }
  }

  /** Every live kv in key order (one array of references: the kvs themselves are never changed in place). */
  sortedValues(): KeyValue[] {
    this.settle();
    const out: KeyValue[] = new Array(this.map.size);
    let n = 0;
    for (const k of this.sorted) {
      const kv = this.map.get(k);
      if (kv !== undefined) out[n++] = kv;
    }
    out.length = n;
    return out;
  }

  /** Counts the kvs in a range without materialising them. */
  count(key: string, rangeEnd: string | null | undefined): number {
    if (rangeEnd === undefined) return this.map.has(key) ? 1 : 0;
    if (key === '' && rangeEnd === null) return this.map.size;
    this.settle();
    const start = this.lowerBound(key);
    const end = rangeEnd === null ? this.sorted.length : this.lowerBound(rangeEnd);
    return Math.max(0, end - start);
  }
}
