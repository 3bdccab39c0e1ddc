/**
 * Redis Cluster's key space for the cache tier across nodes (pure: no I/O): the slot of a key
 * (CRC-16/XMODEM with hash tags, as Redis's `keyHashSlot`) and the owners of every slot over a
 * set of live members by rendezvous hashing (HRW), primary first.
 */
import { hash } from 'node:crypto';
import { InvalidArgumentError } from '../errors.js';
import { SLOT_COUNT } from './keyslot.js';

export { SLOT_COUNT, crc16, keySlot } from './keyslot.js';

/** The most owners a slot can have: a primary and two replicas. */
export const MAX_SLOT_REPLICAS = 3;

// Slots per SHA-256 digest: its 32 bytes are four 64-bit scores, which makes a map four times
// cheaper to build than one digest per slot (16,384 × 10 members in a few ms).
const SCORES_PER_DIGEST = 4;

/** The bytes hashed for one member, with room for the uint16be block index at the end. */
function scoreInput(seed: string, member: string): Buffer {
  const seedBytes = Buffer.from(seed, 'utf8');
  const memberBytes = Buffer.from(member, 'utf8');
  const input = Buffer.alloc(4 + seedBytes.length + memberBytes.length + 2);
  input.writeUInt32BE(seedBytes.length, 0);
  seedBytes.copy(input, 4);
  memberBytes.copy(input, 4 + seedBytes.length);
  return input;
}

/** The two uint32 halves of each score in the digest for `block`: [hi0, lo0, hi1, lo1, …]. */
function digestWords(input: Buffer, block: number, out: Uint32Array): void {
  input[input.length - 2] = block >>> 8;
  input[input.length - 1] = block & 0xff;
  // 'binary' (Latin-1) maps each digest byte to one code unit: cheaper to read than hex or a Buffer.
  const d = hash('sha256', input, 'binary');
  for (let w = 0; w < 8; w++) {
    const j = w * 4;
    out[w] = ((d.charCodeAt(j) << 24) | (d.charCodeAt(j + 1) << 16) | (d.charCodeAt(j + 2) << 8) | d.charCodeAt(j + 3)) >>> 0;
  }
}

function checkSlot(slot: number): void {
  if (!Number.isInteger(slot) || slot < 0 || slot >= SLOT_COUNT) {
    throw new InvalidArgumentError(`slot must be an integer from 0 to ${SLOT_COUNT - 1}`, { slot });
  }
}

function checkMember(member: unknown): asserts member is string {
  if (typeof member !== 'string' || member.length === 0) {
    throw new InvalidArgumentError('a member id must be a non-empty string', { member });
  }
}

/**
 * The rendezvous score of `member` for `slot`, an unsigned 64-bit integer: bytes
 * 8·(slot mod 4) … 8·(slot mod 4) + 7, big-endian, of
 * SHA-256(uint32be(byte length of seed) ‖ seed ‖ member ‖ uint16be(⌊slot / 4⌋)), strings as
 * UTF-8. The same on every process and platform. A slot's owners are its members by score,
 * highest first, ties by member id ({@link slotOwners}); this is the reference the fast path
 * of {@link slotOwners} agrees with.
 *
 * @throws {InvalidArgumentError} when `slot` is not an integer in 0 … 16383 or `member` is empty.
 * @example hrwScore(0, 'node-1') // 64-bit bigint
 */
export function hrwScore(slot: number, member: string, seed = ''): bigint {
  checkSlot(slot);
  checkMember(member);
  const words = new Uint32Array(8);
  digestWords(scoreInput(seed, member), Math.floor(slot / SCORES_PER_DIGEST), words);
  const k = (slot % SCORES_PER_DIGEST) * 2;
  return (BigInt(words[k] as number) << 32n) | BigInt(words[k + 1] as number);
}

