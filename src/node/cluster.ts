/**
 * Cluster membership and the change feed of a node on a shared backend (PostgreSQL): the
 * follower that applies other nodes' commits to the view in revision order, the election of
 * the one node that drives lease expiry, node registration and readiness (DESIGN.md §3).
 * On SQLite there is one node, and this module only reports it.
 */
import type { Client as PgClient, Notification } from 'pg';
import type { ClusterStatus } from '../api/http/admin-routes.js';
import type { Backend } from '../backend/index.js';
import type { PostgresBackend, RingRecord } from '../backend/postgres/index.js';
import type { Store } from '../kv/index.js';
import type { Logger } from '../obs/index.js';
import { errorMessage } from '../errors.js';

/** How often a node heartbeats, polls the head (the fallback for lost notifications) and tries to lead, in ms. */
export const HEARTBEAT_MS = 1000;
/** A node not seen for this long is gone from `GET /v1/cluster`, in ms. */
export const NODE_TTL_MS = 5000;
/** Reconnect backoff bounds for the follower session, in ms. */
const BACKOFF_MIN_MS = 100;
const BACKOFF_MAX_MS = 2000;
/** Log entries read per follower round trip (whole revisions, so a little more). */
const FEED_PAGE = 2000;
/** How often the expiry leader runs housekeeping (lease tombstones, old node rows), in ms. */
const MAINTENANCE_MS = 60_000;
/** Server-side TCP keep-alives on the follower session, so PostgreSQL frees a vanished machine's lock in ~11 s. */
const KEEPALIVE_OPTIONS = '-c tcp_keepalives_idle=5 -c tcp_keepalives_interval=2 -c tcp_keepalives_count=3';
/**
 * PostgreSQL ends a follower session idle this long, in ms. Every node runs a query on its session
 * every heartbeat, so only a node that stopped running (SIGSTOP, a VM paused, a hung event loop)
 * reaches it; its kernel still answers TCP keep-alives, so without this its expiry lock would
 * never be freed. Below {@link NODE_TTL_MS}: another node takes over within one node TTL.
 */
export const SESSION_IDLE_TIMEOUT_MS = 4000;
/**
 * The leader removes a member from the cache ring whose heartbeat is older than this, in ms
 * (database clock). Above {@link RING_FENCE_MS}: a member stops serving its slots before anyone
 * can take them over.
 */
export const RING_MEMBER_TTL_MS = 4000;
/**
 * A node serves its cache slots only while its last confirmed heartbeat (the ring it read with it
 * applied) began less than this long ago, in ms. A node frozen longer (SIGSTOP, a paused VM, a
 * lost database) stops serving until a heartbeat confirms it is still a member of the ring in force.
 */
export const RING_FENCE_MS = 3000;

/** The follower session's server options; `idle_session_timeout` exists from PostgreSQL 14 on. */
function sessionOptions(serverVersion: number): string {
  return serverVersion >= 140_000 ? `${KEEPALIVE_OPTIONS} -c idle_session_timeout=${SESSION_IDLE_TIMEOUT_MS}` : KEEPALIVE_OPTIONS;
}

/** Whether this session holds the (bigint) advisory lock $1: PostgreSQL shows its halves as classid and objid. */
const LOCK_HELD_SQL = `SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND granted
  AND objsubid = 1 AND ((classid::int8 << 32) | objid::int8) = $1::int8) AS held`;

/** What {@link startCluster} needs. */
export interface ClusterOptions {
  store: Store;
  logger: Logger;
  nodeId: string;
  /** This node's base URL, as other nodes and clients reach it. */
  url: string;
  version: string;
  /** Start time in ms since the epoch. */
  startedAt: number;
  /**
   * Called with each newer cache ring committed in the shared backend (never on SQLite), before
   * {@link Cluster.ringConfirmed} turns true for it.
   */
  onRing?: (ring: RingRecord) => void;
  /** How many cache keys this node holds, reported with each heartbeat. */
  cacheKeys?: () => number;
}

