/**
 * The cache ring: which live node serves each of Redis Cluster's 16,384 slots, as committed by
 * the cluster's leader in the shared backend (pure: no I/O). Every node builds the same
 * {@link CacheRing} from the same committed epoch, so all agree on a slot's primary.
 */
import { createHash } from 'node:crypto';
import { InvalidArgumentError } from '../errors.js';
import { SLOT_COUNT, keySlot, slotOwners, type SlotMap } from './slots.js';

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

/** An inclusive run of slots with one primary (an entry of CLUSTER SLOTS). */
export interface RingRange {
  start: number;
  end: number;
  owner: RingMember;
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
    this.map = slotOwners([...byId.keys()], 1);
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
    this.mine = new Uint8Array(SLOT_COUNT);
    const index = new Map(this.members.map((m, i) => [m.id, i]));
    let owned = 0;
    if (this.members.length > 0) {
      for (let s = 0; s < SLOT_COUNT; s++) {
        const id = this.map.primary(s >> SLOT_BLOCK_BITS) as string;
        this.primaryIdx[s] = index.get(id) as number;
        if (id === selfId) {
          this.mine[s] = 1;
          owned++;
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

  /** Every slot as maximal runs with the same primary, ascending (CLUSTER SLOTS); empty without members. */
  ownerRanges(): RingRange[] {
    const out: RingRange[] = [];
    if (this.members.length === 0) return out;
    let start = 0;
    for (let s = 1; s <= SLOT_COUNT; s++) {
      if (s < SLOT_COUNT && this.primaryIdx[s] === this.primaryIdx[start]) continue;
      out.push({ start, end: s - 1, owner: this.members[this.primaryIdx[start] as number] as RingMember });
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

/** What {@link SlotOwnership} needs of the cache tier: drop keys of slots it does not serve. */
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
 * A node's current ring and which of its slots it serves now. A slot is served once this node
 * is its primary AND it holds nothing stale for it: when a ring change gives it a slot, the
 * keys left from an earlier time it owned that slot are dropped first (a sweep over the tier,
 * in steps, without stalling), and until then the slot answers {@link SlotRoute} `importing`.
 * A slot it loses is dropped by the same sweep. So a node never serves a value written while
 * another node owned the slot.
 */
export class SlotOwnership {
  private current: CacheRing | undefined;
  /** Per slot, 1 when this node serves it: it is the primary and holds nothing stale for it. */
  private readonly serving = new Uint8Array(SLOT_COUNT);
  private sweepRun = 0;
  private sweeping = false;
  /** Rings applied (each join, leave or failover this node saw). */
  changes = 0;

  /**
   * @param target the cache tier (undefined: a node without memory namespaces; nothing to sweep).
   * @param fresh whether this node's membership is confirmed now (its last heartbeat is recent
   *   enough that no other node can have taken its slots); while false every slot is `down`.
   */
  constructor(
    private readonly target: SweepTarget | undefined,
    private readonly fresh: () => boolean,
  ) {}

  /** The ring in force, or undefined before this node saw one. */
  get ring(): CacheRing | undefined {
    return this.current;
  }

  /** Whether a sweep is dropping keys of slots this node does not serve. */
  get busy(): boolean {
    return this.sweeping;
  }

  /**
   * Puts `ring` in force: slots it no longer owns stop being served at once; slots it gained are
   * served once the sweep it starts has dropped what the tier held of them. An older epoch than
   * the one in force is ignored.
   */
  apply(ring: CacheRing): void {
    if (this.current !== undefined && ring.epoch <= this.current.epoch) return;
    this.current = ring;
    this.changes++;
    for (let s = 0; s < SLOT_COUNT; s++) if (!ring.owns(s)) this.serving[s] = 0;
    this.sweep(ring);
  }

  /** Whether this node serves `slot` now (primary, swept, membership confirmed). */
  serves(slot: number): boolean {
    return this.serving[slot] === 1 && this.fresh();
  }

  /** What to do with a command for `slot`. */
  route(slot: number): SlotRoute {
    const ring = this.current;
    if (ring === undefined || !this.fresh()) return 'down';
    if (this.serving[slot] === 1) return 'serve';
    return ring.owns(slot) ? 'importing' : 'elsewhere';
  }

  /** Drops, in steps, every key whose slot is not served; then serves every owned slot. A newer ring restarts it. */
  private sweep(ring: CacheRing): void {
    const run = ++this.sweepRun;
    const target = this.target;
    const done = (): void => {
      if (run !== this.sweepRun) return;
      for (let s = 0; s < SLOT_COUNT; s++) this.serving[s] = ring.owns(s) ? 1 : 0;
      this.sweeping = false;
    };
    if (target === undefined) {
      done();
      return;
    }
    this.sweeping = true;
    const drop = (key: string): boolean => this.serving[keySlot(key)] !== 1;
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
