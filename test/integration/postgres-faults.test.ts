/**
 * Faults on PostgreSQL, with `beacon serve` child processes: a node killed with SIGKILL under a
 * watching client, the death of the node that drives lease expiry, and a PostgreSQL restart
 * during load (no acknowledged write lost, nodes catch up, watchers see no gap or duplicate).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { http, type ServerProcess } from '../helpers/node.js';
import { ClusterProcesses, eventually, startPostgres, WatchClient, type PostgresServer } from '../helpers/postgres.js';

let server: PostgresServer | undefined;
const cluster = new ClusterProcesses();

before(async () => {
  server = await startPostgres();
});

after(async () => {
  await cluster.stop();
  await server?.stop();
});


async function status(base: string): Promise<{ nodeId: string; revision: number }> {
  const res = await http(`${base}/v1/status`);
  return res.body as { nodeId: string; revision: number };
}

/** Concurrent PUT loops against `targets` until `stop()`; every acknowledged write is recorded. */
function writeLoad(targets: string[], prefix: string, perTarget: number) {
  const acked = new Map<number, { key: string; value: string }>();
  const failures: { status: number; code: string | undefined; ms: number }[] = [];
  let stopped = false;
  let seq = 0;
  const loops = targets.flatMap((base) =>
    Array.from({ length: perTarget }, async () => {
      while (!stopped) {
        const i = seq++;
        const key = `${prefix}${i}`;
        const value = `v${i}`;
        const started = Date.now();
        try {
          const res = await http(`${base}/v1/kv/${key}`, { method: 'PUT', body: { value } });
          if (res.status === 200) acked.set(res.body.revision as number, { key, value });
          else {
            failures.push({ status: res.status, code: res.body?.error?.code, ms: Date.now() - started });
            await new Promise((r) => setTimeout(r, 50));
          }
        } catch {
          failures.push({ status: 0, code: 'network', ms: Date.now() - started });
          await new Promise((r) => setTimeout(r, 50));
        }
      }
    }),
  );
  return {
    acked,
    failures,
    stop: async () => {
      stopped = true;
      await Promise.all(loops);
    },
  };
}

/** The frames' revisions must be consecutive (no gap, no duplicate) when nothing else writes under the prefix. */
function assertConsecutive(revisions: number[], what: string): void {
  for (let i = 1; i < revisions.length; i++) {
    assert.equal(revisions[i], (revisions[i - 1] as number) + 1, `${what}: revision ${revisions[i - 1]} is followed by ${revisions[i]}`);
  }
}