/** A node's view of its cluster. */
export interface Cluster {
  /** Whether this node serves: its follower is connected and has caught up (drives `/readyz`). */
  readonly ready: boolean;
  /** Whether this node drives lease expiry now. */
  readonly expiryLeader: boolean;
  /** Resolves with {@link ready} once the node is ready or `timeoutMs` passed, whichever is first. */
  waitReady(timeoutMs: number): Promise<boolean>;
  /** The members and their lag, for `GET /v1/cluster`. @throws UnavailableError when the backend is unreachable. */
  status(): Promise<ClusterStatus>;
  /**
   * Advertises this node's RESP listener (`redis://host:port`) to the other members, from the
   * next heartbeat on (the listener starts after the node joined).
   */
  setRespUrl(url: string): void;
  /**
   * Whether this node may serve its cache slots now: its last heartbeat began less than
   * {@link RING_FENCE_MS} ago and the ring it read with it was applied. Always true on SQLite.
   */
  ringConfirmed(): boolean;
  /** The cluster's id: the shared database's (migration 012); empty on SQLite. */
  readonly clusterId: string;
  /**
   * Why another node's link must be refused (the text of the error it gets), or undefined when
   * `clusterId` is this cluster's and node `nodeId` heartbeat in this database within
   * {@link NODE_TTL_MS}: a node of another cluster, or one frozen past its membership, is refused.
   * @throws UnavailableError when the database cannot be read.
   */
  checkPeer(clusterId: string, nodeId: string): Promise<string | undefined>;
  /**
   * Leaves the cache ring before the node stops, so that its slots are handed over rather than
   * lost: advertises no RESP listener any more, wakes the leader, and resolves true once this
   * node applied a ring without itself (false after `timeoutMs`, or at once when it is the ring's
   * only member or was never in it). Always true on SQLite.
   */
  leaveRing(timeoutMs: number): Promise<boolean>;
  /** Leaves the cluster: stops the follower and expiry, removes the membership row. Idempotent. */
  stop(): Promise<void>;
}

/** True for a backend that many nodes share and that offers a change feed (PostgreSQL). */
export function isSharedBackend(backend: Backend): backend is PostgresBackend {
  const b = backend as Partial<PostgresBackend>;
  return typeof b.readChanges === 'function' && typeof b.openSession === 'function' && typeof b.heartbeat === 'function';
}

/**
 * Joins the cluster of the store's backend. On a shared backend the store must have been
 * created with `driveExpiry: false`; this turns it on while this node holds the expiry lock.
 */
export function startCluster(opts: ClusterOptions): Cluster {
  const backend = opts.store.backend;
  if (!isSharedBackend(backend)) return new SingleNode(opts);
  const c = new SharedCluster(opts, backend);
  c.start();
  return c;
}

class SingleNode implements Cluster {
  readonly ready = true;
  readonly expiryLeader = true;
  readonly clusterId = '';
  private respUrl = '';
  constructor(private readonly opts: ClusterOptions) {}

  setRespUrl(url: string): void {
    this.respUrl = url;
  }

  ringConfirmed(): boolean {
    return true;
  }

  async checkPeer(): Promise<string | undefined> {
    return 'this node is not in a cache cluster (it runs on an embedded store)';
  }

  async leaveRing(): Promise<boolean> {
    return true;
  }

  async waitReady(): Promise<boolean> {
    return true;
  }

  async status(): Promise<ClusterStatus> {
    const { store, nodeId, url, version, startedAt } = this.opts;
    return {
      revision: store.revision,
      expiryLeader: nodeId,
      nodes: [
        {
          id: nodeId,
          url,
          ...(this.respUrl !== '' ? { respUrl: this.respUrl } : {}),
          version,
          startedAt: new Date(startedAt).toISOString(),
          appliedRevision: store.revision,
          lag: 0,
          ready: true,
          expiryLeader: true,
          lastSeenMs: 0,
          self: true,
        },
      ],
    };
  }

  async stop(): Promise<void> {}
}

