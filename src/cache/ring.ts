/**
 * The cache ring: which live node serves each of Redis Cluster's 16,384 slots, as committed by
 * the cluster's leader in the shared backend (pure: no I/O). Every node builds the same
 * {@link CacheRing} from the same committed epoch, so all agree on a slot's primary.
 */
import { createHash } from 'node:crypto';
import { InvalidArgumentError } from '../errors.js';
import { MAX_SLOT_REPLICAS, SLOT_COUNT, keySlot, slotOwners, type SlotMap } from './slots.js';

/** {@link CacheRing.rank} of a slot this node does not own at any rank. */
export const NO_RANK = 255;

/**
 * Slots are placed in blocks of 2^4 = 16 consecutive slots, one rendezvous draw per block
 * (1,024 blocks): CLUSTER SLOTS then lists at most 1,024 ranges instead of one per slot, and a
 * node still gets its share within a few percent. A join or leave moves whole blocks, only those
 * it must (the HRW property holds per block).
 */
export const SLOT_BLOCK_BITS = 4;

/** Redis's 40-hex-digit node id for a Beacon node id (SHA-1 of it), as CLUSTER NODES, SLOTS and MYID show it. */
export function clusterNodeId(id: string): string {
  return createHash('sha1').update(id, 'utf8').digest('hex');
}

/** A node of the ring, as its membership row advertises it. */
export interface RingMember {
  /** The node id (`beacon_nodes.id`). */
  id: string;
  /** Its HTTP base URL, e.g. `http://10.0.0.5:7379`. */
  url: string;
  /** Its RESP listener, `redis://host:port` (`rediss://` with TLS). */
  respUrl: string;
}

/** The `host` and `port` of a RESP URL (`redis://host:port`). @throws InvalidArgumentError for another shape. */
export function respAddress(respUrl: string): { host: string; port: number; tls: boolean } {
  let u: URL;
  try {
    u = new URL(respUrl);
  } catch {
    throw new InvalidArgumentError('a RESP URL must look like redis://host:port', { respUrl });
  }
  const port = Number(u.port);
  if ((u.protocol !== 'redis:' && u.protocol !== 'rediss:') || !Number.isInteger(port) || port <= 0 || u.hostname === '') {
    throw new InvalidArgumentError('a RESP URL must look like redis://host:port', { respUrl });
  }
  const host = u.hostname.startsWith('[') ? u.hostname.slice(1, -1) : u.hostname;
  return { host, port, tls: u.protocol === 'rediss:' };
}

/** An inclusive run of slots with the same owners (an entry of CLUSTER SLOTS). */
export interface RingRange {
  start: number;
  end: number;
  /** The primary. */
  owner: RingMember;
  /** The primary, then the replicas (as many as the factor asked for; fewer with fewer members). */
  owners: RingMember[];
}

/**
 * One committed epoch of the ring: its members and the owner of every slot (rendezvous hashing
 * of blocks of {@link SLOT_BLOCK_BITS} slots over the member ids, {@link slotOwners}). Immutable.
 *
 * @example
 * const ring = new CacheRing(7, members, 'node-a');
 * ring.ownsKey('user:1') ? serveHere() : redirect(ring.ownerOfKey('user:1'));
 */
export class CacheRing {
  /** The rendezvous map over the member ids; its entry `b` places slot block `b`. */
  private readonly map: SlotMap;
  /** Per slot, the index in {@link members} of its primary (0xffff: none). */
  private readonly primaryIdx: Uint16Array;
  /** Per slot, {@link MAX_SLOT_REPLICAS} member indexes by rank (primary first; 0xffff: none). */
  private readonly ownerIdx: Uint16Array;
  /** Per slot, this node's rank among the owners (0 primary, 1 and 2 replicas; {@link NO_RANK}: none). */
  private readonly ranks: Uint8Array;
  /** Per slot, 1 when this node is its primary. */
  private readonly mine: Uint8Array;
  private readonly byId: ReadonlyMap<string, RingMember>;
  /** The `host:port` of each member's RESP listener, as MOVED names it ('' when unparsable). */
  private readonly addrs: string[];
  /** How many slots this node is the primary of. */
  readonly ownedCount: number;

