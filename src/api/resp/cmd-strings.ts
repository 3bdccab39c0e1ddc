/** String, key and hash commands (every namespace kind). */
import { isUtf8 } from 'node:buffer';
import { NOT_INTEGER, SYNTAX, bigArg, fitsI64, floatArg, formatFloat, intArg, parseDouble, parseI64, randomCount, randomPicks, word } from './args.js';
import type { Ctx } from './context.js';
import { markRaw } from './encoding.js';
import { RespError, WRONGTYPE, stringOf } from './keyspace.js';
import { R, type Reply } from './protocol.js';

/** Bytes a key's string value may grow to (Redis's proto-max-bulk-len for SETRANGE/APPEND). */
export const MAX_STRING_BYTES = 512 * 1024 * 1024;

const k = (b: Buffer | undefined): string => keyName(b);

/**
 * The last key arguments decoded, by the identity of their argument Buffer: the server decodes
 * a command's keys to check permissions and the handler decodes the same Buffers again, so the
 * second decode (a UTF-8 check and a string per key) is a lookup. Argument Buffers are fresh
 * copies made by the parser for one command; keys are never mutated in place, so a Buffer's
 * decoding cannot change while it is remembered. Holds at most {@link KEY_MEMO} small Buffers.
 */
const KEY_MEMO = 16;
const memoBufs: (Buffer | undefined)[] = new Array<Buffer | undefined>(KEY_MEMO).fill(undefined);
const memoKeys: string[] = new Array<string>(KEY_MEMO).fill('');
let memoNext = 0;

/** A key argument as a string. @throws RespError when it is not UTF-8 text (kv keys are UTF-8). */
export function keyName(b: Buffer | undefined): string {
  if (b === undefined) throw new RespError(SYNTAX);
  for (let i = 0; i < KEY_MEMO; i++) if (memoBufs[i] === b) return memoKeys[i] as string;
  if (b.length === 0) throw new RespError('ERR empty keys are not allowed (Beacon keys are non-empty)');
  if (!isUtf8(b)) throw new RespError('ERR keys must be UTF-8 text');
  const key = b.toString('utf8');
  memoBufs[memoNext] = b;
  memoKeys[memoNext] = key;
  memoNext = (memoNext + 1) % KEY_MEMO;
  return key;
}

function getString(c: Ctx, key: string): Buffer | undefined {
  return stringOf(c.ks.get(key));
}

// --- strings -------------------------------------------------------------------------------------

const I64_MAX = 2n ** 63n - 1n;
const I64_MIN = -(2n ** 63n);

type ExpireOption = 'EX' | 'PX' | 'EXAT' | 'PXAT';

/**
 * SET's (`forSet`) or GETEX's options, scanned as Redis's parseExtendedStringArgumentsOrReply
 * scans them: syntax only, the expire time is read later (so a syntax error anywhere wins over a
 * bad number). NX/XX, GET and KEEPTTL are SET's, PERSIST is GETEX's; one expire form, which may
 * be repeated (the last one counts). @throws RespError syntax error.
 */
function stringOptions(args: Buffer[], from: number, forSet: boolean): { nx: boolean; xx: boolean; get: boolean; keep: boolean; persist: boolean; expire?: { opt: ExpireOption; arg: Buffer } } {
  const o: ReturnType<typeof stringOptions> = { nx: false, xx: false, get: false, keep: false, persist: false };
  for (let i = from; i < args.length; i++) {
    const w = word(args[i]);
    const next = args[i + 1];
    if (w === 'NX' && forSet && !o.xx) o.nx = true;
    else if (w === 'XX' && forSet && !o.nx) o.xx = true;
    else if (w === 'GET' && forSet) o.get = true;
    else if (w === 'KEEPTTL' && forSet && o.expire === undefined) o.keep = true;
    else if (w === 'PERSIST' && !forSet && o.expire === undefined) o.persist = true;
    else if ((w === 'EX' || w === 'PX' || w === 'EXAT' || w === 'PXAT') && !o.keep && !o.persist && (o.expire === undefined || o.expire.opt === w) && next !== undefined) {
      o.expire = { opt: w, arg: next };
      i++;
    } else throw new RespError(SYNTAX);
  }
  return o;
}

