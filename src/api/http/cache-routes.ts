/**
 * `/v1/cache/*`: the HTTP face of the cache tier (seed 002 journeys 1–2). GET reads a key of a
 * memory namespace, falling back to the namespace's origin on a miss (read-through, single-flight,
 * circuit breaker); PUT stores a value with a TTL; DELETE removes it. `x-cache: hit|miss` says
 * whether the value came from memory. Same users, roles and prefix permissions as `/v1/kv`.
 */
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { InvalidArgumentError, NotFoundError, UnavailableError } from '../../errors.js';
import { validateKey } from '../../kv/index.js';
import { keySlot, type CacheValue } from '../../cache/index.js';
import { requireAccess } from './authz.js';
import { decodeValue, encodeValue, optInt, queryInt, readObject, wildcardKey } from './codec.js';
import type { HttpContext } from './context.js';

/** Largest TTL a PUT may give, seconds (as a lease's). */
const MAX_TTL_SECONDS = 9_000_000_000;

/**
 * The cache key of the path, once the caller may do `action` on it.
 * @throws InvalidArgumentError for a bad key or one outside every memory namespace; PermissionDeniedError.
 */
function cacheKey(ctx: HttpContext, req: FastifyRequest, apiAction: string, action: 'read' | 'write'): string {
  const key = validateKey(wildcardKey(req.params));
  requireAccess(ctx, req, apiAction, action, { key });
  if (!ctx.cache.isMemoryKey(key)) {
    throw new InvalidArgumentError(
      `'${key}' is not in a cache namespace: create one with 'beacon namespace put <prefix> --storage memory', or use /v1/kv for durable keys`,
      { key },
    );
  }
  return key;
}

function stringValue(key: string, v: CacheValue): Buffer {
  if (v.type !== 'string') {
    throw new InvalidArgumentError(`'${key}' holds a ${v.type}, not a string; read it over RESP`, { key, type: v.type });
  }
  return v.value;
}

/** The TTL of a PUT in seconds, from the JSON body or `?ttl=`; undefined: the namespace default. */
function ttlOf(value: unknown): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1 || value > MAX_TTL_SECONDS) {
    throw new InvalidArgumentError(`'ttl' must be a whole number of seconds from 1 to ${MAX_TTL_SECONDS}`, { field: 'ttl' });
  }
  return value;
}

/** The JSON answer for a cached value: the value (UTF-8 or base64) and the seconds it has left (-1: no expiry). */
function answer(ctx: HttpContext, key: string, value: Buffer): Record<string, unknown> {
  const ttlMs = ctx.cache.ttlMs(key);
  return { key, ...encodeValue(value), ttl: ttlMs < 0 ? -1 : Math.ceil(ttlMs / 1000) };
}

/** The header a node sets on a request it forwards to a key's owner: the owner answers, never forwards again. */
export const FORWARDED_HEADER = 'x-beacon-forwarded';
/** How long a forwarded request may take, in ms. */
const FORWARD_TIMEOUT_MS = 10_000;
/** Request and response headers a forward carries over. */
const FORWARD_REQUEST_HEADERS = ['authorization', 'content-type', 'x-api-key', 'x-request-id'];
const FORWARD_RESPONSE_HEADERS = ['x-cache', 'x-cache-source', 'x-cache-node', 'retry-after'];

/**
 * In a cache cluster, the answer of the node that serves `key`'s slot when that is not this
 * node (the request is sent on with the caller's credentials, which the owner checks again), or
 * undefined when this node serves it.
 * @throws UnavailableError while this node's membership is not confirmed, while the slot is
 *   being readied here, or when the owner does not answer.
 */