  /**
   * @param epoch the committed epoch (1, 2, …; each commit adds one).
   * @param members the live members, each id once (a repeat keeps the first).
   * @param selfId this node's id (it need not be a member: then it owns nothing).
   * @throws InvalidArgumentError when a member id is empty.
   */
  constructor(
    readonly epoch: number,
    members: readonly RingMember[],
    readonly selfId: string,
  ) {
    const byId = new Map<string, RingMember>();
    for (const m of members) if (!byId.has(m.id)) byId.set(m.id, m);
    this.byId = byId;
    this.map = slotOwners([...byId.keys()], MAX_SLOT_REPLICAS);
    this.members = this.map.members.map((id) => byId.get(id) as RingMember);
    this.addrs = this.members.map((m) => {
      try {
        const a = respAddress(m.respUrl);
        return `${a.host.includes(':') ? `[${a.host}]` : a.host}:${a.port}`;
      } catch {
        return '';
      }
    });
    this.primaryIdx = new Uint16Array(SLOT_COUNT).fill(0xffff);
    this.ownerIdx = new Uint16Array(SLOT_COUNT * MAX_SLOT_REPLICAS).fill(0xffff);
    this.ranks = new Uint8Array(SLOT_COUNT).fill(NO_RANK);
    this.mine = new Uint8Array(SLOT_COUNT);
    const index = new Map(this.members.map((m, i) => [m.id, i]));
    let owned = 0;
    if (this.members.length > 0) {
      const blocks = SLOT_COUNT >> SLOT_BLOCK_BITS;
      for (let b = 0; b < blocks; b++) {
        const ids = this.map.owners(b);
        for (let s = b << SLOT_BLOCK_BITS; s < (b + 1) << SLOT_BLOCK_BITS; s++) {
          for (let k = 0; k < ids.length; k++) {
            const i = index.get(ids[k] as string) as number;
            this.ownerIdx[s * MAX_SLOT_REPLICAS + k] = i;
            if (ids[k] === selfId) this.ranks[s] = k;
          }
          this.primaryIdx[s] = this.ownerIdx[s * MAX_SLOT_REPLICAS] as number;
          if (ids[0] === selfId) {
            this.mine[s] = 1;
            owned++;
          }
        }
      }
    }
    this.ownedCount = owned;
  }

  /** The members in id order (the order of {@link SlotMap.members}). */
  readonly members: readonly RingMember[];

  /** Whether `id` is a member of this epoch. */
  has(id: string): boolean {
    return this.byId.has(id);
  }

  /** Whether this node is the primary of `slot` (0 … 16383; anything else: false). */
  owns(slot: number): boolean {
    return this.mine[slot] === 1;
  }

  /** Whether this node is the primary of `key`'s slot. */
  ownsKey(key: string | Uint8Array): boolean {
    return this.mine[keySlot(key)] === 1;
  }

  /** The primary of `slot`, or undefined when the ring has no members. */
  owner(slot: number): RingMember | undefined {
    const i = this.primaryIdx[slot];
    return i === undefined || i === 0xffff ? undefined : this.members[i];
  }

  /** This node's rank among `slot`'s owners: 0 primary, 1 or 2 a replica, {@link NO_RANK} none. */
  rank(slot: number): number {
    return this.ranks[slot] ?? NO_RANK;
  }

  /** The rank of member `id` among `slot`'s owners ({@link NO_RANK}: none). */
  rankOf(slot: number, id: string): number {
    for (let k = 0; k < MAX_SLOT_REPLICAS; k++) {
      const i = this.ownerIdx[slot * MAX_SLOT_REPLICAS + k];
      if (i === undefined || i === 0xffff) break;
      if (this.members[i]?.id === id) return k;
    }
    return NO_RANK;
  }

  /**
   * The owners of `slot` under a replication factor of `factor` (1 … 3): the primary first, then
   * its replicas, fewer when the ring has fewer members.
   */
  owners(slot: number, factor: number): RingMember[] {
    const out: RingMember[] = [];
    for (let k = 0; k < Math.min(factor, MAX_SLOT_REPLICAS); k++) {
      const i = this.ownerIdx[slot * MAX_SLOT_REPLICAS + k];
      if (i === undefined || i === 0xffff) break;
      out.push(this.members[i] as RingMember);
    }
    return out;
  }

