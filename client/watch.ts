/**
 * Watches over the `/v1/watch` WebSocket as async iterators that resume across reconnects and
 * fail over between endpoints.
 *
 * Resumption follows etcd's rule (DESIGN.md §2): the stream remembers the newest revision it has
 * delivered (or that a progress notification vouched for) and, after a reconnect — to the same
 * node or another one sharing the store — asks for `lastRevision + 1`; events of revisions it has
 * already passed are dropped, so no event is yielded twice and none is skipped.
 *
 * Credentials: when the client's token changes (`setToken`, `login`) an open socket sends it as
 * `{"type":"auth","token"}`, so the watch outlives the old token (issue 9 finding 5). A socket the
 * server ends as `unauthenticated` reconnects when a newer token is at hand, else the iteration
 * throws `UnauthenticatedError`.
 */
import { CompactedError, ErrorCode, UnavailableError, errorFromWire, type ErrorDetails } from '../src/errors.js';
import type { Endpoint } from './endpoints.js';
import { backoffDelay } from './resilience.js';
import type { HttpTransport } from './transport.js';
import { kvFromWire, type KeyValueWire, type WatchEvent } from './types.js';

/** Options of a watch. */
export interface WatchOptions {
  /** Watch every key that starts with the given key. */
  prefix?: boolean;
  /** First revision to deliver (history is replayed from it); default: changes after now. */
  fromRevision?: number;
  /** Include each key's previous kv in put and delete events. */
  prevKv?: boolean;
  /** Ends the watch (quietly, like `stop()`) when aborted. */
  signal?: AbortSignal;
  /** Told when the stream is live, or lost and about to reconnect (for progress output). */
  onStatus?: (status: WatchStatus) => void;
  /**
   * Reconnect back-off with full jitter: each delay is random in `[0, min(max, initial · 2^attempt))`
   * milliseconds (defaults 100 and 5000).
   */
  reconnect?: { initialDelayMs?: number; maxDelayMs?: number };
  /**
   * Keep trying when the very first connection fails (every endpoint unreachable), instead of
   * ending the iteration with `UnavailableError`. For services that must start while Beacon is down.
   */
  retryInitial?: boolean;
}

/** What {@link WatchOptions.onStatus} reports. */
export type WatchStatus =
  | { state: 'watching'; revision: number; resumedFrom: number | undefined; endpoint: string }
  | { state: 'reconnecting'; attempt: number; delayMs: number; reason: string; endpoint: string };

/**
 * A running watch: iterate it with `for await`. Events that arrive faster than the loop consumes
 * them wait in memory, in order. The iteration ends after `stop()` or an abort, and
 * throws `CompactedError` when the revision it needs has been compacted, the typed error of any
 * other refusal by the server, or `UnavailableError` when the first connection cannot be made to
 * any endpoint (unless `retryInitial`). Lost connections after that are retried for ever with
 * back-off, on the next healthy endpoint when the one in use is down.
 */
export interface Watch extends AsyncIterable<WatchEvent> {
  /** Ends the watch and closes its connection; pending and future `next()` calls end the iteration. */
  stop(): void;
  /** The newest revision delivered or confirmed by a progress notification (0 before any). */
  readonly lastRevision: number;
}

/** The subset of the WebSocket API the SDK uses; both the browser's and `ws`'s sockets fit it. */
export interface SocketLike {
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
}

/** Opens a WebSocket to `url`. */
export type SocketFactory = (url: string) => Promise<SocketLike>;

/**
 * The default socket factory: the global `WebSocket` (browsers, Node ≥ 22), else the `ws`
 * package loaded on demand so that browser bundles never include it. `headers` (a record, or a
 * function read at each connection) go with the upgrade request under `ws`; a global WebSocket
 * sends a bearer token as `?access_token=` instead.
 */