async function viaOwner(ctx: HttpContext, agents: ForwardAgents, req: FastifyRequest, reply: FastifyReply, key: string): Promise<unknown> {
  const slots = ctx.cacheSlots;
  if (slots === undefined) return undefined;
  const slot = keySlot(key);
  const where = slots.route(slot);
  if (where === 'serve') {
    void reply.header('x-cache-node', ctx.info.nodeId);
    return undefined;
  }
  if (where === 'down') throw new UnavailableError("this node's place in the cache ring is not confirmed (it lost contact with PostgreSQL); retry shortly", { details: { key, slot } });
  if (where === 'importing') throw new UnavailableError(`slot ${slot} just moved to this node and is being readied; retry shortly`, { details: { key, slot } });
  const owner = slots.ring?.owner(slot);
  if (owner === undefined || req.headers[FORWARDED_HEADER] !== undefined) {
    // The node that forwarded this sees another ring for a moment: no second hop.
    throw new UnavailableError(`slot ${slot} is moving between nodes; retry shortly`, { details: { key, slot } });
  }
  const headers: Record<string, string> = { [FORWARDED_HEADER]: ctx.info.nodeId };
  for (const h of FORWARD_REQUEST_HEADERS) {
    const v = req.headers[h];
    if (typeof v === 'string') headers[h] = v;
  }
  const body = req.method === 'PUT' ? (Buffer.isBuffer(req.body) ? req.body : Buffer.from(JSON.stringify(req.body ?? null))) : undefined;
  ctx.metrics.cacheHttpForwarded.inc();
  let res: Forwarded;
  try {
    res = await forward(agents, new URL(req.url, owner.url), req.method, headers, body);
  } catch (err) {
    throw new UnavailableError(`the node serving slot ${slot} (${owner.url}) did not answer: ${err instanceof Error ? err.message : String(err)}`, { details: { key, slot } });
  }
  void reply.code(res.status);
  for (const h of FORWARD_RESPONSE_HEADERS) {
    const v = res.headers[h];
    if (typeof v === 'string') void reply.header(h, v);
  }
  const type = res.headers['content-type'];
  void reply.header('content-type', typeof type === 'string' ? type : 'application/json');
  return res.body;
}

/** The owner's answer to a forwarded request. */
interface Forwarded {
  status: number;
  headers: IncomingMessage['headers'];
  body: Buffer;
}

/** Keep-alive agents for forwards to other nodes. */
interface ForwardAgents {
  http: HttpAgent;
  https: HttpsAgent;
}

/** The agents of a node's forwards: HTTPS ones trust `ca` when given ({@link HttpContext.peerCa}), else the system's roots. */
function forwardAgents(ca: HttpContext['peerCa']): ForwardAgents {
  return {
    http: new HttpAgent({ keepAlive: true, maxSockets: 64 }),
    https: new HttpsAgent({ keepAlive: true, maxSockets: 64, ...(ca !== undefined ? { ca } : {}) }),
  };
}

/**
 * Sends a request to another node and reads its whole answer.
 * @throws Error when the connection fails, the certificate does not verify, or no answer comes in FORWARD_TIMEOUT_MS.
 */
function forward(agents: ForwardAgents, url: URL, method: string, headers: Record<string, string>, body: Buffer | undefined): Promise<Forwarded> {
  const secure = url.protocol === 'https:';
  return new Promise((resolve, reject) => {
    const req = (secure ? httpsRequest : httpRequest)(url, { method, headers, agent: secure ? agents.https : agents.http }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        clearTimeout(timer);
        resolve({ status: res.statusCode ?? 502, headers: res.headers, body: Buffer.concat(chunks) });
      });
      res.on('error', reject);
    });
    const timer = setTimeout(() => req.destroy(new Error(`no answer within ${FORWARD_TIMEOUT_MS} ms`)), FORWARD_TIMEOUT_MS);
    req.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    req.end(body);
  });
}

/**
 * Waits for a `sync` namespace's replicas to acknowledge a write (seed 001, journey 2).
 * @throws UnavailableError (503) when some did not: the write stands on the primary, but the
 * caller must not count on it surviving the primary's failure (RESP answers `-NOREPLICAS`).
 */
