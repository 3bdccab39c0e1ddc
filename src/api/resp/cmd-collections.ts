/** Lists, sets and sorted sets (memory namespaces), and the HSCAN/SSCAN/ZSCAN iterators. */
import { SYNTAX, bigArg, floatArg, intArg, parseDouble, parseI64, strtodWhole, randomCount, randomPicks, word } from './args.js';
import { keyName, scanArgs } from './cmd-strings.js';
import type { Ctx } from './context.js';
import { Deque, SortedSet, globMatch, type LexBound, type ScoreBound, type ScoredMember } from '../../cache/index.js';
import { RespError, WRONGTYPE, type Value } from './keyspace.js';
import { R, formatDouble, type Reply } from './protocol.js';

const k = keyName;
const m = (b: Buffer | undefined): string => (b as Buffer).toString('latin1');
const out = (s: string): Reply => R.bulk(Buffer.from(s, 'latin1'));

type ValueOf<T extends Value['type']> = Extract<Value, { type: T }>['value'];

function typed<T extends Value['type']>(c: Ctx, key: string, t: T): { v: ValueOf<T> } | undefined {
  const e = c.ks.get(key);
  if (e === undefined) return undefined;
  if (e.type !== t) throw new RespError(WRONGTYPE);
  return { v: e.value as ValueOf<T> } as { v: ValueOf<T> };
}

function store(c: Ctx, key: string, value: Value, event: string): void {
  c.ks.set(key, value, 'keep', event);
}

// --- lists ---------------------------------------------------------------------------------------

function push(left: boolean, onlyExisting: boolean) {
  return (c: Ctx, a: Buffer[]): Reply => {
    const key = k(a[0]);
    const cur = typed(c, key, 'list');
    if (cur === undefined && onlyExisting) return R.int(0);
    const list = cur?.v ?? new Deque<Buffer>();
    for (const v of a.slice(1)) {
      if (left) list.pushFront(v);
      else list.pushBack(v);
    }
    store(c, key, { type: 'list', value: list }, left ? 'lpush' : 'rpush');
    return R.int(list.length);
  };
}
export const lpush = push(true, false);
export const rpush = push(false, false);
export const lpushx = push(true, true);
export const rpushx = push(false, true);

function pop(left: boolean) {
  return (c: Ctx, a: Buffer[]): Reply => {
    const key = k(a[0]);
    if (a.length > 2) throw new RespError(`ERR wrong number of arguments for '${left ? 'lpop' : 'rpop'}' command`);
    let count: number | undefined;
    if (a[1] !== undefined) {
      count = intArg(a[1], 'ERR value is out of range, must be positive');
      if (count < 0) throw new RespError('ERR value is out of range, must be positive');
    }
    const cur = typed(c, key, 'list');
    if (cur === undefined) return count === undefined ? R.null : R.nullArray;
    const n = Math.min(count ?? 1, cur.v.length);
    const taken: Buffer[] = [];
    for (let i = 0; i < n; i++) taken.push((left ? cur.v.popFront() : cur.v.popBack()) as Buffer);
    store(c, key, { type: 'list', value: cur.v }, left ? 'lpop' : 'rpop');
    if (count === undefined) return taken[0] === undefined ? R.null : R.bulk(taken[0]);
    return R.array(taken.map((x) => R.bulk(x)));
  };
}
/** The `MIN|MAX`/`LEFT|RIGHT [COUNT n]` tail of ZMPOP/LMPOP (Redis 7): which end, and how many. */
function mpopTail(rest: Buffer[], ends: readonly [string, string]): { first: boolean; count: number } {
  const w = word(rest[0]);
  if (w !== ends[0] && w !== ends[1]) throw new RespError(SYNTAX);
  // As Redis: the options are read in order, so a bad count is reported before a later extra argument.
  let count: number | undefined;
  for (let i = 1; i < rest.length; i++) {
    if (count === undefined && word(rest[i]) === 'COUNT' && i + 1 < rest.length) {
      const n = parseI64(rest[++i] as Buffer);
      if (n === null || n <= 0n) throw new RespError('ERR count should be greater than 0');
      count = Number(n);
    } else throw new RespError(SYNTAX);
  }
  return { first: w === ends[0], count: count ?? 1 };
}

/**
 * ZMPOP/LMPOP (`numkeys key … <end> [COUNT n]`, the count checked with the keys): `pop` takes up
 * to `count` elements from the given end of one key and returns their replies, or undefined when
 * the key holds nothing; the first key that yields answers [key, elements], none answers nil.
 */
function mpop(a: Buffer[], ends: readonly [string, string], pop: (key: string, first: boolean, count: number) => Reply[] | undefined): Reply {
  const n = Number((a[0] as Buffer).toString('latin1'));
  const { first, count } = mpopTail(a.slice(1 + n), ends);
  for (let i = 1; i <= n; i++) {
    const taken = pop(k(a[i]), first, count);
    if (taken !== undefined) return R.array([R.bulk(a[i] as Buffer), R.array(taken)]);
  }
  return R.nullArray;
}

/** LMPOP numkeys key [key …] LEFT|RIGHT [COUNT n]: pops from the first non-empty list; [key, elements] or nil. */
export function lmpop(c: Ctx, a: Buffer[]): Reply {
  return mpop(a, ['LEFT', 'RIGHT'], (key, first, count) => {
    const cur = typed(c, key, 'list');
    if (cur === undefined || cur.v.length === 0) return undefined;
    const taken: Reply[] = [];
    for (let j = Math.min(count, cur.v.length); j > 0; j--) taken.push(R.bulk((first ? cur.v.popFront() : cur.v.popBack()) as Buffer));
    store(c, key, { type: 'list', value: cur.v }, first ? 'lpop' : 'rpop');
    return taken;
  });
}

