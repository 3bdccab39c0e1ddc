/** The command table: every command Beacon answers, with Redis's arity, flags and key positions. */
import * as B from './cmd-bitmaps.js';
import * as BL from './cmd-blocking.js';
import * as C from './cmd-collections.js';
import * as O from './cmd-object.js';
import * as CL from './cmd-cluster.js';
import * as S from './cmd-server.js';
import * as T from './cmd-strings.js';
import * as SO from './cmd-sort.js';
import { NOT_INTEGER, SYNTAX, parseI64 } from './args.js';
import type { Handler } from './context.js';
import { RespError } from './keyspace.js';
import { R, type Reply } from './protocol.js';

/** How a command touches the keyspace, for authorisation: `read`/`write` per key; `admin` for the whole node. */
export type Access = 'read' | 'write' | 'admin' | 'none';

/** One command. `arity` as Redis: N exact (with the name), -N at least N. */
export interface CommandSpec {
  name: string;
  arity: number;
  access: Access;
  /** Redis's key positions: first, last (-1 the last argument), step; 0 0 0 for none. */
  keys: [number, number, number];
  /** Allowed before authentication. */
  noauth?: boolean;
  /** Not allowed inside MULTI (EXEC/DISCARD/MULTI/WATCH are handled by the connection). */
  noMulti?: boolean;
  /** Needs a memory namespace (lists, sets, sorted sets). */
  memoryOnly?: boolean;
  /** Redis's command group, for COMMAND DOCS. */
  group: string;
  /** Extra flags shown by COMMAND INFO. */
  flags?: string[];
  /**
   * The keys of a command whose keys follow a count argument (Redis's movable keys: SINTERCARD,
   * ZUNIONSTORE…): their indexes in the arguments after the name. Validates the count, throwing
   * the command's own Redis error, so a malformed count is refused before anything runs.
   */
  movableKeys?: (args: Buffer[]) => number[];
  /** A blocking command (BLPOP…): when its handler answers a block marker, the server parks the client (cmd-blocking.ts). */
  blocking?: boolean;
  /** A container command (CLIENT, CONFIG…): CLIENT LIST shows its last use as `name|subcommand`, as Redis 7 does. */
  container?: boolean;
  handler: Handler;
}

/** The EXEC family is run by the connection itself; these handlers are never called. */
const byConnection: Handler = () => R.error('ERR internal error');

const table: CommandSpec[] = [];
function def(name: string, arity: number, access: Access, keys: [number, number, number], group: string, handler: Handler, extra: Partial<CommandSpec> = {}): void {
  table.push({ name, arity, access, keys, group, handler, ...extra });
}
const K1: [number, number, number] = [1, 1, 1];
const K12: [number, number, number] = [1, 2, 1];
const KALL: [number, number, number] = [1, -1, 1];
const KNONE: [number, number, number] = [0, 0, 0];

/**
 * {@link CommandSpec.movableKeys} for `name`: a key count at argument `at` (0-based after the
 * name), that many keys after it, and with `dest` a destination key at argument 0. `style`
 * picks Redis's error texts: SINTERCARD's, or the sorted-set family's.
 */
function numkeys(name: string, at: number, dest: boolean, style: 'set' | 'zset' | 'mpop'): (args: Buffer[]) => number[] {
  return (args) => {
    const raw = args[at];
    const n = raw === undefined ? null : parseI64(raw);
    if (style !== 'zset' && (n === null || n <= 0n)) throw new RespError('ERR numkeys should be greater than 0');
    if (n === null) throw new RespError(NOT_INTEGER);
    if (n <= 0n) throw new RespError(`ERR at least 1 input key is needed for '${name}' command`);
    // ZMPOP/LMPOP need one argument after the keys (MIN|MAX, LEFT|RIGHT).
    const room = args.length - at - 1 - (style === 'mpop' ? 1 : 0);
    if (n > BigInt(room)) throw new RespError(style === 'set' ? "ERR Number of keys can't be greater than number of args" : SYNTAX);
    const idx: number[] = dest ? [0] : [];
    for (let i = 1; i <= Number(n); i++) idx.push(at + i);
    return idx;
  };
}

