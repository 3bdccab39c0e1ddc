/** How config values map between request JSON and stored bytes. */
import { isUtf8 } from 'node:buffer';
import { InvalidArgumentError } from '../errors.js';

/**
 * Encodes the `value` of a config write as the bytes to store: a JSON string is stored as its
 * raw UTF-8 text (so `/v1/kv` and RESP readers see `postgresql://…`, not `"postgresql://…"`);
 * any other JSON value (object, array, number, boolean) is stored as compact JSON text.
 * @throws InvalidArgumentError when the value is missing, null or a non-finite number.
 * @example encodeConfigValue({ pool: 5 }) // → bytes of '{"pool":5}'
 */
export function encodeConfigValue(value: unknown): Uint8Array {
  if (value === undefined) throw new InvalidArgumentError("'value' is required", { field: 'value' });
  if (value === null) throw new InvalidArgumentError("'value' must not be null; delete the config instead", { field: 'value' });
  if (typeof value === 'string') return Buffer.from(value, 'utf8');
  if (typeof value === 'number' && !Number.isFinite(value)) {
    throw new InvalidArgumentError("'value' must be a finite number", { field: 'value' });
  }
  return Buffer.from(JSON.stringify(value), 'utf8');
}

/** A stored value as a reader sees it: JSON (object/array), text, or base64 bytes. */
export interface DecodedConfigValue {
  /** The parsed object or array, the text, or base64 when `encoding` is set. */
  value: unknown;
  /** Set when the bytes are not valid UTF-8 (written through `/v1/kv` or RESP). */
  encoding?: 'base64';
  /** True when `value` is a parsed JSON object or array. */
  json: boolean;
}

/**
 * Decodes stored bytes for a reader: text that is a JSON object or array is returned parsed,
 * other UTF-8 text as a string (so `"5"` stays the string `"5"`), other bytes as base64.
 */
export function decodeConfigValue(bytes: Uint8Array): DecodedConfigValue {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (!isUtf8(buf)) return { value: buf.toString('base64'), encoding: 'base64', json: false };
  const text = buf.toString('utf8');
  const parsed = parseContainer(text);
  return parsed === undefined ? { value: text, json: false } : { value: parsed, json: true };
}

/** Parses `text` when it is a JSON object or array; undefined otherwise. */
export function parseContainer(text: string): object | undefined {
  const first = /\S/.exec(text)?.[0];
  if (first !== '{' && first !== '[') return undefined;
  try {
    const v: unknown = JSON.parse(text);
    return v !== null && typeof v === 'object' ? v : undefined;
  } catch {
    return undefined;
  }
}
