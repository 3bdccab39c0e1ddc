/**
 * Bitmap commands on string values (SETBIT, GETBIT, BITCOUNT, BITPOS, BITOP), both key kinds.
 * Semantics, argument order and error texts are Redis 7.2's (src/bitops.c), checked against
 * redis-server: bit 0 is the most significant bit of byte 0; a missing key is an endless run of
 * zero bits; a write grows the string with zero bytes.
 */
import { NOT_INTEGER, SYNTAX, parseI64, word } from './args.js';
import { MAX_STRING_BYTES, keyName } from './cmd-strings.js';
import { markRaw } from './encoding.js';
import type { Ctx } from './context.js';
import { DurableTx, RespError, stringOf } from './keyspace.js';
import { R, type Reply } from './protocol.js';

/** Redis's error for a bad SETBIT/GETBIT offset. */
export const BAD_OFFSET = 'ERR bit offset is not an integer or out of range';
/** Redis's error for a SETBIT value other than 0 or 1. */
export const BAD_BIT = 'ERR bit is not an integer or out of range';

/**
 * A bit offset argument: 0 ≤ offset and offset/8 < 512 MiB (Redis's proto-max-bulk-len), so at
 * most 2^32 - 1. @throws RespError {@link BAD_OFFSET}.
 */
function offsetArg(b: Buffer | undefined): number {
  const v = b === undefined ? null : parseI64(b);
  if (v === null || v < 0n || v >> 3n >= BigInt(MAX_STRING_BYTES)) throw new RespError(BAD_OFFSET);
  return Number(v);
}

/** A 64-bit integer argument as a number (ranges are clamped to the string's length, so precision beyond 2^53 never matters). */
function longArg(b: Buffer | undefined): number {
  const v = b === undefined ? null : parseI64(b);
  if (v === null) throw new RespError(NOT_INTEGER);
  return Number(v);
}

/** Set bits per byte value. */
const POP = new Uint8Array(256);
for (let i = 1; i < 256; i++) POP[i] = (i & 1) + (POP[i >> 1] as number);

function popcount(b: Buffer, from: number, to: number): number {
  let n = 0;
  for (let i = from; i <= to; i++) n += POP[b[i] as number] as number;
  return n;
}

/** The most bytes a string under `c`'s key may have: the node's --max-value-bytes for a durable key. */
function byteLimit(c: Ctx): number {
  return c.ks instanceof DurableTx ? c.ks.valueLimit : MAX_STRING_BYTES;
}

/** SETBIT key offset 0|1: the previous bit. Writes (and notifies `setbit`) only when the string grows or the bit changes, as Redis 7.2. */
export function setbit(c: Ctx, a: Buffer[]): Reply {
  const key = keyName(a[0]);
  const off = offsetArg(a[1]);
  const bv = a[2] === undefined ? null : parseI64(a[2]);
  if (bv !== 0n && bv !== 1n) throw new RespError(BAD_BIT);
  const on = bv === 1n ? 1 : 0;
  const cur = stringOf(c.ks.get(key));
  const byte = Math.floor(off / 8);
  const mask = 1 << (7 - (off & 7));
  const old = cur !== undefined && byte < cur.length ? ((cur[byte] as number) & mask) !== 0 ? 1 : 0 : 0;
  const grows = cur === undefined || byte >= cur.length;
  if (!grows && old === on) {
    // Redis unshares the value even when nothing changes: the key's encoding becomes raw.
    markRaw(cur);
    return R.int(old);
  }
  const len = Math.max(cur?.length ?? 0, byte + 1);
  const limit = byteLimit(c);
  if (len > limit) throw new RespError(`ERR the value of '${key}' would be ${len} bytes; the limit is ${limit} (--max-value-bytes)`);
  // A new buffer rather than an in-place edit: a reply may still hold the old bytes.
  const out = Buffer.alloc(len);
  cur?.copy(out);
  out[byte] = on === 1 ? (out[byte] as number) | mask : (out[byte] as number) & ~mask;
  markRaw(out);
  c.ks.set(key, { type: 'string', value: out }, 'keep', 'setbit');
  return R.int(old);
}

/** GETBIT key offset: 0 past the end or for a missing key. */
export function getbit(c: Ctx, a: Buffer[]): Reply {
  const key = keyName(a[0]);
  const off = offsetArg(a[1]);
  const cur = stringOf(c.ks.get(key));
  const byte = Math.floor(off / 8);
  if (cur === undefined || byte >= cur.length) return R.int(0);
  return R.int(((cur[byte] as number) >> (7 - (off & 7))) & 1);
}

/** A `start end [BYTE|BIT]` range resolved against a string of `len` bytes, in bits (inclusive); undefined when empty. */
function bitRange(len: number, start0: number, end0: number, isBit: boolean): [number, number] | undefined {
  const total = isBit ? len * 8 : len;
  let start = start0;
  let end = end0;
  if (start < 0) start = total + start;
  if (end < 0) end = total + end;
  if (start < 0) start = 0;
  if (end < 0) end = 0;
  if (end >= total) end = total - 1;
  if (start > end) return undefined;
  return isBit ? [start, end] : [start * 8, end * 8 + 7];
}

function unitArg(b: Buffer | undefined): boolean {
  const w = word(b);
  if (w === 'BIT') return true;
  if (w === 'BYTE') return false;
  throw new RespError(SYNTAX);
}

