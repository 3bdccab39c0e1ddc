/**
 * `/v1/configs`: versioned configs over the kv core (DESIGN.md §4) — get (optionally an older
 * version), put with an expected version, history, diff, rollback, delete and prefix listings.
 * Keys may contain `/`, so every per-key route is one wildcard and the trailing `/history`,
 * `/diff` and `/rollback` are split off here; see docs/configs.md. Every route is authorised per
 * key; writes go through the namespace policy; secret values are decrypted only for callers
 * with `read_secret` and redacted (`"value": null, "redacted": true`) for everyone else.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import {
  decodeConfigValue,
  formatVersion,
  parseVersion,
  type ConfigRead,
  type ConfigVersion,
  type HistoryCursor,
} from '../../config/index.js';
import { BeaconError, InvalidArgumentError, NotFoundError } from '../../errors.js';
import { validateKey } from '../../kv/index.js';
import { deny, prefixResource, readView, requireAccess } from './authz.js';
import { jsonBody, queryBool, queryInt, readObject, wildcardKey } from './codec.js';
import type { HttpContext } from './context.js';
import { auditContext } from './request-context.js';
import { guardPlainWrite, handleRolloutGet, handleRolloutPost, matchRolloutPath } from './rollout-routes.js';

/** The per-key sub-resources, addressed as `/v1/configs/{key}/{action}`. */
type Action = 'history' | 'diff' | 'rollback';
const ACTIONS: readonly Action[] = ['history', 'diff', 'rollback'];

/**
 * Splits `{key}/{action}` off the wildcard. The suffix counts only when the client wrote its
 * slash literally: `/v1/configs/a%2Fhistory` addresses the key `a/history` itself.
 */
function splitAction(req: FastifyRequest): { key: string; action?: Action } {
  const wildcard = wildcardKey(req.params);
  const rawPath = req.url.split('?')[0] ?? '';
  for (const action of ACTIONS) {
    const tail = `/${action}`;
    if (wildcard.length > tail.length && wildcard.endsWith(tail) && rawPath.endsWith(tail)) {
      return { key: wildcard.slice(0, -tail.length), action };
    }
  }
  return { key: wildcard };
}

function optVersion(v: unknown, field: string): number | undefined {
  return v === undefined || v === null ? undefined : parseVersion(v, field);
}

function queryVersion(q: Record<string, unknown>, name: string): number | undefined {
  const v = q[name];
  if (v === undefined || v === '') return undefined;
  return parseVersion(v, name);
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

/** A value as the caller may see it: the clear bytes, or `null` when it is a secret they may not read. */
type Visible = Uint8Array | null;

/** The value fields of a response: parsed JSON, text, or base64 with `encoding`; `redacted` for a hidden secret. */
function valueFields(bytes: Visible, maxDepth: number): { value: unknown; encoding?: 'base64'; redacted?: true } {
  if (bytes === null) return { value: null, redacted: true };
  const d = decodeConfigValue(bytes, maxDepth);
  return d.encoding === undefined ? { value: d.value } : { value: d.value, encoding: d.encoding };
}

function readToJson(r: ConfigRead, visible: (v: ConfigVersion) => Visible, maxDepth: number): Record<string, unknown> {
  const out: Record<string, unknown> = {
    key: r.key,
    ...valueFields(visible(r), maxDepth),
    version: formatVersion(r.version),
    revision: r.revision,
  };
  if (r.version !== r.latestVersion && r.latestVersion > 0) out.latest_version = formatVersion(r.latestVersion);
  if (r.createdAt !== undefined) out.created_at = iso(r.createdAt);
  out.updated_at = iso(r.updatedAt);
  return out;
}

/**
 * The value fields of one history entry. A version that cannot be decrypted fails alone: it
 * shows `value: null` and `error: {code, message}` while the rest of the page is served.
 */
function historyValueFields(v: ConfigVersion, visible: (v: ConfigVersion) => Visible, maxDepth: number): Record<string, unknown> {
  try {
    return valueFields(visible(v), maxDepth);
  } catch (err) {
    if (!(err instanceof BeaconError)) throw err;
    return { value: null, error: { code: err.code, message: err.message } };
  }
}

function historyEntryToJson(v: ConfigVersion, visible: (v: ConfigVersion) => Visible, maxDepth: number): Record<string, unknown> {
  if (v.event === 'deleted') return { version: null, revision: v.revision, updated_at: iso(v.updatedAt), event: 'deleted' };
  const out: Record<string, unknown> = {
    version: formatVersion(v.version),
    ...historyValueFields(v, visible, maxDepth),
    revision: v.revision,
    updated_at: iso(v.updatedAt),
    event: v.event,
  };
  if (v.restoredVersion !== undefined) out.restored_version = formatVersion(v.restoredVersion);
  return out;
}

function encodeToken(o: object): string {
  return Buffer.from(JSON.stringify(o)).toString('base64url');
}

function decodeToken(q: Record<string, unknown>): Record<string, unknown> | undefined {
  const token = q.continue;
  if (token === undefined || token === '') return undefined;
  try {
    const o: unknown = typeof token === 'string' ? JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) : undefined;
    if (o !== null && typeof o === 'object') return o as Record<string, unknown>;
  } catch {
    // fall through to the error
  }
  throw new InvalidArgumentError("query parameter 'continue' is not a token returned by a previous page", { field: 'continue' });
}

