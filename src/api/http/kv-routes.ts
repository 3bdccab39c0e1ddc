/**
 * `/v1/kv/*` (get, put, delete, prefix ranges with continuation) and `/v1/txn`. Every key a
 * request touches is authorised (each op of a txn, both branches), every written value goes
 * through its namespace policy (format, schema, encryption, default TTL), and every value read
 * is decrypted or redacted for the caller.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Resource } from '../../auth/index.js';
import { InvalidArgumentError, NotFoundError } from '../../errors.js';
import {
  FIRST_USER_KEY,
  inRange,
  validateKey,
  parseRange,
  type Compare,
  type CompareResult,
  type CompareTarget,
  type KeyValue,
  type OpResult,
  type TxnOp,
  type TxnRequest,
} from '../../kv/index.js';
import {
  decodeValue,
  jsonBody,
  JSON_CONTENT_TYPE,
  kvJsonText,
  kvToJson,
  optBool,
  optInt,
  optString,
  queryBool,
  queryInt,
  readObject,
  reqString,
  wildcardKey,
} from './codec.js';
import { kvJsonFor, kvJsonBytesFor, requireAccess } from './authz.js';
import type { HttpContext } from './context.js';
import { auditContext } from './request-context.js';
import { requireOwnLease } from './lease-routes.js';
import { guardPlainWrite, guardRangeWrites } from './rollout-routes.js';

/** A continuation token: where the next page starts and the revision the listing is pinned to. */
interface Continuation {
  k: string;
  r: number;
}

function encodeContinuation(c: Continuation): string {
  return Buffer.from(JSON.stringify(c)).toString('base64url');
}

function decodeContinuation(token: string): Continuation {
  try {
    const c = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as Continuation;
    if (typeof c.k === 'string' && Number.isSafeInteger(c.r) && c.r > 0) return c;
  } catch {
    // fall through
  }
  throw new InvalidArgumentError("query parameter 'continue' is not a token returned by a previous page");
}

/** Resolves `key`, `prefix` and `rangeEnd` given together into one canonical range (see {@link parseRange}). */
export function resolveRange(key: string, prefix: boolean | undefined, rangeEnd: unknown): { key: string; rangeEnd: string | null | undefined } {
  const r = parseRange({ key, prefix, rangeEnd });
  return { key: r.key, rangeEnd: r.rangeEnd };
}

function readBodyValue(req: FastifyRequest): { value: Uint8Array; lease?: number; prevKv?: boolean } {
  const body = req.body;
  const q = req.query as Record<string, unknown>;
  if (Buffer.isBuffer(body)) {
    const lease = queryInt(q, 'lease');
    return { value: body, ...(lease !== undefined ? { lease } : {}), prevKv: queryBool(q, 'prevKv') };
  }
  if (body === undefined || body === null) throw new InvalidArgumentError('missing body: send {"value": "..."} as JSON, or the raw value');
  const o = readObject(body, ['value', 'encoding', 'lease', 'prevKv']);
  if (o.value === undefined) throw new InvalidArgumentError("'value' is required");
  const lease = optInt(o, 'lease') ?? queryInt(q, 'lease');
  return { value: decodeValue(o.value, o.encoding), ...(lease !== undefined ? { lease } : {}), prevKv: optBool(o, 'prevKv') ?? queryBool(q, 'prevKv') };
}

const TARGETS: readonly CompareTarget[] = ['value', 'version', 'createRevision', 'modRevision', 'lease'];
const RESULTS: readonly CompareResult[] = ['=', '!=', '<', '>'];

function parseCompare(raw: unknown, i: number): Compare {
  const o = readObject(raw, ['key', 'rangeEnd', 'prefix', 'target', 'result', 'value', 'encoding'], `compare[${i}]`);
  const range = resolveRange(reqString(o, 'key'), optBool(o, 'prefix'), o.rangeEnd);
  const target = reqString(o, 'target') as CompareTarget;
  if (!TARGETS.includes(target)) throw new InvalidArgumentError(`compare[${i}].target must be one of ${TARGETS.join(', ')}`);
  const result = reqString(o, 'result') as CompareResult;
  if (!RESULTS.includes(result)) throw new InvalidArgumentError(`compare[${i}].result must be one of = != < >`);
  let operand: number | Uint8Array;
  if (target === 'value') operand = decodeValue(o.value, o.encoding, `compare[${i}].value`);
  else {
    const n = optInt(o, 'value', 0);
    if (n === undefined) throw new InvalidArgumentError(`compare[${i}].value is required`);
    operand = n;
  }
  return { key: range.key, rangeEnd: range.rangeEnd, target, result, operand };
}

