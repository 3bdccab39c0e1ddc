/** The Redis protocol (RESP2/RESP3) on the wire: a pure incremental request parser and a reply writer; no I/O. */

/** Redis's limits for requests (see redis.conf `proto-max-bulk-len`; networking.c constants). */
export const RESP_LIMITS = {
  /** Longest inline command or count line, in bytes (PROTO_INLINE_MAX_SIZE). */
  inlineMax: 64 * 1024,
  /** Most arguments in one multibulk request. */
  multibulkMax: 1024 * 1024,
  /** Largest bulk argument, in bytes (proto-max-bulk-len default, 512 MiB). */
  bulkMax: 512 * 1024 * 1024,
} as const;

/**
 * Redis's limits for a connection that has not authenticated (networking.c, since the fix for
 * CVE-2021-32675): over them the request is a protocol error and the connection is closed.
 */
export const UNAUTH_LIMITS = {
  /** Most arguments in one multibulk request before AUTH. */
  multibulkMax: 10,
  /** Largest bulk argument before AUTH, in bytes. */
  bulkMax: 16 * 1024,
} as const;

/** What one {@link RespParser.feed} call yields: complete commands, then maybe a protocol error. */
export interface ParseResult {
  /** Complete commands in arrival order; each is its arguments as raw bytes. */
  commands: Buffer[][];
  /**
   * A protocol error text in Redis's wording (e.g. `Protocol error: invalid bulk length`), to be
   * answered as `-ERR <text>` before closing the connection; the parser accepts nothing after it.
   */
  error?: string;
}

/** The working buffer of a parser holding nothing. */
const EMPTY = Buffer.alloc(0);
/** The arguments of no request (never pushed to: {@link RespParser} starts each request with a fresh array). */
const NO_ARGS: Buffer[] = Object.freeze([]) as unknown as Buffer[];

/**
 * An incremental parser of client requests: multibulk (`*N\r\n$L\r\n…`) and inline commands.
 * Frames may be split at any byte; state is carried between {@link feed} calls.
 *
 * @example
 * const p = new RespParser();
 * p.feed(Buffer.from('*1\r\n$4\r\nPI'));      // { commands: [] }
 * p.feed(Buffer.from('NG\r\nPING\r\n'));      // { commands: [[PING], [PING]] }
 */
export class RespParser {
  /**
   * Redis's limits before AUTH (CVE-2021-32675): set while the connection has no principal, so an
   * unauthenticated client cannot make the node buffer a large request.
   */
  unauthenticated = false;
  /** Working buffer: bytes [pos, len) are unconsumed; it grows by doubling so appends are amortised O(1). */
  private buf: Buffer = EMPTY;
  /** Whether {@link buf} is the parser's own (writable); a chunk parsed in place is only read. */
  private owned = false;
  private len = 0;
  private pos = 0;
  /** Where the search for the current line's terminator resumes (no byte is scanned twice). */
  private scan = 0;
  /** A large bulk being received straight into its own buffer (payload + CRLF), and its fill. */
  private bulk: Buffer | undefined;
  private bulkFill = 0;
  /** Arguments still expected by the current multibulk request, 0 when between requests. */
  private pending = 0;
  /** Length of the bulk being read, -1 when a `$` line is expected next. */
  private bulkLen = -1;
  private args: Buffer[] = NO_ARGS;
  /** Arguments of the current request read so far (its array may be longer: sized up front). */
  private argc = 0;
  private failed = false;

  /** Bytes buffered but not yet consumed (useful to bound a stalled client's memory). */
  get buffered(): number {
    return this.len - this.pos + this.bulkFill;
  }

  /** True between requests with nothing buffered: the parser holds no state and may be dropped. */
  get idle(): boolean {
    return this.buffered === 0 && this.pending === 0 && this.bulkLen === -1 && this.args === NO_ARGS && this.bulk === undefined;
  }

  /**
   * Consumes `chunk` and returns every command it completes; never throws on bad input.
   * Linear in the bytes received however the client splits them: each byte is copied at most a
   * bounded number of times (large bulks once, straight into the argument).
   */
  feed(chunk: Buffer): ParseResult {
    const commands: Buffer[][] = [];
    const error = this.feedInto(chunk, commands);
    return error === undefined ? { commands } : { commands, error };
  }

