/** The embedded SQLite backend: one node, WAL with synchronous=FULL, one transaction per group commit. */
import Database from 'better-sqlite3';
import { mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BeaconError, ErrorCode, UnavailableError } from '../../errors.js';
import { prefixEnd } from '../../kv/keys.js';
import type { AuditQuery, AuditRecord, KeyValue, Lease, LogEntry } from '../../kv/types.js';
import type { Backend, BackendRangeQuery, BackendState, CommitBatch, CommitPlanner } from '../types.js';

const MIGRATIONS_DIR = fileURLToPath(new URL('./migrations/', import.meta.url));

/** Rows deleted per compaction step, so a compaction never holds the write lock for long. */
const COMPACT_STEP_REVISIONS = 2000;

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
}

function rowToEntry(r: LogRow): LogEntry {
  return {
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
}

function rowToKv(r: LogRow): KeyValue {
  return {
    key: r.key,
    value: r.value,
    createRevision: r.create_revision,
    modRevision: r.revision,
    version: r.version,
    lease: r.lease,
  };
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
  private compacting: Promise<void> = Promise.resolve();

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
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.pragma('busy_timeout = 5000');
    db.pragma('foreign_keys = ON');
    this.migrate(db);
    this.prepared = this.prepare(db);
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
      setMeta: db.prepare<[number, string]>('UPDATE meta SET value = ? WHERE name = ?'),
      insertLog: db.prepare(
        'INSERT INTO kv_log (key, revision, create_revision, version, lease, value, deleted, ts, meta) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
      ),
      insertLease: db.prepare<[number, number, number]>('INSERT OR REPLACE INTO leases (id, ttl, expires_at) VALUES (?, ?, ?)'),
      deleteLease: db.prepare<[number]>('DELETE FROM leases WHERE id = ?'),
      allLeases: db.prepare<[], { id: number; ttl: number; expires_at: number }>('SELECT id, ttl, expires_at FROM leases'),
      loadView: db.prepare<[], LogRow>(
        `SELECT l.* FROM kv_log l
           JOIN (SELECT key, max(revision) AS r FROM kv_log GROUP BY key) m ON l.key = m.key AND l.revision = m.r
          WHERE l.deleted = 0`,
      ),
      readLog: db.prepare<[number, number, number], LogRow>(
        'SELECT * FROM kv_log WHERE revision >= ? AND revision <= ? ORDER BY revision, key LIMIT ?',
      ),
      readLogRevision: db.prepare<[number], LogRow>('SELECT * FROM kv_log WHERE revision = ? ORDER BY key'),
      previous: db.prepare<[string, number], LogRow>(
        'SELECT * FROM kv_log WHERE key = ? AND revision < ? ORDER BY revision DESC LIMIT 1',
      ),
      compactStep: db.prepare<[number, number, number, number]>(
        `DELETE FROM kv_log
          WHERE revision > ? AND revision <= ?
            AND (deleted = 1 OR EXISTS (
                  SELECT 1 FROM kv_log n WHERE n.key = kv_log.key AND n.revision > kv_log.revision AND n.revision <= ?))
            AND revision <= ?`,
      ),
      insertAudit: db.prepare(
        `INSERT INTO audit (ts, principal, action, key, old_version, new_version, revision, request_id, source, outcome, details)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      // One transaction function for every group commit (built once, not per batch).
      commitBatch: db.transaction((batch: CommitBatch, head: number) => {
        const st = this.stmts;
        for (const e of batch.entries) {
          st.insertLog.run(e.key, e.revision, e.createRevision, e.version, e.lease, e.value, e.deleted ? 1 : 0, e.ts, e.meta);
        }
        for (const l of batch.leaseGrants) st.insertLease.run(l.id, l.grantedTtl, l.expiresAt);
        for (const id of batch.leaseRevokes) st.deleteLease.run(id);
        for (const a of batch.audit ?? []) this.insertAudit(a);
        if (batch.revision !== head) st.setMeta.run(batch.revision, 'revision');
      }),
      minRevision: db.prepare<[], { r: number | null }>('SELECT min(revision) AS r FROM kv_log'),
    };
  }

  private readState(): BackendState {
    return {
      revision: this.stmts.getMeta.get('revision')?.value ?? 0,
      compactRevision: this.stmts.getMeta.get('compact_revision')?.value ?? 0,
    };
  }

  async loadView(visit: (kv: KeyValue) => void): Promise<number> {
    const state = this.readState();
    for (const row of this.stmts.loadView.iterate()) visit(rowToKv(row));
    return state.revision;
  }

  async loadLeases(): Promise<Lease[]> {
    return this.stmts.allLeases.all().map((r) => ({ id: r.id, grantedTtl: r.ttl, expiresAt: r.expires_at }));
  }

  async headRevision(): Promise<number> {
    return this.stmts.getMeta.get('revision')?.value ?? 0;
  }

  async commit(_appliedRevision: number, plan: CommitPlanner): Promise<CommitBatch> {
    const s = this.stmts;
    const head = s.getMeta.get('revision')?.value ?? 0;
    const batch = plan([], head);
    try {
      s.commitBatch.immediate(batch, head);
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
    // The latest row of each key at or below the revision; LIMIT is pushed down so a huge range
    // never has to be materialised, and the count is a separate aggregate that loads no values.
    const latest = `SELECT key, max(revision) AS r FROM kv_log WHERE ${where} AND revision <= ? GROUP BY key`;
    const limitSql = q.limit > 0 ? ' LIMIT ?' : '';
    const rows = db
      .prepare<unknown[], LogRow>(
        `SELECT l.* FROM kv_log l JOIN (${latest}) m ON l.key = m.key AND l.revision = m.r WHERE l.deleted = 0 ORDER BY l.key${limitSql}`,
      )
      .all(...params, q.revision, ...(q.limit > 0 ? [q.limit + 1] : []));
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

  async readLog(fromRevision: number, toRevision: number, limit: number): Promise<LogEntry[]> {
    const rows = this.stmts.readLog.all(fromRevision, toRevision, limit);
    // Never split a revision: finish the last one read.
    if (rows.length === limit && rows.length > 0) {
      const last = rows[rows.length - 1] as LogRow;
      const all = this.stmts.readLogRevision.all(last.revision);
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
      const db = this.conn;
      const s = this.stmts;
      const old = s.getMeta.get('compact_revision')?.value ?? 0;
      if (revision <= old) return;
      s.setMeta.run(revision, 'compact_revision');
      const start = Math.max(0, (s.minRevision.get()?.r ?? 1) - 1);
      for (let lo = start; lo < revision; lo += COMPACT_STEP_REVISIONS) {
        const hi = Math.min(revision, lo + COMPACT_STEP_REVISIONS);
        db.transaction(() => s.compactStep.run(lo, hi, revision, revision)).immediate();
        // Yield between steps so reads and writes keep flowing during a long compaction.
        await new Promise((r) => setImmediate(r));
        if (this.db === undefined) return;
      }
    };
    this.compacting = this.compacting.then(run, run);
    return this.compacting;
  }

  async keepAlive(_id: number, _expiresAt: number): Promise<void> {
    // One node: the lessor's memory is the truth; leases are re-armed with their full TTL at start (etcd semantics).
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

  private insertAudit(a: AuditRecord): void {
    this.stmts.insertAudit.run(a.ts, a.principal, a.action, a.key, a.oldVersion, a.newVersion, a.revision, a.requestId, a.source, a.outcome, a.details);
  }

  async appendAudit(records: AuditRecord[]): Promise<void> {
    try {
      this.conn.transaction(() => {
        for (const a of records) this.insertAudit(a);
      }).immediate();
    } catch (err) {
      throw new UnavailableError(`the SQLite backend could not write the audit log: ${(err as Error).message}`, { cause: err });
    }
  }

  async queryAudit(q: AuditQuery): Promise<AuditRecord[]> {
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
    if (q.keyPrefix !== undefined && q.keyPrefix !== '') {
      // A byte-ordered range, not substr(): SQLite counts characters, JavaScript UTF-16 units.
      const end = prefixEnd(q.keyPrefix);
      where.push(end === null ? 'key >= ?' : 'key >= ? AND key < ?');
      params.push(q.keyPrefix, ...(end === null ? [] : [end]));
    }
    const sql = `SELECT * FROM audit ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id LIMIT ?`;
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
    return this.conn.prepare<[number]>('DELETE FROM audit WHERE ts < ?').run(beforeTs).changes;
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

  async close(): Promise<void> {
    await this.compacting.catch(() => undefined);
    const db = this.db;
    this.db = undefined;
    this.prepared = undefined;
    db?.close();
  }
}
