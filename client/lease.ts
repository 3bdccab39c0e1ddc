/** Leases (`/v1/leases`): grant, revoke, keep-alive (once or in a loop), time-to-live, list. */
import { ErrorCode, InvalidArgumentError, type BeaconError } from '../src/errors.js';
import { sleep } from './resilience.js';
import type { HttpTransport } from './transport.js';
import type { CallOptions, WriteOptions } from './types.js';
import type { LeaseGrant, LeaseInfo, LeaseSummary } from './types.js';

function leasePath(id: number): string {
  if (!Number.isSafeInteger(id) || id <= 0) throw new InvalidArgumentError(`lease id '${id}' is not a positive integer`);
  return `/v1/leases/${id}`;
}

/**
 * Lease operations; reach them as `client.lease`. Every method throws the server's typed errors.
 * A lease belongs to the principal that granted it: another principal's lease (unless the caller
 * is an administrator) is not listed and answers NotFoundError, as an unknown id does.
 */
export class LeaseClient {
  constructor(private readonly http: HttpTransport) {}

  /**
   * Grants a lease of `ttl` seconds; `id` asks for a specific id (0 or absent: the server picks).
   * Not retried after a failure that may have reached the node unless `retry` (a retry could
   * grant a second lease, which then expires unused after its TTL).
   * @throws InvalidArgumentError for a bad TTL or an id already in use.
   */
  async grant(ttl: number, opts: WriteOptions & { id?: number } = {}): Promise<LeaseGrant> {
    const body: Record<string, number> = { ttl };
    if (opts.id !== undefined && opts.id !== 0) body.id = opts.id;
    return (await this.http.request<LeaseGrant>('POST', '/v1/leases', { body, signal: opts.signal, timeoutMs: opts.timeoutMs, idempotent: opts.retry })).body;
  }

  /** Revokes a lease, deleting its keys in one revision; resolves with that revision. @throws NotFoundError for an unknown lease. */
  async revoke(id: number, opts: WriteOptions = {}): Promise<{ revision: number }> {
    return (await this.http.request<{ revision: number }>('DELETE', leasePath(id), { signal: opts.signal, timeoutMs: opts.timeoutMs, idempotent: opts.retry })).body;
  }

  /**
   * Renews a lease once to its full TTL; resolves with that TTL in seconds. Idempotent, so it is
   * retried and failed over like a read.
   * @throws NotFoundError when it is unknown or expired.
   */
  async keepAlive(id: number, opts: CallOptions = {}): Promise<LeaseGrant> {
    return (await this.http.request<LeaseGrant>('POST', `${leasePath(id)}/keepalive`, { signal: opts.signal, timeoutMs: opts.timeoutMs, idempotent: true })).body;
  }

  /**
   * Renews a lease now and then every third of its TTL (or every `intervalMs`), yielding each
   * renewal, until the signal aborts (the iteration then ends quietly) or the lease is gone.
   * A renewal that fails because no node is reachable is retried every second for as long
   * as the lease may still be alive.
   * @throws NotFoundError once the lease has expired or been revoked; the last transport error
   *   when the nodes stayed unreachable for longer than the lease's TTL.
   */
  async *keepAliveLoop(id: number, opts: { signal?: AbortSignal; intervalMs?: number } = {}): AsyncGenerator<LeaseGrant> {
    let lastOk = Date.now();
    let ttl = 0;
    while (!opts.signal?.aborted) {
      let wait: number;
      try {
        const res = await this.keepAlive(id, { signal: opts.signal });
        lastOk = Date.now();
        ttl = res.ttl;
        yield res;
        wait = opts.intervalMs ?? Math.max(500, (res.ttl * 1000) / 3);
      } catch (err) {
        if (opts.signal?.aborted) return;
        const e = err as BeaconError;
        if (e.code !== ErrorCode.Unavailable || (ttl > 0 && Date.now() - lastOk > ttl * 1000) || ttl === 0) throw err;
        wait = 1000;
      }
      try {
        await sleep(wait, opts.signal);
      } catch {
        return;
      }
    }
  }

  /** Describes a lease: remaining and granted TTL in seconds, and its keys. @throws NotFoundError for an unknown lease. */
  async timeToLive(id: number, opts: CallOptions = {}): Promise<LeaseInfo> {
    return (await this.http.request<LeaseInfo>('GET', leasePath(id), { signal: opts.signal, timeoutMs: opts.timeoutMs })).body;
  }

  /** Lists the caller's live leases (every lease, with its `owner`, for an administrator). */
  async list(opts: CallOptions = {}): Promise<LeaseSummary[]> {
    return (await this.http.request<{ leases: LeaseSummary[] }>('GET', '/v1/leases', { signal: opts.signal, timeoutMs: opts.timeoutMs })).body.leases;
  }
}