  /**
   * {@link feed} without the result object: pushes every command the first `n` bytes of `chunk`
   * complete onto `out` (the caller's queue, reused from read to read) and returns the protocol
   * error text, if any. `chunk` is only read during the call: what is left of an incomplete
   * request is copied, so the caller may reuse `chunk` for its next read (a socket's `onread`
   * buffer).
   */
  feedInto(chunk: Buffer, out: unknown[], n: number = chunk.length): string | undefined {
    if (this.failed) return undefined;
    let from = 0;
    if (this.bulk !== undefined) {
      const k = Math.min(n, this.bulk.length - this.bulkFill);
      chunk.copy(this.bulk, this.bulkFill, 0, k);
      this.bulkFill += k;
      if (this.bulkFill < this.bulk.length) return undefined;
      this.addArg(this.bulk.subarray(0, this.bulkLen));
      this.bulk = undefined;
      this.bulkFill = 0;
      this.bulkLen = -1;
      this.pending--;
      from = k;
    }
    if (this.pos >= this.len) {
      // Nothing buffered (the usual case): parse the chunk where it is. Arguments are copied
      // out, so a cached value never keeps a read buffer alive.
      this.buf = chunk;
      this.owned = false;
      this.pos = this.scan = from;
      this.len = n;
    } else this.append(chunk, from, n);
    for (;;) {
      const r = this.pending === 0 && this.bulkLen === -1 && this.args === NO_ARGS ? this.start() : this.multibulk();
      if (r === 'more') break;
      if (typeof r === 'string') {
        this.failed = true;
        this.buf = Buffer.alloc(0);
        this.len = this.pos = this.scan = 0;
        this.bulk = undefined;
        this.bulkFill = 0;
        return `Protocol error: ${r}`;
      }
      if (r !== null) out.push(r);
    }
    if (this.pos >= this.len) {
      // Drained: hold no buffer between requests (an idle connection costs no buffer memory).
      this.buf = EMPTY;
      this.owned = false;
      this.len = this.pos = this.scan = 0;
    } else if (!this.owned) {
      // Part of a request is left in the caller's chunk: keep a copy of it, not the chunk.
      const live = this.len - this.pos;
      const own = Buffer.allocUnsafe(Math.max(live * 2, 256));
      this.buf.copy(own, 0, this.pos, this.len);
      this.scan = Math.max(0, this.scan - this.pos);
      this.buf = own;
      this.owned = true;
      this.pos = 0;
      this.len = live;
    }
    return undefined;
  }

  /** Adds an argument to the request being read (its array was sized from the count line when small). */
  private addArg(arg: Buffer): void {
    if (this.argc < this.args.length) this.args[this.argc] = arg;
    else this.args.push(arg);
    this.argc++;
  }

  /** Appends bytes [from, to) of `chunk` to the working buffer, compacting or doubling it (amortised linear). */
  private append(chunk: Buffer, from: number, to: number): void {
    const add = to - from;
    if (add <= 0) return;
    if (!this.owned || this.len + add > this.buf.length) {
      const live = this.len - this.pos;
      const need = live + add;
      if (this.owned && need <= this.buf.length / 2) {
        this.buf.copy(this.buf, 0, this.pos, this.len);
      } else {
        // Small working buffers come from Node's pool (allocUnsafe under 4 KiB).
        const next = Buffer.allocUnsafe(need * 2);
        this.buf.copy(next, 0, this.pos, this.len);
        this.buf = next;
        this.owned = true;
      }
      this.scan = Math.max(0, this.scan - this.pos);
      this.pos = 0;
      this.len = live;
    }
    chunk.copy(this.buf, this.len, from, to);
    this.len += add;
  }

  /** Starts a request: a multibulk header, or an inline line. null = an empty line (skipped). */
  private start(): Buffer[] | null | 'more' | string {
    if (this.pos >= this.len) return 'more';
    if (this.buf[this.pos] === 0x2a /* * */) {
      const start = this.pos;
      const end = this.line('too big mbulk count string');
      if (typeof end === 'string') return end;
      const n = parseIntStrict(this.buf, start + 1, end);
      if (n === null || n > RESP_LIMITS.multibulkMax) return 'invalid multibulk length';
      if (this.unauthenticated && n > UNAUTH_LIMITS.multibulkMax) return 'unauthenticated multibulk length';
      if (n <= 0) return null;
      this.pending = n;
      // Sized up front (a growing array reserves 17 slots on its first push); a count past
      // PRESIZE_MAX grows as arguments arrive, so a client cannot make it reserve a large array.
      this.args = n <= PRESIZE_MAX ? new Array<Buffer>(n) : [];
      this.argc = 0;
      return this.multibulk();
    }
    return this.inline();
  }

