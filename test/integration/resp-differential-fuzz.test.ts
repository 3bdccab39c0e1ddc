/**
 * A seeded differential fuzz of the RESP listener against a real redis-server: random command
 * sequences over a small key space (8 keys, some with hash tags, so that commands collide and
 * meet keys of every type) and a small value space (numbers, negative numbers, floats, `inf`,
 * empty strings, binary bytes, long strings), sent to both servers; every reply must be the same.
 * Wrong arity, wrong types and bad numbers are generated too and must give the same error text.
 *
 * Each run prints its seeds; `BEACON_FUZZ_SEED=<n>` replays one seed (and `BEACON_FUZZ_COMMANDS`
 * sets the commands per seed). On the first mismatch the test fails with the seed, the index of
 * the command, the command, both replies and a shrunk history that still shows the mismatch.
 *
 * Only what is legitimately not deterministic is normalised: the order of set members and of
 * hash fields (unspecified in Redis), TTLs (within a tolerance: the two servers are asked at
 * slightly different moments), sorted-set scores printed by redis-server 7.0's `%.17g` where
 * Redis 7.2 (which Beacon follows, docs/resp.md "Commands") prints the shortest form of the same
 * double, and lex ranges over members of different scores (unspecified in Redis).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { prng } from '../helpers/random.js';
import { startBesideRedis, type SideBySide } from './resp-helpers.js';
import { ReplyConnection, mapReply, type Reply } from './resp-fuzz-helpers.js';

/** Commands per seed, and seeds per run (10 in CI; `BEACON_FUZZ_SEEDS` for local runs of many). */
const COMMANDS = Number(process.env.BEACON_FUZZ_COMMANDS ?? 1500);
const SEEDS = process.env.BEACON_FUZZ_SEED !== undefined ? [Number(process.env.BEACON_FUZZ_SEED)] : Array.from({ length: Number(process.env.BEACON_FUZZ_SEEDS ?? 10) }, (_, i) => (Date.now() + i * 7919) % 1_000_000);

/** Local triage: log every mismatch and go on (the test still fails at the end) instead of stopping and shrinking. */
const KEEP_GOING = process.env.BEACON_FUZZ_KEEP_GOING === '1';

/** How a reply is normalised before comparing. */
type Norm = 'sorted' | 'pairs' | 'ttl' | 'pttl' | 'scores' | 'lex' | 'longdouble' | 'exec' | 'expirecond';

/** One generated command: its arguments, the keys it touches, how to compare its reply. */
interface Cmd {
  args: string[];
  keys: string[];
  norm?: Norm;
  /** Sent on the RESP3 connection of each server (after HELLO 3) instead of the RESP2 one. */
  resp3?: boolean;
  /** Queued in a MULTI: its reply is +QUEUED or an error, compared exactly (its norm applies in EXEC). */
  queued?: boolean;
  /** EXEC: how each queued command's reply is normalised. */
  sub?: (Norm | undefined)[];
}

const KEYS = ['k1', 'k2', '{t}a', '{t}b', '{t}c', 'n', '{u}x', 'x{u}y'];
const LONG = 'L'.repeat(300);
const VALUES = ['0', '1', '-1', '7', '42', '-13', '3.5', '-0.25', '1e3', 'inf', '-inf', '+inf', 'nan', '', 'a', 'b', 'c', 'abc', 'hello', ' 1', '1 ', '0x10', '007', '9223372036854775807', '-9223372036854775808', '9223372036854775808', '\x00\xff\x80bin', '\r\n', LONG, '10.5'];
const MEMBERS = ['a', 'b', 'c', 'd', '1', '2', '', 'zz'];
const FIELDS = ['f1', 'f2', 'f3', '1', ''];
const INTS = ['0', '1', '2', '3', '-1', '-2', '5', '10', '-100', '100'];
const BAD_INTS = ['x', '1.5', '', '9223372036854775808', '-9223372036854775809', ' 1', '1e2', '0x1'];
const FLOATS = ['0', '1', '-1', '1.5', '-2.25', '0.1', '1e2', '+inf', '-inf', 'inf', '3', '10.5', '-0'];
const BAD_FLOATS = ['x', 'nan', '', '1..2', '1e', ' 1'];
const SCORE_BOUNDS = ['-inf', '+inf', '0', '1', '(1', '2.5', '(2.5', '-1', '(-1', '10', 'inf', '(inf'];
const BAD_SCORE_BOUNDS = ['x', '((1', 'nan', ''];
const LEX_BOUNDS = ['-', '+', '[a', '(a', '[b', '(c', '[zz', '[', '('];
const BAD_LEX_BOUNDS = ['a', 'b', '', '{a'];
const TTLS = ['1000', '5000', '100000', '86400'];
const BAD_TTLS = ['0', '-1', 'x', '9223372036854775807', '1.5'];

/** A random generator bound to one seed. */
class Gen {
  readonly rnd: () => number;
  constructor(seed: number) {
    this.rnd = prng(seed);
  }
  int(n: number): number {
    return Math.floor(this.rnd() * n);
  }
  chance(p: number): boolean {
    return this.rnd() < p;
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)] as T;
  }
  /** Mostly from `good`, sometimes from `bad`. */
  mostly(good: readonly string[], bad: readonly string[], p = 0.06): string {
    return this.chance(p) ? this.pick(bad) : this.pick(good);
  }
  key(): string {
    return this.pick(KEYS);
  }
  keys(min: number, max: number): string[] {
    return Array.from({ length: min + this.int(max - min + 1) }, () => this.key());
  }
  val(): string {
    return this.pick(VALUES);
  }
  i(): string {
    return this.mostly(INTS, BAD_INTS);
  }
  f(): string {
    return this.mostly(FLOATS, BAD_FLOATS);
  }
}