  /** The `host:port` MOVED names for `slot`'s primary ('' when none or its RESP URL is unusable). */
  address(slot: number): string {
    const i = this.primaryIdx[slot];
    return i === undefined || i === 0xffff ? '' : (this.addrs[i] as string);
  }

  /** The `host:port` of member `id`'s RESP listener ('' when not a member). */
  addressOf(id: string): string {
    const i = this.members.findIndex((m) => m.id === id);
    return i < 0 ? '' : (this.addrs[i] as string);
  }

  /** The slots `id` is the primary of, as maximal inclusive `[start, end]` runs, ascending. */
  ranges(id: string): [number, number][] {
    return this.ownerRanges()
      .filter((r) => r.owner.id === id)
      .map((r) => [r.start, r.end]);
  }

  /**
   * Every slot as maximal runs with the same owners under replication factor `factor` (default
   * 1: the same primary), ascending (CLUSTER SLOTS); empty without members.
   */
  ownerRanges(factor = 1): RingRange[] {
    const out: RingRange[] = [];
    if (this.members.length === 0) return out;
    const f = Math.max(1, Math.min(MAX_SLOT_REPLICAS, factor));
    const same = (a: number, b: number): boolean => {
      for (let k = 0; k < f; k++) if (this.ownerIdx[a * MAX_SLOT_REPLICAS + k] !== this.ownerIdx[b * MAX_SLOT_REPLICAS + k]) return false;
      return true;
    };
    let start = 0;
    for (let s = 1; s <= SLOT_COUNT; s++) {
      if (s < SLOT_COUNT && same(s, start)) continue;
      const owners = this.owners(start, f);
      out.push({ start, end: s - 1, owner: owners[0] as RingMember, owners });
      start = s;
    }
    return out;
  }

  /** How many slots `id` is the primary of. */
  slotCount(id: string): number {
    let n = 0;
    for (const r of this.ownerRanges()) if (r.owner.id === id) n += r.end - r.start + 1;
    return n;
  }
}

/** What a node does with a command for a slot, by {@link SlotOwnership.route}. */
export type SlotRoute =
  /** This node serves it. */
  | 'serve'
  /** Another node is its primary: redirect or forward there. */
  | 'elsewhere'
  /** This node just became its primary and is still dropping what it held of it from before: try again shortly. */
  | 'importing'
  /** This node may not serve slots now: it has no ring yet, or its membership is not confirmed (fenced). */
  | 'down';

/** What {@link SlotOwnership} needs of the cache tier: drop keys of slots it does not hold. */
export interface SweepTarget {
  /**
   * Removes, without keyspace events, the entries among ids `from … from + budget − 1` whose key
   * `drop` accepts. @returns the next id to look at, or 0 when the whole table was visited.
   */
  dropWhere(from: number, budget: number, drop: (key: string) => boolean): number;
}

/** Entries a sweep step visits before it yields to the event loop. */
const SWEEP_BUDGET = 20_000;
/**
 * How long a node that became primary of a slot waits for the previous primary's hand-over to
 * begin, in ms: longer than the fence (a previous primary that does not send has stopped serving
 * by then), after which it serves the slot empty.
 */
export const HANDOVER_WAIT_MS = 4000;
/** How long a hand-over that began may take to end before the new primary serves what it got, in ms. */
export const HANDOVER_TRANSFER_MS = 15_000;
/** How often the deadlines of hand-overs are checked, in ms. */
const HANDOVER_CHECK_MS = 250;

/**
 * A node's current ring and which slots it holds now.
 *
 * A slot's data on this node is *valid* when it can be trusted at the node's rank:
 * - as primary, from the moment the node became primary with nothing stale left (a sweep
 *   dropped what it held from an earlier ownership), or from a valid replica's promotion;
 * - as replica, from the end of a full copy sent by the primary ({@link beginSync} …
 *   {@link endSync}).
 *
 * A key is kept while its slot is valid (or being copied) and this node's rank is below the
 * key's replication factor; the sweep, in steps without stalling, drops every other key. So a
 * node never serves a value written while another node owned the slot, and a replica promoted
 * by a failover serves exactly what it was sent.
 */
