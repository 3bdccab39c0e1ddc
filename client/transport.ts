/**
 * The HTTP transport under every SDK call: chooses an endpoint, applies the per-attempt timeout,
 * retries with back-off and fails over between endpoints, feeds each endpoint's circuit breaker,
 * and turns error responses back into Beacon's typed errors.
 *
 * What is retried (DESIGN.md §8): a request that certainly never reached a node (connection
 * refused, host not found, an open breaker) is sent to the next endpoint whatever it is; a
 * request that may have reached one (timed out, connection reset, `503 unavailable`) is sent
 * again only when it is idempotent: GET and HEAD, and calls marked `idempotent` (lease
 * keep-alives, releases by fencing token, re-entrant lock waits) or whose caller opted in.
 * A put or txn is therefore never applied twice behind the caller's back.
 */
import { BeaconError, ErrorCode, UnavailableError, errorFromWire, type ErrorDetails } from '../src/errors.js';
import { linkSignals } from './abort.js';
import { SharedDeadlines, type DeadlineBatch } from './deadlines.js';
import { EndpointPool, type Endpoint, type EndpointStatus, type HealthCheckOptions } from './endpoints.js';
import { DEFAULT_RETRY, backoffDelay, sleep, systemClock, type BreakerOptions, type BreakerState, type Clock, type RetryOptions } from './resilience.js';

/** The default endpoint, matching `beacon serve`'s default HTTP port. */
export const DEFAULT_ENDPOINT = 'http://127.0.0.1:7379';
/** The default per-attempt timeout in milliseconds. */
export const DEFAULT_TIMEOUT_MS = 10_000;

/** Options of {@link HttpTransport}. */
export interface TransportOptions {
  /** Base URLs of Beacon nodes, e.g. `http://127.0.0.1:7379`; requests fail over between them. */
  endpoints: string[];
  /**
   * Per-attempt timeout in milliseconds (until the response headers arrive for streams). Requests
   * on this default share their deadline with those started around them, so it fires up to 5 %
   * (at most 50 ms) late; see deadlines.ts.
   */
  timeoutMs: number;
  /** Extra headers on every request (for example `authorization`). */
  headers?: Record<string, string>;
  /** A fetch implementation; the global `fetch` by default. */
  fetch?: typeof fetch;
  /** Retry policy, or false for none. Default {@link DEFAULT_RETRY}. */
  retry?: Partial<RetryOptions> | false;
  /** Circuit breaker per endpoint, or false for none. Default: the seeds' 50 % over 10 s, open 30 s. */
  circuitBreaker?: Partial<BreakerOptions> | false;
  /** Health checks of endpoints that failed, or false for none. Default `/readyz` every second. */
  healthCheck?: Partial<HealthCheckOptions> | false;
  /** The clock breakers read; a fake one in tests. */
  clock?: Clock;
  /** Told when an endpoint goes down or up, or its breaker changes state. */
  onEndpointEvent?: (event: { url: string; type: 'down' | 'up' | BreakerState }) => void;
}

/** One request: method, path (already encoded) and optional query, JSON body, signal and timeout. */
export interface RequestOptions {
  query?: Record<string, string | number | boolean | undefined>;
  body?: unknown;
  signal?: AbortSignal;
  /** Overrides the transport's per-attempt timeout for this request, in milliseconds; 0 disables it. */
  timeoutMs?: number;
  /**
   * Whether sending the request twice is harmless, so it may be retried after a failure that
   * may have reached the node. Default: true for GET and HEAD, false otherwise.
   */
  idempotent?: boolean;
  /** Overrides the number of retries for this request (0: one attempt, but still failover on a refused connection). */
  retries?: number;
  /**
   * A request that blocks on the server until something happens (a lock or campaign wait). It
   * takes no breaker slot — a half-open breaker's single probe must not be a request that may
   * take minutes — and goes to the best endpoint even while breakers are open; its outcome is
   * still reported to the breaker.
   */
  longPoll?: boolean;
  /**
   * The base URL of the node to try first (the owner of a cache key), when it is one of the
   * endpoints, healthy and admitted by its breaker; otherwise, and for every retry, the usual choice.
   */
  prefer?: string;
}

/** The parsed JSON body of a response, with its headers and the endpoint that answered. */
export interface JsonResponse<T> {
  status: number;
  body: T;
  headers: Headers;
  endpoint: string;
}

/** The `tried` set of a first attempt, which has tried nothing yet. */
const NO_ENDPOINTS: ReadonlySet<Endpoint> = new Set();

/** Socket error codes that mean the request never left this machine, so any request may go elsewhere. */
const NOT_SENT = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL', 'UND_ERR_CONNECT_TIMEOUT']);