/** The command generators, by group; each returns the arguments and the keys touched. */
type Make = (g: Gen) => Cmd;

const k1 = (args: string[], key: string, norm?: Norm): Cmd => ({ args, keys: [key], ...(norm ? { norm } : {}) });

function setCmd(g: Gen): Cmd {
  const k = g.key();
  const args = ['SET', k, g.val()];
  const opts: string[][] = [];
  if (g.chance(0.3)) opts.push([g.pick(['NX', 'XX', 'nx'])]);
  if (g.chance(0.25)) opts.push(['GET']);
  if (g.chance(0.35)) {
    const e = g.pick(['EX', 'PX', 'KEEPTTL', 'ex', 'EXAT', 'PXAT']);
    if (e === 'KEEPTTL') opts.push([e]);
    else if (e === 'EXAT' || e === 'PXAT') opts.push([e, g.chance(0.8) ? '1' : g.pick(BAD_TTLS)]); // a past time: the key is deleted
    else opts.push([e, g.mostly(TTLS, BAD_TTLS, 0.15)]);
  }
  // Rarely a contradictory or repeated option: a syntax error in both.
  if (g.chance(0.04)) opts.push([g.pick(['NX', 'XX', 'GET', 'KEEPTTL', 'EX', 'PX', 'BOGUS'])]);
  for (let i = opts.length - 1; i > 0; i--) {
    const j = g.int(i + 1);
    [opts[i], opts[j]] = [opts[j] as string[], opts[i] as string[]];
  }
  return { args: [...args, ...opts.flat()], keys: [k], norm: 'ttl' };
}

function expireCmd(g: Gen): Cmd {
  const k = g.key();
  const name = g.pick(['EXPIRE', 'PEXPIRE']);
  const ttl = g.chance(0.85) ? (name === 'PEXPIRE' ? String(Number(g.pick(TTLS)) * 1000) : g.pick(TTLS)) : g.pick(BAD_TTLS);
  const args = [name, k, ttl];
  if (g.chance(0.5)) args.push(g.pick(['NX', 'XX', 'GT', 'LT', 'gt']));
  if (g.chance(0.05)) args.push(g.pick(['NX', 'XX', 'GT', 'LT', 'BOGUS']));
  // GT/LT against an expiry set the ms before for the same duration is decided by the clock.
  return k1(args, k, args.some((a) => /^(GT|LT)$/i.test(a)) ? 'expirecond' : undefined);
}

function zaddCmd(g: Gen): Cmd {
  const k = g.key();
  const args = ['ZADD', k];
  if (g.chance(0.3)) args.push(g.pick(['NX', 'XX']));
  if (g.chance(0.25)) args.push(g.pick(['GT', 'LT']));
  if (g.chance(0.3)) args.push('CH');
  const incr = g.chance(0.2);
  if (incr) args.push('INCR');
  const pairs = incr && g.chance(0.9) ? 1 : 1 + g.int(3);
  for (let i = 0; i < pairs; i++) args.push(g.mostly(FLOATS.filter((f) => f !== '-0'), BAD_FLOATS), g.pick(MEMBERS));
  return { args, keys: [k], norm: 'scores' };
}

function zrangeCmd(g: Gen): Cmd {
  const k = g.key();
  const by = g.pick(['', '', 'BYSCORE', 'BYLEX']);
  const rev = g.chance(0.3);
  let lo: string;
  let hi: string;
  if (by === 'BYSCORE') {
    lo = g.mostly(SCORE_BOUNDS, BAD_SCORE_BOUNDS);
    hi = g.mostly(SCORE_BOUNDS, BAD_SCORE_BOUNDS);
  } else if (by === 'BYLEX') {
    lo = g.mostly(LEX_BOUNDS, BAD_LEX_BOUNDS);
    hi = g.mostly(LEX_BOUNDS, BAD_LEX_BOUNDS);
  } else {
    lo = g.i();
    hi = g.i();
  }
  const args = ['ZRANGE', k, lo, hi];
  if (by) args.push(by);
  if (rev) args.push('REV');
  if (g.chance(by ? 0.4 : 0.05)) args.push('LIMIT', g.pick(['0', '1', '2', '-1']), g.pick(['0', '1', '2', '-1', '5']));
  if (g.chance(by === 'BYLEX' ? 0.1 : 0.4)) args.push('WITHSCORES');
  return { args, keys: [k], norm: by === 'BYLEX' ? 'lex' : 'scores' };
}

function storeCmd(g: Gen, name: string): Cmd {
  const dst = g.key();
  const srcs = g.keys(1, 3);
  const args = [name, dst, g.chance(0.95) ? String(srcs.length) : g.pick(['0', '-1', 'x', '9']), ...srcs];
  if (g.chance(0.3)) args.push('WEIGHTS', ...srcs.map(() => g.mostly(['1', '2', '-1', '0.5', '0', 'inf'], ['x', 'nan'])));
  if (g.chance(0.3)) args.push('AGGREGATE', g.mostly(['SUM', 'MIN', 'MAX', 'min'], ['AVG']));
  return { args, keys: [dst, ...srcs] };
}