export const lpop = pop(true);
export const rpop = pop(false);

export const llen = (c: Ctx, a: Buffer[]): Reply => R.int(typed(c, k(a[0]), 'list')?.v.length ?? 0);

function range(n: number, start: number, end: number): [number, number] | undefined {
  if (start < 0) start = n + start;
  if (end < 0) end = n + end;
  if (start < 0) start = 0;
  if (start > end || start >= n) return undefined;
  if (end >= n) end = n - 1;
  return [start, end];
}

export function lrange(c: Ctx, a: Buffer[]): Reply {
  const s = intArg(a[1]);
  const e = intArg(a[2]);
  const list = typed(c, k(a[0]), 'list')?.v;
  if (list === undefined) return R.array([]);
  const r = range(list.length, s, e);
  return R.array(r === undefined ? [] : list.range(r[0], r[1]).map((x) => R.bulk(x)));
}

export function lindex(c: Ctx, a: Buffer[]): Reply {
  // As Redis: the key (missing: nil; another type: WRONGTYPE) before the index.
  const list = typed(c, k(a[0]), 'list')?.v;
  if (list === undefined) return R.null;
  let i = intArg(a[1]);
  if (i < 0) i = list.length + i;
  const v = i < 0 ? undefined : list.at(i);
  return v === undefined ? R.null : R.bulk(v);
}

export function lset(c: Ctx, a: Buffer[]): Reply {
  const key = k(a[0]);
  // As Redis: the key (missing: no such key; another type: WRONGTYPE) before the index.
  const cur = typed(c, key, 'list');
  if (cur === undefined) throw new RespError('ERR no such key');
  let i = intArg(a[1]);
  if (i < 0) i = cur.v.length + i;
  if (i < 0 || i >= cur.v.length) throw new RespError('ERR index out of range');
  cur.v.set(i, a[2] as Buffer);
  store(c, key, { type: 'list', value: cur.v }, 'lset');
  return R.ok;
}

export function lrem(c: Ctx, a: Buffer[]): Reply {
  const key = k(a[0]);
  const count = intArg(a[1]);
  const el = a[2] as Buffer;
  const cur = typed(c, key, 'list');
  if (cur === undefined) return R.int(0);
  const list = cur.v.toArray();
  let removed = 0;
  const limit = count === 0 ? Infinity : Math.abs(count);
  if (count >= 0) {
    for (let i = 0; i < list.length && removed < limit; ) {
      if ((list[i] as Buffer).equals(el)) {
        list.splice(i, 1);
        removed++;
      } else i++;
    }
  } else {
    for (let i = list.length - 1; i >= 0 && removed < limit; i--) {
      if ((list[i] as Buffer).equals(el)) {
        list.splice(i, 1);
        removed++;
      }
    }
  }
  if (removed > 0) {
    cur.v.replaceAll(list);
    store(c, key, { type: 'list', value: cur.v }, 'lrem');
  }
  return R.int(removed);
}

export function ltrim(c: Ctx, a: Buffer[]): Reply {
  const key = k(a[0]);
  const s = intArg(a[1]);
  const e = intArg(a[2]);
  const cur = typed(c, key, 'list');
  if (cur === undefined) return R.ok;
  const r = range(cur.v.length, s, e);
  cur.v.replaceAll(r === undefined ? [] : cur.v.range(r[0], r[1]));
  store(c, key, { type: 'list', value: cur.v }, 'ltrim');
  return R.ok;
}

export function linsert(c: Ctx, a: Buffer[]): Reply {
  const key = k(a[0]);
  const where = word(a[1]);
  if (where !== 'BEFORE' && where !== 'AFTER') throw new RespError(SYNTAX);
  const cur = typed(c, key, 'list');
  if (cur === undefined) return R.int(0);
  const list = cur.v.toArray();
  const i = list.findIndex((x) => x.equals(a[2] as Buffer));
  if (i === -1) return R.int(-1);
  list.splice(where === 'BEFORE' ? i : i + 1, 0, a[3] as Buffer);
  cur.v.replaceAll(list);
  store(c, key, { type: 'list', value: cur.v }, 'linsert');
  return R.int(list.length);
}

export function lpos(c: Ctx, a: Buffer[]): Reply {
  let rank = 1;
  let count: number | undefined;
  let maxlen = 0;
  for (let i = 2; i < a.length; i++) {
    const w = word(a[i]);
    if (w === 'RANK' && a[i + 1] !== undefined) {
      // Redis reads RANK within ±LONG_MAX (its negation must fit): -2^63 is out of range.
      const r = bigArg(a[++i]);
      if (r < -9223372036854775807n) throw new RespError('ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807');
      rank = Number(r);
      if (rank === 0) throw new RespError("ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list");
    } else if (w === 'COUNT' && a[i + 1] !== undefined) {
      // Redis answers its message for a non-integer too (getPositiveLongFromObjectOrReply).
      count = intArg(a[++i], "ERR COUNT can't be negative");
      if (count < 0) throw new RespError("ERR COUNT can't be negative");
    } else if (w === 'MAXLEN' && a[i + 1] !== undefined) {
      maxlen = intArg(a[++i], "ERR MAXLEN can't be negative");
      if (maxlen < 0) throw new RespError("ERR MAXLEN can't be negative");
    } else throw new RespError(SYNTAX);
  }
  const list = typed(c, k(a[0]), 'list')?.v;
  const found: number[] = [];
  const want = count === undefined ? 1 : count === 0 ? Infinity : count;
  let skip = Math.abs(rank) - 1;
  const n = list?.length ?? 0;
  for (let step = 0; list !== undefined && step < n && (maxlen === 0 || step < maxlen) && found.length < want; step++) {
    const i = rank > 0 ? step : n - 1 - step;
    if ((list.at(i) as Buffer).equals(a[1] as Buffer)) {
      if (skip > 0) skip--;
      else found.push(i);
    }
  }
  if (count === undefined) return found[0] === undefined ? R.null : R.int(found[0]);
  return R.array(found.map((i) => R.int(i)));
}

