// Ordering and exactly-once across many WebSocket watchers, half of which drop their connection midway and resume from their last revision + 1.
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

const WATCHERS = 50;
const WRITES = 300;

/** A watcher that survives reconnects: it collects `events` messages across its sockets. */
class ResumingWatcher {
  readonly got: any[] = [];
  socket: JsonSocket | undefined;
  connections = 0;

  constructor(
    readonly index: number,
    private readonly from: number,
  ) {}

  /** The revision to resume from: the last one received + 1, or the original start. */
  get resumeAt(): number {
    const last = this.got.at(-1);
    return last === undefined ? this.from : last.revision + 1;
  }

  async connect(): Promise<void> {
    const s = await JsonSocket.open(`${node.url}/v1/watch`);
    this.connections++;
    s.ws.on('message', (data) => {
      const m = JSON.parse(String(data));
      if (m.type === 'events') this.got.push(m);
    });
    // Half the watchers use a prefix, half an explicit range: both must see the same stream.
    const range = this.index % 2 === 0 ? { prefix: true } : { rangeEnd: 'ord0' };
    s.send({ type: 'create', key: 'ord/', ...range, fromRevision: this.resumeAt, watchId: 1 });
    await s.takeType('created', 1);
    this.socket = s;
  }

  /** Drops the connection abruptly (no close handshake), as a crashed client would. */
  drop(): void {
    // Whatever the old socket still had buffered is lost, as it would be in a crash.
    this.socket?.ws.removeAllListeners('message');
    this.socket?.ws.terminate();
    this.socket = undefined;
  }
}

async function writeOne(i: number): Promise<void> {
  let r;
  switch (i % 6) {
    case 0:
    case 1:
      r = await http(`${node.url}/v1/kv/ord/k${i % 17}`, { method: 'PUT', body: { value: `v${i}` } });
      break;
    case 2:
      r = await http(`${node.url}/v1/txn`, {
        method: 'POST',
        body: {
          success: [
            { put: { key: `ord/t${i % 5}`, value: `t${i}` } },
            { put: { key: `ord/u${i % 3}`, value: `u${i}` } },
            { put: { key: `noise/${i}`, value: 'n' } },
          ],
        },
      });
      break;
    case 3:
      r = await http(`${node.url}/v1/kv/noise/${i}`, { method: 'PUT', body: { value: 'outside the watched prefix' } });
      break;
    case 4:
      r = await http(`${node.url}/v1/kv/ord/k${(i + 3) % 17}`, { method: 'DELETE' });
      break;
    default:
      r = await http(`${node.url}/v1/kv/ord/t?prefix=true`, { method: 'DELETE' });
  }
  assert.equal(r.status, 200, JSON.stringify(r.body));
}

test('50 watchers see every event exactly once and in order, across disconnects and resumes', { timeout: 30_000 }, async () => {
  // A small ring, so that late resumes must be served from the backend log.
  node.hub.configure({ ringSize: 40, catchUpEntries: 64 });
  const from = node.store.revision + 1;
  const watchers = Array.from({ length: WATCHERS }, (_, i) => new ResumingWatcher(i, from));
  try {
    await Promise.all(watchers.map((w) => w.connect()));
    let written = 0;
    const writer = (async () => {
      const width = 8;
      await Promise.all(
        Array.from({ length: width }, async () => {
          while (written < WRITES) await writeOne(written++);
        }),
      );
    })();

    // Midway, half the watchers drop their connection; some come back at once, others only after
    // many more revisions (beyond the ring), and a few drop twice.
    await until(() => written >= WRITES / 3, 'a third of the writes', 15_000);
    const droppers = watchers.filter((w) => w.index % 2 === 1 || w.index % 4 === 0).slice(0, WATCHERS / 2);
    for (const w of droppers) w.drop();
    const quick = droppers.filter((_, i) => i % 2 === 0);
    const late = droppers.filter((_, i) => i % 2 === 1);
    await Promise.all(quick.map((w) => w.connect()));
    await until(() => written >= (WRITES * 2) / 3, 'two thirds of the writes', 15_000);
    for (const w of quick.slice(0, 5)) w.drop();
    await Promise.all(quick.slice(0, 5).map((w) => w.connect()));
    await writer;
    await Promise.all(late.map((w) => w.connect()));

    const want: { revision: number; events: string[] }[] = [];
    for (const rev of await node.store.readEvents(from, node.store.revision, 1_000_000, false)) {
      const evs = rev.events
        .filter((e) => e.kv.key.startsWith('ord/'))
        .map((e) => `${e.type} ${e.kv.key} ${e.type === 'put' ? Buffer.from(e.kv.value).toString() : ''}`);
      if (evs.length > 0) want.push({ revision: rev.revision, events: evs });
    }
    assert.ok(want.length > 200, `the workload made ${want.length} watched revisions`);
    const last = (want.at(-1) as { revision: number }).revision;
    await until(() => watchers.every((w) => w.got.at(-1)?.revision === last), 'every watcher to reach the last revision', 15_000);

    for (const w of watchers) {
      const got = w.got.map((m) => ({
        revision: m.revision,
        events: m.events.map((e: any) => `${e.type} ${e.kv.key} ${e.type === 'put' ? e.kv.value : ''}`),
      }));
      assert.deepEqual(got, want, `watcher ${w.index} (${w.connections} connections)`);
    }
    assert.ok(late.some((w) => w.connections === 2));
    assert.equal(node.hub.watcherCount, WATCHERS, 'dropped connections released their watches');
  } finally {
    node.hub.configure({ ringSize: 10_000, catchUpEntries: 1000 });
    await Promise.all(watchers.map((w) => w.socket?.close()));
  }
});
