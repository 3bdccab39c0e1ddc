/**
 * The backend contract: what the kv core needs from durable storage, independently of the
 * datastore (SQLite embedded, PostgreSQL shared). Every backend passes test/conformance/.
 */
import type { AuditQuery, AuditRecord, KeyValue, Lease, LogEntry } from '../mvcc/index.js';

/** What a backend reports when it opens: the head revision and the compact revision. */
export interface BackendState {
  revision: number;
  compactRevision: number;
}

/**
 * One durable write: log entries (at revisions `fromRevision..revision`, ordered), lease grants
 * and revokes. Either all of it is durable when {@link Backend.commit} resolves, or none of it.
 */
export interface CommitBatch {
  /** The head revision after this batch (equal to the old head when no key changed). */
  revision: number;
  entries: LogEntry[];
  leaseGrants: Lease[];
  leaseRevokes: number[];
  /** Audit records of this batch's writes, stored in the same transaction. */
  audit?: AuditRecord[];
}

/**
 * Plans a batch once the backend holds its write lock. `missed` are the entries other nodes
 * committed after the caller's applied revision (always empty on a single-node backend); the
 * planner applies them before planning so compares see the true latest state.
 */
export type CommitPlanner = (missed: LogEntry[], headRevision: number) => CommitBatch;

/** A historical range read: the latest non-deleted kvs in a range at or below `revision`. */
export interface BackendRangeQuery {
  key: string;
  /** undefined: the single key; null: unbounded. */
  rangeEnd: string | null | undefined;
  revision: number;
  /** 0 for no limit. */
  limit: number;
}

/**
 * Which superseded log rows of a range a history-retention pass may remove (a namespace's
 * `historyRetention` policy). A row is removable only when it is outside EVERY bound given:
 * a newer row of its key exists, it is beyond the newest `versions` rows of its key
 * (tombstones count as rows), and its successor row was written at least `maxAgeMs` and at
 * least `graceMs` before the pass's clock. The latest row of a key is never removed.
 */
export interface RetentionRule {
  /** Keep the newest this many rows of each key; undefined: no count bound. */
  versions?: number;
  /** Keep every row that stopped being current less than this many ms ago; undefined: no age bound. */
  maxAgeMs?: number;
  /**
   * Never remove a row whose successor is younger than this, in ms (default 60 000), so lagging
   * followers and in-flight watch catch-ups are not raced.
   */
  graceMs: number;
}

/**
 * The floor of a key range: rows of keys in `[key, rangeEnd)` superseded at or below `revision`
 * may have been removed by history retention, so for that range the effective compact revision
 * is at least `revision` (reads at it are whole; watches and history start above it).
 */
export interface HistoryFloor {
  key: string;
  /** null: unbounded. */
  rangeEnd: string | null;
  revision: number;
}

/** What a history-retention pass over one range did: rows removed and the range's floor it raised (0: none). */
export interface PruneResult {
  removed: number;
  floor: number;
}

/** A key range of a log read: `rangeEnd` undefined is the one key `key`, null every key ≥ `key`. */
export interface LogRange {
  key: string;
  rangeEnd?: string | null;
}

/**
 * One SDK client's adoption report of a staged rollout (issue 16, docs/rollout.md): the variant
 * it applied, its hash bucket in the rollout and whether it matches the rollout's selector.
 * Kept outside the revision log (an upsert keyed by rollout and client, not a revision).
 */
export interface AdoptionRow {
  rollout: string;
  client: string;
  /** `candidate` or `current`. */
  variant: string;
  /** The client's bucket, in [0, 10000). */
  bucket: number;
  /** Whether the client's labels match the rollout's selector; null when it did not say. */
  selected: boolean | null;
  /** When the report arrived, ms since the epoch. */
  seenAt: number;
}

/**
 * How {@link Backend.loadView} rebuilt the view: from a view snapshot and the log after it, or
 * from the log alone (no usable snapshot: `reason` says why).
 */
export interface ViewLoadReport {
  source: 'snapshot' | 'log';
  /** The revision of the snapshot used; 0 when the log alone was read. */
  snapshotRevision: number;
  /** Log rows read: after the snapshot, or every key's latest without one. */
  logEntries: number;
  /** Why no snapshot was used (missing, torn, corrupt, stale, another format…). */
  reason?: string;
}

