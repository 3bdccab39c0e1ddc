/**
 * Config change notifications over WebSocket at `GET /v1/configs/watch` (seed 000, journeys 1
 * and 2): a service subscribes to config keys or prefixes and is told `config_update` (with the
 * new version) or `config_deleted` for each change, and one merged message for a rollback.
 * Built on the watch hub, so notifications are ordered, exactly once and resumable by revision.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { WebSocket } from 'ws';
import { CompactedError, InvalidArgumentError, NotFoundError } from '../../errors.js';
import { prefixEnd, type WatchEvent } from '../../kv/index.js';
import { WsChannel, type WatchBatch, type Watcher, type WatchSink } from '../../watch/index.js';
import { optInt, optString, readObject } from './codec.js';
import type { HttpContext } from './context.js';
import { checkWatchesPerConnection, WatchAccess, watchOwner } from './watch-access.js';

const QUERY = ['key', 'prefix', 'fromRevision'] as const;
/** Fields of a rollback's revision meta copied into the notification. */
const ROLLBACK_FIELDS = ['from_version', 'to_version', 'restored_version'] as const;

/** A subscription target: one key or a prefix. */
interface Target {
  kind: 'key' | 'prefix';
  value: string;
}

function targetId(t: Target): string {
  return `${t.kind}:${t.value}`;
}

