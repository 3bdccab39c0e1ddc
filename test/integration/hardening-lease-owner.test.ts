/**
 * Issue 9 finding 9: leases are scoped to their owner. A lease belongs to the principal that
 * granted it; to any other principal (administrators excepted) it does not exist: not listed,
 * and every use of it — look-up, keep-alive over HTTP and WebSocket, revoke, attaching a key, a
 * lock or a sequential key — answers 404 `not_found`, as an unknown id does. Through HTTP, the
 * WebSocket keep-alive, the SDK and the CLI; leases from before the upgrade (no owner recorded)
 * are for administrators only; and in PostgreSQL mode the owner travels with the lease.
 */
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { NotFoundError, createClient } from '../../client/index.js';
import { tempDir } from '../helpers/node.js';
import { startPostgres, type PostgresServer } from '../helpers/postgres.js';
import { runCli } from '../e2e/cli-helpers.js';
import { ADMIN_PASSWORD, client, login, startSecureNode, userToken, type SecureNode } from './security-helpers.js';
import { JsonSocket } from './watch-helpers.js';

const MIGRATIONS = new URL('../../src/backend/sqlite/migrations/', import.meta.url).pathname;
/** The id of a lease written into the database before the upgrade that records owners. */
const LEGACY_LEASE = 4242;

/** A SQLite database as a build before the lease-owner migration left it, holding one lease (no owner column). */
function preUpgradeDatabase(path: string): void {
  const db = new Database(path);
  try {
    db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)');
    for (const file of readdirSync(MIGRATIONS).filter((f) => /^\d+_.*\.sql$/.test(f)).sort()) {
      const version = Number.parseInt(file, 10);
      if (file.includes('lease_owner')) continue;
      db.exec(readFileSync(join(MIGRATIONS, file), 'utf8'));
      db.prepare('INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)').run(version, Date.now());
    }
    db.prepare('INSERT INTO leases (id, ttl, expires_at) VALUES (?, ?, ?)').run(LEGACY_LEASE, 600, Date.now() + 600_000);
  } finally {
    db.close();
  }
}

