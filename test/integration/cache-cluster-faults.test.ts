/**
 * The cache tier across nodes with real processes, what the other cluster tests leave out
 * (issue 15): `redis-cli -c` through every data type's commands from a node that serves none of
 * the keys (it follows each MOVED), and a node SIGKILLed while a plain client's MULTI on its slot
 * is queued on another node: EXEC answers an error, nothing of the transaction is applied, and
 * the same transaction runs whole once the slot moved.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Redis } from 'ioredis';
import { keySlot } from '../../src/cache/index.js';
import { http, type ServerProcess } from '../helpers/node.js';
import { ClusterProcesses, eventually, startPostgres, type PostgresServer } from '../helpers/postgres.js';
import { redisCli, sleep } from './resp-helpers.js';
import { redisClient, slotPorts } from './cache-cluster-helpers.js';

interface Node {
  proc: ServerProcess;
  port: number;
  /** Sends CLUSTER: cluster-aware (gets MOVED). */
  ctl: Redis;
}

const clients: Redis[] = [];

const client = (port: number): Redis => redisClient(port, clients);

/** The first key `${prefix}${i}` whose slot `map` gives to `port` (or, with `not`, to another port). */
function keyOn(map: Int32Array, port: number, prefix: string, not = false): string {
  for (let i = 0; ; i++) if ((map[keySlot(`${prefix}${i}`)] === port) !== not) return `${prefix}${i}`;
}

/** redis-cli's answer, trimmed, lines joined by `|`. */
async function cli(port: number, ...args: string[]): Promise<string> {
  return (await redisCli(port, ['-c', ...args])).trim().split('\n').join('|');
}

