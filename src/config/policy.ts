/**
 * Namespaces with policies (DESIGN.md §4): a key prefix → value format (text | json), a JSON
 * Schema checked on every write (ajv), whether values are secrets (encrypted at rest, redacted
 * for readers without `read_secret`), history retention and a default TTL. Policies are stored
 * as JSON under the system keys `"\u0000ns/<prefix>"`, so they are versioned and reach every
 * node through the change feed; each node keeps them in memory, refreshed by `store.subscribe`.
 */
import { isUtf8 } from 'node:buffer';
import { Ajv, type SchemaValidateFunction, type ValidateFunction } from 'ajv';
import { RE2JS } from 're2js';
import { InvalidArgumentError, NotFoundError, UnavailableError } from '../errors.js';
import type { OriginPolicy } from '../cache/index.js';
import { MAX_LEASE_TTL_SECONDS } from '../lease/index.js';
import {
  SYSTEM_PREFIX,
  compareKeys,
  prefixEnd,
  validateKey,
  type AuditContext,
  type KeyValue,
  type RevisionEvents,
  type Store,
} from '../kv/index.js';
import { DEFAULT_JSON_LIMITS, depthExceeds, exceededLimit, resolveJsonLimits, textDepthExceeds, tooDeep, type JsonLimits } from './limits.js';
import { encodeConfigValue } from './value.js';
import { parseEnvelope, type Keyring } from './secrets.js';

/** Where namespace policies live: one system key per prefix. */
export const POLICY_KEY_PREFIX = `${SYSTEM_PREFIX}ns/`;
/** Live keys re-encrypted per txn by {@link PolicyStore.reconcile} (one revision each batch). */
const RECONCILE_BATCH = 64;

/** How long history is kept in a namespace (either bound, or both). */
export interface HistoryRetention {
  /** Keep at most this many versions per key. */
  versions?: number;
  /** Keep versions younger than this many days. */
  days?: number;
}

/**
 * The policy of one namespace. `prefix` is a key prefix (`""` is not allowed: use a prefix
 * such as `app/`); the longest prefix that matches a key governs it.
 */
export interface NamespacePolicy {
  prefix: string;
  /** `text`: values must be UTF-8; `json`: values must be JSON text. A schema implies `json`. */
  format?: 'text' | 'json';
  /** A JSON Schema (draft 2020-12 / 07 keywords, as ajv supports; `format` keywords are not checked). */
  schema?: Record<string, unknown> | boolean;
  /** Values are encrypted at rest (AES-256-GCM under the KEK) and redacted for readers without `read_secret`. */
  secret?: boolean;
  /**
   * How much history each key keeps: enforced by the retention pass of the node that drives
   * lease expiry (`--retention-interval`); see docs/configs.md "History retention".
   */
  historyRetention?: HistoryRetention;
  /** Seconds: a write that names no lease gets a fresh lease of this TTL. */
  defaultTtl?: number;
  description?: string;
  // --- cache tier (issue 11): docs/cache.md ---------------------------------------------------
  /**
   * `memory`: the namespace's keys live in the node's cache tier (TTL, eviction, AOF) whatever
   * API writes them; `durable` (the default): kv keys. Only a memory namespace may use the
   * empty prefix `""` (every key not under a longer namespace).
   */
  storage?: 'memory' | 'durable';
  /** Read-through origin of a memory namespace: a miss fetches `url` (see {@link OriginPolicy}). */
  origin?: OriginPolicy;
  /**
   * Copies of each key of a memory namespace across the nodes of a cache cluster, the primary
   * included: 1 (the default) to 3 (docs/operations/cache-cluster.md).
   */
  replicationFactor?: number;
  /**
   * `async` (the default): a write is answered once the primary has it, and replicas follow;
   * `sync`: once every live replica has it too.
   */
  replication?: 'sync' | 'async';
  // --- end cache tier --------------------------------------------------------------------------
  /** ms since the epoch of the last change, and who made it (set by the store). */
  updatedAt?: number;
  updatedBy?: string;
}

/**
 * A key range governed by one namespace's history retention: `[key, rangeEnd)` (null:
 * unbounded) is the namespace's prefix range minus the ranges of longer (nested) namespace
 * prefixes, which govern their own keys.
 */
export interface RetentionRange {
  /** The governing namespace prefix. */
  prefix: string;
  key: string;
  rangeEnd: string | null;
  retention: HistoryRetention;
}

/** One failed schema check: a JSON Pointer into the value and what is wrong there. */
export interface SchemaViolation {
  path: string;
  message: string;
  keyword: string;
}

/** A value as a reader may see it: clear bytes, or redacted (no bytes at all). */
export type ReadView = { redacted: false; value: Uint8Array } | { redacted: true };

/** What {@link PolicyStore.reconcile} changed. */
export interface ReconcileResult {
  /** Values newly encrypted (plaintext under a secret namespace, or sealed with an older KEK). */
  encrypted: number;
  /** Values decrypted because their namespace is no longer secret. */
  decrypted: number;
  /** Values left alone because they changed while being rewritten (the new write wins). */
  skipped: number;
  /** Values left alone because they cannot be decrypted (KEK missing from the keyring, or tampered). */
  failed: number;
  /** The first {@link MAX_FAILED_KEYS} keys counted in `failed`. */
  failedKeys: string[];
  revision: number;
}

