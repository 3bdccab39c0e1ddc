/**
 * Authentication and authorisation for the HTTP API, in one place: an `onRequest` hook that
 * authenticates every request (except the public routes), applies the per-principal rate
 * limit and checks the route's rule; the rule table for every route; and the helpers route
 * handlers use for checks that depend on the body (txn ops) or on values (secret redaction).
 *
 * Routes without an entry in {@link ROUTE_RULES} are for administrators only (fail closed).
 */
import type { TLSSocket } from 'node:tls';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Counter } from 'prom-client';
import { ALERTS_RESOURCE_KEY, DASHBOARDS_RESOURCE_KEY, DEV_PRINCIPAL, METRICS_RESOURCE_KEY, deniedError, type Action, type Credentials, type Principal, type Resource } from '../../auth/index.js';
import type { ReadView } from '../../config/index.js';
import { BeaconError, ErrorCode, UnauthenticatedError } from '../../errors.js';
import { parseRange, prefixRange, type KeyValue } from '../../kv/index.js';
import { kvJsonBytes, kvToJson, queryBool, type KeyValueJson } from './codec.js';
import type { HttpContext } from './context.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** Who is calling; set by the authentication hook before any handler runs (undefined only on public routes). */
    principal?: Principal;
  }
}

/** What a route needs. `handler`: the route checks precisely itself (it knows the keys only after parsing the body). */
export type RouteRule =
  | { kind: 'public' }
  | { kind: 'authenticated' }
  | { kind: 'admin' }
  | { kind: 'handler' }
  | { kind: 'keys'; name: string; checks: (req: FastifyRequest) => { action: Action; resource: Resource }[] };

function wildcard(req: FastifyRequest): string {
  return (req.params as Record<string, string | undefined>)['*'] ?? '';
}

function query(req: FastifyRequest): Record<string, unknown> {
  return req.query as Record<string, unknown>;
}

/**
 * A prefix as a range resource (`[p, prefixEnd(p))`). The empty prefix means every client key
 * (reads clamp their ranges past the system keys); a system-key prefix stays a system key, which
 * {@link authorize} refuses to everyone.
 */
export function prefixResource(p: string): Resource {
  return prefixRange(p);
}

/** The resource of an SSE watch given as key + `prefix`/`rangeEnd` query parameters. */
function watchResource(req: FastifyRequest): Resource {
  const key = wildcard(req);
  const q = query(req);
  // The same parse as the SSE handler and the hub get (issue 9, finding 1).
  return parseRange({ key, prefix: queryBool(q, 'prefix'), rangeEnd: q.rangeEnd });
}

/** The name part of `{name}/{action}` wildcards (elections). */
function nameBeforeAction(req: FastifyRequest): string {
  const path = wildcard(req);
  const slash = path.lastIndexOf('/');
  return slash <= 0 ? path : path.slice(0, slash);
}

/** A metrics route (issue 12): `read` or `write` on {@link METRICS_RESOURCE_KEY}. */
function metricsRule(name: string, action: 'read' | 'write'): RouteRule {
  return { kind: 'keys', name, checks: () => [{ action, resource: { key: METRICS_RESOURCE_KEY } }] };
}

/** An alerting or dashboard route (issue 13): `read` or `write` on a reserved key. */
function reservedRule(name: string, key: string, action: 'read' | 'write'): RouteRule {
  return { kind: 'keys', name, checks: () => [{ action, resource: { key } }] };
}

/**
 * The authorisation rule of every route, by `METHOD url-pattern` (HEAD uses GET's).
 * The routes marked `handler` check each key they touch themselves (see kv-routes, config-routes,
 * lease-routes, auth-routes).
 */