export class SlotOwnership {
  private current: CacheRing | undefined;
  /** Per slot, 1 when this node's data for it is valid at its rank (see the class comment). */
  private readonly valid = new Uint8Array(SLOT_COUNT);
  /** Per slot, 1 while a full copy from the primary (or the previous primary's hand-over) is arriving. */
  private readonly syncing = new Uint8Array(SLOT_COUNT);
  /**
   * Per slot this node became primary of while the previous primary is still a member: 1 while
   * it waits for that node's hand-over to begin (it holds nothing of the slot), 2 while the
   * hand-over arrives; 0 otherwise. Until the hand-over ends (or its deadline) the slot is
   * `importing`.
   */
  private readonly handover = new Uint8Array(SLOT_COUNT);
  /** Per slot, the `performance.now()` after which a waiting or arriving hand-over is given up. */
  private readonly handoverDeadline = new Float64Array(SLOT_COUNT);
  /**
   * Per slot, 1 while this node, its previous primary, hands it over in steps: its keys are kept
   * (not served) until {@link releaseHandout}.
   */
  private readonly handingOut = new Uint8Array(SLOT_COUNT);
  /**
   * Per slot, 1 while this node waits for or receives a hand-over of a slot that moved on to
   * another primary meanwhile (two ring changes close together, such as two nodes joining one
   * after the other): its keys are kept, and handed over again to the slot's primary once they
   * have all arrived, so a chain of moves loses nothing.
   */
  private readonly relay = new Uint8Array(SLOT_COUNT);
  private handoverTimer: NodeJS.Timeout | undefined;
  private sweepRun = 0;
  private sweeping = false;
  /** The ring of the last sweep that finished. */
  private settled: CacheRing | undefined;
  /** Rings applied (each join, leave or failover this node saw). */
  changes = 0;
  /** Slots this node took over as primary from being their replica (failovers: the primary is gone, not handing over). */
  promoted = 0;
  /**
   * Called once the sweep of a newly applied ring is done (this node then serves every slot it
   * is primary of), with the ring of the sweep that finished before: the primary sends its new
   * replicas their copies from here.
   */
  onSettled: ((prev: CacheRing | undefined, ring: CacheRing) => void) | undefined;
  /**
   * Called by {@link apply}, before anything is dropped, with the slots this node was the valid
   * primary of and no longer is, and the ring that moved them: the previous primary hands each
   * slot's keys over to its new primary from here. Their keys are kept (not served) until
   * {@link releaseHandout}.
   */
  onHandover: ((ring: CacheRing, slots: number[]) => void) | undefined;
  /**
   * Called once slots gained as primary are served after a hand-over (it ended, or its deadline
   * passed): their replicas get their copies from here (they were skipped while the slot waited).
   */
  onHandedOver: ((ring: CacheRing, slots: number[]) => void) | undefined;
  /** Slots served empty because the previous primary's hand-over did not come in time. */
  handoversMissed = 0;
  /**
   * Called by {@link apply} before it changes anything: work that must not straddle a ring
   * change (a replica's drop of the slots a copy begins, done in steps) completes here.
   */
  beforeApply: (() => void) | undefined;

  /**
   * @param target the cache tier (undefined: a node without memory namespaces; nothing to sweep).
   * @param fresh whether this node's membership is confirmed now (its last heartbeat is recent
   *   enough that no other node can have taken its slots); while false every slot is `down`.
   * @param factorOf a key's replication factor (its namespace's; 1 … 3).
   * @param opts.handoverWaitMs how long a new primary waits for a hand-over to begin, in ms
   *   (default {@link HANDOVER_WAIT_MS}).
   */
  constructor(
    private readonly target: SweepTarget | undefined,
    private readonly fresh: () => boolean,
    private readonly factorOf: (key: string) => number = () => 1,
    private readonly opts: { handoverWaitMs?: number } = {},
  ) {}

  /** The ring in force, or undefined before this node saw one. */
  get ring(): CacheRing | undefined {
    return this.current;
  }

  /** Whether a sweep is dropping keys of slots this node does not hold. */
  get busy(): boolean {
    return this.sweeping;
  }

  /** Whether this node has a ring and its membership is confirmed. */
  confirmed(): boolean {
    return this.current !== undefined && this.fresh();
  }