  private inline(): Buffer[] | null | 'more' | string {
    const nl = this.buf.subarray(0, this.len).indexOf(0x0a, Math.max(this.pos, this.scan));
    if (nl === -1) {
      this.scan = this.len;
      if (this.len - this.pos > RESP_LIMITS.inlineMax) return 'too big inline request';
      return 'more';
    }
    if (nl - this.pos > RESP_LIMITS.inlineMax) return 'too big inline request';
    let end = nl;
    if (end > this.pos && this.buf[end - 1] === 0x0d) end--;
    const text = this.buf.subarray(this.pos, end);
    this.pos = nl + 1;
    const args = splitArgs(text);
    if (args === null) return 'unbalanced quotes in request';
    return args.length === 0 ? null : args;
  }

  private multibulk(): Buffer[] | 'more' | string {
    while (this.pending > 0) {
      if (this.bulkLen === -1) {
        if (this.pos >= this.len) return 'more';
        const start = this.pos;
        // As Redis: the line must be complete (up to its CR and one more byte) before its first
        // byte is checked, so a partial line waits for more input rather than failing.
        const end = this.line('too big bulk count string');
        if (typeof end === 'string') return end;
        if (this.buf[start] !== 0x24 /* $ */) return `expected '$', got '${String.fromCharCode(this.buf[start] ?? 0)}'`;
        const n = parseIntStrict(this.buf, start + 1, end);
        if (n === null || n < 0 || n > RESP_LIMITS.bulkMax) return 'invalid bulk length';
        if (this.unauthenticated && n > UNAUTH_LIMITS.bulkMax) return 'unauthenticated bulk length';
        this.bulkLen = n;
      }
      const have = this.len - this.pos;
      if (have < this.bulkLen + 2) {
        if (this.bulkLen >= BIG_BULK) {
          // Receive the rest straight into the argument's own buffer: one copy per byte.
          this.bulk = Buffer.allocUnsafe(this.bulkLen + 2);
          this.buf.copy(this.bulk, 0, this.pos, this.len);
          this.bulkFill = have;
          this.pos = this.len;
        }
        return 'more';
      }
      // Copy: the argument must outlive the working buffer, which is reused. allocUnsafe takes
      // small arguments from Node's pool; copying straight from the working buffer makes no view.
      const arg = Buffer.allocUnsafe(this.bulkLen);
      if (this.bulkLen <= SMALL_ARG) {
        // Byte by byte: Buffer#copy's argument checks cost more than copying a key or a short value.
        const buf = this.buf;
        for (let i = 0, at = this.pos; i < this.bulkLen; i++, at++) arg[i] = buf[at] as number;
      } else this.buf.copy(arg, 0, this.pos, this.pos + this.bulkLen);
      this.addArg(arg);
      this.pos += this.bulkLen + 2;
      this.bulkLen = -1;
      this.pending--;
    }
    const args = this.args;
    // start() gives the next request a fresh array before anything is pushed.
    this.args = NO_ARGS;
    return args;
  }

  /**
   * Finds the end of the `\r\n`-terminated line at pos and advances past it: returns the index
   * of its `\r` (the line is [pos, end) as it was), `'more'` when incomplete, or the protocol
   * error text when the line is too long. Scans by hand: count lines are a few bytes, and a
   * subarray per line was a measurable share of a pipeline's allocations.
   */
  private line(tooBig: string): number | 'more' | string {
    const buf = this.buf;
    const len = this.len;
    let cr = Math.max(this.pos, this.scan);
    while (cr < len && buf[cr] !== 0x0d) cr++;
    if (cr >= len - 1) {
      this.scan = cr >= len ? len : cr;
      if (len - this.pos > RESP_LIMITS.inlineMax) return tooBig;
      return 'more';
    }
    if (cr - this.pos > RESP_LIMITS.inlineMax) return tooBig;
    this.pos = cr + 2;
    return cr;
  }
}

/** Requests of up to this many arguments get their array sized from the count line. */
const PRESIZE_MAX = 1024;

/** Arguments up to this many bytes are copied out of the read buffer by a loop rather than Buffer#copy. */
const SMALL_ARG = 32;

