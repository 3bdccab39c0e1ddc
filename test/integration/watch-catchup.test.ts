// Catch-up over the /v1/watch WebSocket: from the backend log when the ring is too small, and a slow consumer that must not hold back a fast one.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { http, startTestNode } from '../helpers/node.js';
import { JsonSocket, until } from './watch-helpers.js';

let node: Awaited<ReturnType<typeof startTestNode>>;

before(async () => {
  // The in-memory SQLite backend: these tests are about ordering, not fsync, and must stay fast on a busy disk.
  node = await startTestNode({ backend: 'sqlite::memory:' });
});

after(async () => {
  await node.cleanup();
});

/** Runs `n` jobs with at most `width` in flight. */
async function pool(n: number, width: number, job: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < n) await job(next++);
    }),
  );
}

/** One write of a mixed workload under `prefix`: puts, multi-key txns and deletes. */
async function write(prefix: string, i: number): Promise<void> {
  let r;
  if (i % 7 === 3) {
    r = await http(`${node.url}/v1/txn`, {
      method: 'POST',
      body: { success: [{ put: { key: `${prefix}t${i}a`, value: `a${i}` } }, { put: { key: `${prefix}t${i}b`, value: `b${i}` } }] },
    });
  } else if (i % 11 === 5) {
    r = await http(`${node.url}/v1/kv/${prefix}k${i % 13}`, { method: 'DELETE' });
  } else {
    r = await http(`${node.url}/v1/kv/${prefix}k${i % 13}`, { method: 'PUT', body: { value: `v${i}` } });
  }
  assert.equal(r.status, 200, JSON.stringify(r.body));
}

/** The committed history under `prefix` from `from`, in the wire shape of `events` messages (revision → "type key value" list). */
async function truth(prefix: string, from: number): Promise<Map<number, string[]>> {
  const out = new Map<number, string[]>();
  for (const rev of await node.store.readEvents(from, node.store.revision, 1_000_000, false)) {
    const evs = rev.events.filter((e) => e.kv.key.startsWith(prefix)).map((e) => `${e.type} ${e.kv.key} ${e.type === 'put' ? Buffer.from(e.kv.value).toString() : ''}`);
    if (evs.length > 0) out.set(rev.revision, evs);
  }
  return out;
}

function seen(messages: any[]): Map<number, string[]> {
  const out = new Map<number, string[]>();
  for (const m of messages) {
    assert.ok(!out.has(m.revision), `revision ${m.revision} delivered twice`);
    out.set(m.revision, m.events.map((e: any) => `${e.type} ${e.kv.key} ${e.type === 'put' ? e.kv.value : ''}`));
  }
  return out;
}

test('a watch from older than the ring catches up from the backend log, while writes continue, without gaps or repeats', async () => {
  node.hub.configure({ ringSize: 10, catchUpEntries: 25 });
  try {
    const from = node.store.revision + 1;
    await pool(150, 8, (i) => write('old/', i));
    assert.ok(node.store.revision - from > 100);
    assert.ok(node.hub.stats.ringFloor > from + 100, 'the ring no longer holds the start');
    const ws = await JsonSocket.open(`${node.url}/v1/watch`);
    try {
      ws.send({ type: 'create', key: 'old/', prefix: true, fromRevision: from, watchId: 1 });
      await ws.takeType('created', 1);
      await pool(50, 4, (i) => write('old/', 1000 + i));
      const want = await truth('old/', from);
      const last = Math.max(...want.keys());
      await until(() => ws.events(1).at(-1)?.revision === last, 'the watch to reach the last write', 10_000);
      const got = ws.events(1);
      assert.deepEqual(got.map((m) => m.revision), [...want.keys()], 'every revision, in order');
      assert.deepEqual(seen(got), want);
    } finally {
      await ws.close();
    }
  } finally {
    node.hub.configure({ ringSize: 10_000, catchUpEntries: 1000 });
  }
});

test('a consumer that stops reading is parked and caught up later; a fast watcher is not delayed', async () => {
  node.hub.configure({ congestionBytes: 64 * 1024 });
  const slow = await JsonSocket.open(`${node.url}/v1/watch`);
  const fast = await JsonSocket.open(`${node.url}/v1/watch`);
  try {
    for (const s of [slow, fast]) {
      s.send({ type: 'create', key: 'slow/', prefix: true, watchId: 1 });
      await s.takeType('created', 1);
    }
    slow.ws.pause(); // stop reading: the server's send buffer fills up
    const big = 'x'.repeat(256 * 1024);
    const revisions: number[] = [];
    await pool(60, 4, async (i) => {
      const r = await http(`${node.url}/v1/kv/slow/${i % 5}`, { method: 'PUT', body: { value: `${i}:${big}` } });
      assert.equal(r.status, 200);
      revisions.push(r.body.revision);
    });
    revisions.sort((a, b) => a - b);
    await until(() => fast.events(1).length === 60, 'the fast watcher to get all 60 revisions', 10_000);
    assert.deepEqual(fast.events(1).map((m) => m.revision), revisions);
    assert.ok(slow.events(1).length < 60, 'the slow consumer is still behind');
    assert.equal(node.hub.stats.unsynced, 1, 'the slow watcher was moved to the unsynced state');
    const metrics = await http(`${node.url}/metrics`);
    assert.match(metrics.body as string, /beacon_watchers\{state="unsynced"\} 1/);

    slow.ws.resume();
    await until(() => slow.events(1).length === 60, 'the slow watcher to catch up', 15_000);
    const got = slow.events(1);
    assert.deepEqual(got.map((m) => m.revision), revisions, 'everything, in order, once');
    const head = (m: any): string => `${m.events[0].kv.key}=${m.events[0].kv.value.slice(0, 6)}:${m.events[0].kv.value.length}`;
    assert.deepEqual(got.map(head), fast.events(1).map(head), 'the same events as the fast watcher saw');
    await until(() => node.hub.stats.unsynced === 0, 'the slow watcher to rejoin live delivery');
    const live = await http(`${node.url}/v1/kv/slow/live`, { method: 'PUT', body: { value: 'live' } });
    await slow.take((m) => m.type === 'events' && m.revision === live.body.revision);
    await fast.take((m) => m.type === 'events' && m.revision === live.body.revision);
    const m2 = await http(`${node.url}/metrics`);
    assert.match(m2.body as string, /beacon_watch_events_sent_total\{transport="ws"\} \d+/);
    assert.match(m2.body as string, /beacon_watch_propagation_seconds_count\{transport="ws"\} \d+/);
  } finally {
    node.hub.configure({ congestionBytes: 1024 * 1024 });
    await slow.close();
    await fast.close();
  }
});
