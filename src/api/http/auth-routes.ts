/**
 * Identity and governance routes: `POST /v1/auth/token`, `POST /v1/auth/refresh`, `GET /v1/auth/whoami`, `/v1/users`,
 * `/v1/roles`, `/v1/apikeys`, `GET /v1/audit` (filters, pagination, JSON-lines export),
 * `/v1/namespaces` (policies) and `POST /v1/secrets/reencrypt` (KEK rotation). See docs/security.md.
 */
import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { auditToJson } from '../../audit/index.js';
import { apiKeyView, userView, validateName, type Role } from '../../auth/index.js';
import { POLICY_FIELDS, type NamespacePolicy } from '../../config/index.js';
import { ConflictError, ErrorCode, InvalidArgumentError, NotFoundError, type BeaconError } from '../../errors.js';
import { validateKey, type AuditQuery } from '../../kv/index.js';
import { jsonBody, optBool, optString, queryInt, readObject, reqString, wildcardKey } from './codec.js';
import type { HttpContext } from './context.js';
import { countLoginRateLimited, prefixResource, principalOf, requireAccess } from './authz.js';

function param(req: FastifyRequest, name: string): string {
  return (req.params as Record<string, string>)[name] ?? '';
}

function roleJson(r: Role): Record<string, unknown> {
  return { name: r.name, permissions: r.permissions, secrets: r.secrets === true, builtin: r.builtin === true };
}

function policyJson(p: NamespacePolicy): Record<string, unknown> {
  const out: Record<string, unknown> = { ...p };
  if (p.updatedAt !== undefined) out.updatedAt = new Date(p.updatedAt).toISOString();
  return out;
}

/**
 * The namespace prefix of a `/v1/namespaces/*` path. The empty prefix is allowed here (cache tier,
 * issue 11): only a memory namespace may have it, which parsePolicy enforces.
 */
function namespacePrefix(params: unknown): string {
  const raw = wildcardKey(params);
  return raw === '' ? '' : validateKey(raw, 'namespace prefix');
}

/** A time in a query: ISO 8601 or milliseconds since the epoch. @throws InvalidArgumentError. */
function queryTime(q: Record<string, unknown>, name: string): number | undefined {
  const v = q[name];
  if (v === undefined || v === '') return undefined;
  if (typeof v === 'string') {
    if (/^\d{1,15}$/.test(v)) return Number(v);
    const t = Date.parse(v);
    if (!Number.isNaN(t)) return t;
  }
  throw new InvalidArgumentError(`query parameter '${name}' must be an ISO 8601 time or milliseconds since the epoch`, { field: name });
}

function queryText(q: Record<string, unknown>, name: string): string | undefined {
  const v = q[name];
  if (v === undefined || v === '') return undefined;
  if (typeof v !== 'string') throw new InvalidArgumentError(`query parameter '${name}' must be given once`, { field: name });
  return v;
}

