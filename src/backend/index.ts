/** Durable storage under the kv core: the Backend contract and its implementations, chosen by `--backend`. */
import { resolve } from 'node:path';
import { InvalidArgumentError } from '../errors.js';
import { SqliteBackend } from './sqlite/sqlite-backend.js';
import type { Backend } from './types.js';

export type { AdoptionRow, Backend, BackendRangeQuery, BackendState, CommitBatch, CommitPlanner, HistoryFloor, LogRange, PruneResult, RetentionRule, ViewLoadReport } from './types.js';
export { DEFAULT_RETENTION_GRACE_MS, floorFor } from './retention.js';
export { SqliteBackend } from './sqlite/sqlite-backend.js';

/**
 * Builds a backend from a `--backend` value: `sqlite:PATH`, `sqlite::memory:`, or a
 * `postgres://` / `postgresql://` URL. `dataDir` resolves the default SQLite path.
 * @throws InvalidArgumentError for an unknown scheme.
 */
export async function createBackend(spec: string | undefined, dataDir: string): Promise<Backend> {
  if (spec === undefined || spec === '' || spec === 'sqlite') {
    return new SqliteBackend({ path: resolve(dataDir, 'beacon.db') });
  }
  if (spec.startsWith('sqlite:')) {
    const path = spec.slice('sqlite:'.length);
    return new SqliteBackend({ path: path === ':memory:' ? path : resolve(path) });
  }
  if (spec.startsWith('postgres://') || spec.startsWith('postgresql://')) {
    // Loaded on demand, so a SQLite-only node never loads pg.
    const { createPostgresBackend } = await import('./postgres/index.js');
    return createPostgresBackend(spec);
  }
  throw new InvalidArgumentError(`unknown backend '${spec}': use sqlite:PATH or postgres://…`);
}
