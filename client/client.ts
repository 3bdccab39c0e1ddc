/** `BeaconClient`: the typed entry point to one Beacon deployment over HTTP and WebSocket. */
import { InvalidArgumentError, NotFoundError } from '../src/errors.js';
import { AlertsClient, DashboardsClient } from './alerts.js';
import { CacheClient } from './cache.js';
import { ConfigsClient } from './configs.js';
import { Election } from './election.js';
import type { EndpointStatus, HealthCheckOptions } from './endpoints.js';
import { LeaseClient } from './lease.js';
import { LiveConfig, type LiveConfigOptions } from './live-config.js';
import { RolloutsClient } from './rollouts.js';
import { lockState } from './mutex.js';
import type { BreakerOptions, BreakerState, Clock, RetryOptions } from './resilience.js';
import { Session, type SessionOptions } from './session.js';
import { DEFAULT_ENDPOINT, DEFAULT_TIMEOUT_MS, HttpTransport } from './transport.js';
import { Op, TxnBuilder, txnFromWire, txnToWire, type TxnRequest, type TxnResponse } from './txn.js';
import {
  kvFromWire,
  type CompactResponse,
  type DeleteResponse,
  type GetResponse,
  type KeyValue,
  type KeyValueWire,
  type PutResponse,
  type RangeResponse,
  type CallOptions,
  type SnapshotDownload,
  type ClusterStatus,
  type Status,
  type WriteOptions,
} from './types.js';
import { encodeKeyPath, isPathUnsafeKey, valueToWire, type ValueInput } from './values.js';
import { WatchStream, defaultSocketFactory, type SocketFactory, type Watch, type WatchOptions } from './watch.js';

/** Options of {@link createClient}. */
export interface ClientOptions {
  /** Base URL of a Beacon node. Default `http://127.0.0.1:7379`. */
  endpoint?: string;
  /**
   * Base URLs of several nodes sharing one store (PostgreSQL mode); wins over `endpoint`.
   * Requests stick to one until it fails, then fail over to the next healthy one.
   */
  endpoints?: string[];
  /** Per-attempt timeout in milliseconds; also bounds opening a watch. Default 10 000. Each call may override it. */
  timeoutMs?: number;
  /**
   * Retries with exponential back-off and full jitter, or false for none. Default 2 retries,
   * 100 ms base, 2 s ceiling. Only idempotent calls (reads, keep-alives, watch reconnects) are
   * retried after a failure that may have reached a node; writes only with `retry: true`.
   */
  retry?: Partial<RetryOptions> | false;
  /**
   * A circuit breaker per endpoint, or false for none. Default: opens at 50 % failures over
   * 10 s (at least 10 requests), half-opens after 30 s with one probe — the seeds' numbers.
   */
  circuitBreaker?: Partial<BreakerOptions> | false;
  /** `/readyz` probes of endpoints that failed, or false for none. Default every 1000 ms. */
  healthCheck?: Partial<HealthCheckOptions> | false;
  /** The clock the breakers read (tests). */
  clock?: Clock;
  /** Told when an endpoint goes down or up, or its breaker changes state (for logs and metrics). */
  onEndpointEvent?: (event: { url: string; type: 'down' | 'up' | BreakerState }) => void;
  /** A bearer token (JWT from `POST /v1/auth/token`, or an API key) sent as `Authorization: Bearer …`. */
  token?: string;
  /** Extra headers on every request. */
  headers?: Record<string, string>;
  /** A fetch implementation; the global `fetch` by default. */
  fetch?: typeof fetch;
  /** Opens watch sockets; the global `WebSocket`, else the `ws` package, by default. */
  webSocket?: SocketFactory;
}

/** A token issued by {@link BeaconClient.login}; `expiresAt` is ISO 8601, `expiresIn` seconds. */
export interface LoginResponse {
  token: string;
  tokenType: 'Bearer';
  expiresAt: string;
  expiresIn: number;
  user: string;
  roles: string[];
}

