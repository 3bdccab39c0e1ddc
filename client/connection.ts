/**
 * The narrow view of a connection to Beacon that the recipes (sessions, mutexes, elections, live
 * configs) are built on, so they need nothing from `client.ts`: the client assembles them and
 * passes itself in, and the imports run one way (client → recipes → this file).
 */
import type { LeaseClient } from './lease.js';
import type { HttpTransport } from './transport.js';
import type { TxnRequest, TxnResponse } from './txn.js';
import type { KeyValue, WriteOptions } from './types.js';
import type { Watch, WatchOptions } from './watch.js';

/**
 * What the recipes use of a {@link BeaconClient}: the HTTP transport (lock and election routes),
 * txns, leases, paged reads and watches. `BeaconClient` is one.
 */
export interface Connection {
  /** The transport: requests with retries and failover, and long-lived streams. */
  readonly transport: HttpTransport;
  /** Lease operations (grant, keep-alive, revoke). */
  readonly lease: LeaseClient;
  /** Runs a txn. @throws the server's typed errors. */
  txn(request: TxnRequest, opts?: WriteOptions): Promise<TxnResponse>;
  /** Every key under `prefix`, page by page, at one revision (told through `onFirstPage`). */
  scan(prefix: string, opts?: { signal?: AbortSignal; onFirstPage?: (info: { revision: number; count: number }) => void }): AsyncGenerator<KeyValue>;
  /** A watch on `key` (or a prefix) that resumes across reconnects. */
  watch(key: string, opts?: WatchOptions): Watch;
}

/**
 * What a lock or an election is held with: a lease kept alive on a connection (a `Session`).
 * `signal` aborts when the lease is lost or the holder closes; `remainingMs` is what the lease has
 * left as this process knows it; `keepAliveNow()` renews it at once.
 */
export interface LeaseHolder {
  readonly client: Connection;
  /** The lease id. */
  readonly lease: number;
  /** The lease's TTL in seconds. */
  readonly ttl: number;
  readonly alive: boolean;
  readonly signal: AbortSignal;
  readonly remainingMs: number;
  /** Renews the lease now. @throws NotFoundError when it is gone; UnavailableError when no node answers. */
  keepAliveNow(opts?: { signal?: AbortSignal }): Promise<void>;
}