/** Bulks at least this long, when not yet complete, are received into their own buffer. */
const BIG_BULK = 32 * 1024;

/** Parses a decimal integer the way Redis's string2ll does (no spaces, no '+'); null if invalid. */
function parseIntStrict(b: Buffer, from: number, to: number): number | null {
  const len = to - from;
  if (len <= 0 || len > 17) return null;
  let i = from;
  let neg = false;
  if (b[from] === 0x2d /* - */) {
    neg = true;
    i = from + 1;
    if (len === 1) return null;
  }
  if (b[i] === 0x30 /* 0 */ && to > i + 1) return null; // no leading zeros
  let n = 0;
  for (; i < to; i++) {
    const d = (b[i] as number) - 0x30;
    if (d < 0 || d > 9) return null;
    n = n * 10 + d;
  }
  return neg ? -n : n;
}

/**
 * Splits an inline command line into arguments, honouring "double" (with \n, \xHH escapes) and
 * 'single' quotes as redis-cli and Redis's inline parser do. Returns null on unbalanced quotes.
 */
export function splitArgs(line: Buffer): Buffer[] | null {
  const out: Buffer[] = [];
  const s = line;
  let i = 0;
  const isSpace = (c: number | undefined): boolean => c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d || c === 0x0b || c === 0x0c;
  while (i < s.length) {
    while (i < s.length && isSpace(s[i])) i++;
    if (i >= s.length) break;
    const cur: number[] = [];
    let inDq = false;
    let inSq = false;
    for (;;) {
      const c = s[i];
      if (inDq) {
        if (c === undefined) return null;
        if (c === 0x5c /* \ */ && s[i + 1] === 0x78 /* x */ && isHex(s[i + 2]) && isHex(s[i + 3])) {
          cur.push(parseInt(String.fromCharCode(s[i + 2]!, s[i + 3]!), 16));
          i += 3;
        } else if (c === 0x5c && s[i + 1] !== undefined) {
          i++;
          const e = s[i]!;
          cur.push(e === 0x6e ? 0x0a : e === 0x72 ? 0x0d : e === 0x74 ? 0x09 : e === 0x62 ? 0x08 : e === 0x61 ? 0x07 : e);
        } else if (c === 0x22 /* " */) {
          if (s[i + 1] !== undefined && !isSpace(s[i + 1])) return null;
          inDq = false;
          i++;
          break;
        } else cur.push(c);
      } else if (inSq) {
        if (c === undefined) return null;
        if (c === 0x5c && s[i + 1] === 0x27) {
          i++;
          cur.push(0x27);
        } else if (c === 0x27) {
          if (s[i + 1] !== undefined && !isSpace(s[i + 1])) return null;
          inSq = false;
          i++;
          break;
        } else cur.push(c);
      } else {
        // As Redis's sdssplitargs: an unquoted argument ends only at a space, tab, CR or LF
        // (a vertical tab or form feed is part of it, though skipped between arguments).
        if (c === undefined || c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) break;
        if (c === 0x22) inDq = true;
        else if (c === 0x27) inSq = true;
        else cur.push(c);
      }
      i++;
    }
    out.push(Buffer.from(cur));
  }
  return out;
}

function isHex(c: number | undefined): boolean {
  return c !== undefined && ((c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66));
}

/** The protocol version a connection speaks (chosen by HELLO). */
export type Protocol = 2 | 3;

/**
 * A reply value. RESP3-only types degrade to their RESP2 form when written for protocol 2:
 * map → flat array, set → array, double → bulk string, boolean → integer, null → `$-1`,
 * push → array, verbatim → bulk string, bignum → bulk string, attribute → its reply alone.
 */
export type Reply =
  | { t: 'simple'; v: string }
  /** An error; with `latin1`, `v` holds bytes as latin1 characters (a client's arguments echoed as sent) and is written byte for byte. */
  | { t: 'error'; v: string; latin1?: boolean }
  | { t: 'int'; v: number | bigint }
  | { t: 'bulk'; v: Buffer | string }
  | { t: 'null' }
  | { t: 'nullArray' }
  | { t: 'array'; v: Reply[] }
  | { t: 'map'; v: [Reply, Reply][] }
  | { t: 'set'; v: Reply[] }
  | { t: 'double'; v: number }
  | { t: 'bool'; v: boolean }
  | { t: 'push'; v: Reply[] }
  | { t: 'verbatim'; format: string; v: string }
  /** A RESP3 big number (`(…`); a bulk string in RESP2. */
  | { t: 'bignum'; v: string }
  /** RESP3 attributes (`|n` and key/value pairs) before the reply `v`; RESP2 sees `v` alone. */
  | { t: 'attribute'; attrs: [Reply, Reply][]; v: Reply }
  /** A whole reply already encoded (another node's answer, relayed as it came), written as is. */
  | { t: 'raw'; v: Buffer };

