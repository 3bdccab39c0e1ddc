/**
 * The blocking pops (BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP, BZPOPMIN, BZPOPMAX, BZMPOP) over
 * real sockets: a client parked on an empty key is served by another client's write, first come
 * first served; a timeout answers nil; a MULTI never blocks; errors and reply shapes as
 * redis-server's; a served pop reaches the AOF as the pop it amounts to.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import { createClient } from 'redis';
import { acrossRestart, sleep, startBesideRedis, type SideBySide } from './resp-helpers.js';

/** A reply or an error as one comparable value. */
async function answer(c: Redis, cmd: (string | number)[]): Promise<unknown> {
  try {
    return await c.call(String(cmd[0]), ...cmd.slice(1).map(String));
  } catch (err) {
    return `ERR! ${(err as Error).message}`;
  }
}

/** `blocked_clients` from INFO. */
async function blockedClients(c: Redis): Promise<number> {
  const m = /blocked_clients:(\d+)/.exec(await c.info('clients'));
  return Number(m?.[1]);
}

/** Waits until the server reports `n` blocked clients (a client's command reached it and parked). */
async function untilBlocked(c: Redis, n: number): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if ((await blockedClients(c)) === n) return;
    await sleep(10);
  }
  assert.fail(`blocked_clients never reached ${n}`);
}

