/**
 * The RESP listener: accepts connections (TCP or TLS), authenticates and authorises every
 * command against the same users, roles and prefix permissions as HTTP, routes each key to its
 * kind (the namespace rule: memory namespaces to the cache tier, everything else to the kv
 * core), runs MULTI/EXEC/WATCH, pub/sub and keyspace notifications.
 */
import { createServer as createTcpServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer, type TLSSocket } from 'node:tls';
import type { AuditLog } from '../../audit/index.js';
import { DEV_PRINCIPAL, PEER_PRINCIPAL, deniedError, type Action, type AuthService, type Principal } from '../../auth/index.js';
import { globLiteralPrefix, globMatch, keySlot, type CacheTier } from '../../cache/index.js';
import type { PolicyStore } from '../../config/index.js';
import { FIRST_USER_KEY, isSystemKey, prefixEnd, type AuditContext, type RevisionEvents, type Store } from '../../kv/index.js';
import type { Logger } from '../../obs/index.js';
import { word } from './args.js';
import { keyName } from './cmd-strings.js';
import { NO_REPLY, REDIS_VERSION } from './cmd-server.js';
import { COMMANDS, commandDocs, commandInfo, lastKeyArg, type CommandSpec } from './commands.js';
import { BLOCK, MAX_TIMER_MS, blockTimeoutMs, blockingAofForm, isBlock, timeoutArg } from './cmd-blocking.js';
import { Connection, type ConnectionHost, type Outcome } from './connection.js';
import { CROSSSLOT, ClusterRouter, type ClusterRouterOptions } from './routing.js';
import { Replicator, type Acks } from './replication.js';
import type { ConnState, Ctx, ServerApi } from './context.js';
import { toRespError } from './errors.js';
import { DurableTx, Projection, RespError, RetryError, decodeDurableHash, type Keyspace } from './keyspace.js';
import { MemoryKeyspace, isOutOfMemory } from './memory.js';
import { R, type Reply } from './protocol.js';
import { errorMessage } from '../../errors.js';

/** Default RESP port (Redis's 6379 + 1, next to Beacon's HTTP 7379). */
export const DEFAULT_RESP_PORT = 6380;

/** Options of {@link RespServer}. */
export interface RespServerOptions {
  store: Store;
  policies: PolicyStore;
  auth: AuthService;
  audit: AuditLog;
  logger: Logger;
  /** The cache tier (memory namespaces); without it every key is durable. */
  cache?: CacheTier;
  /** Beacon's version, shown by INFO as `beacon_version`. */
  version: string;
  /**
   * PEM certificate and key: the port speaks TLS only (`redis-cli --tls`). With `clientCa`,
   * client certificates are asked for: one signed by that CA authenticates the connection as
   * its subject CN (as on HTTP: `--tls-client-role`, or the user of that name), before any AUTH.
   */
  tls?: { cert: Buffer; key: Buffer; clientCa?: Buffer };
  /**
   * The cache tier across nodes (PostgreSQL mode): memory keys are served by their slot's
   * primary (docs/operations/cache-cluster.md). Without it CLUSTER answers "disabled".
   */
  cluster?: Omit<ClusterRouterOptions, 'peerSecret'>;
}

/** The peer-only commands ({@link RespServer.peerCommand}). */
const PEER_PUBLISH = Buffer.from('BEACON.PUBLISH');
const PEER_KEYEVENT = Buffer.from('BEACON.KEYEVENT');

/** Retries of a durable command whose read keys changed before its commit (compare-and-swap). */
const MAX_CAS_RETRIES = 100;
/** SCAN cursors remembered (each is a resume point); the oldest are forgotten first. */
const MAX_CURSORS = 100_000;
/** Seconds between re-checks of a connection's principal (a deleted user or revoked key loses access). */
const REFRESH_MS = 1000;

const EXEC_FAMILY = new Set(['multi', 'exec', 'discard', 'watch', 'unwatch', 'quit', 'reset']);
const SUBSCRIBED_OK = new Set(['subscribe', 'psubscribe', 'unsubscribe', 'punsubscribe', 'ping', 'quit', 'reset', 'ssubscribe', 'sunsubscribe']);

/** A SCAN resume point. */
type CursorState = { phase: 'durable'; next: string } | { phase: 'memory'; cursor: string };

/** Redis's notify-keyspace-events class of an event name. */
function eventClass(ev: string): string {
  switch (ev) {
    case 'del':
    case 'expire':
    case 'rename_from':
    case 'rename_to':
    case 'persist':
    case 'copy_to':
      return 'g';
    case 'new':
      return 'n';
    case 'set':
    case 'setrange':
    case 'incrby':
    case 'incrbyfloat':
    case 'append':
      return '$';
    case 'expired':
      return 'x';
    case 'evicted':
      return 'e';
    default:
      if (ev.startsWith('h')) return 'h';
      if (ev.startsWith('z')) return 'z';
      if (ev.startsWith('s')) return 's';
      return 'l';
  }
}

/** `name|subcommand` for CLIENT LIST's `cmd=` (Redis 7), when the subcommand is a plausible name; else `name`. */
function containerCmd(name: string, sub: Buffer | undefined): string {
  if (sub === undefined || sub.length > 32) return name;
  const s = sub.toString('latin1').toLowerCase();
  return /^[a-z][a-z-]*$/.test(s) ? `${name}|${s}` : name;
}

/** A client parked by a blocking command. */
interface Blocked {
  conn: Connection;
  spec: CommandSpec;
  argv: Buffer[];
  args: Buffer[];
  /** The keys it waits on, each once. */
  keys: string[];
  resolve: (r: Reply) => void;
  /** ms since the epoch; 0 = forever. */
  deadline: number;
  timer: NodeJS.Timeout | undefined;
}

/** The RESP listener of one node. */
export class RespServer implements ServerApi, ConnectionHost {
  readonly dev: boolean;
  readonly outputPauseBytes = 1024 * 1024;
  pubsubLimit = { hard: 32 * 1024 * 1024, soft: 8 * 1024 * 1024, softSeconds: 60 };
  queryBufferLimit = 1024 * 1024 * 1024;
  /** Most client connections at once (Redis's `maxclients`, CONFIG SET-able); one more is told so and closed. */
  maxClients = 100_000;
  private server: Server | undefined;
  private readonly conns = new Map<number, Connection>();
  private readonly channels = new Map<string, Set<Connection>>();
  private readonly patternSubs = new Map<string, Set<Connection>>();
  private readonly memoryWatch = new Map<string, Set<Connection>>();
  /** Clients parked by a blocking command, in arrival order per key (Redis serves them FIFO). */
  private readonly blockedOn = new Map<string, Blocked[]>();
  private readonly blockedConns = new Map<number, Blocked>();
  /** Keys written since the last serve that have blocked clients. */
  private readonly readyKeys = new Set<string>();
  private servingBlocked = false;
  /** What {@link dispatch} made of the command being run: it ran, it was refused before running, or MULTI queued it. */
  private verdict: 'ran' | 'rejected' | 'queued' = 'ran';
  /** The `performance.now()` reading taken when the last command ended ({@link ConnectionHost.clock}). */
  clock = 0;
  /** The spec of the command {@link dispatch} is running (undefined: unknown command). */
  private running: CommandSpec | undefined;
  /** INFO commandstats: per command name. */
  private readonly cmdStats = new Map<string, { calls: number; usec: number; rejected: number; failed: number }>();
  /** INFO errorstats: error replies by their code word (`ERR`, `WRONGTYPE`…). */
  private readonly errorStats = new Map<string, number>();
  /** SLOWLOG entries, newest first. */
  private readonly slowlog: { id: number; time: number; usec: number; args: Buffer[]; addr: string; name: string }[] = [];
  private slowlogNextId = 0;
  /** `slowlog-log-slower-than`, µs: commands at least this slow are logged; negative: none. */
  slowlogSlowerThan = 10_000;
  /** `slowlog-max-len`: entries kept. */
  slowlogMaxLen = 128;
  private readonly memory: MemoryKeyspace | undefined;
  private readonly cursors = new Map<number, CursorState>();
  private nextCursor = 1;
  private notifyFlags = '';
  private readonly stats = { commands: 0, connections: 0, rejected: 0, durableHits: 0, durableMisses: 0, startedAt: Date.now() };
  private readonly unsubscribeStore: () => void;
  private readonly cacheListeners: (() => void)[] = [];
  private port = 0;
  private sweepTimer: NodeJS.Timeout | undefined;
  /** Redis's encoding thresholds (CONFIG SET accepts them; they change nothing here), with Redis 7.2's defaults. */
  private readonly encodingKnobs = new Map<string, string>([
    ['hash-max-listpack-entries', '128'],
    ['hash-max-listpack-value', '64'],
    ['hash-max-ziplist-entries', '128'],
    ['hash-max-ziplist-value', '64'],
    ['list-max-listpack-size', '-2'],
    ['list-max-ziplist-size', '-2'],
    ['list-compress-depth', '0'],
    ['set-max-intset-entries', '512'],
    ['set-max-listpack-entries', '128'],
    ['set-max-listpack-value', '64'],
    ['zset-max-listpack-entries', '128'],
    ['zset-max-listpack-value', '64'],
    ['zset-max-ziplist-entries', '128'],
    ['zset-max-ziplist-value', '64'],
  ]);
  private readonly deps: ConstructorParameters<typeof DurableTx>[0];
  private readonly router: ClusterRouter | undefined;
  private readonly replicator: Replicator | undefined;

  constructor(private readonly o: RespServerOptions) {
    this.dev = o.auth.dev;
    this.router =
      o.cluster === undefined
        ? undefined
        : new ClusterRouter({
            ...o.cluster,
            peerSecret: this.dev ? undefined : () => o.auth.peerSecret(),
            factorOf: (key) => o.cache?.namespaceOf(key)?.replicationFactor ?? 1,
            maxFactor: () => this.maxFactor(),
          });
    if (this.router !== undefined && o.cluster !== undefined && o.cache !== undefined) {
      const replicator = new Replicator({
        router: this.router,
        slots: o.cluster.slots,
        cache: o.cache,
        logger: o.logger,
        exec: this.aofExecutor(),
        maxFactor: () => this.maxFactor(),
      });
      this.replicator = replicator;
      o.cluster.slots.onSettled = (prev, ring) => replicator.copies(prev, ring);
      o.cluster.slots.onHandover = (ring, slots) => replicator.handover(ring, slots);
      o.cluster.slots.onHandedOver = (ring, slots) => replicator.copies(undefined, ring, slots);
      o.cluster.slots.beforeApply = () => replicator.finishDrops();
    }
    this.deps = { store: o.store, policies: o.policies, projection: new Projection(), canReadSecret: (p, key) => o.auth.canReadSecret(p, key) };
    this.memory = o.cache !== undefined ? new MemoryKeyspace(o.cache) : undefined;
    this.unsubscribeStore = o.store.subscribe((ev) => this.onCommit(ev));
    const cache = o.cache;
    if (cache !== undefined) {
      const onExpired = (key: string): void => this.memoryChanged(key, 'expired');
      const onEvicted = (key: string): void => this.memoryChanged(key, 'evicted');
      // A write over HTTP or an origin fill: notifications, WATCH and blocked clients as for our own.
      const onOutside = (event: string, key: string): void => {
        this.memoryChanged(key, event);
        if (this.readyKeys.size > 0) this.serveBlocked();
      };
      cache.on('expired', onExpired);
      cache.on('evicted', onEvicted);
      cache.on('notify', onOutside);
      this.cacheListeners.push(
        () => cache.off('expired', onExpired),
        () => cache.off('evicted', onEvicted),
        () => cache.off('notify', onOutside),
      );
      const replicator = this.replicator;
      if (replicator !== undefined) {
        // Such a write reaches the slot's replicas as ours do; a sync namespace's caller waits for them.
        cache.replicateWrite = (key, argv) => {
          const acks = replicator.replicate(key, [argv]);
          if (acks === undefined || !replicator.isSync(key)) return undefined;
          return acks.then((a) => (a.error === undefined ? undefined : `${a.wanted - a.acked} of ${a.wanted} replicas did not acknowledge it (${a.error})`));
        };
        this.cacheListeners.push(() => (cache.replicateWrite = undefined));
      }
    }
  }