  /**
   * Puts `ring` in force. A slot this node no longer owns at any rank stops being held at once;
   * a slot it gained as primary is served once the sweep it starts has dropped what the tier
   * held of it; a slot it gained as replica waits for the primary's copy; a valid replica
   * promoted to primary serves at once. An older epoch than the one in force is ignored.
   *
   * Apply every epoch in order: a slot this node owned in two epochs may have been another
   * node's in between. `gap` says epochs were skipped (they were pruned before this node read
   * them): then nothing held is trusted, as after a first join.
   *
   * A slot gained as primary waits for its previous primary's hand-over ({@link beginHandover})
   * when that node is still a member or in `leaving` (members stopping cleanly, which own no
   * slot), even when this node held a replica's copy of it; `before` is the ring of the epoch
   * before the first one this node applies (who was primary then).
   */
  apply(ring: CacheRing, gap = false, before?: CacheRing, leaving?: ReadonlySet<string>): void {
    const prev = this.current;
    if (prev !== undefined && ring.epoch <= prev.epoch) return;
    this.beforeApply?.();
    // The slots this node served and loses as primary: handed over before the sweep drops them.
    if (prev !== undefined && !gap && this.onHandover !== undefined) {
      const lost: number[] = [];
      for (let s = 0; s < SLOT_COUNT; s++) {
        if (prev.rank(s) !== 0 || ring.rank(s) === 0) continue;
        if (this.valid[s] === 1) lost.push(s);
        else if (this.handover[s] !== 0) {
          // Its own hand-over has not ended yet: relayed once it has (see endHandover).
          this.relay[s] = 1;
          this.handingOut[s] = 1;
        }
      }
      for (const s of lost) this.handingOut[s] = 1;
      if (lost.length > 0) this.onHandover(ring, lost);
    }
    this.current = ring;
    this.changes++;
    // Who was primary before (this node's previous ring, or the epoch before its first one).
    const source = gap ? undefined : (prev ?? before);
    const now0 = performance.now();
    let waiting = 0;
    for (let s = 0; s < SLOT_COUNT; s++) {
      const was = gap ? NO_RANK : (prev?.rank(s) ?? NO_RANK);
      const now = ring.rank(s);
      if (now === 0 && was !== NO_RANK && was > 0) this.promoted++;
      // Back to this node while the hand-over it was to relay arrives: received for this node again.
      const back = this.relay[s] === 1 && now === 0 && !gap;
      // Primary again (or nothing trusted): what it was handing out is not kept for that any more.
      if (this.handingOut[s] === 1 && (now === 0 || gap)) {
        this.handingOut[s] = 0;
        this.relay[s] = 0;
      }
      if (this.handover[s] !== 0 && (now !== 0 || gap) && this.relay[s] === 0) {
        // No longer its primary (or epochs were missed: nothing is trusted): the hand-over is moot.
        this.handover[s] = 0;
        this.syncing[s] = 0;
      }
      // Still an owner (at any rank): its data stays what it was. Otherwise nothing is trusted.
      if (was === NO_RANK || now === NO_RANK) {
        this.valid[s] = 0;
        this.syncing[s] = 0;
      } else if (now === 0 && this.syncing[s] === 1 && this.handover[s] === 0) {
        // Promoted while the old primary's copy was arriving: what came is a consistent part of
        // it (the copy is one snapshot, and later writes come after it), so serve that.
        this.syncing[s] = 0;
        this.valid[s] = 1;
      }
      if (back && this.handover[s] === 2) this.syncing[s] = 1; // what arrived so far is kept
      if (now === 0 && was !== 0 && this.handover[s] === 0 && source !== undefined) {
        // Gained while its previous primary is alive (a member, or leaving): that node hands all
        // the keys over, those of every replication factor; what a replica holds is only part.
        const from = source.owners(s, 1)[0]?.id;
        if (from !== undefined && from !== ring.selfId && (ring.has(from) || leaving?.has(from) === true)) {
          if (was !== NO_RANK && was > 0) this.promoted--;
          this.handover[s] = 1;
          this.valid[s] = 0;
          this.syncing[s] = 0;
          this.handoverDeadline[s] = now0 + (this.opts.handoverWaitMs ?? HANDOVER_WAIT_MS);
          waiting++;
        }
      }
    }
    if (waiting > 0) this.armHandoverCheck();
    this.sweep(ring);
  }

