// The audit log against a real node with authentication on: every write, delete, rollback,
// lease revoke, identity change and failed login is recorded with principal, time, action, key,
// old and new version, revision, request id and source; filters, pagination, JSON-lines export.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { SqliteBackend } from '../../src/backend/index.js';
import { AuditLog } from '../../src/audit/index.js';
import { http, tempDir } from '../helpers/node.js';
import { ADMIN_PASSWORD, client, login, startSecureNode, userToken, type SecureNode } from './security-helpers.js';
import { pino } from 'pino';

describe('audit log', () => {
  let node: SecureNode;
  let admin: ReturnType<typeof client>;
  let dev: ReturnType<typeof client>;
  const since = Date.now();

  before(async () => {
    node = await startSecureNode();
    const adminToken = await login(node.url, 'admin', ADMIN_PASSWORD);
    admin = client(node.url, adminToken);
    dev = client(node.url, await userToken(node.url, adminToken, 'dana', ['developer']));
  });
  after(async () => {
    await node.cleanup();
  });

  const records = async (query: string): Promise<any[]> => {
    const res = await admin(`/v1/audit?${query}`);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    return res.body.records;
  };

  it('records kv, config, txn and lease changes with who, what, versions, request id and source', async () => {
    const put = await dev('/v1/kv/app/a', { method: 'PUT', body: { value: '1' }, headers: { 'x-request-id': 'req-put-1' } });
    assert.equal(put.status, 200);
    await dev('/v1/kv/app/a', { method: 'PUT', body: { value: '2' } });
    await dev('/v1/kv/app/a', { method: 'DELETE', headers: { 'x-request-id': 'req-del-1' } });
    await dev('/v1/configs/app/cfg', { method: 'PUT', body: { value: 'one' } });
    await dev('/v1/configs/app/cfg', { method: 'PUT', body: { value: 'two' } });
    const rb = await dev('/v1/configs/app/cfg/rollback', { method: 'POST', body: { version: 'v1' } });
    await dev('/v1/txn', { method: 'POST', body: { success: [{ put: { key: 'app/t1', value: 'x' } }, { put: { key: 'app/t2', value: 'y' } }] } });
    const lease = (await dev('/v1/leases', { method: 'POST', body: { ttl: 60 } })).body.id;
    await dev('/v1/kv/app/leased', { method: 'PUT', body: { value: 'x', lease } });
    await dev(`/v1/leases/${lease}`, { method: 'DELETE' });
    await dev('/v1/configs/app/cfg', { method: 'DELETE' });

    const mine = await records('principal=dana&limit=1000');
    const first = mine.find((r) => r.requestId === 'req-put-1');
    assert.deepEqual(
      { principal: first.principal, action: first.action, key: first.key, oldVersion: first.oldVersion, newVersion: first.newVersion, revision: first.revision, source: first.source, outcome: first.outcome },
      { principal: 'dana', action: 'kv.put', key: 'app/a', oldVersion: null, newVersion: 1, revision: put.body.revision, source: '127.0.0.1', outcome: 'ok' },
    );
    assert.ok(Date.parse(first.time) >= since - 1000);
    const del = mine.find((r) => r.requestId === 'req-del-1');
    assert.deepEqual([del.action, del.key, del.oldVersion, del.newVersion], ['kv.delete', 'app/a', 2, null]);
    const rollback = mine.find((r) => r.action === 'config.rollback');
    assert.deepEqual([rollback.key, rollback.oldVersion, rollback.newVersion, rollback.revision], ['app/cfg', 2, 3, rb.body.revision]);
    assert.equal(mine.filter((r) => r.action === 'kv.txn').length, 2, 'one record per key of the txn');
    const revoke = mine.filter((r) => r.action === 'lease.revoke');
    assert.ok(revoke.some((r) => r.key === 'app/leased' && r.oldVersion === 1));
    assert.ok(mine.some((r) => r.action === 'config.delete' && r.key === 'app/cfg'));
    assert.ok(mine.some((r) => r.action === 'lease.grant'));
    assert.ok(mine.some((r) => r.action === 'auth.login' && r.outcome === 'ok'));
  });

  it('records failed logins (without guessing who from a typo) and identity changes, never a secret', async () => {
    await http(`${node.url}/v1/auth/token`, { method: 'POST', body: { username: 'dana', password: 'not-her-password' } });
    await http(`${node.url}/v1/auth/token`, { method: 'POST', body: { username: 'hunter2-typed-in-the-user-field', password: 'x-password' } });
    await admin('/v1/users', { method: 'POST', body: { name: 'eve', password: 'eves-password', roles: ['viewer'] } });
    await admin('/v1/users/eve', { method: 'PATCH', body: { roles: ['developer'], password: 'eves-new-password' } });
    await admin('/v1/roles/ops', { method: 'PUT', body: { permissions: [{ prefix: 'ops/', access: 'write' }] } });
    const key = (await admin('/v1/apikeys', { method: 'POST', body: { name: 'ci', roles: ['viewer'] } })).body;
    await admin(`/v1/apikeys/${key.id}`, { method: 'DELETE' });
    await admin('/v1/users/eve', { method: 'DELETE' });

    const failed = await records('action=auth.login&outcome=failed');
    assert.deepEqual(failed.map((r) => r.principal), ['dana', 'unknown']);
    assert.ok(failed.every((r) => r.source === '127.0.0.1'));
    const changes = (await records('principal=admin&limit=1000')).filter((r) => /^(user|role|apikey)\./.test(r.action));
    assert.deepEqual(changes.map((r) => r.action).slice(-6), ['user.create', 'user.update', 'role.put', 'apikey.create', 'apikey.revoke', 'user.delete']);
    const update = changes.find((r) => r.action === 'user.update');
    assert.deepEqual(update.details, { user: 'eve', roles: ['developer'], passwordChanged: true });
    const all = JSON.stringify(await records('limit=1000'));
    for (const s of ['eves-password', 'eves-new-password', 'not-her-password', 'hunter2-typed-in-the-user-field', key.key, ADMIN_PASSWORD]) {
      assert.ok(!all.includes(s), `no '${s}' in the audit log`);
    }
  });

  it('filters by principal, action, key prefix, outcome and time, and pages with after/next', async () => {
    for (let i = 0; i < 5; i++) await dev(`/v1/kv/page/k${i}`, { method: 'PUT', body: { value: String(i) } });
    const byKey = await records('key=page/');
    assert.deepEqual(byKey.map((r) => r.key), ['page/k0', 'page/k1', 'page/k2', 'page/k3', 'page/k4']);
    const p1 = await admin('/v1/audit?key=page/&limit=2');
    assert.equal(p1.body.more, true);
    assert.equal(p1.body.records.length, 2);
    const p2 = await admin(`/v1/audit?key=page/&limit=2&after=${p1.body.next}`);
    const p3 = await admin(`/v1/audit?key=page/&limit=2&after=${p2.body.next}`);
    assert.deepEqual([...p1.body.records, ...p2.body.records, ...p3.body.records].map((r: any) => r.key), byKey.map((r) => r.key));
    // Newest first, paged backwards with before/next.
    const d1 = await admin('/v1/audit?key=page/&limit=2&order=desc');
    const d2 = await admin(`/v1/audit?key=page/&limit=2&order=desc&before=${d1.body.next}`);
    const d3 = await admin(`/v1/audit?key=page/&limit=2&order=desc&before=${d2.body.next}`);
    assert.deepEqual([...d1.body.records, ...d2.body.records, ...d3.body.records].map((r: any) => r.key), byKey.map((r) => r.key).reverse());
    assert.equal(d3.body.more, false);
    assert.equal((await admin('/v1/audit?order=sideways')).status, 400);
    assert.deepEqual(await records(`key=page/&from=${new Date(Date.now() + 60_000).toISOString()}`), []);
    assert.equal((await records('action=kv.put&principal=dana&key=page/k3')).length, 1);
    const denied = await dev('/v1/users');
    assert.equal(denied.status, 403);
    assert.ok((await records('outcome=denied&principal=dana')).some((r) => r.action === 'GET /v1/users'));
    assert.equal((await admin('/v1/audit?outcome=maybe')).status, 400);
    assert.equal((await admin('/v1/audit?colour=red')).status, 400);
    assert.equal((await dev('/v1/audit')).status, 403);
  });

  it('exports every matching record as JSON lines', async () => {
    const res = await fetch(`${node.url}/v1/audit?format=jsonl&principal=dana`, { headers: { authorization: `Bearer ${await login(node.url, 'admin', ADMIN_PASSWORD)}` } });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /application\/x-ndjson/);
    const lines = (await res.text()).split('\n').filter((l) => l !== '').map((l) => JSON.parse(l));
    const paged = await records('principal=dana&limit=1000');
    assert.deepEqual(lines.map((r) => r.id), paged.map((r) => r.id));
  });
});

describe('audit retention', () => {
  it('prunes records older than the retention, keeps the rest', async () => {
    const tmp = tempDir();
    const backend = new SqliteBackend({ path: `${tmp.dir}/audit.db` });
    try {
      await backend.open();
      const log = new AuditLog(backend, pino({ level: 'silent' }), 365);
      const day = 86_400_000;
      await log.append({ principal: 'old', action: 'kv.put', outcome: 'ok', ts: Date.now() - 400 * day });
      await log.append({ principal: 'recent', action: 'kv.put', outcome: 'ok', ts: Date.now() - 300 * day });
      assert.equal(await log.prune(), 1);
      assert.deepEqual((await log.query({ limit: 10 })).map((r) => r.principal), ['recent']);
      assert.equal(await new AuditLog(backend, pino({ level: 'silent' }), 0).prune(), 0, '0 keeps everything');
    } finally {
      await backend.close();
      tmp.cleanup();
    }
  });
});