describe('faults on PostgreSQL', () => {
  test('a watcher whose node is SIGKILLed resumes on another node from its last revision + 1 and misses nothing', async () => {
    const url = await (server as PostgresServer).createDatabase();
    const [a, b, c] = (await cluster.spawn(url, 3)) as [ServerProcess, ServerProcess, ServerProcess];
    const from = (await status(a.url)).revision + 1;
    const first = await WatchClient.open(a.url, 'kill/', from);
    const load = writeLoad([b.url, c.url], 'kill/', 4);
    await eventually('some writes watched through node a', () => first.frames.length >= 30);
    await a.kill();
    await eventually('the socket to the killed node closed', () => first.closed, 5000);
    const resumeFrom = first.lastRevision + 1;
    const second = await WatchClient.open(b.url, 'kill/', resumeFrom);
    await eventually('writes continue after the kill', () => second.frames.length >= 30);
    await load.stop();
    const last = Math.max(...load.acked.keys());
    await second.waitForRevision(last);
    second.close();
    assert.deepEqual(load.failures, [], 'writes to the surviving nodes never failed');
    const seen = [...first.frames, ...second.frames];
    const revisions = seen.map((f) => f.revision);
    assertConsecutive(revisions, 'watched revisions');
    assert.equal(revisions[0], from);
    assert.equal(revisions[revisions.length - 1], last);
    assert.deepEqual(
      revisions,
      [...load.acked.keys()].sort((x, y) => x - y),
      'the watcher saw exactly the acknowledged writes',
    );
    for (const f of seen) assert.equal(f.events[0]?.kv.key, load.acked.get(f.revision)?.key);
    await b.stop();
    await c.stop();
  });

  test('lease expiry survives the death of the node that drives it, and kept-alive leases survive the hand-over', async () => {
    const url = await (server as PostgresServer).createDatabase();
    const all = await cluster.spawn(url, 3);
    let leaderId = '';
    await eventually('an expiry leader', async () => {
      const res = await http(`${(all[0] as ServerProcess).url}/v1/cluster`);
      leaderId = res.body.expiryLeader ?? '';
      return leaderId !== '' && res.body.nodes.length === 3;
    });
    const ids = await Promise.all(all.map(async (p) => (await status(p.url)).nodeId));
    const leader = all[ids.indexOf(leaderId)] as ServerProcess;
    const [other, third] = all.filter((p) => p !== leader) as [ServerProcess, ServerProcess];

    const doomed = await http(`${other.url}/v1/leases`, { method: 'POST', body: { ttl: 2 } });
    const kept = await http(`${other.url}/v1/leases`, { method: 'POST', body: { ttl: 2 } });
    for (const [key, lease] of [['lead/doomed', doomed.body.id], ['lead/kept', kept.body.id]] as const) {
      const res = await http(`${third.url}/v1/kv/${key}`, { method: 'PUT', body: { value: 'x', lease } });
      assert.equal(res.status, 200);
    }
    // Keep one lease alive through the surviving nodes, alternating, across the hand-over.
    let keeping = true;
    let keepAliveFailures = 0;
    const keeper = (async () => {
      for (let i = 0; keeping; i++) {
        const target = i % 2 === 0 ? other : third;
        const res = await http(`${target.url}/v1/leases/${kept.body.id}/keepalive`, { method: 'POST' });
        if (res.status !== 200) keepAliveFailures++;
        await new Promise((r) => setTimeout(r, 400));
      }
    })();
    await leader.kill();
    const killedAt = Date.now();
    await eventually('the doomed key expired', async () => (await http(`${other.url}/v1/kv/lead/doomed`)).status === 404, 10_000);
    // One TTL (2 s) plus the take-over (about a heartbeat) plus slack.
    assert.ok(Date.now() - killedAt < 6000, `expiry took ${Date.now() - killedAt} ms after the leader died`);
    await eventually('a new leader', async () => {
      const res = await http(`${other.url}/v1/cluster`);
      return res.body.expiryLeader !== null && res.body.expiryLeader !== leaderId && res.body.nodes.length === 2;
    });
    await new Promise((r) => setTimeout(r, 2500)); // longer than the kept lease's TTL
    keeping = false;
    await keeper;
    assert.equal(keepAliveFailures, 0);
    assert.equal((await http(`${third.url}/v1/kv/lead/kept`)).status, 200, 'the kept-alive lease did not expire');
    await other.stop();
    await third.stop();
  });

  test('a PostgreSQL restart under load: writes fail fast, reads go on, nodes catch up, nothing acknowledged is lost', async () => {
    const pgs = server as PostgresServer;
    if (!pgs.restartable) return; // an external BEACON_TEST_POSTGRES_URL cannot be restarted from here
    const url = await pgs.createDatabase();
    const nodes = await cluster.spawn(url, 3);
    const from = (await status((nodes[0] as ServerProcess).url)).revision + 1;
    const watchers = await Promise.all(nodes.map((n) => WatchClient.open(n.url, 'load/', from)));
    const load = writeLoad(
      nodes.map((n) => n.url),
      'load/',
      3,
    );
    await eventually('load is flowing', () => load.acked.size >= 50);
    await pgs.shutdown();
    const downAt = Date.now();
    for (const n of nodes) {
      await eventually(`${n.url} reports not ready`, async () => (await http(`${n.url}/readyz`)).status === 503, 5000);
      const read = await http(`${n.url}/v1/kv/load/?prefix=true&limit=1`);
      assert.equal(read.status, 200, 'serializable reads are served from the view while PostgreSQL is down');
      assert.ok(Number(read.headers.get('x-beacon-revision')) >= from);
      const lin = await http(`${n.url}/v1/kv/load/0?consistency=linearizable`);
      assert.equal(lin.status, 503);
    }
    const writeStarted = Date.now();
    const failed = await http(`${(nodes[0] as ServerProcess).url}/v1/kv/down/x`, { method: 'PUT', body: { value: 'x' } });
    assert.equal(failed.status, 503);
    assert.equal(failed.body.error.code, 'unavailable');
    assert.ok(Date.now() - writeStarted < 5000, 'a write fails within the bounded timeout');
    await new Promise((r) => setTimeout(r, Math.max(0, 1500 - (Date.now() - downAt))));
    await pgs.start();
    for (const n of nodes) await eventually(`${n.url} is ready again`, async () => (await http(`${n.url}/readyz`)).status === 200, 20_000);
    const ackedBefore = load.acked.size;
    await eventually('writes flow again', () => load.acked.size >= ackedBefore + 50, 10_000);
    await load.stop();

    assert.ok(load.failures.length > 0, 'some writes failed while PostgreSQL was down');
    for (const f of load.failures) {
      assert.equal(f.code, 'unavailable', JSON.stringify(f));
      assert.ok(f.ms < 12_000, `a write failed only after ${f.ms} ms`);
    }
    const last = Math.max(...load.acked.keys());
    for (const n of nodes) {
      const res = await http(`${n.url}/v1/kv/load/?prefix=true&consistency=linearizable`);
      assert.equal(res.status, 200);
      const byKey = new Map<string, { value: string; modRevision: number }>(
        (res.body.kvs as { key: string; value: string; modRevision: number }[]).map((kv) => [kv.key, kv]),
      );
      for (const [revision, w] of load.acked) {
        assert.deepEqual(byKey.get(w.key), { ...byKey.get(w.key), value: w.value, modRevision: revision }, `acknowledged ${w.key} on ${n.url}`);
      }
    }
    for (const w of watchers) await w.waitForRevision(last);
    const streams = watchers.map((w) => w.frames.map((f) => f.revision));
    for (const [i, revs] of streams.entries()) {
      assertConsecutive(revs, `watcher ${i}`);
      assert.equal(revs[0], from);
      for (const r of load.acked.keys()) assert.ok(revs.includes(r), `watcher ${i} saw acknowledged revision ${r}`);
    }
    assert.deepEqual(streams[1], streams[0]);
    assert.deepEqual(streams[2], streams[0]);
    for (const w of watchers) w.close();
    await Promise.all(nodes.map((n) => n.stop()));
  });
});
