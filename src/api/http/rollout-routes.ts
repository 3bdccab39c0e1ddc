/**
 * Staged rollouts over HTTP (issue 16, docs/rollout.md): `POST /v1/configs/{key}/rollouts`,
 * `GET /v1/configs/{key}/rollouts/current`, `POST …/rollouts/current/{pause|resume|promote|abort}`
 * (dispatched from the `/v1/configs/*` wildcard routes, which own those paths), and for the SDK
 * `GET /v1/rollouts?prefix=` (the active rollouts it evaluates locally) and
 * `POST /v1/rollouts/report` (which variant a client applied).
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { decodeConfigValue } from '../../config/index.js';
import { BeaconError, ConflictError, InvalidArgumentError, NotFoundError, UnavailableError } from '../../errors.js';
import { prefixEnd, validateKey } from '../../kv/index.js';
import { ROLLOUT_BUCKETS, ROLLOUT_KEY_PREFIX, guardText, rolloutBucket, rolloutShare, rolloutThreshold, type AdoptionLedger, type Rollout, type RolloutService } from '../../rollout/index.js';
import { prefixResource, requireAccess } from './authz.js';
import { jsonBody, queryInt, readObject, wildcardKey } from './codec.js';
import type { HttpContext } from './context.js';
import { auditContext } from './request-context.js';

/** What the rollout routes need from the node. */
export interface RolloutContext {
  service: RolloutService;
  /** Adoption reports, in the backend's table (shared by every node in PostgreSQL mode). */
  adoption: AdoptionLedger;
  /** The guard states for status: `firing` with a reason, or not. */
  guardStates(r: Rollout): Promise<{ guard: string; firing: boolean; reason?: string }[]>;
}

/** A rollout sub-path of `/v1/configs/*`: `rollouts`, `rollouts/current` or `rollouts/current/{verb}`. */
export interface RolloutPath {
  key: string;
  verb?: 'pause' | 'resume' | 'promote' | 'abort';
  current: boolean;
}

const VERBS = ['pause', 'resume', 'promote', 'abort'] as const;

/**
 * Splits a rollout sub-path off the wildcard, when the client wrote it literally (as the config
 * routes do for `/history`: `/v1/configs/a%2Frollouts` addresses the key `a/rollouts`).
 */
export function matchRolloutPath(req: FastifyRequest): RolloutPath | undefined {
  const wildcard = wildcardKey(req.params);
  const rawPath = req.url.split('?')[0] ?? '';
  const tails: [string, RolloutPath['verb'] | undefined, boolean][] = [['/rollouts', undefined, false], ['/rollouts/current', undefined, true], ...VERBS.map((v): [string, RolloutPath['verb'], boolean] => [`/rollouts/current/${v}`, v, true])];
  for (const [tail, verb, current] of tails) {
    if (wildcard.length > tail.length && wildcard.endsWith(tail) && rawPath.endsWith(tail)) {
      return { key: wildcard.slice(0, -tail.length), current, ...(verb !== undefined ? { verb } : {}) };
    }
  }
  return undefined;
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Reads a bake: a duration such as `10m`, `30s`, `1h30m`, `2d`, or a number of ms. @throws InvalidArgumentError. */
export function parseBake(v: unknown): number {
  if (typeof v === 'number') return v;
  if (typeof v !== 'string' || v === '') throw new InvalidArgumentError("'bake' must be a duration such as \"10m\" or a number of ms", { field: 'bake' });
  let rest = v;
  let ms = 0;
  while (rest.length > 0) {
    const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)/.exec(rest);
    if (m === null) throw new InvalidArgumentError(`'bake' ${JSON.stringify(v)} is not a duration such as "10m", "90s" or "1h30m"`, { field: 'bake' });
    ms += Number(m[1]) * (UNIT_MS[m[2] as string] as number);
    rest = rest.slice(m[0].length);
  }
  return Math.round(ms);
}

/** Reads steps given as numbers or as `"10%"` strings. */
function parseSteps(v: unknown): unknown {
  if (!Array.isArray(v)) return v;
  return v.map((s: unknown) => (typeof s === 'string' && /^\d+(\.\d+)?%?$/.test(s.trim()) ? Number(s.trim().replace('%', '')) : s));
}