export function defaultSocketFactory(
  opts: { headers?: Record<string, string> | (() => Record<string, string>); handshakeTimeoutMs?: number } = {},
): SocketFactory {
  return async (url) => {
    // Read per connection, so a token set after a login (or refreshed) is used on reconnect.
    const headers = typeof opts.headers === 'function' ? opts.headers() : opts.headers;
    const Global = (globalThis as { WebSocket?: new (url: string) => SocketLike }).WebSocket;
    if (Global !== undefined) {
      // A browser WebSocket cannot send headers; the server also takes the token as `access_token`.
      const bearer = /^Bearer\s+(\S+)$/i.exec(headers?.authorization ?? '')?.[1];
      return new Global(bearer === undefined ? url : `${url}${url.includes('?') ? '&' : '?'}access_token=${encodeURIComponent(bearer)}`);
    }
    const name = 'ws'; // a variable, so bundlers leave the import alone
    const mod = (await import(/* @vite-ignore */ name)) as {
      WebSocket: new (url: string, opts: { headers?: Record<string, string>; handshakeTimeout?: number }) => SocketLike;
    };
    return new mod.WebSocket(url, { headers, handshakeTimeout: opts.handshakeTimeoutMs });
  };
}

interface ServerMessage {
  type?: unknown;
  watchId?: unknown;
  revision?: unknown;
  compactRevision?: unknown;
  events?: { type: 'put' | 'delete'; kv: KeyValueWire; prevKv?: KeyValueWire }[];
  code?: unknown;
  message?: unknown;
  details?: unknown;
  error?: { code?: unknown; message?: unknown; details?: unknown };
}

const WATCH_ID = 1;

/** Internal: the state machine behind {@link Watch}. One socket, one watch on it, at a time. */
export class WatchStream implements Watch {
  private readonly queue: WatchEvent[] = [];
  private waiter: { resolve: (r: IteratorResult<WatchEvent>) => void; reject: (e: unknown) => void } | undefined;
  private failure: unknown;
  private done = false;
  private socket: SocketLike | undefined;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private everCreated = false;
  private attempt = 0;
  /** The revision the next connection asks for; undefined until the server first says where "now" is. */
  private resumeFrom: number | undefined;
  /** Endpoints the first connection has failed on (a new watch tries each once before giving up). */
  private readonly initialTried = new Set<Endpoint>();
  private endpoint: Endpoint | undefined;
  /** The token the current socket authenticated with (to tell whether a newer one is at hand). */
  private socketToken: string | undefined;
  private readonly unsubscribeToken: () => void;

  constructor(
    private readonly transport: HttpTransport,
    private readonly key: string,
    private readonly opts: WatchOptions,
    private readonly connectSocket: SocketFactory,
    private readonly timeoutMs: number,
    private readonly onEnd?: () => void,
  ) {
    this.resumeFrom = opts.fromRevision !== undefined && opts.fromRevision > 0 ? opts.fromRevision : undefined;
    this.unsubscribeToken = transport.onTokenChange((token) => this.refresh(token));
    if (opts.signal?.aborted) this.done = true;
    else {
      opts.signal?.addEventListener('abort', this.onAbort, { once: true });
      void this.connect();
    }
  }

  private readonly onAbort = (): void => this.stop();

  /** Runs once when the stream ends, however it ends. */
  private ended(): void {
    this.unsubscribeToken();
    this.opts.signal?.removeEventListener('abort', this.onAbort);
    this.onEnd?.();
  }

  /** Hands a new token to the open socket, so the server keeps it past the old token's expiry. */
  private refresh(token: string | undefined): void {
    const s = this.socket;
    if (token === undefined || s === undefined || token === this.socketToken) return;
    try {
      s.send(JSON.stringify({ type: 'auth', token }));
      this.socketToken = token;
    } catch {
      // not open yet or closing: the next connection carries the new token in its headers
    }
  }

  get lastRevision(): number {
    return this.resumeFrom === undefined ? 0 : this.resumeFrom - 1;
  }

  stop(): void {
    if (this.done) return;
    this.done = true;
    // Stopping means "no more events", including any that arrived but were not consumed yet.
    this.queue.length = 0;
    this.closeSocket();
    this.settle();
    this.ended();
  }

  [Symbol.asyncIterator](): AsyncIterator<WatchEvent> {
    return {
      next: () => this.next(),
      return: async () => {
        this.stop();
        return { done: true, value: undefined };
      },
    };
  }