export function lmove(c: Ctx, a: Buffer[], fromLeft?: boolean, toLeft?: boolean): Reply {
  const src = k(a[0]);
  const dst = k(a[1]);
  const fl = fromLeft ?? parseSide(a[2]);
  const tl = toLeft ?? parseSide(a[3]);
  const s = typed(c, src, 'list');
  if (s === undefined) return R.null;
  const d = src === dst ? s : typed(c, dst, 'list');
  const v = (fl ? s.v.popFront() : s.v.popBack()) as Buffer;
  const dl = d?.v ?? new Deque<Buffer>();
  if (tl) dl.pushFront(v);
  else dl.pushBack(v);
  if (src !== dst) store(c, src, { type: 'list', value: s.v }, fl ? 'lpop' : 'rpop');
  store(c, dst, { type: 'list', value: dl }, tl ? 'lpush' : 'rpush');
  return R.bulk(v);
}
function parseSide(b: Buffer | undefined): boolean {
  const w = word(b);
  if (w === 'LEFT') return true;
  if (w === 'RIGHT') return false;
  throw new RespError(SYNTAX);
}
export const rpoplpush = (c: Ctx, a: Buffer[]): Reply => lmove(c, a, false, true);

// --- sets ----------------------------------------------------------------------------------------

export function sadd(c: Ctx, a: Buffer[]): Reply {
  const key = k(a[0]);
  const set = typed(c, key, 'set')?.v ?? new Set<string>();
  let n = 0;
  for (const b of a.slice(1)) {
    const s = m(b);
    if (!set.has(s)) {
      set.add(s);
      n++;
    }
  }
  if (n > 0) store(c, key, { type: 'set', value: set }, 'sadd');
  return R.int(n);
}

export function srem(c: Ctx, a: Buffer[]): Reply {
  const key = k(a[0]);
  const cur = typed(c, key, 'set');
  if (cur === undefined) return R.int(0);
  let n = 0;
  for (const b of a.slice(1)) if (cur.v.delete(m(b))) n++;
  if (n > 0) store(c, key, { type: 'set', value: cur.v }, 'srem');
  return R.int(n);
}

export const smembers = (c: Ctx, a: Buffer[]): Reply => R.set([...(typed(c, k(a[0]), 'set')?.v ?? [])].map(out));
export const sismember = (c: Ctx, a: Buffer[]): Reply => R.int(typed(c, k(a[0]), 'set')?.v.has(m(a[1])) === true ? 1 : 0);
export function smismember(c: Ctx, a: Buffer[]): Reply {
  const s = typed(c, k(a[0]), 'set')?.v;
  return R.array(a.slice(1).map((b) => R.int(s?.has(m(b)) === true ? 1 : 0)));
}
export const scard = (c: Ctx, a: Buffer[]): Reply => R.int(typed(c, k(a[0]), 'set')?.v.size ?? 0);

export function spop(c: Ctx, a: Buffer[]): Reply {
  const key = k(a[0]);
  let count: number | undefined;
  if (a[1] !== undefined) {
    count = intArg(a[1], 'ERR value is out of range, must be positive');
    if (count < 0) throw new RespError('ERR value is out of range, must be positive');
  }
  const cur = typed(c, key, 'set');
  if (cur === undefined) return count === undefined ? R.null : R.set([]);
  const picked = randomPicks([...cur.v], count ?? 1);
  for (const p of picked) cur.v.delete(p);
  store(c, key, { type: 'set', value: cur.v }, 'spop');
  if (count === undefined) return picked[0] === undefined ? R.null : out(picked[0]);
  return R.set(picked.map(out));
}

export function srandmember(c: Ctx, a: Buffer[]): Reply {
  const items = [...(typed(c, k(a[0]), 'set')?.v ?? [])];
  if (a[1] === undefined) {
    const one = randomPicks(items, -1)[0];
    return one === undefined ? R.null : out(one);
  }
  return R.array(randomPicks(items, randomCount(a[1])).map(out));
}

