/**
 * The cache tier across nodes when a node meets another cluster (issue 15, "a node started with
 * a different cluster's database"): two clusters, each `beacon serve --dev` nodes on its own
 * PostgreSQL database. A node's link to another node opens with `BEACON.PEER <cluster id>
 * <node id>`; a node refuses a link from another cluster, or from a node that does not heartbeat
 * in its database, and runs none of the commands pipelined behind the refusal. Then the case as a
 * user meets it: a node is SIGKILLed and the other cluster's node answers at its address before
 * the ring dropped it (through a TCP relay on the killed node's port); the survivor's forwards
 * there are refused (TRYAGAIN naming the other cluster), nothing lands in the other cluster, and
 * once the ring moved the survivor serves the keys itself.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { connect, createServer } from 'node:net';
import pg from 'pg';
import { Redis } from 'ioredis';
import { keySlot } from '../../src/cache/index.js';
import { http, spawnServer, tempDir, type ServerProcess } from '../helpers/node.js';
import { eventually, startPostgres, type PostgresServer } from '../helpers/postgres.js';
import { RawClient, frame, sleep } from './resp-helpers.js';
import { slotPorts } from './cache-cluster-helpers.js';

/** A node: its process, RESP port, node id and a plain client. */
interface Node {
  proc: ServerProcess;
  port: number;
  id: string;
  /** For CLUSTER: it is cluster-aware (gets MOVED). */
  client: Redis;
  /** Never sends CLUSTER: a key another node serves is forwarded there. */
  plain: Redis;
}

const dirs: (() => void)[] = [];
const procs: ServerProcess[] = [];
const clients: Redis[] = [];

async function startNode(dbUrl: string, respPort?: number): Promise<Node> {
  const tmp = tempDir();
  dirs.push(tmp.cleanup);
  const proc = await spawnServer(['--backend', dbUrl, '--data-dir', tmp.dir, '--dev', ...(respPort !== undefined ? ['--resp-port', String(respPort)] : [])]);
  procs.push(proc);
  let port = 0;
  await eventually('the RESP listening line', () => {
    const m = /beacon RESP listening on redis:\/\/[^\s]+:(\d+)/.exec(proc.stderr());
    if (m !== null) port = Number(m[1]);
    return m !== null;
  });
  const res = await http(`${proc.url}/v1/cluster`);
  assert.equal(res.status, 200);
  const self = (res.body.nodes as { id: string; self: boolean }[]).find((n) => n.self);
  assert.ok(self !== undefined);
  const [client, plain] = [0, 1].map(() => {
    const c = new Redis({ port, host: '127.0.0.1', maxRetriesPerRequest: 1, connectTimeout: 2000, commandTimeout: 8000 });
    c.on('error', () => undefined);
    clients.push(c);
    return c;
  }) as [Redis, Redis];
  return { proc, port, id: self.id, client, plain };
}

async function clusterIdOf(dbUrl: string): Promise<string> {
  const c = new pg.Client({ connectionString: dbUrl });
  await c.connect();
  try {
    const r = await c.query<{ cluster_id: string }>('SELECT cluster_id FROM beacon_meta WHERE id = 1');
    return r.rows[0]?.cluster_id ?? '';
  } finally {
    await c.end();
  }
}


function keysOn(map: Int32Array, port: number, prefix: string, n: number): string[] {
  const out: string[] = [];
  for (let i = 0; out.length < n; i++) if (map[keySlot(`${prefix}${i}`)] === port) out.push(`${prefix}${i}`);
  return out;
}

/** The replies of a raw connection, split into lines (every reply here is one line). */
function lines(b: Buffer): string[] {
  return b.toString('utf8').split('\r\n').filter((l) => l !== '');
}