export const ROUTE_RULES: Record<string, RouteRule> = {
  // Operations
  'GET /healthz': { kind: 'public' },
  'GET /readyz': { kind: 'public' },
  'GET /metrics': { kind: 'authenticated' }, // public with --metrics-public
  'GET /v1/status': { kind: 'authenticated' },
  'GET /v1/cluster': { kind: 'authenticated' },
  'POST /v1/compact': { kind: 'admin' },
  'GET /v1/snapshot': { kind: 'admin' },
  // Identity, audit, namespaces
  'POST /v1/auth/token': { kind: 'public' },
  'POST /v1/auth/refresh': { kind: 'public' }, // the refresh token in the body is the credential
  'GET /v1/auth/whoami': { kind: 'authenticated' },
  'GET /v1/users': { kind: 'admin' },
  'POST /v1/users': { kind: 'admin' },
  'GET /v1/users/:name': { kind: 'handler' },
  'PATCH /v1/users/:name': { kind: 'admin' },
  'DELETE /v1/users/:name': { kind: 'admin' },
  'PUT /v1/users/:name/password': { kind: 'handler' },
  'GET /v1/roles': { kind: 'authenticated' },
  'GET /v1/roles/:name': { kind: 'authenticated' },
  'PUT /v1/roles/:name': { kind: 'admin' },
  'DELETE /v1/roles/:name': { kind: 'admin' },
  'GET /v1/apikeys': { kind: 'admin' },
  'POST /v1/apikeys': { kind: 'admin' },
  'DELETE /v1/apikeys/:id': { kind: 'admin' },
  'GET /v1/audit': { kind: 'admin' },
  'GET /v1/namespaces': { kind: 'authenticated' },
  'GET /v1/namespaces/*': { kind: 'handler' },
  'PUT /v1/namespaces/*': { kind: 'handler' },
  'PATCH /v1/namespaces/*': { kind: 'handler' },
  'DELETE /v1/namespaces/*': { kind: 'handler' },
  'POST /v1/secrets/reencrypt': { kind: 'admin' },
  'GET /v1/auth/signing-key': { kind: 'admin' },
  'POST /v1/auth/signing-key/rotate': { kind: 'admin' },
  // Keys, txns, leases, configs: checked per key by the handlers
  'GET /v1/kv': { kind: 'handler' },
  'GET /v1/kv/*': { kind: 'handler' },
  'PUT /v1/kv/*': { kind: 'handler' },
  'DELETE /v1/kv/*': { kind: 'handler' },
  'POST /v1/txn': { kind: 'handler' },
  'POST /v1/leases': { kind: 'handler' },
  'GET /v1/leases': { kind: 'handler' },
  'GET /v1/leases/:id': { kind: 'handler' },
  'POST /v1/leases/:id/keepalive': { kind: 'handler' },
  'DELETE /v1/leases/:id': { kind: 'handler' },
  'GET /v1/configs': { kind: 'handler' },
  'GET /v1/configs/*': { kind: 'handler' },
  'PUT /v1/configs/*': { kind: 'handler' },
  'POST /v1/configs/*': { kind: 'handler' },
  'GET /v1/rollouts': { kind: 'handler' }, // issue 16
  'POST /v1/rollouts/report': { kind: 'handler' },
  'DELETE /v1/configs/*': { kind: 'handler' },
  // Cache tier (issue 11): read/write on the key, checked by the handlers like /v1/kv.
  'GET /v1/cache/*': { kind: 'handler' },
  'PUT /v1/cache/*': { kind: 'handler' },
  'DELETE /v1/cache/*': { kind: 'handler' },
  // Watches: the WebSocket routes multiplex watches whose ranges come later in frames; each
  // create/subscribe frame is clamped past the system keys and authorized (watch-access.ts), and
  // secret values are decrypted or redacted per principal. SSE checks its one range here too.
  'GET /v1/watch': { kind: 'authenticated' },
  'GET /v1/watch/*': { kind: 'keys', name: 'watch.sse', checks: (req) => [{ action: 'read', resource: watchResource(req) }] },
  'GET /v1/configs/watch': { kind: 'authenticated' },
  // Coordination: a lock or election `name` lives under `name/`; a sequence under `prefix/`.
  'POST /v1/locks/*': { kind: 'keys', name: 'lock.acquire', checks: (req) => [{ action: 'write', resource: prefixResource(`${wildcard(req)}/`) }] },
  'GET /v1/locks/*': { kind: 'keys', name: 'lock.get', checks: (req) => [{ action: 'read', resource: prefixResource(`${wildcard(req)}/`) }] },
  'DELETE /v1/locks/*': {
    kind: 'keys',
    name: 'lock.release',
    checks: (req) => [
      { action: 'write', resource: query(req).lease !== undefined ? prefixResource(`${wildcard(req)}/`) : { key: wildcard(req) } },
    ],
  },
  'POST /v1/elections/*': { kind: 'keys', name: 'election.write', checks: (req) => [{ action: 'write', resource: prefixResource(`${nameBeforeAction(req)}/`) }] },
  'GET /v1/elections/*': { kind: 'keys', name: 'election.read', checks: (req) => [{ action: 'read', resource: prefixResource(`${nameBeforeAction(req)}/`) }] },
  'POST /v1/sequences/*': { kind: 'keys', name: 'sequence.next', checks: (req) => [{ action: 'write', resource: prefixResource(`${wildcard(req)}/`) }] },
  // Metrics (issue 12): pushing needs write, the Prometheus query API read, on the reserved metrics key.
  'POST /v1/metrics': metricsRule('metrics.push', 'write'),
  'POST /api/v1/write': metricsRule('metrics.push', 'write'),
  'GET /api/v1/query': metricsRule('metrics.query', 'read'),
  'POST /api/v1/query': metricsRule('metrics.query', 'read'),
  'GET /api/v1/query_range': metricsRule('metrics.query', 'read'),
  'POST /api/v1/query_range': metricsRule('metrics.query', 'read'),
  'GET /api/v1/series': metricsRule('metrics.query', 'read'),
  'POST /api/v1/series': metricsRule('metrics.query', 'read'),
  'GET /api/v1/labels': metricsRule('metrics.query', 'read'),
  'POST /api/v1/labels': metricsRule('metrics.query', 'read'),
  'GET /api/v1/label/:name/values': metricsRule('metrics.query', 'read'),
  'GET /api/v1/status/buildinfo': { kind: 'authenticated' },
  // Alerting and dashboards (issue 13): read or write on the reserved keys @alerts and @dashboards.
  'GET /api/v1/rules': reservedRule('alerts.read', ALERTS_RESOURCE_KEY, 'read'),
  'GET /api/v1/alerts': reservedRule('alerts.read', ALERTS_RESOURCE_KEY, 'read'),
  'GET /v1/alerts': reservedRule('alerts.read', ALERTS_RESOURCE_KEY, 'read'),
  'GET /v1/alerts/notifications': reservedRule('alerts.read', ALERTS_RESOURCE_KEY, 'read'),
  'GET /v1/alerts/rules': reservedRule('alerts.read', ALERTS_RESOURCE_KEY, 'read'),
  'GET /v1/alerts/rules/:name': reservedRule('alerts.read', ALERTS_RESOURCE_KEY, 'read'),
  'PUT /v1/alerts/rules/:name': reservedRule('alerts.write', ALERTS_RESOURCE_KEY, 'write'),
  'POST /v1/alerts/rules': reservedRule('alerts.write', ALERTS_RESOURCE_KEY, 'write'),
  'DELETE /v1/alerts/rules/:name': reservedRule('alerts.write', ALERTS_RESOURCE_KEY, 'write'),
  'GET /v1/alerts/silences': reservedRule('alerts.read', ALERTS_RESOURCE_KEY, 'read'),
  'POST /v1/alerts/silences': reservedRule('alerts.write', ALERTS_RESOURCE_KEY, 'write'),
  'DELETE /v1/alerts/silences/:id': reservedRule('alerts.write', ALERTS_RESOURCE_KEY, 'write'),
  'GET /v1/dashboards': reservedRule('dashboards.read', DASHBOARDS_RESOURCE_KEY, 'read'),
  'GET /v1/dashboards/:id': reservedRule('dashboards.read', DASHBOARDS_RESOURCE_KEY, 'read'),
  'PUT /v1/dashboards/:id': reservedRule('dashboards.write', DASHBOARDS_RESOURCE_KEY, 'write'),
  'DELETE /v1/dashboards/:id': reservedRule('dashboards.write', DASHBOARDS_RESOURCE_KEY, 'write'),
  // The web console's static files (issue 14, console-routes.ts): public, they hold no data.
  'GET /ui': { kind: 'public' },
  'GET /ui/': { kind: 'public' },
  'GET /ui/*': { kind: 'public' },
};