function setOp(op: 'inter' | 'union' | 'diff', c: Ctx, keys: Buffer[]): Set<string> {
  const sets = keys.map((b) => typed(c, k(b), 'set')?.v ?? new Set<string>());
  const first = sets[0] ?? new Set<string>();
  if (op === 'union') {
    const r = new Set<string>();
    for (const s of sets) for (const x of s) r.add(x);
    return r;
  }
  if (op === 'inter') return new Set([...first].filter((x) => sets.every((s) => s.has(x))));
  return new Set([...first].filter((x) => sets.slice(1).every((s) => !s.has(x))));
}
function setOpCmd(op: 'inter' | 'union' | 'diff', storeIt: boolean) {
  return (c: Ctx, a: Buffer[]): Reply => {
    if (!storeIt) return R.set([...setOp(op, c, a)].map(out));
    const r = setOp(op, c, a.slice(1));
    const dst = k(a[0]);
    if (r.size === 0) c.ks.delete(dst, 'del');
    else c.ks.set(dst, { type: 'set', value: r }, 0, `s${op}store`);
    return R.int(r.size);
  };
}
/** A LIMIT for SINTERCARD/ZINTERCARD: the arguments after the keys; 0 = none. */
function cardLimit(rest: Buffer[]): number {
  if (rest.length === 0) return 0;
  if (rest.length !== 2 || word(rest[0]) !== 'LIMIT') throw new RespError(SYNTAX);
  const n = parseI64(rest[1] as Buffer);
  if (n === null || n < 0n) throw new RespError("ERR LIMIT can't be negative");
  return Number(n);
}

/** How many members are in every one of `inputs`, counting at most `limit` (0: all). */
function interCard(inputs: (ReadonlySet<string> | SortedSet)[], limit: number): number {
  if (inputs.some((x) => sizeOf(x) === 0)) return 0;
  const sorted = inputs.slice().sort((x, y) => sizeOf(x) - sizeOf(y));
  const [first, ...others] = sorted;
  let n = 0;
  for (const m of membersOf(first as SortedSet | ReadonlySet<string>)) {
    if (others.every((o) => hasMember(o, m))) {
      n++;
      if (limit > 0 && n >= limit) break;
    }
  }
  return n;
}
const sizeOf = (x: ReadonlySet<string> | SortedSet): number => x.size;
const membersOf = (x: SortedSet | ReadonlySet<string>): Iterable<string> => (x instanceof SortedSet ? x.entries().map((e) => e.member) : x);
const hasMember = (x: SortedSet | ReadonlySet<string>, m: string): boolean => (x instanceof SortedSet ? x.score(m) !== undefined : x.has(m));

/** SINTERCARD numkeys key [key …] [LIMIT limit] (Redis 7); the count was checked with the keys. */
export function sintercard(c: Ctx, a: Buffer[]): Reply {
  const n = Number((a[0] as Buffer).toString('latin1'));
  const limit = cardLimit(a.slice(1 + n));
  const sets = a.slice(1, 1 + n).map((b) => typed(c, k(b), 'set')?.v ?? new Set<string>());
  return R.int(interCard(sets, limit));
}

export const sinter = setOpCmd('inter', false);
export const sunion = setOpCmd('union', false);
export const sdiff = setOpCmd('diff', false);
export const sinterstore = setOpCmd('inter', true);
export const sunionstore = setOpCmd('union', true);
export const sdiffstore = setOpCmd('diff', true);

export function smove(c: Ctx, a: Buffer[]): Reply {
  const src = k(a[0]);
  const dst = k(a[1]);
  const member = m(a[2]);
  const s = typed(c, src, 'set');
  // As Redis: a missing source answers 0 before the destination's type is checked.
  if (s === undefined) return R.int(0);
  const d = typed(c, dst, 'set');
  if (!s.v.has(member)) return R.int(0);
  if (src === dst) return R.int(1);
  s.v.delete(member);
  store(c, src, { type: 'set', value: s.v }, 'srem');
  const dv = d?.v ?? new Set<string>();
  // As Redis: a destination that already holds the member is not modified (no event, WATCH stays clean).
  if (dv.has(member)) return R.int(1);
  dv.add(member);
  store(c, dst, { type: 'set', value: dv }, 'sadd');
  return R.int(1);
}

// --- sorted sets ---------------------------------------------------------------------------------

export function zadd(c: Ctx, a: Buffer[]): Reply {
  const key = k(a[0]);
  let i = 1;
  const o = { nx: false, xx: false, gt: false, lt: false, ch: false, incr: false };
  for (; i < a.length; i++) {
    const w = word(a[i]);
    if (w === 'NX') o.nx = true;
    else if (w === 'XX') o.xx = true;
    else if (w === 'GT') o.gt = true;
    else if (w === 'LT') o.lt = true;
    else if (w === 'CH') o.ch = true;
    else if (w === 'INCR') o.incr = true;
    else break;
  }
  const rest = a.slice(i);
  if (rest.length === 0 || rest.length % 2 !== 0) throw new RespError(SYNTAX);
  if (o.nx && o.xx) throw new RespError('ERR XX and NX options at the same time are not compatible');
  if ((o.gt && o.nx) || (o.lt && o.nx) || (o.gt && o.lt)) throw new RespError('ERR GT, LT, and/or NX options at the same time are not compatible');
  if (o.incr && rest.length !== 2) throw new RespError('ERR INCR option supports a single increment-element pair');
  const pairs: [number, string][] = [];
  for (let j = 0; j < rest.length; j += 2) pairs.push([floatArg(rest[j]), m(rest[j + 1])]);
  const z = typed(c, key, 'zset')?.v ?? new SortedSet();
  let added = 0;
  let changed = 0;
  let incrResult: number | null = null;
  for (const [score0, member] of pairs) {
    const cur = z.score(member);
    if ((o.nx && cur !== undefined) || (o.xx && cur === undefined)) continue;
    let score = score0;
    if (o.incr) {
      score = (cur ?? 0) + score0;
      if (Number.isNaN(score)) throw new RespError('ERR resulting score is not a number (NaN)');
    }
    if (cur !== undefined && ((o.gt && score <= cur) || (o.lt && score >= cur))) continue;
    const r = z.add(member, score);
    if (r === 'added') added++;
    else if (r === 'updated') changed++;
    incrResult = score;
  }
  if (added + changed > 0) store(c, key, { type: 'zset', value: z }, o.incr ? 'zincr' : 'zadd');
  if (o.incr) return incrResult === null ? R.null : R.double(incrResult);
  return R.int(o.ch ? added + changed : added);
}

