/**
 * The PostgreSQL backend: many stateless Beacon nodes share one database. One counter row,
 * locked inside every write transaction, orders revisions; every commit NOTIFYs the other nodes.
 */
import Database from 'better-sqlite3';
import { createHash, randomInt } from 'node:crypto';
import pg from 'pg';
import { BeaconError, InvalidArgumentError, NotFoundError, UnavailableError } from '../../errors.js';
import type { AuditQuery, AuditRecord, KeyValue, Lease, LogEntry } from '../../mvcc/index.js';
import { SqliteBackend } from '../sqlite/sqlite-backend.js';
import { pruneRange, type PruneRow } from '../retention.js';
import type { AdoptionRow, Backend, BackendRangeQuery, BackendState, CommitBatch, CommitPlanner, HistoryFloor, LogRange, PruneResult, RetentionRule } from '../types.js';
import { migrate } from './migrate.js';

/**
 * The LISTEN/NOTIFY channel of a store in the `public` schema (elsewhere a per-schema suffix is
 * added, see {@link PostgresBackend.channel}); the payload is `revision:leaseSeq:compactRevision`.
 */
export const CHANGES_CHANNEL = 'beacon_changes';
/** The session advisory lock whose holder drives lease expiry, for a store in the `public` schema ("beacn" + 2). */
export const EXPIRY_LOCK_KEY = 0x6265_6163_6e02;

/** Default connections per node in the pool (commits in flight use up to {@link PIPELINE_DEPTH}; reads and followers the rest). */
export const DEFAULT_POOL_MAX = 10;
/**
 * How many write batches of one node may be in flight at once (chained commits, migration 009):
 * each on its own pooled connection, planned on top of the one before, committed in order.
 * At most the pool size minus two, so reads and the change feed always find a connection.
 */
export const PIPELINE_DEPTH = 4;
/** The SQLSTATE `beacon_commit_chained` raises when the head is not the one its batch was planned on (migration 009). */
const STALE_HEAD = 'BCN01';
/** How long to wait for a connection, in ms, before a request fails with `unavailable`. */
export const CONNECT_TIMEOUT_MS = 3000;
/** The longest any statement may run (server side) and any query may wait (client side), in ms. */
export const STATEMENT_TIMEOUT_MS = 10_000;
/** How long a transaction may sit idle before PostgreSQL ends it, so a frozen node cannot hold the counter lock, in ms. */
export const IDLE_IN_TRANSACTION_TIMEOUT_MS = 5000;
/** A node whose membership row is older than this no longer holds back physical compaction, in ms. */
export const NODE_LIVE_MS = 10_000;
/** How long a revoked lease stays as a tombstone for followers to learn of it, in ms. */
export const LEASE_TOMBSTONE_MS = 10 * 60_000;

/** Revisions deleted per compaction step, so a compaction never holds locks or I/O for long. */
const COMPACT_STEP_REVISIONS = 2000;
/** Rows per page when rebuilding the view or writing a snapshot. */
const PAGE_ROWS = 5000;
/** Adoption reports upserted per statement (issue 16). */
const ADOPTION_BATCH = 1000;

/** The key prefix the (key, revision) index holds; see migrations/001_init.sql. */
const KP = 'substring(key from 1 for 2000)';
const KP_PARAM = (n: number): string => `substring($${n}::bytea from 1 for 2000)`;
const LOG_COLUMNS = 'key, revision, create_revision, version, lease, value, deleted, ts, meta, encrypted';

/** int8 as a JavaScript number: revisions, lease ids and times stay below 2^53. */
const TYPES = new pg.TypeOverrides();
TYPES.setTypeParser(20, (v: string) => Number(v));

interface LogRow {
  key: Buffer;
  revision: number;
  create_revision: number;
  version: number;
  lease: number;
  value: Buffer;
  deleted: boolean;
  ts: number;
  meta: string | null;
  /** True when the store sealed the value (migration 004). */
  encrypted: boolean;
}

interface MetaRow {
  revision: number;
  /** The token of the batch that wrote `revision` (migration 009); 0 when an older node wrote it. */
  head_token: number;
  compact_revision: number;
  purged_revision: number;
  lease_seq: number;
}

/** The counters of the shared store: head revision, compact revision, lease change sequence. */
export interface HeadState {
  revision: number;
  compactRevision: number;
  leaseSeq: number;
  /** The cache ring's committed epoch (migration 011); 0 before the first commit. */
  ringEpoch: number;
}

/** The cache ring as committed in `beacon_cache_ring` (migration 011). */
export interface RingRecord {
  /** 0 when none was committed yet (then `members` is empty). */
  epoch: number;
  /**
   * The members; one with `leaving` owns no slot: it stopped advertising its RESP listener but
   * still heartbeats (a node stopping cleanly), and hands its slots over to their new primaries.
   */
  members: { id: string; url: string; respUrl: string; leaving?: boolean }[];
  /** Set by a node applying it: epochs between the one it had and this one are gone (pruned), so it cannot know what changed. */
  gap?: boolean;
  /**
   * Set by a node applying its first ring: the members of the epoch before it (when still
   * kept), so that the node knows which slots the previous primaries hand over to it.
   */
  previous?: RingRecord['members'];
}

/** One row of `beacon_leases` as followers read it: the lease's state after its latest change. */
export interface LeaseRow {
  id: number;
  ttl: number;
  expires_at: number;
  revoked: boolean;
  seq: number;
  /** The granting principal (migration 006); null before it. */
  owner: string | null;
}

/** A lease as the lessor takes it from a row of `beacon_leases`. */
function leaseOf(r: Pick<LeaseRow, 'id' | 'ttl' | 'expires_at' | 'owner'>): Lease {
  return { id: r.id, grantedTtl: r.ttl, expiresAt: r.expires_at, ...(r.owner !== null && r.owner !== undefined ? { owner: r.owner } : {}) };
}

/** Lease changes made on other nodes, to apply to this node's lessor (grants include keep-alives). */
export interface LeaseChanges {
  grants: Lease[];
  revokes: number[];
}

/** What a follower reads in one consistent snapshot. */
export interface ChangeSet {
  /** Log entries after the asked revision, whole revisions in revision then key order. */
  entries: LogEntry[];
  /** The head revision in the snapshot. */
  head: number;
  compactRevision: number;
  /**
   * History at or below this revision may be physically gone (compaction, or history retention
   * removing a superseded row): a follower whose view is older cannot catch up from the log (it
   * would miss deletes or versions) and must rebuild its view.
   */
  purgedRevision: number;
  /** True when `entries` stop before `head` (read again). */
  more: boolean;
  /** Leases changed after the backend's lease sequence, in change order; pass to {@link PostgresBackend.takeLeaseChanges}. */
  leaseRows: LeaseRow[];
  /** The lease sequence in the snapshot. */
  leaseSeq: number;
}

/** A node's row in the membership table. Times in ms since the epoch; `ageMs` by the database clock. */
export interface NodeRecord {
  id: string;
  url: string;
  /** The node's RESP listener (`redis://host:port`), '' when it has none. */
  respUrl: string;
  /** Cache keys the node holds (migration 011). */
  cacheKeys: number;
  version: string;
  startedAt: number;
  appliedRevision: number;
  ready: boolean;
  expiryLeader: boolean;
  ageMs: number;
}

function toBuf(s: string): Buffer {
  return Buffer.from(s, 'utf8');
}

function asBuffer(v: Uint8Array): Buffer {
  return Buffer.isBuffer(v) ? v : Buffer.from(v.buffer, v.byteOffset, v.byteLength);
}

function rowToEntry(r: LogRow): LogEntry {
  const e: LogEntry = {
    key: r.key.toString('utf8'),
    revision: r.revision,
    createRevision: r.create_revision,
    version: r.version,
    lease: r.lease,
    value: r.value,
    deleted: r.deleted,
    ts: r.ts,
    meta: r.meta,
  };
  if (r.encrypted) e.encrypted = true;
  return e;
}

function rowToKv(r: LogRow): KeyValue {
  const kv: KeyValue = {
    key: r.key.toString('utf8'),
    value: r.value,
    createRevision: r.create_revision,
    modRevision: r.revision,
    version: r.version,
    lease: r.lease,
  };
  if (r.encrypted) kv.encrypted = true;
  return kv;
}

/** A URL without its password, for logs and status. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password !== '') u.password = '***';
    if (u.searchParams.has('password')) u.searchParams.set('password', '***');
    return u.toString();
  } catch {
    return 'postgres://(unparseable URL)';
  }
}

/** Options of {@link PostgresBackend}. */
export interface PostgresBackendOptions {
  /** `postgres://user:pass@host:port/db?…`; `pool_max=N` sets the pool size (default {@link DEFAULT_POOL_MAX}). */
  url: string;
}

/**
 * Beacon's storage on PostgreSQL. Every method rejects with {@link UnavailableError} when the
 * database cannot be reached within the timeouts above, so callers fail fast and retry.
 *
 * Besides the {@link Backend} contract it offers what a follower (src/node/cluster.ts) needs:
 * {@link readChanges}, {@link takeLeaseChanges}, {@link onLeaseChanges}, dedicated sessions for
 * LISTEN and the expiry advisory lock, and the membership table.
 */