/** Node's fetch rejects with a TypeError whose `cause` carries the socket error code. */
function causeCode(err: unknown): string | undefined {
  const cause = (err as { cause?: { code?: string; cause?: { code?: string } } }).cause;
  return cause?.code ?? cause?.cause?.code;
}

function networkReason(err: unknown): string {
  const code = causeCode(err);
  if (code === 'ECONNREFUSED') return 'connection refused';
  if (code === 'ENOTFOUND') return 'host not found';
  if (code !== undefined) return code;
  const cause = (err as { cause?: { message?: string } }).cause;
  return cause?.message ?? (err as Error).message ?? String(err);
}

function isAbort(err: unknown): boolean {
  return (err as { name?: string }).name === 'AbortError' || (err as { name?: string }).name === 'TimeoutError';
}

/** Turns an error response into the typed error the server meant. */
async function errorFromResponse(res: Response, what: string): Promise<BeaconError> {
  const text = await res.text().catch(() => '');
  try {
    const parsed = JSON.parse(text) as { error?: { code?: unknown; message?: unknown; details?: unknown } };
    const e = parsed.error;
    if (e !== undefined && typeof e.code === 'string') {
      return errorFromWire(e.code, typeof e.message === 'string' ? e.message : `${what} failed`, e.details as ErrorDetails | undefined);
    }
  } catch {
    // not a Beacon error body: fall through to the status
  }
  const message = `${what} failed with HTTP ${res.status}${text ? `: ${text.slice(0, 200)}` : ''}`;
  if (res.status === 404) return errorFromWire(ErrorCode.NotFound, message);
  if (res.status === 502 || res.status === 503 || res.status === 504) return new UnavailableError(message);
  return new BeaconError(ErrorCode.Internal, message, { status: res.status });
}

/** How one attempt failed, which decides whether it may be retried and what the breaker hears. */
type Failure =
  /** The caller aborted: rethrow, no verdict on the endpoint. */
  | { kind: 'aborted'; error: unknown }
  /** The request never reached a node: retry anything elsewhere. */
  | { kind: 'not-sent'; error: BeaconError }
  /** It may have reached the node (timeout, reset, 5xx unavailable): retry only idempotent requests. */
  | { kind: 'maybe-sent'; error: BeaconError }
  /** The node answered with an error: no retry. `endpointFault` for 5xx other than unavailable. */
  | { kind: 'answered'; error: BeaconError; endpointFault: boolean };

class AttemptFailure extends Error {
  constructor(readonly failure: Failure) {
    super('attempt failed');
  }
}

/**
 * Sends requests to Beacon nodes over HTTP with `fetch`, with failover, retries and a circuit
 * breaker per endpoint (see the module comment for what is retried). Every failure surfaces as
 * a {@link BeaconError}: network errors and timeouts as `UnavailableError`, an open breaker on
 * every endpoint as `UnavailableError` with `details.reason: "circuit_open"`, error responses as
 * the class named by their `code`. A caller's own abort surfaces as the signal's reason (an
 * `AbortError`), unchanged.
 */
export class HttpTransport {
  readonly endpoints: readonly string[];
  readonly timeoutMs: number;
  /** The endpoints' health, breakers and the current one. */
  readonly pool: EndpointPool;
  private readonly headers_: Record<string, string>;
  private readonly fetchFn: typeof fetch;
  private readonly retry: RetryOptions | undefined;
  /** The headers of a request without a body, built once per token (every GET sends them). */
  private requestHeaders: Record<string, string> | undefined;
  /** The shared per-attempt deadlines of requests that use the default timeout. */
  private readonly deadlines: SharedDeadlines;

  constructor(opts: TransportOptions) {
    if (opts.endpoints.length === 0) throw new BeaconError(ErrorCode.InvalidArgument, 'at least one endpoint is required');
    this.endpoints = opts.endpoints.map((e) => e.replace(/\/+$/, ''));
    this.timeoutMs = opts.timeoutMs;
    this.deadlines = new SharedDeadlines(opts.timeoutMs);
    this.headers_ = { ...(opts.headers ?? {}) };
    this.fetchFn = opts.fetch ?? ((input, init) => fetch(input, init));
    this.retry = opts.retry === false ? undefined : { ...DEFAULT_RETRY, ...(opts.retry ?? {}) };
    this.pool = new EndpointPool(this.endpoints, {
      breaker: opts.circuitBreaker,
      healthCheck: opts.healthCheck,
      clock: opts.clock ?? systemClock,
      fetch: this.fetchFn,
      onEvent: opts.onEndpointEvent,
    });
  }

  /** The headers sent with every request (a copy). */
  get headers(): Record<string, string> {
    return { ...this.headers_ };
  }

