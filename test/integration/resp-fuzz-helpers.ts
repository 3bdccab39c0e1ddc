/**
 * Helpers for the RESP fuzz tests: a strict RESP2/RESP3 reply parser and a raw connection that
 * sends one command at a time and reads its reply as a plain comparable value.
 *
 * A reply is represented as a JSON-able value so that two servers' replies compare with
 * `JSON.stringify`: `'+OK'` (simple string), `'-ERR …'` (error), `':5'` (integer), `'$bytes'`
 * (bulk string, bytes as latin1), `null` (nil bulk, or RESP3 null `_`), `'*nil'` (nil array),
 * arrays as arrays, and RESP3 types as `',1.5'` (double), `'#t'`/`'#f'`, `'(123'` (big number),
 * `'=txt:…'` (verbatim), `{ map: [[k, v], …] }`, `{ set: […] }`, `{ push: […] }`.
 */
import { connect, type Socket } from 'node:net';

/** One parsed reply (see the module comment for the shapes). */
export type Reply = string | null | Reply[] | { map: [Reply, Reply][] } | { set: Reply[] } | { push: Reply[] };

/** Thrown when the bytes are not valid RESP. */
/** `r` with `f` applied to every string in it (simple strings, bulks, errors), nesting kept. */
export function mapReply(r: Reply, f: (s: string) => string): Reply {
  if (typeof r === 'string') return f(r);
  if (r === null) return r;
  if (Array.isArray(r)) return r.map((x) => mapReply(x, f));
  if ('map' in r) return { map: r.map.map(([k, v]) => [mapReply(k, f), mapReply(v, f)] as [Reply, Reply]) };
  if ('set' in r) return { set: r.set.map((x) => mapReply(x, f)) };
  return { push: r.push.map((x) => mapReply(x, f)) };
}

export class RespSyntaxError extends Error {}

/**
 * Parses one reply from `buf` at `pos`. Returns the reply and the offset after it, or
 * `undefined` when the bytes end before the reply does; throws {@link RespSyntaxError} when
 * the bytes cannot be RESP.
 */
export function parseReply(buf: Buffer, pos: number): { reply: Reply; end: number } | undefined {
  if (pos >= buf.length) return undefined;
  const lineEnd = buf.indexOf('\r\n', pos);
  if (lineEnd < 0) {
    if (buf.length - pos > 64 * 1024) throw new RespSyntaxError('a line longer than 64 KiB');
    return undefined;
  }
  const type = String.fromCharCode(buf[pos] as number);
  const line = buf.toString('latin1', pos + 1, lineEnd);
  const next = lineEnd + 2;
  const count = (): number => {
    if (!/^(-1|0|[1-9][0-9]*)$/.test(line)) throw new RespSyntaxError(`bad length ${JSON.stringify(line)} after '${type}'`);
    return Number(line);
  };
  const items = (n: number, from: number): { list: Reply[]; end: number } | undefined => {
    const list: Reply[] = [];
    let at = from;
    for (let i = 0; i < n; i++) {
      const r = parseReply(buf, at);
      if (r === undefined) return undefined;
      list.push(r.reply);
      at = r.end;
    }
    return { list, end: at };
  };
  switch (type) {
    case '+':
    case '-':
      if (line.includes('\r') || line.includes('\n')) throw new RespSyntaxError('CR or LF inside a simple string');
      return { reply: type + line, end: next };
    case ':':
      if (!/^-?[0-9]+$/.test(line)) throw new RespSyntaxError(`bad integer ${JSON.stringify(line)}`);
      return { reply: ':' + line, end: next };
    case ',':
      if (!/^(-?inf|nan|-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?)$/.test(line)) throw new RespSyntaxError(`bad double ${JSON.stringify(line)}`);
      return { reply: ',' + line, end: next };
    case '#':
      if (line !== 't' && line !== 'f') throw new RespSyntaxError(`bad boolean ${JSON.stringify(line)}`);
      return { reply: '#' + line, end: next };
    case '(':
      if (!/^-?[0-9]+$/.test(line)) throw new RespSyntaxError(`bad big number ${JSON.stringify(line)}`);
      return { reply: '(' + line, end: next };
    case '_':
      if (line !== '') throw new RespSyntaxError('bytes after a null');
      return { reply: null, end: next };
    case '$':
    case '=': {
      const n = count();
      if (n === -1) {
        if (type === '=') throw new RespSyntaxError('a nil verbatim string');
        return { reply: null, end: next };
      }
      if (buf.length < next + n + 2) return undefined;
      if (buf[next + n] !== 0x0d || buf[next + n + 1] !== 0x0a) throw new RespSyntaxError('a bulk string not followed by CRLF');
      return { reply: type + buf.toString('latin1', next, next + n), end: next + n + 2 };
    }
    case '*':
    case '~':
    case '>': {
      const n = count();
      if (n === -1) {
        if (type !== '*') throw new RespSyntaxError(`a nil '${type}'`);
        return { reply: '*nil', end: next };
      }
      const r = items(n, next);
      if (r === undefined) return undefined;
      return { reply: type === '*' ? r.list : type === '~' ? { set: r.list } : { push: r.list }, end: r.end };
    }
    case '%':
    case '|': {
      const n = count();
      if (n < 0) throw new RespSyntaxError(`a nil '${type}'`);
      const r = items(2 * n, next);
      if (r === undefined) return undefined;
      const map: [Reply, Reply][] = [];
      for (let i = 0; i < r.list.length; i += 2) map.push([r.list[i] as Reply, r.list[i + 1] as Reply]);
      if (type === '|') {
        // An attribute precedes the reply it describes: return that reply.
        return parseReply(buf, r.end);
      }
      return { reply: { map }, end: r.end };
    }
    default:
      throw new RespSyntaxError(`unknown reply type byte 0x${(buf[pos] as number).toString(16)}`);
  }
}

