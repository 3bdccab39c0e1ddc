/**
 * Sessions (etcd `concurrency.Session`): a lease kept alive by a keep-alive loop, the liveness
 * that locks and elections hang on. When the process dies the keep-alives stop, the lease expires
 * after its TTL, and every lock key and candidacy attached to it is deleted.
 */
import { ErrorCode, InvalidArgumentError, NotFoundError, UnavailableError, type BeaconError } from '../src/errors.js';
import type { Connection, LeaseHolder } from './connection.js';
import { Election } from './election.js';
import { Emitter } from './emitter.js';
import { Mutex } from './mutex.js';

/** The TTL of a session's lease when none is given, in seconds (etcd's default). */
export const DEFAULT_SESSION_TTL_SECONDS = 60;

/** Options of {@link BeaconClient.session}. */
export interface SessionOptions {
  /** TTL of the lease in seconds. Default 60. The lease outlives a dead process by at most this long. */
  ttl?: number;
  /** Use this existing lease instead of granting one (it is still revoked by `close()`). */
  lease?: number;
  /** Milliseconds between keep-alives. Default a third of the TTL. */
  keepAliveIntervalMs?: number;
  /** Aborts the lease grant. */
  signal?: AbortSignal;
}

/** The events of a {@link Session}. */
export interface SessionEvents extends Record<string, unknown> {
  /** The lease is gone or could not be renewed for longer than its TTL: every lock held with it is lost. */
  lost: BeaconError;
  /** A keep-alive succeeded; `ttl` is the renewed TTL in seconds. */
  keepalive: { ttl: number };
  /** A keep-alive failed but the lease may still be alive; the loop retries. */
  error: unknown;
}

/**
 * A lease kept alive in the background. `lease` is its id; `signal` aborts when the session
 * ends (lost or closed), so work done under a lock can stop when the lock can no longer be
 * trusted. A keep-alive that fails because no node answers is retried every second (over every
 * endpoint) for as long as the lease may still be alive; after that, or as soon as the server
 * says the lease is gone, the session emits `lost`. The keep-alive timer keeps a Node process
 * running until `close()`.
 * @example
 * const session = await client.session({ ttl: 10 });
 * session.on('lost', (err) => console.error('session lost', err.message));
 * const mutex = session.mutex('jobs/nightly');
 * await mutex.lock();
 * try { await work(mutex.fencingToken); } finally { await mutex.unlock(); await session.close(); }
 */
export class Session extends Emitter<SessionEvents> implements LeaseHolder {
  /** The lease id. */
  readonly lease: number;
  /** The lease's TTL in seconds. */
  readonly ttl: number;
  private readonly ctl = new AbortController();
  private timer: ReturnType<typeof setTimeout> | undefined;
  private lastOk: number;
  private closing: Promise<void> | undefined;
  private inflight: AbortController | undefined;
  private state: 'alive' | 'lost' | 'closed' = 'alive';

  private constructor(
    /** The client the session talks through. */
    readonly client: Connection,
    lease: number,
    ttl: number,
    private readonly intervalMs: number,
  ) {
    super();
    this.lease = lease;
    this.ttl = ttl;
    this.lastOk = Date.now();
    this.schedule(intervalMs);
  }

  /**
   * Grants a lease of `ttl` seconds (or adopts `lease`) and starts keeping it alive.
   * @throws InvalidArgumentError for a bad TTL; NotFoundError for an unknown `lease`; UnavailableError.
   */
  static async create(client: Connection, opts: SessionOptions = {}): Promise<Session> {
    const ttl = opts.ttl ?? DEFAULT_SESSION_TTL_SECONDS;
    if (!Number.isSafeInteger(ttl) || ttl <= 0) throw new InvalidArgumentError(`session ttl must be a positive number of seconds, not ${ttl}`);
    let lease: number;
    let granted: number;
    if (opts.lease !== undefined) {
      const r = await client.lease.keepAlive(opts.lease, { signal: opts.signal });
      lease = opts.lease;
      granted = r.ttl;
    } else {
      // A grant is not idempotent (a retry could leave an orphan lease), but an orphan only lives one TTL.
      const g = await client.lease.grant(ttl, { signal: opts.signal, retry: true });
      lease = g.id;
      granted = g.ttl;
    }
    const intervalMs = opts.keepAliveIntervalMs ?? Math.max(100, Math.floor((granted * 1000) / 3));
    return new Session(client, lease, granted, intervalMs);
  }

  /** Aborts when the session ends, with the `lost` error or a `closed` UnavailableError as the reason. */
  get signal(): AbortSignal {
    return this.ctl.signal;
  }

