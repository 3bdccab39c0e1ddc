// Memory bounds of the watch path: catch-up watchers whose peers stop reading hold no log chunk, and a WebSocket peer that floods requests without reading the answers cannot grow the server's send buffer.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { WebSocket as ServerSocket } from 'ws';
import { startTestNode } from '../helpers/node.js';
import { JsonSocket, until } from './watch-helpers.js';

// node --test runs this file without --expose-gc; this exposes gc() in a fresh context instead.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

let node: Awaited<ReturnType<typeof startTestNode>>;
/** Server-side sockets of /v1/watch, newest last. */
const serverSockets: ServerSocket[] = [];

before(async () => {
  node = await startTestNode({ backend: 'sqlite::memory:' });
  (node.http.websocketServer as { on(ev: 'connection', cb: (s: ServerSocket) => void): void }).on('connection', (s) => serverSockets.push(s));
});

after(async () => {
  await node.cleanup();
});

/** Bytes held outside the JS heap (Buffers, socket write queues) after full collections. */
async function externalBytes(): Promise<number> {
  for (let i = 0; i < 4; i++) {
    gc();
    await new Promise((r) => setTimeout(r, 20));
  }
  const m = process.memoryUsage();
  return m.external + m.arrayBuffers;
}

const MB = 1024 * 1024;
const VALUE = 200 * 1024;

/** The value written at history index `i`: its index, then filler up to VALUE bytes. */
function value(i: number): Buffer {
  const b = Buffer.alloc(VALUE, 97);
  b.write(`${i}:`);
  return b;
}

test('catch-up watchers whose peers stop reading hold no log chunk, with or without prevKv', async () => {
  const from = node.store.revision + 1;
  // 160 revisions of 200 KiB over 20 keys (so every entry after the first 20 has a prevKv): 32 MB of history.
  for (let i = 0; i < 160; i++) await node.store.put(`mem/${i % 20}`, value(i));
  // Everything but the newest revision must come from the log; chunks shared between watchers are
  // held within the node-wide catch-up budget (issue 9 finding 2), set low here.
  node.hub.configure({ ringSize: 1, catchUpBudgetBytes: 16 * MB });
  const sockets: JsonSocket[] = [];
  try {
    const before = await externalBytes();
    for (let i = 0; i < 8; i++) {
      const s = await JsonSocket.open(`${node.url}/v1/watch`);
      s.ws.pause(); // never reads: the server's send buffer fills and the watcher is parked
      s.send({ type: 'create', key: 'mem/', prefix: true, fromRevision: from, prevKv: i % 2 === 0, watchId: 1 });
      sockets.push(s);
    }
    await until(() => node.hub.stats.unsynced === 8, 'all eight watchers to be catching up');
    // Let every watcher read and send until its connection is congested.
    const mine = serverSockets.slice(-8);
    await until(() => mine.every((s) => s.bufferedAmount > node.hub.options.congestionBytes), 'every connection to be congested', 10_000);
    await new Promise((r) => setTimeout(r, 300));
    const growth = (await externalBytes()) - before;
    // Each parked watcher may hold its socket's send buffer (~1.2 MB) and nothing of the log beyond
    // the shared chunks within the 16 MB budget; before the bound each held its whole chunk (the
    // 32 MB history, doubled with prevKv): ~400 MB in all.
    assert.ok(growth < 80 * MB, `external memory grew by ${Math.round(growth / MB)} MB for 8 parked watchers`);
    assert.equal(node.hub.stats.unsynced, 8, 'the watchers are parked, not dropped');
  } finally {
    for (const s of sockets) s.ws.terminate();
    node.hub.configure({ ringSize: 10_000, catchUpBudgetBytes: 256 * MB });
    await until(() => node.hub.watcherCount === 0, 'the watchers to be released');
  }
});

