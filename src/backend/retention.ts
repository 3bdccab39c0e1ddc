/**
 * History retention, shared by every backend: which superseded log rows of a key range a
 * namespace's `historyRetention` policy lets go, found by a bounded scan, and removed in small
 * batches that each raise the range's floor in the same transaction as the delete.
 */
import type { HistoryFloor, PruneResult, RetentionRule } from './types.js';

/** The default grace of {@link RetentionRule.graceMs}, in ms: a row superseded less than a minute ago stays. */
export const DEFAULT_RETENTION_GRACE_MS = 60_000;

/** Log rows read per scan step and removed per batch, so a pass never holds the write lock for long. */
export const PRUNE_PAGE_ROWS = 1000;

/** What the scan needs of one log row: no value is read. */
export interface PruneRow {
  key: string;
  revision: number;
  /** Commit time in ms since the epoch. */
  ts: number;
}

/** The storage operations a retention pass is made of; each backend supplies them. */
export interface PruneSource {
  /**
   * Rows of keys in `[from, rangeEnd)` (`from` itself excluded when `exclusive`; `rangeEnd` null:
   * unbounded), ordered by key then revision ascending, at most `limit`.
   */
  scan(from: string, exclusive: boolean, rangeEnd: string | null, limit: number): Promise<PruneRow[]>;
  /** Rows of one key below `belowRevision`, newest first, at most `limit`. */
  scanKeyDesc(key: string, belowRevision: number, limit: number): Promise<PruneRow[]>;
  /**
   * In ONE transaction: raises the floor of `[key, rangeEnd)` to at least `floor`, then deletes
   * `rows`; resolves with how many rows were deleted. Readers read rows first and floors after,
   * so one that finds rows missing always finds the raised floor.
   */
  remove(key: string, rangeEnd: string | null, floor: number, rows: PruneRow[]): Promise<number>;
  /** True once the backend is closing: the pass stops between batches. */
  stopped(): boolean;
}

/**
 * Removes the rows of `[key, rangeEnd)` that `rule` lets go (see {@link RetentionRule}): a row
 * is removable when a newer row of its key exists, it is beyond the newest `versions` rows of
 * its key (tombstones count as rows), and its successor (the row that superseded it) was
 * written at least `max(graceMs, maxAgeMs)` ms before `nowMs`. Rows above `maxRevision` are
 * never removed (a follower may not have applied them yet). The latest row of a key is never
 * removed. The floor it reports is the highest revision of a successor of a removed row: the
 * range is then exactly as if compacted at that revision (a read at it, or a watch above it,
 * sees everything).
 */
export async function pruneRange(
  src: PruneSource,
  key: string,
  rangeEnd: string | null,
  rule: RetentionRule,
  nowMs: number,
  maxRevision = Number.MAX_SAFE_INTEGER,
): Promise<PruneResult> {
  const keep = Math.max(1, rule.versions ?? 1);
  const cutoff = nowMs - Math.max(rule.graceMs, rule.maxAgeMs ?? 0);
  let pending: PruneRow[] = [];
  let pendingFloor = 0;
  const out: PruneResult = { removed: 0, floor: 0 };
  const consider = (row: PruneRow, rank: number, succ: PruneRow): void => {
    if (rank <= keep || succ.ts > cutoff || row.revision > maxRevision) return;
    pending.push(row);
    pendingFloor = Math.max(pendingFloor, succ.revision);
  };
  const flush = async (): Promise<void> => {
    if (pending.length === 0) return;
    const rows = pending;
    const floor = pendingFloor;
    pending = [];
    pendingFloor = 0;
    out.removed += await src.remove(key, rangeEnd, floor, rows);
    out.floor = Math.max(out.floor, floor);
    // Let requests and commits run between batches.
    await new Promise((r) => setImmediate(r));
  };
  /** Walks one key newest first in pages (a key with more rows than a page). */
  const walkKey = async (k: string): Promise<void> => {
    let below = Number.MAX_SAFE_INTEGER;
    let rank = 0;
    let succ: PruneRow | undefined;
    for (;;) {
      if (src.stopped()) return;
      const rows = await src.scanKeyDesc(k, below, PRUNE_PAGE_ROWS);
      for (const row of rows) {
        rank++;
        if (succ !== undefined) consider(row, rank, succ);
        succ = row;
      }
      if (pending.length >= PRUNE_PAGE_ROWS) await flush();
      const last = rows[rows.length - 1];
      if (last === undefined || rows.length < PRUNE_PAGE_ROWS) return;
      below = last.revision;
      await new Promise((r) => setImmediate(r));
    }
  };
  let from = key;
  let exclusive = false;
  for (;;) {
    if (src.stopped()) return out;
    const rows = await src.scan(from, exclusive, rangeEnd, PRUNE_PAGE_ROWS);
    if (rows.length === 0) break;
    const full = rows.length === PRUNE_PAGE_ROWS;
    const lastKey = (rows[rows.length - 1] as PruneRow).key;
    // Rows of one key are contiguous; the last key of a full page may continue on the next page.
    let i = 0;
    while (i < rows.length) {
      let j = i;
      const k = (rows[i] as PruneRow).key;
      while (j < rows.length && (rows[j] as PruneRow).key === k) j++;
      if (!(full && k === lastKey)) {
        const n = j - i;
        for (let x = i; x < j - 1; x++) consider(rows[x] as PruneRow, n - (x - i), rows[x + 1] as PruneRow);
      }
      i = j;
    }
    if (full) await walkKey(lastKey);
    if (pending.length >= PRUNE_PAGE_ROWS) await flush();
    if (!full) break;
    from = lastKey;
    exclusive = true;
    // A synchronous store (SQLite) reads on the event loop: let requests run between pages.
    await new Promise((r) => setImmediate(r));
  }
  await flush();
  return out;
}

/**
 * The effective compact revision of `[key, rangeEnd)` (undefined: the single key; null:
 * unbounded): the highest of `global` and the floors of every range overlapping it.
 * `compare` orders keys (UTF-8 byte order).
 */
export function floorFor(
  floors: readonly HistoryFloor[],
  global: number,
  key: string,
  rangeEnd: string | null | undefined,
  compare: (a: string, b: string) => number,
): number {
  let c = global;
  for (const f of floors) {
    if (f.revision <= c) continue;
    // [f.key, f.rangeEnd) overlaps the read range: it starts before the read range ends and ends after it starts.
    const startsBeforeEnd = rangeEnd === undefined ? compare(f.key, key) <= 0 : rangeEnd === null || compare(f.key, rangeEnd) < 0;
    const endsAfterStart = f.rangeEnd === null || compare(f.rangeEnd, key) > 0;
    if (startsBeforeEnd && endsAfterStart) c = f.revision;
  }
  return c;
}