/**
 * The absolute expiry in ms of `EX|PX|EXAT|PXAT arg`, with Redis's rules: a positive 64-bit
 * integer whose ms (and, relative, ms + now) fit 64 bits; far-future times lose sub-ms precision.
 * @throws RespError not an integer / `invalid expire time in '<cmd>' command`.
 */
function expireAtMs(opt: ExpireOption, arg: Buffer, cmd: string): number {
  const n = bigArg(arg);
  const seconds = opt === 'EX' || opt === 'EXAT';
  const invalid = (): RespError => new RespError(`ERR invalid expire time in '${cmd}' command`);
  if (n <= 0n || (seconds && n > I64_MAX / 1000n)) throw invalid();
  let ms = seconds ? n * 1000n : n;
  if (opt === 'EX' || opt === 'PX') ms += BigInt(Date.now());
  if (ms > I64_MAX) throw invalid();
  return Number(ms);
}

export function set(c: Ctx, a: Buffer[]): Reply {
  const key = k(a[0]);
  if (a.length === 2) {
    // A plain SET (the common case): no options to parse.
    c.ks.set(key, { type: 'string', value: a[1] as Buffer }, 0, 'set');
    return R.ok;
  }
  const o = stringOptions(a, 2, true);
  const expiresAt = o.expire !== undefined ? expireAtMs(o.expire.opt, o.expire.arg, 'set') : 0;
  let old: Buffer | undefined;
  let exists: boolean;
  if (o.get) {
    old = getString(c, key);
    exists = old !== undefined;
  } else if (o.nx || o.xx) exists = c.ks.get(key) !== undefined;
  else exists = false;
  if ((o.nx && exists) || (o.xx && !exists)) return o.get ? (old === undefined ? R.null : R.bulk(old)) : R.null;
  c.ks.set(key, { type: 'string', value: a[1] as Buffer }, o.keep ? 'keep' : expiresAt, 'set');
  if (o.get) return old === undefined ? R.null : R.bulk(old);
  return R.ok;
}

export function setnx(c: Ctx, a: Buffer[]): Reply {
  const key = k(a[0]);
  if (c.ks.get(key) !== undefined) return R.int(0);
  c.ks.set(key, { type: 'string', value: a[1] as Buffer }, 0, 'set');
  return R.int(1);
}

function setexLike(unitMs: number, cmd: string) {
  return (c: Ctx, a: Buffer[]): Reply => {
    const key = k(a[0]);
    const at = expireAtMs(unitMs === 1000 ? 'EX' : 'PX', a[1] as Buffer, cmd);
    c.ks.set(key, { type: 'string', value: a[2] as Buffer }, at, 'set');
    return R.ok;
  };
}
export const setex = setexLike(1000, 'setex');
export const psetex = setexLike(1, 'psetex');

/** GET; a miss of a memory key whose namespace has an origin is fetched from it first (read-through). */
export function get(c: Ctx, a: Buffer[]): Reply | Promise<Reply> {
  const key = k(a[0]);
  const v = getString(c, key);
  if (v !== undefined) return R.bulk(v);
  const fetched = c.ks.readThrough?.(key);
  if (fetched === undefined) return R.null;
  return fetched.then((f) => {
    const b = stringOf(f);
    return b === undefined ? R.null : R.bulk(b);
  });
}

export function getset(c: Ctx, a: Buffer[]): Reply {
  const key = k(a[0]);
  const old = getString(c, key);
  c.ks.set(key, { type: 'string', value: a[1] as Buffer }, 0, 'set');
  return old === undefined ? R.null : R.bulk(old);
}

export function getdel(c: Ctx, a: Buffer[]): Reply {
  const key = k(a[0]);
  const old = getString(c, key);
  if (old === undefined) return R.null;
  c.ks.delete(key, 'del');
  return R.bulk(old);
}

export function getex(c: Ctx, a: Buffer[]): Reply {
  const key = k(a[0]);
  // As Redis: the options' syntax, then the key (nil, WRONGTYPE), then the expire time.
  const o = stringOptions(a, 1, false);
  const v = getString(c, key);
  if (v === undefined) return R.null;
  const at = o.persist ? 0 : o.expire !== undefined ? expireAtMs(o.expire.opt, o.expire.arg, 'getex') : undefined;
  if (at !== undefined) {
    if (at === 0 && c.ks.expiresAt(key) !== 0) c.ks.expire(key, 0, 'persist');
    else if (at !== 0) c.ks.expire(key, at, 'expire');
  }
  return R.bulk(v);
}