/** How many undecryptable keys a {@link ReconcileResult} names. */
export const MAX_FAILED_KEYS = 100;

/** The fields of a policy body (PUT replaces them all; PATCH /v1/namespaces merges them). */
export const POLICY_FIELDS = ['format', 'schema', 'secret', 'historyRetention', 'defaultTtl', 'description', 'storage', 'origin', 'replicationFactor', 'replication'] as const;
const FIELDS = POLICY_FIELDS;

/**
 * ajv's regular-expression engine for `pattern` and `patternProperties`: RE2 semantics (re2js),
 * which match in time linear in the input, so a pattern such as `^(a+)+$` cannot block the event
 * loop. Syntax RE2 lacks (backreferences, lookaround) makes the schema fail to compile.
 */
const linearRegExp = Object.assign(
  (pattern: string): { test: (s: string) => boolean } => {
    const re = RE2JS.compile(pattern);
    return { test: (s: string) => re.matcher(s).find() };
  },
  { code: 're2js' },
);

/** A JSON value as text with object keys sorted: equal JSON values give equal text. */
function canonicalJson(v: unknown): string {
  if (v === null || typeof v !== 'object') return JSON.stringify(v) ?? 'null';
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  const o = v as Record<string, unknown>;
  return `{${Object.keys(o)
    .sort()
    .map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`)
    .join(',')}}`;
}

/**
 * `uniqueItems` in linear time. ajv compares every pair of items that are objects or arrays,
 * so `{"uniqueItems": true}` and a 100 KB array of objects blocked the event loop for 11 s
 * (issue 9 finding 6); here each item is reduced to canonical JSON text once and looked up.
 */
const validateUniqueItems: SchemaValidateFunction = (schema: boolean, data: unknown[]): boolean => {
  if (!schema) return true;
  const seen = new Map<string, number>();
  for (let i = 0; i < data.length; i++) {
    const text = canonicalJson(data[i]);
    const j = seen.get(text);
    if (j !== undefined) {
      validateUniqueItems.errors = [{ keyword: 'uniqueItems', message: `must NOT have duplicate items (items ## ${j} and ${i} are identical)`, params: { i, j } }];
      return false;
    }
    seen.set(text, i);
  }
  return true;
};

function newAjv(): Ajv {
  // strict off: schemas written for other validators often carry unknown keywords (titles, x-…).
  const ajv = new Ajv({ allErrors: true, strict: false, validateFormats: false, code: { regExp: linearRegExp } });
  ajv.removeKeyword('uniqueItems');
  ajv.addKeyword({ keyword: 'uniqueItems', type: 'array', schemaType: 'boolean', errors: true, validate: validateUniqueItems });
  return ajv;
}

/** Resolves a local JSON Pointer `#/a/b` in `root`; undefined when it points nowhere. */
function resolvePointer(root: unknown, ref: string): unknown {
  if (ref === '#') return root;
  if (!ref.startsWith('#/')) return undefined;
  let cur: unknown = root;
  for (const raw of ref.slice(2).split('/')) {
    let part: string;
    try {
      part = decodeURIComponent(raw).replace(/~1/g, '/').replace(/~0/g, '~');
    } catch {
      return undefined;
    }
    if (cur === null || typeof cur !== 'object' || !Object.hasOwn(cur, part)) return undefined;
    cur = (cur as Record<string, unknown>)[part];
  }
  return cur;
}

/**
 * How many more subschemas a schema may reach through `$ref` than it holds itself. Each reuse
 * of a definition is validated again, so `{"allOf":[{"$ref":"#/$defs/d1"},{"$ref":"#/$defs/d1"}]}`
 * chained 20 deep (a 2 KB schema) made every write validate a million subschemas (issue 9
 * finding 6); past this bound the schema is refused when it is set.
 */
export const MAX_SCHEMA_REF_EXPANSION = 10_000;

/**
 * Refuses schema references that would make validation recurse for ever, blow up, or that
 * cannot be resolved: every `$ref` must be a local JSON Pointer (`#`, `#/$defs/x`) that exists
 * and whose expansion never reaches itself again; `$dynamicRef` and `$recursiveRef` are
 * refused. Levels reached through a `$ref` count towards `maxDepth`, so a long chain of
 * references cannot make ajv's compiler recurse past the stack either, and the schema expanded
 * through its references may hold at most {@link MAX_SCHEMA_REF_EXPANSION} more nodes than it does.
 * @throws InvalidArgumentError with `details.path`, the JSON Pointer of the offending reference.
 */
