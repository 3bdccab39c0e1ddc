/**
 * Every write the SQLite backend makes, prepared on one connection: group commits, compaction
 * steps, audit appends and pruning, history retention. Used in process (`:memory:` stores) and by the writer thread.
 */
import type Database from 'better-sqlite3';
import type { AuditRecord } from '../../mvcc/index.js';
import type { AdoptionRow, CommitBatch } from '../types.js';

/** A write the backend asks the writer to make; `commit` is the hot one. */
export type WriteOp =
  | { op: 'commit'; batch: CommitBatch; head: number }
  /** A commit as it crosses to the writer thread (see {@link packCommit}). */
  | { op: 'commitPacked'; batch: PackedBatch; head: number }
  | { op: 'setMeta'; name: string; value: number }
  /** Deletes the superseded rows of revisions (lo, hi]; answers the step's own time in ms. */
  | { op: 'compactStep'; lo: number; hi: number; revision: number }
  | { op: 'appendAudit'; records: AuditRecord[] }
  | { op: 'pruneAudit'; beforeTs: number }
  /** History retention: raises the floor of `[key, rangeEnd)` ('' = unbounded) and deletes `rows` ([key, revision]) in one transaction. */
  | { op: 'pruneHistory'; key: string; rangeEnd: string; floor: number; rows: [string, number][] }
  /** Rollout adoption reports (issue 16): upserts keyed by (rollout, client), outside the log. */
  | { op: 'recordAdoption'; rows: AdoptionRow[] }
  /** Deletes adoption rows of rollouts not in `keep` and rows seen before `beforeMs`. */
  | { op: 'pruneAdoption'; keep: string[]; beforeMs: number }
  /** Writes nothing: its reply says every write sent before it is done (writes apply in order). */
  | { op: 'barrier' }
  /** A passive WAL checkpoint (for the WAL grown by lone writes made on another connection). */
  | { op: 'checkpoint' };

/** Columns per log entry in {@link PackedBatch.entries}: key, revision, createRevision, version, lease, deleted, ts, meta, encrypted, value length. */
const ENTRY_COLS = 10;
/** Columns per audit record in {@link PackedBatch.audit}: the 11 columns of the audit table after id. */
const AUDIT_COLS = 11;

/**
 * A {@link CommitBatch} flattened for `postMessage`: every value copied once into `values` (an
 * ArrayBuffer the sender transfers, not copies) and every other field in flat arrays of
 * primitives. A value is usually a view of Node's shared 8 KiB allocation pool, and the
 * structured clone of a view copies its whole backing buffer: cloned as objects, a batch of 64
 * 256-byte values copied ~512 KiB on each thread instead of 16 KiB.
 */
export interface PackedBatch {
  revision: number;
  values: ArrayBuffer;
  entries: (string | number | null)[];
  leaseGrants: (string | number | null)[];
  leaseRevokes: number[];
  audit: (string | number | null)[];
}

/** Flattens `batch` for the writer thread; transfer `values` with the message. */
export function packCommit(batch: CommitBatch): PackedBatch {
  let bytes = 0;
  for (const e of batch.entries) bytes += e.value.byteLength;
  const values = new Uint8Array(bytes);
  const entries: (string | number | null)[] = new Array(batch.entries.length * ENTRY_COLS);
  let at = 0;
  let i = 0;
  for (const e of batch.entries) {
    values.set(e.value, at);
    at += e.value.byteLength;
    entries[i++] = e.key;
    entries[i++] = e.revision;
    entries[i++] = e.createRevision;
    entries[i++] = e.version;
    entries[i++] = e.lease;
    entries[i++] = e.deleted ? 1 : 0;
    entries[i++] = e.ts;
    entries[i++] = e.meta;
    entries[i++] = e.encrypted === true ? 1 : 0;
    entries[i++] = e.value.byteLength;
  }
  const leaseGrants: (string | number | null)[] = [];
  for (const l of batch.leaseGrants) leaseGrants.push(l.id, l.grantedTtl, l.expiresAt, l.owner ?? null);
  const audit: (string | number | null)[] = [];
  for (const a of batch.audit ?? []) {
    audit.push(a.ts, a.principal, a.action, a.key, a.oldVersion, a.newVersion, a.revision, a.requestId, a.source, a.outcome, a.details);
  }
  return { revision: batch.revision, values: values.buffer, entries, leaseGrants, leaseRevokes: batch.leaseRevokes, audit };
}

/**
 * Audit records left out of `audit_key_index` before the writer indexes them (a query scans at
 * most about this many rows besides the index); also the most indexed per step.
 */
export const AUDIT_INDEX_BATCH = 2048;

/** The writes of one connection: `apply` makes a {@link WriteOp}; `maintain` does deferred upkeep. */
export interface Writer {
  /** Applies one write, synchronously and durably; resolves its number (rows changed, where that means something). */
  apply(w: WriteOp): number;
  /**
   * Deferred upkeep between writes: adds up to {@link AUDIT_INDEX_BATCH} audit records to
   * `audit_key_index` (in key order, one transaction) once that many are waiting. Returns true
   * when it did something (call it again). Run it after answering a write, not before.
   */
  maintain(): boolean;
}