// connection and server
def('ping', -1, 'none', KNONE, 'connection', S.ping);
def('echo', 2, 'none', KNONE, 'connection', S.echo);
def('hello', -1, 'none', KNONE, 'connection', S.hello, { noauth: true, noMulti: true });
def('auth', -2, 'none', KNONE, 'connection', S.auth, { noauth: true, noMulti: true });
def('select', 2, 'none', KNONE, 'connection', S.select);
def('client', -2, 'none', KNONE, 'connection', S.client, { container: true });
def('quit', -1, 'none', KNONE, 'connection', byConnection, { noauth: true });
def('reset', 1, 'none', KNONE, 'connection', byConnection, { noauth: true });
def('info', -1, 'none', KNONE, 'server', S.info);
def('slowlog', -2, 'admin', KNONE, 'server', S.slowlog, { container: true });
def('command', -1, 'none', KNONE, 'server', S.command, { container: true });
def('config', -2, 'none', KNONE, 'server', S.config, { container: true });
def('time', 1, 'none', KNONE, 'server', S.time);
def('function', -2, 'none', KNONE, 'scripting', S.fn);
def('dbsize', 1, 'read', KNONE, 'server', S.dbsize);
def('cluster', -2, 'none', KNONE, 'cluster', CL.cluster, { container: true });
def('readonly', 1, 'none', KNONE, 'cluster', CL.readonly);
def('readwrite', 1, 'none', KNONE, 'cluster', CL.readwrite);
def('asking', 1, 'none', KNONE, 'cluster', CL.clusterFlag);
def('wait', 3, 'none', KNONE, 'generic', CL.wait);
def('debug', -2, 'admin', KNONE, 'server', S.debug, { container: true });
// Known so that MULTI refuses them as Redis does; outside MULTI they explain what to use instead.
def('save', 1, 'admin', KNONE, 'server', S.notHere('SAVE', 'the cache tier persists with its append-only file (appendonly yes, BGREWRITEAOF)'), { noMulti: true });
def('shutdown', -1, 'admin', KNONE, 'server', S.notHere('SHUTDOWN', 'stop the node with SIGTERM (beacon serve exits cleanly)'), { noMulti: true });
def('flushdb', -1, 'admin', KNONE, 'server', S.flushall, { noMulti: true });
def('flushall', -1, 'admin', KNONE, 'server', S.flushall, { noMulti: true });
// transactions
def('multi', 1, 'none', KNONE, 'transactions', byConnection);
def('exec', 1, 'none', KNONE, 'transactions', byConnection);
def('discard', 1, 'none', KNONE, 'transactions', byConnection);
def('watch', -2, 'read', KALL, 'transactions', byConnection, { noMulti: true });
def('unwatch', 1, 'none', KNONE, 'transactions', byConnection);
// strings
def('get', 2, 'read', K1, 'string', T.get);
def('set', -3, 'write', K1, 'string', T.set);
def('setnx', 3, 'write', K1, 'string', T.setnx);
def('setex', 4, 'write', K1, 'string', T.setex);
def('psetex', 4, 'write', K1, 'string', T.psetex);
def('getset', 3, 'write', K1, 'string', T.getset);
def('getdel', 2, 'write', K1, 'string', T.getdel);
def('getex', -2, 'write', K1, 'string', T.getex);
def('mget', -2, 'read', KALL, 'string', T.mget);
def('mset', -3, 'write', [1, -1, 2], 'string', T.mset);
def('msetnx', -3, 'write', [1, -1, 2], 'string', T.msetnx);
def('incr', 2, 'write', K1, 'string', T.incr);
def('decr', 2, 'write', K1, 'string', T.decr);
def('incrby', 3, 'write', K1, 'string', T.incrby);
def('decrby', 3, 'write', K1, 'string', T.decrby);
def('incrbyfloat', 3, 'write', K1, 'string', T.incrbyfloat);
def('append', 3, 'write', K1, 'string', T.append);
def('strlen', 2, 'read', K1, 'string', T.strlen);
def('setrange', 4, 'write', K1, 'string', T.setrange);
def('getrange', 4, 'read', K1, 'string', T.getrange);
def('substr', 4, 'read', K1, 'string', T.getrange);
def('lcs', -3, 'read', K12, 'string', T.lcs);
// keys
def('del', -2, 'write', KALL, 'generic', T.del);
def('unlink', -2, 'write', KALL, 'generic', T.del);
def('exists', -2, 'read', KALL, 'generic', T.exists);
def('touch', -2, 'read', KALL, 'generic', T.touch);
def('expire', -3, 'write', K1, 'generic', T.expire);
def('pexpire', -3, 'write', K1, 'generic', T.pexpire);
def('expireat', -3, 'write', K1, 'generic', T.expireat);
def('pexpireat', -3, 'write', K1, 'generic', T.pexpireat);
def('ttl', 2, 'read', K1, 'generic', T.ttl);
def('pttl', 2, 'read', K1, 'generic', T.pttl);
def('expiretime', 2, 'read', K1, 'generic', T.expiretime);
def('pexpiretime', 2, 'read', K1, 'generic', T.pexpiretime);
def('persist', 2, 'write', K1, 'generic', T.persist);
def('type', 2, 'read', K1, 'generic', T.type);
def('rename', 3, 'write', K12, 'generic', T.rename);
def('renamenx', 3, 'write', K12, 'generic', T.renamenx);
def('keys', 2, 'none', KNONE, 'generic', S.keys);
def('scan', -2, 'none', KNONE, 'generic', S.scan);
def('randomkey', 1, 'none', KNONE, 'generic', S.randomkey);
def('copy', -3, 'write', K12, 'generic', O.copy);
def('object', -2, 'read', [2, 2, 1], 'generic', O.object, { container: true });
def('memory', -2, 'read', [2, 2, 1], 'server', O.memory, { container: true });
// bitmaps (string values)
def('setbit', 4, 'write', K1, 'bitmap', B.setbit);
def('getbit', 3, 'read', K1, 'bitmap', B.getbit);
def('bitcount', -2, 'read', K1, 'bitmap', B.bitcount);
def('bitpos', -3, 'read', K1, 'bitmap', B.bitpos);
def('bitop', -4, 'write', [2, -1, 1], 'bitmap', B.bitop);
// hashes
def('hset', -4, 'write', K1, 'hash', T.hset);
def('hmset', -4, 'write', K1, 'hash', T.hmset);
def('hsetnx', 4, 'write', K1, 'hash', T.hsetnx);
def('hget', 3, 'read', K1, 'hash', T.hget);
def('hmget', -3, 'read', K1, 'hash', T.hmget);
def('hgetall', 2, 'read', K1, 'hash', T.hgetall);
def('hrandfield', -2, 'read', K1, 'hash', T.hrandfield);
def('hdel', -3, 'write', K1, 'hash', T.hdel);
def('hexists', 3, 'read', K1, 'hash', T.hexists);
def('hlen', 2, 'read', K1, 'hash', T.hlen);
def('hkeys', 2, 'read', K1, 'hash', T.hkeys);
def('hvals', 2, 'read', K1, 'hash', T.hvals);
def('hstrlen', 3, 'read', K1, 'hash', T.hstrlen);
def('hincrby', 4, 'write', K1, 'hash', T.hincrby);
def('hincrbyfloat', 4, 'write', K1, 'hash', T.hincrbyfloat);
def('hscan', -3, 'read', K1, 'hash', C.hscan);
// lists, sets, sorted sets: memory namespaces
const mem = { memoryOnly: true };
def('lpush', -3, 'write', K1, 'list', C.lpush, mem);
def('rpush', -3, 'write', K1, 'list', C.rpush, mem);
def('lpushx', -3, 'write', K1, 'list', C.lpushx, mem);
def('rpushx', -3, 'write', K1, 'list', C.rpushx, mem);
def('lpop', -2, 'write', K1, 'list', C.lpop, mem);
def('lmpop', -4, 'write', KNONE, 'list', C.lmpop, { ...mem, movableKeys: numkeys('lmpop', 0, false, 'mpop'), flags: ['movablekeys'] });
def('rpop', -2, 'write', K1, 'list', C.rpop, mem);
def('llen', 2, 'read', K1, 'list', C.llen, mem);
def('lrange', 4, 'read', K1, 'list', C.lrange, mem);
def('lindex', 3, 'read', K1, 'list', C.lindex, mem);
def('lset', 4, 'write', K1, 'list', C.lset, mem);
def('lrem', 4, 'write', K1, 'list', C.lrem, mem);
def('ltrim', 4, 'write', K1, 'list', C.ltrim, mem);
def('linsert', 5, 'write', K1, 'list', C.linsert, mem);
def('lpos', -3, 'read', K1, 'list', C.lpos, mem);
def('lmove', 5, 'write', K12, 'list', (c, a) => C.lmove(c, a), mem);
def('rpoplpush', 3, 'write', K12, 'list', C.rpoplpush, mem);
// SORT (cmd-sort.ts): the sorted key, and the STORE destination
def('sort', -2, 'write', KNONE, 'generic', SO.sort, { ...mem, movableKeys: SO.sortKeys, flags: ['movablekeys'] });
def('sort_ro', -2, 'read', K1, 'generic', SO.sortRo, mem);
// blocking pops (cmd-blocking.ts): keys up to the timeout, or after a count
const blocking = { ...mem, blocking: true, flags: ['blocking'] };
const KBUTLAST: [number, number, number] = [1, -2, 1];
def('blpop', -3, 'write', KBUTLAST, 'list', BL.blpop, blocking);
def('brpop', -3, 'write', KBUTLAST, 'list', BL.brpop, blocking);
def('blmove', 6, 'write', K12, 'list', BL.blmove, blocking);
def('brpoplpush', 4, 'write', K12, 'list', BL.brpoplpush, blocking);
def('blmpop', -5, 'write', KNONE, 'list', BL.blmpop, { ...blocking, movableKeys: numkeys('blmpop', 1, false, 'mpop'), flags: ['blocking', 'movablekeys'] });
def('bzpopmin', -3, 'write', KBUTLAST, 'sorted-set', BL.bzpopmin, blocking);
def('bzpopmax', -3, 'write', KBUTLAST, 'sorted-set', BL.bzpopmax, blocking);
def('bzmpop', -5, 'write', KNONE, 'sorted-set', BL.bzmpop, { ...blocking, movableKeys: numkeys('bzmpop', 1, false, 'mpop'), flags: ['blocking', 'movablekeys'] });
def('sadd', -3, 'write', K1, 'set', C.sadd, mem);
def('srem', -3, 'write', K1, 'set', C.srem, mem);
def('smembers', 2, 'read', K1, 'set', C.smembers, mem);
def('sismember', 3, 'read', K1, 'set', C.sismember, mem);
def('smismember', -3, 'read', K1, 'set', C.smismember, mem);
def('scard', 2, 'read', K1, 'set', C.scard, mem);
def('spop', -2, 'write', K1, 'set', C.spop, mem);
def('srandmember', -2, 'read', K1, 'set', C.srandmember, mem);
def('sinter', -2, 'read', KALL, 'set', C.sinter, mem);
def('sunion', -2, 'read', KALL, 'set', C.sunion, mem);
def('sdiff', -2, 'read', KALL, 'set', C.sdiff, mem);
def('sinterstore', -3, 'write', KALL, 'set', C.sinterstore, mem);
def('sunionstore', -3, 'write', KALL, 'set', C.sunionstore, mem);
def('sintercard', -3, 'read', KNONE, 'set', C.sintercard, { ...mem, movableKeys: numkeys('sintercard', 0, false, 'set'), flags: ['movablekeys'] });
def('sdiffstore', -3, 'write', KALL, 'set', C.sdiffstore, mem);
def('smove', 4, 'write', K12, 'set', C.smove, mem);
def('sscan', -3, 'read', K1, 'set', C.sscan, mem);
def('zadd', -4, 'write', K1, 'sorted-set', C.zadd, mem);
def('zincrby', 4, 'write', K1, 'sorted-set', C.zincrby, mem);
def('zrem', -3, 'write', K1, 'sorted-set', C.zrem, mem);
def('zscore', 3, 'read', K1, 'sorted-set', C.zscore, mem);
def('zmscore', -3, 'read', K1, 'sorted-set', C.zmscore, mem);
def('zcard', 2, 'read', K1, 'sorted-set', C.zcard, mem);
def('zcount', 4, 'read', K1, 'sorted-set', C.zcount, mem);
def('zrank', -3, 'read', K1, 'sorted-set', C.zrank, mem);
def('zrevrank', -3, 'read', K1, 'sorted-set', C.zrevrank, mem);
def('zrange', -4, 'read', K1, 'sorted-set', C.zrange, mem);
def('zrangestore', -5, 'write', K12, 'sorted-set', C.zrangestore, mem);
def('zrevrange', -4, 'read', K1, 'sorted-set', C.zrevrange, mem);
def('zrangebyscore', -4, 'read', K1, 'sorted-set', C.zrangebyscore, mem);
def('zrevrangebyscore', -4, 'read', K1, 'sorted-set', C.zrevrangebyscore, mem);
def('zrangebylex', -4, 'read', K1, 'sorted-set', C.zrangebylex, mem);
def('zrevrangebylex', -4, 'read', K1, 'sorted-set', C.zrevrangebylex, mem);
def('zlexcount', 4, 'read', K1, 'sorted-set', C.zlexcount, mem);
def('zpopmin', -2, 'write', K1, 'sorted-set', C.zpopmin, mem);
def('zpopmax', -2, 'write', K1, 'sorted-set', C.zpopmax, mem);
def('zremrangebyrank', 4, 'write', K1, 'sorted-set', C.zremrangebyrank, mem);
def('zremrangebyscore', 4, 'write', K1, 'sorted-set', C.zremrangebyscore, mem);
def('zremrangebylex', 4, 'write', K1, 'sorted-set', C.zremrangebylex, mem);
for (const op of ['union', 'inter', 'diff'] as const) {
  def(`z${op}store`, -4, 'write', KNONE, 'sorted-set', C.zsetOp(op, true), { ...mem, movableKeys: numkeys(`z${op}store`, 1, true, 'zset'), flags: ['movablekeys'] });
  def(`z${op}`, -3, 'read', KNONE, 'sorted-set', C.zsetOp(op, false), { ...mem, movableKeys: numkeys(`z${op}`, 0, false, 'zset'), flags: ['movablekeys'] });
}
def('zmpop', -4, 'write', KNONE, 'sorted-set', C.zmpop, { ...mem, movableKeys: numkeys('zmpop', 0, false, 'mpop'), flags: ['movablekeys'] });
def('zrandmember', -2, 'read', K1, 'sorted-set', C.zrandmember, mem);
def('zintercard', -3, 'read', KNONE, 'sorted-set', C.zintercard, { ...mem, movableKeys: numkeys('zintercard', 0, false, 'zset'), flags: ['movablekeys'] });
def('zscan', -3, 'read', K1, 'sorted-set', C.zscan, mem);
// pub/sub
def('subscribe', -2, 'none', KNONE, 'pubsub', S.subscribe, { noMulti: true });
def('psubscribe', -2, 'none', KNONE, 'pubsub', S.psubscribe, { noMulti: true });
def('unsubscribe', -1, 'none', KNONE, 'pubsub', S.unsubscribe, { noMulti: true });
def('punsubscribe', -1, 'none', KNONE, 'pubsub', S.punsubscribe, { noMulti: true });
def('publish', 3, 'none', KNONE, 'pubsub', S.publish);
def('pubsub', -2, 'none', KNONE, 'pubsub', S.pubsub, { container: true });