const GENERATORS: [number, Make][] = [
  // Strings
  [8, setCmd],
  [4, (g) => k1(['GET', g.key()], '')],
  [1, (g) => k1(['GETDEL', g.key()], '')],
  [1, (g) => k1(['GETRANGE', g.key(), g.i(), g.i()], '')],
  // (No offset near 512 MiB with a value: both servers would build a 512 MiB string.)
  [2, (g) => k1(['SETRANGE', g.key(), g.chance(0.95) ? g.pick(['0', '1', '3', '10', '20']) : g.pick(['-1', 'x', '536870912']), g.pick(['', 'xy', 'hello', '\x00'])], '')],
  [2, (g) => k1(['APPEND', g.key(), g.val()], '')],
  [1, (g) => k1(['STRLEN', g.key()], '')],
  [2, (g) => k1([g.pick(['INCR', 'DECR']), g.key()], '')],
  [2, (g) => k1([g.pick(['INCRBY', 'DECRBY']), g.key(), g.mostly(INTS, [...BAD_INTS, '9223372036854775807', '-9223372036854775808'], 0.15)], '')],
  [2, (g) => k1(['INCRBYFLOAT', g.key(), g.mostly(FLOATS, BAD_FLOATS, 0.12)], '', 'longdouble')],
  [2, (g) => {
    const ks = g.keys(1, 3);
    return { args: [g.pick(['MSET', 'MSETNX']), ...ks.flatMap((k) => [k, g.val()])], keys: ks };
  }],
  [2, (g) => {
    const ks = g.keys(1, 4);
    return { args: ['MGET', ...ks], keys: ks };
  }],
  [1, (g) => k1(['GETSET', g.key(), g.val()], '')],
  [1, (g) => k1(['SETNX', g.key(), g.val()], '')],
  [1, (g) => k1(['GETEX', g.key(), ...g.pick([[], ['PERSIST'], ['EX', g.pick(TTLS)], ['PX', '100000000'], ['EX', g.pick(BAD_TTLS)]])], '')],
  // Keys
  [2, (g) => {
    const ks = g.keys(1, 3);
    return { args: [g.pick(['DEL', 'EXISTS', 'UNLINK', 'TOUCH']), ...ks], keys: ks };
  }],
  [2, (g) => k1(['TYPE', g.key()], '')],
  [2, (g) => {
    const a = g.key();
    const b = g.key();
    return { args: [g.pick(['RENAME', 'RENAMENX']), a, b], keys: [a, b] };
  }],
  [1, (g) => {
    const a = g.key();
    const b = g.key();
    return { args: ['COPY', a, b, ...(g.chance(0.4) ? ['REPLACE'] : [])], keys: [a, b] };
  }],
  [1, (g) => k1(['PERSIST', g.key()], '')],
  [2, (g) => k1(['TTL', g.key()], '', 'ttl')],
  [1, (g) => k1(['PTTL', g.key()], '', 'pttl')],
  [2, expireCmd],
  // Hashes
  [4, (g) => {
    const k = g.key();
    const n = 1 + g.int(3);
    return k1([g.pick(['HSET', 'HSET', 'HMSET']), k, ...Array.from({ length: n }, () => [g.pick(FIELDS), g.val()]).flat()], k);
  }],
  [1, (g) => k1(['HSETNX', g.key(), g.pick(FIELDS), g.val()], '')],
  [2, (g) => k1(['HGET', g.key(), g.pick(FIELDS)], '')],
  [1, (g) => k1(['HMGET', g.key(), g.pick(FIELDS), g.pick(FIELDS)], '')],
  [1, (g) => k1(['HDEL', g.key(), g.pick(FIELDS), ...(g.chance(0.5) ? [g.pick(FIELDS)] : [])], '')],
  [1, (g) => k1([g.pick(['HEXISTS', 'HSTRLEN']), g.key(), g.pick(FIELDS)], '')],
  [1, (g) => k1(['HLEN', g.key()], '')],
  [1, (g) => k1(['HGETALL', g.key()], '', 'pairs')],
  [1, (g) => k1([g.pick(['HKEYS', 'HVALS']), g.key()], '', 'sorted')],
  [2, (g) => k1(['HINCRBY', g.key(), g.pick(FIELDS), g.mostly(INTS, BAD_INTS, 0.1)], '')],
  [1, (g) => k1(['HINCRBYFLOAT', g.key(), g.pick(FIELDS), g.mostly(FLOATS, BAD_FLOATS, 0.1)], '', 'longdouble')],
  // Lists
  [5, (g) => {
    const k = g.key();
    return k1([g.pick(['LPUSH', 'RPUSH', 'LPUSHX', 'RPUSHX', 'RPUSH']), k, ...Array.from({ length: 1 + g.int(3) }, () => g.pick(MEMBERS))], k);
  }],
  [3, (g) => k1([g.pick(['LPOP', 'RPOP']), g.key(), ...(g.chance(0.4) ? [g.mostly(['0', '1', '2', '5'], ['-1', 'x'], 0.15)] : [])], '')],
  [3, (g) => k1(['LRANGE', g.key(), g.i(), g.i()], '')],
  [1, (g) => k1(['LINDEX', g.key(), g.i()], '')],
  [1, (g) => k1(['LSET', g.key(), g.i(), g.pick(MEMBERS)], '')],
  [1, (g) => k1(['LINSERT', g.key(), g.mostly(['BEFORE', 'AFTER', 'after'], ['MIDDLE']), g.pick(MEMBERS), g.pick(MEMBERS)], '')],
  [1, (g) => k1(['LREM', g.key(), g.i(), g.pick(MEMBERS)], '')],
  [1, (g) => k1(['LTRIM', g.key(), g.i(), g.i()], '')],
  [1, (g) => k1(['LLEN', g.key()], '')],
  [2, (g) => {
    const args = ['LPOS', g.key(), g.pick(MEMBERS)];
    if (g.chance(0.4)) args.push('RANK', g.mostly(['1', '2', '-1', '-2'], ['0', 'x']));
    if (g.chance(0.4)) args.push('COUNT', g.mostly(['0', '1', '2'], ['-1', 'x']));
    if (g.chance(0.2)) args.push('MAXLEN', g.mostly(['0', '1', '3'], ['-1', 'x']));
    return k1(args, '');
  }],
  [2, (g) => {
    const a = g.key();
    const b = g.key();
    if (g.chance(0.2)) return { args: ['RPOPLPUSH', a, b], keys: [a, b] };
    return { args: ['LMOVE', a, b, g.mostly(['LEFT', 'RIGHT'], ['UP']), g.mostly(['LEFT', 'RIGHT'], ['DOWN'])], keys: [a, b] };
  }],
  // Sets
  [5, (g) => {
    const k = g.key();
    return k1([g.pick(['SADD', 'SADD', 'SREM']), k, ...Array.from({ length: 1 + g.int(3) }, () => g.pick(MEMBERS))], k);
  }],
  [2, (g) => k1(['SMEMBERS', g.key()], '', 'sorted')],
  [1, (g) => k1(['SISMEMBER', g.key(), g.pick(MEMBERS)], '')],
  [1, (g) => k1(['SMISMEMBER', g.key(), g.pick(MEMBERS), g.pick(MEMBERS)], '')],
  [1, (g) => k1(['SCARD', g.key()], '')],
  [3, (g) => {
    const ks = g.keys(1, 3);
    return { args: [g.pick(['SINTER', 'SUNION', 'SDIFF']), ...ks], keys: ks, norm: 'sorted' };
  }],
  [2, (g) => {
    const ks = g.keys(2, 4);
    return { args: [g.pick(['SINTERSTORE', 'SUNIONSTORE', 'SDIFFSTORE']), ...ks], keys: ks };
  }],
  [1, (g) => {
    const ks = g.keys(1, 3);
    return { args: ['SINTERCARD', String(ks.length), ...ks, ...(g.chance(0.3) ? ['LIMIT', g.mostly(['0', '1', '2'], ['-1'])] : [])], keys: ks };
  }],
  [1, (g) => {
    const a = g.key();
    const b = g.key();
    return { args: ['SMOVE', a, b, g.pick(MEMBERS)], keys: [a, b] };
  }],
  // Sorted sets
  [6, zaddCmd],
  [2, (g) => k1(['ZSCORE', g.key(), g.pick(MEMBERS)], '', 'scores')],
  [1, (g) => k1(['ZMSCORE', g.key(), g.pick(MEMBERS), g.pick(MEMBERS)], '', 'scores')],
  [2, (g) => k1(['ZINCRBY', g.key(), g.mostly(FLOATS, BAD_FLOATS, 0.1), g.pick(MEMBERS)], '', 'scores')],
  [5, zrangeCmd],
  [1, (g) => k1([g.pick(['ZRANGEBYSCORE', 'ZREVRANGEBYSCORE']), g.key(), g.mostly(SCORE_BOUNDS, BAD_SCORE_BOUNDS), g.mostly(SCORE_BOUNDS, BAD_SCORE_BOUNDS), ...(g.chance(0.3) ? ['WITHSCORES'] : [])], '', 'scores')],
  // ZRANK … WITHSCORE is Redis 7.2; the redis-server compared against is 7.0, so it is not generated.
  [2, (g) => k1([g.pick(['ZRANK', 'ZREVRANK']), g.key(), g.pick(MEMBERS)], '')],
  [2, (g) => k1(['ZREM', g.key(), g.pick(MEMBERS), ...(g.chance(0.4) ? [g.pick(MEMBERS)] : [])], '')],
  [1, (g) => k1(['ZCARD', g.key()], '')],
  [1, (g) => k1(['ZCOUNT', g.key(), g.mostly(SCORE_BOUNDS, BAD_SCORE_BOUNDS), g.mostly(SCORE_BOUNDS, BAD_SCORE_BOUNDS)], '')],
  [1, (g) => k1(['ZLEXCOUNT', g.key(), g.mostly(LEX_BOUNDS, BAD_LEX_BOUNDS), g.mostly(LEX_BOUNDS, BAD_LEX_BOUNDS)], '', 'lex')],
  [2, (g) => k1([g.pick(['ZPOPMIN', 'ZPOPMAX']), g.key(), ...(g.chance(0.4) ? [g.mostly(['0', '1', '2', '5'], ['-1', 'x'], 0.15)] : [])], '', 'scores')],
  [1, (g) => k1([g.pick(['ZREMRANGEBYRANK', 'ZREMRANGEBYSCORE']), g.key(), g.pick(['0', '1', '-1', '(1']), g.pick(['0', '2', '-1', '+inf'])], '')],
  [2, (g) => ({ ...storeCmd(g, g.pick(['ZUNIONSTORE', 'ZINTERSTORE'])), norm: 'scores' })],
  // Bitmaps
  [2, (g) => k1(['SETBIT', g.key(), g.mostly(['0', '1', '7', '8', '15', '63', '100'], ['-1', 'x', '4294967296']), g.mostly(['0', '1'], ['2', 'x'])], '')],
  [1, (g) => k1(['GETBIT', g.key(), g.mostly(['0', '1', '7', '100', '9999'], ['-1', 'x'])], '')],
  [1, (g) => {
    const args = ['BITCOUNT', g.key()];
    if (g.chance(0.6)) args.push(g.i(), g.i());
    if (args.length > 2 && g.chance(0.4)) args.push(g.mostly(['BYTE', 'BIT'], ['WORD']));
    return k1(args, '');
  }],
  [1, (g) => {
    const args = ['BITPOS', g.key(), g.mostly(['0', '1'], ['2'])];
    if (g.chance(0.6)) args.push(g.i());
    if (args.length > 3 && g.chance(0.6)) args.push(g.i());
    if (args.length > 4 && g.chance(0.4)) args.push(g.mostly(['BYTE', 'BIT'], ['WORD']));
    return k1(args, '');
  }],
  // More of each type.
  [1, (g) => k1([g.pick(['SETEX', 'PSETEX']), g.key(), g.mostly(['1000', '100000'], BAD_TTLS, 0.2), g.val()], '', 'ttl')],
  [1, (g) => k1([g.pick(['EXPIRETIME', 'PEXPIRETIME']), g.key()], '', 'pttl')],
  [1, (g) => k1(['SUBSTR', g.key(), g.i(), g.i()], '')],
  [1, (g) => {
    const a = g.key();
    const b = g.key();
    return { args: ['LCS', a, b, ...g.pick([[], ['LEN'], ['IDX'], ['IDX', 'WITHMATCHLEN', 'MINMATCHLEN', '1']])], keys: [a, b] };
  }],
  [1, (g) => {
    const ks = g.keys(2, 3);
    const op = g.mostly(['AND', 'OR', 'XOR', 'NOT'], ['NAND']);
    return { args: ['BITOP', op, ...(op === 'NOT' && g.chance(0.8) ? ks.slice(0, 2) : ks)], keys: ks };
  }],
  [1, (g) => k1([g.pick(['ZREVRANGE', 'ZRANGE']), g.key(), g.i(), g.i(), ...(g.chance(0.4) ? ['WITHSCORES'] : [])], '', 'scores')],
  [1, (g) => k1([g.pick(['ZRANGEBYLEX', 'ZREVRANGEBYLEX', 'ZREMRANGEBYLEX']), g.key(), g.mostly(LEX_BOUNDS, BAD_LEX_BOUNDS), g.mostly(LEX_BOUNDS, BAD_LEX_BOUNDS)], '', 'lex')],
  [1, (g) => {
    const dst = g.key();
    const src = g.key();
    const byScore = g.chance(0.5);
    const args = ['ZRANGESTORE', dst, src, ...(byScore ? [g.mostly(SCORE_BOUNDS, BAD_SCORE_BOUNDS), g.mostly(SCORE_BOUNDS, BAD_SCORE_BOUNDS), 'BYSCORE'] : [g.i(), g.i()])];
    if (byScore && g.chance(0.3)) args.push('LIMIT', g.pick(['0', '1']), g.pick(['1', '-1']));
    return { args, keys: [dst, src] };
  }],
  [1, (g) => ({ ...storeCmd(g, 'ZDIFFSTORE'), norm: 'scores' })],
  [1, (g) => {
    const ks = g.keys(1, 3);
    const name = g.pick(['ZUNION', 'ZINTER', 'ZDIFF', 'ZINTERCARD']);
    const args = [name, String(ks.length), ...ks];
    if (name === 'ZINTERCARD') {
      if (g.chance(0.3)) args.push('LIMIT', g.mostly(['0', '1'], ['-1']));
    } else if (g.chance(0.5)) args.push('WITHSCORES');
    // ZUNION/ZINTER/ZDIFF reply in score order; members of one score are in member order.
    return { args, keys: ks, norm: 'scores' };
  }],
  [1, (g) => {
    const ks = g.keys(1, 2);
    const z = g.chance(0.5);
    const args = [z ? 'ZMPOP' : 'LMPOP', String(ks.length), ...ks, z ? g.mostly(['MIN', 'MAX'], ['MID']) : g.mostly(['LEFT', 'RIGHT'], ['UP'])];
    if (g.chance(0.4)) args.push('COUNT', g.mostly(['1', '2', '5'], ['0', '-1', 'x']));
    return { args, keys: ks, norm: 'scores' };
  }],
  [1, (g) => {
    const k = g.key();
    const args = [g.pick(['SORT', 'SORT_RO']), k];
    if (g.chance(0.3)) args.push('LIMIT', g.pick(['0', '1']), g.pick(['1', '2', '-1']));
    if (g.chance(0.3)) args.push(g.pick(['ASC', 'DESC']));
    if (g.chance(0.5)) args.push('ALPHA');
    return k1(args, k);
  }],
  // Unknown commands: the same error text, args echoed. (Commands that Redis has and Beacon
  // does not build, docs/resp.md "Not built", are left out: redis-server would run them.)
  [1, (g) => ({ args: [g.pick(['FOOBAR', 'getx', 'SETT']), ...g.keys(0, 2)], keys: [] })],
];

