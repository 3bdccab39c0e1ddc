/** What every route module receives: the node's parts, wired once in src/node/. */
import type { AuditLog } from '../../audit/index.js';
import type { AuthService } from '../../auth/index.js';
import type { CacheTier, SlotOwnership } from '../../cache/index.js';
import type { ConfigService, PolicyStore } from '../../config/index.js';
import type { Store } from '../../kv/index.js';
import type { Logger, Metrics } from '../../obs/index.js';
import type { WatchHub } from '../../watch/index.js';
import type { AlertingContext } from './alert-routes.js';
import type { MetricsStoreContext } from './prom-routes.js';
import type { RolloutContext } from './rollout-routes.js';

/** Facts about the running node shown by `/v1/status`. */
export interface NodeInfo {
  nodeId: string;
  version: string;
  startedAt: number;
  dev: boolean;
  dataDir: string;
  /** Whether the backend is reachable and the view caught up (drives `/readyz`). */
  ready: () => boolean;
}

/** TLS material for the HTTP listener (PEM bytes). With `clientCa`, client certificates are requested and verified (mTLS). */
export interface HttpTls {
  cert: Buffer;
  key: Buffer;
  clientCa?: Buffer;
}

/** The parts of a node that HTTP routes use. */
export interface HttpContext {
  store: Store;
  hub: WatchHub;
  configs: ConfigService;
  metrics: Metrics;
  logger: Logger;
  info: NodeInfo;
  /**
   * Authentication and authorisation. Routes call `auth.authorize(principal, action, range)`;
   * watches filter each event with `auth.canRead(principal, key)` (see src/api/http/authz.ts
   * for the request-level helpers and the route table).
   */
  auth: AuthService;
  /**
   * Namespace policies: `policies.checkWrite(key, value)` validates (format, JSON Schema) before a
   * write (the store encrypts secrets through `policies.seal`); `policies.decodeForRead(kv,
   * mayReadSecret)` decrypts or redacts before a value leaves the node.
   */
  policies: PolicyStore;
  /** The cache tier: memory namespaces (`/v1/cache/*`, issue 11). */
  cache: CacheTier;
  /**
   * The cache tier across nodes (PostgreSQL mode): which node serves each slot; a request for a
   * key another node serves is forwarded there (docs/operations/cache-cluster.md).
   */
  cacheSlots?: SlotOwnership;
  /**
   * With TLS in a cache cluster: the certificates (PEM) other nodes are verified against when a
   * request is forwarded to them (the system's roots, this node's chain, the client CA).
   */
  peerCa?: (string | Buffer)[];
  /** The audit log (records outside kv writes: logins, identity changes, denials). */
  audit: AuditLog;
  /** TLS for the listener; plain HTTP when absent. */
  tls?: HttpTls;
  /** Coordination settings: the lease floor of lock and leadership grants, in ms (docs/coordination.md). */
  coord?: { leaseFloorMs?: number };
  /** The time-series store and its ingestion (issue 12); the metrics routes answer 503 without it. */
  metricsStore?: MetricsStoreContext;
  /** Rule files, alerts, silences and dashboards (issue 13); their routes answer 503 without it. */
  alerting?: AlertingContext;
  /** Staged config rollouts (issue 16); their routes answer 503 without it. */
  rollouts?: RolloutContext;
}
