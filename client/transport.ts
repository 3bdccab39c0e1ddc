/**
 * The HTTP transport under every SDK call: builds URLs, applies the per-request timeout, and turns
 * error responses back into Beacon's typed errors. It is the one place a later failover, retry or
 * circuit-breaker policy plugs in (see {@link HttpTransport.request}).
 */
import { BeaconError, ErrorCode, UnavailableError, errorFromWire, type ErrorDetails } from '../src/errors.js';

/** The default endpoint, matching `beacon serve`'s default HTTP port. */
export const DEFAULT_ENDPOINT = 'http://127.0.0.1:7379';
/** The default per-request timeout in milliseconds. */
export const DEFAULT_TIMEOUT_MS = 10_000;

/** Options of {@link HttpTransport}. */
export interface TransportOptions {
  /** Base URLs of Beacon nodes, e.g. `http://127.0.0.1:7379`. Only the first is used for now. */
  endpoints: string[];
  /** Per-request timeout in milliseconds (until the response headers arrive for streams). */
  timeoutMs: number;
  /** Extra headers on every request (for example `authorization`). */
  headers?: Record<string, string>;
  /** A fetch implementation; the global `fetch` by default. */
  fetch?: typeof fetch;
}

/** One request: method, path (already encoded) and optional query, JSON body, signal and timeout. */
export interface RequestOptions {
  query?: Record<string, string | number | boolean | undefined>;
  body?: unknown;
  signal?: AbortSignal;
  /** Overrides the transport's timeout for this request, in milliseconds; 0 disables it. */
  timeoutMs?: number;
}

/** The parsed JSON body of a response, with its headers. */
export interface JsonResponse<T> {
  status: number;
  body: T;
  headers: Headers;
}

/** Node's fetch rejects with a TypeError whose `cause` carries the socket error code. */
function networkReason(err: unknown): string {
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  if (cause?.code === 'ECONNREFUSED') return 'connection refused';
  if (cause?.code === 'ENOTFOUND') return 'host not found';
  if (cause?.code !== undefined) return cause.code;
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

/**
 * Sends requests to a Beacon node over HTTP with `fetch`.
 * Every failure surfaces as a {@link BeaconError}: network errors and timeouts as
 * `UnavailableError`, error responses as the class named by their `code`. A caller's own abort
 * surfaces as the signal's reason (an `AbortError`), unchanged.
 */
export class HttpTransport {
  readonly endpoints: readonly string[];
  readonly timeoutMs: number;
  private readonly headers_: Record<string, string>;
  private readonly fetchFn: typeof fetch;

  constructor(opts: TransportOptions) {
    if (opts.endpoints.length === 0) throw new BeaconError(ErrorCode.InvalidArgument, 'at least one endpoint is required');
    this.endpoints = opts.endpoints.map((e) => e.replace(/\/+$/, ''));
    this.timeoutMs = opts.timeoutMs;
    this.headers_ = { ...(opts.headers ?? {}) };
    this.fetchFn = opts.fetch ?? ((input, init) => fetch(input, init));
  }

  /** The headers sent with every request (a copy). */
  get headers(): Record<string, string> {
    return { ...this.headers_ };
  }

  /** Sets or (with `undefined`) clears the bearer token sent as `Authorization: Bearer …`. */
  setToken(token: string | undefined): void {
    if (token === undefined || token === '') delete this.headers_.authorization;
    else this.headers_.authorization = `Bearer ${token}`;
  }

  /** The endpoint requests go to. A failover policy will choose among `endpoints` here. */
  get endpoint(): string {
    return this.endpoints[0] as string;
  }

  /** The absolute URL of `path` (already percent-encoded) with `query` on the current endpoint. */
  url(path: string, query?: RequestOptions['query']): string {
    let url = this.endpoint + path;
    const params: string[] = [];
    for (const [k, v] of Object.entries(query ?? {})) {
      if (v === undefined || v === false) continue;
      params.push(`${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`);
    }
    if (params.length > 0) url += `?${params.join('&')}`;
    return url;
  }

  /** The WebSocket URL (`ws:`/`wss:`) of `path` on the current endpoint. */
  wsUrl(path: string): string {
    return this.url(path).replace(/^http/, 'ws');
  }

  /**
   * Sends one request and returns the raw response once its headers have arrived; the timeout
   * stops applying then, so a long download is bounded by the caller's signal only.
   * @throws UnavailableError when the node cannot be reached or does not answer in time;
   *   the typed error of an error response.
   */
  async open(method: string, path: string, opts: RequestOptions = {}): Promise<Response> {
    const { res, finish } = await this.send(method, path, opts);
    finish();
    return res;
  }

  /**
   * Sends one request and parses the JSON answer; the timeout covers reading the body too.
   * @throws as {@link HttpTransport.open}; UnavailableError when the answer is not JSON.
   */
  async request<T>(method: string, path: string, opts: RequestOptions = {}): Promise<JsonResponse<T>> {
    const { res, finish, failure } = await this.send(method, path, opts);
    let text: string;
    try {
      text = await res.text();
    } catch (err) {
      throw failure(err);
    } finally {
      finish();
    }
    try {
      return { status: res.status, body: (text === '' ? undefined : JSON.parse(text)) as T, headers: res.headers };
    } catch (err) {
      throw new UnavailableError(`${this.endpoint} answered ${method} ${path} with something that is not JSON`, { cause: err });
    }
  }

  private async send(
    method: string,
    path: string,
    opts: RequestOptions,
  ): Promise<{ res: Response; finish: () => void; failure: (err: unknown) => unknown }> {
    const url = this.url(path, opts.query);
    const what = `${method} ${path}`;
    const controller = new AbortController();
    const timeoutMs = opts.timeoutMs ?? this.timeoutMs;
    let timedOut = false;
    const timer =
      timeoutMs > 0
        ? setTimeout(() => {
            timedOut = true;
            controller.abort();
          }, timeoutMs)
        : undefined;
    const onAbort = (): void => controller.abort(opts.signal?.reason);
    if (opts.signal?.aborted) onAbort();
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    const finish = (): void => {
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
    };
    // One translation of transport failures, used for the request and for reading its body.
    const failure = (err: unknown): unknown => {
      if (timedOut) {
        return new UnavailableError(`${what} to ${this.endpoint} timed out after ${timeoutMs} ms`, { cause: err, details: { timeoutMs } });
      }
      if (opts.signal?.aborted || isAbort(err)) return opts.signal?.reason ?? err;
      return new UnavailableError(`cannot reach Beacon at ${this.endpoint}: ${networkReason(err)}`, {
        cause: err,
        details: { endpoint: this.endpoint },
      });
    };
    const headers: Record<string, string> = { accept: 'application/json', ...this.headers_ };
    let body: string | undefined;
    if (opts.body !== undefined) {
      body = JSON.stringify(opts.body);
      headers['content-type'] = 'application/json';
    }
    let res: Response;
    try {
      res = await this.fetchFn(url, { method, headers, body, signal: controller.signal });
    } catch (err) {
      finish();
      throw failure(err);
    }
    if (!res.ok) {
      try {
        throw await errorFromResponse(res, what);
      } finally {
        finish();
      }
    }
    return { res, finish, failure };
  }
}