function parseMeta(meta: string | null): Record<string, unknown> | undefined {
  if (meta === null) return undefined;
  try {
    const v: unknown = JSON.parse(meta);
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The notification for one changed key at one revision, as the seed's config watcher sends it:
 * `{"type":"config_update","key","version":"v<N>","revision","updated_at","event":"config_updated"}`
 * for a put; `{"type":"config_deleted","key","revision","updated_at","event":"config_deleted"}`
 * for a delete. A revision whose meta says `"event":"config_rolled_back"` (written by the config
 * layer) yields one `config_update` carrying that event and `from_version`, `to_version`,
 * `restored_version`. `updated_at` is the revision's commit time (ISO 8601).
 */
export function configNotification(ev: WatchEvent, revision: number, ts: number, meta: string | null): Record<string, unknown> {
  const updatedAt = new Date(ts).toISOString();
  if (ev.type === 'delete') {
    return { type: 'config_deleted', key: ev.kv.key, revision, updated_at: updatedAt, event: 'config_deleted' };
  }
  const msg: Record<string, unknown> = {
    type: 'config_update',
    key: ev.kv.key,
    version: `v${ev.kv.version}`,
    revision,
    updated_at: updatedAt,
    event: 'config_updated',
  };
  const m = parseMeta(meta);
  // Only config events from the config layer shape the message; other meta (lease expiry…) is internal.
  if (m !== undefined && typeof m.event === 'string' && m.event.startsWith('config_')) {
    msg.event = m.event;
    for (const f of ROLLBACK_FIELDS) if (typeof m[f] === 'string') msg[f] = m[f];
    if (typeof m.to_version === 'string') msg.version = m.to_version;
  }
  return msg;
}

function configMessages(b: WatchBatch): string[] {
  return b.events.map((ev, i) => b.memo(`config:${i}`, () => JSON.stringify(configNotification(ev, b.revision, b.ts, b.meta))));
}

/** Reads `name` from a query as a list (fastify gives a string, or an array when repeated). */
function queryList(q: Record<string, unknown>, name: string): string[] {
  const v = q[name];
  if (v === undefined) return [];
  return Array.isArray(v) ? v.map(String) : [String(v)];
}

/** One `/v1/configs/watch` socket and its subscriptions. */
class ConfigWatchConnection {
  private readonly subs = new Map<string, Watcher>();
  /** The authorized range of each subscription, released when it ends so a later revocation of it no longer matters. */
  private readonly ranges = new Map<string, { key: string; rangeEnd: string | null | undefined }>();

  constructor(
    private readonly ctx: HttpContext,
    private readonly ch: WsChannel,
    private readonly access: WatchAccess,
  ) {
    ch.onFrame((f) => this.onFrame(f));
    access.onRevoked((r) => {
      for (const w of this.subs.values()) w.cancel();
      this.subs.clear();
      access.closeSocket(ch, r);
    });
    ch.onClose(() => {
      access.dispose();
      for (const w of this.subs.values()) w.cancel();
      this.subs.clear();
    });
  }

  /** Subscribes to what the upgrade request's query names (`?key=…`, `?prefix=…`, `&fromRevision=N`). */
  fromQuery(q: Record<string, unknown>): void {
    try {
      for (const k of Object.keys(q)) {
        if (!(QUERY as readonly string[]).includes(k)) {
          throw new InvalidArgumentError(`unknown query parameter '${k}'; allowed: ${QUERY.join(', ')}`, { field: k });
        }
      }
      const from = q.fromRevision;
      if (from !== undefined && (typeof from !== 'string' || !/^\d{1,15}$/.test(from))) {
        throw new InvalidArgumentError("query parameter 'fromRevision' must be a non-negative integer", { field: 'fromRevision' });
      }
      const fromRevision = from === undefined ? undefined : Number(from);
      for (const key of queryList(q, 'key')) this.subscribe({ kind: 'key', value: key }, fromRevision);
      for (const prefix of queryList(q, 'prefix')) this.subscribe({ kind: 'prefix', value: prefix }, fromRevision);
    } catch (err) {
      this.ch.sendError(err);
    }
  }

  private onFrame(f: Record<string, unknown>): void {
    if (f.type !== 'auth' && !this.access.stillValid()) return; // the connection is being closed with the reason
    switch (f.type) {
      case 'auth': {
        const o = readObject(f, ['type', 'token'], 'auth frame');
        this.access.reauthenticate(o.token).then(
          (r) => this.ch.sendJson({ type: 'authenticated', principal: r.principal, expiresAt: r.expiresAt }),
          // Tagged, so a client tells a refused refresh (the old credential stays) from the end of the connection.
          (err: unknown) => this.ch.sendError(err, { frame: 'auth' }),
        );
        return;
      }
      case 'subscribe': {
        const o = readObject(f, ['type', 'key', 'prefix', 'fromRevision'], 'subscribe frame');
        this.subscribe(this.target(o), optInt(o, 'fromRevision'));
        return;
      }
      case 'unsubscribe': {
        const o = readObject(f, ['type', 'key', 'prefix'], 'unsubscribe frame');
        const t = this.target(o);
        const w = this.subs.get(targetId(t));
        if (w === undefined) throw new NotFoundError(`not subscribed to ${t.kind} '${t.value}'`, { [t.kind]: t.value });
        w.cancel();
        this.forget(targetId(t));
        this.ch.sendJson({ type: 'unsubscribed', [t.kind]: t.value });
        return;
      }
      case 'progress':
        readObject(f, ['type'], 'progress frame');
        this.ch.send(`{"type":"progress","revision":${this.ctx.hub.progressRevision(this.subs.values())}}`);
        return;
      default:
        throw new InvalidArgumentError(
          f.type === undefined
            ? 'frame has no "type"; expected subscribe, unsubscribe, progress or auth'
            : `unknown frame type ${JSON.stringify(f.type)}; expected subscribe, unsubscribe, progress or auth`,
        );
    }
  }

  private target(o: Record<string, unknown>): Target {
    const key = optString(o, 'key');
    const prefix = optString(o, 'prefix');
    if ((key === undefined) === (prefix === undefined)) throw new InvalidArgumentError("give exactly one of 'key' or 'prefix'");
    return key !== undefined ? { kind: 'key', value: key } : { kind: 'prefix', value: prefix as string };
  }

  private subscribe(t: Target, fromRevision: number | undefined): void {
    const id = targetId(t);
    const label = { [t.kind]: t.value };
    // A socket whose credential ended takes no new subscription: it is closed with the reason instead.
    if (!this.access.checkNow()) return;
    try {
      if (this.subs.has(id)) throw new InvalidArgumentError(`already subscribed to ${t.kind} '${t.value}'`, label);
      checkWatchesPerConnection(this.ctx, this.subs.size);
      let range: { key: string; rangeEnd: string | null | undefined };
      try {
        range = this.access.authorizeRange(t.value, t.kind === 'prefix' ? prefixEnd(t.value) : undefined);
      } catch (err) {
        this.ctx.audit.note({ principal: this.access.principal.name, action: 'config.watch', outcome: 'denied', key: t.value });
        throw err;
      }
      let watcher: Watcher | undefined;
      try {
        watcher = this.ctx.hub.watch(
          {
            ...range,
            ...(fromRevision !== undefined ? { fromRevision } : {}),
            owner: watchOwner(this.ctx, this.access),
          },
          this.sink(id, label, () => watcher),
        );
      } catch (err) {
        this.access.release(range);
        if (!(err instanceof CompactedError)) throw err;
        this.ch.sendJson({ type: 'compacted', ...label, compactRevision: err.compactRevision });
        return;
      }
      this.subs.set(id, watcher);
      this.ranges.set(id, range);
      this.ch.sendJson({ type: 'subscribed', ...label, revision: this.ctx.hub.revision });
    } catch (err) {
      this.ch.sendError(err, label);
    }
  }

  private forget(id: string): void {
    this.subs.delete(id);
    const range = this.ranges.get(id);
    this.ranges.delete(id);
    if (range !== undefined) this.access.release(range);
  }

  private sink(id: string, label: Record<string, string>, self: () => Watcher | undefined): WatchSink {
    const ch = this.ch;
    const labelJson = JSON.stringify(label).slice(1, -1);
    return {
      transport: 'ws',
      congested: () => ch.congested(),
      onDrain: (cb) => ch.onDrain(cb),
      events: (b) => {
        // Nothing more once access is gone; the revocation closes the socket with the reason.
        if (!this.access.stillValid()) return;
        for (const m of configMessages(b)) ch.send(m);
      },
      progress: (revision) => ch.send(`{"type":"progress",${labelJson},"revision":${revision}}`),
      compacted: (compactRevision) => {
        if (this.subs.get(id) === self()) this.forget(id);
        ch.send(`{"type":"compacted",${labelJson},"compactRevision":${compactRevision}}`);
      },
      closed: () => ch.close(1001, 'server shutting down'),
    };
  }
}

/**
 * Registers `GET /v1/configs/watch` (WebSocket). Subscribe with `?key=database.url` or
 * `?prefix=app.` (repeatable, optional `&fromRevision=N`) or with frames
 * `{"type":"subscribe","key"|"prefix","fromRevision"?}` / `{"type":"unsubscribe","key"|"prefix"}`;
 * answers `subscribed` (with the current `revision`), then `config_update` / `config_deleted`
 * per change (see {@link configNotification}), `progress` when idle, `compacted` when
 * `fromRevision` is gone, and `error` frames for bad input (the socket stays open). A fresh
 * credential goes in `{"type":"auth","token"}` (answered `authenticated`); when the connection's
 * access ends it gets an `error` frame (`unauthenticated` or `permission_denied`) and close 4401 or 1008.
 * The static path takes precedence over the config routes' `/v1/configs/*`.
 */
export function registerConfigWatchRoutes(app: FastifyInstance, ctx: HttpContext): void {
  app.get('/v1/configs/watch', { websocket: true }, (socket: WebSocket, req: FastifyRequest) => {
    const conn = new ConfigWatchConnection(ctx, new WsChannel(socket, ctx.hub.options, ctx.logger), new WatchAccess(ctx, req));
    conn.fromQuery(req.query as Record<string, unknown>);
  });
}