function checkRefs(root: unknown, maxDepth: number): void {
  /** The number of objects and arrays in a node expanded through its references, memoized. */
  const expanded = new Map<unknown, number>();
  let literal = 0;
  const refuse = (path: string, why: string): never => {
    throw new InvalidArgumentError(`'schema' ${why} at ${path === '' ? '/' : path}`, { field: 'schema', path: path === '' ? '/' : path });
  };
  const visit = (node: unknown, path: string, expanding: Set<unknown>, depth: number): number => {
    if (node === null || typeof node !== 'object') return 0;
    if (expanding.has(node)) refuse(path, 'has a recursive $ref');
    if (depth > maxDepth) {
      throw tooDeep("'schema' (counting levels reached through $ref)", maxDepth, '--max-schema-depth', { field: 'schema', path: path === '' ? '/' : path });
    }
    const known = expanded.get(node);
    if (known !== undefined) return known;
    literal++;
    expanding.add(node);
    let size = 1;
    const entries = Array.isArray(node) ? node.map((v, i) => [String(i), v] as const) : Object.entries(node as Record<string, unknown>);
    for (const [k, v] of entries) {
      const here = `${path}/${k.replace(/~/g, '~0').replace(/\//g, '~1')}`;
      if (!Array.isArray(node) && (k === '$dynamicRef' || k === '$recursiveRef')) refuse(here, `uses ${k}, which is not supported`);
      if (!Array.isArray(node) && k === '$ref') {
        if (typeof v !== 'string') refuse(here, 'has a $ref that is not a string');
        const target = resolvePointer(root, v as string);
        if (target === undefined) refuse(here, `has a $ref (${JSON.stringify(v)}) that is not a resolvable local JSON Pointer`);
        size += visit(target, here, expanding, depth + 1);
        continue;
      }
      size += visit(v, here, expanding, depth + 1);
    }
    expanding.delete(node);
    expanded.set(node, size);
    return size;
  };
  const total = visit(root, '', new Set(), 1);
  if (total - literal > MAX_SCHEMA_REF_EXPANSION) {
    throw new InvalidArgumentError(
      `'schema' reaches ${total} subschemas through its $refs, ${total - literal} more than it holds; at most ${MAX_SCHEMA_REF_EXPANSION} more are allowed`,
      { field: 'schema', path: '/', limit: MAX_SCHEMA_REF_EXPANSION, limitName: 'max_schema_ref_expansion' },
    );
  }
}

/**
 * Checks a policy body for `prefix` and returns it normalized (unknown fields refused; the
 * schema compiled once to prove it is valid). `limits` caps the schema's size and nesting
 * (`--max-schema-bytes`, `--max-schema-depth`; defaults 256 KiB and 64).
 * @throws InvalidArgumentError naming the bad field; for a schema over a limit, details
 * `{field: 'schema', limit}` and a message naming the limit and its flag.
 */
export function parsePolicy(prefix: string, body: unknown, limits: Pick<JsonLimits, 'maxSchemaBytes' | 'maxSchemaDepth'> = DEFAULT_JSON_LIMITS): NamespacePolicy {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new InvalidArgumentError('the policy must be a JSON object');
  const o = body as Record<string, unknown>;
  if (prefix !== '' || o.storage !== 'memory') validateKey(prefix, 'namespace prefix');
  for (const k of Object.keys(o)) {
    if (!(FIELDS as readonly string[]).includes(k) && k !== 'prefix') {
      throw new InvalidArgumentError(`unknown field '${k}' in the policy; allowed: ${FIELDS.join(', ')}`, { field: k });
    }
  }
  if (o.prefix !== undefined && o.prefix !== prefix) {
    throw new InvalidArgumentError(`'prefix' in the body (${JSON.stringify(o.prefix)}) differs from the path`, { field: 'prefix' });
  }
  const p: NamespacePolicy = { prefix };
  if (o.format !== undefined && o.format !== null) {
    if (o.format !== 'text' && o.format !== 'json') throw new InvalidArgumentError("'format' must be \"text\" or \"json\"", { field: 'format' });
    p.format = o.format;
  }
  if (o.schema !== undefined && o.schema !== null) {
    if (typeof o.schema !== 'boolean' && (typeof o.schema !== 'object' || Array.isArray(o.schema))) {
      throw new InvalidArgumentError("'schema' must be a JSON Schema object", { field: 'schema' });
    }
    // Depth first: measuring the size stringifies the schema, which recurses.
    if (depthExceeds(o.schema, limits.maxSchemaDepth)) throw tooDeep("'schema'", limits.maxSchemaDepth, '--max-schema-depth', { field: 'schema' });
    const bytes = Buffer.byteLength(JSON.stringify(o.schema), 'utf8');
    if (bytes > limits.maxSchemaBytes) {
      throw new InvalidArgumentError(`'schema' is ${bytes} bytes; the limit is ${limits.maxSchemaBytes} (set by --max-schema-bytes)`, {
        field: 'schema',
        bytes,
        limit: limits.maxSchemaBytes,
        limitName: 'max_schema_bytes',
      });
    }
    if (p.format === 'text') throw new InvalidArgumentError("a namespace with a 'schema' holds JSON; 'format' cannot be \"text\"", { field: 'format' });
    checkRefs(o.schema, limits.maxSchemaDepth);
    try {
      newAjv().compile(o.schema as Record<string, unknown>);
    } catch (err) {
      throw new InvalidArgumentError(`'schema' is not a valid JSON Schema: ${(err as Error).message}`, { field: 'schema' });
    }
    p.schema = o.schema as Record<string, unknown> | boolean;
    p.format = 'json';
  }
  if (o.secret !== undefined && o.secret !== null) {
    if (typeof o.secret !== 'boolean') throw new InvalidArgumentError("'secret' must be true or false", { field: 'secret' });
    if (o.secret) p.secret = true;
  }
  if (o.defaultTtl !== undefined && o.defaultTtl !== null) {
    const t = o.defaultTtl;
    if (typeof t !== 'number' || !Number.isSafeInteger(t) || t < 1 || t > MAX_LEASE_TTL_SECONDS) {
      throw new InvalidArgumentError(`'defaultTtl' must be a whole number of seconds from 1 to ${MAX_LEASE_TTL_SECONDS}`, { field: 'defaultTtl' });
    }
    p.defaultTtl = t;
  }
  if (o.historyRetention !== undefined && o.historyRetention !== null) {
    const h = o.historyRetention;
    if (typeof h !== 'object' || Array.isArray(h)) throw new InvalidArgumentError("'historyRetention' must be an object like {\"versions\": 50}", { field: 'historyRetention' });
    const hr: HistoryRetention = {};
    for (const [k, v] of Object.entries(h as Record<string, unknown>)) {
      if (k !== 'versions' && k !== 'days') throw new InvalidArgumentError(`unknown field '${k}' in 'historyRetention'; allowed: versions, days`, { field: `historyRetention.${k}` });
      if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1) {
        throw new InvalidArgumentError(`'historyRetention.${k}' must be a positive integer`, { field: `historyRetention.${k}` });
      }
      hr[k] = v;
    }
    p.historyRetention = hr;
  }
  if (o.description !== undefined && o.description !== null) {
    if (typeof o.description !== 'string' || o.description.length > 1024) {
      throw new InvalidArgumentError("'description' must be a string of at most 1024 characters", { field: 'description' });
    }
    p.description = o.description;
  }
  parseCachePolicy(o, p);
  return p;
}