/** Byte order of the UTF-8 encodings: the order of member ids, and the tie-break of scores. */
function compareIds(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/** An inclusive run of slots `[start, end]` with the same owners, primary first (one entry of CLUSTER SLOTS). */
export interface SlotRange {
  start: number;
  end: number;
  owners: string[];
}

/**
 * The owners of every slot, as built by {@link slotOwners}: for each slot an ordered list of
 * {@link SlotMap.replicas} distinct members, the primary first. Immutable.
 *
 * @example
 * const map = slotOwners(['node-a', 'node-b', 'node-c'], 2);
 * map.primary(keySlot('user:1')); // the member that serves writes of `user:1`
 * map.ranges('node-a'); // e.g. [[0, 0], [3, 5], …]
 */
export class SlotMap {
  /** The member ids, distinct, in UTF-8 byte order. */
  readonly members: readonly string[];
  /** Owners per slot: the requested count capped at the member count (0 when there are no members). */
  readonly replicas: number;
  /** The seed the scores were computed with. */
  readonly seed: string;
  /** Member indexes, `replicas` per slot, slot-major, primary first. */
  private readonly table: Uint16Array | Uint32Array;
  private readonly index: ReadonlyMap<string, number>;

  /** Use {@link slotOwners}; this takes an already computed table. */
  constructor(members: readonly string[], replicas: number, seed: string, table: Uint16Array | Uint32Array) {
    this.members = members;
    this.replicas = replicas;
    this.seed = seed;
    this.table = table;
    this.index = new Map(members.map((m, i) => [m, i]));
  }

  /**
   * The primary of `slot`, or undefined when the map has no members.
   *
   * @throws {InvalidArgumentError} when `slot` is not an integer in 0 … 16383.
   */
  primary(slot: number): string | undefined {
    checkSlot(slot);
    return this.replicas === 0 ? undefined : this.members[this.table[slot * this.replicas] as number];
  }

  /**
   * The owners of `slot`, primary first then replicas by rank: {@link replicas} distinct ids (a
   * new array).
   *
   * @throws {InvalidArgumentError} when `slot` is not an integer in 0 … 16383.
   */
  owners(slot: number): string[] {
    checkSlot(slot);
    const out: string[] = [];
    for (let k = 0; k < this.replicas; k++) out.push(this.members[this.table[slot * this.replicas + k] as number] as string);
    return out;
  }

  /**
   * The slots `member` owns, ascending: those it is the primary of (`'primary'`, the default),
   * or those where it is any owner (`'owner'`). Empty for an id that is not a member.
   */
  slotsOf(member: string, role: 'primary' | 'owner' = 'primary'): number[] {
    const i = this.index.get(member);
    const out: number[] = [];
    if (i === undefined) return out;
    const ranks = role === 'primary' ? 1 : this.replicas;
    for (let s = 0; s < SLOT_COUNT; s++) {
      for (let k = 0; k < ranks; k++) {
        if (this.table[s * this.replicas + k] === i) {
          out.push(s);
          break;
        }
      }
    }
    return out;
  }

  /**
   * The slots `member` is the primary of as inclusive `[start, end]` runs, ascending and
   * maximal (CLUSTER NODES and CLUSTER SHARDS list a node's slots this way). Empty for an id
   * that is not a member.
   */
  ranges(member: string): [number, number][] {
    const out: [number, number][] = [];
    let last: [number, number] | undefined;
    for (const s of this.slotsOf(member)) {
      if (last !== undefined && last[1] === s - 1) last[1] = s;
      else out.push((last = [s, s]));
    }
    return out;
  }

  /**
   * Every slot, as maximal inclusive runs of slots with the same owner list, ascending from 0
   * to 16383: the entries of CLUSTER SLOTS. Empty when the map has no members. Under HRW
   * neighbouring slots rarely share every owner, so expect thousands of runs.
   */
  ownerRanges(): SlotRange[] {
    const out: SlotRange[] = [];
    const r = this.replicas;
    if (r === 0) return out;
    let start = 0;
    for (let s = 1; s <= SLOT_COUNT; s++) {
      let same = s < SLOT_COUNT;
      for (let k = 0; same && k < r; k++) same = this.table[s * r + k] === this.table[start * r + k];
      if (!same) {
        out.push({ start, end: s - 1, owners: this.owners(start) });
        start = s;
      }
    }
    return out;
  }
}

/**
 * The owners of every slot over the live `members` by rendezvous hashing (highest random
 * weight; Thaler & Ravishankar, "Using name-based mappings to increase hit rates", IEEE/ACM
 * ToN 1998): a slot's owners are the members with the highest {@link hrwScore} for it, highest
 * first, ties by member id (UTF-8 byte order); the first is the primary.
 *
 * The map is a function of the member set and the seed only: order and repeats in `members` do
 * not matter, so every node computes the same map from the same membership. A join moves only
 * the slots the newcomer enters the top `replicas` of (about replicas × 16384 / n); a leave
 * changes only the slots the leaver owned, where the owners behind it move up one rank (the
 * first surviving replica becomes primary) and one member joins at the tail.
 *
 * `replicas` is the number of owners per slot including the primary (1 … 3), capped at the
 * number of members; with no members every slot has no owner. `seed` (e.g. a cluster id)
 * changes every score. Cost: 16,384 × n / 4 SHA-256 digests.
 *
 * @throws {InvalidArgumentError} when `replicas` is not an integer in 1 … 3 or a member id is
 *   not a non-empty string.
 * @example slotOwners(['node-a', 'node-b', 'node-c'], 2).owners(12182) // e.g. ['node-b', 'node-a']
 */
export function slotOwners(members: readonly string[], replicas: number, seed = ''): SlotMap {
  if (!Number.isInteger(replicas) || replicas < 1 || replicas > MAX_SLOT_REPLICAS) {
    throw new InvalidArgumentError(`replicas must be an integer from 1 to ${MAX_SLOT_REPLICAS}`, { replicas });
  }
  for (const m of members) checkMember(m);
  if (typeof seed !== 'string') throw new InvalidArgumentError('seed must be a string', { seed });
  const sorted = [...new Set(members)].sort(compareIds);
  const n = sorted.length;
  const r = Math.min(replicas, n);

  // Scores member-major: hi and lo uint32 halves of member i's score for slot s at i·16384 + s.
  const hi = new Uint32Array(n * SLOT_COUNT);
  const lo = new Uint32Array(n * SLOT_COUNT);
  const words = new Uint32Array(8);
  for (let i = 0; i < n; i++) {
    const input = scoreInput(seed, sorted[i] as string);
    const base = i * SLOT_COUNT;
    for (let block = 0; block < SLOT_COUNT / SCORES_PER_DIGEST; block++) {
      digestWords(input, block, words);
      for (let k = 0; k < SCORES_PER_DIGEST; k++) {
        hi[base + block * SCORES_PER_DIGEST + k] = words[2 * k] as number;
        lo[base + block * SCORES_PER_DIGEST + k] = words[2 * k + 1] as number;
      }
    }
  }

  // Per slot, the top r by (score desc, index asc): an insertion into a list of at most 3.
  // Members come in ascending index order, so only a strictly higher score passes an earlier one.
  const table = n <= 0xffff ? new Uint16Array(SLOT_COUNT * r) : new Uint32Array(SLOT_COUNT * r);
  const topHi = new Uint32Array(r);
  const topLo = new Uint32Array(r);
  const topIdx = new Uint32Array(r);
  for (let s = 0; s < SLOT_COUNT; s++) {
    let count = 0;
    for (let i = 0; i < n; i++) {
      const h = hi[i * SLOT_COUNT + s] as number;
      const l = lo[i * SLOT_COUNT + s] as number;
      let p = count;
      while (p > 0 && (h > (topHi[p - 1] as number) || (h === topHi[p - 1] && l > (topLo[p - 1] as number)))) p--;
      if (p >= r) continue;
      for (let q = Math.min(count, r - 1); q > p; q--) {
        topHi[q] = topHi[q - 1] as number;
        topLo[q] = topLo[q - 1] as number;
        topIdx[q] = topIdx[q - 1] as number;
      }
      topHi[p] = h;
      topLo[p] = l;
      topIdx[p] = i;
      if (count < r) count++;
    }
    for (let k = 0; k < r; k++) table[s * r + k] = topIdx[k] as number;
  }
  return new SlotMap(sorted, r, seed, table);
}

/**
 * The slots whose primary differs between two maps, ascending (for metrics and logs of a
 * membership change). A slot with no primary in one map and one in the other counts as moved.
 *
 * @example movedSlots(slotOwners(['a', 'b'], 1), slotOwners(['a', 'b', 'c'], 1)) // the slots c is now primary of
 */
export function movedSlots(prev: SlotMap, next: SlotMap): number[] {
  const out: number[] = [];
  for (let s = 0; s < SLOT_COUNT; s++) if (prev.primary(s) !== next.primary(s)) out.push(s);
  return out;
}