test('a parked catch-up watcher that reads again gets every revision exactly once, in order, then live ones', async () => {
  const from = node.store.revision + 1;
  for (let i = 0; i < 120; i++) await node.store.put(`again/${i % 7}`, value(i));
  node.hub.configure({ ringSize: 5, catchUpBytes: 512 * 1024 });
  const s = await JsonSocket.open(`${node.url}/v1/watch`);
  try {
    s.ws.pause();
    s.send({ type: 'create', key: 'again/', prefix: true, fromRevision: from, prevKv: true, watchId: 1 });
    await until(() => node.hub.stats.unsynced === 1, 'the watcher to be catching up');
    const server = serverSockets.at(-1) as ServerSocket;
    await until(() => server.bufferedAmount > node.hub.options.congestionBytes, 'the connection to be congested', 10_000);
    // More history while it is parked, some of it beyond the ring too.
    for (let i = 120; i < 140; i++) await node.store.put(`again/${i % 7}`, value(i));
    await new Promise((r) => setTimeout(r, 100));
    s.ws.resume();
    const last = node.store.revision;
    await until(() => s.events(1).at(-1)?.revision === last, 'the watcher to catch up', 15_000);
    const got = s.events(1);
    assert.deepEqual(
      got.map((m) => m.revision),
      Array.from({ length: 140 }, (_, i) => from + i),
      'every revision once, in order',
    );
    for (const [i, m] of got.entries()) {
      assert.equal(m.events.length, 1);
      assert.equal(m.events[0].kv.key, `again/${i % 7}`);
      assert.ok(m.events[0].kv.value.startsWith(`${i}:`), `revision ${m.revision} carries value ${i}`);
      if (i >= 7) assert.ok(m.events[0].prevKv.value.startsWith(`${i - 7}:`), `revision ${m.revision} carries its prevKv`);
    }
    await until(() => node.hub.stats.unsynced === 0, 'the watcher to rejoin live delivery');
    const live = await node.store.put('again/live', Buffer.from('live'));
    await s.take((m) => m.type === 'events' && m.revision === live.revision);
  } finally {
    node.hub.configure({ ringSize: 10_000, catchUpBytes: 4 * MB });
    await s.close();
  }
});

test('a peer that floods requests without reading the replies is throttled, and every request is answered once it reads', async () => {
  const s = await JsonSocket.open(`${node.url}/v1/watch`);
  const server = serverSockets.at(-1) as ServerSocket;
  const congestion = node.hub.options.congestionBytes;
  try {
    (s.ws as unknown as { _socket: { pause(): void; resume(): void } })._socket.pause(); // reads nothing, not even pings
    // Requests go out in batches until the server's reply buffer passes the congestion mark: how
    // many that takes depends on how much the kernel's socket buffers absorb first (loopback
    // autotuning can take several MB, more than a fixed 100,000 frames' ~3.5 MB on some runs).
    let frames = 0;
    const deadline = Date.now() + 60_000;
    while (server.bufferedAmount <= congestion) {
      assert.ok(Date.now() < deadline && frames < 2_000_000, `the reply buffer never passed the congestion mark (${server.bufferedAmount} bytes after ${frames} requests)`);
      for (let i = 0; i < 20_000; i++) s.send('{"type":"progress"}');
      frames += 20_000;
      await until(() => s.ws.bufferedAmount === 0 || server.bufferedAmount > congestion, 'the requests to leave the client', 30_000);
      await new Promise((r) => setTimeout(r, 20));
    }
    await new Promise((r) => setTimeout(r, 500));
    // Before the bound every request was answered into the buffer (~3.5 MB); now reading stops.
    assert.ok(server.bufferedAmount < congestion + 512 * 1024, `the server buffers ${server.bufferedAmount} bytes of replies (congestion mark ${congestion})`);
    (s.ws as unknown as { _socket: { resume(): void } })._socket.resume();
    await until(() => s.received.length === frames, `all ${frames} replies`, 120_000);
    assert.ok(s.received.every((m) => m.type === 'progress'));
    assert.equal(s.closeCode, undefined, 'the connection stays open');
  } finally {
    await s.close();
  }
});
