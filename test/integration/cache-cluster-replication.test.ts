/**
 * The cache tier across nodes, replicated and over HTTP, with real processes on one PostgreSQL:
 * a namespace with replicationFactor 2 and sync replication loses no acknowledged write when a
 * primary is SIGKILLed under load, and the survivors restore two copies of every key; WAIT counts
 * the replicas; `/v1/cache` on any node reaches the owner; the SDK sends each call to the owner.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { Cluster, Redis } from 'ioredis';
import { createClient } from '../../client/index.js';
import { http, type ServerProcess } from '../helpers/node.js';
import { ClusterProcesses, eventually, startPostgres, type PostgresServer } from '../helpers/postgres.js';

interface Node {
  proc: ServerProcess;
  port: number;
  url: string;
  id: string;
  dead: boolean;
}

const closers: (() => void)[] = [];

function plain(port: number): Redis {
  const c = new Redis({ port, host: '127.0.0.1', maxRetriesPerRequest: 1, connectTimeout: 2000, commandTimeout: 8000 });
  c.on('error', () => undefined);
  closers.push(() => c.disconnect());
  return c;
}

async function metric(url: string, name: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  return m === null ? 0 : Number(m[1]);
}

/**
 * SETs `value` under the first of `prefix0`, `prefix1`, … that the node behind `c` serves (`c`
 * is cluster-aware: another node's key answers MOVED); resolves with that key.
 */
async function setServedKey(c: Redis, prefix: string, value: string): Promise<string> {
  for (let i = 0; ; i++) {
    const key = `${prefix}${i}`;
    try {
      await c.set(key, value);
      return key;
    } catch (err) {
      assert.match(String(err), /MOVED/);
    }
  }
}

/** Requests `url` answered on `route` (every method and status), from its /metrics. */
async function routeRequests(url: string, route: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  let n = 0;
  for (const line of text.split('\n')) if (line.startsWith('beacon_http_requests_total{') && line.includes(`route="${route}"`)) n += Number(line.slice(line.lastIndexOf(' ') + 1));
  return n;
}

