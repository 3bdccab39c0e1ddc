/** `/v1/locks`, `/v1/elections`, `/v1/sequences`: the coordination recipes over HTTP for clients without the SDK (docs/coordination.md). */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { CoordService, MAX_WAIT_MS, contenderKey, parseContenderKey, validateName, type ContenderRef } from '../../coord/index.js';
import { InvalidArgumentError, NotFoundError, UnavailableError } from '../../errors.js';
import { MAX_LEASE_TTL_SECONDS } from '../../lease/index.js';
import type { Store } from '../../kv/index.js';
import { decodeValue, encodeValue, kvToJson, optInt, optString, queryInt, readObject, wildcardKey } from './codec.js';
import type { HttpContext } from './context.js';
import { kvJsonFor, readView } from './authz.js';
import { auditContext, principalName } from './request-context.js';
import { requireOwnLease } from './lease-routes.js';

/** The TTL in seconds of a lease the server grants for a lock or campaign request that names none. */
export const DEFAULT_COORD_TTL_SECONDS = 30;
/** How often an election observer stream sends an SSE comment so idle proxies keep it open, in ms. */
const SSE_PING_MS = 15_000;
/** How long shutdown waits for blocked lock and campaign requests to withdraw and answer, in ms. */
const SHUTDOWN_GRACE_MS = 2000;
/** An observer whose unread SSE output passes this many bytes is cut off (a stuck client must not pin memory). */
const SSE_MAX_BUFFERED_BYTES = 1024 * 1024;

/**
 * An AbortSignal that fires when the HTTP client goes away before the response is sent, so a
 * blocked lock or campaign withdraws its contender key instead of queueing a ghost.
 */
function clientGone(req: FastifyRequest, reply: FastifyReply): AbortSignal {
  const ctl = new AbortController();
  const gone = (): void => ctl.abort(new UnavailableError('the client disconnected'));
  if (req.raw.destroyed || req.raw.socket.destroyed) gone();
  else reply.raw.once('close', () => !reply.raw.writableEnded && gone());
  return ctl.signal;
}

/**
 * The lease to hold a lock or candidacy with: the caller's own (another principal's answers 404,
 * issue 9 finding 9), or one granted now for the caller (`granted`).
 */
/** The longest `holder` a lock request may name, in characters. */
const MAX_HOLDER_CHARS = 256;

async function leaseFor(ctx: HttpContext, req: FastifyRequest, o: Record<string, unknown>): Promise<{ lease: number; ttl: number; granted: boolean }> {
  const lease = optInt(o, 'lease', 1);
  const ttl = optInt(o, 'ttl', 1, MAX_LEASE_TTL_SECONDS);
  if (lease !== undefined && ttl !== undefined) {
    throw new InvalidArgumentError("give either 'lease' (an existing lease id) or 'ttl' (seconds, for a new lease), not both");
  }
  if (lease !== undefined) return { lease, ttl: (await requireOwnLease(ctx, req, lease)).grantedTtl, granted: false };
  const l = await ctx.store.grantLease(ttl ?? DEFAULT_COORD_TTL_SECONDS, 0, undefined, principalName(req));
  return { lease: l.id, ttl: l.grantedTtl, granted: true };
}

/**
 * Keeps a lease the server granted for one blocking request alive while it waits: nobody else
 * knows its id yet, so without this a wait longer than the TTL loses the lease, and a grant just
 * before that hands out a lock with milliseconds left (issue 9 finding 8). Returns the stop function.
 */
function keepAliveWhileWaiting(store: Store, lease: number, ttlSeconds: number): () => void {
  const timer = setInterval(() => {
    // A failure shows up in the wait itself (the contender key goes with the lease).
    store.keepAlive(lease).catch(() => undefined);
  }, Math.max(100, Math.floor((ttlSeconds * 1000) / 3)));
  timer.unref();
  return () => clearInterval(timer);
}

