/**
 * `/v1/leases`: grant, list, time-to-live, keep-alive, revoke. Leases are not keys, so: granting
 * and keeping alive need write access somewhere; revoking needs write access to every key the
 * lease holds (it deletes them); reading a lease shows only the keys the caller may read.
 *
 * A lease belongs to the principal that granted it (issue 9 finding 9): to anyone else but an
 * administrator it does not exist — it is not listed, and looking it up, keeping it alive,
 * revoking it or attaching keys or locks to it answer 404 `not_found`, exactly as for an unknown id.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Principal } from '../../auth/index.js';
import { InvalidArgumentError, NotFoundError } from '../../errors.js';
import type { Lease } from '../../kv/index.js';
import { MAX_LEASE_TTL_SECONDS } from '../../lease/index.js';
import { optInt, readObject } from './codec.js';
import { deny, principalOf, requireAccess } from './authz.js';
import type { HttpContext } from './context.js';
import { auditContext } from './request-context.js';

function leaseId(params: unknown): number {
  const raw = (params as { id?: string }).id ?? '';
  if (!/^\d{1,16}$/.test(raw) || !Number.isSafeInteger(Number(raw)) || Number(raw) === 0) {
    throw new InvalidArgumentError(`lease id '${raw}' is not a positive integer`);
  }
  return Number(raw);
}

/**
 * Whether `principal` may see and manage a lease: it granted the lease, or it is an
 * administrator. A lease without a recorded owner (granted before owners were stored, or by the
 * node for itself) is for administrators only.
 */
export function mayUseLease(ctx: HttpContext, principal: Principal, lease: Pick<Lease, 'owner'>): boolean {
  if (lease.owner !== undefined && lease.owner === principal.name) return true;
  return ctx.auth.can(principal, 'admin');
}

/**
 * The lease `id` as the caller may see it; on a shared store a lease granted on another node a
 * moment ago is looked up there first.
 * @throws NotFoundError when it does not exist or belongs to another principal (the same answer,
 * so ids of other principals' leases cannot be probed).
 */
export async function ownLease(ctx: HttpContext, principal: Principal, id: number): Promise<Lease> {
  const lease = ctx.store.lease(id) ?? ((await ctx.store.hasLease(id)) ? ctx.store.lease(id) : undefined);
  if (lease === undefined || !mayUseLease(ctx, principal, lease)) throw new NotFoundError(`lease ${id} not found`, { lease: id });
  return lease;
}

/** {@link ownLease} for the caller of `req`. */
export function requireOwnLease(ctx: HttpContext, req: FastifyRequest, id: number): Promise<Lease> {
  return ownLease(ctx, principalOf(req), id);
}

/** Registers the lease routes. */
export function registerLeaseRoutes(app: FastifyInstance, ctx: HttpContext): void {
  const { store } = ctx;

  const needWriter = (req: Parameters<typeof principalOf>[0], action: string): void => {
    if (!ctx.auth.hasAnyAccess(principalOf(req), 'write')) deny(ctx, req, action, 'write');
  };

  app.post('/v1/leases', async (req, reply) => {
    needWriter(req, 'lease.grant');
    const o = readObject(req.body ?? {}, ['ttl', 'id']);
    const ttl = optInt(o, 'ttl', 1, MAX_LEASE_TTL_SECONDS);
    if (ttl === undefined) throw new InvalidArgumentError("'ttl' (seconds) is required");
    // The audit context's principal becomes the lease's owner.
    const lease = await store.grantLease(ttl, optInt(o, 'id', 1) ?? 0, auditContext(req, 'lease.grant'));
    void reply.status(201);
    return { id: lease.id, ttl: lease.grantedTtl };
  });

  app.get('/v1/leases', async (req) => {
    const p = principalOf(req);
    if (!ctx.auth.hasAnyAccess(p, 'read')) deny(ctx, req, 'lease.list', 'read');
    const admin = ctx.auth.can(p, 'admin');
    return {
      leases: store
        .leases()
        .filter((l) => admin || mayUseLease(ctx, p, l))
        .map((l) => ({ id: l.id, ttl: l.ttl, grantedTtl: l.grantedTtl, keys: l.keys.length, ...(admin ? { owner: l.owner ?? null } : {}) })),
    };
  });

  app.get('/v1/leases/:id', async (req) => {
    const p = principalOf(req);
    if (!ctx.auth.hasAnyAccess(p, 'read')) deny(ctx, req, 'lease.get', 'read');
    const id = leaseId(req.params);
    await ownLease(ctx, p, id);
    const { owner, ...info } = store.timeToLive(id);
    return { ...info, keys: info.keys.filter((k) => ctx.auth.canRead(p, k)), ...(ctx.auth.can(p, 'admin') ? { owner: owner ?? null } : {}) };
  });

  app.post('/v1/leases/:id/keepalive', async (req) => {
    needWriter(req, 'lease.keepalive');
    const id = leaseId(req.params);
    await requireOwnLease(ctx, req, id);
    const ttl = await store.keepAlive(id);
    return { id, ttl };
  });

  app.delete('/v1/leases/:id', async (req) => {
    const id = leaseId(req.params);
    needWriter(req, 'lease.revoke');
    // On a shared store, first apply every write committed anywhere (keys another node just
    // attached to this lease), so the per-key check below sees every key the revoke will delete.
    if (store.backend.shared === true) await store.readBarrier();
    await requireOwnLease(ctx, req, id);
    // Revoking deletes the lease's keys: the caller must be allowed to delete each of them.
    for (const key of store.timeToLive(id).keys) requireAccess(ctx, req, 'lease.revoke', 'write', { key });
    const revision = await store.revokeLease(id, auditContext(req, 'lease.revoke'));
    return { revision };
  });
}
