/**
 * SORT and SORT_RO (Redis 7 semantics) over the lists, sets and sorted sets of memory
 * namespaces: numeric or ALPHA order, ASC/DESC, LIMIT, BY and GET patterns (`*` replaced by the
 * element, `->field` for a hash field, `#` for the element itself), STORE into a list.
 */
import { Buffer } from 'node:buffer';
import { SYNTAX, intArg, parseDouble, word } from './args.js';
import { Deque, memberToBytes } from '../../cache/index.js';
import type { Ctx } from './context.js';
import { keyName } from './cmd-strings.js';
import { RespError, WRONGTYPE } from './keyspace.js';
import { R, type Reply } from './protocol.js';

interface SortOptions {
  desc: boolean;
  alpha: boolean;
  by: Buffer | undefined;
  /** BY a pattern without `*` (e.g. `nosort`): keep the stored order. */
  dontSort: boolean;
  gets: Buffer[];
  offset: number;
  count: number;
  store: string | undefined;
}

/** Parses SORT's options after the key. @throws RespError syntax error; STORE on SORT_RO. */
function sortOptions(a: Buffer[], readOnly: boolean): SortOptions {
  const o: SortOptions = { desc: false, alpha: false, by: undefined, dontSort: false, gets: [], offset: 0, count: -1, store: undefined };
  for (let i = 1; i < a.length; i++) {
    const w = word(a[i]);
    const left = a.length - 1 - i;
    if (w === 'ASC') o.desc = false;
    else if (w === 'DESC') o.desc = true;
    else if (w === 'ALPHA') o.alpha = true;
    else if (w === 'LIMIT' && left >= 2) {
      o.offset = intArg(a[++i]);
      o.count = intArg(a[++i]);
    } else if (w === 'STORE' && left >= 1 && !readOnly) o.store = keyName(a[++i]);
    else if (w === 'BY' && left >= 1) {
      o.by = a[++i] as Buffer;
      // A pattern without '*' names no key per element: the elements keep their order.
      if (!o.by.includes(0x2a)) o.dontSort = true;
    } else if (w === 'GET' && left >= 1) o.gets.push(a[++i] as Buffer);
    else throw new RespError(SYNTAX);
  }
  return o;
}

/**
 * The keys of a SORT: the sorted key, and with `STORE dst` the destination (for permission
 * checks and the kind rule). Options are not validated here.
 */
export function sortKeys(args: Buffer[]): number[] {
  // The last STORE wins, as in Redis.
  let store = -1;
  for (let i = 1; i < args.length - 1; i++) {
    const w = word(args[i]);
    if (w === 'STORE') store = i + 1;
    if (w === 'LIMIT') i += 2;
    else if (w === 'BY' || w === 'GET' || w === 'STORE') i += 1;
  }
  return store < 0 ? [0] : [0, store];
}

/**
 * Redis's lookupKeyByPattern: `#` is the element itself; otherwise the first `*` is replaced by
 * the element and the key read, a string, or with `key->field` a hash field. A pattern without
 * `*`, a missing key or one of another type gives undefined. The key must be readable by the
 * caller. @throws RespError NOPERM when it is not.
 */
function byPattern(c: Ctx, pattern: Buffer, elem: Buffer): Buffer | undefined {
  if (pattern.length === 1 && pattern[0] === 0x23 /* # */) return elem;
  const star = pattern.indexOf(0x2a);
  if (star < 0) return undefined;
  const arrow = pattern.indexOf('->', star + 1);
  const hasField = arrow >= 0 && arrow + 2 < pattern.length;
  const keyEnd = hasField ? arrow : pattern.length;
  const key = Buffer.concat([pattern.subarray(0, star), elem, pattern.subarray(star + 1, keyEnd)]).toString('latin1');
  if (!c.srv.canRead(c.conn, key)) throw new RespError(`NOPERM SORT may not read '${key}' (named by a BY or GET pattern)`);
  const v = c.ks.get(key);
  if (v === undefined) return undefined;
  if (hasField) return v.type === 'hash' ? v.value.get(pattern.subarray(arrow + 2).toString('latin1')) : undefined;
  return v.type === 'string' ? v.value : undefined;
}

