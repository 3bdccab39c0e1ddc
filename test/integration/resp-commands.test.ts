/**
 * COPY, OBJECT and the bitmap commands (SETBIT, GETBIT, BITCOUNT, BITPOS, BITOP) over RESP,
 * compared reply for reply with a real redis-server on the same command scripts; durable keys,
 * the memory ↔ durable refusal, keyspace notifications and the AOF replay of these writes.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import { http } from '../helpers/node.js';
import { acrossRestart, redisCli, sleep, startBesideRedis, type SideBySide, type startRespNode } from './resp-helpers.js';
import { ReplyConnection } from './resp-fuzz-helpers.js';

/** A reply or an error as one comparable value. */
async function answer(c: Redis, cmd: (string | number)[]): Promise<unknown> {
  try {
    return await c.call(String(cmd[0]), ...cmd.slice(1).map(String));
  } catch (err) {
    return `ERR! ${(err as Error).message}`;
  }
}

/** Runs `script` on both servers; asserts every reply is the same. */
async function same(beacon: Redis, redis: Redis, script: (string | number)[][]): Promise<void> {
  for (const cmd of script) {
    const want = await answer(redis, cmd);
    const got = await answer(beacon, cmd);
    assert.deepEqual(got, want, `${cmd.join(' ')}: Beacon ${JSON.stringify(got)}, redis-server ${JSON.stringify(want)}`);
  }
}

