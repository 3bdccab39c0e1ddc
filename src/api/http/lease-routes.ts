/**
 * `/v1/leases`: grant, list, time-to-live, keep-alive, revoke. Leases are not keys, so: granting
 * and keeping alive need write access somewhere; revoking needs write access to every key the
 * lease holds (it deletes them); reading a lease shows only the keys the caller may read.
 */
import type { FastifyInstance } from 'fastify';
import { InvalidArgumentError } from '../../errors.js';
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
    const lease = await store.grantLease(ttl, optInt(o, 'id', 1) ?? 0, auditContext(req, 'lease.grant'));
    void reply.status(201);
    return { id: lease.id, ttl: lease.grantedTtl };
  });

  app.get('/v1/leases', async (req) => {
    if (!ctx.auth.hasAnyAccess(principalOf(req), 'read')) deny(ctx, req, 'lease.list', 'read');
    return { leases: store.leases().map((l) => ({ id: l.id, ttl: l.ttl, grantedTtl: l.grantedTtl, keys: l.keys.length })) };
  });

  app.get('/v1/leases/:id', async (req) => {
    if (!ctx.auth.hasAnyAccess(principalOf(req), 'read')) deny(ctx, req, 'lease.get', 'read');
    const id = leaseId(req.params);
    // A lease granted on another node a moment ago may not have come through the feed yet.
    await store.hasLease(id);
    const info = store.timeToLive(id);
    const p = principalOf(req);
    return { ...info, keys: info.keys.filter((k) => ctx.auth.canRead(p, k)) };
  });

  app.post('/v1/leases/:id/keepalive', async (req) => {
    needWriter(req, 'lease.keepalive');
    const id = leaseId(req.params);
    const ttl = await store.keepAlive(id);
    return { id, ttl };
  });

  app.delete('/v1/leases/:id', async (req) => {
    const id = leaseId(req.params);
    needWriter(req, 'lease.revoke');
    // On a shared store, first apply every write committed anywhere (keys another node just
    // attached to this lease), so the per-key check below sees every key the revoke will delete.
    if (store.backend.shared === true) await store.readBarrier();
    await store.hasLease(id);
    // Revoking deletes the lease's keys: the caller must be allowed to delete each of them.
    for (const key of store.timeToLive(id).keys) requireAccess(ctx, req, 'lease.revoke', 'write', { key });
    const revision = await store.revokeLease(id, auditContext(req, 'lease.revoke'));
    return { revision };
  });
}
