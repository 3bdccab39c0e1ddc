// Namespace history retention against a real node over HTTP and WebSocket: a namespace with
// {"historyRetention": {"versions": 3}} keeps the newest 3 versions of each key; reads and
// watches that would need a removed version answer `compacted` (410) instead of wrong data;
// keys outside the namespace (and in a nested namespace without retention) keep everything;
// the floor survives a restart.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { http, startTestNode, tempDir } from '../helpers/node.js';
import type { PostgresBackend } from '../../src/backend/postgres/index.js';
import { eventually, startPostgres, type PostgresServer } from '../helpers/postgres.js';
import { JsonSocket, until } from './watch-helpers.js';

type TestNode = Awaited<ReturnType<typeof startTestNode>>;

describe('namespace history retention', () => {
  const tmp = tempDir('beacon-retention-');
  let node: TestNode;
  /** Revisions of app/db's v1…v10, of other/k's and of app/keep/k's ten versions. */
  const dbRevs: number[] = [];
  const otherRevs: number[] = [];
  const keepRevs: number[] = [];

  const start = (): Promise<TestNode> =>
    // A pass every second and no grace, so the test need not wait a minute for rows to age.
    startTestNode({ dataDir: tmp.dir, retentionIntervalSeconds: 1, retentionGraceMs: 0 });

  const versionsOf = async (key: string): Promise<string[]> => {
    const res = await http(`${node.url}/v1/configs/${key}/history`);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    return res.body.versions.map((v: { version: string }) => v.version);
  };

  before(async () => {
    node = await start();
    const ns = await http(`${node.url}/v1/namespaces/app/`, { method: 'PUT', body: { historyRetention: { versions: 3 } } });
    assert.equal(ns.status, 201, JSON.stringify(ns.body));
    // A nested namespace without retention governs its own keys: they keep their history.
    assert.equal((await http(`${node.url}/v1/namespaces/app/keep/`, { method: 'PUT', body: { format: 'text' } })).status, 201);
    for (let i = 1; i <= 10; i++) {
      const put = await http(`${node.url}/v1/configs/app/db`, { method: 'PUT', body: { value: { pool: i } } });
      assert.equal(put.status, 200, JSON.stringify(put.body));
      dbRevs.push(put.body.revision);
      otherRevs.push((await http(`${node.url}/v1/kv/other/k`, { method: 'PUT', body: { value: `o${i}` } })).body.revision);
      keepRevs.push((await http(`${node.url}/v1/configs/app/keep/k`, { method: 'PUT', body: { value: `k${i}` } })).body.revision);
    }
  });

  after(async () => {
    await node.cleanup();
    tmp.cleanup();
  });

  it('the periodic pass leaves the newest 3 versions in the history; rollback and diff to a removed version answer 410', async () => {
    const deadline = Date.now() + 10_000;
    let versions = await versionsOf('app/db');
    while (versions.length > 3 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
      versions = await versionsOf('app/db');
    }
    assert.deepEqual(versions, ['v10', 'v9', 'v8']);
    const hist = await http(`${node.url}/v1/configs/app/db/history`);
    assert.equal(hist.body.compact_revision, dbRevs[7], 'the history says where the kept versions start');

    const v8 = await http(`${node.url}/v1/configs/app/db?version=v8`);
    assert.equal(v8.status, 200);
    const v2 = await http(`${node.url}/v1/configs/app/db?version=v2`);
    assert.equal(v2.status, 410);
    assert.equal(v2.body.error.code, 'compacted');
    assert.match(v2.body.error.message, /history retention/);

    const rollback = await http(`${node.url}/v1/configs/app/db/rollback`, { method: 'POST', body: { version: 'v2' } });
    assert.equal(rollback.status, 410);
    assert.equal(rollback.body.error.code, 'compacted');
    assert.match(rollback.body.error.message, /history retention/);
    assert.equal((await http(`${node.url}/v1/configs/app/db`)).body.version, 'v10', 'the failed rollback wrote nothing');
    assert.equal((await http(`${node.url}/v1/configs/app/db/diff?from=v1&to=v10`)).status, 410);
    assert.equal((await http(`${node.url}/v1/configs/app/db/diff?from=v8&to=v10`)).status, 200);

    // Keys outside the namespace, and in the nested namespace without retention, keep every version.
    assert.equal((await versionsOf('app/keep/k')).length, 10);
    assert.equal((await versionsOf('other/k')).length, 10);
    const metrics = await http(`${node.url}/metrics`);
    const removed = /^beacon_history_retention_removed_total (\d+)/m.exec(String(metrics.body));
    assert.equal(removed?.[1], '7', 'the metric counts the removed rows');
  });

  it('a read at an old revision under the namespace answers 410 compacted; outside it the same revision still reads', async () => {
    const old = dbRevs[2] as number;
    const under = await http(`${node.url}/v1/kv/app/db?rev=${old}`);
    assert.equal(under.status, 410);
    assert.equal(under.body.error.code, 'compacted');
    assert.equal(under.body.error.details.compactRevision, dbRevs[7]);
    const list = await http(`${node.url}/v1/kv/app/?prefix=true&rev=${old}`);
    assert.equal(list.status, 410, 'a prefix read overlapping the namespace');

    const outside = await http(`${node.url}/v1/kv/other/k?rev=${old}`);
    assert.equal(outside.status, 200);
    assert.equal(outside.body.kv.value, 'o2', 'other/k as it was at that revision');
    const nested = await http(`${node.url}/v1/kv/app/keep/k?rev=${old}`);
    assert.equal(nested.status, 200, 'the nested namespace without retention keeps its history');
    assert.equal(nested.body.kv.value, 'k2');
    // At the floor itself the namespace reads whole.
    const atFloor = await http(`${node.url}/v1/kv/app/db?rev=${dbRevs[7]}`);
    assert.equal(atFloor.status, 200);
    assert.equal(atFloor.body.kv.version, 8);
  });

  it('a watch from an old revision on the namespace gets compacted; from above the floor it gets every kept version', async () => {
    const ws = await JsonSocket.open(`${node.url}/v1/watch`);
    try {
      ws.send({ type: 'create', key: 'app/', prefix: true, fromRevision: dbRevs[1], watchId: 1 });
      assert.deepEqual(await ws.takeType('compacted', 1), { type: 'compacted', watchId: 1, compactRevision: dbRevs[7] });
      ws.send({ type: 'create', key: 'other/k', fromRevision: otherRevs[0], watchId: 2 });
      await ws.takeType('created', 2);
      const seen: string[] = [];
      await until(() => {
        for (const m of ws.received) if (m.type === 'events' && m.watchId === 2) for (const e of m.events) if (!seen.includes(e.kv.value)) seen.push(e.kv.value);
        return seen.length >= 10;
      }, 'ten versions of other/k');
      assert.deepEqual(seen, Array.from({ length: 10 }, (_, i) => `o${i + 1}`));
      ws.send({ type: 'create', key: 'app/db', fromRevision: (dbRevs[7] as number) + 1, watchId: 3 });
      await ws.takeType('created', 3);
      const ev = await ws.takeType('events', 3);
      assert.equal(ev.events[0].kv.version, 9);
    } finally {
      ws.ws.close();
    }
  });

  it('the floor survives a restart', async () => {
    await node.stop();
    node = await start();
    assert.deepEqual(await versionsOf('app/db'), ['v10', 'v9', 'v8']);
    const under = await http(`${node.url}/v1/kv/app/db?rev=${dbRevs[2]}`);
    assert.equal(under.status, 410);
    assert.equal(under.body.error.details.compactRevision, dbRevs[7]);
    assert.equal((await http(`${node.url}/v1/kv/other/k?rev=${otherRevs[0]}`)).status, 200);
    assert.equal((await http(`${node.url}/v1/kv/app/keep/k?rev=${keepRevs[0]}`)).status, 200);
  });
});

