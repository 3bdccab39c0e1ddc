/**
 * The MVCC store: the in-memory view over a durable backend, txns with compares, group commit,
 * leases with expiry, compaction, and the ordered stream of committed revisions (DESIGN.md §2).
 */
import { randomInt } from 'node:crypto';
import { floorFor, type Backend, type CommitBatch, type HistoryFloor, type LogRange, type PruneResult, type RetentionRule } from '../backend/index.js';
import {
  BeaconError,
  CompactedError,
  FutureRevisionError,
  InvalidArgumentError,
  NotFoundError,
  TooLargeError,
  UnavailableError,
} from '../errors.js';
import { Lessor, MAX_LEASE_TTL_SECONDS, type Clock, type LeaseState } from '../lease/index.js';
import { compareKeys, inRange, validateStoreKey, validateRangeEnd } from '../mvcc/index.js';
import type {
  AuditContext,
  AuditRecord,
  Compare,
  KeyValue,
  Lease,
  LogEntry,
  OpResult,
  PutOp,
  RangeOptions,
  RangeResult,
  RevisionEvents,
  TxnOp,
  TxnRequest,
  TxnResponse,
  ValueSealer,
  WatchEvent,
} from '../mvcc/index.js';
import { View } from './view.js';

/** The default largest value in bytes (DESIGN.md §2: 1 MiB, `--max-value-bytes`). */
export const DEFAULT_MAX_VALUE_BYTES = 1024 * 1024;
/** The most ops one txn may hold (etcd's default `--max-txn-ops`). */
export const MAX_TXN_OPS = 128;
/** How often the lease expiry loop looks for expired leases at the latest, in ms. */
const EXPIRY_TICK_MS = 250;
/** Leases revoked per expiry commit, so a mass expiry does not make one huge revision batch. */
const EXPIRY_BATCH = 1000;
/**
 * A view snapshot (backends that keep one: SQLite) is written once this many log entries were
 * applied since the last one, and at least {@link VIEW_SNAPSHOT_KEY_SHARE} of the live keys: a
 * start after a crash then replays at most an eighth of the view's size from the log (the log
 * costs ~10 µs a row to read against ~2 µs a key from the snapshot: 125,000 entries ≈ 1.5 s at a
 * million keys, issue 17), and a snapshot is written per 125,000 writes at a million keys, about
 * etcd's default of one per 100,000 entries.
 */
export const VIEW_SNAPSHOT_MIN_ENTRIES = 10_000;
/** See {@link VIEW_SNAPSHOT_MIN_ENTRIES}. */
export const VIEW_SNAPSHOT_KEY_SHARE = 0.125;
/** A clean shutdown writes a view snapshot when at least this many entries were applied since the last one. */
export const VIEW_SNAPSHOT_CLOSE_ENTRIES = 1000;
/** How long after open a view snapshot that is already due (a load from the log) waits, in ms. */
const VIEW_SNAPSHOT_START_DELAY_MS = 2000;
/** After a failed view snapshot, the next attempt waits this long, in ms. */
const VIEW_SNAPSHOT_RETRY_MS = 60_000;

/** Options of {@link Store}. */
export interface StoreOptions {
  backend: Backend;
  /** Largest value in bytes. */
  maxValueBytes?: number;
  /** Milliseconds clock (a fake one in tests). */
  clock?: Clock;
  /** Whether this node drives lease expiry (single node: always). */
  driveExpiry?: boolean;
}

/** Options of a write that are not part of the txn itself. */
export interface WriteOptions {
  /** JSON recorded with every log entry of the revision, e.g. `{"rollback":…}`. */
  meta?: string;
  /** Who asked: one audit record per changed key is written in the same transaction. */
  audit?: AuditContext;
}

type Resolver<T> = { resolve: (v: T) => void; reject: (e: unknown) => void };

/** A put as the planner sees it: its value already sealed, and how (set here, never by a caller). */
type SealedPut = PutOp & { sealed: boolean };

type WriteRequest =
  | ({ kind: 'txn'; txn: TxnRequest; meta: string | null; audit?: AuditContext } & Resolver<TxnResponse>)
  | ({ kind: 'grant'; id: number; ttl: number; owner?: string; audit?: AuditContext } & Resolver<Lease>)
  | ({ kind: 'revoke'; id: number; expiry: boolean; audit?: AuditContext } & Resolver<number>);

/** A listener for committed revisions, called in revision order exactly once each. */
export type CommitListener = (events: RevisionEvents) => void;

/** The outcome of {@link Store.timeToLive}. `ttl` is the remaining whole seconds. */
export interface LeaseInfo {
  id: number;
  ttl: number;
  grantedTtl: number;
  keys: string[];
  /** The principal that granted the lease; absent when none was recorded (see {@link Lease.owner}). */
  owner?: string;
}

function tombstone(key: string, revision: number): KeyValue {
  return { key, value: new Uint8Array(0), createRevision: 0, modRevision: revision, version: 0, lease: 0 };
}

function bytesEqual(a: Uint8Array, b: Uint8Array): number {
  return Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.byteLength), Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

function entryToKv(e: LogEntry): KeyValue {
  const kv: KeyValue = { key: e.key, value: e.value, createRevision: e.createRevision, modRevision: e.revision, version: e.version, lease: e.lease };
  if (e.encrypted === true) kv.encrypted = true;
  return kv;
}

/**
 * Whether writes work, for `/readyz` (issue 9 finding 10): `ok`, or the reason the last commit
 * failed and since when (ms since the epoch), until a commit or a write probe succeeds.
 */
export type WriteHealth = { ok: true } | { ok: false; reason: string; since: number };

/** Least time between two write probes while writes fail, in ms (a probe may write up to `maxValueBytes`). */
export const WRITE_PROBE_INTERVAL_MS = 1000;

/**
 * While commits fail as unavailable, at most one write is tried per this many ms (and one at a
 * time); the others are refused at once (a circuit breaker, seed 000: fail fast on database
 * failures, no retry storms).
 */
export const WRITE_TRIAL_INTERVAL_MS = 1000;

/** How long a linearizable read waits for this node's view to reach the committed revision, in ms. */
export const READ_BARRIER_TIMEOUT_MS = 10_000;

/**
 * The kv core. Reads at the latest revision come from the in-memory view; older revisions from
 * the backend. Writes queue up and are committed together (group commit): each request keeps
 * its own revision, in order, and sees every write before it in the batch.
 */
export class Store {
  readonly backend: Backend;
  readonly maxValueBytes: number;
  private readonly view = new View();
  private readonly lessor: Lessor;
  private readonly clock: Clock;
  private readonly listeners = new Set<CommitListener>();
  private queue: WriteRequest[] = [];
  private flushScheduled = false;
  /** Batches handed to the backend and not settled yet, oldest first (more than one only with pipelined commits). */
  private inflight: InFlight[] = [];
  /** Requests of pipelined batches the backend refused (nothing written): planned again first, in order. */
  private retry: WriteRequest[] = [];
  /** Set when a pipelined batch was refused or failed: no more chaining until the batches in flight settled. */
  private chainBroken = false;
  private closed = false;
  private expiryTimer: NodeJS.Timeout | undefined;
  private driveExpiry: boolean;
  private expiring = new Set<number>();
  private revisionWaiters: { revision: number; resolve: () => void }[] = [];
  private _revision = 0;
  private _compactRevision = 0;
  /** History-retention floors of key ranges (see {@link compactRevisionFor}), as last read from the backend. */
  private floors: HistoryFloor[] = [];
  /** The last commit failed (and none succeeded since); `unavailable`: the backend could not be reached or timed out. */
  private writeFailure: { reason: string; since: number; unavailable: boolean } | undefined;
  private probing: Promise<void> | undefined;
  private lastProbe = 0;
  /** When the last write was let through to try the backend while {@link writeFailure} is unavailable. */
  private lastTrial = 0;
  /** Observers of commit batches: size and duration in ms (for metrics). */
  onBatch: ((requests: number, ms: number) => void) | undefined;
  private sealer: ValueSealer | undefined;
  /** View snapshots (see {@link VIEW_SNAPSHOT_MIN_ENTRIES}): the last one's revision, entries applied since, the write in flight. */
  private snap = { revision: 0, entries: 0, writing: undefined as Promise<void> | undefined, retryAt: 0, opened: false };