/** The rule of a route; routes without one are for administrators only. */
export function ruleFor(method: string, url: string | undefined): RouteRule | undefined {
  if (url === undefined) return undefined;
  return ROUTE_RULES[`${method === 'HEAD' ? 'GET' : method} ${url}`];
}

/** The caller of a request (the dev principal in `--dev` mode). @throws UnauthenticatedError on a public route. */
export function principalOf(req: FastifyRequest): Principal {
  const p = req.principal;
  if (p === undefined) throw new UnauthenticatedError();
  return p;
}

/**
 * Throws unless the caller may do `action` on `resource`; a refusal is written to the audit
 * log (principal, API action, key, request id, source — never a value).
 * @param apiAction the API's name for what was asked, e.g. `kv.put`, recorded in the audit log.
 * @throws PermissionDeniedError (403).
 */
export function requireAccess(ctx: HttpContext, req: FastifyRequest, apiAction: string, action: Action, resource?: Resource): void {
  const p = principalOf(req);
  if (ctx.auth.can(p, action, resource)) return;
  deny(ctx, req, apiAction, action, resource);
}

/** Records and throws a refusal. @throws PermissionDeniedError always. */
export function deny(ctx: HttpContext, req: FastifyRequest, apiAction: string, action: Action, resource?: Resource): never {
  const p = principalOf(req);
  ctx.audit.note({
    principal: p.name,
    action: apiAction,
    outcome: 'denied',
    key: resource?.key ?? null,
    requestId: String(req.id),
    source: req.ip,
    details: JSON.stringify({ need: action, ...(resource?.rangeEnd !== undefined ? { rangeEnd: resource.rangeEnd } : {}) }),
  });
  deniedCounter(ctx).inc();
  throw deniedError(p, action, resource);
}