// --- cache tier (issue 11) -----------------------------------------------------------------------
/** Largest origin timeout a policy may set, ms. */
const MAX_ORIGIN_TIMEOUT_MS = 60_000;

/**
 * Checks the cache fields of a policy body (`storage`, `origin`) into `p`.
 * @throws InvalidArgumentError naming the bad field.
 */
function parseCachePolicy(o: Record<string, unknown>, p: NamespacePolicy): void {
  if (o.storage !== undefined && o.storage !== null) {
    if (o.storage !== 'memory' && o.storage !== 'durable') throw new InvalidArgumentError("'storage' must be \"memory\" or \"durable\"", { field: 'storage' });
    if (o.storage === 'memory') p.storage = 'memory';
  }
  if (p.storage === 'memory') {
    if (p.secret === true) throw new InvalidArgumentError('a memory namespace cannot be secret (its values are held in clear in memory)', { field: 'secret' });
    if (p.historyRetention !== undefined) throw new InvalidArgumentError('a memory namespace keeps no history; remove historyRetention', { field: 'historyRetention' });
  }
  if (o.replicationFactor !== undefined && o.replicationFactor !== null) {
    if (p.storage !== 'memory') throw new InvalidArgumentError("'replicationFactor' needs storage \"memory\" (durable keys live in the backend)", { field: 'replicationFactor' });
    const f = o.replicationFactor;
    if (typeof f !== 'number' || !Number.isInteger(f) || f < 1 || f > 3) {
      throw new InvalidArgumentError("'replicationFactor' must be 1, 2 or 3 (copies of each key, the primary included)", { field: 'replicationFactor' });
    }
    if (f > 1) p.replicationFactor = f;
  }
  if (o.replication !== undefined && o.replication !== null) {
    if (p.storage !== 'memory') throw new InvalidArgumentError("'replication' needs storage \"memory\"", { field: 'replication' });
    if (o.replication !== 'sync' && o.replication !== 'async') throw new InvalidArgumentError("'replication' must be \"sync\" or \"async\"", { field: 'replication' });
    if (o.replication === 'sync') p.replication = 'sync';
  }
  if (o.origin === undefined || o.origin === null) return;
  if (p.storage !== 'memory') throw new InvalidArgumentError("'origin' needs storage \"memory\" (read-through fills the cache)", { field: 'origin' });
  const r = o.origin;
  if (typeof r !== 'object' || Array.isArray(r)) throw new InvalidArgumentError("'origin' must be an object like {\"url\": \"http://db-api/users/{id}\"}", { field: 'origin' });
  const oo = r as Record<string, unknown>;
  for (const k of Object.keys(oo)) {
    if (!['url', 'timeoutMs', 'ttlSeconds', 'breaker'].includes(k)) {
      throw new InvalidArgumentError(`unknown field '${k}' in 'origin'; allowed: url, timeoutMs, ttlSeconds, breaker`, { field: `origin.${k}` });
    }
  }
  let url: URL | undefined;
  try {
    url = typeof oo.url === 'string' ? new URL(oo.url.replaceAll('{key}', 'k').replaceAll('{id}', 'k')) : undefined;
  } catch {
    url = undefined;
  }
  if (url === undefined || (url.protocol !== 'http:' && url.protocol !== 'https:') || typeof oo.url !== 'string' || oo.url.length > 2048) {
    throw new InvalidArgumentError("'origin.url' must be an http:// or https:// URL template with {key} or {id}, e.g. http://db-api/users/{id}", { field: 'origin.url' });
  }
  const origin: OriginPolicy = { url: oo.url };
  const int = (v: unknown, field: string, min: number, max: number): number => {
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) {
      throw new InvalidArgumentError(`'${field}' must be a whole number from ${min} to ${max}`, { field });
    }
    return v;
  };
  if (oo.timeoutMs !== undefined) origin.timeoutMs = int(oo.timeoutMs, 'origin.timeoutMs', 1, MAX_ORIGIN_TIMEOUT_MS);
  if (oo.ttlSeconds !== undefined) origin.ttlSeconds = int(oo.ttlSeconds, 'origin.ttlSeconds', 1, MAX_LEASE_TTL_SECONDS);
  if (oo.breaker !== undefined) {
    const b = oo.breaker;
    if (b === null || typeof b !== 'object' || Array.isArray(b)) throw new InvalidArgumentError("'origin.breaker' must be an object", { field: 'origin.breaker' });
    const bb = b as Record<string, unknown>;
    origin.breaker = {};
    for (const [k, v] of Object.entries(bb)) {
      const f = `origin.breaker.${k}`;
      if (k === 'failureRatio') {
        if (typeof v !== 'number' || !(v > 0 && v <= 1)) throw new InvalidArgumentError(`'${f}' must be a number in (0, 1]`, { field: f });
        origin.breaker.failureRatio = v;
      } else if (k === 'windowMs' || k === 'halfOpenAfterMs') origin.breaker[k] = int(v, f, 100, 3_600_000);
      else if (k === 'minRequests') origin.breaker.minRequests = int(v, f, 1, 1_000_000);
      else throw new InvalidArgumentError(`unknown field '${k}' in 'origin.breaker'; allowed: failureRatio, windowMs, minRequests, halfOpenAfterMs`, { field: f });
    }
  }
  p.origin = origin;
}
// --- end cache tier ------------------------------------------------------------------------------

