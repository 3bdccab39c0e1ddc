/** Wiring of one Beacon node: backend → store → watch hub → config layer → HTTP API, and an orderly shutdown. */
import { randomUUID } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import { rootCertificates } from 'node:tls';
import type { FastifyInstance } from 'fastify';
import { registerClusterRoute } from '../api/http/admin-routes.js';
import { checkCorsOrigins, createHttpServer } from '../api/http/server.js';
import type { HttpContext } from '../api/http/context.js';
import { DEFAULT_RETENTION_GRACE_MS, createBackend } from '../backend/index.js';
import type { RingRecord } from '../backend/postgres/index.js';
import { startSecurity, type Security, type SecurityOptions } from '../auth/index.js';
import { CacheRing, CacheTier, SlotOwnership, type CacheConfig } from '../cache/index.js';
import { ConfigService, PolicyStore, loadKeyring } from '../config/index.js';
import { InvalidArgumentError, UnavailableError } from '../errors.js';
import { Store, DEFAULT_MAX_VALUE_BYTES } from '../kv/index.js';
import { Metrics, createLogger, type Logger } from '../obs/index.js';
import { startMetricsStore, type MetricsStore, type MetricsStoreOptions } from '../obs/ingest/index.js';
import { WatchHub } from '../watch/index.js';
import { RespServer, DEFAULT_RESP_PORT } from '../api/resp/index.js';
import { RULE_FILE_PREFIX, RuleManager, SilenceStore, checkRuleFileText, loadDefaultRules, type OutgoingAlert } from '../obs/alerting/index.js';
import { AlertmanagerClient, Notifier, parseNotifyConfig, type NotifyConfig } from '../obs/notify/index.js';
import { DashboardStore } from '../obs/dashboards/index.js';
import { STALE_MARKER, type Labels, type SeriesInput } from '../obs/tsdb/index.js';
import type { RuleSample } from '../obs/rules/index.js';
import { isSharedBackend, startCluster, type Cluster } from './cluster.js';
import { startRollouts } from './rollouts.js';

