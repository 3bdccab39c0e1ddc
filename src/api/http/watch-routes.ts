/**
 * Watches over HTTP: `GET /v1/watch` (WebSocket, many watches multiplexed on one socket, plus
 * lease keep-alives) and `GET /v1/watch/*` (Server-Sent Events, one watch per stream, resumable
 * with `Last-Event-ID`). Both are thin adapters over the {@link WatchHub}. The config
 * notification socket (`/v1/configs/watch`) is registered from here too.
 */
import type { ServerResponse } from 'node:http';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { WebSocket } from 'ws';
import { CompactedError, InvalidArgumentError, NotFoundError } from '../../errors.js';
import { parseRange } from '../../kv/index.js';
import { WsChannel, type WatchBatch, type Watcher, type WatchHub, type WatchSink } from '../../watch/index.js';
import { eventToJson, optBool, optInt, queryBool, queryInt, readObject, reqString, wildcardKey } from './codec.js';
import { registerConfigWatchRoutes } from './config-watch.js';
import type { HttpContext } from './context.js';
import { checkWatchesPerConnection, WatchAccess, watchOwner, type Revocation } from './watch-access.js';
import { ownLease } from './lease-routes.js';

const CREATE_FIELDS = ['type', 'key', 'prefix', 'rangeEnd', 'fromRevision', 'prevKv', 'watchId', 'noPut', 'noDelete'] as const;
const SSE_QUERY = ['prefix', 'rangeEnd', 'fromRevision', 'prevKv', 'lastEventId', 'noPut', 'noDelete'] as const;


/** The JSON array of a batch's events, serialized once per revision and event subset (the hub bounds the cache). */
export function eventsJson(b: WatchBatch): string {
  return b.memo('events', () => JSON.stringify(b.events.map(eventToJson)));
}

// -------------------------------------------------------------------------------------------------
// WebSocket

/** One `/v1/watch` socket: its watches by client-visible id. */
class WatchConnection {
  private readonly watches = new Map<number, Watcher>();
  /** The authorized range of each watch, released when the watch ends. */
  private readonly ranges = new Map<number, { key: string; rangeEnd: string | null | undefined }>();
  private nextAutoId = 1;

