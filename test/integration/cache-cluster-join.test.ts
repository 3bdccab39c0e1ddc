/**
 * Nodes joining a cache cluster under load (issue 15: "start a fourth node: it takes its share
 * of slots"; seed 002, "new node joins and receives keys"): two `beacon serve --dev` nodes on one
 * PostgreSQL, a memory namespace with replication factor 1, writers setting and deleting keys
 * through plain clients on both nodes (forwarded to the owners) while a third and then a fourth
 * node join. Each previous primary hands its moved slots over to the new primary, which answers
 * TRYAGAIN until the keys arrived: afterwards every key reads what its last acknowledged command
 * left (no write lost, no deleted key back), every node holds only keys of its own slots, and the
 * keys of the moved slots live on the new nodes. Then a node stopped with SIGTERM leaves the ring
 * before it exits and hands its slots over the same way: no key is lost.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Redis } from 'ioredis';
import { Cluster } from 'ioredis';
import { keySlot } from '../../src/cache/index.js';
import { http, type ServerProcess } from '../helpers/node.js';
import { ClusterProcesses, eventually, startPostgres, type PostgresServer } from '../helpers/postgres.js';
import { sleep } from './resp-helpers.js';
import { redisClient, respPortOf, slotPorts } from './cache-cluster-helpers.js';

const clients: { disconnect(): void }[] = [];

const plainClient = (port: number): Redis => redisClient(port, clients);

/** Runs `op` until it answers without TRYAGAIN or CLUSTERDOWN (a slot moving), at most 20 s. */
async function settled<T>(op: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    try {
      return await op();
    } catch (err) {
      if (!/^(TRYAGAIN|CLUSTERDOWN)/.test((err as Error).message) || Date.now() > deadline) throw err;
      await sleep(20);
    }
  }
}

