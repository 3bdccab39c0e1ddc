/** JSON shapes of the HTTP API and strict readers for request input (clear errors naming the field). */
import { isUtf8 } from 'node:buffer';
import type { FastifyRequest } from 'fastify';
import { InvalidArgumentError } from '../../errors.js';
import type { KeyValue, WatchEvent } from '../../kv/index.js';

/** A kv as JSON: `value` is UTF-8 text, or base64 with `encoding: "base64"` when not valid UTF-8. */
export interface KeyValueJson {
  key: string;
  value?: string;
  encoding?: 'base64';
  createRevision: number;
  modRevision: number;
  version: number;
  lease: number;
}

/** The content type of a JSON answer, as fastify sets it for an object. */
export const JSON_CONTENT_TYPE = 'application/json; charset=utf-8';

/** Encodes bytes as `{value}` or `{value, encoding: "base64"}`. */
export function encodeValue(value: Uint8Array): { value: string; encoding?: 'base64' } {
  const buf = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  return isUtf8(buf) ? { value: buf.toString('utf8') } : { value: buf.toString('base64'), encoding: 'base64' };
}

/** A kv as JSON; `keysOnly` leaves out the value. */
export function kvToJson(kv: KeyValue, keysOnly = false): KeyValueJson {
  const out: KeyValueJson = {
    key: kv.key,
    createRevision: kv.createRevision,
    modRevision: kv.modRevision,
    version: kv.version,
    lease: kv.lease,
  };
  if (!keysOnly) Object.assign(out, encodeValue(kv.value));
  return out;
}

/**
 * Upper bound, in bytes, of the JSON texts {@link kvJsonBytes} keeps: enough for the hot ranges
 * of a config store, small beside the view itself.
 */
const KV_JSON_CACHE_BYTES = 32 * 1024 * 1024;
/** Upper bound of the kvs {@link kvJsonBytes} keeps, so small values cannot hold many replaced kvs alive. */
const KV_JSON_CACHE_ENTRIES = 65_536;

/**
 * A first-in-first-out cache of one JSON form per KeyValue object, within
 * {@link KV_JSON_CACHE_BYTES} (counted as the form's length) and {@link KV_JSON_CACHE_ENTRIES}.
 * A kv is immutable (a new revision of a key is a new object in the view), so a replaced kv's
 * entry simply ages out.
 */
class KvJsonCache<V extends Buffer | string> {
  private readonly map = new Map<KeyValue, V>();
  private size = 0;

  get(kv: KeyValue, make: (json: string) => V): V {
    let v = this.map.get(kv);
    if (v !== undefined) return v;
    v = make(JSON.stringify(kvToJson(kv)));
    if (v.length <= KV_JSON_CACHE_BYTES / 64) {
      this.map.set(kv, v);
      this.size += v.length;
      while (this.size > KV_JSON_CACHE_BYTES || this.map.size > KV_JSON_CACHE_ENTRIES) {
        const first = this.map.entries().next().value as [KeyValue, V];
        this.map.delete(first[0]);
        this.size -= first[1].length;
      }
    }
    return v;
  }
}

const kvJsonCache = new KvJsonCache<Buffer>();
const kvTextCache = new KvJsonCache<string>();
const toBytes = (json: string): Buffer => Buffer.from(json);
const asText = (json: string): string => json;

/**
 * The UTF-8 bytes of `JSON.stringify(kvToJson(kv))`, kept per KeyValue object, so a read of keys
 * that did not change since the last one copies their bytes instead of building, serialising and
 * encoding a thousand objects again (issue 17, range ≥ 3× etcd: JSON.stringify and the UTF-8
 * encoding of the answer were about a third of a 1,000-key range).
 */
export function kvJsonBytes(kv: KeyValue): Buffer {
  return kvJsonCache.get(kv, toBytes);
}

/**
 * `JSON.stringify(kvToJson(kv))` as a string, kept like {@link kvJsonBytes}. A one-key GET
 * answers with a string: Node then sends the response head and body in one socket write, where a
 * Buffer body goes out as a second buffered chunk through the stream's `writev` path
 * (docs/performance.md, issue 17).
 */
export function kvJsonText(kv: KeyValue): string {
  return kvTextCache.get(kv, asText);
}

/** A watch event as JSON. */
export function eventToJson(ev: WatchEvent): { type: 'put' | 'delete'; kv: KeyValueJson; prevKv?: KeyValueJson } {
  const out: { type: 'put' | 'delete'; kv: KeyValueJson; prevKv?: KeyValueJson } = {
    type: ev.type,
    kv: ev.type === 'delete' ? { key: ev.kv.key, createRevision: 0, modRevision: ev.kv.modRevision, version: 0, lease: 0 } : kvToJson(ev.kv),
  };
  if (ev.prevKv) out.prevKv = kvToJson(ev.prevKv);
  return out;
}

/**
 * Reads a JSON object body and rejects unknown fields.
 * @throws InvalidArgumentError when the body is not an object or has a field outside `allowed`.
 */
