/**
 * Value and key encoding shared by every SDK call, written against web APIs only (TextEncoder,
 * TextDecoder, btoa/atob) so that the SDK runs unchanged in Node and in browsers.
 */
import { InvalidArgumentError } from '../src/errors.js';

/** A value as callers may give it: UTF-8 text or raw bytes. */
export type ValueInput = string | Uint8Array;

const encoder = new TextEncoder();
// `fatal` makes invalid UTF-8 throw instead of turning into U+FFFD, so we can tell text from bytes.
const strictDecoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Encodes text as UTF-8 bytes. */
export function utf8(text: string): Uint8Array {
  return encoder.encode(text);
}

/** Decodes bytes as UTF-8, or returns `undefined` when they are not valid UTF-8. */
export function tryUtf8(bytes: Uint8Array): string | undefined {
  try {
    return strictDecoder.decode(bytes);
  } catch {
    return undefined;
  }
}

/** Encodes bytes as standard base64 (with padding). */
export function toBase64(bytes: Uint8Array): string {
  let out = '';
  // btoa takes a "binary string"; build it in chunks to stay clear of argument-count limits.
  const CHUNK = 0x8000;
  for (let i = 0; i < bytes.length; i += CHUNK) {
    out += String.fromCharCode(...bytes.subarray(i, i + CHUNK));
  }
  return btoa(out);
}

/**
 * Decodes standard or URL-safe base64.
 * @throws InvalidArgumentError when the text is not base64.
 */
export function fromBase64(text: string): Uint8Array {
  let bin: string;
  try {
    bin = atob(text.replace(/-/g, '+').replace(/_/g, '/'));
  } catch {
    throw new InvalidArgumentError('value is not valid base64');
  }
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/**
 * The JSON form of a value on the wire: text as is, bytes as UTF-8 text when they are valid
 * UTF-8, otherwise base64 with `encoding: "base64"` (the server's own convention, DESIGN.md §2).
 */
export function valueToWire(value: ValueInput): { value: string; encoding?: 'base64' } {
  if (typeof value === 'string') return { value };
  const text = tryUtf8(value);
  return text !== undefined ? { value: text } : { value: toBase64(value), encoding: 'base64' };
}

/** Reads a wire value (`value` plus optional `encoding`) into bytes and, when UTF-8, text. */
export function valueFromWire(value: unknown, encoding: unknown): { bytes: Uint8Array; text: string | undefined } {
  if (value === undefined || value === null) return { bytes: new Uint8Array(0), text: '' };
  const raw = typeof value === 'string' ? value : JSON.stringify(value);
  if (encoding === 'base64') {
    const bytes = fromBase64(raw);
    return { bytes, text: tryUtf8(bytes) };
  }
  return { bytes: utf8(raw), text: raw };
}

/** Keys made only of characters that `encodeURIComponent` leaves alone, and `/`. */
const PATH_SAFE = /^[A-Za-z0-9\-_.!~*'()/]*$/;
/** A `.` or `..` segment, which URL parsers collapse. */
const DOT_SEGMENT = /(?:^|\/)\.\.?(?:\/|$)/;

/**
 * Percent-encodes a key for use as the tail of a URL path. Each `/`-separated segment is encoded
 * like `encodeURIComponent`, and `/` stays readable, except when a segment is `.` or `..`: URL
 * parsers (WHATWG and the server's router) would collapse those, so then every `/` is encoded too.
 * The keys `.` and `..` themselves cannot travel in a path at all; see {@link isPathUnsafeKey}.
 */
export function encodeKeyPath(key: string): string {
  // Most keys need no escaping at all: skip the split and the per-segment encoding for them.
  if (PATH_SAFE.test(key) && !DOT_SEGMENT.test(key)) return key;
  const segments = key.split('/');
  if (segments.some((s) => s === '.' || s === '..')) return encodeURIComponent(key);
  return segments.map(encodeURIComponent).join('/');
}

/** True for the two keys (`.` and `..`) that no URL path can carry; the SDK sends those inside a txn. */
export function isPathUnsafeKey(key: string): boolean {
  return key === '.' || key === '..';
}