describe('config history pages across a retention pass', () => {
  it('a page read after the pass removed the rest says where history now starts', async () => {
    const tmp = tempDir('beacon-retention-page-');
    const n = await startTestNode({ dataDir: tmp.dir, retentionIntervalSeconds: 0, retentionGraceMs: 0 });
    try {
      assert.equal((await http(`${n.url}/v1/namespaces/app/`, { method: 'PUT', body: { historyRetention: { versions: 3 } } })).status, 201);
      for (let i = 1; i <= 10; i++) assert.equal((await http(`${n.url}/v1/configs/app/db`, { method: 'PUT', body: { value: { pool: i } } })).status, 200);
      const first = await http(`${n.url}/v1/configs/app/db/history?limit=4`);
      assert.deepEqual(first.body.versions.map((v: { version: string }) => v.version), ['v10', 'v9', 'v8', 'v7']);
      assert.equal(first.body.compact_revision, undefined);
      await n.runRetention();
      const second = await http(`${n.url}/v1/configs/app/db/history?limit=4&continue=${encodeURIComponent(first.body.continue)}`);
      assert.equal(second.status, 200);
      assert.deepEqual(second.body.versions, []);
      const fresh = await http(`${n.url}/v1/configs/app/db/history?limit=4`);
      assert.equal(second.body.compact_revision, fresh.body.compact_revision, 'the older versions are reported gone, not absent');
      assert.ok(second.body.compact_revision > 0);
    } finally {
      await n.cleanup();
      tmp.cleanup();
    }
  });
});

