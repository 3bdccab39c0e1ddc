/**
 * COPY and OBJECT. OBJECT ENCODING answers the encoding Redis 7.2 would use for a value of the
 * same shape under the encoding thresholds CONFIG SET accepts (Beacon's own representations
 * differ: see docs/resp.md); OBJECT IDLETIME/FREQ read the cache tier's LRU/LFU data.
 */
import { Deque, SortedSet, type CacheValue } from '../../cache/index.js';
import { NOT_INTEGER, SYNTAX, parseI64, word } from './args.js';
import { keyName } from './cmd-strings.js';
import { isRaw } from './encoding.js';
import type { Ctx } from './context.js';
import { RespError, decodeDurableHash, type Value } from './keyspace.js';
import { MemoryKeyspace } from './memory.js';
import { R, type Reply } from './protocol.js';

/** Redis's OBJ_ENCODING_EMBSTR_SIZE_LIMIT: strings up to 44 bytes are embedded in their object. */
const EMBSTR_LIMIT = 44;
/** Redis's shared integers (OBJ_SHARED_INTEGERS): 0…9999, with refcount INT_MAX unless an LRU/LFU policy is set. */
const SHARED_INTEGERS = 10000;
const OBJ_SHARED_REFCOUNT = 2147483647;
/** Redis's size cap of one list node whatever `list-max-listpack-size` says (SIZE_SAFETY_LIMIT). */
const LIST_SAFETY_BYTES = 8192;

/** Whether `b` is a canonical signed 64-bit decimal (Redis's string2ll: no sign on 0, no leading zeros or spaces). */
function isInt(b: Buffer | string): boolean {
  const s = typeof b === 'string' ? b : b.length > 20 ? '' : b.toString('latin1');
  return /^(0|-?[1-9][0-9]*)$/.test(s) && parseI64(s) !== null;
}

/** Bytes one element takes in a listpack (encoding header + data + back-length), as lpEncode sizes it. */
function listpackEntryBytes(b: Buffer | string): number {
  const len = typeof b === 'string' ? b.length : b.length;
  let body: number;
  if (len <= 20 && isInt(b)) {
    const v = BigInt(typeof b === 'string' ? b : b.toString('latin1'));
    if (v >= 0n && v <= 127n) body = 1;
    else if (v >= -4096n && v <= 4095n) body = 2;
    else if (v >= -32768n && v <= 32767n) body = 3;
    else if (v >= -8388608n && v <= 8388607n) body = 4;
    else if (v >= -2147483648n && v <= 2147483647n) body = 5;
    else body = 9;
  } else body = (len < 64 ? 1 : len < 4096 ? 2 : 5) + len;
  return body + (body < 128 ? 1 : body < 16384 ? 2 : body < 2097152 ? 3 : body < 268435456 ? 4 : 5);
}

/** The thresholds `srv` reports through CONFIG GET, as numbers. */
function knob(c: Ctx, name: string, dflt: number): number {
  const v = c.srv.configGet(name)[0]?.[1];
  const n = v === undefined ? NaN : Number(v);
  return Number.isFinite(n) ? n : dflt;
}

/**
 * The encoding Redis 7.2 would report for `v`. Redis converts only towards the larger encoding
 * as a value grows (a list also back when it shrinks to half the limit); this answers from the
 * current shape, so a value that grew past a threshold and shrank again reports the smaller one.
 */
export function encodingOf(c: Ctx, v: Value): string {
  switch (v.type) {
    case 'string':
      if (isRaw(v.value)) return 'raw';
      if (isInt(v.value)) return 'int';
      return v.value.length <= EMBSTR_LIMIT ? 'embstr' : 'raw';
    case 'list': {
      const fill = knob(c, 'list-max-listpack-size', -2);
      const items = v.value.toArray();
      if (fill >= 0) return items.length <= Math.max(fill, 1) && bytesOf(items) <= LIST_SAFETY_BYTES ? 'listpack' : 'quicklist';
      const limit = 4096 * 2 ** (Math.min(Math.max(-fill, 1), 5) - 1);
      return bytesOf(items) <= limit ? 'listpack' : 'quicklist';
    }
    case 'set': {
      const n = v.value.size;
      let allInts = true;
      let longest = 0;
      for (const m of v.value) {
        if (allInts && !isInt(m)) allInts = false;
        if (m.length > longest) longest = m.length;
      }
      if (allInts && n <= knob(c, 'set-max-intset-entries', 512)) return 'intset';
      return n <= knob(c, 'set-max-listpack-entries', 128) && longest <= knob(c, 'set-max-listpack-value', 64) ? 'listpack' : 'hashtable';
    }
    case 'hash': {
      const max = knob(c, 'hash-max-listpack-value', 64);
      if (v.value.size > knob(c, 'hash-max-listpack-entries', 128)) return 'hashtable';
      for (const [f, val] of v.value) if (f.length > max || val.length > max) return 'hashtable';
      return 'listpack';
    }
    case 'zset': {
      const max = knob(c, 'zset-max-listpack-value', 64);
      if (v.value.size > knob(c, 'zset-max-listpack-entries', 128)) return 'skiplist';
      for (const e of v.value.entries()) if (e.member.length > max) return 'skiplist';
      return 'listpack';
    }
  }
}