export function readObject(body: unknown, allowed: readonly string[], what = 'body'): Record<string, unknown> {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new InvalidArgumentError(`${what} must be a JSON object`);
  }
  for (const k of Object.keys(body)) {
    if (!allowed.includes(k)) {
      throw new InvalidArgumentError(`unknown field '${k}' in ${what}; allowed: ${allowed.join(', ')}`, { field: k });
    }
  }
  return body as Record<string, unknown>;
}

/** Reads an optional string field. @throws InvalidArgumentError on a wrong type. */
export function optString(o: Record<string, unknown>, name: string): string | undefined {
  const v = o[name];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw new InvalidArgumentError(`'${name}' must be a string`, { field: name });
  return v;
}

/** Reads a required string field. @throws InvalidArgumentError when missing or not a string. */
export function reqString(o: Record<string, unknown>, name: string): string {
  const v = optString(o, name);
  if (v === undefined) throw new InvalidArgumentError(`'${name}' is required`, { field: name });
  return v;
}

/** Reads an optional boolean field. @throws InvalidArgumentError on a wrong type. */
export function optBool(o: Record<string, unknown>, name: string): boolean | undefined {
  const v = o[name];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'boolean') throw new InvalidArgumentError(`'${name}' must be true or false`, { field: name });
  return v;
}

/**
 * Reads an optional non-negative safe integer field (numbers or digit strings, since lease ids
 * may come from clients that keep them as strings).
 * @throws InvalidArgumentError on a wrong type or range.
 */
export function optInt(o: Record<string, unknown>, name: string, min = 0, max = Number.MAX_SAFE_INTEGER): number | undefined {
  const v = o[name];
  if (v === undefined || v === null) return undefined;
  const n = typeof v === 'string' && /^-?\d+$/.test(v) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isSafeInteger(n)) throw new InvalidArgumentError(`'${name}' must be an integer`, { field: name });
  if (n < min || n > max) throw new InvalidArgumentError(`'${name}' must be between ${min} and ${max}`, { field: name, value: n });
  return n;
}

/** Decodes a value field: text, or base64 when `encoding` is "base64". @throws InvalidArgumentError for bad base64. */
export function decodeValue(value: unknown, encoding: unknown, what = 'value'): Uint8Array {
  if (typeof value !== 'string') throw new InvalidArgumentError(`'${what}' must be a string`, { field: what });
  if (encoding === undefined || encoding === null || encoding === 'utf8' || encoding === 'utf-8') return Buffer.from(value, 'utf8');
  if (encoding === 'base64') {
    if (!/^[A-Za-z0-9+/_-]*={0,2}$/.test(value)) throw new InvalidArgumentError(`'${what}' is not valid base64`, { field: what });
    return Buffer.from(value, 'base64');
  }
  throw new InvalidArgumentError(`'encoding' must be "utf8" or "base64"`, { field: 'encoding' });
}

/** Query-string flag: `true`, `1`, or present with no value. @throws InvalidArgumentError for other values. */
export function queryBool(q: Record<string, unknown>, name: string): boolean {
  const v = q[name];
  if (v === undefined) return false;
  if (v === '' || v === 'true' || v === '1') return true;
  if (v === 'false' || v === '0') return false;
  throw new InvalidArgumentError(`query parameter '${name}' must be true or false`, { field: name });
}

/** Query-string integer. @throws InvalidArgumentError when not a non-negative integer within `max`. */
export function queryInt(q: Record<string, unknown>, name: string, max = Number.MAX_SAFE_INTEGER): number | undefined {
  const v = q[name];
  if (v === undefined || v === '') return undefined;
  if (typeof v !== 'string' || !/^\d+$/.test(v) || !Number.isSafeInteger(Number(v)) || Number(v) > max) {
    throw new InvalidArgumentError(`query parameter '${name}' must be a non-negative integer`, { field: name });
  }
  return Number(v);
}

/** Reads the wildcard key of `/v1/kv/*`-style routes (fastify has already percent-decoded it). */
export function wildcardKey(params: unknown): string {
  const key = (params as Record<string, string | undefined>)['*'];
  if (key === undefined) throw new InvalidArgumentError('missing key in path');
  return key;
}

/**
 * The JSON body of a request; bodies sent without a JSON content type (`curl -d '{…}'` sends
 * form encoding) are parsed as JSON too. `example` shows the expected shape in the error.
 * @throws InvalidArgumentError when the body is missing, not JSON, or not an object.
 */
export function jsonBody(req: FastifyRequest, example: string): Record<string, unknown> {
  let body: unknown = req.body;
  if (Buffer.isBuffer(body)) {
    if (body.length === 0) body = undefined;
    else {
      try {
        body = JSON.parse(body.toString('utf8'));
      } catch {
        throw new InvalidArgumentError(`the body must be JSON such as ${example}`);
      }
    }
  }
  if (body === undefined || body === null) throw new InvalidArgumentError(`missing body: send JSON such as ${example}`);
  if (typeof body !== 'object' || Array.isArray(body)) throw new InvalidArgumentError(`the body must be a JSON object such as ${example}`);
  return body as Record<string, unknown>;
}