  /** Sets or (with `undefined`) clears the bearer token sent as `Authorization: Bearer …`; open watches are told. */
  setToken(token: string | undefined): void {
    if (token === undefined || token === '') delete this.headers_.authorization;
    else this.headers_.authorization = `Bearer ${token}`;
    this.requestHeaders = undefined;
    for (const cb of [...this.tokenListeners]) cb(this.token);
  }

  /** The bearer token sent as `Authorization: Bearer …`, or undefined. */
  get token(): string | undefined {
    return /^Bearer\s+(\S+)$/i.exec(this.headers_.authorization ?? '')?.[1];
  }

  private readonly tokenListeners = new Set<(token: string | undefined) => void>();

  /**
   * Calls `cb` with the new token after every {@link setToken} (open watch sockets send it to the
   * server as `{"type":"auth"}` so they outlive the old token). Returns the unsubscribe function.
   */
  onTokenChange(cb: (token: string | undefined) => void): () => void {
    this.tokenListeners.add(cb);
    return () => this.tokenListeners.delete(cb);
  }

  /** The endpoint requests go to first (the last one that answered, until it fails). */
  get endpoint(): string {
    return this.pool.current.url;
  }

  /** Every endpoint's health and breaker state. */
  status(): EndpointStatus[] {
    return this.pool.status();
  }

  /** The absolute URL of `path` (already percent-encoded) with `query`, on `base` (default: the current endpoint). */
  url(path: string, query?: RequestOptions['query'], base: string = this.endpoint): string {
    let url = base + path;
    let sep = '?';
    for (const k in query) {
      const v = query[k];
      if (v === undefined || v === false) continue;
      url += `${sep}${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`;
      sep = '&';
    }
    return url;
  }

  /** The WebSocket URL (`ws:`/`wss:`) of `path` on `base` (default: the current endpoint). */
  wsUrl(path: string, base: string = this.endpoint): string {
    return this.url(path, undefined, base).replace(/^http/, 'ws');
  }

  /** Stops background work (health checks). Requests still work afterwards. */
  close(): void {
    this.pool.close();
  }

  /**
   * Sends one request and returns the raw response once its headers have arrived; the timeout
   * stops applying then, so a long download is bounded by the caller's signal only.
   * @throws UnavailableError when no node can be reached or none answers in time;
   *   the typed error of an error response.
   */
  open(method: string, path: string, opts: RequestOptions = {}): Promise<Response> {
    return this.withRetries(method, path, opts, false) as Promise<Response>;
  }

  /**
   * Sends one request and parses the JSON answer; the timeout covers reading the body too.
   * @throws as {@link HttpTransport.open}; UnavailableError when the answer is not JSON.
   */
  request<T>(method: string, path: string, opts: RequestOptions = {}): Promise<JsonResponse<T>> {
    return this.withRetries(method, path, opts, true) as Promise<JsonResponse<T>>;
  }

  /** Runs attempts against endpoints until one succeeds or the failure may not be retried. */
  private async withRetries(method: string, path: string, opts: RequestOptions, readJson: boolean): Promise<Response | JsonResponse<unknown>> {
    const idempotent = opts.idempotent ?? (method === 'GET' || method === 'HEAD');
    const retries = opts.retries ?? this.retry?.retries ?? 0;
    // Built at the first failure only: most calls succeed at the first endpoint they try.
    let tried: Set<Endpoint> | undefined;
    let retriesUsed = 0;
    let lastError: unknown;
    for (;;) {
      opts.signal?.throwIfAborted();
      if (tried?.size === this.endpoints.length) tried.clear(); // every endpoint had a go: start another round
      let ep: Endpoint | undefined;
      try {
        const preferred = tried === undefined && opts.prefer !== undefined && !opts.longPoll ? this.pool.acquirePreferred(opts.prefer) : undefined;
        ep = preferred ?? (opts.longPoll ? this.pool.pickForStream(tried ?? NO_ENDPOINTS) : this.pool.acquire(tried ?? NO_ENDPOINTS));
      } catch (err) {
        // Every untried endpoint's breaker is open. Having already failed here, report the real failure.
        throw lastError ?? err;
      }
      if (ep === undefined) throw lastError;
      let failure: Failure;
      try {
        const out = await this.attempt(ep, method, path, opts, readJson);
        this.pool.succeeded(ep);
        return out;
      } catch (err) {
        failure = err instanceof AttemptFailure ? err.failure : { kind: 'aborted', error: err };
      }
      tried ??= new Set();
      tried.add(ep);
      switch (failure.kind) {
        case 'aborted':
          if (!opts.longPoll) this.pool.release(ep);
          throw failure.error;
        case 'answered':
          if (failure.endpointFault) ep.breaker?.failure();
          else this.pool.succeeded(ep);
          throw failure.error;
        default:
          this.pool.failed(ep);
      }
      lastError = failure.error;
      if (failure.kind === 'maybe-sent' && !idempotent) throw failure.error;
      // A request that never left may go to each other endpoint at once; other retries are counted.
      const untried = this.endpoints.length - tried.size;
      const failover = failure.kind === 'not-sent' && untried > 0;
      if (!failover) {
        if (retriesUsed >= retries) throw failure.error;
        retriesUsed++;
      }
      if (!failover && untried === 0 && this.retry !== undefined) {
        await sleep(backoffDelay(retriesUsed - 1, this.retry), opts.signal);
      }
    }
  }