export class PostgresBackend implements Backend {
  /** Several nodes share this store: keep-alives are persisted and leases keep their stored expiry at start. */
  readonly shared = true;
  readonly description: string;
  private readonly config: pg.PoolConfig;
  private pool: pg.Pool | undefined;
  private closed = false;
  private compacting: Promise<void> = Promise.resolve();
  private pruning: Promise<unknown> = Promise.resolve();
  /** Set when close() starts: a retention pass stops at its next batch. */
  private closing = false;
  private _leaseSeq = 0;
  private urlOptions: string | undefined;
  /** The NOTIFY channel of this store (per schema, so stores in different schemas of one database do not wake each other). */
  channel = CHANGES_CHANNEL;
  /** The advisory lock key of this store's expiry driver (per schema, like {@link channel}). */
  expiryLockKey = EXPIRY_LOCK_KEY;
  /** The server's `server_version_num` (e.g. 150004 for 15.4), known once {@link open} resolved; 0 before. */
  serverVersion = 0;
  /**
   * The cluster's identity: a random id made when the database was first migrated (migration
   * 012); every node on this database reads the same one at open. Empty before {@link open}.
   */
  clusterId = '';
  private lockedHead: number | undefined;
  /**
   * The head this node's last batch sent will leave (its revision and token), which the next
   * batch may be chained on; undefined when unknown (before the first commit, after a failure,
   * while a commit under the lock has not planned yet).
   */
  private chainTip: { revision: number; token: number } | undefined;
  /** Chained batches sent and not answered yet. */
  private chainInFlight = 0;
  /**
   * Set while other nodes write too (a commit under the lock found their revisions, or a chained
   * batch was refused): then every batch is planned under the lock, as a chained one would mostly
   * be refused after inserting its rows (work thrown away, dead rows). Cleared by a commit under
   * the lock that finds no other node wrote since this node's last.
   */
  private contended = false;
  /**
   * Counts of this node's commits since open: `chained` batches committed by one chained statement
   * (see {@link commitPipelined}), `locked` batches committed under the lock, `refused` chained
   * batches that found another head (nothing written; planned again). For tests and diagnostics.
   */
  readonly commitStats = { chained: 0, locked: 0, refused: 0 };
  /** See {@link Backend.pipelineDepth}. */
  readonly pipelineDepth: number;
  /** The newest revision and lease sequence this node's own commits wrote (or are writing). */
  private ownRevision = 0;
  private ownLeaseSeq = 0;
  private commitWaiters: (() => void)[] = [];
  private keepAliveQueue = new Map<number, { expiresAt: number; waiters: { resolve: () => void; reject: (e: unknown) => void }[] }>();
  private keepAliveScheduled = false;
  /**
   * Called synchronously inside {@link commit}, under the write lock and before planning, with
   * lease changes other nodes made since this node last saw them, so a txn on this node may use
   * a lease granted on another node a moment ago. The cluster wires it to the store's lessor.
   */
  onLeaseChanges: ((changes: LeaseChanges) => void) | undefined;
  /** Called with every connection error the pool reports for idle connections (for logs). */
  onPoolError: ((err: Error) => void) | undefined;
  /**
   * The node this backend serves, set before the store opens. {@link loadView} then registers it
   * in `beacon_nodes` (not ready, applied revision = the head it is about to load) before taking
   * its snapshot, and keeps the row fresh while loading, so compaction and history retention (which
   * only remove what every live node applied) cannot delete history this node still has to follow.
   */
  startingNode: { id: string; version: string; startedAt: number } | undefined;

  /** @throws InvalidArgumentError for a URL that cannot be parsed. */
  constructor(opts: PostgresBackendOptions) {
    let u: URL;
    try {
      u = new URL(opts.url);
    } catch {
      throw new InvalidArgumentError('the PostgreSQL backend URL cannot be parsed (expected postgres://user:password@host:port/database)');
    }
    const poolMax = Number(u.searchParams.get('pool_max') ?? DEFAULT_POOL_MAX);
    u.searchParams.delete('pool_max');
    // Server options from the URL are merged with the follower session's own (see openSession).
    this.urlOptions = u.searchParams.get('options') ?? undefined;
    u.searchParams.delete('options');
    this.description = redactUrl(opts.url.replace(/[?&]pool_max=[^&]*/, ''));
    this.config = {
      connectionString: u.toString(),
      max: Number.isInteger(poolMax) && poolMax >= 2 ? poolMax : DEFAULT_POOL_MAX,
      connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
      statement_timeout: STATEMENT_TIMEOUT_MS,
      query_timeout: STATEMENT_TIMEOUT_MS + 1000,
      idle_in_transaction_session_timeout: IDLE_IN_TRANSACTION_TIMEOUT_MS,
      keepAlive: true,
      keepAliveInitialDelayMillis: 5000,
      application_name: 'beacon',
      types: TYPES,
      ...(this.urlOptions === undefined ? {} : { options: this.urlOptions }),
    };
    this.pipelineDepth = Math.max(1, Math.min(PIPELINE_DEPTH, (this.config.max ?? DEFAULT_POOL_MAX) - 2));
  }

  /** The lease change sequence this node has applied (see beacon_meta.lease_seq). */
  get leaseSeq(): number {
    return this._leaseSeq;
  }

  private get db(): pg.Pool {
    if (this.pool === undefined || this.closed) throw new UnavailableError('the PostgreSQL backend is closed');
    return this.pool;
  }

  private fail(what: string, err: unknown): BeaconError {
    if (err instanceof BeaconError) return err;
    const msg = err instanceof Error ? err.message : String(err);
    return new UnavailableError(`PostgreSQL ${what} failed: ${msg}`, { cause: err });
  }

  /** Runs one query on the pool, turning every failure into UnavailableError. */
  private async q<R extends pg.QueryResultRow>(what: string, sql: string, params: unknown[] = []): Promise<pg.QueryResult<R>> {
    try {
      return await this.db.query<R>(sql, params);
    } catch (err) {
      throw this.fail(what, err);
    }
  }

  /**
   * Checks out a connection for a transaction. A connection that fails while checked out emits
   * 'error' with no pool listener attached, which would crash the process; `done` removes ours.
   */
  private async checkout(what: string): Promise<{ client: pg.PoolClient; done: (broken: boolean) => void }> {
    let client: pg.PoolClient;
    try {
      client = await this.db.connect();
    } catch (err) {
      throw this.fail(what, err);
    }
    let broken = false;
    const onError = (): void => {
      broken = true;
    };
    client.on('error', onError);
    return {
      client,
      done: (b) => {
        client.removeListener('error', onError);
        client.release(b || broken);
      },
    };
  }

  /** Runs `body` in a transaction (`begin` is the BEGIN statement); rolls back and maps errors on failure. */
  private async tx<T>(what: string, begin: string, body: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    const { client, done } = await this.checkout(what);
    try {
      await client.query(begin);
      const out = await body(client);
      await client.query('COMMIT');
      done(false);
      return out;
    } catch (err) {
      await abandon(client, done, err);
      throw this.fail(what, err);
    }
  }

  /** A snapshot read: every statement inside sees the same committed state. */
  private readTx<T>(what: string, body: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    return this.tx(what, 'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY', body);
  }

  async open(): Promise<BackendState> {
    this.closed = false;
    this.closing = false;
    const pool = new pg.Pool(this.config);
    pool.on('error', (err) => this.onPoolError?.(err)); // an idle connection died (e.g. PostgreSQL restarted)
    this.pool = pool;
    let session: Awaited<ReturnType<PostgresBackend['checkout']>>;
    try {
      session = await this.checkout(`open of ${this.description}`);
    } catch (err) {
      this.pool = undefined;
      await pool.end().catch(() => undefined);
      throw err;
    }
    const { client, done } = session;
    try {
      await migrate(client, this.description);
      const schema = (await client.query<{ s: string }>('SELECT current_schema() AS s')).rows[0]?.s ?? 'public';
      if (schema !== 'public') {
        const h = createHash('sha256').update(schema).digest('hex').slice(0, 12);
        this.channel = `${CHANGES_CHANNEL}_${h}`;
        this.expiryLockKey = Number.parseInt(h, 16);
      }
      const ver = await client.query<{ v: string }>("SELECT current_setting('server_version_num') AS v");
      this.serverVersion = Number(ver.rows[0]?.v ?? 0);
      const meta = await client.query<MetaRow & { cluster_id: string }>('SELECT revision, compact_revision, lease_seq, cluster_id FROM beacon_meta WHERE id = 1');
      const m = meta.rows[0];
      if (m === undefined) throw new UnavailableError(`the database ${this.description} has no beacon_meta row; it is damaged`);
      this.clusterId = m.cluster_id;
      done(false);
      return { revision: m.revision, compactRevision: m.compact_revision };
    } catch (err) {
      done(true);
      await pool.end().catch(() => undefined);
      this.pool = undefined;
      throw this.fail(`open of ${this.description}`, err);
    }
  }

  async loadView(visit: (kv: KeyValue) => void): Promise<number> {
    const n = this.startingNode;
    if (n === undefined) return this.loadSnapshot(visit);
    // Registered at the head read now: the snapshot below is at or after it.
    await this.q(
      'node registration',
      `INSERT INTO beacon_nodes (id, url, version, started_at, applied_revision, ready, expiry_leader, last_seen)
       SELECT $1, '', $2, $3, revision, false, false, now() FROM beacon_meta WHERE id = 1
       ON CONFLICT (id) DO UPDATE SET applied_revision = excluded.applied_revision, ready = false, last_seen = now()`,
      [n.id, n.version, n.startedAt],
    );
    const refresh = setInterval(() => {
      this.q('node registration', 'UPDATE beacon_nodes SET last_seen = now() WHERE id = $1', [n.id]).catch(() => undefined);
    }, Math.min(1000, NODE_LIVE_MS / 4));
    refresh.unref();
    try {
      return await this.loadSnapshot(visit);
    } finally {
      clearInterval(refresh);
    }
  }