export function zincrby(c: Ctx, a: Buffer[]): Reply {
  return zadd(c, [a[0] as Buffer, Buffer.from('INCR'), a[1] as Buffer, a[2] as Buffer]);
}

export function zrem(c: Ctx, a: Buffer[]): Reply {
  const key = k(a[0]);
  const cur = typed(c, key, 'zset');
  if (cur === undefined) return R.int(0);
  let n = 0;
  for (const b of a.slice(1)) if (cur.v.remove(m(b))) n++;
  if (n > 0) store(c, key, { type: 'zset', value: cur.v }, 'zrem');
  return R.int(n);
}

export function zscore(c: Ctx, a: Buffer[]): Reply {
  const s = typed(c, k(a[0]), 'zset')?.v.score(m(a[1]));
  return s === undefined ? R.null : R.double(s);
}
export function zmscore(c: Ctx, a: Buffer[]): Reply {
  const z = typed(c, k(a[0]), 'zset')?.v;
  return R.array(a.slice(1).map((b) => {
    const s = z?.score(m(b));
    return s === undefined ? R.null : R.double(s);
  }));
}
export const zcard = (c: Ctx, a: Buffer[]): Reply => R.int(typed(c, k(a[0]), 'zset')?.v.size ?? 0);

/**
 * A score bound of ZRANGEBYSCORE: `(1.5` exclusive, `-inf`, `+inf`. Read as Redis's
 * zslParseRange reads it, with strtod: an empty bound is 0, leading spaces and hex are accepted.
 * @throws RespError `min or max is not a float`.
 */
function scoreBound(b: Buffer | undefined): ScoreBound {
  const s = (b as Buffer).toString('latin1');
  const exclusive = s.startsWith('(');
  const value = strtodWhole(exclusive ? s.slice(1) : s);
  if (value === null || Number.isNaN(value)) throw new RespError('ERR min or max is not a float');
  return { value, exclusive };
}

export function zcount(c: Ctx, a: Buffer[]): Reply {
  const lo = scoreBound(a[1]);
  const hi = scoreBound(a[2]);
  return R.int(typed(c, k(a[0]), 'zset')?.v.countByScore(lo, hi) ?? 0);
}

function zrankCmd(rev: boolean) {
  return (c: Ctx, a: Buffer[]): Reply => {
    const withScore = a[2] !== undefined && word(a[2]) === 'WITHSCORE';
    if (a[2] !== undefined && !withScore) throw new RespError(SYNTAX);
    const z = typed(c, k(a[0]), 'zset')?.v;
    const i = z?.rank(m(a[1]), rev);
    if (z === undefined || i === undefined) return withScore ? R.nullArray : R.null;
    return withScore ? R.array([R.int(i), R.double(z.score(m(a[1])) as number)]) : R.int(i);
  };
}
export const zrank = zrankCmd(false);
export const zrevrank = zrankCmd(true);

function rangeReply(items: readonly ScoredMember[], withScores: boolean, proto3Pairs: boolean): Reply {
  if (!withScores) return R.array(items.map((x) => out(x.member)));
  if (proto3Pairs) return R.array(items.map((x) => R.array([out(x.member), R.double(x.score)])));
  return R.array(items.flatMap((x) => [out(x.member), R.double(x.score)]));
}

/** One bound of a lex range: `-`, `+`, `[member` or `(member` (Redis's zslParseLexRangeItem). */
function lexBound(b: Buffer | undefined): LexBound {
  const buf = b as Buffer;
  const c0 = buf[0];
  if (buf.length === 1 && c0 === 0x2d /* - */) return { kind: 'min' };
  if (buf.length === 1 && c0 === 0x2b /* + */) return { kind: 'max' };
  if (c0 === 0x5b /* [ */ || c0 === 0x28 /* ( */) return { kind: 'value', value: m(buf.subarray(1)), exclusive: c0 === 0x28 };
  throw new RespError('ERR min or max not valid string range item');
}

/**
 * ZRANGE with every form: by index, BYSCORE, BYLEX, REV, LIMIT, WITHSCORES; also the legacy
 * ZREVRANGE, ZRANGEBYSCORE, ZREVRANGEBYSCORE, ZRANGEBYLEX and ZREVRANGEBYLEX. As in Redis, the
 * range is parsed before the key is read: a bad bound is an error even when the key is missing.
 * With `dst` (ZRANGESTORE dst src …) the range replaces `dst` (an empty one deletes it) and the
 * reply is its size; WITHSCORES is then a syntax error.
 */