export function mget(c: Ctx, a: Buffer[]): Reply {
  return R.array(
    a.map((b) => {
      const e = c.ks.get(k(b));
      return e === undefined || e.type !== 'string' ? R.null : R.bulk(e.value);
    }),
  );
}

/** MSET/MSETNX's key-value pairs as keys and values, in order. */
function pairs(a: Buffer[]): { keys: string[]; values: Buffer[] } {
  const n = a.length >> 1;
  const keys = new Array<string>(n);
  const values = new Array<Buffer>(n);
  for (let i = 0; i < n; i++) {
    keys[i] = k(a[2 * i]);
    values[i] = a[2 * i + 1] as Buffer;
  }
  return { keys, values };
}

export function mset(c: Ctx, a: Buffer[]): Reply {
  if (a.length % 2 !== 0) throw new RespError("ERR wrong number of arguments for 'mset' command");
  const p = pairs(a);
  c.ks.setStrings(p.keys, p.values, 'set');
  return R.ok;
}

export function msetnx(c: Ctx, a: Buffer[]): Reply {
  if (a.length % 2 !== 0) throw new RespError("ERR wrong number of arguments for 'msetnx' command");
  const p = pairs(a);
  for (const key of p.keys) if (c.ks.get(key) !== undefined) return R.int(0);
  c.ks.setStrings(p.keys, p.values, 'set');
  return R.int(1);
}

/**
 * A decimal integer of at most 15 digits in canonical form (`0`, `-12`; no leading zeros, no
 * `-0`) as a number, exact since it is below 2^53; undefined for anything else, which the
 * 64-bit path then parses (or refuses) as Redis does.
 */
function smallInt(b: Buffer): number | undefined {
  const len = b.length;
  if (len === 0 || len > 15) return undefined;
  let i = 0;
  if (b[0] === 0x2d /* - */) {
    if (len === 1 || b[1] === 0x30) return undefined;
    i = 1;
  } else if (b[0] === 0x30 && len > 1) return undefined;
  let n = 0;
  for (; i < len; i++) {
    const d = (b[i] as number) - 0x30;
    if (d < 0 || d > 9) return undefined;
    n = n * 10 + d;
  }
  return b[0] === 0x2d ? -n : n;
}

/**
 * INCRBY's core. Values and increments of up to 15 digits (every counter in practice) are added
 * as numbers, exactly (the sum stays below 2^53); anything longer takes the signed 64-bit path
 * with its overflow check. A memory key's value is replaced in its entry (Redis keeps the key's
 * LFU/LRU data and TTL on INCR), without building a new value object.
 */
function incrBy(c: Ctx, key: string, by: bigint | number): Reply {
  const e = c.ks.get(key);
  const cur = stringOf(e);
  const small = typeof by === 'number' ? (cur === undefined ? 0 : smallInt(cur)) : undefined;
  let r: number | bigint;
  if (small !== undefined) r = small + (by as number);
  else {
    let n = 0n;
    if (cur !== undefined) {
      const p = parseI64(cur);
      if (p === null) throw new RespError(NOT_INTEGER);
      n = p;
    }
    r = n + BigInt(by);
    if (!fitsI64(r)) throw new RespError('ERR increment or decrement would overflow');
  }
  const value = Buffer.from(String(r), 'latin1');
  if (e !== undefined && e.type === 'string' && c.ks.kind === 'memory') {
    // The memory keyspace handed out the entry's own value (lookupWrite): update it in place.
    e.value = value;
    c.ks.set(key, e, 'keep', 'incrby');
  } else c.ks.set(key, { type: 'string', value }, 'keep', 'incrby');
  return R.int(r);
}

/** An increment argument: a number when {@link smallInt} reads it, else a 64-bit bigint. @throws RespError not an integer. */
function byArg(b: Buffer | undefined): bigint | number {
  return (b !== undefined ? smallInt(b) : undefined) ?? bigArg(b);
}