  constructor(
    private readonly ctx: HttpContext,
    private readonly ch: WsChannel,
    private readonly access: WatchAccess,
  ) {
    ch.onFrame((f) => this.onFrame(f));
    access.onRevoked((r) => {
      for (const w of this.watches.values()) w.cancel();
      this.watches.clear();
      access.closeSocket(ch, r);
    });
    ch.onClose(() => {
      access.dispose();
      for (const w of this.watches.values()) w.cancel();
      this.watches.clear();
    });
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
      case 'create':
        this.create(f);
        return;
      case 'cancel':
        this.cancel(f);
        return;
      case 'progress':
        readObject(f, ['type'], 'progress frame');
        this.ch.send(`{"type":"progress","revision":${this.ctx.hub.progressRevision(this.watches.values())}}`);
        return;
      case 'keepalive':
        this.keepAlive(f);
        return;
      default:
        throw new InvalidArgumentError(
          f.type === undefined
            ? 'frame has no "type"; expected create, cancel, progress, keepalive or auth'
            : `unknown frame type ${JSON.stringify(f.type)}; expected create, cancel, progress, keepalive or auth`,
        );
    }
  }

  private create(f: Record<string, unknown>): void {
    const watchId = optInt(f, 'watchId');
    // A socket whose credential ended takes no new watch: it is closed with the reason instead.
    if (!this.access.checkNow()) return;
    try {
      const o = readObject(f, CREATE_FIELDS, 'create frame');
      const asked = parseRange({ key: reqString(o, 'key'), prefix: o.prefix, rangeEnd: o.rangeEnd });
      const fromRevision = optInt(o, 'fromRevision');
      let range: { key: string; rangeEnd: string | null | undefined };
      try {
        range = this.access.authorizeRange(asked.key, asked.rangeEnd);
      } catch (err) {
        this.ctx.audit.note({ principal: this.access.principal.name, action: 'watch.create', outcome: 'denied', key: asked.key });
        throw err;
      }
      if (watchId !== undefined && this.watches.has(watchId)) {
        this.access.release(range);
        throw new InvalidArgumentError(`watchId ${watchId} is already in use on this connection`, { watchId });
      }
      try {
        checkWatchesPerConnection(this.ctx, this.watches.size);
      } catch (err) {
        this.access.release(range);
        throw err;
      }
      const id = watchId ?? this.allocateId();
      let watcher: Watcher | undefined;
      const sink = this.sink(id, () => watcher);
      // Watched ranges are re-checked on role changes until their watch ends (see WatchAccess.release).
      this.ranges.set(id, range);
      try {
        watcher = this.ctx.hub.watch(
          {
            ...range,
            ...(fromRevision !== undefined ? { fromRevision } : {}),
            prevKv: optBool(o, 'prevKv') ?? false,
            noPut: optBool(o, 'noPut') ?? false,
            noDelete: optBool(o, 'noDelete') ?? false,
            owner: watchOwner(this.ctx, this.access),
          },
          sink,
        );
      } catch (err) {
        this.forget(id);
        if (!(err instanceof CompactedError)) throw err;
        this.ch.send(`{"type":"compacted","watchId":${id},"compactRevision":${err.compactRevision}}`);
        return;
      }
      this.watches.set(id, watcher);
      this.ch.send(`{"type":"created","watchId":${id},"revision":${this.ctx.hub.revision}}`);
    } catch (err) {
      this.ch.sendError(err, watchId === undefined ? {} : { watchId });
    }
  }

  private cancel(f: Record<string, unknown>): void {
    const watchId = optInt(f, 'watchId');
    try {
      readObject(f, ['type', 'watchId'], 'cancel frame');
      if (watchId === undefined) throw new InvalidArgumentError("'watchId' is required", { field: 'watchId' });
      const w = this.watches.get(watchId);
      if (w === undefined) throw new NotFoundError(`watch ${watchId} not found on this connection`, { watchId });
      w.cancel();
      this.watches.delete(watchId);
      this.forget(watchId);
      this.ch.send(`{"type":"canceled","watchId":${watchId}}`);
    } catch (err) {
      this.ch.sendError(err, watchId === undefined ? {} : { watchId });
    }
  }

  private keepAlive(f: Record<string, unknown>): void {
    const o = readObject(f, ['type', 'lease'], 'keepalive frame');
    const lease = optInt(o, 'lease', 1);
    if (lease === undefined) throw new InvalidArgumentError("'lease' is required", { field: 'lease' });
    if (!this.access.checkNow()) return;
    this.access.authorizeKeepAlive();
    // Only the lease's owner (or an administrator) may keep it alive (issue 9 finding 9).
    ownLease(this.ctx, this.access.principal, lease).then(() => this.ctx.store.keepAlive(lease)).then(
      (ttl) => this.ch.send(`{"type":"keepalive","lease":${lease},"ttl":${ttl}}`),
      (err: unknown) => this.ch.sendError(err, { lease }),
    );
  }

  /** Releases the range of watch `id` (its watch ended), so losing access to it no longer matters. */
  private forget(id: number): void {
    const range = this.ranges.get(id);
    if (range === undefined) return;
    this.ranges.delete(id);
    this.access.release(range);
  }

  private allocateId(): number {
    while (this.watches.has(this.nextAutoId)) this.nextAutoId++;
    return this.nextAutoId++;
  }

  private sink(id: number, self: () => Watcher | undefined): WatchSink {
    const ch = this.ch;
    const prefix = `{"type":"events","watchId":${id}`;
    return {
      transport: 'ws',
      congested: () => ch.congested(),
      onDrain: (cb) => ch.onDrain(cb),
      events: (b) => {
        // Nothing more once access is gone; the revocation closes the socket with the reason.
        if (!this.access.stillValid()) return;
        const view = this.access.events(b, () => eventsJson(b));
        ch.send(prefix + b.memo(`ws${view.tag}`, () => `,"revision":${b.revision},"events":${view.json()}}`));
      },
      progress: (revision) => ch.send(`{"type":"progress","watchId":${id},"revision":${revision}}`),
      compacted: (compactRevision) => {
        if (this.watches.get(id) === self()) {
          this.watches.delete(id);
          this.forget(id);
        }
        ch.send(`{"type":"compacted","watchId":${id},"compactRevision":${compactRevision}}`);
      },
      closed: () => ch.close(1001, 'server shutting down'),
    };
  }
}

