/**
 * Locks, elections and sequential keys on the kv core, with the semantics of etcd's
 * `client/v3/concurrency` (Mutex, Election) and ZooKeeper's sequential nodes.
 */
import { ConflictError, InvalidArgumentError, NotFoundError, UnavailableError } from '../errors.js';
import { validateKey, type AuditContext, type KeyValue, type OpResult, type Store } from '../kv/index.js';
import { DeleteWaiters } from './delete-waiters.js';
import {
  SEQUENCE_COUNTER_PREFIX,
  contenderKey,
  contenders,
  firstContender,
  predecessor,
  sequentialKey,
  validateLease,
  validateName,
  validateSequencePrefix,
} from './names.js';

/** The longest wait a caller may ask for, in ms (the largest delay a Node.js timer takes, ~24.8 days). */
export const MAX_WAIT_MS = 2 ** 31 - 1;

/**
 * The least time, in ms, a lease must have left for a lock or leadership to be granted on it
 * (issue 9 finding 8), by default (`--lock-lease-floor`). A lease granted shorter than twice the
 * floor needs half its TTL instead, so a freshly renewed short lease always qualifies.
 */
export const DEFAULT_LOCK_LEASE_FLOOR_MS = 1000;

/** Attempts of one sequential create before giving up under contention from other nodes. */
const MAX_SEQUENCE_ATTEMPTS = 1000;

/** Most leader changes an observer may have queued; past it the oldest are dropped (the latest always arrives). */
const MAX_OBSERVE_QUEUE = 1024;

/** How long to wait and how to give up: a timeout in ms (0 = try once, never wait) and/or an AbortSignal. */
export interface WaitOptions {
  /** Give up after this many ms, withdrawing the contender key; undefined waits for ever. 0 means do not wait at all. */
  timeoutMs?: number;
  /** Aborting withdraws the contender key and rejects with the signal's reason. */
  signal?: AbortSignal;
  /** Who asked: the writes are recorded in the audit log under this principal. */
  audit?: AuditContext;
}

/** Options of {@link CoordService.lock}. */
export interface LockOptions extends WaitOptions {
  /** The lease the lock key is attached to (the "session"): if it expires, the lock is released. */
  lease: number;
  /**
   * Who holds it (seed 004's `holder`, e.g. `order-service-1`): the lock key's value, shown by
   * {@link lockState}; empty when not given. A re-entrant call keeps the key's first value.
   */
  holder?: Uint8Array;
}

/** Options of {@link CoordService.campaign}. */
export interface CampaignOptions extends WaitOptions {
  /** The lease the candidate key is attached to: if it expires, the candidate resigns. */
  lease: number;
}

/** A held lock. `fencingToken` is the lock key's createRevision: strictly larger for every later holder. */
export interface LockHandle {
  name: string;
  /** The lock key, `name/<lease id in hex>`; give it to {@link CoordService.unlock}. */
  key: string;
  lease: number;
  /** The key's createRevision; pass it to the resources the lock guards so they can reject stale holders. */
  fencingToken: number;
  /** The store revision at which the lock was seen acquired. */
  revision: number;
  /** True when the lease already had a key in this lock before the call (re-entrant acquisition). */
  reentrant: boolean;
}

/** A won election (etcd's `LeaderKey`). `fencingToken` is the candidate key's createRevision. */
export interface LeaderKey {
  name: string;
  key: string;
  lease: number;
  fencingToken: number;
  /** The store revision at which leadership was seen won. */
  revision: number;
  /** True when the lease was already a candidate before the call (the campaign kept its place). */
  reentrant: boolean;
}

/** The queue of a lock: the holder (lowest createRevision) and the waiters after it, in order. */
export interface LockState {
  name: string;
  holder: KeyValue | undefined;
  waiters: KeyValue[];
  revision: number;
}

/** A created sequential key: `prefix/<sequence zero-padded to 20 digits>`, written at `revision`. */
export interface SequentialKey {
  key: string;
  sequence: number;
  revision: number;
}

