/**
 * Namespaces with policies (DESIGN.md §4): a key prefix → value format (text | json), a JSON
 * Schema checked on every write (ajv), whether values are secrets (encrypted at rest, redacted
 * for readers without `read_secret`), history retention and a default TTL. Policies are stored
 * as JSON under the system keys `"\u0000ns/<prefix>"`, so they are versioned and reach every
 * node through the change feed; each node keeps them in memory, refreshed by `store.subscribe`.
 */
import { isUtf8 } from 'node:buffer';
import { Ajv, type ValidateFunction } from 'ajv';
import { RE2JS } from 're2js';
import { InvalidArgumentError, NotFoundError, UnavailableError } from '../errors.js';
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
import { isEncrypted, parseEnvelope, type Keyring } from './secrets.js';

/** Where namespace policies live: one system key per prefix. */
export const POLICY_KEY_PREFIX = `${SYSTEM_PREFIX}ns/`;
/** The largest JSON Schema accepted, in bytes of its JSON text. */
export const MAX_SCHEMA_BYTES = 64 * 1024;
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
  revision: number;
}

/** The fields of a policy body (PUT replaces them all; PATCH /v1/namespaces merges them). */
export const POLICY_FIELDS = ['format', 'schema', 'secret', 'historyRetention', 'defaultTtl', 'description'] as const;
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