describe('nodes joining a cache cluster under load', { timeout: 180_000 }, () => {
  let pg: PostgresServer | undefined;
  let url = '';
  const procs = new ClusterProcesses();
  const ports: number[] = [];
  const ctl: Redis[] = [];
  const KEYS = 400;
  /** Keys set once before the joins, never written again, with a TTL of an hour. */
  const still = Array.from({ length: KEYS }, (_, i) => `c/still/${i}`);

  before(async () => {
    pg = await startPostgres();
    url = await pg.createDatabase();
    for (const p of await procs.spawn(url, 2)) {
      const port = await respPortOf(p);
      ports.push(port);
      ctl.push(plainClient(port));
    }
    const first = procs.procs[0] as ServerProcess;
    const res = await http(`${first.url}/v1/namespaces/c/`, { method: 'PUT', body: { storage: 'memory' } });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    await eventually('both nodes share the slots, with the namespace', async () => {
      const maps = await Promise.all(ctl.map((c) => slotPorts(c)));
      const ns = await Promise.all(procs.procs.map((p) => http(`${p.url}/v1/namespaces/c/`)));
      return ns.every((r) => r.status === 200) && new Set(maps[0]).size === 2 && maps[0]?.every((p, i) => maps[1]?.[i] === p) === true;
    }, 15_000);
  });

  after(async () => {
    for (const c of clients) c.disconnect();
    await procs.stop();
    await pg?.stop();
  });

  test('two nodes join while keys are set and deleted: no acknowledged write is lost, no deleted key comes back, and the moved keys live on the new nodes', async (t) => {
    const WRITERS = 8;
    /** What each key holds after its last acknowledged command (null: deleted or never set). */
    const last = new Map<string, string | null>();
    const keys = Array.from({ length: KEYS }, (_, i) => `c/j/${i}`);
    for (const k of keys) last.set(k, null);
    // Preload: every key has a value before the first join; the `still` keys are never written again.
    const loader = plainClient(ports[0] as number);
    for (const k of keys) {
      assert.equal(await settled(() => loader.set(k, `v0-${k}`)), 'OK');
      last.set(k, `v0-${k}`);
    }
    for (const k of still) assert.equal(await settled(() => loader.set(k, `s-${k}`, 'EX', 3600)), 'OK');
    let stop = false;
    let ops = 0;
    let retries = 0;
    const writers = Array.from({ length: WRITERS }, async (_, w) => {
      // Alternating entry nodes: most commands are forwarded to their owner.
      const conns = ports.map((p) => plainClient(p));
      const mine = keys.filter((_k, i) => i % WRITERS === w);
      for (let round = 1; !stop; round++) {
        for (const k of mine) {
          if (stop) break;
          const c = conns[(round + ops) % conns.length] as Redis;
          const del = (round + k.length) % 5 === 0;
          // Sequential per key: a command retried after TRYAGAIN is the same idempotent one, so the last acknowledged state is known.
          for (;;) {
            try {
              if (del) await c.del(k);
              else await c.set(k, `v${round}-${k}`);
              break;
            } catch (err) {
              if (!/^(TRYAGAIN|CLUSTERDOWN)/.test((err as Error).message)) throw err;
              retries++;
              await sleep(20);
            }
          }
          last.set(k, del ? null : `v${round}-${k}`);
          ops++;
        }
      }
    });
    try {
      await eventually('writes are flowing', () => ops > 500, 20_000);
      for (let j = 0; j < 2; j++) {
        const before = ops;
        const [p] = await procs.spawn(url, 1);
        const port = await respPortOf(p as ServerProcess);
        ports.push(port);
        ctl.push(plainClient(port));
        await eventually(`node ${ports.length} is in CLUSTER SLOTS everywhere`, async () => {
          const maps = await Promise.all(ctl.map((c) => slotPorts(c)));
          return maps.every((m) => m.includes(port) && m.every((x, i) => maps[0]?.[i] === x));
        }, 20_000);
        await eventually('writes go on after the join', () => ops > before + 500, 30_000);
      }
    } finally {
      stop = true;
      await Promise.all(writers);
    }
    t.diagnostic(`${ops} commands acknowledged during two joins; ${retries} TRYAGAIN/CLUSTERDOWN retried`);

    const map = await slotPorts(ctl[0] as Redis);
    const cluster = new Cluster(ports.map((port) => ({ host: '127.0.0.1', port })), { redisOptions: { commandTimeout: 8000 } });
    cluster.on('error', () => undefined);
    clients.push(cluster);
    const got = await Promise.all(keys.map((k) => settled(() => cluster.get(k))));
    const wrong = keys.filter((k, i) => got[i] !== last.get(k)).map((k) => `${k}: ${String(got[keys.indexOf(k)])} (wanted ${String(last.get(k))})`);
    assert.deepEqual(wrong, [], 'every key reads what its last acknowledged command left');
    // The keys written only before the joins were handed over with their values and TTLs.
    const stills = await Promise.all(still.map((k) => settled(() => cluster.get(k))));
    assert.deepEqual(still.filter((k, i) => stills[i] !== `s-${k}`), [], 'every key written before the joins is still there');
    const ttls = await Promise.all(still.map((k) => settled(() => cluster.ttl(k))));
    assert.ok(ttls.every((x) => x > 3000 && x <= 3600), `the TTLs moved with the keys: ${ttls.filter((x) => !(x > 3000 && x <= 3600)).slice(0, 5).join(', ')}`);
    const movedStill = still.filter((k) => map[keySlot(k)] === ports[2] || map[keySlot(k)] === ports[3]);
    assert.ok(movedStill.length > KEYS / 5, `${movedStill.length} of them moved to the new nodes`);
    // Each node holds the live keys of its own slots, and nothing else.
    for (const [i, c] of ctl.entries()) {
      const held = (await c.keys('c/j/*')).sort();
      const want = keys.filter((k) => last.get(k) !== null && map[keySlot(k)] === ports[i]).sort();
      assert.deepEqual(held, want, `the node on port ${ports[i]} holds exactly the keys of its slots`);
    }
    // The old primaries count what they handed over (INFO cluster, also beacon_cache_cluster_handover_keys_total).
    const sent = await Promise.all(ctl.slice(0, 2).map(async (c) => Number(/cluster_handover_keys_sent:(\d+)/.exec((await c.info('cluster')) as string)?.[1])));
    assert.ok(sent.every((n) => Number.isInteger(n)) && (sent[0] as number) + (sent[1] as number) >= movedStill.length, `keys handed over: ${sent.join(', ')}`);
    const metrics = await http(`${procs.procs[0]?.url}/metrics`);
    assert.match(String(metrics.body), /^beacon_cache_cluster_handover_keys_total \d+/m);
    const onNew = (await ctl[2]?.dbsize() ?? 0) + (await ctl[3]?.dbsize() ?? 0);
    assert.ok(onNew > KEYS / 5, `the new nodes hold ${onNew} keys`);
  });

  test('a node stopped with SIGTERM leaves the ring first and hands its slots over: no key is lost', async (t) => {
    const victim = procs.procs[3] as ServerProcess;
    const port = ports[3] as number;
    const held = await ctl[3]?.dbsize();
    assert.ok((held ?? 0) > 10, `the node to stop holds ${held} keys`);
    const t0 = performance.now();
    await victim.stop(15_000);
    t.diagnostic(`SIGTERM: the node exited ${Math.round(performance.now() - t0)} ms after the signal`);
    assert.equal(victim.child.signalCode, null, 'it exited by itself, not killed');
    const rest = ctl.slice(0, 3);
    await eventually('the others no longer list the stopped node', async () => {
      const maps = await Promise.all(rest.map((c) => slotPorts(c)));
      return maps.every((m) => !m.includes(port) && !m.includes(-1));
    }, 15_000);
    const cluster = new Cluster(ports.slice(0, 3).map((p) => ({ host: '127.0.0.1', port: p })), { redisOptions: { commandTimeout: 8000 } });
    cluster.on('error', () => undefined);
    clients.push(cluster);
    const got = await Promise.all(still.map((k) => settled(() => cluster.get(k))));
    assert.deepEqual(still.filter((k, i) => got[i] !== `s-${k}`), [], 'every key is still there, on the nodes that took the slots');
  });
});