/** The elements of the sorted key in their stored order, or undefined when it is missing. @throws RespError WRONGTYPE for a string or hash. */
function elementsOf(c: Ctx, key: string, dontSortZsetDesc: boolean): Buffer[] | undefined {
  const v = c.ks.get(key);
  if (v === undefined) return undefined;
  switch (v.type) {
    case 'list':
      return v.value.toArray();
    case 'set':
      return [...v.value].map(memberToBytes);
    case 'zset': {
      const all = v.value.rangeByRank(0, -1, dontSortZsetDesc);
      return all.map((x) => memberToBytes(x.member));
    }
    default:
      throw new RespError(WRONGTYPE);
  }
}

/**
 * A numeric SORT weight read as Redis reads it (strtod over the whole string): as
 * {@link parseDouble}, but an empty string is 0 and leading white space is skipped. Null if invalid.
 */
function sortWeight(w: Buffer): number | null {
  const s = w.toString('latin1');
  if (s.length === 0) return 0;
  const t = s.replace(/^[ \t\n\v\f\r]+/, '');
  return t.length === 0 ? null : parseDouble(t);
}

/**
 * SORT key [BY pattern] [LIMIT offset count] [GET pattern …] [ASC|DESC] [ALPHA] [STORE dst] and
 * SORT_RO (without STORE). Numeric order parses each element (or its BY weight; a missing
 * weight is 0) as a double, ties broken by the element's bytes; ALPHA compares bytes (Redis
 * with the C locale). Replies the elements (or the GET values, nil for a missing one), or with
 * STORE the length of the list stored (an empty result deletes `dst`).
 * @throws RespError `One or more scores can't be converted into double`; WRONGTYPE; syntax errors.
 */
function sortGeneric(c: Ctx, a: Buffer[], readOnly: boolean): Reply {
  const o = sortOptions(a, readOnly);
  const key = keyName(a[0]);
  let dontSort = o.dontSort;
  let alpha = o.alpha;
  let by = o.by;
  const src = c.ks.get(key);
  // A set has no order of its own: sorted anyway when stored, so the result is deterministic (as Redis).
  if (src?.type === 'set' && dontSort && o.store !== undefined) {
    dontSort = false;
    alpha = true;
    by = undefined;
  }
  let elems = elementsOf(c, key, dontSort && o.desc) ?? [];
  if (!dontSort) {
    const weights: (number | Buffer | undefined)[] = elems.map((e) => {
      const w = by === undefined ? e : byPattern(c, by, e);
      if (alpha) return w;
      if (w === undefined) return 0;
      const n = sortWeight(w);
      if (n === null || Number.isNaN(n)) throw new RespError("ERR One or more scores can't be converted into double");
      return n;
    });
    const order = elems.map((_, i) => i);
    const sign = o.desc ? -1 : 1;
    order.sort((i, j) => {
      const wi = weights[i];
      const wj = weights[j];
      let cmp: number;
      if (!alpha) {
        cmp = (wi as number) > (wj as number) ? 1 : (wi as number) < (wj as number) ? -1 : Buffer.compare(elems[i] as Buffer, elems[j] as Buffer);
      } else if (wi === undefined || wj === undefined) cmp = wi === wj ? 0 : wi === undefined ? -1 : 1;
      else cmp = Buffer.compare(wi as Buffer, wj as Buffer);
      return sign * cmp;
    });
    elems = order.map((i) => elems[i] as Buffer);
  }
  // LIMIT as Redis clamps it: a negative offset is 0, a negative count is "to the end".
  const start = Math.max(0, o.offset);
  const picked = start >= elems.length ? [] : elems.slice(start, o.count < 0 ? undefined : start + o.count);
  const rows: (Buffer | undefined)[] = [];
  for (const e of picked) {
    if (o.gets.length === 0) rows.push(e);
    else for (const g of o.gets) rows.push(byPattern(c, g, e));
  }
  if (o.store === undefined) return R.array(rows.map((x) => (x === undefined ? R.null : R.bulk(x))));
  if (rows.length === 0) c.ks.delete(o.store, 'del');
  else {
    const list = rows.map((x) => x ?? Buffer.alloc(0));
    c.ks.set(o.store, { type: 'list', value: new Deque(list) }, 0, 'sortstore');
  }
  return R.int(rows.length);
}

export const sort = (c: Ctx, a: Buffer[]): Reply => sortGeneric(c, a, false);
export const sortRo = (c: Ctx, a: Buffer[]): Reply => sortGeneric(c, a, true);
