/**
 * A WebSocket connection as a watch transport: strict JSON text frames in, text frames out,
 * congestion and drain for the hub, error frames, and heartbeats that end half-open connections.
 */
import type { RawData, WebSocket } from 'ws';
import { BeaconError, ErrorCode, InvalidArgumentError } from '../errors.js';
import type { WatchHubOptions } from './hub.js';

/** The subset of a logger the channel uses (pino's shape). */
interface WarnLogger {
  warn(obj: object, msg: string): void;
}

/** How often a congested channel checks whether its send buffer has drained, in ms. */
const DRAIN_POLL_MS = 5;
/** `ws`'s readyState for an open socket. */
const OPEN = 1;

/**
 * The WebSocket frame (RFC 6455 §5.2: FIN, text opcode, unmasked as a server's frames are) of the
 * text last sent through {@link WsChannel.send}. A fan-out sends the same text to thousands of
 * sockets in a row (one watch per socket: the same watch id, the same events), so the frame is
 * encoded once and the same bytes are written to every socket. One entry, compared by content:
 * no memory grows with the number of watches.
 */
let lastText: string | undefined;
let lastFrame: Buffer = Buffer.alloc(0);

/** `text` as one unmasked, unfragmented WebSocket text frame. */
export function textFrame(text: string): Buffer {
  if (text === lastText) return lastFrame;
  const len = Buffer.byteLength(text);
  const head = len < 126 ? 2 : len < 65536 ? 4 : 10;
  const frame = Buffer.allocUnsafe(head + len);
  frame[0] = 0x81;
  if (head === 2) frame[1] = len;
  else if (head === 4) {
    frame[1] = 126;
    frame.writeUInt16BE(len, 2);
  } else {
    frame[1] = 127;
    frame.writeBigUInt64BE(BigInt(len), 2);
  }
  frame.write(text, head, 'utf8');
  lastText = text;
  lastFrame = frame;
  return frame;
}

/** What the channel reads of `ws`'s internals to write a prepared frame straight to the socket. */
interface WsInternals {
  _socket?: { cork(): void; uncork(): void; write(b: Buffer): boolean };
  _sender?: { _state?: number };
}

/**
 * One WebSocket carrying JSON frames. Frames that are binary, not JSON or not a JSON object are
 * answered with an `{"type":"error","error":{"code":"invalid_argument",…}}` frame and the socket
 * stays open. Sends are never awaited: `congested()` tells the hub when the send buffer is over
 * `congestionBytes` and `onDrain` when it is down to half of it. Replies to the peer's frames
 * are bounded the same way: while the send buffer is over `congestionBytes` the channel stops
 * reading frames (TCP back-pressure then slows the peer) and resumes once it has drained to half,
 * so a peer that sends requests but never reads the answers cannot grow the server's memory.
 * Every `pingIntervalMs` the channel pings; a peer silent (no pong, no frame) for
 * `pongTimeoutMs` is terminated, which runs the `onClose` handlers and so releases its watches.
 * While reading is paused its pongs cannot be seen, so then the peer counts as alive as long as
 * the send buffer keeps shrinking (it is reading); one that reads nothing for `pongTimeoutMs` is
 * terminated as before.
 */
export class WsChannel {
  private corked = false;
  private drainWaiters: (() => void)[] = [];
  private drainTimer: NodeJS.Timeout | undefined;
  private readonly heartbeat: NodeJS.Timeout;
  private lastSeen = Date.now();
  /** True while reading frames is paused because the send buffer is congested. */
  private readPaused = false;
  /** The send buffer's size at the previous heartbeat (to see a paused peer still reading). */
  private bufferedAtBeat = 0;
  private readonly closeHandlers: (() => void)[] = [];
  private _closed = false;

  /**
   * @param socket an open `ws` socket (from a `{ websocket: true }` route).
   * @param options the hub's tunables at connection time (congestion, ping, pong timeout).
   * @param logger where unexpected handler failures are logged (never sent to the peer).
   */
  constructor(
    readonly socket: WebSocket,
    private readonly options: Readonly<WatchHubOptions>,
    private readonly logger?: WarnLogger,
  ) {
    socket.on('pong', () => {
      this.lastSeen = Date.now();
    });
    socket.on('close', () => this.onSocketClose());
    this.heartbeat = setInterval(() => {
      const buffered = socket.bufferedAmount;
      // A paused reader cannot see pongs; a shrinking send buffer shows the peer is alive.
      if (this.readPaused && buffered < this.bufferedAtBeat) this.lastSeen = Date.now();
      this.bufferedAtBeat = buffered;
      if (Date.now() - this.lastSeen > this.options.pongTimeoutMs) {
        socket.terminate();
        return;
      }
      if (socket.readyState === OPEN) socket.ping();
    }, this.options.pingIntervalMs);
    this.heartbeat.unref();
  }

  /** True once the socket has closed. */
  get closed(): boolean {
    return this._closed;
  }

  /**
   * Calls `handler` with each JSON object frame the peer sends. Malformed frames get an error
   * frame instead; an error thrown by `handler` (or a rejected promise) is sent as an error frame
   * with `context` fields such as the watch id.
   */
  onFrame(handler: (frame: Record<string, unknown>) => void): void {
    this.socket.on('message', (data: RawData, isBinary: boolean) => {
      this.lastSeen = Date.now();
      this.handleFrame(handler, data, isBinary);
      this.pauseIfCongested();
    });
  }