describe('a node of another cluster', { timeout: 120_000 }, () => {
  let server: PostgresServer | undefined;
  let db1 = '';
  let db2 = '';
  let a: Node;
  let b: Node;
  let other: Node;

  before(async () => {
    server = await startPostgres();
    db1 = await server.createDatabase();
    db2 = await server.createDatabase();
    a = await startNode(db1);
    b = await startNode(db1);
    other = await startNode(db2);
    for (const n of [a, other]) {
      const res = await http(`${n.proc.url}/v1/namespaces/c/`, { method: 'PUT', body: { storage: 'memory' } });
      assert.equal(res.status, 201, JSON.stringify(res.body));
    }
    await eventually('both nodes of cluster 1 share the slots, with the memory namespace', async () => {
      const maps = await Promise.all([a, b].map((n) => slotPorts(n.client)));
      const owners = new Set(maps[0]);
      const ns = await http(`${b.proc.url}/v1/namespaces/c/`);
      return ns.status === 200 && owners.size === 2 && !owners.has(-1) && maps[0]?.every((p, i) => maps[1]?.[i] === p) === true;
    }, 15_000);
  });

  after(async () => {
    for (const c of clients) c.disconnect();
    for (const p of procs) await p.kill().catch(() => undefined);
    for (const d of dirs) d();
    await server?.stop();
  });

  test('each database has its own cluster id, and a link presenting another one is refused before anything it pipelined runs', async () => {
    const id1 = await clusterIdOf(db1);
    const id2 = await clusterIdOf(db2);
    assert.match(id1, /^[0-9a-f-]{36}$/);
    assert.notEqual(id1, id2, 'two databases, two clusters');

    // The control: node B's own link to A, on a key A serves, is accepted and the write runs.
    const mapA = await slotPorts(a.client);
    const [onA] = keysOn(mapA, a.port, 'c/id/', 1);
    const good = await RawClient.open(a.port);
    good.write(Buffer.concat([frame('CLIENT', 'SETNAME', `beacon-peer:${b.id}`), frame('BEACON.PEER', id1, b.id), frame('SET', onA as string, 'from-b')]));
    assert.deepEqual(lines(await good.until((r) => lines(r).length >= 3)), ['+OK', '+OK', '+OK']);
    good.close();
    assert.equal(await a.client.get(onA as string), 'from-b');

    // Node A's link, presenting cluster 1, reaches the node of cluster 2: refused, closed, nothing written.
    const bad = await RawClient.open(other.port);
    bad.write(Buffer.concat([frame('CLIENT', 'SETNAME', `beacon-peer:${a.id}`), frame('BEACON.PEER', id1, a.id), frame('SET', 'c/id/wrong', 'x'), frame('PING')]));
    assert.ok(await bad.closedWithin(10_000), 'the refused link is closed');
    const got = lines(bad.received);
    assert.equal(got[0], '+OK');
    assert.match(got[1] ?? '', new RegExp(`^-CLUSTERDOWN this node belongs to cluster ${id2}, not to cluster ${id1} of node ${a.id}`));
    assert.equal(got.length, 2, `nothing after the refusal: ${JSON.stringify(got)}`);
    assert.equal(await other.plain.get('c/id/wrong'), null, 'the pipelined SET never ran');

    // The right cluster id but a node that never heartbeat there (a frozen node, a copy of the database).
    const ghost = await RawClient.open(a.port);
    ghost.write(Buffer.concat([frame('CLIENT', 'SETNAME', 'beacon-peer:ghost'), frame('BEACON.PEER', id1, 'ghost'), frame('SET', onA as string, 'ghost')]));
    assert.ok(await ghost.closedWithin(10_000));
    assert.match(lines(ghost.received)[1] ?? '', /^-CLUSTERDOWN node ghost has sent no heartbeat in cluster/);
    assert.equal(await a.client.get(onA as string), 'from-b', 'the ghost link wrote nothing');

    // A client that is not a node cannot send BEACON.PEER at all.
    await assert.rejects(a.client.call('BEACON.PEER', id1, b.id), /unknown command 'BEACON.PEER'/);
  });

  test('a node of another cluster at a SIGKILLed node\'s address: forwards to it are refused, nothing lands there, then the ring moves', async (t) => {
    const map = await slotPorts(a.client);
    const keys = keysOn(map, b.port, 'c/moved/', 20);
    const port = b.port;
    // Cluster 2's node is reached at the address cluster 1's ring still lists for B (B's heartbeat
    // ages 4 s before it leaves the ring): a TCP relay on B's port, opened the moment B is gone,
    // to the node of cluster 2 (started before, so that a slow start cannot miss the window).
    const relay = createServer((client) => {
      const upstream = connect({ host: '127.0.0.1', port: other.port });
      client.pipe(upstream).pipe(client);
      const close = (): void => {
        client.destroy();
        upstream.destroy();
      };
      client.on('error', close);
      upstream.on('error', close);
      client.on('close', close);
      upstream.on('close', close);
    });
    b.proc.child.kill('SIGKILL');
    await b.proc.kill();
    const killedAt = performance.now();
    await new Promise<void>((resolve, reject) => {
      relay.once('error', reject);
      relay.listen(port, '127.0.0.1', () => resolve());
    });
    try {
      const refusals: string[] = [];
      const deadline = Date.now() + 20_000;
      for (;;) {
        const r = await a.plain.set(keys[0] as string, 'v').then(
          (ok) => ok,
          (err: Error) => err.message,
        );
        if (r === 'OK') break;
        assert.match(r, /^TRYAGAIN|^CLUSTERDOWN/, r);
        if (/belongs to cluster/.test(r)) refusals.push(r);
        assert.ok(Date.now() < deadline, `the survivor never took the slot: ${r}`);
        await sleep(50);
      }
      t.diagnostic(`${refusals.length} forwards refused; the survivor served the slot ${Math.round(performance.now() - killedAt)} ms after the kill`);
      assert.ok(refusals.length > 0, 'the survivor forwarded to the other cluster\'s node, and was refused');
      assert.match(refusals[0] as string, new RegExp(`^TRYAGAIN the node serving slot \\d+ \\(127\\.0\\.0\\.1:${port}\\) could not be used: .*BEACON.PEER failed: CLUSTERDOWN this node belongs to cluster`));
      let landed = 0;
      for (const k of keys) if ((await other.plain.get(k)) !== null) landed++;
      assert.equal(landed, 0, 'no key of cluster 1 was written into cluster 2');
      // The survivor serves every key of the dead node itself now.
      for (const k of keys) assert.equal(await a.plain.set(k, 'w'), 'OK');
      assert.equal(await a.plain.get(keys[0] as string), 'w');
    } finally {
      relay.close();
    }
  });
});