/**
 * The follower and membership loop of a node on PostgreSQL.
 *
 * One dedicated session LISTENs for commits and holds the expiry advisory lock, so losing it
 * (PostgreSQL restart, network) loses both at once: the node stops driving expiry, reports not
 * ready, and reconnects with backoff, catching up from its view's revision.
 */
class SharedCluster implements Cluster {
  private session: PgClient | undefined;
  private leader = false;
  private stopped = false;
  private syncing: Promise<void> | undefined;
  private syncAgain = false;
  private syncOk = false;
  private stale = false;
  private connectedOnce = false;
  private connecting = false;
  private backoff = BACKOFF_MIN_MS;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private tickTimer: NodeJS.Timeout | undefined;
  private lastMaintenance = 0;
  private heartbeatFailures = 0;
  private tickRunning = false;
  private housekeeping = false;
  /** Whether the last heartbeat succeeded: only a node that can write through its pool may lead. */
  private heartbeatOk = false;
  private sessionTickRunning = false;
  private respUrl = '';
  /** The cache ring epoch applied ({@link ClusterOptions.onRing} called with it) and its members. */
  private ringEpoch = 0;
  private ringMembers: RingRecord['members'] = [];
  private ringLoading: Promise<void> | undefined;
  private ringCommitting = false;
  /** `performance.now()` when the last heartbeat whose ring was applied began. */
  private confirmedAt = -Infinity;
  /** `performance.now()` when this node became the leader (it removes no ring member for a while after). */
  private leaderSince = 0;
  /** `performance.now()` of this node's last failed heartbeat (PostgreSQL unreachable, restarting). */
  private lastBeatFailure = -Infinity;
  /** `performance.now()` of this node's first heartbeat that worked. */
  private firstBeat = -Infinity;

  constructor(
    private readonly opts: ClusterOptions,
    private readonly backend: PostgresBackend,
  ) {}

  get ready(): boolean {
    return !this.stopped && this.session !== undefined && this.syncOk && !this.stale && this.heartbeatFailures < 2;
  }

  get expiryLeader(): boolean {
    return this.leader;
  }

  async waitReady(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!this.ready && !this.stopped && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    return this.ready;
  }

  start(): void {
    const { store } = this.opts;
    // Lease changes other nodes made reach this node's lessor under the commit lock, before planning.
    this.backend.onLeaseChanges = (c) => store.applyLeaseChanges(c.grants, c.revokes);
    this.backend.onPoolError = (err) => this.opts.logger.warn({ err: err.message }, 'a PostgreSQL pool connection failed');
    store.setDriveExpiry(false);
    void this.connect();
    this.tickTimer = setInterval(() => {
      void this.tick();
      void this.sessionTick();
    }, HEARTBEAT_MS);
    this.tickTimer.unref();
  }

  // -----------------------------------------------------------------------------------------------
  // The follower session: LISTEN and the expiry lock

  private async connect(): Promise<void> {
    this.reconnectTimer = undefined;
    if (this.stopped || this.connecting || this.session !== undefined) return;
    this.connecting = true;
    let client: PgClient | undefined;
    try {
      client = await this.backend.openSession(sessionOptions(this.backend.serverVersion));
      const c = client;
      c.on('error', (err) => this.lost(c, err));
      c.on('end', () => this.lost(c, undefined));
      c.on('notification', (msg: Notification) => this.onNotify(msg));
      await c.query(`LISTEN "${this.backend.channel}"`);
      if (this.stopped) throw new Error('stopped');
      this.session = c;
    } catch (err) {
      void client?.end().catch(() => undefined);
      this.connecting = false;
      this.scheduleReconnect(err);
      return;
    }
    this.connecting = false;
    this.backoff = BACKOFF_MIN_MS;
    const reconnected = this.connectedOnce;
    this.connectedOnce = true;
    this.opts.logger.info({ reconnected, revision: this.opts.store.revision }, 'following the PostgreSQL change feed');
    if (reconnected) await this.reconcileLeases().catch((err: unknown) => this.opts.logger.warn({ err }, 'lease reconcile failed'));
    this.requestSync();
    await this.syncing;
    void this.tick().then(() => this.sessionTick()); // register (as ready) and try to lead now rather than in a second
  }