describe('a replicated cache cluster and its HTTP face', () => {
  let pg: PostgresServer;
  // The origin of the factor-1 namespace o/ (seed 002: read-through refills what a failed node held).
  let originRequests = 0;
  const origin: Server = createServer((req, res) => {
    originRequests++;
    res.setHeader('content-type', 'text/plain');
    res.end(`origin:${decodeURIComponent((req.url ?? '/').slice(1))}`);
  });
  const cluster = new ClusterProcesses();
  const nodes: Node[] = [];

  before(async () => {
    await new Promise<void>((r) => origin.listen(0, '127.0.0.1', r));
    const originPort = (origin.address() as { port: number }).port;
    pg = await startPostgres();
    const url = await pg.createDatabase();
    for (const proc of await cluster.spawn(url, 3)) {
      const port = Number(/beacon RESP listening on redis:\/\/[^\s]+:(\d+)/.exec(proc.stderr())?.[1]);
      nodes.push({ proc, port, url: proc.url, id: '', dead: false });
    }
    const status = (await http(`${nodes[0]?.url}/v1/cluster`)).body as { nodes: { id: string; url: string }[] };
    for (const n of nodes) n.id = status.nodes.find((s) => s.url === n.url)?.id ?? '';
    const put = (prefix: string, body: Record<string, unknown>): Promise<{ status: number }> =>
      http(`${nodes[0]?.url}/v1/namespaces/${prefix}`, { method: 'PUT', body });
    assert.equal((await put('r/', { storage: 'memory', replicationFactor: 2, replication: 'sync' })).status, 201);
    assert.equal((await put('h/', { storage: 'memory' })).status, 201);
    assert.equal((await put('r3/', { storage: 'memory', replicationFactor: 3, replication: 'sync' })).status, 201);
    assert.equal((await put('o/', { storage: 'memory', origin: { url: `http://127.0.0.1:${originPort}/{id}`, timeoutMs: 5000 } })).status, 201);
    assert.equal((await put('bad/', { storage: 'memory', replicationFactor: 4 })).status, 400, 'a factor above 3 is refused');
    await eventually('three nodes in the ring', async () => {
      const s = (await http(`${nodes[0]?.url}/v1/cluster`)).body as { nodes: { cache?: { role: string } }[] };
      return s.nodes.filter((n) => n.cache?.role === 'primary').length === 3;
    });
  });

  after(async () => {
    for (const c of closers) c();
    await cluster.stop();
    await pg?.stop();
    origin.close();
  });

  test('/v1/cache on any node reaches the owner; x-cache-node names it; forwards are counted', async () => {
    const [a, b, c] = nodes as [Node, Node, Node];
    const before = await metric(a.url, 'beacon_cache_cluster_http_forwarded_total');
    const owners = new Set<string>();
    for (let i = 0; i < 12; i++) {
      const put = await fetch(`${a.url}/v1/cache/h/k${i}`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ value: `v${i}`, ttl: 600 }) });
      assert.equal(put.status, 200, await put.text());
      const node = put.headers.get('x-cache-node') ?? '';
      owners.add(node);
      for (const n of [a, b, c]) {
        const get = await fetch(`${n.url}/v1/cache/h/k${i}`);
        assert.equal(get.status, 200);
        assert.equal(((await get.json()) as { value: string }).value, `v${i}`);
        assert.equal(get.headers.get('x-cache-node'), node, 'every node relays the owner');
      }
    }
    assert.ok(owners.size >= 2, `12 keys on ${owners.size} node(s)`);
    assert.ok((await metric(a.url, 'beacon_cache_cluster_http_forwarded_total')) > before);
    const del = await fetch(`${b.url}/v1/cache/h/k0`, { method: 'DELETE' });
    assert.deepEqual(await del.json(), { key: 'h/k0', deleted: true });
    assert.equal((await fetch(`${c.url}/v1/cache/h/k0`)).status, 404);
  });

  test('the SDK sends each cache call to the owner once it has the slot map', async () => {
    const client = createClient({ endpoints: nodes.map((n) => n.url) });
    closers.push(() => void client.close());
    for (let i = 0; i < 30; i++) await client.cache.set(`h/sdk${i}`, `s${i}`, { ttl: 600 });
    // The slot map is read in the background from the first call; then no call needs a forward.
    await new Promise((r) => setTimeout(r, 300));
    const forwarded = async (): Promise<number> => (await Promise.all(nodes.map((n) => metric(n.url, 'beacon_cache_cluster_http_forwarded_total')))).reduce((x, y) => x + y, 0);
    const before = await forwarded();
    for (let i = 0; i < 30; i++) assert.equal((await client.cache.get(`h/sdk${i}`))?.text, `s${i}`);
    assert.equal(await forwarded(), before, 'every get went straight to the owner');
  });

  test("a plain client's MULTI on another node's slot runs there as one transaction, with its WATCH watched there", async () => {
    // From every node: on two of them the transaction is forwarded to the owner of c/{t}'s slot.
    for (const n of nodes) {
      const c = plain(n.port);
      const res = await c.multi().set('h/{t}x', '5').incr('h/{t}x').get('h/{t}x').exec();
      assert.deepEqual(
        res?.map(([err, v]) => (err === null ? v : String(err))),
        ['OK', 6, '6'],
      );
      // An error inside EXEC fails that command only, as in Redis, and comes back from the owner.
      const mixed = await c.multi().set('h/{t}s', 'abc').incr('h/{t}s').exec();
      assert.equal(mixed?.[0]?.[1], 'OK');
      assert.match(String(mixed?.[1]?.[0]), /not an integer/);
    }
    const owners = await Promise.all(nodes.map(async (n) => (await plain(n.port).keys('h/{t}*')).length));
    assert.deepEqual([...owners].sort(), [0, 0, 2], 'the keys live on their owner only');
    const notOwner = nodes[owners.indexOf(0)] as Node;
    const owner = nodes[owners.indexOf(2)] as Node;
    const c = plain(notOwner.port);
    // Untouched between WATCH and EXEC: the transaction runs on the owner.
    assert.equal(await c.watch('h/{t}x'), 'OK');
    assert.deepEqual(await c.multi().incr('h/{t}x').exec(), [[null, 7]]);
    // Touched by another client (on the owner), even to the same value: aborted, nothing written.
    assert.equal(await c.watch('h/{t}x', 'h/{t}s'), 'OK');
    assert.equal(await plain(owner.port).set('h/{t}x', '7'), 'OK');
    assert.equal(await c.multi().incr('h/{t}x').exec(), null);
    assert.equal(await plain(owner.port).get('h/{t}x'), '7');
    // UNWATCH forgets it; DISCARD too.
    assert.equal(await c.watch('h/{t}x'), 'OK');
    assert.equal(await c.unwatch(), 'OK');
    assert.equal(await plain(owner.port).set('h/{t}x', '8'), 'OK');
    assert.deepEqual(await c.multi().incr('h/{t}x').exec(), [[null, 9]]);
    // Keys of another node watched in the same connection: refused, naming both nodes.
    const elsewhere = nodes.find((n) => n !== owner && n !== notOwner) as Node;
    let other = '';
    for (let i = 0; other === ''; i++) {
      const k = `h/{w${i}}`;
      const res = await http(`${notOwner.url}/v1/cache/${encodeURIComponent(k)}`, { method: 'PUT', body: { value: '1' } });
      if (res.headers.get('x-cache-node') === elsewhere.id) other = k;
    }
    assert.equal(await c.watch('h/{t}x'), 'OK');
    await assert.rejects(c.watch(other), /WATCH of keys on two nodes/);
    await c.unwatch();
    // A transaction on another node than its WATCH: EXECABORT.
    assert.equal(await c.watch('h/{t}x'), 'OK');
    await assert.rejects(c.multi().set(other, '2').exec(), /EXECABORT[^]*WATCHed are served by/);
  });

  test('WAIT on the owner counts the replica that acknowledged the write', async () => {
    const owner = nodes.find((n) => n.port > 0) as Node;
    const c = plain(owner.port);
    await c.call('CLUSTER', 'MYID'); // cluster-aware: a key of another node gets MOVED, not a forward
    await setServedKey(c, 'r/w', 'x');
    assert.equal(await c.call('WAIT', '1', '2000'), 1);
    assert.equal(await c.call('WAIT', '1', '0'), 1);
    await assert.rejects(c.call('WAIT', '1', '-1'), /timeout is negative/);
    // Factor 3 on three nodes: the primary and two replicas, every node holds every key.
    const c3 = plain(owner.port);
    await c3.call('CLUSTER', 'MYID');
    const k3 = await setServedKey(c3, 'r3/w', 'three');
    assert.equal(await c3.call('WAIT', '2', '2000'), 2, 'both replicas acknowledged');
    for (const n of nodes) assert.deepEqual(await plain(n.port).keys('r3/*'), [k3], `node ${n.port} holds the factor-3 key`);
  });

  test('CLUSTER SLOTS lists each range\'s replica; with READONLY a replica serves reads of its slots, without it MOVED', async () => {
    const c = plain(nodes[0]?.port as number);
    const slots = (await c.call('CLUSTER', 'SLOTS')) as [number, number, ...[string, number, string][]][];
    assert.ok(slots.length > 0);
    for (const [, , ...owners] of slots) {
      assert.equal(owners.length, 3, 'the primary and two replicas (factor 3, of r3/, is the largest)');
      assert.equal(new Set(owners.map((o) => o[1])).size, 3, 'on three different nodes');
    }
    // A key, and the node that replicates it.
    const key = 'r/replica-read';
    assert.equal(await plain(nodes[0]?.port as number).set(key, 'v1'), 'OK'); // a plain client: forwarded to the owner (`c` sent CLUSTER: it would get MOVED)
    const slot = (await c.call('CLUSTER', 'KEYSLOT', key)) as number;
    const range = slots.find(([s, e]) => slot >= s && slot <= e) as [number, number, ...[string, number, string][]];
    const replica = plain(range[3]?.[1] as number);
    await replica.call('CLUSTER', 'MYID');
    await assert.rejects(replica.get(key), /MOVED/, 'a cluster client without READONLY goes to the primary');
    assert.equal(await replica.call('READONLY'), 'OK');
    const forwardedBefore = Number(/cluster_forwarded_commands:(\d+)/.exec(await replica.info('cluster'))?.[1]);
    assert.equal(await replica.get(key), 'v1', 'served by the replica');
    assert.equal(Number(/cluster_forwarded_commands:(\d+)/.exec(await replica.info('cluster'))?.[1]), forwardedBefore);
    await assert.rejects(replica.set(key, 'v2'), /MOVED/, 'writes still go to the primary');
    assert.equal(await replica.call('READWRITE'), 'OK');
    await assert.rejects(replica.get(key), /MOVED/);
  });

  test('PostgreSQL down for 5 s while the ring is stable: nodes fence (CLUSTERDOWN), the ring does not change, memory keys are served again after', async (t) => {
    const ring = async (): Promise<{ epoch: number; members: number }> => {
      const s = (await http(`${nodes[0]?.url}/v1/cluster`)).body as { cacheRingEpoch: number; nodes: { cache?: { role: string } }[] };
      return { epoch: s.cacheRingEpoch, members: s.nodes.filter((n) => n.cache?.role === 'primary').length };
    };
    const before = await ring();
    assert.equal(before.members, 3);
    const c = plain(nodes[1]?.port as number);
    await c.set('h/pg', 'before');
    // Down for longer than a ring member's TTL (4 s): every heartbeat fails meanwhile.
    await pg.shutdown();
    const down = Date.now();
    await new Promise((r) => setTimeout(r, 5000));
    await assert.rejects(c.get('h/pg'), /CLUSTERDOWN/, 'a node that cannot confirm its membership does not serve');
    await pg.start();
    await eventually(
      'memory keys served again',
      async () => {
        try {
          return (await c.get('h/pg')) === 'before';
        } catch {
          return false; // CLUSTERDOWN while fenced, or a connection error
        }
      },
      30_000,
    );
    t.diagnostic(`served again ${Date.now() - down} ms after PostgreSQL stopped (5 s down)`);
    // Long enough for a leader to have dropped members that did not heartbeat in time.
    await new Promise((r) => setTimeout(r, 5000));
    await eventually('the cluster answers', async () => (await http(`${nodes[0]?.url}/v1/cluster`)).status === 200, 20_000);
    assert.deepEqual(await ring(), before, 'the same epoch and members: the ring did not flap');
  });

  test('SIGKILL of a primary under load with factor 2 sync: no acknowledged write is lost, and two copies are restored', async (t) => {
    const cl = new Cluster(
      nodes.map((n) => ({ host: '127.0.0.1', port: n.port })),
      { clusterRetryStrategy: () => 100, redisOptions: { connectTimeout: 1000, commandTimeout: 3000, maxRetriesPerRequest: 2 }, retryDelayOnTryAgain: 50, retryDelayOnClusterDown: 100 },
    );
    cl.on('error', () => undefined);
    closers.push(() => cl.disconnect());
    const KEYS = 200;
    const acked = new Map<string, number>(); // last acknowledged value per key
    const tried = new Map<string, Set<number>>(); // values sent after it, whose outcome is unknown
    for (let i = 0; i < KEYS; i++) {
      await cl.set(`r/k${i}`, '0');
      acked.set(`r/k${i}`, 0);
    }
    // Factor 1 beside it: 60 keys of o/, about a third of them on the node about to be killed.
    for (let i = 0; i < 60; i++) {
      const put = await fetch(`${nodes[0]?.url}/v1/cache/o/k${i}`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ value: 'cached', ttl: 600 }) });
      assert.equal(put.status, 200);
    }
    // Over HTTP into the same factor-2 sync namespace: answered once the replica has the write too.
    for (let i = 0; i < 60; i++) {
      const put = await fetch(`${nodes[0]?.url}/v1/cache/r/h${i}`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ value: `h${i}`, ttl: 600 }) });
      assert.equal(put.status, 200, await put.text());
    }
    const victim = nodes[2] as Node;
    const victimKeys = (await plain(victim.port).keys('r/k*')).length;
    assert.ok(victimKeys > 0, 'the node to kill holds copies (as primary or replica)');
    let stop = false;
    let errors = 0;
    const writer = (async () => {
      for (let v = 1; !stop; v++) {
        await Promise.all(
          [...acked.keys()].slice((v * 20) % KEYS, ((v * 20) % KEYS) + 20).map(async (k) => {
            let s = tried.get(k);
            if (s === undefined) tried.set(k, (s = new Set()));
            s.add(v);
            try {
              await cl.set(k, String(v));
              acked.set(k, v);
              s.clear();
            } catch {
              errors++;
            }
          }),
        );
      }
    })();
    // An SDK client whose slot map names the node about to die.
    const sdk = createClient({ endpoints: nodes.map((n) => n.url) });
    closers.push(() => void sdk.close());
    for (let i = 0; i < 30; i++) await sdk.cache.set(`h/fo${i}`, 'before', { ttl: 600 });
    await new Promise((r) => setTimeout(r, 500));
    const killedAt = Date.now();
    await victim.proc.kill();
    victim.dead = true;
    const live = nodes.filter((n) => !n.dead);
    await eventually(
      'the ring without the killed node',
      async () => {
        const s = (await http(`${live[0]?.url}/v1/cluster`)).body as { nodes: { cache?: { role: string } }[] };
        return s.nodes.filter((n) => n.cache?.role === 'primary').length === 2;
      },
      15_000,
    );
    t.diagnostic(`ring without the killed node after ${Date.now() - killedAt} ms`);
    // Its calls for the dead node's slots fail over to another node, which makes it read the map
    // again within a second (not at the end of its 10 s refresh period).
    const clusterReads = async (): Promise<number> => (await Promise.all(live.map((n) => routeRequests(n.url, '/v1/cluster')))).reduce((x, y) => x + y, 0);
    const reads = await clusterReads();
    for (let i = 0; i < 30; i++) assert.deepEqual(await sdk.cache.set(`h/fo${i}`, 'after', { ttl: 600 }), { ttl: 600 });
    let n = 0;
    await eventually(
      'the SDK reads the slot map again once a node it named did not answer',
      async () => {
        await sdk.cache.set(`h/fo${n++ % 30}`, 'later', { ttl: 600 }); // the map is read again on a call
        return (await clusterReads()) > reads;
      },
      3000,
    );
    await new Promise((r) => setTimeout(r, 1500)); // writes go on against the new primaries
    stop = true;
    await writer;
    t.diagnostic(`writes that failed around the kill: ${errors}`);
    const reader = plain(live[0]?.port as number);
    let lost = 0;
    for (const [k, v] of acked) {
      const got = Number(await reader.get(k));
      if (got !== v && !(tried.get(k)?.has(got) ?? false)) lost++;
    }
    assert.equal(lost, 0, 'every key holds its last acknowledged value (or a later one whose answer was lost)');
    for (let i = 0; i < 60; i++) {
      const res = await fetch(`${live[0]?.url}/v1/cache/r/h${i}`);
      assert.equal(res.status, 200, `r/h${i}, acknowledged over HTTP before the kill, is still there`);
      assert.equal(((await res.json()) as { value: string }).value, `h${i}`);
    }
    // Factor 1: what the killed node held comes back as a miss that the origin refills; the rest is still cached.
    const before = originRequests;
    let cached = 0;
    let refilled = 0;
    for (let i = 0; i < 60; i++) {
      const res = await fetch(`${live[0]?.url}/v1/cache/o/k${i}`);
      assert.equal(res.status, 200);
      const value = ((await res.json()) as { value: string }).value;
      if (value === 'cached') cached++;
      else {
        assert.equal(value, `origin:k${i}`);
        assert.equal(res.headers.get('x-cache-source'), 'origin');
        refilled++;
      }
    }
    t.diagnostic(`factor 1 after the kill: ${cached} still cached, ${refilled} refilled from the origin`);
    assert.ok(cached > 0 && refilled > 0, `${cached} cached, ${refilled} refilled`);
    assert.equal(originRequests - before, refilled);
    // Refilled once: the next read is a hit on the new owner.
    const again = await fetch(`${live[1]?.url}/v1/cache/o/k0`);
    assert.equal(again.headers.get('x-cache'), 'hit');
    // Two copies again: the survivors each hold every r/ key.
    const readers = live.map((n) => plain(n.port));
    await eventually(
      'two copies of every key on the two survivors',
      async () => {
        const counts = await Promise.all(readers.map(async (r) => (await r.keys('r/k*')).length));
        return counts.every((c) => c === KEYS);
      },
      15_000,
    );
  });
});
