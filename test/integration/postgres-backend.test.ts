/**
 * The PostgreSQL backend beyond the conformance suite: schema version check, connection
 * failures, keys PostgreSQL text could not hold, the audit log, and a node's follower when
 * notifications are lost, connections are dropped, or another node compacts.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { createBackend } from '../../src/backend/index.js';
import { createPostgresBackend, PostgresBackend } from '../../src/backend/postgres/index.js';
import { BeaconError, InvalidArgumentError, UnavailableError } from '../../src/errors.js';
import { Store } from '../../src/kv/index.js';
import { http, startTestNode } from '../helpers/node.js';
import { eventually, startPostgres, type PostgresServer } from '../helpers/postgres.js';

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

let server: PostgresServer | undefined;

before(async () => {
  server = await startPostgres();
});

after(async () => {
  await server?.stop();
});

async function sql(url: string, text: string, params: unknown[] = []): Promise<pg.QueryResult> {
  const c = new pg.Client({ connectionString: url });
  c.on('error', () => undefined);
  await c.connect();
  try {
    return await c.query(text, params);
  } finally {
    await c.end();
  }
}

async function openStore(url: string): Promise<Store> {
  const store = new Store({ backend: createPostgresBackend(url), driveExpiry: false });
  await store.open();
  return store;
}

describe('PostgreSQL backend', () => {
  test('a database with a newer schema is refused with a message that says so', async () => {
    const url = await (server as PostgresServer).createDatabase();
    (await openStore(url)).close();
    await sql(url, 'INSERT INTO beacon_schema_migrations (version) VALUES (999)');
    await assert.rejects(openStore(url), (err: unknown) => {
      assert.ok(err instanceof BeaconError);
      assert.equal(err.code, 'unavailable');
      assert.match(err.message, /schema version 999, newer than this Beacon understands/);
      assert.match(err.message, /upgrade Beacon/);
      return true;
    });
    await assert.rejects(startTestNode({ backend: url }), /newer than this Beacon understands/);
  });

  test('an unreachable server fails fast with unavailable, a bad URL with invalid_argument, and neither leaks the password', async () => {
    const started = Date.now();
    const backend = await createBackend('postgres://beacon:s3cret@127.0.0.1:1/nowhere', '/tmp');
    await assert.rejects(backend.open(), (err: unknown) => {
      assert.ok(err instanceof UnavailableError);
      assert.doesNotMatch(err.message, /s3cret/);
      return true;
    });
    assert.ok(Date.now() - started < 5000);
    assert.doesNotMatch(backend.description, /s3cret/);
    assert.throws(() => createPostgresBackend('postgres://localhost:99999999/db'), InvalidArgumentError);
  });

  test('keys PostgreSQL text cannot hold (NUL, 4 KiB of random bytes) round-trip and sort in UTF-8 byte order', async () => {
    const url = await (server as PostgresServer).createDatabase();
    const store = await openStore(url);
    try {
      // 4 KiB that does not compress: more than a btree entry can hold, so the index keeps a prefix.
      const big = `k/${Array.from(randomBytes(2047), (b) => String.fromCharCode(0x80 + (b % 0x700))).join('')}`.slice(0, 2100);
      assert.ok(Buffer.byteLength(big) > 4000 && Buffer.byteLength(big) <= 4096, String(Buffer.byteLength(big)));
      const keys = ['k/a\u0000b', 'k/a', 'k/\u{1F600}', 'k/\uFFFD', 'k/z', big, `${big.slice(0, -1)}`];
      for (const k of keys) await store.put(k, enc(k.slice(0, 10)));
      const at = store.revision;
      await store.put('k/later', enc('x'));
      const old = await store.range('k/', 'k0', { revision: at });
      const want = [...new Set(keys)].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
      assert.deepEqual(old.kvs.map((kv) => kv.key), want);
      assert.equal(old.count, want.length);
      const limited = await store.range('k/', 'k0', { revision: at, limit: 2 });
      assert.deepEqual([limited.kvs.map((kv) => kv.key), limited.more, limited.count], [want.slice(0, 2), true, want.length]);
      const hist = await store.history(big);
      assert.equal(hist.length, 1);
      assert.equal(hist[0]?.key, big);
      await store.close();
      const again = await openStore(url);
      assert.deepEqual(again.rangeLatest('k/', 'k0').kvs.map((kv) => kv.key), [...want, 'k/later'].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))));
      await again.close();
    } finally {
      await store.close().catch(() => undefined);
    }
  });

  test('audit records are written with commits and on their own, read back by filter and pruned', async () => {
    const url = await (server as PostgresServer).createDatabase();
    const backend = new PostgresBackend({ url });
    await backend.open();
    try {
      const record = (i: number, key: string | null, principal = 'alice') => ({
        ts: 1000 + i,
        principal,
        action: 'put',
        key,
        oldVersion: null,
        newVersion: i,
        revision: i,
        requestId: `r${i}`,
        source: '127.0.0.1',
        outcome: 'ok' as const,
        details: i === 2 ? 'with \u0000 inside' : null,
      });
      await backend.commit(0, (_missed, head) => ({
        revision: head + 1,
        entries: [{ revision: head + 1, key: 'cfg/a', value: enc('1'), createRevision: head + 1, version: 1, lease: 0, deleted: false, ts: 1, meta: null }],
        leaseGrants: [],
        leaseRevokes: [],
        audit: [record(1, 'cfg/a'), record(2, 'cfg/\u0000b')],
      }));
      await backend.appendAudit([record(3, null, 'bob')]);
      const all = await backend.queryAudit({ limit: 10 });
      assert.deepEqual(all.map((a) => [a.principal, a.key, a.revision]), [['alice', 'cfg/a', 1], ['alice', 'cfg/\u0000b', 2], ['bob', null, 3]]);
      assert.ok((all[0]?.id ?? 0) < (all[1]?.id ?? 0) && (all[1]?.id ?? 0) < (all[2]?.id ?? 0));
      assert.deepEqual((await backend.queryAudit({ keyPrefix: 'cfg/', limit: 10 })).map((a) => a.revision), [1, 2]);
      assert.deepEqual((await backend.queryAudit({ principal: 'bob', limit: 10 })).map((a) => a.revision), [3]);
      assert.deepEqual((await backend.queryAudit({ afterId: all[0]?.id, limit: 1 })).map((a) => a.revision), [2]);
      assert.deepEqual((await backend.queryAudit({ order: 'desc', limit: 2 })).map((a) => a.revision), [3, 2]);
      assert.deepEqual((await backend.queryAudit({ order: 'desc', beforeId: all[1]?.id, limit: 10 })).map((a) => a.revision), [1]);
      assert.equal(await backend.pruneAudit(1002), 1);
      assert.deepEqual((await backend.queryAudit({ limit: 10 })).map((a) => a.revision), [2, 3]);
    } finally {
      await backend.close();
    }
  });

  test('a commit whose notification is lost still reaches every node through the revision-ordered read', async () => {
    const url = await (server as PostgresServer).createDatabase();
    const n = await startTestNode({ backend: url });
    try {
      await http(`${n.url}/v1/kv/seed`, { method: 'PUT', body: { value: 's' } });
      // Another writer that never NOTIFYs: the follower must still find it in the log.
      await sql(
        url,
        `WITH m AS (UPDATE beacon_meta SET revision = revision + 1 WHERE id = 1 RETURNING revision)
         INSERT INTO beacon_kv_log (key, revision, create_revision, version, lease, value, deleted, ts, meta)
         SELECT convert_to('silent', 'UTF8'), m.revision, m.revision, 1, 0, convert_to('quiet', 'UTF8'), false, 0, NULL FROM m`,
      );
      await eventually('the silent write is applied', async () => (await http(`${n.url}/v1/kv/silent`)).status === 200, 5000);
      assert.equal((await http(`${n.url}/v1/kv/silent`)).body.kv.value, 'quiet');
    } finally {
      await n.cleanup();
    }
  });

  test('dropped connections: the node reports not ready, reconnects, takes expiry back and writes again', async () => {
    const url = await (server as PostgresServer).createDatabase();
    const n = await startTestNode({ backend: url });
    try {
      await eventually('expiry leader', async () => (await http(`${n.url}/v1/cluster`)).body.expiryLeader !== null);
      const dbName = new URL(url).pathname.slice(1);
      const killed = await sql(
        url,
        'SELECT count(pg_terminate_backend(pid))::int AS n FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()',
        [dbName],
      );
      assert.ok(killed.rows[0].n >= 1);
      await eventually('ready again', async () => (await http(`${n.url}/readyz`)).status === 200, 10_000);
      const put = await http(`${n.url}/v1/kv/after-drop`, { method: 'PUT', body: { value: 'ok' } });
      assert.equal(put.status, 200);
      await eventually('expiry leadership is back', async () => {
        const res = await http(`${n.url}/v1/cluster`);
        return res.status === 200 && res.body.expiryLeader !== null && res.body.nodes[0].expiryLeader === true;
      });
      const lease = await http(`${n.url}/v1/leases`, { method: 'POST', body: { ttl: 1 } });
      await http(`${n.url}/v1/kv/short`, { method: 'PUT', body: { value: 'x', lease: lease.body.id } });
      await eventually('the lease expired', async () => (await http(`${n.url}/v1/kv/short`)).status === 404, 5000);
    } finally {
      await n.cleanup();
    }
  });

  test('stores in two schemas of one database are separate clusters, each with its own expiry driver', async () => {
    const url = await (server as PostgresServer).createDatabase();
    await sql(url, 'CREATE SCHEMA team_a; CREATE SCHEMA team_b');
    const inSchema = (schema: string): string => {
      const u = new URL(url);
      u.searchParams.set('options', `-c search_path=${schema}`);
      return u.toString();
    };
    const a = await startTestNode({ backend: inSchema('team_a') });
    const b = await startTestNode({ backend: inSchema('team_b') });
    try {
      await http(`${a.url}/v1/kv/only-in-a`, { method: 'PUT', body: { value: 'a' } });
      assert.equal((await http(`${b.url}/v1/kv/only-in-a?consistency=linearizable`)).status, 404);
      for (const n of [a, b]) {
        await eventually('its own expiry driver', async () => {
          const res = await http(`${n.url}/v1/cluster`);
          return res.body.nodes.length === 1 && res.body.nodes[0].expiryLeader === true;
        });
      }
      const tables = await sql(url, "SELECT count(*)::int AS n FROM pg_tables WHERE tablename = 'beacon_kv_log'");
      assert.equal(tables.rows[0].n, 2);
    } finally {
      await a.cleanup();
      await b.cleanup();
    }
  });

  test('a database that went back in time (restore, lossy failover) stops the node instead of reusing revisions', async () => {
    const url = await (server as PostgresServer).createDatabase();
    const n = await startTestNode({ backend: url });
    try {
      for (let i = 0; i < 3; i++) await http(`${n.url}/v1/kv/t/${i}`, { method: 'PUT', body: { value: 'x' } });
      // What an asynchronous replica promoted after losing the last revision looks like.
      const head = n.store.revision;
      await sql(url, `DELETE FROM beacon_kv_log WHERE revision = ${head}; UPDATE beacon_meta SET revision = ${head - 1} WHERE id = 1`);
      await eventually('not ready', async () => (await http(`${n.url}/readyz`)).status === 503, 5000);
      const put = await http(`${n.url}/v1/kv/t/new`, { method: 'PUT', body: { value: 'x' } });
      assert.equal(put.status, 503);
      assert.match(put.body.error.message, /behind this node's view/);
      const rows = await sql(url, 'SELECT max(revision)::int AS r FROM beacon_kv_log');
      assert.equal(rows.rows[0].r, head - 1, 'nothing was written at a reused revision');
    } finally {
      await n.cleanup();
    }
  });

  test('a compaction on one node is known to the others, and history they still follow is kept until they applied it', async () => {
    const url = await (server as PostgresServer).createDatabase();
    const a = await startTestNode({ backend: url });
    const b = await startTestNode({ backend: url });
    try {
      for (let i = 0; i < 5; i++) await http(`${a.url}/v1/kv/c/k`, { method: 'PUT', body: { value: `v${i}` } });
      await http(`${a.url}/v1/kv/c/gone`, { method: 'PUT', body: { value: 'x' } });
      const del = await http(`${a.url}/v1/kv/c/gone`, { method: 'DELETE' });
      const compactTo = del.body.revision as number;
      const res = await http(`${a.url}/v1/compact`, { method: 'POST', body: { revision: compactTo } });
      assert.equal(res.status, 200);
      await eventually('node b learned the compaction', () => b.store.compactRevision === compactTo);
      const old = await http(`${b.url}/v1/kv/c/k?rev=2`);
      assert.equal(old.status, 410);
      assert.equal(old.body.error.code, 'compacted');
      assert.equal((await http(`${b.url}/v1/kv/c/gone`)).status, 404, 'node b applied the delete');
      assert.equal((await http(`${b.url}/v1/kv/c/k`)).body.kv.value, 'v4');
      // Superseded history is physically gone once every node applied past it.
      await eventually('superseded rows deleted', async () => {
        const rows = await sql(url, "SELECT count(*)::int AS n FROM beacon_kv_log WHERE key = convert_to('c/k', 'UTF8')");
        return rows.rows[0].n === 1;
        // The leader purges at its next heartbeat after node b reported applying the compaction (about 2 s); more on a loaded machine.
      }, 15_000);
    } finally {
      await a.cleanup();
      await b.cleanup();
    }
  });
});