/** Whether the caller may see `key`'s clear value when it is a secret. */
export function mayReadSecret(ctx: HttpContext, req: FastifyRequest, key: string): boolean {
  return ctx.auth.canReadSecret(principalOf(req), key);
}

/** What the caller may see of a stored value (decrypted, or redacted). @throws UnavailableError when it cannot be decrypted. */
export function readView(ctx: HttpContext, req: FastifyRequest, kv: Pick<KeyValue, 'key' | 'value' | 'encrypted'>): ReadView {
  // Cheap path first: most values are neither in a secret namespace nor sealed.
  if (!ctx.policies.isSecretValue(kv)) return { redacted: false, value: kv.value };
  return ctx.policies.decodeForRead(kv, mayReadSecret(ctx, req, kv.key));
}

/** The `error` of one key in a listing whose value cannot be shown (it fails to decrypt). */
export interface KeyErrorJson {
  code: string;
  message: string;
}

/**
 * A kv as JSON for the caller: secret values decrypted for those who may read them, otherwise
 * left out with `redacted: true`. A value that cannot be decrypted fails that key alone: it is
 * left out with `error: {code, message}` (issue 9 finding 3), unless `strict` (a read of that
 * one key), which throws instead.
 * @throws UnavailableError with `strict` when the value cannot be decrypted.
 */
export function kvJsonFor(
  ctx: HttpContext,
  req: FastifyRequest,
  kv: KeyValue,
  keysOnly = false,
  strict = false,
): KeyValueJson & { redacted?: true; error?: KeyErrorJson } {
  if (keysOnly) return kvToJson(kv, true);
  let view: ReadView;
  try {
    view = readView(ctx, req, kv);
  } catch (err) {
    if (strict || !(err instanceof BeaconError)) throw err;
    return { ...kvToJson(kv, true), error: { code: err.code, message: err.message } };
  }
  if (view.redacted) return { ...kvToJson(kv, true), redacted: true };
  return view.value === kv.value ? kvToJson(kv) : kvToJson({ ...kv, value: view.value });
}