/** Options of {@link CoordService}. */
export interface CoordServiceOptions {
  /** Told about failures that cannot reach a caller (a contender key that could not be withdrawn). */
  onWarning?: (message: string, err: unknown) => void;
  /**
   * The least time in ms a lease must have left when a lock or leadership is granted on it;
   * default {@link DEFAULT_LOCK_LEASE_FLOOR_MS}, capped at half the lease's granted TTL; 0 turns
   * the check off.
   */
  leaseFloorMs?: number;
}

interface SequenceState {
  /** The counter value the next create expects to find, or undefined to read it from the view. */
  predicted: number | undefined;
  /** Bumped whenever a prediction proves wrong, so only the first failure of a pipeline resets it. */
  epoch: number;
  inflight: number;
}

/** A reference to a contender key: its key and, optionally, the createRevision it must still have. */
export interface ContenderRef {
  key: string;
  /** When given, the call only acts on the key incarnation with this createRevision (fencing). */
  fencingToken?: number;
}

function validateTimeout(timeoutMs: unknown): number | undefined {
  if (timeoutMs === undefined) return undefined;
  if (typeof timeoutMs !== 'number' || !Number.isSafeInteger(timeoutMs) || timeoutMs < 0 || timeoutMs > MAX_WAIT_MS) {
    throw new InvalidArgumentError(`timeoutMs must be an integer number of milliseconds from 0 to ${MAX_WAIT_MS}`, { timeoutMs });
  }
  return timeoutMs;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

/**
 * Parses a contender key `name/<hex lease>` into its name and lease.
 * @throws InvalidArgumentError when the last segment is not a hex lease id.
 */
export function parseContenderKey(key: string): { name: string; lease: number } {
  validateKey(key);
  const slash = key.lastIndexOf('/');
  const hex = key.slice(slash + 1);
  const lease = /^[0-9a-f]{1,13}$/.test(hex) ? parseInt(hex, 16) : NaN;
  if (slash <= 0 || !Number.isSafeInteger(lease) || lease <= 0) {
    throw new InvalidArgumentError(`'${key}' is not a lock or election key: expected '<name>/<lease id in lowercase hex>'`, { key });
  }
  return { name: key.slice(0, slash), lease };
}

/**
 * The coordination recipes over one {@link Store}. Waiting is driven by the store's commit stream
 * ({@link Store.subscribe}); nothing polls.
 *
 * @example
 * const coord = new CoordService(store);
 * const { id } = await store.grantLease(10);
 * const lock = await coord.lock('jobs/nightly', { lease: id, timeoutMs: 5000 });
 * try { await doWork(lock.fencingToken); } finally { await coord.unlock(lock); }
 */
export class CoordService {
  private readonly waiters: DeleteWaiters;
  private readonly active = new Set<AbortController>();
  private readonly sequences = new Map<string, SequenceState>();
  private closed = false;

  constructor(
    readonly store: Store,
    private readonly opts: CoordServiceOptions = {},
  ) {
    this.waiters = new DeleteWaiters(store);
  }

  /** How many lock and election waits are in progress (each watches one predecessor). */
  get waiting(): number {
    return this.waiters.size;
  }

  // ---------------------------------------------------------------------------------------------
  // Locks

  /**
   * Acquires the lock `name` for `lease` (etcd `Mutex.Lock`): puts `name/<lease hex>` unless the
   * lease already has it (re-entrant), then waits for the deletion of the contender just before it
   * in createRevision order until it is the first. FIFO, one holder at a time.
   * @throws ConflictError (`details.reason` "timeout") when `timeoutMs` passes first; the signal's
   * reason on abort; NotFoundError when the lease is unknown or expires while waiting;
   * ConflictError (`details.reason` "lease_expiring") when the lock's turn comes but the lease has
   * less than the floor left ({@link CoordServiceOptions.leaseFloorMs}: keep it alive while waiting);
   * UnavailableError when the node shuts down. On any failure the contender key this call created
   * is withdrawn.
   */
  async lock(name: string, opts: LockOptions): Promise<LockHandle> {
    validateName(name, 'lock name');
    const { kv, revision, created } = await this.contend('lock', name, opts.holder ?? new Uint8Array(0), opts);
    return { name, key: kv.key, lease: kv.lease, fencingToken: kv.createRevision, revision, reentrant: !created };
  }

  /**
   * Releases a lock by deleting its key (etcd `Mutex.Unlock`); the next waiter acquires it.
   * With `fencingToken`, only that incarnation of the key is deleted.
   * @throws NotFoundError when the key is gone (already released, or its lease expired);
   * InvalidArgumentError when `key` is not a contender key.
   */
  async unlock(lock: ContenderRef, audit?: AuditContext): Promise<{ revision: number }> {
    return this.removeContender(lock, 'lock', audit);
  }

  /** The holder and the waiters of lock `name`, in acquisition order. @throws InvalidArgumentError for a bad name. */
  lockState(name: string): LockState {
    validateName(name, 'lock name');
    const all = contenders(this.store, name);
    return { name, holder: all[0], waiters: all.slice(1), revision: this.store.revision };
  }

  // ---------------------------------------------------------------------------------------------
  // Elections

  /**
   * Campaigns in election `name` with `value` (etcd `Election.Campaign`): puts `name/<lease hex>`
   * and waits like a lock until its key has the lowest createRevision. Campaigning again with the
   * same lease keeps the place in the queue and updates the value.
   * @throws the same errors as {@link lock}; the candidate key this call created is withdrawn on failure.
   */
  async campaign(name: string, value: Uint8Array, opts: CampaignOptions): Promise<LeaderKey> {
    validateName(name, 'election name');
    const { kv, revision, created } = await this.contend('election', name, value, opts);
    return { name, key: kv.key, lease: kv.lease, fencingToken: kv.createRevision, revision, reentrant: !created };
  }

  /**
   * Sets a new value for the leader (etcd `Election.Proclaim`), only while `leader.key` is still
   * the leader of `name` (and, with `fencingToken`, still the same incarnation).
   * @throws ConflictError (`details.reason` "not_leader") when it is not the leader.
   */
  async proclaim(name: string, leader: ContenderRef, value: Uint8Array, audit?: AuditContext): Promise<{ revision: number }> {
    validateName(name, 'election name');
    this.checkMember(name, leader.key);
    const notLeader = (): ConflictError => {
      const current = firstContender(this.store, name);
      return new ConflictError(`'${leader.key}' is not the leader of election '${name}'`, {
        reason: 'not_leader',
        name,
        key: leader.key,
        leader: current?.key ?? null,
      });
    };
    const kv = this.store.get(leader.key);
    if (kv === undefined || (leader.fencingToken !== undefined && kv.createRevision !== leader.fencingToken)) throw notLeader();
    // Leadership can only end by the leader's key being deleted (a later key never gets a lower
    // createRevision), so checking "first" now and comparing the createRevision in the txn is atomic enough.
    if (firstContender(this.store, name)?.key !== leader.key) throw notLeader();
    const res = await this.store.txn({
      compare: [{ key: leader.key, target: 'createRevision', result: '=', operand: kv.createRevision }],
      success: [{ type: 'put', key: leader.key, value, lease: kv.lease }],
      failure: [],
    }, { audit });
    if (!res.succeeded) throw notLeader();
    return { revision: res.revision };
  }

  /**
   * Gives up leadership or candidacy by deleting the key (etcd `Election.Resign`); the next
   * candidate becomes leader.
   * @throws NotFoundError when the key is gone.
   */
  async resign(name: string, leader: ContenderRef, audit?: AuditContext): Promise<{ revision: number }> {
    validateName(name, 'election name');
    this.checkMember(name, leader.key);
    return this.removeContender(leader, 'election', audit);
  }

  /** The leader of election `name` (the candidate with the lowest createRevision), or undefined. */
  leader(name: string): KeyValue | undefined {
    validateName(name, 'election name');
    return firstContender(this.store, name);
  }

  /** Every candidate of election `name`, leader first. */
  candidates(name: string): KeyValue[] {
    validateName(name, 'election name');
    return contenders(this.store, name);
  }

  /**
   * Leader changes of election `name` as an async iterator (etcd `Election.Observe`): first the
   * current leader if there is one, then every new leader and every value the leader proclaims.
   * A vacancy yields nothing; the next leader does. Ends when `signal` aborts, the consumer
   * breaks, or the service closes. A consumer more than 1024 changes behind loses the oldest.
   */
  async *observe(name: string, opts: { signal?: AbortSignal } = {}): AsyncGenerator<KeyValue, void, undefined> {
    validateName(name, 'election name');
    if (this.closed || opts.signal?.aborted) return;
    const ctl = new AbortController();
    this.active.add(ctl);
    const onOuterAbort = (): void => ctl.abort();
    opts.signal?.addEventListener('abort', onOuterAbort, { once: true });
    const queue: KeyValue[] = [];
    let notify: (() => void) | undefined;
    let last: KeyValue | undefined;
    const check = (): void => {
      const cur = firstContender(this.store, name);
      if (cur === undefined) {
        last = undefined;
        return;
      }
      if (last !== undefined && last.key === cur.key && last.modRevision === cur.modRevision) return;
      last = cur;
      queue.push(cur);
      if (queue.length > MAX_OBSERVE_QUEUE) queue.shift();
      notify?.();
    };
    const prefix = `${name}/`;
    const unsubscribe = this.store.subscribe((group) => {
      if (group.events.some((ev) => ev.kv.key.startsWith(prefix))) check();
    });
    const onAbort = (): void => notify?.();
    ctl.signal.addEventListener('abort', onAbort, { once: true });
    try {
      check();
      for (;;) {
        while (queue.length > 0 && !ctl.signal.aborted) yield queue.shift() as KeyValue;
        if (ctl.signal.aborted) return;
        await new Promise<void>((resolve) => (notify = resolve));
        notify = undefined;
      }
    } finally {
      unsubscribe();
      ctl.signal.removeEventListener('abort', onAbort);
      opts.signal?.removeEventListener('abort', onOuterAbort);
      this.active.delete(ctl);
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Sequential keys

  /**
   * Creates `prefix/<n>` with `n` zero-padded to 20 digits (ZooKeeper's sequential nodes), `n`
   * unique and increasing per prefix and never reused, even after deletes or with concurrent
   * creators on several nodes. The counter lives in the system key `\u0000seq/<prefix>` and is bumped
   * in the same txn as the create, guarded by a compare on its value. With `lease`, the key is
   * ephemeral: it goes when the lease does. The first number is 1.
   * @throws NotFoundError for an unknown lease; ConflictError when the counter key holds
   * something that is not a number; UnavailableError after 1000 lost races.
   */
  async createSequential(prefix: string, value: Uint8Array, opts: { lease?: number; audit?: AuditContext } = {}): Promise<SequentialKey> {
    validateSequencePrefix(prefix);
    const lease = opts.lease ?? 0;
    if (lease !== 0) validateLease(lease);
    const counterKey = `${SEQUENCE_COUNTER_PREFIX}${prefix}`;
    for (let attempt = 0; attempt < MAX_SEQUENCE_ATTEMPTS; attempt++) {
      let st = this.sequences.get(prefix);
      if (st === undefined) this.sequences.set(prefix, (st = { predicted: undefined, epoch: 0, inflight: 0 }));
      // Creators on this node pipeline: each expects the counter the previous one will leave, so a
      // burst of creates lands in one group commit instead of failing each other's compares. The
      // compare on the counter's value keeps it correct when the prediction is wrong.
      const expected = st.predicted ?? this.readCounter(counterKey);
      const sequence = expected + 1;
      const key = sequentialKey(prefix, sequence);
      st.predicted = sequence;
      const epoch = st.epoch;
      st.inflight++;
      let succeeded = false;
      let revision = 0;
      try {
        const res = await this.store.txn({
          compare: [
            expected === 0
              ? { key: counterKey, target: 'createRevision', result: '=', operand: 0 }
              : { key: counterKey, target: 'value', result: '=', operand: Buffer.from(String(expected)) },
          ],
          success: [
            { type: 'put', key: counterKey, value: Buffer.from(String(sequence)) },
            { type: 'put', key, value, lease },
          ],
          failure: [],
        }, { audit: opts.audit });
        succeeded = res.succeeded;
        revision = res.revision;
      } finally {
        // The first failure of a pipeline resets the prediction; the later ones of the same epoch
        // failed only because of it and must not clobber the retry's new prediction.
        if (!succeeded && st.epoch === epoch) {
          st.epoch++;
          st.predicted = undefined;
        }
        if (--st.inflight === 0) this.sequences.delete(prefix);
      }
      if (succeeded) return { key, sequence, revision };
    }
    throw new UnavailableError(`could not create a sequential key under '${prefix}': too much contention`, { details: { prefix } });
  }

  // ---------------------------------------------------------------------------------------------
  // Life cycle

  /** Ends every wait (rejected with UnavailableError) and every observer; later waits fail at once. */
  close(): void {
    this.closed = true;
    for (const ctl of [...this.active]) ctl.abort(new UnavailableError('the node is shutting down'));
    this.active.clear();
  }

  // ---------------------------------------------------------------------------------------------
  // Internals

  private readCounter(counterKey: string): number {
    const kv = this.store.get(counterKey);
    if (kv === undefined) return 0;
    const text = Buffer.from(kv.value).toString('utf8');
    const n = /^\d{1,16}$/.test(text) ? Number(text) : NaN;
    if (!Number.isSafeInteger(n) || n <= 0) {
      throw new ConflictError(`sequence counter '${counterKey}' holds '${text.slice(0, 32)}', not a positive integer`, { key: counterKey });
    }
    return n;
  }

  private checkMember(name: string, key: string): void {
    const parsed = parseContenderKey(key);
    if (parsed.name !== name) throw new InvalidArgumentError(`key '${key}' does not belong to '${name}'`, { key, name });
  }

  private async removeContender(ref: ContenderRef, kind: 'lock' | 'election', audit?: AuditContext): Promise<{ revision: number }> {
    const { lease } = parseContenderKey(ref.key);
    const kv = this.store.get(ref.key);
    const gone = (): NotFoundError =>
      new NotFoundError(
        kind === 'lock'
          ? `lock key '${ref.key}' is not held (released already, or its lease expired)`
          : `candidate key '${ref.key}' does not exist (resigned already, or its lease expired)`,
        { key: ref.key },
      );
    if (kv === undefined) throw gone();
    // Guard against deleting an unrelated key through the lock API: a contender key carries the
    // lease its name encodes.
    if (kv.lease !== lease) throw new InvalidArgumentError(`'${ref.key}' is not a ${kind} key: it is not attached to lease ${lease}`, { key: ref.key });
    const createRevision = ref.fencingToken ?? kv.createRevision;
    const res = await this.store.txn({
      compare: [{ key: ref.key, target: 'createRevision', result: '=', operand: createRevision }],
      success: [{ type: 'delete', key: ref.key }],
      failure: [],
    }, { audit });
    if (!res.succeeded) throw gone();
    return { revision: res.revision };
  }

  /**
   * Whether the grant must be re-checked because it awaited (false: grant now).
   * @throws ConflictError (`reason` "lease_expiring") when `lease` has less than the floor left.
   */
  private async leaseBelowFloor(lease: number, what: string, name: string): Promise<boolean> {
    const floor = this.opts.leaseFloorMs ?? DEFAULT_LOCK_LEASE_FLOOR_MS;
    if (floor <= 0) return false;
    const floorFor = (): number => Math.min(floor, (this.store.timeToLive(lease).grantedTtl * 1000) / 2);
    let left = this.store.leaseRemainingMs(lease);
    if (left === undefined || left >= floorFor()) return false;
    // On a shared store another node may have renewed it: learn the latest expiry first.
    if (this.store.backend.syncLeases !== undefined) {
      await this.store.backend.syncLeases();
      left = this.store.leaseRemainingMs(lease);
      if (left === undefined || left >= floorFor()) return true;
    }
    throw new ConflictError(
      `${what} is not granted: lease ${lease} has ${Math.round(left)} ms left, under the ${Math.round(floorFor())} ms floor; keep the lease alive while waiting`,
      { reason: 'lease_expiring', name, lease, remainingMs: Math.round(left), floorMs: Math.round(floorFor()) },
    );
  }

  /** Withdraws a contender key this call created, unless it was replaced meanwhile. Never throws. */
  private async withdraw(key: string, createRevision: number, audit?: AuditContext): Promise<void> {
    try {
      await this.store.txn({
        compare: [{ key, target: 'createRevision', result: '=', operand: createRevision }],
        success: [{ type: 'delete', key }],
        failure: [],
      }, { audit });
    } catch (err) {
      // The lease will remove it anyway; a waiter behind it then moves on.
      this.opts.onWarning?.(`could not withdraw contender key '${key}'`, err);
    }
  }

  /**
   * Puts the contender key and waits until it is first (etcd's `waitDeletes`): each round finds
   * the contender with the highest createRevision below ours and waits for its deletion only.
   */
  private async contend(
    kind: 'lock' | 'election',
    name: string,
    value: Uint8Array,
    opts: WaitOptions & { lease: number },
  ): Promise<{ kv: KeyValue; revision: number; created: boolean }> {
    const lease = validateLease(opts.lease);
    const timeoutMs = validateTimeout(opts.timeoutMs);
    if (this.closed) throw new UnavailableError('the node is shutting down');
    opts.signal?.throwIfAborted();
    const key = contenderKey(name, lease);
    const what = kind === 'lock' ? `lock '${name}'` : `election '${name}'`;

    const ctl = new AbortController();
    this.active.add(ctl);
    const onOuterAbort = (): void => ctl.abort(opts.signal?.reason);
    opts.signal?.addEventListener('abort', onOuterAbort, { once: true });
    const timeout = (): ConflictError => {
      const holder = firstContender(this.store, name);
      return new ConflictError(
        kind === 'lock' ? `${what} was not acquired within ${timeoutMs} ms` : `did not become leader of ${what} within ${timeoutMs} ms`,
        { reason: 'timeout', name, timeoutMs, holder: holder?.key ?? null },
      );
    };
    const timer = timeoutMs !== undefined && timeoutMs > 0 ? setTimeout(() => ctl.abort(timeout()), timeoutMs) : undefined;

    let created = 0;
    try {
      const res = await this.store.txn({
        compare: [{ key, target: 'createRevision', result: '=', operand: 0 }],
        success: [{ type: 'put', key, value, lease }],
        failure: [{ type: 'range', key }],
      }, { audit: opts.audit });
      let myRev: number;
      if (res.succeeded) {
        myRev = res.revision;
        created = myRev;
      } else {
        const existing = (res.results[0] as Extract<OpResult, { type: 'range' }>).kvs[0];
        if (existing === undefined) throw new UnavailableError(`${what}: contender key vanished during the txn; retry`);
        myRev = existing.createRevision;
        // Re-campaigning with the same lease keeps the place and updates the value (etcd does the same).
        if (kind === 'election' && !sameBytes(existing.value, value)) {
          await this.store.txn({
            compare: [{ key, target: 'createRevision', result: '=', operand: myRev }],
            success: [{ type: 'put', key, value, lease }],
            failure: [],
          }, { audit: opts.audit });
        }
      }
      for (;;) {
        // Everything from here to the wait registration is synchronous, so no commit can slip between.
        const mine = this.store.get(key);
        if (mine === undefined || mine.createRevision !== myRev) {
          throw new NotFoundError(`contender key '${key}' was deleted while waiting for ${what}: lease ${lease} expired or was revoked, or the key was released`, {
            reason: 'lease_lost',
            lease,
            name,
            key,
          });
        }
        // An abort or timeout that fired before ownership was seen wins, so a caller that gave up
        // never ends up holding a lock it does not know about.
        ctl.signal.throwIfAborted();
        const pred = predecessor(this.store, name, myRev);
        if (pred === undefined) {
          // Granting on a lease about to expire hands out a lock that is lost at once (issue 9
          // finding 8): refuse instead, so the caller learns it must keep its lease alive.
          if (await this.leaseBelowFloor(lease, what, name)) continue; // re-checked: the lease may have gone meanwhile
          return { kv: mine, revision: this.store.revision, created: created > 0 };
        }
        if (timeoutMs === 0) throw timeout();
        await this.waiters.wait([pred.key, key], ctl.signal);
      }
    } catch (err) {
      if (created > 0) await this.withdraw(key, created, opts.audit);
      throw err;
    } finally {
      if (timer !== undefined) clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onOuterAbort);
      this.active.delete(ctl);
    }
  }
}
