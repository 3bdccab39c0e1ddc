/**
 * One client connection: parses requests as they arrive, runs them in order, and writes the
 * replies in order with many replies per socket write (pipelining). Durable writes that read
 * nothing (a plain SET) are started without waiting for the previous one to commit, so a
 * pipeline of them shares one group commit; anything that reads waits for them first, so a
 * client always reads its own writes.
 */
import type { Socket } from 'node:net';
import type { Principal } from '../../auth/index.js';
import type { ConnState } from './context.js';
import { RespParser, encodeReply, type Protocol, type Reply } from './protocol.js';

/** What {@link ConnectionHost.execute} decided for one command. */
export type Outcome =
  | { kind: 'reply'; reply: Reply }
  /** The reply comes once a durable write commits. `blind`: it read nothing, so later commands may start meanwhile. */
  | { kind: 'pending'; promise: Promise<Reply>; blind: boolean }
  /** The command must wait for this connection's writes in flight, then run again. */
  | { kind: 'wait' }
  | { kind: 'none' };

/** The server side of a connection. */
export interface ConnectionHost {
  execute(conn: Connection, argv: Buffer[], inflight: boolean): Outcome | Promise<Outcome>;
  closed(conn: Connection): void;
  /** Output bytes above which a connection stops reading requests until the client reads replies. */
  readonly outputPauseBytes: number;
  /** Pub/sub output limit: hard bytes (disconnect at once), soft bytes held for softSeconds. */
  readonly pubsubLimit: { hard: number; soft: number; softSeconds: number };
  /** Most bytes of an incomplete request held for one client (client-query-buffer-limit). */
  readonly queryBufferLimit: number;
}

const PROTOCOL_ERROR = Symbol('protocol error');
type Queued = Buffer[] | { [PROTOCOL_ERROR]: string };

let nextId = 1;

/** A client connection and its state (see {@link ConnState}). */
export class Connection implements ConnState {
  readonly id = nextId++;
  readonly addr: string;
  readonly laddr: string;
  readonly createdAt = Date.now();
  protocol: Protocol = 2;
  name = '';
  libName = '';
  libVer = '';
  principal: Principal | undefined;
  /** When the principal was last re-checked against the identity store (ms). */
  refreshedAt = 0;
  multi: Buffer[][] | undefined;
  multiError = false;
  /** A queued command mixed key kinds: EXEC refuses with this text. */
  multiAbort: string | undefined;
  watched = new Map<string, { kind: 'durable' | 'memory'; rev: number }>();
  /** A WATCHed memory key changed since WATCH. */
  watchDirty = false;
  channels = new Set<string>();
  patterns = new Set<string>();
  lastCmd = 'NULL';
  lastActive = Date.now();

  private parser: RespParser | undefined;
  private queue: Queued[] = [];
  private running = false;
  private out: Buffer[] = [];
  private outBytes = 0;
  /** Replies not yet known, in order; encoded replies that follow one wait behind it. */
  private slots: (Reply | Promise<Reply>)[] = [];
  private pendingCount = 0;
  private closing = false;
  private dead = false;
  private softSince = 0;

