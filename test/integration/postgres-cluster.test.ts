/**
 * Three Beacon nodes sharing one PostgreSQL database, talked to over HTTP and the watch
 * WebSocket: gap-free revisions under concurrent writers on every node, identical watch streams,
 * linearizable reads and compare-and-swap across nodes, leases across nodes, cluster status, and
 * a node that restarts rebuilding its view.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { http, startTestNode } from '../helpers/node.js';
import { eventually, startPostgres, WatchClient, type PostgresServer } from '../helpers/postgres.js';

type TestNode = Awaited<ReturnType<typeof startTestNode>>;

let server: PostgresServer | undefined;
let url = '';
const nodes: TestNode[] = [];

const node = (i: number): TestNode => nodes[i] as TestNode;

before(async () => {
  server = await startPostgres();
  url = await server.createDatabase();
  // One at a time: the first migrates the schema (the others would wait on the migration lock anyway).
  for (let i = 0; i < 3; i++) nodes.push(await startTestNode({ backend: url }));
});

after(async () => {
  await Promise.all(nodes.map((n) => n.cleanup().catch(() => undefined)));
  await server?.stop();
});

async function put(base: string, key: string, value: string, lease?: number): Promise<number> {
  const res = await http(`${base}/v1/kv/${key}`, { method: 'PUT', body: lease === undefined ? { value } : { value, lease } });
  assert.equal(res.status, 200, `PUT ${key} on ${base}: ${JSON.stringify(res.body)}`);
  return res.body.revision as number;
}

describe('three nodes on one PostgreSQL', () => {
  test('every node is ready and GET /v1/cluster lists all three with exactly one expiry leader', async () => {
    for (const n of nodes) assert.equal((await http(`${n.url}/readyz`)).status, 200);
    await eventually('three registered nodes and a leader', async () => {
      const res = await http(`${node(1).url}/v1/cluster`);
      return res.status === 200 && res.body.nodes.length === 3 && res.body.expiryLeader !== null;
    });
    const res = await http(`${node(1).url}/v1/cluster`);
    const body = res.body as {
      revision: number;
      expiryLeader: string;
      nodes: { id: string; url: string; respUrl?: string; appliedRevision: number; lag: number; ready: boolean; expiryLeader: boolean; self: boolean }[];
    };
    assert.deepEqual(body.nodes.map((n) => n.url).sort(), nodes.map((n) => n.url).sort());
    // Each node's RESP listener, as the others see it in the membership table (the cache tier across nodes).
    await eventually('every node advertises its RESP listener', async () => {
      const res = await http(`${node(1).url}/v1/cluster`);
      return res.body.nodes.every((n: { respUrl?: string }) => n.respUrl !== undefined);
    });
    const seen = (await http(`${node(1).url}/v1/cluster`)).body.nodes as { url: string; respUrl?: string }[];
    for (const n of nodes) assert.equal(seen.find((s) => s.url === n.url)?.respUrl, n.resp?.url, `the RESP URL of ${n.url}`);
    assert.equal(body.nodes.filter((n) => n.expiryLeader).length, 1);
    assert.equal(body.nodes.find((n) => n.expiryLeader)?.id, body.expiryLeader);
    assert.deepEqual(body.nodes.filter((n) => n.self).map((n) => n.url), [node(1).url]);
    for (const n of body.nodes) {
      assert.ok(n.lag >= 0 && n.appliedRevision <= body.revision, JSON.stringify(n));
      assert.equal(n.ready, true);
    }
  });

  test('concurrent writers on all nodes get gap-free revisions and every watcher sees the same sequence exactly once', async () => {
    const start = await http(`${node(0).url}/v1/status`);
    const from = (start.body.revision as number) + 1;
    const watchers = await Promise.all(nodes.map((n) => WatchClient.open(n.url, 'seq/', from)));
    const acked = new Map<number, { key: string; value: string }>();
    const perNode = 60;
    await Promise.all(
      nodes.map(async (n, ni) => {
        // 12 concurrent writers per node, so group commits on every node race for the counter lock.
        await Promise.all(
          Array.from({ length: 12 }, async (_, w) => {
            for (let i = w; i < perNode; i += 12) {
              const key = `seq/${ni}/${i % 7}`;
              const value = `n${ni}-w${w}-i${i}`;
              const revision = await put(n.url, key, value);
              assert.equal(acked.has(revision), false, `revision ${revision} acknowledged twice`);
              acked.set(revision, { key, value });
            }
          }),
        );
      }),
    );
    const revisions = [...acked.keys()].sort((a, b) => a - b);
    assert.equal(revisions.length, 3 * perNode);
    assert.deepEqual(revisions, Array.from({ length: revisions.length }, (_, i) => from + i), 'revisions are consecutive');
    const last = revisions[revisions.length - 1] as number;
    for (const w of watchers) await w.waitForRevision(last);
    for (const w of watchers) w.close();
    const expected = revisions.map((r) => {
      const a = acked.get(r) as { key: string; value: string };
      return { revision: r, events: [{ type: 'put', key: a.key, value: a.value }] };
    });
    for (const [i, w] of watchers.entries()) {
      assert.deepEqual(w.problems, []);
      const seen = w.frames.map((f) => ({
        revision: f.revision,
        events: f.events.map((e) => ({ type: e.type, key: e.kv.key, value: e.kv.value })),
      }));
      assert.deepEqual(seen, expected, `watcher on node ${i}`);
    }
    // Every view ends at the same revision with the same values.
    await eventually('all views at the last revision', () => nodes.every((n) => n.store.revision >= last));
    const views = nodes.map((n) => n.store.rangeLatest('seq/', 'seq0').kvs.map((kv) => [kv.key, kv.modRevision]));
    assert.deepEqual(views[1], views[0]);
    assert.deepEqual(views[2], views[0]);
  });

  test('a linearizable read on another node sees a write acknowledged a moment before', async () => {
    for (let i = 0; i < 20; i++) {
      const writer = node(i % 3);
      const reader = node((i + 1) % 3);
      const revision = await put(writer.url, 'lin/key', `v${i}`);
      const res = await http(`${reader.url}/v1/kv/lin/key?consistency=linearizable`);
      assert.equal(res.status, 200);
      assert.equal(res.body.kv.value, `v${i}`);
      assert.ok(res.body.revision >= revision);
    }
  });

  test('compare-and-swap increments from all nodes never lose an update', async () => {
    await put(node(0).url, 'cas/counter', '0');
    let successes = 0;
    await Promise.all(
      nodes.map(async (n) => {
        for (let i = 0; i < 15; i++) {
          for (;;) {
            const cur = await http(`${n.url}/v1/kv/cas/counter?consistency=linearizable`);
            const value = Number(cur.body.kv.value);
            const res = await http(`${n.url}/v1/txn`, {
              method: 'POST',
              body: {
                compare: [{ key: 'cas/counter', target: 'modRevision', result: '=', value: cur.body.kv.modRevision }],
                success: [{ put: { key: 'cas/counter', value: String(value + 1) } }],
              },
            });
            assert.equal(res.status, 200);
            if (res.body.succeeded) {
              successes++;
              break;
            }
          }
        }
      }),
    );
    assert.equal(successes, 45);
    const final = await http(`${node(2).url}/v1/kv/cas/counter?consistency=linearizable`);
    assert.equal(final.body.kv.value, '45');
  });

  test('a lease granted on one node is usable at once on another, kept alive on a third, and revoked everywhere', async () => {
    const grant = await http(`${node(0).url}/v1/leases`, { method: 'POST', body: { ttl: 30 } });
    assert.equal(grant.status, 201);
    const id = grant.body.id as number;
    await put(node(1).url, 'lease/a', 'x', id); // no waiting: the grant reaches node 1 under the commit lock
    // Any node answers for the lease at once: a miss pulls lease changes from PostgreSQL.
    const seen = await http(`${node(2).url}/v1/leases/${id}`);
    assert.equal(seen.status, 200, JSON.stringify(seen.body));
    assert.equal(seen.body.grantedTtl, 30);
    const ka = await http(`${node(2).url}/v1/leases/${id}/keepalive`, { method: 'POST' });
    assert.equal(ka.status, 200, JSON.stringify(ka.body));
    assert.equal(ka.body.ttl, 30);
    await eventually('every node knows the lease and its key', async () => {
      for (const n of nodes) {
        const res = await http(`${n.url}/v1/leases/${id}`);
        if (res.status !== 200 || JSON.stringify(res.body.keys) !== '["lease/a"]') return false;
      }
      return true;
    });
    const revoke = await http(`${node(2).url}/v1/leases/${id}`, { method: 'DELETE' });
    assert.equal(revoke.status, 200);
    await eventually('the key and the lease are gone on every node', async () => {
      for (const n of nodes) {
        if ((await http(`${n.url}/v1/kv/lease/a`)).status !== 404) return false;
        if ((await http(`${n.url}/v1/leases/${id}`)).status !== 404) return false;
      }
      return true;
    });
    const late = await http(`${node(0).url}/v1/leases/${id}/keepalive`, { method: 'POST' });
    assert.equal(late.status, 404);
  });

  test('a lease that is not kept alive expires once, whichever nodes watch it', async () => {
    const from = (node(0).store.revision as number) + 1;
    const watchers = await Promise.all(nodes.map((n) => WatchClient.open(n.url, 'exp/', from)));
    const grant = await http(`${node(2).url}/v1/leases`, { method: 'POST', body: { ttl: 1 } });
    const id = grant.body.id as number;
    const putRev = await put(node(1).url, 'exp/k', 'v', id);
    await eventually('the key expired on every node', async () => {
      for (const n of nodes) if ((await http(`${n.url}/v1/kv/exp/k`)).status !== 404) return false;
      return true;
    }, 8000);
    const deleteRev = Math.max(...nodes.map((n) => n.store.revision));
    for (const w of watchers) await w.waitForRevision(putRev + 1);
    await new Promise((r) => setTimeout(r, 300)); // a second expiry would show up by now
    for (const w of watchers) {
      w.close();
      const deletes = w.frames.flatMap((f) => f.events.filter((e) => e.type === 'delete').map(() => f.revision));
      assert.equal(deletes.length, 1, 'exactly one delete');
      assert.ok((deletes[0] as number) <= deleteRev);
    }
  });

  test('one revision larger than a change feed page (a big range delete) reaches every node whole', async () => {
    const keys = 2600; // the follower reads 2000 log rows per round trip
    for (let i = 0; i < keys; i += 128) {
      const success = Array.from({ length: Math.min(128, keys - i) }, (_, j) => ({ put: { key: `big/${String(i + j).padStart(5, '0')}`, value: 'v' } }));
      const res = await http(`${node(0).url}/v1/txn`, { method: 'POST', body: { success } });
      assert.equal(res.status, 200);
    }
    const watcher = await WatchClient.open(node(2).url, 'big/', node(0).store.revision + 1);
    const del = await http(`${node(0).url}/v1/kv/big/?prefix=true`, { method: 'DELETE' });
    assert.equal(del.body.deleted, keys);
    await watcher.waitForRevision(del.body.revision);
    watcher.close();
    assert.deepEqual(watcher.frames.map((f) => [f.revision, f.events.length]), [[del.body.revision, keys]]);
    for (const n of nodes) {
      await eventually('the delete applied', () => n.store.revision >= del.body.revision);
      assert.equal(n.store.rangeLatest('big/', 'big0').count, 0);
    }
  });

  test('a signing-key rotation on one node reaches every node (they verify each other\'s tokens)', async () => {
    const before = (await http(`${node(1).url}/v1/auth/signing-key`)).body.kid as string;
    const rotated = await http(`${node(0).url}/v1/auth/signing-key/rotate`, { method: 'POST', body: {} });
    assert.equal(rotated.status, 200, JSON.stringify(rotated.body));
    assert.equal(rotated.body.previousKid, before);
    await eventually('every node signs with the new key and still verifies the previous one', async () => {
      for (const n of nodes) {
        const res = await http(`${n.url}/v1/auth/signing-key`);
        if (res.body.kid !== rotated.body.kid || JSON.stringify(res.body.kids) !== JSON.stringify([rotated.body.kid, before])) return false;
      }
      return true;
    });
  });

  test('an SSE stream resumed on a node that has not caught up yet waits for it instead of failing (EventSource would give up)', async () => {
    for (let round = 0; round < 5; round++) {
      // A burst of writes on node 0, then at once a resume on node 2 from the last of them.
      let last = 0;
      for (let i = 0; i < 30; i++) last = await put(node(0).url, `sse/${round}/${i}`, 'v');
      const ctl = new AbortController();
      const res = await fetch(`${node(2).url}/v1/watch/sse/?prefix=true`, { headers: { 'last-event-id': String(last) }, signal: ctl.signal });
      try {
        assert.equal(res.status, 200, `round ${round}: ${res.status} ${res.status === 200 ? '' : await res.text()}`);
        const next = await put(node(1).url, `sse/${round}/after`, 'v');
        const reader = (res.body as ReadableStream<Uint8Array>).getReader();
        let text = '';
        for (const deadline = Date.now() + 5000; !text.includes(`id: ${next}`); ) {
          assert.ok(Date.now() < deadline, `round ${round}: no event ${next} in ${text}`);
          const chunk = await reader.read();
          if (chunk.done) break;
          text += Buffer.from(chunk.value).toString('utf8');
        }
        assert.ok(!text.includes(`id: ${last}\n`), 'nothing at or before Last-Event-ID');
      } finally {
        ctl.abort();
      }
    }
  });

  test('a node that restarts rebuilds its view from PostgreSQL and follows again', async () => {
    const old = nodes.pop() as TestNode;
    const oldId = (await http(`${old.url}/v1/status`)).body.nodeId as string;
    await old.cleanup();
    const rev = await put(node(0).url, 'restart/k', 'after');
    const fresh = await startTestNode({ backend: url });
    nodes.push(fresh);
    assert.ok(fresh.store.revision >= rev);
    const got = await http(`${fresh.url}/v1/kv/restart/k`);
    assert.equal(got.body.kv.value, 'after');
    assert.equal(fresh.store.keyCount, node(0).store.keyCount);
    const rev2 = await put(node(1).url, 'restart/k', 'followed');
    await eventually('the new node follows', () => fresh.store.revision >= rev2);
    assert.equal((await http(`${fresh.url}/v1/kv/restart/k`)).body.kv.value, 'followed');
    await eventually('the stopped node left the cluster', async () => {
      const res = await http(`${fresh.url}/v1/cluster`);
      return res.body.nodes.length === 3 && !res.body.nodes.some((n: { id: string }) => n.id === oldId);
    });
  });
});
