/** Argument parsing with Redis's error wording (integers, floats, options). */
import { RespError } from './keyspace.js';

/** Redis's error for a non-integer argument. */
export const NOT_INTEGER = 'ERR value is not an integer or out of range';
/** Redis's error for a non-float argument. */
export const NOT_FLOAT = 'ERR value is not a valid float';
/** Redis's generic syntax error. */
export const SYNTAX = 'ERR syntax error';

const INT_RE = /^(0|-?[1-9][0-9]*)$/;
const I64_MIN = -(2n ** 63n);
const I64_MAX = 2n ** 63n - 1n;

/** Parses a signed 64-bit integer as Redis's string2ll (no spaces, no '+'); null if invalid. */
export function parseI64(b: Buffer | string): bigint | null {
  const s = typeof b === 'string' ? b : b.toString('latin1');
  if (s.length === 0 || s.length > 20 || !INT_RE.test(s)) return null;
  const v = BigInt(s);
  return v < I64_MIN || v > I64_MAX ? null : v;
}

/** A 64-bit integer argument as a JS number (safe range) or bigint. @throws RespError `msg`. */
export function intArg(b: Buffer | undefined, msg = NOT_INTEGER): number {
  if (b === undefined) throw new RespError(SYNTAX);
  const v = parseI64(b);
  if (v === null) throw new RespError(msg);
  if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) return Number(v);
  return Number(v);
}

/** A bigint argument. @throws RespError not an integer. */
export function bigArg(b: Buffer | undefined): bigint {
  if (b === undefined) throw new RespError(SYNTAX);
  const v = parseI64(b);
  if (v === null) throw new RespError(NOT_INTEGER);
  return v;
}

/** Whether `v` fits a signed 64-bit integer. */
export function fitsI64(v: bigint): boolean {
  return v >= I64_MIN && v <= I64_MAX;
}

/**
 * Parses a double as Redis's string2ld/getDoubleFromObject do (strtod over the whole argument):
 * decimal or hexadecimal (`0x10`, `0x1p-3`) forms, `inf`/`infinity` with a sign; no NaN, no
 * leading white space, nothing left over, not empty; a decimal that overflows to ±inf or
 * underflows to 0 (strtod's ERANGE) is refused. Returns null if invalid.
 */
export function parseDouble(b: Buffer | string): number | null {
  const s = typeof b === 'string' ? b : b.toString('latin1');
  if (s.length === 0 || s.length > 5000 || /^[ \t\n\v\f\r]/.test(s)) return null;
  const v = strtodWhole(s);
  if (v === null || Number.isNaN(v)) return null;
  if (!Number.isFinite(v) && !/inf/i.test(s)) return null; // overflow
  if (v === 0 && /^[+-]?(0x)?[0-9a-f.]*[1-9a-f]/i.test(s.replace(/[eEpP].*$/, ''))) return null; // underflow
  return v;
}

/**
 * Reads `s` as C's strtod does when the whole string must be consumed (Redis's score bounds of
 * ZRANGEBYSCORE, ZCOUNT…): leading white space is skipped, decimal and hexadecimal (`0x1p3`)
 * forms, `inf`/`infinity` and `nan` with an optional sign. An empty string reads as 0 (strtod
 * converts nothing and stops at its end). Returns null when bytes are left over; NaN for `nan`.
 */
export function strtodWhole(s: string): number | null {
  if (s.length === 0) return 0;
  const m = /^[ \t\n\v\f\r]*([+-]?)(?:(inf(?:inity)?|nan)|0x([0-9a-f]*)(?:\.([0-9a-f]*))?(?:p([+-]?[0-9]+))?|([0-9]*\.?[0-9]*(?:e[+-]?[0-9]+)?))$/i.exec(s);
  if (m === null) return null;
  const sign = m[1] === '-' ? -1 : 1;
  if (m[2] !== undefined) return m[2].toLowerCase() === 'nan' ? NaN : sign * Infinity;
  if (m[6] !== undefined) {
    // A decimal needs a digit before its exponent; Number() reads the rest as strtod does.
    if (!/[0-9]/.test(m[6].split(/e/i)[0] as string)) return null;
    return sign * Number(m[6]);
  }
  const int = m[3] ?? '';
  const frac = m[4] ?? '';
  if (int.length + frac.length === 0) return null;
  let v = 0;
  for (const d of int + frac) v = v * 16 + parseInt(d, 16);
  return sign * v * 2 ** (Number(m[5] ?? 0) - 4 * frac.length);
}

/** A float argument. @throws RespError not a valid float. */
export function floatArg(b: Buffer | undefined, msg = NOT_FLOAT): number {
  if (b === undefined) throw new RespError(SYNTAX);
  const v = parseDouble(b);
  if (v === null) throw new RespError(msg);
  return v;
}

/** An argument as an upper-case ASCII word (for options). */
export function word(b: Buffer | undefined): string {
  return b === undefined ? '' : b.toString('latin1').toUpperCase();
}

/**
 * Formats an INCRBYFLOAT/HINCRBYFLOAT result as Redis's `%.17Lf`-then-trim does, never with an
 * exponent: integers in full (`92233720368547758080000`), tiny values to 17 decimals (so below
 * 1e-17 they read `0`), others in their shortest form. Redis computes in long double, Beacon in
 * double: see docs/resp.md "What differs".
 */
export function formatFloat(v: number): string {
  if (Number.isInteger(v)) return Math.abs(v) < 1e21 ? v.toFixed(0) : BigInt(v).toString();
  const s = String(v);
  if (!s.includes('e')) return s;
  return v.toFixed(17).replace(/\.?0+$/, '');
}

/**
 * Most elements a negative count may ask of SRANDMEMBER or HRANDFIELD (repeats allowed, so the
 * reply does not shrink to the collection): Redis builds any size; Beacon refuses past this
 * rather than build a reply that would exhaust the node's memory.
 */
export const RANDOM_REPLY_MAX = 10_000_000;

/**
 * The count argument of SRANDMEMBER/HRANDFIELD: within ±LONG_MAX as Redis reads it, and a negative
 * count at most {@link RANDOM_REPLY_MAX} elements. @throws RespError out of range / not an integer.
 */
export function randomCount(b: Buffer, perElement = 1): number {
  const n = bigArg(b);
  if (n < -9223372036854775807n / BigInt(perElement)) throw new RespError('ERR value is out of range');
  if (n < -BigInt(RANDOM_REPLY_MAX)) throw new RespError(`ERR value is out of range: a negative count may ask for at most ${RANDOM_REPLY_MAX} elements`);
  return Number(n);
}

/**
 * What SRANDMEMBER, SPOP, HRANDFIELD and ZRANDMEMBER pick for a count (Redis's rule): a count
 * of 0 or more gives up to that many distinct items, a negative one exactly |count| items that
 * may repeat (none from an empty collection).
 */
export function randomPicks<T>(items: readonly T[], count: number): T[] {
  if (count < 0) {
    const out: T[] = [];
    if (items.length > 0) for (let i = 0; i < -count; i++) out.push(items[Math.floor(Math.random() * items.length)] as T);
    return out;
  }
  // A partial Fisher–Yates shuffle of a copy: its first n items are a uniform distinct sample.
  const copy = items.slice();
  const n = Math.min(count, copy.length);
  for (let i = 0; i < n; i++) {
    const j = i + Math.floor(Math.random() * (copy.length - i));
    [copy[i], copy[j]] = [copy[j] as T, copy[i] as T];
  }
  copy.length = n;
  return copy;
}
