/** The HTTP API on fastify: request ids, JSON logs, latency metrics, the one error handler, every route module. */
import websocket from '@fastify/websocket';
import { randomUUID } from 'node:crypto';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { registerAdminRoutes } from './admin-routes.js';
import { registerAuthRoutes } from './auth-routes.js';
import { redactUrl, registerAuthHooks } from './authz.js';
import { registerConfigRoutes } from './config-routes.js';
import { registerCoordRoutes } from './coord-routes.js';
import type { HttpContext } from './context.js';
import { errorHandler } from './error-handler.js';
import { registerKvRoutes } from './kv-routes.js';
import { registerLeaseRoutes } from './lease-routes.js';
import { registerWatchRoutes } from './watch-routes.js';

/** Largest WebSocket frame a client may send, in bytes. */
export const MAX_WS_FRAME_BYTES = 64 * 1024;

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * Builds the fastify app with every route registered (not yet listening).
 * The body limit follows the value limit: a base64 value is 4/3 of its bytes, plus JSON framing.
 * With `ctx.tls` it serves HTTPS; with `ctx.tls.clientCa` it also asks for client certificates
 * and trusts those the CA signed (a client without one may still use a token).
 */
export async function createHttpServer(ctx: HttpContext): Promise<FastifyInstance> {
  const https = ctx.tls === undefined
    ? undefined
    : {
        cert: ctx.tls.cert,
        key: ctx.tls.key,
        ...(ctx.tls.clientCa !== undefined ? { ca: ctx.tls.clientCa, requestCert: true, rejectUnauthorized: false } : {}),
        minVersion: 'TLSv1.2' as const,
      };
  const app = Fastify({
    ...(https !== undefined ? { https } : {}),
    loggerInstance: ctx.logger as unknown as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: Math.ceil((ctx.store.maxValueBytes * 4) / 3) + 64 * 1024,
    routerOptions: { maxParamLength: 8192 },
    requestIdHeader: false,
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
    },
    forceCloseConnections: true,
    return503OnClosing: true,
  }) as unknown as FastifyInstance;

  // Raw values: anything that is not JSON is taken as the value's bytes.
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
  app.addContentTypeParser(['text/plain', 'application/octet-stream'], { parseAs: 'buffer' }, (_req, body, done) => done(null, body));

  app.setErrorHandler(errorHandler);
  app.setNotFoundHandler((req, reply) => {
    void reply.status(404).send({ error: { code: 'not_found', message: `no route ${req.method} ${req.url.split('?')[0]}` } });
  });

  // Callback-style hooks: no promise per request on the hot path.
  app.addHook('onRequest', (req, reply, done) => {
    void reply.header('x-request-id', req.id);
    done();
  });
  app.addHook('onSend', (_req, reply, payload, done) => {
    if (!reply.hasHeader('x-beacon-revision')) void reply.header('x-beacon-revision', String(ctx.store.revision));
    done(null, payload);
  });
  const observers = new Map<string, { observe(v: number): void }>();
  app.addHook('onResponse', (req, reply, done) => {
    const route = req.routeOptions.url ?? 'unmatched';
    const labels = `${req.method} ${route} ${reply.statusCode}`;
    let h = observers.get(labels);
    if (h === undefined) {
      h = ctx.metrics.httpDuration.labels({ method: req.method, route, status: String(reply.statusCode) });
      if (observers.size < 1000) observers.set(labels, h);
    }
    h.observe(reply.elapsedTime / 1000);
    if (reply.statusCode >= 400) {
      req.log.info({ method: req.method, url: redactUrl(req.url), status: reply.statusCode }, 'request answered with an error');
    }
    done();
  });
  app.addHook('onError', async (_req, _reply, err) => {
    const code = (err as { code?: unknown }).code;
    ctx.metrics.errors.inc({ code: typeof code === 'string' && /^[a-z_]+$/.test(code) ? code : 'internal' });
  });

  await app.register(websocket, {
    options: { maxPayload: MAX_WS_FRAME_BYTES },
    errorHandler: (err, socket) => {
      ctx.logger.warn({ err }, 'websocket handler failed');
      socket.close(1011, 'internal error');
    },
  });

  // Authentication, rate limits and the route rules run before every route registered below.
  registerAuthHooks(app, ctx);
  registerKvRoutes(app, ctx);
  registerLeaseRoutes(app, ctx);
  registerAdminRoutes(app, ctx);
  registerWatchRoutes(app, ctx);
  registerConfigRoutes(app, ctx);
  registerCoordRoutes(app, ctx);
  registerAuthRoutes(app, ctx);
  return app;
}