/** Read consistency: `serializable` (default) answers from the node's view at once; `linearizable` first catches up with the backend. */
export type Consistency = 'serializable' | 'linearizable';

/** Options of {@link BeaconClient.get}. */
export interface GetOptions extends CallOptions {
  /** Read the key as of this revision (0: latest). */
  revision?: number;
  /** Leave the value out. */
  keysOnly?: boolean;
  consistency?: Consistency;
}

/** Options of {@link BeaconClient.range}. */
export interface RangeOptions extends CallOptions {
  /** Read as of this revision (0: latest). */
  revision?: number;
  /** Largest page (0: no limit). */
  limit?: number;
  keysOnly?: boolean;
  /** Return only `count`. */
  countOnly?: boolean;
  /** The `continue` token of the previous page. */
  continue?: string;
  consistency?: Consistency;
}

/** Options of {@link BeaconClient.scan}. */
export interface ScanOptions {
  /** Keys per request. Default 500. */
  pageSize?: number;
  /** Read as of this revision (0: the latest, pinned at the first page). */
  revision?: number;
  keysOnly?: boolean;
  signal?: AbortSignal;
  /** Told the pinned revision and the total count once the first page arrives. */
  onFirstPage?: (info: { revision: number; count: number }) => void;
}

/** Options of {@link BeaconClient.put}. */
export interface PutOptions extends WriteOptions {
  /** Attach the key to this lease (0: none). */
  lease?: number;
  /** Return the previous kv. */
  prevKv?: boolean;
}

/** Options of {@link BeaconClient.delete}. */
export interface DeleteOptions extends WriteOptions {
  /** Delete every key that starts with the given key. */
  prefix?: boolean;
  /** Required with an empty key and `prefix`, to delete every key. */
  all?: boolean;
  /** Return the deleted kvs. */
  prevKv?: boolean;
}

function kvPath(key: string): string {
  return `/v1/kv/${encodeKeyPath(key)}`;
}

/**
 * A client of one Beacon deployment. Every method throws {@link BeaconError} subclasses:
 * the server's own errors with their class (NotFoundError, ConflictError, CompactedError …), and
 * `UnavailableError` when the node cannot be reached or does not answer within the timeout.
 * @example
 * const client = createClient({ endpoint: 'http://127.0.0.1:7379' });
 * await client.put('app/color', 'blue');
 * const { kv } = await client.get('app/color'); // kv.text === 'blue'
 * for await (const ev of client.watch('app/', { prefix: true })) console.log(ev.type, ev.kv.key);
 */
export class BeaconClient {
  /** The HTTP transport; exposed for advanced use (raw requests) and for failover policies to wrap. */
  readonly transport: HttpTransport;
  /** Lease operations. */
  readonly lease: LeaseClient;
  /** Versioned application configs. */
  readonly configs: ConfigsClient;
  /** The cache tier over HTTP: get, set with a TTL, delete, getOrLoad (issue 11, docs/cache.md). */
  readonly cache: CacheClient;
  /** Alerts, rule files, silences (issue 13, docs/alerting.md). */
  readonly alerts: AlertsClient;
  /** Dashboards of PromQL panels (issue 13). */
  readonly dashboards: DashboardsClient;
  /** Staged config rollouts (issue 16, docs/rollout.md). */
  readonly rollouts: RolloutsClient;
  private readonly socketFactory: SocketFactory;
  private readonly watches = new Set<Watch>();
  private readonly liveConfigs = new Set<LiveConfig<unknown>>();

