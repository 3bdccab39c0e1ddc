// Issue 9 finding 4: elections and sequences in a secret namespace were encrypted with the
// authenticated data of `name/` instead of the key they are stored under, so they never
// decrypted and broke listings of the namespace. Every put is now sealed by the store for its
// real key. This test campaigns, proclaims, creates sequential keys, takes a lock, runs a txn
// and a `beacon import` inside a secret namespace of a real secure node, and reads every value
// back in clear (and checks at rest that each one is ciphertext bound to its own key).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { CLI, tempDir } from '../helpers/node.js';
import { ADMIN_PASSWORD, client, login, startSecureNode, userToken, writeKekFile, type SecureNode } from './security-helpers.js';

const run = promisify(execFile);

describe('hardening: secret namespaces seal every value for its own key (issue 9 finding 4)', () => {
  const tmp = tempDir('beacon-aad-');
  let node: SecureNode;
  let admin: ReturnType<typeof client>;
  let viewer: ReturnType<typeof client>;
  let adminToken: string;

  /** The stored row of `key` is ciphertext that decrypts under `key` itself to `clear`. */
  const sealedFor = (key: string, clear: string): void => {
    const kv = node.store.get(key);
    assert.ok(kv !== undefined, `${key} exists`);
    assert.equal(kv.encrypted, true, `${key} is sealed at rest`);
    assert.ok(!Buffer.from(kv.value).includes(Buffer.from(clear)) || clear === '', `${key} holds no plaintext`);
    assert.equal(Buffer.from(node.policies.keyring?.decrypt(key, kv.value) ?? []).toString('utf8'), clear, `${key} decrypts with its own key as AAD`);
  };

  before(async () => {
    node = await startSecureNode({ kekFile: writeKekFile(tmp.dir) });
    adminToken = await login(node.url, 'admin', ADMIN_PASSWORD);
    admin = client(node.url, adminToken);
    viewer = client(node.url, await userToken(node.url, adminToken, 'reader', ['viewer']));
    assert.equal((await admin('/v1/namespaces/sec/', { method: 'PUT', body: { secret: true } })).status, 201);
  });
  after(async () => {
    await node.cleanup();
    tmp.cleanup();
  });

  it('an election leader and its proclaimed value read back in clear', async () => {
    const c = await admin('/v1/elections/sec/leader/campaign', { method: 'POST', body: { value: 'node-a:7379', ttl: 30 } });
    assert.equal(c.status, 200, JSON.stringify(c.body));
    const leader = await admin('/v1/elections/sec/leader/leader');
    assert.equal(leader.status, 200, JSON.stringify(leader.body));
    assert.equal(leader.body.value, 'node-a:7379');
    sealedFor(c.body.key, 'node-a:7379');
    const p = await admin('/v1/elections/sec/leader/proclaim', { method: 'POST', body: { key: c.body.key, fencingToken: c.body.fencingToken, value: 'node-a:7380' } });
    assert.equal(p.status, 200, JSON.stringify(p.body));
    sealedFor(c.body.key, 'node-a:7380');
    const cands = await admin('/v1/elections/sec/leader/candidates');
    assert.equal(cands.status, 200);
    assert.deepEqual(cands.body.candidates.map((k: any) => k.value), ['node-a:7380']);
    assert.equal((await viewer('/v1/elections/sec/leader/leader')).body.redacted, true, 'redacted for a reader without read_secret');
  });

  it('sequential keys read back in clear', async () => {
    const keys: string[] = [];
    for (const v of ['job-1', 'job-2']) {
      const s = await admin('/v1/sequences/sec/jobs', { method: 'POST', body: { value: v } });
      assert.equal(s.status, 201, JSON.stringify(s.body));
      keys.push(s.body.key);
    }
    const list = await admin('/v1/kv/sec/jobs/?prefix=true');
    assert.equal(list.status, 200, JSON.stringify(list.body));
    assert.deepEqual(list.body.kvs.map((kv: any) => [kv.key, kv.value]), [[keys[0], 'job-1'], [keys[1], 'job-2']]);
    keys.forEach((k, i) => sealedFor(k, `job-${i + 1}`));
  });

  it('a lock key, txn puts and imported keys read back in clear', async () => {
    const lock = await admin('/v1/locks/sec/lk', { method: 'POST', body: { ttl: 30 } });
    assert.equal(lock.status, 200, JSON.stringify(lock.body));
    const lockKv = await admin(`/v1/kv/${lock.body.key}`);
    assert.equal(lockKv.status, 200, JSON.stringify(lockKv.body));
    assert.equal(lockKv.body.kv.value, '');
    sealedFor(lock.body.key, '');

    const txn = await admin('/v1/txn', {
      method: 'POST',
      body: { success: [{ put: { key: 'sec/t1', value: 'one' } }, { put: { key: 'sec/t2', value: 'two' } }, { range: { key: 'sec/t', prefix: true } }] },
    });
    assert.equal(txn.status, 200, JSON.stringify(txn.body));
    assert.deepEqual(txn.body.results[2].range.kvs.map((kv: any) => kv.value), ['one', 'two']);
    sealedFor('sec/t2', 'two');

    const file = join(tmp.dir, 'import.jsonl');
    writeFileSync(file, '{"key":"sec/imp/a","value":"alpha"}\n{"key":"sec/imp/b","value":"beta"}\n');
    await run(process.execPath, [CLI, 'import', file, '--endpoint', node.url, '--token', adminToken], { timeout: 60_000 });
    assert.equal((await admin('/v1/kv/sec/imp/a')).body.kv.value, 'alpha');
    sealedFor('sec/imp/b', 'beta');
  });

  it('a listing of the whole secret namespace answers, every value in clear', async () => {
    const list = await admin('/v1/kv/sec/?prefix=true');
    assert.equal(list.status, 200, JSON.stringify(list.body));
    assert.ok(list.body.kvs.length >= 8);
    assert.deepEqual(list.body.kvs.filter((kv: any) => kv.value === undefined || kv.error !== undefined), []);
    const re = await admin('/v1/secrets/reencrypt', { method: 'POST', body: {} });
    assert.equal(re.status, 200, JSON.stringify(re.body));
    assert.equal(re.body.failed, 0);
  });
});