function newAjv(): Ajv {
  // strict off: schemas written for other validators often carry unknown keywords (titles, x-…).
  return new Ajv({ allErrors: true, strict: false, validateFormats: false, code: { regExp: linearRegExp } });
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
 * Refuses schema references that would make validation recurse for ever or that cannot be
 * resolved: every `$ref` must be a local JSON Pointer (`#`, `#/$defs/x`) that exists and whose
 * expansion never reaches itself again; `$dynamicRef` and `$recursiveRef` are refused.
 * @throws InvalidArgumentError with `details.path`, the JSON Pointer of the offending reference.
 */
function checkRefs(root: unknown): void {
  const done = new Set<unknown>();
  const refuse = (path: string, why: string): never => {
    throw new InvalidArgumentError(`'schema' ${why} at ${path === '' ? '/' : path}`, { field: 'schema', path: path === '' ? '/' : path });
  };
  const visit = (node: unknown, path: string, expanding: Set<unknown>): void => {
    if (node === null || typeof node !== 'object') return;
    if (expanding.has(node)) refuse(path, 'has a recursive $ref');
    if (done.has(node)) return;
    expanding.add(node);
    const entries = Array.isArray(node) ? node.map((v, i) => [String(i), v] as const) : Object.entries(node as Record<string, unknown>);
    for (const [k, v] of entries) {
      const here = `${path}/${k.replace(/~/g, '~0').replace(/\//g, '~1')}`;
      if (!Array.isArray(node) && (k === '$dynamicRef' || k === '$recursiveRef')) refuse(here, `uses ${k}, which is not supported`);
      if (!Array.isArray(node) && k === '$ref') {
        if (typeof v !== 'string') refuse(here, 'has a $ref that is not a string');
        const target = resolvePointer(root, v as string);
        if (target === undefined) refuse(here, `has a $ref (${JSON.stringify(v)}) that is not a resolvable local JSON Pointer`);
        visit(target, here, expanding);
        continue;
      }
      visit(v, here, expanding);
    }
    expanding.delete(node);
    done.add(node);
  };
  visit(root, '', new Set());
}

/**
 * Checks a policy body for `prefix` and returns it normalized (unknown fields refused; the
 * schema compiled once to prove it is valid).
 * @throws InvalidArgumentError naming the bad field; TooLargeError-like InvalidArgumentError for a huge schema.
 */
export function parsePolicy(prefix: string, body: unknown): NamespacePolicy {
  validateKey(prefix, 'namespace prefix');
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new InvalidArgumentError('the policy must be a JSON object');
  const o = body as Record<string, unknown>;
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
    if (JSON.stringify(o.schema).length > MAX_SCHEMA_BYTES) {
      throw new InvalidArgumentError(`'schema' is larger than ${MAX_SCHEMA_BYTES} bytes`, { field: 'schema' });
    }
    if (p.format === 'text') throw new InvalidArgumentError("a namespace with a 'schema' holds JSON; 'format' cannot be \"text\"", { field: 'format' });
    checkRefs(o.schema);
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
  return p;
}

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

  /**
   * @param keyring the KEKs for secret namespaces; without one, secret namespaces can be
   * neither created nor written, and their values cannot be read in clear.
   */
  constructor(
    private readonly store: Store,
    readonly keyring: Keyring | undefined,
  ) {}

  /** Loads every policy and follows changes (including ones made by other nodes). */
  start(): void {
    this.entries.clear();
    const end = prefixEnd(POLICY_KEY_PREFIX);
    for (const kv of this.store.rangeLatest(POLICY_KEY_PREFIX, end).kvs) this.apply(kv.key, kv.value);
    this.reorder();
    this.unsubscribe = this.store.subscribe((rev) => this.onCommit(rev));
  }

  /** Stops following the store. */
  stop(): void {
    this.unsubscribe?.();
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
    return this.entryFor(key)?.policy.defaultTtl;
  }

  /**
   * Checks a value about to be written to `key` against its namespace and returns the bytes to
   * store (encrypted for a secret namespace). Errors name the namespace and, for a schema, every
   * failing path; they never include the value.
   * @throws InvalidArgumentError (details `{key, namespace, violations}`) for a format or schema
   * violation; UnavailableError when a secret namespace has no KEK to encrypt with.
   */
  encodeForWrite(key: string, value: Uint8Array): Uint8Array {
    const e = this.entryFor(key);
    if (e === undefined) return value;
    const p = e.policy;
    const buf = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
    if (p.format === 'text' && !isUtf8(buf)) {
      throw new InvalidArgumentError(`the value of '${key}' must be UTF-8 text (namespace '${p.prefix}' has format text)`, { key, namespace: p.prefix });
    }
    if (p.format === 'json') {
      let doc: unknown;
      try {
        if (!isUtf8(buf)) throw new Error('not UTF-8');
        doc = JSON.parse(buf.toString('utf8'));
      } catch {
        throw new InvalidArgumentError(`the value of '${key}' must be JSON (namespace '${p.prefix}' has format json)`, { key, namespace: p.prefix });
      }
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
    if (p.secret === true) {
      if (this.keyring === undefined) {
        throw new UnavailableError(`'${key}' is in secret namespace '${p.prefix}' but this node has no KEK (--kek-file or BEACON_KEK) to encrypt it`);
      }
      return this.keyring.encrypt(key, buf);
    }
    return value;
  }

  /**
   * What a reader sees of a stored value: the clear bytes, or nothing when the value is secret
   * (its namespace is secret, or it is encrypted) and `mayReadSecret` is false.
   * @throws UnavailableError when an authorised reader asks for a value this node cannot decrypt.
   */
  decodeForRead(key: string, value: Uint8Array, mayReadSecret: boolean): ReadView {
    const encrypted = value.byteLength > 0 && isEncrypted(value);
    if (!encrypted && !this.isSecretKey(key)) return { redacted: false, value };
    if (!mayReadSecret) return { redacted: true };
    if (!encrypted) return { redacted: false, value };
    if (this.keyring === undefined) {
      throw new UnavailableError(`the value of '${key}' is a secret and this node has no KEK (--kek-file or BEACON_KEK) to decrypt it`, { details: { key } });
    }
    return { redacted: false, value: this.keyring.decrypt(key, value) };
  }

  /** True when a stored value is a secret for readers (secret namespace or encrypted bytes). */
  isSecretValue(key: string, value: Uint8Array): boolean {
    return this.isSecretKey(key) || (value.byteLength > 0 && isEncrypted(value));
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
   * are encrypted with the primary KEK; encrypted values outside secret namespaces are
   * decrypted. Each rewrite is conditional on the key's modRevision, so a concurrent client
   * write is never overwritten; leases are kept. History keeps the old bytes (compact to drop them).
   * @throws UnavailableError when a value must be rewritten and there is no KEK.
   */
  async reconcile(prefix: string | undefined, audit?: AuditContext): Promise<ReconcileResult> {
    const out: ReconcileResult = { encrypted: 0, decrypted: 0, skipped: 0, revision: this.store.revision };
    const start = prefix === undefined || prefix === '' ? '\u0001' : prefix;
    const end = prefix === undefined || prefix === '' ? null : prefixEnd(prefix);
    const work: { kv: KeyValue; value: Uint8Array; kind: 'encrypted' | 'decrypted' }[] = [];
    for (const kv of this.store.rangeLatest(start, end).kvs) {
      const env = kv.value.byteLength > 0 ? parseEnvelope(kv.value) : undefined;
      const secret = this.isSecretKey(kv.key);
      if (secret) {
        if (env !== undefined && env.keyId === this.keyring?.primary.id) continue;
        if (this.keyring === undefined) throw new UnavailableError('re-encrypting secrets needs a KEK (--kek-file or BEACON_KEK)');
        const clear = env === undefined ? kv.value : this.keyring.decrypt(kv.key, kv.value);
        work.push({ kv, value: this.keyring.encrypt(kv.key, clear), kind: 'encrypted' });
      } else if (env !== undefined && this.keyring?.has(env.keyId) === true) {
        work.push({ kv, value: this.keyring.decrypt(kv.key, kv.value), kind: 'decrypted' });
      }
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