/** Bytes of a listpack holding `items` (header 6 + end 1 + entries). */
function bytesOf(items: Buffer[]): number {
  let n = 7;
  for (const b of items) n += listpackEntryBytes(b);
  return n;
}

/** A copy of `v` sharing nothing mutable with it (strings and hash values are never edited in place, but copied all the same). */
function deepCopy(v: CacheValue): CacheValue {
  switch (v.type) {
    case 'string':
      return { type: 'string', value: Buffer.from(v.value) };
    case 'hash':
      return { type: 'hash', value: new Map([...v.value].map(([f, b]) => [f, Buffer.from(b)])) };
    case 'list':
      return { type: 'list', value: new Deque(v.value.toArray().map((b) => Buffer.from(b))) };
    case 'set':
      return { type: 'set', value: new Set(v.value) };
    case 'zset': {
      const z = new SortedSet();
      for (const e of v.value.entries()) z.add(e.member, e.score);
      return { type: 'zset', value: z };
    }
  }
}

/**
 * COPY source destination [DB 0] [REPLACE]: 1 when copied, 0 when the source is missing or the
 * destination exists without REPLACE. The copy gets the source's expiry. Both keys must be of
 * one kind (the server refuses a memory ↔ durable pair before this runs); a durable copy is one
 * put of the source's bytes (a JSON hash stays a JSON hash), with a lease for its TTL.
 */
export function copy(c: Ctx, a: Buffer[]): Reply {
  const from = keyName(a[0]);
  const to = keyName(a[1]);
  let replace = false;
  for (let i = 2; i < a.length; i++) {
    const w = word(a[i]);
    if (w === 'REPLACE') replace = true;
    else if (w === 'DB' && i + 1 < a.length) {
      const db = parseI64(a[++i] as Buffer);
      if (db === null || db > 2147483647n || db < -2147483648n) throw new RespError(NOT_INTEGER);
      // One database: what SELECT answers for any other index.
      if (db !== 0n) throw new RespError('ERR DB index is out of range');
    } else throw new RespError(SYNTAX);
  }
  if (from === to) throw new RespError('ERR source and destination objects are the same');
  const v = c.ks.get(from);
  if (v === undefined) return R.int(0);
  const expiresAt = c.ks.expiresAt(from);
  if (!replace && c.ks.get(to) !== undefined) return R.int(0);
  // One write replaces any destination value (Redis deletes it without an event, then adds the
  // copy: one `copy_to` notification); the copy's expiry is the source's, none when it has none.
  c.ks.set(to, deepCopy(v), expiresAt, 'copy_to');
  return R.int(1);
}

const OBJECT_HELP = [
  'OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:',
  'ENCODING <key>',
  '    Return the kind of internal representation used in order to store the value',
  '    associated with a <key>.',
  'FREQ <key>',
  '    Return the access frequency index of the <key>. The returned integer is',
  '    proportional to the logarithm of the recent access frequency of the key.',
  'IDLETIME <key>',
  '    Return the idle time of the <key>, that is the approximated number of',
  '    seconds elapsed since the last access to the key.',
  'REFCOUNT <key>',
  '    Return the number of references of the value associated with the specified',
  '    <key>.',
  'HELP',
  '    Prints this help.',
];

const POLICY_NOTE = 'Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.';

/**
 * OBJECT ENCODING|REFCOUNT|IDLETIME|FREQ key, OBJECT HELP. Reads never touch the key's LRU/LFU
 * data (Redis's LOOKUP_NOTOUCH). A durable key has no access data: IDLETIME/FREQ on it answer
 * an error saying so.
 */
