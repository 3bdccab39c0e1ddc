/** Key validation and ordering: UTF-8 byte order, prefix ranges, size limits (DESIGN.md §2). */
import { InvalidArgumentError, TooLargeError } from '../errors.js';
import type { KeyRange } from './types.js';

/** The largest key in UTF-8 bytes (DESIGN.md §2: 4 KiB). */
export const MAX_KEY_BYTES = 4096;

/**
 * Keys that start with U+0000 belong to Beacon itself (users, roles, API keys, namespace
 * policies). No client API can name them: {@link validateKey} refuses them and
 * {@link clampRange} moves every client range past them.
 */
export const SYSTEM_PREFIX = '\u0000';

/** The first key a client may use: every key below it is a system key. */
export const FIRST_USER_KEY = '\u0001';

/** True for a key reserved to Beacon itself. */
export function isSystemKey(key: string): boolean {
  return key.startsWith(SYSTEM_PREFIX);
}

/** Moves a client range past the system keys (only a range starting at "" can reach them). */
export function clampRange(key: string, rangeEnd: string | null | undefined): { key: string; rangeEnd: string | null | undefined } {
  if (rangeEnd !== undefined && compareKeys(key, FIRST_USER_KEY) < 0) return { key: FIRST_USER_KEY, rangeEnd };
  return { key, rangeEnd };
}

/**
 * Compares two strings in UTF-8 byte order (which is Unicode code point order). JavaScript's `<`
 * compares UTF-16 code units, which differs only between surrogate pairs and U+E000–U+FFFF.
 * Returns a negative number, 0 or a positive number.
 */
export function compareKeys(a: string, b: string): number {
  if (a === b) return 0;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    let ca = a.charCodeAt(i);
    let cb = b.charCodeAt(i);
    if (ca !== cb) {
      if (ca >= 0xd800 && cb >= 0xd800) {
        ca = ca >= 0xe000 ? ca - 0x800 : ca + 0x2000;
        cb = cb >= 0xe000 ? cb - 0x800 : cb + 0x2000;
      }
      return ca - cb;
    }
  }
  return a.length - b.length;
}

/**
 * The smallest key greater than every key that starts with `prefix`, or null when there is none
 * (an empty prefix, or one made only of U+10FFFF). `[prefix, prefixEnd(prefix))` is the prefix range.
 */
export function prefixEnd(prefix: string): string | null {
  const cps = Array.from(prefix);
  while (cps.length > 0) {
    const last = cps.pop() as string;
    const cp = last.codePointAt(0) as number;
    if (cp < 0x10ffff) {
      let next = cp + 1;
      if (next === 0xd800) next = 0xe000; // skip the surrogate block, which is not a code point
      return cps.join('') + String.fromCodePoint(next);
    }
  }
  return null;
}

/** True when `key` is inside `[start, end)`; `end` undefined means exactly `start`, null means unbounded. */
export function inRange(key: string, start: string, end: string | null | undefined): boolean {
  if (end === undefined) return key === start;
  if (compareKeys(key, start) < 0) return false;
  return end === null || compareKeys(key, end) < 0;
}

/**
 * Checks a key given by a client: a non-empty string of well-formed UTF-8 of at most
 * {@link MAX_KEY_BYTES} bytes that is not a system key.
 * @throws InvalidArgumentError when empty, reserved or holding a lone surrogate; TooLargeError when too long.
 */
export function validateKey(key: unknown, what = 'key'): string {
  const k = validateStoreKey(key, what);
  if (isSystemKey(k)) throw new InvalidArgumentError(`${what} must not start with U+0000 (reserved for Beacon itself)`);
  return k;
}

/**
 * Checks a key at the store level, where system keys are allowed.
 * @throws InvalidArgumentError when empty or holding a lone surrogate; TooLargeError when too long.
 */
export function validateStoreKey(key: unknown, what = 'key'): string {
  if (typeof key !== 'string') throw new InvalidArgumentError(`${what} must be a string`);
  if (key.length === 0) throw new InvalidArgumentError(`${what} must not be empty`);
  if (!key.isWellFormed()) throw new InvalidArgumentError(`${what} is not valid UTF-8 (lone surrogate)`);
  const bytes = Buffer.byteLength(key, 'utf8');
  if (bytes > MAX_KEY_BYTES) {
    throw new TooLargeError(`${what} is ${bytes} bytes; the limit is ${MAX_KEY_BYTES}`, { bytes, limit: MAX_KEY_BYTES });
  }
  return key;
}

