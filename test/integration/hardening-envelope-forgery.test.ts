// Issue 9 finding 3: a writer could forge an encrypted envelope. Storing bytes that begin like
// Beacon's ciphertext (00 42 4B 01, a key id, then anything) in a plain namespace made every
// admin read of the key answer 503, broke listings, reencrypt, admin watches and namespace
// deletes. Whether a value is ciphertext is now recorded in its row by the store; these tests
// drive a real secure node (SQLite, KEK file) through every path that reads values, check the
// flag in a snapshot, upgrade a data dir written before the flag, and check that a value that
// really cannot be decrypted fails that one key only.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import pg from 'pg';
import { tempDir } from '../helpers/node.js';
import { startPostgres, type PostgresServer } from '../helpers/postgres.js';
import { ADMIN_PASSWORD, client, login, startSecureNode, userToken, writeKekFile, type SecureNode } from './security-helpers.js';
import { JsonSocket, SseReader, until } from './watch-helpers.js';

/** The forgery of the report: magic, key id length 2, "k1", then 29 arbitrary bytes. */
const FORGED = Buffer.concat([Buffer.from([0x00, 0x42, 0x4b, 0x01, 0x02]), Buffer.from('k1'), randomBytes(29)]);
/** The same layout as UTF-8 text (what a config write of a JSON string can store). */
const FORGED_TEXT = `\u0000BK\u0001\u0002k1${'x'.repeat(29)}`;
const b64 = FORGED.toString('base64');

type Call = ReturnType<typeof client>;