export function object(c: Ctx, a: Buffer[]): Reply {
  const sub = word(a[0]);
  const lower = sub.toLowerCase();
  if (sub === 'HELP' && a.length === 1) return R.array(OBJECT_HELP.map((l) => R.simple(l)));
  if (sub !== 'ENCODING' && sub !== 'REFCOUNT' && sub !== 'IDLETIME' && sub !== 'FREQ' && sub !== 'HELP') {
    throw new RespError(`ERR unknown subcommand '${(a[0] as Buffer).toString('latin1')}'. Try OBJECT HELP.`);
  }
  if (a.length !== (sub === 'HELP' ? 1 : 2)) throw new RespError(`ERR wrong number of arguments for 'object|${lower}' command`);
  const key = keyName(a[1]);
  const mem = c.ks instanceof MemoryKeyspace ? c.ks : undefined;
  const v = mem !== undefined ? mem.tier.peek(key) : c.ks.get(key);
  if (v === undefined) return R.null;
  const policy = c.srv.configGet('maxmemory-policy')[0]?.[1] ?? 'noeviction';
  const lfu = policy.endsWith('-lfu');
  switch (sub) {
    case 'ENCODING': {
      if (mem === undefined && v.type === 'string') {
        // A durable JSON object is a hash to RESP commands (HGET, TYPE).
        const fields = decodeDurableHash(v.value);
        if (fields !== undefined) return R.bulk(encodingOf(c, { type: 'hash', value: fields }));
      }
      return R.bulk(encodingOf(c, v));
    }
    case 'REFCOUNT': {
      const shared = v.type === 'string' && !isRaw(v.value) && isInt(v.value) && !policy.endsWith('-lru') && !lfu;
      const n = shared ? Number(v.value.toString('latin1')) : -1;
      return R.int(shared && n >= 0 && n < SHARED_INTEGERS ? OBJ_SHARED_REFCOUNT : 1);
    }
    case 'IDLETIME':
      if (lfu) throw new RespError(`ERR An LFU maxmemory policy is selected, idle time not tracked. ${POLICY_NOTE}`);
      if (mem === undefined) throw new RespError(`ERR '${key}' is a durable key: only memory keys keep access times`);
      return R.int(mem.tier.objectIdleTime(key) ?? 0);
    default:
      if (!lfu) throw new RespError(`ERR An LFU maxmemory policy is not selected, access frequency not tracked. ${POLICY_NOTE}`);
      if (mem === undefined) throw new RespError(`ERR '${key}' is a durable key: only memory keys keep access frequencies`);
      return R.int(mem.tier.objectFreq(key) ?? 0);
  }
}

const MEMORY_HELP = [
  'MEMORY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:',
  'USAGE <key> [SAMPLES <count>]',
  '    Return memory in bytes used by <key> and its value. Nested values are',
  '    sampled up to <count> times (default: 5, 0 means sample all).',
  'HELP',
  '    Prints this help.',
];

/**
 * MEMORY USAGE key [SAMPLES n], MEMORY HELP. A memory key answers the bytes it is counted as in
 * `used_memory` (what `maxmemory` compares; SAMPLES is accepted and ignored: every element is
 * counted); a durable key answers its key and value bytes. A missing key answers nil, as in
 * Redis. Other MEMORY subcommands (STATS, DOCTOR, MALLOC-STATS, PURGE) are not built.
 */
export function memory(c: Ctx, a: Buffer[]): Reply {
  const sub = word(a[0]);
  if (sub === 'HELP' && a.length === 1) return R.array(MEMORY_HELP.map((l) => R.simple(l)));
  if (sub !== 'USAGE') throw new RespError(`ERR unknown subcommand '${(a[0] as Buffer).toString('latin1')}'. Try MEMORY HELP.`);
  if (a.length !== 2 && a.length !== 4) throw new RespError(a.length < 2 ? "ERR wrong number of arguments for 'memory|usage' command" : SYNTAX);
  if (a.length === 4) {
    if (word(a[2]) !== 'SAMPLES') throw new RespError(SYNTAX);
    const n = parseI64(a[3] as Buffer);
    if (n === null) throw new RespError(NOT_INTEGER);
    if (n < 0n) throw new RespError('ERR value is out of range, must be positive');
  }
  const key = keyName(a[1]);
  if (c.ks instanceof MemoryKeyspace) {
    const n = c.ks.tier.memoryUsage(key);
    return n === undefined ? R.null : R.int(n);
  }
  const v = c.ks.get(key);
  if (v === undefined) return R.null;
  return R.int(Buffer.byteLength(key) + valueBytes(v));
}

/** The payload bytes of a durable key's value as RESP sees it. */
function valueBytes(v: Value): number {
  switch (v.type) {
    case 'string':
      return v.value.length;
    case 'hash': {
      let n = 0;
      for (const [f, b] of v.value) n += f.length + b.length;
      return n;
    }
    default:
      return 0;
  }
}
