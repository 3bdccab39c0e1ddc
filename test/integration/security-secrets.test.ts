// Namespaces with policies against a real node with authentication on: JSON Schema rejections
// with paths (stored value unchanged), default TTLs, secrets encrypted at rest and redacted for
// readers without read_secret on every route, KEK rotation online, and the leak test: after
// exercising every route, the plaintext of the secrets appears in no log line, audit record,
// metric, error message, reader's response or data file.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { http, tempDir } from '../helpers/node.js';
import { ADMIN_PASSWORD, capturingLogger, client, login, startSecureNode, userToken, type SecureNode, writeKekFile } from './security-helpers.js';

const secret = (name: string): string => `${name}-${randomBytes(12).toString('hex')}`;

describe('namespaces: JSON Schema, formats and default TTL', () => {
  let node: SecureNode;
  let admin: ReturnType<typeof client>;
  let dev: ReturnType<typeof client>;

  before(async () => {
    node = await startSecureNode();
    const adminToken = await login(node.url, 'admin', ADMIN_PASSWORD);
    admin = client(node.url, adminToken);
    dev = client(node.url, await userToken(node.url, adminToken, 'dev', ['developer']));
    const schema = { type: 'object', required: ['host'], properties: { host: { type: 'string' }, pool: { type: 'integer', minimum: 1 } } };
    const res = await admin('/v1/namespaces/svc/', { method: 'PUT', body: { schema } });
    assert.equal(res.status, 201);
    assert.equal(res.body.format, 'json');
  });
  after(async () => {
    await node.cleanup();
  });

  it('rejects schema-invalid values with every failing path and leaves the stored value unchanged', async () => {
    assert.equal((await dev('/v1/kv/svc/db', { method: 'PUT', body: { value: '{"host":"db1","pool":5}' } })).status, 200);
    const before = await dev('/v1/kv/svc/db');
    const bad = await dev('/v1/kv/svc/db', { method: 'PUT', body: { value: '{"pool":0}' } });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error.code, 'invalid_argument');
    assert.deepEqual(bad.body.error.details.violations.map((v: any) => v.path).sort(), ['/host', '/pool']);
    assert.match(bad.body.error.message, /\/host .*required/);
    assert.match(bad.body.error.message, /\/pool must be >= 1/);
    assert.deepEqual((await dev('/v1/kv/svc/db')).body, before.body, 'unchanged: same value, version and revision');

    const cfgOk = await dev('/v1/configs/svc/api', { method: 'PUT', body: { value: { host: 'api', pool: 2 } } });
    assert.equal(cfgOk.status, 200);
    const cfgBad = await dev('/v1/configs/svc/api', { method: 'PUT', body: { value: { host: 42 } } });
    assert.equal(cfgBad.status, 400);
    assert.deepEqual(cfgBad.body.error.details.violations.map((v: any) => v.path), ['/host']);
    const cfg = await dev('/v1/configs/svc/api');
    assert.deepEqual([cfg.body.version, cfg.body.value], ['v1', { host: 'api', pool: 2 }]);

    const notJson = await dev('/v1/kv/svc/raw', { method: 'PUT', raw: 'plain text' });
    assert.equal(notJson.status, 400);
    assert.match(notJson.body.error.message, /must be JSON/);
    assert.equal((await dev('/v1/kv/svc/raw')).status, 404);
  });

  it('a txn with one invalid put writes nothing', async () => {
    const res = await dev('/v1/txn', {
      method: 'POST',
      body: { success: [{ put: { key: 'svc/ok', value: '{"host":"h"}' } }, { put: { key: 'svc/bad', value: '{"host":1}' } }] },
    });
    assert.equal(res.status, 400);
    assert.equal(res.body.error.details.key, 'svc/bad');
    assert.equal((await dev('/v1/kv/svc/ok')).status, 404);
  });

  it('a rollback to a version the current schema refuses is refused', async () => {
    assert.equal((await dev('/v1/configs/legacy/app', { method: 'PUT', body: { value: { host: 'h', pool: 'many' } } })).status, 200);
    assert.equal((await admin('/v1/namespaces/legacy/', { method: 'PUT', body: { schema: { type: 'object', properties: { pool: { type: 'integer' } } } } })).status, 201);
    assert.equal((await dev('/v1/configs/legacy/app', { method: 'PUT', body: { value: { host: 'h', pool: 3 } } })).status, 200);
    const rb = await dev('/v1/configs/legacy/app/rollback', { method: 'POST', body: { version: 'v1' } });
    assert.equal(rb.status, 400);
    assert.deepEqual(rb.body.error.details.violations.map((v: any) => v.path), ['/pool']);
    assert.equal((await dev('/v1/configs/legacy/app')).body.version, 'v2');
  });

  it('refuses bad policies with the field named, and only admins manage them', async () => {
    const bad = await admin('/v1/namespaces/x/', { method: 'PUT', body: { schema: { type: 'strnig' } } });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error.details.field, 'schema');
    assert.equal((await admin('/v1/namespaces/x/', { method: 'PUT', body: { secret: true } })).status, 400, 'no KEK on this node');
    assert.equal((await dev('/v1/namespaces/x/', { method: 'PUT', body: { format: 'text' } })).status, 403);
    assert.equal((await admin('/v1/namespaces/y/', { method: 'PUT', body: { format: 'text' } })).status, 201);
    assert.equal((await dev('/v1/kv/y/bin', { method: 'PUT', body: { value: '//79', encoding: 'base64' } })).status, 400, 'not UTF-8');
    assert.equal((await dev('/v1/namespaces/y/')).body.format, 'text');
    assert.equal((await admin('/v1/namespaces/y/', { method: 'DELETE' })).status, 200);
    assert.equal((await dev('/v1/namespaces/y/')).status, 404);
  });

  it('applies the default TTL to writes that name no lease', async () => {
    assert.equal((await admin('/v1/namespaces/tmp/', { method: 'PUT', body: { defaultTtl: 30 } })).status, 201);
    const put = await dev('/v1/kv/tmp/session', { method: 'PUT', body: { value: 'x' } });
    assert.equal(put.status, 200);
    assert.ok(put.body.lease > 0);
    const lease = await dev(`/v1/leases/${put.body.lease}`);
    assert.ok(lease.body.ttl > 0 && lease.body.ttl <= 30);
    assert.deepEqual(lease.body.keys, ['tmp/session']);
    const cfg = await dev('/v1/configs/tmp/flag', { method: 'PUT', body: { value: 'on' } });
    assert.equal(cfg.status, 200);
    assert.ok((await dev('/v1/kv/tmp/flag')).body.kv.lease > 0);
    const leases = async (): Promise<number> => ((await admin('/v1/leases')).body.leases as unknown[]).length;
    const held = await leases();
    const refused = await dev('/v1/configs/tmp/flag', { method: 'PUT', body: { value: 'off', version: 'v9' } });
    assert.equal(refused.status, 409);
    assert.equal(await leases(), held, 'a refused config write leaves no lease behind');
  });
});