function parseOp(raw: unknown, where: string): TxnOp {
  const outer = readObject(raw, ['put', 'delete', 'range'], where);
  const kinds = Object.keys(outer);
  if (kinds.length !== 1) throw new InvalidArgumentError(`${where} must hold exactly one of put, delete, range`);
  const kind = kinds[0] as 'put' | 'delete' | 'range';
  if (kind === 'put') {
    const o = readObject(outer.put, ['key', 'value', 'encoding', 'lease', 'prevKv', 'ignoreValue', 'ignoreLease'], `${where}.put`);
    const key = validateKey(reqString(o, 'key'));
    const ignoreValue = optBool(o, 'ignoreValue') ?? false;
    const value = ignoreValue ? new Uint8Array(0) : decodeValue(o.value, o.encoding, `${where}.put.value`);
    return { type: 'put', key, value, lease: optInt(o, 'lease') ?? 0, prevKv: optBool(o, 'prevKv') ?? false, ignoreValue, ignoreLease: optBool(o, 'ignoreLease') ?? false };
  }
  if (kind === 'delete') {
    const o = readObject(outer.delete, ['key', 'rangeEnd', 'prefix', 'prevKv'], `${where}.delete`);
    const r = resolveRange(reqString(o, 'key'), optBool(o, 'prefix'), o.rangeEnd);
    return { type: 'delete', key: r.key, rangeEnd: r.rangeEnd, prevKv: optBool(o, 'prevKv') ?? false };
  }
  const o = readObject(outer.range, ['key', 'rangeEnd', 'prefix', 'limit', 'keysOnly', 'countOnly'], `${where}.range`);
  const r = resolveRange(reqString(o, 'key'), optBool(o, 'prefix'), o.rangeEnd);
  return { type: 'range', key: r.key, rangeEnd: r.rangeEnd, limit: optInt(o, 'limit') ?? 0, keysOnly: optBool(o, 'keysOnly') ?? false, countOnly: optBool(o, 'countOnly') ?? false };
}

function parseOps(raw: unknown, name: string): TxnOp[] {
  if (raw === undefined || raw === null) return [];
  if (!Array.isArray(raw)) throw new InvalidArgumentError(`'${name}' must be an array`);
  return raw.map((op, i) => parseOp(op, `${name}[${i}]`));
}

/** Parses the JSON body of `POST /v1/txn`. @throws InvalidArgumentError naming the bad field. */
export function parseTxn(body: unknown): TxnRequest {
  const o = readObject(body, ['compare', 'success', 'failure']);
  if (o.compare !== undefined && !Array.isArray(o.compare)) throw new InvalidArgumentError("'compare' must be an array");
  const compare = ((o.compare as unknown[] | undefined) ?? []).map(parseCompare);
  return { compare, success: parseOps(o.success, 'success'), failure: parseOps(o.failure, 'failure') };
}

/** The JSON form of one txn op result. */
export function opResultToJson(r: OpResult): Record<string, unknown> {
  if (r.type === 'put') return { put: r.prevKv ? { prevKv: kvToJson(r.prevKv) } : {} };
  if (r.type === 'delete') return { delete: { deleted: r.deleted, ...(r.prevKvs ? { prevKvs: r.prevKvs.map((kv) => kvToJson(kv)) } : {}) } };
  return { range: { kvs: r.kvs.map((kv) => kvToJson(kv)), more: r.more, count: r.count } };
}

function rangeResource(r: { key: string; rangeEnd?: string | null }): Resource {
  return r.rangeEnd === undefined ? { key: r.key } : { key: r.key, rangeEnd: r.rangeEnd };
}

/**
 * Authorises every compare and op of a txn for the caller (both branches: which one runs is
 * not known in advance). A value compare on a secret key is refused: it would let a caller
 * guess a secret, and the stored bytes are ciphertext anyway.
 * @throws PermissionDeniedError; InvalidArgumentError for a value compare on a secret.
 */