  /**
   * The previous primary begins handing `slots` over (ring `epoch`): @returns the slots this
   * node still waits for, now arriving (their keys come from the previous primary; a slot that
   * waited holds nothing once the sweep went by, so the caller drops what it held of them only
   * while a sweep runs, see {@link busy}). @throws Error when this node has not applied `epoch`
   * yet (the sender retries).
   */
  beginHandover(epoch: number, slots: readonly number[]): number[] {
    const ring = this.current;
    if (ring === undefined || ring.epoch < epoch) throw new Error(`this node has not applied ring epoch ${epoch} yet`);
    const out: number[] = [];
    const deadline = performance.now() + HANDOVER_TRANSFER_MS;
    for (const s of slots) {
      if (this.handover[s] !== 1 || (!ring.owns(s) && this.relay[s] !== 1)) continue;
      this.handover[s] = 2;
      this.syncing[s] = 1;
      this.valid[s] = 0;
      this.handoverDeadline[s] = deadline;
      out.push(s);
    }
    return out;
  }

  /** Whether a hand-over of `slot` is arriving (its keys are taken; any other's are ignored). */
  receiving(slot: number): boolean {
    return this.handover[slot] === 2;
  }

  /** Whether this node waits for (or receives) the previous primary's hand-over of `slot`. */
  awaiting(slot: number): boolean {
    return this.handover[slot] !== 0;
  }

  /** The hand-over of `slots` is complete: this node serves them. */
  endHandover(slots: readonly number[]): void {
    const done: number[] = [];
    const relayed: number[] = [];
    for (const s of slots) {
      if (this.handover[s] !== 2) continue; // given up meanwhile, or a ring change made it moot
      this.handover[s] = 0;
      this.syncing[s] = 0;
      if (this.relay[s] === 1) {
        this.relay[s] = 0;
        relayed.push(s);
        continue;
      }
      // Safe during a sweep too: what the slot held from before was dropped when the hand-over began.
      if (this.current?.owns(s) === true) this.valid[s] = 1;
      done.push(s);
    }
    if (done.length > 0 && this.current !== undefined) this.onHandedOver?.(this.current, done);
    this.relayOn(relayed);
  }

  /** Hands `slots`, received for a ring that moved them on, over to their primary in the ring in force (or drops their keys). */
  private relayOn(slots: number[]): void {
    if (slots.length === 0) return;
    const ring = this.current;
    if (ring === undefined || this.onHandover === undefined) this.releaseHandout(slots);
    else this.onHandover(ring, slots);
  }

  /** Gives up the hand-overs whose deadline passed (the slot is then served with what came). */
  private armHandoverCheck(): void {
    if (this.handoverTimer !== undefined) return;
    this.handoverTimer = setTimeout(() => {
      this.handoverTimer = undefined;
      const t = performance.now();
      const ring = this.current;
      const expired: number[] = [];
      const relayed: number[] = [];
      const nothing: number[] = [];
      let left = 0;
      for (let s = 0; s < SLOT_COUNT; s++) {
        if (this.handover[s] === 0) continue;
        if ((this.handoverDeadline[s] as number) > t) {
          left++;
          continue;
        }
        // Arriving: serve what came (dropped before it began). Waiting: once the sweep dropped what it held (its end does it otherwise).
        const arriving = this.handover[s] === 2;
        this.handover[s] = 0;
        this.syncing[s] = 0;
        if (this.relay[s] === 1) {
          // Moved on meanwhile: what came goes on to the primary in force; the miss is counted there.
          this.relay[s] = 0;
          (arriving ? relayed : nothing).push(s);
          continue;
        }
        if (ring?.owns(s) === true && (arriving || !this.sweeping)) this.valid[s] = 1;
        expired.push(s);
      }
      if (expired.length > 0) {
        this.handoversMissed += expired.length;
        if (ring !== undefined) this.onHandedOver?.(ring, expired);
      }
      this.relayOn(relayed);
      if (nothing.length > 0) this.releaseHandout(nothing);
      if (left > 0) this.armHandoverCheck();
    }, HANDOVER_CHECK_MS);
    this.handoverTimer.unref();
  }

