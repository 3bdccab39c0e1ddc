/** Who is calling, per request: the principal set by authentication, and the audit context for writes. */
import type { FastifyRequest } from 'fastify';
import type { AuditContext } from '../../kv/index.js';

/** The authenticated caller of a request; `anonymous` until authentication has run (or in --dev mode, `dev`). */
export function principalName(req: FastifyRequest): string {
  return (req as FastifyRequest & { principal?: { name: string } }).principal?.name ?? 'anonymous';
}

/** The audit context of a write: principal, `action` (e.g. `kv.put`), request id and source address. */
export function auditContext(req: FastifyRequest, action: string): AuditContext {
  return { principal: principalName(req), action, requestId: String(req.id), source: req.ip };
}