/** The JSON of a rollout: snake_case like the config routes; the candidate decoded like a config value. */
export function rolloutToJson(r: Rollout, maxDepth: number): Record<string, unknown> {
  const d = decodeConfigValue(Buffer.from(r.candidate, 'base64'), maxDepth);
  const out: Record<string, unknown> = {
    id: r.id,
    key: r.key,
    state: r.state,
    step: r.step,
    share: rolloutShare(r),
    threshold: rolloutThreshold(r),
    steps: r.steps,
    bake_ms: r.bakeMs,
    selector: r.selector,
    guards: r.guards,
    base_version: `v${r.baseVersion}`,
    candidate: d.encoding === undefined ? { value: d.value } : { value: d.value, encoding: d.encoding },
    step_started_at: iso(r.stepStartedAt),
    created_at: iso(r.createdAt),
    created_by: r.createdBy,
    updated_at: iso(r.updatedAt),
    revision: r.revision,
    history: r.history.map((t) => ({ at: iso(t.at), from: t.from, to: t.to, step: t.step, share: r.steps[t.step], by: t.by, cause: t.cause })),
  };
  if (r.state === 'running') out.bake_ends_at = iso(r.stepStartedAt + r.bakeMs);
  if (r.completedVersion !== undefined) out.completed_version = `v${r.completedVersion}`;
  return out;
}

function rolloutsOf(ctx: HttpContext): RolloutContext {
  if (ctx.rollouts === undefined) throw new UnavailableError('rollouts are not enabled on this node');
  return ctx.rollouts;
}

/** `GET /v1/configs/{key}/rollouts/current`: the latest rollout with guard states and adoption. */
export async function handleRolloutGet(ctx: HttpContext, req: FastifyRequest, p: RolloutPath): Promise<Record<string, unknown>> {
  const ro = rolloutsOf(ctx);
  const key = validateKey(p.key);
  requireAccess(ctx, req, 'rollout.get', 'read', { key });
  if (!p.current || p.verb !== undefined) throw new NotFoundError(`a rollout is read with GET /v1/configs/{key}/rollouts/current`);
  const r = ro.service.get(key);
  if (r === undefined) throw new NotFoundError(`config '${key}' has no rollout`, { key });
  const out = rolloutToJson(r, ctx.policies.limits.maxJsonDepth);
  const counts = await ro.adoption.counts(r.id);
  out.adoption = { candidate: counts.candidate, [`v${r.baseVersion}`]: counts.current };
  out.guard_states = r.state === 'running' || r.state === 'paused' ? await ro.guardStates(r) : [];
  return out;
}

/** `POST /v1/configs/{key}/rollouts` (start) and `POST …/rollouts/current/{verb}`. */
export async function handleRolloutPost(ctx: HttpContext, req: FastifyRequest, p: RolloutPath): Promise<Record<string, unknown>> {
  const ro = rolloutsOf(ctx);
  const key = validateKey(p.key);
  const maxDepth = ctx.policies.limits.maxJsonDepth;
  if (!p.current) {
    requireAccess(ctx, req, 'rollout.start', 'write', { key });
    const example = '{"value": {…}, "steps": [1, 10, 50, 100], "bake": "10m", "selector": "region=eu", "guards": [{"alert": "ErrorRateHigh"}]}';
    const o = readObject(jsonBody(req, example), ['value', 'steps', 'bake', 'selector', 'guards']);
    if (!Object.hasOwn(o, 'value')) throw new InvalidArgumentError("'value' (the candidate) is required", { field: 'value' });
    if (o.bake === undefined) throw new InvalidArgumentError("'bake' is required, e.g. \"10m\"", { field: 'bake' });
    if (o.selector !== undefined && typeof o.selector !== 'string') throw new InvalidArgumentError("'selector' must be a string such as \"region=eu,tier in (a,b)\"", { field: 'selector' });
    if (ctx.policies.isSecretKey(key)) throw new InvalidArgumentError(`config '${key}' is in a secret namespace: the SDK would have to receive the candidate in clear, so secrets cannot be rolled out`, { key });
    // The candidate is checked against the namespace's policy (format, JSON Schema) now, not at completion.
    const candidate = ctx.policies.checkWrite(key, ctx.policies.encodeConfigValue(o.value));
    const r = await ro.service.start(
      key,
      { candidate, steps: parseSteps(o.steps) as number[], bakeMs: parseBake(o.bake), ...(o.selector !== undefined ? { selector: o.selector as string } : {}), guards: o.guards as never },
      auditContext(req, 'rollout.start'),
    );
    return rolloutToJson(r, maxDepth);
  }
  if (p.verb === undefined) throw new NotFoundError('use POST /v1/configs/{key}/rollouts/current/{pause|resume|promote|abort}');
  requireAccess(ctx, req, `rollout.${p.verb}`, 'write', { key });
  const o = req.body === undefined || req.body === null || (Buffer.isBuffer(req.body) && req.body.length === 0) ? {} : readObject(jsonBody(req, '{}'), ['full', 'reason']);
  const audit = auditContext(req, `rollout.${p.verb}`);
  let r: Rollout;
  if (p.verb === 'pause') r = await ro.service.pause(key, audit);
  else if (p.verb === 'resume') r = await ro.service.resume(key, audit);
  else if (p.verb === 'promote') r = await ro.service.promote(key, audit, o.full === true);
  else r = await ro.service.abort(key, audit, typeof o.reason === 'string' && o.reason !== '' ? `aborted: ${o.reason}` : 'aborted');
  return rolloutToJson(r, maxDepth);
}