export const incr = (c: Ctx, a: Buffer[]): Reply => incrBy(c, k(a[0]), 1);
export const decr = (c: Ctx, a: Buffer[]): Reply => incrBy(c, k(a[0]), -1);
export const incrby = (c: Ctx, a: Buffer[]): Reply => incrBy(c, k(a[0]), byArg(a[1]));
export function decrby(c: Ctx, a: Buffer[]): Reply {
  const by = bigArg(a[1]);
  if (by === -(2n ** 63n)) throw new RespError('ERR decrement would overflow');
  return incrBy(c, k(a[0]), -by);
}

export function incrbyfloat(c: Ctx, a: Buffer[]): Reply {
  const key = k(a[0]);
  // As Redis: the key's type, then its value, then the increment.
  const cur = stringOf(c.ks.get(key));
  let n = 0;
  if (cur !== undefined) {
    const p = parseDouble(cur);
    if (p === null) throw new RespError(NOT_FLOAT_VALUE);
    n = p;
  }
  const by = floatArg(a[1]);
  const r = n + by;
  if (!Number.isFinite(r)) throw new RespError('ERR increment would produce NaN or Infinity');
  const s = formatFloat(r);
  c.ks.set(key, { type: 'string', value: Buffer.from(s) }, 'keep', 'incrbyfloat');
  return R.bulk(s);
}
const NOT_FLOAT_VALUE = 'ERR value is not a valid float';

export function append(c: Ctx, a: Buffer[]): Reply {
  const key = k(a[0]);
  const cur = stringOf(c.ks.get(key));
  const add = a[1] as Buffer;
  const len = (cur?.length ?? 0) + add.length;
  if (len > MAX_STRING_BYTES) throw new RespError('ERR string exceeds maximum allowed size (proto-max-bulk-len)');
  let value = add;
  if (cur !== undefined) {
    value = Buffer.concat([cur, add]);
    // Redis appends in place to an existing value, which leaves it raw (OBJECT ENCODING).
    markRaw(value);
  }
  c.ks.set(key, { type: 'string', value }, 'keep', 'append');
  return R.int(len);
}

export function strlen(c: Ctx, a: Buffer[]): Reply {
  return R.int(getString(c, k(a[0]))?.length ?? 0);
}

export function setrange(c: Ctx, a: Buffer[]): Reply {
  const key = k(a[0]);
  const off = intArg(a[1]);
  const val = a[2] as Buffer;
  if (off < 0) throw new RespError('ERR offset is out of range');
  const cur = stringOf(c.ks.get(key));
  if (val.length === 0) return R.int(cur?.length ?? 0);
  if (off + val.length > MAX_STRING_BYTES) throw new RespError('ERR string exceeds maximum allowed size (proto-max-bulk-len)');
  const out = Buffer.alloc(Math.max(cur?.length ?? 0, off + val.length));
  cur?.copy(out);
  val.copy(out, off);
  markRaw(out);
  c.ks.set(key, { type: 'string', value: out }, 'keep', 'setrange');
  return R.int(out.length);
}

export function getrange(c: Ctx, a: Buffer[]): Reply {
  let start = intArg(a[1]);
  let end = intArg(a[2]);
  const v = getString(c, k(a[0]));
  if (v === undefined) return R.bulk('');
  const n = v.length;
  if (start < 0 && end < 0 && start > end) return R.bulk('');
  if (start < 0) start = n + start;
  if (end < 0) end = n + end;
  if (start < 0) start = 0;
  if (end < 0) end = 0;
  if (end >= n) end = n - 1;
  if (n === 0 || start > end) return R.bulk('');
  return R.bulk(v.subarray(start, end + 1));
}

/**
 * LCS key1 key2 [LEN] [IDX] [MINMATCHLEN n] [WITHMATCHLEN]: the longest common subsequence of two
 * strings (a missing key is the empty string), by the dynamic-programming table Redis 7 uses, so
 * that among equally long answers the same one is chosen. Replies: the subsequence (bulk); with
 * LEN its length; with IDX `{matches: [[[aStart, aEnd], [bStart, bEnd], (len)]…], len}`, the
 * matched ranges from the ends of the strings backwards, those shorter than MINMATCHLEN left out.
 * @throws RespError `The specified keys must contain string values` for another type; a syntax
 *   error for an unknown option; Redis's errors for LEN with IDX and for a table (4 bytes per
 *   cell, (len1+1)·(len2+1) cells) over the value limit of 512 MiB.
 */
