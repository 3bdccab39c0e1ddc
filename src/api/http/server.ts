/** The HTTP API on fastify: request ids, JSON logs, latency metrics, the one error handler, every route module. */
import cors from '@fastify/cors';
import websocket from '@fastify/websocket';
import { randomBytes } from 'node:crypto';
import type { Bindings, ChildLoggerOptions } from 'pino';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { InvalidArgumentError } from '../../errors.js';
import type { RequestSeries } from '../../obs/index.js';
import { registerAdminRoutes } from './admin-routes.js';
import { registerAlertRoutes } from './alert-routes.js';
import { registerAuthRoutes } from './auth-routes.js';
import { registerCacheRoutes } from './cache-routes.js';
import { WS_PROTOCOL, redactUrl, registerAuthHooks } from './authz.js';
import { registerConfigRoutes } from './config-routes.js';
import { registerConsole } from './console-routes.js';
import { registerRolloutRoutes } from './rollout-routes.js';
import { registerCoordRoutes } from './coord-routes.js';
import type { HttpContext } from './context.js';
import { errorCodeOf, errorHandler } from './error-handler.js';
import { registerKvRoutes } from './kv-routes.js';
import { registerLeaseRoutes } from './lease-routes.js';
import { registerPromRoutes } from './prom-routes.js';
import { registerWatchRoutes } from './watch-routes.js';

/** Largest WebSocket frame a client may send, in bytes. */
export const MAX_WS_FRAME_BYTES = 64 * 1024;

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * Generated request ids: a random prefix per process, then a counter in base 36
 * (`3f9c0a1b2e4d-1a7`). Unique per node start, so ids from different nodes or restarts do not
 * collide in logs and audit records. A `randomUUID()` per request cost ~240 ns and ~600 bytes
 * of garbage, a twentieth of a GET's allocation (issue 17).
 */
const REQUEST_ID_PREFIX = `${randomBytes(6).toString('hex')}-`;
let requestCounter = 0;

/** Methods a browser app on another origin may use (every method of the API). */
export const CORS_METHODS = ['GET', 'PUT', 'POST', 'PATCH', 'DELETE'] as const;
/** Request headers a browser app may send: JSON bodies, the bearer token, SSE resumption, its own request id. */
export const CORS_ALLOWED_HEADERS = ['content-type', 'authorization', 'last-event-id', 'x-request-id'] as const;
/**
 * Response headers a browser app may read beyond the CORS-safelisted ones: the request id (for
 * support), the revision headers (the SDK's snapshot reads them), `retry-after` of a 429 and
 * `www-authenticate` of a 401.
 */
export const CORS_EXPOSED_HEADERS = ['x-request-id', 'x-beacon-revision', 'x-beacon-compact-revision', 'retry-after', 'www-authenticate'] as const;
/** Seconds a browser may cache a preflight answer. */
export const CORS_MAX_AGE_SECONDS = 600;

/** Options of {@link createHttpServer} that are not parts of the node. */
export interface HttpServerOptions {
  /**
   * Origins (`scheme://host[:port]`, exactly as browsers send them) whose pages may call the API
   * from a browser (CORS); `['*']` allows any origin and only with `--dev`. Default none: no CORS
   * headers at all. Checked with {@link checkCorsOrigins}.
   */
  corsOrigins?: readonly string[];
}

/**
 * Validates a list of CORS origins and returns it normalised (duplicates dropped). Each entry must
 * be an exact origin as a browser sends it in `Origin`: `http://` or `https://`, a host, an
 * optional port, nothing after it (no path, no trailing slash, no wildcard in the host). `*`
 * (any origin) is accepted only alone and only in development mode: in production it would let
 * every web page on the internet drive the API with a token it got hold of.
 * @throws InvalidArgumentError naming the bad entry.
 */