/** Options of {@link startNode}; every field has the default `beacon serve` uses. */
export interface NodeOptions {
  /** Directory for the embedded store and node files. Default `./data`. */
  dataDir?: string;
  /** `sqlite:PATH`, `sqlite::memory:` or `postgres://…`. Default SQLite in `dataDir`. */
  backend?: string;
  /** Address to bind. Default 127.0.0.1. */
  host?: string;
  /** The URL other nodes and clients use to reach this node, shown in `/v1/cluster`. Default: the bound address. */
  advertiseUrl?: string;
  /** HTTP port; 0 picks a free one. Default 7379. */
  httpPort?: number;
  /** Development mode: no authentication (once it exists), with a loud warning. */
  dev?: boolean;
  /** Largest value in bytes. Default 1 MiB. */
  maxValueBytes?: number;
  /** A logger; default JSON to stdout at `BEACON_LOG_LEVEL`. */
  logger?: Logger;
  // --- security (issue 5): docs/security.md ------------------------------------------------------
  /** Authentication, rate limits, OIDC and audit retention (authentication is off with `dev`). */
  security?: SecurityOptions;
  /** TLS for HTTP: PEM file paths; `clientCa` turns on client-certificate verification (mTLS). */
  tls?: { cert: string; key: string; clientCa?: string };
  /** The KEK file of secret namespaces (default: the `BEACON_KEK` environment variable, else none). */
  kekFile?: string;
  // --- end security ------------------------------------------------------------------------------
  /**
   * Seconds between history-retention passes (namespaces' `historyRetention`), run by the node
   * that drives lease expiry; other nodes re-read the retention floors as often. 0 turns the
   * passes off. Default 60.
   */
  retentionIntervalSeconds?: number;
  /**
   * A row superseded less than this many ms ago is never removed by history retention (so lagging
   * followers and watch catch-ups are not raced). Default 60 000; tests set it lower.
   */
  retentionGraceMs?: number;
  /**
   * Origins of browser apps allowed to call the HTTP API (CORS), e.g.
   * `['https://console.example.com']`; `['*']` only with `dev`. Default none (no CORS headers).
   * See docs/api.md.
   */
  corsOrigins?: string[];
  // --- watch limits (issue 9 findings 2 and 5): docs/security.md "Limits" ---------------------------
  /** Watch limits; each absent one keeps the hub's default (see `DEFAULT_WATCH_HUB_OPTIONS`). */
  watchLimits?: {
    /** Watches one WebSocket (watch or config socket) may hold. Default 1,000. */
    maxWatchesPerConnection?: number;
    /** Watches one principal may hold on this node. Default 10,000. */
    maxWatchesPerPrincipal?: number;
    /** Node-wide bytes of log chunks held for watch catch-up. Default 256 MiB. */
    catchUpBudgetBytes?: number;
  };
  // --- end watch limits ------------------------------------------------------------------------------
  // --- JSON limits (issue 9 findings 6, 7): docs/security.md "Limits" -----------------------------
  /** Largest namespace JSON Schema, in bytes of its JSON text. Default 256 KiB (`--max-schema-bytes`). */
  maxSchemaBytes?: number;
  /** Deepest nesting of a namespace JSON Schema. Default 64 (`--max-schema-depth`, at most 256). */
  maxSchemaDepth?: number;
  /** Deepest nesting of a JSON value the node parses (config writes, json namespaces). Default 512 (`--max-json-depth`, at most 2048). */
  maxJsonDepth?: number;
  /**
   * The least time in ms a lease must have left for a lock or leadership to be granted on it
   * (capped at half the lease's TTL; 0 turns the check off). Default 1000. docs/coordination.md.
   */
  lockLeaseFloorMs?: number;
  /** The time-series store: retention, limits, scraping, query limits (issue 12, docs/metrics.md). */
  metricsStore?: MetricsStoreOptions;
  /**
   * Cache tier settings at start (Redis CONFIG names: `maxmemory`, `maxmemory-policy`,
   * `appendonly`, `appendfsync`, …); they win over settings saved by CONFIG SET. See docs/cache.md.
   */
  cache?: Partial<CacheConfig>;
  // --- RESP listener (issue 11): docs/resp.md ---------------------------------------------------
  /**
   * Port of the Redis protocol listener on `host` (TLS with `tls`); 0 picks a free one; 'off'
   * disables it. Default 6380, or a free port when `httpPort` is 0 (a node asked for a free HTTP
   * port, as tests and benchmarks do, must not collide on a fixed RESP port).
   */
  respPort?: number | 'off';
  // --- alerting (issue 13): docs/alerting.md ------------------------------------------------------
  /** Alert rules and notifications. */
  alerting?: AlertingOptions;
  /** How often the rollout driver runs, ms (issue 16, docs/rollout.md). Default 1000. */
  rolloutTickMs?: number;
}

/** Alerting settings of a node (issue 13, docs/alerting.md). */
export interface AlertingOptions {
  /** Rule files (`--rules FILE…`) stored into the store at start under their base names (without `.yml`/`.yaml`/`.json`). */
  ruleFiles?: string[];
  /** Whether the default SLO rules are evaluated (`--no-default-rules` turns them off). Default true. */
  defaultRules?: boolean;
  /** Interval of groups that set none, ms (`--evaluation-interval`). Default 15 s. */
  evaluationIntervalMs?: number;
  /** The URL in notifications' links (`--external-url`). Default the node's URL. */
  externalUrl?: string;
  /** Alertmanagers to send alerts to (`--alertmanager-url`), as Prometheus does. */
  alertmanagerUrls?: string[];
  /** The built-in notifier's configuration file, in Alertmanager's format (`--notify-config`; docs/notifications.md). */
  notifyConfig?: string;
}