  private scheduleReconnect(err: unknown): void {
    if (this.stopped || this.reconnectTimer !== undefined || this.connecting) return;
    const wait = Math.round(this.backoff * (0.5 + Math.random() / 2));
    this.backoff = Math.min(BACKOFF_MAX_MS, this.backoff * 2);
    this.opts.logger.warn({ err: errorMessage(err), retryMs: wait }, 'PostgreSQL session unavailable; retrying');
    this.reconnectTimer = setTimeout(() => void this.connect(), wait);
    this.reconnectTimer.unref();
  }

  /** The session died: drop leadership at once (the lock died with it) and reconnect. */
  private lost(client: PgClient, err: unknown): void {
    if (this.session !== client) {
      // A session that is not (or no longer) current: connect() handles its own failures.
      void client.end().catch(() => undefined);
      return;
    }
    this.session = undefined;
    this.syncOk = false;
    this.stepDown('the follower session was lost');
    void client.end().catch(() => undefined);
    this.scheduleReconnect(err ?? new Error('connection ended'));
  }

  private stepDown(why: string): void {
    if (!this.leader) return;
    this.leader = false;
    this.opts.store.setDriveExpiry(false);
    this.opts.logger.warn({ why }, 'no longer driving lease expiry');
  }

  /**
   * Runs every heartbeat, independently of the pool heartbeat: one cheap query on the follower
   * session, so that PostgreSQL's `idle_session_timeout` only ends the session of a node that
   * stopped running. The leader checks it still holds the expiry lock; a node that can lead tries
   * to take it; any other node just pings. A query that fails or times out means the session is
   * gone or the server does not answer: the node drops the session (and leadership) and reconnects.
   */
  private async sessionTick(): Promise<void> {
    const s = this.session;
    if (s === undefined || this.stopped || this.sessionTickRunning) return;
    this.sessionTickRunning = true;
    const key = this.backend.expiryLockKey;
    try {
      if (this.leader) {
        const res = await s.query<{ held: boolean }>(LOCK_HELD_SQL, [key]);
        if (this.session === s && res.rows[0]?.held !== true) this.stepDown('this node no longer holds the expiry lock');
      } else if (!this.stale && this.heartbeatOk) {
        const res = await s.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1) AS ok', [key]);
        if (res.rows[0]?.ok !== true || this.session !== s) return;
        if (this.stopped || this.stale || !this.heartbeatOk) {
          await s.query('SELECT pg_advisory_unlock($1)', [key]); // lost the race with stop/stale/failing heartbeats
          return;
        }
        this.leader = true;
        this.leaderSince = performance.now();
        this.opts.store.setDriveExpiry(true);
        this.opts.logger.info({ nodeId: this.opts.nodeId }, 'driving lease expiry');
      } else {
        await s.query('SELECT 1');
      }
    } catch (err) {
      // A timeout does not end a pg session by itself: end it (and step down) here.
      if (this.session === s) this.lost(s, err);
    } finally {
      this.sessionTickRunning = false;
    }
  }

  private onNotify(msg: Notification): void {
    if (msg.channel !== this.backend.channel) return;
    if (msg.payload?.startsWith('ring:') === true) {
      if (Number(msg.payload.slice(5)) > this.ringEpoch) void this.loadRing().catch(() => undefined);
      return;
    }
    if (msg.payload === 'ring-join') {
      // A node started its RESP listener: the leader takes it into the ring now rather than at its next heartbeat.
      if (this.leader && !this.ringCommitting) void this.leadRing();
      return;
    }
    const [rev, seq, compact] = (msg.payload ?? '').split(':').map(Number);
    const { store } = this.opts;
    // Our own commits are already applied; anything else (or an unreadable payload) means read the feed.
    if (rev === undefined || seq === undefined || compact === undefined || !Number.isFinite(rev + seq + compact)) {
      this.requestSync();
    } else if (compact > store.compactRevision) {
      this.requestSync();
    } else if ((rev > store.revision || seq > this.backend.leaseSeq) && !this.backend.isOwnChange(rev, seq)) {
      // (Our own commit may notify before the store applied it; a commit whose outcome was lost
      // is still picked up by the next heartbeat's check.)
      this.requestSync();
    }
  }

  // -----------------------------------------------------------------------------------------------
  // Applying the feed

  /** Runs a sync now, or once more after the running one (single flight). */
  private requestSync(): void {
    if (this.stopped) return;
    if (this.syncing !== undefined) {
      this.syncAgain = true;
      return;
    }
    this.syncing = (async () => {
      do {
        this.syncAgain = false;
        try {
          await this.syncOnce();
          this.syncOk = true;
        } catch (err) {
          this.syncOk = false;
          this.opts.logger.warn({ err: errorMessage(err) }, 'change feed read failed');
          break; // the next notification, heartbeat or reconnect tries again
        }
      } while (this.syncAgain && !this.stopped);
      this.syncing = undefined;
    })();
  }

  /** Reads the log after the view's revision in revision order and applies it, until caught up. */
  private async syncOnce(): Promise<void> {
    const { store } = this.opts;
    for (;;) {
      const from = store.revision;
      const cs = await this.backend.readChanges(from, FEED_PAGE);
      if (this.stopped) return;
      // Synchronous from here: no commit of this node can interleave, so the view, the lessor and
      // the backend's lease sequence move together. Lease changes first: the entries may use them.
      const leases = this.backend.takeLeaseChanges(cs.leaseRows, cs.leaseSeq);
      if (leases.grants.length > 0 || leases.revokes.length > 0) store.applyLeaseChanges(leases.grants, leases.revokes);
      // `from` was read before the snapshot, so a database that is not behind shows at least it.
      if (cs.head < from) {
        // The database went back in time (restore, or a failover to an asynchronous replica).
        this.markStale(
          { revision: from, databaseRevision: cs.head },
          'the database is behind this node\'s view: it was restored or failed over with data loss; restart every node to rebuild its view',
        );
        return;
      }
      if (cs.purgedRevision > from) {
        // History this view still needed was physically removed: catching up entry by entry would miss deletes.
        this.markStale(
          { revision: from, purgedRevision: cs.purgedRevision },
          'this node fell behind a compaction and cannot catch up from the log; restart it to rebuild its view',
        );
        return;
      }
      const limit = this.backend.followLimit;
      const last = cs.entries[cs.entries.length - 1];
      if (last !== undefined && last.revision > limit) {
        // Part of this may be this node's own commit in flight: apply what is surely not, and
        // read again once that commit has been applied by the store.
        store.applyLog(cs.entries.filter((e) => e.revision <= limit));
        await this.backend.whenCommitSettled();
        if (this.stopped) return;
        continue;
      }
      store.applyLog(cs.entries);
      store.noteCompacted(cs.compactRevision);
      if (!cs.more || store.revision === from) return;
    }
  }

  /** The view can no longer follow the log: report not ready (for good) and say why, once. */
  private markStale(facts: Record<string, number>, why: string): void {
    if (this.stale) return;
    this.stale = true;
    const wasLeader = this.leader;
    this.stepDown('the view is stale');
    this.opts.logger.error(facts, why);
    const s = this.session;
    if (wasLeader && s !== undefined) {
      // Free the expiry lock for a node whose view is current; if that fails, end the session (which frees it too).
      s.query('SELECT pg_advisory_unlock($1)', [this.backend.expiryLockKey]).catch((err: unknown) => {
        if (this.session === s) this.lost(s, err);
      });
    }
  }

  /**
   * After a reconnect: revoke leases this node still holds that the database no longer has
   * (their tombstones may have been cleaned up while this node was away).
   */
  private async reconcileLeases(): Promise<void> {
    const { leases, leaseSeq } = await this.backend.readAllLeases();
    if (this.backend.leaseSeq > leaseSeq) return; // a newer change was applied meanwhile; the feed is current
    const live = new Set(leases.map((l) => l.id));
    const gone = this.opts.store
      .leases()
      .map((l) => l.id)
      .filter((id) => !live.has(id));
    if (gone.length > 0) this.opts.store.applyLeaseChanges([], gone);
  }

  // -----------------------------------------------------------------------------------------------
  // Heartbeat: membership, the fallback poll, leadership, housekeeping

  private async tick(): Promise<void> {
    if (this.stopped || this.tickRunning) return;
    this.tickRunning = true;
    const { store, nodeId, url, version, startedAt } = this.opts;
    const began = performance.now();
    try {
      const head = await this.backend.heartbeat({
        id: nodeId,
        url,
        respUrl: this.respUrl,
        cacheKeys: this.opts.cacheKeys?.() ?? 0,
        version,
        startedAt,
        appliedRevision: store.revision,
        ready: this.ready,
        expiryLeader: this.leader,
      });
      this.heartbeatFailures = 0;
      this.heartbeatOk = true;
      if (this.firstBeat === -Infinity) this.firstBeat = began;
      if (head.ringEpoch > this.ringEpoch) await this.loadRing();
      // The ring read with this heartbeat is applied: this node's slots are its own until began + RING_FENCE_MS.
      if (this.ringEpoch >= head.ringEpoch) this.confirmedAt = Math.max(this.confirmedAt, began);
      if (this.leader && !this.ringCommitting) void this.leadRing();
      // The fallback for lost notifications: a revision-ordered read is the truth, NOTIFY only wakes us.
      if (head.revision !== store.revision || head.leaseSeq > this.backend.leaseSeq || head.compactRevision > store.compactRevision) {
        this.requestSync();
      }
      if (!this.syncOk && this.syncing === undefined && this.session !== undefined) this.requestSync();
      if (this.leader && !this.housekeeping) {
        // In the background: a long purge must not hold up heartbeats.
        this.housekeeping = true;
        const full = Date.now() - this.lastMaintenance > MAINTENANCE_MS;
        if (full) this.lastMaintenance = Date.now();
        const work = full ? this.backend.maintenance(Date.now(), NODE_TTL_MS * 2) : this.backend.purgeCompacted(NODE_TTL_MS * 2);
        void work
          .catch((err: unknown) => this.opts.logger.warn({ err: errorMessage(err) }, 'housekeeping failed'))
          .finally(() => {
            this.housekeeping = false;
          });
      }
    } catch (err) {
      this.heartbeatOk = false;
      this.lastBeatFailure = performance.now();
      this.heartbeatFailures++;
      if (this.heartbeatFailures >= 2) {
        // PostgreSQL is unreachable through the pool: another node may hold the lock by now.
        this.stepDown('heartbeats are failing');
        const s = this.session;
        if (s !== undefined) this.lost(s, err);
      }
    } finally {
      this.tickRunning = false;
    }
  }

  async status(): Promise<ClusterStatus> {
    const { nodes, head } = await this.backend.listNodes(NODE_TTL_MS);
    // A node that froze while leading still claims it in its (aging) row: the freshest claim wins.
    const claims = nodes.filter((n) => (n.id === this.opts.nodeId ? this.leader : n.expiryLeader));
    const leader = this.leader
      ? claims.find((n) => n.id === this.opts.nodeId)
      : claims.filter((n) => n.id !== this.opts.nodeId).sort((a, b) => a.ageMs - b.ageMs)[0];
    return {
      revision: head,
      expiryLeader: leader?.id ?? null,
      nodes: nodes.map((n) => {
        const self = n.id === this.opts.nodeId;
        // Our own row is up to a second old; report what this node knows now.
        const applied = self ? this.opts.store.revision : n.appliedRevision;
        const respUrl = self ? this.respUrl : n.respUrl;
        return {
          id: n.id,
          url: n.url,
          ...(respUrl !== '' ? { respUrl } : {}),
          version: n.version,
          startedAt: new Date(n.startedAt).toISOString(),
          appliedRevision: applied,
          lag: Math.max(0, head - applied),
          ready: self ? this.ready : n.ready,
          // One leader in one answer: the claim chosen above (a frozen node's stale row may still claim it).
          expiryLeader: n.id === leader?.id,
          lastSeenMs: self ? 0 : n.ageMs,
          self,
          // Completed (role, slots) by the node wiring from the ring in force.
          ...(respUrl !== '' ? { cache: { role: 'none' as const, slots: 0, keys: n.cacheKeys } } : {}),
        };
      }),
    };
  }

  setRespUrl(url: string): void {
    this.respUrl = url;
    // Advertise it now and wake the leader, so the node joins the cache ring within a round trip or two.
    void this.tick().then(() => (this.stopped ? undefined : this.backend.notify('ring-join').catch(() => undefined)));
  }

  ringConfirmed(): boolean {
    return !this.stopped && performance.now() - this.confirmedAt < RING_FENCE_MS;
  }

  get clusterId(): string {
    return this.backend.clusterId;
  }

  async leaveRing(timeoutMs: number): Promise<boolean> {
    const self = this.opts.nodeId;
    const inRing = (): boolean => this.ringMembers.some((m) => m.id === self && m.leaving !== true);
    if (this.stopped || this.respUrl === '' || !inRing() || this.ringMembers.filter((m) => m.leaving !== true).length < 2) return false;
    this.respUrl = '';
    const deadline = performance.now() + timeoutMs;
    // The next heartbeat shows no RESP listener: the leader (maybe this node) drops it from the ring.
    await this.tick();
    void this.backend.notify('ring-join').catch(() => undefined);
    while (performance.now() < deadline && !this.stopped) {
      if (!inRing()) return true;
      await new Promise((r) => setTimeout(r, 20));
    }
    this.opts.logger.warn({ timeoutMs }, 'the cache ring did not drop this node in time: its slots are not handed over');
    return false;
  }

  async checkPeer(clusterId: string, nodeId: string): Promise<string | undefined> {
    const mine = this.backend.clusterId;
    if (clusterId !== mine) {
      return `this node belongs to cluster ${mine}, not to cluster ${clusterId} of node ${nodeId}: the two nodes use different databases (check --backend), or a ring still lists this address for a node that is gone`;
    }
    const { nodes } = await this.backend.listNodes(NODE_TTL_MS);
    if (nodes.some((n) => n.id === nodeId)) return undefined;
    return `node ${nodeId} has sent no heartbeat in cluster ${mine} within ${NODE_TTL_MS} ms: it is not a live member (a frozen node, or one on a copy of this database)`;
  }

  /**
   * Reads the committed cache rings after the one applied and applies each, in epoch order
   * (single flight): a node that missed epochs (a lost notification, a freeze) must see every
   * ownership change in between, or it could keep a copy of a slot that another node owned
   * meanwhile. When the epochs it missed were already pruned, the first one it applies says so
   * ({@link RingRecord} `gap`), and the node then trusts none of its data.
   */
  private loadRing(): Promise<void> {
    if (this.ringLoading !== undefined) return this.ringLoading;
    this.ringLoading = (async () => {
      try {
        // A node without a ring yet holds nothing it trusts: the latest epoch is enough, with
        // the members of the one before (whose primaries hand their slots over to this node).
        let rings: RingRecord[];
        if (this.ringEpoch === 0) {
          const latest = await this.backend.readRing();
          const before = latest.epoch > 1 ? (await this.backend.readRingsSince(latest.epoch - 2, 1))[0] : undefined;
          rings = [before !== undefined && before.epoch === latest.epoch - 1 ? { ...latest, previous: before.members } : latest];
        } else rings = await this.backend.readRingsSince(this.ringEpoch);
        for (const ring of rings) {
          if (ring.epoch <= this.ringEpoch || this.stopped) continue;
          const gap = this.ringEpoch > 0 && ring.epoch > this.ringEpoch + 1;
          this.ringEpoch = ring.epoch;
          this.ringMembers = ring.members;
          this.opts.logger.info({ epoch: ring.epoch, members: ring.members.map((m) => m.id), ...(gap ? { gap } : {}) }, 'cache ring changed');
          this.opts.onRing?.(gap ? { ...ring, gap } : ring);
        }
      } finally {
        this.ringLoading = undefined;
      }
    })();
    return this.ringLoading;
  }

  /**
   * The leader's part of the cache ring: the members are the nodes with a RESP listener that
   * heartbeat within {@link RING_MEMBER_TTL_MS}; when they differ from the committed ring, commit
   * the next epoch. A node that became leader only recently removes no member yet (after a
   * database restart every node's row looks old until it heartbeats again: the ring must not flap).
   */
  private async leadRing(): Promise<void> {
    this.ringCommitting = true;
    try {
      const { nodes } = await this.backend.listNodes(RING_MEMBER_TTL_MS);
      if (!this.leader || this.stopped) return;
      const live = new Map<string, RingRecord['members'][number]>();
      for (const n of nodes) if (n.respUrl !== '') live.set(n.id, { id: n.id, url: n.url, respUrl: n.respUrl });
      if (this.respUrl !== '') live.set(this.opts.nodeId, { id: this.opts.nodeId, url: this.opts.url, respUrl: this.respUrl });
      // A member that stopped advertising its listener but still heartbeats is stopping cleanly:
      // kept as `leaving` (it owns no slot) until it is gone, so the new primaries of its slots
      // wait for its hand-over.
      for (const m of this.ringMembers) {
        if (live.has(m.id)) continue;
        const n = nodes.find((x) => x.id === m.id);
        if (n !== undefined && n.respUrl === '') live.set(m.id, { id: m.id, url: m.url, respUrl: m.respUrl, leaving: true });
      }
      // After an outage of PostgreSQL every member's row looks old until it heartbeats again: a
      // leader that saw its own heartbeats fail lately, or that has just started (it may have
      // come up right after the outage), removes no member in its first 4 s. One whose
      // heartbeats kept working (it took over from a leader that died) removes at once the
      // members whose rows are old: they did stop.
      const now = performance.now();
      const unsure = now - this.lastBeatFailure < 2 * RING_MEMBER_TTL_MS || now - this.firstBeat < 2 * RING_MEMBER_TTL_MS;
      if (now - this.leaderSince < RING_MEMBER_TTL_MS && unsure) {
        for (const m of this.ringMembers) if (!live.has(m.id)) live.set(m.id, m);
      }
      const next = [...live.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
      if (sameMembers(next, this.ringMembers)) return;
      const epoch = await this.backend.commitRing(this.ringEpoch, next, this.opts.nodeId);
      if (epoch === undefined) this.opts.logger.info({ epoch: this.ringEpoch }, 'another node committed the cache ring first');
      await this.loadRing();
    } catch (err) {
      this.opts.logger.warn({ err: errorMessage(err) }, 'cache ring update failed');
    } finally {
      this.ringCommitting = false;
    }
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.tickTimer) clearInterval(this.tickTimer);
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.stepDown('the node is stopping');
    const s = this.session;
    this.session = undefined;
    await this.syncing?.catch(() => undefined);
    await s?.end().catch(() => undefined); // ends the session: PostgreSQL frees the expiry lock at once
    await this.backend.deregister(this.opts.nodeId).catch(() => undefined);
  }
}

function sameMembers(a: RingRecord['members'], b: RingRecord['members']): boolean {
  if (a.length !== b.length) return false;
  const byId = new Map(b.map((m) => [m.id, m]));
  return a.every((m) => {
    const o = byId.get(m.id);
    return o !== undefined && o.url === m.url && o.respUrl === m.respUrl && (o.leaving === true) === (m.leaving === true);
  });
}
