/**
 * The client side of forwarding: a pipelined RESP connection to a peer node that relays the
 * owner's raw reply bytes unchanged, a pool of them, and the framing of one reply.
 */
import { connect, isIP, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { encodeCommand } from '../../cache/index.js';
import { UnavailableError } from '../../errors.js';

const CR = 0x0d;
const LF = 0x0a;
const MINUS = 0x2d;
const ZERO = 0x30;
const NINE = 0x39;
/** Most digits of a length or count: beyond 15 a JavaScript number may no longer be exact. */
const MAX_LENGTH_DIGITS = 15;

function protocolError(what: string, at: number): Error {
  return new Error(`Protocol error: ${what} at offset ${at}`);
}

/**
 * The offset just past the one complete RESP2/RESP3 reply that begins at `start` of `buf`, or
 * -1 when `buf` does not hold all of it yet (split anywhere, inside `\r\n` included).
 *
 * Knows every type of the RESP3 spec (github.com/redis/redis-specification): `+ - : $ *` and
 * `_ , # ( ! = % ~ | >`, with `$-1` and `*-1` nulls. An attribute (`|`) is part of the reply
 * that follows it. Aggregates nest to any depth: one counter of the values still to read stands
 * in for recursion, so no nesting can overflow the stack. Lengths are read from the bytes, with
 * no string made per element. Streamed (`?`) aggregates, which Redis never sends, are refused.
 *
 * @param buf bytes received; only `buf[start..buf.length)` is read.
 * @param start offset of the reply's type byte, in bytes.
 * @returns offset in bytes just past the reply, or -1 when it is incomplete.
 * @throws Error with a message starting `Protocol error:` on an unknown type byte, a bad length
 *   or count, a bulk payload not followed by `\r\n`, or a malformed `_`, `#` or `:` line.
 * @example
 * replyEnd(Buffer.from('$3\r\nbar\r\n+OK\r\n'), 0); // 9
 * replyEnd(Buffer.from('*2\r\n:1\r\n'), 0);          // -1
 */
export function replyEnd(buf: Buffer, start: number): number {
  const len = buf.length;
  let pos = start;
  // Values still to read, at every level of nesting together.
  let remaining = 1;
  while (remaining > 0) {
    if (pos >= len) return -1;
    const type = buf[pos] as number;
    remaining--;
    switch (type) {
      case 0x2b: // + simple string
      case 0x2d: // - error
      case 0x2c: // , double
      case 0x28: { // ( big number
        const cr = buf.indexOf(CR, pos + 1);
        if (cr < 0 || cr + 1 >= len) return -1;
        if (buf[cr + 1] !== LF) throw protocolError('expected \\n after \\r', cr + 1);
        pos = cr + 2;
        break;
      }
      case 0x3a: { // : integer
        let i = pos + 1;
        if (buf[i] === MINUS || buf[i] === 0x2b) i++;
        const first = i;
        while (i < len) {
          const c = buf[i] as number;
          if (c < ZERO || c > NINE) break;
          i++;
        }
        if (i >= len) return -1;
        if (buf[i] !== CR || i === first) throw protocolError('bad integer', pos);
        if (i + 1 >= len) return -1;
        if (buf[i + 1] !== LF) throw protocolError('expected \\n after \\r', i + 1);
        pos = i + 2;
        break;
      }
      case 0x5f: // _ null
        if (pos + 2 >= len) {
          if (pos + 1 < len && buf[pos + 1] !== CR) throw protocolError('bad null', pos);
          return -1;
        }
        if (buf[pos + 1] !== CR || buf[pos + 2] !== LF) throw protocolError('bad null', pos);
        pos += 3;
        break;
      case 0x23: { // # boolean
        const v = buf[pos + 1];
        if (v !== undefined && v !== 0x74 && v !== 0x66) throw protocolError('bad boolean', pos);
        if (pos + 3 >= len) return -1;
        if (buf[pos + 2] !== CR || buf[pos + 3] !== LF) throw protocolError('bad boolean', pos);
        pos += 4;
        break;
      }
      case 0x24: // $ bulk string
      case 0x21: // ! blob error
      case 0x3d: // = verbatim string
      case 0x2a: // * array
      case 0x25: // % map
      case 0x7e: // ~ set
      case 0x7c: // | attribute
      case 0x3e: { // > push
        // The length line: an optional `-` (only in `-1`), 1–15 digits, `\r\n`.
        let i = pos + 1;
        const negative = buf[i] === MINUS;
        if (negative) i++;
        const first = i;
        let n = 0;
        while (i < len) {
          const c = buf[i] as number;
          if (c < ZERO || c > NINE) break;
          n = n * 10 + (c - ZERO);
          i++;
        }
        if (i >= len) {
          if (i - first > MAX_LENGTH_DIGITS) throw protocolError('bad length', pos);
          return -1;
        }
        if (buf[i] !== CR || i === first || i - first > MAX_LENGTH_DIGITS) throw protocolError('bad length', pos);
        if (negative && !(n === 1 && (type === 0x24 || type === 0x2a))) throw protocolError('bad length', pos);
        if (i + 1 >= len) return -1;
        if (buf[i + 1] !== LF) throw protocolError('expected \\n after \\r', i + 1);
        const body = i + 2;
        if (negative) {
          pos = body; // `$-1` or `*-1`: a null, no body
          break;
        }
        if (type === 0x24 || type === 0x21 || type === 0x3d) {
          if (type === 0x3d && (n < 4 || (body + 3 < len && buf[body + 3] !== 0x3a))) throw protocolError('bad verbatim string', pos);
          const end = body + n;
          if (end < len && buf[end] !== CR) throw protocolError('bulk payload not followed by \\r\\n', end);
          if (end + 1 >= len) return -1;
          if (buf[end + 1] !== LF) throw protocolError('bulk payload not followed by \\r\\n', end + 1);
          pos = end + 2;
        } else {
          // An attribute's pairs come before the value it annotates, which is still to read.
          remaining += type === 0x25 ? 2 * n : type === 0x7c ? 2 * n + 1 : n;
          pos = body;
        }
        break;
      }
      default:
        throw protocolError(`unknown reply type byte 0x${type.toString(16).padStart(2, '0')}`, pos);
    }
  }
  return pos;
}

/** Where a peer is and how to talk to it: the options of {@link PeerLink}. */
export interface PeerLinkOptions {
  /** Host name or address of the peer's RESP listener. */
  host: string;
  /** TCP port of the peer's RESP listener. */
  port: number;
  /** RESP version spoken on the link; 3 sends `HELLO 3` first, and replies come in RESP3. */
  protocol: 2 | 3;
  /** Sent as `CLIENT SETNAME` on every connect, so the peer's `CLIENT LIST` shows who forwards. */
  name?: string;
  /**
   * Called on every connect; a result is sent as `AUTH` (RESP2) or `HELLO 3 AUTH` (RESP3), the
   * user defaulting to `default`; `undefined` sends none. A rejection fails the queued commands.
   */
  credentials?: () => Promise<{ user?: string; pass: string } | undefined>;
  /**
   * One more command sent on every connect, after `AUTH` and `CLIENT SETNAME` (the cache cluster
   * sends `BEACON.PEER <cluster id> <node id>`); an error reply fails the link as a refused `AUTH` does.
   */
  hello?: () => readonly string[];
  /** Longest wait for one reply, in milliseconds, counted from its send (default 5000). */
  timeoutMs?: number;
  /** Longest wait for the TCP connection, in milliseconds (default 2000). */
  connectTimeoutMs?: number;
  /**
   * Speak TLS to a peer whose listener is TLS only (`rediss://`): its certificate must chain to
   * one of `ca` (PEM) and name `host` (DNS name or IP address). A failed check fails the link.
   */
  tls?: { ca: (string | Buffer)[] };
  /**
   * One connection only: once it breaks, later sends reject instead of connecting again, for a
   * link that holds state on the peer's connection (a forwarded `WATCH`), which a new
   * connection would silently lose.
   */
  single?: boolean;
}

/** Default {@link PeerLinkOptions.timeoutMs}, in milliseconds. */
export const PEER_TIMEOUT_MS = 5000;
/** Default {@link PeerLinkOptions.connectTimeoutMs}, in milliseconds. */
export const PEER_CONNECT_TIMEOUT_MS = 2000;

/** One command waiting for its reply. */
interface Waiter {
  /** `Date.now()` in milliseconds after which the reply is late. */
  deadline: number;
  /** Handshake commands are answered here, not to a caller; they carry their name for errors. */
  handshake: string | undefined;
  resolve: (reply: Buffer) => void;
  reject: (err: Error) => void;
}

const EMPTY = Buffer.alloc(0);
const ignore = (): void => undefined;
/** Smallest working buffer for a partial reply, in bytes. */
const MIN_INPUT = 16 * 1024;

/** The text of an error reply (`-…` or `!…`), or undefined when `reply` is not one. */
function errorText(reply: Buffer): string | undefined {
  if (reply[0] === 0x2d) return reply.toString('utf8', 1, reply.length - 2);
  if (reply[0] === 0x21) return reply.toString('utf8', reply.indexOf(CR) + 2, reply.length - 2);
  return undefined;
}

/**
 * One TCP connection of a {@link PeerLink}: its socket, the commands written and not answered
 * (FIFO), and the bytes of a reply not complete yet. It is never reused once it fails.
 */
class Connection {
  readonly socket: Socket;
  /** Commands in the order their replies will come; `[head, length)` are waiting. */
  private queue: Waiter[] = [];
  private head = 0;
  /** Encoded commands not written yet (flushed together on the next tick). */
  private out: Buffer[] = [];
  private flushScheduled = false;
  /** True until the handshake is answered (credentials can be asynchronous): no command is written before. */
  private preparing = true;
  /** Handshake commands written and not answered yet. */
  private handshakeLeft = 0;
  /** Working buffer for a partial reply: bytes `[inPos, inLen)` are unconsumed. */
  private inBuf: Buffer = EMPTY;
  private inPos = 0;
  private inLen = 0;
  private timer: NodeJS.Timeout | undefined;
  private connectTimer: NodeJS.Timeout | undefined;
  dead = false;
  /** Commands of callers waiting for replies (handshake commands not counted). */
  pending = 0;

  constructor(
    private readonly opts: Required<Pick<PeerLinkOptions, 'host' | 'port' | 'protocol' | 'timeoutMs' | 'connectTimeoutMs'>> & PeerLinkOptions,
    private readonly onDead: (conn: Connection) => void,
  ) {
    const { host, port } = opts;
    this.socket =
      opts.tls === undefined ? connect({ host, port }) : tlsConnect({ host, port, ca: opts.tls.ca, ...(isIP(host) === 0 ? { servername: host } : {}) });
    this.socket.setNoDelay(true);
    this.connectTimer = setTimeout(() => {
      this.fail(new UnavailableError(`peer ${this.peer}: connect timed out after ${opts.connectTimeoutMs} ms`));
    }, opts.connectTimeoutMs);
    this.connectTimer.unref();
    this.socket.once(opts.tls === undefined ? 'connect' : 'secureConnect', () => {
      clearTimeout(this.connectTimer);
      this.connectTimer = undefined;
    });
    this.socket.on('data', (chunk: Buffer) => this.onData(chunk));
    this.socket.on('error', (err: Error) => {
      this.fail(new UnavailableError(`peer ${this.peer}: ${err.message}`, { cause: err }));
    });
    this.socket.on('close', () => this.fail(new UnavailableError(`peer ${this.peer}: connection closed`)));
    this.prepare().catch((err: unknown) => {
      const msg = err instanceof Error ? err.message : String(err);
      this.fail(new UnavailableError(`peer ${this.peer}: credentials failed: ${msg}`, { cause: err }));
    });
  }

  get peer(): string {
    return `${this.opts.host}:${this.opts.port}`;
  }

  /** Queues the handshake before every command already queued, then lets writes go. */
  private async prepare(): Promise<void> {
    const { protocol, name, credentials } = this.opts;
    const cred = credentials === undefined ? undefined : await credentials();
    if (this.dead) return;
    const commands: [string, Buffer[]][] = [];
    if (protocol === 3) {
      const argv = ['HELLO', '3'];
      if (cred !== undefined) argv.push('AUTH', cred.user ?? 'default', cred.pass);
      commands.push(['HELLO', argv.map((a) => Buffer.from(a))]);
    } else if (cred !== undefined) {
      const argv = cred.user === undefined ? ['AUTH', cred.pass] : ['AUTH', cred.user, cred.pass];
      commands.push(['AUTH', argv.map((a) => Buffer.from(a))]);
    }
    if (name !== undefined) commands.push(['CLIENT SETNAME', ['CLIENT', 'SETNAME', name].map((a) => Buffer.from(a))]);
    const hello = this.opts.hello?.();
    if (hello !== undefined && hello.length > 0) commands.push([hello[0] as string, hello.map((a) => Buffer.from(a))]);
    const deadline = Date.now() + this.opts.timeoutMs;
    const waiters: Waiter[] = commands.map(([label]) => ({
      deadline,
      handshake: label,
      resolve: () => undefined,
      reject: () => undefined,
    }));
    // Nothing was written yet, so no reply can have been matched: the front of the queue is free.
    this.queue.splice(this.head, 0, ...waiters);
    if (commands.length === 0) {
      this.preparing = false;
      this.scheduleFlush();
      return;
    }
    // The handshake goes alone: the commands queued behind it are written once it is answered,
    // as the peer parses a request before it runs the AUTH ahead of it (and refuses a long one
    // from a connection not authenticated yet).
    this.handshakeLeft = commands.length;
    this.socket.cork();
    for (const [, argv] of commands) this.socket.write(encodeCommand(argv));
    this.socket.uncork();
    this.armTimer();
  }

  /** Queues one encoded command; its reply settles `w`. */
  enqueue(bytes: Buffer, w: Waiter): void {
    this.queue.push(w);
    this.pending++;
    this.out.push(bytes);
    this.armTimer();
    this.scheduleFlush();
  }

  private scheduleFlush(): void {
    if (this.flushScheduled || this.preparing || this.out.length === 0) return;
    this.flushScheduled = true;
    // At the end of the poll phase: the commands of every client read in this phase go in one write.
    setImmediate(() => this.flush());
  }

  /** Writes every queued command at once: one `writev` for all the sends of a tick. */
  private flush(): void {
    this.flushScheduled = false;
    if (this.dead || this.out.length === 0) return;
    const out = this.out;
    this.out = [];
    this.socket.cork();
    for (const b of out) this.socket.write(b);
    this.socket.uncork();
  }

  /** Keeps one timer at the deadline of the oldest command; replies in time leave it unchanged. */
  private armTimer(): void {
    if (this.timer !== undefined || this.head >= this.queue.length) return;
    const oldest = this.queue[this.head] as Waiter;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (this.dead || this.head >= this.queue.length) return;
      const first = this.queue[this.head] as Waiter;
      if (Date.now() >= first.deadline) {
        // FIFO matching is lost once a reply is skipped: the connection has to go.
        this.fail(new UnavailableError(`peer ${this.peer}: no reply within ${this.opts.timeoutMs} ms`));
      } else {
        this.armTimer();
      }
    }, Math.max(1, oldest.deadline - Date.now()));
    this.timer.unref();
  }

  private onData(chunk: Buffer): void {
    if (this.dead) return;
    let buf: Buffer;
    let pos: number;
    const inPlace = this.inPos === this.inLen;
    if (inPlace) {
      buf = chunk; // nothing carried over: parse the chunk in place
      pos = 0;
    } else {
      this.append(chunk);
      buf = this.inBuf.subarray(0, this.inLen);
      pos = this.inPos;
    }
    try {
      for (;;) {
        if (pos >= buf.length) break;
        const end = replyEnd(buf, pos);
        if (end < 0) break;
        const start = pos;
        pos = end;
        if (this.opts.protocol === 3 && buf[start] === 0x3e) continue; // a push frame: no command's
        if ((this.preparing && this.handshakeLeft === 0) || this.head >= this.queue.length) {
          const text = buf.toString('latin1', start, Math.min(end, start + 200));
          throw new Error(`unexpected reply with no command waiting: ${JSON.stringify(text)}`);
        }
        const w = this.queue[this.head] as Waiter;
        this.queue[this.head] = undefined as unknown as Waiter; // let the settled waiter be collected
        this.head++;
        if (this.head === this.queue.length) {
          this.queue = [];
          this.head = 0;
        } else if (this.head >= 1024 && this.head * 2 >= this.queue.length) {
          this.queue = this.queue.slice(this.head);
          this.head = 0;
        }
        if (w.handshake !== undefined) {
          const text = errorText(buf.subarray(start, end));
          if (text !== undefined) {
            this.fail(new UnavailableError(`peer ${this.peer}: ${w.handshake} failed: ${text}`));
            return;
          }
          if (--this.handshakeLeft === 0) {
            this.preparing = false;
            this.scheduleFlush();
          }
          continue;
        }
        this.pending--;
        if (inPlace) {
          // The chunk is the socket's own, never reused: the reply is a view of it.
          w.resolve(buf.subarray(start, end));
        } else {
          const reply = Buffer.allocUnsafe(end - start);
          buf.copy(reply, 0, start, end);
          w.resolve(reply);
        }
      }
    } catch (err) {
      const msg = err instanceof Error ? err.message : String(err);
      this.fail(new UnavailableError(`peer ${this.peer}: ${msg}`, { cause: err }));
      return;
    }
    if (this.head >= this.queue.length && this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    this.keep(buf, pos, inPlace);
  }

  /** Appends `chunk` to the working buffer, compacting or doubling it as needed. */
  private append(chunk: Buffer): void {
    const live = this.inLen - this.inPos;
    if (this.inLen + chunk.length > this.inBuf.length) {
      if (live + chunk.length <= this.inBuf.length && this.inPos > 0) {
        this.inBuf.copy(this.inBuf, 0, this.inPos, this.inLen);
      } else {
        const grown = Buffer.allocUnsafe(Math.max(MIN_INPUT, 2 * (live + chunk.length)));
        this.inBuf.copy(grown, 0, this.inPos, this.inLen);
        this.inBuf = grown;
      }
      this.inPos = 0;
      this.inLen = live;
    }
    chunk.copy(this.inBuf, this.inLen);
    this.inLen += chunk.length;
  }

  /** Keeps `buf[pos..)`, the start of a reply not complete yet, for the next chunk. */
  private keep(buf: Buffer, pos: number, inPlace: boolean): void {
    if (pos >= buf.length) {
      this.inPos = 0;
      this.inLen = 0;
      if (this.inBuf.length > 4 * MIN_INPUT) this.inBuf = EMPTY; // do not hold on to a large reply's buffer
    } else if (inPlace) {
      this.append(buf.subarray(pos)); // the chunk is the socket's: copy its unconsumed tail
    } else {
      this.inPos = pos;
    }
  }

  /** Ends the connection: rejects every waiting command with `err` and destroys the socket. */
  fail(err: Error): void {
    if (this.dead) return;
    this.dead = true;
    clearTimeout(this.timer);
    clearTimeout(this.connectTimer);
    this.timer = undefined;
    this.connectTimer = undefined;
    const waiting = this.queue.slice(this.head);
    this.queue = [];
    this.head = 0;
    this.out = [];
    this.pending = 0;
    this.inBuf = EMPTY;
    this.socket.destroy();
    this.onDead(this);
    for (const w of waiting) w.reject(err);
  }
}