function zrangeGeneric(c: Ctx, a: Buffer[], mode: { by: 'rank' | 'score' | 'lex'; rev: boolean }, dst?: string): Reply {
  let by = mode.by;
  let rev = mode.rev;
  let withScores = false;
  let offset = 0;
  let limit = -1;
  let hasLimit = false;
  for (let i = 3; i < a.length; i++) {
    const w = word(a[i]);
    if (w === 'WITHSCORES' && mode.by !== 'lex' && dst === undefined) withScores = true;
    else if (w === 'BYSCORE' && mode.by === 'rank' && !mode.rev && by === 'rank') by = 'score';
    else if (w === 'BYLEX' && mode.by === 'rank' && !mode.rev && by === 'rank') by = 'lex';
    else if (w === 'REV' && mode.by === 'rank' && !mode.rev) rev = true;
    else if (w === 'LIMIT' && a[i + 2] !== undefined) {
      offset = intArg(a[++i]);
      limit = intArg(a[++i]);
      hasLimit = true;
    } else throw new RespError(SYNTAX);
  }
  // As Redis: `LIMIT o -1` is no limit, so it is not refused by index either.
  if (hasLimit && limit !== -1 && by === 'rank') throw new RespError('ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX');
  if (withScores && by === 'lex') throw new RespError('ERR syntax error, WITHSCORES not supported in combination with BYLEX');
  // With REV the first bound given is the maximum.
  const first = rev && by !== 'rank' ? a[2] : a[1];
  const second = rev && by !== 'rank' ? a[1] : a[2];
  const start = by === 'rank' ? intArg(a[1]) : 0;
  const stop = by === 'rank' ? intArg(a[2]) : 0;
  const score = by === 'score' ? { lo: scoreBound(first), hi: scoreBound(second) } : undefined;
  const lex = by === 'lex' ? { lo: lexBound(first), hi: lexBound(second) } : undefined;
  const z = typed(c, k(a[0]), 'zset')?.v;
  let items: readonly ScoredMember[] = [];
  if (z === undefined || (by !== 'rank' && offset < 0)) items = [];
  else if (score === undefined && lex === undefined) items = z.rangeByRank(start, stop, rev);
  else {
    let found = score !== undefined ? z.rangeByScore(score.lo, score.hi) : lex !== undefined ? z.rangeByLex(lex.lo, lex.hi) : [];
    if (rev) found = found.slice().reverse();
    items = found.slice(offset, limit < 0 ? undefined : offset + limit);
  }
  if (dst === undefined) return rangeReply(items, withScores, c.conn.protocol === 3);
  if (items.length === 0) c.ks.delete(dst, 'del');
  else {
    const out = new SortedSet();
    for (const x of items) out.add(x.member, x.score);
    c.ks.set(dst, { type: 'zset', value: out }, 0, 'zrangestore');
  }
  return R.int(items.length);
}
/** ZRANGESTORE dst src min max [BYSCORE|BYLEX] [REV] [LIMIT offset count]. */
export const zrangestore = (c: Ctx, a: Buffer[]): Reply => zrangeGeneric(c, a.slice(1), { by: 'rank', rev: false }, k(a[0]));
export const zrange = (c: Ctx, a: Buffer[]): Reply => zrangeGeneric(c, a, { by: 'rank', rev: false });
export const zrevrange = (c: Ctx, a: Buffer[]): Reply => zrangeGeneric(c, a, { by: 'rank', rev: true });
export const zrangebyscore = (c: Ctx, a: Buffer[]): Reply => zrangeGeneric(c, a, { by: 'score', rev: false });
export const zrevrangebyscore = (c: Ctx, a: Buffer[]): Reply => zrangeGeneric(c, a, { by: 'score', rev: true });
export const zrangebylex = (c: Ctx, a: Buffer[]): Reply => zrangeGeneric(c, a, { by: 'lex', rev: false });
export const zrevrangebylex = (c: Ctx, a: Buffer[]): Reply => zrangeGeneric(c, a, { by: 'lex', rev: true });

/** ZLEXCOUNT key min max. */
export function zlexcount(c: Ctx, a: Buffer[]): Reply {
  const lo = lexBound(a[1]);
  const hi = lexBound(a[2]);
  return R.int(typed(c, k(a[0]), 'zset')?.v.rangeByLex(lo, hi).length ?? 0);
}

/** ZREMRANGEBYLEX key min max. */
export function zremrangebylex(c: Ctx, a: Buffer[]): Reply {
  const lo = lexBound(a[1]);
  const hi = lexBound(a[2]);
  return zremRange(c, k(a[0]), (z) => z.rangeByLex(lo, hi), 'zremrangebylex');
}

/** Removes the members `pick` selects from the sorted set at `key`; replies how many (the ZREMRANGEBY* family). */
function zremRange(c: Ctx, key: string, pick: (z: SortedSet) => readonly ScoredMember[], event: string): Reply {
  const cur = typed(c, key, 'zset');
  if (cur === undefined) return R.int(0);
  const gone = pick(cur.v).slice();
  for (const x of gone) cur.v.remove(x.member);
  if (gone.length > 0) store(c, key, { type: 'zset', value: cur.v }, event);
  return R.int(gone.length);
}

/** A sorted-set operation's input: a sorted set, or a plain set whose members score 1 (as in Redis); missing keys are empty. */
function zsetInput(c: Ctx, b: Buffer): SortedSet | ReadonlySet<string> {
  const v = c.ks.get(k(b));
  if (v === undefined) return new Set<string>();
  if (v.type === 'zset') return v.value;
  if (v.type === 'set') return v.value;
  throw new RespError(WRONGTYPE);
}
const scoreIn = (x: SortedSet | ReadonlySet<string>, m: string): number | undefined => (x instanceof SortedSet ? x.score(m) : x.has(m) ? 1 : undefined);

