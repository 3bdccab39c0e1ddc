/**
 * One client connection: parses requests as they arrive, runs them in order, and writes the
 * replies in order with many replies per socket write (pipelining). Durable writes that read
 * nothing (a plain SET) are started without waiting for the previous one to commit, so a
 * pipeline of them shares one group commit; anything that reads waits for them first, so a
 * client always reads its own writes.
 */
import { Socket } from 'node:net';
import type { Principal } from '../../auth/index.js';
import type { ConnState, Ctx } from './context.js';
import { ReplyWriter, RespParser, writeReply, type Protocol, type Reply } from './protocol.js';

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
  /**
   * Runs one command. `startedAt` (a `performance.now()` reading) is when it started, when the
   * caller already has it: in a run of pipelined commands, the end of one is the start of the
   * next ({@link clock}), so timing each costs one clock read, not two.
   */
  execute(conn: Connection, argv: Buffer[], inflight: boolean, startedAt?: number): Outcome | Promise<Outcome>;
  /** The `performance.now()` reading taken when the last command ended. */
  readonly clock: number;
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
/** The reply of a command run under CLIENT REPLY OFF/SKIP: written as nothing. */
const DROPPED: Reply = { t: 'simple', v: '' };
/** Replaces a consumed request in the queue so its arguments can be collected early. */
const EMPTY: Queued = [];

let nextId = 1;

/**
 * The read buffer of every adopted connection: a read lands here and is parsed before the next
 * read of any socket (the parser copies out what it keeps), so one buffer serves them all.
 */
const readBuffer = Buffer.allocUnsafeSlow(64 * 1024);

/**
 * Re-wraps a socket accepted with `pauseOnConnect` so that its reads land in {@link readBuffer}
 * and go to `onRead(bytes)`: Node's `onread` option of `net.Socket`, which its server cannot set
 * on accepted sockets. A stream read costs an ArrayBuffer, a Buffer and a tick per read, and
 * those ArrayBuffers were half of each young-generation pause at -P 1. Returns undefined (the
 * caller keeps the socket as it is) when the socket has no handle to take over. The accepted
 * socket gives up its handle and is destroyed, so its server stops counting it: the listener
 * tracks its connections itself.
 */
function adoptSocket(accepted: Socket, onRead: (n: number) => void): Socket | undefined {
  const s = accepted as Socket & { _handle?: unknown };
  const handle = s._handle;
  if (handle === undefined || handle === null || accepted.destroyed) return undefined;
  let socket: Socket;
  try {
    socket = new Socket({
      handle,
      readable: true,
      writable: true,
      onread: { buffer: readBuffer, callback: (n: number) => void onRead(n) },
    } as ConstructorParameters<typeof Socket>[0] & { handle: unknown });
  } catch {
    return undefined;
  }
  s._handle = null;
  accepted.destroy();
  return socket;
}

/**
 * The one output buffer of the process: replies are encoded into it and written to their socket
 * at the end of the batch. It holds one connection's bytes at a time (another connection's
 * first reply flushes the previous owner's), so an idle connection holds no output buffer and
 * a batch costs one allocation and one socket write, not one per reply part.
 */
const shared: { w: ReplyWriter; owner: Connection | undefined } = { w: new ReplyWriter(), owner: undefined };

/**
 * Connections with replies taken from {@link shared} but not yet written: their socket writes
 * are made together once the event loop has run every callback of the current poll phase (a
 * `setImmediate`), as redis-server writes its replies in `beforeSleep` after reading every
 * ready client. A client woken by its reply then finds the others' replies ready too, instead
 * of being woken once per write while the server still reads the next request: at -P 1 with
 * 50 clients that wake-up per write was a large part of the kernel time of each request.
 */
const outbox: Connection[] = [];
let outboxScheduled = false;
/**
 * How many turns a connection's ready replies may wait while replies before the end of its
 * pipeline are still in flight (a command forwarded to another node, a durable write): written
 * together with those, a pipeline of 16 commands spread over three nodes costs the client one
 * socket write instead of one per node that answered, and a write on loopback costs more than
 * the command. One turn costs a waiting client at most one pass of the event loop.
 */
const HOLD_TURNS = 2;