  private loadSnapshot(visit: (kv: KeyValue) => void): Promise<number> {
    return this.readTx('view load', async (c) => {
      const meta = await c.query<MetaRow>('SELECT revision FROM beacon_meta WHERE id = 1');
      // Keyset pages over the (key prefix, revision) index: the newest entry of each key.
      let after: Buffer | undefined;
      for (;;) {
        const params: unknown[] = [PAGE_ROWS];
        let where = '';
        if (after !== undefined) {
          params.push(after);
          where = `WHERE ${KP} >= ${KP_PARAM(2)} AND key > $2`;
        }
        const res = await c.query<LogRow>(
          `SELECT DISTINCT ON (${KP}, key) ${LOG_COLUMNS} FROM beacon_kv_log ${where}
            ORDER BY ${KP}, key, revision DESC LIMIT $1`,
          params,
        );
        for (const r of res.rows) if (!r.deleted) visit(rowToKv(r));
        if (res.rows.length < PAGE_ROWS) break;
        after = (res.rows[res.rows.length - 1] as LogRow).key;
      }
      return meta.rows[0]?.revision ?? 0;
    });
  }

  async loadLeases(): Promise<Lease[]> {
    return this.readTx('lease load', async (c) => {
      const meta = await c.query<MetaRow>('SELECT lease_seq FROM beacon_meta WHERE id = 1');
      const res = await c.query<LeaseRow>('SELECT id, ttl, expires_at, owner FROM beacon_leases WHERE NOT revoked');
      this._leaseSeq = Math.max(this._leaseSeq, meta.rows[0]?.lease_seq ?? 0);
      return res.rows.map(leaseOf);
    });
  }

  async headRevision(): Promise<number> {
    const res = await this.q<MetaRow>('head revision read', 'SELECT revision FROM beacon_meta WHERE id = 1');
    return res.rows[0]?.revision ?? 0;
  }

  /**
   * Filters lease rows read at lease sequence `snapshotSeq` down to the changes this node has not
   * applied yet, and records that it has. Synchronous, so the caller applies them before any
   * other commit can interleave.
   */
  takeLeaseChanges(rows: LeaseRow[], snapshotSeq: number): LeaseChanges {
    const grants: Lease[] = [];
    const revokes: number[] = [];
    for (const r of rows) {
      if (r.seq <= this._leaseSeq) continue;
      if (r.revoked) revokes.push(r.id);
      else grants.push(leaseOf(r));
    }
    this._leaseSeq = Math.max(this._leaseSeq, snapshotSeq);
    return { grants, revokes };
  }

  /**
   * The write path. When this node wrote the head it has applied (it knows the head's token), the
   * batch is planned on the view as it is and sent as one chained statement (one round trip, see
   * {@link commitPipelined}); if another node wrote meanwhile, or the batch changes leases, it is
   * planned again under the lock ({@link commitLocked}).
   */
  async commit(appliedRevision: number, plan: CommitPlanner): Promise<CommitBatch> {
    const tip = this.chainTip;
    if (tip !== undefined && tip.revision === appliedRevision && this.chainInFlight === 0 && !this.contended) {
      const batch = plan([], appliedRevision);
      if (chainable(batch)) {
        const out = await this.sendChained(batch, tip);
        if (out !== undefined) return out;
        // The head moved (another node wrote): plan again under the lock with what it wrote.
      }
    }
    return this.commitLocked(appliedRevision, plan);
  }

  /**
   * Commits `batch`, planned by this node on top of its batch still in flight that ends at
   * `afterRevision`, in one statement on its own connection (`beacon_commit_chained`, migration
   * 009): its log rows are inserted at once, in parallel with the batches before it, and its head
   * update waits for the batch before to commit, then checks it is that batch's head (revision and
   * token). So batches commit, and become visible to every reader, strictly in revision order,
   * and a batch whose predecessor failed is refused with nothing written. Only key writes chain
   * (no lease grant, revoke or lease-bound put: those are planned under the lock, where this
   * node first learns every other node's lease changes).
   */
  commitPipelined(afterRevision: number, batch: CommitBatch): Promise<CommitBatch | undefined> | undefined {
    const tip = this.chainTip;
    if (this.closed || this.contended || tip === undefined || tip.revision !== afterRevision || !chainable(batch)) return undefined;
    return this.sendChained(batch, tip);
  }

  private async sendChained(batch: CommitBatch, expect: { revision: number; token: number }): Promise<CommitBatch | undefined> {
    const token = newToken(expect.token);
    this.chainTip = { revision: batch.revision, token };
    this.chainInFlight++;
    // Claimed before the commit can become visible, so its NOTIFY is known as this node's own. A
    // refused batch leaves the claim too high; the store plans its requests again at once under
    // the lock, which reads what other nodes wrote (and the heartbeat's head check would too).
    this.ownRevision = Math.max(this.ownRevision, batch.revision);
    try {
      await this.db.query(CHAINED_SQL, [expect.revision, expect.token, batch.revision, token, this.channel, ...chainedParams(batch)]);
      this.commitStats.chained++;
      return batch;
    } catch (err) {
      // Every batch chained after this one is refused as well; the next commit locks and learns the head.
      this.chainTip = undefined;
      if (err instanceof pg.DatabaseError && err.code === STALE_HEAD) {
        this.commitStats.refused++;
        this.contended = true;
        return undefined;
      }
      throw this.fail('commit', err);
    } finally {
      this.chainInFlight--;
    }
  }

  /**
   * The write path under the lock. Locks the counter row, reads what other nodes committed after
   * `appliedRevision`, lets `plan` decide the batch against that state, writes it with the new
   * head revision and token and commits. The lock is held until COMMIT, so the next writer on any
   * node reads a head that includes this batch: revisions are allocated and made visible in order.
   */
  private async commitLocked(appliedRevision: number, plan: CommitPlanner): Promise<CommitBatch> {
    // Nothing may chain on an earlier plan while this one is being made.
    this.chainTip = undefined;
    const { client, done } = await this.checkout('commit');
    let leaseSeqAfter = 0;
    let revisionAfter = 0;
    try {
      // One round trip: BEGIN and the lock as one simple-protocol message (no parameters).
      // purged_revision here also covers rows history retention removed (retained_revision).
      const results = (await client.query(
        'BEGIN; SELECT revision, head_token, greatest(purged_revision, retained_revision) AS purged_revision, lease_seq FROM beacon_meta WHERE id = 1 FOR UPDATE',
      )) as unknown as
        pg.QueryResult<MetaRow>[];
      const m = results[1]?.rows[0];
      if (m === undefined) throw new UnavailableError('beacon_meta has no row; the database is damaged');
      const head = m.revision;
      this.lockedHead = head;
      this.contended = head > appliedRevision;
      if (head < appliedRevision) {
        // The database lost revisions this node applied (restored from a backup, or an asynchronous
        // replica promoted): writing now would reuse revision numbers that watchers already saw.
        throw new UnavailableError(
          `the database is at revision ${head}, behind this node's view at ${appliedRevision}: it was restored or failed over with data loss; restart every Beacon node`,
          { details: { databaseRevision: head, viewRevision: appliedRevision } },
        );
      }
      if (head > appliedRevision && m.purged_revision > appliedRevision) {
        throw new UnavailableError(
          `this node's view (revision ${appliedRevision}) fell behind a compaction or history retention (history deleted up to ${m.purged_revision}); restart the node`,
        );
      }
      let missed: LogEntry[] = [];
      if (head > appliedRevision) {
        const res = await client.query<LogRow>(
          `SELECT ${LOG_COLUMNS} FROM beacon_kv_log WHERE revision > $1 AND revision <= $2 ORDER BY revision, key`,
          [appliedRevision, head],
        );
        missed = res.rows.map(rowToEntry);
      }
      if (m.lease_seq > this._leaseSeq) {
        const res = await client.query<LeaseRow>(
          'SELECT id, ttl, expires_at, revoked, seq, owner FROM beacon_leases WHERE seq > $1 ORDER BY seq',
          [this._leaseSeq],
        );
        const changes = this.takeLeaseChanges(res.rows, m.lease_seq);
        if (changes.grants.length > 0 || changes.revokes.length > 0) this.onLeaseChanges?.(changes);
      }
      const batch = plan(missed, head);
      const leasesChanged = batch.leaseGrants.length > 0 || batch.leaseRevokes.length > 0;
      leaseSeqAfter = leasesChanged ? m.lease_seq + 1 : m.lease_seq;
      revisionAfter = batch.revision;
      if (batch.entries.length > 0 || leasesChanged || (batch.audit?.length ?? 0) > 0) {
        const token = newToken(m.head_token);
        // The next batch may chain on this one from now (it waits for this COMMIT in PostgreSQL).
        this.chainTip = { revision: Math.max(head, batch.revision), token };
        // $31 (after the NOTIFY channel, $30): whether each entry's value was sealed by the store; $32 the head's token.
        await client.query(WRITE_SQL, [...writeParams(batch, head, leaseSeqAfter), this.channel, batch.entries.map((e) => e.encrypted === true), token]);
        // Only from here can the batch become visible; raised before COMMIT returns, so a NOTIFY of
        // our own commit that arrives first is recognised (isOwnChange). A batch that failed
        // before this point never claims its revision, so another node's commit of it is applied.
        const commitDone = client.query('COMMIT');
        this.ownRevision = Math.max(this.ownRevision, revisionAfter);
        this.ownLeaseSeq = Math.max(this.ownLeaseSeq, leaseSeqAfter);
        await commitDone;
      } else {
        this.chainTip = { revision: head, token: m.head_token };
        await client.query('ROLLBACK'); // nothing to write (every txn failed its compares)
      }
      done(false);
      this.commitStats.locked++;
      this._leaseSeq = Math.max(this._leaseSeq, leaseSeqAfter);
      this.settleCommit(); // synchronously before the store applies the batch (in this same turn)
      return batch;
    } catch (err) {
      this.chainTip = undefined;
      await abandon(client, done, err);
      // The outcome of a COMMIT that lost its connection is unknown: the follower applies it if it happened.
      this.settleCommit();
      throw this.fail('commit', err);
    }
  }

