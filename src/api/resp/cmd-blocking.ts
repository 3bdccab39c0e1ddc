/**
 * The blocking list and sorted-set commands: BLPOP, BRPOP, BRPOPLPUSH, BLMOVE, BLMPOP, BZPOPMIN,
 * BZPOPMAX and BZMPOP (Redis 7 semantics). A handler here is the non-blocking attempt: it serves
 * the first of its keys that holds something, through the same code as LPOP, LMOVE, ZPOPMIN…,
 * or answers {@link BLOCK} / {@link BLOCK_NULL} when none does. The server (server.ts `block`)
 * then parks the client until a write makes one of its keys ready or the timeout passes; inside
 * a MULTI the marker is the reply itself (Redis never blocks in a transaction).
 */
import { Buffer } from 'node:buffer';
import type { Ctx } from './context.js';
import { lmove, lmpop, lpop, rpop, zmpop, zpopmax, zpopmin } from './cmd-collections.js';
import { RespError } from './keyspace.js';
import { R, type Reply } from './protocol.js';

/** "Nothing to serve, block": a nil array, Redis's reply of BLPOP/BZPOPMIN/BLMPOP in a MULTI and on timeout. */
export const BLOCK: Reply = { t: 'nullArray' };
/** "Nothing to serve, block" for BLMOVE/BRPOPLPUSH, whose reply in a MULTI is a nil bulk string. */
export const BLOCK_NULL: Reply = { t: 'null' };

/** Whether `r` is one of the block markers (by identity: a real nil reply never is). */
export function isBlock(r: Reply): boolean {
  return r === BLOCK || r === BLOCK_NULL;
}

/** Longest timer Node arms at once (ms); longer timeouts re-arm. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * The timeout argument of a blocking command: seconds as a float, 0 = forever.
 * @returns ms (0 = forever)
 * @throws RespError with Redis's wording: not a float, negative, or out of range.
 */
export function blockTimeoutMs(b: Buffer | undefined): number {
  const text = b === undefined ? '' : b.toString('latin1');
  // strtold's forms: decimal with an exponent, or hexadecimal (`0x7FFFFFFFFFFFFF`).
  const hex = /^\s*([+-]?)0x([0-9a-f]+)\s*$/i.exec(text);
  const secs = hex !== null ? (hex[1] === '-' ? -1 : 1) * parseInt(hex[2] as string, 16) : /^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$/.test(text) ? Number(text) : NaN;
  if (!Number.isFinite(secs)) throw new RespError('ERR timeout is not a float or out of range');
  if (secs < 0) throw new RespError('ERR timeout is negative');
  const ms = Math.ceil(secs * 1000);
  // Redis keeps the deadline (now + timeout) in a signed 64-bit count of ms.
  if (ms + Date.now() > 2 ** 63) throw new RespError('ERR timeout is out of range');
  return ms;
}

/**
 * BLPOP/BRPOP/BZPOPMIN/BZPOPMAX `key [key …] timeout`: runs `pop` on each key in order and answers
 * [key, …what it took] for the first key that gave something (`taken` picks it from the pop's reply).
 */
function firstServed(pop: (c: Ctx, a: Buffer[]) => Reply, taken: (r: Reply) => Reply[] | undefined) {
  return (c: Ctx, a: Buffer[]): Reply => {
    blockTimeoutMs(a[a.length - 1]);
    for (let i = 0; i < a.length - 1; i++) {
      const key = a[i] as Buffer;
      const got = taken(pop(c, [key]));
      if (got !== undefined) return R.array([R.bulk(key), ...got]);
    }
    return BLOCK;
  };
}
/** An element LPOP/RPOP took, or none (nil). */
const element = (r: Reply): Reply[] | undefined => (r.t === 'null' ? undefined : [r]);
/** The member and score ZPOPMIN/ZPOPMAX took, or none (an empty array). */
const scored = (r: Reply): Reply[] | undefined => (r.t === 'array' && r.v.length > 0 ? r.v : undefined);

/** BLPOP/BRPOP key [key …] timeout: [key, element] from the first non-empty list. */
export const blpop = firstServed(lpop, element);
export const brpop = firstServed(rpop, element);

/** BLMOVE src dst LEFT|RIGHT LEFT|RIGHT timeout: the element moved. */
export function blmove(c: Ctx, a: Buffer[]): Reply {
  blockTimeoutMs(a[4]);
  const r = lmove(c, a.slice(0, 4));
  return r.t === 'null' ? BLOCK_NULL : r;
}

/** BRPOPLPUSH src dst timeout: BLMOVE src dst RIGHT LEFT. */
export function brpoplpush(c: Ctx, a: Buffer[]): Reply {
  blockTimeoutMs(a[2]);
  const r = lmove(c, a.slice(0, 2), false, true);
  return r.t === 'null' ? BLOCK_NULL : r;
}

/** BZPOPMIN/BZPOPMAX key [key …] timeout: [key, member, score] from the first non-empty sorted set. */
export const bzpopmin = firstServed(zpopmin, scored);
export const bzpopmax = firstServed(zpopmax, scored);

/** BLMPOP timeout numkeys key … LEFT|RIGHT [COUNT n]: LMPOP after the timeout. */
export function blmpop(c: Ctx, a: Buffer[]): Reply {
  blockTimeoutMs(a[0]);
  const r = lmpop(c, a.slice(1));
  return r.t === 'nullArray' ? BLOCK : r;
}

/** BZMPOP timeout numkeys key … MIN|MAX [COUNT n]: ZMPOP after the timeout. */
export function bzmpop(c: Ctx, a: Buffer[]): Reply {
  blockTimeoutMs(a[0]);
  const r = zmpop(c, a.slice(1));
  return r.t === 'nullArray' ? BLOCK : r;
}

/**
 * Where a blocking command's timeout is: the last argument, or (BLMPOP, BZMPOP) the first.
 * `argv` includes the command name.
 */
export function timeoutArg(name: string, argv: readonly Buffer[]): Buffer | undefined {
  return name === 'blmpop' || name === 'bzmpop' ? argv[1] : argv[argv.length - 1];
}

/**
 * The AOF form of a served blocking command: the non-blocking command it amounts to, as Redis
 * propagates it (BLPOP served from `k` → `LPOP k`), so a replay never blocks. `served` is the
 * first key the command changed. @returns undefined for a command not of this family.
 */
export function blockingAofForm(name: string, argv: readonly Buffer[], served: string): Buffer[] | undefined {
  const B = (s: string): Buffer => Buffer.from(s);
  switch (name) {
    case 'blpop':
      return [B('LPOP'), B(served)];
    case 'brpop':
      return [B('RPOP'), B(served)];
    case 'bzpopmin':
      return [B('ZPOPMIN'), B(served)];
    case 'bzpopmax':
      return [B('ZPOPMAX'), B(served)];
    case 'blmove':
      return [B('LMOVE'), ...argv.slice(1, 5)];
    case 'brpoplpush':
      return [B('RPOPLPUSH'), ...argv.slice(1, 3)];
    case 'blmpop':
    case 'bzmpop': {
      // BLMPOP timeout numkeys key … END [COUNT n] → LMPOP 1 served END [COUNT n]
      const n = Number((argv[2] as Buffer).toString('latin1'));
      return [B(name === 'blmpop' ? 'LMPOP' : 'ZMPOP'), B('1'), B(served), ...argv.slice(3 + n)];
    }
    default:
      return undefined;
  }
}