  /**
   * Listens on `host:port` (0 picks a free port). Resolves with the bound port.
   * @throws when the port is taken.
   */
  async listen(host: string, port: number): Promise<number> {
    const onConn = (socket: Socket): void => {
      if (this.conns.size >= this.maxClients) {
        // Counted here, not by Node's server.maxConnections: an adopted socket (see Connection)
        // leaves the server's own count.
        this.stats.rejected++;
        socket.end('-ERR max number of clients reached\r\n', () => socket.destroy());
        return;
      }
      this.stats.connections++;
      const c = new Connection(socket, this, this.o.tls === undefined);
      if (this.dev) c.principal = DEV_PRINCIPAL;
      else if (this.o.tls?.clientCa !== undefined) c.principal = this.certificatePrincipal(socket as TLSSocket);
      this.conns.set(c.id, c);
    };
    const tls = this.o.tls;
    const server =
      tls !== undefined
        ? createTlsServer({ cert: tls.cert, key: tls.key, ...(tls.clientCa !== undefined ? { ca: tls.clientCa, requestCert: true, rejectUnauthorized: false } : {}) }, onConn)
        : createTcpServer({ pauseOnConnect: true }, onConn);
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host, port, backlog: 4096 }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', (err) => this.o.logger.warn({ err }, 'RESP listener error'));
    this.port = (server.address() as AddressInfo).port;
    if (!this.dev) {
      // A subscriber sends no commands and may receive no message for hours: re-check the
      // subscribed connections every REFRESH_MS, so an expired token, a deleted or disabled user
      // or a revoked API key loses its subscriptions without waiting for a message.
      this.sweepTimer = setInterval(() => this.sweepSubscribers(), REFRESH_MS);
      this.sweepTimer.unref();
    }
    return this.port;
  }

  /** Closes the subscribed connections whose principal is no longer valid (see {@link stillValid}). */
  private sweepSubscribers(): void {
    const now = Date.now();
    for (const c of this.conns.values()) if (c.channels.size + c.patterns.size > 0) this.stillValid(c, now);
  }

  /** Stops listening and closes every connection. */
  async close(): Promise<void> {
    if (this.sweepTimer !== undefined) clearInterval(this.sweepTimer);
    this.router?.close();
    this.unsubscribeStore();
    for (const off of this.cacheListeners) off();
    for (const c of [...this.conns.values()]) c.kill();
    const server = this.server;
    if (server !== undefined) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  closed(conn: ConnState): void {
    const c = conn as Connection;
    this.conns.delete(c.id);
    for (const ch of c.channels) this.unsubscribe(c, ch, false);
    for (const p of c.patterns) this.unsubscribe(c, p, true);
    this.unwatch(c);
    const b = this.blockedConns.get(c.id);
    if (b !== undefined) {
      this.unblock(b);
      b.resolve(R.nullArray);
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Command execution

  /**
   * Runs one command, then accounts for it: INFO commandstats and errorstats, and the slow log
   * when its synchronous part took at least `slowlog-log-slower-than` µs (a durable commit or a
   * blocked wait is not part of that time, as Redis leaves blocking out of a command's time).
   */
  execute(conn: Connection, argv: Buffer[], inflight: boolean, startedAt = performance.now()): Outcome | Promise<Outcome> {
    this.verdict = 'ran';
    this.running = undefined;
    const o = this.dispatch(conn, argv, inflight);
    const t1 = performance.now();
    this.clock = t1;
    if (o === WAIT) this.stats.commands--; // it runs (and counts) again once the writes in flight settle
    if (o === WAIT || (this.verdict as string) === 'queued') return o;
    this.account(conn, argv, (t1 - startedAt) * 1000, o);
    return o;
  }

  private account(conn: Connection, argv: Buffer[], usec: number, o: Outcome | Promise<Outcome>): void {
    const r = o instanceof Promise || o.kind !== 'reply' ? undefined : o.reply;
    const failed = r !== undefined && r.t === 'error';
    if (failed) {
      const code = errorCode(r.v as string);
      this.errorStats.set(code, (this.errorStats.get(code) ?? 0) + 1);
    }
    const spec = this.running;
    if (spec === undefined) return; // an unknown command counts in errorstats only, as in Redis
    // A container command counts per subcommand (`config|set`), as Redis 7 does.
    const name = spec.container === true ? conn.lastCmd : spec.name;
    let st = this.cmdStats.get(name);
    if (st === undefined) this.cmdStats.set(name, (st = { calls: 0, usec: 0, rejected: 0, failed: 0 }));
    if (this.verdict === 'rejected') {
      st.rejected++;
      return;
    }
    st.calls++;
    st.usec += usec;
    if (failed) st.failed++;
    if (this.slowlogSlowerThan >= 0 && usec >= this.slowlogSlowerThan) this.slowlogPush(conn, redacted(spec.name, argv), usec);
  }

  private slowlogPush(conn: Connection, argv: Buffer[], usec: number): void {
    const args: Buffer[] = [];
    const shown = argv.length > SLOWLOG_MAX_ARGS ? SLOWLOG_MAX_ARGS - 1 : argv.length;
    for (let i = 0; i < shown; i++) {
      const a = argv[i] as Buffer;
      args.push(a.length > SLOWLOG_MAX_STRING ? Buffer.concat([a.subarray(0, SLOWLOG_MAX_STRING), Buffer.from(`... (${a.length - SLOWLOG_MAX_STRING} more bytes)`)]) : Buffer.from(a));
    }
    if (shown < argv.length) args.push(Buffer.from(`... (${argv.length - shown} more arguments)`));
    this.slowlog.unshift({ id: this.slowlogNextId++, time: Math.floor(Date.now() / 1000), usec: Math.round(usec), args, addr: conn.addr, name: conn.name });
    if (this.slowlog.length > this.slowlogMaxLen) this.slowlog.length = this.slowlogMaxLen;
  }

  slowlogGet(count: number): Reply {
    const n = count < 0 ? this.slowlog.length : Math.min(count, this.slowlog.length);
    return R.array(
      this.slowlog.slice(0, n).map((e) => R.array([R.int(e.id), R.int(e.time), R.int(e.usec), R.array(e.args.map((a) => R.bulk(a))), R.bulk(e.addr), R.bulk(e.name)])),
    );
  }

  slowlogLen(): number {
    return this.slowlog.length;
  }

  slowlogReset(): void {
    this.slowlog.length = 0;
  }

  private dispatch(conn: Connection, argv: Buffer[], inflight: boolean): Outcome | Promise<Outcome> {
    const spec = specOf(argv[0] as Buffer);
    this.running = spec;
    const name = spec?.name ?? (argv[0] as Buffer).toString('latin1').toLowerCase();
    const args = argv.slice(1);
    this.stats.commands++;
    conn.lastActive = Date.now();
    if (spec === undefined && this.router !== undefined && conn.principal !== undefined && this.router.isPeer(conn, this.dev)) {
      if (name === 'beacon.peer' && args.length === 2) return this.peerHello(conn, args[0] as Buffer, args[1] as Buffer);
      const r = this.replicator?.handle(name, args) ?? this.peerCommand(name, args);
      if (r instanceof Promise) return r.then(reply);
      if (r !== undefined) return reply(r);
    }
    if (spec === undefined) {
      conn.lastCmd = 'NULL';
      if (conn.multi !== undefined) conn.multiError = true;
      return reply(unknownCommand(argv));
    }
    conn.lastCmd = spec.container === true ? containerCmd(name, argv[1]) : name;
    if (!arityOk(spec, argv.length)) {
      if (conn.multi !== undefined) conn.multiError = true;
      this.verdict = 'rejected';
      return reply(R.error(`ERR wrong number of arguments for '${name}' command`));
    }
    if (conn.principal !== undefined && !this.dev) {
      const exp = conn.principal.expiresAt;
      if (exp !== undefined && exp <= conn.lastActive) {
        // An access token used as the password authenticates the connection until its exp.
        conn.principal = undefined;
        if (conn.multi !== undefined) conn.multiError = true;
        this.verdict = 'rejected';
        return reply(R.error('NOAUTH the token this connection authenticated with has expired; AUTH again'));
      }
      if (conn.lastActive - conn.refreshedAt > REFRESH_MS) {
        conn.refreshedAt = conn.lastActive;
        conn.principal = this.o.auth.refresh(conn.principal);
      }
    }
    if (conn.principal === undefined && spec.noauth !== true) {
      if (conn.multi !== undefined) conn.multiError = true;
      this.verdict = 'rejected';
      return reply(R.error('NOAUTH Authentication required.'));
    }
    if (conn.protocol === 2 && conn.channels.size + conn.patterns.size > 0 && !SUBSCRIBED_OK.has(name)) {
      this.verdict = 'rejected';
      return reply(R.error(`ERR Can't execute '${name}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context`));
    }
    if (EXEC_FAMILY.has(name)) {
      if (inflight) return WAIT;
      return this.transactionCommand(conn, name, args);
    }
    if (conn.multi !== undefined) {
      // Counted when EXEC runs the transaction (as `exec`), not when queued.
      this.verdict = 'queued';
      return reply(this.queue(conn, spec, argv));
    }
    let keys: string[];
    try {
      if (conn.principal !== undefined && conn.principal.via !== 'peer') this.o.auth.checkRate(conn.principal);
      keys = this.authorize(conn, spec, args);
    } catch (err) {
      this.verdict = 'rejected';
      return reply(toRespError(err, this.o.logger));
    }
    try {
      if (keys.length === 0) {
        if (inflight) return WAIT;
        return this.runUnkeyed(conn, spec, args);
      }
      return this.runKeyed(conn, spec, argv, args, keys, inflight);
    } catch (err) {
      return reply(toRespError(err, this.o.logger));
    }
  }

  /** Checks the caller may run `spec` on its keys; returns the keys. @throws RespError NOPERM. */
  private authorize(conn: Connection, spec: CommandSpec, args: Buffer[]): string[] {
    const p = conn.principal as Principal;
    let admin = spec.access === 'admin';
    if (spec.name === 'config') {
      const sub = word(args[0]);
      admin = sub === 'SET' || sub === 'RESETSTAT' || sub === 'REWRITE';
    }
    if (admin && !this.o.auth.can(p, 'admin')) {
      this.denied(conn, spec.name, 'admin');
      throw new RespError(`NOPERM '${p.name}' may not run the '${spec.name}${spec.name === 'config' ? `|${word(args[0]).toLowerCase()}` : ''}' command (administrators only)`);
    }
    const action: Action = spec.access === 'write' ? 'write' : 'read';
    if (spec.movableKeys !== undefined) {
      // Keys after a count (ZUNIONSTORE, SINTERCARD…); the count is validated here, first.
      const at = spec.movableKeys(args);
      const keys = new Array<string>(at.length);
      for (let k = 0; k < at.length; k++) keys[k] = this.permitted(conn, p, spec.name, action, args[at[k] as number]);
      return keys;
    }
    const last = lastKeyArg(spec, args.length);
    if (last === 0) return NO_KEYS;
    const [first, , step] = spec.keys;
    const keys = new Array<string>(Math.floor((last - first) / step) + 1);
    for (let i = first, k = 0; i <= last; i += step, k++) keys[k] = this.permitted(conn, p, spec.name, action, args[i - 1]);
    return keys;
  }

  /** The key named by `arg`, once `p` may `action` it. @throws RespError NOPERM (and audits the refusal). */
  private permitted(conn: Connection, p: Principal, cmd: string, action: Action, arg: Buffer | undefined): string {
    const key = keyName(arg);
    if (!this.o.auth.can(p, action, { key })) {
      this.denied(conn, cmd, action, key);
      throw new RespError(`NOPERM ${deniedError(p, action, { key }).message}`);
    }
    return key;
  }

  private denied(conn: Connection, cmd: string, need: string, key?: string): void {
    this.o.audit.note({
      principal: conn.principal?.name ?? 'anonymous',
      action: `resp.${cmd}`,
      outcome: 'denied',
      key: key ?? null,
      requestId: `resp-${conn.id}`,
      source: conn.addr,
      details: JSON.stringify({ need }),
    });
  }

  private kindOfKeys(keys: string[]): 'durable' | 'memory' {
    const cache = this.o.cache;
    if (cache === undefined) return 'durable';
    const first = cache.isMemoryKey(keys[0] as string);
    for (let i = 1; i < keys.length; i++) {
      if (cache.isMemoryKey(keys[i] as string) !== first) {
        throw new RespError('CROSSKIND the keys of one command must all be durable or all in memory namespaces (see docs/resp.md)');
      }
    }
    return first ? 'memory' : 'durable';
  }

  private ctx(conn: Connection, ks: Keyspace): Ctx {
    return { conn, srv: this, ks };
  }

  private runUnkeyed(conn: Connection, spec: CommandSpec, args: Buffer[]): Outcome | Promise<Outcome> {
    try {
      const r = spec.handler(this.ctx(conn, this.placeholder(conn)), args);
      if (r instanceof Promise) {
        return r.then(
          (v) => replyOrNone(v),
          (err: unknown) => reply(toRespError(err, this.o.logger)),
        );
      }
      return replyOrNone(r);
    } catch (err) {
      return reply(toRespError(err, this.o.logger));
    }
  }

  /** A durable keyspace for commands that have no keys (never written to). */
  private placeholder(conn: Connection): Keyspace {
    return new DurableTx(this.durableDeps(), conn.principal as Principal);
  }

  private durableDeps(): ConstructorParameters<typeof DurableTx>[0] {
    return this.deps;
  }

  private audit(conn: Connection, name: string): AuditContext {
    return { principal: conn.principal?.name ?? 'anonymous', action: `resp.${name}`, requestId: `resp-${conn.id}`, source: conn.addr };
  }

  private runKeyed(conn: Connection, spec: CommandSpec, argv: Buffer[], args: Buffer[], keys: string[], inflight: boolean): Outcome | Promise<Outcome> {
    const kind = this.kindOfKeys(keys);
    if (kind === 'memory') {
      // A miss may read through to the namespace's origin only where the slot's primary serves it.
      let primary = true;
      if (this.router !== undefined) {
        const to = this.router.route(conn, keys, this.dev, spec.access === 'read');
        if (to.to === 'reply') return reply(to.reply);
        if (to.to === 'here' && to.replica === true) primary = false;
        if (to.to === 'peer') {
          let blockMs: number | undefined;
          try {
            if (spec.blocking === true) blockMs = blockTimeoutMs(timeoutArg(spec.name, argv));
          } catch (err) {
            return reply(toRespError(err, this.o.logger));
          }
          conn.forwarding++;
          const promise = this.router.forward(argv, to.addr, to.slot, conn.protocol, blockMs).finally(() => conn.forwarding--);
          return { kind: 'pending', blind: true, promise };
        }
      }
      // Forwards in flight are for other nodes' slots: a command on this node's keys need not wait for them.
      if (inflight && conn.pending > conn.forwarding) return WAIT;
      return this.runMemoryOne(conn, spec, argv, args, false, primary);
    }
    if (spec.memoryOnly === true) {
      return reply(R.error(`ERR '${spec.name}' needs a memory namespace: '${keys[0]}' is a durable key (lists, sets and sorted sets live in memory namespaces; see docs/resp.md)`));
    }
    const tx = new DurableTx(this.durableDeps(), conn.principal as Principal, spec.access === 'write');
    let r: Reply;
    try {
      r = spec.handler(this.ctx(conn, tx), args) as Reply;
    } catch (err) {
      if (inflight && tx.hasReads) return WAIT;
      return reply(toRespError(err, this.o.logger));
    }
    if (inflight && tx.hasReads) return WAIT;
    if (spec.access === 'read') this.countDurable(tx, r);
    if (tx.writes.size === 0) return reply(r);
    const blind = !tx.hasReads && !tx.needsLease;
    return { kind: 'pending', blind, promise: this.commitDurable(conn, spec, args, tx, r) };
  }

  private countDurable(tx: DurableTx, r: Reply): void {
    if (r.t === 'null') this.stats.durableMisses++;
    else if (tx.reads.size > 0) this.stats.durableHits++;
  }

  private async commitDurable(conn: Connection, spec: CommandSpec, args: Buffer[], tx0: DurableTx, r0: Reply): Promise<Reply> {
    let tx = tx0;
    let r = r0;
    for (let attempt = 0; ; attempt++) {
      try {
        await tx.commit(new Map(), this.audit(conn, spec.name));
        return r;
      } catch (err) {
        if (!(err instanceof RetryError) || attempt >= MAX_CAS_RETRIES) return toRespError(err, this.o.logger);
      }
      tx = new DurableTx(this.durableDeps(), conn.principal as Principal, true);
      try {
        r = spec.handler(this.ctx(conn, tx), args) as Reply;
      } catch (err) {
        return toRespError(err, this.o.logger);
      }
      if (tx.writes.size === 0) return r;
    }
  }

  /**
   * Runs one memory command outside MULTI: the common case of a cache workload, kept free of
   * the per-batch arrays of {@link runMemory}. Synchronous unless `appendfsync always` must
   * wait for the fsync before the reply, or a GET's miss is fetched from its namespace's origin
   * (`fromOrigin`: this node serves the key's slot as its primary, or there is no cluster).
   */
  private runMemoryOne(conn: Connection, spec: CommandSpec, argv: Buffer[], args: Buffer[], parked = false, fromOrigin = false): Outcome {
    const mem = this.memory as MemoryKeyspace;
    const cache = this.o.cache as CacheTier;
    mem.begin(spec.access === 'read');
    mem.fetching = fromOrigin;
    let r: Reply;
    try {
      if (spec.access === 'write') cache.ensureMemory();
      const out = spec.handler(conn.memoryCtx ?? (conn.memoryCtx = this.ctx(conn, mem)), args);
      mem.fetching = false;
      if (out instanceof Promise) return { kind: 'pending', blind: false, promise: this.settled(out) };
      r = out;
    } catch (err) {
      r = toRespError(err, this.o.logger);
    }
    const changes = mem.changes;
    if (changes.length === 0) {
      if (spec.blocking === true && !parked && isBlock(r)) return this.block(conn, spec, argv, args);
      return reply(r);
    }
    const logging = cache.config.appendonly;
    if (logging) this.aofFormInto(cache, cache, spec, argv, r, changes);
    // The key's own namespace decides (a namespace created a moment ago replicates its first write).
    const replKey = this.replicator !== undefined ? (changes[0]?.key as string) : undefined;
    const acks = replKey !== undefined && this.replicator?.factorOf(replKey) !== 1 ? this.replicate(conn, replKey, this.aofForm(spec, argv, r, changes)) : undefined;
    for (const ch of changes) this.memoryChanged(ch.key, ch.event);
    // Emptied in place: the next command reuses the array (nothing above keeps it).
    changes.length = 0;
    if (this.readyKeys.size > 0) this.serveBlocked();
    if (acks !== undefined) return { kind: 'pending', blind: false, promise: this.whenReplicated(acks, r) };
    if (logging && cache.config.appendfsync === 'always') {
      return {
        kind: 'pending',
        blind: false,
        promise: cache.durable().then(
          () => r,
          (err: unknown) => toRespError(err, this.o.logger),
        ),
      };
    }
    return reply(r);
  }

  /** Runs memory commands (one, or a MULTI's) at once; `asExec` wraps the replies in one array. */
  private runMemory(conn: Connection, spec: CommandSpec | undefined, cmds: Buffer[][], asExec: boolean): Outcome | Promise<Outcome> {
    const mem = this.memory as MemoryKeyspace;
    const cache = this.o.cache as CacheTier;
    const replies: (Reply | Promise<Reply>)[] = [];
    let wrote = false;
    let later = false;
    const aof: Buffer[][] = [];
    const replicating = this.replicator !== undefined && cmds.some((argv) => this.replicatedCommand(argv));
    let replKey: string | undefined;
    const logging = cache.config.appendonly || replicating;
    for (const argv of cmds) {
      const s = spec ?? (COMMANDS.get((argv[0] as Buffer).toString('latin1').toLowerCase()) as CommandSpec);
      mem.begin(s.access === 'read');
      let r: Reply;
      try {
        if (spec === undefined) keyPositions(s, argv.slice(1)); // EXEC: a bad key count answers its error here (see queue)
        if (s.access === 'write') cache.ensureMemory();
        const out = s.handler(this.ctx(conn, mem), argv.slice(1));
        if (out instanceof Promise) {
          // A keyless command that completes later (CONFIG SET in a MULTI): its reply takes its place.
          replies.push(this.settled(out));
          later = true;
          continue;
        }
        r = out;
      } catch (err) {
        r = toRespError(err, this.o.logger);
      }
      replies.push(r);
      if (mem.changes.length > 0) {
        wrote = true;
        const changes = mem.changes;
        mem.changes = [];
        replKey ??= changes[0]?.key;
        if (logging) aof.push(...this.aofForm(s, argv, r, changes));
        for (const ch of changes) this.memoryChanged(ch.key, ch.event);
      }
    }
    if (aof.length > 0 && cache.config.appendonly) {
      // A MULTI replays all or nothing: wrapped as Redis writes it.
      if (asExec && aof.length > 1) cache.propagate([Buffer.from('MULTI')]);
      for (const a of aof) cache.propagate(a);
      if (asExec && aof.length > 1) cache.propagate([Buffer.from('EXEC')]);
    }
    const acks = replicating && replKey !== undefined ? this.replicate(conn, replKey, aof) : undefined;
    if (acks !== undefined) {
      const all = Promise.all(replies);
      return { kind: 'pending', blind: false, promise: all.then((rs) => this.whenReplicated(acks, whole(rs))) };
    }
    if (this.readyKeys.size > 0) this.serveBlocked();
    const whole = (rs: Reply[]): Reply => (asExec ? R.array(rs) : (rs[0] as Reply));
    const synced = wrote && cache.config.appendonly && cache.config.appendfsync === 'always';
    if (synced || later) {
      const all = Promise.all(replies);
      return {
        kind: 'pending',
        blind: false,
        promise: (synced ? cache.durable().then(() => all) : all).then(whole, (err: unknown) => toRespError(err, this.o.logger)),
      };
    }
    return reply(whole(replies as Reply[]));
  }

  /** The reply of a command that completes later; a rejection becomes its error reply (never an unhandled rejection). */
  private settled(p: Promise<Reply>): Promise<Reply> {
    return p.then(
      (v) => (v === NO_REPLY ? R.null : v),
      (err: unknown) => toRespError(err, this.o.logger),
    );
  }

  /** The AOF form of an applied memory write: relative expiries made absolute, random pops as SREM. */
  private aofForm(spec: CommandSpec, argv: Buffer[], r: Reply, changes: { key: string; event: string }[]): Buffer[][] {
    const cache = this.o.cache as CacheTier;
    const out: Buffer[][] = [];
    const propagateTo = { propagate: (a: Buffer[]): void => void out.push(a) };
    this.aofFormInto(propagateTo, cache, spec, argv, r, changes);
    return out;
  }

  private aofFormInto(sink: { propagate(a: Buffer[]): void }, cache: CacheTier, spec: CommandSpec, argv: Buffer[], r: Reply, changes: { key: string; event: string }[]): void {
    const B = (s: string | number): Buffer => Buffer.from(String(s));
    const key = argv[1] as Buffer;
    const keyStr = changes[0]?.key ?? '';
    const abs = (): number => cache.expireTimeMs(keyStr);
    if (spec.blocking === true) {
      const form = blockingAofForm(spec.name, argv, keyStr);
      if (form !== undefined) sink.propagate(form);
      return;
    }
    switch (spec.name) {
      case 'set': {
        const out: Buffer[] = [];
        out.push(argv[0] as Buffer, key, argv[2] as Buffer);
        for (let i = 3; i < argv.length; i++) {
          const w = word(argv[i]);
          if (w === 'EX' || w === 'PX' || w === 'EXAT' || w === 'PXAT') {
            out.push(B('PXAT'), B(abs()));
            i++;
          } else if (w !== 'GET') out.push(argv[i] as Buffer);
        }
        sink.propagate(out);
        return;
      }
      case 'setex':
      case 'psetex':
        sink.propagate([B('SET'), key, argv[3] as Buffer, B('PXAT'), B(abs())]);
        return;
      case 'expire':
      case 'pexpire':
      case 'expireat':
      case 'pexpireat':
      case 'getex':
      case 'persist': {
        const t = abs();
        if (t === -2) sink.propagate([B('DEL'), key]);
        else if (t === -1) sink.propagate([B('PERSIST'), key]);
        else sink.propagate([B('PEXPIREAT'), key, B(t)]);
        return;
      }
      case 'incrbyfloat':
        if (r.t === 'bulk') sink.propagate([B('SET'), key, r.v as Buffer, B('KEEPTTL')]);
        return;
      case 'hincrbyfloat':
        if (r.t === 'bulk') sink.propagate([B('HSET'), key, argv[2] as Buffer, typeof r.v === 'string' ? B(r.v) : r.v]);
        return;
      case 'spop': {
        const members = r.t === 'bulk' ? [r] : r.t === 'set' || r.t === 'array' ? r.v : [];
        const bufs = members.filter((m): m is { t: 'bulk'; v: Buffer } => m.t === 'bulk').map((m) => (typeof m.v === 'string' ? B(m.v) : m.v));
        if (bufs.length > 0) sink.propagate([B('SREM'), key, ...bufs]);
        return;
      }
      default:
        sink.propagate(argv);
    }
  }

  /** Records a memory key's change: keyspace notification, and WATCHers see it as touched. */
  private memoryChanged(key: string, event: string): void {
    if (this.memoryWatch.size > 0) {
      const w = this.memoryWatch.get(key);
      if (w !== undefined) {
        for (const c of w) {
          // Collecting a key that was already expired when WATCHed changes nothing it saw.
          if (event === 'expired' && c.watched.get(key)?.rev === 0) continue;
          c.watchDirty = true;
        }
      }
    }
    // In a cache cluster only the key's primary announces it (a replica expires its copy too),
    // and its events reach subscribers on the other nodes this way.
    const ring = this.o.cluster?.slots.ring;
    if (this.notifyFlags !== '' && (ring === undefined || ring.ownsKey(key))) {
      this.notify(event, key);
      this.router?.broadcast([PEER_KEYEVENT, Buffer.from(event, 'latin1'), Buffer.from(key, 'utf8')]);
    }
    if (this.blockedOn.size > 0 && this.blockedOn.has(key)) this.readyKeys.add(key);
  }

  // ---------------------------------------------------------------------------------------------
  // Blocking commands (BLPOP, BLMOVE, BZPOPMIN…; handlers in cmd-blocking.ts)

  /**
   * Parks `conn` after its blocking command found nothing: it waits on its keys until a write
   * serves it ({@link serveBlocked}) or its timeout answers a nil array. Later commands of the
   * connection wait behind it, as in Redis.
   */
  private block(conn: Connection, spec: CommandSpec, argv: Buffer[], args: Buffer[]): Outcome {
    const ms = blockTimeoutMs(timeoutArg(spec.name, argv));
    // BLMOVE and BRPOPLPUSH wait on their source only, not on the destination key.
    const at = keyPositions(spec, args);
    const keys = (spec.name === 'blmove' || spec.name === 'brpoplpush' ? at.slice(0, 1) : at).map((i) => keyName(args[i]));
    const promise = new Promise<Reply>((resolve) => {
      const b: Blocked = { conn, spec, argv, args, keys: [...new Set(keys)], resolve, deadline: ms === 0 ? 0 : Date.now() + ms, timer: undefined };
      for (const key of b.keys) {
        let q = this.blockedOn.get(key);
        if (q === undefined) this.blockedOn.set(key, (q = []));
        q.push(b);
      }
      this.blockedConns.set(conn.id, b);
      conn.blocked = true;
      if (ms > 0) this.armBlockTimer(b);
    });
    return { kind: 'pending', blind: false, promise };
  }

  commandKeys(argv: Buffer[]): Buffer[] {
    const spec = specOf(argv[0] as Buffer);
    if (spec === undefined) throw new RespError('ERR Invalid command specified');
    if (!arityOk(spec, argv.length)) throw new RespError('ERR Invalid number of arguments specified for command');
    const args = argv.slice(1);
    const at = keyPositions(spec, args);
    if (at.length === 0) throw new RespError('ERR The command has no key arguments');
    return at.map((i) => args[i] as Buffer);
  }

  canRead(conn: ConnState, key: string): boolean {
    const p = conn.principal;
    return p !== undefined && this.o.auth.can(p, 'read', { key });
  }

  unblockClient(id: number, error: boolean): boolean {
    const b = this.blockedConns.get(id);
    if (b === undefined) return false;
    this.unblock(b);
    b.resolve(error ? R.error('UNBLOCKED client unblocked via CLIENT UNBLOCK') : R.nullArray);
    return true;
  }

  private armBlockTimer(b: Blocked): void {
    const left = b.deadline - Date.now();
    b.timer = setTimeout(
      () => {
        if (b.deadline - Date.now() > 0) return this.armBlockTimer(b);
        this.unblock(b);
        b.resolve(R.nullArray);
      },
      Math.min(Math.max(left, 0), MAX_TIMER_MS),
    );
    b.timer.unref();
  }

  private unblock(b: Blocked): void {
    if (b.timer !== undefined) clearTimeout(b.timer);
    this.blockedConns.delete(b.conn.id);
    b.conn.blocked = false;
    for (const key of b.keys) {
      const q = this.blockedOn.get(key);
      if (q === undefined) continue;
      const i = q.indexOf(b);
      if (i >= 0) q.splice(i, 1);
      if (q.length === 0) this.blockedOn.delete(key);
    }
  }

  /**
   * Serves the clients blocked on the keys written since the last call, first come first
   * served, by running each one's command again now (its pops propagate, notify and wake others
   * as any command's). A client is woken only when the key holds the type it waits for (Redis
   * 7.2's rule: a SET on a key someone BLPOPs leaves them blocked).
   */
  private serveBlocked(): void {
    if (this.servingBlocked) return;
    this.servingBlocked = true;
    const cache = this.o.cache as CacheTier;
    try {
      for (const key of this.readyKeys) {
        this.readyKeys.delete(key);
        const queue = this.blockedOn.get(key);
        if (queue === undefined) continue;
        for (const b of queue.slice()) {
          const want = b.spec.group === 'sorted-set' ? 'zset' : 'list';
          if (cache.typeOf(key) !== want) break;
          const o = this.runMemoryOne(b.conn, b.spec, b.argv, b.args, true);
          if (o.kind === 'reply' && isBlock(o.reply)) continue;
          this.unblock(b);
          if (o.kind === 'reply') b.resolve(o.reply);
          else if (o.kind === 'pending') o.promise.then(b.resolve, (err: unknown) => b.resolve(toRespError(err, this.o.logger)));
          else b.resolve(BLOCK);
        }
      }
    } finally {
      this.servingBlocked = false;
    }
  }

  // ---------------------------------------------------------------------------------------------
  // MULTI / EXEC / WATCH

  private queue(conn: Connection, spec: CommandSpec, argv: Buffer[]): Reply {
    if (spec.noMulti === true) {
      conn.multiError = true;
      return R.error(`ERR Command not allowed inside a transaction`);
    }
    try {
      // Every queued command counts against the principal's rate limit, as outside MULTI: a
      // refusal aborts the transaction (EXECABORT), as any other command refused when queued.
      if (conn.principal !== undefined) this.o.auth.checkRate(conn.principal);
      if (!keysReadable(spec, argv.slice(1))) {
        // As Redis: a command whose key count is bad (ZUNIONSTORE d 0 …, SINTERCARD 9 k) is
        // queued, and answers its error inside EXEC's reply; it names no key, so it touches none.
        (conn.multi as Buffer[][]).push(argv);
        return R.simple('QUEUED');
      }
      const keys = this.authorize(conn, spec, argv.slice(1));
      if (keys.length > 0) {
        const kind = this.kindOfKeys(keys);
        if (kind === 'durable' && spec.memoryOnly === true) {
          conn.multiError = true;
          return R.error(`ERR '${spec.name}' needs a memory namespace: '${keys[0]}' is a durable key (see docs/resp.md)`);
        }
        const prev = (conn as Connection & { multiKind?: string }).multiKind;
        if (prev !== undefined && prev !== kind) {
          conn.multiAbort = 'EXECABORT Transaction discarded: it mixes durable keys and memory-namespace keys, which cannot commit atomically together (see docs/resp.md)';
          return R.error('CROSSKIND a transaction cannot mix durable keys and memory-namespace keys; EXEC will refuse it');
        }
        (conn as Connection & { multiKind?: string }).multiKind = kind;
        if (kind === 'memory' && this.router !== undefined) {
          const slotOf = conn as Connection & { multiSlot?: number };
          const slot = keySlot(keys[0] as string);
          if (slotOf.multiSlot !== undefined && slotOf.multiSlot !== slot) {
            conn.multiError = true;
            return R.error(CROSSSLOT);
          }
          const to = this.router.route(conn, keys, this.dev);
          if (to.to === 'reply') {
            conn.multiError = true;
            return to.reply;
          }
          slotOf.multiSlot = slot;
          // A plain client's transaction on another node's slot runs there, whole, at EXEC.
          if (to.to === 'peer') (conn as Connection & { multiForward?: string }).multiForward = to.addr;
        }
        // Redis refuses to queue a write that would be refused for memory now (OOM), aborting EXEC.
        if (kind === 'memory' && spec.access === 'write') this.o.cache?.ensureMemory();
      }
    } catch (err) {
      conn.multiError = true;
      return toRespError(err, this.o.logger);
    }
    (conn.multi as Buffer[][]).push(argv);
    return R.simple('QUEUED');
  }

  private endMulti(conn: Connection): void {
    conn.multi = undefined;
    conn.multiError = false;
    conn.multiAbort = undefined;
    (conn as Connection & { multiKind?: string }).multiKind = undefined;
    (conn as Connection & { multiSlot?: number }).multiSlot = undefined;
    (conn as Connection & { multiForward?: string }).multiForward = undefined;
  }

  /**
   * In a cache cluster, an error reply when `keys` (memory keys) are not served here: MOVED,
   * CROSSSLOT, TRYAGAIN or CLUSTERDOWN as {@link ClusterRouter.route} says, or — for a client
   * that does not speak cluster — the reason `what` (a transaction, WATCH) is not forwarded.
   */
  private unforwardable(conn: Connection, keys: string[], what: string): Reply | undefined {
    const to = this.router?.route(conn, keys, this.dev);
    if (to === undefined || to.to === 'here') return undefined;
    if (to.to === 'reply') return to.reply;
    return R.error(
      `ERR ${what} on slot ${to.slot} is not forwarded to the node that serves it (${to.addr}): send it there, or use a cluster client (see docs/operations/cache-cluster.md)`,
    );
  }

  private transactionCommand(conn: Connection, name: string, args: Buffer[]): Outcome | Promise<Outcome> {
    switch (name) {
      case 'multi':
        if (conn.multi !== undefined) return reply(R.error('ERR MULTI calls can not be nested'));
        conn.multi = [];
        return reply(R.ok);
      case 'discard':
        if (conn.multi === undefined) return reply(R.error('ERR DISCARD without MULTI'));
        this.endMulti(conn);
        this.unwatch(conn);
        return reply(R.ok);
      case 'watch': {
        if (conn.multi !== undefined) return reply(R.error('ERR WATCH inside MULTI is not allowed'));
        try {
          const spec = COMMANDS.get('watch') as CommandSpec;
          const keys = this.authorize(conn, spec, args);
          if (this.router !== undefined) {
            const mem = keys.filter((k) => this.o.cache?.isMemoryKey(k) === true);
            const to = mem.length > 0 ? this.router.route(conn, mem, this.dev) : undefined;
            if (to?.to === 'reply') return reply(to.reply);
            if (to?.to === 'peer') return this.watchElsewhere(conn, keys, mem, to.addr, to.slot);
            if (to?.to === 'here' && conn.watchLink !== undefined) {
              return reply(R.error(`ERR WATCH of keys on two nodes: slot ${keySlot(mem[0] as string)} is served here, the keys watched before on ${conn.watchLink.addr}; a transaction runs on one node`));
            }
          }
          for (const key of keys) {
            if (conn.watched.has(key)) continue;
            if (this.o.cache?.isMemoryKey(key) === true) {
              // rev 1: the key was live when watched; 0: absent or already expired (stale). Its
              // expiry or deletion later is a change only in the first case (Redis 7's rule).
              conn.watched.set(key, { kind: 'memory', rev: this.o.cache.contains(key) ? 1 : 0 });
              let set = this.memoryWatch.get(key);
              if (set === undefined) this.memoryWatch.set(key, (set = new Set()));
              set.add(conn);
            } else this.watchDurable(conn, key);
          }
        } catch (err) {
          return reply(toRespError(err, this.o.logger));
        }
        return reply(R.ok);
      }
      case 'unwatch':
        this.unwatch(conn);
        return reply(R.ok);
      case 'quit':
        conn.closeAfterReply();
        return reply(R.ok);
      case 'reset':
        this.endMulti(conn);
        this.unwatch(conn);
        for (const ch of [...conn.channels]) this.unsubscribe(conn, ch, false);
        for (const p of [...conn.patterns]) this.unsubscribe(conn, p, true);
        conn.protocol = 2;
        conn.name = '';
        conn.clusterAware = false;
        conn.replicaReads = false;
        conn.principal = this.dev ? DEV_PRINCIPAL : undefined;
        return reply(R.simple('RESET'));
      default:
        return this.exec(conn);
    }
  }

  /**
   * A plain client's WATCH of memory keys another node serves: they are watched there, on a link
   * of the client's own, and the transaction that follows runs there on that link (durable keys
   * among `keys` are watched here as usual).
   */
  private watchElsewhere(conn: Connection, keys: string[], mem: string[], addr: string, slot: number): Outcome | Promise<Outcome> {
    const router = this.router as ClusterRouter;
    if (conn.watchLink !== undefined && conn.watchLink.addr !== addr) {
      return reply(R.error(`ERR WATCH of keys on two nodes: slot ${slot} is served by ${addr}, the keys watched before by ${conn.watchLink.addr}; a transaction runs on one node`));
    }
    const held = conn.watchLink ?? { link: router.watchLink(addr, conn.protocol), addr, slot };
    conn.watchLink = held;
    for (const key of keys) if (!mem.includes(key) && !conn.watched.has(key)) this.watchDurable(conn, key);
    const promise = held.link.send([Buffer.from('WATCH'), ...mem.map((k) => Buffer.from(k))]).then(
      (raw): Reply => {
        if (raw[0] === 0x2b) return R.ok;
        if (conn.watchLink === held) this.unwatch(conn);
        return { t: 'raw', v: raw };
      },
      (err: unknown): Reply => {
        if (conn.watchLink === held) this.unwatch(conn);
        return R.error(`TRYAGAIN the node serving slot ${slot} (${addr}) could not be used: ${errorMessage(err)}`);
      },
    );
    return { kind: 'pending', blind: false, promise };
  }

  /** WATCHes a durable key: EXEC compares its modRevision (0 absent) with this one. */
  private watchDurable(conn: Connection, key: string): void {
    conn.watched.set(key, { kind: 'durable', rev: this.o.store.get(key)?.modRevision ?? 0 });
  }

  private unwatch(conn: Connection): void {
    if (conn.watchLink !== undefined) {
      // Closing the link ends the other node's connection, and its WATCH with it.
      conn.watchLink.link.close();
      conn.watchLink = undefined;
    }
    for (const [key, w] of conn.watched) {
      if (w.kind !== 'memory') continue;
      const set = this.memoryWatch.get(key);
      set?.delete(conn);
      if (set?.size === 0) this.memoryWatch.delete(key);
    }
    conn.watched.clear();
    conn.watchDirty = false;
  }

  private exec(conn: Connection): Outcome | Promise<Outcome> {
    if (conn.multi === undefined) return reply(R.error('ERR EXEC without MULTI'));
    const cmds = conn.multi;
    const kind = (conn as Connection & { multiKind?: string }).multiKind;
    const forwardTo = (conn as Connection & { multiForward?: string }).multiForward;
    const forwardSlot = (conn as Connection & { multiSlot?: number }).multiSlot ?? 0;
    const abort = conn.multiAbort ?? (conn.multiError ? 'EXECABORT Transaction discarded because of previous errors.' : undefined);
    this.endMulti(conn);
    if (abort !== undefined) {
      this.unwatch(conn);
      return reply(R.error(abort));
    }
    const watched = new Map<string, number>();
    let dirty = conn.watchDirty;
    for (const [key, w] of conn.watched) {
      if (w.kind === 'durable') {
        watched.set(key, w.rev);
        if ((this.o.store.get(key)?.modRevision ?? 0) !== w.rev) dirty = true;
      } else if (w.rev === 1 && this.o.cache?.contains(key) !== true) dirty = true; // expired since WATCH, collected or not
    }
    const watchLink = conn.watchLink;
    conn.watchLink = undefined; // handed to the transaction below, or closed by unwatch
    this.unwatch(conn);
    if (watchLink !== undefined && (dirty || kind !== 'memory' || forwardTo !== watchLink.addr)) {
      watchLink.link.close();
      if (dirty) return reply(R.nullArray);
      return reply(
        R.error(`EXECABORT Transaction discarded because of: the keys WATCHed are served by ${watchLink.addr}, and this transaction ${kind === 'memory' && forwardTo !== undefined ? `runs on ${forwardTo}` : 'runs on this node'}; a transaction runs on one node with its WATCH`),
      );
    }
    if (dirty) return reply(R.nullArray);
    if (kind === 'memory' && forwardTo !== undefined && this.router !== undefined) {
      // MULTI, the commands and EXEC go to the owner back to back on one link (the WATCH's own,
      // when the keys were watched there); EXEC's answer is relayed.
      return { kind: 'pending', blind: false, promise: this.router.forwardTransaction(cmds, forwardTo, forwardSlot, conn.protocol, watchLink?.link) };
    }
    if (kind === 'memory') {
      // The slot may have moved since the commands were queued.
      const keys =
        this.router === undefined
          ? []
          : cmds.flatMap((argv) => {
              try {
                return this.commandKeys(argv).map((k) => k.toString('utf8'));
              } catch {
                return []; // a command without keys
              }
            });
      const refused = keys.length > 0 ? this.unforwardable(conn, keys, 'a transaction') : undefined;
      if (refused !== undefined) return reply(R.error(`EXECABORT Transaction discarded because of: ${(refused as { v: string }).v}`));
      // As Redis's EXEC: a transaction with a write is refused whole when memory is over the
      // limit now (maxmemory may have been lowered since the commands were queued).
      const writes = cmds.some((argv) => COMMANDS.get((argv[0] as Buffer).toString('latin1').toLowerCase())?.access === 'write');
      if (writes) {
        try {
          this.o.cache?.ensureMemory();
        } catch (err) {
          if (!isOutOfMemory(err)) throw err;
          return reply(R.error(`EXECABORT Transaction discarded because of: ${err.redisPrefix} ${err.message}`));
        }
      }
      return this.runMemory(conn, undefined, cmds, true);
    }
    return this.execDurable(conn, cmds, watched);
  }

  /** Runs a MULTI's commands on one durable txn: one revision, atomic, compared against every key read and WATCHed. */
  private execDurable(conn: Connection, cmds: Buffer[][], watched: Map<string, number>): Outcome | Promise<Outcome> {
    const run = (): { tx: DurableTx; replies: (Reply | Promise<Reply>)[] } => {
      const tx = new DurableTx(this.durableDeps(), conn.principal as Principal, true);
      const replies: (Reply | Promise<Reply>)[] = [];
      for (const argv of cmds) {
        const spec = COMMANDS.get((argv[0] as Buffer).toString('latin1').toLowerCase()) as CommandSpec;
        try {
          keyPositions(spec, argv.slice(1)); // a bad key count answers its error here (see queue)
          const r = spec.handler(this.ctx(conn, tx), argv.slice(1));
          // A keyless command that completes later (CONFIG SET in a MULTI): its reply takes its place.
          if (r instanceof Promise) replies.push(this.settled(r));
          else replies.push(r === NO_REPLY ? R.null : r);
        } catch (err) {
          replies.push(toRespError(err, this.o.logger));
        }
      }
      return { tx, replies };
    };
    const first = run();
    if (first.tx.writes.size === 0) {
      if (first.replies.some((r) => r instanceof Promise)) return { kind: 'pending', blind: false, promise: Promise.all(first.replies).then((rs) => R.array(rs)) };
      return reply(R.array(first.replies as Reply[]));
    }
    const commit = async (): Promise<Reply> => {
      let cur = first;
      for (let attempt = 0; ; attempt++) {
        try {
          const res = await cur.tx.commit(watched, this.audit(conn, 'exec'));
          return res.succeeded ? R.array(await Promise.all(cur.replies)) : R.nullArray;
        } catch (err) {
          if (!(err instanceof RetryError) || attempt >= MAX_CAS_RETRIES) return toRespError(err, this.o.logger);
        }
        cur = run();
        if (cur.tx.writes.size === 0) return R.array(await Promise.all(cur.replies));
      }
    };
    return { kind: 'pending', blind: false, promise: commit() };
  }

  // ---------------------------------------------------------------------------------------------
  // Keys of both kinds

  keyspaceOf(key: string, conn: ConnState): Keyspace {
    if (this.memory !== undefined && this.o.cache?.isMemoryKey(key) === true) return this.memory;
    return new DurableTx(this.durableDeps(), conn.principal as Principal);
  }

  private visibleDurable(conn: ConnState, key: string): boolean {
    if (this.o.cache?.isMemoryKey(key) === true) return false; // shadowed by a memory namespace
    return conn.principal !== undefined && this.o.auth.canRead(conn.principal, key);
  }

  keys(conn: ConnState, pattern: string): string[] {
    const out: string[] = [];
    const prefix = globLiteralPrefix(pattern);
    const start = prefix === '' ? FIRST_USER_KEY : prefix;
    const end = prefix === '' ? null : prefixEnd(prefix);
    for (const kv of this.o.store.rangeLatest(start, end).kvs) {
      if (globMatch(pattern, kv.key) && this.visibleDurable(conn, kv.key)) out.push(kv.key);
    }
    if (this.o.cache !== undefined) {
      for (const k of this.o.cache.keys(pattern)) if (conn.principal !== undefined && this.o.auth.canRead(conn.principal, k)) out.push(k);
    }
    return out;
  }

  scan(conn: ConnState, cursor: string, count: number, match: string | undefined, type: string | undefined): [string, string[]] {
    if (!/^[0-9]+$/.test(cursor)) throw new RespError('ERR invalid cursor');
    let state: CursorState;
    if (cursor === '0') state = { phase: 'durable', next: FIRST_USER_KEY };
    else {
      const s = this.cursors.get(Number(cursor));
      if (s === undefined) throw new RespError('ERR invalid cursor');
      state = s;
    }
    const out: string[] = [];
    let next: CursorState | undefined;
    if (state.phase === 'durable') {
      // Keys are visited in key order from a resume key, so a key present throughout is never skipped.
      const page = this.o.store.rangeLatest(state.next, null, count + 1).kvs;
      for (const kv of page.slice(0, count)) {
        if (match !== undefined && !globMatch(match, kv.key)) continue;
        if (!this.visibleDurable(conn, kv.key)) continue;
        if (type !== undefined && (decodeDurableHash(kv.value) !== undefined ? 'hash' : 'string') !== type) continue;
        out.push(kv.key);
      }
      const more = page[count];
      next = more !== undefined ? { phase: 'durable', next: more.key } : this.o.cache !== undefined ? { phase: 'memory', cursor: '0' } : undefined;
    } else {
      const cache = this.o.cache as CacheTier;
      const r = cache.scan(state.cursor, { count, ...(match !== undefined ? { match } : {}), ...(type !== undefined ? { type: type as 'string' } : {}) });
      for (const k of r.keys) if (conn.principal !== undefined && this.o.auth.canRead(conn.principal, k)) out.push(k);
      next = r.cursor === '0' ? undefined : { phase: 'memory', cursor: r.cursor };
    }
    if (next === undefined) return ['0', out];
    const id = this.nextCursor++;
    this.cursors.set(id, next);
    if (this.cursors.size > MAX_CURSORS) this.cursors.delete(this.cursors.keys().next().value as number);
    return [String(id), out];
  }

  dbsize(conn: ConnState): number {
    return this.visibleKeyCounts(conn).keys;
  }

  /**
   * The keys `conn`'s principal can see and how many of them have a TTL (DBSIZE, INFO keyspace):
   * durable keys it may read that no memory namespace shadows, and memory keys it may read. A
   * principal that may read the whole keyspace costs one pass over the durable keys' names (the
   * memory count is O(1)); one limited to some prefixes costs a pass over every key.
   */
  private visibleKeyCounts(conn: ConnState): { keys: number; expires: number } {
    const p = conn.principal;
    if (p === undefined) return { keys: 0, expires: 0 };
    const cache = this.o.cache;
    const all = this.o.auth.can(p, 'read', { key: FIRST_USER_KEY, rangeEnd: null });
    let keys = 0;
    let expires = 0;
    for (const kv of this.o.store.rangeLatest(FIRST_USER_KEY, null, 0, { keysOnly: true }).kvs) {
      if (all ? cache?.isMemoryKey(kv.key) === true : !this.visibleDurable(conn, kv.key)) continue;
      keys++;
      if (kv.lease !== 0) expires++;
    }
    if (cache === undefined) return { keys, expires };
    if (all) return { keys: keys + cache.dbsize(), expires: expires + cache.volatileCount() };
    for (const k of cache.keys('*')) {
      if (!this.o.auth.canRead(p, k)) continue;
      keys++;
      if (cache.expireTimeMs(k) > 0) expires++;
    }
    return { keys, expires };
  }

  randomKey(conn: ConnState): string | undefined {
    for (let attempt = 0; attempt < 16; attempt++) {
      const durable = this.o.store.rangeLatest(FIRST_USER_KEY, null, 0, { countOnly: true }).count;
      const mem = this.o.cache?.dbsize() ?? 0;
      if (durable + mem === 0) return undefined;
      const i = Math.floor(Math.random() * (durable + mem));
      let key: string | undefined;
      if (i >= durable) key = this.o.cache?.randomKey();
      else key = this.o.store.rangeLatest(FIRST_USER_KEY, null, i + 1, { keysOnly: true }).kvs[i]?.key;
      if (key !== undefined && conn.principal !== undefined && this.o.auth.canRead(conn.principal, key)) return key;
    }
    return undefined;
  }

  setActiveExpire(on: boolean): void {
    if (this.o.cache !== undefined) this.o.cache.activeExpire = on;
  }

  async flushAll(conn: ConnState): Promise<void> {
    const cache = this.o.cache;
    if (cache !== undefined) {
      // A WATCHed memory key that existed was touched; one that did not exist (or had expired) was
      // not, and EXEC still runs (Redis's touchAllWatchedKeysInDb).
      for (const [key, set] of this.memoryWatch) {
        if (!cache.contains(key, false)) continue;
        for (const c of set) if (c.watched.get(key)?.rev === 1) c.watchDirty = true;
      }
      cache.flush();
      if (cache.config.appendonly) cache.propagate([Buffer.from('FLUSHALL')]);
    }
    await this.o.store.deleteRange(FIRST_USER_KEY, null, { audit: this.audit(conn as Connection, 'flushall'), meta: JSON.stringify({ resp: 'flushall' }) });
  }

  // ---------------------------------------------------------------------------------------------
  // Pub/sub and keyspace notifications

  subscribe(conn: ConnState, channel: string, pattern: boolean): void {
    const c = conn as Connection;
    const map = pattern ? this.patternSubs : this.channels;
    (pattern ? c.patterns : c.channels).add(channel);
    let set = map.get(channel);
    if (set === undefined) map.set(channel, (set = new Set()));
    set.add(c);
  }

  unsubscribe(conn: ConnState, channel: string, pattern: boolean): void {
    const c = conn as Connection;
    const map = pattern ? this.patternSubs : this.channels;
    (pattern ? c.patterns : c.channels).delete(channel);
    const set = map.get(channel);
    set?.delete(c);
    if (set?.size === 0) map.delete(channel);
  }

  publish(channel: Buffer, message: Buffer): number {
    // Subscribers on every node of a cache cluster get it; the count is this node's, as in Redis Cluster.
    this.router?.broadcast([PEER_PUBLISH, channel, message]);
    return this.deliver(channel.toString('latin1'), channel, message, undefined);
  }

  /**
   * `BEACON.PEER <cluster id> <node id>`, the first command on another node's link: `+OK` when
   * the caller is a live member of this node's cluster. Otherwise `-CLUSTERDOWN <why>` and the
   * connection closes, so that none of the commands pipelined behind it runs here: a node of
   * another cluster (another database) that reached this address never writes into this one.
   * Later commands wait for the answer.
   */
  private peerHello(conn: Connection, clusterId: Buffer, nodeId: Buffer): Outcome {
    const router = this.router as ClusterRouter;
    const caller = nodeId.toString('utf8');
    const refuse = (why: string): Reply => {
      conn.closeAfterReply();
      this.o.logger.warn({ peer: conn.addr, node: caller, why }, 'refused a link from another node');
      return R.error(`CLUSTERDOWN ${why}`);
    };
    const promise = router.checkPeer(clusterId.toString('utf8'), caller).then(
      (why) => (why === undefined ? R.ok : refuse(why)),
      (err: unknown) => refuse(`this node cannot check the link of node ${caller} now: ${errorMessage(err)}`),
    );
    return { kind: 'pending', promise, blind: false };
  }

  /**
   * The commands only another node of the cluster sends (not in the command table: any other
   * client gets the unknown-command error): a PUBLISH, and a memory key's keyspace event, made
   * on that node, for this node's subscribers. @returns undefined for anything else.
   */
  private peerCommand(name: string, args: Buffer[]): Reply | undefined {
    if (name === 'beacon.publish' && args.length === 2) {
      const ch = args[0] as Buffer;
      return R.int(this.deliver(ch.toString('latin1'), ch, args[1] as Buffer, undefined));
    }
    if (name === 'beacon.keyevent' && args.length === 2) {
      const key = (args[1] as Buffer).toString('utf8');
      this.notify((args[0] as Buffer).toString('latin1'), key);
      return R.ok;
    }
    return undefined;
  }

  cluster(): ClusterRouter | undefined {
    return this.router;
  }

  /** Resolves once the hand-overs this node is sending have ended, or after `timeoutMs` (at once outside a cache cluster). */
  handoversSettled(timeoutMs: number): Promise<void> {
    return this.replicator?.handoversSettled(timeoutMs) ?? Promise.resolve();
  }

  /** Keys this node handed over to the new primaries of slots it served (0 outside a cache cluster). */
  handedOver(): number {
    return this.replicator?.handedOver ?? 0;
  }

  /** Writes sent to replicas and not acknowledged yet (0 without replication). */
  replicationInFlight(): number {
    return this.replicator?.inFlight ?? 0;
  }

  /** Whether a memory command's first key is in a namespace with replicas. */
  private replicatedCommand(argv: Buffer[]): boolean {
    const key = argv[1];
    return key !== undefined && this.replicator !== undefined && this.replicator.factorOf(key.toString('utf8')) > 1;
  }

  /** The largest replication factor of any memory namespace (CLUSTER SLOTS, replica copies: rare, so read each time). */
  private maxFactor(): number {
    return Math.max(1, ...this.o.policies.list().map((p) => (p.storage === 'memory' ? (p.replicationFactor ?? 1) : 1)));
  }


  /**
   * Sends a write this node made as primary to its slot's replicas and remembers it for WAIT.
   * @returns the acknowledgements to wait for before answering (a `sync` namespace), or undefined.
   */
  private replicate(conn: Connection, key: string, cmds: Buffer[][]): Acks | undefined {
    const acks = this.replicator?.replicate(key, cmds);
    if (acks === undefined) return undefined;
    const pending = conn.replicated;
    const entry: { acks: Acks; done?: { acked: number; wanted: number } } = { acks };
    pending.push(entry);
    void acks.then((a) => {
      entry.done = a;
      // Settled entries stay for WAIT until later ones settle too; keep the list short.
      while (pending.length > 1 && pending[0]?.done !== undefined) pending.shift();
    });
    return this.replicator?.isSync(key) === true ? acks : undefined;
  }

  /** The reply of a write in a `sync` namespace: `r` once every replica acknowledged it, else why not. */
  private whenReplicated(acks: Acks, r: Reply): Promise<Reply> {
    return acks.then((a) =>
      a.error === undefined
        ? r
        : R.error(`NOREPLICAS the write is on the primary, but ${a.wanted - a.acked} of ${a.wanted} replicas did not acknowledge it (${a.error}); it may be lost if the primary fails`),
    );
  }

  async waitReplicas(conn: ConnState, _count: number, timeoutMs: number): Promise<number> {
    const pending = (conn as Connection).replicated;
    if (pending.length === 0) return 0;
    const all = Promise.all(pending.map((p) => p.acks));
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((r) => {
      if (timeoutMs > 0) timer = setTimeout(r, timeoutMs);
    });
    await Promise.race([all, timeout]);
    if (timer !== undefined) clearTimeout(timer);
    // Replicas that acknowledged every write of this connection: the fewest of any one write.
    let n = Number.MAX_SAFE_INTEGER;
    for (const p of pending) n = Math.min(n, p.done?.acked ?? 0);
    return n;
  }

  keysInSlot(slot: number, count: number): string[] {
    const out: string[] = [];
    if (this.o.cache === undefined || count <= 0) return out;
    for (const k of this.o.cache.keys('*')) {
      if (keySlot(k) !== slot) continue;
      out.push(k);
      if (out.length >= count) break;
    }
    return out;
  }

  /** Sends a message to every subscriber of `ch` and every matching pattern; `key` limits it to readers of that key. */
  private deliver(ch: string, chBuf: Buffer, message: Buffer, key: string | undefined): number {
    let n = 0;
    const now = Date.now();
    const may = (c: Connection): boolean => this.stillValid(c, now) && (key === undefined || (c.principal !== undefined && this.o.auth.canRead(c.principal, key)));
    const subs = this.channels.get(ch);
    if (subs !== undefined) {
      for (const c of subs) {
        if (!may(c)) continue;
        c.push(R.push([R.bulk('message'), R.bulk(chBuf), R.bulk(message)]));
        n++;
      }
    }
    if (this.patternSubs.size > 0) {
      const chText = chBuf.toString('utf8');
      for (const [p, set] of this.patternSubs) {
        if (!globMatch(p, chText)) continue;
        for (const c of set) {
          if (!may(c)) continue;
          c.push(R.push([R.bulk('pmessage'), R.bulk(Buffer.from(p, 'latin1')), R.bulk(chBuf), R.bulk(message)]));
          n++;
        }
      }
    }
    return n;
  }

  /**
   * Re-checks a subscriber's principal (at most once per REFRESH_MS) before a message reaches it:
   * a subscribed connection sends no commands, so without this a deleted user or a revoked API
   * key would keep receiving. An invalid principal's connection is closed, as Redis closes the
   * connections of a deleted ACL user.
   */
  private stillValid(c: Connection, now: number): boolean {
    if (c.isClosed || c.principal === undefined) return false;
    if (this.dev) return true;
    const exp = c.principal.expiresAt;
    if (exp !== undefined && exp <= now) {
      c.kill();
      return false;
    }
    if (now - c.refreshedAt <= REFRESH_MS) return true;
    c.refreshedAt = now;
    c.principal = this.o.auth.refresh(c.principal);
    if (c.principal !== undefined) return true;
    c.kill();
    return false;
  }

  /** Publishes the keyspace notifications of one change, as `notify-keyspace-events` asks. */
  private notify(event: string, key: string): void {
    const f = this.notifyFlags;
    if (f === '' || (this.channels.size === 0 && this.patternSubs.size === 0)) return;
    const cls = eventClass(event);
    if (!f.includes(cls) && !(f.includes('A') && cls !== 'm' && cls !== 'n')) return;
    if (f.includes('K')) {
      const ch = `__keyspace@0__:${key}`;
      this.deliver(ch, Buffer.from(ch, 'utf8'), Buffer.from(event), key);
    }
    if (f.includes('E')) {
      const ch = `__keyevent@0__:${event}`;
      this.deliver(ch, Buffer.from(ch, 'utf8'), Buffer.from(key, 'utf8'), key);
    }
  }

  /** Every committed durable change, whichever face made it (HTTP, CLI, RESP, lease expiry). */
  private onCommit(ev: RevisionEvents): void {
    if (this.notifyFlags === '' || (this.channels.size === 0 && this.patternSubs.size === 0)) return;
    let names: Record<string, string> | undefined;
    let expired = false;
    if (ev.meta !== null) {
      try {
        const m = JSON.parse(ev.meta) as { resp?: unknown; reason?: unknown };
        if (m.resp !== null && typeof m.resp === 'object') names = m.resp as Record<string, string>;
        expired = m.reason === 'expired';
      } catch {
        // not ours
      }
    }
    for (const e of ev.events) {
      const key = e.kv.key;
      if (isSystemKey(key)) continue;
      const name = names?.[key] ?? (e.type === 'put' ? 'set' : expired ? 'expired' : 'del');
      this.notify(name, key);
    }
  }

  pubsubChannels(conn: ConnState, pattern: string | undefined): string[] {
    return [...this.channels.keys()].filter((c) => (pattern === undefined || globMatch(pattern, c)) && this.mayKnowChannel(conn, c));
  }

  pubsubNumsub(conn: ConnState, channel: string): number {
    return this.mayKnowChannel(conn, channel) ? (this.channels.get(channel)?.size ?? 0) : 0;
  }

  /**
   * A `__keyspace@<db>__:<key>` channel names a key: only a principal that may read that key
   * learns it exists. Other channels (plain and `__keyevent@…`) are shared by every
   * authenticated principal, as in Redis without ACL channel rules.
   */
  private mayKnowChannel(conn: ConnState, channel: string): boolean {
    const m = /^__keyspace@\d+__:/.exec(channel);
    if (m === null) return true;
    const key = Buffer.from(channel.slice(m[0].length), 'latin1').toString('utf8');
    return conn.principal !== undefined && this.o.auth.canRead(conn.principal, key);
  }

  pubsubNumpat(): number {
    return this.patternSubs.size;
  }

  // ---------------------------------------------------------------------------------------------
  // INFO, CONFIG, COMMAND, CLIENT

  info(section: string | undefined, conn: ConnState): string {
    const cache = this.o.cache?.info();
    const mem = process.memoryUsage();
    const all = section === undefined || section === 'all' || section === 'everything' || section === 'default';
    const want = (s: string): boolean => all || section === s;
    const lines: string[] = [];
    const sec = (name: string, fields: [string, string | number][]): void => {
      if (!want(name.toLowerCase())) return;
      lines.push(`# ${name}`, ...fields.map(([k, v]) => `${k}:${v}`), '');
    };
    sec('Server', [
      ['redis_version', REDIS_VERSION],
      ['beacon_version', this.o.version],
      ['redis_mode', 'standalone'],
      ['os', `${process.platform} ${process.arch}`],
      ['arch_bits', 64],
      ['process_id', process.pid],
      ['tcp_port', this.port],
      ['uptime_in_seconds', Math.floor((Date.now() - this.stats.startedAt) / 1000)],
      ['uptime_in_days', Math.floor((Date.now() - this.stats.startedAt) / 86_400_000)],
    ]);
    sec('Clients', [
      ['connected_clients', this.conns.size],
      ['blocked_clients', this.blockedConns.size],
      ['pubsub_clients', [...this.conns.values()].filter((c) => c.channels.size + c.patterns.size > 0).length],
    ]);
    sec('Memory', [
      ['used_memory', (cache?.used_memory ?? 0) + this.o.store.viewBytes],
      ['used_memory_human', `${(((cache?.used_memory ?? 0) + this.o.store.viewBytes) / 1048576).toFixed(2)}M`],
      ['used_memory_cache', cache?.used_memory ?? 0],
      ['used_memory_durable_view', this.o.store.viewBytes],
      ['used_memory_rss', mem.rss],
      ['maxmemory', cache?.maxmemory ?? 0],
      ['maxmemory_policy', cache?.maxmemory_policy ?? 'noeviction'],
    ]);
    sec('Persistence', [
      ['loading', cache?.loading ?? 0],
      ['aof_enabled', cache?.aof_enabled ?? 0],
      ['aof_rewrite_in_progress', cache?.aof_rewrite_in_progress ?? 0],
      ['aof_last_bgrewrite_status', cache?.aof_last_bgrewrite_status ?? 'ok'],
      ['aof_current_size', cache?.aof_current_size ?? 0],
      ['rdb_changes_since_last_save', 0],
      ['durable_revision', this.o.store.revision],
    ]);
    sec('Stats', [
      ['total_connections_received', this.stats.connections],
      ['total_commands_processed', this.stats.commands],
      ['rejected_connections', this.stats.rejected],
      ['expired_keys', cache?.expired_keys ?? 0],
      ['evicted_keys', cache?.evicted_keys ?? 0],
      ['keyspace_hits', (cache?.keyspace_hits ?? 0) + this.stats.durableHits],
      ['keyspace_misses', (cache?.keyspace_misses ?? 0) + this.stats.durableMisses],
      ['pubsub_channels', this.channels.size],
      ['pubsub_patterns', this.patternSubs.size],
      ['total_error_replies', [...this.errorStats.values()].reduce((a, b) => a + b, 0)],
    ]);
    const cpu = process.cpuUsage();
    sec('CPU', [
      ['used_cpu_sys', (cpu.system / 1e6).toFixed(6)],
      ['used_cpu_user', (cpu.user / 1e6).toFixed(6)],
      ['used_cpu_sys_children', '0.000000'],
      ['used_cpu_user_children', '0.000000'],
    ]);
    sec('Replication', [
      ['role', 'master'],
      ['connected_slaves', 0],
    ]);
    // Not in the default set (as Redis: `INFO commandstats`, `INFO errorstats`, or `INFO all`).
    if (section === 'commandstats' || section === 'all' || section === 'everything') {
      lines.push(
        '# Commandstats',
        ...[...this.cmdStats].map(([n, st]) => {
          const per = st.calls === 0 ? 0 : st.usec / st.calls;
          return `cmdstat_${n}:calls=${st.calls},usec=${Math.round(st.usec)},usec_per_call=${per.toFixed(2)},rejected_calls=${st.rejected},failed_calls=${st.failed}`;
        }),
        '',
      );
    }
    if (section === 'errorstats' || section === 'all' || section === 'everything') {
      lines.push('# Errorstats', ...[...this.errorStats].map(([code, n]) => `errorstat_${code}:count=${n}`), '');
    }
    const routed = this.router?.counters();
    sec('Cluster', [
      ['cluster_enabled', this.router !== undefined ? 1 : 0],
      ...(routed !== undefined
        ? ([
            ['cluster_state', this.router?.confirmed() === true ? 'ok' : 'fail'],
            ['cluster_forwarded_commands', routed.forwarded],
            ['cluster_forward_errors', routed.forwardErrors],
            ['cluster_moved_replies', routed.moved],
            ['cluster_handover_keys_sent', this.replicator?.handedOver ?? 0],
            ['cluster_handover_slots_missed', this.o.cluster?.slots.handoversMissed ?? 0],
          ] as [string, string | number][])
        : []),
    ]);
    if (want('keyspace')) {
      const visible = this.visibleKeyCounts(conn);
      sec('Keyspace', visible.keys > 0 ? [['db0', `keys=${visible.keys},expires=${visible.expires},avg_ttl=0`]] : []);
    }
    return lines.join('\r\n');
  }

  configGet(pattern: string): [string, string][] {
    const own: [string, string][] = [
      ['notify-keyspace-events', canonicalFlags(this.notifyFlags)],
      ['save', ''],
      ['databases', '1'],
      ['port', String(this.port)],
      ['timeout', '0'],
      ['maxclients', String(this.maxClients)],
      ['client-output-buffer-limit', `normal 0 0 0 slave 268435456 67108864 60 pubsub ${this.pubsubLimit.hard} ${this.pubsubLimit.soft} ${this.pubsubLimit.softSeconds}`],
      ['client-query-buffer-limit', String(this.queryBufferLimit)],
      ['proto-max-bulk-len', String(512 * 1024 * 1024)],
      ['slowlog-log-slower-than', String(this.slowlogSlowerThan)],
      ['slowlog-max-len', String(this.slowlogMaxLen)],
    ];
    if (this.o.cache === undefined) own.push(['appendonly', 'no'], ['appendfsync', 'everysec'], ['maxmemory', '0'], ['maxmemory-policy', 'noeviction']);
    for (const [k, v] of this.encodingKnobs) own.push([k, v]);
    const out = own.filter(([k]) => globMatch(pattern, k, true));
    if (this.o.cache !== undefined) out.push(...this.o.cache.getConfig(pattern));
    return out;
  }

  async configSet(name: string, value: string): Promise<void> {
    if (name === 'notify-keyspace-events') {
      const ok = /^[KEg$lshzxetmndA]*$/.test(value);
      if (!ok) throw new RespError(`ERR CONFIG SET failed (possibly related to argument 'notify-keyspace-events') - Invalid event class character. Use 'Ag$lshzxeKEtmdn'.`);
      let f = value.replace(/A/g, 'g$lshzxetd');
      // Without K or E nothing is delivered; Redis keeps the flags as given otherwise.
      if (!f.includes('K') && !f.includes('E')) f = '';
      this.notifyFlags = [...new Set(f)].join('');
      // `n` (a key created) costs a look-up per write, so the memory keyspace checks only when asked.
      if (this.memory !== undefined) this.memory.notifyNew = this.notifyFlags.includes('n');
      return;
    }
    if (name === 'client-output-buffer-limit') {
      const m = /^(?:.*\s)?pubsub\s+(\d+)\s+(\d+)\s+(\d+)/i.exec(value);
      if (m === null) throw new RespError(`ERR CONFIG SET failed (possibly related to argument 'client-output-buffer-limit') - only the pubsub class can be changed`);
      this.pubsubLimit = { hard: Number(m[1]), soft: Number(m[2]), softSeconds: Number(m[3]) };
      return;
    }
    if (this.encodingKnobs.has(name)) {
      // Redis's compact-encoding thresholds: OBJECT ENCODING answers by them; the cache tier's
      // values have one representation each (see docs/resp.md).
      if (!/^-?\d+$/.test(value.trim())) throw new RespError(`ERR CONFIG SET failed (possibly related to argument '${name}') - argument couldn't be parsed into an integer`);
      this.encodingKnobs.set(name, String(Number(value)));
      // The *-ziplist-* names are Redis 7's aliases of the *-listpack-* ones: one setting.
      const alias = name.includes('-ziplist-') ? name.replace('-ziplist-', '-listpack-') : name.replace('-listpack-', '-ziplist-');
      if (alias !== name && this.encodingKnobs.has(alias)) this.encodingKnobs.set(alias, String(Number(value)));
      return;
    }
    if (name === 'save') {
      // No RDB snapshots: "" (none, what CONFIG GET shows) is accepted; a schedule is refused.
      if (value.trim() !== '') throw new RespError(`ERR CONFIG SET failed (possibly related to argument 'save') - Beacon takes no RDB snapshots; a memory namespace persists with appendonly (docs/cache.md)`);
      return;
    }
    if (name === 'slowlog-log-slower-than' || name === 'slowlog-max-len') {
      const n = Number(value);
      const min = name === 'slowlog-max-len' ? 0 : -1;
      if (!/^-?\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < min || n > 2 ** 31 - 1) {
        throw new RespError(`ERR CONFIG SET failed (possibly related to argument '${name}') - argument must be between ${min} and 2147483647 inclusive`);
      }
      if (name === 'slowlog-max-len') {
        this.slowlogMaxLen = n;
        if (this.slowlog.length > n) this.slowlog.length = n;
      } else this.slowlogSlowerThan = n;
      return;
    }
    if (name === 'maxclients') {
      const n = Number(value);
      if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < 1) throw new RespError(`ERR CONFIG SET failed (possibly related to argument '${name}') - argument must be between 1 and ${Number.MAX_SAFE_INTEGER} inclusive`);
      this.maxClients = n;
      return;
    }
    if (name === 'client-query-buffer-limit') {
      const n = Number(value);
      if (!Number.isSafeInteger(n) || n < 1024 * 1024) throw new RespError(`ERR CONFIG SET failed (possibly related to argument '${name}') - argument must be a memory value of at least 1mb`);
      this.queryBufferLimit = n;
      return;
    }
    if (this.o.cache !== undefined) {
      try {
        if (await this.o.cache.setConfig(name, value)) return;
      } catch (err) {
        const msg = errorMessage(err);
        throw new RespError(msg.startsWith('ERR') ? msg : `ERR CONFIG SET failed (possibly related to argument '${name}') - ${msg}`);
      }
    }
    throw new RespError(`ERR Unknown option or number of arguments for CONFIG SET - '${name}'`);
  }

  resetStats(): void {
    this.stats.commands = 0;
    this.stats.connections = 0;
    this.stats.durableHits = 0;
    this.stats.durableMisses = 0;
    this.cmdStats.clear();
    this.errorStats.clear();
    this.o.cache?.resetStats();
  }

  clients(): ConnState[] {
    return [...this.conns.values()];
  }

  /**
   * The principal of a client certificate the `clientCa` signed: its subject CN, with the roles
   * the HTTP listener would give it (docs/security.md, "Client certificates"). Undefined for no
   * certificate or one the CA did not sign: the client must then AUTH.
   */
  private certificatePrincipal(socket: TLSSocket): Principal | undefined {
    if (!socket.authorized) return undefined;
    const cn = socket.getPeerCertificate().subject?.CN as string | string[] | undefined;
    const name = Array.isArray(cn) ? cn[0] : cn;
    if (typeof name !== 'string' || name === '') return undefined;
    try {
      const p = this.o.auth.authenticate({ clientCertCn: name });
      return p instanceof Promise ? undefined : p;
    } catch {
      return undefined;
    }
  }

  async authenticate(user: string | undefined, pass: string, conn: ConnState): Promise<Principal> {
    if (this.dev) return DEV_PRINCIPAL;
    const auth = this.o.auth;
    if (user === PEER_PRINCIPAL) {
      // Another node of this cluster, on a forwarding link (routing.ts).
      const p = this.router !== undefined ? auth.peer(pass) : undefined;
      if (p === undefined) throw new RespError('WRONGPASS invalid username-password pair or user is disabled.');
      return p;
    }
    try {
      if (user === undefined || user === 'default') {
        // An API key or a token as the password (AUTH <apikey>).
        const p = await auth.authenticate({ authorization: `Bearer ${pass}` });
        return p;
      }
      const res = await auth.login(user, pass, { source: conn.addr.replace(/:\d+$/, ''), requestId: `resp-${conn.id}` });
      const u = auth.identity.user(res.user);
      return { name: res.user, roles: res.roles, via: 'password', ...(u !== undefined ? { credentialId: u.uid } : {}) };
    } catch (err) {
      if (err instanceof RespError) throw err;
      const code = (err as { code?: string }).code;
      if (code === 'rate_limited') throw new RespError(`ERR ${(err as Error).message}`);
      throw new RespError('WRONGPASS invalid username-password pair or user is disabled.');
    }
  }

  commandNames(): string[] {
    return [...COMMANDS.keys()];
  }

  commandInfo(name: string): Reply | undefined {
    const s = COMMANDS.get(name);
    return s === undefined ? undefined : commandInfo(s);
  }

  commandDocs(name: string): Reply | undefined {
    const s = COMMANDS.get(name);
    return s === undefined ? undefined : commandDocs(s);
  }

  /**
   * The executor the cache tier replays its append-only file with: every memory write command
   * this listener propagates, run on the memory keyspace without notifications or authorisation.
   * @throws Error for an unknown command or one that fails (the tier logs it and goes on).
   */
  aofExecutor(): (argv: Buffer[]) => void {
    const conn: ConnState = {
      id: 0,
      blocked: false,
      addr: 'aof',
      laddr: 'aof',
      clusterAware: false,
      replicaReads: false,
      createdAt: Date.now(),
      protocol: 2,
      name: 'aof',
      replyMode: 'on',
      libName: '',
      libVer: '',
      principal: DEV_PRINCIPAL,
      multi: undefined,
      multiError: false,
      watched: new Map(),
      watchLink: undefined,
      channels: new Set(),
      patterns: new Set(),
      lastCmd: '',
      lastActive: 0,
      push: () => undefined,
      closeAfterReply: () => undefined,
      kill: () => undefined,
    };
    return (argv: Buffer[]): void => {
      const name = (argv[0] as Buffer).toString('latin1').toLowerCase();
      const mem = this.memory;
      if (mem === undefined) return;
      if (name === 'flushall' || name === 'flushdb') {
        mem.tier.flush();
        return;
      }
      const spec = COMMANDS.get(name);
      if (spec === undefined || spec.access !== 'write') throw new Error(`the append-only file holds '${name}', which is not a write command`);
      mem.begin(false);
      const r = spec.handler(this.ctx(conn as Connection, mem), argv.slice(1));
      mem.changes = [];
      if (r instanceof Promise) throw new Error(`'${name}' cannot be replayed`);
      if (r.t === 'error') throw new Error(r.v);
    };
  }

  /** The bound port (after {@link listen}). */
  get boundPort(): number {
    return this.port;
  }

  /** Open connections (for tests and metrics). */
  get connectionCount(): number {
    return this.conns.size;
  }
}

/** notify-keyspace-events as Redis prints it: `A` for every class, then K, E, m, n (e.g. `AKE`). */
function canonicalFlags(f: string): string {
  const classes = 'g$lshzxetd';
  let out = [...classes].every((c) => f.includes(c)) ? 'A' : [...classes].filter((c) => f.includes(c)).join('');
  for (const c of 'KEmn') if (f.includes(c)) out += c;
  return out;
}

const WAIT: Outcome = { kind: 'wait' };
const REDACTED = Buffer.from('(redacted)');

/** `argv` with its credentials replaced by `(redacted)` for the slow log, as Redis 7 does: AUTH's arguments, HELLO's after AUTH. */
function redacted(name: string, argv: Buffer[]): Buffer[] {
  if (name === 'auth') return argv.map((a, i) => (i === 0 ? a : REDACTED));
  if (name === 'hello') {
    const at = argv.findIndex((a, i) => i > 0 && a.toString('latin1').toUpperCase() === 'AUTH');
    if (at > 0) return argv.map((a, i) => (i === at + 1 || i === at + 2 ? REDACTED : a));
  }
  return argv;
}
/** Redis's SLOWLOG_ENTRY_MAX_ARGC and SLOWLOG_ENTRY_MAX_STRING. */
const SLOWLOG_MAX_ARGS = 32;
const SLOWLOG_MAX_STRING = 128;

/** Whether `argc` arguments (the name included) fit `spec`'s arity (Redis: n exactly, or -n at least n). */
function arityOk(spec: CommandSpec, argc: number): boolean {
  return spec.arity > 0 ? argc === spec.arity : argc >= -spec.arity;
}

/**
 * The indexes in `args` (the name excluded) of `spec`'s key arguments: after a count for a
 * command with movable keys (validated, throwing its Redis error), else by `spec.keys`.
 * For cold paths; {@link RespServer.authorize} walks the same positions without an array.
 */
/** False when `args` give no key list for `spec` (a bad key count of a command with movable keys). */
function keysReadable(spec: CommandSpec, args: Buffer[]): boolean {
  try {
    keyPositions(spec, args);
    return true;
  } catch (err) {
    if (err instanceof RespError) return false;
    throw err;
  }
}

function keyPositions(spec: CommandSpec, args: Buffer[]): number[] {
  if (spec.movableKeys !== undefined) return spec.movableKeys(args);
  const at: number[] = [];
  const last = lastKeyArg(spec, args.length);
  for (let i = spec.keys[0]; last > 0 && i <= last; i += spec.keys[2]) at.push(i - 1);
  return at;
}

/**
 * Redis's unknown-command error, byte for byte: the name (up to 128 bytes) and the arguments
 * while the list shown is under 128 bytes (the last one cut to fit), each as sent (C strings:
 * up to a NUL byte), not re-encoded.
 */
function unknownCommand(argv: Buffer[]): Reply {
  const text = (b: Buffer | undefined, max: number): string => {
    const s = (b ?? Buffer.alloc(0)).toString('latin1');
    const nul = s.indexOf('\0');
    return (nul < 0 ? s : s.slice(0, nul)).slice(0, max);
  };
  let shown = '';
  for (let i = 1; i < argv.length && shown.length < 128; i++) shown += `'${text(argv[i], 128 - shown.length)}' `;
  return { t: 'error', v: `ERR unknown command '${text(argv[0], 128)}', with args beginning with: ${shown}`, latin1: true };
}

/** The code word of an error reply (`ERR`, `WRONGTYPE`, `NOPERM`…), as INFO errorstats keys it. */
function errorCode(text: string): string {
  const sp = text.indexOf(' ');
  return sp < 0 ? text : text.slice(0, sp);
}
/** The keys of a keyless command (never pushed to). */
const NO_KEYS: string[] = Object.freeze([]) as unknown as string[];
/** Command specs by the exact spelling a client sent (`GET`, `get`): skips a lower-casing per command. */
const SPEC_BY_RAW_NAME = new Map<string, CommandSpec>();
/** The spellings of the last commands run, as bytes, and their specs: matched without decoding the name. */
const RECENT_NAMES: Buffer[] = [];
const RECENT_SPECS: CommandSpec[] = [];
const RECENT_MAX = 8;
let recentNext = 0;

/**
 * The spec of the command named by `b` (any letter case), or undefined. The few spellings a
 * workload uses are matched byte by byte (no string per command); others go through the maps.
 */
function specOf(b: Buffer): CommandSpec | undefined {
  const len = b.length;
  next: for (let i = 0; i < RECENT_NAMES.length; i++) {
    const n = RECENT_NAMES[i] as Buffer;
    if (n.length !== len) continue;
    for (let j = 0; j < len; j++) if (n[j] !== b[j]) continue next;
    return RECENT_SPECS[i];
  }
  const raw = b.toString('latin1');
  let spec = SPEC_BY_RAW_NAME.get(raw);
  if (spec === undefined) {
    spec = COMMANDS.get(raw.toLowerCase());
    // Remember the spelling clients use (redis-benchmark sends "SET"); only known names, so
    // the cache stays bounded by the table's size times the spellings in use.
    if (spec !== undefined && SPEC_BY_RAW_NAME.size < 4096) SPEC_BY_RAW_NAME.set(raw, spec);
  }
  if (spec !== undefined) {
    RECENT_NAMES[recentNext] = Buffer.from(b);
    RECENT_SPECS[recentNext] = spec;
    recentNext = (recentNext + 1) % RECENT_MAX;
  }
  return spec;
}

function reply(r: Reply): Outcome {
  return { kind: 'reply', reply: r };
}

function replyOrNone(r: Reply): Outcome {
  return r === NO_REPLY ? { kind: 'none' } : { kind: 'reply', reply: r };
}