  /**
   * The highest revision a follower may apply now. While this node's commit holds the counter lock
   * at head `h`, revisions above `h` can only be that commit's own, which the store applies itself
   * when the commit resolves; a follower applying them first would publish them twice.
   */
  get followLimit(): number {
    return this.lockedHead ?? Number.MAX_SAFE_INTEGER;
  }

  /**
   * Whether a change notification `revision:leaseSeq` announces only this node's own writes
   * (which the store applies itself), so the follower need not read the log for it.
   */
  isOwnChange(revision: number, leaseSeq: number): boolean {
    return revision <= this.ownRevision && leaseSeq <= Math.max(this.ownLeaseSeq, this._leaseSeq);
  }

  /** Resolves once no commit of this node holds the counter lock. */
  whenCommitSettled(): Promise<void> {
    if (this.lockedHead === undefined) return Promise.resolve();
    return new Promise((resolve) => this.commitWaiters.push(resolve));
  }

  private settleCommit(): void {
    this.lockedHead = undefined;
    const waiters = this.commitWaiters;
    this.commitWaiters = [];
    // After the store's continuation (a microtask of this turn) has applied the batch.
    if (waiters.length > 0) setImmediate(() => waiters.forEach((w) => w()));
  }

  /** Reads, in one snapshot, what followers apply: log entries after `fromRevision` (at most about `limit`) and changed leases. */
  async readChanges(fromRevision: number, limit: number): Promise<ChangeSet> {
    const from = Math.trunc(fromRevision);
    const seq = Math.trunc(this._leaseSeq);
    const n = Math.max(1, Math.trunc(limit));
    if (!Number.isSafeInteger(from) || !Number.isSafeInteger(seq) || !Number.isSafeInteger(n)) {
      throw new InvalidArgumentError('readChanges needs integer revisions and limit');
    }
    // One round trip on the latency path of every cross-node watch: the snapshot, the counters,
    // the changed leases and a page of the log as one simple-protocol message. Only integers
    // (checked above) are inlined; no text reaches the SQL.
    const { client, done } = await this.checkout('change feed read');
    let results: pg.QueryResult[];
    try {
      results = (await client.query(
        `BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;
         SELECT revision, compact_revision, greatest(purged_revision, retained_revision) AS purged_revision, lease_seq FROM beacon_meta WHERE id = 1;
         SELECT id, ttl, expires_at, revoked, seq, owner FROM beacon_leases WHERE seq > ${seq} ORDER BY seq;
         SELECT ${LOG_COLUMNS} FROM beacon_kv_log WHERE revision > ${from} ORDER BY revision, key LIMIT ${n + 1};
         COMMIT`,
      )) as unknown as pg.QueryResult[];
      done(false);
    } catch (err) {
      await abandon(client, done, err);
      throw this.fail('change feed read', err);
    }
    const m = (results[1]?.rows[0] as MetaRow | undefined) ?? { revision: 0, compact_revision: 0, purged_revision: 0, lease_seq: 0 };
    const leaseRows = (results[2]?.rows ?? []) as LeaseRow[];
    const rows = ((results[3]?.rows ?? []) as LogRow[]).filter((r) => r.revision <= m.revision);
    let entries: LogEntry[];
    let more = false;
    if (rows.length > n) {
      // The page may end inside a revision: keep whole revisions only, the rest comes next time.
      const lastRevision = (rows[n] as LogRow).revision;
      const whole = rows.filter((r) => r.revision < lastRevision);
      if (whole.length === 0) {
        // One revision larger than the page: read it whole (a rare, huge txn or revoke).
        entries = await this.readLog(from + 1, lastRevision, n);
      } else {
        entries = whole.map(rowToEntry);
      }
      more = true;
    } else {
      entries = rows.map(rowToEntry);
    }
    return {
      entries,
      head: m.revision,
      compactRevision: m.compact_revision,
      purgedRevision: m.purged_revision,
      more,
      leaseRows,
      leaseSeq: m.lease_seq,
    };
  }

  /**
   * Reads every lease that is not revoked and the lease sequence, in one snapshot, to reconcile a
   * follower's lessor after a reconnect (tombstones older than {@link LEASE_TOMBSTONE_MS} are gone).
   */
  async readAllLeases(): Promise<{ leases: Lease[]; leaseSeq: number }> {
    return this.readTx('lease read', async (c) => {
      const meta = await c.query<MetaRow>('SELECT lease_seq FROM beacon_meta WHERE id = 1');
      const res = await c.query<LeaseRow>('SELECT id, ttl, expires_at, owner FROM beacon_leases WHERE NOT revoked');
      return {
        leases: res.rows.map(leaseOf),
        leaseSeq: meta.rows[0]?.lease_seq ?? 0,
      };
    });
  }

  /**
   * Delivers (through {@link onLeaseChanges}) the lease changes other nodes committed that this
   * node has not applied yet. For a lease lookup that missed right after another node granted
   * the lease, before the change feed brought it here: call it and look again.
   */
  async syncLeases(): Promise<void> {
    const { rows, seq } = await this.readTx('lease read', async (c) => {
      const meta = await c.query<MetaRow>('SELECT lease_seq FROM beacon_meta WHERE id = 1');
      const at = meta.rows[0]?.lease_seq ?? 0;
      if (at <= this._leaseSeq) return { rows: [] as LeaseRow[], seq: at };
      const res = await c.query<LeaseRow>('SELECT id, ttl, expires_at, revoked, seq, owner FROM beacon_leases WHERE seq > $1 ORDER BY seq', [
        this._leaseSeq,
      ]);
      return { rows: res.rows, seq: at };
    });
    const changes = this.takeLeaseChanges(rows, seq);
    if (changes.grants.length > 0 || changes.revokes.length > 0) this.onLeaseChanges?.(changes);
  }

  /** Records that a reconcile at `leaseSeq` brought this node's lessor up to date. */
  noteLeaseSeq(leaseSeq: number): void {
    this._leaseSeq = Math.max(this._leaseSeq, leaseSeq);
  }

  async range(q: BackendRangeQuery): Promise<{ kvs: KeyValue[]; more: boolean; count: number }> {
    const params: unknown[] = [toBuf(q.key), q.revision];
    let where: string;
    if (q.rangeEnd === undefined) {
      where = `${KP} = ${KP_PARAM(1)} AND key = $1`;
    } else if (q.rangeEnd === null) {
      where = `${KP} >= ${KP_PARAM(1)} AND key >= $1`;
    } else {
      params.push(toBuf(q.rangeEnd));
      where = `${KP} >= ${KP_PARAM(1)} AND ${KP} <= ${KP_PARAM(3)} AND key >= $1 AND key < $3`;
    }
    params.push(q.limit > 0 ? q.limit : null);
    const limitParam = `$${params.length}`;
    const res = await this.q<LogRow & { total: number }>(
      'range read',
      `SELECT *, count(*) OVER () AS total FROM (
         SELECT DISTINCT ON (${KP}, key) ${LOG_COLUMNS}, ${KP} AS kp FROM beacon_kv_log
          WHERE ${where} AND revision <= $2
          ORDER BY ${KP}, key, revision DESC) latest
        WHERE NOT deleted ORDER BY kp, key LIMIT ${limitParam}`,
      params,
    );
    const count = res.rows[0]?.total ?? 0;
    return { kvs: res.rows.map(rowToKv), more: res.rows.length < count, count };
  }

  private async readLogOn(c: pg.ClientBase, fromRevision: number, toRevision: number, limit: number, range?: LogRange): Promise<LogEntry[]> {
    // A key range (watch catch-up) filters in the query, so other keys' values never leave the database.
    let keyWhere = '';
    const keyParams: Buffer[] = [];
    if (range !== undefined && range.rangeEnd === undefined) {
      keyWhere = ` AND ${KP} = ${KP_PARAM(4)} AND key = $4`;
      keyParams.push(toBuf(range.key));
    } else if (range !== undefined && !(range.key === '' && range.rangeEnd === null)) {
      keyWhere = ' AND key >= $4';
      keyParams.push(toBuf(range.key));
      if (typeof range.rangeEnd === 'string') {
        keyWhere += ' AND key < $5';
        keyParams.push(toBuf(range.rangeEnd));
      }
    }
    const res = await c.query<LogRow>(
      `SELECT ${LOG_COLUMNS} FROM beacon_kv_log WHERE revision >= $1 AND revision <= $2${keyWhere} ORDER BY revision, key LIMIT $3`,
      [fromRevision, toRevision, limit, ...keyParams],
    );
    const rows = res.rows;
    const last = rows[rows.length - 1];
    if (last !== undefined && rows.length === limit) {
      // Never split a revision: finish the last one read (within the same key range).
      const rest = await c.query<LogRow>(
        `SELECT ${LOG_COLUMNS} FROM beacon_kv_log WHERE revision = $1 AND key > $2${keyWhere.replace(/\$4/g, '$3').replace(/\$5/g, '$4')} ORDER BY key`,
        [last.revision, last.key, ...keyParams],
      );
      rows.push(...rest.rows);
    }
    return rows.map(rowToEntry);
  }

