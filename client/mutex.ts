/**
 * `Mutex` (etcd `concurrency.Mutex`): a distributed lock held with a session's lease ({@link LeaseHolder}).
 *
 * Acquisition: one txn puts `NAME/<lease hex>` unless the session already has it ("if
 * createRevision = 0 then put") and reads the contenders in the same revision. The contender with
 * the lowest createRevision holds the lock; if that is this key the lock is taken in one round
 * trip. Otherwise the wait is the server's `POST /v1/locks/{name}` with the same lease: it is
 * re-entrant (the key exists), so the server waits for this key's predecessor only — FIFO, one
 * wake-up per release, no thundering herd — and never withdraws the key on a timeout or a lost
 * connection. The SDK re-sends it (to another endpoint if need be) until the lock is held, the
 * timeout passes or the signal aborts, and then withdraws the key itself. The session keeps the
 * lease alive all the while; the server refuses to grant on a lease with less than its floor left
 * (`lease_expiring`), and then the SDK renews the lease and asks again.
 */
import { ConflictError, ErrorCode, InvalidArgumentError, NotFoundError, UnavailableError, type BeaconError } from '../src/errors.js';
import { linkSignals } from './abort.js';
import { backoffDelay, sleep } from './resilience.js';
import { checkName, contenderKey, contendersOf } from './coord-keys.js';
import type { Connection, LeaseHolder } from './connection.js';
import { Compare, Op } from './txn.js';
import { kvFromWire, type KeyValue, type KeyValueWire } from './types.js';
import { encodeKeyPath } from './values.js';

/** The longest single wait request, in ms; longer waits are several requests (HTTP clients cap waits for headers). */
const WAIT_CHUNK_MS = 60_000;
/** Extra time the HTTP request gets beyond the server-side wait, so the server's 409 arrives first. */
const WAIT_MARGIN_MS = 5_000;
/** How often a wait refused with `lease_expiring` renews the lease and asks again before giving up. */
const MAX_LEASE_RENEWALS = 3;

/** A held lock: its key, the session's lease, and the fencing token to hand to what the lock guards. */
export interface LockInfo {
  name: string;
  /** `name/<lease hex>`. */
  key: string;
  lease: number;
  /** The lock key's createRevision: strictly larger for every later holder. */
  fencingToken: number;
  /** The store revision at which the lock was seen held. */
  revision: number;
}

/** Options of {@link Mutex.lock}. */
export interface LockOptions {
  /** Give up after this many ms with ConflictError (`details.reason: "timeout"`); default: wait as long as it takes. */
  timeoutMs?: number;
  /** Give up when aborted, with the signal's reason. */
  signal?: AbortSignal;
}

/** Internal: the answer of `POST /v1/locks/{name}` and `POST /v1/elections/{name}/campaign`. */
export interface ContendWire {
  key: string;
  lease: number;
  fencingToken: number;
  revision: number;
}

/**
 * Runs the etcd contend protocol for a lock or an election over the HTTP API (see the module
 * comment). Returns once `key` is the first contender. On timeout, abort or error, the key is
 * withdrawn (deleted if it is still the incarnation this call saw).
 * @internal
 */
