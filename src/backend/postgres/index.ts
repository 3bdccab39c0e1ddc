/** The PostgreSQL backend: `--backend postgres://…` lets many stateless Beacon nodes share one database. */
import { PostgresBackend } from './postgres-backend.js';
import type { Backend } from '../types.js';

export {
  CHANGES_CHANNEL,
  CONNECT_TIMEOUT_MS,
  DEFAULT_POOL_MAX,
  EXPIRY_LOCK_KEY,
  IDLE_IN_TRANSACTION_TIMEOUT_MS,
  LEASE_TOMBSTONE_MS,
  NODE_LIVE_MS,
  PIPELINE_DEPTH,
  PostgresBackend,
  STATEMENT_TIMEOUT_MS,
  redactUrl,
} from './postgres-backend.js';
export type { ChangeSet, HeadState, LeaseChanges, LeaseRow, NodeRecord, RingRecord, PostgresBackendOptions } from './postgres-backend.js';
export { knownMigrations } from './migrate.js';

/**
 * Builds the PostgreSQL backend for a `postgres://` or `postgresql://` URL (not yet connected:
 * {@link Backend.open} connects, migrates and checks the schema version).
 * `?pool_max=N` sets the connections per node (default 10).
 * @example createPostgresBackend('postgres://beacon@db:5432/beacon?pool_max=20')
 * @throws InvalidArgumentError for a URL that cannot be parsed.
 */
export function createPostgresBackend(url: string): Backend {
  return new PostgresBackend({ url });
}
