/**
 * RESP on memory namespaces (the cache tier): lists, sets, sorted sets, hashes and strings with
 * TTLs; the namespace rule (longest prefix) with a durable namespace inside a memory one;
 * MULTI/EXEC and WATCH on memory keys; a MULTI mixing both kinds refused before anything runs;
 * expired/evicted keyspace notifications; the AOF replayed through the RESP commands on restart.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import { http } from '../helpers/node.js';
import { RawClient, acrossRestart, frame, sleep, startRespNode } from './resp-helpers.js';

describe('RESP on memory namespaces', () => {
  let node: Awaited<ReturnType<typeof startRespNode>>;
  let io: Redis;

  before(async () => {
    node = await startRespNode();
    // The whole keyspace is a cache, except app/ which stays durable (the longest prefix decides).
    assert.equal((await http(`${node.url}/v1/namespaces/`, { method: 'PUT', body: { storage: 'memory' } })).status, 201);
    assert.equal((await http(`${node.url}/v1/namespaces/app/`, { method: 'PUT', body: { storage: 'durable' } })).status, 201);
    io = new Redis({ port: node.respPort, host: '127.0.0.1', maxRetriesPerRequest: 1 });
  });
  after(async () => {
    io.disconnect();
    await node.cleanup();
  });

  test('the namespace rule: memory keys are not kv keys; app/ keys are', async () => {
    await io.set('user:1', 'cached');
    await io.set('app/db', 'durable');
    // A memory key is not a kv key: /v1/kv refuses it and says where it lives.
    const kv = await http(`${node.url}/v1/kv/user:1`);
    assert.equal(kv.status, 400);
    assert.match((kv.body.error as { message: string }).message, /memory namespace '' .*\/v1\/cache\/user:1 or the RESP port/);
    assert.equal((await http(`${node.url}/v1/kv/app/db`)).body.kv.value, 'durable');
    assert.equal(await io.get('user:1'), 'cached');
    // The cache's HTTP face sees the same memory key.
    const r = await http(`${node.url}/v1/cache/user:1`);
    assert.equal(r.status, 200);
  });

  test('lists: push/pop/range/index/set/rem/trim/insert/pos/move', async () => {
    assert.equal(await io.rpush('q', 'a', 'b', 'c'), 3);
    assert.equal(await io.lpush('q', 'z'), 4);
    assert.deepEqual(await io.lrange('q', 0, -1), ['z', 'a', 'b', 'c']);
    assert.equal(await io.lpop('q'), 'z');
    assert.deepEqual(await io.rpop('q', 2), ['c', 'b']);
    assert.equal(await io.llen('q'), 1);
    await io.rpush('q', 'x', 'a', 'y', 'a');
    assert.equal(await io.lindex('q', -1), 'a');
    assert.equal(await io.lset('q', 1, 'X'), 'OK');
    assert.equal(await io.lrem('q', 0, 'a'), 3);
    assert.deepEqual(await io.lrange('q', 0, -1), ['X', 'y']);
    assert.equal(await io.linsert('q', 'BEFORE', 'y', 'm'), 3);
    assert.equal(await io.lpos('q', 'y'), 2);
    assert.equal(await io.ltrim('q', 1, -1), 'OK');
    assert.equal(await io.lmove('q', 'q2', 'LEFT', 'RIGHT'), 'm');
    assert.equal(await io.rpoplpush('q', 'q2'), 'y');
    assert.equal(await io.exists('q'), 0, 'an emptied list is deleted');
    assert.deepEqual(await io.lrange('q2', 0, -1), ['y', 'm']);
    await assert.rejects(io.get('q2'), /WRONGTYPE/);
    assert.equal(await io.type('q2'), 'list');
  });

  test('sets and sorted sets (a leaderboard)', async () => {
    assert.equal(await io.sadd('s', 'a', 'b', 'c', 'a'), 3);
    assert.equal(await io.sismember('s', 'b'), 1);
    assert.deepEqual(await io.smismember('s', 'a', 'q'), [1, 0]);
    assert.equal(await io.scard('s'), 3);
    assert.equal(await io.srem('s', 'c'), 1);
    await io.sadd('t', 'b', 'd');
    assert.deepEqual((await io.sinter('s', 't')).sort(), ['b']);
    assert.deepEqual((await io.sunion('s', 't')).sort(), ['a', 'b', 'd']);
    assert.deepEqual(await io.sdiff('s', 't'), ['a']);
    assert.equal(await io.sunionstore('u', 's', 't'), 3);
    assert.equal(await io.smove('s', 't', 'a'), 1);
    assert.ok(['b'].includes((await io.spop('s')) as string));
    assert.deepEqual((await io.sscan('u', 0))[1].sort(), ['a', 'b', 'd']);
    assert.equal(await io.zadd('board', 10, 'ann', 30, 'bob', 20, 'cid'), 3);
    assert.equal(await io.zincrby('board', 25, 'ann'), '35');
    assert.deepEqual(await io.zrevrange('board', 0, 1, 'WITHSCORES'), ['ann', '35', 'bob', '30']);
    assert.equal(await io.zrank('board', 'cid'), 0);
    assert.equal(await io.zrevrank('board', 'cid'), 2);
    assert.equal(await io.zscore('board', 'bob'), '30');
    assert.equal(await io.zcount('board', '(20', '+inf'), 2);
    assert.deepEqual(await io.zrangebyscore('board', 20, 30), ['cid', 'bob']);
    assert.deepEqual(await io.zrange('board', '+inf', '-inf', 'BYSCORE', 'REV', 'LIMIT', 0, 1), ['ann']);
    assert.deepEqual(await io.zpopmin('board'), ['cid', '20']);
    assert.equal(await io.zremrangebyscore('board', 0, 31), 1);
    assert.equal(await io.zcard('board'), 1);
    assert.equal(await io.zadd('board', 'XX', 'GT', 'CH', 1, 'ann'), 0);
  });

  test('strings and hashes with TTLs (lazy and active expiry) and INFO counters', async () => {
    await io.set('t:1', 'v', 'PX', 300);
    await io.hset('t:h', 'f', 'v');
    await io.expire('t:h', 1);
    assert.ok((await io.pttl('t:1')) > 0);
    await sleep(1500);
    assert.equal(await io.get('t:1'), null);
    assert.equal(await io.exists('t:h'), 0);
    const info = await io.info('stats');
    assert.match(info, /expired_keys:[1-9]/);
    assert.match(info, /keyspace_misses:[1-9]/);
  });

  test('INCR family on memory keys: short counters and 64-bit ones give the same answers as redis-server 7.0 (checked with redis-cli)', async () => {
    // Across the 15/16-digit boundary (counters of up to 15 digits are added as numbers).
    await io.set('n:c', '999999999999999');
    assert.equal(await io.incr('n:c'), 1000000000000000);
    assert.equal(await io.incr('n:c'), 1000000000000001);
    assert.equal(await io.get('n:c'), '1000000000000001');
    await io.set('n:d', '-999999999999999');
    assert.equal(await io.decr('n:d'), -1000000000000000);
    // Past 2^53 the result is exact (ioredis reads it as a string through incrby's raw reply).
    await io.set('n:i', '9007199254740991');
    assert.equal(await io.call('INCR', 'n:i'), 9007199254740992);
    assert.equal(await io.get('n:i'), '9007199254740992');
    assert.equal(await io.incr('n:i').then(() => io.get('n:i')), '9007199254740993');
    // Not integers as Redis's string2ll reads them: -0, leading zeros, exponents.
    for (const bad of ['-0', '007', '1e3', ' 1', '']) {
      await io.set('n:bad', bad);
      await assert.rejects(io.incr('n:bad'), /ERR value is not an integer or out of range/, bad);
    }
    await assert.rejects(io.incrby('n:x', '-0'), /ERR value is not an integer or out of range/);
    await assert.rejects(io.incrby('n:x', '00'), /ERR value is not an integer or out of range/);
    await io.set('n:max', '9223372036854775807');
    await assert.rejects(io.incr('n:max'), /ERR increment or decrement would overflow/);
    await assert.rejects(io.decrby('n:y', '-9223372036854775808'), /ERR decrement would overflow/);
    assert.equal(await io.incrby('n:min', '-9223372036854775808').then(() => io.get('n:min')), '-9223372036854775808');
    // INCR keeps the key's TTL, and a missing key starts from 0.
    await io.set('n:ttl', '5', 'EX', 100);
    assert.equal(await io.incrby('n:ttl', 999999999999999), 1000000000000004);
    const ttl = await io.ttl('n:ttl');
    assert.ok(ttl > 90 && ttl <= 100, `TTL kept: ${ttl}`);
    assert.equal(await io.incrby('n:new', -3), -3);
    await io.del('n:c', 'n:d', 'n:i', 'n:bad', 'n:max', 'n:min', 'n:ttl', 'n:new');
  });

  test('MULTI/EXEC and WATCH on memory keys; a MULTI mixing kinds is refused before anything runs', async () => {
    assert.deepEqual(await io.multi().incr('m:c').incr('m:c').lpush('m:l', 'x').exec(), [[null, 1], [null, 2], [null, 1]]);
    const w = new Redis({ port: node.respPort, host: '127.0.0.1' });
    await w.watch('m:c');
    await io.incr('m:c');
    assert.equal(await w.multi().set('m:c', '100').exec(), null);
    assert.equal(await io.get('m:c'), '3');
    w.disconnect();
    const raw = await RawClient.open(node.respPort);
    raw.write(Buffer.concat([frame('MULTI'), frame('SET', 'm:x', '1'), frame('SET', 'app/x', '1'), frame('EXEC')]));
    const out = (await raw.until((b) => b.includes('EXECABORT'))).toString();
    assert.match(out, /-CROSSKIND a transaction cannot mix durable keys and memory-namespace keys/);
    assert.match(out, /-EXECABORT Transaction discarded: it mixes durable keys and memory-namespace keys/);
    raw.close();
    assert.equal(await io.exists('m:x'), 0);
    assert.equal((await http(`${node.url}/v1/kv/app/x`)).status, 404);
    await assert.rejects(io.mset('m:y', '1', 'app/y', '1'), /CROSSKIND/);
  });

  test('keyspace notifications for memory writes, expiries and evictions', async () => {
    await io.config('SET', 'notify-keyspace-events', 'KEA');
    const sub = new Redis({ port: node.respPort, host: '127.0.0.1' });
    const got: string[] = [];
    sub.on('pmessage', (_p: string, ch: string, msg: string) => got.push(`${ch} ${msg}`));
    await sub.psubscribe('__keyevent@0__:*');
    await io.lpush('n:l', 'a');
    await io.set('n:e', 'v', 'PX', 100);
    const deadline = Date.now() + 5000;
    while (!got.includes('__keyevent@0__:expired n:e') && Date.now() < deadline) await sleep(50);
    assert.ok(got.includes('__keyevent@0__:lpush n:l'), JSON.stringify(got));
    assert.ok(got.includes('__keyevent@0__:expired n:e'), JSON.stringify(got));
    await io.config('SET', 'maxmemory-policy', 'allkeys-random');
    await io.config('SET', 'maxmemory', '200kb');
    const big = 'x'.repeat(10_000);
    for (let i = 0; i < 60; i++) await io.set(`n:big:${i}`, big);
    const d2 = Date.now() + 5000;
    while (!got.some((g) => g.startsWith('__keyevent@0__:evicted')) && Date.now() < d2) await sleep(50);
    assert.ok(got.some((g) => g.startsWith('__keyevent@0__:evicted')), 'evictions are notified');
    assert.match(await io.info('stats'), /evicted_keys:[1-9]/);
    await io.config('SET', 'maxmemory', '0');
    await io.config('SET', 'notify-keyspace-events', '');
    sub.disconnect();
  });

  test("Redis's edge cases: CLIENT REPLY, DEBUG SET-ACTIVE-EXPIRE, messages to self after EXEC, FLUSHALL and WATCH, 64-bit expiry times, EXEC under OOM", async () => {
    // CLIENT REPLY OFF silences replies, not pub/sub confirmations; SKIP silences one reply; ON answers +OK.
    const c = await RawClient.open(node.respPort);
    c.write(Buffer.concat([frame('CLIENT', 'REPLY', 'OFF'), frame('SET', 'cr:a', '1'), frame('SUBSCRIBE', 'cr-ch'), frame('UNSUBSCRIBE', 'cr-ch')]));
    c.write(Buffer.concat([frame('CLIENT', 'REPLY', 'SKIP'), frame('GET', 'cr:a'), frame('CLIENT', 'REPLY', 'ON'), frame('GET', 'cr:a')]));
    const text = (await c.until((b) => b.toString().endsWith('$1\r\n1\r\n'))).toString();
    assert.equal(text, '*3\r\n$9\r\nsubscribe\r\n$5\r\ncr-ch\r\n:1\r\n*3\r\n$11\r\nunsubscribe\r\n$5\r\ncr-ch\r\n:0\r\n+OK\r\n$1\r\n1\r\n');
    c.close();

    // With active expiry off, an expired key stays counted until it is touched (lazy expiry).
    assert.equal(await io.call('DEBUG', 'SET-ACTIVE-EXPIRE', '0'), 'OK');
    try {
      await io.set('lazy:k', 'v', 'PX', 50);
      await sleep(400);
      assert.match(await io.info('keyspace'), /expires=[1-9]/, 'the expired key was not collected actively');
      assert.equal(await io.get('lazy:k'), null, 'a read expires it');
    } finally {
      assert.equal(await io.call('DEBUG', 'SET-ACTIVE-EXPIRE', '1'), 'OK');
    }
    await assert.rejects(io.call('DEBUG', 'RELOAD'), /unknown subcommand or wrong number of arguments for 'RELOAD'/);

    // A RESP3 subscriber publishing to itself in a MULTI gets the EXEC reply first, then the messages.
    const self = await RawClient.open(node.respPort);
    self.write(Buffer.concat([frame('HELLO', '3'), frame('SUBSCRIBE', 'self-ch')]));
    await self.until((b) => b.toString().includes('self-ch'));
    self.clear();
    self.write(Buffer.concat([frame('MULTI'), frame('PING', 'abc'), frame('PUBLISH', 'self-ch', 'bar'), frame('EXEC')]));
    const out = (await self.until((b) => b.toString().includes('bar\r\n'))).toString();
    const execAt = out.indexOf('*2\r\n$3\r\nabc\r\n:1\r\n');
    assert.ok(execAt >= 0 && execAt < out.indexOf('>3\r\n$7\r\nmessage\r\n$7\r\nself-ch\r\n$3\r\nbar'), JSON.stringify(out));
    self.close();

    // FLUSHALL touches WATCHed keys that existed, not one that did not.
    const w = new Redis({ port: node.respPort, host: '127.0.0.1' });
    await w.del('w:absent');
    await w.watch('w:absent');
    await io.flushall();
    assert.deepEqual(await w.multi().ping().exec(), [[null, 'PONG']]);
    await w.set('w:present', '1');
    await w.watch('w:present');
    await io.flushall();
    assert.equal(await w.multi().ping().exec(), null, 'EXEC fails: a watched key was flushed');
    w.disconnect();

    // WATCH and expiry (Redis 7's rule): a key live when watched that expires fails EXEC, even before
    // it is collected; a key already expired when watched may be collected or deleted without failing it.
    assert.equal(await io.call('DEBUG', 'SET-ACTIVE-EXPIRE', '0'), 'OK');
    const x = new Redis({ port: node.respPort, host: '127.0.0.1' });
    try {
      await x.set('wx:live', '1', 'PX', 100);
      await x.watch('wx:live');
      await sleep(300);
      assert.equal(await x.multi().ping().exec(), null, 'the watched key expired: EXEC fails');
      await x.set('wx:stale', '1', 'PX', 1);
      await sleep(50);
      await x.watch('wx:stale');
      await io.del('wx:stale');
      assert.deepEqual(await x.multi().ping().exec(), [[null, 'PONG']], 'deleting a stale watched key changes nothing');
    } finally {
      await io.call('DEBUG', 'SET-ACTIVE-EXPIRE', '1');
      x.disconnect();
    }

    // Expiry times are 64-bit as in Redis: a far-future PEXPIREAT is accepted, a far-past one deletes.
    await io.set('big:t', 'v');
    assert.equal(await io.pexpireat('big:t', '9223372036854770000'), 1);
    assert.ok((await io.ttl('big:t')) > 1e12);
    assert.equal(await io.pexpireat('big:t', '-9223372036854770000'), 1);
    assert.equal(await io.ttl('big:t'), -2);
    await io.set('big:t', 'v');
    await assert.rejects(io.expire('big:t', '9223372036854775'), /invalid expire time in 'expire' command/);

    // EXEC of a transaction with a write is refused whole when memory went over maxmemory meanwhile.
    const m = new Redis({ port: node.respPort, host: '127.0.0.1' });
    try {
      await io.config('SET', 'maxmemory-policy', 'noeviction');
      await m.set('oom:x', 'before');
      await m.call('MULTI');
      await m.call('SET', 'oom:x', 'after');
      await io.config('SET', 'maxmemory', '1');
      await assert.rejects(m.call('EXEC'), /^ReplyError: EXECABORT Transaction discarded because of: OOM command not allowed when used memory > 'maxmemory'\./);
      await io.config('SET', 'maxmemory', '0');
      assert.equal(await m.get('oom:x'), 'before');
    } finally {
      await io.config('SET', 'maxmemory', '0');
      m.disconnect();
    }

    // CONFIG SET inside MULTI runs at EXEC; a bad value is that command's error, not the node's end.
    const cm = new Redis({ port: node.respPort, host: '127.0.0.1' });
    try {
      const res = await cm.multi().set('cfg:x', '1').config('SET', 'maxmemory', 'bla').exec();
      assert.equal(res?.[0]?.[1], 'OK');
      assert.match(String(res?.[1]?.[0]), /CONFIG SET failed \(possibly related to argument 'maxmemory'\)/);
      assert.deepEqual(await cm.multi().config('SET', 'maxmemory', '0').get('cfg:x').exec(), [
        [null, 'OK'],
        [null, '1'],
      ]);
    } finally {
      cm.disconnect();
    }
    assert.equal(await io.ping(), 'PONG', 'the node is still up');

    // Notification class n: a `new` event when a write creates a key, not when it overwrites one.
    await io.config('SET', 'notify-keyspace-events', 'En');
    const nsub = new Redis({ port: node.respPort, host: '127.0.0.1' });
    try {
      const got: string[] = [];
      nsub.on('pmessage', (_p: string, ch: string, msg: string) => got.push(`${ch} ${msg}`));
      await nsub.psubscribe('*');
      await io.del('nk:foo', 'nk:bar');
      await io.set('nk:foo', 'bar');
      await io.set('nk:foo', 'baz');
      await io.set('nk:bar', 'bar');
      const until = Date.now() + 5000;
      while (got.length < 2 && Date.now() < until) await sleep(20);
      await sleep(100);
      assert.deepEqual(got, ['__keyevent@0__:new nk:foo', '__keyevent@0__:new nk:bar']);
    } finally {
      await io.config('SET', 'notify-keyspace-events', '');
      nsub.disconnect();
    }

    // Redis's encoding thresholds are accepted (test suites and tools set them) and shown.
    assert.equal(await io.config('SET', 'list-max-listpack-size', '4'), 'OK');
    assert.deepEqual(await io.config('GET', 'list-max-listpack-size'), ['list-max-listpack-size', '4']);
  });
});

test('the AOF replays through RESP commands: lists, sets, TTLs and MULTIs survive a restart', async () => {
  await acrossRestart(
    async (io) => {
      await io.rpush('c/list', 'a', 'b', 'c');
      await io.lpop('c/list');
      await io.sadd('c/set', 'x', 'y');
      await io.zadd('c/z', 5, 'five');
      await io.set('c/ttl', 'v', 'EX', 1000);
      await io.set('c/gone', 'v', 'PX', 200);
      await io.multi().incr('c/n').incr('c/n').exec();
      await io.incrbyfloat('c/f', '1.25');
    },
    async (io) => {
      assert.deepEqual(await io.lrange('c/list', 0, -1), ['b', 'c']);
      assert.deepEqual((await io.smembers('c/set')).sort(), ['x', 'y']);
      assert.equal(await io.zscore('c/z', 'five'), '5');
      const ttl = await io.ttl('c/ttl');
      assert.ok(ttl > 990 && ttl <= 1000, `TTL ${ttl} kept as an absolute time`);
      assert.equal(await io.exists('c/gone'), 0, 'an expired key stays expired');
      assert.equal(await io.get('c/n'), '2');
      assert.equal(await io.get('c/f'), '1.25');
    },
  );
});