describe('secrets: encrypted at rest, redacted everywhere, and the leak test', () => {
  const logs = capturingLogger();
  const kekDir = tempDir('beacon-kek-');
  let node: SecureNode;
  let admin: ReturnType<typeof client>;
  let dev: ReturnType<typeof client>;
  let viewer: ReturnType<typeof client>;
  let writer: ReturnType<typeof client>;
  let viewerAuth = '';
  /** Every response a principal without read_secret received, and every error body: none may hold a secret. */
  const seen: string[] = [];
  const S = { kv: secret('kv-secret'), cfg1: secret('cfg-one'), cfg2: secret('cfg-two'), txn: secret('txn-secret'), rej: secret('rejected'), bad: secret('badjson'), w: secret('writer') };

  const record = (r: { status: number; body: any }): { status: number; body: any } => {
    seen.push(JSON.stringify(r.body));
    return r;
  };

  before(async () => {
    const kekFile = writeKekFile(kekDir.dir);
    node = await startSecureNode({ logger: logs.logger, kekFile });
    const adminToken = await login(node.url, 'admin', ADMIN_PASSWORD);
    admin = client(node.url, adminToken);
    dev = client(node.url, await userToken(node.url, adminToken, 'dev', ['developer']));
    const viewerToken = await userToken(node.url, adminToken, 'view', ['viewer']);
    viewer = client(node.url, viewerToken);
    viewerAuth = `Bearer ${viewerToken}`;
    await admin('/v1/roles/vault-writer', { method: 'PUT', body: { permissions: [{ prefix: 'vault/', access: 'write' }] } });
    writer = client(node.url, await userToken(node.url, adminToken, 'writer', ['vault-writer']));
    const ns = await admin('/v1/namespaces/vault/', { method: 'PUT', body: { secret: true } });
    assert.equal(ns.status, 201);
    assert.equal(ns.body.secret, true);
    assert.equal((await admin('/v1/namespaces/vault/cfg/', { method: 'PUT', body: { secret: true, schema: { type: 'object', required: ['token'] } } })).status, 201);

    // The developer writes secrets through every write path.
    assert.equal((await dev('/v1/kv/vault/db', { method: 'PUT', body: { value: S.kv } })).status, 200);
    assert.equal((await dev('/v1/configs/vault/cfg/api', { method: 'PUT', body: { value: { token: S.cfg1 } } })).status, 200);
    assert.equal((await dev('/v1/configs/vault/cfg/api', { method: 'PUT', body: { value: { token: S.cfg2 } } })).status, 200);
    assert.equal((await dev('/v1/configs/vault/cfg/api/rollback', { method: 'POST', body: { version: 'v1' } })).status, 200);
    assert.equal((await dev('/v1/txn', { method: 'POST', body: { success: [{ put: { key: 'vault/txn', value: S.txn } }] } })).status, 200);
    assert.equal((await dev('/v1/kv/vault/w', { method: 'PUT', body: { value: S.w } })).status, 200);
  });
  after(async () => {
    await node.cleanup();
    kekDir.cleanup();
  });

  it('readers with read_secret see the clear values on every read path', async () => {
    assert.equal((await dev('/v1/kv/vault/db')).body.kv.value, S.kv);
    assert.equal((await dev('/v1/kv/vault/?prefix=true')).body.kvs.find((k: any) => k.key === 'vault/db').value, S.kv);
    const cfg = await dev('/v1/configs/vault/cfg/api');
    assert.deepEqual([cfg.body.version, cfg.body.value], ['v3', { token: S.cfg1 }]);
    const hist = await dev('/v1/configs/vault/cfg/api/history');
    assert.deepEqual(hist.body.versions.map((v: any) => v.value.token), [S.cfg1, S.cfg2, S.cfg1]);
    const diff = await dev('/v1/configs/vault/cfg/api/diff?from=v1&to=v2');
    assert.equal(diff.status, 200);
    assert.ok(JSON.stringify(diff.body).includes(S.cfg2));
    const txn = await dev('/v1/txn', { method: 'POST', body: { success: [{ range: { key: 'vault/txn' } }] } });
    assert.equal(txn.body.results[0].range.kvs[0].value, S.txn);
    const rev = (await dev('/v1/kv/vault/db')).body.kv.modRevision;
    assert.equal((await dev(`/v1/kv/vault/db?rev=${rev}`)).body.kv.value, S.kv);
  });

  it('readers without read_secret get the keys and versions, never the values', async () => {
    const one = record(await viewer('/v1/kv/vault/db'));
    assert.equal(one.status, 200);
    assert.equal(one.body.kv.redacted, true);
    assert.equal(one.body.kv.value, undefined);
    assert.equal(one.body.kv.version, 1);
    const list = record(await viewer('/v1/kv/vault/?prefix=true'));
    assert.ok(list.body.kvs.length >= 4 && list.body.kvs.every((k: any) => k.redacted === true && k.value === undefined));
    const rev = one.body.kv.modRevision;
    assert.equal(record(await viewer(`/v1/kv/vault/db?rev=${rev}`)).body.kv.redacted, true);
    const txn = record(await viewer('/v1/txn', { method: 'POST', body: { success: [{ range: { key: 'vault/', prefix: true } }] } }));
    assert.ok(txn.body.results[0].range.kvs.every((k: any) => k.redacted === true));
    const cmp = record(await viewer('/v1/txn', { method: 'POST', body: { compare: [{ key: 'vault/db', target: 'value', result: '=', value: S.kv }] } }));
    assert.equal(cmp.status, 400, 'no value compares on secrets (no guessing oracle)');
    const cfg = record(await viewer('/v1/configs/vault/cfg/api'));
    assert.deepEqual([cfg.body.value, cfg.body.redacted, cfg.body.version], [null, true, 'v3']);
    const hist = record(await viewer('/v1/configs/vault/cfg/api/history'));
    assert.ok(hist.body.versions.every((v: any) => v.value === null && v.redacted === true));
    const old = record(await viewer('/v1/configs/vault/cfg/api?version=v2'));
    assert.equal(old.body.redacted, true);
    const diff = record(await viewer('/v1/configs/vault/cfg/api/diff?from=v1&to=v2'));
    assert.equal(diff.status, 403);
    assert.equal(record(await viewer('/v1/audit')).status, 403);
    // A writer without secrets may overwrite a secret but not read the old value back through prevKv.
    const put = record(await writer('/v1/kv/vault/w', { method: 'PUT', body: { value: 'replaced', prevKv: true } }));
    assert.equal(put.status, 200);
    assert.equal(put.body.prevKv.redacted, true);
    const del = record(await writer('/v1/kv/vault/w?prevKv=true', { method: 'DELETE' }));
    assert.equal(del.body.prevKvs[0].redacted, true);
    // Watching a secret namespace delivers ciphertext at most, never the plaintext.
    const ctl = new AbortController();
    const res = await fetch(`${node.url}/v1/watch/vault/?prefix=true&fromRevision=1`, { headers: { authorization: viewerAuth }, signal: ctl.signal });
    assert.equal(res.status, 200);
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    let text = '';
    const deadline = Date.now() + 1500;
    while (Date.now() < deadline && !text.includes('vault/txn')) {
      const chunk = await Promise.race([reader.read(), new Promise<{ value?: Uint8Array }>((r) => setTimeout(() => r({}), 300))]);
      if (chunk.value) text += Buffer.from(chunk.value).toString('utf8');
    }
    ctl.abort();
    seen.push(text);
    assert.ok(text.includes('vault/db'), 'the watch saw the events');
  });

  it('error messages never echo a value', async () => {
    const schemaBad = record(await dev('/v1/configs/vault/cfg/api', { method: 'PUT', body: { value: { nottoken: S.rej } } }));
    assert.equal(schemaBad.status, 400);
    const jsonBad = record(await http(`${node.url}/v1/configs/vault/cfg/api`, { method: 'PUT', raw: `{"value": ${S.bad}}`, headers: { authorization: `Bearer ${await login(node.url, 'dev', 'dev-password-1')}`, 'content-type': 'application/json' } }));
    assert.equal(jsonBad.status, 400);
    const denied = record(await viewer('/v1/kv/vault/db', { method: 'PUT', body: { value: S.rej } }));
    assert.equal(denied.status, 403);
  });

  it('leak test: no plaintext in logs, audit records, metrics, readers’ responses, errors or the data files', async () => {
    // Exercise the rest of the routes a reader may use, then collect everything.
    for (const path of ['/v1/status', '/v1/leases', '/v1/configs?prefix=vault/', '/v1/namespaces', '/v1/roles', '/v1/auth/whoami', '/v1/kv/nope']) record(await viewer(path));
    const audit = await fetch(`${node.url}/v1/audit?format=jsonl`, { headers: { authorization: `Bearer ${await login(node.url, 'admin', ADMIN_PASSWORD)}` } });
    assert.equal(audit.status, 200);
    const auditText = await audit.text();
    assert.ok(auditText.split('\n').filter((l) => l !== '').length > 10, 'the audit log has the writes');
    assert.ok(auditText.includes('"key":"vault/db"'), 'writes of secrets are audited (by key)');
    const metrics = await (await admin('/metrics')).body;
    // Recursive: the metrics store keeps its files in tsdb/ (issue 12), and they are scanned too.
    const files = readdirSync(node.dataDir, { recursive: true, encoding: 'utf8' })
      .filter((f) => statSync(join(node.dataDir, f)).isFile())
      .map((f) => readFileSync(join(node.dataDir, f)).toString('latin1'));
    const places: [string, string][] = [
      ['logs', logs.text()],
      ['audit', auditText],
      ['metrics', String(metrics)],
      ['responses', seen.join('\n')],
      ...files.map((f, i): [string, string] => [`data file ${i}`, f]),
    ];
    assert.ok(logs.text().length > 1000, 'the logs were captured');
    const hits: string[] = [];
    for (const [where, text] of places) for (const [name, value] of Object.entries(S)) if (text.includes(value)) hits.push(`${name} in ${where}`);
    assert.deepEqual(hits, []);
  });
});

