/**
 * What one watch connection may see: its ranges are clamped past the system keys and checked
 * against the principal's grants at creation, secret values are decrypted or redacted per
 * principal, and the principal, its credential and every range it was granted are re-checked
 * while the connection lives (issue 9 finding 5): on every event, on every new watch, at the
 * credential's expiry, within a quarter second of a user, role, API key or signing-key change,
 * and once a second. An expired token, a token whose signing key was rotated out
 * (`signing-key rotate --revoke-tokens`), a deleted or disabled user or a revoked or expired API
 * key ends the connection as `unauthenticated`; a role edit that takes away read access to a
 * watched range ends it as `permission_denied`; an edit that keeps access only updates the
 * principal (so secret redaction follows it). A WebSocket client may present a fresh token for
 * the same principal (`{"type":"auth","token"}`) before the old one expires.
 */
import { decodeJwt, decodeProtectedHeader } from 'jose';
import type { Principal, Resource } from '../../auth/index.js';
import { BeaconError, PermissionDeniedError, TooManyRequestsError, UnauthenticatedError } from '../../errors.js';
import { clampRange, type KeyValue, type WatchEvent } from '../../kv/index.js';
import type { WatchBatch, WsChannel } from '../../watch/index.js';
import { credentialsOf, principalOf } from './authz.js';
import { eventToJson, kvToJson, type KeyValueJson } from './codec.js';
import type { HttpContext } from './context.js';
import type { FastifyRequest } from 'fastify';

/** How often a long-lived connection re-checks its principal when nothing changed (API keys expire by time), in ms. */
const REFRESH_MS = 1000;
/** How often open connections look for a user, role, API key or signing-key change, in ms. */
const WATCH_CHANGES_MS = 250;
/** The longest setTimeout delay Node accepts (ms); later expiries are re-armed by the periodic check. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Why a connection lost its access: `unauthenticated` (its credential is no longer valid: closed
 * with WebSocket code 4401) or `permission_denied` (a watched range is no longer readable: 1008).
 */
export interface Revocation {
  code: 'unauthenticated' | 'permission_denied';
  /** For people; also the WebSocket close reason (under 123 bytes). */
  reason: string;
  /** A metrics label: expired, revoked or permission. */
  kind: 'expired' | 'revoked' | 'permission';
}

/** The WebSocket close code of a connection whose credential ended (like HTTP 401; 4000–4999 are for applications). */
export const CLOSE_UNAUTHENTICATED = 4401;
/** The WebSocket close code of a connection that lost read access to a watched range (policy violation). */
export const CLOSE_PERMISSION_DENIED = 1008;

/** Every open watch connection's access, re-checked together when identities or signing keys change. */
const open = new Set<WatchAccess>();
let openTimer: NodeJS.Timeout | undefined;
let seen = '';

function watchOpen(): void {
  if (openTimer !== undefined) return;
  openTimer = setInterval(() => {
    if (open.size === 0) {
      clearInterval(openTimer);
      openTimer = undefined;
      return;
    }
    let marker = '';
    for (const a of open) {
      marker = a.changeMarker();
      break;
    }
    const changed = marker !== seen;
    seen = marker;
    for (const a of [...open]) a.tick(changed);
  }, WATCH_CHANGES_MS);
  openTimer.unref();
}

/** What a bearer credential (a JWT) says about itself, read once it has been verified. */
function jwtFacts(bearer: string | undefined): { exp?: number; kid?: string } {
  if (bearer === undefined || bearer.split('.').length !== 3) return {};
  try {
    const exp = decodeJwt(bearer).exp;
    const kid = decodeProtectedHeader(bearer).kid;
    return { ...(typeof exp === 'number' ? { exp: exp * 1000 } : {}), ...(typeof kid === 'string' ? { kid } : {}) };
  } catch {
    return {};
  }
}

/** The bearer credential a request authenticated with (header, X-API-Key, or `?access_token=` of the raw URL). */
function bearerOf(ctx: HttpContext, req: FastifyRequest): string | undefined {
  const c = credentialsOf(ctx, req);
  const m = c.authorization === undefined ? null : /^Bearer\s+(\S+)\s*$/i.exec(c.authorization);
  if (m !== null) return m[1];
  if (c.apiKey !== undefined) return c.apiKey;
  // The auth hook removed ?access_token= from the parsed query; the raw URL still has it.
  try {
    return new URL(req.raw.url ?? '/', 'http://x').searchParams.get('access_token') ?? undefined;
  } catch {
    return undefined;
  }
}

/**
 * The most distinct ranges one connection remembers for re-checking. Past it the connection stops
 * remembering and is ended on the next identity change instead (it can no longer prove its access).
 */
const MAX_REMEMBERED_RANGES = 20_000;

