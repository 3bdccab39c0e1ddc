/**
 * What one watch connection may see: its ranges are clamped past the system keys and checked
 * against the principal's grants at creation, secret values are decrypted or redacted per
 * principal, and the principal and every range it was granted are re-checked while the
 * connection lives: whenever a user, role or API key changed (the identity store's generation
 * moved) and at least once a second (for API key expiry). A deleted or disabled user, a revoked
 * API key, or a role edit that takes away read access to a watched range ends the connection;
 * an edit that keeps access only updates the principal (so secret redaction follows it).
 */
import type { Principal, Resource } from '../../auth/index.js';
import { BeaconError, PermissionDeniedError } from '../../errors.js';
import { clampRange, type KeyValue, type WatchEvent } from '../../kv/index.js';
import type { WatchBatch } from '../../watch/index.js';
import { principalOf } from './authz.js';
import { eventToJson, kvToJson, type KeyValueJson } from './codec.js';
import type { HttpContext } from './context.js';
import type { FastifyRequest } from 'fastify';

/** How often a long-lived connection re-checks its principal when nothing changed (API keys expire by time), in ms. */
const REFRESH_MS = 1000;

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
  private revokedWhy: string | undefined;
  /** Every range authorized on this connection, by `key\0rangeEnd`. */
  private readonly ranges = new Map<string, GrantedRange>();
  private overflowed = false;

  constructor(
    private readonly ctx: HttpContext,
    req: FastifyRequest,
  ) {
    this.current = principalOf(req);
    this.generation = ctx.auth.identity.generation;
  }

  /** The principal as last checked. */
  get principal(): Principal {
    return this.current;
  }

  /** Why the connection lost its access (a WebSocket close reason, under 123 bytes), or undefined while it has it. */
  get revokedReason(): string | undefined {
    return this.revokedWhy;
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
    if (this.revokedWhy !== undefined) return false;
    const generation = this.ctx.auth.identity.generation;
    const now = Date.now();
    if (generation === this.generation && now - this.checkedAt < REFRESH_MS) return true;
    const moved = generation !== this.generation;
    this.generation = generation;
    this.checkedAt = now;
    const fresh = this.ctx.auth.refresh(this.current);
    if (fresh === undefined) return this.revoke('credentials revoked (user deleted or disabled, or API key revoked); reconnect');
    if (moved && this.overflowed) return this.revoke('access changed and this connection holds too many ranges to re-check; reconnect');
    for (const r of this.ranges.values()) {
      if (!this.ctx.auth.can(fresh, 'read', r.resource)) return this.revoke('read access to a watched range was revoked; reconnect');
    }
    this.current = fresh;
    return true;
  }

  private revoke(why: string): false {
    this.revokedWhy = why;
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