  /** Whether the lease is (as far as this process knows) still alive. */
  get alive(): boolean {
    return this.state === 'alive';
  }

  /** The ms the lease has left as this process knows it: the last successful keep-alive plus the TTL (0 once past). */
  get remainingMs(): number {
    return this.state === 'alive' ? Math.max(0, this.lastOk + this.ttl * 1000 - Date.now()) : 0;
  }

  /**
   * Renews the lease now, besides the loop's schedule: a lock or leadership taken with a lease
   * that has little left would be lost at once (the server refuses to grant one under its floor).
   * @throws the session's `lost` error (NotFoundError, `reason: "lease_lost"`) when the lease is
   *   gone; UnavailableError when no node answers; the signal's reason on abort.
   */
  async keepAliveNow(opts: { signal?: AbortSignal } = {}): Promise<void> {
    if (this.state !== 'alive') throw this.ctl.signal.reason;
    try {
      const r = await this.client.lease.keepAlive(this.lease, { signal: opts.signal });
      if (this.state !== 'alive') return;
      this.lastOk = Date.now();
      this.emit('keepalive', { ttl: r.ttl });
    } catch (err) {
      if (err instanceof NotFoundError && this.state === 'alive') {
        this.end('lost', new NotFoundError(`session lease ${this.lease} expired or was revoked`, { reason: 'lease_lost', lease: this.lease }));
        throw this.ctl.signal.reason;
      }
      throw err;
    }
  }

  /** A {@link Mutex} named `name` held with this session's lease. */
  mutex(name: string): Mutex<Session> {
    return new Mutex(this, name);
  }

  /** An {@link Election} named `name` in which this session campaigns. */
  election(name: string): Election {
    return new Election(this.client, name, this);
  }

  /**
   * Stops the keep-alives and revokes the lease, which releases every lock and candidacy held
   * with it at once (rather than one TTL later). Safe to call more than once; a lease already gone
   * is not an error.
   * @throws UnavailableError when the revoke cannot reach any node (the lease then expires after its TTL).
   */
  close(): Promise<void> {
    this.closing ??= this.doClose();
    return this.closing;
  }

  private async doClose(): Promise<void> {
    const wasAlive = this.state === 'alive';
    this.end('closed', new UnavailableError(`session with lease ${this.lease} closed`, { details: { reason: 'closed', lease: this.lease } }));
    if (!wasAlive) return;
    try {
      await this.client.lease.revoke(this.lease, { retry: true });
    } catch (err) {
      if ((err as BeaconError).code !== ErrorCode.NotFound) throw err;
    }
  }

  private end(state: 'lost' | 'closed', reason: BeaconError): void {
    if (this.state !== 'alive') return;
    this.state = state;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.inflight?.abort();
    this.ctl.abort(reason);
    if (state === 'lost') this.emit('lost', reason);
  }

  private schedule(ms: number): void {
    if (this.state !== 'alive') return;
    this.timer = setTimeout(() => void this.beat(), ms);
  }

  private async beat(): Promise<void> {
    this.timer = undefined;
    if (this.state !== 'alive') return;
    const ctl = new AbortController();
    this.inflight = ctl;
    // Each keep-alive may take no longer than the lease has left, or it would be pointless.
    const left = this.lastOk + this.ttl * 1000 - Date.now();
    try {
      const r = await this.client.lease.keepAlive(this.lease, { signal: ctl.signal, timeoutMs: Math.max(200, Math.min(left, this.client.transport.timeoutMs)) });
      if (this.state !== 'alive') return;
      this.lastOk = Date.now();
      this.emit('keepalive', { ttl: r.ttl });
      this.schedule(this.intervalMs);
    } catch (err) {
      if (this.state !== 'alive') return;
      if (err instanceof NotFoundError) {
        this.end('lost', new NotFoundError(`session lease ${this.lease} expired or was revoked`, { reason: 'lease_lost', lease: this.lease }));
        return;
      }
      if (Date.now() - this.lastOk >= this.ttl * 1000) {
        const e = new UnavailableError(`session lease ${this.lease} could not be renewed for ${this.ttl}s and has expired: ${(err as Error).message}`, {
          cause: err,
          details: { reason: 'lease_lost', lease: this.lease },
        });
        this.end('lost', e);
        return;
      }
      if (this.listenerCount('error') > 0) this.emit('error', err);
      this.schedule(Math.max(50, Math.min(1000, this.intervalMs, this.lastOk + this.ttl * 1000 - Date.now())));
    } finally {
      if (this.inflight === ctl) this.inflight = undefined;
    }
  }
}