export function checkCorsOrigins(origins: readonly string[], dev: boolean): string[] {
  const out = new Set<string>();
  for (const raw of origins) {
    const o = raw.trim();
    if (o === '') continue;
    if (o === '*') {
      if (!dev) {
        throw new InvalidArgumentError(
          "CORS origin '*' (any web page) is allowed only with --dev; list the exact origins of your browser apps, e.g. https://console.example.com",
        );
      }
      out.add('*');
      continue;
    }
    let parsed: URL | undefined;
    try {
      parsed = new URL(o);
    } catch {
      parsed = undefined;
    }
    if (parsed === undefined || (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') || parsed.origin !== o) {
      throw new InvalidArgumentError(
        `invalid CORS origin '${o}': expected an exact origin such as https://console.example.com or http://127.0.0.1:5173 (scheme, host and port only, no path or trailing slash)`,
      );
    }
    out.add(o);
  }
  if (out.has('*') && out.size > 1) throw new InvalidArgumentError("CORS origin '*' cannot be combined with other origins");
  return [...out];
}

/**
 * A request's logger, made on first use. Most requests never log, and fastify's default of a
 * pino child per request (its bindings serialised at once) cost about a microsecond of every GET
 * (issue 17). Same methods and output as the child it stands for.
 */
class LazyRequestLogger {
  private real: FastifyBaseLogger | undefined;

  constructor(
    private readonly parent: FastifyBaseLogger,
    private readonly bindings: Bindings,
    private readonly opts: ChildLoggerOptions,
  ) {}

  private get log(): FastifyBaseLogger {
    return (this.real ??= this.parent.child(this.bindings, this.opts));
  }

  get level(): string {
    return this.log.level;
  }

  set level(level: string) {
    this.log.level = level;
  }

  fatal(...args: unknown[]): void {
    (this.log.fatal as (...a: unknown[]) => void)(...args);
  }

  error(...args: unknown[]): void {
    (this.log.error as (...a: unknown[]) => void)(...args);
  }

  warn(...args: unknown[]): void {
    (this.log.warn as (...a: unknown[]) => void)(...args);
  }

  info(...args: unknown[]): void {
    (this.log.info as (...a: unknown[]) => void)(...args);
  }

  debug(...args: unknown[]): void {
    (this.log.debug as (...a: unknown[]) => void)(...args);
  }

  trace(...args: unknown[]): void {
    (this.log.trace as (...a: unknown[]) => void)(...args);
  }

  silent(): void {}

  child(bindings: Bindings, opts?: ChildLoggerOptions): FastifyBaseLogger {
    return this.log.child(bindings, opts);
  }
}

/**
 * Builds the fastify app with every route registered (not yet listening).
 * The body limit follows the value limit: a base64 value is 4/3 of its bytes, plus JSON framing.
 * With `ctx.tls` it serves HTTPS; with `ctx.tls.clientCa` it also asks for client certificates
 * and trusts those the CA signed (a client without one may still use a token).
 * With `opts.corsOrigins` it answers CORS preflights from those origins (before authentication:
 * a preflight carries no credential) and lets their pages read its answers (docs/api.md).
 * @throws InvalidArgumentError when a CORS origin is malformed, or is `*` outside dev mode.
 */
export async function createHttpServer(ctx: HttpContext, opts: HttpServerOptions = {}): Promise<FastifyInstance> {
  const corsOrigins = checkCorsOrigins(opts.corsOrigins ?? [], ctx.info.dev);
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
    childLoggerFactory: (logger, bindings, opts) => new LazyRequestLogger(logger, bindings, opts) as unknown as FastifyBaseLogger,
    bodyLimit: Math.ceil((ctx.store.maxValueBytes * 4) / 3) + 64 * 1024,
    routerOptions: { maxParamLength: 8192 },
    requestIdHeader: false,
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && REQUEST_ID.test(given) ? given : REQUEST_ID_PREFIX + (++requestCounter).toString(36);
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
  if (corsOrigins.length > 0) {
    // Registered before the authentication hook (registerAuthHooks below), so its onRequest hook
    // runs first and answers a preflight from an allowed origin itself, without a credential.
    // An origin not in the list gets no CORS headers (the browser then refuses the response to the
    // page), and its preflight goes on to authentication like any other request (401).
    const any = corsOrigins[0] === '*';
    const allowed = new Set(corsOrigins);
    await app.register(cors, {
      origin: (origin, cb) => {
        if (origin === undefined) cb(null, false); // not a cross-origin browser request: nothing to add
        else if (any) cb(null, '*');
        else cb(null, allowed.has(origin) ? origin : false);
      },
      methods: [...CORS_METHODS],
      allowedHeaders: [...CORS_ALLOWED_HEADERS],
      exposedHeaders: [...CORS_EXPOSED_HEADERS],
      maxAge: CORS_MAX_AGE_SECONDS,
      // Bearer tokens, not cookies: a page never needs the browser to attach ambient credentials.
      credentials: false,
      strictPreflight: true,
    });
  }
  app.addHook('onSend', (_req, reply, payload, done) => {
    if (!reply.hasHeader('x-beacon-revision')) void reply.header('x-beacon-revision', String(ctx.store.revision));
    done(null, payload);
  });
  // Request metrics (issue 12: the duration histogram, and beacon_http_requests_total for rate()
  // in PromQL). A route's label is known when it is registered, so each route gets its own
  // onResponse hook holding its label children: reading `req.routeOptions` per request builds a
  // fresh object each time, and that and the label strings were a tenth of a GET's JavaScript
  // (issue 17). Requests that matched no route are counted by the global hook as 'unmatched'.
  const recorder = (route: string): ((method: string, status: number, ms: number) => void) => {
    const byMethod = new Map<string, Map<number, RequestSeries>>();
    let children = 0;
    return (method, status, ms) => {
      let byStatus = byMethod.get(method);
      if (byStatus === undefined) byMethod.set(method, (byStatus = new Map()));
      let m = byStatus.get(status);
      if (m === undefined) {
        m = ctx.metrics.httpSeries({ method, route, status: String(status) });
        // A bounded cache: a client inventing methods cannot grow it without end.
        if (children++ < 100) byStatus.set(status, m);
      }
      m.observe(ms / 1000);
    };
  };
  app.addHook('onRoute', (route) => {
    const record = recorder(route.url);
    const hook = (req: FastifyRequest, reply: FastifyReply, done: () => void): void => {
      record(req.method, reply.statusCode, reply.elapsedTime);
      done();
    };
    const own = route.onResponse === undefined ? [] : Array.isArray(route.onResponse) ? route.onResponse : [route.onResponse];
    route.onResponse = [...own, hook];
  });
  const unmatched = recorder('unmatched');
  app.addHook('onResponse', (req, reply, done) => {
    if (req.is404) unmatched(req.method, reply.statusCode, reply.elapsedTime);
    if (reply.statusCode >= 400) {
      req.log.info({ method: req.method, url: redactUrl(req.url), status: reply.statusCode }, 'request answered with an error');
    }
    done();
  });
  app.addHook('onError', async (_req, _reply, err) => {
    ctx.metrics.errors.inc({ code: errorCodeOf(err) });
  });

  await app.register(websocket, {
    // A browser that offers its token as a subprotocol (authz.ts) needs one selected back, or it drops the socket.
    options: { maxPayload: MAX_WS_FRAME_BYTES, handleProtocols: (offered: Set<string>) => (offered.has(WS_PROTOCOL) ? WS_PROTOCOL : false) },
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
  registerPromRoutes(app, ctx); // metrics push and Prometheus query API (issue 12)
  registerCacheRoutes(app, ctx); // issue 11
  registerAlertRoutes(app, ctx); // issue 13
  await registerConsole(app); // the web console at /ui/ (issue 14)
  registerRolloutRoutes(app, ctx); // issue 16
  return app;
}