/**
 * A pipelined RESP connection to a peer node, for forwarding commands it owns and relaying its
 * raw replies. The TCP connection is made on the first {@link send} and made again on the next
 * send after it breaks; each connect first sends the handshake (`HELLO 3`, `AUTH`,
 * `CLIENT SETNAME`), whose replies the link consumes itself.
 *
 * Failures reject with {@link UnavailableError} naming `host:port`: connect failure or timeout,
 * a socket error or close while commands wait (all of them reject), a reply later than
 * `timeoutMs` (the connection is dropped, as FIFO matching is lost, and all waiting reject), a
 * protocol error in the stream, an error reply to the handshake (carrying its text).
 *
 * @example
 * const link = new PeerLink({ host: '10.0.0.2', port: 6379, protocol: 2, name: 'beacon-fwd' });
 * const reply = await link.send([Buffer.from('GET'), Buffer.from('foo')]); // <Buffer 24 33 0d 0a …> ("$3\r\nbar\r\n")
 * link.close();
 */
export class PeerLink {
  private readonly opts: ConstructorParameters<typeof Connection>[0];
  private conn: Connection | undefined;
  private closed = false;
  /** Whether a connection was ever made ({@link PeerLinkOptions.single}). */
  private connected = false;

  /** @param opts where the peer is and how to talk to it; see {@link PeerLinkOptions}. */
  constructor(opts: PeerLinkOptions) {
    this.opts = {
      ...opts,
      timeoutMs: opts.timeoutMs ?? PEER_TIMEOUT_MS,
      connectTimeoutMs: opts.connectTimeoutMs ?? PEER_CONNECT_TIMEOUT_MS,
    };
  }