/** What one history-retention pass did. */
export interface RetentionPassResult {
  /** Log rows removed. */
  removed: number;
  /** Key ranges looked at (one per namespace with a retention policy, split around nested namespaces). */
  ranges: number;
  /** False when this node does not drive lease expiry (then it only re-read the floors). */
  leader: boolean;
}

/** A running node. */
export interface BeaconNode {
  /** Base URL of the HTTP API, e.g. `http://127.0.0.1:7379`. */
  url: string;
  port: number;
  dataDir: string;
  store: Store;
  hub: WatchHub;
  http: FastifyInstance;
  logger: Logger;
  /** Authentication, audit and the first-start administrator (issue 5). */
  security: Security;
  /** Namespace policies (formats, schemas, secrets, history retention). */
  policies: PolicyStore;
  /** The cache tier: keys of memory namespaces (issue 11, docs/cache.md). */
  cache: CacheTier;
  /** The RESP listener and its port (issue 11); undefined with `respPort: 'off'`. */
  resp?: { server: RespServer; port: number; url: string };
  /**
   * Runs one history-retention pass now (what the `--retention-interval` timer runs): on the node
   * that drives lease expiry it prunes every namespace with a `historyRetention`; elsewhere it
   * re-reads the floors. Passes never overlap: a call during a pass waits for it and runs again.
   * @throws UnavailableError when the backend fails.
   */
  runRetention(): Promise<RetentionPassResult>;
  /** Stops accepting requests, ends watches, finishes pending commits and closes the backend. */
  stop(): Promise<void>;
  /** The time-series store, its ingestion and scraping (issue 12). */
  metricsStore: MetricsStore;
}

function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version?: string };
    return pkg.version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
}

/** The version of this build, from package.json. */
export const VERSION = packageVersion();
/** How long a stopping node waits for the cache ring to drop it (its slots are then handed over), in ms. */
const LEAVE_RING_MS = 3000;
/** How long a stopping node waits for its hand-overs to end, in ms. */
const HANDOVER_ON_STOP_MS = 5000;

/**
 * Starts a node: opens the backend, rebuilds the view, and listens for HTTP.
 * @throws when the backend cannot be opened (bad path, newer schema) or the port is taken;
 *   InvalidArgumentError when a CORS origin is malformed, or `*` without `dev`.
 */
