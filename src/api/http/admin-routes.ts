/** Operations routes: `/v1/status`, `/v1/compact`, `/v1/snapshot`, `/healthz`, `/readyz`, `/metrics`. */
import { createReadStream } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { InvalidArgumentError } from '../../errors.js';
import { optInt, readObject } from './codec.js';
import type { HttpContext } from './context.js';
import { principalName } from './request-context.js';

// --- cluster status (PostgreSQL backend work, issue 3) -------------------------------------------

/** One member of the cluster as `GET /v1/cluster` shows it. */
export interface ClusterNodeStatus {
  id: string;
  /** The node's base URL. */
  url: string;
  /** The node's RESP listener (`redis://host:port`); absent for a node without one. */
  respUrl?: string;
  version: string;
  /** ISO 8601 start time. */
  startedAt: string;
  /** The revision the node's view has applied (as of its last heartbeat, about a second old). */
  appliedRevision: number;
  /** `revision - appliedRevision`, in revisions. */
  lag: number;
  /** What the node's `/readyz` says. */
  ready: boolean;
  /** Whether the node drives lease expiry. */
  expiryLeader: boolean;
  /** Milliseconds since the node's last heartbeat (0 for the answering node). */
  lastSeenMs: number;
  /** True for the node that answered. */
  self: boolean;
  /** The node's part of the cache tier across nodes (PostgreSQL mode, with a RESP listener). */
  cache?: {
    /** `primary` when the node is in the cache ring, `none` before it joined. */
    role: 'primary' | 'none';
    /** Slots it is the primary of, of 16,384. */
    slots: number;
    /** Cache keys it holds (as of its last heartbeat). */
    keys: number;
  };
}

/** The body of `GET /v1/cluster`: the backend's head revision, the expiry leader's id, every live node. */
export interface ClusterStatus {
  revision: number;
  expiryLeader: string | null;
  /** The cache ring's committed epoch (PostgreSQL mode, with RESP listeners). */
  cacheRingEpoch?: number;
  /** Every slot's primary, as `[start, end, node id]` runs (at most 1,024): clients send a cache key to its owner. */
  cacheSlots?: [number, number, string][];
  nodes: ClusterNodeStatus[];
}

/**
 * Registers `GET /v1/cluster`, answered by `status` (src/node/cluster.ts). Called by the node
 * wiring after {@link registerAdminRoutes}; rejects with `unavailable` (503) when the backend is unreachable.
 */
export function registerClusterRoute(app: FastifyInstance, status: () => Promise<ClusterStatus>): void {
  app.get('/v1/cluster', async () => status());
}

// --- end cluster status -------------------------------------------------------------------------

/** Registers the operations routes. */
export function registerAdminRoutes(app: FastifyInstance, ctx: HttpContext): void {
  const { store, info } = ctx;

  app.get('/healthz', async () => ({ status: 'ok' }));

  // Ready means the node can serve what a client sends it, writes included: after a commit failed
  // (disk full, I/O error) it answers 503 with the reason until a write works again (issue 9 finding 10).
  app.get('/readyz', async (_req, reply) => {
    const writes = await store.writeHealth();
    const ready = info.ready() && writes.ok;
    void reply.status(ready ? 200 : 503);
    if (writes.ok) return { ready, revision: store.revision };
    return { ready, revision: store.revision, writes: { ok: false, reason: writes.reason, since: new Date(writes.since).toISOString() } };
  });

  app.get('/metrics', async (_req, reply) => {
    void reply.header('content-type', ctx.metrics.registry.contentType);
    return ctx.metrics.registry.metrics();
  });

  app.get('/v1/status', async () => ({
    version: info.version,
    nodeId: info.nodeId,
    revision: store.revision,
    compactRevision: store.compactRevision,
    keys: store.keyCount,
    leases: store.leaseCount,
    watchers: ctx.hub.watcherCount,
    backend: store.backend.description,
    dbSizeBytes: (await store.backend.sizeBytes()) ?? null,
    uptimeSeconds: Math.round((Date.now() - info.startedAt) / 1000),
    startedAt: new Date(info.startedAt).toISOString(),
    dev: info.dev,
    ready: info.ready() && (await store.writeHealth()).ok,
  }));

  app.post('/v1/compact', async (req) => {
    const o = readObject(req.body ?? {}, ['revision']);
    const revision = optInt(o, 'revision', 1);
    if (revision === undefined) throw new InvalidArgumentError("'revision' is required");
    await store.compact(revision);
    // Audited (issue 5): compaction destroys history.
    await ctx.audit.append({ principal: principalName(req), action: 'kv.compact', outcome: 'ok', revision, requestId: String(req.id), source: req.ip });
    return { revision: store.revision, compactRevision: store.compactRevision };
  });

  // An online, consistent copy of the whole store; the revision it holds is in x-beacon-revision.
  app.get('/v1/snapshot', async (req, reply) => {
    const dir = await mkdtemp(join(tmpdir(), 'beacon-snapshot-'));
    const path = join(dir, 'snapshot.db');
    try {
      const state = await store.backend.snapshot(path);
      // Audited (issue 5): a snapshot is a copy of every key, password hash and sealed secret.
      ctx.audit.note({ principal: principalName(req), action: 'snapshot.download', outcome: 'ok', revision: state.revision, requestId: String(req.id), source: req.ip });
      const { size } = await stat(path);
      const stream = createReadStream(path);
      const cleanup = (): void => void rm(dir, { recursive: true, force: true });
      stream.on('close', cleanup);
      req.raw.on('close', () => stream.destroy());
      void reply
        .header('content-type', 'application/octet-stream')
        .header('content-length', String(size))
        .header('content-disposition', `attachment; filename="beacon-${state.revision}.db"`)
        .header('x-beacon-revision', String(state.revision))
        .header('x-beacon-compact-revision', String(state.compactRevision));
      return reply.send(stream);
    } catch (err) {
      await rm(dir, { recursive: true, force: true });
      throw err;
    }
  });
}