  constructor(opts: ClientOptions = {}) {
    const endpoints = opts.endpoints ?? [opts.endpoint ?? DEFAULT_ENDPOINT];
    for (const e of endpoints) {
      if (!/^https?:\/\/[^/]+/.test(e)) throw new InvalidArgumentError(`endpoint '${e}' is not an http:// or https:// URL`);
    }
    this.transport = new HttpTransport({
      endpoints,
      timeoutMs: opts.timeoutMs ?? DEFAULT_TIMEOUT_MS,
      headers: opts.headers,
      fetch: opts.fetch,
      retry: opts.retry,
      circuitBreaker: opts.circuitBreaker,
      healthCheck: opts.healthCheck,
      clock: opts.clock,
      onEndpointEvent: opts.onEndpointEvent,
    });
    this.transport.setToken(opts.token);
    this.lease = new LeaseClient(this.transport);
    this.configs = new ConfigsClient(this.transport);
    this.cache = new CacheClient(this.transport);
    this.alerts = new AlertsClient(this.transport);
    this.dashboards = new DashboardsClient(this.transport);
    this.rollouts = new RolloutsClient(this.transport); // issue 16
    const transport = this.transport;
    this.socketFactory = opts.webSocket ?? defaultSocketFactory({ headers: () => transport.headers, handshakeTimeoutMs: transport.timeoutMs });
  }

  /** The endpoint requests currently go to. */
  get endpoint(): string {
    return this.transport.endpoint;
  }

  /** Every endpoint's health and circuit-breaker state, and which one is current. */
  endpointStatus(): EndpointStatus[] {
    return this.transport.status();
  }

  /**
   * Reads one key.
   * @throws NotFoundError when the key does not exist (at `revision`); CompactedError when
   *   `revision` has been compacted; FutureRevisionError when it is ahead of the store.
   */
  async get(key: string, opts: GetOptions = {}): Promise<GetResponse> {
    if (isPathUnsafeKey(key)) {
      if (opts.revision) throw new InvalidArgumentError(`the key '${key}' can only be read at the latest revision`);
      const res = await this.txn({ success: [Op.get(key, { keysOnly: opts.keysOnly })] }, { signal: opts.signal, timeoutMs: opts.timeoutMs, retry: true });
      const first = res.results[0];
      const kv = first?.type === 'range' ? first.kvs[0] : undefined;
      if (kv === undefined) throw new NotFoundError(`key '${key}' not found`, { key, revision: res.revision });
      return { revision: res.revision, kv };
    }
    // The plain read (the hot path) sends no query, so none is built.
    const plain = !opts.revision && !opts.keysOnly && opts.consistency === undefined;
    const { body } = await this.transport.request<{ revision: number; kv: KeyValueWire }>('GET', kvPath(key), {
      query: plain ? undefined : { rev: opts.revision || undefined, keysOnly: opts.keysOnly, consistency: opts.consistency },
      signal: opts.signal,
      timeoutMs: opts.timeoutMs,
    });
    return { revision: body.revision, kv: kvFromWire(body.kv) };
  }

  /**
   * Reads one page of the keys that start with `prefix` (`''` for every key), in UTF-8 byte order.
   * Pass the answer's `continue` back to get the next page; every page is pinned to the first
   * page's revision. See {@link BeaconClient.scan} for an iterator over all pages.
   * @throws CompactedError when the pinned revision is compacted between pages.
   */
  async range(prefix: string, opts: RangeOptions = {}): Promise<RangeResponse> {
    const { body } = await this.transport.request<{ revision: number; kvs: KeyValueWire[]; count: number; more: boolean; continue?: string }>(
      'GET',
      kvPath(prefix),
      {
        query: {
          prefix: true,
          limit: opts.limit || undefined,
          rev: opts.revision || undefined,
          keysOnly: opts.keysOnly,
          countOnly: opts.countOnly,
          continue: opts.continue,
          consistency: opts.consistency,
        },
        signal: opts.signal,
        timeoutMs: opts.timeoutMs,
      },
    );
    const out: RangeResponse = { revision: body.revision, kvs: body.kvs.map(kvFromWire), count: body.count, more: body.more };
    if (body.continue !== undefined) out.continue = body.continue;
    return out;
  }

