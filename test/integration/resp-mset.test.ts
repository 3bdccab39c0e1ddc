/**
 * MSET/MSETNX as one write, against a real redis-server on the same scripts: keyspace
 * notifications per key in Redis's order (a key's `new`, then its `set`; a key given twice),
 * `maxmemory` with `noeviction` checked once before the command (a MSET that crosses the limit
 * is applied whole, the next is refused whole: never half-written), keys of two memory
 * namespaces with different policies in one MSET, and a MSET of durable keys as one revision.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import { http } from '../helpers/node.js';
import { sleep, startBesideRedis, type SideBySide, type startRespNode } from './resp-helpers.js';

/** The keyspace events a server publishes while `run` runs (`event key`, in order). */
async function eventsDuring(port: number, c: Redis, run: () => Promise<unknown>, last: string): Promise<string[]> {
  // A (all classes) leaves out n (new keys): asked for explicitly.
  await c.config('SET', 'notify-keyspace-events', 'KEAn');
  const sub = new Redis({ port, host: '127.0.0.1', maxRetriesPerRequest: 1 });
  try {
    const got: string[] = [];
    sub.on('pmessage', (_p: string, ch: string, key: string) => got.push(`${ch.slice('__keyevent@0__:'.length)} ${key}`));
    await sub.psubscribe('__keyevent@0__:*');
    await run();
    // A marker write after the script: once its event is in, every earlier one is.
    await c.set(last, '1');
    const deadline = Date.now() + 10_000;
    while (!got.includes(`set ${last}`) && Date.now() < deadline) await sleep(20);
    return got.filter((g) => g !== `new ${last}` && g !== `set ${last}`);
  } finally {
    sub.disconnect();
    await c.config('SET', 'notify-keyspace-events', '');
  }
}

/** `used_memory` from INFO memory. */
async function usedMemory(c: Redis): Promise<number> {
  const m = /used_memory:(\d+)/.exec(await c.info('memory'));
  assert.ok(m !== null, 'INFO memory shows used_memory');
  return Number(m[1]);
}

/** The reply of `MSET`, or its error text. */
async function mset(c: Redis, args: string[]): Promise<string> {
  try {
    return String(await c.call('MSET', ...args));
  } catch (err) {
    return `ERR! ${(err as Error).message}`;
  }
}

describe('MSET as one write, against redis-server', () => {
  let node: Awaited<ReturnType<typeof startRespNode>>;
  let redis: { child: ChildProcess; port: number };
  let io: Redis;
  let rd: Redis;

  let pair: SideBySide;

  before(async () => {
    // The whole keyspace a cache; ttl: a memory namespace with a default TTL; app/ durable.
    pair = await startBesideRedis({ '': { storage: 'memory' }, 'ttl:': { storage: 'memory', defaultTtl: 3600 }, 'app/': { storage: 'durable' } });
    ({ node, redis, io, rd } = pair);
  });
  after(async () => {
    await pair.stop();
  });

  test("keyspace notifications: each key's new then set, in argument order, a repeated key once new", async () => {
    const script = async (c: Redis): Promise<void> => {
      await c.set('ev:b', 'old');
      await c.mset('ev:a', '1', 'ev:b', '2', 'ev:a', '3', 'ev:c', '4');
      await c.msetnx('ev:d', '1', 'ev:e', '2');
      await c.msetnx('ev:e', '1', 'ev:f', '2'); // ev:e exists: nothing set, no event
    };
    const want = await eventsDuring(redis.port, rd, () => script(rd), 'ev:end');
    const got = await eventsDuring(node.respPort, io, () => script(io), 'ev:end');
    assert.deepEqual(got, want);
    // The shape redis-server gave, spelled out (so the test says what it checks).
    assert.deepEqual(want, ['new ev:b', 'set ev:b', 'new ev:a', 'set ev:a', 'set ev:b', 'set ev:a', 'new ev:c', 'set ev:c', 'new ev:d', 'set ev:d', 'new ev:e', 'set ev:e']);
    assert.deepEqual(await io.mget('ev:a', 'ev:b', 'ev:c', 'ev:f'), ['3', '2', '4', null]);
  });

  test('maxmemory with noeviction: a MSET is checked once, before it runs, then applied whole or refused whole', async () => {
    const value = 'v'.repeat(4000);
    const first: string[] = [];
    const second: string[] = [];
    for (let i = 0; i < 10; i++) first.push(`oom:a${i}`, value);
    for (let i = 0; i < 10; i++) second.push(`oom:b${i}`, value);
    const keysOf = (args: string[]): string[] => args.filter((_, i) => i % 2 === 0);
    // Over the limit before the command: redis-server and Beacon refuse it with the same error
    // and write none of its keys.
    for (const c of [rd, io]) {
      await c.config('SET', 'maxmemory-policy', 'noeviction');
      await c.config('SET', 'maxmemory', '1');
      try {
        assert.equal(await mset(c, second), "ERR! OOM command not allowed when used memory > 'maxmemory'.");
        assert.equal(await c.exists(...keysOf(second)), 0);
      } finally {
        await c.config('SET', 'maxmemory', '0');
      }
    }
    // Below the limit when it starts, 40 KB over it once done: Redis checks memory once, before
    // a command (performEvictions in processCommand), so the MSET is applied whole and the
    // next one refused whole. (redis-server also counts the request's own query buffer, so the
    // same margin cannot be set up on it; Beacon counts stored entries only.)
    await io.config('SET', 'maxmemory', String((await usedMemory(io)) + 16_000));
    try {
      assert.equal(await mset(io, first), 'OK');
      assert.equal(await io.exists(...keysOf(first)), 10);
      assert.ok((await usedMemory(io)) > Number(((await io.config('GET', 'maxmemory')) as string[])[1]), 'the MSET took memory over the limit');
      assert.equal(await mset(io, second), "ERR! OOM command not allowed when used memory > 'maxmemory'.");
      assert.equal(await io.exists(...keysOf(second)), 0);
    } finally {
      await io.config('SET', 'maxmemory', '0');
    }
  });

  test('keys of two memory namespaces with different policies in one MSET; durable keys in one revision; both kinds refused', async () => {
    assert.equal(await io.mset('plain:1', 'a', 'ttl:1', 'b', 'plain:2', 'c'), 'OK');
    assert.equal(await io.ttl('plain:1'), -1);
    const ttl = await io.ttl('ttl:1');
    assert.ok(ttl > 3500 && ttl <= 3600, `ttl:1 has its namespace's default TTL (got ${ttl})`);
    assert.deepEqual(await io.mget('plain:1', 'ttl:1', 'plain:2'), ['a', 'b', 'c']);

    assert.equal(await io.mset('app/x', '1', 'app/y', '2'), 'OK');
    const x = (await http(`${node.url}/v1/kv/app/x`)).body.kv as { modRevision: number; value: string };
    const y = (await http(`${node.url}/v1/kv/app/y`)).body.kv as { modRevision: number; value: string };
    assert.equal(x.value, '1');
    assert.equal(y.value, '2');
    assert.equal(x.modRevision, y.modRevision, 'one MSET of durable keys is one revision');

    await assert.rejects(io.mset('plain:3', '1', 'app/z', '1'), /CROSSKIND/);
    assert.equal(await io.exists('plain:3'), 0);
    assert.equal((await http(`${node.url}/v1/kv/app/z`)).status, 404);
  });
});