/** Redis's zunionInterAggregate: SUM turns a NaN (inf + -inf) into 0. */
function aggregate(how: 'SUM' | 'MIN' | 'MAX', acc: number, v: number): number {
  if (how === 'MIN') return Math.min(acc, v);
  if (how === 'MAX') return Math.max(acc, v);
  const r = acc + v;
  return Number.isNaN(r) ? 0 : r;
}

/**
 * ZUNIONSTORE/ZINTERSTORE/ZDIFFSTORE dst numkeys key … and ZUNION/ZINTER/ZDIFF numkeys key …,
 * with WEIGHTS and AGGREGATE SUM|MIN|MAX (union and inter) and WITHSCORES (the forms that reply
 * with members). Inputs may be sorted sets or sets (score 1). The stored forms replace `dst`
 * (deleting it when the result is empty) and reply the result's size.
 */
export function zsetOp(op: 'union' | 'inter' | 'diff', storeIt: boolean) {
  return (c: Ctx, a: Buffer[]): Reply => {
    const base = storeIt ? 1 : 0;
    const n = Number((a[base] as Buffer).toString('latin1'));
    const keys = a.slice(base + 1, base + 1 + n);
    // As Redis: the input keys are read (WRONGTYPE) before WEIGHTS and AGGREGATE are parsed.
    const inputs = keys.map((b) => zsetInput(c, b));
    let weights: number[] | undefined;
    let how: 'SUM' | 'MIN' | 'MAX' = 'SUM';
    let withScores = false;
    for (let i = base + 1 + n; i < a.length; i++) {
      const w = word(a[i]);
      if (w === 'WEIGHTS' && op !== 'diff' && i + n < a.length) {
        weights = [];
        for (let j = 1; j <= n; j++) {
          const x = parseDouble((a[i + j] as Buffer).toString('latin1'));
          if (x === null) throw new RespError('ERR weight value is not a float');
          weights.push(x);
        }
        i += n;
      } else if (w === 'AGGREGATE' && op !== 'diff' && a[i + 1] !== undefined) {
        const h = word(a[++i]);
        if (h !== 'SUM' && h !== 'MIN' && h !== 'MAX') throw new RespError(SYNTAX);
        how = h;
      } else if (w === 'WITHSCORES' && !storeIt) withScores = true;
      else throw new RespError(SYNTAX);
    }
    const weighted = (i: number, score: number): number => {
      const r = score * (weights?.[i] ?? 1);
      return Number.isNaN(r) ? 0 : r;
    };
    const result = new Map<string, number>();
    if (op === 'union') {
      inputs.forEach((x, i) => {
        for (const m of membersOf(x)) {
          const v = weighted(i, scoreIn(x, m) as number);
          const acc = result.get(m);
          result.set(m, acc === undefined ? v : aggregate(how, acc, v));
        }
      });
    } else if (op === 'inter') {
      const [first, ...others] = inputs;
      if (first !== undefined) {
        for (const m of membersOf(first)) {
          let acc = weighted(0, scoreIn(first, m) as number);
          let all = true;
          for (let i = 0; i < others.length && all; i++) {
            const sc = scoreIn(others[i] as SortedSet | ReadonlySet<string>, m);
            if (sc === undefined) all = false;
            else acc = aggregate(how, acc, weighted(i + 1, sc));
          }
          if (all) result.set(m, acc);
        }
      }
    } else {
      const [first, ...others] = inputs;
      if (first !== undefined) {
        for (const m of membersOf(first)) if (!others.some((o) => scoreIn(o, m) !== undefined)) result.set(m, scoreIn(first, m) as number);
      }
    }
    if (storeIt) {
      const dst = k(a[0]);
      if (result.size === 0) c.ks.delete(dst, 'del');
      else {
        const z = new SortedSet();
        for (const [m, v] of result) z.add(m, v);
        c.ks.set(dst, { type: 'zset', value: z }, 0, `z${op}store`);
      }
      return R.int(result.size);
    }
    const items: ScoredMember[] = [...result].map(([member, score]) => ({ member, score }));
    items.sort((x, y) => x.score - y.score || (x.member < y.member ? -1 : x.member > y.member ? 1 : 0));
    return rangeReply(items, withScores, c.conn.protocol === 3);
  };
}

/** ZMPOP numkeys key [key …] MIN|MAX [COUNT n]: pops from the first non-empty sorted set; [key, [[member, score] …]] or nil. */
export function zmpop(c: Ctx, a: Buffer[]): Reply {
  return mpop(a, ['MIN', 'MAX'], (key, first, count) => {
    const cur = typed(c, key, 'zset');
    if (cur === undefined || cur.v.size === 0) return undefined;
    const taken = cur.v.rangeByRank(0, count - 1, !first).slice();
    for (const x of taken) cur.v.remove(x.member);
    store(c, key, { type: 'zset', value: cur.v }, first ? 'zpopmin' : 'zpopmax');
    return taken.map((x) => R.array([out(x.member), R.double(x.score)]));
  });
}

/**
 * ZRANDMEMBER key [count [WITHSCORES]] (Redis 6.2): one random member (nil when none); a positive
 * count gives up to that many distinct members, a negative one exactly |count| that may repeat
 * (at most RANDOM_REPLY_MAX, see args.ts). WITHSCORES adds each score (RESP3: [member, score] pairs).
 */