describe('hardening: a lease is its granter’s own (SQLite, upgraded database)', () => {
  const data = tempDir();
  let node: SecureNode;
  let admin: ReturnType<typeof client>;
  let alice: ReturnType<typeof client>;
  let bob: ReturnType<typeof client>;
  let aliceToken: string;
  let bobToken: string;
  let lease: number;

  before(async () => {
    preUpgradeDatabase(join(data.dir, 'beacon.db'));
    node = await startSecureNode({ dataDir: data.dir });
    const adminToken = await login(node.url, 'admin', ADMIN_PASSWORD);
    admin = client(node.url, adminToken);
    aliceToken = await userToken(node.url, adminToken, 'alice', ['developer']);
    bobToken = await userToken(node.url, adminToken, 'bob', ['developer']);
    alice = client(node.url, aliceToken);
    bob = client(node.url, bobToken);
    const g = await alice('/v1/leases', { method: 'POST', body: { ttl: 60 } });
    assert.equal(g.status, 201);
    lease = g.body.id;
    assert.equal((await alice('/v1/kv/app/a', { method: 'PUT', body: { value: 'v', lease } })).status, 200);
  });
  after(async () => {
    await node.cleanup();
    data.cleanup();
  });

  const notFound = (res: { status: number; body: any }, what: string): void => {
    assert.equal(res.status, 404, `${what}: ${JSON.stringify(res.body)}`);
    assert.equal(res.body.error.code, 'not_found', what);
  };

  it('another principal cannot see, keep alive, revoke or use the lease: 404 as for an unknown id', async () => {
    const listed = await bob('/v1/leases');
    assert.equal(listed.status, 200);
    assert.ok(!listed.body.leases.some((l: any) => l.id === lease), 'not in the list');
    notFound(await bob(`/v1/leases/${lease}`), 'time-to-live');
    notFound(await bob(`/v1/leases/${lease}/keepalive`, { method: 'POST' }), 'keep-alive');
    notFound(await bob(`/v1/leases/${lease}`, { method: 'DELETE' }), 'revoke');
    notFound(await bob('/v1/kv/app/b', { method: 'PUT', body: { value: 'x', lease } }), 'put with the lease');
    notFound(await bob('/v1/txn', { method: 'POST', body: { success: [{ put: { key: 'app/c', value: 'x', lease } }] } }), 'txn put with the lease');
    notFound(await bob('/v1/locks/app/lock', { method: 'POST', body: { lease, timeoutMs: 0 } }), 'lock with the lease');
    notFound(await bob('/v1/elections/app/vote/campaign', { method: 'POST', body: { value: 'me', lease, timeoutMs: 0 } }), 'campaign with the lease');
    notFound(await bob('/v1/sequences/app/seq', { method: 'POST', body: { lease } }), 'sequential key with the lease');
    // The same answer as for an id that does not exist: nothing tells the two apart.
    const unknown = await bob('/v1/leases/999999999/keepalive', { method: 'POST' });
    notFound(unknown, 'unknown id');
    assert.deepEqual(Object.keys(unknown.body.error).sort(), Object.keys((await bob(`/v1/leases/${lease}/keepalive`, { method: 'POST' })).body.error).sort());
    // Nothing happened to it.
    assert.equal((await alice('/v1/kv/app/a')).status, 200, "alice's key survived bob's revoke");
    assert.equal((await alice('/v1/kv/app/b')).status, 404);
  });

  it('the owner uses it as before', async () => {
    const listed = await alice('/v1/leases');
    assert.ok(listed.body.leases.some((l: any) => l.id === lease));
    const info = await alice(`/v1/leases/${lease}`);
    assert.equal(info.status, 200);
    assert.deepEqual(info.body.keys, ['app/a']);
    assert.equal((await alice(`/v1/leases/${lease}/keepalive`, { method: 'POST' })).body.ttl, 60);
    const lock = await alice('/v1/locks/app/lock', { method: 'POST', body: { lease, timeoutMs: 0 } });
    assert.equal(lock.status, 200, JSON.stringify(lock.body));
    assert.equal((await alice(`/v1/locks/${lock.body.key}`, { method: 'DELETE' })).status, 200);
  });

  it('over the WebSocket, a keep-alive frame for another principal’s lease gets a not_found error frame', async () => {
    const bobWs = await JsonSocket.open(`${node.url}/v1/watch`, { headers: { authorization: `Bearer ${bobToken}` } });
    const aliceWs = await JsonSocket.open(`${node.url}/v1/watch`, { headers: { authorization: `Bearer ${aliceToken}` } });
    try {
      bobWs.send({ type: 'keepalive', lease });
      const err = await bobWs.takeType('error');
      assert.equal(err.error.code, 'not_found');
      aliceWs.send({ type: 'keepalive', lease });
      assert.equal((await aliceWs.takeType('keepalive')).ttl, 60);
    } finally {
      await bobWs.close();
      await aliceWs.close();
    }
  });

  it('an administrator sees every lease with its owner; a lease from before the upgrade has none and is for administrators only', async () => {
    const listed = await admin('/v1/leases');
    const mine = listed.body.leases.find((l: any) => l.id === lease);
    assert.equal(mine?.owner, 'alice');
    const legacy = listed.body.leases.find((l: any) => l.id === LEGACY_LEASE);
    assert.ok(legacy !== undefined, 'the pre-upgrade lease survived the migration');
    assert.equal(legacy.owner, null);
    assert.equal((await admin(`/v1/leases/${lease}`)).body.owner, 'alice');
    assert.equal((await admin(`/v1/leases/${LEGACY_LEASE}/keepalive`, { method: 'POST' })).status, 200);
    notFound(await alice(`/v1/leases/${LEGACY_LEASE}`), 'pre-upgrade lease, non-admin');
    notFound(await bob(`/v1/leases/${LEGACY_LEASE}/keepalive`, { method: 'POST' }), 'pre-upgrade lease keep-alive, non-admin');
    assert.ok(!(await alice('/v1/leases')).body.leases.some((l: any) => l.id === LEGACY_LEASE));
  });

  it('the SDK gets NotFoundError for another principal’s lease, and a session cannot adopt it', async () => {
    const sdk = createClient({ endpoint: node.url, token: bobToken });
    try {
      await assert.rejects(sdk.lease.keepAlive(lease), NotFoundError);
      await assert.rejects(sdk.lease.timeToLive(lease), NotFoundError);
      await assert.rejects(sdk.lease.revoke(lease), NotFoundError);
      await assert.rejects(sdk.session({ lease }), NotFoundError);
      assert.ok(!(await sdk.lease.list()).some((l) => l.id === lease));
    } finally {
      sdk.close();
    }
  });

  it('the CLI: `beacon lease revoke|ttl` of another principal’s lease exits "not found"; the owner’s works', async () => {
    const as = (token: string, ...args: string[]) => runCli(['--endpoint', node.url, '--token', token, 'lease', ...args], { timeoutMs: 20_000 });
    const revoke = await as(bobToken, 'revoke', String(lease));
    assert.equal(revoke.code, 4, revoke.stderr);
    assert.match(revoke.stderr, /not found/);
    const ttl = await as(aliceToken, 'ttl', String(lease));
    assert.equal(ttl.code, 0, ttl.stderr);
    assert.match(ttl.stdout, /app\/a/);
    const gone = await as(aliceToken, 'revoke', String(lease));
    assert.equal(gone.code, 0, gone.stderr);
    assert.equal((await alice('/v1/kv/app/a')).status, 404, 'the owner’s revoke deleted its key');
  });
});

describe('hardening: a lease is its granter’s own (PostgreSQL, two nodes)', () => {
  let pg: PostgresServer;
  const nodes: SecureNode[] = [];
  before(async () => {
    pg = await startPostgres();
    const url = await pg.createDatabase();
    nodes.push(await startSecureNode({ backend: url }));
    nodes.push(await startSecureNode({ backend: url }));
  });
  after(async () => {
    for (const n of nodes) await n.cleanup();
    await pg.stop();
  });

  it('the owner is stored with the lease: on another node, only the owner and an administrator may use it', async () => {
    const [a, b] = nodes as [SecureNode, SecureNode];
    const adminA = await login(a.url, 'admin', ADMIN_PASSWORD);
    const aliceToken = await userToken(a.url, adminA, 'alice', ['developer']);
    const bobToken = await userToken(a.url, adminA, 'bob', ['developer']);
    const lease = (await client(a.url, aliceToken)('/v1/leases', { method: 'POST', body: { ttl: 60 } })).body.id;
    const onB = (token: string) => client(b.url, token);
    const bobKa = await onB(bobToken)(`/v1/leases/${lease}/keepalive`, { method: 'POST' });
    assert.equal(bobKa.status, 404, JSON.stringify(bobKa.body));
    assert.equal((await onB(bobToken)(`/v1/leases/${lease}`, { method: 'DELETE' })).status, 404);
    assert.equal((await onB(aliceToken)(`/v1/leases/${lease}/keepalive`, { method: 'POST' })).status, 200);
    const adminB = await login(b.url, 'admin', ADMIN_PASSWORD);
    const listed = await onB(adminB)('/v1/leases');
    assert.equal(listed.body.leases.find((l: any) => l.id === lease)?.owner, 'alice');
    assert.equal((await onB(aliceToken)(`/v1/leases/${lease}`, { method: 'DELETE' })).status, 200);
  });
});