  constructor(opts: StoreOptions) {
    this.backend = opts.backend;
    this.maxValueBytes = opts.maxValueBytes ?? DEFAULT_MAX_VALUE_BYTES;
    this.clock = opts.clock ?? Date.now;
    this.lessor = new Lessor(this.clock);
    this.driveExpiry = opts.driveExpiry ?? true;
  }

  /** The revision of the view: every revision up to it is applied. */
  get revision(): number {
    return this._revision;
  }

  /** The compact revision: history at or below it is gone. */
  get compactRevision(): number {
    return this._compactRevision;
  }

  /** The number of live keys. */
  get keyCount(): number {
    return this.view.size;
  }

  /** Bytes of keys and values in the view. */
  get viewBytes(): number {
    return this.view.bytes;
  }

  /** The number of live leases. */
  get leaseCount(): number {
    return this.lessor.size;
  }

  /**
   * Opens the backend and rebuilds the view and the leases. Leases are re-armed with their full
   * TTL from now (etcd does the same on leader change), so a restart never expires a lease early.
   */
  async open(): Promise<void> {
    const state = await this.backend.open();
    this._compactRevision = state.compactRevision;
    this.floors = await this.backend.historyFloors();
    this.view.clear();
    const now = this.clock();
    for (const lease of await this.backend.loadLeases()) {
      // One node: re-arm with a full TTL (etcd does so on leader change). Shared store: other
      // nodes keep the lease alive and persist its expiry, which is the truth.
      const expiresAt = this.backend.shared === true ? lease.expiresAt : Math.max(lease.expiresAt, now + lease.grantedTtl * 1000);
      this.lessor.grant(lease.id, lease.grantedTtl, expiresAt, lease.owner);
    }
    // Keys join their leases as they load: no second pass over the view, whose key order is
    // then sorted at the first range read instead of at start (seconds at a million keys).
    const revision = await this.backend.loadView((kv) => {
      this.view.set(kv);
      if (kv.lease !== 0) this.lessor.attach(kv.lease, kv.key);
    });
    this._revision = Math.max(revision, state.revision);
    // Without a snapshot every key came from the log: the next snapshot is due as if all of them
    // had been written since.
    const load = this.backend.lastViewLoad;
    this.snap = { revision: load?.snapshotRevision ?? 0, entries: load === undefined ? 0 : load.source === 'log' ? this.view.size : load.logEntries, writing: undefined, retryAt: 0, opened: true };
    this.scheduleExpiry();
    // After the node is up: a first snapshot after a load from the log sorts every key first.
    setTimeout(() => this.maybeSnapshotView(), VIEW_SNAPSHOT_START_DELAY_MS).unref();
  }

  /**
   * Stops the expiry loop, fails queued writes with `unavailable`, writes a view snapshot when
   * enough changed since the last one (a faster next start) and closes the backend.
   */
  async close(): Promise<void> {
    this.closed = true;
    if (this.expiryTimer) clearTimeout(this.expiryTimer);
    const pending = this.retry.concat(this.queue);
    this.queue = [];
    this.retry = [];
    for (const r of pending) r.reject(new UnavailableError('the node is shutting down'));
    while (this.inflight.length > 0) await new Promise((r) => setTimeout(r, 5));
    await this.snap.writing;
    if (this.snap.opened && (this.snap.entries >= VIEW_SNAPSHOT_CLOSE_ENTRIES || (this.snap.revision > 0 && this._compactRevision > this.snap.revision))) {
      await this.snapshotView();
    }
    this.snap.opened = false;
    await this.backend.close();
  }

  /** Starts a view snapshot when one is due (see {@link VIEW_SNAPSHOT_MIN_ENTRIES}); never waits for it. */
  private maybeSnapshotView(): void {
    const s = this.snap;
    if (s.writing !== undefined || this.closed || this.backend.saveViewSnapshot === undefined) return;
    if (s.entries < Math.max(VIEW_SNAPSHOT_MIN_ENTRIES, this.view.size * VIEW_SNAPSHOT_KEY_SHARE) || this.clock() < s.retryAt) return;
    void this.snapshotView();
  }

  /**
   * Writes a view snapshot of the view as it is now (captured synchronously, so it is exactly the
   * state at {@link revision}; the kvs are immutable, and the backend serialises them while
   * writes go on). Failures are not fatal (the log is the truth): the next attempt waits.
   */
  private snapshotView(): Promise<void> {
    const save = this.backend.saveViewSnapshot;
    if (save === undefined || this.snap.writing !== undefined) return this.snap.writing ?? Promise.resolve();
    const revision = this._revision;
    const entries = this.snap.entries;
    const kvs = this.view.sortedValues();
    const writing = save
      .call(this.backend, revision, kvs)
      .then(
        () => {
          this.snap.revision = revision;
          this.snap.entries -= entries;
        },
        () => {
          this.snap.retryAt = this.clock() + VIEW_SNAPSHOT_RETRY_MS;
        },
      )
      .finally(() => {
        this.snap.writing = undefined;
      });
    this.snap.writing = writing;
    return writing;
  }