/** A range this connection was granted, with how many live watches use it. */
interface GrantedRange {
  resource: Resource;
  uses: number;
}

/** The access of one watch connection (WebSocket or SSE). */
export class WatchAccess {
  private current: Principal;
  private checkedAt = Date.now();
  private generation: number;
  private revoked: Revocation | undefined;
  /** Every range authorized on this connection, by `key\0rangeEnd`. */
  private readonly ranges = new Map<string, GrantedRange>();
  private overflowed = false;
  /** When the credential expires (ms since the epoch), if it does. */
  private expiresAtMs: number | undefined;
  /** The signing key id of a Beacon token (its rotation out ends the connection). */
  private kid: string | undefined;
  private expiryTimer: NodeJS.Timeout | undefined;
  private onRevokedCb: ((r: Revocation) => void) | undefined;
  private disposed = false;

  constructor(
    private readonly ctx: HttpContext,
    req: FastifyRequest,
  ) {
    this.current = principalOf(req);
    this.generation = ctx.auth.identity.generation;
    if (!ctx.auth.dev) this.adopt(bearerOf(ctx, req));
  }

  /** When the connection's credential expires (ms since the epoch), or undefined when it does not. */
  get expiresAt(): number | undefined {
    return this.expiresAtMs;
  }

  /**
   * Calls `cb` once, as soon as the connection loses its access (checked on events, new watches,
   * the credential's expiry and identity or signing-key changes). The transport then tells the
   * peer and closes. Registers the connection for those checks until {@link dispose}.
   */
  onRevoked(cb: (r: Revocation) => void): void {
    this.onRevokedCb = cb;
    if (this.disposed || this.ctx.auth.dev) return;
    open.add(this);
    watchOpen();
    if (this.revoked !== undefined) queueMicrotask(() => this.fire());
  }

  /** Stops the checks (the connection closed). Idempotent. */
  dispose(): void {
    this.disposed = true;
    open.delete(this);
    if (this.expiryTimer) clearTimeout(this.expiryTimer);
    this.expiryTimer = undefined;
  }

  /** A string that changes whenever users, roles, API keys or signing keys change (internal, for the shared check). */
  changeMarker(): string {
    return `${this.ctx.auth.identity.generation}|${this.ctx.auth.tokens.kids.join(',')}`;
  }

  /** The periodic check (internal): a full check when something changed or a second passed. */
  tick(changed: boolean): void {
    if (this.disposed) return;
    if (changed) this.checkedAt = 0;
    if (!this.stillValid()) this.fire();
  }

  /**
   * Replaces the connection's credential with `token` (a fresh token or API key of the same
   * principal), as etcd clients refresh theirs: expiry and signing key follow the new one and
   * the roles are those it carries. The watched ranges are checked again under them.
   * @throws UnauthenticatedError when the token is not valid (the old credential stays in force);
   * PermissionDeniedError when it belongs to another principal, or when the connection has
   * already lost its access.
   */
  async reauthenticate(token: unknown): Promise<{ principal: string; expiresAt: number | null }> {
    if (typeof token !== 'string' || token === '') throw new UnauthenticatedError("an auth frame needs a non-empty 'token'", { reason: 'missing' });
    if (this.revoked !== undefined || this.disposed) throw new UnauthenticatedError(this.revoked?.reason ?? 'the connection is closing', { reason: 'revoked' });
    if (this.ctx.auth.dev) return { principal: this.current.name, expiresAt: null };
    const fresh = await this.ctx.auth.authenticate({ authorization: `Bearer ${token}` });
    if (fresh.name !== this.current.name) {
      throw new PermissionDeniedError(`the token is for '${fresh.name}', not '${this.current.name}'; a connection keeps its principal (open a new one)`, {
        reason: 'other_principal',
      });
    }
    this.current = fresh;
    this.adopt(token);
    this.checkedAt = 0;
    if (!this.stillValid()) this.fire();
    return { principal: fresh.name, expiresAt: this.expiresAtMs ?? null };
  }

  /** Takes `bearer` as the connection's credential: its expiry (and a timer at it) and its signing key. */
  private adopt(bearer: string | undefined): void {
    const facts = jwtFacts(bearer);
    this.kid = this.current.via === 'token' ? facts.kid : undefined;
    this.expiresAtMs = facts.exp;
    if (this.current.via === 'apikey' && this.current.credentialId !== undefined) {
      this.expiresAtMs = this.ctx.auth.identity.apiKey(this.current.credentialId)?.expiresAt ?? undefined;
    }
    if (this.expiryTimer) clearTimeout(this.expiryTimer);
    this.expiryTimer = undefined;
    if (this.expiresAtMs !== undefined) {
      const at = this.expiresAtMs;
      this.expiryTimer = setTimeout(() => this.tick(true), Math.min(MAX_TIMER_MS, Math.max(0, at - Date.now()) + 5));
      this.expiryTimer.unref();
    }
  }