// -------------------------------------------------------------------------------------------------
// Server-Sent Events

/** A hijacked SSE response as a watch sink. */
class SseStream implements WatchSink {
  readonly transport = 'sse';
  private drainWaiters: (() => void)[] = [];
  private gone = false;

  constructor(
    private readonly res: ServerResponse,
    private readonly hub: WatchHub,
    private readonly access: WatchAccess,
  ) {
    res.on('drain', () => this.flushDrain());
    res.on('close', () => {
      this.gone = true;
      this.flushDrain();
    });
  }

  congested(): boolean {
    return this.res.writableLength > this.hub.options.congestionBytes;
  }

  onDrain(cb: () => void): void {
    if (this.gone) queueMicrotask(cb);
    else this.drainWaiters.push(cb);
  }

  events(b: WatchBatch): void {
    if (!this.access.stillValid()) return; // the revocation ends the stream with an error event

    const view = this.access.events(b, () => eventsJson(b));
    this.write(b.memo(`sse${view.tag}`, () => `id: ${b.revision}\nevent: events\ndata: {"revision":${b.revision},"events":${view.json()}}\n\n`));
  }

  progress(revision: number): void {
    // The id lets a reconnecting EventSource resume after the progress point, not an older event.
    this.write(`id: ${revision}\nevent: progress\ndata: {"revision":${revision}}\n\n`);
  }

  /** Ends the stream after an `event: error` naming why its access ended. */
  revoked(r: Revocation): void {
    this.write(`event: error\ndata: ${JSON.stringify({ error: { code: r.code, message: r.reason } })}\n\n`);
    this.end();
  }

  compacted(compactRevision: number): void {
    this.write(`event: compacted\ndata: {"compactRevision":${compactRevision}}\n\n`);
    this.end();
  }

  closed(): void {
    this.end();
  }

  end(): void {
    if (!this.res.writableEnded) this.res.end();
  }

  write(text: string): void {
    if (this.gone || this.res.writableEnded || this.res.destroyed) return;
    this.res.write(text);
  }

  private flushDrain(): void {
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const cb of waiters) cb();
  }
}

function lastEventId(req: FastifyRequest, q: Record<string, unknown>): number | undefined {
  const header = req.headers['last-event-id'];
  const raw = typeof header === 'string' && header !== '' ? header : q.lastEventId;
  if (raw === undefined || raw === '') return undefined;
  if (typeof raw !== 'string' || !/^\d{1,15}$/.test(raw.trim())) {
    throw new InvalidArgumentError('Last-Event-ID must be a revision number (a non-negative integer)', { field: 'lastEventId' });
  }
  return Number(raw.trim());
}