export function lcs(c: Ctx, a: Buffer[]): Reply {
  const va = c.ks.get(k(a[0]));
  const vb = c.ks.get(k(a[1]));
  if ((va !== undefined && va.type !== 'string') || (vb !== undefined && vb.type !== 'string')) {
    throw new RespError('ERR The specified keys must contain string values');
  }
  const x = va?.type === 'string' ? va.value : Buffer.alloc(0);
  const y = vb?.type === 'string' ? vb.value : Buffer.alloc(0);
  let getLen = false;
  let getIdx = false;
  let withMatchLen = false;
  let minMatchLen = 0;
  for (let i = 2; i < a.length; i++) {
    const w = word(a[i]);
    if (w === 'IDX') getIdx = true;
    else if (w === 'LEN') getLen = true;
    else if (w === 'WITHMATCHLEN') withMatchLen = true;
    else if (w === 'MINMATCHLEN' && i + 1 < a.length) minMatchLen = Math.max(0, intArg(a[++i]));
    else throw new RespError(SYNTAX);
  }
  if (getLen && getIdx) throw new RespError('ERR If you want both the length and indexes, please just use IDX.');
  const n = x.length;
  const m = y.length;
  const w = m + 1;
  if ((n + 1) * w * 4 > MAX_STRING_BYTES) throw new RespError('ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len');
  let t: Uint32Array;
  try {
    t = new Uint32Array((n + 1) * w);
  } catch {
    throw new RespError('ERR Insufficient memory, failed allocating transient memory for LCS');
  }
  // t[i·w + j] = length of the LCS of x[0, i) and y[0, j).
  for (let i = 1; i <= n; i++) {
    const xi = x[i - 1];
    const row = i * w;
    const up = row - w;
    for (let j = 1; j <= m; j++) {
      t[row + j] = xi === y[j - 1] ? (t[up + j - 1] as number) + 1 : Math.max(t[up + j] as number, t[row + j - 1] as number);
    }
  }
  const total = t[n * w + m] as number;
  if (getLen) return R.int(total);
  // Walk back from the end, building the subsequence and the contiguous matched ranges.
  const out = Buffer.alloc(total);
  const matches: Reply[] = [];
  let pos = total;
  let i = n;
  let j = m;
  let aStart = -1;
  let aEnd = 0;
  let bStart = 0;
  let bEnd = 0;
  const emit = (): void => {
    const len = aEnd - aStart + 1;
    if (getIdx && (minMatchLen === 0 || len >= minMatchLen)) {
      const entry: Reply[] = [R.array([R.int(aStart), R.int(aEnd)]), R.array([R.int(bStart), R.int(bEnd)])];
      if (withMatchLen) entry.push(R.int(len));
      matches.push(R.array(entry));
    }
    aStart = -1;
  };
  while (i > 0 && j > 0) {
    if (x[i - 1] === y[j - 1]) {
      out[--pos] = x[i - 1] as number;
      if (aStart < 0) {
        aStart = aEnd = i - 1;
        bStart = bEnd = j - 1;
      } else if (aStart === i && bStart === j) {
        aStart--;
        bStart--;
      } else {
        emit();
        aStart = aEnd = i - 1;
        bStart = bEnd = j - 1;
      }
      i--;
      j--;
      if (aStart === 0 || bStart === 0) emit();
    } else {
      if ((t[(i - 1) * w + j] as number) > (t[i * w + j - 1] as number)) i--;
      else j--;
      if (aStart >= 0) emit();
    }
  }
  if (!getIdx) return R.bulk(out);
  return R.map([
    [R.bulk('matches'), R.array(matches)],
    [R.bulk('len'), R.int(total)],
  ]);
}

// --- keys ----------------------------------------------------------------------------------------

export function del(c: Ctx, a: Buffer[]): Reply {
  let n = 0;
  for (const b of a) if (c.ks.delete(k(b), 'del')) n++;
  return R.int(n);
}

export function exists(c: Ctx, a: Buffer[]): Reply {
  let n = 0;
  for (const b of a) if (c.ks.get(k(b)) !== undefined) n++;
  return R.int(n);
}

export const touch = exists;


