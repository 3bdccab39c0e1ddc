/** How config values map between request JSON and stored bytes. */
import { isUtf8 } from 'node:buffer';
import { InvalidArgumentError } from '../errors.js';
import { DEFAULT_MAX_JSON_DEPTH, depthExceeds, textDepthExceeds, tooDeep } from './limits.js';

/**
 * Encodes the `value` of a config write as the bytes to store: a JSON string is stored as its
 * raw UTF-8 text (so `/v1/kv` and RESP readers see `postgresql://…`, not `"postgresql://…"`);
 * any other JSON value (object, array, number, boolean) is stored as compact JSON text.
 * `maxDepth` caps how deeply objects and arrays nest (`--max-json-depth`).
 * @throws InvalidArgumentError when the value is missing, null, a non-finite number, or nested
 * deeper than `maxDepth` (details `{field, limit}`).
 * @example encodeConfigValue({ pool: 5 }) // → bytes of '{"pool":5}'
 */
export function encodeConfigValue(value: unknown, maxDepth = DEFAULT_MAX_JSON_DEPTH): Uint8Array {
  if (value === undefined) throw new InvalidArgumentError("'value' is required", { field: 'value' });
  if (value === null) throw new InvalidArgumentError("'value' must not be null; delete the config instead", { field: 'value' });
  if (typeof value === 'string') return Buffer.from(value, 'utf8');
  if (typeof value === 'number' && !Number.isFinite(value)) {
    throw new InvalidArgumentError("'value' must be a finite number", { field: 'value' });
  }
  if (depthExceeds(value, maxDepth)) throw tooDeep("'value'", maxDepth, '--max-json-depth', { field: 'value' });
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
 * Decodes stored bytes for a reader: text that is a JSON object or array nested at most
 * `maxDepth` deep is returned parsed, other UTF-8 text as a string (so `"5"` stays the string
 * `"5"`, and JSON stored through `/v1/kv` deeper than `--max-json-depth` comes back as its
 * text), other bytes as base64.
 */
export function decodeConfigValue(bytes: Uint8Array, maxDepth = DEFAULT_MAX_JSON_DEPTH): DecodedConfigValue {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (!isUtf8(buf)) return { value: buf.toString('base64'), encoding: 'base64', json: false };
  const text = buf.toString('utf8');
  const parsed = parseContainer(text, maxDepth);
  return parsed === undefined ? { value: text, json: false } : { value: parsed, json: true };
}

/**
 * Parses `text` when it is a JSON object or array nested at most `maxDepth` deep; undefined
 * otherwise (deeper JSON is treated as text, so reads and diffs never overflow the stack).
 */
export function parseContainer(text: string, maxDepth = DEFAULT_MAX_JSON_DEPTH): object | undefined {
  const first = /\S/.exec(text)?.[0];
  if (first !== '{' && first !== '[') return undefined;
  if (textDepthExceeds(text, maxDepth)) return undefined;
  try {
    const v: unknown = JSON.parse(text);
    return v !== null && typeof v === 'object' ? v : undefined;
  } catch {
    return undefined;
  }
}