describe('namespace history retention on PostgreSQL: the expiry leader prunes, every node refuses what is gone', () => {
  let server: PostgresServer | undefined;
  const nodes: TestNode[] = [];

  before(async () => {
    server = await startPostgres();
    const url = await server.createDatabase();
    // No timer: the test runs the passes itself.
    for (let i = 0; i < 2; i++) nodes.push(await startTestNode({ backend: url, retentionIntervalSeconds: 0, retentionGraceMs: 0 }));
  });

  after(async () => {
    await Promise.all(nodes.map((n) => n.cleanup().catch(() => undefined)));
    await server?.stop();
  });

  it('a pass on the leader removes old versions; the other node answers 410 for them and refuses an old watch', async () => {
    const [a, b] = nodes as [TestNode, TestNode];
    assert.equal((await http(`${a.url}/v1/namespaces/svc/`, { method: 'PUT', body: { historyRetention: { versions: 2 } } })).status, 201);
    const revs: number[] = [];
    for (let i = 1; i <= 6; i++) revs.push((await http(`${b.url}/v1/configs/svc/flag`, { method: 'PUT', body: { value: `f${i}` } })).body.revision);
    const head = revs[5] as number;
    let leader: TestNode | undefined;
    await eventually('a leader whose pass removed the old versions', async () => {
      for (const n of nodes) {
        // Both nodes must have applied the head: the leader never removes what a live node has not seen.
        if (n.store.revision < head) return false;
      }
      for (const n of nodes) {
        const res = await n.runRetention();
        if (res.leader && res.removed > 0) leader = n;
      }
      return leader !== undefined;
    });
    const other = leader === a ? b : a;
    // A node whose view were still below a removed version could not catch up from the log: the
    // change feed reports the removal like a compaction's purge, so such a node rebuilds instead.
    const feed = await ((leader as TestNode).store.backend as PostgresBackend).readChanges(revs[0] as number, 100);
    assert.ok(feed.purgedRevision >= (revs[3] as number), `purgedRevision ${feed.purgedRevision}`);
    for (const n of [a, b]) {
      const res = await http(`${n.url}/v1/configs/svc/flag/history`);
      assert.deepEqual(res.body.versions.map((v: { version: string }) => v.version), ['v6', 'v5']);
    }
    // The other node has not run a pass: it learns the floor when its read finds rows missing.
    const old = await http(`${other.url}/v1/kv/svc/flag?rev=${revs[1]}`);
    assert.equal(old.status, 410);
    assert.equal(old.body.error.details.compactRevision, revs[4]);
    const ws = await JsonSocket.open(`${other.url}/v1/watch`);
    try {
      ws.send({ type: 'create', key: 'svc/', prefix: true, fromRevision: revs[0], watchId: 1 });
      assert.deepEqual(await ws.takeType('compacted', 1), { type: 'compacted', watchId: 1, compactRevision: revs[4] });
    } finally {
      ws.ws.close();
    }
  });
});