  /**
   * One attempt at one endpoint: the response once its headers are in (`readJson` false), or its
   * parsed JSON body. Failures are thrown as {@link AttemptFailure}s.
   */
  private async attempt(ep: Endpoint, method: string, path: string, opts: RequestOptions, readJson: boolean): Promise<Response | JsonResponse<unknown>> {
    const timeoutMs = opts.timeoutMs ?? this.timeoutMs;
    // The signal that lets the timeout (or the caller) abort the request. The common call (the
    // client's timeout, no signal of the caller's, the whole body read under the timeout) shares
    // a deadline with the requests started around it (see deadlines.ts); any other gets its own.
    let shared: DeadlineBatch | undefined;
    let own: { signal: AbortSignal; dispose: () => void } | undefined;
    let ownTimedOut = false;
    if (readJson && opts.signal === undefined && timeoutMs === this.deadlines.timeoutMs && timeoutMs > 0) {
      shared = this.deadlines.start();
    } else if (opts.signal !== undefined || timeoutMs > 0) {
      own = linkSignals([opts.signal], timeoutMs > 0 ? timeoutMs : undefined, () => {
        ownTimedOut = true;
        return new DOMException(`timed out after ${timeoutMs} ms`, 'TimeoutError');
      });
    }
    const fail = (err: unknown): AttemptFailure =>
      new AttemptFailure(failureOf(err, { ep, method, path, timeoutMs, timedOut: ownTimedOut || (shared?.timedOut ?? false), callerSignal: opts.signal }));
    try {
      let headers = (this.requestHeaders ??= { accept: 'application/json', ...this.headers_ });
      let body: string | undefined;
      if (opts.body !== undefined) {
        body = JSON.stringify(opts.body);
        headers = { ...headers, 'content-type': 'application/json' };
      }
      let res: Response;
      try {
        res = await this.fetchFn(this.url(path, opts.query, ep.url), { method, headers, body, signal: shared?.signal ?? own?.signal });
      } catch (err) {
        throw fail(err);
      }
      if (!res.ok) {
        let error: BeaconError;
        try {
          error = await errorFromResponse(res, `${method} ${path}`);
        } catch (err) {
          throw fail(err);
        }
        if (error.code === ErrorCode.Unavailable) throw new AttemptFailure({ kind: 'maybe-sent', error });
        throw new AttemptFailure({ kind: 'answered', error, endpointFault: res.status >= 500 });
      }
      if (!readJson) return res;
      let text: string;
      try {
        text = await res.text();
      } catch (err) {
        throw fail(err);
      }
      try {
        return { status: res.status, body: text === '' ? undefined : (JSON.parse(text) as unknown), headers: res.headers, endpoint: ep.url };
      } catch (err) {
        const error = new UnavailableError(`${ep.url} answered ${method} ${path} with something that is not JSON`, { cause: err });
        throw new AttemptFailure({ kind: 'answered', error, endpointFault: true });
      }
    } finally {
      shared?.end();
      own?.dispose();
    }
  }
}

/** Translates a failed fetch or body read into how the attempt failed. */
function failureOf(
  err: unknown,
  at: { ep: Endpoint; method: string; path: string; timeoutMs: number; timedOut: boolean; callerSignal: AbortSignal | undefined },
): Failure {
  const { ep, timeoutMs } = at;
  if (at.timedOut) {
    return {
      kind: 'maybe-sent',
      error: new UnavailableError(`${at.method} ${at.path} to ${ep.url} timed out after ${timeoutMs} ms`, { cause: err, details: { timeoutMs, endpoint: ep.url } }),
    };
  }
  if (at.callerSignal?.aborted || isAbort(err)) return { kind: 'aborted', error: at.callerSignal?.reason ?? err };
  const error = new UnavailableError(`cannot reach Beacon at ${ep.url}: ${networkReason(err)}`, { cause: err, details: { endpoint: ep.url } });
  return { kind: NOT_SENT.has(causeCode(err) ?? '') ? 'not-sent' : 'maybe-sent', error };
}
