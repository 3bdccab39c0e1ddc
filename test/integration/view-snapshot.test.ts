/**
 * The view snapshot with the real server (issue 17 target 5): a clean shutdown writes
 * `beacon.db-view`, the next start loads from it; writes after it (puts, deletes, a lease revoke)
 * survive a SIGKILL through the log; a lease's keys are attached at load (revoking it after the
 * restart deletes them); a snapshot file damaged on disk is refused and the view comes from the
 * log. Every start is checked against what the clients saw before it.
 */
import assert from 'node:assert/strict';
import { readFileSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import type { KeyValueJson } from '../../src/api/http/codec.js';
import { spawnServer, tempDir, type ServerProcess } from '../helpers/node.js';

/** A kv as /v1/kv answers it. */
type KvJson = KeyValueJson;

async function call(url: string, method: string, body?: unknown): Promise<any> {
  const res = await fetch(url, {
    method,
    ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
    signal: AbortSignal.timeout(20_000),
  });
  const text = await res.text();
  assert.ok(res.ok, `${method} ${url} → ${res.status} ${text}`);
  return JSON.parse(text);
}

/** Every user key with its fields, and the revision. */
async function everything(url: string): Promise<{ revision: number; kvs: KvJson[] }> {
  const body = await call(`${url}/v1/kv/?prefix=true`, 'GET');
  assert.equal(body.more, false);
  return { revision: body.revision, kvs: body.kvs };
}

/** How the server said it loaded its view (the "store opened" log line). */
function viewLoad(server: ServerProcess): { source: string; snapshotRevision: number; logEntries: number; reason?: string } {
  const line = server
    .stdout()
    .split('\n')
    .find((l) => l.includes('"store opened"'));
  assert.ok(line, `no "store opened" line in:\n${server.stdout()}`);
  return JSON.parse(line).view;
}

test('the view snapshot: used after a clean stop, writes after it survive SIGKILL, leases attach, a damaged file falls back to the log', { timeout: 180_000 }, async () => {
  const tmp = tempDir('beacon-view-snapshot-');
  const start = (): Promise<ServerProcess> => spawnServer(['--data-dir', tmp.dir], 30_000, { stdout: 'pipe', env: { BEACON_LOG_LEVEL: 'info' } });
  const viewFile = join(tmp.dir, 'beacon.db-view');
  let server: ServerProcess | undefined;
  try {
    server = await start();
    let url = server.url;
    const lease = await call(`${url}/v1/leases`, 'POST', { ttl: 3600 });
    // 1,200 keys in txns of 100 (over the clean-shutdown threshold of 1,000 changes), 20 of them on the lease.
    for (let t = 0; t < 12; t++) {
      const success = Array.from({ length: 100 }, (_, i) => {
        const n = t * 100 + i;
        return { put: { key: n < 20 ? `leased/${n}` : `app/${String(n).padStart(4, '0')}`, value: `v${n}-${'x'.repeat(n % 300)}`, ...(n < 20 ? { lease: lease.id } : {}) } };
      });
      await call(`${url}/v1/txn`, 'POST', { compare: [], success });
    }
    const before = await everything(url);
    await server.stop(30_000);
    assert.ok(statSync(viewFile).size > 1200 * 40, 'a clean stop wrote the view snapshot');

    // 1. Loaded from the snapshot, identical.
    server = await start();
    url = server.url;
    assert.deepEqual({ ...viewLoad(server), snapshotRevision: 0 }, { source: 'snapshot', snapshotRevision: 0, logEntries: 0 });
    assert.deepEqual(await everything(url), before);

    // 2. Writes after the snapshot, then SIGKILL: the start replays them from the log.
    await call(`${url}/v1/kv/app/0100`, 'PUT', { value: 'changed' });
    await call(`${url}/v1/kv/app/0101`, 'DELETE');
    await call(`${url}/v1/kv/fresh/1`, 'PUT', { value: 'new' });
    const afterWrites = await everything(url);
    await server.kill();
    server = await start();
    url = server.url;
    const load = viewLoad(server);
    assert.equal(load.source, 'snapshot');
    assert.ok(load.logEntries >= 3, JSON.stringify(load));
    assert.deepEqual(await everything(url), afterWrites);

    // 3. The lease's keys were attached at load: revoking it deletes them.
    const ttl = await call(`${url}/v1/leases/${lease.id}`, 'GET');
    assert.equal(ttl.keys.length, 20);
    await call(`${url}/v1/leases/${lease.id}`, 'DELETE');
    const afterRevoke = await everything(url);
    assert.equal(afterRevoke.kvs.filter((k) => k.key.startsWith('leased/')).length, 0);
    assert.equal(afterRevoke.kvs.length, afterWrites.kvs.length - 20);
    await server.kill();

    // 4. The revoke replays after SIGKILL; then a corrupt snapshot and a truncated one fall back to the log.
    server = await start();
    url = server.url;
    assert.equal(viewLoad(server).source, 'snapshot');
    assert.deepEqual(await everything(url), afterRevoke);
    await server.kill();
    const file = readFileSync(viewFile);
    const bad = Buffer.from(file);
    bad[Math.floor(bad.length / 2)] = (bad[Math.floor(bad.length / 2)] as number) ^ 0x55;
    writeFileSync(viewFile, bad);
    server = await start();
    url = server.url;
    assert.equal(viewLoad(server).source, 'log');
    assert.match(viewLoad(server).reason ?? '', /checksum/);
    assert.deepEqual(await everything(url), afterRevoke);
    await server.kill();
    writeFileSync(viewFile, file);
    truncateSync(viewFile, file.length - 100);
    server = await start();
    url = server.url;
    assert.equal(viewLoad(server).source, 'log');
    assert.match(viewLoad(server).reason ?? '', /truncated/);
    assert.deepEqual(await everything(url), afterRevoke);
  } finally {
    await server?.kill();
    tmp.cleanup();
  }
});