function expireGeneric(unitMs: number, absolute: boolean, cmd: string) {
  return (c: Ctx, a: Buffer[]): Reply => {
    const key = k(a[0]);
    let nx = false;
    let xx = false;
    let gt = false;
    let lt = false;
    for (let i = 2; i < a.length; i++) {
      const w = word(a[i]);
      if (w === 'NX') nx = true;
      else if (w === 'XX') xx = true;
      else if (w === 'GT') gt = true;
      else if (w === 'LT') lt = true;
      else throw new RespError(`ERR Unsupported option ${a[i]?.toString('latin1')}`);
    }
    if (nx && (xx || gt || lt)) throw new RespError('ERR NX and XX, GT or LT options at the same time are not compatible');
    if (gt && lt) throw new RespError('ERR GT and LT options at the same time are not compatible');
    // As Redis: the options are checked before the time is read.
    const n = bigArg(a[1]);
    // Redis's overflow rules (expireGenericCommand): the time in ms and the absolute time must fit
    // a 64-bit integer; any such time is accepted (far-future times lose sub-ms precision here).
    const invalid = (): RespError => new RespError(`ERR invalid expire time in '${cmd}' command`);
    if (unitMs === 1000 && (n > I64_MAX / 1000n || n < I64_MIN / 1000n)) throw invalid();
    let when = n * BigInt(unitMs);
    if (!absolute) {
      const base = BigInt(Date.now());
      if (when > I64_MAX - base) throw invalid();
      when += base;
    }
    let at = Number(when);
    if (c.ks.get(key) === undefined) return R.int(0);
    const cur = c.ks.expiresAt(key);
    if (nx && cur !== 0) return R.int(0);
    if (xx && cur === 0) return R.int(0);
    // With GT, no TTL counts as infinite; with LT, any TTL is less than none.
    if (gt && (cur === 0 || at <= cur)) return R.int(0);
    if (lt && cur !== 0 && at >= cur) return R.int(0);
    if (at <= Date.now()) {
      c.ks.delete(key, 'del');
      return R.int(1);
    }
    at = Math.max(at, 1);
    c.ks.expire(key, at, 'expire');
    return R.int(1);
  };
}
export const expire = expireGeneric(1000, false, 'expire');
export const pexpire = expireGeneric(1, false, 'pexpire');
export const expireat = expireGeneric(1000, true, 'expireat');
export const pexpireat = expireGeneric(1, true, 'pexpireat');

function ttlGeneric(kind: 'ttl' | 'pttl' | 'expiretime' | 'pexpiretime') {
  return (c: Ctx, a: Buffer[]): Reply => {
    const key = k(a[0]);
    if (c.ks.get(key) === undefined) return R.int(-2);
    const at = c.ks.expiresAt(key);
    if (at === 0) return R.int(-1);
    const left = Math.max(0, at - Date.now());
    if (kind === 'ttl') return R.int(Math.round(left / 1000));
    if (kind === 'pttl') return R.int(i64(left));
    if (kind === 'expiretime') return R.int(Math.round(at / 1000));
    return R.int(i64(at));
  };
}

/**
 * A time in ms as a 64-bit integer reply. Expiry times are kept as doubles: past 2^53 ms they
 * are printed exactly (not as JavaScript's rounded decimal), and 2^63 (where PXAT 2^63-1 rounds
 * to) as 2^63-1, so a client never reads a number outside the 64-bit range.
 */
function i64(v: number): number | bigint {
  if (Number.isSafeInteger(v)) return v;
  return v >= 2 ** 63 ? I64_MAX : BigInt(v);
}
export const ttl = ttlGeneric('ttl');
export const pttl = ttlGeneric('pttl');
export const expiretime = ttlGeneric('expiretime');
export const pexpiretime = ttlGeneric('pexpiretime');

export function persist(c: Ctx, a: Buffer[]): Reply {
  const key = k(a[0]);
  if (c.ks.get(key) === undefined || c.ks.expiresAt(key) === 0) return R.int(0);
  c.ks.expire(key, 0, 'persist');
  return R.int(1);
}

export function type(c: Ctx, a: Buffer[]): Reply {
  return R.simple(c.ks.typeOf(k(a[0])));
}