/** Reply constructors (short names keep command handlers readable). */
export const R = {
  ok: { t: 'simple', v: 'OK' } as Reply,
  simple: (v: string): Reply => ({ t: 'simple', v }),
  /** An error reply; `v` includes its code word, e.g. `ERR syntax error`, `WRONGTYPE …`. */
  error: (v: string): Reply => ({ t: 'error', v }),
  int: (v: number | bigint): Reply => ({ t: 'int', v }),
  bulk: (v: Buffer | string): Reply => ({ t: 'bulk', v }),
  null: { t: 'null' } as Reply,
  nullArray: { t: 'nullArray' } as Reply,
  array: (v: Reply[]): Reply => ({ t: 'array', v }),
  map: (v: [Reply, Reply][]): Reply => ({ t: 'map', v }),
  set: (v: Reply[]): Reply => ({ t: 'set', v }),
  double: (v: number): Reply => ({ t: 'double', v }),
  bool: (v: boolean): Reply => ({ t: 'bool', v }),
  push: (v: Reply[]): Reply => ({ t: 'push', v }),
  verbatim: (v: string, format = 'txt'): Reply => ({ t: 'verbatim', format, v }),
} as const;

/** Formats a double as Redis does (`inf`, `-inf`, `nan`, shortest round-trip otherwise). */
export function formatDouble(v: number): string {
  if (v === Infinity) return 'inf';
  if (v === -Infinity) return '-inf';
  if (Number.isNaN(v)) return 'nan';
  return String(v);
}

/**
 * An output buffer replies are encoded into: one growing byte array per connection instead of a
 * small Buffer per protocol token, so a pipelined batch costs one allocation and one copy at
 * {@link ReplyWriter.take}, not one per reply part.
 */
export class ReplyWriter {
  private buf: Buffer = Buffer.allocUnsafe(4096);
  /** Bytes encoded and not yet taken. */
  length = 0;

  private ensure(n: number): void {
    if (this.length + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.length + n));
    this.buf.copy(next, 0, 0, this.length);
    this.buf = next;
  }

  /** Appends protocol text that is ASCII (type bytes, lengths, CRLF). */
  ascii(s: string): void {
    this.ensure(s.length);
    this.length += this.buf.write(s, this.length, 'latin1');
  }

  /** Appends text as UTF-8 (messages and string bulks). */
  utf8(s: string): void {
    this.ensure(Buffer.byteLength(s, 'utf8'));
    this.length += this.buf.write(s, this.length, 'utf8');
  }

  /**
   * Appends a protocol line of a type byte and a safe integer (`:42\r\n`, `$5\r\n`), digit by
   * digit: the most common replies then make no string.
   */
  line(type: number, n: number): void {
    this.ensure(24);
    const buf = this.buf;
    let at = this.length;
    buf[at++] = type;
    if (n < 0) {
      buf[at++] = 0x2d;
      n = -n;
    }
    let digits = 1;
    for (let m = n; m >= 10; m = Math.floor(m / 10)) digits++;
    at += digits;
    for (let i = 1; i <= digits; i++) {
      buf[at - i] = 0x30 + (n % 10);
      n = Math.floor(n / 10);
    }
    buf[at++] = 0x0d;
    buf[at++] = 0x0a;
    this.length = at;
  }

  /** Appends raw bytes. */
  bytes(b: Buffer): void {
    this.ensure(b.length);
    b.copy(this.buf, this.length);
    this.length += b.length;
  }

  /**
   * Returns the encoded bytes as a Buffer the caller owns (safe to hand to `socket.write`) and
   * empties the writer. Small outputs are copied into a pooled Buffer and the working buffer is
   * kept; a large one is handed over whole and a fresh working buffer started.
   */
  take(): Buffer {
    const n = this.length;
    this.length = 0;
    if (n >= 16 * 1024) {
      const out = this.buf.subarray(0, n);
      this.buf = Buffer.allocUnsafe(4096);
      return out;
    }
    const out = Buffer.allocUnsafe(n);
    this.buf.copy(out, 0, 0, n);
    return out;
  }
}