/** Parses every complete reply in `buf`; `rest` is the number of bytes of an unfinished one. */
export function parseAll(buf: Buffer): { replies: Reply[]; rest: number } {
  const replies: Reply[] = [];
  let at = 0;
  for (;;) {
    const r = parseReply(buf, at);
    if (r === undefined) return { replies, rest: buf.length - at };
    replies.push(r.reply);
    at = r.end;
  }
}

/** Encodes a command as a RESP multibulk request. */
export function encodeCommand(args: (string | Buffer)[]): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
  for (const a of args) {
    const b = typeof a === 'string' ? Buffer.from(a, 'latin1') : a;
    parts.push(Buffer.from(`$${b.length}\r\n`), b, Buffer.from('\r\n'));
  }
  return Buffer.concat(parts);
}

/** A raw connection that sends commands and resolves each with its parsed reply, in order. */
export class ReplyConnection {
  private buf: Buffer = Buffer.alloc(0);
  private readonly waiting: { resolve: (r: Reply) => void; reject: (e: Error) => void }[] = [];
  private failure: Error | undefined;

  private constructor(private readonly socket: Socket) {
    socket.on('data', (d: Buffer) => this.onData(d));
    socket.on('close', () => this.fail(new Error('the server closed the connection')));
    socket.on('error', (e) => this.fail(e));
  }

  /** Connects to 127.0.0.1:`port`. */
  static async open(port: number): Promise<ReplyConnection> {
    const s = connect({ port, host: '127.0.0.1' });
    await new Promise<void>((resolve, reject) => {
      s.once('connect', resolve);
      s.once('error', reject);
    });
    s.setNoDelay(true);
    return new ReplyConnection(s);
  }

  private onData(d: Buffer): void {
    this.buf = this.buf.length === 0 ? d : Buffer.concat([this.buf, d]);
    try {
      for (;;) {
        const r = parseReply(this.buf, 0);
        if (r === undefined) return;
        this.buf = this.buf.subarray(r.end);
        const w = this.waiting.shift();
        if (w === undefined) throw new RespSyntaxError(`a reply nobody asked for: ${JSON.stringify(r.reply)}`);
        w.resolve(r.reply);
      }
    } catch (err) {
      this.fail(err as Error);
      this.socket.destroy();
    }
  }

  private fail(e: Error): void {
    this.failure ??= e;
    for (const w of this.waiting.splice(0)) w.reject(e);
  }

  /** Sends `args` and resolves with the reply; rejects after `ms` or when the connection fails. */
  call(args: (string | Buffer)[], ms = 10_000): Promise<Reply> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    return new Promise<Reply>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no reply to ${JSON.stringify(args.map(String)).slice(0, 200)} within ${ms} ms`)), ms);
      this.waiting.push({
        resolve: (r) => {
          clearTimeout(t);
          resolve(r);
        },
        reject: (e) => {
          clearTimeout(t);
          reject(e);
        },
      });
      this.socket.write(encodeCommand(args));
    });
  }

  /** Closes the socket. */
  close(): void {
    this.socket.destroy();
  }
}
