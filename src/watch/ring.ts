/** A bounded in-memory ring of recent committed revisions, so that watchers a little behind catch up without a backend read. */
import type { RevisionEvents } from '../kv/index.js';

/** Approximate bytes one revision holds in memory (keys, values, prevKvs and object overhead). */
export function revisionBytes(rev: RevisionEvents): number {
  let n = 64 + (rev.meta?.length ?? 0);
  for (const ev of rev.events) {
    n += 96 + ev.kv.key.length * 2 + ev.kv.value.byteLength;
    if (ev.prevKv) n += 64 + ev.prevKv.key.length * 2 + ev.prevKv.value.byteLength;
  }
  return n;
}

/**
 * The most recent revisions, oldest first, bounded by a count and a byte budget. `floor` is the
 * lowest revision from which the ring is complete: every revision in `[floor, last]` is held, so
 * a watcher whose next revision is at least `floor` can be caught up from memory alone.
 */
export class RevisionRing {
  private buf: RevisionEvents[] = [];
  private sizes: number[] = [];
  private start = 0;
  private _bytes = 0;
  /** The lowest revision the ring is complete from (the ring holds `[floor, last]`). */
  floor: number;

  /** @param floor the first revision this ring will see (the store revision + 1 at start). */
  constructor(floor: number) {
    this.floor = floor;
  }

  /** The number of revisions held. */
  get length(): number {
    return this.buf.length - this.start;
  }

  /** Approximate bytes held. */
  get bytes(): number {
    return this._bytes;
  }

  /** The revision at position `i` (0 = oldest). */
  at(i: number): RevisionEvents | undefined {
    return this.buf[this.start + i];
  }

  /**
   * Appends the next revision and evicts the oldest ones beyond `maxCount` revisions or `maxBytes`.
   * A revision that does not follow the last one (a gap) empties the ring first, since the ring
   * must stay contiguous to be trusted.
   */
  push(rev: RevisionEvents, maxCount: number, maxBytes: number): void {
    const last = this.at(this.length - 1);
    const expected = last === undefined ? this.floor : last.revision + 1;
    if (rev.revision !== expected) this.reset(rev.revision);
    const size = revisionBytes(rev);
    this.buf.push(rev);
    this.sizes.push(size);
    this._bytes += size;
    this.trim(maxCount, maxBytes);
  }

  /** Evicts the oldest revisions until at most `maxCount` revisions and `maxBytes` remain (0 count empties it). */
  trim(maxCount: number, maxBytes: number): void {
    while (this.length > 0 && (this.length > maxCount || (this._bytes > maxBytes && this.length > 1))) {
      const old = this.buf[this.start] as RevisionEvents;
      this._bytes -= this.sizes[this.start] as number;
      this.start++;
      this.floor = old.revision + 1;
    }
    // Drop evicted slots now and then so the arrays do not grow without bound.
    if (this.start > 1024 && this.start * 2 > this.buf.length) {
      this.buf = this.buf.slice(this.start);
      this.sizes = this.sizes.slice(this.start);
      this.start = 0;
    }
  }

  /** Empties the ring; it is then complete from `floor`. */
  reset(floor: number): void {
    this.buf = [];
    this.sizes = [];
    this.start = 0;
    this._bytes = 0;
    this.floor = floor;
  }

  /** The position of the first held revision ≥ `revision`, or `length` when there is none. */
  indexOf(revision: number): number {
    let lo = 0;
    let hi = this.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.at(mid) as RevisionEvents).revision < revision) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}