function authorizeTxn(ctx: HttpContext, req: FastifyRequest, txn: TxnRequest): void {
  txn.compare.forEach((c, i) => {
    requireAccess(ctx, req, 'kv.txn', 'read', rangeResource(c));
    if (c.target === 'value' && ctx.policies.rangeHasSecret(c.key, c.rangeEnd)) {
      throw new InvalidArgumentError(`compare[${i}] compares the value of a secret; compare its version or modRevision instead`, { field: `compare[${i}]` });
    }
  });
  for (const op of [...txn.success, ...txn.failure]) {
    if (op.type === 'put') requireAccess(ctx, req, 'kv.txn', 'write', { key: op.key });
    else if (op.type === 'delete') requireAccess(ctx, req, 'kv.txn', 'write', rangeResource(op));
    else requireAccess(ctx, req, 'kv.txn', 'read', rangeResource(op));
  }
}

/**
 * The lease a write gets: the one asked for, else a fresh lease of the namespace's default TTL
 * (granted once per TTL per request, in `granted`), else none. A plain number when nothing has
 * to be awaited (no lease asked, no TTL, or one granted earlier in the request): most writes,
 * and a promise per PUT was measurable on the write path (issue 17).
 */
function leaseFor(ctx: HttpContext, req: FastifyRequest, key: string, asked: number | undefined, granted?: Map<number, number>): number | Promise<number> {
  if (asked !== undefined && asked !== 0) {
    // Another principal's lease does not exist for this caller (issue 9 finding 9).
    return requireOwnLease(ctx, req, asked).then(() => asked);
  }
  const ttl = ctx.policies.defaultTtl(key);
  if (ttl === undefined) return 0;
  const id = granted?.get(ttl);
  if (id !== undefined) return id;
  return ctx.store.grantLease(ttl, 0, auditContext(req, 'lease.grant')).then((l) => {
    granted?.set(ttl, l.id);
    return l.id;
  });
}

/**
 * Refuses a key a memory namespace governs: its value lives in the cache tier, not in the kv
 * store, so a kv read would miss it and a kv write would create a durable key that RESP and
 * `/v1/cache` never see (the namespace rule of docs/resp.md).
 * @throws InvalidArgumentError naming the namespace and the faces that serve the key.
 */
function refuseMemoryKey(ctx: HttpContext, key: string): void {
  const ns = ctx.cache.namespaceOf(key);
  if (ns === undefined) return;
  throw new InvalidArgumentError(
    `'${key}' is in the memory namespace '${ns.prefix}' (storage "memory"): its keys live in the cache tier, not the kv store; use /v1/cache/${key} or the RESP port`,
    { key, namespace: ns.prefix },
  );
}

const COMMA = Buffer.from(',');
const EMPTY = Buffer.alloc(0);