  private next(): Promise<IteratorResult<WatchEvent>> {
    const ev = this.queue.shift();
    if (ev !== undefined) return Promise.resolve({ done: false, value: ev });
    if (this.failure !== undefined) {
      const err = this.failure;
      this.failure = undefined;
      return Promise.reject(err);
    }
    if (this.done) return Promise.resolve({ done: true, value: undefined });
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
    });
  }

  /** Hands queued events, the failure or the end to a waiting `next()`. */
  private settle(): void {
    const w = this.waiter;
    if (w === undefined) return;
    const ev = this.queue.shift();
    if (ev !== undefined) {
      this.waiter = undefined;
      w.resolve({ done: false, value: ev });
    } else if (this.failure !== undefined) {
      this.waiter = undefined;
      const err = this.failure;
      this.failure = undefined;
      w.reject(err);
    } else if (this.done) {
      this.waiter = undefined;
      w.resolve({ done: true, value: undefined });
    }
  }

  private fail(err: unknown): void {
    if (this.done) return;
    this.failure = err;
    this.done = true;
    this.closeSocket();
    this.settle();
    this.ended();
  }

  private closeSocket(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    const s = this.socket;
    this.socket = undefined;
    if (s !== undefined) {
      s.onclose = null;
      s.onmessage = null;
      s.onerror = () => undefined; // a late error after close must not become an unhandled event
      try {
        s.close(1000, 'watch stopped');
      } catch {
        // already closing
      }
    }
  }

  private async connect(): Promise<void> {
    let socket: SocketLike;
    const pool = this.transport.pool;
    const ep = (this.everCreated ? undefined : pool.pickForStream(this.initialTried)) ?? pool.pickForStream();
    this.endpoint = ep;
    const url = this.transport.wsUrl('/v1/watch', ep?.url);
    try {
      socket = await this.connectSocket(url);
    } catch (err) {
      this.lost((err as Error).message ?? String(err));
      return;
    }
    if (this.done) {
      socket.close(1000, 'watch stopped');
      return;
    }
    this.socket = socket;
    this.socketToken = this.transport.token;
    // Events below this revision were already delivered on an earlier connection.
    let connectionFrom = this.resumeFrom;
    let created = false;
    let lastError = '';
    this.timer = setTimeout(() => {
      lastError = `no answer to the watch request within ${this.timeoutMs} ms`;
      try {
        socket.close(4000, 'timeout');
      } catch {
        // ignore
      }
      this.dropped(socket, lastError);
    }, this.timeoutMs);

    socket.onopen = () => {
      const create: Record<string, unknown> = { type: 'create', key: this.key, watchId: WATCH_ID };
      if (this.opts.prefix) create.prefix = true;
      if (this.opts.prevKv) create.prevKv = true;
      if (connectionFrom !== undefined) create.fromRevision = connectionFrom;
      socket.send(JSON.stringify(create));
    };
    socket.onerror = (ev) => {
      const e = ev as { message?: string; error?: { message?: string } };
      lastError = e.message ?? e.error?.message ?? 'WebSocket error';
    };
    socket.onclose = (ev) => {
      this.dropped(socket, lastError || `connection closed (${ev.code}${ev.reason ? ` ${ev.reason}` : ''})`);
    };
    socket.onmessage = (ev) => {
      let msg: ServerMessage;
      try {
        msg = JSON.parse(typeof ev.data === 'string' ? ev.data : String(ev.data)) as ServerMessage;
      } catch {
        return; // not ours to interpret; the server speaks JSON only
      }
      if (msg.watchId !== undefined && msg.watchId !== WATCH_ID) return;
      switch (msg.type) {
        case 'created': {
          created = true;
          this.everCreated = true;
          this.attempt = 0;
          this.initialTried.clear();
          if (ep !== undefined) pool.markUp(ep);
          clearTimeout(this.timer);
          const revision = Number(msg.revision ?? 0);
          const resumedFrom = connectionFrom;
          if (connectionFrom === undefined) {
            connectionFrom = revision + 1;
            this.resumeFrom = Math.max(this.resumeFrom ?? 0, connectionFrom);
          }
          this.opts.onStatus?.({ state: 'watching', revision, resumedFrom, endpoint: ep?.url ?? url });
          return;
        }
        case 'events': {
          let newest = 0;
          for (const e of msg.events ?? []) {
            const revision = Number(e.kv?.modRevision ?? msg.revision ?? 0);
            if (connectionFrom !== undefined && revision < connectionFrom) continue;
            newest = Math.max(newest, revision);
            const out: WatchEvent = { type: e.type, revision, kv: kvFromWire(e.kv) };
            if (e.prevKv) out.prevKv = kvFromWire(e.prevKv);
            this.queue.push(out);
          }
          if (newest > 0) this.resumeFrom = Math.max(this.resumeFrom ?? 0, newest + 1);
          this.settle();
          return;
        }
        case 'progress': {
          // Progress vouches that every event up to `revision` has been sent on this connection.
          if (created && typeof msg.revision === 'number') this.resumeFrom = Math.max(this.resumeFrom ?? 0, msg.revision + 1);
          return;
        }
        case 'compacted': {
          const compactRevision = Number(msg.compactRevision ?? 0);
          this.fail(new CompactedError(this.resumeFrom ?? compactRevision, compactRevision));
          return;
        }
        case 'error': {
          // A refused {"type":"auth"} leaves the connection on its old credential: nothing ends here.
          if ((msg as { frame?: unknown }).frame === 'auth') return;
          const e = msg.error ?? msg;
          const code = typeof e.code === 'string' ? e.code : ErrorCode.Internal;
          const message = typeof e.message === 'string' ? e.message : 'the server refused the watch';
          const err = errorFromWire(code, message, e.details as ErrorDetails | undefined);
          // A node that is shutting down, lost its backend, or lags behind the revision we resume
          // from (another node of a shared store): try again, elsewhere if possible, rather than give up.
          // A credential that ended while a newer token is at hand: reconnect with it.
          const refreshed = err.code === ErrorCode.Unauthenticated && this.transport.token !== undefined && this.transport.token !== this.socketToken;
          const retryable = err.code === ErrorCode.Unavailable || err.code === ErrorCode.FutureRevision || refreshed;
          if (retryable && this.everCreated) {
            lastError = message;
            socket.close(1000, 'retrying');
          } else this.fail(err);
          return;
        }
        default:
          return; // newer message types (e.g. keepalive answers) are not this stream's business
      }
    };
  }

  /** The socket went away (closed, errored or timed out); reconnect unless we are done. */
  private dropped(socket: SocketLike, reason: string): void {
    if (this.socket !== socket) return; // already handled, or replaced
    this.socket = undefined;
    clearTimeout(this.timer);
    socket.onclose = null;
    socket.onmessage = null;
    this.lost(reason);
  }

  private lost(reason: string): void {
    if (this.done) return;
    const ep = this.endpoint;
    if (ep !== undefined) this.transport.pool.markDown(ep);
    if (!this.everCreated) {
      if (ep !== undefined) this.initialTried.add(ep);
      // A new watch tries every endpoint once, at once, before it waits or gives up.
      if (this.initialTried.size < this.transport.endpoints.length) {
        void this.connect();
        return;
      }
      if (!this.opts.retryInitial) {
        const where = this.transport.endpoints.join(', ');
        this.fail(new UnavailableError(`cannot open a watch at ${where}: ${reason}`, { details: { endpoints: [...this.transport.endpoints] } }));
        return;
      }
      this.initialTried.clear();
    }
    const initialDelayMs = this.opts.reconnect?.initialDelayMs ?? 100;
    const maxDelayMs = this.opts.reconnect?.maxDelayMs ?? 5000;
    // Full jitter keeps many clients from reconnecting in lockstep after a node restarts.
    const delayMs = backoffDelay(this.attempt, { baseDelayMs: initialDelayMs, maxDelayMs });
    this.attempt++;
    this.opts.onStatus?.({ state: 'reconnecting', attempt: this.attempt, delayMs, reason, endpoint: ep?.url ?? '' });
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (!this.done) void this.connect();
    }, delayMs);
  }
}