/** The storage under the kv core. Methods reject with {@link UnavailableError} when the store is unreachable. */
export interface Backend {
  /** A short name for status and logs, such as `sqlite:./data/beacon.db`. */
  readonly description: string;
  /** Opens the store, runs pending numbered migrations and returns its revisions. Throws when the schema is newer than this build. */
  open(): Promise<BackendState>;
  /** Visits the latest live kv of every key (for rebuilding the view at start) and returns the revision it reflects. */
  loadView(visit: (kv: KeyValue) => void): Promise<number>;
  /** How the last {@link loadView} rebuilt the view (backends with view snapshots). */
  readonly lastViewLoad?: ViewLoadReport | undefined;
  /**
   * Optional (SQLite): persists `kvs`, every live kv of the view at `revision` in key order, as a
   * view snapshot that a later {@link loadView} may start from instead of the whole log. An
   * optimisation only: the log stays the truth, and a snapshot that is not whole and current is
   * ignored. The caller must not change the array while the promise is pending.
   */
  saveViewSnapshot?(revision: number, kvs: readonly KeyValue[]): Promise<void>;
  /** Every lease that has not been revoked. */
  loadLeases(): Promise<Lease[]>;
  /** The backend's committed head revision, for linearizable reads. */
  headRevision(): Promise<number>;
  /**
   * Runs `plan` under the write lock and durably commits what it returns; resolves with that batch.
   * `plan` may be called more than once (a backend may first try a batch planned on the view as it
   * is, then plan again under its lock with what other nodes wrote); only the last call's batch is
   * committed, so `plan` must not change anything but through `missed`.
   */
  commit(appliedRevision: number, plan: CommitPlanner): Promise<CommitBatch>;
  /**
   * Optional pipelined commit (shared backends): commits `batch`, planned by this node on top of
   * its batches still in flight, whose revisions follow `afterRevision` (the head revision the
   * last batch handed over ends at). Returns undefined at once, sending nothing, when the batch
   * cannot be chained now (plan it again once the batches in flight settled). The promise
   * resolves with the batch once it is durable, which is never before every earlier batch of
   * this node committed; with undefined when nothing of it was written because the head it was
   * planned on did not come to be (another node wrote between, or an earlier batch failed):
   * plan it again. It rejects when the write failed or its outcome is unknown.
   */
  commitPipelined?(afterRevision: number, batch: CommitBatch): Promise<CommitBatch | undefined> | undefined;
  /** How many batches may be in flight at once with {@link commitPipelined}, the one {@link commit} runs included (absent: 1). */
  readonly pipelineDepth?: number;
  /** Reads a range as of an older revision (the view serves the latest). */
  range(query: BackendRangeQuery): Promise<{ kvs: KeyValue[]; more: boolean; count: number }>;
  /**
   * Log entries with `fromRevision <= revision <= toRevision` in revision then key order, at
   * most `limit` whole revisions' worth or a little more (a revision is never split). With
   * `range`, only entries of keys in it (`rangeEnd` undefined: the one key; null: every key ≥
   * `key`), read through the (key, revision) primary key or the revision index so that other
   * keys' values are never loaded (watch catch-up, issue 9 finding 2).
   */
  readLog(fromRevision: number, toRevision: number, limit: number, range?: LogRange): Promise<LogEntry[]>;
  /** The entries of one key in revision order, optionally from a revision, newest first when `reverse`. */
  history(key: string, opts: { fromRevision?: number; toRevision?: number; limit?: number; reverse?: boolean }): Promise<LogEntry[]>;
  /** The latest entry of `key` strictly below `revision` (for prevKv in catch-up), or undefined. */
  previous(key: string, revision: number): Promise<LogEntry | undefined>;
  /** Records `revision` as compacted and removes superseded entries at or below it, in small steps. */
  compact(revision: number): Promise<void>;
  /**
   * True when several nodes share this store (PostgreSQL): keep-alives are persisted and a node
   * that starts keeps each lease's stored expiry instead of re-arming it with a full TTL.
   */
  readonly shared?: boolean;
  /** Brings lease changes other nodes committed into this node now (shared backends), for a lookup that missed. */
  syncLeases?(): Promise<void>;
  /** Persists a lease's new expiry after a keep-alive; single-node backends may keep it in memory. */
  keepAlive(id: number, expiresAt: number): Promise<void>;
  /** Writes a consistent point-in-time copy of the store to `path`; `onProgress(done, total)` in pages or bytes. */
  snapshot(path: string, onProgress?: (done: number, total: number) => void): Promise<BackendState>;
  /** Appends audit records outside a write (failed logins, auth changes); durable on resolve. */
  appendAudit(records: AuditRecord[]): Promise<void>;
  /** Reads audit records matching `query`, oldest first, with their ids. */
  queryAudit(query: AuditQuery): Promise<AuditRecord[]>;
  /** Deletes audit records older than `beforeTs` (ms); resolves with how many. */
  pruneAudit(beforeTs: number): Promise<number>;
  /**
   * Removes the rows of `[key, rangeEnd)` (null: unbounded) that `rule` lets go, as of `nowMs`
   * (ms since the epoch), in small batches. Each batch raises the range's floor and deletes its
   * rows in one transaction, so a reader that reads rows first and {@link historyFloors} after
   * never misses a removal. Shared backends remove only rows every live node has applied.
   */
  pruneHistory(key: string, rangeEnd: string | null, rule: RetentionRule, nowMs: number): Promise<PruneResult>;
  /** Every recorded history floor (a handful: one per retention range ever pruned). */
  historyFloors(): Promise<HistoryFloor[]>;
  /**
   * Checks that a write of about `bytes` can be made durable now, without changing any data:
   * the store calls it after a commit failed (disk full, I/O error, database unreachable) to
   * learn when writes work again (`/readyz`). Rejects with the reason writes still fail.
   * Optional: without it, only the next successful commit tells.
   */
  probeWrite?(bytes: number): Promise<void>;
  /**
   * Upserts adoption reports (table `rollout_adoption`, migration 008): one row per (rollout,
   * client), the newer `seenAt` wins. Shared by every node on a shared backend.
   */
  recordAdoption(rows: AdoptionRow[]): Promise<void>;
  /** Clients of `rollout` seen at or after `sinceMs`, counted by variant. */
  adoptionCounts(rollout: string, sinceMs: number): Promise<Record<string, number>>;
  /** The buckets of the clients of `rollout` seen at or after `sinceMs` that reported matching its selector. */
  adoptionBuckets(rollout: string, sinceMs: number): Promise<number[]>;
  /** Deletes the adoption rows of rollouts not in `keep` and those seen before `beforeMs`; resolves with how many. */
  pruneAdoption(keep: string[], beforeMs: number): Promise<number>;
  /** Storage size in bytes, when known. */
  sizeBytes(): Promise<number | undefined>;
  /** Closes connections; pending work is finished or rejected. */
  close(): Promise<void>;
}