const CRLF = '\r\n';
/** `+OK\r\n`, the reply of most writes. */
const OK = Buffer.from('+OK\r\n', 'latin1');

/** Error and simple-string texts have CR/LF replaced by spaces, as Redis does. */
function line(s: string): string {
  return s.indexOf('\r') === -1 && s.indexOf('\n') === -1 ? s : s.replace(/[\r\n]/g, ' ');
}

/**
 * Encodes one reply for `proto` into the writer `w`.
 * Error and simple-string texts have CR/LF replaced by spaces, as Redis does.
 */
export function writeReply(r: Reply, proto: Protocol, w: ReplyWriter): void {
  switch (r.t) {
    case 'raw':
      w.bytes(r.v);
      break;
    case 'simple':
      if (r === R.ok) w.bytes(OK);
      else w.utf8(`+${line(r.v)}\r\n`);
      break;
    case 'error':
      if (r.latin1 === true) w.ascii(`-${line(r.v)}\r\n`);
      else w.utf8(`-${line(r.v)}\r\n`);
      break;
    case 'int':
      if (typeof r.v === 'number' && Number.isSafeInteger(r.v)) w.line(0x3a /* : */, r.v);
      else w.ascii(`:${r.v}\r\n`);
      break;
    case 'bulk':
      if (typeof r.v === 'string') {
        w.ascii(`$${Buffer.byteLength(r.v, 'utf8')}\r\n`);
        w.utf8(r.v);
      } else {
        w.line(0x24 /* $ */, r.v.length);
        w.bytes(r.v);
      }
      w.ascii(CRLF);
      break;
    case 'null':
      w.ascii(proto === 3 ? '_\r\n' : '$-1\r\n');
      break;
    case 'nullArray':
      w.ascii(proto === 3 ? '_\r\n' : '*-1\r\n');
      break;
    case 'array':
    case 'set':
    case 'push':
      w.ascii(`${proto === 3 ? (r.t === 'array' ? '*' : r.t === 'set' ? '~' : '>') : '*'}${r.v.length}\r\n`);
      for (const e of r.v) writeReply(e, proto, w);
      break;
    case 'map':
      w.ascii(proto === 3 ? `%${r.v.length}\r\n` : `*${r.v.length * 2}\r\n`);
      for (const [k, v] of r.v) {
        writeReply(k, proto, w);
        writeReply(v, proto, w);
      }
      break;
    case 'double':
      if (proto === 3) w.ascii(`,${formatDouble(r.v)}\r\n`);
      else writeReply(R.bulk(formatDouble(r.v)), proto, w);
      break;
    case 'bool':
      w.ascii(proto === 3 ? `#${r.v ? 't' : 'f'}\r\n` : `:${r.v ? 1 : 0}\r\n`);
      break;
    case 'bignum':
      if (proto === 3) w.ascii(`(${r.v}\r\n`);
      else writeReply(R.bulk(r.v), proto, w);
      break;
    case 'attribute':
      if (proto === 3) {
        w.ascii(`|${r.attrs.length}\r\n`);
        for (const [k, v] of r.attrs) {
          writeReply(k, proto, w);
          writeReply(v, proto, w);
        }
      }
      writeReply(r.v, proto, w);
      break;
    case 'verbatim': {
      if (proto === 2) {
        writeReply(R.bulk(r.v), proto, w);
        break;
      }
      const b = Buffer.from(`${r.format.padEnd(3).slice(0, 3)}:${r.v}`, 'utf8');
      w.ascii(`=${b.length}\r\n`);
      w.bytes(b);
      w.ascii(CRLF);
      break;
    }
  }
}

/**
 * Encodes one reply for `proto` and appends it to `out` (as one Buffer).
 * Error and simple-string texts have CR/LF replaced by spaces, as Redis does.
 */
export function encodeReply(r: Reply, proto: Protocol, out: Buffer[] = []): Buffer[] {
  const w = new ReplyWriter();
  writeReply(r, proto, w);
  out.push(w.take());
  return out;
}

/** Encodes `r` for `proto` as one Buffer. */
export function encode(r: Reply, proto: Protocol): Buffer {
  return Buffer.concat(encodeReply(r, proto));
}
