// /v1/configs against a real node over HTTP: the seed's journeys 1 and 2 (000, "Configuration
// Update and Propagation", "Configuration Rollback") step by step as curl sends them, history,
// diff, listings, and the config/kv keyspace being one.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { http, startTestNode } from '../helpers/node.js';

type TestNode = Awaited<ReturnType<typeof startTestNode>>;

/** What `curl -X METHOD URL -d BODY` sends: the body with curl's default form content type. */
async function curl(method: string, url: string, data?: string): Promise<{ status: number; body: any }> {
  const res = await fetch(url, {
    method,
    ...(data !== undefined ? { body: data, headers: { 'content-type': 'application/x-www-form-urlencoded' } } : {}),
  });
  const text = await res.text();
  return { status: res.status, body: text === '' ? undefined : JSON.parse(text) };
}

const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

describe('/v1/configs', () => {
  let node: TestNode;
  let url: string;
  before(async () => {
    node = await startTestNode();
    url = `${node.url}/v1/configs`;
  });
  after(async () => {
    await node.cleanup();
  });

  it('journeys 1 and 2: update to v2, stale write refused, rollback to v1 as v3', async () => {
    // Setup: the config exists at v1.
    const v1 = await curl('PUT', `${url}/database.url`, '{"value": "postgresql://old-db:5432/app"}');
    assert.equal(v1.status, 200);
    assert.equal(v1.body.version, 'v1');

    // Journey 1, step 1: PUT with {"value": …, "version": "v2"}; step 3: 200 with key, version, updated_at.
    const put = await curl('PUT', `${url}/database.url`, '{"value": "postgresql://new-db:5432/app", "version": "v2"}');
    assert.equal(put.status, 200);
    assert.deepEqual(Object.keys(put.body).sort(), ['key', 'revision', 'updated_at', 'version']);
    assert.equal(put.body.key, 'database.url');
    assert.equal(put.body.version, 'v2');
    assert.equal(put.body.revision, v1.body.revision + 1);
    assert.match(put.body.updated_at, ISO);
    assert.ok(Date.parse(put.body.updated_at) >= Date.parse(v1.body.updated_at));

    // Step 5: the service fetches GET /v1/configs/database.url → v2.
    const got = await curl('GET', `${url}/database.url`);
    assert.equal(got.status, 200);
    assert.deepEqual(got.body, {
      key: 'database.url',
      value: 'postgresql://new-db:5432/app',
      version: 'v2',
      revision: put.body.revision,
      created_at: v1.body.updated_at,
      updated_at: put.body.updated_at,
    });

    // A second admin working from the old state also sends version v2: refused, nothing written.
    const stale = await curl('PUT', `${url}/database.url`, '{"value": "postgresql://other-db:5432/app", "version": "v2"}');
    assert.equal(stale.status, 409);
    assert.equal(stale.body.error.code, 'conflict');
    assert.deepEqual(stale.body.error.details, { key: 'database.url', expected: 'v2', current: 'v2' });
    assert.equal((await curl('GET', `${url}/database.url`)).body.value, 'postgresql://new-db:5432/app');

    // Journey 2: POST /v1/configs/database.url/rollback with {"version": "v1"}.
    const rb = await curl('POST', `${url}/database.url/rollback`, '{"version": "v1"}');
    assert.equal(rb.status, 200);
    assert.deepEqual(Object.keys(rb.body).sort(), ['from_version', 'key', 'restored_version', 'revision', 'to_version', 'updated_at']);
    assert.equal(rb.body.key, 'database.url');
    assert.equal(rb.body.from_version, 'v2');
    assert.equal(rb.body.to_version, 'v3');
    assert.equal(rb.body.restored_version, 'v1');
    assert.equal(rb.body.revision, put.body.revision + 1);
    assert.match(rb.body.updated_at, ISO);

    // Services reload with the previous configuration: v1's value, as v3.
    const after = await curl('GET', `${url}/database.url`);
    assert.equal(after.body.value, 'postgresql://old-db:5432/app');
    assert.equal(after.body.version, 'v3');
    assert.equal(after.body.revision, rb.body.revision);
    assert.equal(after.body.updated_at, rb.body.updated_at);

    // The older versions stay readable.
    const old = await curl('GET', `${url}/database.url?version=v2`);
    assert.equal(old.status, 200);
    assert.equal(old.body.value, 'postgresql://new-db:5432/app');
    assert.equal(old.body.version, 'v2');
    assert.equal(old.body.latest_version, 'v3');
    assert.equal(old.body.revision, put.body.revision);
  });

  it('lists history newest first with events, and pages through it with continue', async () => {
    const key = 'app/history-demo';
    for (let i = 1; i <= 5; i++) assert.equal((await http(`${url}/${key}`, { method: 'PUT', body: { value: `value ${i}` } })).status, 200);
    const rb = await http(`${url}/${key}/rollback`, { method: 'POST', body: { version: 'v2', expectedVersion: 'v5' } });
    assert.equal(rb.status, 200);
    assert.equal(rb.body.to_version, 'v6');

    const all = await http(`${url}/${key}/history`);
    assert.equal(all.status, 200);
    assert.equal(all.body.key, key);
    assert.equal(all.body.more, false);
    assert.deepEqual(
      all.body.versions.map((v: any) => [v.version, v.value, v.event]),
      [
        ['v6', 'value 2', 'config_rolled_back'],
        ['v5', 'value 5', 'config_updated'],
        ['v4', 'value 4', 'config_updated'],
        ['v3', 'value 3', 'config_updated'],
        ['v2', 'value 2', 'config_updated'],
        ['v1', 'value 1', 'config_updated'],
      ],
    );
    assert.equal(all.body.versions[0].restored_version, 'v2');
    assert.equal(all.body.versions[0].revision, rb.body.revision);
    const revisions = all.body.versions.map((v: any) => v.revision);
    assert.deepEqual(revisions, [...revisions].sort((a, b) => b - a));
    for (const v of all.body.versions) assert.match(v.updated_at, ISO);

    // Pages of two, following continue, give the same list; a write in between does not disturb them.
    const paged: any[] = [];
    let page = await http(`${url}/${key}/history?limit=2`);
    await http(`${url}/${key}`, { method: 'PUT', body: { value: 'written while paging' } });
    for (;;) {
      assert.equal(page.status, 200);
      assert.ok(page.body.versions.length <= 2);
      paged.push(...page.body.versions);
      if (!page.body.more) break;
      page = await http(`${url}/${key}/history?limit=2&continue=${encodeURIComponent(page.body.continue)}`);
    }
    assert.deepEqual(paged, all.body.versions);
  });

  it('diffs JSON objects structurally and text line by line', async () => {
    const key = 'services/payment/config';
    await http(`${url}/${key}`, { method: 'PUT', body: { value: { db: { host: 'old-db', port: 5432 }, features: ['a', 'b'], retries: 3 } } });
    await http(`${url}/${key}`, { method: 'PUT', body: { value: { db: { host: 'new-db', port: 5432 }, features: ['a', 'b'], retries: 3 } } });
    await http(`${url}/${key}`, { method: 'PUT', body: { value: { db: { host: 'new-db', port: 5432, pool: 20 }, features: ['a'] } } });

    // A JSON object value is returned parsed.
    assert.deepEqual((await http(`${url}/${key}`)).body.value, { db: { host: 'new-db', port: 5432, pool: 20 }, features: ['a'] });

    const d = await http(`${url}/${key}/diff?from=v1&to=v3`);
    assert.equal(d.status, 200);
    assert.deepEqual(d.body, {
      key,
      from: 'v1',
      to: 'v3',
      format: 'json',
      changes: [
        { path: '/db/host', op: 'changed', from: 'old-db', to: 'new-db' },
        { path: '/db/pool', op: 'added', to: 20 },
        { path: '/features/1', op: 'removed', from: 'b' },
        { path: '/retries', op: 'removed', from: 3 },
      ],
    });
    // Without from/to: the latest version against the one before it.
    const latest = await http(`${url}/${key}/diff`);
    assert.equal(latest.body.from, 'v2');
    assert.equal(latest.body.to, 'v3');
    assert.equal(latest.body.changes.length, 3);

    const tkey = 'app/nginx.conf';
    await http(`${url}/${tkey}`, { method: 'PUT', body: { value: 'worker_processes 2;\nerror_log stderr;\nlisten 80;\n' } });
    await http(`${url}/${tkey}`, { method: 'PUT', body: { value: 'worker_processes 4;\nerror_log stderr;\nlisten 80;\n' } });
    const t = await http(`${url}/${tkey}/diff?from=v1&to=v2`);
    assert.equal(t.status, 200);
    assert.equal(t.body.format, 'text');
    assert.deepEqual(t.body.changes, [
      { op: 'removed', line: 1, text: 'worker_processes 2;' },
      { op: 'added', line: 1, text: 'worker_processes 4;' },
    ]);
    assert.equal(
      t.body.unified,
      '--- app/nginx.conf v1\n+++ app/nginx.conf v2\n@@ -1,3 +1,3 @@\n-worker_processes 2;\n+worker_processes 4;\n error_log stderr;\n listen 80;\n',
    );

    const missing = await http(`${url}/${tkey}/diff?from=v1&to=v9`);
    assert.equal(missing.status, 404);
    assert.equal(missing.body.error.code, 'not_found');
  });

  it('is the same keyspace as /v1/kv: one value, one version counter, one revision history', async () => {
    const put = await http(`${url}/shared.timeout`, { method: 'PUT', body: { value: '30s' } });
    const kv = await http(`${node.url}/v1/kv/shared.timeout`);
    assert.equal(kv.status, 200);
    assert.equal(kv.body.kv.value, '30s');
    assert.equal(kv.body.kv.version, 1);
    assert.equal(kv.body.kv.modRevision, put.body.revision);

    // A write through the kv API is the config's next version.
    const kvPut = await http(`${node.url}/v1/kv/shared.timeout`, { method: 'PUT', body: { value: '45s' } });
    const cfg = await http(`${url}/shared.timeout`);
    assert.equal(cfg.body.version, 'v2');
    assert.equal(cfg.body.value, '45s');
    assert.equal(cfg.body.revision, kvPut.body.revision);
    const hist = await http(`${url}/shared.timeout/history`);
    assert.deepEqual(hist.body.versions.map((v: any) => v.value), ['45s', '30s']);

    // Non-string JSON is stored as compact JSON text; strings as their raw text.
    await http(`${url}/shared.limits`, { method: 'PUT', body: { value: { rps: 100, burst: [1, 2] } } });
    assert.equal((await http(`${node.url}/v1/kv/shared.limits`)).body.kv.value, '{"rps":100,"burst":[1,2]}');
    await http(`${url}/shared.port`, { method: 'PUT', body: { value: 8080 } });
    assert.equal((await http(`${node.url}/v1/kv/shared.port`)).body.kv.value, '8080');
    assert.equal((await http(`${url}/shared.port`)).body.value, '8080');

    // Bytes that are not UTF-8 (written through kv) come back as base64.
    await http(`${node.url}/v1/kv/shared.blob`, { method: 'PUT', body: { value: '/wA=', encoding: 'base64' } });
    const blob = await http(`${url}/shared.blob`);
    assert.equal(blob.body.value, '/wA=');
    assert.equal(blob.body.encoding, 'base64');
  });

  it('a deleted and re-created config restarts at v1; history, versions and rollback see the current incarnation', async () => {
    const key = 'feature.flags';
    for (const v of ['a', 'b', 'c']) await http(`${url}/${key}`, { method: 'PUT', body: { value: v } });
    const del = await http(`${url}/${key}`, { method: 'DELETE' });
    assert.equal(del.status, 200);
    assert.equal(del.body.key, key);
    assert.equal(del.body.deleted, true);
    assert.equal(typeof del.body.revision, 'number');
    assert.equal((await http(`${url}/${key}`)).status, 404);
    assert.equal((await http(`${node.url}/v1/kv/${key}`)).status, 404);
    assert.equal((await http(`${url}/${key}`, { method: 'DELETE' })).status, 404);

    // The deleted incarnation's history ends with the deletion; its versions stay readable for recovery.
    const gone = await http(`${url}/${key}/history`);
    assert.deepEqual(gone.body.versions.map((v: any) => [v.version, v.event]), [
      [null, 'deleted'],
      ['v3', 'config_updated'],
      ['v2', 'config_updated'],
      ['v1', 'config_updated'],
    ]);
    assert.equal((await http(`${url}/${key}?version=v2`)).body.value, 'b');
    assert.equal((await http(`${url}/${key}/rollback`, { method: 'POST', body: { version: 'v2' } })).status, 404);

    const again = await http(`${url}/${key}`, { method: 'PUT', body: { value: 'fresh', version: 'v1' } });
    assert.equal(again.status, 200);
    assert.equal(again.body.version, 'v1');
    const hist = await http(`${url}/${key}/history`);
    assert.deepEqual(hist.body.versions.map((v: any) => [v.version, v.value]), [['v1', 'fresh']]);
    assert.equal((await http(`${url}/${key}?version=v3`)).status, 404);
    assert.equal((await http(`${url}/${key}/rollback`, { method: 'POST', body: { version: 'v2' } })).status, 404);
  });

  it('addresses keys with slashes, and a key ending in /history via %2F', async () => {
    const put = await http(`${url}/team/a/history`, { method: 'PUT', body: { value: 'literal key' } });
    assert.equal(put.status, 200);
    assert.equal(put.body.key, 'team/a/history');
    // Unescaped, the suffix is the history sub-resource of "team/a" (which does not exist).
    assert.equal((await http(`${url}/team/a/history`)).status, 404);
    const literal = await http(`${url}/team/a%2Fhistory`);
    assert.equal(literal.status, 200);
    assert.equal(literal.body.key, 'team/a/history');
    assert.equal(literal.body.value, 'literal key');
    assert.equal((await http(`${url}/team/a%2Fhistory/history`)).body.versions.length, 1);
    // A leading slash is part of the key.
    await http(`${url}//etc/app.yaml`, { method: 'PUT', body: { value: 'a: 1\n' } });
    assert.equal((await http(`${node.url}/v1/kv//etc/app.yaml`)).body.kv.value, 'a: 1\n');
  });

  it('lists configs under a prefix in key order, in pages', async () => {
    for (const k of ['list.c', 'list.a', 'list.b', 'listx.other']) await http(`${url}/${k}`, { method: 'PUT', body: { value: k } });
    await http(`${url}/list.a`, { method: 'PUT', body: { value: 'again' } });
    const first = await http(`${url}?prefix=list.&limit=2`);
    assert.equal(first.status, 200);
    assert.deepEqual(first.body.configs.map((c: any) => [c.key, c.version]), [['list.a', 'v2'], ['list.b', 'v1']]);
    assert.equal(first.body.more, true);
    for (const c of first.body.configs) {
      assert.equal(typeof c.revision, 'number');
      assert.match(c.updated_at, ISO);
    }
    const second = await http(`${url}?prefix=list.&limit=2&continue=${encodeURIComponent(first.body.continue)}`);
    assert.deepEqual(second.body.configs.map((c: any) => c.key), ['list.c']);
    assert.equal(second.body.more, false);
    assert.equal(second.body.revision, first.body.revision);
    const everything = await http(`${url}/`);
    assert.ok(everything.body.configs.some((c: any) => c.key === 'listx.other'));
  });
});