/** Set bits from bit `from` to bit `to` inclusive. */
function countBits(v: Buffer, from: number, to: number): number {
  const fb = Math.floor(from / 8);
  const tb = Math.floor(to / 8);
  let n = popcount(v, fb, tb);
  // Take out the bits of the edge bytes outside the range.
  const headMask = ~((1 << (8 - (from & 7))) - 1) & 0xff;
  const tailMask = (1 << (7 - (to & 7))) - 1;
  n -= POP[(v[fb] as number) & headMask] as number;
  n -= POP[(v[tb] as number) & tailMask] as number;
  return n;
}

/** BITCOUNT key [start end [BYTE|BIT]]. A missing key answers 0 before the arguments are checked, as Redis does. */
export function bitcount(c: Ctx, a: Buffer[]): Reply {
  const v = stringOf(c.ks.get(keyName(a[0])));
  if (v === undefined) return R.int(0);
  if (a.length === 1) return R.int(popcount(v, 0, v.length - 1));
  if (a.length !== 3 && a.length !== 4) throw new RespError(SYNTAX);
  const start = longArg(a[1]);
  const end = longArg(a[2]);
  if (start < 0 && end < 0 && start > end) return R.int(0);
  const isBit = a.length === 4 ? unitArg(a[3]) : false;
  const r = bitRange(v.length, start, end, isBit);
  return R.int(r === undefined ? 0 : countBits(v, r[0], r[1]));
}

/**
 * BITPOS key 0|1 [start [end [BYTE|BIT]]]: the first bit with that value, -1 when none. Looking
 * for a 0 without an explicit end finds the first bit past the string (it is zero-padded).
 */
export function bitpos(c: Ctx, a: Buffer[]): Reply {
  const key = keyName(a[0]);
  const bit = longArg(a[1]);
  if (bit !== 0 && bit !== 1) throw new RespError('ERR The bit argument must be 1 or 0.');
  const v = stringOf(c.ks.get(key));
  if (v === undefined) return R.int(bit === 1 ? -1 : 0);
  let range: [number, number] | undefined;
  let endGiven = false;
  if (a.length === 2) range = v.length === 0 ? undefined : [0, v.length * 8 - 1];
  else if (a.length <= 5) {
    const start = longArg(a[2]);
    const isBit = a.length === 5 ? unitArg(a[4]) : false;
    let end: number;
    if (a.length >= 4) {
      end = longArg(a[3]);
      endGiven = true;
    } else end = isBit ? v.length * 8 + 7 : v.length - 1;
    range = bitRange(v.length, start, end, isBit);
  } else throw new RespError(SYNTAX);
  if (range === undefined) return R.int(-1);
  const [from, to] = range;
  for (let i = from; i <= to; ) {
    // Whole bytes that cannot hold the bit are skipped at once.
    if ((i & 7) === 0 && i + 7 <= to && (v[Math.floor(i / 8)] as number) === (bit === 1 ? 0 : 0xff)) {
      i += 8;
      continue;
    }
    if ((((v[Math.floor(i / 8)] as number) >> (7 - (i & 7))) & 1) === bit) return R.int(i);
    i++;
  }
  if (bit === 1 || endGiven) return R.int(-1);
  // The zero bit just past the range: the range ends at the string's last byte.
  return R.int((Math.floor(to / 8) + 1) * 8);
}

/** BITOP AND|OR|XOR|NOT destkey key…: the length of the string stored at destkey (0 deletes it). */
export function bitop(c: Ctx, a: Buffer[]): Reply {
  const op = word(a[0]);
  if (op !== 'AND' && op !== 'OR' && op !== 'XOR' && op !== 'NOT') throw new RespError(SYNTAX);
  if (op === 'NOT' && a.length !== 3) throw new RespError('ERR BITOP NOT must be called with a single source key.');
  const dest = keyName(a[1]);
  const srcs: Buffer[] = [];
  let len = 0;
  for (let i = 2; i < a.length; i++) {
    // A missing source is an empty string; any other type is WRONGTYPE (checked before any write).
    const v = stringOf(c.ks.get(keyName(a[i]))) ?? Buffer.alloc(0);
    srcs.push(v);
    if (v.length > len) len = v.length;
  }
  if (len === 0) {
    c.ks.delete(dest, 'del');
    return R.int(0);
  }
  const limit = byteLimit(c);
  if (len > limit) throw new RespError(`ERR the value of '${dest}' would be ${len} bytes; the limit is ${limit} (--max-value-bytes)`);
  const out = Buffer.alloc(len);
  const first = srcs[0] as Buffer;
  if (op === 'NOT') {
    for (let j = 0; j < len; j++) out[j] = ~(first[j] as number) & 0xff;
  } else {
    // Shorter strings are padded with zero bytes (so AND with a shorter source clears the tail).
    first.copy(out);
    for (let s = 1; s < srcs.length; s++) {
      const src = srcs[s] as Buffer;
      for (let j = 0; j < len; j++) {
        const b = j < src.length ? (src[j] as number) : 0;
        if (op === 'AND') out[j] = (out[j] as number) & b;
        else if (op === 'OR') out[j] = (out[j] as number) | b;
        else out[j] = (out[j] as number) ^ b;
      }
    }
  }
  markRaw(out);
  c.ks.set(dest, { type: 'string', value: out }, 0, 'set');
  return R.int(len);
}