describe('cache cluster faults and redis-cli -c', { timeout: 120_000 }, () => {
  let pg: PostgresServer | undefined;
  const procs = new ClusterProcesses();
  const nodes: Node[] = [];

  before(async () => {
    pg = await startPostgres();
    const url = await pg.createDatabase();
    for (const proc of await procs.spawn(url, 3)) {
      const port = Number(/beacon RESP listening on redis:\/\/[^\s]+:(\d+)/.exec(proc.stderr())?.[1]);
      nodes.push({ proc, port, ctl: client(port) });
    }
    const res = await http(`${nodes[0]?.proc.url}/v1/namespaces/c/`, { method: 'PUT', body: { storage: 'memory' } });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    await eventually('three nodes share the slots, with the namespace', async () => {
      const maps = await Promise.all(nodes.map((n) => slotPorts(n.ctl)));
      const ns = await Promise.all(nodes.map((n) => http(`${n.proc.url}/v1/namespaces/c/`)));
      return ns.every((r) => r.status === 200) && new Set(maps[0]).size === 3 && !maps[0]?.includes(-1) && maps.every((m) => m.every((p, i) => maps[0]?.[i] === p));
    }, 15_000);
  });

  after(async () => {
    for (const c of clients) c.disconnect();
    await procs.stop();
    await pg?.stop();
  });

  test('redis-cli -c on a node that serves none of the keys: strings, hashes, lists, sets, sorted sets, expiry and DEL follow MOVED', async () => {
    const [a] = nodes as [Node];
    const map = await slotPorts(a.ctl);
    const k = (p: string): string => keyOn(map, a.port, `c/cli/${p}/`, true);
    const [s, h, l, st, z] = [k('s'), k('h'), k('l'), k('set'), k('z')];
    assert.ok([s, h, l, st, z].every((x) => map[keySlot(x)] !== a.port), 'every key lives on another node');
    assert.equal(await cli(a.port, 'SET', s, '10'), 'OK');
    assert.equal(await cli(a.port, 'INCRBY', s, '5'), '15');
    assert.equal(await cli(a.port, 'APPEND', s, 'x'), '3');
    assert.equal(await cli(a.port, 'GET', s), '15x');
    assert.equal(await cli(a.port, 'HSET', h, 'f1', 'v1', 'f2', 'v2'), '2');
    assert.equal(await cli(a.port, 'HGET', h, 'f2'), 'v2');
    assert.equal(await cli(a.port, 'HLEN', h), '2');
    assert.equal(await cli(a.port, 'RPUSH', l, 'a', 'b', 'c'), '3');
    assert.equal(await cli(a.port, 'LPOP', l), 'a');
    assert.equal(await cli(a.port, 'LRANGE', l, '0', '-1'), 'b|c');
    assert.equal(await cli(a.port, 'SADD', st, 'm1', 'm2', 'm2'), '2');
    assert.equal(await cli(a.port, 'SISMEMBER', st, 'm2'), '1');
    assert.equal(await cli(a.port, 'SCARD', st), '2');
    assert.equal(await cli(a.port, 'ZADD', z, '2', 'two', '1', 'one'), '2');
    assert.equal(await cli(a.port, 'ZRANGE', z, '0', '-1', 'WITHSCORES'), 'one|1|two|2');
    assert.equal(await cli(a.port, 'ZINCRBY', z, '5', 'one'), '6');
    assert.equal(await cli(a.port, 'EXPIRE', s, '100'), '1');
    const ttl = Number(await cli(a.port, 'TTL', s));
    assert.ok(ttl > 90 && ttl <= 100, `TTL ${ttl}`);
    assert.equal(await cli(a.port, 'TYPE', z), 'zset');
    assert.equal(await cli(a.port, 'DEL', h), '1');
    assert.equal(await cli(a.port, 'EXISTS', h), '0');
    // Each key is held by its slot's primary only.
    for (const key of [s, l, st, z]) {
      const holders = await Promise.all(nodes.map(async (n) => (await n.ctl.keys(key)).length === 1));
      assert.deepEqual(holders, nodes.map((n) => n.port === map[keySlot(key)]), `${key} is held by its primary only`);
    }
    // Multi-key commands on one slot through a hash tag, CROSSSLOT without.
    assert.equal(await cli(a.port, 'MSET', 'c/{cli}a', '1', 'c/{cli}b', '2'), 'OK');
    assert.equal(await cli(a.port, 'MGET', 'c/{cli}a', 'c/{cli}b'), '1|2');
    assert.match(await cli(a.port, 'MSET', s, '1', l, '2'), /CROSSSLOT/);
  });

  test('a node SIGKILLed while a plain client\'s MULTI on its slot is queued elsewhere: EXEC fails, nothing is applied, the retried transaction runs whole', async (t) => {
    const [a, b] = nodes as [Node, Node];
    const map = await slotPorts(a.ctl);
    // Two keys of one slot (a hash tag) that node b serves; the client is on node a.
    let tag = '';
    for (let i = 0; tag === ''; i++) if (map[keySlot(`{m${i}}`)] === b.port) tag = `{m${i}}`;
    const [x, y] = [`c/${tag}x`, `c/${tag}y`];
    const plain = client(a.port);
    assert.equal(await plain.set(x, 'before'), 'OK'); // forwarded to b
    // MULTI and the commands are queued on node a (it forwards the whole transaction at EXEC).
    assert.equal(await plain.call('MULTI'), 'OK');
    assert.equal(await plain.call('SET', x, 'in-tx'), 'QUEUED');
    assert.equal(await plain.call('INCR', y), 'QUEUED');
    b.proc.child.kill('SIGKILL');
    await b.proc.kill();
    const t0 = performance.now();
    const exec = await plain.call('EXEC').then(
      (r) => `EXEC answered ${JSON.stringify(r)}`,
      (err: Error) => err.message,
    );
    assert.match(exec, /^(TRYAGAIN|CLUSTERDOWN|EXECABORT)/, 'EXEC fails with a retryable error, not a partial result');
    // Once the slot moved to a survivor: none of the transaction was applied (the killed node's keys are gone with it).
    const survivors = nodes.filter((n) => n !== b);
    await eventually('the survivors took the slot', async () => {
      const maps = await Promise.all(survivors.map((n) => slotPorts(n.ctl)));
      return maps.every((m) => !m.includes(b.port) && !m.includes(-1));
    }, 15_000);
    t.diagnostic(`slot moved ${Math.round(performance.now() - t0)} ms after the kill`);
    let got: [string | null, string | null] = [null, null];
    for (let i = 0; ; i++) {
      try {
        got = [await plain.get(x), await plain.get(y)];
        break;
      } catch (err) {
        if (!/^(TRYAGAIN|CLUSTERDOWN)/.test((err as Error).message) || i > 100) throw err;
        await sleep(50);
      }
    }
    assert.deepEqual(got, [null, null], 'nothing of the failed transaction, and the old value went with the node (factor 1)');
    // The same transaction, retried, runs whole on the new owner.
    let res: [Error | null, unknown][] | null = null;
    for (let i = 0; res === null; i++) {
      try {
        res = await plain.multi().set(x, 'in-tx').incr(y).exec();
      } catch (err) {
        if (!/TRYAGAIN|CLUSTERDOWN|EXECABORT/.test((err as Error).message) || i > 100) throw err;
        await sleep(50);
      }
    }
    assert.deepEqual(res, [[null, 'OK'], [null, 1]]);
    assert.deepEqual([await plain.get(x), await plain.get(y)], ['in-tx', '1']);
  });
});
