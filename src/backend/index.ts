/** Durable storage under the kv core: the Backend contract and its implementations, chosen by `--backend`. */
import { resolve } from 'node:path';
import { InvalidArgumentError } from '../errors.js';
import { SqliteBackend } from './sqlite/sqlite-backend.js';
import type { Backend } from './types.js';

export type { Backend, BackendRangeQuery, BackendState, CommitBatch, CommitPlanner } from './types.js';
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
    const modulePath = './postgres/index.js'; // resolved at run time: the PostgreSQL backend is optional
    const mod = (await import(modulePath).catch(() => undefined)) as
      | { createPostgresBackend?: (url: string) => Backend }
      | undefined;
    if (mod?.createPostgresBackend === undefined) {
      throw new InvalidArgumentError('this build has no PostgreSQL backend yet');
    }
    return mod.createPostgresBackend(spec);
  }
  throw new InvalidArgumentError(`unknown backend '${spec}': use sqlite:PATH or postgres://…`);
}
