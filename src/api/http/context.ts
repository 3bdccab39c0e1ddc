/** What every route module receives: the node's parts, wired once in src/node/. */
import type { Store } from '../../kv/index.js';
import type { Logger, Metrics } from '../../obs/index.js';
import type { WatchHub } from '../../watch/index.js';
import type { ConfigService } from '../../config/index.js';

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

/** The parts of a node that HTTP routes use. */
export interface HttpContext {
  store: Store;
  hub: WatchHub;
  configs: ConfigService;
  metrics: Metrics;
  logger: Logger;
  info: NodeInfo;
}
