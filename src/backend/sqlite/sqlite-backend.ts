/** The embedded SQLite backend: one node, WAL with synchronous=FULL, one transaction per group commit. */
import Database from 'better-sqlite3';
import { mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { open, rm, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { BeaconError, ErrorCode, UnavailableError } from '../../errors.js';
import { prefixEnd, type AuditQuery, type AuditRecord, type KeyValue, type Lease, type LogEntry } from '../../mvcc/index.js';
import { COMPACTION_STEP_START, compactionRestMs, nextCompactionStep } from '../compaction.js';
import { pruneRange, type PruneRow } from '../retention.js';
import type {
  AdoptionRow,
  Backend,
  BackendRangeQuery,
  BackendState,
  CommitBatch,
  CommitPlanner,
  HistoryFloor,
  LogRange,
  PruneResult,
  RetentionRule,
  ViewLoadReport,
} from '../types.js';
import { newSnapshotId, readViewSnapshot, readViewSnapshotHeader, ValueSlabs, ViewSnapshotError, writeViewSnapshot } from './view-snapshot.js';
import { packCommit, prepareWrites, type Writer, type WriteOp } from './writes.js';

/**
 * A lone write is committed on the event loop only while such commits average at most this many
 * ms: the loop waits for the commit's sync, and no client is served meanwhile.
 */
export const LONE_COMMIT_MAX_MS = 1;
/** How long lone writes stay on the writer thread after they were found slow, in ms. */
export const LONE_RETRY_MS = 30_000;
/** Weight of the newest lone commit in the moving average of their time. */
const LONE_COMMIT_EWMA = 0.2;
/** Lone writes between two WAL checkpoints asked of the writer thread (~8 WAL pages each). */
const LONE_WRITES_PER_CHECKPOINT = 64;

/**
 * Decides whether a lone write may be committed on the event loop: yes while those commits
 * average at most {@link LONE_COMMIT_MAX_MS} (an exponential moving average); once they average
 * more (a disk with slow syncs), no for {@link LONE_RETRY_MS}, then yes again with the average
 * reset, so a disk that got faster is used again.
 */
export class LoneWritePolicy {
  /** Moving average of a lone commit's time on the loop, in ms. */
  averageMs = 0;
  private retryAt = 0;

  /** Whether a lone write may go on the loop now (`nowMs`: ms since the epoch). */
  allowed(nowMs: number): boolean {
    if (this.averageMs <= LONE_COMMIT_MAX_MS) return true;
    if (this.retryAt === 0) this.retryAt = nowMs + LONE_RETRY_MS;
    if (nowMs < this.retryAt) return false;
    this.retryAt = 0;
    this.averageMs = 0;
    return true;
  }

  /** Records how long a lone commit on the loop took, in ms. */
  record(ms: number): void {
    this.averageMs += (ms - this.averageMs) * LONE_COMMIT_EWMA;
  }
}

/** Writes on this thread (a `:memory:` store cannot be shared with a writer thread). */
function inThreadWriter(db: Database.Database): (w: WriteOp) => Promise<number> {
  const writer = prepareWrites(db);
  return async (w) => {
    const result = writer.apply(w);
    writer.maintain();
    return result;
  };
}

const MIGRATIONS_DIR = fileURLToPath(new URL('./migrations/', import.meta.url));

interface LogRow {
  key: string;
  revision: number;
  create_revision: number;
  version: number;
  lease: number;
  value: Buffer;
  deleted: number;
  ts: number;
  meta: string | null;
  /** 1 when the store sealed the value (migration 005). */
  encrypted: number;
}

function rowToEntry(r: LogRow): LogEntry {
  const e: LogEntry = {
    key: r.key,
    revision: r.revision,
    createRevision: r.create_revision,
    version: r.version,
    lease: r.lease,
    value: r.value,
    deleted: r.deleted !== 0,
    ts: r.ts,
    meta: r.meta,
  };
  if (r.encrypted === 1) e.encrypted = true;
  return e;
}

/** Whether `rows` are in strictly ascending key order as SQLite orders TEXT (memcmp of the UTF-8 bytes). */
function inKeyOrder(rows: LogRow[]): boolean {
  for (let i = 1; i < rows.length; i++) if (Buffer.compare(Buffer.from((rows[i - 1] as LogRow).key), Buffer.from((rows[i] as LogRow).key)) >= 0) return false;
  return true;
}

/** A row of the view load: key, value, create_revision, revision, version, lease, encrypted. */
type ViewRow = [string, Buffer, number, number, number, number, number];
/** A row of the log after a view snapshot: a {@link ViewRow} and `deleted`. */
type TailRow = [string, Buffer, number, number, number, number, number, number];

/** The meta row naming the view snapshot file the database vouches for (see view-snapshot.ts). */
const VIEW_SNAPSHOT_META = 'view_snapshot_id';

function viewRowToKv(r: ViewRow | TailRow, slabs: ValueSlabs): KeyValue {
  const kv: KeyValue = { key: r[0], value: slabs.copy(r[1]), createRevision: r[2], modRevision: r[3], version: r[4], lease: r[5] };
  if (r[6] === 1) kv.encrypted = true;
  return kv;
}

function rowToKv(r: LogRow): KeyValue {
  const kv: KeyValue = {
    key: r.key,
    value: r.value,
    createRevision: r.create_revision,
    modRevision: r.revision,
    version: r.version,
    lease: r.lease,
  };
  if (r.encrypted === 1) kv.encrypted = true;
  return kv;
}

/** Options of {@link SqliteBackend}: a file path, or `:memory:` for a private in-memory store. */
export interface SqliteBackendOptions {
  path: string;
}

/**
 * SQLite storage through better-sqlite3. Calls are synchronous underneath; every commit is one
 * `BEGIN IMMEDIATE … COMMIT` with `synchronous=FULL`, so a resolved commit survives power loss.
 */
export class SqliteBackend implements Backend {
  readonly description: string;
  private readonly path: string;
  private db: Database.Database | undefined;
  private prepared: ReturnType<SqliteBackend['prepare']> | undefined;
  /** Applies a write durably: on a writer thread for a file, in this thread for `:memory:`. */
  private write: (w: WriteOp) => Promise<number> = async () => {
    throw new UnavailableError('the SQLite backend is not open');
  };
  private worker: Worker | undefined;
  /** Whether the writer thread has no write in hand (nothing sent and unanswered). */
  private writerIdle: () => boolean = () => false;
  /**
   * Writes on this thread's connection, for a lone write (see {@link commit}); undefined for
   * `:memory:`, whose writes are all on this thread anyway.
   */
  private local: Writer | undefined;
  /** Whether lone writes may be committed on the event loop (not while such commits are slow). */
  readonly lonePolicy = new LoneWritePolicy();
  private loneSinceCheckpoint = 0;
  /** An audit-index step on this connection is scheduled (one per turn, however many lone writes). */
  private maintainScheduled = false;
  /** Commits made on this thread's connection (lone writes) and by the writer thread: for tests, diagnostics, and the compaction's pacing (it rests longer while these grow). */
  readonly commitStats = { onLoop: 0, onWriter: 0 };
  private compacting: Promise<void> = Promise.resolve();
  private pruning: Promise<unknown> = Promise.resolve();
  /** Set when close() starts: a retention pass stops at its next batch. */
  private closing = false;
  /** How the last {@link loadView} rebuilt the view. */
  lastViewLoad: ViewLoadReport | undefined;

  constructor(opts: SqliteBackendOptions) {
    this.path = opts.path;
    this.description = `sqlite:${opts.path}`;
  }

  private get conn(): Database.Database {
    if (this.db === undefined) throw new UnavailableError('the SQLite backend is closed');
    return this.db;
  }

  private get stmts(): ReturnType<SqliteBackend['prepare']> {
    if (this.db === undefined || this.prepared === undefined) throw new UnavailableError('the SQLite backend is closed');
    return this.prepared;
  }

  async open(): Promise<BackendState> {
    if (this.path !== ':memory:') mkdirSync(dirname(this.path), { recursive: true });
    const db = new Database(this.path);
    this.db = db;
    this.closing = false;
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.pragma('busy_timeout = 5000');
    db.pragma('foreign_keys = ON');
    this.migrate(db);
    this.prepared = this.prepare(db);
    this.write = this.path === ':memory:' ? inThreadWriter(db) : this.startWriterThread();
    this.local = this.path === ':memory:' ? undefined : prepareWrites(db);
    // The event loop's connection never checkpoints: a checkpoint copies pages into the database
    // and syncs it, which must not stall every client. The writer thread does it (its own commits
    // checkpoint automatically; after lone writes it is asked to, see commit()).
    if (this.local !== undefined) db.pragma('wal_autocheckpoint = 0');
    return this.readState();
  }

  private migrate(db: Database.Database): void {
    db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)');
    const files = readdirSync(MIGRATIONS_DIR)
      .filter((f) => /^\d+_.*\.sql$/.test(f))
      .sort();
    const known = files.map((f) => Number.parseInt(f, 10));
    const latestKnown = Math.max(0, ...known);
    const applied = new Set(
      (db.prepare('SELECT version FROM schema_migrations').all() as { version: number }[]).map((r) => r.version),
    );
    const newest = Math.max(0, ...applied);
    if (newest > latestKnown) {
      throw new BeaconError(
        ErrorCode.Unavailable,
        `the database at ${this.path} has schema version ${newest}, newer than this Beacon understands (${latestKnown}); upgrade Beacon`,
      );
    }
    for (const file of files) {
      const version = Number.parseInt(file, 10);
      if (applied.has(version)) continue;
      const sql = readFileSync(MIGRATIONS_DIR + file, 'utf8');
      db.transaction(() => {
        db.exec(sql);
        db.prepare('INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)').run(version, Date.now());
      }).immediate();
    }
  }

  private prepare(db: Database.Database) {
    return {
      getMeta: db.prepare<[string], { value: number }>('SELECT value FROM meta WHERE name = ?'),
      allLeases: db.prepare<[], { id: number; ttl: number; expires_at: number; owner: string | null }>('SELECT id, ttl, expires_at, owner FROM leases'),
      // Each key's latest revision comes from kv_log_key alone (a covering scan in key order);
      // the rows are then fetched in revision order, the order of the table, so every page of
      // it is read once. In key order each fetch was a random page: 1,000,000 keys written by
      // group commits took over two minutes to load on a busy VM, 300,000 took 6.5 s against
      // 1.7 s now (issue 17); a long log of few keys loads as fast as before.
      // Rows as arrays of the columns a KeyValue needs (raw mode): ~20 % less time per row
      // than objects of every column, at a million rows.
      loadView: db
        .prepare<[], ViewRow>(
          `SELECT l.key, l.value, l.create_revision, l.revision, l.version, l.lease, l.encrypted
             FROM (SELECT key, max(revision) AS r FROM kv_log GROUP BY key ORDER BY r) m
            CROSS JOIN kv_log l ON l.revision = m.r AND l.key = m.key
            WHERE l.deleted = 0`,
        )
        .raw(true),
      // The log after a view snapshot, in table order (revision, key).
      loadTail: db
        .prepare<[number], TailRow>('SELECT key, value, create_revision, revision, version, lease, encrypted, deleted FROM kv_log WHERE revision > ? ORDER BY revision, key')
        .raw(true),
      readLog: db.prepare<[number, number, number], LogRow>(
        'SELECT * FROM kv_log WHERE revision >= ? AND revision <= ? ORDER BY revision, key LIMIT ?',
      ),
      readLogRevision: db.prepare<[number], LogRow>('SELECT * FROM kv_log WHERE revision = ? ORDER BY key'),
      // Watch catch-up of a key range first finds its (revision, key) pairs in kv_log_revision
      // alone (its entries are just that: a covering scan in revision order), then loads those
      // rows by primary key, so other keys' values are never read (scanning the primary key
      // itself reads every row's page, values included: a narrow range over a log of 1 KiB values
      // read ~100x the bytes it returned). One key reads its own rows through kv_log_key.
      readLogKey: db.prepare<[string, number, number, number], LogRow>(
        'SELECT * FROM kv_log INDEXED BY kv_log_key WHERE key = ? AND revision >= ? AND revision <= ? ORDER BY revision LIMIT ?',
      ),
      readLogIdsFrom: db.prepare<[number, number, string, number], { key: string; revision: number }>(
        'SELECT revision, key FROM kv_log INDEXED BY kv_log_revision WHERE revision >= ? AND revision <= ? AND key >= ? ORDER BY revision, key LIMIT ?',
      ),
      readLogIdsRange: db.prepare<[number, number, string, string, number], { key: string; revision: number }>(
        'SELECT revision, key FROM kv_log INDEXED BY kv_log_revision WHERE revision >= ? AND revision <= ? AND key >= ? AND key < ? ORDER BY revision, key LIMIT ?',
      ),
      readLogRow: db.prepare<[number, string], LogRow>('SELECT * FROM kv_log WHERE revision = ? AND key = ?'),
      readLogRevisionFrom: db.prepare<[number, string], LogRow>('SELECT * FROM kv_log WHERE revision = ? AND key >= ? ORDER BY key'),
      readLogRevisionRange: db.prepare<[number, string, string], LogRow>('SELECT * FROM kv_log WHERE revision = ? AND key >= ? AND key < ? ORDER BY key'),
      previous: db.prepare<[string, number], LogRow>(
        'SELECT * FROM kv_log WHERE key = ? AND revision < ? ORDER BY revision DESC LIMIT 1',
      ),
      minRevision: db.prepare<[], { r: number | null }>('SELECT min(revision) AS r FROM kv_log'),
      auditIndexed: db.prepare<[], { value: number }>("SELECT value FROM meta WHERE name = 'audit_indexed_id'"),
      floors: db.prepare<[], { key: string; range_end: string; revision: number }>('SELECT key, range_end, revision FROM history_floors'),
      pruneScan: db.prepare<[string, number], PruneRow>('SELECT key, revision, ts FROM kv_log WHERE key >= ? ORDER BY key, revision LIMIT ?'),
      pruneScanAfter: db.prepare<[string, number], PruneRow>('SELECT key, revision, ts FROM kv_log WHERE key > ? ORDER BY key, revision LIMIT ?'),
      pruneScanTo: db.prepare<[string, string, number], PruneRow>(
        'SELECT key, revision, ts FROM kv_log WHERE key >= ? AND key < ? ORDER BY key, revision LIMIT ?',
      ),
      pruneScanAfterTo: db.prepare<[string, string, number], PruneRow>(
        'SELECT key, revision, ts FROM kv_log WHERE key > ? AND key < ? ORDER BY key, revision LIMIT ?',
      ),
      pruneKeyDesc: db.prepare<[string, number, number], PruneRow>(
        'SELECT key, revision, ts FROM kv_log WHERE key = ? AND revision < ? ORDER BY revision DESC LIMIT ?',
      ),
    };
  }

  private readState(): BackendState {
    return {
      revision: this.stmts.getMeta.get('revision')?.value ?? 0,
      compactRevision: this.stmts.getMeta.get('compact_revision')?.value ?? 0,
    };
  }

  /** The view snapshot file beside the database (`beacon.db-view`). */
  private get viewSnapshotPath(): string {
    return `${this.path}-view`;
  }

  /**
   * Visits the latest live kv of every key: from the view snapshot plus the log after it when the
   * snapshot is usable, from the log alone otherwise (see {@link lastViewLoad} for which and why).
   * Values are packed into shared slabs either way (see {@link ValueSlabs}).
   */
  async loadView(visit: (kv: KeyValue) => void): Promise<number> {
    const state = this.readState();
    const slabs = new ValueSlabs();
    let reason = 'in-memory database';
    if (this.path !== ':memory:') {
      try {
        this.lastViewLoad = this.loadViewSnapshot(state, slabs, visit);
        return state.revision;
      } catch (err) {
        if (!(err instanceof ViewSnapshotError)) throw err;
        reason = err.message;
      }
    }
    let n = 0;
    for (const r of this.stmts.loadView.iterate()) {
      visit(viewRowToKv(r, slabs));
      n++;
    }
    this.lastViewLoad = { source: 'log', snapshotRevision: 0, logEntries: n, reason };
    return state.revision;
  }

  /**
   * Loads the view from the snapshot file and the log after it. Visits nothing unless the whole
   * file checks out, so a failure leaves the caller's view untouched for the log load.
   * @throws ViewSnapshotError when the snapshot is missing, torn, corrupt, of another format, not
   * the one the database recorded, ahead of the database, or behind its compaction (a compaction
   * past it may have removed tombstones the replay would need).
   */
  private loadViewSnapshot(state: BackendState, slabs: ValueSlabs, visit: (kv: KeyValue) => void): ViewLoadReport {
    const path = this.viewSnapshotPath;
    const header = readViewSnapshotHeader(path);
    const recorded = this.stmts.getMeta.get(VIEW_SNAPSHOT_META)?.value;
    if (recorded !== header.id) throw new ViewSnapshotError(`the view snapshot is not the one this database recorded (${header.id}, recorded ${recorded ?? 'none'})`);
    if (header.revision > state.revision) throw new ViewSnapshotError(`the view snapshot is at revision ${header.revision}, past the database's ${state.revision}`);
    if (state.compactRevision > header.revision) {
      throw new ViewSnapshotError(`the database was compacted to revision ${state.compactRevision} after the view snapshot (revision ${header.revision})`);
    }
    const { kvs } = readViewSnapshot(path);
    // The log after the snapshot, reduced to each key's last row (a tombstone included).
    const tail = new Map<string, TailRow>();
    let logEntries = 0;
    for (const r of this.stmts.loadTail.iterate(header.revision)) {
      tail.set(r[0], r);
      logEntries++;
    }
    // Snapshot keys first, in key order (the view appends them to its sorted index as they come).
    for (const kv of kvs) if (!tail.has(kv.key)) visit(kv);
    for (const r of tail.values()) if (r[7] === 0) visit(viewRowToKv(r, slabs));
    return { source: 'snapshot', snapshotRevision: header.revision, logEntries };
  }

  /**
   * Writes a view snapshot at `revision` (every live kv at it, in key order), then records its id
   * in the database, so a start can use it instead of reading the whole log. A crash before the
   * id is recorded leaves a file the database does not vouch for: ignored at the next start.
   * @throws UnavailableError when the file or the id cannot be written (the previous snapshot, if
   * any, is then stale or unrecorded; starts fall back to the log).
   */
  async saveViewSnapshot(revision: number, kvs: readonly KeyValue[]): Promise<void> {
    if (this.path === ':memory:') return;
    const id = newSnapshotId();
    try {
      await writeViewSnapshot(this.viewSnapshotPath, { id, revision, compactRevision: this.readState().compactRevision }, kvs);
      await this.write({ op: 'setMeta', name: VIEW_SNAPSHOT_META, value: id });
    } catch (err) {
      throw new UnavailableError(`the SQLite backend could not write the view snapshot: ${(err as Error).message}`, { cause: err });
    }
  }

  async loadLeases(): Promise<Lease[]> {
    return this.stmts.allLeases.all().map((r) => ({ id: r.id, grantedTtl: r.ttl, expiresAt: r.expires_at, ...(r.owner !== null ? { owner: r.owner } : {}) }));
  }

  async headRevision(): Promise<number> {
    return this.stmts.getMeta.get('revision')?.value ?? 0;
  }

  async commit(_appliedRevision: number, plan: CommitPlanner): Promise<CommitBatch> {
    const s = this.stmts;
    const head = s.getMeta.get('revision')?.value ?? 0;
    const batch = plan([], head);
    try {
      // A lone write is committed here when the writer thread has nothing in hand: handing it
      // over costs two thread wake-ups, which on a 2-core VM were a quarter of a lone PUT's time
      // (p50 0.65–0.80 ms through the thread, 0.48–0.55 ms here; issue 17 target 1). The event
      // loop waits for this one commit meanwhile, so never for a checkpoint (the writer thread
      // does those) nor while such commits are slow (LoneWritePolicy); batches of several writes
      // still go to the thread, so under concurrency the loop keeps parsing while they are written.
      if (this.local !== undefined && batch.entries.length <= 1 && this.writerIdle() && this.lonePolicy.allowed(Date.now())) {
        const t0 = performance.now();
        this.local.apply({ op: 'commit', batch, head });
        this.lonePolicy.record(performance.now() - t0);
        this.commitStats.onLoop++;
        if (++this.loneSinceCheckpoint >= LONE_WRITES_PER_CHECKPOINT) {
          this.loneSinceCheckpoint = 0;
          // Queued like any write: lone writes go to the thread until it is done.
          this.write({ op: 'checkpoint' }).catch(() => undefined);
        }
        if (!this.maintainScheduled) {
          this.maintainScheduled = true;
          const local = this.local;
          setImmediate(() => {
            this.maintainScheduled = false;
            // Only while the thread writes nothing, so this connection does not wait for its lock.
            if (!this.writerIdle()) return;
            try {
              local.maintain();
            } catch {
              // retried after a later write; queries read the unindexed tail meanwhile
            }
          });
        }
      } else {
        await this.write({ op: 'commit', batch, head });
        this.commitStats.onWriter++;
      }
    } catch (err) {
      throw new UnavailableError(`the SQLite backend could not commit: ${(err as Error).message}`, { cause: err });
    }
    return batch;
  }

  async range(q: BackendRangeQuery): Promise<{ kvs: KeyValue[]; more: boolean; count: number }> {
    const db = this.conn;
    let where: string;
    const params: (string | number)[] = [];
    if (q.rangeEnd === undefined) {
      where = 'key = ?';
      params.push(q.key);
    } else if (q.rangeEnd === null) {
      where = 'key >= ?';
      params.push(q.key);
    } else {
      where = 'key >= ? AND key < ?';
      params.push(q.key, q.rangeEnd);
    }
    // The latest row of each key at or below the revision, from kv_log_key in key order; LIMIT
    // is pushed down so a huge range never has to be materialised, and the count is a separate
    // aggregate that loads no values. The log is keyed by revision (migration 007), so an outer
    // ORDER BY l.key would sort the whole range in a temporary B-tree before the LIMIT: the join
    // runs in the order of the key index instead (CROSS JOIN fixes the loop order), and the rows
    // are checked to be in key order; should a future SQLite ever emit them otherwise, the range
    // is read again with the sorting form.
    const latest = `SELECT key, max(revision) AS r FROM kv_log WHERE ${where} AND revision <= ? GROUP BY key`;
    const limitSql = q.limit > 0 ? ' LIMIT ?' : '';
    const args = [...params, q.revision, ...(q.limit > 0 ? [q.limit + 1] : [])];
    let rows = db
      .prepare<unknown[], LogRow>(`SELECT l.* FROM (${latest} ORDER BY key) m CROSS JOIN kv_log l ON l.revision = m.r AND l.key = m.key WHERE l.deleted = 0${limitSql}`)
      .all(...args);
    if (!inKeyOrder(rows)) {
      rows = db
        .prepare<unknown[], LogRow>(`SELECT l.* FROM kv_log l JOIN (${latest}) m ON l.key = m.key AND l.revision = m.r WHERE l.deleted = 0 ORDER BY l.key${limitSql}`)
        .all(...args);
    }
    let count = rows.length;
    const more = q.limit > 0 && rows.length > q.limit;
    if (more) {
      rows.length = q.limit;
      count = (
        db
          .prepare<unknown[], { n: number }>(
            `SELECT count(*) AS n FROM kv_log l JOIN (${latest}) m ON l.key = m.key AND l.revision = m.r WHERE l.deleted = 0`,
          )
          .get(...params, q.revision) as { n: number }
      ).n;
    }
    return { kvs: rows.map(rowToKv), more, count };
  }

  async readLog(fromRevision: number, toRevision: number, limit: number, range?: LogRange): Promise<LogEntry[]> {
    if (range !== undefined && range.rangeEnd === undefined) {
      // One key: its rows in revision order straight from the (key, revision) primary key.
      return this.stmts.readLogKey.all(range.key, fromRevision, toRevision, limit).map(rowToEntry);
    }
    const bounded = range !== undefined && !(range.key === '' && range.rangeEnd === null);
    let rows: LogRow[];
    let rest: (revision: number) => LogRow[];
    if (!bounded) {
      rows = this.stmts.readLog.all(fromRevision, toRevision, limit);
      rest = (r) => this.stmts.readLogRevision.all(r);
    } else {
      const end = range.rangeEnd;
      const ids =
        end === null || end === undefined
          ? this.stmts.readLogIdsFrom.all(fromRevision, toRevision, range.key, limit)
          : this.stmts.readLogIdsRange.all(fromRevision, toRevision, range.key, end, limit);
      rows = [];
      for (const id of ids) {
        const row = this.stmts.readLogRow.get(id.revision, id.key);
        if (row !== undefined) rows.push(row); // a compaction may have removed it meanwhile: the caller checks
      }
      rest = (r) => (end === null || end === undefined ? this.stmts.readLogRevisionFrom.all(r, range.key) : this.stmts.readLogRevisionRange.all(r, range.key, end));
    }
    // Never split a revision: finish the last one read.
    if (rows.length === limit && rows.length > 0) {
      const last = rows[rows.length - 1] as LogRow;
      const all = rest(last.revision);
      let i = rows.length - 1;
      while (i >= 0 && (rows[i] as LogRow).revision === last.revision) i--;
      rows.length = i + 1;
      rows.push(...all);
    }
    return rows.map(rowToEntry);
  }

  async history(
    key: string,
    opts: { fromRevision?: number; toRevision?: number; limit?: number; reverse?: boolean },
  ): Promise<LogEntry[]> {
    const order = opts.reverse ? 'DESC' : 'ASC';
    const limit = opts.limit && opts.limit > 0 ? opts.limit : -1;
    const rows = this.conn
      .prepare<[string, number, number, number], LogRow>(
        `SELECT * FROM kv_log WHERE key = ? AND revision >= ? AND revision <= ? ORDER BY revision ${order} LIMIT ?`,
      )
      .all(key, opts.fromRevision ?? 0, opts.toRevision ?? Number.MAX_SAFE_INTEGER, limit);
    return rows.map(rowToEntry);
  }

  async previous(key: string, revision: number): Promise<LogEntry | undefined> {
    const row = this.stmts.previous.get(key, revision);
    return row === undefined ? undefined : rowToEntry(row);
  }

  async compact(revision: number): Promise<void> {
    const run = async (): Promise<void> => {
      const s = this.stmts;
      const old = s.getMeta.get('compact_revision')?.value ?? 0;
      if (revision <= old) return;
      await this.write({ op: 'setMeta', name: 'compact_revision', value: revision });
      const start = Math.max(0, (s.minRevision.get()?.r ?? 1) - 1);
      // Steps sized by time (see ../compaction.ts), so a write never waits long behind one.
      let step = COMPACTION_STEP_START;
      const commits = (): number => this.commitStats.onLoop + this.commitStats.onWriter;
      let seen = commits();
      for (let lo = start; lo < revision; ) {
        const hi = Math.min(revision, lo + step);
        const tookMs = await this.write({ op: 'compactStep', lo, hi, revision });
        step = nextCompactionStep(step, tookMs);
        lo = hi;
        // Rest, longer while clients write, so their commits rarely wait behind a step and the
        // compaction's CPU and fsyncs take a small share from them (see ../compaction.ts).
        const now = commits();
        await new Promise((r) => setTimeout(r, compactionRestMs(tookMs, now !== seen)));
        seen = now;
        if (this.db === undefined) return;
      }
    };
    this.compacting = this.compacting.then(run, run);
    return this.compacting;
  }

  async pruneHistory(key: string, rangeEnd: string | null, rule: RetentionRule, nowMs: number): Promise<PruneResult> {
    const run = (): Promise<PruneResult> =>
      pruneRange(
        {
          // Reads on this thread's connection (WAL: they never wait for the writer); deletes on the writer.
          scan: async (from, exclusive, end, limit) => {
            const s = this.stmts;
            if (end === null) return (exclusive ? s.pruneScanAfter : s.pruneScan).all(from, limit);
            return (exclusive ? s.pruneScanAfterTo : s.pruneScanTo).all(from, end, limit);
          },
          scanKeyDesc: async (k, below, limit) => this.stmts.pruneKeyDesc.all(k, below, limit),
          remove: (k, end, floor, rows) =>
            this.write({ op: 'pruneHistory', key: k, rangeEnd: end ?? '', floor, rows: rows.map((r) => [r.key, r.revision]) }),
          stopped: () => this.closing || this.db === undefined,
        },
        key,
        rangeEnd,
        rule,
        nowMs,
      );
    const p = this.pruning.then(run, run);
    this.pruning = p.catch(() => undefined);
    return p;
  }

  async historyFloors(): Promise<HistoryFloor[]> {
    return this.stmts.floors.all().map((r) => ({ key: r.key, rangeEnd: r.range_end === '' ? null : r.range_end, revision: r.revision }));
  }

  async keepAlive(_id: number, _expiresAt: number): Promise<void> {
    // One node: the lessor's memory is the truth; leases are re-armed with their full TTL at start (etcd semantics).
  }

  /**
   * Writes, fsyncs and removes a scratch file of `bytes` beside the database: the WAL and the
   * database grow in that file system, so this answers whether a write of that size can land
   * there now (after SQLITE_FULL or an I/O error) without touching the data.
   */
  async probeWrite(bytes: number): Promise<void> {
    if (this.path === ':memory:') return;
    const path = `${this.path}-write-probe`;
    let fh: FileHandle | undefined;
    try {
      fh = await open(path, 'w', 0o600);
      const chunk = Buffer.alloc(Math.min(bytes, 64 * 1024));
      for (let done = 0; done < bytes; done += chunk.length) await fh.write(chunk, 0, Math.min(chunk.length, bytes - done));
      await fh.sync();
    } catch (err) {
      throw new UnavailableError(`the SQLite database's file system cannot take a ${bytes}-byte write: ${(err as Error).message}`, { cause: err });
    } finally {
      await fh?.close().catch(() => undefined);
      await rm(path, { force: true }).catch(() => undefined);
    }
  }

  async snapshot(path: string, onProgress?: (done: number, total: number) => void): Promise<BackendState> {
    const db = this.conn;
    await db.backup(path, {
      progress: ({ totalPages, remainingPages }) => {
        onProgress?.(totalPages - remainingPages, totalPages);
        return 256;
      },
    });
    const copy = new Database(path, { readonly: true });
    try {
      const get = (name: string): number =>
        (copy.prepare('SELECT value FROM meta WHERE name = ?').get(name) as { value: number } | undefined)?.value ?? 0;
      return { revision: get('revision'), compactRevision: get('compact_revision') };
    } finally {
      copy.close();
    }
  }

  async appendAudit(records: AuditRecord[]): Promise<void> {
    try {
      await this.write({ op: 'appendAudit', records });
    } catch (err) {
      throw new UnavailableError(`the SQLite backend could not write the audit log: ${(err as Error).message}`, { cause: err });
    }
  }

  async queryAudit(q: AuditQuery): Promise<AuditRecord[]> {
    // Audit records of refusals and logins are appended without waiting; a reader sees every
    // record appended before its query (read-your-writes through the writer's queue).
    await this.write({ op: 'barrier' });
    const where: string[] = [];
    const params: (string | number)[] = [];
    const add = (sql: string, v: string | number | undefined): void => {
      if (v === undefined) return;
      where.push(sql);
      params.push(v);
    };
    add('ts >= ?', q.fromTs);
    add('ts <= ?', q.toTs);
    add('principal = ?', q.principal);
    add('action = ?', q.action);
    add('outcome = ?', q.outcome);
    add('id > ?', q.afterId);
    add('id < ?', q.beforeId);
    const dir = q.order === 'desc' ? 'DESC' : 'ASC';
    let sql: string;
    if (q.keyPrefix !== undefined && q.keyPrefix !== '') {
      // A byte-ordered range, not substr(): SQLite counts characters, JavaScript UTF-16 units.
      const end = prefixEnd(q.keyPrefix);
      const range = end === null ? 'key >= ?' : 'key >= ? AND key < ?';
      const keyParams = [q.keyPrefix, ...(end === null ? [] : [end])];
      // Records up to audit_indexed_id through the deferred key index, the short tail after it by scan.
      const indexed = this.stmts.auditIndexed.get()?.value ?? 0;
      const rest = where.length ? ` AND ${where.join(' AND ')}` : '';
      sql = `SELECT * FROM (
               SELECT * FROM audit WHERE id IN (SELECT id FROM audit_key_index WHERE ${range} AND id <= ?)${rest}
               UNION ALL
               SELECT * FROM audit WHERE id > ? AND ${range}${rest}
             ) ORDER BY id ${dir} LIMIT ?`;
      const filters = params.splice(0);
      params.push(...keyParams, indexed, ...filters, indexed, ...keyParams, ...filters);
    } else {
      sql = `SELECT * FROM audit ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id ${dir} LIMIT ?`;
    }
    const rows = this.conn.prepare<unknown[], Record<string, unknown>>(sql).all(...params, q.limit);
    return rows.map((r) => ({
      id: r.id as number,
      ts: r.ts as number,
      principal: r.principal as string,
      action: r.action as string,
      key: r.key as string | null,
      oldVersion: r.old_version as number | null,
      newVersion: r.new_version as number | null,
      revision: r.revision as number | null,
      requestId: r.request_id as string | null,
      source: r.source as string | null,
      outcome: r.outcome as AuditRecord['outcome'],
      details: r.details as string | null,
    }));
  }

  async pruneAudit(beforeTs: number): Promise<number> {
    return this.write({ op: 'pruneAudit', beforeTs });
  }

  async recordAdoption(rows: AdoptionRow[]): Promise<void> {
    if (rows.length === 0) return;
    try {
      await this.write({ op: 'recordAdoption', rows });
    } catch (err) {
      throw new UnavailableError(`the SQLite backend could not record adoption reports: ${(err as Error).message}`, { cause: err });
    }
  }

  async adoptionCounts(rollout: string, sinceMs: number): Promise<Record<string, number>> {
    const rows = this.conn
      .prepare<[string, number], { variant: string; n: number }>('SELECT variant, count(*) AS n FROM rollout_adoption WHERE rollout = ? AND seen_at >= ? GROUP BY variant')
      .all(rollout, sinceMs);
    return Object.fromEntries(rows.map((r) => [r.variant, r.n]));
  }

  async adoptionBuckets(rollout: string, sinceMs: number): Promise<number[]> {
    return this.conn
      .prepare<[string, number], { bucket: number }>('SELECT bucket FROM rollout_adoption WHERE rollout = ? AND seen_at >= ? AND selected = 1')
      .all(rollout, sinceMs)
      .map((r) => r.bucket);
  }

  async pruneAdoption(keep: string[], beforeMs: number): Promise<number> {
    return this.write({ op: 'pruneAdoption', keep, beforeMs });
  }

  async sizeBytes(): Promise<number | undefined> {
    if (this.path === ':memory:') {
      const pages = this.conn.pragma('page_count', { simple: true }) as number;
      const size = this.conn.pragma('page_size', { simple: true }) as number;
      return pages * size;
    }
    let total = 0;
    for (const suffix of ['', '-wal']) {
      try {
        total += statSync(this.path + suffix).size;
      } catch {
        // the WAL may not exist yet
      }
    }
    return total;
  }

  /** Starts the writer thread and returns the function that sends it writes, one reply each. */
  private startWriterThread(): (w: WriteOp) => Promise<number> {
    const worker = new Worker(new URL('./writer-thread.js', import.meta.url), { workerData: { path: this.path } });
    this.worker = worker;
    const pending = new Map<number, { resolve: (n: number) => void; reject: (e: unknown) => void }>();
    let nextId = 1;
    let broken: Error | undefined;
    worker.on('message', (m: { id: number; ok: boolean; result?: number; message?: string }) => {
      const p = pending.get(m.id);
      pending.delete(m.id);
      if (m.ok) p?.resolve(m.result ?? 0);
      else p?.reject(new Error(m.message ?? 'write failed'));
    });
    const fail = (err: Error): void => {
      broken = err;
      for (const p of pending.values()) p.reject(err);
      pending.clear();
    };
    this.writerIdle = () => pending.size === 0 && broken === undefined;
    worker.on('error', (err) => fail(err));
    worker.on('exit', (code) => fail(new Error(`the SQLite writer thread exited (code ${code})`)));
    return (write) => {
      if (broken !== undefined) return Promise.reject(new UnavailableError(`the SQLite writer is down: ${broken.message}`, { cause: broken }));
      const id = nextId++;
      return new Promise((resolve, reject) => {
        pending.set(id, { resolve, reject });
        if (write.op === 'commit') {
          const batch = packCommit(write.batch);
          worker.postMessage({ id, write: { op: 'commitPacked', batch, head: write.head } }, [batch.values]);
        } else {
          worker.postMessage({ id, write });
        }
      });
    };
  }

  private async stopWriterThread(): Promise<void> {
    const worker = this.worker;
    this.worker = undefined;
    if (worker === undefined) return;
    await new Promise<void>((resolve) => {
      const done = (): void => resolve();
      worker.once('exit', done);
      worker.once('message', () => void worker.terminate().then(done, done));
      worker.postMessage({ id: 0, close: true });
      setTimeout(() => void worker.terminate().then(done, done), 2000).unref();
    });
  }

  async close(): Promise<void> {
    this.closing = true;
    await this.compacting.catch(() => undefined);
    await this.pruning;
    await this.stopWriterThread();
    this.writerIdle = () => false;
    this.local = undefined;
    const db = this.db;
    this.db = undefined;
    this.prepared = undefined;
    db?.close();
  }
}