export async function startNode(opts: NodeOptions = {}): Promise<BeaconNode> {
  // Checked before anything is opened, so a bad flag leaves nothing behind.
  const corsOrigins = checkCorsOrigins(opts.corsOrigins ?? [], opts.dev ?? false);
  // Rule files given at start are checked before anything is opened: a bad file stops the start (issue 13).
  const ruleFiles = (opts.alerting?.ruleFiles ?? []).map((path) => {
    const name = basename(path).replace(/\.(ya?ml|json)$/i, '');
    const text = readFileSync(path, 'utf8');
    checkRuleFileText(name, text);
    return { name, text };
  });
  // The notifier's configuration too (issue 13, docs/notifications.md).
  let notifyConfig: NotifyConfig | undefined;
  if (opts.alerting?.notifyConfig !== undefined) {
    const path = opts.alerting.notifyConfig;
    try {
      notifyConfig = parseNotifyConfig(readFileSync(path, 'utf8'));
    } catch (err) {
      throw new InvalidArgumentError(`--notify-config ${path}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  for (const u of opts.alerting?.alertmanagerUrls ?? []) {
    if (!/^https?:\/\//.test(u)) throw new InvalidArgumentError(`--alertmanager-url ${JSON.stringify(u)}: expected an http:// or https:// URL`);
  }
  const dataDir = resolve(opts.dataDir ?? './data');
  mkdirSync(dataDir, { recursive: true, mode: 0o700 }); // 0700: it holds password hashes and the token signing key
  const logger = opts.logger ?? createLogger();
  const backend = await createBackend(opts.backend, dataDir);
  // On a shared backend (PostgreSQL) only the cluster's expiry leader drives lease expiry.
  const store = new Store({
    backend,
    maxValueBytes: opts.maxValueBytes ?? DEFAULT_MAX_VALUE_BYTES,
    driveExpiry: !isSharedBackend(backend),
  });
  const nodeId = randomUUID();
  const startedAt = Date.now();
  // A starting node counts as a member from before its view is loaded (see PostgresBackend.startingNode).
  if (isSharedBackend(backend)) backend.startingNode = { id: nodeId, version: VERSION, startedAt };
  const opened = performance.now();
  await store.open();
  logger.info(
    { backend: backend.description, revision: store.revision, keys: store.keyCount, ms: Math.round(performance.now() - opened), view: store.backend.lastViewLoad },
    'store opened',
  );
  const metrics = new Metrics({
    leaseCount: () => store.leaseCount,
    keyCount: () => store.keyCount,
    revision: () => store.revision,
    compactRevision: () => store.compactRevision,
  });
  metrics.registerDataDirMetrics(dataDir);
  store.onBatch = (n, ms) => {
    metrics.commitBatchSize.observe(n);
    metrics.commitDuration.observe(ms / 1000);
  };
  const hub = new WatchHub(store, metrics, opts.watchLimits ?? {});
  const configs = new ConfigService(store);
  // --- security (issue 5) ----------------------------------------------------------------------
  let security: Security;
  let policies: PolicyStore;
  let tls: { cert: Buffer; key: Buffer; clientCa?: Buffer } | undefined;
  try {
    policies = new PolicyStore(store, loadKeyring(opts.kekFile), {
      ...(opts.maxSchemaBytes !== undefined ? { maxSchemaBytes: opts.maxSchemaBytes } : {}),
      ...(opts.maxSchemaDepth !== undefined ? { maxSchemaDepth: opts.maxSchemaDepth } : {}),
      ...(opts.maxJsonDepth !== undefined ? { maxJsonDepth: opts.maxJsonDepth } : {}),
    });
    policies.onLimitExceeded = (limit) => metrics.jsonLimitRejections.inc({ limit });
    policies.start();
    security = await startSecurity({ store, dataDir, logger, dev: opts.dev ?? false, shared: isSharedBackend(backend), options: opts.security });
    if (opts.tls !== undefined) {
      tls = { cert: readFileSync(opts.tls.cert), key: readFileSync(opts.tls.key) };
      if (opts.tls.clientCa !== undefined) tls.clientCa = readFileSync(opts.tls.clientCa);
    }
  } catch (err) {
    await store.close();
    throw err;
  }
  // --- end security ----------------------------------------------------------------------------
  // --- metrics store (issue 12) ------------------------------------------------------------------
  let metricsStore: MetricsStore;
  try {
    // On PostgreSQL every node flushes its samples there and queries see every node's (docs/metrics.md).
    const shared = isSharedBackend(backend) && opts.backend !== undefined ? { postgres: { url: opts.backend, ...opts.metricsStore?.postgres } } : {};
    metricsStore = await startMetricsStore({ ...opts.metricsStore, ...shared, dataDir, metrics, logger, version: VERSION });
  } catch (err) {
    security.stop();
    policies.stop();
    await store.close();
    throw err;
  }
  // --- end metrics store -------------------------------------------------------------------------
  // --- cache tier (issue 11) -------------------------------------------------------------------
  // The RESP listener registers its command executor here (cache.open(exec)) so the AOF replays
  // every command it propagates; without it the built-in executor replays the HTTP face's writes.
  const cache = new CacheTier({
    namespaces: (key) => policies.memoryNamespace(key),
    dataDir,
    maxValueBytes: store.maxValueBytes,
    logger,
    ...(opts.cache !== undefined ? { config: opts.cache } : {}),
  });
  const member: { cluster?: Cluster } = {}; // set once the node listens (its URL is part of its membership)
  // The cache tier across nodes (issue 15): on a shared backend the memory keys are spread over
  // the nodes' RESP listeners by slot; a node serves its slots only while its membership is confirmed.
  const slots =
    opts.respPort !== 'off' && isSharedBackend(backend) ? new SlotOwnership(
          cache,
          () => member.cluster?.ringConfirmed() === true,
          (key) => policies.memoryNamespace(key)?.replicationFactor ?? 1,
        ) : undefined;
  // With TLS the other nodes' listeners (RESP links, /v1/cache forwards) are verified against the
  // system's roots, this node's own certificate chain (a certificate every node shares) and the client CA.
  const peerCa = tls !== undefined && slots !== undefined ? [...rootCertificates, tls.cert, ...(tls.clientCa !== undefined ? [tls.clientCa] : [])] : undefined;
  // The RESP listener is built before the AOF loads so the file replays through its commands (issue 11).
  const respServer =
    opts.respPort === 'off'
      ? undefined
      : new RespServer({
          store,
          policies,
          cache,
          auth: security.auth,
          audit: security.audit,
          logger,
          version: VERSION,
          ...(tls !== undefined ? { tls: { cert: tls.cert, key: tls.key, ...(tls.clientCa !== undefined ? { clientCa: tls.clientCa } : {}) } } : {}),
          ...(slots !== undefined && isSharedBackend(backend)
            ? {
                cluster: {
                  selfId: nodeId,
                  slots,
                  clusterId: backend.clusterId,
                  ...(peerCa !== undefined ? { peerCa } : {}),
                  checkPeer: (clusterId: string, peer: string) =>
                    member.cluster?.checkPeer(clusterId, peer) ?? Promise.resolve('this node has not joined its cluster yet'),
                },
              }
            : {}),
        });
  try {
    await cache.open(respServer?.aofExecutor());
  } catch (err) {
    await respServer?.close();
    metricsStore.stop();
    policies.stop();
    security.stop();
    await store.close();
    throw err;
  }
  metrics.registerCacheMetrics(() => cache.namespaceStats(), () => cache.config.maxmemory);
  if (slots !== undefined) {
    metrics.registerCacheClusterMetrics(() => {
      const c = respServer?.cluster()?.counters() ?? { forwarded: 0, forwardErrors: 0, moved: 0 };
      return {
        ...c,
        ringChanges: slots.changes,
        epoch: slots.ring?.epoch ?? 0,
        slots: slots.ring?.ownedCount ?? 0,
        confirmed: member.cluster?.ringConfirmed() === true ? 1 : 0,
        replicationInFlight: respServer?.replicationInFlight() ?? 0,
        promotedSlots: slots.promoted,
        handoverKeys: respServer?.handedOver() ?? 0,
        handoverMissedSlots: slots.handoversMissed,
      };
    });
  }
  // --- end cache tier --------------------------------------------------------------------------
  let stopping = false;
  const httpCtx: HttpContext = {
    store,
    hub,
    configs,
    metrics,
    logger,
    auth: security.auth,
    policies,
    cache,
    ...(slots !== undefined ? { cacheSlots: slots } : {}),
    ...(peerCa !== undefined ? { peerCa } : {}),
    audit: security.audit,
    metricsStore, // issue 12
    ...(tls !== undefined ? { tls } : {}),
    ...(opts.lockLeaseFloorMs !== undefined ? { coord: { leaseFloorMs: opts.lockLeaseFloorMs } } : {}),
    info: {
      nodeId,
      version: VERSION,
      startedAt,
      dev: opts.dev ?? false,
      dataDir,
      ready: () => !stopping && member.cluster?.ready === true,
    },
  };
  const http = await createHttpServer(httpCtx, { corsOrigins });
  registerClusterRoute(http, async () => {
    if (member.cluster === undefined) throw new UnavailableError('the node is starting');
    const status = await member.cluster.status();
    const ring = slots?.ring;
    if (ring === undefined) return status;
    // Each node's part of the cache ring: its slots from the ring in force, its keys from its heartbeat (ours: now).
    return {
      ...status,
      cacheRingEpoch: ring.epoch,
      cacheSlots: ring.ownerRanges().map((r): [number, number, string] => [r.start, r.end, r.owner.id]),
      nodes: status.nodes.map((n) => ({
        ...n,
        cache: { role: ring.has(n.id) ? ('primary' as const) : ('none' as const), slots: ring.slotCount(n.id), keys: n.self ? cache.dbsize() : (n.cache?.keys ?? 0) },
      })),
    };
  });
  const host = opts.host ?? '127.0.0.1';
  await http.listen({ host, port: opts.httpPort ?? 7379 });
  const addr = http.server.address();
  const port = typeof addr === 'object' && addr !== null ? addr.port : (opts.httpPort ?? 7379);
  const url = `${tls !== undefined ? 'https' : 'http'}://${host.includes(':') ? `[${host}]` : host}:${port}`;
  // Other nodes and clients reach this node at the advertised URL (a node bound to 0.0.0.0 is not reachable there).
  const cluster = startCluster({
    store,
    logger,
    nodeId,
    url: opts.advertiseUrl ?? url,
    version: VERSION,
    startedAt,
    ...(slots !== undefined ? {
          onRing: (r) => {
            // A `leaving` member owns no slot; it hands its slots over to their new primaries.
            const owners = (ms: RingRecord['members']): RingRecord['members'] => ms.filter((m) => m.leaving !== true);
            slots.apply(
              new CacheRing(r.epoch, owners(r.members), nodeId),
              r.gap === true,
              r.previous !== undefined ? new CacheRing(r.epoch - 1, owners(r.previous), nodeId) : undefined,
              new Set(r.members.filter((m) => m.leaving === true).map((m) => m.id)),
            );
          },
          cacheKeys: () => cache.dbsize() } : {}),
  });
  member.cluster = cluster;
  if (!(await cluster.waitReady(5000))) logger.warn('the node is not ready yet: the change feed has not caught up');
  metricsStore.startScraping(new URL(opts.advertiseUrl ?? url).host); // issue 12: own metrics every 15 s, --scrape-config targets
  // --- RESP listener (issue 11) ----------------------------------------------------------------
  let resp: BeaconNode['resp'];
  if (respServer !== undefined) {
    try {
      const respPort = await respServer.listen(host, typeof opts.respPort === 'number' ? opts.respPort : opts.httpPort === 0 ? 0 : DEFAULT_RESP_PORT);
      const scheme = tls !== undefined ? 'rediss' : 'redis';
      resp = { server: respServer, port: respPort, url: `${scheme}://${host.includes(':') ? `[${host}]` : host}:${respPort}` };
      // Other nodes reach the listener on the advertised HTTP URL's host (a node bound to 0.0.0.0 is not reachable there).
      cluster.setRespUrl(opts.advertiseUrl !== undefined ? `${scheme}://${new URL(opts.advertiseUrl).hostname}:${respPort}` : resp.url);
      if (slots !== undefined) {
        // Serve cache keys from the start: wait (bounded) until the leader took this node into the ring.
        const deadline = Date.now() + 5000;
        while (Date.now() < deadline && !(slots.ring?.has(nodeId) === true && !slots.busy && cluster.ringConfirmed())) await new Promise((r) => setTimeout(r, 10));
        if (slots.ring?.has(nodeId) !== true) logger.warn('this node is not in the cache ring yet: its RESP port answers MOVED or forwards until it is');
      }
    } catch (err) {
      await respServer.close();
      metricsStore.stop();
      await http.close();
      await cluster.stop();
      await cache.close();
      security.stop();
      policies.stop();
      await store.close();
      throw err;
    }
  }
  // --- end RESP listener -----------------------------------------------------------------------
  // --- alerting (issue 13) ---------------------------------------------------------------------
  // Silences live in the store; the built-in notifier mutes what they match.
  const silenceStore = new SilenceStore(store, logger);
  silenceStore.start();
  const externalURL = opts.alerting?.externalUrl ?? opts.advertiseUrl ?? url;
  const notifier = notifyConfig === undefined ? undefined : new Notifier({ config: notifyConfig, logger, silences: silenceStore.silences, metrics, externalURL });
  const alertmanagers = (opts.alerting?.alertmanagerUrls ?? []).length === 0 ? undefined : new AlertmanagerClient({ urls: opts.alerting?.alertmanagerUrls ?? [], logger, metrics });
  // Alerts (from rules, and rollouts' rollbacks) go to every Alertmanager and the built-in notifier.
  const sendAlerts = (alerts: OutgoingAlert[]): void => {
    alertmanagers?.send(alerts);
    try {
      notifier?.receive(alerts);
    } catch (err) {
      logger.error({ err }, 'the notifier refused alerts');
    }
  };
  // One node evaluates: the expiry leader (PostgreSQL) or the node itself (SQLite).
  const rules = new RuleManager({
    store,
    querier: metricsStore.querier, // on PostgreSQL: every node's samples (issue 12)
    append: (samples) => appendRuleSamples(metricsStore, samples),
    logger,
    isEvaluator: () => !stopping && cluster.expiryLeader,
    ...(opts.alerting?.evaluationIntervalMs !== undefined ? { evaluationIntervalMs: opts.alerting.evaluationIntervalMs } : {}),
    externalURL,
    send: sendAlerts,
    queryOptions: { timeoutMs: metricsStore.queryTimeoutMs, maxSamples: metricsStore.maxQuerySamples },
    ...(opts.alerting?.defaultRules !== false ? { builtinFiles: [loadDefaultRules()] } : {}),
    onEvaluation: (e) => {
      metrics.ruleGroupDuration.observe({ rule_group: `${e.file};${e.group}` }, e.durationMs / 1000);
      metrics.ruleEvaluationFailures.inc({ rule_group: `${e.file};${e.group}` }, e.failedRules);
    },
    onMissed: (e) => metrics.ruleGroupMissed.inc({ rule_group: `${e.file};${e.group}` }),
  });
  rules.start();
  for (const f of ruleFiles) {
    const existing = store.get(`${RULE_FILE_PREFIX}${f.name}`);
    if (existing !== undefined && Buffer.from(existing.value).toString('utf8') === f.text) continue;
    await rules.put(f.name, f.text, { principal: 'system', action: 'alerts.rules.put', source: 'beacon serve --rules' });
    logger.info({ file: f.name }, 'rule file stored from --rules');
  }
  httpCtx.alerting = {
    rules,
    dashboards: new DashboardStore(store),
    silences: silenceStore,
    notifications: () => ({ receivers: notifier?.receiversStatus().receivers ?? [], alertmanagers: alertmanagers?.status() ?? [] }),
  };
  // Expired silences are dropped after Alertmanager's retention, by the evaluating node.
  const silenceTimer = setInterval(() => {
    if (stopping || !cluster.expiryLeader) return;
    silenceStore.collect().catch((err: unknown) => logger.warn({ err }, 'expired silences could not be removed'));
  }, 3_600_000);
  silenceTimer.unref();
  // --- end alerting ----------------------------------------------------------------------------

  // --- staged rollouts (issue 16): docs/rollout.md; driven by the node that drives lease expiry
  const rollouts = startRollouts({
    store, rules, querier: metricsStore.querier, audit: security.audit, logger, externalURL,
    adoption: backend, // the adoption table (migration 008), shared in PostgreSQL mode
    isDriver: () => !stopping && cluster.expiryLeader,
    send: sendAlerts,
    ...(opts.rolloutTickMs !== undefined ? { tickMs: opts.rolloutTickMs } : {}),
  });
  httpCtx.rollouts = rollouts.context;
  // --- end staged rollouts

  // History retention: the node that drives lease expiry prunes (one node, so passes never race
  // each other); every node re-reads the floors, so its reads and watches refuse what is gone.
  const graceMs = opts.retentionGraceMs ?? DEFAULT_RETENTION_GRACE_MS;
  const retentionPass = async (): Promise<RetentionPassResult> => {
    if (!cluster.expiryLeader) {
      await store.refreshFloors();
      return { removed: 0, ranges: 0, leader: false };
    }
    const ranges = policies.retentionRanges();
    let removed = 0;
    for (const r of ranges) {
      if (stopping) break;
      const rule = {
        graceMs,
        ...(r.retention.versions !== undefined ? { versions: r.retention.versions } : {}),
        ...(r.retention.days !== undefined ? { maxAgeMs: r.retention.days * 86_400_000 } : {}),
      };
      const res = await store.pruneHistory(r.key, r.rangeEnd, rule);
      removed += res.removed;
      metrics.historyRetentionRemoved.inc(res.removed);
      if (res.removed > 0) logger.info({ namespace: r.prefix, removed: res.removed, floor: res.floor }, 'history retention removed old versions');
    }
    return { removed, ranges: ranges.length, leader: true };
  };
  let retentionRunning: Promise<RetentionPassResult> | undefined;
  const runRetention = async (): Promise<RetentionPassResult> => {
    while (retentionRunning !== undefined) await retentionRunning.catch(() => undefined);
    if (stopping) throw new UnavailableError('the node is shutting down');
    const p = retentionPass();
    retentionRunning = p;
    try {
      const res = await p;
      metrics.historyRetentionPasses.inc({ outcome: 'ok' });
      return res;
    } catch (err) {
      metrics.historyRetentionPasses.inc({ outcome: 'error' });
      throw err;
    } finally {
      retentionRunning = undefined;
    }
  };
  const intervalSeconds = opts.retentionIntervalSeconds ?? 60;
  const retentionTimer =
    intervalSeconds > 0
      ? setInterval(() => {
          if (stopping || retentionRunning !== undefined) return;
          runRetention().catch((err: unknown) => {
            if (!stopping) logger.warn({ err }, 'history retention pass failed; retrying at the next interval');
          });
        }, intervalSeconds * 1000)
      : undefined;
  retentionTimer?.unref();

  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopped ??= (async () => {
      stopping = true;
      // A running pass is not awaited here: closing the backend stops it at its next batch.
      if (retentionTimer !== undefined) clearInterval(retentionTimer);
      rules.stop(); // issue 13
      rollouts.stop(); // issue 16
      clearInterval(silenceTimer);
      silenceStore.stop();
      await Promise.all([notifier?.stop(2000), alertmanagers?.stop(2000)]);
      hub.close();
      if (slots !== undefined && resp !== undefined && (await cluster.leaveRing(LEAVE_RING_MS))) {
        // Issue 15: out of the cache ring first, so that this node's slots are handed over, not lost.
        await resp.server.handoversSettled(HANDOVER_ON_STOP_MS);
      }
      await resp?.server.close(); // issue 11
      await http.close();
      await metricsStore.stop(); // issue 12
      await cluster.stop();
      security.stop(); // issue 5
      policies.stop();
      await cache.close(); // issue 11
      await store.close();
    })();
    return stopped;
  };
  return { url, port, dataDir, store, hub, http, logger, security, policies, cache, runRetention, stop, metricsStore, ...(resp !== undefined ? { resp } : {}) };
}

/** Stores the samples of rule evaluations (recording rules, `ALERTS`, `ALERTS_FOR_STATE`) in the time-series store. */
function appendRuleSamples(metricsStore: MetricsStore, samples: RuleSample[]): void {
  const batch: SeriesInput[] = samples.map((s) => {
    const labels: Labels = Object.keys(s.labels)
      .sort()
      .map((name) => ({ name, value: s.labels[name] as string }));
    return { labels, timestamps: [s.timestampMs], values: Float64Array.of(s.value === 'stale' ? STALE_MARKER : s.value) };
  });
  metricsStore.tsdb.append(batch);
}