  /**
   * Iterates over every key that starts with `prefix`, fetching `pageSize` keys per request, all
   * at one revision (the first page's), so the listing is a consistent picture even while writes go on.
   * @throws as {@link BeaconClient.range}.
   */
  async *scan(prefix: string, opts: ScanOptions = {}): AsyncGenerator<KeyValue> {
    const limit = opts.pageSize ?? 500;
    let token: string | undefined;
    let first = true;
    do {
      const page = await this.range(prefix, { limit, revision: first ? opts.revision : undefined, keysOnly: opts.keysOnly, continue: token, signal: opts.signal });
      if (first) opts.onFirstPage?.({ revision: page.revision, count: page.count });
      first = false;
      yield* page.kvs;
      token = page.more ? page.continue : undefined;
    } while (token !== undefined);
  }

  /**
   * Writes a value (text is stored as UTF-8) and returns the new revision.
   * @throws TooLargeError for an oversized key or value; NotFoundError for an unknown lease.
   */
  async put(key: string, value: ValueInput, opts: PutOptions = {}): Promise<PutResponse> {
    if (isPathUnsafeKey(key)) {
      const res = await this.txn({ success: [Op.put(key, value, { lease: opts.lease, prevKv: opts.prevKv })] }, opts);
      const first = res.results[0];
      return first?.type === 'put' && first.prevKv ? { revision: res.revision, prevKv: first.prevKv } : { revision: res.revision };
    }
    const body: Record<string, unknown> = { ...valueToWire(value) };
    if (opts.lease) body.lease = opts.lease;
    if (opts.prevKv) body.prevKv = true;
    const res = await this.transport.request<{ revision: number; prevKv?: KeyValueWire }>('PUT', kvPath(key), {
      body,
      signal: opts.signal,
      timeoutMs: opts.timeoutMs,
      idempotent: opts.retry,
    });
    return res.body.prevKv ? { revision: res.body.revision, prevKv: kvFromWire(res.body.prevKv) } : { revision: res.body.revision };
  }

  /**
   * Deletes a key, or every key under a prefix, in one revision. Deleting nothing is not an
   * error: `deleted` is then 0.
   * @throws InvalidArgumentError for an empty prefix without `all`.
   */
  async delete(key: string, opts: DeleteOptions = {}): Promise<DeleteResponse> {
    if (isPathUnsafeKey(key)) {
      const res = await this.txn({ success: [Op.delete(key, { prefix: opts.prefix, prevKv: opts.prevKv })] }, opts);
      const first = res.results[0];
      if (first?.type !== 'delete') return { revision: res.revision, deleted: 0 };
      return first.prevKvs ? { revision: res.revision, deleted: first.deleted, prevKvs: first.prevKvs } : { revision: res.revision, deleted: first.deleted };
    }
    const { body } = await this.transport.request<{ revision: number; deleted: number; prevKvs?: KeyValueWire[] }>('DELETE', kvPath(key), {
      query: { prefix: opts.prefix, all: opts.all, prevKv: opts.prevKv },
      signal: opts.signal,
      timeoutMs: opts.timeoutMs,
      idempotent: opts.retry,
    });
    return body.prevKvs
      ? { revision: body.revision, deleted: body.deleted, prevKvs: body.prevKvs.map(kvFromWire) }
      : { revision: body.revision, deleted: body.deleted };
  }

  /**
   * Without an argument, starts a {@link TxnBuilder}; with a request, commits it at once.
   * A txn whose compares fail is not an error: `succeeded` is false and the failure branch ran.
   * A txn is not retried after a failure that may have reached the node unless `retry: true`
   * (say so for a txn that gives the same outcome when applied twice, such as a compare-and-set).
   * @throws InvalidArgumentError for a malformed txn; TooLargeError past 128 ops per branch.
   */
  txn(): TxnBuilder;
  txn(request: TxnRequest, opts?: WriteOptions): Promise<TxnResponse>;
  txn(request?: TxnRequest, opts: WriteOptions = {}): TxnBuilder | Promise<TxnResponse> {
    if (request === undefined) return new TxnBuilder((req) => this.txn(req));
    return this.transport
      .request<Parameters<typeof txnFromWire>[0]>('POST', '/v1/txn', { body: txnToWire(request), signal: opts.signal, timeoutMs: opts.timeoutMs, idempotent: opts.retry })
      .then((res) => txnFromWire(res.body));
  }