  /** `host:port` of the peer. */
  get peer(): string {
    return `${this.opts.host}:${this.opts.port}`;
  }

  /** Commands sent and not yet answered (handshake commands not counted). */
  get pending(): number {
    return this.conn?.pending ?? 0;
  }

  /**
   * Sends one command and resolves with a copy of exactly its raw reply bytes, RESP2 or RESP3 as
   * the link speaks; an error reply (`-ERR …\r\n`) resolves too, for it is a reply. Commands sent
   * in one tick go out in one socket write; replies are matched in order, push frames skipped.
   *
   * @param argv the command and its arguments, each as raw bytes (copied at once).
   * @returns the reply's bytes, type byte to final `\r\n`.
   * @throws UnavailableError (as a rejection) when the link is closed, the peer cannot be
   *   reached, the connection breaks, the reply is later than `timeoutMs`, the stream is not RESP
   *   or the handshake is refused; the message names the peer's `host:port`.
   */
  send(argv: Buffer[]): Promise<Buffer> {
    if (this.closed) return Promise.reject(new UnavailableError(`peer ${this.peer}: link is closed`));
    if (argv.length === 0) return Promise.reject(new UnavailableError(`peer ${this.peer}: empty command`));
    const conn = this.connection();
    if (conn === undefined) return Promise.reject(new UnavailableError(`peer ${this.peer}: the connection broke (what it held there is gone)`));
    const bytes = encodeCommand(argv);
    return new Promise<Buffer>((resolve, reject) => {
      conn.enqueue(bytes, { deadline: Date.now() + this.opts.timeoutMs, handshake: undefined, resolve, reject });
    });
  }

