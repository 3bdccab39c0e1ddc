/**
 * The cache tier across nodes (Redis Cluster slots) with real processes: `beacon serve` nodes on
 * one PostgreSQL, a memory namespace `c/` whose keys live on the primary of their slot, talked to
 * by ioredis's Cluster client, plain ioredis clients, raw sockets and `redis-cli` (with and
 * without `-c`). CLUSTER SLOTS/NODES/INFO/MYID/KEYSLOT agree on every node; each cache key lives
 * on exactly one node; a plain client on any node reaches every key (forwarded), a cluster-aware
 * connection gets MOVED, multi-slot commands CROSSSLOT, a plain client's transaction on another
 * node's slot runs there whole (with a WATCH of its keys, watched there); PUBLISH and keyspace events
 * cross nodes; a SIGKILLed node's slots move to the survivors (failover time measured), a
 * joining node takes its share, a SIGSTOPped node that resumes never serves a value from before
 * it was stopped; and in secure mode the forwarding links authenticate while an
 * unauthenticated client gets NOAUTH.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Cluster, Redis } from 'ioredis';
import { keySlot } from '../../src/cache/index.js';
import { http, spawnServer, tempDir, type ServerProcess } from '../helpers/node.js';
import { ClusterProcesses, eventually, startPostgres, type PostgresServer } from '../helpers/postgres.js';
import { RawClient, frame, redisCli, sleep } from './resp-helpers.js';
import { withTimeout } from '../helpers/time.js';

const SLOTS = 16_384;

/** One `beacon serve` process of the cluster, with its RESP port and two clients. */
interface Member {
  name: string;
  proc: ServerProcess;
  port: number;
  /** For CLUSTER, KEYS, INFO, CONFIG: it sent CLUSTER, so it is cluster-aware (gets MOVED). */
  ctl: Redis;
  /** Never sends CLUSTER: a key another node serves is forwarded there. */
  plain: Redis;
  /** SIGKILLed by a test. */
  dead: boolean;
}

/** An entry of CLUSTER SLOTS. */
interface Range {
  start: number;
  end: number;
  host: string;
  port: number;
  id: string;
}

const clients: { disconnect(): void }[] = [];

function track<T extends { disconnect(): void; on(ev: 'error', f: (e: unknown) => void): unknown }>(c: T): T {
  c.on('error', () => undefined); // a killed or stopped node: ioredis reconnects; no unhandled 'error' events
  clients.push(c);
  return c;
}

function plainClient(port: number, extra: Record<string, unknown> = {}): Redis {
  // commandTimeout: a command that gets no answer fails the test here rather than hanging it.
  return track(new Redis({ port, host: '127.0.0.1', maxRetriesPerRequest: 1, connectTimeout: 2000, commandTimeout: 8000, ...extra }));
}

/**
 * Plain clients of one test, one per node, opened on first use: a test does not reuse a
 * connection an earlier test may have left with commands unanswered.
 */
function plainsOfTest(): (m: Member) => Redis {
  const made = new Map<number, Redis>();
  return (m) => {
    let c = made.get(m.port);
    if (c === undefined) made.set(m.port, (c = plainClient(m.port)));
    return c;
  };
}

/** The RESP port `beacon serve` printed on stderr. */
async function respPortOf(p: ServerProcess): Promise<number> {
  let port = 0;
  await eventually(
    'the RESP listening line on stderr',
    () => {
      const m = /beacon RESP listening on redis:\/\/[^\s]+:(\d+)/.exec(p.stderr());
      if (m !== null) port = Number(m[1]);
      return m !== null;
    },
    10_000,
  );
  return port;
}

async function member(name: string, proc: ServerProcess): Promise<Member> {
  const port = await respPortOf(proc);
  return { name, proc, port, ctl: plainClient(port), plain: plainClient(port), dead: false };
}

async function slotsOf(c: Redis): Promise<Range[]> {
  const raw = (await c.call('CLUSTER', 'SLOTS')) as [number, number, [string, number, string]][];
  return raw.map(([start, end, [host, port, id]]) => ({ start, end, host, port, id }));
}

/** Per slot the RESP port of its primary, when `ranges` cover 0…16383 exactly once, ascending; else a reason. */
function slotMap(ranges: Range[]): Int32Array | string {
  const map = new Int32Array(SLOTS).fill(-1);
  for (const r of ranges) {
    if (!(Number.isInteger(r.start) && Number.isInteger(r.end) && r.start >= 0 && r.end < SLOTS && r.start <= r.end)) return `bad range ${JSON.stringify(r)}`;
    for (let s = r.start; s <= r.end; s++) {
      if (map[s] !== -1) return `slot ${s} listed twice`;
      map[s] = r.port;
    }
  }
  const gap = map.indexOf(-1);
  return gap === -1 ? map : `slot ${gap} not covered`;
}

/** Slots per port in `map`. */
function shares(map: Int32Array): Map<number, number> {
  const n = new Map<number, number>();
  for (const p of map) n.set(p, (n.get(p) ?? 0) + 1);
  return n;
}

/**
 * Waits until every node of `live` answers CLUSTER SLOTS with the same ranges, covering every
 * slot once, over exactly the ports of `live`, and CLUSTER INFO `cluster_state:ok`; resolves
 * with the slot map.
 */
