/** Wiring of one Beacon node: backend → store → watch hub → config layer → HTTP API, and an orderly shutdown. */
import { randomUUID } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { createHttpServer } from '../api/http/server.js';
import { createBackend } from '../backend/index.js';
import { ConfigService } from '../config/index.js';
import { Store, DEFAULT_MAX_VALUE_BYTES } from '../kv/index.js';
import { Metrics, createLogger, type Logger } from '../obs/index.js';
import { WatchHub } from '../watch/index.js';

/** Options of {@link startNode}; every field has the default `beacon serve` uses. */
export interface NodeOptions {
  /** Directory for the embedded store and node files. Default `./data`. */
  dataDir?: string;
  /** `sqlite:PATH`, `sqlite::memory:` or `postgres://…`. Default SQLite in `dataDir`. */
  backend?: string;
  /** Address to bind. Default 127.0.0.1. */
  host?: string;
  /** HTTP port; 0 picks a free one. Default 7379. */
  httpPort?: number;
  /** Development mode: no authentication (once it exists), with a loud warning. */
  dev?: boolean;
  /** Largest value in bytes. Default 1 MiB. */
  maxValueBytes?: number;
  /** A logger; default JSON to stdout at `BEACON_LOG_LEVEL`. */
  logger?: Logger;
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
  /** Stops accepting requests, ends watches, finishes pending commits and closes the backend. */
  stop(): Promise<void>;
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

/**
 * Starts a node: opens the backend, rebuilds the view, and listens for HTTP.
 * @throws when the backend cannot be opened (bad path, newer schema) or the port is taken.
 */
export async function startNode(opts: NodeOptions = {}): Promise<BeaconNode> {
  const dataDir = resolve(opts.dataDir ?? './data');
  mkdirSync(dataDir, { recursive: true });
  const logger = opts.logger ?? createLogger();
  const backend = await createBackend(opts.backend, dataDir);
  const store = new Store({ backend, maxValueBytes: opts.maxValueBytes ?? DEFAULT_MAX_VALUE_BYTES });
  const opened = performance.now();
  await store.open();
  logger.info(
    { backend: backend.description, revision: store.revision, keys: store.keyCount, ms: Math.round(performance.now() - opened) },
    'store opened',
  );
  const metrics = new Metrics({
    leaseCount: () => store.leaseCount,
    keyCount: () => store.keyCount,
    revision: () => store.revision,
    compactRevision: () => store.compactRevision,
  });
  store.onBatch = (n, ms) => {
    metrics.commitBatchSize.observe(n);
    metrics.commitDuration.observe(ms / 1000);
  };
  const hub = new WatchHub(store, metrics);
  const configs = new ConfigService(store);
  let stopping = false;
  const http = await createHttpServer({
    store,
    hub,
    configs,
    metrics,
    logger,
    info: {
      nodeId: randomUUID(),
      version: VERSION,
      startedAt: Date.now(),
      dev: opts.dev ?? false,
      dataDir,
      ready: () => !stopping,
    },
  });
  const host = opts.host ?? '127.0.0.1';
  await http.listen({ host, port: opts.httpPort ?? 7379 });
  const addr = http.server.address();
  const port = typeof addr === 'object' && addr !== null ? addr.port : (opts.httpPort ?? 7379);
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;

  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopped ??= (async () => {
      stopping = true;
      hub.close();
      await http.close();
      await store.close();
    })();
    return stopped;
  };
  return { url, port, dataDir, store, hub, http, logger, stop };
}