  /**
   * Sends one command whose reply nobody reads (a key of a copy between nodes: what matters is
   * the command that ends it, answered after it on the same connection). No promise is made, so
   * a stream of many costs less. A closed link drops it.
   */
  sendQuiet(argv: Buffer[]): void {
    if (this.closed || argv.length === 0) return;
    this.connection()?.enqueue(encodeCommand(argv), { deadline: Date.now() + this.opts.timeoutMs, handshake: undefined, resolve: ignore, reject: ignore });
  }

  /** The live connection, made on first use and after a break; undefined for a {@link PeerLinkOptions.single} link whose one connection broke. */
  private connection(): Connection | undefined {
    if (this.conn !== undefined) return this.conn;
    if (this.opts.single === true && this.connected) return undefined;
    this.connected = true;
    const conn = new Connection(this.opts, (c) => {
      if (this.conn === c) this.conn = undefined;
    });
    this.conn = conn;
    return conn;
  }

  /** Destroys the connection and rejects every waiting command; later sends reject. Idempotent. */
  close(): void {
    this.closed = true;
    this.conn?.fail(new UnavailableError(`peer ${this.peer}: link closed`));
    this.conn = undefined;
  }
}

/**
 * Links to peers by a caller's key (e.g. `host:port/protocol/principal`), so that forwarded
 * commands share one pipelined connection per peer and identity.
 *
 * @example
 * const pool = new PeerPool();
 * const link = pool.get('10.0.0.2:6379/2/alice', () => new PeerLink({ host: '10.0.0.2', port: 6379, protocol: 2 }));
 */
export class PeerPool {
  private readonly links = new Map<string, PeerLink>();

  /** The link kept under `key`, made by `make` (and kept) when there is none. */
  get(key: string, make: () => PeerLink): PeerLink {
    let link = this.links.get(key);
    if (link === undefined) {
      link = make();
      this.links.set(key, link);
    }
    return link;
  }

  /** Closes the link kept under `key` and forgets it; returns whether there was one. */
  delete(key: string): boolean {
    const link = this.links.get(key);
    if (link === undefined) return false;
    link.close();
    return this.links.delete(key);
  }

  /** Closes every link and forgets them all. */
  closeAll(): void {
    for (const link of this.links.values()) link.close();
    this.links.clear();
  }

  /** How many links are kept. */
  get size(): number {
    return this.links.size;
  }
}