describe('blocking pops', () => {
  let pair: SideBySide;
  let io: Redis;
  let rd: Redis;
  const clients: Redis[] = [];
  const client = (): Redis => {
    const c = new Redis({ port: pair.node.respPort, host: '127.0.0.1', maxRetriesPerRequest: 1 });
    clients.push(c);
    return c;
  };

  before(async () => {
    pair = await startBesideRedis({ '': { storage: 'memory' }, 'app/': { storage: 'durable' } });
    ({ io, rd } = pair);
  });
  after(async () => {
    for (const c of clients) c.disconnect();
    await pair.stop();
  });

  test('BLPOP parks on empty lists and is served by a later RPUSH, first come first served', async () => {
    const a = client();
    const b = client();
    const first = a.blpop('q:1', 'q:2', 0);
    await untilBlocked(io, 1);
    const second = b.blpop('q:2', 0);
    await untilBlocked(io, 2);
    // One push of two elements serves both, in the order they blocked.
    assert.equal(await io.rpush('q:2', 'x', 'y'), 2);
    assert.deepEqual(await first, ['q:2', 'x']);
    assert.deepEqual(await second, ['q:2', 'y']);
    assert.equal(await io.exists('q:2'), 0, 'both elements went to the waiting clients');
    assert.equal(await blockedClients(io), 0);
    // Data present: served at once, from the first non-empty key in argument order.
    await io.rpush('q:3', 'c');
    await io.rpush('q:4', 'd');
    assert.deepEqual(await io.blpop('q:4', 'q:3', 1), ['q:4', 'd']);
    assert.deepEqual(await io.brpop('q:9', 'q:3', 1), ['q:3', 'c']);
  });

  test('a timeout answers nil and a disconnected waiter is forgotten (the element stays)', async () => {
    const t0 = Date.now();
    assert.equal(await io.blpop('q:none', 0.2), null);
    assert.ok(Date.now() - t0 >= 190, `answered after ${Date.now() - t0} ms`);
    assert.equal(await io.bzpopmin('z:none', 0.1), null);
    assert.equal(await io.call('BLMOVE', 'q:none', 'q:dst', 'LEFT', 'RIGHT', '0.1'), null);
    const gone = client();
    void gone.blpop('q:left', 0).catch(() => undefined);
    await untilBlocked(io, 1);
    gone.disconnect();
    await untilBlocked(io, 0);
    await io.rpush('q:left', 'kept');
    assert.deepEqual(await io.lrange('q:left', 0, -1), ['kept']);
  });

  test('commands pipelined behind a blocked one wait for it', async () => {
    const a = client();
    const p = a.pipeline().blpop('q:pipe', 0).set('after', 'yes').get('after').exec();
    await untilBlocked(io, 1);
    assert.equal(await io.get('after'), null, 'the SET behind the BLPOP has not run');
    await io.lpush('q:pipe', 'go');
    const out = (await p) ?? [];
    assert.deepEqual(
      out.map(([, v]) => v),
      [['q:pipe', 'go'], 'OK', 'yes'],
    );
  });

  test('BLMOVE and BRPOPLPUSH move when the source fills, and the move wakes a client blocked on the destination', async () => {
    const mover = client();
    const reader = client();
    const moved = mover.call('BLMOVE', 'm:src', 'm:dst', 'RIGHT', 'LEFT', '0');
    await untilBlocked(io, 1);
    const read = reader.blpop('m:dst', 0);
    await untilBlocked(io, 2);
    await io.lpush('m:src', 'v');
    assert.equal(await moved, 'v');
    assert.deepEqual(await read, ['m:dst', 'v']);
    assert.equal(await io.exists('m:src', 'm:dst'), 0);
    const legacy = mover.brpoplpush('m:src', 'm:dst', 0);
    await untilBlocked(io, 1);
    await io.rpush('m:src', 'a', 'b');
    assert.equal(await legacy, 'b');
    assert.deepEqual(await io.lrange('m:dst', 0, -1), ['b']);
  });

  test('BZPOPMIN/BZPOPMAX/BZMPOP/BLMPOP are served by ZADD and RPUSH; RESP3 gets the score as a double', async () => {
    const a = client();
    const min = a.bzpopmin('z:1', 0);
    await untilBlocked(io, 1);
    await io.zadd('z:1', 2, 'two', 1, 'one');
    assert.deepEqual(await min, ['z:1', 'one', '1']);
    assert.deepEqual(await io.bzpopmax('z:1', 0), ['z:1', 'two', '2']);
    const mp = a.call('BZMPOP', '0', '2', 'z:2', 'z:3', 'MAX', 'COUNT', '5');
    await untilBlocked(io, 1);
    await io.zadd('z:3', 1, 'a', 3, 'c');
    assert.deepEqual(await mp, ['z:3', [['c', '3'], ['a', '1']]]);
    const lp = a.call('BLMPOP', '0', '1', 'l:1', 'LEFT', 'COUNT', '2');
    await untilBlocked(io, 1);
    await io.rpush('l:1', 'p', 'q', 'r');
    assert.deepEqual(await lp, ['l:1', ['p', 'q']]);
    assert.deepEqual(await io.lrange('l:1', 0, -1), ['r']);

    const r3 = createClient({ socket: { port: pair.node.respPort, host: '127.0.0.1' }, RESP: 3 });
    await r3.connect();
    try {
      const w = r3.sendCommand(['BZPOPMIN', 'z:4', '0']);
      await untilBlocked(io, 1);
      await io.zadd('z:4', 1.5, 'm');
      assert.deepEqual(await w, ['z:4', 'm', 1.5]);
    } finally {
      r3.destroy();
    }
  });

  test('CLIENT UNBLOCK answers a waiting client with nil (TIMEOUT) or -UNBLOCKED (ERROR); 0 for a client not blocked', async () => {
    const a = client();
    const id = Number(await a.client('ID'));
    const w = a.blpop('u:1', 0);
    await untilBlocked(io, 1);
    const line = String(await io.client('LIST')).split('\n').find((l) => l.startsWith(`id=${id} `)) ?? '';
    assert.match(line, / flags=b .* cmd=blpop /, 'CLIENT LIST shows the waiting client with flag b');
    assert.equal(await io.call('CLIENT', 'UNBLOCK', String(id)), 1);
    assert.equal(await w, null);
    assert.equal(await io.call('CLIENT', 'UNBLOCK', String(id)), 0);
    const e = a.bzpopmin('u:2', 0);
    await untilBlocked(io, 1);
    assert.equal(await io.call('CLIENT', 'UNBLOCK', String(id), 'ERROR'), 1);
    await assert.rejects(e, /^ReplyError: UNBLOCKED client unblocked via CLIENT UNBLOCK/);
    await assert.rejects(io.call('CLIENT', 'UNBLOCK', String(id), 'LATER'), /reason should be TIMEOUT or ERROR/);
    assert.equal(await blockedClients(io), 0);
  });

  test('a SET on a key a client BLPOPs leaves it blocked until the key is a list again', async () => {
    const a = client();
    const w = a.blpop('t:1', 0);
    await untilBlocked(io, 1);
    await io.set('t:1', 'a string');
    await sleep(50);
    assert.equal(await blockedClients(io), 1);
    await io.del('t:1');
    await io.rpush('t:1', 'now');
    assert.deepEqual(await w, ['t:1', 'now']);
  });

  test('errors, MULTI and reply shapes as redis-server', async () => {
    const script: (string | number)[][] = [
      ['del', 'e:l', 'e:s', 'e:z'],
      ['blpop', 'e:l', -1],
      ['blpop', 'e:l', 'abc'],
      ['brpop', 'e:l'],
      ['blmove', 'e:l', 'e:d', 'UP', 'LEFT', 0],
      ['bzpopmin', 'e:z', '-0.5'],
      ['blmpop', 0, 0, 'e:l', 'LEFT'],
      ['blmpop', 0, 1, 'e:l', 'MIDDLE'],
      ['bzmpop', 'x', 1, 'e:z', 'MIN'],
      ['set', 'e:s', 'v'],
      ['blpop', 'e:s', 0],
      ['bzpopmax', 'e:s', 0],
      ['rpush', 'e:l', 'a', 'b'],
      ['blpop', 'e:l', 0],
      ['brpop', 'e:l', 0],
      ['zadd', 'e:z', 1, 'a'],
      ['bzpopmax', 'e:z', 0],
    ];
    for (const cmd of script) {
      const want = await answer(rd, cmd);
      const got = await answer(io, cmd);
      assert.deepEqual(got, want, `${cmd.join(' ')}: Beacon ${JSON.stringify(got)}, redis-server ${JSON.stringify(want)}`);
    }
    // In a MULTI nothing blocks: empty keys answer nil at once (BLMOVE a nil bulk string).
    for (const c of [io, rd]) {
      const out = await c.multi().blpop('e:none', 0).call('BLMOVE', 'e:none', 'e:d', 'LEFT', 'LEFT', '0').bzpopmin('e:none', 0).exec();
      assert.deepEqual(
        out?.map(([err, v]) => err ?? v),
        [null, null, null],
      );
    }
    // Durable keys hold no lists.
    await assert.rejects(io.blpop('app/q', 0.1), /needs a memory namespace/);
  });
});

test('a served blocking pop reaches the AOF as the pop it amounts to, and replays', async () => {
  await acrossRestart(
    async (io, node) => {
      const waiter = new Redis({ port: node.respPort, host: '127.0.0.1' });
      const w = waiter.blpop('c/q', 0);
      await untilBlocked(io, 1);
      await io.rpush('c/q', 'a', 'b');
      assert.deepEqual(await w, ['c/q', 'a']);
      waiter.disconnect();
    },
    async (io) => {
      assert.deepEqual(await io.lrange('c/q', 0, -1), ['b']);
    },
    (dataDir) => {
      const aof = readFileSync(join(dataDir, 'appendonly.aof'), 'latin1');
      assert.match(aof, /LPOP\r\n\$3\r\nc\/q/, 'the served BLPOP is logged as LPOP');
      assert.doesNotMatch(aof, /BLPOP/);
    },
  );
});