  async readLog(fromRevision: number, toRevision: number, limit: number, range?: LogRange): Promise<LogEntry[]> {
    const { client, done } = await this.checkout('log read');
    try {
      const out = await this.readLogOn(client, fromRevision, toRevision, limit, range);
      done(false);
      return out;
    } catch (err) {
      done(true);
      throw this.fail('log read', err);
    }
  }

  async history(
    key: string,
    opts: { fromRevision?: number; toRevision?: number; limit?: number; reverse?: boolean },
  ): Promise<LogEntry[]> {
    const order = opts.reverse ? 'DESC' : 'ASC';
    const limit = opts.limit && opts.limit > 0 ? opts.limit : null;
    const res = await this.q<LogRow>(
      'history read',
      `SELECT ${LOG_COLUMNS} FROM beacon_kv_log
        WHERE ${KP} = ${KP_PARAM(1)} AND key = $1 AND revision >= $2 AND revision <= $3
        ORDER BY revision ${order} LIMIT $4`,
      [toBuf(key), opts.fromRevision ?? 0, opts.toRevision ?? Number.MAX_SAFE_INTEGER, limit],
    );
    return res.rows.map(rowToEntry);
  }

  async previous(key: string, revision: number): Promise<LogEntry | undefined> {
    const res = await this.q<LogRow>(
      'history read',
      `SELECT ${LOG_COLUMNS} FROM beacon_kv_log
        WHERE ${KP} = ${KP_PARAM(1)} AND key = $1 AND revision < $2 ORDER BY revision DESC LIMIT 1`,
      [toBuf(key), revision],
    );
    const row = res.rows[0];
    return row === undefined ? undefined : rowToEntry(row);
  }

  async compact(revision: number): Promise<void> {
    const run = async (): Promise<void> => {
      // Record the compact revision first (readers then refuse older revisions), then delete in steps.
      await this.q(
        'compaction',
        `WITH m AS (UPDATE beacon_meta SET compact_revision = greatest(compact_revision, $1) WHERE id = 1
                    RETURNING revision, compact_revision, lease_seq)
         SELECT pg_notify($2, m.revision || ':' || m.lease_seq || ':' || m.compact_revision) FROM m`,
        [revision, this.channel],
      );
      await this.purge(NODE_LIVE_MS);
    };
    this.compacting = this.compacting.then(run, run);
    return this.compacting;
  }

  /**
   * Physically deletes compacted history in steps, but never past the revision every live node
   * has applied (`beacon_nodes`, seen within `liveMs`): a node catching up from the log must
   * still find every tombstone after its view's revision. The rest waits for a later call.
   */
  private async purge(liveMs: number): Promise<void> {
    const res = await this.q<{ purged: number; bound: number }>(
      'compaction',
      `SELECT m.purged_revision AS purged,
              least(m.compact_revision, coalesce((SELECT min(applied_revision) FROM beacon_nodes
                                                    WHERE last_seen > now() - make_interval(secs => $1::float8 / 1000)),
                                                 m.compact_revision)) AS bound
         FROM beacon_meta m WHERE id = 1`,
      [liveMs],
    );
    const row = res.rows[0];
    if (row === undefined || row.bound <= row.purged) return;
    for (let lo = row.purged; lo < row.bound; lo += COMPACT_STEP_REVISIONS) {
      if (this.closed) return;
      const hi = Math.min(row.bound, lo + COMPACT_STEP_REVISIONS);
      // Announce first, so a follower never reads a half-purged range believing it complete.
      await this.q('compaction', 'UPDATE beacon_meta SET purged_revision = greatest(purged_revision, $1) WHERE id = 1', [hi]);
      await this.q(
        'compaction',
        `DELETE FROM beacon_kv_log l
          WHERE l.revision > $1 AND l.revision <= $2
            AND (l.deleted OR EXISTS (
                  SELECT 1 FROM beacon_kv_log n
                   WHERE substring(n.key from 1 for 2000) = substring(l.key from 1 for 2000) AND n.key = l.key
                     AND n.revision > l.revision AND n.revision <= $3))`,
        [lo, hi, row.bound],
      );
    }
  }

  /**
   * History retention over `[key, rangeEnd)`. Besides the rule, a row is removed only when every
   * live node (seen within {@link NODE_LIVE_MS}) has applied its revision: a follower catching up
   * from the log must never skip a revision it has not seen (the same bound as physical compaction).
   */
  async pruneHistory(key: string, rangeEnd: string | null, rule: RetentionRule, nowMs: number): Promise<PruneResult> {
    const run = async (): Promise<PruneResult> => {
      const res = await this.q<{ bound: number }>(
        'history retention',
        `SELECT coalesce((SELECT min(applied_revision) FROM beacon_nodes
                           WHERE last_seen > now() - make_interval(secs => $1::float8 / 1000)), m.revision) AS bound
           FROM beacon_meta m WHERE id = 1`,
        [NODE_LIVE_MS],
      );
      const bound = res.rows[0]?.bound ?? 0;
      const toRows = (rows: { key: Buffer; revision: number; ts: number }[]): PruneRow[] =>
        rows.map((r) => ({ key: r.key.toString('utf8'), revision: r.revision, ts: r.ts }));
      return pruneRange(
        {
          scan: async (from, exclusive, end, limit) => {
            const params: unknown[] = [toBuf(from), limit];
            let where = `${KP} >= ${KP_PARAM(1)} AND key ${exclusive ? '>' : '>='} $1`;
            if (end !== null) {
              params.push(toBuf(end));
              where += ` AND ${KP} <= ${KP_PARAM(3)} AND key < $3`;
            }
            const r = await this.q<{ key: Buffer; revision: number; ts: number }>(
              'history retention',
              `SELECT key, revision, ts FROM beacon_kv_log WHERE ${where} ORDER BY ${KP}, key, revision LIMIT $2`,
              params,
            );
            return toRows(r.rows);
          },
          scanKeyDesc: async (k, below, limit) => {
            const r = await this.q<{ key: Buffer; revision: number; ts: number }>(
              'history retention',
              `SELECT key, revision, ts FROM beacon_kv_log WHERE ${KP} = ${KP_PARAM(1)} AND key = $1 AND revision < $2
                ORDER BY revision DESC LIMIT $3`,
              [toBuf(k), below, limit],
            );
            return toRows(r.rows);
          },
          remove: (k, end, floor, rows) =>
            // The floor first, in the same transaction: a reader that sees the rows gone sees the floor too.
            this.tx('history retention', 'BEGIN', async (c) => {
              await c.query(
                `INSERT INTO beacon_history_floors (key, range_end, revision) VALUES ($1, $2, $3)
                 ON CONFLICT ((md5(key)), (md5(range_end))) DO UPDATE
                   SET revision = greatest(beacon_history_floors.revision, excluded.revision)`,
                [toBuf(k), toBuf(end ?? ''), floor],
              );
              const del = await c.query(
                `DELETE FROM beacon_kv_log l USING unnest($1::bytea[], $2::int8[]) AS t(k, r)
                  WHERE substring(l.key from 1 for 2000) = substring(t.k from 1 for 2000) AND l.key = t.k AND l.revision = t.r`,
                [rows.map((r) => toBuf(r.key)), rows.map((r) => r.revision)],
              );
              // A node that was away (not live) and whose view is below a removed row cannot catch up
              // from the log without missing it: like compaction's purged_revision, this makes it rebuild.
              await c.query('UPDATE beacon_meta SET retained_revision = greatest(retained_revision, $1) WHERE id = 1', [
                rows.reduce((m, r) => Math.max(m, r.revision), 0),
              ]);
              return del.rowCount ?? 0;
            }),
          stopped: () => this.closing || this.closed,
        },
        key,
        rangeEnd,
        rule,
        nowMs,
        bound,
      );
    };
    const p = this.pruning.then(run, run);
    this.pruning = p.catch(() => undefined);
    return p;
  }

  async historyFloors(): Promise<HistoryFloor[]> {
    const res = await this.q<{ key: Buffer; range_end: Buffer; revision: number }>(
      'history floor read',
      'SELECT key, range_end, revision FROM beacon_history_floors',
    );
    return res.rows.map((r) => ({
      key: r.key.toString('utf8'),
      rangeEnd: r.range_end.length === 0 ? null : r.range_end.toString('utf8'),
      revision: r.revision,
    }));
  }

