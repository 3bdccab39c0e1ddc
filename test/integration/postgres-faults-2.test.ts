/**
 * Faults on PostgreSQL where something stops answering without closing a connection (SIGSTOP):
 * a frozen expiry leader must not stop lease expiry cluster-wide, and a frozen PostgreSQL must
 * make writes fail within the documented bound and `/readyz` report it, with both recovering.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { http, type ServerProcess } from '../helpers/node.js';
import { ClusterProcesses, eventually, startPostgres, type PostgresServer } from '../helpers/postgres.js';

let server: PostgresServer | undefined;
const cluster = new ClusterProcesses();

before(async () => {
  server = await startPostgres();
});

after(async () => {
  server?.thaw();
  await cluster.stop();
  await server?.stop();
});


interface ClusterBody {
  expiryLeader: string | null;
  nodes: { id: string; self: boolean; expiryLeader: boolean; ready: boolean }[];
}

describe('a node or PostgreSQL that stops answering (SIGSTOP)', () => {
  test('a frozen expiry leader is replaced: a lease expires through another node, and the thawed node stops leading', async () => {
    const url = await (server as PostgresServer).createDatabase();
    const all = await cluster.spawn(url, 3);
    let leaderId = '';
    await eventually('an expiry leader', async () => {
      const res = await http(`${(all[0] as ServerProcess).url}/v1/cluster`);
      leaderId = (res.body as ClusterBody).expiryLeader ?? '';
      return leaderId !== '' && (res.body as ClusterBody).nodes.length === 3;
    });
    const ids = await Promise.all(all.map(async (p) => (await http(`${p.url}/v1/status`)).body.nodeId as string));
    const leader = all[ids.indexOf(leaderId)] as ServerProcess;
    const [other, third] = all.filter((p) => p !== leader) as [ServerProcess, ServerProcess];

    const lease = await http(`${other.url}/v1/leases`, { method: 'POST', body: { ttl: 2 } });
    assert.equal(lease.status, 201);
    const put = await http(`${third.url}/v1/kv/frozen/doomed`, { method: 'PUT', body: { value: 'x', lease: lease.body.id } });
    assert.equal(put.status, 200);

    leader.child.kill('SIGSTOP');
    const frozenAt = Date.now();
    try {
      await eventually('the leased key expired while the leader is frozen', async () => (await http(`${other.url}/v1/kv/frozen/doomed`)).status === 404, 15_000);
      // The TTL (2 s), PostgreSQL ending the frozen session (4 s idle), a heartbeat to take over, slack.
      const took = Date.now() - frozenAt;
      assert.ok(took < 9000, `the lease expired ${took} ms after the leader froze`);
      await eventually('another node reports itself the leader', async () => {
        const res = await http(`${other.url}/v1/cluster`);
        const leaderNow = (res.body as ClusterBody).expiryLeader;
        return leaderNow !== null && leaderNow !== leaderId;
      });
    } finally {
      leader.child.kill('SIGCONT');
    }
    // The thawed node learns its session was ended: it no longer leads, reconnects and serves again.
    await eventually(
      'the thawed node reports it does not lead and is ready',
      async () => {
        const res = await http(`${leader.url}/v1/cluster`);
        const self = (res.body as ClusterBody).nodes?.find((n) => n.self);
        return res.status === 200 && self?.expiryLeader === false && (await http(`${leader.url}/readyz`)).status === 200;
      },
      10_000,
    );
    // Each node says whether it holds the lock itself: exactly one does (the rows others read lag a heartbeat).
    await eventually('exactly one node leads, by its own account', async () => {
      const selves = await Promise.all(all.map(async (p) => ((await http(`${p.url}/v1/cluster`)).body as ClusterBody).nodes.find((n) => n.self)));
      return selves.filter((n) => n?.expiryLeader === true).length === 1;
    }, 5000);
    const res = await http(`${other.url}/v1/cluster`);
    assert.equal((res.body as ClusterBody).nodes.filter((n) => n.expiryLeader).length, 1, 'one leader in one answer');
    const write = await http(`${leader.url}/v1/kv/frozen/after`, { method: 'PUT', body: { value: 'y' } });
    assert.equal(write.status, 200, 'the thawed node accepts writes');
    await Promise.all(all.map((p) => p.kill()));
  });

  test('a frozen PostgreSQL: a write fails with unavailable within ~11 s, /readyz goes 503, and both recover after it thaws', async () => {
    const pgs = server as PostgresServer;
    if (!pgs.restartable) return; // an external BEACON_TEST_POSTGRES_URL cannot be frozen from here
    const url = await pgs.createDatabase();
    const [a, b] = (await cluster.spawn(url, 2)) as [ServerProcess, ServerProcess];
    assert.equal((await http(`${a.url}/v1/kv/frozen/k`, { method: 'PUT', body: { value: '1' } })).status, 200);
    await eventually('b applied the write', async () => (await http(`${b.url}/v1/kv/frozen/k`)).status === 200);

    pgs.freeze();
    try {
      const started = Date.now();
      const failed = await http(`${a.url}/v1/kv/frozen/k`, { method: 'PUT', body: { value: '2' } });
      const took = Date.now() - started;
      assert.equal(failed.status, 503, JSON.stringify(failed.body));
      assert.equal(failed.body.error.code, 'unavailable');
      assert.ok(took < 12_500, `the write failed only after ${took} ms`);
      // The breaker is open now: one write at a time tries PostgreSQL (and waits), the others
      // are refused at once with Retry-After instead of each waiting out the timeout.
      const trial = http(`${a.url}/v1/kv/frozen/k`, { method: 'PUT', body: { value: 'trial' } });
      await new Promise((r) => setTimeout(r, 200));
      const fastStart = Date.now();
      const fast = await http(`${a.url}/v1/kv/frozen/other`, { method: 'PUT', body: { value: 'x' } });
      assert.equal(fast.status, 503, JSON.stringify(fast.body));
      assert.ok(Date.now() - fastStart < 1000, `refused after ${Date.now() - fastStart} ms`);
      assert.equal(fast.body.error.details.reason, 'writes_failing');
      assert.equal(fast.headers.get('retry-after'), '1');
      assert.equal((await trial).status, 503);
      for (const n of [a, b]) {
        await eventually(`${n.url} reports not ready`, async () => (await http(`${n.url}/readyz`)).status === 503, 5000);
        const read = await http(`${n.url}/v1/kv/frozen/k`);
        assert.equal(read.status, 200, 'serializable reads are answered from the view');
        assert.equal(read.body.kv.value, '1');
      }
    } finally {
      pgs.thaw();
    }
    for (const n of [a, b]) await eventually(`${n.url} is ready again`, async () => (await http(`${n.url}/readyz`)).status === 200, 20_000);
    const ok = await http(`${a.url}/v1/kv/frozen/k`, { method: 'PUT', body: { value: '3' } });
    assert.equal(ok.status, 200);
    const lin = await http(`${b.url}/v1/kv/frozen/k?consistency=linearizable`);
    assert.equal(lin.status, 200);
    assert.equal(lin.body.kv.value, '3');
    await Promise.all([a.stop(), b.stop()]);
  });
});
