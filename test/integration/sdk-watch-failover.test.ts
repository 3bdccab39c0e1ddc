// A watch through the SDK while its server is killed and restarted, then replaced by another node
// on the same data dir at another address: every event exactly once, in order.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { spawnServer, tempDir, type ServerProcess } from '../helpers/node.js';
import { createClient, type WatchEvent, type WatchStatus } from '../../client/index.js';
import { freePort, until, within } from './sdk-helpers.js';

const pause = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

test('watch through the SDK across a server restart and a switch to another node: no missed or duplicated events', async (t) => {
  const tmp = tempDir();
  const servers: ServerProcess[] = [];
  const start = async (port?: number): Promise<ServerProcess> => {
    const s = await spawnServer(['--data-dir', tmp.dir, ...(port === undefined ? [] : ['--http-port', String(port)])]);
    servers.push(s);
    return s;
  };
  const a = await start();
  const portB = await freePort();
  const endpoints = [a.url, `http://127.0.0.1:${portB}`];
  const opts = { endpoints, timeoutMs: 2000, retry: { retries: 1, baseDelayMs: 20, maxDelayMs: 100 }, healthCheck: { intervalMs: 100 } };
  const client = createClient(opts);
  const writer = createClient(opts);
  const statuses: WatchStatus[] = [];
  const live: WatchEvent[] = [];
  let stopWriting = false;
  try {
    const startRev = (await client.status()).revision;
    const watch = client.watch('sw/', { prefix: true, reconnect: { initialDelayMs: 50, maxDelayMs: 300 }, onStatus: (s) => statuses.push(s) });
    const consuming = (async () => {
      for await (const ev of watch) {
        live.push(ev);
        if (ev.kv.key === 'sw/end') return;
      }
    })();
    await until(() => statuses.some((s) => s.state === 'watching'), 'the watch to start');

    // Write continuously; a write that fails while no node is up is simply not acknowledged.
    const acked: number[] = [];
    const writing = (async () => {
      for (let i = 0; !stopWriting; i++) {
        try {
          acked.push((await writer.put(`sw/${String(i).padStart(5, '0')}`, String(i))).revision);
        } catch {
          await pause(20);
        }
      }
    })();

    await pause(300);
    await a.kill(); // SIGKILL: no goodbye to the watchers
    await pause(200);
    const a2 = await start(a.port); // the same node again
    await pause(400);
    await a2.kill();
    const b = await start(portB); // another node on the same store, at the second endpoint
    await pause(400);
    stopWriting = true;
    await writing;
    const end = await writer.put('sw/end', 'x', { retry: true });
    await within(consuming, 10_000, 'the watch to reach sw/end');

    // The truth: the store's own history of the prefix, replayed from where the watch began.
    const replayed: WatchEvent[] = [];
    for await (const ev of client.watch('sw/', { prefix: true, fromRevision: startRev + 1 })) {
      replayed.push(ev);
      if (ev.revision >= end.revision) break;
    }
    const shape = (evs: WatchEvent[]): string[] => evs.map((e) => `${e.revision} ${e.type} ${e.kv.key}=${e.kv.text}`);
    assert.deepEqual(shape(live), shape(replayed), 'the live watch saw exactly the stored history');
    assert.equal(new Set(live.map((e) => e.revision)).size, live.length, 'no revision twice');
    const seen = new Set(live.map((e) => e.revision));
    assert.ok(
      acked.every((r) => seen.has(r)),
      'every acknowledged write was seen',
    );
    const reconnects = statuses.filter((s) => s.state === 'reconnecting').length;
    const lastWatching = statuses.filter((s) => s.state === 'watching').at(-1);
    assert.ok(reconnects >= 2, `reconnected ${reconnects} times`);
    assert.equal(lastWatching?.state === 'watching' ? lastWatching.endpoint : '', b.url, 'the watch ended on the second node');
    assert.equal(writer.endpoint, b.url, 'writes failed over too');
    t.diagnostic(`${live.length} events (${acked.length} acknowledged writes) across 2 server losses, ${reconnects} reconnects`);
  } finally {
    stopWriting = true;
    client.close();
    writer.close();
    for (const s of servers) await s.kill();
    tmp.cleanup();
  }
});