  /**
   * Persists a keep-alive so that every node (and the expiry leader) sees it. Keep-alives that
   * arrive in the same event-loop turn share one transaction.
   * @throws NotFoundError when the lease was revoked or expired meanwhile; UnavailableError.
   */
  keepAlive(id: number, expiresAt: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const pending = this.keepAliveQueue.get(id);
      if (pending === undefined) this.keepAliveQueue.set(id, { expiresAt, waiters: [{ resolve, reject }] });
      else {
        pending.expiresAt = Math.max(pending.expiresAt, expiresAt);
        pending.waiters.push({ resolve, reject });
      }
      if (!this.keepAliveScheduled) {
        this.keepAliveScheduled = true;
        setImmediate(() => void this.flushKeepAlives());
      }
    });
  }

  private async flushKeepAlives(): Promise<void> {
    this.keepAliveScheduled = false;
    const batch = this.keepAliveQueue;
    this.keepAliveQueue = new Map();
    const ids = [...batch.keys()];
    const exps = ids.map((id) => (batch.get(id) as { expiresAt: number }).expiresAt);
    let found: Set<number>;
    try {
      // Bumping lease_seq takes the counter row lock, so followers see keep-alives in order with grants and revokes.
      const rows = await this.tx('keep-alive', 'BEGIN', async (c) => {
        const res = await c.query<{ ids: number[] }>(
          `WITH m AS (UPDATE beacon_meta SET lease_seq = lease_seq + 1 WHERE id = 1 RETURNING revision, lease_seq, compact_revision),
                u AS (UPDATE beacon_leases l SET expires_at = greatest(l.expires_at, t.exp), seq = (SELECT lease_seq FROM m)
                        FROM unnest($1::int8[], $2::int8[]) AS t(id, exp)
                       WHERE l.id = t.id AND NOT l.revoked RETURNING l.id),
                n AS (SELECT pg_notify($3, m.revision || ':' || m.lease_seq || ':' || m.compact_revision) FROM m)
           SELECT ARRAY(SELECT id FROM u) AS ids, (SELECT count(*) FROM n) AS notified`,
          [ids, exps, this.channel],
        );
        return res.rows[0]?.ids ?? [];
      });
      found = new Set(rows.map(Number));
    } catch (err) {
      for (const p of batch.values()) for (const w of p.waiters) w.reject(err);
      return;
    }
    for (const [id, p] of batch) {
      for (const w of p.waiters) {
        if (found.has(id)) w.resolve();
        else w.reject(new NotFoundError(`lease ${id} not found or expired`, { lease: id }));
      }
    }
  }

  /**
   * Writes a consistent point-in-time copy as a SQLite database with Beacon's SQLite schema, so
   * a snapshot of either backend restores the same way. `onProgress(done, total)` in log rows.
   */
  async snapshot(path: string, onProgress?: (done: number, total: number) => void): Promise<BackendState> {
    const init = new SqliteBackend({ path });
    await init.open(); // creates the file with the SQLite schema
    await init.close();
    const out = new Database(path);
    try {
      out.pragma('journal_mode = DELETE');
      out.pragma('synchronous = OFF'); // a fresh file: durability comes from the final close
      const insert = out.prepare(
        'INSERT INTO kv_log (key, revision, create_revision, version, lease, value, deleted, ts, meta, encrypted) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
      );
      const insertLease = out.prepare('INSERT INTO leases (id, ttl, expires_at, owner) VALUES (?, ?, ?, ?)');
      const setMeta = out.prepare('UPDATE meta SET value = ? WHERE name = ?');
      return await this.readTx('snapshot', async (c) => {
        const meta = await c.query<MetaRow>('SELECT revision, compact_revision FROM beacon_meta WHERE id = 1');
        const m = meta.rows[0] ?? { revision: 0, compact_revision: 0 };
        const total = (await c.query<{ n: number }>('SELECT count(*)::int8 AS n FROM beacon_kv_log')).rows[0]?.n ?? 0;
        let done = 0;
        let after: [number, Buffer] | undefined;
        for (;;) {
          const res = await c.query<LogRow>(
            after === undefined
              ? `SELECT ${LOG_COLUMNS} FROM beacon_kv_log ORDER BY revision, key LIMIT $1`
              : `SELECT ${LOG_COLUMNS} FROM beacon_kv_log WHERE (revision, key) > ($2, $3) ORDER BY revision, key LIMIT $1`,
            after === undefined ? [PAGE_ROWS] : [PAGE_ROWS, after[0], after[1]],
          );
          out.transaction(() => {
            for (const r of res.rows) {
              insert.run(r.key.toString('utf8'), r.revision, r.create_revision, r.version, r.lease, r.value, r.deleted ? 1 : 0, r.ts, r.meta, r.encrypted ? 1 : 0);
            }
          })();
          done += res.rows.length;
          onProgress?.(done, total);
          const last = res.rows[res.rows.length - 1];
          if (last === undefined || res.rows.length < PAGE_ROWS) break;
          after = [last.revision, last.key];
        }
        const insertAudit = out.prepare(
          `INSERT INTO audit (id, ts, principal, action, key, old_version, new_version, revision, request_id, source, outcome, details)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        );
        for (let afterId = 0; ; ) {
          const res = await c.query<AuditRow>('SELECT * FROM beacon_audit WHERE id > $1 ORDER BY id LIMIT $2', [afterId, PAGE_ROWS]);
          out.transaction(() => {
            for (const r of res.rows.map(rowToAudit)) {
              insertAudit.run(r.id, r.ts, r.principal, r.action, r.key, r.oldVersion, r.newVersion, r.revision, r.requestId, r.source, r.outcome, r.details);
            }
          })();
          const last = res.rows[res.rows.length - 1];
          if (last === undefined || res.rows.length < PAGE_ROWS) break;
          afterId = last.id;
        }
        const leases = await c.query<LeaseRow>('SELECT id, ttl, expires_at, owner FROM beacon_leases WHERE NOT revoked');
        // History-retention floors travel with the log, so a restored copy refuses the same old reads.
        const floors = await c.query<{ key: Buffer; range_end: Buffer; revision: number }>('SELECT key, range_end, revision FROM beacon_history_floors');
        const insertFloor = out.prepare('INSERT INTO history_floors (key, range_end, revision) VALUES (?, ?, ?)');
        out.transaction(() => {
          for (const f of floors.rows) insertFloor.run(f.key.toString('utf8'), f.range_end.toString('utf8'), f.revision);
          for (const l of leases.rows) insertLease.run(l.id, l.ttl, l.expires_at, l.owner);
          setMeta.run(m.revision, 'revision');
          setMeta.run(m.compact_revision, 'compact_revision');
        })();
        return { revision: m.revision, compactRevision: m.compact_revision };
      });
    } finally {
      out.close();
    }
  }

  async appendAudit(records: AuditRecord[]): Promise<void> {
    if (records.length === 0) return;
    await this.tx('audit write', 'BEGIN', async (c) => {
      // Under the counter row lock, like commits, so audit ids become visible in increasing order.
      await c.query('SELECT 1 FROM beacon_meta WHERE id = 1 FOR UPDATE');
      await c.query(AUDIT_INSERT_SQL, auditParams(records));
    });
  }

  async queryAudit(q: AuditQuery): Promise<AuditRecord[]> {
    const where: string[] = [];
    const params: unknown[] = [];
    const add = (sql: string, v: unknown): void => {
      if (v === undefined) return;
      params.push(v);
      where.push(sql.replace('?', `$${params.length}`));
    };
    add('ts >= ?', q.fromTs);
    add('ts <= ?', q.toTs);
    add('principal = ?', q.principal === undefined ? undefined : pgText(q.principal));
    add('action = ?', q.action === undefined ? undefined : pgText(q.action));
    add('outcome = ?', q.outcome);
    add('id > ?', q.afterId);
    add('id < ?', q.beforeId);
    if (q.keyPrefix !== undefined) {
      const prefix = toBuf(q.keyPrefix);
      params.push(prefix);
      const n = params.length;
      // Keys starting with the prefix have index prefixes starting with the (truncated) prefix.
      where.push(`substring(key from 1 for ${prefix.length}) = $${n}`);
    }
    params.push(q.limit);
    const res = await this.q<AuditRow>(
      'audit read',
      `SELECT * FROM beacon_audit ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id ${q.order === 'desc' ? 'DESC' : 'ASC'} LIMIT $${params.length}`,
      params,
    );
    return res.rows.map(rowToAudit);
  }

  async pruneAudit(beforeTs: number): Promise<number> {
    const res = await this.q('audit prune', 'DELETE FROM beacon_audit WHERE ts < $1', [beforeTs]);
    return res.rowCount ?? 0;
  }

  async recordAdoption(rows: AdoptionRow[]): Promise<void> {
    // One statement per batch of rows (the node batches reports about once a second).
    for (let i = 0; i < rows.length; i += ADOPTION_BATCH) {
      const batch = rows.slice(i, i + ADOPTION_BATCH);
      await this.q(
        'adoption write',
        `INSERT INTO beacon_rollout_adoption (rollout, client, variant, bucket, selected, seen_at)
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::boolean[], $6::bigint[])
         ON CONFLICT (rollout, client) DO UPDATE SET variant = excluded.variant, bucket = excluded.bucket,
           selected = excluded.selected, seen_at = excluded.seen_at
         WHERE excluded.seen_at >= beacon_rollout_adoption.seen_at`,
        [batch.map((r) => r.rollout), batch.map((r) => r.client), batch.map((r) => r.variant), batch.map((r) => r.bucket), batch.map((r) => r.selected), batch.map((r) => r.seenAt)],
      );
    }
  }

  async adoptionCounts(rollout: string, sinceMs: number): Promise<Record<string, number>> {
    const res = await this.q<{ variant: string; n: string }>(
      'adoption read',
      'SELECT variant, count(*) AS n FROM beacon_rollout_adoption WHERE rollout = $1 AND seen_at >= $2 GROUP BY variant',
      [rollout, sinceMs],
    );
    return Object.fromEntries(res.rows.map((r) => [r.variant, Number(r.n)]));
  }

  async adoptionBuckets(rollout: string, sinceMs: number): Promise<number[]> {
    const res = await this.q<{ bucket: number }>('adoption read', 'SELECT bucket FROM beacon_rollout_adoption WHERE rollout = $1 AND seen_at >= $2 AND selected', [rollout, sinceMs]);
    return res.rows.map((r) => Number(r.bucket));
  }

  async pruneAdoption(keep: string[], beforeMs: number): Promise<number> {
    const res = await this.q('adoption prune', 'DELETE FROM beacon_rollout_adoption WHERE seen_at < $1 OR NOT (rollout = ANY($2::text[]))', [beforeMs, keep]);
    return res.rowCount ?? 0;
  }

  /**
   * Rewrites the meta row with its own values in one committed statement: PostgreSQL writes a
   * new row version and WAL for it, so this fails while the server cannot write (disk full,
   * read-only after a failover, unreachable). `bytes` is not used: PostgreSQL's space is its own.
   */
  async probeWrite(_bytes: number): Promise<void> {
    await this.q('write probe', 'UPDATE beacon_meta SET lease_seq = lease_seq WHERE id = 1');
  }

  async sizeBytes(): Promise<number | undefined> {
    const res = await this.q<{ n: number | null }>(
      'size read',
      `SELECT sum(pg_total_relation_size(c.oid))::int8 AS n FROM pg_class c
        WHERE c.relkind = 'r' AND c.relname LIKE 'beacon\\_%' AND c.relnamespace = current_schema()::regnamespace`,
    );
    return res.rows[0]?.n ?? undefined;
  }

  // ---------------------------------------------------------------------------------------------
  // Cluster support (src/node/cluster.ts)

  /**
   * Opens a dedicated session (outside the pool) for LISTEN and the expiry advisory lock. The
   * caller must attach an 'error' listener and end it. `options` are server settings (`-c name=value …`).
   * @throws UnavailableError when PostgreSQL cannot be reached.
   */
  async openSession(options?: string): Promise<pg.Client> {
    if (this.closed) throw new UnavailableError('the PostgreSQL backend is closed');
    const client = new pg.Client({
      ...this.config,
      query_timeout: 5000,
      application_name: 'beacon-follower',
      ...(options === undefined ? {} : { options: [this.urlOptions, options].filter((o) => o !== undefined).join(' ') }),
    });
    client.on('error', () => undefined); // replaced by the caller's listener; never crash on a dropped session
    try {
      await client.connect();
    } catch (err) {
      await client.end().catch(() => undefined);
      throw this.fail('session connect', err);
    }
    return client;
  }

  /** Upserts this node's membership row and returns the database's counters. */
  async heartbeat(n: Omit<NodeRecord, 'ageMs'>): Promise<HeadState> {
    const res = await this.q<MetaRow>(
      'heartbeat',
      `WITH up AS (
         INSERT INTO beacon_nodes (id, url, version, started_at, applied_revision, ready, expiry_leader, last_seen, resp_url, cache_keys)
         VALUES ($1, $2, $3, $4, $5, $6, $7, now(), $8, $9)
         ON CONFLICT (id) DO UPDATE SET url = excluded.url, resp_url = excluded.resp_url, cache_keys = excluded.cache_keys, version = excluded.version, started_at = excluded.started_at,
           applied_revision = excluded.applied_revision, ready = excluded.ready, expiry_leader = excluded.expiry_leader,
           last_seen = now())
       SELECT revision, compact_revision, lease_seq, COALESCE((SELECT max(epoch) FROM beacon_cache_ring), 0)::int8 AS ring_epoch
         FROM beacon_meta WHERE id = 1`,
      [n.id, n.url, n.version, n.startedAt, n.appliedRevision, n.ready, n.expiryLeader, n.respUrl, n.cacheKeys],
    );
    const m = res.rows[0] as (MetaRow & { ring_epoch: number }) | undefined;
    return { revision: m?.revision ?? 0, compactRevision: m?.compact_revision ?? 0, leaseSeq: m?.lease_seq ?? 0, ringEpoch: m?.ring_epoch ?? 0 };
  }

  /** Sends `payload` on this store's NOTIFY channel (a node asks the leader to look at the ring: `ring-join`). */
  async notify(payload: string): Promise<void> {
    await this.q('notify', 'SELECT pg_notify($1, $2)', [this.channel, payload]);
  }

  /**
   * The cache ring as last committed (epoch 0 and no members before the first commit).
   * @throws UnavailableError when PostgreSQL cannot be reached.
   */
  async readRing(): Promise<RingRecord> {
    const res = await this.q<{ epoch: number; members: string }>('ring read', 'SELECT epoch, members FROM beacon_cache_ring ORDER BY epoch DESC LIMIT 1');
    const row = res.rows[0];
    if (row === undefined) return { epoch: 0, members: [] };
    return { epoch: Number(row.epoch), members: parseRingMembers(row.members) };
  }

  /**
   * The committed epochs after `after`, oldest first, at most `limit` (a node that missed epochs
   * applies each in order). The first may be later than `after + 1` when older ones were pruned.
   * @throws UnavailableError when PostgreSQL cannot be reached.
   */
  async readRingsSince(after: number, limit = 1000): Promise<RingRecord[]> {
    const res = await this.q<{ epoch: number; members: string }>(
      'ring read',
      'SELECT epoch, members FROM beacon_cache_ring WHERE epoch > $1 ORDER BY epoch LIMIT $2',
      [after, limit],
    );
    return res.rows.map((row) => ({ epoch: Number(row.epoch), members: parseRingMembers(row.members) }));
  }

  /**
   * Commits the cache ring's next epoch, `expected + 1`, with `members`, if the latest committed
   * epoch is still `expected` (a compare-and-set: of two leaders only one commits an epoch), drops
   * epochs 1,000 older, and wakes every node with a `ring:<epoch>` notification.
   * @returns the new epoch, or undefined when another commit came first.
   * @throws UnavailableError when PostgreSQL cannot be reached.
   */
  async commitRing(expected: number, members: RingRecord['members'], by: string): Promise<number | undefined> {
    const res = await this.q<{ epoch: number }>(
      'ring commit',
      `WITH c AS (
         INSERT INTO beacon_cache_ring (epoch, members, committed_by)
         SELECT $1::int8 + 1, $2, $3 WHERE COALESCE((SELECT max(epoch) FROM beacon_cache_ring), 0) = $1::int8
         ON CONFLICT (epoch) DO NOTHING
         RETURNING epoch),
       old AS (DELETE FROM beacon_cache_ring WHERE epoch <= (SELECT epoch FROM c) - 1000)
       SELECT epoch, pg_notify($4, 'ring:' || epoch) FROM c`,
      [expected, JSON.stringify(members), by, this.channel],
    );
    const row = res.rows[0];
    return row === undefined ? undefined : Number(row.epoch);
  }

  /** Every node seen within `liveMs` (database clock) and the head revision, in one snapshot. */
  async listNodes(liveMs: number): Promise<{ head: number; nodes: NodeRecord[] }> {
    return this.readTx('node list', async (c) => {
      const meta = await c.query<MetaRow>('SELECT revision FROM beacon_meta WHERE id = 1');
      const res = await c.query<{
        id: string;
        url: string;
        resp_url: string;
        cache_keys: number;
        version: string;
        started_at: number;
        applied_revision: number;
        ready: boolean;
        expiry_leader: boolean;
        age_ms: number;
      }>(
        `SELECT id, url, resp_url, cache_keys, version, started_at, applied_revision, ready, expiry_leader,
                (extract(epoch FROM (now() - last_seen)) * 1000)::int8 AS age_ms
           FROM beacon_nodes WHERE last_seen > now() - make_interval(secs => $1::float8 / 1000) ORDER BY started_at, id`,
        [liveMs],
      );
      return {
        head: meta.rows[0]?.revision ?? 0,
        nodes: res.rows.map((r) => ({
          id: r.id,
          url: r.url,
          respUrl: r.resp_url,
          cacheKeys: Number(r.cache_keys),
          version: r.version,
          startedAt: r.started_at,
          appliedRevision: r.applied_revision,
          ready: r.ready,
          expiryLeader: r.expiry_leader,
          ageMs: r.age_ms,
        })),
      };
    });
  }

  /** Removes a node's membership row (on orderly shutdown). */
  async deregister(id: string): Promise<void> {
    await this.q('deregister', 'DELETE FROM beacon_nodes WHERE id = $1', [id]);
  }

  /**
   * Housekeeping the expiry leader runs now and then: drops old lease tombstones and long-gone
   * nodes, and finishes deleting compacted history that live nodes (seen within `liveMs`) no longer need.
   */
  async maintenance(now: number, liveMs: number): Promise<void> {
    await this.q('maintenance', 'DELETE FROM beacon_leases WHERE revoked AND revoked_at < $1', [now - LEASE_TOMBSTONE_MS]);
    await this.q('maintenance', "DELETE FROM beacon_nodes WHERE last_seen < now() - interval '1 hour'");
    await this.purgeCompacted(liveMs);
  }

  /**
   * Finishes deleting compacted history that every live node (seen within `liveMs`) has applied;
   * one cheap query when there is nothing to do. The expiry leader calls it every heartbeat.
   */
  purgeCompacted(liveMs: number): Promise<void> {
    const run = (): Promise<void> => this.purge(liveMs);
    this.compacting = this.compacting.then(run, run);
    return this.compacting;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closing = true;
    await this.compacting.catch(() => undefined);
    await this.pruning;
    if (this.keepAliveQueue.size > 0 || this.keepAliveScheduled) await new Promise((r) => setImmediate(r));
    this.closed = true;
    const pool = this.pool;
    this.pool = undefined;
    await pool?.end().catch(() => undefined);
  }
}

/**
 * One statement writes a whole batch: log entries, lease grants and revokes, the new head revision
 * and lease sequence, and the NOTIFY (delivered by PostgreSQL only when the transaction commits).
 */
const WRITE_SQL = `
WITH ins AS (
  INSERT INTO beacon_kv_log (key, revision, create_revision, version, lease, value, deleted, ts, meta, encrypted)
  SELECT * FROM unnest($1::bytea[], $2::int8[], $3::int8[], $4::int8[], $5::int8[], $6::bytea[], $7::bool[], $8::int8[], $9::text[], $31::bool[])
),
g AS (
  INSERT INTO beacon_leases (id, ttl, expires_at, revoked, revoked_at, seq, owner)
  SELECT t.id, t.ttl, t.exp, t.rev, CASE WHEN t.rev THEN $15::int8 END, $13::int8, t.owner
    FROM unnest($10::int8[], $11::int8[], $12::int8[], $16::bool[], $29::text[]) AS t(id, ttl, exp, rev, owner)
  ON CONFLICT (id) DO UPDATE SET ttl = excluded.ttl, expires_at = excluded.expires_at, revoked = excluded.revoked,
    revoked_at = excluded.revoked_at, seq = excluded.seq, owner = excluded.owner
),
r AS (
  UPDATE beacon_leases SET revoked = true, revoked_at = $15::int8, seq = $13::int8 WHERE id = ANY($14::int8[])
),
a AS (
  INSERT INTO beacon_audit (ts, principal, action, key, old_version, new_version, revision, request_id, source, outcome, details)
  SELECT * FROM unnest($18::int8[], $19::text[], $20::text[], $21::bytea[], $22::int8[], $23::int8[], $24::int8[],
                       $25::text[], $26::text[], $27::text[], $28::text[])
),
m AS (
  UPDATE beacon_meta SET revision = $17::int8, lease_seq = $13::int8, head_token = $32::int8 WHERE id = 1 RETURNING revision, lease_seq, compact_revision
)
SELECT pg_notify($30::text, m.revision || ':' || m.lease_seq || ':' || m.compact_revision) FROM m`;

/** One chained batch (see PostgresBackend.commitPipelined and migrations/009_chained_commit.sql). */
const CHAINED_SQL = `SELECT beacon_commit_chained(${Array.from({ length: 26 }, (_, i) => `$${i + 1}`).join(', ')})`;

/** Whether a batch may be committed chained: key writes only, nothing that reads or changes leases. */
function chainable(batch: CommitBatch): boolean {
  return batch.entries.length > 0 && batch.leaseGrants.length === 0 && batch.leaseRevokes.length === 0 && batch.entries.every((e) => e.lease === 0);
}

/** A random head token (a positive int8 below 2^53), different from `previous`. */
function newToken(previous: number): number {
  for (;;) {
    const t = randomInt(1, 2 ** 47) * 64 + randomInt(0, 64);
    if (t !== previous) return t;
  }
}

/** The nine column arrays of a batch's log rows (key, revision, create revision, version, lease, value, deleted, ts, meta), in that order. */
function logParams(es: CommitBatch['entries']): unknown[] {
  return [
    es.map((e) => toBuf(e.key)),
    es.map((e) => e.revision),
    es.map((e) => e.createRevision),
    es.map((e) => e.version),
    es.map((e) => e.lease),
    es.map((e) => asBuffer(e.value)),
    es.map((e) => e.deleted),
    es.map((e) => e.ts),
    es.map((e) => e.meta),
  ];
}

/** The log and audit arrays of a chained batch ($6…$26 of {@link CHAINED_SQL}). */
function chainedParams(batch: CommitBatch): unknown[] {
  const es = batch.entries;
  return [
    ...logParams(es),
    es.map((e) => e.encrypted === true),
    ...auditParams(batch.audit ?? []),
  ];
}

/** How long a ROLLBACK on a connection that answered an error may take before the connection is dropped instead, in ms. */
const ROLLBACK_TIMEOUT_MS = 1000;

/**
 * Ends a failed transaction and returns its connection to the pool. After a client-side timeout
 * or a connection error the connection is destroyed rather than rolled back: a ROLLBACK would
 * queue behind the stuck statement and wait out its own timeout, doubling the time a request
 * takes to fail against an unresponsive server. PostgreSQL rolls back a transaction whose
 * connection ends. Only a connection whose server answered (an SQL error, or our own check
 * between statements) is rolled back and reused.
 */
async function abandon(client: pg.PoolClient, done: (broken: boolean) => void, err: unknown): Promise<void> {
  const answered = err instanceof pg.DatabaseError || err instanceof BeaconError;
  if (!answered) {
    done(true);
    return;
  }
  // node-postgres honours a per-query `query_timeout`; its typings only know it as a client option.
  const rollback: pg.QueryConfig = { text: 'ROLLBACK', query_timeout: ROLLBACK_TIMEOUT_MS } as pg.QueryConfig;
  const rolledBack = await client.query(rollback).then(
    () => true,
    () => false,
  );
  done(!rolledBack);
}

function writeParams(batch: CommitBatch, head: number, leaseSeq: number): unknown[] {
  const es = batch.entries;
  // A lease granted and revoked in the same batch is written once, as revoked: two parts of one
  // statement cannot both change the row.
  const revoked = new Set(batch.leaseRevokes);
  const granted = new Set(batch.leaseGrants.map((l) => l.id));
  return [
    ...logParams(es),
    batch.leaseGrants.map((l) => l.id),
    batch.leaseGrants.map((l) => l.grantedTtl),
    batch.leaseGrants.map((l) => l.expiresAt),
    leaseSeq,
    batch.leaseRevokes.filter((id) => !granted.has(id)),
    Date.now(),
    batch.leaseGrants.map((l) => revoked.has(l.id)),
    Math.max(head, batch.revision),
    ...auditParams(batch.audit ?? []),
    batch.leaseGrants.map((l) => (l.owner === undefined ? null : pgText(l.owner))),
  ];
}

/** PostgreSQL text cannot hold U+0000; an audit record must never fail a write, so it becomes U+FFFD. */
function pgText(s: string | null): string | null {
  return s === null || !s.includes('\0') ? s : s.replaceAll('\0', '\uFFFD');
}

function auditParams(rs: AuditRecord[]): unknown[] {
  return [
    rs.map((a) => a.ts),
    rs.map((a) => pgText(a.principal)),
    rs.map((a) => pgText(a.action)),
    rs.map((a) => (a.key === null ? null : toBuf(a.key))),
    rs.map((a) => a.oldVersion),
    rs.map((a) => a.newVersion),
    rs.map((a) => a.revision),
    rs.map((a) => pgText(a.requestId)),
    rs.map((a) => pgText(a.source)),
    rs.map((a) => a.outcome),
    rs.map((a) => pgText(a.details)),
  ];
}

const AUDIT_INSERT_SQL = `
INSERT INTO beacon_audit (ts, principal, action, key, old_version, new_version, revision, request_id, source, outcome, details)
SELECT * FROM unnest($1::int8[], $2::text[], $3::text[], $4::bytea[], $5::int8[], $6::int8[], $7::int8[],
                     $8::text[], $9::text[], $10::text[], $11::text[])`;

interface AuditRow {
  id: number;
  ts: number;
  principal: string;
  action: string;
  key: Buffer | null;
  old_version: number | null;
  new_version: number | null;
  revision: number | null;
  request_id: string | null;
  source: string | null;
  outcome: AuditRecord['outcome'];
  details: string | null;
}

function rowToAudit(r: AuditRow): AuditRecord {
  return {
    id: r.id,
    ts: r.ts,
    principal: r.principal,
    action: r.action,
    key: r.key === null ? null : r.key.toString('utf8'),
    oldVersion: r.old_version,
    newVersion: r.new_version,
    revision: r.revision,
    requestId: r.request_id,
    source: r.source,
    outcome: r.outcome,
    details: r.details,
  };
}

/** The members column of `beacon_cache_ring`: a JSON array of {id, url, respUrl}; anything else in it is skipped. */
function parseRingMembers(text: string): RingRecord['members'] {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return [];
  }
  if (!Array.isArray(raw)) return [];
  const out: RingRecord['members'] = [];
  for (const m of raw as unknown[]) {
    const r = m as Partial<Record<'id' | 'url' | 'respUrl' | 'leaving', unknown>>;
    if (typeof r.id === 'string' && r.id !== '' && typeof r.url === 'string' && typeof r.respUrl === 'string') {
      out.push({ id: r.id, url: r.url, respUrl: r.respUrl, ...(r.leaving === true ? { leaving: true } : {}) });
    }
  }
  return out;
}