export async function contend(
  session: LeaseHolder,
  kind: 'lock' | 'election',
  name: string,
  value: { value: string; encoding?: 'base64' } | undefined,
  opts: LockOptions,
): Promise<LockInfo> {
  const client = session.client;
  const key = contenderKey(name, session.lease);
  const what = kind === 'lock' ? `lock '${name}'` : `election '${name}'`;
  if (!session.alive) throw new UnavailableError(`cannot contend for ${what}: the session (lease ${session.lease}) has ended`, { details: { lease: session.lease } });
  if (opts.timeoutMs !== undefined && (!Number.isSafeInteger(opts.timeoutMs) || opts.timeoutMs < 0)) {
    throw new InvalidArgumentError(`timeoutMs must be a non-negative integer number of milliseconds, not ${opts.timeoutMs}`);
  }
  const deadline = opts.timeoutMs === undefined ? undefined : Date.now() + opts.timeoutMs;
  let holder: string | null = null;
  const timeoutError = (): ConflictError =>
    new ConflictError(kind === 'lock' ? `${what} was not acquired within ${opts.timeoutMs} ms` : `did not become leader of ${what} within ${opts.timeoutMs} ms`, {
      reason: 'timeout',
      name,
      timeoutMs: opts.timeoutMs,
      holder,
    });
  // timeoutMs 0 means "do not wait": the one txn decides, so no timer may cut it short.
  const { signal, dispose } = linkSignals([opts.signal, session.signal], opts.timeoutMs === 0 ? undefined : opts.timeoutMs, timeoutError);
  let myRev = 0;
  try {
    // Put the key unless this session already has it, and read the queue in the same revision.
    const put = value === undefined ? Op.put(key, '', { lease: session.lease }) : { put: { key, ...value, lease: session.lease } };
    const res = await client.txn(
      {
        compare: [Compare.createRevision(key, '=', 0)],
        // Campaigning again with the same lease keeps the place and updates the value (etcd does the same).
        success: [put, Op.get(`${name}/`, { prefix: true })],
        failure: value === undefined ? [Op.get(`${name}/`, { prefix: true })] : [put, Op.get(`${name}/`, { prefix: true })],
      },
      // "Put if absent, else read" gives the same outcome when sent twice: safe to retry.
      { signal, retry: true },
    );
    const range = res.results[res.results.length - 1];
    const queue = contendersOf(name, range?.type === 'range' ? range.kvs : []);
    const mine = queue.find((kv) => kv.key === key);
    if (mine === undefined) throw new UnavailableError(`${what}: the contender key '${key}' vanished while it was created; retry`);
    myRev = mine.createRevision;
    holder = queue[0]?.key ?? null;
    if (queue[0]?.key === key) {
      // Taken without the server's grant check: make sure the lease does not lapse right away.
      if (session.remainingMs < session.ttl * 500) await session.keepAliveNow({ signal });
      return { name, key, lease: session.lease, fencingToken: myRev, revision: res.revision };
    }
    if (opts.timeoutMs === 0) throw timeoutError();

    // Wait in the server's queue. The key exists, so every request is re-entrant: safe to repeat.
    const path = kind === 'lock' ? `/v1/locks/${encodeKeyPath(name)}` : `/v1/elections/${encodeKeyPath(name)}/campaign`;
    let outage = 0;
    let renewals = 0;
    for (;;) {
      signal.throwIfAborted();
      const left = deadline === undefined ? WAIT_CHUNK_MS : Math.max(1, Math.min(WAIT_CHUNK_MS, deadline - Date.now()));
      try {
        const body: Record<string, unknown> = { lease: session.lease, timeoutMs: left, ...(value ?? {}) };
        const { body: got } = await client.transport.request<ContendWire>('POST', path, {
          body,
          signal,
          timeoutMs: left + WAIT_MARGIN_MS,
          idempotent: true,
          longPoll: true,
        });
        // The server may have recreated the key (ours was deleted meanwhile): its token is the truth.
        myRev = got.fencingToken;
        return { name, key: got.key, lease: session.lease, fencingToken: got.fencingToken, revision: got.revision };
      } catch (err) {
        const e = err as BeaconError;
        if (e.code === ErrorCode.Conflict && e.details?.reason === 'timeout') {
          holder = typeof e.details.holder === 'string' ? e.details.holder : holder;
          outage = 0;
          continue; // the server's chunk ended; our own deadline (the signal) decides
        }
        // Our turn came while the lease had less than the server's floor left (keep-alives were
        // failing, or the clock jumped): renew it and ask again; the key kept its place.
        if (e.code === ErrorCode.Conflict && e.details?.reason === 'lease_expiring' && renewals++ < MAX_LEASE_RENEWALS) {
          await session.keepAliveNow({ signal });
          continue;
        }
        // No node reachable: the key stays in the queue under the session's lease, so keep
        // waiting until a node answers, the deadline passes, or the session is lost.
        if (e.code === ErrorCode.Unavailable && !signal.aborted) {
          await sleep(backoffDelay(outage++, { baseDelayMs: 100, maxDelayMs: 2000 }), signal);
          continue;
        }
        throw err;
      }
    }
  } catch (err) {
    const reason = signal.aborted ? signal.reason : err;
    if (myRev > 0) await withdraw(session, kind, key, myRev);
    // Aborted before the txn answered: it may have created the key, so remove whatever this lease has there.
    else if (signal.aborted && session.alive) await withdraw(session, kind, key, undefined);
    throw reason;
  } finally {
    dispose();
  }
}

/** Deletes a contender key if it is still the incarnation `fencingToken`; never throws (the lease removes it anyway). */
async function withdraw(session: LeaseHolder, kind: 'lock' | 'election', key: string, fencingToken: number | undefined): Promise<boolean> {
  try {
    await release(session, kind, key, fencingToken);
    return true;
  } catch {
    return false;
  }
}

/**
 * Deletes a contender key by fencing token (only that incarnation), retried like a read: a second
 * delete of the same incarnation can only find it gone.
 * @throws NotFoundError when it is gone already.
 * @internal
 */
