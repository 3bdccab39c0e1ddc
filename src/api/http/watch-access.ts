/**
 * What one watch connection may see: its ranges are clamped past the system keys and checked
 * against the principal's grants at creation, secret values are decrypted or redacted per
 * principal, and the principal is re-checked while the connection lives (a deleted user or a
 * revoked API key loses its watches within a second).
 */
import type { Principal } from '../../auth/index.js';
import { PermissionDeniedError } from '../../errors.js';
import { clampRange, type KeyValue, type WatchEvent } from '../../kv/index.js';
import type { WatchBatch } from '../../watch/index.js';
import { principalOf } from './authz.js';
import { eventToJson, kvToJson, type KeyValueJson } from './codec.js';
import type { HttpContext } from './context.js';
import type { FastifyRequest } from 'fastify';

/** How often a long-lived connection re-checks its principal, in ms. */
const REFRESH_MS = 1000;

/** The access of one watch connection (WebSocket or SSE). */
export class WatchAccess {
  private current: Principal;
  private checkedAt = Date.now();
  private revoked = false;

  constructor(
    private readonly ctx: HttpContext,
    req: FastifyRequest,
  ) {
    this.current = principalOf(req);
  }

  /** The principal as last checked. */
  get principal(): Principal {
    return this.current;
  }

  /**
   * Clamps `[key, rangeEnd)` past the system keys and checks that the principal may read all of it.
   * @throws PermissionDeniedError when one grant does not cover the whole range (as for reads).
   */
  authorizeRange(key: string, rangeEnd: string | null | undefined): { key: string; rangeEnd: string | null | undefined } {
    const range = clampRange(key, rangeEnd);
    this.ctx.auth.authorize(this.current, 'read', range.rangeEnd === undefined ? { key: range.key } : range);
    return range;
  }

  /** Throws unless the principal may keep leases alive (write access somewhere, as the HTTP route). */
  authorizeKeepAlive(): void {
    if (!this.ctx.auth.hasAnyAccess(this.current, 'write')) {
      throw new PermissionDeniedError(`'${this.current.name}' may not keep leases alive (needs write access)`, { action: 'lease.keepalive' });
    }
  }

  /**
   * True while the principal still stands as it was (re-checked at most once a second). False once
   * the user is deleted or disabled, the API key revoked, or the roles changed: the transport then
   * ends the connection and the client reconnects, which authorizes its watches afresh.
   */
  stillValid(): boolean {
    if (this.revoked) return false;
    const now = Date.now();
    if (now - this.checkedAt < REFRESH_MS) return true;
    this.checkedAt = now;
    const fresh = this.ctx.auth.refresh(this.current);
    if (fresh === undefined || fresh.roles.join('\u0000') !== this.current.roles.join('\u0000')) {
      this.revoked = true;
      return false;
    }
    return true;
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
    return hasValue && this.ctx.policies.isSecretValue(kv.key, kv.value);
  }

  private view(kv: KeyValue, may: boolean): KeyValueJson & { redacted?: true } {
    if (!this.ctx.policies.isSecretValue(kv.key, kv.value)) return kvToJson(kv);
    const v = this.ctx.policies.decodeForRead(kv.key, kv.value, may);
    if (v.redacted) return { ...kvToJson(kv, true), redacted: true };
    return kvToJson({ ...kv, value: v.value });
  }
}