/** Formats ajv's errors as JSON Pointer paths (a missing required property is named in its path). */
export function schemaViolations(errors: ValidateFunction['errors']): SchemaViolation[] {
  return (errors ?? []).map((e) => {
    const missing = e.keyword === 'required' ? (e.params as { missingProperty?: string }).missingProperty : undefined;
    const path = missing === undefined ? e.instancePath || '/' : `${e.instancePath}/${missing}`;
    // ajv says "must have required property 'db'" of the parent; under the child's own path that reads as nonsense.
    return { path, message: missing !== undefined ? 'is required but missing' : (e.message ?? 'is invalid'), keyword: e.keyword };
  });
}

interface Entry {
  policy: NamespacePolicy;
  validate?: ValidateFunction;
  compileError?: string;
}

/**
 * The namespace policies of a node: an in-memory copy of the `"\u0000ns/"` keys kept current by
 * the store's commit stream, plus the checks and transformations a write or read goes through.
 */
export class PolicyStore {
  private readonly entries = new Map<string, Entry>();
  /** Prefixes longest first, so the first match is the governing one. */
  private ordered: Entry[] = [];
  private unsubscribe: (() => void) | undefined;
  private unseal: (() => void) | undefined;

  /** The size and nesting limits of schemas and JSON values this node enforces. */
  readonly limits: JsonLimits;

  /**
   * @param keyring the KEKs for secret namespaces; without one, secret namespaces can be
   * neither created nor written, and their values cannot be read in clear.
   * @param limits schema size and depth, JSON value depth (defaults: {@link DEFAULT_JSON_LIMITS}).
   * @throws InvalidArgumentError for a limit out of range.
   */
  constructor(
    private readonly store: Store,
    readonly keyring: Keyring | undefined,
    limits: Partial<JsonLimits> = {},
  ) {
    this.limits = resolveJsonLimits(limits);
  }

  /** Called with the limit's name (`max_json_depth`, …) each time a limit refuses input; the node counts it in a metric. */
  onLimitExceeded: ((limit: string) => void) | undefined;