/**
 * Checks a range end: null/undefined pass through; a string must be a valid key-like string
 * (the empty string is read as "no upper bound", like etcd's `\0`).
 */
export function validateRangeEnd(rangeEnd: unknown): string | null | undefined {
  if (rangeEnd === undefined || rangeEnd === null) return rangeEnd;
  if (typeof rangeEnd !== 'string') throw new InvalidArgumentError('rangeEnd must be a string');
  if (rangeEnd === '' || rangeEnd === '\0') return null;
  return validateKey(rangeEnd, 'rangeEnd');
}

/**
 * The range of every key that starts with `prefix`, in canonical form: `""` is every client key
 * (`[FIRST_USER_KEY, end)`), any other prefix `[prefix, prefixEnd(prefix))`. Does not validate.
 */
export function prefixRange(prefix: string): KeyRange {
  if (prefix === '') return { key: FIRST_USER_KEY, rangeEnd: null };
  return { key: prefix, rangeEnd: prefixEnd(prefix) };
}

/** A range as a client gives it on any face (JSON body, WebSocket frame or query string). */
export interface RangeInput {
  key: unknown;
  rangeEnd?: unknown;
  prefix?: unknown;
}

/**
 * The one parse of a client range (key, `rangeEnd`, `prefix`) into the canonical {@link KeyRange}
 * that both authorization and execution (store, watch hub) use, so they can never disagree.
 * Semantics (etcd's, docs/api.md "Ranges"):
 * - `rangeEnd` absent, null or `""`: the single key `key` (etcd: an empty range_end means one key);
 * - `rangeEnd` `"\0"`: every key ≥ `key` (canonical `rangeEnd: null`);
 * - another `rangeEnd`: `[key, rangeEnd)`, which must be greater than `key`;
 * - `prefix: true`: every key that starts with `key` (`""`: every key); `rangeEnd` must then be absent.
 * A range never reaches the system keys: its start is moved to {@link FIRST_USER_KEY}.
 * @throws InvalidArgumentError for a wrong type, an empty or reserved single key, both `prefix`
 * and `rangeEnd`, or a `rangeEnd` not above `key`; TooLargeError for a key over {@link MAX_KEY_BYTES}.
 */
export function parseRange(input: RangeInput): KeyRange {
  const { key, rangeEnd, prefix } = input;
  if (typeof key !== 'string') throw new InvalidArgumentError('key must be a string', { field: 'key' });
  if (prefix !== undefined && prefix !== null && typeof prefix !== 'boolean') throw new InvalidArgumentError("'prefix' must be true or false", { field: 'prefix' });
  if (rangeEnd !== undefined && rangeEnd !== null && typeof rangeEnd !== 'string') throw new InvalidArgumentError("'rangeEnd' must be a string", { field: 'rangeEnd' });
  if (prefix === true) {
    if (typeof rangeEnd === 'string') throw new InvalidArgumentError("give either 'prefix' or 'rangeEnd', not both", { field: 'rangeEnd' });
    if (key === '') return prefixRange('');
    return prefixRange(validateKey(key));
  }
  if (rangeEnd === undefined || rangeEnd === null || rangeEnd === '') return { key: validateKey(key) };
  if (key !== '') validateStoreKey(key);
  if (rangeEnd === SYSTEM_PREFIX) return clampRange(key, null) as KeyRange;
  const end = validateKey(rangeEnd, 'rangeEnd');
  const start = clampRange(key, end).key;
  if (compareKeys(end, start) <= 0) throw new InvalidArgumentError('rangeEnd must be greater than key', { field: 'rangeEnd' });
  return { key: start, rangeEnd: end };
}

/**
 * True when `r` is in canonical form ({@link parseRange}'s output): a single key, or a range whose
 * start is a client key and whose end is null or a key above the start. Authorization refuses anything else.
 */
export function isCanonicalRange(r: KeyRange): boolean {
  if (r.rangeEnd === undefined) return true;
  if (compareKeys(r.key, FIRST_USER_KEY) < 0) return false;
  if (r.rangeEnd === null) return true;
  return typeof r.rangeEnd === 'string' && !isSystemKey(r.rangeEnd) && compareKeys(r.rangeEnd, r.key) > 0;
}