const TOTAL_WEIGHT = GENERATORS.reduce((s, [w]) => s + w, 0);

/** One random command; the keys it names are its arguments that are keys of KEYS. */
function generate(g: Gen): Cmd {
  let r = g.int(TOTAL_WEIGHT);
  let make: Make = GENERATORS[0]?.[1] as Make;
  for (const [w, m] of GENERATORS) {
    if (r < w) {
      make = m;
      break;
    }
    r -= w;
  }
  const cmd = make(g);
  if (cmd.keys.length === 1 && cmd.keys[0] === '') cmd.keys = [cmd.args[1] as string];
  // Wrong arity: drop trailing arguments, or add one. (Not to ZRANK/ZREVRANK: Redis 7.2, which
  // Beacon follows, reads a 4th argument as WITHSCORE (a syntax error otherwise) where the
  // redis-server 7.0 compared against has a fixed arity.)
  if (g.chance(0.03) && cmd.args.length > 1) cmd.args = cmd.args.slice(0, 1 + g.int(cmd.args.length - 1));
  else if (g.chance(0.015) && !/^Z(REV)?RANK$/.test(cmd.args[0] as string)) cmd.args.push(g.pick(['extra', '1', 'NX']));
  cmd.keys = cmd.keys.filter((k) => KEYS.includes(k));
  if (g.chance(0.25)) cmd.resp3 = true;
  return cmd;
}