export async function release(session: LeaseHolder, kind: 'lock' | 'election', key: string, fencingToken: number | undefined): Promise<{ revision: number }> {
  const client = session.client;
  if (kind === 'lock') {
    return (await client.transport.request<{ revision: number }>('DELETE', `/v1/locks/${encodeKeyPath(key)}`, { query: { fencingToken }, idempotent: true })).body;
  }
  const name = key.slice(0, key.lastIndexOf('/'));
  return (
    await client.transport.request<{ revision: number }>('POST', `/v1/elections/${encodeKeyPath(name)}/resign`, { body: { key, fencingToken }, idempotent: true })
  ).body;
}

/**
 * A distributed lock `name` held with a session's lease (etcd `concurrency.Mutex`): FIFO by
 * createRevision, one holder at a time, released by `unlock()`, by `session.close()`, or by the
 * lease expiring one TTL after the process died. Calling `lock()` while holding it returns at
 * once (re-entrant per session). Use one Mutex per holder, and pass `fencingToken` to whatever
 * the lock guards.
 * @example
 * const mutex = session.mutex('inventory/sku-123');
 * const { fencingToken } = await mutex.lock({ timeoutMs: 5000 });
 * try { await updateInventory({ fencingToken }); } finally { await mutex.unlock(); }
 * @typeParam S - what holds the lease: a `Session` when built by `session.mutex(name)`.
 */
export class Mutex<S extends LeaseHolder = LeaseHolder> {
  /** The lock name (a key prefix). */
  readonly name: string;
  /** This session's contender key, `name/<lease hex>`. */
  readonly key: string;
  private held: LockInfo | undefined;

  constructor(
    /** The session whose lease holds the lock. */
    readonly session: S,
    name: string,
  ) {
    this.name = checkName(name, 'lock name');
    this.key = contenderKey(name, session.lease);
  }

  /** The held lock's fencing token, or undefined when not held. */
  get fencingToken(): number | undefined {
    return this.isHeld ? this.held?.fencingToken : undefined;
  }

  /** Whether this mutex holds the lock (and its session is alive). */
  get isHeld(): boolean {
    return this.held !== undefined && this.session.alive;
  }

  /**
   * Waits until the lock is held and returns its fencing token.
   * @throws ConflictError (`details.reason: "timeout"`, `details.holder`) when `timeoutMs` passes
   *   first; the signal's reason on abort; the session's `lost` error when its lease is lost;
   *   NotFoundError (`reason: "lease_lost"`) when the key is deleted while waiting. On every
   *   failure the waiting key is withdrawn.
   */
  async lock(opts: LockOptions = {}): Promise<LockInfo> {
    if (this.isHeld && this.held !== undefined) return this.held;
    this.held = await contend(this.session, 'lock', this.name, undefined, opts);
    return this.held;
  }

  /**
   * Takes the lock only if it is free now (no waiting).
   * @returns the lock, or undefined when another session holds it.
   */
  async tryLock(opts: { signal?: AbortSignal } = {}): Promise<LockInfo | undefined> {
    try {
      return await this.lock({ timeoutMs: 0, signal: opts.signal });
    } catch (err) {
      if (err instanceof ConflictError && err.details?.reason === 'timeout') return undefined;
      throw err;
    }
  }

  /**
   * Releases the lock: deletes the key (only the incarnation this mutex acquired) so the next
   * waiter acquires it.
   * @returns true when this call released it, false when it was not held any more (its lease
   *   expired, or the session was closed).
   * @throws UnavailableError when no node can be reached (the lease still releases it one TTL
   *   after the session stops).
   */
  async unlock(): Promise<boolean> {
    const held = this.held;
    this.held = undefined;
    if (held === undefined) return false;
    try {
      await release(this.session, 'lock', held.key, held.fencingToken);
      return true;
    } catch (err) {
      if (err instanceof NotFoundError) return false;
      throw err;
    }
  }

  /** The current holder's key and fencing token and the waiters, from `GET /v1/locks/{name}`. */
  async state(opts: { signal?: AbortSignal } = {}): Promise<{ holder: (KeyValue & { fencingToken: number }) | null; waiters: KeyValue[]; revision: number }> {
    return lockState(this.session.client, this.name, opts);
  }
}

/** The holder and waiters of lock `name`. @internal */
export async function lockState(
  client: Connection,
  name: string,
  opts: { signal?: AbortSignal } = {},
): Promise<{ holder: (KeyValue & { fencingToken: number }) | null; waiters: KeyValue[]; revision: number }> {
  const { body } = await client.transport.request<{ holder: (KeyValueWire & { fencingToken: number }) | null; waiters: KeyValueWire[]; revision: number }>(
    'GET',
    `/v1/locks/${encodeKeyPath(checkName(name, 'lock name'))}`,
    { signal: opts.signal },
  );
  return {
    holder: body.holder === null ? null : { ...kvFromWire(body.holder), fencingToken: body.holder.fencingToken },
    waiters: body.waiters.map(kvFromWire),
    revision: body.revision,
  };
}