/** Registers `/v1/kv/*` and `/v1/txn`. */
export function registerKvRoutes(app: FastifyInstance, ctx: HttpContext): void {
  const { store, metrics } = ctx;

  /** Answers the head revision of one key (the caller checked access). @throws NotFoundError */
  const answerHead = (req: FastifyRequest, reply: FastifyReply, key: string, keysOnly: boolean | undefined): void => {
    const kv = store.get(key);
    if (kv === undefined) throw new NotFoundError(`key '${key}' not found`, { key, revision: store.revision });
    if (keysOnly || ctx.policies.isSecretValue(kv)) void reply.send({ revision: store.revision, kv: kvJsonFor(ctx, req, kv, keysOnly, true) });
    else void reply.type(JSON_CONTENT_TYPE).send(`{"revision":${store.revision},"kv":${kvJsonText(kv)}}`);
  };
  const getHandler = (req: FastifyRequest, reply: FastifyReply) => {
    const q = req.query as Record<string, unknown>;
    const rawKey = (req.params as Record<string, string | undefined>)['*'] ?? '';
    const prefix = queryBool(q, 'prefix');
    const keysOnly = queryBool(q, 'keysOnly');
    const countOnly = queryBool(q, 'countOnly');
    const limit = queryInt(q, 'limit') ?? 0;
    const revision = queryInt(q, 'rev') ?? 0;
    const consistency = q.consistency ?? 'serializable';
    if (consistency !== 'serializable' && consistency !== 'linearizable') {
      throw new InvalidArgumentError("query parameter 'consistency' must be serializable or linearizable");
    }
    const range = parseRange({ key: rawKey, prefix, rangeEnd: q.rangeEnd });
    if (range.rangeEnd === undefined && revision === 0 && consistency === 'serializable') {
      // The common read (one key at the head) answers synchronously: an async handler cost a
      // promise and a microtask turn per GET (issue 17). Fastify answers a synchronous throw as
      // it does a rejection.
      const key = range.key;
      requireAccess(ctx, req, 'kv.get', 'read', { key });
      refuseMemoryKey(ctx, key);
      answerHead(req, reply, key, keysOnly);
      return undefined;
    }
    return readAsync(req, reply, q, range, { keysOnly, countOnly, limit, revision, consistency });
  };
  const readAsync = async (
    req: FastifyRequest,
    reply: FastifyReply,
    q: Record<string, unknown>,
    range: ReturnType<typeof parseRange>,
    o: { keysOnly: boolean | undefined; countOnly: boolean | undefined; limit: number; revision: number; consistency: unknown },
  ) => {
    const { keysOnly, countOnly, limit, consistency } = o;
    let revision = o.revision;
    if (range.rangeEnd === undefined) {
      const key = range.key;
      requireAccess(ctx, req, 'kv.get', 'read', { key });
      refuseMemoryKey(ctx, key);
      if (consistency === 'linearizable') await store.readBarrier();
      if (revision === 0) {
        answerHead(req, reply, key, keysOnly);
        return reply;
      }
      const res = await store.range(key, undefined, { revision });
      const kv = res.kvs[0];
      if (kv === undefined) throw new NotFoundError(`key '${key}' not found at revision ${revision}`, { key, revision });
      return { revision: res.revision, kv: kvJsonFor(ctx, req, kv, keysOnly, true) };
    }
    // A range read needs read access to the whole range (as etcd's range permissions).
    requireAccess(ctx, req, 'kv.range', 'read', rangeResource(range));
    if (consistency === 'linearizable') await store.readBarrier();
    const end = range.rangeEnd;
    let start = range.key;
    const token = typeof q.continue === 'string' && q.continue !== '' ? decodeContinuation(q.continue) : undefined;
    if (token !== undefined) {
      if (!inRange(token.k, range.key, range.rangeEnd)) {
        throw new InvalidArgumentError("the 'continue' token belongs to another prefix");
      }
      start = token.k;
      revision = token.r;
    }
    // Pin the listing to one revision so every page is consistent.
    const pinned = revision === 0 ? store.revision : revision;
    const res = await store.range(start, end, { revision: pinned === store.revision ? 0 : pinned, limit, keysOnly, countOnly });
    // The body is assembled from each kv's cached JSON bytes (what JSON.stringify of
    // {revision, kvs, count, more, continue} gives, byte for byte): serialising and encoding a
    // large range again on every read was a third of its cost.
    const parts: Buffer[] = new Array<Buffer>(2 * res.kvs.length + 2);
    parts[0] = Buffer.from(`{"revision":${pinned},"kvs":[`);
    for (let i = 0; i < res.kvs.length; i++) {
      parts[2 * i + 1] = kvJsonBytesFor(ctx, req, res.kvs[i] as KeyValue, keysOnly);
      parts[2 * i + 2] = i === res.kvs.length - 1 ? EMPTY : COMMA;
    }
    let tail = `],"count":${res.count},"more":${res.more}`;
    if (res.more) {
      const last = res.kvs[res.kvs.length - 1];
      if (last !== undefined) tail += `,"continue":${JSON.stringify(encodeContinuation({ k: `${last.key}\u0000`, r: pinned }))}`;
    }
    parts[parts.length - 1] = Buffer.from(`${tail}}`);
    return reply.type(JSON_CONTENT_TYPE).send(Buffer.concat(parts));
  };
  app.get('/v1/kv', getHandler);
  app.get('/v1/kv/*', getHandler);

  app.put('/v1/kv/*', async (req) => {
    const key = validateKey(wildcardKey(req.params));
    requireAccess(ctx, req, 'kv.put', 'write', { key });
    refuseMemoryKey(ctx, key);
    const { value, lease, prevKv } = readBodyValue(req);
    // Validate (format, schema) before anything is granted or written; the store encrypts secrets.
    const stored = ctx.policies.checkWrite(key, value);
    const guard = guardPlainWrite(ctx, req, key, false); // issue 16: a key under a rollout is written by the rollout only
    if (guard !== undefined) await guard;
    const started = performance.now();
    const asked = leaseFor(ctx, req, key, lease);
    const leaseId = typeof asked === 'number' ? asked : await asked;
    const res = await store.put(key, stored, { lease: leaseId, prevKv: prevKv ?? false, audit: auditContext(req, 'kv.put') });
    metrics.writeDuration.observe({ op: 'put' }, (performance.now() - started) / 1000);
    const out: Record<string, unknown> = { revision: res.revision };
    if (res.prevKv) out.prevKv = kvJsonFor(ctx, req, res.prevKv);
    if (leaseId !== 0 && (lease === undefined || lease === 0)) out.lease = leaseId;
    return out;
  });

  app.delete('/v1/kv/*', async (req) => {
    const q = req.query as Record<string, unknown>;
    const raw = wildcardKey(req.params);
    const range = resolveRange(raw, queryBool(q, 'prefix'), q.rangeEnd);
    if (range.key === FIRST_USER_KEY && range.rangeEnd === null && !queryBool(q, 'all')) {
      throw new InvalidArgumentError('deleting every key needs all=true as well as prefix=true');
    }
    requireAccess(ctx, req, 'kv.delete', 'write', rangeResource(range));
    if (range.rangeEnd === undefined) refuseMemoryKey(ctx, range.key);
    guardRangeWrites(ctx, [range]); // issue 16: keys under a rollout are written by the rollout only
    const started = performance.now();
    const res = await store.deleteRange(range.key, range.rangeEnd, { prevKv: queryBool(q, 'prevKv'), audit: auditContext(req, 'kv.delete') });
    metrics.writeDuration.observe({ op: 'delete' }, (performance.now() - started) / 1000);
    return { revision: res.revision, deleted: res.deleted, ...(res.prevKvs ? { prevKvs: res.prevKvs.map((kv) => kvJsonFor(ctx, req, kv)) } : {}) };
  });

  app.post('/v1/txn', async (req) => {
    // jsonBody: a txn sent without `content-type: application/json` (curl -d) is still read as JSON.
    const txn = parseTxn(jsonBody(req, '{"compare": […], "success": […], "failure": […]}'));
    authorizeTxn(ctx, req, txn);
    for (const op of [...txn.success, ...txn.failure]) if (op.type === 'put' || (op.type === 'delete' && op.rangeEnd === undefined)) refuseMemoryKey(ctx, op.key);
    // issue 16: keys under a rollout are written by the rollout only (either branch may run).
    guardRangeWrites(ctx, [...txn.success, ...txn.failure].flatMap((op) => (op.type === 'put' ? [{ key: op.key }] : op.type === 'delete' ? [{ key: op.key, rangeEnd: op.rangeEnd }] : [])));
    const granted = new Map<number, number>();
    const prepare = async (ops: TxnOp[]): Promise<TxnOp[]> => {
      const out: TxnOp[] = [];
      for (const op of ops) {
        if (op.type !== 'put') {
          out.push(op);
          continue;
        }
        const value = op.ignoreValue ? op.value : ctx.policies.checkWrite(op.key, op.value);
        const lease = op.ignoreLease ? (op.lease ?? 0) : await leaseFor(ctx, req, op.key, op.lease, granted);
        out.push({ ...op, value, lease });
      }
      return out;
    };
    // Check every value of both branches before granting any default-TTL lease.
    for (const op of [...txn.success, ...txn.failure]) if (op.type === 'put' && !op.ignoreValue) ctx.policies.checkWrite(op.key, op.value);
    const prepared: TxnRequest = { compare: txn.compare, success: await prepare(txn.success), failure: await prepare(txn.failure) };
    const started = performance.now();
    const res = await store.txn(prepared, { audit: auditContext(req, 'kv.txn') });
    metrics.writeDuration.observe({ op: 'txn' }, (performance.now() - started) / 1000);
    return { succeeded: res.succeeded, revision: res.revision, results: res.results.map((r) => opResultFor(ctx, req, r)) };
  });

  void optString;
}

/** {@link opResultToJson} with values decrypted or redacted for the caller. */
function opResultFor(ctx: HttpContext, req: FastifyRequest, r: OpResult): Record<string, unknown> {
  if (r.type === 'put') return { put: r.prevKv ? { prevKv: kvJsonFor(ctx, req, r.prevKv) } : {} };
  if (r.type === 'delete') return { delete: { deleted: r.deleted, ...(r.prevKvs ? { prevKvs: r.prevKvs.map((kv) => kvJsonFor(ctx, req, kv)) } : {}) } };
  return { range: { kvs: r.kvs.map((kv) => kvJsonFor(ctx, req, kv)), more: r.more, count: r.count } };
}