/** Splits `{name}/{action}` of a wildcard path. @throws NotFoundError for an action outside `actions`. */
function nameAndAction(params: unknown, actions: readonly string[], base: string): { name: string; action: string } {
  const path = wildcardKey(params);
  const slash = path.lastIndexOf('/');
  const action = path.slice(slash + 1);
  if (slash <= 0 || !actions.includes(action)) {
    throw new NotFoundError(`no such route: use ${actions.map((a) => `${base}/{name}/${a}`).join(', ')}`, { path });
  }
  return { name: path.slice(0, slash), action };
}

/** The contender named in a body by `key` or `lease` (one of them), with an optional `fencingToken`. */
function contenderRef(name: string, o: Record<string, unknown>): ContenderRef {
  const key = optString(o, 'key');
  const lease = optInt(o, 'lease', 1);
  if ((key === undefined) === (lease === undefined)) throw new InvalidArgumentError("give exactly one of 'key' or 'lease'");
  const fencingToken = optInt(o, 'fencingToken', 1);
  const ref: ContenderRef = { key: key ?? contenderKey(name, lease as number) };
  if (fencingToken !== undefined) ref.fencingToken = fencingToken;
  return ref;
}

/**
 * Registers the coordination routes on a {@link CoordService} built from `ctx.store`. Blocking
 * requests (lock, campaign) end with the client: a disconnect withdraws the contender key, and a
 * lease the server granted for the request is revoked unless the request succeeded.
 */