function renameGeneric(nx: boolean) {
  return (c: Ctx, a: Buffer[]): Reply => {
    const from = k(a[0]);
    const to = k(a[1]);
    const e = c.ks.get(from);
    if (e === undefined) throw new RespError('ERR no such key');
    if (from === to) return nx ? R.int(0) : R.ok;
    if (nx && c.ks.get(to) !== undefined) return R.int(0);
    const expiresAt = c.ks.expiresAt(from);
    // A durable hash is a string of JSON underneath: rename keeps its bytes.
    c.ks.delete(from, 'rename_from');
    c.ks.set(to, e, expiresAt, 'rename_to');
    return nx ? R.int(1) : R.ok;
  };
}
export const rename = renameGeneric(false);
export const renamenx = renameGeneric(true);

// --- hashes --------------------------------------------------------------------------------------

function hash(c: Ctx, key: string): Map<string, Buffer> | undefined {
  return c.ks.getHash(key);
}

const f = (b: Buffer | undefined): string => (b as Buffer).toString('latin1');

export function hset(c: Ctx, a: Buffer[], cmd = 'hset'): Reply {
  if (a.length < 3 || a.length % 2 !== 1) throw new RespError(`ERR wrong number of arguments for '${cmd}' command`);
  const key = k(a[0]);
  const h = hash(c, key);
  const fields = h ?? new Map<string, Buffer>();
  let added = 0;
  for (let i = 1; i < a.length; i += 2) {
    if (!fields.has(f(a[i]))) added++;
    fields.set(f(a[i]), a[i + 1] as Buffer);
  }
  c.ks.set(key, { type: 'hash', value: fields }, 'keep', 'hset');
  return cmd === 'hmset' ? R.ok : R.int(added);
}
export const hmset = (c: Ctx, a: Buffer[]): Reply => hset(c, a, 'hmset');

export function hsetnx(c: Ctx, a: Buffer[]): Reply {
  const key = k(a[0]);
  const h = hash(c, key);
  const fields = h ?? new Map<string, Buffer>();
  if (fields.has(f(a[1]))) return R.int(0);
  fields.set(f(a[1]), a[2] as Buffer);
  c.ks.set(key, { type: 'hash', value: fields }, 'keep', 'hset');
  return R.int(1);
}

export function hget(c: Ctx, a: Buffer[]): Reply {
  const v = hash(c, k(a[0]))?.get(f(a[1]));
  return v === undefined ? R.null : R.bulk(v);
}

export function hmget(c: Ctx, a: Buffer[]): Reply {
  const h = hash(c, k(a[0]));
  return R.array(a.slice(1).map((b) => {
    const v = h?.get(f(b));
    return v === undefined ? R.null : R.bulk(v);
  }));
}

export function hgetall(c: Ctx, a: Buffer[]): Reply {
  const h = hash(c, k(a[0]));
  return R.map([...(h ?? [])].map(([name, v]) => [R.bulk(Buffer.from(name, 'latin1')), R.bulk(v)]));
}

/**
 * HRANDFIELD key [count [WITHVALUES]] (Redis 6.2): one random field (nil when none); a positive
 * count gives up to that many distinct fields, a negative one exactly |count| fields that may
 * repeat. With WITHVALUES each field is followed by its value (RESP3: [field, value] pairs).
 */
export function hrandfield(c: Ctx, a: Buffer[]): Reply {
  let count: number | undefined;
  let withValues = false;
  if (a.length > 3) throw new RespError(SYNTAX);
  if (a[1] !== undefined) {
    // Redis reads the count within ±LONG_MAX, and with WITHVALUES within half of it (it replies twice per field).
    count = randomCount(a[1], a[2] !== undefined ? 2 : 1);
    if (a[2] !== undefined) {
      if (word(a[2]) !== 'WITHVALUES') throw new RespError(SYNTAX);
      withValues = true;
    }
  }
  const h = hash(c, k(a[0]));
  const fields = h === undefined ? [] : [...h.keys()];
  const name = (x: string): Reply => R.bulk(Buffer.from(x, 'latin1'));
  if (count === undefined) {
    const one = randomPicks(fields, -1)[0];
    return one === undefined ? R.null : name(one);
  }
  const picked = randomPicks(fields, count);
  if (!withValues) return R.array(picked.map(name));
  const hv = h as Map<string, Buffer>;
  if (c.conn.protocol === 3) return R.array(picked.map((x) => R.array([name(x), R.bulk(hv.get(x) as Buffer)])));
  return R.array(picked.flatMap((x) => [name(x), R.bulk(hv.get(x) as Buffer)]));
}