export function zrandmember(c: Ctx, a: Buffer[]): Reply {
  if (a.length > 3) throw new RespError(SYNTAX);
  let count: number | undefined;
  let withScores = false;
  if (a[1] !== undefined) {
    count = randomCount(a[1], a[2] !== undefined ? 2 : 1);
    if (a[2] !== undefined) {
      if (word(a[2]) !== 'WITHSCORES') throw new RespError(SYNTAX);
      withScores = true;
    }
  }
  const items = [...(typed(c, k(a[0]), 'zset')?.v.entries() ?? [])];
  if (count === undefined) {
    const one = randomPicks(items, -1)[0];
    return one === undefined ? R.null : out(one.member);
  }
  return rangeReply(randomPicks(items, count), withScores, c.conn.protocol === 3);
}

/** ZINTERCARD numkeys key [key …] [LIMIT limit] (Redis 7); inputs may be sorted sets or sets. */
export function zintercard(c: Ctx, a: Buffer[]): Reply {
  const n = Number((a[0] as Buffer).toString('latin1'));
  // As Redis: the input keys are read (WRONGTYPE) before LIMIT is parsed.
  const inputs = a.slice(1, 1 + n).map((b) => zsetInput(c, b));
  return R.int(interCard(inputs, cardLimit(a.slice(1 + n))));
}

function zpop(max: boolean) {
  return (c: Ctx, a: Buffer[]): Reply => {
    const key = k(a[0]);
    if (a.length > 2) throw new RespError(SYNTAX);
    let count = 1;
    if (a[1] !== undefined) {
      count = intArg(a[1], 'ERR value is out of range, must be positive');
      if (count < 0) throw new RespError('ERR value is out of range, must be positive');
    }
    const cur = typed(c, key, 'zset');
    if (cur === undefined || count === 0) return R.array([]);
    const taken = cur.v.rangeByRank(0, count - 1, max).slice();
    for (const x of taken) cur.v.remove(x.member);
    store(c, key, { type: 'zset', value: cur.v }, max ? 'zpopmax' : 'zpopmin');
    return rangeReply(taken, true, c.conn.protocol === 3 && a[1] !== undefined);
  };
}
export const zpopmin = zpop(false);
export const zpopmax = zpop(true);

export function zremrangebyrank(c: Ctx, a: Buffer[]): Reply {
  const s = intArg(a[1]);
  const e = intArg(a[2]);
  return zremRange(c, k(a[0]), (z) => z.rangeByRank(s, e), 'zremrangebyrank');
}

export function zremrangebyscore(c: Ctx, a: Buffer[]): Reply {
  const lo = scoreBound(a[1]);
  const hi = scoreBound(a[2]);
  return zremRange(c, k(a[0]), (z) => z.rangeByScore(lo, hi), 'zremrangebyscore');
}

// --- HSCAN / SSCAN / ZSCAN -----------------------------------------------------------------------

/** A member's place in a scan: a 32-bit FNV-1a hash of it, plus one (so no member has cursor 0). */
function scanHash(name: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) {
    h ^= name.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) + 1;
}

/**
 * One step over a collection's members (HSCAN, SSCAN, ZSCAN). Members are visited in the order
 * of a hash of their bytes and the cursor is the hash to resume from, so it does not move when
 * other members come or go: a full iteration returns every member present throughout it, and a
 * member added or removed during it may or may not appear, as in Redis. (An index into the
 * sorted members, as before, skipped members when earlier ones were removed mid-iteration:
 * Redis's own test for issue #4906.) Members sharing a hash are returned in one step, so COUNT
 * is a hint, as in Redis.
 */
function scanMembers(items: [string, Reply | undefined][], cursor: number, count: number, match: string | undefined): Reply {
  const keyed = items.map((it) => ({ h: scanHash(it[0]), it }));
  keyed.sort((x, y) => x.h - y.h || (x.it[0] < y.it[0] ? -1 : x.it[0] > y.it[0] ? 1 : 0));
  let i = 0;
  let hi = keyed.length;
  while (i < hi) {
    const mid = (i + hi) >>> 1;
    if ((keyed[mid] as { h: number }).h < cursor) i = mid + 1;
    else hi = mid;
  }
  const res: Reply[] = [];
  let taken = 0;
  while (i < keyed.length && (taken < count || (keyed[i] as { h: number }).h === (keyed[i - 1] as { h: number }).h)) {
    const [name, v] = (keyed[i] as { it: [string, Reply | undefined] }).it;
    i++;
    taken++;
    if (match !== undefined && !globMatch(match, Buffer.from(name, 'latin1').toString('utf8'))) continue;
    res.push(out(name));
    if (v !== undefined) res.push(v);
  }
  const next = i < keyed.length ? (keyed[i] as { h: number }).h : 0;
  return R.array([R.bulk(String(next)), R.array(res)]);
}

export function hscan(c: Ctx, a: Buffer[]): Reply {
  const o = scanArgs(a, 1);
  const h = c.ks.getHash(k(a[0]));
  return scanMembers([...(h ?? [])].map(([n, v]) => [n, o.novalues ? undefined : R.bulk(v)]), o.cursor, o.count, o.match);
}
export function sscan(c: Ctx, a: Buffer[]): Reply {
  const o = scanArgs(a, 1);
  return scanMembers([...(typed(c, k(a[0]), 'set')?.v ?? [])].map((x) => [x, undefined]), o.cursor, o.count, o.match);
}
export function zscan(c: Ctx, a: Buffer[]): Reply {
  const o = scanArgs(a, 1);
  return scanMembers((typed(c, k(a[0]), 'zset')?.v.entries() ?? []).map((x) => [x.member, R.bulk(formatDouble(x.score))]), o.cursor, o.count, o.match);
}
