// Issue 9 finding 2: watch catch-up had no memory bound across watches. After a restart, hundreds
// of watches from revision 1 on sockets that never read pushed a node's RSS to gigabytes and
// stalled PUTs. Now catch-up reads only the watched range, watchers over the same range share a
// chunk, the chunks held node-wide stay within --watch-catchup-bytes (others wait their turn),
// and watches per connection and per principal are limited (429 too_many_requests / an error
// frame; the socket stays open).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { readFileSync } from 'node:fs';
import { http, spawnServer, tempDir, type ServerProcess } from '../helpers/node.js';
import { ADMIN_PASSWORD, client, login, startSecureNode, userToken, type SecureNode } from './security-helpers.js';
import { JsonSocket, SseReader, until } from './watch-helpers.js';

const MiB = 1024 * 1024;

/** A process's resident set size in bytes (VmRSS of /proc/<pid>/status). */
function rss(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m === null ? 0 : Number(m[1]) * 1024;
}

describe('a restarted node with 48 MB of history and 300 watches from revision 1', () => {
  const data = tempDir('beacon-catchup-');
  let server: ServerProcess;
  const VALUE = 'x'.repeat(16 * 1024);
  const REVISIONS = 1000;
  const PUTS_PER_REVISION = 3; // 48 MB of values under big/

  before(async () => {
    const args = ['--data-dir', data.dir, '--watch-catchup-bytes', '32MiB'];
    server = await spawnServer(args);
    for (let i = 0; i < REVISIONS; i += 25) {
      await Promise.all(
        Array.from({ length: 25 }, async (_, j) => {
          const r = i + j;
          const success = Array.from({ length: PUTS_PER_REVISION }, (_, k) => ({ put: { key: `big/${r % 50}/${k}`, value: VALUE } }));
          if (r % 100 === 0) success.push({ put: { key: `small/${r}`, value: `s${r}` } });
          const res = await http(`${server.url}/v1/txn`, { method: 'POST', body: { compare: [], success, failure: [] } });
          assert.equal(res.status, 200, JSON.stringify(res.body));
        }),
      );
    }
    // After a restart the ring of recent revisions is empty: every catch-up reads the log.
    await server.stop();
    server = await spawnServer(args);
  });

  after(async () => {
    await server?.stop();
    data.cleanup();
  });

  test('RSS stays bounded, PUTs keep answering, and a narrow watch gets exactly its own keys', async (t) => {
    const base = rss(server.child.pid as number);
    const stalled: JsonSocket[] = [];
    let reader: JsonSocket | undefined;
    try {
      // Three sockets that never read, 100 watches each, all of big/ from revision 1 with prevKv.
      for (let s = 0; s < 3; s++) {
        const ws = await JsonSocket.open(`${server.url}/v1/watch`);
        (ws.ws as unknown as { _socket: { pause(): void } })._socket.pause();
        for (let i = 1; i <= 100; i++) ws.send({ type: 'create', key: 'big/', prefix: true, fromRevision: 1, prevKv: i % 2 === 0, watchId: i });
        stalled.push(ws);
      }
      // One socket that reads: a watch of small/ (a few keys among 48 MB of others) from revision 1.
      reader = await JsonSocket.open(`${server.url}/v1/watch`);
      reader.send({ type: 'create', key: 'small/', prefix: true, fromRevision: 1, watchId: 1 });
      await reader.takeType('created', 1);
      let peak = base;
      const sample = setInterval(() => (peak = Math.max(peak, rss(server.child.pid as number))), 50);
      try {
        // Writes keep being answered while the watchers catch up (each within a generous bound).
        for (let i = 0; i < 20; i++) {
          const res = await http(`${server.url}/v1/kv/live/${i}`, { method: 'PUT', body: { value: String(i) } });
          assert.equal(res.status, 200);
          await new Promise((r) => setTimeout(r, 100));
        }
        await until(() => reader!.received.filter((m) => m.type === 'events').length >= REVISIONS / 100, 'the small/ watch to catch up', 30_000);
        const keys = reader.received.filter((m) => m.type === 'events').flatMap((m) => m.events.map((e: any) => e.kv.key));
        assert.deepEqual(keys, Array.from({ length: REVISIONS / 100 }, (_, i) => `small/${i * 100}`), 'every small/ key once, in order, nothing else');
        await new Promise((r) => setTimeout(r, 2000));
      } finally {
        clearInterval(sample);
      }
      const metrics = await http(`${server.url}/metrics`);
      const held = /^beacon_watch_catchup_bytes (\d+)/m.exec(String(metrics.body));
      assert.ok(held !== null, 'beacon_watch_catchup_bytes is exported');
      assert.ok(Number(held[1]) <= 40 * MiB, `catch-up chunks held: ${held[1]} bytes (budget 32 MiB)`);
      // 300 watchers each reading the whole 48 MB log (values and prevKvs) took gigabytes before.
      const growth = peak - base;
      t.diagnostic(`RSS ${Math.round(base / MiB)} MiB before, peak ${Math.round(peak / MiB)} MiB; catch-up chunks held at the end: ${held[1]} bytes`);
      assert.ok(growth < 400 * MiB, `RSS grew by ${Math.round(growth / MiB)} MiB (from ${Math.round(base / MiB)} MiB)`);
      for (const ws of stalled) assert.equal(ws.closeCode, undefined, 'stalled sockets are parked, not dropped');
    } finally {
      for (const ws of stalled) ws.ws.terminate();
      await reader?.close();
    }
  });
});