/**
 * The next commands: usually one; sometimes a MULTI block (MULTI, 1–3 commands, EXEC or
 * DISCARD) on one connection, whose EXEC compares each queued command's reply as that command
 * is compared alone. (Commands whose check needs another look at redis-server's state, lex
 * ranges and the long-double tolerance, are not queued.)
 */
function generateBlock(g: Gen): Cmd[] {
  if (!g.chance(0.04)) return [generate(g)];
  const resp3 = g.chance(0.25);
  const inner: Cmd[] = [];
  for (let n = 1 + g.int(3); inner.length < n; ) {
    const c = generate(g);
    if (c.norm === 'lex' || c.norm === 'longdouble') continue;
    inner.push({ ...c, ...(resp3 ? { resp3 } : { resp3: false }) });
  }
  const keys = [...new Set(inner.flatMap((c) => c.keys))];
  const end = g.chance(0.9) ? 'EXEC' : 'DISCARD';
  return [{ args: ['MULTI'], keys, resp3 }, ...inner.map((c) => ({ ...c, queued: true })), { args: [end], keys, resp3, norm: 'exec', sub: inner.map((c) => c.norm) }];
}

/** Sorts the elements of an array or RESP3 set reply (unspecified order in Redis). */
function sortElements(r: Reply): Reply {
  if (Array.isArray(r)) return [...r].sort(cmpReply);
  if (r !== null && typeof r === 'object' && 'set' in r) return { set: [...r.set].sort(cmpReply) };
  return r;
}