  private handleFrame(handler: (frame: Record<string, unknown>) => void, data: RawData, isBinary: boolean): void {
    if (isBinary) {
      this.sendError(new InvalidArgumentError('binary frames are not supported; send JSON text frames'));
      return;
    }
    const text = Buffer.isBuffer(data) ? data.toString('utf8') : Array.isArray(data) ? Buffer.concat(data).toString('utf8') : Buffer.from(data).toString('utf8');
    let frame: unknown;
    try {
      frame = JSON.parse(text);
    } catch (err) {
      this.sendError(new InvalidArgumentError(`frame is not valid JSON: ${(err as Error).message}`));
      return;
    }
    if (frame === null || typeof frame !== 'object' || Array.isArray(frame)) {
      this.sendError(new InvalidArgumentError('a frame must be a JSON object with a "type" field'));
      return;
    }
    try {
      handler(frame as Record<string, unknown>);
    } catch (err) {
      this.sendError(err);
    }
  }

  /**
   * Stops reading frames while the send buffer is congested and resumes once it has drained to
   * half (frames `ws` has already received are still answered: at most one read's worth).
   */
  private pauseIfCongested(): void {
    if (this.readPaused || this._closed || this.socket.readyState !== OPEN || !this.congested()) return;
    this.readPaused = true;
    this.bufferedAtBeat = this.socket.bufferedAmount;
    this.socket.pause();
    this.onDrain(() => {
      this.readPaused = false;
      if (this._closed) return;
      // The paused time was not silence: count from now.
      this.lastSeen = Date.now();
      this.socket.resume();
    });
  }

  /** Runs `handler` once when the socket closes (for any reason). */
  onClose(handler: () => void): void {
    if (this._closed) handler();
    else this.closeHandlers.push(handler);
  }

  /** Sends one text frame; a no-op once the socket is closing. */
  send(text: string): void {
    if (this.socket.readyState !== OPEN) return;
    const ws = this.socket as unknown as WsInternals;
    const raw = ws._socket;
    // Frames sent in one turn of the event loop (a fan-out slice sends one per watch on this
    // socket) leave in one write: cork the TCP socket until the turn's synchronous work is done.
    if (!this.corked && raw !== undefined) {
      this.corked = true;
      raw.cork();
      process.nextTick(() => {
        this.corked = false;
        raw.uncork();
      });
    }
    // With no extension negotiated (no compression) and nothing queued in ws's sender (its state
    // 0: it writes synchronously), a prepared frame written to the socket lands in order with
    // ws's own frames; it saves encoding the same text and framing it once per socket.
    if (raw !== undefined && ws._sender?._state === 0 && this.socket.extensions === '') raw.write(textFrame(text));
    else this.socket.send(text);
  }

  /** Sends `value` as a JSON text frame. */
  sendJson(value: unknown): void {
    this.send(JSON.stringify(value));
  }

  /**
   * Sends `{"type":"error", …context, "error":{"code","message","details"?}}`. A BeaconError keeps
   * its code and message; anything else becomes `internal` and is logged, not sent.
   */
  sendError(err: unknown, context: Record<string, unknown> = {}): void {
    let body: { code: string; message: string; details?: Record<string, unknown> };
    if (err instanceof BeaconError) {
      body = { code: err.code, message: err.message };
      if (err.details !== undefined) body.details = err.details;
    } else {
      this.logger?.warn({ err }, 'websocket frame handler failed');
      body = { code: ErrorCode.Internal, message: 'internal error' };
    }
    this.sendJson({ type: 'error', ...context, error: body });
  }

  /** True while more than `congestionBytes` wait in the send buffer. */
  congested(): boolean {
    return this.socket.bufferedAmount > this.options.congestionBytes;
  }

  /** Calls `cb` once the send buffer is at most half of `congestionBytes`, or the socket has closed. */
  onDrain(cb: () => void): void {
    if (this._closed) {
      queueMicrotask(cb);
      return;
    }
    this.drainWaiters.push(cb);
    // ws has no drain event of its own; a short poll is cheap and only runs while congested.
    this.drainTimer ??= setInterval(() => {
      if (this._closed || this.socket.bufferedAmount <= this.options.congestionBytes / 2) this.flushDrain();
    }, DRAIN_POLL_MS);
  }

  /** Closes the socket with a WebSocket close code (1000 normal, 1001 going away). */
  close(code = 1000, reason = ''): void {
    if (this.socket.readyState === OPEN) this.socket.close(code, reason);
  }

  private flushDrain(): void {
    if (this.drainTimer) clearInterval(this.drainTimer);
    this.drainTimer = undefined;
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const cb of waiters) cb();
  }

  private onSocketClose(): void {
    if (this._closed) return;
    this._closed = true;
    clearInterval(this.heartbeat);
    this.flushDrain();
    const handlers = this.closeHandlers.splice(0);
    for (const h of handlers) {
      try {
        h();
      } catch (err) {
        this.logger?.warn({ err }, 'websocket close handler failed');
      }
    }
  }
}