  /**
   * Watches a key (or, with `prefix`, every key under it) and yields each change once, in
   * revision order, across reconnects. See {@link Watch} for how it ends and what it throws.
   * @example
   * const w = client.watch('app/', { prefix: true, fromRevision: 10 });
   * for await (const ev of w) if (ev.kv.key === 'app/stop') w.stop();
   */
  watch(key: string, opts: WatchOptions = {}): Watch {
    const stream: WatchStream = new WatchStream(this.transport, key, opts, this.socketFactory, this.transport.timeoutMs, () => this.watches.delete(stream));
    this.watches.add(stream);
    return stream;
  }

  /**
   * Logs in with a username and password (`POST /v1/auth/token`) and uses the token for every
   * later request of this client, watches included. Tokens expire (`expiresIn` seconds; 15
   * minutes by default): log in again, or use an API key for long-running services.
   * @throws UnauthenticatedError for wrong credentials; RateLimitedError after too many attempts.
   */
  async login(username: string, password: string, opts: { signal?: AbortSignal } = {}): Promise<LoginResponse> {
    const { body } = await this.transport.request<LoginResponse>('POST', '/v1/auth/token', { body: { username, password }, signal: opts.signal });
    this.transport.setToken(body.token);
    return body;
  }

  /** The node's status: version, revision, compact revision, counts, backend and size. */
  async status(opts: CallOptions = {}): Promise<Status> {
    return (await this.transport.request<Status>('GET', '/v1/status', { signal: opts.signal, timeoutMs: opts.timeoutMs })).body;
  }

  /** Every live node sharing the store (PostgreSQL mode) with its applied revision and lag; on SQLite, the node itself. */
  async cluster(opts: CallOptions = {}): Promise<ClusterStatus> {
    return (await this.transport.request<ClusterStatus>('GET', '/v1/cluster', { signal: opts.signal, timeoutMs: opts.timeoutMs })).body;
  }

  /**
   * Drops history superseded at or below `revision`; reads and watches below it then fail with `compacted`.
   * @throws CompactedError when already compacted past it; FutureRevisionError when ahead of the store.
   */
  async compact(revision: number, opts: { signal?: AbortSignal } = {}): Promise<CompactResponse> {
    return (await this.transport.request<CompactResponse>('POST', '/v1/compact', { body: { revision }, signal: opts.signal })).body;
  }

  /**
   * Starts downloading an online, consistent snapshot of the whole store (an SQLite database
   * file for the SQLite backend). The timeout bounds the wait for the download to start; after
   * that only `signal` stops it, and iterating `chunks` then throws the signal's reason.
   * @example
   * const snap = await client.snapshot();
   * for await (const chunk of snap.chunks) file.write(chunk); // snap.size bytes in all
   */
  async snapshot(opts: { signal?: AbortSignal } = {}): Promise<SnapshotDownload> {
    const res = await this.transport.open('GET', '/v1/snapshot', { signal: opts.signal, query: {} });
    const num = (name: string): number | undefined => {
      const v = res.headers.get(name);
      return v === null || v === '' || !Number.isFinite(Number(v)) ? undefined : Number(v);
    };
    const body = res.body;
    const signal = opts.signal;
    async function* chunks(): AsyncGenerator<Uint8Array> {
      if (body === null) return;
      const reader = body.getReader();
      const onAbort = (): void => void reader.cancel(signal?.reason).catch(() => undefined);
      signal?.addEventListener('abort', onAbort, { once: true });
      let finished = false;
      try {
        while (true) {
          const { done, value } = await reader.read();
          // A cancelled read ends like a finished one; an aborted download must not look complete.
          if (signal?.aborted) throw signal.reason;
          if (done) {
            finished = true;
            return;
          }
          if (value !== undefined && value.byteLength > 0) yield value;
        }
      } finally {
        signal?.removeEventListener('abort', onAbort);
        // Breaking out of the loop early must not leave the connection open.
        if (!finished) await reader.cancel().catch(() => undefined);
        reader.releaseLock();
      }
    }
    return { revision: num('x-beacon-revision') ?? 0, compactRevision: num('x-beacon-compact-revision') ?? 0, size: num('content-length'), chunks: chunks() };
  }