  /** Subscribes to committed revisions; returns the unsubscribe function. */
  subscribe(listener: CommitListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Enables or disables driving lease expiry on this node (postgres mode: only the expiry leader). */
  setDriveExpiry(on: boolean): void {
    this.driveExpiry = on;
    this.scheduleExpiry();
  }

  // ---------------------------------------------------------------------------------------------
  // Reads

  /** Checks that `revision` can be read: not below the compact revision and not in the future. */
  checkRevision(revision: number): void {
    if (revision > this._revision) throw new FutureRevisionError(revision, this._revision);
    // Reading at the compact revision itself is fine (etcd allows it): compaction keeps, for
    // every key, its state as of that revision. Watches and history need strictly newer.
    if (revision < this._compactRevision && revision > 0) throw new CompactedError(revision, this._compactRevision);
  }

  /**
   * The effective compact revision of `[key, rangeEnd)` (a single key when rangeEnd is
   * undefined, unbounded when null): the global compact revision, or higher where history
   * retention removed rows of an overlapping range (its floor). Reads at or above it are whole;
   * watches and history must start above it. Synchronous, from the floors last read from the
   * backend (see {@link refreshFloors}).
   */
  compactRevisionFor(key: string, rangeEnd: string | null | undefined): number {
    if (this.floors.length === 0) return this._compactRevision;
    return floorFor(this.floors, this._compactRevision, key, rangeEnd, compareKeys);
  }

  /**
   * Reads the history-retention floors from the backend (other nodes' retention passes raise
   * them too). A reader that found rows missing calls it AFTER reading them: the floor is raised
   * in the transaction that removed the rows, so it is then visible.
   * @throws UnavailableError when the backend is unreachable.
   */
  async refreshFloors(): Promise<void> {
    const read = await this.backend.historyFloors();
    // Floors only go up: keep the higher of what was known and what was read.
    const known = new Map(this.floors.map((f) => [`${f.key}\u0000${f.rangeEnd ?? ''}`, f]));
    for (const f of read) {
      const id = `${f.key}\u0000${f.rangeEnd ?? ''}`;
      const old = known.get(id);
      if (old === undefined || old.revision < f.revision) known.set(id, f);
    }
    this.floors = [...known.values()];
  }

  /**
   * Applies history retention to `[key, rangeEnd)` (null: unbounded): removes superseded rows
   * that `rule` lets go, raising the range's floor first (see Backend.pruneHistory). `nowMs`
   * defaults to the store's clock. Call it on the one node that drives lease expiry.
   * @throws UnavailableError when the backend fails (rows removed before the failure stay removed, with their floor).
   */
  async pruneHistory(key: string, rangeEnd: string | null, rule: RetentionRule, nowMs = this.clock()): Promise<PruneResult> {
    try {
      return await this.backend.pruneHistory(key, rangeEnd, rule, nowMs);
    } finally {
      await this.refreshFloors().catch(() => undefined);
    }
  }

  /**
   * Reads `[key, rangeEnd)` (a single key when rangeEnd is undefined, unbounded when null).
   * @throws CompactedError / FutureRevisionError for an unreadable `revision` (also where
   * history retention removed rows the read would need).
   */
  async range(key: string, rangeEnd: string | null | undefined, opts: RangeOptions = {}): Promise<RangeResult> {
    const limit = opts.limit ?? 0;
    if (!Number.isSafeInteger(limit) || limit < 0) throw new InvalidArgumentError('limit must be a non-negative integer');
    const revision = opts.revision ?? 0;
    if (!Number.isSafeInteger(revision) || revision < 0) throw new InvalidArgumentError('revision must be a non-negative integer');
    if (revision === 0 || revision === this._revision) {
      return this.rangeLatest(key, rangeEnd, limit, opts);
    }
    this.checkRevision(revision);
    this.checkRangeRevision(revision, key, rangeEnd);
    const res = await this.backend.range({ key, rangeEnd, revision, limit: opts.countOnly ? 0 : limit });
    // A compaction or a retention pass may have removed history while we read: floors are read after the rows.
    if (revision < this._compactRevision) throw new CompactedError(revision, this._compactRevision);
    await this.refreshFloors();
    this.checkRangeRevision(revision, key, rangeEnd);
    const kvs = opts.countOnly ? [] : opts.keysOnly ? res.kvs.map((kv) => ({ ...kv, value: new Uint8Array(0) })) : res.kvs;
    return { revision: this._revision, kvs, more: opts.countOnly ? false : res.more, count: res.count };
  }

  /** Refuses a read of `[key, rangeEnd)` at `revision` below its effective compact revision (same rule as {@link checkRevision}). */
  private checkRangeRevision(revision: number, key: string, rangeEnd: string | null | undefined): void {
    const c = this.compactRevisionFor(key, rangeEnd);
    if (revision < c && revision > 0) throw new CompactedError(revision, c);
  }

  /** A synchronous read of the latest revision from the view (no backend round trip). */
  rangeLatest(key: string, rangeEnd: string | null | undefined, limit = 0, opts: RangeOptions = {}): RangeResult {
    const count = this.view.count(key, rangeEnd);
    if (opts.countOnly) return { revision: this._revision, kvs: [], more: false, count };
    const kvs: KeyValue[] = [];
    this.view.scan(key, rangeEnd, (kv) => {
      if (limit > 0 && kvs.length >= limit) return false;
      kvs.push(opts.keysOnly ? { ...kv, value: new Uint8Array(0) } : kv);
      return true;
    });
    return { revision: this._revision, kvs, more: kvs.length < count, count };
  }

  /** The latest kv of one key, or undefined. */
  get(key: string): KeyValue | undefined {
    return this.view.get(key);
  }

  /** Resolves once the view has applied `revision` (immediately when it has). */
  waitForRevision(revision: number): Promise<void> {
    if (revision <= this._revision) return Promise.resolve();
    return new Promise((resolve) => this.revisionWaiters.push({ revision, resolve }));
  }

  /**
   * A linearizable read barrier: learns the backend's committed revision and waits until the view
   * has it, at most `timeoutMs`.
   * @throws UnavailableError when the backend is unreachable, or when the view does not reach
   * that revision in time (a node cut off from the change feed, or fallen behind a compaction).
   */
  async readBarrier(timeoutMs = READ_BARRIER_TIMEOUT_MS): Promise<number> {
    const head = await this.backend.headRevision();
    if (head <= this._revision) return head;
    let timer: NodeJS.Timeout | undefined;
    const waiting = this.waitForRevision(head);
    try {
      await Promise.race([
        waiting,
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new UnavailableError(`this node has not applied revision ${head} within ${timeoutMs} ms (it is at ${this._revision}); try another node`, { details: { revision: head, applied: this._revision } })),
            timeoutMs,
          );
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
    return head;
  }

  /**
   * The history of one key: every entry (puts and deletes) in revision order (newest first with
   * `reverse`), within `[fromRevision, toRevision]` (toRevision is capped at the view's revision).
   * Without `fromRevision` it lists what is still stored (compaction and the namespace's history
   * retention may have removed older entries).
   * @throws CompactedError when `fromRevision` is compacted or at or below the key's retention floor.
   */
  async history(
    key: string,
    opts: { fromRevision?: number; toRevision?: number; limit?: number; reverse?: boolean } = {},
  ): Promise<LogEntry[]> {
    validateStoreKey(key);
    const from = opts.fromRevision ?? 0;
    const check = (): void => {
      const c = this.compactRevisionFor(key, undefined);
      if (from > 0 && from <= c) throw new CompactedError(from, c);
    };
    check();
    const entries = await this.backend.history(key, { ...opts, toRevision: Math.min(opts.toRevision ?? this._revision, this._revision) });
    if (from > 0) {
      // Rows first, floors after: a retention pass that removed rows we needed has raised the floor by now.
      await this.refreshFloors();
      check();
    }
    return entries;
  }

  /**
   * The committed revisions in `[fromRevision, toRevision]` read from the backend log, each with
   * its events in key order; `prevKv` is filled when asked (one extra read per event). It checks
   * only the global compact revision: a caller interested in a key range checks
   * {@link compactRevisionFor} after {@link refreshFloors} once the events are read.
   * With `range`, only events of keys in it are read (revisions without any are left out).
   * @throws CompactedError when `fromRevision` is compacted.
   */
  async readEvents(fromRevision: number, toRevision: number, limit: number, withPrevKv: boolean, range?: LogRange): Promise<RevisionEvents[]> {
    if (fromRevision <= this._compactRevision) throw new CompactedError(fromRevision, this._compactRevision);
    const entries = await this.backend.readLog(fromRevision, toRevision, limit, range);
    const out: RevisionEvents[] = [];
    for (const e of entries) {
      let group = out[out.length - 1];
      if (group === undefined || group.revision !== e.revision) {
        group = { revision: e.revision, ts: e.ts, meta: e.meta, events: [] };
        out.push(group);
      }
      const ev: WatchEvent = e.deleted ? { type: 'delete', kv: tombstone(e.key, e.revision) } : { type: 'put', kv: entryToKv(e) };
      if (withPrevKv) {
        const prev = await this.backend.previous(e.key, e.revision);
        if (prev !== undefined && !prev.deleted) ev.prevKv = entryToKv(prev);
      }
      group.events.push(ev);
    }
    // A compaction that started meanwhile may have removed rows that previous() needed.
    if (fromRevision <= this._compactRevision) throw new CompactedError(fromRevision, this._compactRevision);
    return out;
  }

  // ---------------------------------------------------------------------------------------------
  // Writes

  /** Puts one key. Shorthand for a txn with one put. */
  async put(
    key: string,
    value: Uint8Array,
    opts: { lease?: number; prevKv?: boolean; meta?: string; audit?: AuditContext } = {},
  ): Promise<{ revision: number; prevKv?: KeyValue }> {
    const res = await this.txn(
      { compare: [], success: [{ type: 'put', key, value, lease: opts.lease ?? 0, prevKv: opts.prevKv ?? false }], failure: [] },
      { meta: opts.meta, audit: opts.audit },
    );
    const r = res.results[0] as Extract<OpResult, { type: 'put' }>;
    return r.prevKv ? { revision: res.revision, prevKv: r.prevKv } : { revision: res.revision };
  }

  /** Deletes a key or range; resolves with the revision and how many keys were deleted. */
  async deleteRange(
    key: string,
    rangeEnd: string | null | undefined,
    opts: { prevKv?: boolean; meta?: string; audit?: AuditContext } = {},
  ): Promise<{ revision: number; deleted: number; prevKvs?: KeyValue[] }> {
    const res = await this.txn({ compare: [], success: [{ type: 'delete', key, rangeEnd, prevKv: opts.prevKv ?? false }], failure: [] }, opts);
    const r = res.results[0] as Extract<OpResult, { type: 'delete' }>;
    return { revision: res.revision, deleted: r.deleted, ...(r.prevKvs ? { prevKvs: r.prevKvs } : {}) };
  }

  /**
   * Runs a txn atomically: compares, then the success or failure ops, as one revision when it
   * writes. Resolves once durable.
   * @throws InvalidArgumentError for malformed ops, duplicate keys or an unknown lease;
   * TooLargeError for an oversized key or value; UnavailableError when the backend fails.
   */
  async txn(txn: TxnRequest, opts: WriteOptions = {}): Promise<TxnResponse> {
    this.validateTxn(txn);
    const sealed: TxnRequest = { compare: txn.compare, success: txn.success.map((op) => this.seal(op)), failure: txn.failure.map((op) => this.seal(op)) };
    return new Promise((resolve, reject) => {
      this.enqueue({ kind: 'txn', txn: sealed, meta: opts.meta ?? null, audit: opts.audit, resolve, reject });
    });
  }

  /**
   * Installs the function every put's value goes through before it is stored (the config
   * layer's encryption of secret namespaces); see {@link ValueSealer}. One at a time: the last
   * installed wins. Returns a function that uninstalls it, bringing back the one it replaced.
   */
  setSealer(sealer: ValueSealer): () => void {
    const replaced = this.sealer;
    this.sealer = sealer;
    return () => {
      if (this.sealer === sealer) this.sealer = replaced;
    };
  }

  /** A put with its value sealed by the sealer and `sealed` set from its answer; other ops as given. */
  private seal(op: TxnOp): TxnOp {
    if (op.type !== 'put') return op;
    // Whatever a caller put in the op, the flag comes from here: a request cannot mark bytes as ciphertext.
    if (op.ignoreValue === true || this.sealer === undefined) return { ...op, sealed: false } as SealedPut;
    const s = this.sealer(op.key, op.value);
    return { ...op, value: s.value, sealed: s.encrypted } as SealedPut;
  }

  /**
   * Grants a lease of `ttl` seconds (1 … {@link MAX_LEASE_TTL_SECONDS}); `id` 0 picks a random id.
   * The lease is owned by `owner`, by default the principal of `audit` (who asked); without
   * either it has no owner, and only administrators may see or manage it through the API.
   * @throws InvalidArgumentError for a bad TTL or an id already in use.
   */
  async grantLease(ttl: number, id = 0, audit?: AuditContext, owner: string | undefined = audit?.principal): Promise<Lease> {
    if (!Number.isSafeInteger(ttl) || ttl < 1 || ttl > MAX_LEASE_TTL_SECONDS) {
      throw new InvalidArgumentError(`ttl must be an integer number of seconds from 1 to ${MAX_LEASE_TTL_SECONDS}`, { ttl });
    }
    if (!Number.isSafeInteger(id) || id < 0) throw new InvalidArgumentError('lease id must be a positive integer', { id });
    if (id !== 0 && this.lessor.get(id) !== undefined) throw new InvalidArgumentError(`lease ${id} already exists`, { id });
    return new Promise((resolve, reject) => this.enqueue({ kind: 'grant', id, ttl, ...(owner !== undefined ? { owner } : {}), audit, resolve, reject }));
  }

  /**
   * Revokes a lease and deletes its keys in one revision; resolves with the store revision.
   * @throws NotFoundError for an unknown lease.
   */
  async revokeLease(id: number, audit?: AuditContext): Promise<number> {
    // No await when the lease is known here, so the revoke joins the batch in call order.
    if (this.lessor.get(id) === undefined && !(await this.hasLease(id))) throw new NotFoundError(`lease ${id} not found`, { lease: id });
    return new Promise((resolve, reject) => this.enqueue({ kind: 'revoke', id, expiry: false, audit, resolve, reject }));
  }

  /**
   * Renews a lease to its full TTL; resolves with the TTL in seconds.
   * @throws NotFoundError when the lease is unknown or already expired.
   */
  async keepAlive(id: number): Promise<number> {
    if (this.lessor.get(id) === undefined) await this.hasLease(id);
    let expiresAt = this.lessor.renew(id);
    if (expiresAt === undefined && this.backend.syncLeases !== undefined) {
      // On a shared store this node may lag: other nodes may have kept the lease alive since.
      await this.backend.syncLeases();
      expiresAt = this.lessor.renew(id);
    }
    if (expiresAt === undefined) throw new NotFoundError(`lease ${id} not found or expired`, { lease: id });
    await this.backend.keepAlive(id, expiresAt);
    return (this.lessor.get(id) as LeaseState).grantedTtl;
  }

  /**
   * Whether a lease exists here; on a shared store a miss first pulls lease changes other nodes
   * committed (a lease granted elsewhere a moment ago may not have arrived through the feed yet).
   */
  async hasLease(id: number): Promise<boolean> {
    if (this.lessor.get(id) !== undefined) return true;
    if (this.backend.syncLeases === undefined) return false;
    await this.backend.syncLeases();
    return this.lessor.get(id) !== undefined;
  }

  /**
   * Describes a lease: remaining TTL in whole seconds, granted TTL, attached keys.
   * @throws NotFoundError for an unknown lease.
   */
  timeToLive(id: number): LeaseInfo {
    const l = this.lessor.get(id);
    if (l === undefined) throw new NotFoundError(`lease ${id} not found`, { lease: id });
    const ttl = Math.max(0, Math.ceil((l.expiresAt - this.clock()) / 1000));
    return { id, ttl, grantedTtl: l.grantedTtl, keys: [...l.keys].sort(compareKeys), ...(l.owner !== undefined ? { owner: l.owner } : {}) };
  }

  /** Lease `id` as this node knows it (without its keys: cheap), or undefined for an unknown lease. */
  lease(id: number): Lease | undefined {
    const l = this.lessor.get(id);
    if (l === undefined) return undefined;
    return { id: l.id, grantedTtl: l.grantedTtl, expiresAt: l.expiresAt, ...(l.owner !== undefined ? { owner: l.owner } : {}) };
  }

  /**
   * The milliseconds lease `id` has left by this node's clock (0 once expired), or undefined for
   * an unknown lease. On a shared store the expiry is as this node last learned it.
   */
  leaseRemainingMs(id: number): number | undefined {
    const l = this.lessor.get(id);
    return l === undefined ? undefined : Math.max(0, l.expiresAt - this.clock());
  }

  /** Every live lease with its remaining TTL. */
  leases(): LeaseInfo[] {
    const now = this.clock();
    return [...this.lessor.all()].map((l) => ({
      id: l.id,
      ttl: Math.max(0, Math.ceil((l.expiresAt - now) / 1000)),
      grantedTtl: l.grantedTtl,
      keys: [...l.keys].sort(compareKeys),
      ...(l.owner !== undefined ? { owner: l.owner } : {}),
    }));
  }

  /**
   * Whether writes work now. After a failed commit it stays failing until a commit succeeds or,
   * at most once per {@link WRITE_PROBE_INTERVAL_MS}, the backend's write probe (a write of
   * `maxValueBytes` that changes no data) succeeds — so a node that answers 503 to writes says
   * so in `/readyz`, and says ready again once space is freed even if no write came meanwhile.
   */
  async writeHealth(): Promise<WriteHealth> {
    if (this.writeFailure !== undefined && this.backend.probeWrite !== undefined && !this.closed) {
      if (this.probing === undefined && Date.now() - this.lastProbe >= WRITE_PROBE_INTERVAL_MS) {
        const failure = this.writeFailure;
        this.lastProbe = Date.now();
        this.probing = this.backend.probeWrite(this.maxValueBytes).then(
          () => {
            // Unless a commit failed again meanwhile, writes work.
            if (this.writeFailure === failure) this.writeFailure = undefined;
          },
          (err: unknown) => {
            if (this.writeFailure === failure) failure.reason = (err as Error).message;
          },
        );
        void this.probing.finally(() => (this.probing = undefined));
      }
      await this.probing;
    }
    const f = this.writeFailure;
    return f === undefined ? { ok: true } : { ok: false, reason: f.reason, since: f.since };
  }

  /**
   * Compacts history at or below `revision`. Reads and watches below it then fail with `compacted`.
   * @throws InvalidArgumentError when not above the current compact revision; FutureRevisionError past the head.
   */
  async compact(revision: number): Promise<void> {
    if (!Number.isSafeInteger(revision) || revision < 1) throw new InvalidArgumentError('revision must be a positive integer');
    if (revision > this._revision) throw new FutureRevisionError(revision, this._revision);
    if (revision <= this._compactRevision) throw new CompactedError(revision, this._compactRevision);
    this._compactRevision = revision;
    await this.backend.compact(revision);
    // A view snapshot older than the compaction is unusable (the compaction may have removed
    // tombstones its replay would need): take a new one.
    if (this.snap.revision > 0 && revision > this.snap.revision) void this.snapshotViewAfter(revision);
  }

  /** Writes a view snapshot at or past `revision` unless one is (after the one in flight, if any). */
  private async snapshotViewAfter(revision: number): Promise<void> {
    await this.snap.writing;
    if (!this.closed && this.snap.revision < revision) await this.snapshotView();
  }

  /** Records a compaction made by another node (postgres mode). */
  noteCompacted(revision: number): void {
    if (revision > this._compactRevision) this._compactRevision = revision;
  }

  // ---------------------------------------------------------------------------------------------
  // Validation

  private validateTxn(txn: TxnRequest): void {
    if (txn.compare.length + txn.success.length + txn.failure.length > MAX_TXN_OPS * 2) {
      throw new TooLargeError(`a txn may hold at most ${MAX_TXN_OPS} ops per branch`);
    }
    if (txn.success.length > MAX_TXN_OPS || txn.failure.length > MAX_TXN_OPS) {
      throw new TooLargeError(`a txn may hold at most ${MAX_TXN_OPS} ops per branch`);
    }
    for (const c of txn.compare) this.validateCompare(c);
    this.validateOps(txn.success);
    this.validateOps(txn.failure);
  }

  private validateCompare(c: Compare): void {
    validateStoreKey(c.key, 'compare key');
    validateRangeEnd(c.rangeEnd);
    if (!['value', 'version', 'createRevision', 'modRevision', 'lease'].includes(c.target)) {
      throw new InvalidArgumentError(`unknown compare target '${String(c.target)}'`);
    }
    if (!['=', '!=', '<', '>'].includes(c.result)) throw new InvalidArgumentError(`unknown compare result '${String(c.result)}'`);
    if (c.target === 'value') {
      if (!(c.operand instanceof Uint8Array)) throw new InvalidArgumentError('a value compare needs a value');
    } else if (typeof c.operand !== 'number' || !Number.isSafeInteger(c.operand)) {
      throw new InvalidArgumentError(`a ${c.target} compare needs an integer`);
    }
  }

  private validateOps(ops: TxnOp[]): void {
    const putKeys: string[] = [];
    const deletes: { key: string; rangeEnd: string | null | undefined }[] = [];
    for (const op of ops) {
      validateStoreKey(op.key);
      if (op.type === 'put') {
        if (!(op.value instanceof Uint8Array)) throw new InvalidArgumentError('put value must be bytes');
        if (op.value.byteLength > this.maxValueBytes) {
          throw new TooLargeError(`value of '${op.key}' is ${op.value.byteLength} bytes; the limit is ${this.maxValueBytes}`, {
            key: op.key,
            bytes: op.value.byteLength,
            limit: this.maxValueBytes,
          });
        }
        const lease = op.lease ?? 0;
        if (!Number.isSafeInteger(lease) || lease < 0) throw new InvalidArgumentError('lease must be a non-negative integer');
        if (putKeys.includes(op.key)) throw new InvalidArgumentError(`duplicate key '${op.key}' in txn`, { key: op.key });
        putKeys.push(op.key);
      } else if (op.type === 'delete') {
        deletes.push({ key: op.key, rangeEnd: validateRangeEnd(op.rangeEnd) });
      } else if (op.type === 'range') {
        validateRangeEnd(op.rangeEnd);
        if (op.limit !== undefined && (!Number.isSafeInteger(op.limit) || op.limit < 0)) {
          throw new InvalidArgumentError('limit must be a non-negative integer');
        }
      } else {
        throw new InvalidArgumentError(`unknown op type '${String((op as { type: unknown }).type)}'`);
      }
    }
    for (const d of deletes) {
      for (const k of putKeys) {
        if (inRange(k, d.key, d.rangeEnd)) throw new InvalidArgumentError(`key '${k}' is both put and deleted in one txn`, { key: k });
      }
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Group commit

  private enqueue(req: WriteRequest): void {
    if (this.closed) {
      req.reject(new UnavailableError('the node is shutting down'));
      return;
    }
    const f = this.writeFailure;
    if (f?.unavailable === true) {
      // Open breaker: one write at a time, at most one a second, tries the backend; the rest are
      // refused now instead of each waiting out the backend's timeout.
      const now = Date.now();
      if (this.inflight.length > 0 || this.queue.length > 0 || this.retry.length > 0 || now - this.lastTrial < WRITE_TRIAL_INTERVAL_MS) {
        req.reject(
          new UnavailableError(`writes are failing since ${new Date(f.since).toISOString()} (${f.reason}); this write was not tried, retry in a second`, {
            details: { reason: 'writes_failing', since: new Date(f.since).toISOString(), retryAfterSeconds: 1 },
          }),
        );
        return;
      }
      this.lastTrial = now;
    }
    this.queue.push(req);
    this.scheduleFlush();
  }

  private scheduleFlush(): void {
    if (this.flushScheduled || !this.canFlush()) return;
    this.flushScheduled = true;
    // setImmediate runs after the I/O phase, so every request parsed in this loop turn joins the batch.
    setImmediate(() => {
      this.flushScheduled = false;
      this.flush();
    });
  }

  /** Whether a batch can start now: one when none is in flight, more while the backend chains them. */
  private canFlush(): boolean {
    if (this.queue.length === 0 && this.retry.length === 0) return false;
    if (this.inflight.length === 0) return true;
    const last = this.inflight[this.inflight.length - 1] as InFlight;
    return (
      !this.chainBroken &&
      this.backend.commitPipelined !== undefined &&
      this.inflight.length < (this.backend.pipelineDepth ?? 1) &&
      last.batch !== undefined
    );
  }

  private takeRequests(): WriteRequest[] {
    const requests = this.retry.length === 0 ? this.queue : this.retry.concat(this.queue);
    this.queue = [];
    this.retry = [];
    return requests;
  }

  private flush(): void {
    if (!this.canFlush()) return;
    if (this.inflight.length === 0) void this.commitFirst();
    else this.commitChained();
  }

  /** Commits a batch with nothing in flight before it: the backend plans it under its write lock. */
  private async commitFirst(): Promise<void> {
    const requests = this.takeRequests();
    const f = newInFlight(requests, undefined);
    this.inflight.push(f);
    const started = performance.now();
    try {
      const batch = await this.backend.commit(this._revision, (missed, head) => {
        // Planned again (the backend's first try met another node's write): batches chained on the
        // first plan will be refused, and none may chain on them.
        if (f.batch !== undefined) this.chainBroken = true;
        if (missed.length > 0) this.applyLog(missed);
        if (head > this._revision) this._revision = head;
        const planner = new Planner(this.view, this.lessor, this._revision, this.clock());
        f.outcomes = requests.map((r) => planner.plan(r));
        f.planner = planner;
        f.batch = planner.batch();
        // The next batch may be planned on top of this one (in a later turn, once the backend sent it).
        this.scheduleFlush();
        return f.batch;
      });
      this.writeFailure = undefined;
      f.committed = true;
      this.applyCommitted(batch, f.planner?.published ?? []);
      requests.forEach((r, i) => settle(r, f.outcomes[i] as Outcome));
    } catch (err) {
      this.failBatch(f, err);
    } finally {
      this.settleInFlight(f, started);
    }
  }

  /**
   * Plans a batch on top of the batches in flight (their writes, the last one's revision) and hands it to the
   * backend's pipelined commit. Results are handled in batch order: a batch is applied only after
   * the one before it was.
   */
  private commitChained(): void {
    const prev = this.inflight[this.inflight.length - 1] as InFlight;
    const prevBatch = prev.batch as CommitBatch;
    const requests = this.takeRequests();
    // Every batch still in flight is unapplied: its writes are the state this one starts from.
    const bases = this.inflight.map((f) => f.planner).filter((p): p is Planner => p !== undefined);
    const planner = new Planner(this.view, this.lessor, prevBatch.revision, this.clock(), bases);
    const outcomes = requests.map((r) => planner.plan(r));
    const batch = planner.batch();
    const sent = (this.backend.commitPipelined as NonNullable<Backend['commitPipelined']>)(prevBatch.revision, batch);
    if (sent === undefined) {
      // Not chainable now (lease changes, say): planned again once the batches in flight settled.
      this.retry = requests.concat(this.retry);
      this.chainBroken = true;
      return;
    }
    const f = newInFlight(requests, prev);
    f.planner = planner;
    f.batch = batch;
    f.outcomes = outcomes;
    this.inflight.push(f);
    this.scheduleFlush();
    const started = performance.now();
    void (async () => {
      let committed: CommitBatch | undefined;
      let error: unknown;
      try {
        committed = await sent;
      } catch (err) {
        error = err;
      }
      await prev.done;
      try {
        if (committed !== undefined) {
          // This batch was chained on the ones before it: they committed too, even one whose answer was lost.
          const lost: InFlight[] = [];
          for (let p = f.prev; p !== undefined && !p.committed; p = p.prev) lost.unshift(p);
          for (const p of lost) {
            p.committed = true;
            if (p.batch !== undefined) this.applyCommitted(p.batch, p.planner?.published ?? []);
          }
          this.writeFailure = undefined;
          f.committed = true;
          this.applyCommitted(batch, planner.published);
          requests.forEach((r, i) => settle(r, outcomes[i] as Outcome));
        } else if (error === undefined) {
          // Refused, nothing written (the head it was planned on did not come to be): plan it again.
          this.chainBroken = true;
          if (this.closed) for (const r of requests) r.reject(new UnavailableError('the node is shutting down'));
          else this.retry.push(...requests);
        } else {
          this.chainBroken = true;
          this.failBatch(f, error);
        }
      } catch (err) {
        this.chainBroken = true;
        this.failBatch(f, err);
      } finally {
        this.settleInFlight(f, started);
      }
    })();
  }

  private failBatch(f: InFlight, err: unknown): void {
    const e = err instanceof BeaconError ? err : new UnavailableError(`commit failed: ${(err as Error).message}`, { cause: err });
    // A new object each time, so a write probe in flight can tell that a commit failed meanwhile.
    this.writeFailure = { reason: e.message, since: this.writeFailure?.since ?? Date.now(), unavailable: e instanceof UnavailableError };
    for (const r of f.requests) r.reject(e);
  }

  private settleInFlight(f: InFlight, started: number): void {
    const i = this.inflight.indexOf(f);
    if (i >= 0) this.inflight.splice(i, 1);
    // A committed batch's predecessors are applied; a failed one's may still be needed by the next batch.
    if (f.committed) f.prev = undefined;
    if (this.inflight.length === 0) this.chainBroken = false;
    f.resolveDone();
    this.onBatch?.(f.requests.length, performance.now() - started);
    this.scheduleFlush();
  }

  private applyCommitted(batch: CommitBatch, published: RevisionEvents[]): void {
    for (const l of batch.leaseGrants) this.lessor.grant(l.id, l.grantedTtl, l.expiresAt, l.owner);
    // Never publish a revision twice, even if a follower applied it meanwhile.
    for (const group of published) if (group.revision > this._revision) this.applyGroup(group);
    for (const id of batch.leaseRevokes) {
      this.lessor.revoke(id);
      this.expiring.delete(id);
    }
    this._revision = Math.max(this._revision, batch.revision);
    this.wakeWaiters();
    this.maybeSnapshotView();
  }

  private applyGroup(group: RevisionEvents): void {
    for (const ev of group.events) {
      const old = this.view.get(ev.kv.key);
      if (old !== undefined) this.lessor.detach(old.lease, old.key);
      if (ev.type === 'put') {
        this.view.set(ev.kv);
        this.lessor.attach(ev.kv.lease, ev.kv.key);
      } else {
        this.view.delete(ev.kv.key);
      }
    }
    this._revision = group.revision;
    this.snap.entries += group.events.length;
    for (const l of this.listeners) {
      try {
        l(group);
      } catch {
        // a listener's failure must not stop the others or the commit path
      }
    }
  }

  /**
   * Applies log entries committed elsewhere (postgres followers), in revision order; entries at or
   * below the view's revision are skipped, so applying twice is harmless.
   */
  applyLog(entries: LogEntry[]): void {
    let group: RevisionEvents | undefined;
    const flush = (): void => {
      if (group !== undefined) this.applyGroup(group);
      group = undefined;
    };
    for (const e of entries) {
      if (e.revision <= this._revision) continue;
      if (group !== undefined && group.revision !== e.revision) flush();
      group ??= { revision: e.revision, ts: e.ts, meta: e.meta, events: [] };
      const prev = this.view.get(e.key);
      const ev: WatchEvent = e.deleted ? { type: 'delete', kv: tombstone(e.key, e.revision) } : { type: 'put', kv: entryToKv(e) };
      if (prev !== undefined) ev.prevKv = prev;
      group.events.push(ev);
    }
    flush();
    this.wakeWaiters();
  }

  /** Applies lease grants and revokes made on another node (postgres followers). */
  applyLeaseChanges(grants: Lease[], revokes: number[]): void {
    for (const l of grants) this.lessor.grant(l.id, l.grantedTtl, l.expiresAt, l.owner);
    for (const id of revokes) this.lessor.revoke(id);
  }

  /** Sets a lease's expiry as learned from another node's keep-alive (postgres followers). */
  noteKeepAlive(id: number, expiresAt: number): void {
    const l = this.lessor.get(id);
    if (l !== undefined && expiresAt > l.expiresAt) this.lessor.grant(id, l.grantedTtl, expiresAt, l.owner);
  }

  private wakeWaiters(): void {
    if (this.revisionWaiters.length === 0) return;
    const still: typeof this.revisionWaiters = [];
    for (const w of this.revisionWaiters) {
      if (w.revision <= this._revision) w.resolve();
      else still.push(w);
    }
    this.revisionWaiters = still;
  }

  // ---------------------------------------------------------------------------------------------
  // Lease expiry

  private scheduleExpiry(): void {
    if (this.expiryTimer) clearTimeout(this.expiryTimer);
    this.expiryTimer = undefined;
    if (this.closed || !this.driveExpiry) return;
    const next = this.lessor.nextExpiry();
    const wait = next === undefined ? EXPIRY_TICK_MS : Math.min(EXPIRY_TICK_MS, Math.max(0, next - this.clock()));
    this.expiryTimer = setTimeout(() => this.expireLeases(), wait);
    this.expiryTimer.unref();
  }

  private expireLeases(): void {
    this.expiryTimer = undefined;
    if (this.closed) return;
    let n = 0;
    for (const id of this.lessor.expired()) {
      if (this.expiring.has(id)) continue;
      if (n++ >= EXPIRY_BATCH) break;
      this.expiring.add(id);
      this.enqueue({
        kind: 'revoke',
        id,
        expiry: true,
        resolve: () => this.expiring.delete(id),
        reject: () => this.expiring.delete(id), // retried on the next tick
      });
    }
    this.scheduleExpiry();
  }
}

type Outcome = { ok: true; value: unknown } | { ok: false; error: unknown };

/** A batch handed to the backend: its requests and, once planned, its planner, batch and outcomes. */
interface InFlight {
  requests: WriteRequest[];
  planner: Planner | undefined;
  batch: CommitBatch | undefined;
  outcomes: Outcome[];
  /** The batch it was chained on (pipelined commits), until this one committed. */
  prev: InFlight | undefined;
  committed: boolean;
  /** Resolves once the batch's result was handled (applied, answered or given back to the queue). */
  done: Promise<void>;
  resolveDone: () => void;
}

function newInFlight(requests: WriteRequest[], prev: InFlight | undefined): InFlight {
  let resolveDone: () => void = () => undefined;
  const done = new Promise<void>((r) => (resolveDone = r));
  return { requests, planner: undefined, batch: undefined, outcomes: [], prev, committed: false, done, resolveDone };
}

function settle(r: WriteRequest, o: Outcome): void {
  if (o.ok) (r.resolve as (v: unknown) => void)(o.value);
  else r.reject(o.error);
}

/**
 * Plans one group-commit batch: evaluates each request against the view plus the batch's own
 * earlier writes (an overlay), assigns revisions in order, and collects log entries and events.
 * It never touches the view; the store applies the result only once the backend commit is durable.
 */
class Planner {
  private readonly overlay = new Map<string, KeyValue | null>();
  /** This batch's own writes (the overlay also holds those of the batches it is chained on). */
  private readonly own = new Map<string, KeyValue | null>();
  private readonly entries: LogEntry[] = [];
  private readonly grants: Lease[] = [];
  private readonly revokes: number[] = [];
  private readonly grantedIds = new Set<number>();
  private readonly revokedIds = new Set<number>();
  private readonly audit: AuditRecord[] = [];
  readonly published: RevisionEvents[] = [];
  private revision: number;

  /** `bases`: the planners of the batches still in flight that this one is chained on, oldest first (their writes are its starting state). */
  constructor(
    private readonly view: View,
    private readonly lessor: Lessor,
    head: number,
    private readonly now: number,
    bases: Planner[] = [],
  ) {
    this.revision = head;
    for (const b of bases) for (const [k, kv] of b.own) this.overlay.set(k, kv);
  }

  private write(key: string, kv: KeyValue | null): void {
    this.overlay.set(key, kv);
    this.own.set(key, kv);
  }

  batch(): CommitBatch {
    return { revision: this.revision, entries: this.entries, leaseGrants: this.grants, leaseRevokes: this.revokes, audit: this.audit };
  }

  private get(key: string): KeyValue | undefined {
    if (this.overlay.has(key)) return this.overlay.get(key) ?? undefined;
    return this.view.get(key);
  }

  private leaseExists(id: number): boolean {
    if (this.revokedIds.has(id)) return false;
    if (this.grantedIds.has(id)) return true;
    const l = this.lessor.get(id);
    return l !== undefined && l.expiresAt > this.now;
  }

  /** The kvs in a range as of this point of the batch, in key order. */
  private range(key: string, rangeEnd: string | null | undefined): KeyValue[] {
    if (rangeEnd === undefined) {
      const kv = this.get(key);
      return kv === undefined ? [] : [kv];
    }
    const out: KeyValue[] = [];
    this.view.scan(key, rangeEnd, (kv) => {
      if (!this.overlay.has(kv.key)) out.push(kv);
    });
    let touched = false;
    for (const [k, kv] of this.overlay) {
      if (kv !== null && inRange(k, key, rangeEnd)) {
        out.push(kv);
        touched = true;
      }
    }
    if (touched) out.sort((a, b) => compareKeys(a.key, b.key));
    return out;
  }

  plan(r: WriteRequest): Outcome {
    try {
      switch (r.kind) {
        case 'txn':
          return { ok: true, value: this.planTxn(r.txn, r.meta, r.audit) };
        case 'grant': {
          const lease = this.planGrant(r.id, r.ttl, r.owner);
          if (r.audit) this.record(r.audit, null, null, null, null, JSON.stringify({ lease: lease.id, ttl: lease.grantedTtl }));
          return { ok: true, value: lease };
        }
        case 'revoke': {
          const audit = r.audit ?? (r.expiry ? { principal: 'system', action: 'lease.expire' } : undefined);
          return { ok: true, value: this.planRevoke(r.id, r.expiry, audit) };
        }
      }
    } catch (error) {
      return { ok: false, error };
    }
  }

  private compare(c: Compare): boolean {
    const kvs = this.range(c.key, c.rangeEnd);
    // A compare on a missing key or an empty range sees one zero kv (etcd's applyCompare);
    // on a non-empty range, every key must match.
    const targets: (KeyValue | undefined)[] = kvs.length === 0 ? [undefined] : kvs;
    return targets.every((kv) => {
      let cmp: number;
      if (c.target === 'value') {
        if (kv === undefined) return false;
        cmp = bytesEqual(kv.value, c.operand as Uint8Array);
      } else {
        const field = kv === undefined ? 0 : kv[c.target];
        cmp = field - (c.operand as number);
      }
      switch (c.result) {
        case '=':
          return cmp === 0;
        case '!=':
          return cmp !== 0;
        case '<':
          return cmp < 0;
        case '>':
          return cmp > 0;
      }
    });
  }

  /** Adds one audit record to the batch. */
  private record(ctx: AuditContext, key: string | null, oldVersion: number | null, newVersion: number | null, revision: number | null, details: string | null = null): void {
    this.audit.push({
      ts: this.now,
      principal: ctx.principal,
      action: ctx.action,
      key,
      oldVersion,
      newVersion,
      revision,
      requestId: ctx.requestId ?? null,
      source: ctx.source ?? null,
      outcome: 'ok',
      details,
    });
  }

  private recordGroup(ctx: AuditContext | undefined, group: RevisionEvents, details: string | null = null): void {
    if (ctx === undefined) return;
    for (const ev of group.events) {
      this.record(ctx, ev.kv.key, ev.prevKv?.version ?? null, ev.type === 'put' ? ev.kv.version : null, group.revision, details);
    }
  }

  private planTxn(txn: TxnRequest, meta: string | null, audit?: AuditContext): TxnResponse {
    const succeeded = txn.compare.every((c) => this.compare(c));
    const ops = succeeded ? txn.success : txn.failure;
    // Check leases first, so a txn is all or nothing.
    for (const op of ops) {
      if (op.type === 'put' && !op.ignoreLease && (op.lease ?? 0) !== 0 && !this.leaseExists(op.lease ?? 0)) {
        throw new NotFoundError(`lease ${op.lease} not found`, { lease: op.lease });
      }
      if (op.type === 'put' && (op.ignoreLease || op.ignoreValue) && this.get(op.key) === undefined) {
        throw new InvalidArgumentError(`key '${op.key}' does not exist, so its value or lease cannot be kept`, { key: op.key });
      }
    }
    const rev = this.revision + 1;
    const ts = this.now;
    const group: RevisionEvents = { revision: rev, ts, meta, events: [] };
    const results: OpResult[] = [];
    for (const op of ops) {
      if (op.type === 'range') {
        // Reads see the writes made earlier in this txn (they are already in the overlay).
        const all = this.range(op.key, op.rangeEnd);
        const limit = op.limit ?? 0;
        const kvs = op.countOnly ? [] : (limit > 0 ? all.slice(0, limit) : all).map((kv) => (op.keysOnly ? { ...kv, value: new Uint8Array(0) } : kv));
        results.push({ type: 'range', kvs, more: !op.countOnly && kvs.length < all.length, count: all.length });
        continue;
      }
      if (op.type === 'put') {
        const prev = this.get(op.key);
        const kv: KeyValue = {
          key: op.key,
          value: op.ignoreValue ? (prev as KeyValue).value : op.value,
          createRevision: prev ? prev.createRevision : rev,
          modRevision: rev,
          version: prev ? prev.version + 1 : 1,
          lease: op.ignoreLease ? (prev as KeyValue).lease : (op.lease ?? 0),
        };
        // A kept value keeps how it is held; a new one is held as the store sealed it.
        if (op.ignoreValue ? prev?.encrypted === true : (op as Partial<SealedPut>).sealed === true) kv.encrypted = true;
        this.write(op.key, kv);
        const ev: WatchEvent = { type: 'put', kv };
        if (prev) ev.prevKv = prev;
        group.events.push(ev);
        results.push(op.prevKv && prev ? { type: 'put', prevKv: prev } : { type: 'put' });
        continue;
      }
      const victims = this.range(op.key, op.rangeEnd);
      for (const prev of victims) {
        this.write(prev.key, null);
        group.events.push({ type: 'delete', kv: tombstone(prev.key, rev), prevKv: prev });
      }
      results.push(op.prevKv ? { type: 'delete', deleted: victims.length, prevKvs: victims } : { type: 'delete', deleted: victims.length });
    }
    if (group.events.length === 0) return { succeeded, revision: this.revision, results };
    this.commitGroup(group);
    this.recordGroup(audit, group);
    return { succeeded, revision: rev, results };
  }

  private commitGroup(group: RevisionEvents): void {
    this.revision = group.revision;
    group.events.sort((a, b) => compareKeys(a.kv.key, b.kv.key));
    for (const ev of group.events) {
      const kv = ev.kv;
      this.entries.push({
        revision: group.revision,
        key: kv.key,
        value: ev.type === 'put' ? kv.value : new Uint8Array(0),
        createRevision: ev.type === 'put' ? kv.createRevision : (ev.prevKv?.createRevision ?? 0),
        version: ev.type === 'put' ? kv.version : 0,
        lease: ev.type === 'put' ? kv.lease : 0,
        deleted: ev.type === 'delete',
        ts: group.ts,
        meta: group.meta,
        ...(ev.type === 'put' && kv.encrypted === true ? { encrypted: true as const } : {}),
      });
    }
    this.published.push(group);
  }

  private planGrant(id: number, ttl: number, owner: string | undefined): Lease {
    let leaseId = id;
    if (leaseId === 0) {
      do leaseId = randomInt(1, 2 ** 47);
      while (this.lessor.get(leaseId) !== undefined || this.grantedIds.has(leaseId));
    } else if (this.lessor.get(leaseId) !== undefined || this.grantedIds.has(leaseId)) {
      throw new InvalidArgumentError(`lease ${leaseId} already exists`, { id: leaseId });
    }
    const lease: Lease = { id: leaseId, grantedTtl: ttl, expiresAt: this.now + ttl * 1000 };
    if (owner !== undefined) lease.owner = owner;
    this.grants.push(lease);
    this.grantedIds.add(leaseId);
    return lease;
  }

  private planRevoke(id: number, expiry: boolean, audit?: AuditContext): number {
    const state = this.lessor.get(id);
    if ((state === undefined && !this.grantedIds.has(id)) || this.revokedIds.has(id)) {
      throw new NotFoundError(`lease ${id} not found`, { lease: id });
    }
    // An expiry that raced with a keep-alive is dropped: the lease is alive again.
    if (expiry && state !== undefined && state.expiresAt > this.now) return this.revision;
    const candidates = new Set<string>(state?.keys ?? []);
    for (const [k, kv] of this.overlay) if (kv !== null && kv.lease === id) candidates.add(k);
    const keys = [...candidates].filter((k) => this.get(k)?.lease === id).sort(compareKeys);
    this.revokedIds.add(id);
    this.revokes.push(id);
    const details = JSON.stringify({ lease: id });
    if (keys.length === 0) {
      if (audit) this.record(audit, null, null, null, null, details);
      return this.revision;
    }
    const rev = this.revision + 1;
    const group: RevisionEvents = { revision: rev, ts: this.now, meta: JSON.stringify({ lease: id, reason: expiry ? 'expired' : 'revoked' }), events: [] };
    for (const k of keys) {
      const prev = this.get(k) as KeyValue;
      this.write(k, null);
      group.events.push({ type: 'delete', kv: tombstone(k, rev), prevKv: prev });
    }
    this.commitGroup(group);
    this.recordGroup(audit, group, details);
    return rev;
  }
}