async function sseWatch(ctx: HttpContext, req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const q = req.query as Record<string, unknown>;
  for (const k of Object.keys(q)) {
    if (!(SSE_QUERY as readonly string[]).includes(k)) {
      throw new InvalidArgumentError(`unknown query parameter '${k}'; allowed: ${SSE_QUERY.join(', ')}`, { field: k });
    }
  }
  const rangeEnd = q.rangeEnd;
  if (rangeEnd !== undefined && typeof rangeEnd !== 'string') throw new InvalidArgumentError("query parameter 'rangeEnd' must be given once", { field: 'rangeEnd' });
  const access = new WatchAccess(ctx, req);
  const asked = parseRange({ key: wildcardKey(req.params), prefix: queryBool(q, 'prefix'), rangeEnd });
  const range = access.authorizeRange(asked.key, asked.rangeEnd);
  const last = lastEventId(req, q);
  // Last-Event-ID is what a reconnecting EventSource sends: it wins over the original fromRevision.
  const fromRevision = last !== undefined ? last + 1 : (queryInt(q, 'fromRevision') ?? 0);
  if (fromRevision > ctx.hub.revision + 1 && ctx.store.backend.shared === true) {
    // A browser reconnecting to another node behind the load balancer may be ahead of this node:
    // wait (bounded) for it to catch up instead of answering an error that ends EventSource.
    await ctx.store.readBarrier().catch(() => undefined);
  }
  const res = reply.raw;
  const stream = new SseStream(res, ctx.hub, access);
  let watcher: Watcher | undefined;
  let compactedAt: number | undefined;
  try {
    // Nothing is written to the sink before watch() returns, so the headers below go first.
    watcher = ctx.hub.watch(
      {
        ...range,
        fromRevision,
        prevKv: queryBool(q, 'prevKv'),
        noPut: queryBool(q, 'noPut'),
        noDelete: queryBool(q, 'noDelete'),
        owner: watchOwner(ctx, access),
      },
      stream,
    );
  } catch (err) {
    if (!(err instanceof CompactedError)) throw err;
    compactedAt = err.compactRevision;
  }
  reply.hijack();
  const headers: Record<string, string | number | string[]> = {};
  for (const [k, v] of Object.entries(reply.getHeaders())) if (v !== undefined) headers[k] = v;
  res.writeHead(200, {
    ...headers,
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache, no-transform',
    connection: 'keep-alive',
    'x-accel-buffering': 'no',
    'x-beacon-revision': String(ctx.hub.revision),
  });
  // Tell EventSource to reconnect quickly; the resume point travels in Last-Event-ID.
  stream.write('retry: 1000\n\n');
  if (compactedAt !== undefined) {
    stream.compacted(compactedAt);
    return reply;
  }
  // The client may have gone while the request was authenticated (a first-seen token is checked
  // asynchronously): its 'close' has fired already, so cancel now or the watcher stays forever.
  if (res.destroyed || res.socket?.destroyed === true) {
    watcher?.cancel();
    return reply;
  }
  access.onRevoked((r) => {
    watcher?.cancel();
    stream.revoked(r);
  });
  res.on('close', () => {
    access.dispose();
    watcher?.cancel();
  });
  return reply;
}

// -------------------------------------------------------------------------------------------------

/**
 * Registers `GET /v1/watch` (WebSocket), `GET /v1/watch/*` (SSE) and `GET /v1/configs/watch`.
 *
 * WebSocket frames, client → server: `{"type":"create","key","prefix"?,"rangeEnd"?,"fromRevision"?,
 * "prevKv"?,"noPut"?,"noDelete"?,"watchId"?}`, `{"type":"cancel","watchId"}`, `{"type":"progress"}`,
 * `{"type":"keepalive","lease"}`, `{"type":"auth","token"}` (a fresh credential of the same
 * principal, before the old one expires). Server → client: `created`, `events` (one per revision
 * per watch), `progress`, `compacted` (the watch is removed), `canceled`, `keepalive` (with `ttl`
 * in seconds), `authenticated` (`{"principal","expiresAt"}`) and `error`
 * (`{"error":{"code","message"}}`; the socket stays open, except when the connection's access
 * ended: `unauthenticated` then close 4401, or `permission_denied` then close 1008). More than
 * `maxWatchesPerConnection` watches on a socket, or `maxWatchesPerPrincipal` on the node, is an
 * error frame `too_many_requests` (SSE: HTTP 429).
 *
 * SSE (`?prefix&fromRevision&prevKv&noPut&noDelete`, `Last-Event-ID` resumes at id + 1):
 * `event: events` with `id: <revision>` and `{"revision","events"}`, `event: progress` with
 * `{"revision"}` when idle, `event: compacted` with `{"compactRevision"}` and the end of the stream.
 */
export function registerWatchRoutes(app: FastifyInstance, ctx: HttpContext): void {
  app.get('/v1/watch', { websocket: true }, (socket: WebSocket, req: FastifyRequest) => {
    new WatchConnection(ctx, new WsChannel(socket, ctx.hub.options, ctx.logger), new WatchAccess(ctx, req));
  });

  app.get('/v1/watch/*', (req, reply) => sseWatch(ctx, req, reply));

  registerConfigWatchRoutes(app, ctx);
}