  /** Tells a WebSocket peer why its access ended (an `error` frame), then closes: 4401 for a credential, 1008 for a range. */
  closeSocket(ch: WsChannel, r: Revocation): void {
    ch.sendJson({ type: 'error', error: { code: r.code, message: r.reason } });
    ch.close(r.code === 'unauthenticated' ? CLOSE_UNAUTHENTICATED : CLOSE_PERMISSION_DENIED, r.reason);
  }

  private fire(): void {
    const r = this.revoked;
    const cb = this.onRevokedCb;
    if (r === undefined || cb === undefined || this.disposed) return;
    this.dispose();
    this.ctx.metrics.watchStreamsClosed.inc({ reason: r.kind });
    cb(r);
  }

  /** The principal as last checked. */
  get principal(): Principal {
    return this.current;
  }

  /** Why the connection lost its access (a WebSocket close reason, under 123 bytes), or undefined while it has it. */
  get revokedReason(): string | undefined {
    return this.revoked?.reason;
  }

  /** How the connection lost its access, or undefined while it has it. */
  get revocation(): Revocation | undefined {
    return this.revoked;
  }

  /**
   * Clamps `[key, rangeEnd)` past the system keys and checks that the principal may read all of it.
   * The range is remembered and re-checked whenever the principal's roles may have changed
   * (until {@link release}d).
   * @throws PermissionDeniedError when one grant does not cover the whole range (as for reads).
   */
  authorizeRange(key: string, rangeEnd: string | null | undefined): { key: string; rangeEnd: string | null | undefined } {
    const range = clampRange(key, rangeEnd);
    const resource: Resource = range.rangeEnd === undefined ? { key: range.key } : { key: range.key, rangeEnd: range.rangeEnd };
    this.ctx.auth.authorize(this.current, 'read', resource);
    const id = rangeId(range);
    const known = this.ranges.get(id);
    if (known !== undefined) known.uses++;
    else if (this.ranges.size < MAX_REMEMBERED_RANGES) this.ranges.set(id, { resource, uses: 1 });
    else this.overflowed = true;
    return range;
  }

  /**
   * Forgets one use of a range returned by {@link authorizeRange} (its watch was canceled), so a
   * later loss of access to it no longer ends the connection. Optional: a range never released
   * only makes the connection end more eagerly.
   */
  release(range: { key: string; rangeEnd: string | null | undefined }): void {
    const id = rangeId(range);
    const known = this.ranges.get(id);
    if (known !== undefined && --known.uses <= 0) this.ranges.delete(id);
  }

  /** Throws unless the principal may keep leases alive (write access somewhere, as the HTTP route). */
  authorizeKeepAlive(): void {
    if (!this.ctx.auth.hasAnyAccess(this.current, 'write')) {
      throw new PermissionDeniedError(`'${this.current.name}' may not keep leases alive (needs write access)`, { action: 'lease.keepalive' });
    }
  }

  /**
   * True while the principal still may read every range it watches. Cheap on the event path: a
   * full re-check (the principal refreshed from the identity store, then every remembered range
   * authorized afresh with the same check as at creation) runs only when the identity store's
   * generation moved or a second passed. False, for good, once the user is deleted or disabled,
   * the API key revoked or expired, or a role change took away read access to a watched range:
   * the transport then ends the connection (WebSocket close 1008 with {@link revokedReason}) and
   * the client reconnects, which authorizes its watches afresh. A change that keeps access only
   * updates {@link principal}, so secret values are redacted or shown per the new roles.
   */
  stillValid(): boolean {
    if (this.revoked !== undefined) return false;
    const generation = this.ctx.auth.identity.generation;
    const now = Date.now();
    if (this.expiresAtMs !== undefined && now >= this.expiresAtMs) {
      return this.revoke('the token has expired; send a fresh one ({"type":"auth"}) before expiry, or reconnect', 'unauthenticated', 'expired');
    }
    // A Beacon token whose signing key is gone (signing-key rotate --revoke-tokens) is refused at once.
    if (this.kid !== undefined && !this.ctx.auth.tokens.kids.includes(this.kid)) {
      return this.revoke('the token was revoked (its signing key was rotated out); log in again', 'unauthenticated', 'revoked');
    }
    if (generation === this.generation && now - this.checkedAt < REFRESH_MS) return true;
    const moved = generation !== this.generation;
    this.generation = generation;
    this.checkedAt = now;
    const fresh = this.ctx.auth.refresh(this.current);
    if (fresh === undefined) return this.revoke('credentials revoked (user deleted or disabled, or API key revoked or expired); reconnect', 'unauthenticated', 'revoked');
    if (moved && this.overflowed) return this.revoke('access changed and this connection holds too many ranges to re-check; reconnect', 'permission_denied', 'permission');
    for (const r of this.ranges.values()) {
      if (!this.ctx.auth.can(fresh, 'read', r.resource)) return this.revoke('read access to a watched range was revoked; reconnect', 'permission_denied', 'permission');
    }
    this.current = fresh;
    return true;
  }