/**
 * {@link kvJsonFor} as UTF-8 JSON: the cached bytes of the kv when the caller sees it as stored
 * (no secret to decrypt or redact), else the serialised result of {@link kvJsonFor}.
 */
export function kvJsonBytesFor(ctx: HttpContext, req: FastifyRequest, kv: KeyValue, keysOnly = false): Buffer {
  if (!keysOnly && !ctx.policies.isSecretValue(kv)) return kvJsonBytes(kv);
  return Buffer.from(JSON.stringify(kvJsonFor(ctx, req, kv, keysOnly)));
}

/** The WebSocket subprotocol a browser offers beside its credential; the server selects it (issue 14). */
export const WS_PROTOCOL = 'beacon.v1';
/** Prefix of the WebSocket subprotocol that carries a bearer token or API key (`beacon.bearer.<token>`). */
export const WS_BEARER_PROTOCOL_PREFIX = 'beacon.bearer.';

/** Reads the credentials of a request; `access_token` is removed from the query so routes that check their parameters do not see it. */
export function credentialsOf(ctx: HttpContext, req: FastifyRequest): Credentials {
  const c: Credentials = {};
  const auth = req.headers.authorization;
  if (typeof auth === 'string') c.authorization = auth;
  const apiKey = req.headers['x-api-key'];
  if (typeof apiKey === 'string') c.apiKey = apiKey;
  const q = req.query as Record<string, unknown> | undefined;
  if (q !== undefined && q !== null && typeof q === 'object' && 'access_token' in q) {
    const t = q.access_token;
    if (typeof t === 'string' && t !== '' && req.method === 'GET') c.accessToken = t;
    delete q.access_token;
  }
  if (c.authorization === undefined && c.apiKey === undefined && c.accessToken === undefined) {
    // Browsers cannot set headers on a WebSocket: a page (the web console) may offer its bearer
    // credential as the subprotocol `beacon.bearer.<token>` beside `beacon.v1`, which the server
    // selects (server.ts), so the token stays out of URLs and the logs that record them.
    const offered = req.headers['sec-websocket-protocol'];
    if (typeof offered === 'string') {
      for (const p of offered.split(',')) {
        const t = p.trim();
        if (t.startsWith(WS_BEARER_PROTOCOL_PREFIX) && t.length > WS_BEARER_PROTOCOL_PREFIX.length) {
          c.authorization = `Bearer ${t.slice(WS_BEARER_PROTOCOL_PREFIX.length)}`;
          break;
        }
      }
    }
  }
  if (c.authorization === undefined && c.apiKey === undefined && c.accessToken === undefined && ctx.tls?.clientCa !== undefined) {
    const sock = req.raw.socket as TLSSocket;
    if (sock.authorized === true) {
      const cn = sock.getPeerCertificate().subject?.CN as string | string[] | undefined;
      const name = Array.isArray(cn) ? cn[0] : cn;
      if (typeof name === 'string' && name !== '') c.clientCertCn = name;
    }
  }
  return c;
}

/** Removes credentials from a URL before it is logged. */
export function redactUrl(url: string): string {
  return url.replace(/([?&]access_token=)[^&]*/gi, '$1[redacted]');
}

function counter(ctx: HttpContext, name: string, help: string, labelNames: string[] = []): Counter<string> {
  const existing = ctx.metrics.registry.getSingleMetric(name);
  if (existing !== undefined) return existing as Counter<string>;
  return new Counter({ name, help, labelNames, registers: [ctx.metrics.registry] });
}

function deniedCounter(ctx: HttpContext): Counter<string> {
  return counter(ctx, 'beacon_access_denied_total', 'Requests refused with 403 permission_denied.');
}

/**
 * Registers the authentication hook: every request but the public ones must carry a valid
 * credential (401 otherwise), is counted against the principal's rate limit (429 with
 * Retry-After), and must satisfy its route's rule (403). In `--dev` mode every request is the
 * `dev` principal and only the system keys stay out of reach.
 */