describe('hardening: forged encrypted envelopes (issue 9 finding 3)', () => {
  const tmp = tempDir('beacon-forgery-');
  let node: SecureNode | undefined;
  let admin: Call;
  let writer: Call;
  let adminToken: string;
  let writerToken: string;

  const start = async (kekFile: string): Promise<void> => {
    node = await startSecureNode({ dataDir: tmp.dir, kekFile });
    adminToken = await login(node.url, 'admin', ADMIN_PASSWORD);
    admin = client(node.url, adminToken);
  };
  const url = (): string => (node as SecureNode).url;

  before(async () => {
    await start(writeKekFile(tmp.dir));
    assert.ok((await admin('/v1/roles/app-writer', { method: 'PUT', body: { permissions: [{ prefix: 'app/', access: 'write' }] } })).status < 300);
    writerToken = await userToken(url(), adminToken, 'writer', ['app-writer']);
    writer = client(url(), writerToken);
    assert.equal((await admin('/v1/namespaces/vault/', { method: 'PUT', body: { secret: true } })).status, 201);
    assert.equal((await admin('/v1/kv/vault/db', { method: 'PUT', body: { value: 'hunter2' } })).status, 200);
  });
  after(async () => {
    await node?.cleanup();
    tmp.cleanup();
  });

  it('a forged envelope in a plain namespace reads back as the bytes written, on every read path', async () => {
    assert.equal((await writer('/v1/kv/app/forged', { method: 'PUT', body: { value: b64, encoding: 'base64' } })).status, 200);
    const txn = await writer('/v1/txn', { method: 'POST', body: { success: [{ put: { key: 'app/forged-txn', value: b64, encoding: 'base64' } }] } });
    assert.equal(txn.status, 200, JSON.stringify(txn.body));
    assert.equal((await writer('/v1/configs/app/forged-cfg', { method: 'PUT', body: { value: FORGED_TEXT } })).status, 200);

    const get = await admin('/v1/kv/app/forged');
    assert.equal(get.status, 200, JSON.stringify(get.body));
    assert.equal(get.body.kv.value, b64);
    assert.equal(get.body.kv.encoding, 'base64');

    const list = await admin('/v1/kv/app/?prefix=true');
    assert.equal(list.status, 200, JSON.stringify(list.body));
    assert.deepEqual(list.body.kvs.map((kv: any) => kv.key), ['app/forged', 'app/forged-cfg', 'app/forged-txn']);
    assert.equal(list.body.kvs[0].value, b64);
    assert.equal(list.body.kvs[2].value, b64);
    assert.equal(list.body.kvs[1].value, FORGED_TEXT);

    const range = await admin('/v1/txn', { method: 'POST', body: { success: [{ range: { key: 'app/', prefix: true } }] } });
    assert.equal(range.status, 200, JSON.stringify(range.body));
    assert.equal(range.body.results[0].range.kvs.length, 3);

    const cfg = await admin('/v1/configs/app/forged-cfg');
    assert.equal(cfg.status, 200, JSON.stringify(cfg.body));
    assert.equal(cfg.body.value, FORGED_TEXT);
    assert.equal((await writer('/v1/configs/app/forged-cfg', { method: 'PUT', body: { value: 'v2' } })).status, 200);
    const history = await admin('/v1/configs/app/forged-cfg/history');
    assert.equal(history.status, 200, JSON.stringify(history.body));
    assert.deepEqual(history.body.versions.map((v: any) => v.value), ['v2', FORGED_TEXT]);
    const diff = await admin('/v1/configs/app/forged-cfg/diff');
    assert.equal(diff.status, 200, JSON.stringify(diff.body));
    assert.equal(diff.body.format, 'text');
    const rollback = await writer('/v1/configs/app/forged-cfg/rollback', { method: 'POST', body: { version: 'v1' } });
    assert.equal(rollback.status, 200, JSON.stringify(rollback.body));
    assert.equal((await admin('/v1/configs/app/forged-cfg')).body.value, FORGED_TEXT);
  });

  it('a snapshot records which rows are ciphertext: the forged ones are not', async () => {
    const res = await fetch(`${url()}/v1/snapshot`, { headers: { authorization: `Bearer ${adminToken}` } });
    assert.equal(res.status, 200);
    const file = join(tmp.dir, 'snap.db');
    writeFileSync(file, Buffer.from(await res.arrayBuffer()));
    const db = new Database(file, { readonly: true });
    try {
      const flag = (key: string): number =>
        (db.prepare('SELECT encrypted FROM kv_log WHERE key = ? ORDER BY revision DESC LIMIT 1').get(key) as { encrypted: number }).encrypted;
      assert.equal(flag('vault/db'), 1);
      assert.equal(flag('app/forged'), 0);
      assert.equal(flag('app/forged-txn'), 0);
    } finally {
      db.close();
    }
  });

  it('admin watches (WebSocket, SSE, configs watch) deliver the forged values and keep going', async () => {
    const ws = await JsonSocket.open(`${url()}/v1/watch`, { headers: { authorization: `Bearer ${adminToken}` } });
    const sse = await new SseReader().open(`${url()}/v1/watch/app/?prefix=true&fromRevision=1`, { authorization: `Bearer ${adminToken}` });
    const cw = await JsonSocket.open(`${url()}/v1/configs/watch?prefix=app/&fromRevision=1`, { headers: { authorization: `Bearer ${adminToken}` } });
    try {
      assert.equal(sse.status, 200);
      ws.send({ type: 'create', key: 'app/', prefix: true, fromRevision: 1, watchId: 1 });
      await ws.takeType('created');
      assert.equal((await writer('/v1/kv/app/after', { method: 'PUT', body: { value: 'marker' } })).status, 200);
      const wsKv = (): any[] => ws.events(1).flatMap((m) => m.events.map((e: any) => e.kv));
      await until(() => wsKv().some((kv) => kv.key === 'app/after'), 'the WebSocket watch to reach the marker', 10_000);
      assert.ok(wsKv().some((kv) => kv.key === 'app/forged' && kv.value === b64), JSON.stringify(wsKv()));
      const sseKv = (): any[] => sse.of('events').flatMap((e) => e.data.events.map((x: any) => x.kv));
      await until(() => sseKv().some((kv) => kv.key === 'app/after'), 'the SSE watch to reach the marker', 10_000);
      assert.ok(sseKv().some((kv) => kv.key === 'app/forged' && kv.value === b64), JSON.stringify(sseKv()));
      await until(() => cw.received.some((m) => m.type === 'config_update' && m.key === 'app/after'), 'the configs watch to reach the marker', 10_000);
      assert.ok(cw.received.some((m) => m.type === 'config_update' && m.key === 'app/forged'));
    } finally {
      await ws.close();
      await cw.close();
      await sse.close();
    }
  });

  it('reencrypt and namespace put/delete treat forged values as the plain values they are', async () => {
    const re = await admin('/v1/secrets/reencrypt', { method: 'POST', body: {} });
    assert.equal(re.status, 200, JSON.stringify(re.body));
    assert.deepEqual([re.body.decrypted, re.body.failed], [0, 0]);

    const put = await admin('/v1/namespaces/app/', { method: 'PUT', body: { secret: true } });
    assert.equal(put.status, 201, JSON.stringify(put.body));
    assert.equal(put.body.reconciled.encrypted, 4, 'all four plain values under app/ are now sealed');
    assert.equal((await admin('/v1/kv/app/forged')).body.kv.value, b64, 'decrypted back to the bytes written');
    assert.equal((await writer('/v1/kv/app/forged')).body.kv.redacted, true, 'a writer without read_secret sees it redacted now');

    const del = await admin('/v1/namespaces/app/', { method: 'DELETE' });
    assert.equal(del.status, 200, JSON.stringify(del.body));
    assert.deepEqual([del.body.reconciled.decrypted, del.body.reconciled.failed], [4, 0]);
    assert.equal((await admin('/v1/namespaces/app/')).status, 404, 'the delete applied');
    assert.equal((await writer('/v1/kv/app/forged')).body.kv.value, b64);
  });

  it('a data dir written before the flag is upgraded in place: real secrets stay sealed, forged values become plain', async () => {
    const kekFile = join(tmp.dir, 'kek');
    await (node as SecureNode).stop();
    node = undefined;
    // Put the data dir back in the shape of the release before migration 005.
    const db = new Database(join(tmp.dir, 'beacon.db'));
    try {
      db.exec('ALTER TABLE kv_log DROP COLUMN encrypted; DELETE FROM schema_migrations WHERE version = 5;');
    } finally {
      db.close();
    }
    await start(kekFile);
    writer = client(url(), await login(url(), 'writer', 'writer-password-1'));
    assert.equal((await admin('/v1/kv/vault/db')).body.kv.value, 'hunter2');
    assert.equal((await writer('/v1/kv/vault/db')).status, 403);
    const forged = await admin('/v1/kv/app/forged');
    assert.equal(forged.status, 200, JSON.stringify(forged.body));
    assert.equal(forged.body.kv.value, b64);
    assert.equal((await admin('/v1/kv/app/?prefix=true')).status, 200);
  });

  it('a value that cannot be decrypted fails that key alone: reads, listings, history, watches, reencrypt, namespace delete', async () => {
    await (node as SecureNode).stop();
    node = undefined;
    const other = join(tmp.dir, 'kek-other');
    writeFileSync(other, `k2:${randomBytes(32).toString('hex')}\n`, { mode: 0o600 });
    await start(other); // k1, which sealed vault/db, is gone
    assert.equal((await admin('/v1/kv/vault/fresh', { method: 'PUT', body: { value: 'new-secret' } })).status, 200);

    const one = await admin('/v1/kv/vault/db');
    assert.equal(one.status, 503);
    assert.equal(one.body.error.code, 'unavailable');
    assert.match(one.body.error.message, /vault\/db.*'k1'/);

    const list = await admin('/v1/kv/vault/?prefix=true');
    assert.equal(list.status, 200, JSON.stringify(list.body));
    const [db, fresh] = list.body.kvs;
    assert.equal(db.key, 'vault/db');
    assert.equal(db.error.code, 'unavailable');
    assert.equal(db.value, undefined);
    assert.equal(fresh.value, 'new-secret');
    assert.equal((await admin('/v1/kv/?prefix=true')).status, 200, 'a listing of every key still answers');

    const history = await admin('/v1/configs/vault/db/history');
    assert.equal(history.status, 200, JSON.stringify(history.body));
    assert.equal(history.body.versions[0].error.code, 'unavailable');

    const ws = await JsonSocket.open(`${url()}/v1/watch`, { headers: { authorization: `Bearer ${adminToken}` } });
    try {
      ws.send({ type: 'create', key: 'vault/', prefix: true, fromRevision: 1, watchId: 1 });
      await ws.takeType('created');
      await admin('/v1/kv/vault/marker', { method: 'PUT', body: { value: 'm' } });
      const kvs = (): any[] => ws.events(1).flatMap((m) => m.events.map((e: any) => e.kv));
      await until(() => kvs().some((kv) => kv.key === 'vault/marker'), 'the watch to go past the undecryptable value', 10_000);
      assert.equal(kvs().find((kv) => kv.key === 'vault/db')?.error?.code, 'unavailable');
      assert.equal(kvs().find((kv) => kv.key === 'vault/fresh')?.value, 'new-secret');
    } finally {
      await ws.close();
    }

    const re = await admin('/v1/secrets/reencrypt', { method: 'POST', body: {} });
    assert.equal(re.status, 200, JSON.stringify(re.body));
    assert.equal(re.body.failed, 1);
    assert.deepEqual(re.body.failedKeys, ['vault/db']);

    const del = await admin('/v1/namespaces/vault/', { method: 'DELETE' });
    assert.equal(del.status, 200, JSON.stringify(del.body));
    assert.equal(del.body.reconciled.failed, 1);
    assert.equal(del.body.reconciled.decrypted, 2, 'vault/fresh and vault/marker are plain now');
    assert.equal((await admin('/v1/namespaces/vault/')).status, 404);
    const after = await admin('/v1/kv/vault/fresh');
    assert.equal(after.body.kv.value, 'new-secret');
  });
});