/**
 * Refuses a plain write to a key with an active rollout unless the body asks to abort it
 * (`"abortRollout": true`), which aborts it first. Without rollouts on the node, does nothing.
 * `expectVersion` is the version the key must be at now for the write to apply (checked before aborting).
 * Returns undefined when no rollout covers the key, else the promise of the check and abort.
 * @throws ConflictError naming the rollout, or when the key is not at `expectVersion` (by the promise).
 */
export function guardPlainWrite(ctx: HttpContext, req: FastifyRequest, key: string, abortRollout: boolean, expectVersion?: number): Promise<void> | undefined {
  const ro = ctx.rollouts;
  // No promise when no rollout covers the key (every plain write asks; issue 17's PUT path).
  if (ro === undefined || ro.service.active(key) === undefined) return undefined;
  return abortForPlainWrite(ctx, req, key, abortRollout, expectVersion);
}

async function abortForPlainWrite(ctx: HttpContext, req: FastifyRequest, key: string, abortRollout: boolean, expectVersion?: number): Promise<void> {
  const ro = ctx.rollouts as NonNullable<HttpContext['rollouts']>;
  if (!abortRollout) ro.service.checkPlainWrite(key);
  // Checked before the abort, so a write that is bound to fail on its version leaves the rollout running.
  const current = ctx.store.get(key)?.version ?? 0;
  if (expectVersion !== undefined && current !== expectVersion) {
    throw new ConflictError(`config '${key}' is at v${current}, not v${expectVersion} as the write expected; the rollout was left running`, { key, expected: `v${expectVersion}`, current: `v${current}` });
  }
  await ro.service.abort(key, auditContext(req, 'rollout.abort'), 'aborted by a plain write');
}

/**
 * Refuses a txn's writes or a range delete that would touch a key with a running or paused
 * rollout (issue 16: such a key is written by its rollout only; these writes have no
 * `abortRollout`, so abort the rollout first). `rangeEnd` undefined is the single key, null
 * every key from `key` on.
 * @throws ConflictError naming the key and its rollout.
 */
export function guardRangeWrites(ctx: HttpContext, ranges: readonly { key: string; rangeEnd?: string | null }[]): void {
  const ro = ctx.rollouts;
  if (ro === undefined) return;
  for (const r of ranges) {
    if (r.rangeEnd === undefined) {
      if (ro.service.active(r.key) !== undefined) ro.service.checkPlainWrite(r.key);
      continue;
    }
    const start = ROLLOUT_KEY_PREFIX + r.key;
    const end = r.rangeEnd === null || r.rangeEnd === '' ? prefixEnd(ROLLOUT_KEY_PREFIX) : ROLLOUT_KEY_PREFIX + r.rangeEnd;
    for (const kv of ctx.store.rangeLatest(start, end).kvs) {
      const key = kv.key.slice(ROLLOUT_KEY_PREFIX.length);
      if (ro.service.active(key) !== undefined) ro.service.checkPlainWrite(key);
    }
  }
}

/** The longest a `GET /v1/rollouts?wait=` is held, ms. */
const MAX_WAIT_MS = 60_000;