  /**
   * A full check now (a new watch on the connection): false, and the connection is being ended,
   * when it has lost its access.
   */
  checkNow(): boolean {
    this.checkedAt = 0;
    if (this.stillValid()) return true;
    this.fire();
    return false;
  }

  private revoke(why: string, code: Revocation['code'], kind: Revocation['kind']): false {
    this.revoked = { code, reason: why, kind };
    // Whoever noticed (an event, a timer), the transport is told once, outside the caller's work.
    queueMicrotask(() => this.fire());
    return false;
  }

  /**
   * The JSON array of a batch's events as this principal may see them, with a tag that tells
   * apart the variants (so a transport memoizes one serialization per variant, shared by every
   * watcher that sees the same). Batches without secret values have the empty tag and the shared form.
   */
  events(batch: WatchBatch, shared: () => string): { tag: string; json: () => string } {
    const idx = batch.memo('secret-events', () => {
      const out: number[] = [];
      batch.events.forEach((e, i) => {
        if (this.isSecret(e.kv, e.type === 'put') || (e.prevKv !== undefined && this.isSecret(e.prevKv, true))) out.push(i);
      });
      return out.join(',');
    });
    if (idx === '') return { tag: '', json: shared };
    const secret = new Map<number, boolean>();
    let tag = ':s';
    for (const s of idx.split(',')) {
      const i = Number(s);
      const may = this.ctx.auth.canReadSecret(this.current, (batch.events[i] as WatchEvent).kv.key);
      secret.set(i, may);
      tag += may ? '1' : '0';
    }
    return {
      tag,
      json: () =>
        JSON.stringify(
          batch.events.map((e, i) => {
            const may = secret.get(i);
            if (may === undefined) return eventToJson(e);
            const out = eventToJson(e) as { type: string; kv: KeyValueJson; prevKv?: KeyValueJson };
            if (e.type === 'put') out.kv = this.view(e.kv, may);
            if (e.prevKv !== undefined) out.prevKv = this.view(e.prevKv, may);
            return out;
          }),
        ),
    };
  }

  private isSecret(kv: KeyValue, hasValue: boolean): boolean {
    return hasValue && this.ctx.policies.isSecretValue(kv);
  }

  private view(kv: KeyValue, may: boolean): KeyValueJson & { redacted?: true; error?: { code: string; message: string } } {
    if (!this.ctx.policies.isSecretValue(kv)) return kvToJson(kv);
    let v: ReturnType<HttpContext['policies']['decodeForRead']>;
    try {
      v = this.ctx.policies.decodeForRead(kv, may);
    } catch (err) {
      // A value that cannot be decrypted fails that event alone, never the watch (issue 9 finding 3).
      if (!(err instanceof BeaconError)) throw err;
      return { ...kvToJson(kv, true), error: { code: err.code, message: err.message } };
    }
    if (v.redacted) return { ...kvToJson(kv, true), redacted: true };
    return kvToJson({ ...kv, value: v.value });
  }
}

function rangeId(range: { key: string; rangeEnd: string | null | undefined }): string {
  return `${range.key}\u0000${range.rangeEnd === undefined ? 'k' : range.rangeEnd === null ? 'n' : `r${range.rangeEnd}`}`;
}

/**
 * Refuses one more watch on a connection that holds `held` (the hub's `maxWatchesPerConnection`,
 * `beacon serve --max-watches-per-connection`), counting the refusal.
 * @throws TooManyRequestsError (429 / an error frame; the connection stays open).
 */
export function checkWatchesPerConnection(ctx: HttpContext, held: number): void {
  const max = ctx.hub.options.maxWatchesPerConnection;
  if (held < max) return;
  ctx.metrics.watchLimitHits.inc({ limit: 'per_connection' });
  throw new TooManyRequestsError(`a connection may hold at most ${max} watches (--max-watches-per-connection); cancel some or open another connection`, {
    limit: 'watches_per_connection',
    max,
  });
}

/** The principal a watch is counted against (none in --dev mode, where everyone is the same). */
export function watchOwner(ctx: HttpContext, access: WatchAccess): string | undefined {
  return ctx.auth.dev ? undefined : access.principal.name;
}