function cmpReply(a: Reply, b: Reply): number {
  const x = JSON.stringify(a);
  const y = JSON.stringify(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

/** A double printed by redis-server 7.0 with `%.17g` and by Redis 7.2 in its shortest form: compare the number. */
function canonicalDouble(s: string): string {
  const m = /^([$,])(-?[0-9.]+(e[-+]?[0-9]+)?)$/i.exec(s);
  if (m === null) return s;
  const n = Number(m[2]);
  return Number.isFinite(n) ? `${m[1]}${String(n)}` : s;
}


/** Normalises `r` as `norm` says. TTLs are compared separately (see {@link sameReply}). */
function normalise(r: Reply, norm: Norm | undefined): Reply {
  switch (norm) {
    case 'sorted':
      return sortElements(r);
    case 'pairs': {
      if (Array.isArray(r)) {
        const pairs: Reply[] = [];
        for (let i = 0; i < r.length; i += 2) pairs.push([r[i] as Reply, r[i + 1] as Reply]);
        return pairs.sort(cmpReply);
      }
      if (r !== null && typeof r === 'object' && 'map' in r) return { map: [...r.map].sort((a, b) => cmpReply(a[0], b[0])) };
      return r;
    }
    case 'scores':
      return mapReply(r, canonicalDouble);
    default:
      return r;
  }
}

/**
 * KNOWN DIVERGENCE (documented in docs/resp.md "What differs"): INCRBYFLOAT and HINCRBYFLOAT
 * compute in doubles where Redis uses long double, so results can differ in their last digits
 * (and past 2^53). Two results that are the same double within 1e-15 relative count as equal;
 * the caller then copies redis-server's value to Beacon so the two keyspaces agree again.
 */
function sameLongDouble(got: Reply, want: Reply): boolean {
  if (typeof got !== 'string' || typeof want !== 'string' || !/^[$,]/.test(got) || got[0] !== want[0]) return false;
  const a = Number(got.slice(1));
  const b = Number(want.slice(1));
  return Number.isFinite(a) && Number.isFinite(b) && Math.abs(a - b) <= 1e-15 * Math.max(Math.abs(a), Math.abs(b));
}

/** How a command's own reply is compared: a queued command's +QUEUED exactly. */
const queuedNorm = (c: Cmd): Norm | undefined => (c.queued === true ? undefined : c.norm);

/** True when Beacon's reply `got` matches redis-server's `want` for a command normalised by `norm`. */
function sameReply(got: Reply, want: Reply, norm: Norm | undefined, sub?: (Norm | undefined)[]): boolean {
  if (norm === 'exec' && Array.isArray(got) && Array.isArray(want) && sub !== undefined) {
    return got.length === want.length && got.every((r, i) => sameReply(r, want[i] as Reply, sub[i]));
  }
  if ((norm === 'ttl' || norm === 'pttl') && typeof got === 'string' && typeof want === 'string' && got.startsWith(':') && want.startsWith(':')) {
    const a = Number(got.slice(1));
    const b = Number(want.slice(1));
    // Negative TTLs (-1 no expiry, -2 no key) are exact; positive ones within 3 s.
    if (a < 0 || b < 0) return a === b;
    return Math.abs(a - b) <= (norm === 'ttl' ? 3 : 3000);
  }
  return JSON.stringify(normalise(got, norm)) === JSON.stringify(normalise(want, norm));
}

const show = (r: Reply | undefined): string => JSON.stringify(r)?.slice(0, 600) ?? 'undefined';
const showCmd = (c: Cmd): string => (c.resp3 ? '[RESP3] ' : '') + c.args.map((a) => JSON.stringify(a.length > 40 ? a.slice(0, 20) + `…(${a.length} bytes)` : a)).join(' ');

/** Both servers' connections (RESP2 and RESP3). */
interface Conns {
  b2: ReplyConnection;
  b3: ReplyConnection;
  r2: ReplyConnection;
  r3: ReplyConnection;
}

describe('RESP differential fuzz against redis-server', () => {
  let pair: SideBySide;
  let conns: Conns;

  before(async () => {
    pair = await startBesideRedis({ '': { storage: 'memory' } });
    const open = async (port: number): Promise<[ReplyConnection, ReplyConnection]> => {
      const c2 = await ReplyConnection.open(port);
      const c3 = await ReplyConnection.open(port);
      const hello = await c3.call(['HELLO', '3']);
      assert.ok(hello !== null && typeof hello === 'object' && 'map' in hello, 'HELLO 3 answers a map');
      return [c2, c3];
    };
    const [b2, b3] = await open(pair.node.respPort);
    const [r2, r3] = await open(pair.redis.port);
    conns = { b2, b3, r2, r3 };
  });
  after(async () => {
    for (const c of Object.values(conns ?? {})) c.close();
    await pair?.stop();
  });

  /** Sends `cmd` to both servers; resolves with [Beacon's reply, redis-server's reply]. */
  async function both(cmd: Cmd): Promise<[Reply, Reply]> {
    const [b, r] = cmd.resp3 ? [conns.b3, conns.r3] : [conns.b2, conns.r2];
    const want = await r.call(cmd.args);
    let got: Reply;
    try {
      got = await b.call(cmd.args);
    } catch (err) {
      throw new Error(`Beacon did not answer ${showCmd(cmd)}: ${(err as Error).message}`);
    }
    return [got, want];
  }

  async function flush(): Promise<void> {
    // A replayed history may stop inside a MULTI.
    for (const c of Object.values(conns)) await c.call(['DISCARD']);
    assert.equal(await conns.b2.call(['FLUSHALL']), '+OK');
    assert.equal(await conns.r2.call(['FLUSHALL']), '+OK');
  }

  /**
   * Whether redis-server's sorted set at `key` has members of different scores: a lex range over
   * it is unspecified (Redis documents the result of BYLEX commands as unspecified then).
   */
  async function mixedScores(key: string): Promise<boolean> {
    const all = await conns.r2.call(['ZRANGE', key, '0', '-1', 'WITHSCORES']);
    if (!Array.isArray(all)) return false;
    return new Set(all.filter((_, i) => i % 2 === 1).map((x) => JSON.stringify(x))).size > 1;
  }

  /** After an unspecified ZREMRANGEBYLEX: Beacon takes redis-server's sorted set (and TTL). */
  async function copyZset(key: string): Promise<void> {
    const all = await conns.r2.call(['ZRANGE', key, '0', '-1', 'WITHSCORES']);
    const pttl = await conns.r2.call(['PTTL', key]);
    await conns.b2.call(['DEL', key]);
    if (!Array.isArray(all) || all.length === 0) return;
    const pairs: string[] = [];
    for (let i = 0; i < all.length; i += 2) pairs.push((all[i + 1] as string).slice(1), (all[i] as string).slice(1));
    await conns.b2.call(['ZADD', key, ...pairs]);
    if (typeof pttl === 'string' && Number(pttl.slice(1)) > 0) await conns.b2.call(['PEXPIRE', key, pttl.slice(1)]);
  }

  /**
   * Sends `cmd` to both servers; `same` tells whether the replies agree, once normalised, or
   * differ only where Redis leaves the result unspecified (a lex range over mixed scores) or by a
   * KNOWN DIVERGENCE (long double); then Beacon's state is made redis-server's again.
   */
  async function send(cmd: Cmd): Promise<{ got: Reply; want: Reply; same: boolean }> {
    const mixed = cmd.norm === 'lex' && cmd.queued !== true && cmd.args[1] !== undefined ? await mixedScores(cmd.args[1]) : false;
    const [got, want] = await both(cmd);
    if (sameReply(got, want, queuedNorm(cmd), cmd.sub)) return { got, want, same: true };
    if (mixed) {
      if (cmd.args[0] === 'ZREMRANGEBYLEX') await copyZset(cmd.args[1] as string);
      return { got, want, same: true };
    }
    if (cmd.norm === 'longdouble' && sameLongDouble(got, want)) {
      await adoptLongDouble(cmd, want);
      return { got, want, same: true };
    }
    if (cmd.norm === 'expirecond' && cmd.queued !== true && [got, want].every((r) => r === ':0' || r === ':1')) {
      // EXPIRE … GT|LT for the same duration as the current expiry: the answer depends on whether
      // a millisecond passed since it was set. Equal when both servers' expiries still agree within 3 s.
      const [a, b] = [await conns.b2.call(['PTTL', cmd.args[1] as string]), await conns.r2.call(['PTTL', cmd.args[1] as string])];
      if (typeof a === 'string' && typeof b === 'string' && Math.abs(Number(a.slice(1)) - Number(b.slice(1))) <= 3000) return { got, want, same: true };
    }
    return { got, want, same: false };
  }

  /** After an INCRBYFLOAT/HINCRBYFLOAT result that differs only by long double precision: Beacon takes redis-server's value. */
  async function adoptLongDouble(cmd: Cmd, want: Reply): Promise<void> {
    const v = (want as string).slice(1);
    const key = cmd.args[1] as string;
    const r = cmd.args[0] === 'INCRBYFLOAT' ? await conns.b2.call(['SET', key, v, 'KEEPTTL']) : await conns.b2.call(['HSET', key, cmd.args[2] as string, v]);
    assert.ok(r === '+OK' || r === ':0', `copying redis-server's value: ${show(r)}`);
  }

  /** After a mismatch (BEACON_FUZZ_KEEP_GOING): deletes `keys` on both servers so that their states agree again. */
  async function resync(keys: string[]): Promise<void> {
    if (keys.length === 0) return;
    await conns.b2.call(['DEL', ...keys]);
    await conns.r2.call(['DEL', ...keys]);
  }

  /** Replays `history` on flushed servers; true when its last command still mismatches. */
  async function stillFails(history: Cmd[]): Promise<boolean> {
    await flush();
    for (let i = 0; i < history.length; i++) {
      const { same } = await send(history[i] as Cmd);
      if (i === history.length - 1) return !same;
      if (!same) return false; // an earlier mismatch: not the same failure
    }
    return false;
  }

  /** A shorter history whose last command still mismatches: only commands on related keys, then greedy removal. */
  async function shrink(history: Cmd[]): Promise<Cmd[]> {
    const last = history[history.length - 1] as Cmd;
    const related = new Set(last.keys);
    const kept: Cmd[] = [last];
    for (let i = history.length - 2; i >= 0; i--) {
      const c = history[i] as Cmd;
      if (c.keys.some((k) => related.has(k))) {
        kept.unshift(c);
        for (const k of c.keys) related.add(k);
      }
    }
    let best = (await stillFails(kept)) ? kept : history;
    // Then drop runs of earlier commands, halving the run length down to one command, while the
    // last one still fails (at most 300 replays).
    let replays = 0;
    for (let size = Math.max(1, Math.floor((best.length - 1) / 2)); size >= 1 && replays < 300; size = size === 1 ? 0 : Math.max(1, Math.floor(size / 2))) {
      for (let at = best.length - 1 - size; at >= 0 && replays < 300; at -= size) {
        const candidate = [...best.slice(0, at), ...best.slice(at + size)];
        replays++;
        if (await stillFails(candidate)) best = candidate;
      }
    }
    return best;
  }

  test(`${SEEDS.length} seed(s) × ${COMMANDS} random commands give the same replies as redis-server`, { timeout: Math.max(120_000, SEEDS.length * COMMANDS * 3) }, async () => {
    const started = Date.now();
    let mismatches = 0;
    for (const seed of SEEDS) {
      process.stderr.write(`resp differential fuzz seed ${seed} (BEACON_FUZZ_SEED=${seed} replays it)\n`);
      await flush();
      const g = new Gen(seed);
      const history: Cmd[] = [];
      let block: Cmd[] = [];
      for (let i = 0; i < COMMANDS || block.length > 0; i++) {
        if (block.length === 0) block = generateBlock(g);
        const cmd = block.shift() as Cmd;
        history.push(cmd);
        const { got, want, same } = await send(cmd).catch((err: Error) => {
          throw new Error(`seed ${seed} (BEACON_FUZZ_SEED=${seed}), command #${i}: ${err.message}; the last commands:\n${history.slice(-8).map((c) => `  ${showCmd(c)}`).join('\n')}`);
        });
        if (same) continue;
        if (KEEP_GOING) {
          // Local triage of many seeds: report every mismatch, carry on with redis-server's state.
          mismatches++;
          process.stderr.write(`MISMATCH seed ${seed} #${i}: ${showCmd(cmd)}\n  Beacon:       ${show(got)}\n  redis-server: ${show(want)}\n`);
          await resync(cmd.keys);
          continue;
        }
        const shrunk = await shrink(history);
        assert.fail(
          `seed ${seed} (BEACON_FUZZ_SEED=${seed}), command #${i}: ${showCmd(cmd)}\n` +
            `  Beacon:       ${show(got)}\n  redis-server: ${show(want)}\n` +
            `shortest history found that still shows it (${shrunk.length} of ${history.length} commands, from a FLUSHALL):\n` +
            shrunk.map((c) => `  ${showCmd(c)}`).join('\n'),
        );
      }
    }
    process.stderr.write(`resp differential fuzz: ${SEEDS.length * COMMANDS} commands in ${Date.now() - started} ms\n`);
    assert.equal(mismatches, 0, 'mismatches (BEACON_FUZZ_KEEP_GOING)');
  });
});