/** Every command by lower-case name. */
export const COMMANDS: ReadonlyMap<string, CommandSpec> = new Map(table.map((c) => [c.name, c]));

/**
 * The position of the last key argument of a command with `argCount` arguments (its name not
 * counted; positions from 1, as `spec.keys`), or 0 when it has no key: the keys are at
 * `spec.keys[0]`, then every `spec.keys[2]`-th position up to this one.
 */
export function lastKeyArg(spec: CommandSpec, argCount: number): number {
  const [first, last, step] = spec.keys;
  if (first === 0 || step <= 0) return 0;
  const end = Math.min(last < 0 ? argCount + last + 1 : last, argCount);
  return end < first ? 0 : end;
}

/** COMMAND INFO's entry for a command (Redis 7 shape: name, arity, flags, first, last, step, categories, tips, key specs, subcommands). */
export function commandInfo(spec: CommandSpec): Reply {
  const flags = [
    spec.access === 'write' ? 'write' : spec.access === 'read' ? 'readonly' : spec.access === 'admin' ? 'admin' : 'fast',
    ...(spec.noauth === true ? ['noauth'] : []),
    ...(spec.group === 'pubsub' ? ['pubsub'] : []),
    ...(spec.flags ?? []),
  ];
  return R.array([
    R.bulk(spec.name),
    R.int(spec.arity),
    R.set(flags.map((f) => R.simple(f))),
    R.int(spec.keys[0]),
    R.int(spec.keys[1]),
    R.int(spec.keys[2]),
    R.set([R.simple(`@${spec.group}`)]),
    R.array([]),
    R.array([]),
    R.array([]),
  ]);
}

/** COMMAND DOCS's entry for a command. */
export function commandDocs(spec: CommandSpec): Reply {
  return R.map([
    [R.bulk('summary'), R.bulk(`${spec.name.toUpperCase()} (${spec.memoryOnly === true ? 'memory namespaces only; ' : ''}see docs/resp.md)`)],
    [R.bulk('since'), R.bulk('1.0.0')],
    [R.bulk('group'), R.bulk(spec.group)],
  ]);
}