/** Prepares the writes on `db` (see {@link Writer}). */
export function prepareWrites(db: Database.Database): Writer {
  const setMeta = db.prepare<[number, string]>('UPDATE meta SET value = ? WHERE name = ?');
  // setMeta ops may name a row that does not exist yet (view_snapshot_id).
  const upsertMeta = db.prepare<[string, number]>('INSERT INTO meta (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value');
  const insertLog = db.prepare(
    'INSERT INTO kv_log (key, revision, create_revision, version, lease, value, deleted, ts, meta, encrypted) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
  );
  const insertLease = db.prepare<[number, number, number, string | null]>('INSERT OR REPLACE INTO leases (id, ttl, expires_at, owner) VALUES (?, ?, ?, ?)');
  const deleteLease = db.prepare<[number]>('DELETE FROM leases WHERE id = ?');
  const insertAudit = db.prepare(
    `INSERT INTO audit (ts, principal, action, key, old_version, new_version, revision, request_id, source, outcome, details)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  );
  const compactStep = db.prepare<[number, number, number, number]>(
    `DELETE FROM kv_log
      WHERE revision > ? AND revision <= ?
        AND (deleted = 1 OR EXISTS (
              SELECT 1 FROM kv_log n WHERE n.key = kv_log.key AND n.revision > kv_log.revision AND n.revision <= ?))
        AND revision <= ?`,
  );
  // The newest record always stays: ids are rowids, and an emptied table would hand out ids from 1
  // again (below audit_indexed_id, and below the ids readers paginate with).
  const pruneAuditIndex = db.prepare<[number]>(
    `DELETE FROM audit_key_index WHERE (key, id) IN (
       SELECT key, id FROM audit WHERE ts < ? AND key IS NOT NULL AND id < (SELECT max(id) FROM audit))`,
  );
  const pruneAuditRows = db.prepare<[number]>('DELETE FROM audit WHERE ts < ? AND id < (SELECT max(id) FROM audit)');
  const pruneAudit = db.transaction((beforeTs: number) => {
    pruneAuditIndex.run(beforeTs);
    return pruneAuditRows.run(beforeTs).changes;
  });
  const indexAudit = db.prepare<[number, number]>(
    'INSERT OR IGNORE INTO audit_key_index (key, id) SELECT key, id FROM audit WHERE id > ? AND id <= ? AND key IS NOT NULL ORDER BY key, id',
  );
  const readIndexedId = db.prepare("SELECT value FROM meta WHERE name = 'audit_indexed_id'");
  const maxAuditId = db.prepare('SELECT coalesce(max(id), 0) AS m FROM audit');
  let indexedId = (readIndexedId.get() as { value: number } | undefined)?.value ?? 0;
  let lastAuditId = (maxAuditId.get() as { m: number }).m;
  // Two connections may write (the writer thread, and the event loop for a lone write): where
  // the index stands is read under the write lock, so it never moves back.
  const indexStep = db.transaction((): number => {
    const from = (readIndexedId.get() as { value: number } | undefined)?.value ?? 0;
    const hi = Math.min((maxAuditId.get() as { m: number }).m, from + AUDIT_INDEX_BATCH);
    if (hi - from < AUDIT_INDEX_BATCH) return from;
    indexAudit.run(from, hi);
    setMeta.run(hi, 'audit_indexed_id');
    return hi;
  });
  const raiseFloor = db.prepare<[string, string, number]>(
    `INSERT INTO history_floors (key, range_end, revision) VALUES (?, ?, ?)
     ON CONFLICT (key, range_end) DO UPDATE SET revision = max(revision, excluded.revision)`,
  );
  const deleteRow = db.prepare<[string, number]>('DELETE FROM kv_log WHERE key = ? AND revision = ?');
  // The floor first, in the same transaction: a reader that sees the rows gone sees the floor too.
  const pruneHistory = db.transaction((key: string, rangeEnd: string, floor: number, rows: [string, number][]) => {
    raiseFloor.run(key, rangeEnd, floor);
    let n = 0;
    for (const [k, r] of rows) n += deleteRow.run(k, r).changes;
    return n;
  });
  const audit = (a: AuditRecord): void => {
    const r = insertAudit.run(a.ts, a.principal, a.action, a.key, a.oldVersion, a.newVersion, a.revision, a.requestId, a.source, a.outcome, a.details);
    lastAuditId = Number(r.lastInsertRowid);
  };
  const commit = db.transaction((batch: CommitBatch, head: number) => {
    for (const e of batch.entries) {
      insertLog.run(e.key, e.revision, e.createRevision, e.version, e.lease, e.value, e.deleted ? 1 : 0, e.ts, e.meta, e.encrypted === true ? 1 : 0);
    }
    for (const l of batch.leaseGrants) insertLease.run(l.id, l.grantedTtl, l.expiresAt, l.owner ?? null);
    for (const id of batch.leaseRevokes) deleteLease.run(id);
    for (const a of batch.audit ?? []) audit(a);
    if (batch.revision !== head) setMeta.run(batch.revision, 'revision');
  });
  // The same transaction as `commit`, reading the flat columns of a PackedBatch.
  const commitPacked = db.transaction((p: PackedBatch, head: number) => {
    const e = p.entries;
    let at = 0;
    for (let i = 0; i < e.length; i += ENTRY_COLS) {
      const len = e[i + 9] as number;
      insertLog.run(e[i], e[i + 1], e[i + 2], e[i + 3], e[i + 4], Buffer.from(p.values, at, len), e[i + 5], e[i + 6], e[i + 7], e[i + 8]);
      at += len;
    }
    const g = p.leaseGrants;
    for (let i = 0; i < g.length; i += 4) insertLease.run(g[i] as number, g[i + 1] as number, g[i + 2] as number, g[i + 3] as string | null);
    for (const id of p.leaseRevokes) deleteLease.run(id);
    const a = p.audit;
    for (let i = 0; i < a.length; i += AUDIT_COLS) {
      const r = insertAudit.run(a[i], a[i + 1], a[i + 2], a[i + 3], a[i + 4], a[i + 5], a[i + 6], a[i + 7], a[i + 8], a[i + 9], a[i + 10]);
      lastAuditId = Number(r.lastInsertRowid);
    }
    if (p.revision !== head) setMeta.run(p.revision, 'revision');
  });
  const appendAudit = db.transaction((records: AuditRecord[]) => {
    for (const a of records) audit(a);
  });
  // Prepared on first use: a writer over a schema from before migration 008 (upgrade tests) must still open.
  let adoption: { upsert: Database.Statement<[string, string, string, number, number | null, number]>; prune: Database.Statement<[number, string]> } | undefined;
  const adoptionStmts = (): NonNullable<typeof adoption> =>
    (adoption ??= {
      upsert: db.prepare(
        `INSERT INTO rollout_adoption (rollout, client, variant, bucket, selected, seen_at) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (rollout, client) DO UPDATE SET variant = excluded.variant, bucket = excluded.bucket,
           selected = excluded.selected, seen_at = excluded.seen_at
         WHERE excluded.seen_at >= rollout_adoption.seen_at`,
      ),
      prune: db.prepare('DELETE FROM rollout_adoption WHERE seen_at < ? OR rollout NOT IN (SELECT value FROM json_each(?))'),
    });
  const recordAdoption = db.transaction((rows: AdoptionRow[]) => {
    const { upsert } = adoptionStmts();
    for (const r of rows) upsert.run(r.rollout, r.client, r.variant, r.bucket, r.selected === null ? null : r.selected ? 1 : 0, r.seenAt);
  });
  const apply = (w: WriteOp): number => {
    switch (w.op) {
      case 'commit':
        commit.immediate(w.batch, w.head);
        return 0;
      case 'commitPacked':
        commitPacked.immediate(w.batch, w.head);
        return 0;
      case 'setMeta':
        upsertMeta.run(w.name, w.value);
        return 0;
      case 'compactStep': {
        // Answers the step's own time in ms (the backend sizes the next step by it), not the
        // time it waited behind other writes.
        const t0 = performance.now();
        db.transaction(() => compactStep.run(w.lo, w.hi, w.revision, w.revision)).immediate();
        return performance.now() - t0;
      }
      case 'appendAudit':
        appendAudit.immediate(w.records);
        return 0;
      case 'pruneAudit':
        return pruneAudit.immediate(w.beforeTs);
      case 'pruneHistory':
        return pruneHistory.immediate(w.key, w.rangeEnd, w.floor, w.rows);
      case 'recordAdoption':
        recordAdoption.immediate(w.rows);
        return 0;
      case 'pruneAdoption':
        return adoptionStmts().prune.run(w.beforeMs, JSON.stringify(w.keep)).changes;
      case 'barrier':
        return 0;
      case 'checkpoint':
        db.pragma('wal_checkpoint(PASSIVE)');
        return 0;
    }
  };
  const maintain = (): boolean => {
    if (lastAuditId - indexedId < AUDIT_INDEX_BATCH) return false;
    // lastAuditId is a hint: an append that rolled back (disk full) left it above the real last
    // id, and ids above the real one will be handed out again. Index only what exists; and the
    // other connection may have indexed meanwhile.
    lastAuditId = (maxAuditId.get() as { m: number }).m;
    indexedId = (readIndexedId.get() as { value: number } | undefined)?.value ?? 0;
    if (lastAuditId - indexedId < AUDIT_INDEX_BATCH) return false;
    const was = indexedId;
    indexedId = indexStep.immediate();
    return indexedId > was;
  };
  return { apply, maintain };
}
