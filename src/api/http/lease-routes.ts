/** `/v1/leases`: grant, list, time-to-live, keep-alive, revoke. */
import type { FastifyInstance } from 'fastify';
import { InvalidArgumentError } from '../../errors.js';
import { MAX_LEASE_TTL_SECONDS } from '../../lease/index.js';
import { optInt, readObject } from './codec.js';
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

  app.post('/v1/leases', async (req, reply) => {
    const o = readObject(req.body ?? {}, ['ttl', 'id']);
    const ttl = optInt(o, 'ttl', 1, MAX_LEASE_TTL_SECONDS);
    if (ttl === undefined) throw new InvalidArgumentError("'ttl' (seconds) is required");
    const lease = await store.grantLease(ttl, optInt(o, 'id', 1) ?? 0, auditContext(req, 'lease.grant'));
    void reply.status(201);
    return { id: lease.id, ttl: lease.grantedTtl };
  });

  app.get('/v1/leases', async () => ({
    leases: store.leases().map((l) => ({ id: l.id, ttl: l.ttl, grantedTtl: l.grantedTtl, keys: l.keys.length })),
  }));

  app.get('/v1/leases/:id', async (req) => store.timeToLive(leaseId(req.params)));

  app.post('/v1/leases/:id/keepalive', async (req) => {
    const id = leaseId(req.params);
    const ttl = await store.keepAlive(id);
    return { id, ttl };
  });

  app.delete('/v1/leases/:id', async (req) => {
    const revision = await store.revokeLease(leaseId(req.params), auditContext(req, 'lease.revoke'));
    return { revision };
  });
}