describe('KEK rotation', () => {
  it('re-encrypts online under the new KEK; values stay readable before, during and after', async () => {
    const tmp = tempDir();
    const k1 = `k1:${randomBytes(32).toString('hex')}`;
    const k2 = `k2:${randomBytes(32).toString('hex')}`;
    const kekFile = join(tmp.dir, 'kek');
    const dataDir = join(tmp.dir, 'data');
    const value = secret('rotated');
    try {
      writeFileSync(kekFile, `${k1}\n`);
      let node = await startSecureNode({ dataDir, kekFile });
      let admin = client(node.url, await login(node.url, 'admin', ADMIN_PASSWORD));
      await admin('/v1/namespaces/vault/', { method: 'PUT', body: { secret: true } });
      const firstRev = (await admin('/v1/kv/vault/a', { method: 'PUT', body: { value } })).body.revision as number;
      await admin('/v1/kv/vault/b', { method: 'PUT', body: { value: 'b' } });
      assert.equal((await admin('/v1/namespaces')).body.kek, 'k1');
      await node.cleanup();

      writeFileSync(kekFile, `${k2}\n${k1}\n`);
      node = await startSecureNode({ dataDir, kekFile });
      admin = client(node.url, await login(node.url, 'admin', ADMIN_PASSWORD));
      assert.equal((await admin('/v1/kv/vault/a')).body.kv.value, value, 'old values decrypt with the old key');
      const re = await admin('/v1/secrets/reencrypt', { method: 'POST' });
      assert.equal(re.status, 200);
      assert.deepEqual([re.body.kek, re.body.encrypted, re.body.skipped], ['k2', 2, 0]);
      assert.equal((await admin('/v1/kv/vault/a')).body.kv.value, value);
      const audit = await admin('/v1/audit?action=secret.reencrypt');
      assert.equal(audit.body.records.length, 3, 'one record per value and one for the request');
      await node.cleanup();

      writeFileSync(kekFile, `${k2}\n`);
      node = await startSecureNode({ dataDir, kekFile });
      admin = client(node.url, await login(node.url, 'admin', ADMIN_PASSWORD));
      assert.equal((await admin('/v1/kv/vault/a')).body.kv.value, value, 'readable with only the new key');
      const old = await admin(`/v1/kv/vault/a?rev=${firstRev}`);
      assert.equal(old.status, 503, 'history sealed with a retired key needs that key');
      assert.equal(old.body.error.code, 'unavailable');
      await node.cleanup();
    } finally {
      tmp.cleanup();
    }
  });
});