describe('watch limits per connection and per principal', () => {
  let node: SecureNode;
  let adminToken: string;

  before(async () => {
    node = await startSecureNode({ watchLimits: { maxWatchesPerConnection: 5, maxWatchesPerPrincipal: 8 } });
    adminToken = await login(node.url, 'admin', ADMIN_PASSWORD);
  });

  after(async () => {
    await node.cleanup();
  });

  test('the 6th watch on a socket and the 9th of a principal are refused with too_many_requests; the socket stays open and its watches keep delivering', async () => {
    const token = await userToken(node.url, adminToken, 'many', ['viewer']);
    const headers = { authorization: `Bearer ${token}` };
    const a = await JsonSocket.open(`${node.url}/v1/watch`, { headers });
    const b = await JsonSocket.open(`${node.url}/v1/watch`, { headers });
    try {
      for (let i = 1; i <= 5; i++) {
        a.send({ type: 'create', key: `lim/${i}`, watchId: i });
        await a.takeType('created', i);
      }
      a.send({ type: 'create', key: 'lim/6', watchId: 6 });
      const perConn = await a.take((m) => m.type === 'error' && m.watchId === 6);
      assert.equal(perConn.error.code, 'too_many_requests');
      assert.equal(perConn.error.details.limit, 'watches_per_connection');

      for (let i = 1; i <= 3; i++) {
        b.send({ type: 'create', key: `lim/b${i}`, watchId: i });
        await b.takeType('created', i);
      }
      b.send({ type: 'create', key: 'lim/b4', watchId: 4 });
      const perPrincipal = await b.take((m) => m.type === 'error' && m.watchId === 4);
      assert.equal(perPrincipal.error.code, 'too_many_requests');
      assert.equal(perPrincipal.error.details.limit, 'watches_per_principal');

      // SSE: the same principal is over its limit too, and says so with 429.
      const sse = await new SseReader().open(`${node.url}/v1/watch/lim/x`, headers);
      assert.equal(sse.status, 429);
      await sse.close();
      // The configs socket counts against the principal as well.
      const configs = await JsonSocket.open(`${node.url}/v1/configs/watch?key=lim.cfg`, { headers });
      assert.equal((await configs.take((m) => m.type === 'error')).error.code, 'too_many_requests');
      await configs.close();

      // Both sockets are open and their watches still deliver.
      assert.equal(a.closeCode, undefined);
      assert.equal(b.closeCode, undefined);
      assert.equal((await client(node.url, adminToken)('/v1/kv/lim/1', { method: 'PUT', body: { value: 'v' } })).status, 200);
      assert.equal((await a.take((m) => m.type === 'events' && m.watchId === 1)).events[0].kv.key, 'lim/1');

      // Cancelling one frees a place for the principal.
      b.send({ type: 'cancel', watchId: 1 });
      await b.takeType('canceled', 1);
      b.send({ type: 'create', key: 'lim/b5', watchId: 5 });
      await b.takeType('created', 5);

      const metrics = await client(node.url, adminToken)('/metrics');
      assert.match(String(metrics.body), /beacon_watch_limit_hits_total\{limit="per_connection"\} [1-9]/);
      assert.match(String(metrics.body), /beacon_watch_limit_hits_total\{limit="per_principal"\} [1-9]/);
    } finally {
      await a.close();
      await b.close();
    }
  });
});