export function registerAuthHooks(app: FastifyInstance, ctx: HttpContext): void {
  const failures = counter(ctx, 'beacon_auth_failures_total', 'Requests refused with 401 unauthenticated, by reason.', ['reason']);
  const limited = counter(ctx, 'beacon_rate_limited_total', 'Requests refused with 429 rate_limited, by scope.', ['scope']);
  deniedCounter(ctx);
  const unruled = new Set<string>();

  app.addHook('onRoute', (route) => {
    if (!ctx.auth.enabled) return;
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    for (const m of methods) {
      if (m !== 'HEAD' && ruleFor(m, route.url) === undefined) unruled.add(`${m} ${route.url}`);
    }
  });
  app.addHook('onReady', async () => {
    if (unruled.size > 0) ctx.logger.warn({ routes: [...unruled] }, 'routes without an authorisation rule are for administrators only');
  });

  const fail = (reply: FastifyReply, err: unknown): unknown => {
    const e = err as BeaconError;
    if (e.code === ErrorCode.Unauthenticated) {
      const reason = e.details?.reason;
      failures.inc({ reason: typeof reason === 'string' ? reason : 'other' });
      // A 401 says how to authenticate (RFC 6750 §3).
      void reply.header('www-authenticate', 'Bearer realm="beacon"');
    } else if (e.code === ErrorCode.RateLimited) {
      limited.inc({ scope: 'principal' });
    }
    return err;
  };

  /** Everything after authentication: the rate limit and the route's rule. @throws on refusal. */
  const admit = (req: FastifyRequest, principal: Principal, url: string | undefined, rule: RouteRule | undefined): void => {
    req.principal = principal;
    ctx.auth.checkRate(principal);
    if (rule === undefined) {
      // No route matched (a 404 follows) or a route without a rule: administrators only.
      if (url !== undefined) requireAccess(ctx, req, `${req.method} ${url}`, 'admin');
      return;
    }
    if (rule.kind === 'admin') requireAccess(ctx, req, `${req.method} ${url}`, 'admin');
    else if (rule.kind === 'keys') for (const c of rule.checks(req)) requireAccess(ctx, req, rule.name, c.action, c.resource);
  };

  // Callback style with a synchronous fast path: a request whose token or API key was seen
  // before is admitted without a promise (the read path's cost, see bench/auth-get.ts).
  // CORS preflights never reach this hook when their origin is allowed: a preflight carries no
  // credential, so server.ts registers @fastify/cors before this hook and it answers them first
  // (hooks run in the order they were added). Any other OPTIONS request is authenticated here.
  app.addHook('onRequest', (req, reply, done) => {
    if (!ctx.auth.enabled) {
      req.principal = DEV_PRINCIPAL;
      credentialsOf(ctx, req); // strips access_token from the query all the same
      done();
      return;
    }
    // Read once: req.routeOptions builds a fresh object on every access.
    const url = req.routeOptions.url;
    const rule = ruleFor(req.method, url);
    if (rule?.kind === 'public' || (url === '/metrics' && ctx.auth.metricsPublic)) {
      credentialsOf(ctx, req);
      done();
      return;
    }
    let who: Principal | Promise<Principal>;
    try {
      who = ctx.auth.authenticate(credentialsOf(ctx, req));
    } catch (err) {
      done(fail(reply, err) as Error);
      return;
    }
    if (who instanceof Promise) {
      who.then(
        (p) => {
          try {
            admit(req, p, url, rule);
            done();
          } catch (err) {
            done(fail(reply, err) as Error);
          }
        },
        (err: unknown) => done(fail(reply, err) as Error),
      );
      return;
    }
    try {
      admit(req, who, url, rule);
    } catch (err) {
      done(fail(reply, err) as Error);
      return;
    }
    done();
  });
}

/** Counts a refused login attempt (the token endpoint's per-address limit). */
export function countLoginRateLimited(ctx: HttpContext): void {
  counter(ctx, 'beacon_rate_limited_total', 'Requests refused with 429 rate_limited, by scope.', ['scope']).inc({ scope: 'login' });
}