/** Registers the identity, audit and namespace routes. */
export function registerAuthRoutes(app: FastifyInstance, ctx: HttpContext): void {
  const { auth, audit, policies } = ctx;
  const identity = auth.identity;

  const record = async (req: FastifyRequest, action: string, details: Record<string, unknown>, key: string | null = null): Promise<void> => {
    await audit.append({
      principal: principalOf(req).name,
      action,
      outcome: 'ok',
      key,
      requestId: String(req.id),
      source: req.ip,
      details: JSON.stringify(details),
    });
  };

  /** Refuses a change that would leave no enabled user holding the admin role (the installation would be locked). */
  const keepAnAdmin = (name: string, next: { roles?: string[]; disabled?: boolean; deleted?: boolean }): void => {
    const target = identity.user(name);
    if (target === undefined || !target.roles.includes('admin') || target.disabled === true) return;
    const stillAdmin = next.deleted !== true && next.disabled !== true && (next.roles ?? target.roles).includes('admin');
    if (stillAdmin) return;
    const others = identity.listUsers().filter((u) => u.name !== name && u.disabled !== true && u.roles.includes('admin'));
    if (others.length === 0) {
      throw new ConflictError(`'${name}' is the last enabled administrator; make another user an admin first`, { user: name });
    }
  };

  // ---- tokens ---------------------------------------------------------------------------------

  app.post('/v1/auth/token', async (req, reply) => {
    const o = readObject(jsonBody(req, '{"username": "admin", "password": "…"}'), ['username', 'password']);
    try {
      const t = await auth.login(o.username, o.password, { requestId: String(req.id), source: req.ip });
      return {
        token: t.token,
        tokenType: 'Bearer',
        expiresAt: new Date(t.expiresAt).toISOString(),
        expiresIn: Math.round((t.expiresAt - Date.now()) / 1000),
        user: t.user,
        roles: t.roles,
        // Traded at POST /v1/auth/refresh for new tokens until it expires (docs/security.md).
        refreshToken: t.refreshToken,
        refreshExpiresAt: new Date(t.refreshExpiresAt).toISOString(),
      };
    } catch (err) {
      if ((err as BeaconError).code === ErrorCode.RateLimited) countLoginRateLimited(ctx);
      if ((err as BeaconError).code === ErrorCode.Unauthenticated) void reply.header('www-authenticate', 'Bearer realm="beacon"');
      throw err;
    }
  });

  app.post('/v1/auth/refresh', async (req, reply) => {
    const o = readObject(jsonBody(req, '{"refreshToken": "…"}'), ['refreshToken']);
    try {
      const t = await auth.refreshLogin(o.refreshToken, { requestId: String(req.id), source: req.ip });
      return {
        token: t.token,
        tokenType: 'Bearer',
        expiresAt: new Date(t.expiresAt).toISOString(),
        expiresIn: Math.round((t.expiresAt - Date.now()) / 1000),
        user: t.user,
        roles: t.roles,
      };
    } catch (err) {
      if ((err as BeaconError).code === ErrorCode.Unauthenticated) void reply.header('www-authenticate', 'Bearer realm="beacon"');
      throw err;
    }
  });

  app.get('/v1/auth/whoami', async (req) => {
    const p = principalOf(req);
    return { name: p.name, roles: p.roles, via: p.via, dev: ctx.info.dev };
  });

  // ---- users ----------------------------------------------------------------------------------

  app.get('/v1/users', async () => ({ users: identity.listUsers().map(userView) }));

  app.post('/v1/users', async (req, reply) => {
    const o = readObject(jsonBody(req, '{"name": "alice", "password": "…", "roles": ["developer"]}'), ['name', 'password', 'roles']);
    const name = validateName(reqString(o, 'name'), 'name');
    const u = await identity.createUser(name, reqString(o, 'password'), o.roles ?? []);
    await record(req, 'user.create', { user: name, roles: u.roles });
    void reply.status(201);
    return userView(u);
  });

  app.get('/v1/users/:name', async (req) => {
    const name = param(req, 'name');
    if (principalOf(req).name !== name) requireAccess(ctx, req, 'user.get', 'admin');
    const u = identity.user(name);
    if (u === undefined) throw new NotFoundError(`user '${name}' not found`, { user: name });
    return userView(u);
  });

  app.patch('/v1/users/:name', async (req) => {
    const name = param(req, 'name');
    const o = readObject(jsonBody(req, '{"roles": ["viewer"], "disabled": false}'), ['roles', 'disabled', 'password']);
    const disabled = optBool(o, 'disabled');
    const password = optString(o, 'password');
    const roles = o.roles;
    if (roles !== undefined && (!Array.isArray(roles) || roles.some((r) => typeof r !== 'string'))) {
      throw new InvalidArgumentError("'roles' must be an array of role names", { field: 'roles' });
    }
    keepAnAdmin(name, { ...(roles !== undefined ? { roles: roles as string[] } : {}), ...(disabled !== undefined ? { disabled } : {}) });
    const u = await identity.updateUser(name, {
      ...(roles !== undefined ? { roles } : {}),
      ...(disabled !== undefined ? { disabled } : {}),
      ...(password !== undefined ? { password } : {}),
    });
    await record(req, 'user.update', {
      user: name,
      ...(roles !== undefined ? { roles: u.roles } : {}),
      ...(disabled !== undefined ? { disabled } : {}),
      ...(password !== undefined ? { passwordChanged: true } : {}),
    });
    return userView(u);
  });

  app.put('/v1/users/:name/password', async (req) => {
    const name = param(req, 'name');
    const o = readObject(jsonBody(req, '{"currentPassword": "…", "password": "…"}'), ['password', 'currentPassword']);
    const self = principalOf(req).name === name && principalOf(req).via !== 'dev';
    if (self && !auth.can(principalOf(req), 'admin')) {
      // Changing one's own password needs the current one, so a stolen token cannot take the account over.
      const current = optString(o, 'currentPassword');
      if (current === undefined || (await identity.verifyLogin(name, current)) === undefined) {
        throw new InvalidArgumentError("'currentPassword' is missing or wrong", { field: 'currentPassword' });
      }
    } else if (!self) {
      requireAccess(ctx, req, 'user.password', 'admin');
    }
    await identity.updateUser(name, { password: reqString(o, 'password') });
    await record(req, 'user.password', { user: name });
    return { name, passwordChanged: true };
  });

  app.delete('/v1/users/:name', async (req) => {
    const name = param(req, 'name');
    keepAnAdmin(name, { deleted: true });
    await identity.deleteUser(name);
    await record(req, 'user.delete', { user: name });
    return { name, deleted: true };
  });

  // ---- roles ----------------------------------------------------------------------------------

  app.get('/v1/roles', async () => ({ roles: identity.listRoles().map(roleJson) }));

  app.get('/v1/roles/:name', async (req) => roleJson(identity.role(param(req, 'name'))));

  app.put('/v1/roles/:name', async (req, reply) => {
    const name = param(req, 'name');
    const o = readObject(jsonBody(req, '{"permissions": [{"prefix": "team-a/", "access": "write"}], "secrets": false}'), ['permissions', 'secrets', 'name']);
    if (o.name !== undefined && o.name !== name) throw new InvalidArgumentError("'name' in the body differs from the path", { field: 'name' });
    const { role, created } = await identity.putRole(name, { permissions: o.permissions, secrets: o.secrets });
    await record(req, 'role.put', { role: name, permissions: role.permissions, secrets: role.secrets === true });
    if (created) void reply.status(201);
    return roleJson(role);
  });

  app.delete('/v1/roles/:name', async (req) => {
    const name = param(req, 'name');
    await identity.deleteRole(name);
    await record(req, 'role.delete', { role: name });
    return { name, deleted: true };
  });

  // ---- API keys -------------------------------------------------------------------------------

  app.post('/v1/apikeys', async (req, reply) => {
    const o = readObject(jsonBody(req, '{"name": "billing-service", "roles": ["viewer"]}'), ['name', 'roles', 'expiresAt']);
    let expiresAt: number | null = null;
    if (o.expiresAt !== undefined && o.expiresAt !== null) {
      expiresAt = typeof o.expiresAt === 'string' ? Date.parse(o.expiresAt) : typeof o.expiresAt === 'number' ? o.expiresAt : NaN;
      if (Number.isNaN(expiresAt)) throw new InvalidArgumentError("'expiresAt' must be an ISO 8601 time", { field: 'expiresAt' });
    }
    const { record: rec, key } = await identity.createApiKey({ name: reqString(o, 'name'), roles: o.roles ?? [], expiresAt, createdBy: principalOf(req).name });
    await record(req, 'apikey.create', { id: rec.id, name: rec.name, roles: rec.roles });
    void reply.status(201).header('cache-control', 'no-store');
    // The key is shown this once; only its hash is stored.
    return { ...apiKeyView(rec), key };
  });

  app.get('/v1/apikeys', async () => ({ apiKeys: identity.listApiKeys().map(apiKeyView) }));

  app.delete('/v1/apikeys/:id', async (req) => {
    const rec = await identity.revokeApiKey(param(req, 'id'));
    await record(req, 'apikey.revoke', { id: rec.id, name: rec.name });
    return { id: rec.id, revoked: true };
  });

  // ---- audit ----------------------------------------------------------------------------------

  app.get('/v1/audit', async (req, reply) => {
    const q = req.query as Record<string, unknown>;
    const allowed = ['from', 'to', 'principal', 'action', 'key', 'outcome', 'after', 'before', 'order', 'limit', 'format'];
    for (const k of Object.keys(q)) {
      if (!allowed.includes(k)) throw new InvalidArgumentError(`unknown query parameter '${k}'; allowed: ${allowed.join(', ')}`, { field: k });
    }
    const outcome = queryText(q, 'outcome');
    if (outcome !== undefined && outcome !== 'ok' && outcome !== 'denied' && outcome !== 'failed') {
      throw new InvalidArgumentError("query parameter 'outcome' must be ok, denied or failed", { field: 'outcome' });
    }
    const filter: Omit<AuditQuery, 'limit'> = {};
    const fromTs = queryTime(q, 'from');
    const toTs = queryTime(q, 'to');
    const principal = queryText(q, 'principal');
    const action = queryText(q, 'action');
    const key = queryText(q, 'key');
    const after = queryInt(q, 'after');
    if (fromTs !== undefined) filter.fromTs = fromTs;
    if (toTs !== undefined) filter.toTs = toTs;
    if (principal !== undefined) filter.principal = principal;
    if (action !== undefined) filter.action = action;
    if (key !== undefined) filter.keyPrefix = key;
    if (outcome !== undefined) filter.outcome = outcome;
    if (after !== undefined) filter.afterId = after;
    const before = queryInt(q, 'before');
    if (before !== undefined) filter.beforeId = before;
    const order = queryText(q, 'order') ?? 'asc';
    if (order !== 'asc' && order !== 'desc') throw new InvalidArgumentError("query parameter 'order' must be asc (oldest first) or desc (newest first)", { field: 'order' });
    const format = queryText(q, 'format') ?? 'json';
    if (format !== 'json' && format !== 'jsonl') throw new InvalidArgumentError("query parameter 'format' must be json or jsonl", { field: 'format' });
    if (format === 'jsonl') {
      // Export: every matching record as one JSON object per line, streamed page by page.
      const lines = (async function* () {
        for await (const r of audit.export(filter)) yield `${JSON.stringify(auditToJson(r))}\n`;
      })();
      void reply.header('content-type', 'application/x-ndjson; charset=utf-8');
      return reply.send(Readable.from(lines));
    }
    const limit = Math.min(queryInt(q, 'limit') ?? 100, 1000) || 100;
    const records = await audit.query({ ...filter, order, limit });
    const last = records[records.length - 1];
    return { records: records.map(auditToJson), more: records.length === limit, ...(records.length === limit && last ? { next: last.id } : {}) };
  });

  // ---- namespaces -----------------------------------------------------------------------------

  app.get('/v1/namespaces', async (req) => {
    const p = principalOf(req);
    return { namespaces: policies.list().filter((n) => auth.can(p, 'read', prefixResource(n.prefix))).map(policyJson), kek: policies.keyring?.primary.id ?? null };
  });

  app.get('/v1/namespaces/*', async (req) => {
    const prefix = namespacePrefix(req.params);
    requireAccess(ctx, req, 'namespace.get', 'read', prefixResource(prefix));
    return policyJson(policies.get(prefix));
  });

  /** Stores a policy (PUT or PATCH), brings the values already under it in line, audits it. */
  const storePolicy = async (req: FastifyRequest, policy: NamespacePolicy): Promise<{ body: Record<string, unknown>; created: boolean }> => {
    const prefix = policy.prefix;
    const p = principalOf(req);
    const res = await policies.put(policy, p.name);
    const ctxAudit = { principal: p.name, action: 'namespace.reconcile', requestId: String(req.id), source: req.ip };
    // Values already under the prefix are encrypted (or decrypted) to match the new policy, online.
    const reconciled = await policies.reconcile(prefix, ctxAudit);
    await record(req, 'namespace.put', {
      prefix,
      format: policy.format ?? null,
      schema: policy.schema !== undefined,
      secret: policy.secret === true,
      defaultTtl: policy.defaultTtl ?? null,
      encrypted: reconciled.encrypted,
      decrypted: reconciled.decrypted,
    }, prefix);
    return { body: { ...policyJson(res.policy), revision: Math.max(res.revision, reconciled.revision), reconciled }, created: res.created };
  };

  // PUT replaces the whole policy: a field left out is removed (docs/security.md).
  app.put('/v1/namespaces/*', async (req, reply) => {
    const prefix = namespacePrefix(req.params);
    requireAccess(ctx, req, 'namespace.put', 'admin', prefixResource(prefix));
    const policy = policies.parse(prefix, jsonBody(req, '{"format": "json", "schema": {…}, "secret": false}'));
    const res = await storePolicy(req, policy);
    if (res.created) void reply.status(201);
    return res.body;
  });

  // PATCH merges (RFC 7396 JSON merge patch, one level): a field given replaces that field, a
  // field set to null is removed, a field left out stays as it was.
  app.patch('/v1/namespaces/*', async (req) => {
    const prefix = namespacePrefix(req.params);
    requireAccess(ctx, req, 'namespace.put', 'admin', prefixResource(prefix));
    const patch = jsonBody(req, '{"defaultTtl": 60, "description": null}');
    if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) throw new InvalidArgumentError('the patch must be a JSON object');
    const current = policies.get(prefix) as unknown as Record<string, unknown>;
    const merged: Record<string, unknown> = {};
    for (const k of POLICY_FIELDS) if (current[k] !== undefined) merged[k] = current[k];
    for (const [k, v] of Object.entries(patch as Record<string, unknown>)) {
      if (v === null) delete merged[k];
      else merged[k] = v;
    }
    return (await storePolicy(req, policies.parse(prefix, merged))).body;
  });

  app.delete('/v1/namespaces/*', async (req) => {
    const prefix = namespacePrefix(req.params);
    requireAccess(ctx, req, 'namespace.delete', 'admin', prefixResource(prefix));
    const p = principalOf(req);
    const res = await policies.delete(prefix);
    // Values stay readable: encrypted ones are decrypted now that no secret policy covers them.
    const reconciled = await policies.reconcile(prefix, { principal: p.name, action: 'namespace.reconcile', requestId: String(req.id), source: req.ip });
    await record(req, 'namespace.delete', { prefix, decrypted: reconciled.decrypted }, prefix);
    return { prefix, deleted: true, revision: Math.max(res.revision, reconciled.revision), reconciled };
  });

  // The token signing keyring (administrators only: no rule in ROUTE_RULES). Key ids only, never keys.
  app.get('/v1/auth/signing-key', async () => ({ kid: ctx.auth.tokens.kid, kids: ctx.auth.tokens.kids }));

  app.post('/v1/auth/signing-key/rotate', async (req) => {
    const o = req.body === undefined || (Buffer.isBuffer(req.body) && req.body.length === 0) ? {} : readObject(jsonBody(req, '{"keepPrevious": true}'), ['keepPrevious']);
    const keepPrevious = optBool(o, 'keepPrevious') ?? true;
    const res = await ctx.auth.tokens.rotate(keepPrevious);
    await record(req, 'auth.signing_key_rotate', { kid: res.kid, previousKid: res.previousKid });
    return { ...res, kids: ctx.auth.tokens.kids };
  });

  app.post('/v1/secrets/reencrypt', async (req) => {
    const o = req.body === undefined || (Buffer.isBuffer(req.body) && req.body.length === 0) ? {} : readObject(jsonBody(req, '{"prefix": "secrets/"}'), ['prefix']);
    const prefix = optString(o, 'prefix');
    if (prefix !== undefined && prefix !== '') validateKey(prefix, 'prefix');
    const p = principalOf(req);
    const res = await policies.reconcile(prefix, { principal: p.name, action: 'secret.reencrypt', requestId: String(req.id), source: req.ip });
    await record(req, 'secret.reencrypt', { prefix: prefix ?? null, kek: policies.keyring?.primary.id ?? null, ...res });
    return { kek: policies.keyring?.primary.id ?? null, ...res };
  });

}