async function converged(live: Member[], what: string, timeoutMs = 15_000): Promise<Int32Array> {
  const want = live.map((m) => m.port).sort((a, b) => a - b);
  let result: Int32Array | undefined;
  let last = '';
  await eventually(
    what,
    async () => {
      try {
        const all = await Promise.all(live.map((m) => withTimeout(slotsOf(m.ctl), 1000)));
        const first = JSON.stringify(all[0]);
        if (!all.every((r) => JSON.stringify(r) === first)) return ((last = 'nodes disagree'), false);
        const map = slotMap(all[0] as Range[]);
        if (typeof map === 'string') return ((last = map), false);
        const ports = [...shares(map).keys()].sort((a, b) => a - b);
        if (JSON.stringify(ports) !== JSON.stringify(want)) return ((last = `owners ${ports.join(',')}`), false);
        const infos = await Promise.all(live.map((m) => withTimeout(m.ctl.call('CLUSTER', 'INFO') as Promise<string>, 1000)));
        if (!infos.every((i) => i.includes('cluster_state:ok'))) return ((last = 'cluster_state not ok'), false);
        result = map;
        return true;
      } catch (err) {
        last = String(err);
        return false;
      }
    },
    timeoutMs,
  ).catch((err: Error) => {
    throw new Error(`${err.message}; last: ${last}`);
  });
  return result as Int32Array;
}


/** Runs `op` until it does not fail with TRYAGAIN or CLUSTERDOWN (a slot in transition), at most `ms`. */
async function settled<T>(op: () => Promise<T>, ms = 5000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      return await op();
    } catch (err) {
      if (!/^(TRYAGAIN|CLUSTERDOWN)/.test(String((err as Error).message)) || Date.now() > deadline) throw err;
      await sleep(50);
    }
  }
}

/** `n` keys `${prefix}${i}` whose slot `map` gives to `port` (or, with `not`, to another port). */
function keysOn(map: Int32Array, port: number, prefix: string, n: number, not = false): string[] {
  const out: string[] = [];
  for (let i = 0; out.length < n; i++) {
    const k = `${prefix}${i}`;
    if ((map[keySlot(k)] === port) !== not) out.push(k);
    if (i > 1_000_000) throw new Error(`no ${n} keys for port ${port}`);
  }
  return out;
}

/**
 * Awaits `p`, commands pipelined to `m` (a plain client) or through the Cluster client (no `m`);
 * a command that got no reply (ioredis's commandTimeout) fails with `what` and, for `m`, what
 * its INFO cluster says, rather than with a bare timeout.
 */
async function answered<T>(m: Member | undefined, p: Promise<T>, what: string): Promise<T> {
  try {
    return await p;
  } catch (err) {
    if (!/timed out/.test(String((err as Error).message))) throw err;
    const info = m === undefined ? '' : ((await m.ctl.info('cluster').catch(() => '')) as string).replace(/\r\n/g, ' ');
    const where = m === undefined ? 'through the Cluster client' : `on the node at port ${m.port}`;
    throw new Error(`${what} ${where}: a reply never came (${(err as Error).message}); ${info}`);
  }
}

/** A number from INFO's `name:value` lines. */
function infoField(info: string, name: string): number {
  const m = new RegExp(`^${name}:(\\d+)`, 'm').exec(info);
  assert.ok(m !== null, `INFO has ${name}:\n${info}`);
  return Number(m[1]);
}

function clusterClient(members: Member[]): Cluster {
  return track(
    new Cluster(
      members.map((m) => ({ host: '127.0.0.1', port: m.port })),
      {
        slotsRefreshTimeout: 2000,
        slotsRefreshInterval: 1000,
        retryDelayOnFailover: 100,
        retryDelayOnClusterDown: 100,
        retryDelayOnTryAgain: 100,
        retryDelayOnMoved: 0,
        maxRedirections: 16,
        clusterRetryStrategy: (times: number) => Math.min(100 * times, 1000),
        redisOptions: { connectTimeout: 1000, maxRetriesPerRequest: 1, commandTimeout: 8000 },
      },
    ),
  );
}

/** The HTTP URL of the expiry leader (the node that commits the ring), from GET /v1/cluster on `base`. */
async function leaderUrl(base: string): Promise<string> {
  const res = await http(`${base}/v1/cluster`);
  assert.equal(res.status, 200);
  const lead = (res.body.nodes as { url: string; expiryLeader: boolean }[]).find((n) => n.expiryLeader);
  assert.ok(lead !== undefined, `a leader in ${JSON.stringify(res.body)}`);
  return lead.url;
}

