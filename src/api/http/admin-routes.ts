/** Operations routes: `/v1/status`, `/v1/compact`, `/v1/snapshot`, `/healthz`, `/readyz`, `/metrics`. */
import { createReadStream } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { InvalidArgumentError } from '../../errors.js';
import { optInt, readObject } from './codec.js';
import type { HttpContext } from './context.js';

/** Registers the operations routes. */
export function registerAdminRoutes(app: FastifyInstance, ctx: HttpContext): void {
  const { store, info } = ctx;

  app.get('/healthz', async () => ({ status: 'ok' }));

  app.get('/readyz', async (_req, reply) => {
    const ready = info.ready();
    void reply.status(ready ? 200 : 503);
    return { ready, revision: store.revision };
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
    ready: info.ready(),
  }));

  app.post('/v1/compact', async (req) => {
    const o = readObject(req.body ?? {}, ['revision']);
    const revision = optInt(o, 'revision', 1);
    if (revision === undefined) throw new InvalidArgumentError("'revision' is required");
    await store.compact(revision);
    return { revision: store.revision, compactRevision: store.compactRevision };
  });

  // An online, consistent copy of the whole store; the revision it holds is in x-beacon-revision.
  app.get('/v1/snapshot', async (req, reply) => {
    const dir = await mkdtemp(join(tmpdir(), 'beacon-snapshot-'));
    const path = join(dir, 'snapshot.db');
    try {
      const state = await store.backend.snapshot(path);
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