  constructor(
    readonly socket: Socket,
    private readonly host: ConnectionHost,
  ) {
    this.addr = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? 0}`;
    this.laddr = `${socket.localAddress ?? '?'}:${socket.localPort ?? 0}`;
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', () => this.destroy());
    socket.on('close', () => this.destroy());
    socket.on('drain', () => {
      if (!this.running && this.queue.length > 0) void this.run();
      else if (!this.running && this.socket.isPaused() && !this.dead) this.socket.resume();
    });
  }

  private onData(chunk: Buffer): void {
    if (this.dead || this.closing) return;
    this.parser ??= new RespParser();
    // Requests are parsed ahead of execution, so an AUTH pipelined in the same write as a large
    // request does not lift the limits for it (clients send AUTH and wait for +OK first).
    this.parser.unauthenticated = this.principal === undefined;
    const r = this.parser.feed(chunk);
    for (const c of r.commands) this.queue.push(c);
    if (r.error !== undefined) {
      this.queue.push({ [PROTOCOL_ERROR]: r.error });
      this.socket.pause();
    } else if (this.parser.buffered > this.host.queryBufferLimit) {
      // A request larger than the query buffer limit: drop the client, as Redis does.
      this.queue.push({ [PROTOCOL_ERROR]: 'Protocol error: request exceeds client-query-buffer-limit' });
      this.socket.pause();
    } else if (this.parser.idle && this.queue.length === 0) {
      this.parser = undefined; // idle connections hold no parser buffers
    }
    if (!this.running && this.queue.length > 0) void this.run();
  }

  private async run(): Promise<void> {
    this.running = true;
    try {
      while (this.queue.length > 0 && !this.dead && !this.closing) {
        if (this.socket.writableLength > this.host.outputPauseBytes) {
          // The client is not reading its replies: stop reading its requests until it does.
          this.flush();
          this.socket.pause();
          return;
        }
        const item = this.queue.shift() as Queued;
        if (!Array.isArray(item)) {
          await this.settle();
          this.reply({ t: 'error', v: `ERR ${item[PROTOCOL_ERROR]}` });
          this.closeAfterReply();
          break;
        }
        let o = this.host.execute(this, item, this.pendingCount > 0);
        if (o instanceof Promise) o = await o;
        if (o.kind === 'wait') {
          await this.settle();
          o = this.host.execute(this, item, false);
          if (o instanceof Promise) o = await o;
        }
        if (o.kind === 'reply') this.reply(o.reply);
        else if (o.kind === 'pending') {
          this.pendingCount++;
          this.slots.push(o.promise);
          if (!o.blind) await this.settle();
        }
      }
      await this.settle();
      this.flush();
      if (this.closing) this.end();
      else if (this.socket.isPaused() && this.queue.length === 0 && this.socket.writableLength <= this.host.outputPauseBytes) this.socket.resume();
    } finally {
      this.running = false;
    }
  }

  /** Waits for every reply in flight, writing them in order. */
  private async settle(): Promise<void> {
    if (this.slots.length === 0) return;
    this.flush();
    while (this.slots.length > 0) {
      const s = this.slots.shift() as Reply | Promise<Reply>;
      if (s instanceof Promise) {
        const r = await s;
        this.pendingCount--;
        this.encode(r);
      } else this.encode(s);
    }
  }

  /** Queues a reply behind any pending ones. */
  reply(r: Reply): void {
    if (this.slots.length > 0) this.slots.push(r);
    else this.encode(r);
  }

  private encode(r: Reply): void {
    if (this.dead) return;
    const before = this.out.length;
    encodeReply(r, this.protocol, this.out);
    for (let i = before; i < this.out.length; i++) this.outBytes += (this.out[i] as Buffer).length;
    if (this.outBytes > 64 * 1024) this.flush();
  }

  /** Writes the encoded replies in one socket write. */
  flush(): void {
    if (this.out.length === 0 || this.dead) return;
    const buf = this.out.length === 1 ? (this.out[0] as Buffer) : Buffer.concat(this.out, this.outBytes);
    this.out = [];
    this.outBytes = 0;
    this.socket.write(buf);
  }

  /** Sends a pub/sub message or a confirmation; applies the pub/sub output-buffer limit. */
  push(r: Reply): void {
    if (this.dead) return;
    if (this.running) {
      this.reply(r);
      return;
    }
    this.encode(r);
    this.flush();
    const lim = this.host.pubsubLimit;
    const pending = this.socket.writableLength;
    if (lim.hard > 0 && pending > lim.hard) {
      this.kill();
      return;
    }
    if (lim.soft > 0 && pending > lim.soft) {
      if (this.softSince === 0) this.softSince = Date.now();
      else if (Date.now() - this.softSince > lim.softSeconds * 1000) this.kill();
    } else this.softSince = 0;
  }

  closeAfterReply(): void {
    this.closing = true;
    this.queue = [];
  }

  private end(): void {
    if (this.dead) return;
    // Close fully once the last reply is out (as Redis does): a client still sending then sees
    // the connection reset instead of writing into a half-closed socket forever.
    const sock = this.socket;
    sock.end(() => sock.destroy());
    setTimeout(() => sock.destroy(), 2000).unref();
    this.destroy(false);
  }

  kill(): void {
    if (this.dead) return;
    this.socket.destroy();
    this.destroy();
  }

  private destroy(hard = true): void {
    if (this.dead) return;
    this.dead = true;
    this.queue = [];
    this.out = [];
    if (hard && !this.socket.destroyed) this.socket.destroy();
    this.host.closed(this);
  }

  /** True once the connection is closed or closing. */
  get isClosed(): boolean {
    return this.dead;
  }
}
