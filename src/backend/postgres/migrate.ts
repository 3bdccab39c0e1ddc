/** Numbered SQL migrations for the PostgreSQL backend, applied once by whichever node starts first. */
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type pg from 'pg';
import { BeaconError, ErrorCode } from '../../errors.js';

const MIGRATIONS_DIR = fileURLToPath(new URL('./migrations/', import.meta.url));

/** The advisory lock (transaction scope) that serialises migrations of nodes starting together. */
const MIGRATION_LOCK = 0x6265_6163_6e01; // "beacn" + 1

/** The numbered migration files this build knows, in order: `[version, file name]`. */
export function knownMigrations(): [number, string][] {
  return readdirSync(MIGRATIONS_DIR)
    .filter((f) => /^\d+_.*\.sql$/.test(f))
    .sort()
    .map((f) => [Number.parseInt(f, 10), f]);
}

/**
 * Brings the schema up to date inside one transaction under an advisory lock, so nodes that
 * start at the same time migrate once. `where` names the database in the error message.
 * @throws BeaconError (`unavailable`) when the database has a newer schema than this build knows.
 */
export async function migrate(client: pg.ClientBase, where: string): Promise<number> {
  const files = knownMigrations();
  const latestKnown = Math.max(0, ...files.map(([v]) => v));
  await client.query('BEGIN');
  try {
    await client.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
    await client.query(
      'CREATE TABLE IF NOT EXISTS beacon_schema_migrations (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())',
    );
    const res = await client.query<{ version: number }>('SELECT version FROM beacon_schema_migrations');
    const applied = new Set(res.rows.map((r) => Number(r.version)));
    const newest = Math.max(0, ...applied);
    if (newest > latestKnown) {
      throw new BeaconError(
        ErrorCode.Unavailable,
        `the database ${where} has Beacon schema version ${newest}, newer than this Beacon understands (${latestKnown}); upgrade Beacon`,
        { schemaVersion: newest, supportedVersion: latestKnown },
      );
    }
    for (const [version, file] of files) {
      if (applied.has(version)) continue;
      await client.query(readFileSync(MIGRATIONS_DIR + file, 'utf8'));
      await client.query('INSERT INTO beacon_schema_migrations (version) VALUES ($1)', [version]);
    }
    await client.query('COMMIT');
    return latestKnown;
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}