async function unreplicated(key: string, replicated: Promise<string | undefined> | undefined): Promise<void> {
  const why = replicated === undefined ? undefined : await replicated;
  if (why !== undefined) throw new UnavailableError(`the write of '${key}' is on the primary, but ${why}; it may be lost if the primary fails`, { details: { key } });
}

/** Registers `GET/PUT/DELETE /v1/cache/*`. */
export function registerCacheRoutes(app: FastifyInstance, ctx: HttpContext): void {
  const { cache } = ctx;
  const agents = forwardAgents(ctx.peerCa);

  app.get('/v1/cache/*', async (req: FastifyRequest, reply: FastifyReply) => {
    const key = cacheKey(ctx, req, 'cache.get', 'read');
    const relayed = await viaOwner(ctx, agents, req, reply, key);
    if (relayed !== undefined) return relayed;
    const res = await cache.readThrough(key);
    if (res.outcome === 'miss') {
      void reply.header('x-cache', 'miss');
      throw new NotFoundError(`cache miss for '${key}': ${res.reason}`, { key, reason: res.reason });
    }
    const value = stringValue(key, res.value);
    void reply.header('x-cache', res.outcome === 'hit' ? 'hit' : 'miss');
    if (res.outcome === 'loaded') void reply.header('x-cache-source', 'origin');
    return answer(ctx, key, value);
  });

  app.put('/v1/cache/*', async (req: FastifyRequest, reply: FastifyReply) => {
    const key = cacheKey(ctx, req, 'cache.put', 'write');
    const relayed = await viaOwner(ctx, agents, req, reply, key);
    if (relayed !== undefined) return relayed;
    const q = req.query as Record<string, unknown>;
    let value: Uint8Array;
    let ttl: number | undefined;
    if (Buffer.isBuffer(req.body)) {
      value = req.body;
      ttl = ttlOf(queryInt(q, 'ttl'));
    } else {
      if (req.body === undefined || req.body === null) throw new InvalidArgumentError('missing body: send {"value": "...", "ttl": 3600} as JSON, or the raw value with ?ttl=');
      const o = readObject(req.body, ['value', 'encoding', 'ttl']);
      value = decodeValue(o.value, o.encoding);
      ttl = ttlOf(optInt(o, 'ttl') ?? queryInt(q, 'ttl'));
    }
    if (value.byteLength > ctx.store.maxValueBytes) {
      throw new InvalidArgumentError(`the value is ${value.byteLength} bytes; the limit is ${ctx.store.maxValueBytes}`, { key });
    }
    // Format and JSON Schema checks of the namespace apply to cache values too (memory namespaces are never secret).
    const bytes = Buffer.from(ctx.policies.checkWrite(key, value));
    const expireAtMs = ttl !== undefined ? Date.now() + ttl * 1000 : undefined;
    cache.set(key, { type: 'string', value: bytes }, expireAtMs !== undefined ? { expireAtMs } : {});
    const at = cache.expireTimeMs(key);
    const replicated = cache.changedOutside('set', key, ['SET', key, bytes, ...(at > 0 ? ['PXAT', String(at)] : [])]);
    await cache.durable();
    await unreplicated(key, replicated);
    return { key, ttl: at > 0 ? Math.ceil((at - Date.now()) / 1000) : -1 };
  });

  app.delete('/v1/cache/*', async (req: FastifyRequest, reply: FastifyReply) => {
    const key = cacheKey(ctx, req, 'cache.delete', 'write');
    const relayed = await viaOwner(ctx, agents, req, reply, key);
    if (relayed !== undefined) return relayed;
    const deleted = cache.delete(key);
    if (deleted) {
      const replicated = cache.changedOutside('del', key, ['DEL', key]);
      await cache.durable();
      await unreplicated(key, replicated);
    }
    return { key, deleted };
  });
}
