/**
 * The backend conformance suite on PostgreSQL: a temporary server (or `BEACON_TEST_POSTGRES_URL`),
 * one database for this file and a fresh schema for every backend the suite asks for.
 */
import { after, before } from 'node:test';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { createPostgresBackend } from '../../src/backend/postgres/index.js';
import { SqliteBackend } from '../../src/backend/index.js';
import { startPostgres, type PostgresServer } from '../helpers/postgres.js';
import { runConformance } from './suite.js';

let server: PostgresServer | undefined;
let databaseUrl = '';

before(async () => {
  server = await startPostgres();
  databaseUrl = await server.createDatabase();
});

after(async () => {
  await server?.stop();
});

async function sql(text: string): Promise<void> {
  const c = new pg.Client({ connectionString: databaseUrl });
  c.on('error', () => undefined);
  await c.connect();
  try {
    await c.query(text);
  } finally {
    await c.end();
  }
}

/** The database URL with `search_path` set to `schema`, so every table the backend creates lands there. */
function schemaUrl(schema: string): string {
  const u = new URL(databaseUrl);
  u.searchParams.set('options', `-c search_path=${schema}`);
  return u.toString();
}

runConformance('postgres', async () => {
  const schema = `conformance_${randomBytes(6).toString('hex')}`;
  await sql(`CREATE SCHEMA ${schema}`);
  const url = schemaUrl(schema);
  return {
    backend: createPostgresBackend(url),
    reopen: async () => createPostgresBackend(url),
    // Snapshots of the PostgreSQL backend are SQLite files with Beacon's SQLite schema.
    openSnapshot: async (path) => new SqliteBackend({ path }),
    cleanup: () => sql(`DROP SCHEMA ${schema} CASCADE`),
  };
});