/** Registers `GET /v1/rollouts` and `POST /v1/rollouts/report` (the SDK's side). */
export function registerRolloutRoutes(app: FastifyInstance, ctx: HttpContext): void {
  app.get('/v1/rollouts', async (req) => {
    const ro = rolloutsOf(ctx);
    const q = req.query as Record<string, unknown>;
    const prefix = q.prefix ?? '';
    if (typeof prefix !== 'string') throw new InvalidArgumentError("query parameter 'prefix' must be given once", { field: 'prefix' });
    requireAccess(ctx, req, 'rollout.list', 'read', prefixResource(prefix));
    // Long poll (the SDK): `wait=REV` answers once a rollout under the prefix changes after REV, or after `timeout` ms (≤ 60 s).
    const wait = queryInt(q, 'wait');
    if (wait !== undefined) {
      const timeoutMs = Math.min(queryInt(q, 'timeout') ?? MAX_WAIT_MS, MAX_WAIT_MS);
      const ac = new AbortController();
      req.raw.once('close', () => ac.abort());
      await ro.service.waitForChange(prefix, wait, timeoutMs, ac.signal);
    }
    const revision = ctx.store.revision;
    const list = await ro.service.listActive(prefix);
    return { rollouts: list.map((r) => rolloutToJson(r, ctx.policies.limits.maxJsonDepth)), revision };
  });

  app.post('/v1/rollouts/report', async (req) => {
    const ro = rolloutsOf(ctx);
    const o = readObject(jsonBody(req, '{"key": "app/x", "rollout": "id", "client": "id", "variant": "candidate", "bucket": 1234, "selected": true}'), ['key', 'rollout', 'client', 'variant', 'bucket', 'selected']);
    for (const f of ['key', 'rollout', 'client'] as const) {
      if (typeof o[f] !== 'string' || o[f] === '' || (o[f] as string).length > 256) throw new InvalidArgumentError(`'${f}' must be a non-empty string of at most 256 characters`, { field: f });
    }
    if (o.variant !== 'candidate' && o.variant !== 'current') throw new InvalidArgumentError("'variant' must be \"candidate\" or \"current\"", { field: 'variant' });
    if (o.bucket !== undefined && (typeof o.bucket !== 'number' || !Number.isInteger(o.bucket) || o.bucket < 0 || o.bucket >= ROLLOUT_BUCKETS)) {
      throw new InvalidArgumentError(`'bucket' must be an integer in [0, ${ROLLOUT_BUCKETS})`, { field: 'bucket' });
    }
    if (o.selected !== undefined && typeof o.selected !== 'boolean') throw new InvalidArgumentError("'selected' must be true or false (whether the client's labels match the rollout's selector)", { field: 'selected' });
    const key = validateKey(o.key as string);
    requireAccess(ctx, req, 'rollout.report', 'read', { key });
    const r = ro.service.get(key);
    // A report about a rollout that is not (or no longer) the key's active one is dropped, not an error: clients lag.
    if (r !== undefined && r.id === o.rollout && rolloutShare(r) > 0) {
      // The bucket is the hash anyone can compute: a client that sends another is wrong (an SDK with another hash), and its report would skew calibration.
      const bucket = rolloutBucket(key, r.id, o.client as string);
      if (o.bucket !== undefined && o.bucket !== bucket) {
        throw new InvalidArgumentError(`'bucket' ${String(o.bucket)} is not this client's bucket in the rollout (${bucket}: see rolloutBucket in docs/rollout.md)`, { field: 'bucket' });
      }
      ro.adoption.report({ rollout: r.id, client: o.client as string, variant: o.variant, bucket, selected: typeof o.selected === 'boolean' ? o.selected : null });
    }
    return { ok: true };
  });
}

/** Guard states for status, turning a failing check into `firing: false` with the error as the reason. */
export async function guardStatesOf(r: Rollout, firing: (g: Rollout['guards'][number]) => Promise<string | undefined>): Promise<{ guard: string; firing: boolean; reason?: string }[]> {
  return Promise.all(
    r.guards.map(async (g) => {
      try {
        const why = await firing(g);
        return why === undefined ? { guard: guardText(g), firing: false } : { guard: guardText(g), firing: true, reason: why };
      } catch (err) {
        return { guard: guardText(g), firing: false, reason: `check failed: ${err instanceof BeaconError || err instanceof Error ? err.message : String(err)}` };
      }
    }),
  );
}