  /** Runs `fn`, reporting a refusal by one of the JSON limits to {@link onLimitExceeded}. */
  private limited<T>(fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      const name = exceededLimit(err);
      if (name !== undefined) this.onLimitExceeded?.(name);
      throw err;
    }
  }

  /** {@link parsePolicy} under this node's limits. */
  parse(prefix: string, body: unknown): NamespacePolicy {
    return this.limited(() => parsePolicy(prefix, body, this.limits));
  }

  /** {@link encodeConfigValue} under this node's `--max-json-depth`. */
  encodeConfigValue(value: unknown): Uint8Array {
    return this.limited(() => encodeConfigValue(value, this.limits.maxJsonDepth));
  }

  /**
   * Loads every policy, follows changes (including ones made by other nodes) and becomes the
   * store's value sealer ({@link seal}), so every put into a secret namespace is encrypted.
   */
  start(): void {
    this.entries.clear();
    const end = prefixEnd(POLICY_KEY_PREFIX);
    for (const kv of this.store.rangeLatest(POLICY_KEY_PREFIX, end).kvs) this.apply(kv.key, kv.value);
    this.reorder();
    this.unsubscribe = this.store.subscribe((rev) => this.onCommit(rev));
    this.unseal = this.store.setSealer((key, value) => this.seal(key, value));
  }

  /** Stops following the store and sealing its values. */
  stop(): void {
    this.unsubscribe?.();
    this.unseal?.();
  }

  private onCommit(rev: RevisionEvents): void {
    let touched = false;
    for (const ev of rev.events) {
      if (!ev.kv.key.startsWith(POLICY_KEY_PREFIX)) continue;
      touched = true;
      this.apply(ev.kv.key, ev.type === 'put' ? ev.kv.value : undefined);
    }
    if (touched) this.reorder();
  }

  private apply(systemKey: string, value: Uint8Array | undefined): void {
    const prefix = systemKey.slice(POLICY_KEY_PREFIX.length);
    if (value === undefined) {
      this.entries.delete(prefix);
      return;
    }
    let policy: NamespacePolicy;
    try {
      policy = JSON.parse(Buffer.from(value).toString('utf8')) as NamespacePolicy;
    } catch {
      return; // not written by this code; ignore rather than stop the commit stream
    }
    const entry: Entry = { policy: { ...policy, prefix } };
    if (policy.schema !== undefined) {
      try {
        entry.validate = newAjv().compile(policy.schema as Record<string, unknown>);
      } catch (err) {
        entry.compileError = (err as Error).message;
      }
    }
    this.entries.set(prefix, entry);
  }

  private reorder(): void {
    this.ordered = [...this.entries.values()].sort((a, b) => b.policy.prefix.length - a.policy.prefix.length);
  }

  /** Every policy in prefix order. */
  list(): NamespacePolicy[] {
    return [...this.entries.values()].map((e) => e.policy).sort((a, b) => compareKeys(a.prefix, b.prefix));
  }

  /** The policy of exactly `prefix`. @throws NotFoundError when there is none. */
  get(prefix: string): NamespacePolicy {
    const e = this.entries.get(prefix);
    if (e === undefined) throw new NotFoundError(`no namespace policy for prefix '${prefix}'`, { prefix });
    return e.policy;
  }

  /** The policy governing `key` (the longest matching prefix), if any. */
  forKey(key: string): NamespacePolicy | undefined {
    return this.entryFor(key)?.policy;
  }

  private entryFor(key: string): Entry | undefined {
    if (this.ordered.length === 0) return undefined;
    for (const e of this.ordered) if (key.startsWith(e.policy.prefix)) return e;
    return undefined;
  }

  /**
   * The key ranges each namespace with a `historyRetention` governs, in key order: its prefix
   * range without the prefix ranges of nested namespaces (the longest prefix governs a key, so
   * a nested namespace without retention keeps its full history).
   */
  retentionRanges(): RetentionRange[] {
    const out: RetentionRange[] = [];
    const prefixes = [...this.entries.keys()].sort(compareKeys);
    for (const e of this.entries.values()) {
      const retention = e.policy.historyRetention;
      if (retention === undefined || (retention.versions === undefined && retention.days === undefined)) continue;
      const p = e.policy.prefix;
      const end = prefixEnd(p);
      let cur: string | null = p;
      for (const q of prefixes) {
        if (cur === null) break;
        if (q === p || !q.startsWith(p)) continue;
        if (compareKeys(q, cur) > 0) out.push({ prefix: p, key: cur, rangeEnd: q, retention });
        const qEnd = prefixEnd(q);
        if (qEnd === null || compareKeys(qEnd, cur) > 0) cur = qEnd;
      }
      if (cur !== null && (end === null || compareKeys(cur, end) < 0)) out.push({ prefix: p, key: cur, rangeEnd: end, retention });
    }
    return out.sort((a, b) => compareKeys(a.key, b.key));
  }

  /** True when `key` is governed by a secret namespace. */
  isSecretKey(key: string): boolean {
    return this.entryFor(key)?.policy.secret === true;
  }

  /** True when some key of `[key, rangeEnd)` may be governed by a secret namespace. */
  rangeHasSecret(key: string, rangeEnd: string | null | undefined): boolean {
    if (rangeEnd === undefined) return this.isSecretKey(key);
    for (const e of this.ordered) {
      if (e.policy.secret !== true) continue;
      const p = e.policy.prefix;
      const pEnd = prefixEnd(p);
      // [key, rangeEnd) and [p, pEnd) overlap, or the range lies inside a secret prefix.
      const startsBeforeEnd = pEnd === null || compareKeys(key, pEnd) < 0;
      const endsAfterStart = rangeEnd === null || compareKeys(rangeEnd, p) > 0;
      if (startsBeforeEnd && endsAfterStart) return true;
    }
    return false;
  }

  /** The default TTL in seconds for a write of `key` that names no lease, if its namespace has one. */
  defaultTtl(key: string): number | undefined {
    const p = this.entryFor(key)?.policy;
    return p?.storage === 'memory' ? undefined : p?.defaultTtl; // a memory namespace's TTL is the cache tier's, not a lease
  }

  /** The memory namespace governing `key` (its policy, whose shape the cache tier reads), if the governing namespace is one. */
  memoryNamespace(key: string): NamespacePolicy | undefined {
    const p = this.entryFor(key)?.policy;
    return p?.storage === 'memory' ? p : undefined;
  }

  /**
   * Checks a value about to be written to `key` against its namespace (format, JSON Schema) and
   * returns it unchanged: encryption is not done here but by {@link seal}, which the store calls
   * for the real key of every put. Errors name the namespace and, for a schema, every failing
   * path; they never include the value.
   * @throws InvalidArgumentError (details `{key, namespace, violations}`) for a format or schema
   * violation; UnavailableError when the schema cannot be compiled on this node, or a secret
   * namespace has no KEK to encrypt with.
   */
  checkWrite(key: string, value: Uint8Array): Uint8Array {
    return this.limited(() => this.checkWriteUnlimited(key, value));
  }

  private checkWriteUnlimited(key: string, value: Uint8Array): Uint8Array {
    const e = this.entryFor(key);
    if (e === undefined) return value;
    const p = e.policy;
    const buf = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
    if (p.format === 'text' && !isUtf8(buf)) {
      throw new InvalidArgumentError(`the value of '${key}' must be UTF-8 text (namespace '${p.prefix}' has format text)`, { key, namespace: p.prefix });
    }
    if (p.format === 'json') {
      const doc = this.parseJsonValue(key, p.prefix, buf);
      if (e.compileError !== undefined) {
        throw new UnavailableError(`the schema of namespace '${p.prefix}' cannot be compiled on this node: ${e.compileError}`);
      }
      if (e.validate !== undefined && !e.validate(doc)) {
        const violations = schemaViolations(e.validate.errors);
        const list = violations.map((v) => `${v.path} ${v.message}`).join('; ');
        throw new InvalidArgumentError(`the value of '${key}' does not match the schema of namespace '${p.prefix}': ${list}`, {
          key,
          namespace: p.prefix,
          violations,
        });
      }
    }
    if (p.secret === true && this.keyring === undefined) throw this.noKek(key, p.prefix);
    return value;
  }

  private parseJsonValue(key: string, prefix: string, buf: Buffer): unknown {
    const notJson = (): InvalidArgumentError =>
      new InvalidArgumentError(`the value of '${key}' must be JSON (namespace '${prefix}' has format json)`, { key, namespace: prefix });
    if (!isUtf8(buf)) throw notJson();
    const text = buf.toString('utf8');
    // Before parsing: a schema check of a very deep document would overflow the stack.
    if (textDepthExceeds(text, this.limits.maxJsonDepth)) {
      throw tooDeep(`the value of '${key}'`, this.limits.maxJsonDepth, '--max-json-depth', { key, namespace: prefix });
    }
    try {
      return JSON.parse(text) as unknown;
    } catch {
      throw notJson();
    }
  }

  private noKek(key: string, prefix: string): UnavailableError {
    return new UnavailableError(`'${key}' is in secret namespace '${prefix}' but this node has no KEK (--kek-file or BEACON_KEK) to encrypt it`);
  }

  /**
   * The store's {@link ValueSealer}: the bytes to store for a put of `value` at `key`, encrypted
   * under the primary KEK with `key` itself as authenticated data when its namespace is secret.
   * The only place a value is encrypted, so every put (kv, txn, configs, rollbacks, elections,
   * sequences, locks, re-encryption) is sealed for the key it is stored under.
   * @throws UnavailableError when the namespace is secret and this node has no KEK.
   */
  seal(key: string, value: Uint8Array): { value: Uint8Array; encrypted: boolean } {
    const e = this.entryFor(key);
    if (e?.policy.secret !== true) return { value, encrypted: false };
    if (this.keyring === undefined) throw this.noKek(key, e.policy.prefix);
    return { value: this.keyring.encrypt(key, value), encrypted: true };
  }

  /**
   * The clear bytes of a stored value: decrypted with its own key as authenticated data when the
   * store recorded it as sealed, else the bytes as stored. The only place a value is decrypted.
   * @throws UnavailableError (details `{key}`) when it cannot be decrypted: no KEK, a KEK that
   * is not in the keyring, or a value that fails authentication.
   */
  clearValue(kv: Pick<KeyValue, 'key' | 'value' | 'encrypted'>): Uint8Array {
    if (kv.encrypted !== true) return kv.value;
    if (this.keyring === undefined) {
      throw new UnavailableError(`the value of '${kv.key}' is a secret and this node has no KEK (--kek-file or BEACON_KEK) to decrypt it`, { details: { key: kv.key } });
    }
    return this.keyring.decrypt(kv.key, kv.value);
  }

  /**
   * What a reader sees of a stored value: the clear bytes, or nothing when the value is secret
   * (its namespace is secret, or the store sealed it) and `mayReadSecret` is false.
   * @throws UnavailableError when an authorised reader asks for a value this node cannot decrypt
   * (see {@link clearValue}); listings catch it per key.
   */
  decodeForRead(kv: Pick<KeyValue, 'key' | 'value' | 'encrypted'>, mayReadSecret: boolean): ReadView {
    if (!this.isSecretValue(kv)) return { redacted: false, value: kv.value };
    if (!mayReadSecret) return { redacted: true };
    return { redacted: false, value: this.clearValue(kv) };
  }

  /** True when a stored value is a secret for readers: its namespace is secret, or the store sealed it. */
  isSecretValue(kv: Pick<KeyValue, 'key' | 'encrypted'>): boolean {
    return kv.encrypted === true || this.isSecretKey(kv.key);
  }

  /**
   * Creates or replaces the policy of `policy.prefix`. Existing values are not re-validated
   * (they were valid when written); call {@link reconcile} to encrypt or decrypt them.
   * @throws InvalidArgumentError for a secret namespace without a KEK.
   */
  async put(policy: NamespacePolicy, by: string): Promise<{ policy: NamespacePolicy; revision: number; created: boolean }> {
    if (policy.secret === true && this.keyring === undefined) {
      throw new InvalidArgumentError(
        'a secret namespace needs a KEK, and this node has none: create one (umask 077; echo "k1:$(openssl rand -hex 32)" > beacon.kek, ' +
          'outside the data directory), restart the node with --kek-file beacon.kek (or BEACON_KEK), then try again; see docs/security.md',
      );
    }
    const stored: NamespacePolicy = { ...policy, updatedAt: Date.now(), updatedBy: by };
    const created = !this.entries.has(policy.prefix);
    const res = await this.store.put(POLICY_KEY_PREFIX + policy.prefix, Buffer.from(JSON.stringify(stored)));
    return { policy: stored, revision: res.revision, created };
  }

  /** Removes the policy of `prefix`. @throws NotFoundError when there is none. */
  async delete(prefix: string): Promise<{ revision: number }> {
    const res = await this.store.deleteRange(POLICY_KEY_PREFIX + prefix, undefined);
    if (res.deleted === 0) throw new NotFoundError(`no namespace policy for prefix '${prefix}'`, { prefix });
    return { revision: res.revision };
  }

  /**
   * Brings the live values under `prefix` (every key when undefined) in line with their
   * policies, online: values of secret namespaces that are plaintext or sealed with an older KEK
   * are rewritten (the store seals them with the primary KEK); values the store sealed outside
   * secret namespaces are rewritten in clear. Each rewrite is conditional on the key's
   * modRevision, so a concurrent client write is never overwritten; leases are kept. History
   * keeps the old bytes (compact to drop them). A value that cannot be decrypted is left as it
   * is and counted in `failed` (its key in `failedKeys`): it never stops the others.
   * @throws UnavailableError when a value must be encrypted and there is no KEK.
   */
  async reconcile(prefix: string | undefined, audit?: AuditContext): Promise<ReconcileResult> {
    const out: ReconcileResult = { encrypted: 0, decrypted: 0, skipped: 0, failed: 0, failedKeys: [], revision: this.store.revision };
    const start = prefix === undefined || prefix === '' ? '\u0001' : prefix;
    const end = prefix === undefined || prefix === '' ? null : prefixEnd(prefix);
    const work: { kv: KeyValue; value: Uint8Array; kind: 'encrypted' | 'decrypted' }[] = [];
    for (const kv of this.store.rangeLatest(start, end).kvs) {
      const sealed = kv.encrypted === true;
      const secret = this.isSecretKey(kv.key);
      if (!secret && !sealed) continue;
      if (secret && sealed && parseEnvelope(kv.value)?.keyId === this.keyring?.primary.id) continue;
      if (secret && this.keyring === undefined) throw new UnavailableError('re-encrypting secrets needs a KEK (--kek-file or BEACON_KEK)');
      let clear: Uint8Array;
      try {
        clear = this.clearValue(kv);
      } catch (err) {
        if (!(err instanceof UnavailableError)) throw err;
        out.failed++;
        if (out.failedKeys.length < MAX_FAILED_KEYS) out.failedKeys.push(kv.key);
        continue;
      }
      work.push({ kv, value: clear, kind: secret ? 'encrypted' : 'decrypted' });
    }
    const meta = JSON.stringify({ event: 'secret_reencrypted' });
    for (let i = 0; i < work.length; i += RECONCILE_BATCH) {
      for (const w of work.slice(i, i + RECONCILE_BATCH)) {
        const res = await this.store.txn(
          {
            compare: [{ key: w.kv.key, target: 'modRevision', result: '=', operand: w.kv.modRevision }],
            success: [{ type: 'put', key: w.kv.key, value: w.value, ignoreLease: w.kv.lease !== 0 }],
            failure: [],
          },
          audit === undefined ? { meta } : { meta, audit },
        );
        if (!res.succeeded) out.skipped++;
        else {
          out[w.kind]++;
          out.revision = res.revision;
        }
      }
    }
    return out;
  }
}