  /**
   * Creates `prefix/<counter>` atomically (ZooKeeper's sequential nodes): the counter is
   * zero-padded to 20 digits so key order is numeric order, unique and increasing per prefix,
   * never reused. With `lease`, the key is ephemeral. Not retried after an ambiguous failure
   * (a retry would create a second key) unless `retry: true`.
   * @throws InvalidArgumentError when `prefix` ends with `/`; NotFoundError for an unknown lease.
   * @example
   * const { key, sequence } = await client.createSequential('queue/jobs', 'build 42');
   * // key === 'queue/jobs/00000000000000000001'
   */
  async createSequential(prefix: string, value: ValueInput = '', opts: WriteOptions & { lease?: number } = {}): Promise<{ prefix: string; key: string; sequence: number; revision: number }> {
    const body: Record<string, unknown> = { ...valueToWire(value) };
    if (opts.lease) body.lease = opts.lease;
    return (
      await this.transport.request<{ prefix: string; key: string; sequence: number; revision: number }>('POST', `/v1/sequences/${encodeKeyPath(prefix)}`, {
        body,
        signal: opts.signal,
        timeoutMs: opts.timeoutMs,
        idempotent: opts.retry,
      })
    ).body;
  }

  /**
   * Starts a {@link Session}: grants a lease of `ttl` seconds (default 60) and keeps it alive
   * until `session.close()`. Locks and elections hang on it.
   * @example
   * const session = await client.session({ ttl: 10 });
   * const lock = await session.mutex('jobs/nightly').lock();
   */
  session(opts: SessionOptions = {}): Promise<Session> {
    return Session.create(this, opts);
  }

  /**
   * An election `name` for reading its leader and observing changes. To campaign, use
   * `session.election(name)`.
   */
  election(name: string): Election {
    return new Election(this, name);
  }

  /** The holder (with its fencing token) and the waiters of lock `name`, from `GET /v1/locks/{name}`. */
  lockState(name: string, opts: { signal?: AbortSignal } = {}): ReturnType<typeof lockState> {
    return lockState(this, name, opts);
  }

  /**
   * A live config: every key under `prefix` (values parsed as JSON where they are JSON, keyed
   * relative to the prefix), kept current by a watch and validated with `schema`. Resolves once
   * it has a value from the server — or, when the server is unreachable, from the last-known-good
   * copy (then `stale` is true until the server answers). See {@link LiveConfig}.
   * @throws UnavailableError when the server is unreachable and there is no last-known-good copy.
   * @example
   * const cfg = await client.config('app/', { lastKnownGoodFile: './app-config.lkg.json' });
   * cfg.on('change', ({ value, changedKeys }) => console.log(changedKeys, value));
   */
  async config<T = Record<string, unknown>>(prefix: string, opts: LiveConfigOptions<T> & { signal?: AbortSignal } = {}): Promise<LiveConfig<T>> {
    const cfg = new LiveConfig<T>(this, prefix, opts);
    this.liveConfigs.add(cfg as LiveConfig<unknown>);
    try {
      return await cfg.start(opts.signal);
    } catch (err) {
      cfg.close();
      this.liveConfigs.delete(cfg as LiveConfig<unknown>);
      throw err;
    }
  }

  /** Stops every watch and live config this client started, and its health checks. Requests still work afterwards. */
  close(): void {
    for (const w of [...this.watches]) w.stop();
    for (const c of [...this.liveConfigs]) c.close();
    this.liveConfigs.clear();
    this.transport.close();
  }
}

/** Creates a {@link BeaconClient}. */
export function createClient(opts: ClientOptions = {}): BeaconClient {
  return new BeaconClient(opts);
}