function badToken(): InvalidArgumentError {
  return new InvalidArgumentError("query parameter 'continue' is not a token returned by a previous page", { field: 'continue' });
}

function isRevision(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v > 0;
}

/** Registers `/v1/configs` and `/v1/configs/*` (get, put, delete, history, diff, rollback). */
export function registerConfigRoutes(app: FastifyInstance, ctx: HttpContext): void {
  const { configs, store, metrics, policies } = ctx;
  const maxJsonDepth = policies.limits.maxJsonDepth;

  /** What the caller may see of a stored version of `key`. @throws UnavailableError when it cannot be decrypted. */
  const visibleFor = (req: FastifyRequest, key: string) => (v: ConfigVersion): Visible => {
    const view = readView(ctx, req, { key, value: v.value, encrypted: v.encrypted });
    return view.redacted ? null : view.value;
  };

  const readBarrier = async (q: Record<string, unknown>): Promise<void> => {
    const c = q.consistency ?? 'serializable';
    if (c !== 'serializable' && c !== 'linearizable') {
      throw new InvalidArgumentError("query parameter 'consistency' must be serializable or linearizable", { field: 'consistency' });
    }
    if (c === 'linearizable') await store.readBarrier();
  };

  const timed = async <T>(op: string, fn: () => Promise<T>): Promise<T> => {
    const started = performance.now();
    try {
      return await fn();
    } finally {
      metrics.writeDuration.observe({ op }, (performance.now() - started) / 1000);
    }
  };

  const list = async (req: FastifyRequest): Promise<Record<string, unknown>> => {
    const q = req.query as Record<string, unknown>;
    await readBarrier(q);
    const prefix = q.prefix ?? '';
    if (typeof prefix !== 'string') throw new InvalidArgumentError("query parameter 'prefix' must be given once", { field: 'prefix' });
    requireAccess(ctx, req, 'config.list', 'read', prefixResource(prefix));
    const limit = queryInt(q, 'limit');
    const token = decodeToken(q);
    let start: string | undefined;
    let revision: number | undefined;
    if (token !== undefined) {
      if (typeof token.k !== 'string' || !isRevision(token.r)) throw badToken();
      if (!token.k.startsWith(prefix)) throw new InvalidArgumentError("the 'continue' token belongs to another prefix", { field: 'continue' });
      start = token.k;
      revision = token.r;
    }
    const page = await configs.list(prefix, { ...(limit !== undefined ? { limit } : {}), ...(start !== undefined ? { start, revision } : {}) });
    const body: Record<string, unknown> = {
      configs: page.configs.map((c) => ({
        key: c.key,
        version: formatVersion(c.version),
        revision: c.revision,
        ...(c.updatedAt !== undefined ? { updated_at: iso(c.updatedAt) } : {}),
      })),
      revision: page.revision,
      more: page.more,
    };
    const last = page.configs[page.configs.length - 1];
    // The next page starts just after the last key: "\0" is the smallest possible suffix.
    if (page.more && last !== undefined) body.continue = encodeToken({ k: `${last.key}\u0000`, r: page.revision });
    return body;
  };

  app.get('/v1/configs', list);

  app.get('/v1/configs/*', async (req) => {
    const rollout = matchRolloutPath(req); // issue 16
    if (rollout !== undefined) return handleRolloutGet(ctx, req, rollout);
    const { key, action } = splitAction(req);
    if (key === '' && action === undefined) return list(req);
    const q = req.query as Record<string, unknown>;
    if (action === 'rollback') throw new NotFoundError(`rollback is POST /v1/configs/{key}/rollback, not GET`);
    requireAccess(ctx, req, `config.${action ?? 'get'}`, 'read', { key: validateKey(key) });
    await readBarrier(q);
    const visible = visibleFor(req, key);
    if (action === 'history') {
      const limit = queryInt(q, 'limit');
      const token = decodeToken(q);
      let cursor: HistoryCursor | undefined;
      if (token !== undefined) {
        if (!isRevision(token.c) || !isRevision(token.b) || token.b < token.c) throw badToken();
        cursor = { createRevision: token.c, beforeRevision: token.b };
      }
      const page = await configs.history(key, { ...(limit !== undefined ? { limit } : {}), ...(cursor ? { cursor } : {}) });
      const body: Record<string, unknown> = { key, versions: page.versions.map((v) => historyEntryToJson(v, visible, maxJsonDepth)), more: page.next !== undefined };
      if (page.next !== undefined) body.continue = encodeToken({ c: page.next.createRevision, b: page.next.beforeRevision });
      if (page.compactRevision !== undefined) body.compact_revision = page.compactRevision;
      return body;
    }
    if (action === 'diff') {
      const from = queryVersion(q, 'from');
      const to = queryVersion(q, 'to');
      // A diff shows values, so a secret's diff needs read_secret: refused, not redacted.
      const decode = (v: ConfigVersion): Uint8Array => visible(v) ?? deny(ctx, req, 'config.diff', 'read_secret', { key });
      const d = await configs.diff(key, { ...(from !== undefined ? { from } : {}), ...(to !== undefined ? { to } : {}), decode, maxJsonDepth });
      return { key, from: formatVersion(d.from), to: formatVersion(d.to), ...d.diff };
    }
    return readToJson(await configs.get(key, queryVersion(q, 'version')), visible, maxJsonDepth);
  });

  app.put('/v1/configs/*', async (req) => {
    const key = validateKey(wildcardKey(req.params));
    requireAccess(ctx, req, 'config.put', 'write', { key });
    const o = readObject(jsonBody(req, '{"value": "…", "version": "v2"}'), ['value', 'version', 'abortRollout']);
    if (!Object.hasOwn(o, 'value')) throw new InvalidArgumentError("'value' is required", { field: 'value' });
    const expectVersion = optVersion(o.version, 'version');
    const value = policies.checkWrite(key, policies.encodeConfigValue(o.value));
    await guardPlainWrite(ctx, req, key, o.abortRollout === true, expectVersion === undefined ? undefined : expectVersion - 1); // issue 16: refused while a rollout runs
    const ttl = policies.defaultTtl(key);
    const lease = ttl === undefined ? 0 : (await store.grantLease(ttl, 0, auditContext(req, 'lease.grant'))).id;
    const audit = auditContext(req, 'config.put');
    let res: Awaited<ReturnType<typeof configs.put>>;
    try {
      res = await timed('config_put', () => configs.put(key, value, { ...(expectVersion === undefined ? {} : { expectVersion }), lease, audit }));
    } catch (err) {
      // A refused write (409 on the version, a failed commit) must not leave its lease to run out unused.
      if (lease !== 0) await store.revokeLease(lease, auditContext(req, 'lease.revoke')).catch(() => undefined);
      throw err;
    }
    return { key, version: formatVersion(res.version), revision: res.revision, updated_at: iso(res.updatedAt) };
  });

  app.post('/v1/configs/*', async (req) => {
    const rollout = matchRolloutPath(req); // issue 16
    if (rollout !== undefined) return handleRolloutPost(ctx, req, rollout);
    const { key, action } = splitAction(req);
    if (action !== 'rollback') {
      throw new NotFoundError(`no route POST ${req.url.split('?')[0]}; a rollback is POST /v1/configs/{key}/rollback`);
    }
    requireAccess(ctx, req, 'config.rollback', 'write', { key: validateKey(key) });
    const o = readObject(jsonBody(req, '{"version": "v1"}'), ['version', 'expectedVersion', 'abortRollout']);
    if (o.version === undefined || o.version === null) throw new InvalidArgumentError("'version' (the version to restore) is required", { field: 'version' });
    const version = parseVersion(o.version, 'version');
    const expectVersion = optVersion(o.expectedVersion, 'expectedVersion');
    await guardPlainWrite(ctx, req, key, o.abortRollout === true, expectVersion); // issue 16
    // The restored value is decrypted, checked against today's policy, and sealed by the store with today's KEK.
    const prepare = (v: ConfigVersion): Uint8Array => policies.checkWrite(key, policies.clearValue({ key, value: v.value, encrypted: v.encrypted }));
    const audit = auditContext(req, 'config.rollback');
    const res = await timed('config_rollback', () => configs.rollback(key, version, { ...(expectVersion === undefined ? {} : { expectVersion }), prepare, audit }));
    return {
      key,
      from_version: formatVersion(res.fromVersion),
      to_version: formatVersion(res.toVersion),
      restored_version: formatVersion(res.restoredVersion),
      revision: res.revision,
      updated_at: iso(res.updatedAt),
    };
  });

  app.delete('/v1/configs/*', async (req) => {
    const key = validateKey(wildcardKey(req.params));
    requireAccess(ctx, req, 'config.delete', 'write', { key });
    await guardPlainWrite(ctx, req, key, queryBool(req.query as Record<string, unknown>, 'abortRollout')); // issue 16
    const res = await timed('config_delete', () => configs.delete(key, { audit: auditContext(req, 'config.delete') }));
    return { key, revision: res.revision, deleted: true };
  });
}