export function registerCoordRoutes(app: FastifyInstance, ctx: HttpContext): void {
  const { store } = ctx;
  const coord = new CoordService(store, {
    onWarning: (message, err) => ctx.logger.warn({ err }, message),
    ...(ctx.coord?.leaseFloorMs !== undefined ? { leaseFloorMs: ctx.coord.leaseFloorMs } : {}),
  });
  // Blocking requests in progress, so shutdown can let them answer before connections are cut.
  const inflight = new Set<Promise<unknown>>();
  const track = <T>(p: Promise<T>): Promise<T> => {
    inflight.add(p);
    p.then(
      () => inflight.delete(p),
      () => inflight.delete(p),
    );
    return p;
  };
  // Before the server closes its connections: blocked requests withdraw their keys and get a 503
  // ("the node is shutting down", safe to retry on another node); observer streams end cleanly.
  app.addHook('preClose', async () => {
    coord.close();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.allSettled([...inflight]), new Promise((r) => (timer = setTimeout(r, SHUTDOWN_GRACE_MS)))]);
    clearTimeout(timer);
    await new Promise((r) => setImmediate(r)); // let the error responses reach the sockets
  });

  const revokeQuietly = async (lease: number): Promise<void> => {
    try {
      await store.revokeLease(lease);
    } catch {
      // already expired or revoked: its keys are gone either way
    }
  };

  // ---- locks ----------------------------------------------------------------------------------

  /**
   * The optional `holder` of a lock request: who holds it (seed 004: `{"holder": "order-service-1"}`),
   * stored as the lock key's value and shown by `GET /v1/locks/{name}`. Checked like any write
   * under the lock's name (format, schema, size). @throws InvalidArgumentError when not a non-empty string.
   */
  const lockHolder = (name: string, v: unknown): Uint8Array | undefined => {
    if (v === undefined) return undefined;
    if (typeof v !== 'string' || v.length === 0 || v.length > MAX_HOLDER_CHARS) {
      throw new InvalidArgumentError(`'holder' must be a non-empty string of at most ${MAX_HOLDER_CHARS} characters (who holds the lock, e.g. "order-service-1")`, { field: 'holder' });
    }
    return ctx.policies.checkWrite(`${name}/`, new TextEncoder().encode(v));
  };

  const lockHandler = async (req: FastifyRequest, reply: FastifyReply): Promise<unknown> => {
    const name = wildcardKey(req.params);
    const o = readObject(req.body ?? {}, ['lease', 'ttl', 'timeoutMs', 'holder']);
    const timeoutMs = optInt(o, 'timeoutMs', 0, MAX_WAIT_MS);
    const signal = clientGone(req, reply);
    validateName(name, 'lock name'); // before a lease is granted for it
    const holder = lockHolder(name, o.holder);
    const { lease, ttl, granted } = await leaseFor(ctx, req, o);
    const stopKeepAlive = granted ? keepAliveWhileWaiting(store, lease, ttl) : undefined;
    try {
      const lock = await coord.lock(name, { lease, timeoutMs, signal, audit: auditContext(req, 'lock.acquire'), ...(holder === undefined ? {} : { holder }) });
      if (signal.aborted) {
        // Acquired just as the client left: nobody will ever unlock it, so release it now (a
        // granted lease is revoked below, which releases it too).
        if (!granted && !lock.reentrant) await coord.unlock(lock).catch(() => undefined);
        throw signal.reason;
      }
      return { ...lock, ttl };
    } catch (err) {
      if (granted) await revokeQuietly(lease);
      throw err;
    } finally {
      stopKeepAlive?.();
    }
  };
  app.post('/v1/locks/*', (req, reply) => track(lockHandler(req, reply)));

  app.get('/v1/locks/*', async (req) => {
    const state = coord.lockState(wildcardKey(req.params));
    // The holder's key carries who holds it (`holder` of the lock request; empty when none was
    // named), shown unless the lock's namespace is secret and the caller may not read it.
    const h = state.holder;
    const named = h === undefined ? undefined : readView(ctx, req, h);
    return {
      name: state.name,
      holder:
        h === undefined
          ? null
          : { ...kvToJson(h, true), ...(named?.redacted === false ? encodeValue(named.value) : {}), fencingToken: h.createRevision },
      waiters: state.waiters.map((kv) => kvToJson(kv, true)),
      revision: state.revision,
    };
  });

  // DELETE /v1/locks/{key} (the key the lock call returned), or /v1/locks/{name}?lease=ID.
  app.delete('/v1/locks/*', async (req) => {
    const path = wildcardKey(req.params);
    const q = req.query as Record<string, unknown>;
    const lease = queryInt(q, 'lease');
    const fencingToken = queryInt(q, 'fencingToken');
    let key: string;
    if (lease !== undefined) {
      if (lease === 0) throw new InvalidArgumentError("query parameter 'lease' must be a positive lease id");
      validateName(path, 'lock name');
      key = contenderKey(path, lease);
    } else {
      key = path;
      try {
        parseContenderKey(key);
      } catch {
        throw new InvalidArgumentError(
          `'${key}' is not a lock key: DELETE /v1/locks/{key} takes the key the lock call returned ('<name>/<lease id in hex>'), or use /v1/locks/{name}?lease=ID`,
          { key },
        );
      }
    }
    const { revision } = await coord.unlock(fencingToken === undefined ? { key } : { key, fencingToken }, auditContext(req, 'lock.release'));
    return { key, revision };
  });

  // ---- elections ------------------------------------------------------------------------------

  const electionHandler = async (req: FastifyRequest, reply: FastifyReply): Promise<unknown> => {
    const { name, action } = nameAndAction(req.params, ['campaign', 'proclaim', 'resign'], '/v1/elections');
    validateName(name, 'election name');
    if (action === 'campaign') {
      const o = readObject(req.body ?? {}, ['value', 'encoding', 'lease', 'ttl', 'timeoutMs']);
      if (o.value === undefined) throw new InvalidArgumentError("'value' is required: what the leader announces, e.g. its address");
      // Values are validated like any other write; in a secret namespace the store encrypts them for the real key.
      const value = ctx.policies.checkWrite(`${name}/`, decodeValue(o.value, o.encoding));
      const timeoutMs = optInt(o, 'timeoutMs', 0, MAX_WAIT_MS);
      const signal = clientGone(req, reply);
      const { lease, ttl, granted } = await leaseFor(ctx, req, o);
      const stopKeepAlive = granted ? keepAliveWhileWaiting(store, lease, ttl) : undefined;
      try {
        const leader = await coord.campaign(name, value, { lease, timeoutMs, signal, audit: auditContext(req, 'election.campaign') });
        if (signal.aborted) {
          if (!granted && !leader.reentrant) await coord.resign(name, { key: leader.key, fencingToken: leader.fencingToken }).catch(() => undefined);
          throw signal.reason;
        }
        return { ...leader, ttl };
      } catch (err) {
        if (granted) await revokeQuietly(lease);
        throw err;
      } finally {
        stopKeepAlive?.();
      }
    }
    if (action === 'proclaim') {
      const o = readObject(req.body ?? {}, ['key', 'lease', 'fencingToken', 'value', 'encoding']);
      if (o.value === undefined) throw new InvalidArgumentError("'value' is required");
      const ref = contenderRef(name, o);
      const value = ctx.policies.checkWrite(`${name}/`, decodeValue(o.value, o.encoding));
      const { revision } = await coord.proclaim(name, ref, value, auditContext(req, 'election.proclaim'));
      return { name, key: ref.key, revision };
    }
    const o = readObject(req.body ?? {}, ['key', 'lease', 'fencingToken']);
    const ref = contenderRef(name, o);
    const { revision } = await coord.resign(name, ref, auditContext(req, 'election.resign'));
    return { name, key: ref.key, revision };
  };
  app.post('/v1/elections/*', (req, reply) => track(electionHandler(req, reply)));

  app.get('/v1/elections/*', async (req, reply) => {
    const { name, action } = nameAndAction(req.params, ['leader', 'candidates', 'observe'], '/v1/elections');
    if (action === 'leader') {
      const kv = coord.leader(name);
      if (kv === undefined) throw new NotFoundError(`election '${name}' has no leader`, { name });
      return { name, ...kvJsonFor(ctx, req, kv), fencingToken: kv.createRevision };
    }
    if (action === 'candidates') {
      return { name, candidates: coord.candidates(name).map((kv) => kvJsonFor(ctx, req, kv)), revision: store.revision };
    }
    validateName(name, 'election name'); // while an error can still be a normal response
    reply.hijack();
    const raw = reply.raw;
    raw.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
      'x-request-id': String(req.id),
      'x-beacon-revision': String(store.revision),
    });
    raw.write(`: observing election ${JSON.stringify(name)}\n\n`);
    const ctl = new AbortController();
    raw.once('close', () => ctl.abort());
    const send = (chunk: string): void => {
      if (raw.destroyed) return;
      if (raw.writableLength > SSE_MAX_BUFFERED_BYTES) {
        raw.destroy();
        return;
      }
      raw.write(chunk);
    };
    const ping = setInterval(() => send(': ping\n\n'), SSE_PING_MS);
    try {
      for await (const kv of coord.observe(name, { signal: ctl.signal })) {
        send(`event: leader\nid: ${kv.modRevision}\ndata: ${JSON.stringify({ name, ...kvJsonFor(ctx, req, kv), fencingToken: kv.createRevision })}\n\n`);
      }
    } catch (err) {
      ctx.logger.warn({ err }, 'election observer failed');
    } finally {
      clearInterval(ping);
      if (!raw.destroyed) raw.end();
    }
  });

  // ---- sequential keys ------------------------------------------------------------------------

  app.post('/v1/sequences/*', async (req, reply) => {
    const prefix = wildcardKey(req.params);
    const o = readObject(req.body ?? {}, ['value', 'encoding', 'lease']);
    const value = ctx.policies.checkWrite(`${prefix}/`, o.value === undefined ? new Uint8Array(0) : decodeValue(o.value, o.encoding));
    const lease = optInt(o, 'lease', 1);
    if (lease !== undefined) await requireOwnLease(ctx, req, lease);
    const audit = auditContext(req, 'sequence.create');
    const created = await coord.createSequential(prefix, value, lease === undefined ? { audit } : { lease, audit });
    void reply.status(201);
    return { prefix, ...created };
  });
}