export function hdel(c: Ctx, a: Buffer[]): Reply {
  const key = k(a[0]);
  const h = hash(c, key);
  if (h === undefined) return R.int(0);
  let n = 0;
  for (const b of a.slice(1)) if (h.delete(f(b))) n++;
  if (n > 0) c.ks.set(key, { type: 'hash', value: h }, 'keep', 'hdel');
  return R.int(n);
}

export const hexists = (c: Ctx, a: Buffer[]): Reply => R.int(hash(c, k(a[0]))?.has(f(a[1])) === true ? 1 : 0);
export const hlen = (c: Ctx, a: Buffer[]): Reply => R.int(hash(c, k(a[0]))?.size ?? 0);
export const hkeys = (c: Ctx, a: Buffer[]): Reply => R.array([...(hash(c, k(a[0]))?.keys() ?? [])].map((n) => R.bulk(Buffer.from(n, 'latin1'))));
export const hvals = (c: Ctx, a: Buffer[]): Reply => R.array([...(hash(c, k(a[0]))?.values() ?? [])].map((v) => R.bulk(v)));
export const hstrlen = (c: Ctx, a: Buffer[]): Reply => R.int(hash(c, k(a[0]))?.get(f(a[1]))?.length ?? 0);

export function hincrby(c: Ctx, a: Buffer[]): Reply {
  const key = k(a[0]);
  const by = bigArg(a[2]);
  const h = hash(c, key);
  const fields = h ?? new Map<string, Buffer>();
  const cur = fields.get(f(a[1]));
  let n = 0n;
  if (cur !== undefined) {
    const p = parseI64(cur);
    if (p === null) throw new RespError('ERR hash value is not an integer');
    n = p;
  }
  const r = n + by;
  if (!fitsI64(r)) throw new RespError('ERR increment or decrement would overflow');
  fields.set(f(a[1]), Buffer.from(r.toString()));
  c.ks.set(key, { type: 'hash', value: fields }, 'keep', 'hincrby');
  return R.int(r);
}

export function hincrbyfloat(c: Ctx, a: Buffer[]): Reply {
  const key = k(a[0]);
  const by = floatArg(a[2]);
  // Redis refuses an infinite increment before it reads the key (even a key of another type).
  if (!Number.isFinite(by)) throw new RespError('ERR value is NaN or Infinity');
  const h = hash(c, key);
  const fields = h ?? new Map<string, Buffer>();
  const cur = fields.get(f(a[1]));
  let n = 0;
  if (cur !== undefined) {
    const p = parseDouble(cur);
    if (p === null) throw new RespError('ERR hash value is not a float');
    n = p;
  }
  const r = n + by;
  if (!Number.isFinite(r)) throw new RespError('ERR increment would produce NaN or Infinity');
  const s = formatFloat(r);
  fields.set(f(a[1]), Buffer.from(s));
  c.ks.set(key, { type: 'hash', value: fields }, 'keep', 'hincrbyfloat');
  return R.bulk(s);
}

/** Parses `cursor [MATCH p] [COUNT n]` of HSCAN/SSCAN/ZSCAN. */
export function scanArgs(a: Buffer[], from: number): { cursor: number; match: string | undefined; count: number; novalues: boolean } {
  const cs = (a[from] as Buffer).toString('latin1');
  if (!/^[0-9]+$/.test(cs)) throw new RespError('ERR invalid cursor');
  const o = { cursor: Number(cs), match: undefined as string | undefined, count: 10, novalues: false };
  for (let i = from + 1; i < a.length; i++) {
    const w = word(a[i]);
    if (w === 'MATCH' && a[i + 1] !== undefined) o.match = (a[++i] as Buffer).toString('utf8');
    else if (w === 'COUNT' && a[i + 1] !== undefined) {
      o.count = intArg(a[++i]);
      if (o.count < 1) throw new RespError(SYNTAX);
    } else if (w === 'NOVALUES') o.novalues = true;
    else throw new RespError(SYNTAX);
  }
  return o;
}

export { WRONGTYPE };