  /** Whether this node serves `slot` now (primary, valid, membership confirmed). */
  serves(slot: number): boolean {
    return this.current?.owns(slot) === true && this.valid[slot] === 1 && this.fresh();
  }

  /** Whether this node's data for `slot` is valid at its rank (a replica's copy is complete). */
  holds(slot: number): boolean {
    return this.valid[slot] === 1;
  }

  /** What to do with a command for `slot`. */
  route(slot: number): SlotRoute {
    const ring = this.current;
    if (ring === undefined || !this.fresh()) return 'down';
    if (!ring.owns(slot)) return 'elsewhere';
    return this.valid[slot] === 1 ? 'serve' : 'importing';
  }

  /**
   * The primary starts a full copy of `slots` to this node (a replica): their data is not valid
   * until {@link endSync}; the caller drops what the tier held of them first.
   */
  beginSync(slots: readonly number[]): void {
    for (const s of slots) {
      this.valid[s] = 0;
      this.syncing[s] = 1;
    }
  }

  /** The primary's copy of `slots` is complete: valid for as long as this node stays an owner. */
  endSync(slots: readonly number[]): void {
    const ring = this.current;
    for (const s of slots) {
      if (this.syncing[s] !== 1) continue; // a ring change since made the copy moot
      this.syncing[s] = 0;
      if (ring !== undefined && ring.rank(s) !== NO_RANK) this.valid[s] = 1;
    }
  }

  /**
   * The hand-over of `slots` this node sent as their previous primary ended (or failed): their
   * keys are dropped now, in steps, unless this node keeps them for another reason.
   */
  releaseHandout(slots: readonly number[]): void {
    const release = new Set<number>();
    for (const s of slots) {
      if (this.handingOut[s] !== 1) continue;
      this.handingOut[s] = 0;
      release.add(s);
    }
    const target = this.target;
    if (release.size === 0 || target === undefined) return;
    let from = 0;
    const step = (): void => {
      from = target.dropWhere(from, SWEEP_BUDGET, (key) => release.has(keySlot(key)) && !this.keeps(key));
      if (from !== 0) setImmediate(step);
    };
    step();
  }

  /** Whether this node is handing `slot` over to its new primary (its keys are kept until then). */
  handingOver(slot: number): boolean {
    return this.handingOut[slot] === 1;
  }

  /** Whether the tier may keep `key`: this node holds its slot at a rank below its replication factor. */
  keeps(key: string): boolean {
    const ring = this.current;
    if (ring === undefined) return false;
    const slot = keySlot(key);
    if (this.handingOut[slot] === 1) return true;
    if (this.valid[slot] !== 1 && this.syncing[slot] !== 1) return false;
    return ring.rank(slot) < this.factorOf(key);
  }

  /** Drops, in steps, every key not kept; then makes valid the slots this node is primary of. A newer ring restarts it. */
  private sweep(ring: CacheRing): void {
    const run = ++this.sweepRun;
    const target = this.target;
    // Slots gained as primary (not valid): served once the stale keys are gone.
    const gained: number[] = [];
    for (let s = 0; s < SLOT_COUNT; s++) if (ring.owns(s) && this.valid[s] !== 1) gained.push(s);
    const done = (): void => {
      if (run !== this.sweepRun) return;
      for (const s of gained) if (this.syncing[s] !== 1 && this.handover[s] === 0) this.valid[s] = 1;
      this.sweeping = false;
      // Against the ring of the last sweep that finished: a ring applied meanwhile (its sweep cut
      // short by this one) must not hide a change from the replicas' copies.
      const from = this.settled;
      this.settled = ring;
      this.onSettled?.(from, ring);
    };
    if (target === undefined) {
      done();
      return;
    }
    this.sweeping = true;
    const drop = (key: string): boolean => !this.keeps(key);
    let from = 0;
    const step = (): void => {
      if (run !== this.sweepRun) return; // a newer ring started its own sweep
      from = target.dropWhere(from, SWEEP_BUDGET, drop);
      if (from === 0) done();
      else setImmediate(step);
    };
    step();
  }
}