describe('COPY, OBJECT and bitmaps against redis-server', () => {
  let node: Awaited<ReturnType<typeof startRespNode>>;
  let io: Redis;
  let rd: Redis;

  let pair: SideBySide;

  before(async () => {
    pair = await startBesideRedis({ '': { storage: 'memory' }, 'app/': { storage: 'durable' } });
    ({ node, io, rd } = pair);
  });
  after(async () => {
    await pair.stop();
  });

  test('SETBIT/GETBIT: replies, growth, offset and bit errors, WRONGTYPE', async () => {
    await same(io, rd, [
      ['setbit', 'b1', 7, 1],
      ['get', 'b1'],
      ['setbit', 'b1', 7, 1],
      ['setbit', 'b1', 7, 0],
      ['setbit', 'b1', 100, 1],
      ['strlen', 'b1'],
      ['getbit', 'b1', 100],
      ['getbit', 'b1', 99],
      ['getbit', 'b1', 100000],
      ['getbit', 'nokey', 0],
      ['set', 'b2', '1'],
      ['setbit', 'b2', 6, 1],
      ['get', 'b2'],
      ['setbit', 'b1', 4294967296, 1],
      ['setbit', 'b1', -1, 1],
      ['setbit', 'b1', 'x', 1],
      ['setbit', 'b1', 0, 2],
      ['setbit', 'b1', 0, -1],
      ['setbit', 'b1', 'x', 2],
      ['getbit', 'b1', 4294967296],
      ['getbit', 'b1', 4294967295],
      ['rpush', 'bl', 'a'],
      ['setbit', 'bl', 0, 1],
      ['getbit', 'bl', 0],
      ['setbit', 'b1'],
    ]);
  });

  test('BITCOUNT and BITPOS: byte and bit ranges, negative indexes, empty ranges, syntax errors', async () => {
    await io.set('bc', 'foobar\x00\xff');
    await rd.set('bc', 'foobar\x00\xff');
    const script: (string | number)[][] = [
      ['bitcount', 'bc'],
      ['bitcount', 'nokey'],
      ['bitcount', 'nokey', 0, 1, 'foo'],
      ['bitcount', 'bc', 0],
      ['bitcount', 'bc', 0, 1, 'foo'],
      ['bitcount', 'bc', 'a', 1],
      ['bitcount', 'bc', 1, -1, 'bit', 'x'],
      ['bitcount', 'bl'],
      ['bitpos', 'bl', 1],
      ['bitpos', 'bc', 2],
      ['bitpos', 'bc', 'x'],
      ['bitpos', 'nokey', 1],
      ['bitpos', 'nokey', 0],
      ['bitpos', 'bc', 1, 0, 1, 2, 3],
      ['bitpos', 'bc', 1, 0, 1, 'foo'],
    ];
    for (const [s, e] of [[0, 0], [1, 1], [0, -1], [-2, -1], [-1, -2], [5, 2], [-100, 100], [2, 1000]]) {
      script.push(['bitcount', 'bc', s as number, e as number], ['bitcount', 'bc', s as number, e as number, 'BIT'], ['bitcount', 'bc', s as number, e as number, 'byte']);
      for (const bit of [0, 1]) {
        script.push(['bitpos', 'bc', bit, s as number], ['bitpos', 'bc', bit, s as number, e as number], ['bitpos', 'bc', bit, s as number, e as number, 'bit']);
      }
    }
    for (const v of ['\xff\xff\xff', '\x00\x00\x00', '\x00\xf0', '', '\xff\x7f']) {
      script.push(['set', 'bp', v], ['bitpos', 'bp', 0], ['bitpos', 'bp', 1], ['bitpos', 'bp', 0, 1], ['bitpos', 'bp', 0, 0, -1], ['bitpos', 'bp', 0, 3, 12, 'bit'], ['bitpos', 'bp', 1, 7, 15, 'bit']);
    }
    await same(io, rd, script);
  });

  test('BITOP AND/OR/XOR/NOT: lengths, missing sources, empty results delete, errors', async () => {
    await same(io, rd, [
      ['set', 'o1', 'abcdef'],
      ['set', 'o2', '\xff\x00'],
      ['bitop', 'and', 'od', 'o1', 'o2'],
      ['get', 'od'],
      ['bitop', 'OR', 'od', 'o1', 'o2', 'nokey'],
      ['get', 'od'],
      ['bitop', 'xor', 'od', 'o1', 'o2'],
      ['get', 'od'],
      ['bitop', 'not', 'od', 'o1'],
      ['get', 'od'],
      ['bitop', 'not', 'od', 'o1', 'o2'],
      ['bitop', 'nand', 'od', 'o1'],
      ['bitop', 'and', 'od', 'nokey', 'nokey2'],
      ['exists', 'od'],
      ['rpush', 'ol', 'x'],
      ['bitop', 'or', 'od', 'o1', 'ol'],
      ['bitop', 'or', 'od'],
    ]);
  });

  test('sorted sets by lex (ZRANGEBYLEX, ZREVRANGEBYLEX, ZLEXCOUNT, ZREMRANGEBYLEX, ZRANGE … BYLEX) and bounds checked before the key', async () => {
    await same(io, rd, [
      ['del', 'lz', 'nokey'],
      ['zadd', 'lz', 0, 'alpha', 0, 'bar', 0, 'cool', 0, 'down', 0, 'elephant', 0, 'foo', 0, 'great', 0, 'hill', 0, 'omega'],
      ['zrangebylex', 'lz', '-', '+'],
      ['zrangebylex', 'lz', '-', '[cool'],
      ['zrangebylex', 'lz', '(bar', '(foo'],
      ['zrangebylex', 'lz', '[bar', '[down', 'LIMIT', 1, 2],
      ['zrangebylex', 'lz', '-', '+', 'LIMIT', -1, 3],
      ['zrevrangebylex', 'lz', '+', '-'],
      ['zrevrangebylex', 'lz', '[hill', '(bar', 'LIMIT', 0, 3],
      ['zrange', 'lz', '[e', '(h', 'BYLEX'],
      ['zrange', 'lz', '+', '[c', 'BYLEX', 'REV', 'LIMIT', 1, 2],
      ['zrange', 'lz', '-', '+', 'BYLEX', 'WITHSCORES'],
      ['zrange', 'lz', '-', '+', 'BYLEX', 'BYSCORE'],
      ['zlexcount', 'lz', '-', '+'],
      ['zlexcount', 'lz', '[b', '(f'],
      ['zrangebylex', 'lz', 'bar', '+'],
      ['zrangebylex', 'lz', '-', 'foo'],
      ['zrangebylex', 'nokey', 'bad', '+'],
      ['zlexcount', 'nokey', '-', 'x'],
      ['zrangebylex', 'nokey', '-', '+'],
      ['zrangebyscore', 'nokey', 'str', 1],
      ['zrangebyscore', 'nokey', 1, 'NaN'],
      ['zrange', 'nokey', 'a', 1],
      ['zremrangebylex', 'lz', '[cool', '(great'],
      ['zrange', 'lz', 0, -1],
      ['zremrangebylex', 'lz', '-', '+'],
      ['exists', 'lz'],
      ['set', 'str', 'x'],
      ['zrangebylex', 'str', '-', '+'],
    ]);
  });

  test('LCS (subsequence, LEN, IDX with MINMATCHLEN and WITHMATCHLEN, errors) and ZRANGESTORE (every range form, empty result deletes) as redis-server', async () => {
    await same(io, rd, [
      ['mset', 'v1{t}', 'ohmytext', 'v2{t}', 'mynewtext'],
      ['lcs', 'v1{t}', 'v2{t}'],
      ['lcs', 'v1{t}', 'v2{t}', 'LEN'],
      ['lcs', 'v1{t}', 'v2{t}', 'IDX'],
      ['lcs', 'v1{t}', 'v2{t}', 'IDX', 'MINMATCHLEN', 4, 'WITHMATCHLEN'],
      ['lcs', 'v1{t}', 'v2{t}', 'IDX', 'WITHMATCHLEN', 'MINMATCHLEN', -3],
      ['lcs', 'v1{t}', 'nokey{t}'],
      ['lcs', 'nokey{t}', 'nokey2{t}', 'IDX'],
      ['mset', 'd1{t}', 'ACCGGTCGAGTGCGCGGAAGCCGGCCGAA', 'd2{t}', 'GTCGTTCGGAATGCCGTTGCTCTGTAAA'],
      ['lcs', 'd1{t}', 'd2{t}'],
      ['lcs', 'd1{t}', 'd2{t}', 'IDX', 'WITHMATCHLEN'],
      ['lcs', 'd1{t}', 'd2{t}', 'IDX', 'MINMATCHLEN', 3],
      ['lcs', 'v1{t}', 'v2{t}', 'LEN', 'IDX'],
      ['lcs', 'v1{t}', 'v2{t}', 'BOGUS'],
      ['lcs', 'v1{t}', 'v2{t}', 'MINMATCHLEN'],
      ['lcs', 'v1{t}', 'v2{t}', 'MINMATCHLEN', 'x'],
      ['lcs', 'v1{t}'],
      ['rpush', 'lst{t}', 'a'],
      ['lcs', 'v1{t}', 'lst{t}'],
      ['del', 'zs{t}', 'zd{t}'],
      ['zadd', 'zs{t}', 1, 'a', 2, 'b', 3, 'c', 4, 'd', 0, 'x', 0, 'y'],
      ['zrangestore', 'zd{t}', 'zs{t}', 1, 3],
      ['zrange', 'zd{t}', 0, -1, 'WITHSCORES'],
      ['zrangestore', 'zd{t}', 'zs{t}', '(1', '+inf', 'BYSCORE', 'LIMIT', 1, 2],
      ['zrange', 'zd{t}', 0, -1, 'WITHSCORES'],
      ['zrangestore', 'zd{t}', 'zs{t}', 4, 2, 'BYSCORE', 'REV'],
      ['zrange', 'zd{t}', 0, -1, 'WITHSCORES'],
      // BYLEX on members of one score (Redis leaves lex ranges over mixed scores unspecified).
      ['zadd', 'zl{t}', 0, 'p', 0, 'q', 0, 'r'],
      ['zrangestore', 'zd{t}', 'zl{t}', '(p', '+', 'BYLEX'],
      ['zrange', 'zd{t}', 0, -1, 'WITHSCORES'],
      ['zrangestore', 'zd{t}', 'zs{t}', 0, -1, 'WITHSCORES'],
      ['zrangestore', 'zd{t}', 'zs{t}', 0, 1, 'LIMIT', 0, 1],
      ['zrangestore', 'zd{t}', 'zs{t}', 10, 20],
      ['exists', 'zd{t}'],
      ['zrangestore', 'zd{t}', 'nokey{t}', 0, -1],
      ['zrangestore', 'zs{t}', 'zs{t}', 0, 1],
      ['zrange', 'zs{t}', 0, -1],
      ['zrangestore', 'zd{t}', 'lst{t}', 0, -1],
      ['zrangestore', 'zd{t}', 'zs{t}', 0],
    ]);
  });

  test('SORT and SORT_RO (numeric, ALPHA, DESC, LIMIT, BY and GET patterns with hash fields, STORE) and COMMAND GETKEYS as redis-server', async () => {
    await same(io, rd, [
      ['del', 'sl{t}', 'ss{t}', 'sz{t}', 'sd{t}'],
      ['rpush', 'sl{t}', 3, 1, 10, 2, '1.5', -4],
      ['sort', 'sl{t}'],
      ['sort', 'sl{t}', 'DESC'],
      ['sort', 'sl{t}', 'ALPHA'],
      ['sort', 'sl{t}', 'LIMIT', 1, 3],
      ['sort', 'sl{t}', 'LIMIT', -5, 2],
      ['sort', 'sl{t}', 'LIMIT', 2, -1, 'DESC'],
      ['sort', 'sl{t}', 'LIMIT', 10, 5],
      ['mset', 'w_3{t}', 30, 'w_1{t}', 10, 'w_10{t}', -1, 'o_3{t}', 'three', 'o_1{t}', 'one'],
      ['hset', 'h_2{t}', 'f', 'two-hash', 'n', 5],
      ['hset', 'h_3{t}', 'n', 1],
      ['sort', 'sl{t}', 'BY', 'w_*{t}'],
      ['sort', 'sl{t}', 'BY', 'w_*{t}', 'GET', '#', 'GET', 'o_*{t}', 'GET', 'h_*{t}->f'],
      ['sort', 'sl{t}', 'BY', 'h_*{t}->n', 'DESC', 'GET', '#'],
      ['sort', 'sl{t}', 'BY', 'nosort', 'GET', 'o_*{t}'],
      ['sort', 'sl{t}', 'BY', 'o_*{t}', 'ALPHA'],
      ['sort', 'sl{t}', 'BY', 'o_*{t}'],
      ['sort', 'sl{t}', 'STORE', 'sd{t}'],
      ['lrange', 'sd{t}', 0, -1],
      ['sort', 'sl{t}', 'GET', 'o_*{t}', 'STORE', 'sd{t}'],
      ['lrange', 'sd{t}', 0, -1],
      ['sort', 'nokey{t}', 'STORE', 'sd{t}'],
      ['exists', 'sd{t}'],
      ['sadd', 'ss{t}', 'b', 'a', 'c'],
      ['sort', 'ss{t}', 'ALPHA'],
      ['sort', 'ss{t}'],
      ['sort', 'ss{t}', 'BY', 'nosort', 'STORE', 'sd{t}'],
      ['lrange', 'sd{t}', 0, -1],
      ['zadd', 'sz{t}', 1, 'z3', 2, 'z1', 3, 'z2'],
      ['sort', 'sz{t}', 'BY', 'nosort'],
      ['sort', 'sz{t}', 'BY', 'nosort', 'DESC', 'LIMIT', 0, 2],
      ['sort', 'sz{t}', 'ALPHA', 'DESC'],
      ['sort_ro', 'sl{t}', 'LIMIT', 0, 2],
      ['sort_ro', 'sl{t}', 'STORE', 'sd{t}'],
      ['sort', 'sl{t}', 'LIMIT', 1],
      ['sort', 'sl{t}', 'BOGUS'],
      ['set', 'str{t}', 'x'],
      ['sort', 'str{t}'],
      ['command', 'getkeys', 'sort', 'abc', 'store', 'x', 'store', 'def'],
      ['command', 'getkeys', 'set', 'k', 'v'],
      ['command', 'getkeys', 'mset', 'a', '1', 'b', '2'],
      ['command', 'getkeys', 'zunionstore', 'd', 2, 'a', 'b'],
      ['command', 'getkeys', 'blpop', 'a', 'b', 0],
      ['command', 'getkeys', 'ping'],
      ['command', 'getkeys', 'get'],
      ['command', 'getkeys', 'nosuchcommand', 'x'],
    ]);
    // A weight that is not a number.
    await same(io, rd, [['rpush', 'bad{t}', 'a', 'b'], ['sort', 'bad{t}']]);
  });

  test('a node without Redis Cluster answers CLUSTER, READONLY, READWRITE and ASKING as a standalone redis-server, and INFO says cluster_enabled:0', async () => {
    await same(io, rd, [
      ['cluster', 'info'],
      ['cluster', 'slots'],
      ['cluster', 'keyslot', 'foo'],
      ['cluster'],
      ['readonly'],
      ['readwrite'],
      ['asking'],
      ['readonly', 'x'],
    ]);
    for (const client of [io, rd]) assert.match(String(await client.info('cluster')), /^# Cluster\r\ncluster_enabled:0\r\n/);
  });

  test('list argument checks as Redis (LPOP/RPOP arity, LPOS RANK range); CONFIG SET save "" accepted, a schedule refused', async () => {
    await same(io, rd, [
      ['del', 'pl'],
      ['rpush', 'pl', 'a', 'b', 'c', '1', '2', '3', 'c', 'c'],
      ['lpop', 'pl', 1, 1],
      ['rpop', 'pl', 2, 2],
      ['lpos', 'pl', 'c', 'RANK', -1],
      ['lpos', 'pl', 'c', 'RANK', '-9223372036854775807'],
      ['lpos', 'pl', 'c', 'RANK', 0],
      ['config', 'set', 'save', ''],
    ]);
    await assert.rejects(io.config('SET', 'save', '900 1'), /no RDB snapshots/);
    // Redis 7.2 refuses a rank whose negation overflows (7.0, the installed redis-server, did not).
    await assert.rejects(io.call('lpos', 'pl', 'c', 'RANK', '-9223372036854775808'), /value is out of range/);
  });

  test('HRANDFIELD and MEMORY USAGE: errors and edge cases as redis-server, random picks of the right shape', async () => {
    await same(io, rd, [
      ['del', 'rh', 'nokey'],
      ['hset', 'rh', 'a', '1', 'b', '2', 'c', '3'],
      ['hrandfield', 'nokey'],
      ['hrandfield', 'nokey', 3],
      ['hrandfield', 'rh', 0],
      ['hrandfield', 'rh', 'x'],
      ['hrandfield', 'rh', 1, 'WITHVALUE'],
      ['hrandfield', 'rh', 1, 'WITHVALUES', 'x'],
      ['memory', 'usage', 'nokey'],
      ['memory', 'usage'],
      ['memory', 'usage', 'rh', 'SAMPLES'],
      ['memory', 'usage', 'rh', 'SAMPLES', 'x'],
      ['memory', 'nosuch'],
      ['set', 'str', 'x'],
      ['hrandfield', 'str'],
    ]);
    for (const c of [io, rd]) {
      assert.deepEqual(((await c.call('hrandfield', 'rh', '10')) as string[]).sort(), ['a', 'b', 'c']);
      const two = (await c.call('hrandfield', 'rh', '2')) as string[];
      assert.equal(new Set(two).size, 2);
      const many = (await c.call('hrandfield', 'rh', '-7', 'WITHVALUES')) as string[];
      assert.equal(many.length, 14);
      for (let i = 0; i < many.length; i += 2) assert.equal(many[i + 1], { a: '1', b: '2', c: '3' }[many[i] as 'a']);
      assert.ok(['a', 'b', 'c'].includes((await c.call('hrandfield', 'rh')) as string));
      assert.equal(typeof (await c.call('memory', 'usage', 'rh')), 'number');
    }
    // Redis 7.2's overflow checks, and no reply so large that it would exhaust the node's memory.
    await io.sadd('rs', 'a');
    for (const cmd of [
      ['hrandfield', 'rh', '-9223372036854775808'],
      ['hrandfield', 'rh', '-9223372036854770000', 'WITHVALUES'],
      ['srandmember', 'rs', '-9223372036854775808'],
      ['hrandfield', 'rh', '-4611686018427387903'],
      ['srandmember', 'rs', '-100000000000'],
    ]) {
      await assert.rejects(io.call(...(cmd as [string, ...string[]])), /value is out of range/, cmd.join(' '));
    }
    assert.equal(((await io.call('srandmember', 'rs', '-1000')) as string[]).length, 1000);
    assert.equal(await io.ping(), 'PONG');
  });

  test('SSCAN, HSCAN and ZSCAN return every member present throughout, while others are removed and added (Redis issue #4906)', async () => {
    for (let round = 0; round < 20; round++) {
      await io.del('sc:s', 'sc:h', 'sc:z');
      const n = 101 + ((round * 97) % 900);
      const members = Array.from({ length: n }, (_, j) => String(j));
      await io.sadd('sc:s', ...members);
      await io.hset('sc:h', ...members.flatMap((m) => [m, `v${m}`]));
      await io.zadd('sc:z', ...members.flatMap((m) => [m, m]));
      const doomed = members.slice(100);
      for (const [key, cmd] of [['sc:s', 'sscan'], ['sc:h', 'hscan'], ['sc:z', 'zscan']] as const) {
        const found = new Set<string>();
        let cursor = '0';
        let step = 0;
        const removeAt = round % 7;
        do {
          const [next, items] = (await io.call(cmd, key, cursor, 'COUNT', '10')) as [string, string[]];
          const names = cmd === 'sscan' ? items : items.filter((_, i) => i % 2 === 0);
          for (const m of names) found.add(m);
          if (cmd === 'hscan') for (let i = 0; i < items.length; i += 2) assert.equal(items[i + 1], `v${items[i]}`);
          if (step++ === removeAt) {
            if (cmd === 'sscan') await io.srem(key, ...doomed);
            else if (cmd === 'hscan') await io.hdel(key, ...doomed);
            else await io.zrem(key, ...doomed);
            await io.call(cmd === 'sscan' ? 'sadd' : cmd === 'hscan' ? 'hset' : 'zadd', key, ...(cmd === 'sscan' ? ['new'] : cmd === 'hscan' ? ['new', 'vnew'] : ['1', 'new']));
          }
          cursor = next;
        } while (cursor !== '0');
        for (let j = 0; j < 100; j++) assert.ok(found.has(String(j)), `${cmd} round ${round}: member ${j} missing`);
      }
    }
  });

  test('keys after a count: SINTERCARD, ZINTERCARD and ZUNION/ZINTER/ZDIFF with and without STORE, as redis-server', async () => {
    await same(io, rd, [
      ['del', 'nz:a', 'nz:b', 'nz:s', 'nz:d', 'nz:str', 'nz:none'],
      ['zadd', 'nz:a', 1, 'a', 2, 'b', 3, 'c', '+inf', 'i'],
      ['zadd', 'nz:b', 10, 'b', 20, 'c', 30, 'd', '-inf', 'i'],
      ['sadd', 'nz:s', 'c', 'd', 'e', 'i'],
      ['set', 'nz:str', 'x'],
      ['zunion', 2, 'nz:a', 'nz:b', 'WITHSCORES'],
      ['zunion', 3, 'nz:a', 'nz:b', 'nz:s', 'WEIGHTS', 2, 0.5, 10, 'WITHSCORES'],
      ['zunion', 2, 'nz:a', 'nz:b', 'AGGREGATE', 'MIN', 'WITHSCORES'],
      ['zunion', 2, 'nz:a', 'nz:b', 'AGGREGATE', 'MAX', 'WITHSCORES'],
      ['zinter', 2, 'nz:a', 'nz:b', 'WITHSCORES'],
      ['zinter', 3, 'nz:a', 'nz:b', 'nz:s', 'AGGREGATE', 'MAX'],
      ['zinter', 2, 'nz:a', 'nz:none'],
      ['zdiff', 2, 'nz:a', 'nz:b', 'WITHSCORES'],
      ['zdiff', 1, 'nz:s', 'WITHSCORES'],
      ['zunionstore', 'nz:d', 2, 'nz:a', 'nz:s', 'WEIGHTS', 1, 5],
      ['zrange', 'nz:d', 0, -1, 'WITHSCORES'],
      ['zinterstore', 'nz:d', 2, 'nz:a', 'nz:b'],
      ['zrange', 'nz:d', 0, -1, 'WITHSCORES'],
      ['zdiffstore', 'nz:d', 2, 'nz:a', 'nz:a'],
      ['exists', 'nz:d'],
      ['zintercard', 2, 'nz:a', 'nz:b'],
      ['zintercard', 3, 'nz:a', 'nz:b', 'nz:s', 'LIMIT', 1],
      ['sadd', 'nz:t', 'c', 'e', 'z'],
      ['sintercard', 2, 'nz:s', 'nz:t'],
      ['sintercard', 2, 'nz:s', 'nz:t', 'LIMIT', 1],
      ['sintercard', 2, 'nz:s', 'nz:none'],
      ['sintercard', 0, 'nz:s'],
      ['sintercard', 'x', 'nz:s'],
      ['sintercard', 3, 'nz:s', 'nz:t'],
      ['sintercard', 1, 'nz:s', 'LIMIT', -1],
      ['sintercard', 1, 'nz:s', 'foo'],
      ['sintercard', 1, 'nz:a'],
      ['zunionstore', 'nz:d', 0, 'nz:a'],
      ['zunionstore', 'nz:d', 'x', 'nz:a'],
      ['zunionstore', 'nz:d', 3, 'nz:a', 'nz:b'],
      ['zunionstore', 'nz:d', 1, 'nz:a', 'WEIGHTS'],
      ['zunionstore', 'nz:d', 1, 'nz:a', 'WEIGHTS', 'x'],
      ['zunionstore', 'nz:d', 1, 'nz:a', 'AGGREGATE', 'foo'],
      ['zunionstore', 'nz:d', 1, 'nz:a', 'WITHSCORES'],
      ['zunion', 1, 'nz:str'],
      ['zdiff', 1, 'nz:a', 'WEIGHTS', 1],
      ['zintercard', 0, 'nz:a'],
      ['zintercard', 2, 'nz:a'],
      ['zintercard', 1, 'nz:a', 'LIMIT', -2],
      ['del', 'nz:t'],
      ['zmpop', 2, 'nz:none', 'nz:a', 'MAX', 'COUNT', 2],
      ['zmpop', 1, 'nz:a', 'MIN'],
      ['zmpop', 1, 'nz:none', 'MIN'],
      ['zmpop', 0, 'nz:a', 'MIN'],
      ['zmpop', 'x', 'nz:a', 'MIN'],
      ['zmpop', 1, 'nz:a', 'FOO'],
      ['zmpop', 3, 'nz:a', 'MIN'],
      ['zmpop', 1, 'nz:a', 'MIN', 'COUNT', 0],
      ['zmpop', 1, 'nz:a', 'MIN', 'COUNT', 2, 'x'],
      ['zmpop', 1, 'nz:str', 'MIN'],
      ['rpush', 'nz:l', 'a', 'b', 'c'],
      ['lmpop', 2, 'nz:none', 'nz:l', 'RIGHT', 'COUNT', 2],
      ['lmpop', 1, 'nz:l', 'LEFT'],
      ['lmpop', 1, 'nz:l', 'LEFT'],
      ['exists', 'nz:l'],
      ['lmpop', 0, 'nz:l', 'LEFT'],
      ['lmpop', 1, 'nz:l', 'UP'],
      ['lmpop', 1, 'nz:l', 'LEFT', 'COUNT', 0],
      ['zrandmember', 'nz:none'],
      ['zrandmember', 'nz:none', 2],
      ['zrandmember', 'nz:b', 0],
      ['zrandmember', 'nz:b', 'x'],
      ['zrandmember', 'nz:b', 1, 'WITHSCORE'],
      ['zrandmember', 'nz:b', 10, 'WITHSCORES', 'x'],
    ]);
    const picks = (await io.call('zrandmember', 'nz:b', '-6', 'WITHSCORES')) as string[];
    assert.equal(picks.length, 12);
    for (let i = 0; i < picks.length; i += 2) assert.equal(picks[i + 1], { b: '10', c: '20', d: '30', i: '-inf' }[picks[i] as 'b']);
    assert.deepEqual(((await io.call('zrandmember', 'nz:b', '10')) as string[]).sort(), ['b', 'c', 'd', 'i']);
    // SMOVE into a set that already holds the member leaves it unmodified: a WATCH on it stays clean.
    await io.del('mv:src', 'mv:dst');
    await io.sadd('mv:src', 'a', 'b');
    await io.sadd('mv:dst', 'a');
    const other = new Redis({ port: node.respPort, host: '127.0.0.1' });
    try {
      await io.watch('mv:dst');
      assert.equal(await other.smove('mv:src', 'mv:dst', 'a'), 1);
      const r = await io.multi().sadd('mv:dst', 'c').exec();
      assert.deepEqual(r, [[null, 1]]);
      assert.equal(await io.scard('mv:dst'), 2);
      assert.deepEqual(await io.smembers('mv:src'), ['b']);
    } finally {
      other.disconnect();
    }
  });

  test('COPY: every type, TTL copied or not, REPLACE, DB 0, errors', async () => {
    const script: (string | number)[][] = [
      ['set', 'c:s', 'v'],
      ['rpush', 'c:l', 'a', 'b', 'c'],
      ['sadd', 'c:set', '1', '2', 'x'],
      ['zadd', 'c:z', 1, 'a', 2, 'b'],
      ['hset', 'c:h', 'f', 'v', 'g', 'w'],
      ['pexpire', 'c:s', 100000],
    ];
    for (const k of ['c:s', 'c:l', 'c:set', 'c:z', 'c:h']) {
      script.push(['copy', k, `${k}:2`], ['type', `${k}:2`], ['dump-type', k]);
    }
    script.push(
      ['lrange', 'c:l:2', 0, -1],
      ['zrange', 'c:z:2', 0, -1, 'withscores'],
      ['hgetall', 'c:h:2'],
      ['rpush', 'c:l:2', 'd'],
      ['lrange', 'c:l', 0, -1],
      ['ttl', 'c:l:2'],
      ['copy', 'c:l', 'c:s:2'],
      ['copy', 'c:l', 'c:s:2', 'replace'],
      ['type', 'c:s:2'],
      ['ttl', 'c:s:2'],
      ['copy', 'nokey', 'c:new'],
      ['copy', 'c:s', 'c:s'],
      ['copy', 'c:s', 'c:x', 'db', 'notanint'],
      ['copy', 'c:s', 'c:x', 'foo'],
      ['copy', 'c:s', 'c:x', 'db'],
      ['copy', 'c:s', 'c:x', 'db', 0, 'replace'],
      ['get', 'c:x'],
    );
    await same(io, rd, script.filter((c) => c[0] !== 'dump-type'));
    const cTtl = await io.pttl('c:x');
    assert.ok(cTtl > 90_000 && cTtl <= 100_000, `the copy has the source's TTL (${cTtl} ms)`);
    // One database here: another index is SELECT's error (redis-server would copy into db 3).
    await assert.rejects(io.call('COPY', 'c:s', 'c:y', 'DB', '3'), /^ReplyError: ERR DB index is out of range/);
    // A deep copy: changing the copy of a set or hash leaves the source alone.
    await io.sadd('c:set:2', 'new');
    await io.hset('c:h:2', 'f', 'changed');
    assert.deepEqual((await io.smembers('c:set')).sort(), ['1', '2', 'x']);
    assert.equal(await io.hget('c:h', 'f'), 'v');
  });

  test('OBJECT ENCODING follows Redis thresholds; REFCOUNT, IDLETIME, FREQ, HELP and errors', async () => {
    const script: (string | number)[][] = [
      ['set', 'e:int', '12345'],
      ['set', 'e:neg', '-7'],
      ['set', 'e:lead', '012'],
      ['set', 'e:emb', 'x'.repeat(44)],
      ['set', 'e:raw', 'x'.repeat(45)],
      ['set', 'e:app', '1'],
      ['append', 'e:app', '2'],
      ['set', 'e:rng', '1234'],
      ['setrange', 'e:rng', 0, '2'],
      ['incr', 'e:app'],
      ['setbit', 'e:bit', 1, 1],
      ['rpush', 'e:l', 'a', 'b'],
      ['sadd', 'e:is', '1', '2', '-3'],
      ['sadd', 'e:ls', '1', 'a'],
      ['sadd', 'e:hs', 'y'.repeat(65)],
      ['hset', 'e:h', 'f', 'v'],
      ['hset', 'e:hh', 'f', 'z'.repeat(65)],
      ['zadd', 'e:z', 1, 'a'],
      ['zadd', 'e:zz', 1, 'q'.repeat(65)],
    ];
    const big: (string | number)[] = ['rpush', 'e:ql'];
    for (let i = 0; i < 200; i++) big.push(`element-${i}-${'p'.repeat(40)}`);
    script.push(big);
    const many: (string | number)[] = ['sadd', 'e:mi'];
    for (let i = 0; i < 600; i++) many.push(i);
    script.push(many);
    const manyS: (string | number)[] = ['sadd', 'e:ms'];
    for (let i = 0; i < 130; i++) manyS.push(`m${i}`);
    script.push(manyS);
    // Small lists and sets of strings: Redis 7.2's listpack, which the installed 7.0 lacks (checked below).
    for (const k of ['e:int', 'e:neg', 'e:lead', 'e:emb', 'e:raw', 'e:app', 'e:rng', 'e:bit', 'e:ql', 'e:is', 'e:hs', 'e:mi', 'e:ms', 'e:h', 'e:hh', 'e:z', 'e:zz', 'nokey']) {
      script.push(['object', 'encoding', k]);
    }
    script.push(
      ['config', 'set', 'zset-max-listpack-entries', '0'],
      ['zadd', 'e:z0', 1, 'a'],
      ['object', 'encoding', 'e:z0'],
      ['config', 'set', 'zset-max-listpack-entries', '128'],
      ['set', 'e:small', '100'],
      ['object', 'refcount', 'e:small'],
      ['object', 'refcount', 'e:raw'],
      ['object', 'refcount', 'nokey'],
      ['object', 'freq', 'e:raw'],
      ['object', 'idletime', 'nokey'],
      ['object', 'help'],
      ['object', 'foo', 'e:raw'],
      ['object', 'encoding'],
      ['object', 'help', 'x'],
      ['config', 'set', 'maxmemory-policy', 'allkeys-lfu'],
      ['object', 'idletime', 'e:raw'],
      ['config', 'set', 'maxmemory-policy', 'noeviction'],
    );
    await same(io, rd, script);
    assert.equal(await io.call('OBJECT', 'ENCODING', 'e:l'), 'listpack');
    assert.equal(await io.call('OBJECT', 'ENCODING', 'e:ls'), 'listpack');
    assert.equal(await io.config('SET', 'list-max-listpack-size', '1'), 'OK');
    assert.equal(await io.call('OBJECT', 'ENCODING', 'e:l'), 'quicklist', 'CONFIG SET thresholds are used');
    await io.config('SET', 'list-max-listpack-size', '-2');
    // IDLETIME grows while the key is untouched, and OBJECT itself does not touch it.
    await io.set('e:idle', 'v');
    await sleep(2100);
    const idle = Number(await io.call('OBJECT', 'IDLETIME', 'e:idle'));
    assert.ok(idle >= 2, `idle ${idle}`);
    await io.get('e:idle');
    assert.equal(Number(await io.call('OBJECT', 'IDLETIME', 'e:idle')), 0);
    // FREQ under an LFU policy: a new key starts at LFU_INIT_VAL (5) as in Redis.
    await io.config('SET', 'maxmemory-policy', 'allkeys-lfu');
    try {
      await io.set('e:f', 'v');
      assert.equal(await io.call('OBJECT', 'FREQ', 'e:f'), 5);
      await rd.config('SET', 'maxmemory-policy', 'allkeys-lfu');
      await rd.set('e:f', 'v');
      assert.equal(await rd.call('OBJECT', 'FREQ', 'e:f'), 5);
    } finally {
      await io.config('SET', 'maxmemory-policy', 'noeviction');
      await rd.config('SET', 'maxmemory-policy', 'noeviction');
    }
    // redis-cli sees the same.
    assert.equal((await redisCli(node.respPort, ['object', 'encoding', 'e:int'])).trim(), 'int');
    assert.equal((await redisCli(node.respPort, ['bitcount', 'e:bit'])).trim(), '1');
  });

  test('durable keys: COPY is one put (TTL as a lease), bitmaps work on durable strings, kinds never mix', async () => {
    await io.set('app/src', 'hello', 'EX', 300);
    assert.equal(await io.call('COPY', 'app/src', 'app/dst'), 1);
    assert.equal((await http(`${node.url}/v1/kv/app/dst`)).body.kv.value, 'hello');
    const ttl = await io.ttl('app/dst');
    assert.ok(ttl > 290 && ttl <= 301, `durable copy TTL ${ttl}`);
    assert.equal(await io.call('COPY', 'app/src', 'app/dst'), 0);
    await io.hset('app/h', 'f', 'v');
    assert.equal(await io.call('COPY', 'app/h', 'app/dst', 'REPLACE'), 1);
    assert.equal(await io.hget('app/dst', 'f'), 'v');
    assert.equal(await io.call('OBJECT', 'ENCODING', 'app/h'), 'listpack');
    assert.equal(await io.call('OBJECT', 'ENCODING', 'app/src'), 'embstr');
    await assert.rejects(io.call('OBJECT', 'IDLETIME', 'app/src'), /durable key: only memory keys keep access times/);

    assert.equal(await io.setbit('app/bits', 9, 1), 0);
    assert.equal(await io.getbit('app/bits', 9), 1);
    assert.equal(await io.bitcount('app/bits'), 1);
    assert.deepEqual((await http(`${node.url}/v1/kv/app/bits`)).body.kv.value, '\u0000@');
    await io.set('app/o', 'ab');
    assert.equal(await io.call('BITOP', 'OR', 'app/od', 'app/o', 'app/bits'), 2);
    assert.equal(await io.get('app/od'), 'ab', "'a'|0x00, 'b'|0x40");
    // --max-value-bytes bounds a durable bitmap before anything is built.
    await assert.rejects(io.setbit('app/bits', 4294967295, 1), /the limit is \d+ \(--max-value-bytes\)/);
    assert.equal(await io.strlen('app/bits'), 2);

    // A memory key and a durable key in one command are refused, as in a MULTI.
    await io.set('mem:src', 'x');
    await assert.rejects(io.call('COPY', 'mem:src', 'app/x'), /^ReplyError: CROSSKIND/);
    await assert.rejects(io.call('BITOP', 'AND', 'app/x', 'mem:src'), /^ReplyError: CROSSKIND/);
    assert.equal(await io.exists('app/x'), 0);
  });

  test('HINCRBYFLOAT refuses an infinite increment with Redis\'s message, before the key is read (found by the differential fuzz)', async () => {
    await same(io, rd, [
      ['del', 'fz:hf', 'fz:hs'],
      ['hincrbyfloat', 'fz:hf', 'f', 'inf'],
      ['hincrbyfloat', 'fz:hf', 'f', '-inf'],
      ['set', 'fz:hs', 'x'],
      ['hincrbyfloat', 'fz:hs', 'f', '+inf'],
      ['hincrbyfloat', 'fz:hf', 'f', '1.5'],
      ['hincrbyfloat', 'fz:hf', 'f', 'nan'],
    ]);
  });

  test('INCRBYFLOAT checks the key\'s type before the increment (found by the differential fuzz)', async () => {
    await same(io, rd, [
      ['del', 'fz:il', 'fz:is'],
      ['rpush', 'fz:il', 'a'],
      ['incrbyfloat', 'fz:il', 'x'],
      ['incrbyfloat', 'fz:il', ''],
      ['set', 'fz:is', 'abc'],
      ['incrbyfloat', 'fz:is', 'x'],
      ['incrbyfloat', 'nokey:fz', 'x'],
    ]);
  });

  test('score bounds are read as Redis\'s strtod reads them: empty is 0, leading spaces and hex accepted (found by the differential fuzz)', async () => {
    await same(io, rd, [
      ['del', 'fz:zb'],
      ['zadd', 'fz:zb', 0, 'a', 1, 'b', 16, 'c'],
      ['zrangebyscore', 'fz:zb', '', '+inf'],
      ['zcount', 'fz:zb', ' 1', '(0x10'],
      ['zrange', 'fz:zb', '(', '0x10', 'BYSCORE', 'WITHSCORES'],
      ['zrangebyscore', 'fz:zb', '-infinity', 'Infinity'],
      ['zrevrangebyscore', 'fz:zb', '0X1p4', '+.5'],
      ['zcount', 'fz:zb', '1 ', 2],
      ['zcount', 'fz:zb', 'nan', 1],
      ['zcount', 'fz:zb', '0x', 1],
      ['zcount', 'fz:zb', '1e', 1],
      ['zcount', 'fz:zb', ' ', 1],
      ['zcount', 'fz:zb', '.', 1],
      ['zcount', 'fz:zb', '(', '('],
      ['set', 'fz:zs', 'x'],
      ['zcount', 'fz:zs', '', 1],
    ]);
  });

  test('float arguments and values accept what Redis\'s strtod accepts (hex), refuse overflow and underflow (found by the differential fuzz)', async () => {
    await same(io, rd, [
      ['set', 'fz:hx', '0x10'],
      ['incrbyfloat', 'fz:hx', '1.5'],
      ['incrbyfloat', 'fz:hx', '0x1p-1'],
      ['incrbyfloat', 'fz:hx', ' 1'],
      ['incrbyfloat', 'fz:hx', '1 '],
      ['incrbyfloat', 'fz:hx', ''],
      ['del', 'fz:zh'],
      ['zadd', 'fz:zh', '0x10', 'm'],
      ['zscore', 'fz:zh', 'm'],
      ['zadd', 'fz:zh', '1e400', 'm2'],
      ['zadd', 'fz:zh', '1e-400', 'm2'],
      ['zadd', 'fz:zh', '-Infinity', 'm3'],
      ['zincrby', 'fz:zh', '0xA', 'm'],
      ['hset', 'fz:hh', 'f', '0x8'],
      ['hincrbyfloat', 'fz:hh', 'f', '0x8'],
    ]);
  });

  test('INCRBYFLOAT prints large and tiny results without an exponent, as Redis\'s %.17Lf (found by the differential fuzz)', async () => {
    await same(io, rd, [
      ['set', 'fz:ib', '1e22'],
      ['incrbyfloat', 'fz:ib', '0'],
      ['get', 'fz:ib'],
      ['set', 'fz:ib', '92233720368547758080000'],
      ['incrbyfloat', 'fz:ib', '-0'],
      ['set', 'fz:it', '0'],
      ['incrbyfloat', 'fz:it', '1e-20'],
      ['incrbyfloat', 'fz:it', '1.5e-7'],
      ['hincrbyfloat', 'fz:ih', 'f', '1e22'],
    ]);
  });

  test('SET and GETEX: option syntax before the expire time, GETEX reads the key before the time, repeated EX, the full 64-bit PXAT range (found by the differential fuzz)', async () => {
    await same(io, rd, [
      ['del', 'fz:so', 'fz:gl'],
      ['set', 'fz:so', 'v', 'EX', 'x', 'BOGUS'],
      ['set', 'fz:so', 'v', 'EX', 0, 'NX', 'XX'],
      ['set', 'fz:so', 'v', 'EXAT', 4000000000, 'EXAT', 4000000001],
      ['expiretime', 'fz:so'],
      ['set', 'fz:so', 'v', 'EX', 10, 'PX', 10],
      ['set', 'fz:so', 'v', 'KEEPTTL', 'EX', 10],
      ['set', 'fz:so', 'v', 'XX', 'PXAT', '9223372036854775807'],
      ['set', 'fz:so', 'v', 'PX', '9223372036854775807'],
      ['set', 'fz:so', 'v', 'EXAT', '9223372036854776'],
      ['getex', 'fz:so', 'EX', 'x', 'extra'],
      ['getex', 'fz:so', 'PERSIST', 'PERSIST'],
      ['ttl', 'fz:so'],
      ['getex', 'fz:so', 'EXAT', 4000000000, 'EXAT', 4000000002],
      ['expiretime', 'fz:so'],
      ['getex', 'fz:so', 'PERSIST', 'EX', 10],
      ['getex', 'fz:nokey', 'EX', 0],
      ['rpush', 'fz:gl', 'a'],
      ['getex', 'fz:gl', 'EX', '9223372036854775807'],
      ['set', 'fz:gl', 'v', 'GET', 'EX', 0],
      ['psetex', 'fz:sx', '9007199254740993', 'v'],
      ['setex', 'fz:sx', '9223372036854776', 'v'],
    ]);
  });

  test('EXPIRE and PEXPIRE check their options before the time (found by the differential fuzz)', async () => {
    await same(io, rd, [
      ['set', 'fz:ex', 'v'],
      ['expire', 'fz:ex', 'x', 1],
      ['pexpire', 'fz:ex', '1.5', 'gt', 'NX'],
      ['pexpire', 'fz:ex', 'x', 'GT', 'LT'],
      ['expire', 'fz:ex', 'x', 'XX'],
    ]);
  });

  test('SMOVE from a missing source answers 0 whatever the destination holds (found by the differential fuzz)', async () => {
    await same(io, rd, [
      ['del', 'fz:sm1', 'fz:sm2'],
      ['set', 'fz:sm2', 'x'],
      ['smove', 'fz:sm1', 'fz:sm2', 'a'],
      ['sadd', 'fz:sm1', 'a'],
      ['smove', 'fz:sm1', 'fz:sm2', 'a'],
      ['smove', 'fz:sm1', 'fz:sm2', 'b'],
    ]);
  });

  test('LINDEX and LSET read the key before the index (found by the differential fuzz)', async () => {
    await same(io, rd, [
      ['set', 'fz:li', 'x'],
      ['lindex', 'fz:li', '1.5'],
      ['lindex', 'fz:nokey', 'x'],
      ['lset', 'fz:li', 'x', 'v'],
      ['lset', 'fz:nokey', 'x', 'v'],
      ['del', 'fz:li'],
      ['rpush', 'fz:li', 'a'],
      ['lindex', 'fz:li', 'x'],
      ['lset', 'fz:li', '9223372036854775808', 'v'],
    ]);
  });

  test('LPOS answers "COUNT/MAXLEN can\'t be negative" for a non-integer too (found by the differential fuzz)', async () => {
    await same(io, rd, [
      ['del', 'fz:lp'],
      ['rpush', 'fz:lp', 'a', 'b', 'a'],
      ['lpos', 'fz:lp', 'a', 'COUNT', 'x'],
      ['lpos', 'fz:lp', 'a', 'MAXLEN', 'x'],
      ['lpos', 'fz:lp', 'a', 'COUNT', -1],
      ['lpos', 'fz:lp', 'a', 'RANK', 'x'],
      ['lpos', 'fz:lp', 'a', 'COUNT', 0, 'MAXLEN', 2],
    ]);
  });

  test('ZRANGE by index accepts LIMIT o -1 (no limit) as Redis does (found by the differential fuzz)', async () => {
    await same(io, rd, [
      ['del', 'fz:zl'],
      ['zadd', 'fz:zl', 1, 'a', 2, 'b'],
      ['zrange', 'fz:zl', 0, ' 1', 'LIMIT', 0, -1],
      ['zrange', 'fz:zl', 0, 1, 'LIMIT', 5, -1, 'WITHSCORES'],
      ['zrange', 'fz:zl', 0, 1, 'LIMIT', 0, 1],
      ['zrange', 'fz:zl', 0, 1, 'LIMIT', 0, -2],
    ]);
  });

  test('ZPOPMIN/ZPOPMAX with more than a count answer a syntax error first (found by the differential fuzz)', async () => {
    await same(io, rd, [
      ['set', 'fz:zp', 'x'],
      ['zpopmin', 'fz:zp', 5, 1],
      ['zpopmax', 'fz:zp', 'x', 'NX'],
      ['zpopmin', 'fz:zp', 'x'],
      ['zpopmax', 'fz:nokey', -1],
    ]);
  });

  test('ZUNIONSTORE/ZINTERSTORE read their input keys (WRONGTYPE) before WEIGHTS and AGGREGATE (found by the differential fuzz)', async () => {
    await same(io, rd, [
      ['set', 'fz:zu', 'x'],
      ['zunionstore', 'fz:zd', 1, 'fz:zu', 'AGGREGATE', 'AVG'],
      ['zinterstore', 'fz:zd', 1, 'fz:zu', 'WEIGHTS', 'x'],
      ['zunion', 1, 'fz:zu', 'WEIGHTS', 'nan'],
      ['zunionstore', 'fz:zd', 1, 'fz:nokey', 'AGGREGATE', 'AVG'],
      ['zinterstore', 'fz:zd', 1, 'fz:nokey', 'WEIGHTS', 'x'],
    ]);
  });

  test('a command with a bad key count is queued in MULTI and answers its error inside EXEC, as Redis (found by the differential fuzz)', async () => {
    await same(io, rd, [
      ['multi'],
      ['set', 'fz:mq', '1'],
      ['zunionstore', 'fz:md', 0, 'fz:mq'],
      ['sintercard', 9, 'fz:mq'],
      ['zdiffstore', 'fz:md', 9, 'fz:mq'],
      ['zunionstore', 'fz:md', 'x', 'fz:mq'],
      ['get', 'fz:mq'],
      ['exec'],
      ['multi'],
      ['set', 'app/mq', '1'],
      ['sintercard', 9, 'app/mq'],
      ['get', 'app/mq'],
      ['exec'],
    ]);
  });

  test('ZINTERCARD reads its input keys (WRONGTYPE) before LIMIT (found by the differential fuzz)', async () => {
    await same(io, rd, [
      ['set', 'fz:zc', 'x'],
      ['zintercard', 1, 'fz:zc', 'LIMIT', -1],
      ['zintercard', 1, 'fz:zc', 'NX'],
      ['zintercard', 1, 'fz:nokey', 'LIMIT', -1],
    ]);
  });

  test('SORT reads numeric weights as Redis\'s strtod: an empty element is 0, leading spaces and hex are accepted (found by the differential fuzz)', async () => {
    await same(io, rd, [
      ['del', 'fz:sl'],
      ['rpush', 'fz:sl', '3', '', ' 2', '0x10', '-1'],
      ['sort', 'fz:sl'],
      ['sort_ro', 'fz:sl', 'DESC'],
      ['rpush', 'fz:sl', '1 '],
      ['sort', 'fz:sl'],
      ['del', 'fz:sl'],
      ['rpush', 'fz:sl', ' '],
      ['sort', 'fz:sl'],
    ]);
  });

  test('ZMPOP/LMPOP read their options in order: a bad COUNT is reported before an extra argument (found by the differential fuzz)', async () => {
    await same(io, rd, [
      ['del', 'fz:mp', 'fz:ml'],
      ['zadd', 'fz:mp', 1, 'a', 2, 'b'],
      ['rpush', 'fz:ml', 'a', 'b'],
      ['zmpop', 1, 'fz:mp', 'MAX', 'COUNT', -1, 1],
      ['lmpop', 1, 'fz:ml', 'LEFT', 'COUNT', 0, 'x'],
      ['zmpop', 1, 'fz:mp', 'MIN', 'COUNT', 1, 'COUNT', 1],
      ['lmpop', 1, 'fz:ml', 'LEFT', 'COUNT'],
      ['zmpop', 1, 'fz:mp', 'MIN', 'COUNT', 1, 'x'],
      ['lmpop', 1, 'fz:ml', 'RIGHT', 'COUNT', 5],
    ]);
  });

  test('PEXPIRETIME and PTTL of an expiry past 2^53 ms are 64-bit integers (PXAT 2^63-1 answered 9223372036854776000)', async () => {
    const [b, r] = await Promise.all([ReplyConnection.open(node.respPort), ReplyConnection.open(pair.redis.port)]);
    try {
      // (An expiry past 2^53 ms is kept to a double's precision: docs/resp.md "What differs".)
      for (const cmd of [['SET', 'fz:px', 'v', 'PXAT', '9223372036854775807'], ['PEXPIRETIME', 'fz:px'], ['EXPIRETIME', 'fz:px']]) {
        assert.deepEqual(await b.call(cmd), await r.call(cmd), cmd.join(' '));
      }
      for (const c of [b, r]) {
        const pttl = await c.call(['PTTL', 'fz:px']);
        assert.match(String(pttl), /^:[0-9]{1,19}$/);
        assert.ok(BigInt(String(pttl).slice(1)) <= 2n ** 63n - 1n);
      }
    } finally {
      b.close();
      r.close();
    }
  });

  test('keyspace notifications: setbit, copy_to, bitop as set/del', async () => {
    await io.config('SET', 'notify-keyspace-events', 'KEA');
    const sub = new Redis({ port: node.respPort, host: '127.0.0.1' });
    try {
      const got: string[] = [];
      sub.on('pmessage', (_p: string, ch: string, msg: string) => {
        if (ch.startsWith('__keyevent')) got.push(`${ch.slice('__keyevent@0__:'.length)} ${msg}`);
      });
      await sub.psubscribe('__keyevent@0__:*');
      await io.setbit('n:b', 3, 1);
      await io.setbit('n:b', 3, 1); // no change: no event (Redis 7.2)
      await io.call('COPY', 'n:b', 'n:c');
      await io.call('COPY', 'n:b', 'n:c', 'REPLACE'); // one event: the replaced value goes silently
      await io.call('BITOP', 'NOT', 'n:d', 'n:c');
      await io.call('BITOP', 'AND', 'n:d', 'n:none');
      const until = Date.now() + 5000;
      while (got.length < 5 && Date.now() < until) await sleep(20);
      await sleep(100);
      assert.deepEqual(got, ['setbit n:b', 'copy_to n:c', 'copy_to n:c', 'set n:d', 'del n:d']);
    } finally {
      await io.config('SET', 'notify-keyspace-events', '');
      sub.disconnect();
    }
  });
});

test('the AOF replays SETBIT, BITOP and COPY (with its TTL) after a restart', async () => {
  await acrossRestart(
    async (io) => {
      await io.setbit('c/b', 10, 1);
      await io.set('c/x', 'ab');
      await io.call('BITOP', 'XOR', 'c/o', 'c/b', 'c/x');
      await io.set('c/t', 'v', 'EX', 1000);
      await io.call('COPY', 'c/t', 'c/t2');
      await io.sadd('c/s', 'a', 'b');
      await io.call('COPY', 'c/s', 'c/s2');
      return io.get('c/o');
    },
    async (io, want) => {
      assert.equal(await io.getbit('c/b', 10), 1);
      assert.equal(await io.get('c/o'), want);
      assert.equal(await io.get('c/t2'), 'v');
      const ttl = await io.ttl('c/t2');
      assert.ok(ttl > 990 && ttl <= 1000, `TTL ${ttl}`);
      assert.deepEqual((await io.smembers('c/s2')).sort(), ['a', 'b']);
    },
  );
});