describe('hardening: forged envelopes on PostgreSQL, and its upgrade in place (issue 9 finding 3)', () => {
  const tmp = tempDir('beacon-forgery-pg-');
  let server: PostgresServer | undefined;
  let node: SecureNode | undefined;

  after(async () => {
    await node?.cleanup();
    await server?.stop();
    tmp.cleanup();
  });

  it('forged bytes stay plain, real secrets sealed, before and after the upgrade migration', async () => {
    server = await startPostgres();
    const backend = await server.createDatabase();
    const kekFile = writeKekFile(tmp.dir);
    const start = async (): Promise<Call> => {
      node = await startSecureNode({ backend, kekFile, dataDir: tmp.dir });
      return client(node.url, await login(node.url, 'admin', ADMIN_PASSWORD));
    };
    let admin = await start();
    assert.equal((await admin('/v1/namespaces/vault/', { method: 'PUT', body: { secret: true } })).status, 201);
    assert.equal((await admin('/v1/kv/vault/db', { method: 'PUT', body: { value: 'hunter2' } })).status, 200);
    assert.equal((await admin('/v1/kv/app/forged', { method: 'PUT', body: { value: b64, encoding: 'base64' } })).status, 200);
    const check = async (): Promise<void> => {
      const forged = await admin('/v1/kv/app/forged');
      assert.equal(forged.status, 200, JSON.stringify(forged.body));
      assert.equal(forged.body.kv.value, b64);
      assert.equal((await admin('/v1/kv/vault/db')).body.kv.value, 'hunter2');
      assert.equal((await admin('/v1/kv/?prefix=true')).status, 200);
    };
    await check();
    await node?.stop();
    node = undefined;
    // Back to the schema of the release before migration 004, then start again.
    const c = new pg.Client({ connectionString: backend });
    await c.connect();
    try {
      await c.query('ALTER TABLE beacon_kv_log DROP COLUMN encrypted; DELETE FROM beacon_schema_migrations WHERE version = 4');
    } finally {
      await c.end();
    }
    admin = await start();
    await check();
  });
});