function writeOutbox(): void {
  outboxScheduled = false;
  // A write may run a callback that queues more (never in practice); those wait for the next turn.
  const n = outbox.length;
  let held = 0;
  for (let i = 0; i < n; i++) {
    const c = outbox[i] as Connection;
    if (c.hold()) outbox[held++] = c;
    else c.writeOut();
  }
  outbox.copyWithin(held, n);
  outbox.length -= n - held;
  if (outbox.length > 0) {
    outboxScheduled = true;
    setImmediate(writeOutbox);
  }
}

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
  clusterAware = false;
  replicaReads = false;
  /** Commands of this connection forwarded to another node whose replies have not come yet. */
  forwarding = 0;
  /** Writes this connection made as primary of a replicated slot, with their acknowledgements (WAIT). */
  replicated: { acks: Promise<{ acked: number; wanted: number }>; done?: { acked: number; wanted: number } }[] = [];
  /** When the principal was last re-checked against the identity store (ms). */
  refreshedAt = 0;
  multi: Buffer[][] | undefined;
  multiError = false;
  /** A queued command mixed key kinds: EXEC refuses with this text. */
  multiAbort: string | undefined;
  watched = new Map<string, { kind: 'durable' | 'memory'; rev: number }>();
  watchLink: ConnState['watchLink'] = undefined;
  /** A WATCHed memory key changed since WATCH. */
  watchDirty = false;
  channels = new Set<string>();
  patterns = new Set<string>();
  lastCmd = 'NULL';
  blocked = false;
  lastActive = Date.now();
  /** CLIENT REPLY: `off` drops every reply, `skip` the next command's; pub/sub messages always go out. */
  replyMode: 'on' | 'off' | 'skip' = 'on';
  /** Pub/sub messages and confirmations raised while a command of this connection runs: written after its reply. */
  private pushes: Reply[] | undefined;
  /** The context of this connection's memory-namespace commands (the same for each: reused). */
  memoryCtx: Ctx | undefined;

  private parser: RespParser | undefined;
  private queue: Queued[] = [];
  /** Index of the next request in {@link queue} (a head index: shift() is O(n) on long pipelines). */
  private qhead = 0;
  private running = false;
  /** Replies not yet known, in order; encoded replies that follow one wait behind it. */
  private slots: (Reply | Promise<Reply>)[] = [];
  private pendingCount = 0;
  /** Turns the {@link outbox} has kept this connection's replies back ({@link hold}). */
  private heldTurns = 0;
  /** Replies in flight (durable commits, forwards, fsyncs). */
  get pending(): number {
    return this.pendingCount;
  }
  /** Replies waiting in the {@link outbox}: one Buffer, or several when flushed more than once in a turn. */
  private out: Buffer | Buffer[] | undefined;
  private closing = false;
  private dead = false;
  private softSince = 0;

  readonly socket: Socket;

  /**
   * `accepted` is the server's socket for the client. When `adopt` is set it was accepted paused
   * (`pauseOnConnect`) and the connection reads it through {@link adoptSocket}: into the one
   * shared read buffer, without a stream. Otherwise (TLS) it reads `data` events.
   */
  constructor(
    accepted: Socket,
    private readonly host: ConnectionHost,
    adopt = false,
  ) {
    const socket = (adopt ? adoptSocket(accepted, (n) => this.onRead(n)) : undefined) ?? accepted;
    this.socket = socket;
    this.addr = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? 0}`;
    this.laddr = `${socket.localAddress ?? '?'}:${socket.localPort ?? 0}`;
    socket.setNoDelay(true);
    if (socket === accepted) {
      socket.on('data', (chunk: Buffer) => this.onData(chunk, chunk.length));
      if (adopt) socket.resume();
    }
    socket.on('error', () => this.destroy());
    socket.on('close', () => this.destroy());
    socket.on('drain', () => {
      if (!this.running && this.qhead < this.queue.length) this.run();
      else if (!this.running && this.socket.isPaused() && !this.dead) this.socket.resume();
    });
  }

  /** `n` bytes arrived in the shared read buffer. */
  private onRead(n: number): void {
    this.onData(readBuffer, n);
  }

  /** Parses and runs the requests the first `n` bytes of `chunk` complete; `chunk` is not kept. */
  private onData(chunk: Buffer, n: number): void {
    if (this.dead || this.closing) return;
    this.parser ??= new RespParser();
    // Requests are parsed ahead of execution, so an AUTH pipelined in the same write as a large
    // request does not lift the limits for it (clients send AUTH and wait for +OK first).
    this.parser.unauthenticated = this.principal === undefined;
    if (this.qhead === this.queue.length) {
      this.queue.length = 0;
      this.qhead = 0;
    }
    const error = this.parser.feedInto(chunk, this.queue, n);
    if (error !== undefined) {
      this.queue.push({ [PROTOCOL_ERROR]: error });
      this.socket.pause();
    } else if (this.parser.buffered > this.host.queryBufferLimit) {
      // A request larger than the query buffer limit: drop the client, as Redis does.
      this.queue.push({ [PROTOCOL_ERROR]: 'Protocol error: request exceeds client-query-buffer-limit' });
      this.socket.pause();
    }
    // Kept while the connection lives: a drained parser holds no buffer (see RespParser.feed),
    // and making one per request cost an object and a 4 KiB buffer at -P 1.
    if (!this.running && this.qhead < this.queue.length) this.run();
  }

  /**
   * Runs the queued requests in order, synchronously while every command answers at once (memory
   * keys, reads: the common case costs no promise). From the first command whose reply must wait
   * (a durable commit, an async command, a WAIT for writes in flight), a protocol error, or a
   * client that stopped reading, {@link runAsync} takes over with that command's outcome.
   */
  private run(): void {
    this.running = true;
    let handedOver = false;
    let t = performance.now();
    try {
      while (this.qhead < this.queue.length && !this.dead && !this.closing) {
        const item = this.queue[this.qhead] as Queued;
        // Replies still in flight (pipelined durable writes), a protocol error and the output
        // limit are the asynchronous path's cases.
        if (this.slots.length > 0 || !Array.isArray(item) || this.pendingOutput > this.host.outputPauseBytes) break;
        this.queue[this.qhead++] = EMPTY;
        const mode = this.replyMode;
        const o = this.host.execute(this, item, false, t);
        t = this.host.clock;
        if (o instanceof Promise || o.kind !== 'reply') {
          handedOver = true;
          void this.runAsync({ item, o, mode });
          return;
        }
        this.answer(mode, o);
        this.drainPushes();
      }
      if (this.slots.length > 0 || (this.qhead < this.queue.length && !this.dead && !this.closing)) {
        handedOver = true;
        void this.runAsync(undefined);
        return;
      }
      this.finish();
    } finally {
      if (!handedOver) this.stopped();
    }
  }

  /**
   * The general loop of {@link run}: awaits what a command's reply waits for. `first` is the
   * outcome of a command {@link run} already executed, handled before the queue.
   */
  private async runAsync(first: { item: Buffer[]; o: Outcome | Promise<Outcome>; mode: Connection['replyMode'] } | undefined): Promise<void> {
    try {
      if (first !== undefined) await this.complete(first.item, first.o, first.mode);
      while (this.qhead < this.queue.length && !this.dead && !this.closing) {
        if (this.pendingOutput > this.host.outputPauseBytes) {
          // The client is not reading its replies: stop reading its requests until it does.
          this.flush();
          this.socket.pause();
          return;
        }
        const item = this.queue[this.qhead] as Queued;
        this.queue[this.qhead++] = EMPTY;
        if (!Array.isArray(item)) {
          if (this.slots.length > 0) await this.settle();
          // The text may quote a request byte (`expected '$', got 'x'`): written as that byte.
          this.reply({ t: 'error', v: `ERR ${item[PROTOCOL_ERROR]}`, latin1: true });
          this.closeAfterReply();
          break;
        }
        const mode = this.replyMode;
        await this.complete(item, this.host.execute(this, item, this.pendingCount > 0), mode);
      }
      if (this.slots.length > 0) await this.settle();
      this.finish();
    } finally {
      this.stopped();
      // Requests that arrived while the last replies were awaited: onData saw this loop running
      // and left them queued, so they run now (else they would wait for the client's next bytes).
      if (this.qhead < this.queue.length && !this.dead && !this.closing && !this.socket.isPaused()) this.run();
    }
  }

  /** Handles the outcome `o` of executing `item` (run with reply mode `mode`): waits, re-runs after a WAIT, queues the reply. */
  private async complete(item: Buffer[], o0: Outcome | Promise<Outcome>, mode: Connection['replyMode']): Promise<void> {
    let o = o0;
    if (o instanceof Promise) {
      this.flush();
      o = await o;
    }
    if (o.kind === 'wait') {
      await this.settle();
      o = this.host.execute(this, item, false);
      if (o instanceof Promise) {
        this.flush();
        o = await o;
      }
    }
    this.answer(mode, o);
    if (o.kind === 'pending' && !o.blind) await this.settle();
    this.drainPushes();
  }

  /** Queues the reply of an outcome; `mode` was the reply mode when its command started. */
  private answer(mode: Connection['replyMode'], o: Outcome): void {
    // CLIENT REPLY OFF/SKIP silence the command's reply (not CLIENT REPLY ON's own +OK).
    const drop = mode !== 'on' && this.replyMode !== 'on';
    if (mode === 'skip' && this.replyMode === 'skip') this.replyMode = 'on';
    if (o.kind === 'reply') this.reply(drop ? DROPPED : o.reply);
    else if (o.kind === 'pending') {
      this.pendingCount++;
      this.slots.push(drop ? o.promise.then(() => DROPPED) : o.promise);
    }
  }

  /** The end of a run with nothing left to wait for: writes the replies, then closes or reads on. */
  private finish(): void {
    if (this.qhead >= this.queue.length) {
      // Emptied in place: onData pushes the next requests into the same array.
      this.queue.length = 0;
      this.qhead = 0;
    }
    this.flush();
    if (this.closing) this.end();
    else if (this.socket.isPaused() && this.qhead >= this.queue.length && this.pendingOutput <= this.host.outputPauseBytes) this.socket.resume();
  }

  /** Marks the run over; pub/sub messages raised meanwhile go out now. */
  private stopped(): void {
    this.running = false;
    if (this.pushes !== undefined) {
      this.drainPushes();
      this.flush();
    }
  }

  /** Writes the pub/sub messages raised while the last command ran, after its reply (as Redis 7.2 does). */
  private drainPushes(): void {
    const p = this.pushes;
    if (p === undefined) return;
    this.pushes = undefined;
    for (const r of p) this.reply(r);
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
    if (this.dead || r === DROPPED) return;
    if (shared.owner !== this) {
      shared.owner?.flush();
      shared.owner = this;
    }
    writeReply(r, this.protocol, shared.w);
    if (shared.w.length > 64 * 1024) this.flush();
  }

  /** Hands the encoded replies to the {@link outbox}, written in one socket write at the end of the poll phase. */
  flush(): void {
    if (shared.owner !== this) return;
    shared.owner = undefined;
    if (shared.w.length === 0) return;
    const buf = shared.w.take();
    if (this.dead) return;
    const out = this.out;
    if (out === undefined) {
      this.out = buf;
      outbox.push(this);
      if (!outboxScheduled) {
        outboxScheduled = true;
        setImmediate(writeOutbox);
      }
    } else if (Array.isArray(out)) out.push(buf);
    else this.out = [out, buf];
  }

  /**
   * Whether the {@link outbox} should keep this connection's replies for another turn: replies
   * after them are in flight, and they waited fewer than {@link HOLD_TURNS} turns.
   */
  hold(): boolean {
    if (this.pendingCount > 0 && this.heldTurns < HOLD_TURNS && !this.dead && !this.closing) {
      this.heldTurns++;
      return true;
    }
    return false;
  }

  /** Writes the replies waiting in the {@link outbox} (called by it, and before the socket ends). */
  writeOut(): void {
    const out = this.out;
    this.heldTurns = 0;
    if (out === undefined) return;
    this.out = undefined;
    if (this.dead) return;
    if (Array.isArray(out)) {
      this.socket.cork();
      for (const b of out) this.socket.write(b);
      this.socket.uncork();
    } else this.socket.write(out);
  }

  /** Bytes of replies not yet read by the client: the socket's buffer and what waits in the outbox. */
  private get pendingOutput(): number {
    const out = this.out;
    const held = out === undefined ? 0 : Array.isArray(out) ? out.reduce((n, b) => n + b.length, 0) : out.length;
    return this.socket.writableLength + held;
  }

  /** Sends a pub/sub message or a confirmation; applies the pub/sub output-buffer limit. */
  push(r: Reply): void {
    if (this.dead) return;
    if (this.running) {
      (this.pushes ??= []).push(r);
      return;
    }
    this.encode(r);
    this.flush();
    const lim = this.host.pubsubLimit;
    const pending = this.pendingOutput;
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
    this.qhead = 0;
  }

  private end(): void {
    if (this.dead) return;
    // Send the last replies and a FIN, then keep reading (and dropping) what the client still
    // sends until it closes too, for at most 2 s: closing a socket with unread input makes the
    // kernel reset the connection, and the reset can destroy the replies still on their way (a
    // client that pipelined past a protocol error would not see the error). A client that keeps
    // sending sees the connection reset after the 2 s instead of writing into it forever.
    const sock = this.socket;
    this.writeOut();
    sock.end();
    if (sock.isPaused()) sock.resume();
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
    this.qhead = 0;
    if (shared.owner === this) {
      shared.w.take();
      shared.owner = undefined;
    }
    this.out = undefined;
    if (hard && !this.socket.destroyed) this.socket.destroy();
    this.host.closed(this);
  }

  /** True once the connection is closed or closing. */
  get isClosed(): boolean {
    return this.dead;
  }
}