describe('the cache tier across nodes (Redis Cluster slots) with real processes', { timeout: 180_000 }, () => {
  let pg: PostgresServer | undefined;
  let url = '';
  const procs = new ClusterProcesses();
  const members: Member[] = [];
  let cl: Cluster;
  /** What each `c/s/<i>` key holds (null: nothing), as the tests wrote it. */
  const written = new Map<string, string | null>();
  const live = (): Member[] => members.filter((m) => !m.dead);
  const started = performance.now();

  before(async () => {
    pg = await startPostgres();
    url = await pg.createDatabase();
    const ps = await procs.spawn(url, 3);
    for (const [i, p] of ps.entries()) members.push(await member(`node${i}`, p));
    const res = await http(`${ps[0]?.url}/v1/namespaces/c/`, { method: 'PUT', body: { storage: 'memory' } });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    // The policy reaches every node through the change feed.
    await eventually('every node has the memory namespace c/', async () => {
      const all = await Promise.all(ps.map((p) => http(`${p.url}/v1/namespaces/c/`)));
      return all.every((r) => r.status === 200 && r.body?.storage === 'memory');
    });
    await converged(members, 'three nodes share the slots');
  });

  after(async () => {
    for (const c of clients) c.disconnect();
    await procs.stop();
    await pg?.stop();
    console.log(`cache-cluster: file took ${Math.round(performance.now() - started)} ms`);
  });

  test('CLUSTER SLOTS, NODES, INFO, MYID and KEYSLOT agree on three nodes', async () => {
    const all = await Promise.all(members.map((m) => slotsOf(m.ctl)));
    for (const r of all) assert.deepEqual(r, all[0], 'every node answers the same CLUSTER SLOTS');
    const map = slotMap(all[0] as Range[]);
    assert.ok(typeof map !== 'string', `CLUSTER SLOTS covers 0..16383 exactly once: ${String(map)}`);
    const share = shares(map);
    assert.deepEqual([...share.keys()].sort(), members.map((m) => m.port).sort(), 'the owners are the three RESP ports');
    for (const [port, n] of share) assert.ok(n > SLOTS * 0.2 && n < SLOTS * 0.47, `node on ${port} owns ${n} slots (about a third)`);
    for (const r of all[0] as Range[]) {
      assert.equal(r.host, '127.0.0.1');
      assert.match(r.id, /^[0-9a-f]{40}$/);
    }

    const ids = await Promise.all(members.map((m) => m.ctl.call('CLUSTER', 'MYID') as Promise<string>));
    for (const id of ids) assert.match(id, /^[0-9a-f]{40}$/);
    assert.equal(new Set(ids).size, 3, 'CLUSTER MYID differs per node');
    // The id CLUSTER SLOTS names for a node's port is that node's MYID.
    for (const [i, m] of members.entries()) {
      assert.ok((all[0] as Range[]).filter((r) => r.port === m.port).every((r) => r.id === ids[i]), `SLOTS names ${m.name} by its MYID`);
    }

    for (const [i, m] of members.entries()) {
      // CLUSTER SHARDS (RESP2: flat name/value lists): one shard per node, the same slots as SLOTS.
      const shards = (await m.ctl.call('CLUSTER', 'SHARDS')) as unknown[][];
      assert.equal(shards.length, 3);
      let inShards = 0;
      for (const sh of shards) {
        const slots = sh[sh.indexOf('slots') + 1] as number[];
        const node = (sh[sh.indexOf('nodes') + 1] as unknown[][])[0] as unknown[];
        const port = node[node.indexOf('port') + 1] as number;
        assert.equal(node[node.indexOf('role') + 1], 'master');
        for (let j = 0; j < slots.length; j += 2) {
          for (let x = slots[j] as number; x <= (slots[j + 1] as number); x++) assert.equal(map[x], port, `slot ${x} in SHARDS and SLOTS`);
          inShards += (slots[j + 1] as number) - (slots[j] as number) + 1;
        }
      }
      assert.equal(inShards, SLOTS);

      const nodes = (await m.ctl.call('CLUSTER', 'NODES')) as string;
      const lines = nodes.trim().split('\n');
      assert.equal(lines.length, 3, nodes);
      const parsed = lines.map((l) => l.split(' '));
      for (const f of parsed) {
        assert.match(f[0] as string, /^[0-9a-f]{40}$/);
        assert.ok((f[2] as string).split(',').includes('master'), `a master: ${f.join(' ')}`);
        assert.equal(f[7], 'connected');
      }
      const mine = parsed.filter((f) => (f[2] as string).split(',').includes('myself'));
      assert.equal(mine.length, 1, `one myself line on ${m.name}: ${nodes}`);
      assert.equal(mine[0]?.[0], ids[i], 'myself is the asked node');
      assert.match(mine[0]?.[1] as string, new RegExp(`^127\\.0\\.0\\.1:${m.port}@`));
      // NODES' slot ranges are the same as SLOTS'.
      let covered = 0;
      for (const f of parsed) {
        for (const s of f.slice(8)) {
          const [lo, hi] = s.split('-').map(Number) as [number, number | undefined];
          for (let x = lo; x <= (hi ?? lo); x++) {
            assert.equal(ids[members.findIndex((mm) => mm.port === map[x])], f[0], `slot ${x} in NODES and SLOTS`);
            covered++;
          }
        }
      }
      assert.equal(covered, SLOTS);

      const info = (await m.ctl.call('CLUSTER', 'INFO')) as string;
      assert.match(info, /^cluster_state:ok\r?$/m);
      assert.match(info, /^cluster_known_nodes:3\r?$/m);
      assert.match(info, /^cluster_slots_assigned:16384\r?$/m);
      const server = (await m.ctl.info('cluster')) as string;
      assert.match(server, /^cluster_enabled:1\r?$/m);

      assert.equal(await m.ctl.call('CLUSTER', 'KEYSLOT', 'foo'), 12182);
      assert.equal(await m.ctl.call('CLUSTER', 'KEYSLOT', '{user1000}.following'), 3443);
      assert.equal(await m.ctl.call('CLUSTER', 'KEYSLOT', 'c/{user1000}.followers'), 3443);
    }
    assert.equal(keySlot('foo'), 12182);
  });

  test('ioredis Cluster: strings, hashes, MSET/MGET with a hash tag, INCR, EXPIRE, lists; each cache key on exactly one node; durable keys on all', async () => {
    cl = clusterClient(members);
    const keys = Array.from({ length: 300 }, (_, i) => `c/s/${i}`);
    assert.deepEqual(await Promise.all(keys.map((k, i) => cl.set(k, `v${i}`))), keys.map(() => 'OK'));
    for (const [i, k] of keys.entries()) written.set(k, `v${i}`);
    assert.deepEqual(await Promise.all(keys.map((k) => cl.get(k))), keys.map((_, i) => `v${i}`));

    assert.equal(await cl.hset('c/h/1', 'f1', 'a', 'f2', 'b'), 2);
    assert.deepEqual(await cl.hgetall('c/h/1'), { f1: 'a', f2: 'b' });
    assert.equal(await cl.mset('c/{tag}.a', '1', 'c/{tag}.b', '2', 'c/{tag}.c', '3'), 'OK');
    assert.deepEqual(await cl.mget('c/{tag}.a', 'c/{tag}.b', 'c/{tag}.c', 'c/{tag}.none'), ['1', '2', '3', null]);
    assert.equal(await cl.incr('c/ctr'), 1);
    assert.equal(await cl.incr('c/ctr'), 2);
    assert.equal(await cl.incrby('c/ctr', 40), 42);
    assert.equal(await cl.set('c/exp', 'x'), 'OK');
    assert.equal(await cl.expire('c/exp', 100), 1);
    const ttl = await cl.ttl('c/exp');
    assert.ok(ttl >= 98 && ttl <= 100, `TTL ${ttl}`);
    assert.equal(await cl.rpush('c/list', 'a', 'b', 'c'), 3);
    assert.deepEqual(await cl.lrange('c/list', 0, -1), ['a', 'b', 'c']);

    // Each cache key is held by exactly one node, the primary of its slot.
    const map = slotMap(await slotsOf(members[0]?.ctl as Redis)) as Int32Array;
    const cacheKeys = [...keys, 'c/h/1', 'c/{tag}.a', 'c/{tag}.b', 'c/{tag}.c', 'c/ctr', 'c/exp', 'c/list'];
    const held = await Promise.all(members.map((m) => m.ctl.keys('c/*')));
    assert.equal(held.reduce((n, h) => n + h.length, 0), cacheKeys.length, `the nodes hold ${held.map((h) => h.length).join(' + ')} cache keys`);
    assert.deepEqual(held.flat().sort(), [...cacheKeys].sort(), 'every cache key once, on one node');
    for (const [i, m] of members.entries()) {
      for (const k of held[i] as string[]) assert.equal(map[keySlot(k)], m.port, `${k} is on ${m.name}, the primary of its slot`);
      assert.ok((held[i] as string[]).length > 50, `${m.name} holds a share of the keys (${(held[i] as string[]).length})`);
    }
    // COUNTKEYSINSLOT / GETKEYSINSLOT: on the owner only.
    const slot = keySlot('c/{tag}.a');
    const counts = await Promise.all(members.map((m) => m.ctl.call('CLUSTER', 'COUNTKEYSINSLOT', String(slot)) as Promise<number>));
    const inSlot = cacheKeys.filter((k) => keySlot(k) === slot).length;
    assert.ok(inSlot >= 3);
    assert.deepEqual(counts, members.map((m) => (m.port === map[slot] ? inSlot : 0)));
    const owner = members.find((m) => m.port === map[slot]) as Member;
    assert.deepEqual(((await owner.ctl.call('CLUSTER', 'GETKEYSINSLOT', String(slot), '100')) as string[]).sort(), cacheKeys.filter((k) => keySlot(k) === slot).sort());

    // Durable keys (no memory namespace) live in PostgreSQL: every node serves them.
    assert.equal(await cl.set('d/one', 'durable-1'), 'OK');
    assert.equal(await members[2]?.plain.set('d/two', 'durable-2'), 'OK');
    await eventually('every node reads both durable keys', async () => {
      const vals = await Promise.all(members.map((m) => m.plain.mget('d/one', 'd/two')));
      return vals.every((v) => v[0] === 'durable-1' && v[1] === 'durable-2');
    });
    for (const m of members) assert.deepEqual((await m.ctl.keys('d/*')).sort(), ['d/one', 'd/two'], `${m.name} lists the durable keys`);
  });

  test('a plain client on one node reaches every cache key (forwarded); MOVED for a cluster-aware connection; CROSSSLOT; MULTI runs on the owner, WATCH watched there', async () => {
    const [a, b] = members as [Member, Member, Member];
    const map = slotMap(await slotsOf(a.ctl)) as Int32Array;
    const keys = [...written.keys()];
    const notOnA = keys.filter((k) => map[keySlot(k)] !== a.port);
    assert.ok(notOnA.length > 100);
    const before = infoField((await a.ctl.info('cluster')) as string, 'cluster_forwarded_commands');
    // Plain ioredis on A: reads of every key, writes of some keys other nodes serve.
    const got = await answered(a, Promise.all(keys.map((k) => a.plain.get(k))), `${keys.length} pipelined GETs`);
    assert.deepEqual(got, keys.map((k) => written.get(k) ?? null));
    const rewrite = notOnA.slice(0, 40);
    for (const k of rewrite) written.delete(k); // unknown until acknowledged (later tests skip them if this one fails)
    const acks = await answered(a, Promise.all(rewrite.map((k) => a.plain.set(k, `p-${k}`))), `${rewrite.length} pipelined SETs`);
    assert.deepEqual(acks, rewrite.map(() => 'OK'));
    for (const k of rewrite) written.set(k, `p-${k}`);
    const after = infoField((await a.ctl.info('cluster')) as string, 'cluster_forwarded_commands');
    assert.ok(after - before >= notOnA.length + rewrite.length, `forwarded ${after - before} commands, at least ${notOnA.length + rewrite.length}`);
    // The writes landed on their owners, not on A.
    const onA = await a.ctl.keys('c/s/*');
    for (const k of rewrite) assert.ok(!onA.includes(k), `${k} is not held by A`);
    for (const k of rewrite) {
      const owner = members.find((m) => m.port === map[keySlot(k)]) as Member;
      assert.deepEqual(await owner.ctl.call('CLUSTER', 'GETKEYSINSLOT', String(keySlot(k)), '1000').then((r) => (r as string[]).includes(k)), true, `${k} on its owner`);
    }

    // redis-cli without -c and with -c, pointed at A only.
    const onB = keysOn(map, b.port, 'c/s/', 1)[0] as string;
    const onC = keysOn(map, members[2]?.port as number, 'c/cli/', 1)[0] as string;
    assert.equal((await redisCli(a.port, ['GET', onB])).trim(), written.get(onB));
    assert.equal((await redisCli(a.port, ['SET', onC, 'from-cli'])).trim(), 'OK');
    assert.equal(await members[2]?.plain.get(onC), 'from-cli', 'redis-cli wrote on the owner');
    assert.equal((await redisCli(a.port, ['-c', 'GET', onB])).trim(), written.get(onB));
    assert.equal((await redisCli(a.port, ['-c', 'SET', onC, 'from-cli-c'])).trim(), 'OK');
    assert.equal((await redisCli(a.port, ['-c', 'GET', onC])).trim(), 'from-cli-c');
    assert.equal((await redisCli(a.port, ['-c', 'HGETALL', 'c/h/1'])).trim().split('\n').join(','), 'f1,a,f2,b');

    // A connection that sent CLUSTER is cluster-aware: MOVED for a key another node serves, served for A's own.
    const aware = plainClient(a.port);
    const moved0 = infoField((await a.ctl.info('cluster')) as string, 'cluster_moved_replies');
    assert.match((await aware.call('CLUSTER', 'MYID')) as string, /^[0-9a-f]{40}$/);
    await assert.rejects(aware.get(onB), (err: Error) => {
      assert.equal(err.message, `MOVED ${keySlot(onB)} 127.0.0.1:${b.port}`);
      return true;
    });
    await assert.rejects(aware.set(onB, 'nope'), /MOVED \d+ 127\.0\.0\.1:\d+/);
    const ownKey = keysOn(map, a.port, 'c/s/', 1)[0] as string;
    assert.equal(await aware.get(ownKey), written.get(ownKey));
    assert.equal(infoField((await a.ctl.info('cluster')) as string, 'cluster_moved_replies') - moved0, 2);
    assert.equal(await b.plain.get(onB), written.get(onB), 'the refused SET did not write');

    // Multi-key commands over several slots: CROSSSLOT, from any client, writing nothing.
    let x = 'c/a';
    let y = 'c/b';
    assert.notEqual(keySlot(x), keySlot(y));
    await assert.rejects(a.plain.mset(x, '1', y, '2'), /CROSSSLOT Keys in request don't hash to the same slot/);
    await assert.rejects(aware.mget(x, y), /CROSSSLOT/);
    const cliOut = await redisCli(a.port, ['MSET', x, '1', y, '2']).catch((err: { stdout?: string }) => String(err.stdout ?? err));
    assert.match(cliOut, /CROSSSLOT/);
    assert.deepEqual([await cl.get(x), await cl.get(y)], [null, null], 'CROSSSLOT wrote nothing');
    // Same slot through a hash tag: fine even from A when another node serves it.
    x = 'c/{h1}x';
    y = 'c/{h1}y';
    assert.equal(await a.plain.mset(x, '1', y, '2'), 'OK');
    assert.deepEqual(await a.plain.mget(x, y), ['1', '2']);

    // A plain client's MULTI on a slot another node serves runs there, whole, at EXEC: not a
    // silent success (the owner holds the result), not a partial one.
    const tx = async (port: number, cmds: string[][], done: RegExp): Promise<string> => {
      const raw = await RawClient.open(port);
      try {
        raw.write(Buffer.concat([frame('MULTI'), ...cmds.map((c) => frame(...c)), frame('EXEC')]));
        return (await raw.until((buf) => done.test(buf.toString()), 8000)).toString();
      } finally {
        raw.close();
      }
    };
    const forwardedTx = await tx(a.port, [['SET', onB, 'in-tx'], ['APPEND', onB, '!'], ['GET', onB]], /\$6\r\nin-tx!\r\n$|(^|\r\n)-[^\r]*\r\n$/);
    assert.equal(forwardedTx, '+OK\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n*3\r\n+OK\r\n:6\r\n$6\r\nin-tx!\r\n');
    written.set(onB, 'in-tx!');
    assert.equal(await b.plain.get(onB), 'in-tx!', 'the transaction ran on the owner');
    assert.ok(!(await a.ctl.keys('c/s/*')).includes(onB), 'and not on the node it was sent to');
    // Keys of two slots in one transaction: CROSSSLOT while queuing, EXECABORT, nothing written.
    const cross = await tx(a.port, [['SET', onB, 'x'], ['SET', onC, 'y']], /EXECABORT[^\r]*\r\n$/);
    const lines = cross.split('\r\n');
    assert.deepEqual(lines.slice(0, 2), ['+OK', '+QUEUED'], cross);
    assert.match(lines[2] as string, /^-CROSSSLOT/, cross);
    assert.match(lines[3] as string, /^-EXECABORT/, cross);
    assert.deepEqual([await b.plain.get(onB), await members[2]?.plain.get(onC)], ['in-tx!', 'from-cli-c'], 'the aborted transaction wrote nothing');
    // WATCH of such a key is watched on its owner, where the transaction then runs: a change by
    // another client in between aborts it (EXEC answers nil).
    assert.equal(await a.plain.watch(onB), 'OK');
    assert.equal(await b.plain.set(onB, 'changed'), 'OK');
    assert.equal(await a.plain.multi().set(onB, 'watched').exec(), null, 'the transaction after a change of the WATCHed key is aborted');
    assert.equal(await b.plain.get(onB), 'changed');
    written.set(onB, 'changed');
    // On the owner the same transaction runs locally.
    const localTx = await tx(b.port, [['SET', onB, 'own'], ['GET', onB]], /\$3\r\nown\r\n$|(^|\r\n)-[^\r]*\r\n$/);
    assert.equal(localTx, '+OK\r\n+QUEUED\r\n+QUEUED\r\n*2\r\n+OK\r\n$3\r\nown\r\n');
    written.set(onB, 'own');
    assert.equal(await a.plain.get(onB), 'own');
    // ioredis's MULTI through the Cluster client goes to the owner of the slot.
    const viaCluster = await cl.multi().set('c/{tx}1', 'a').incr('c/{tx}n').get('c/{tx}1').exec();
    assert.deepEqual(viaCluster, [[null, 'OK'], [null, 1], [null, 'a']]);
  });

  test('pub/sub and keyspace events cross nodes', async () => {
    const [a, b, c] = members as [Member, Member, Member];
    const sub = plainClient(b.port);
    const got: string[] = [];
    sub.on('message', (ch: string, msg: string) => got.push(`${ch}:${msg}`));
    sub.on('pmessage', (_p: string, ch: string, msg: string) => got.push(`${ch}:${msg}`));
    await sub.subscribe('news');
    await sub.psubscribe('__keyspace@0__:c/ks/*');
    assert.equal(typeof (await a.plain.publish('news', 'from-a')), 'number');
    assert.equal(typeof (await c.plain.publish('news', 'from-c')), 'number');
    await eventually('both messages on B', () => got.includes('news:from-a') && got.includes('news:from-c'), 5000);
    assert.equal(got.filter((g) => g.startsWith('news:')).length, 2, 'each message once');

    // Keyspace events of cache keys: made on the owner, delivered to B's subscriber.
    for (const m of members) assert.equal(await m.ctl.config('SET', 'notify-keyspace-events', 'KEA'), 'OK');
    try {
      const map = slotMap(await slotsOf(a.ctl)) as Int32Array;
      const kA = keysOn(map, a.port, 'c/ks/', 1)[0] as string;
      const kC = keysOn(map, c.port, 'c/ks/', 1)[0] as string;
      assert.equal(await a.plain.set(kA, '1'), 'OK'); // served on A
      assert.equal(await a.plain.rpush(kC, 'x'), 1); // forwarded to C
      await eventually('keyspace events of keys on A and C reach B', () => got.includes(`__keyspace@0__:${kA}:set`) && got.includes(`__keyspace@0__:${kC}:rpush`), 5000);
    } finally {
      for (const m of members) await m.ctl.config('SET', 'notify-keyspace-events', '');
    }
    sub.disconnect();
  });

  test('SIGKILL of a node: the survivors take its slots, ioredis Cluster keeps writing, its keys are gone and the others kept', async (t) => {
    const leader = await leaderUrl(members[0]?.proc.url as string);
    // A node that does not commit the ring (killing the leader adds its session timeout and a leader hand-over).
    const victim = members.find((m) => m.proc.url !== leader) as Member;
    const survivors = members.filter((m) => m !== victim);
    const map = slotMap(await slotsOf(survivors[0]?.ctl as Redis)) as Int32Array;
    const victimKeys = [...written.keys()].filter((k) => map[keySlot(k)] === victim.port);
    const keptKeys = [...written.keys()].filter((k) => map[keySlot(k)] !== victim.port);
    assert.ok(victimKeys.length > 30 && keptKeys.length > 100);
    const probe = keysOn(map, victim.port, 'c/probe/', 1)[0] as string;
    const plain = plainsOfTest();
    assert.equal(await cl.set(probe, 'before'), 'OK');

    const t0 = performance.now();
    await victim.proc.kill();
    victim.dead = true;
    victim.ctl.disconnect();
    victim.plain.disconnect();
    // The first successful write, through the Cluster client, to a key of a slot the dead node served.
    let attempts = 0;
    let firstWriteMs = -1;
    while (performance.now() - t0 < 20_000) {
      attempts++;
      try {
        if ((await withTimeout(cl.set(probe, 'after'), 3000)) === 'OK') {
          firstWriteMs = Math.round(performance.now() - t0);
          break;
        }
      } catch {
        await sleep(50);
      }
    }
    t.diagnostic(`failover: first successful write to a moved slot ${firstWriteMs} ms after SIGKILL (${attempts} attempts)`);
    console.log(`cache-cluster: failover first write ${firstWriteMs} ms after SIGKILL (${attempts} attempts)`);
    assert.ok(firstWriteMs > 0, 'a write to a slot of the killed node succeeded within 20 s');
    const after = await converged(survivors, 'the two survivors share every slot', 15_000);
    const convergedMs = Math.round(performance.now() - t0);
    t.diagnostic(`failover: CLUSTER SLOTS lists only the survivors ${convergedMs} ms after SIGKILL`);
    assert.ok(convergedMs < 12_000, `the survivors took over in ${convergedMs} ms`);
    // Only the dead node's slots moved (rendezvous hashing).
    for (let s = 0; s < SLOTS; s++) if (map[s] !== victim.port) assert.equal(after[s], map[s], `slot ${s} stayed`);
    const share = shares(after);
    for (const m of survivors) assert.ok((share.get(m.port) ?? 0) > SLOTS * 0.35, `${m.name} owns ${share.get(m.port)} slots`);

    assert.equal(await cl.get(probe), 'after');
    assert.equal(await plain(survivors[0] as Member).get(probe), 'after');
    const lost = await answered(undefined, Promise.all(victimKeys.map((k) => cl.get(k))), `${victimKeys.length} GETs`);
    assert.deepEqual(lost, victimKeys.map(() => null), "the killed node's keys are misses");
    const kept = await answered(undefined, Promise.all(keptKeys.map((k) => cl.get(k))), `${keptKeys.length} GETs`);
    assert.deepEqual(kept, keptKeys.map((k) => written.get(k)), "the survivors' keys are kept");
    for (const k of victimKeys) written.set(k, null);
    // Writes to every slot work again, through the Cluster client and a plain client on each survivor.
    const fresh = Array.from({ length: 100 }, (_, i) => `c/after-kill/${i}`);
    assert.deepEqual(await answered(undefined, Promise.all(fresh.map((k) => cl.set(k, k))), `${fresh.length} SETs`), fresh.map(() => 'OK'));
    for (const m of survivors) assert.deepEqual(await plain(m).mget(...fresh.slice(0, 1)), [fresh[0]]);
    const s1 = survivors[1] as Member;
    assert.deepEqual(await answered(s1, Promise.all(fresh.map((k) => plain(s1).get(k))), `${fresh.length} pipelined GETs`), fresh);
  });

  test('a node that joins appears in CLUSTER SLOTS everywhere, takes its share, and ioredis Cluster writes reach it', async (t) => {
    const before = slotMap(await slotsOf(live()[0]?.ctl as Redis)) as Int32Array;
    const t0 = performance.now();
    const [p] = await procs.spawn(url, 1);
    const d = await member(`node${members.length}`, p as ServerProcess);
    members.push(d);
    const map = await converged(live(), 'the new node is in CLUSTER SLOTS on every node', 15_000);
    t.diagnostic(`join: in CLUSTER SLOTS everywhere ${Math.round(performance.now() - t0)} ms after spawn`);
    const n = shares(map).get(d.port) ?? 0;
    const share = SLOTS / live().length;
    assert.ok(n >= SLOTS * 0.1 && n <= SLOTS * 0.4, `the new node owns ${n} slots (${((100 * n) / SLOTS).toFixed(1)}%)`);
    assert.ok(Math.abs(n - share) < SLOTS * 0.08, `the new node owns ${n} slots, about 1/${live().length} (${Math.round(share)})`);
    // It took slots only (no slot moved between the others).
    for (let s = 0; s < SLOTS; s++) if (map[s] !== d.port) assert.equal(map[s], before[s], `slot ${s} stayed`);

    // Keys of the slots it took were handed over by their previous primaries, with their TTLs; the others stayed.
    const keys = [...written.keys()].filter((k) => written.get(k) !== null);
    const moved = keys.filter((k) => map[keySlot(k)] === d.port);
    assert.ok(moved.length > 10, `${moved.length} written keys in the new node's slots`);
    const want = JSON.stringify([...moved].sort());
    let held: string[] = [];
    await eventually('the new node holds exactly the written keys of its slots', async () => JSON.stringify((held = (await d.ctl.keys('c/s/*')).sort())) === want, 10_000).catch(
      (err: Error) => {
        throw new Error(`${err.message}: it holds ${held.length} of ${moved.length}`);
      },
    );
    t.diagnostic(`join: keys handed over ${Math.round(performance.now() - t0)} ms after spawn`);
    assert.deepEqual(await answered(undefined, Promise.all(moved.map((k) => settled(() => cl.get(k)))), `${moved.length} GETs`), moved.map((k) => written.get(k)));
    assert.deepEqual(await answered(d, Promise.all(moved.map((k) => d.plain.get(k))), `${moved.length} GETs on the new node`), moved.map((k) => written.get(k)));
    const stay = keys.filter((k) => map[keySlot(k)] !== d.port);
    assert.deepEqual(await answered(undefined, Promise.all(stay.map((k) => cl.get(k))), `${stay.length} GETs`), stay.map((k) => written.get(k)));
    for (const m of live()) {
      if (m === d) continue;
      const held = await m.ctl.keys('c/s/*');
      assert.deepEqual(held.filter((k) => map[keySlot(k)] === d.port), [], `${m.name} dropped the keys it handed over`);
    }

    const fresh = Array.from({ length: 200 }, (_, i) => `c/joined/${i}`);
    assert.deepEqual(await answered(undefined, Promise.all(fresh.map((k) => cl.set(k, `j${k}`))), `${fresh.length} SETs`), fresh.map(() => 'OK'));
    const onD = (await d.ctl.keys('c/joined/*')).sort();
    const wantOnD = fresh.filter((k) => map[keySlot(k)] === d.port).sort();
    assert.ok(wantOnD.length > 20);
    assert.deepEqual(onD, wantOnD, 'the writes of its slots are held by the new node');
    assert.deepEqual(await answered(d, Promise.all(fresh.map((k) => d.plain.get(k))), `${fresh.length} pipelined GETs`), fresh.map((k) => `j${k}`));
    // The Cluster client learnt the new node (its periodic refresh).
    await eventually('ioredis Cluster lists the new node', () => cl.nodes('master').some((n) => n.options.port === d.port), 5000);
  });

  test('a SIGSTOPped node whose slots moved never serves a value from before the stop after SIGCONT', async (t) => {
    const nodes = live();
    const leader = await leaderUrl(nodes[0]?.proc.url as string);
    const victim = nodes.find((m) => m.proc.url !== leader) as Member;
    const others = nodes.filter((m) => m !== victim);
    const map = slotMap(await slotsOf(victim.ctl)) as Int32Array;
    const keys = keysOn(map, victim.port, 'c/stop/', 40);
    const plain = plainsOfTest();
    const olds = Promise.all(keys.map((k) => plain(victim).set(k, `old-${k}`)));
    assert.deepEqual(await answered(victim, olds, `${keys.length} pipelined SETs`), keys.map(() => 'OK'));
    assert.deepEqual((await victim.ctl.keys('c/stop/*')).sort(), [...keys].sort(), 'held by the node about to stop');
    const reader = others[0] as Member;

    const t0 = performance.now();
    victim.proc.child.kill('SIGSTOP');
    let resumed = false;
    try {
      await converged(others, 'the others took the stopped node’s slots', 15_000);
      t.diagnostic(`SIGSTOP: slots moved ${Math.round(performance.now() - t0)} ms after the stop`);
      // New values for the same keys, on their new owners.
      const sets = Promise.all(keys.map((k) => settled(() => plain(reader).set(k, `new-${k}`))));
      assert.deepEqual(await answered(reader, sets, `${keys.length} pipelined SETs`), keys.map(() => 'OK'));
      const gets = Promise.all(keys.map((k) => plain(reader).get(k)));
      assert.deepEqual(await answered(reader, gets, `${keys.length} pipelined GETs`), keys.map((k) => `new-${k}`));
      const stoppedFor = performance.now() - t0;
      if (stoppedFor < 6000) await sleep(6000 - stoppedFor);
      victim.proc.child.kill('SIGCONT');
      resumed = true;
    } finally {
      if (!resumed) victim.proc.child.kill('SIGCONT');
    }

    // From now on: the new value, nil or an error, never the old value. Through the connection
    // opened before the stop and through a fresh one. (A read that takes longer than a forward's
    // 5 s limit counts as a hang.)
    const freshConn = plainClient(victim.port);
    const outcomes = new Map<string, number>();
    const stale: string[] = [];
    const count = (what: string): void => void outcomes.set(what, (outcomes.get(what) ?? 0) + 1);
    const tResume = performance.now();
    let rounds = 0;
    while (performance.now() - tResume < 5000) {
      rounds++;
      await Promise.all(
        [plain(victim), freshConn].flatMap((c) =>
          keys.map(async (k) => {
            try {
              const v = await withTimeout(c.get(k), 6000);
              if (v === `old-${k}`) stale.push(`${k} after ${Math.round(performance.now() - tResume)} ms`);
              count(v === null ? 'nil' : v === `new-${k}` ? 'new' : v.startsWith('old-') ? 'OLD' : `other:${v}`);
            } catch (err) {
              count(`error:${String((err as Error).message).split(' ')[0]}`);
            }
          }),
        ),
      );
      await sleep(20);
    }
    t.diagnostic(`after SIGCONT, ${rounds} rounds: ${JSON.stringify(Object.fromEntries(outcomes))}`);
    assert.deepEqual(stale, [], 'no read after SIGCONT returned a value from before the stop');
    const weird = [...outcomes.keys()].filter((o) => o.startsWith('other:') || (o.startsWith('error:') && !/^error:(CLUSTERDOWN|TRYAGAIN)$/.test(o)));
    assert.deepEqual(weird, [], 'only the new value, nil, CLUSTERDOWN or TRYAGAIN');

    // It comes back into the ring, gets its slots handed back with the values written meanwhile, and serves again.
    await converged(live(), 'the resumed node is back in the ring', 15_000);
    for (const k of keys) assert.equal(await settled(() => plain(victim).get(k)), `new-${k}`, `${k} on the resumed node`);
  });

  test('secure mode: forwarding links authenticate; an authenticated plain client reaches the other node, an unauthenticated one gets NOAUTH', async () => {
    const password = 'cache-cluster-admin-pw';
    const secureUrl = await (pg as PostgresServer).createDatabase();
    const tmps = [tempDir(), tempDir()];
    const spawned: ServerProcess[] = [];
    const auth = { username: 'admin', password };
    try {
      for (const tmp of tmps) {
        spawned.push(await spawnServer(['--backend', secureUrl, '--data-dir', tmp.dir], 20_000, { secure: true, env: { BEACON_ADMIN_PASSWORD: password } }));
      }
      const [pa, pb] = spawned as [ServerProcess, ServerProcess];
      const login = await http(`${pa.url}/v1/auth/token`, { method: 'POST', body: auth });
      assert.equal(login.status, 200, JSON.stringify(login.body));
      const ns = await http(`${pa.url}/v1/namespaces/c/`, { method: 'PUT', body: { storage: 'memory' }, headers: { authorization: `Bearer ${login.body.token}` } });
      assert.equal(ns.status, 201, JSON.stringify(ns.body));
      const ports = [await respPortOf(pa), await respPortOf(pb)] as const;
      const ctl = ports.map((port) => plainClient(port, auth));
      const plain = ports.map((port) => plainClient(port, auth));
      const pair = ports.map((port, i) => ({ port, ctl: ctl[i] as Redis })) as Member[];
      await eventually('both secure nodes have the namespace', async () => {
        const all = await Promise.all(spawned.map((p) => http(`${p.url}/v1/namespaces/c/`, { headers: { authorization: `Bearer ${login.body.token}` } })));
        return all.every((r) => r.status === 200 && r.body?.storage === 'memory');
      });
      const map = await converged(pair, 'two secure nodes share the slots', 15_000);
      const onB = keysOn(map, ports[1], 'c/sec/', 3);
      const onA = keysOn(map, ports[0], 'c/sec/', 1);
      assert.equal(await plain[1]?.set(onB[0] as string, 'secret-b'), 'OK'); // served on B
      assert.equal(await plain[0]?.get(onB[0] as string), 'secret-b', 'forwarded from A to B on an authenticated link');
      assert.equal(await plain[0]?.set(onB[1] as string, 'via-a'), 'OK');
      assert.equal(await plain[1]?.get(onB[1] as string), 'via-a');
      assert.deepEqual((await ctl[1]?.keys('c/sec/*'))?.sort(), [onB[0], onB[1]].sort(), 'the forwarded write is held by B');
      assert.deepEqual(await ctl[0]?.keys('c/sec/*'), [], 'and not by A');
      assert.equal(await plain[1]?.set(onA[0] as string, 'on-a'), 'OK');
      assert.equal(await plain[0]?.get(onA[0] as string), 'on-a');
      assert.ok(infoField((await ctl[0]?.info('cluster')) as string, 'cluster_forwarded_commands') >= 2);
      // redis-cli with credentials, forwarded too.
      assert.equal((await redisCli(ports[0], ['--user', 'admin', '--pass', password, '--no-auth-warning', 'GET', onB[0] as string])).trim(), 'secret-b');

      // Unauthenticated: NOAUTH, also for a key the node would forward, and naming itself a peer does not help.
      const anon = await RawClient.open(ports[0]);
      try {
        const ask = async (...argv: string[]): Promise<string> => {
          anon.clear();
          anon.write(frame(...argv));
          return (await anon.until((buf) => buf.includes('\r\n'))).toString();
        };
        assert.match(await ask('GET', onB[0] as string), /^-NOAUTH/);
        assert.match(await ask('SET', onB[2] as string, 'x'), /^-NOAUTH/);
        assert.match(await ask('CLIENT', 'SETNAME', 'beacon-peer:intruder'), /^-NOAUTH/);
        assert.match(await ask('AUTH', 'beacon:node', 'not-the-secret'), /^-WRONGPASS/);
        assert.match(await ask('GET', onB[0] as string), /^-NOAUTH/);
      } finally {
        anon.close();
      }
      assert.equal(await plain[1]?.get(onB[2] as string), null, 'the unauthenticated write did not happen');
    } finally {
      await Promise.all(spawned.map((p) => p.kill()));
      for (const tmp of tmps) tmp.cleanup();
    }
  });
});
