/**
 * Replication of memory keys in a cache cluster (docs/operations/cache-cluster.md): the primary
 * of a slot sends each write, in the form its append-only file records it, to the slot's
 * replicas (the next owners by rendezvous rank, as many as the key's namespace asks); a new
 * replica first gets a full copy of its slots. A namespace with `replication: "sync"` answers a
 * write once every replica acknowledged it; `WAIT` waits for the acknowledgements either way.
 *
 * Wire (between nodes only; any other client gets "unknown command"):
 * - `BEACON.REPL <cmd> <arg>…` runs one write on a replica.
 * - `BEACON.SYNC-BEGIN <epoch> <slot>…` starts a copy: the replica drops what it held of those
 *   slots, in steps, and answers when done (`-TRYAGAIN` while it has not applied that ring epoch
 *   yet: the primary retries).
 * - `BEACON.SYNC-END <slot>…` ends it: the replica's data of those slots is valid.
 *
 * A slot whose primary moves while the previous primary is alive (a node joined, a node stops
 * cleanly and is `leaving`, a frozen node came back) is handed over: the previous primary stops serving it as it applies the ring, takes a
 * snapshot of its keys, and sends them to the new primary, which answers `TRYAGAIN` for the slot
 * until the snapshot is complete (at most {@link HANDOVER_WAIT_MS} for it to begin).
 * - `BEACON.HANDOVER-BEGIN <epoch> <slot>…`: the new primary answers the slots it still waits
 *   for (a bulk string of slot numbers), after dropping what it held of them, in steps
 *   (`-TRYAGAIN` while it has not applied that ring epoch yet: the sender retries).
 * - `BEACON.HANDOVER-KEY <cmd> <arg>…`: one write of the snapshot, run only when its key's slot
 *   is being handed over (`:1`), else ignored (`:0`): a slot the new primary gave up waiting for
 *   and serves already is never overwritten by an older value.
 * - `BEACON.HANDOVER-END <slot>…`: the new primary serves those slots.
 */
import { HANDOVER_WAIT_MS, NO_RANK, SLOT_COUNT, keySlot, type CacheRing, type CacheTier, type SlotOwnership } from '../../cache/index.js';
import type { Logger } from '../../obs/index.js';
import type { ClusterRouter } from './routing.js';
import { R, type Reply } from './protocol.js';
import { errorMessage } from '../../errors.js';

const REPL = Buffer.from('BEACON.REPL');
const SYNC_BEGIN = Buffer.from('BEACON.SYNC-BEGIN');
const SYNC_END = Buffer.from('BEACON.SYNC-END');
const HANDOVER_BEGIN = Buffer.from('BEACON.HANDOVER-BEGIN');
const HANDOVER_KEY = Buffer.from('BEACON.HANDOVER-KEY');
const HANDOVER_END = Buffer.from('BEACON.HANDOVER-END');
/** Table entries a copy or hand-over visits per event-loop turn. */
const STEP = 5_000;
/** Table entries a drop before a copy or hand-over visits per event-loop turn. */
const DROP_STEP = 5_000;
/** How often a primary retries a copy a replica is not ready for, and how many times. */
const COPY_RETRY_MS = 100;
const COPY_RETRIES = 100;

/** What {@link Replicator} needs. */
export interface ReplicatorOptions {
  router: ClusterRouter;
  slots: SlotOwnership;
  cache: CacheTier;
  logger: Logger;
  /** Runs one replicated write on this node's memory keyspace, without events. @throws on a failed command. */
  exec: (argv: Buffer[]) => void;
  /** The largest replication factor of any memory namespace (1 when there is none). */
  maxFactor: () => number;
}

/** The outcome of replicating one write: how many replicas acknowledged it. */
export type Acks = Promise<{ acked: number; wanted: number; error?: string }>;

/** Both sides of replication for one node's RESP listener. */
export class Replicator {
  /** Writes sent to a replica and not acknowledged yet (the replication lag, in writes). */
  inFlight = 0;
  /** Keys this node handed over to new primaries of its slots. */
  handedOver = 0;
  /** Hand-overs being sent. */
  private readonly handing = new Set<Promise<void>>();
  /** Drops of slots whose copy begins, in order: the next table entry to look at, and whom to tell when done. */
  private readonly drops: { slots: Set<number>; from: number; done: () => void }[] = [];

  constructor(private readonly o: ReplicatorOptions) {}

  /** The replication factor of `key` (its namespace's; 1 when none). */
  factorOf(key: string): number {
    return this.o.cache.namespaceOf(key)?.replicationFactor ?? 1;
  }

  /** Whether writes to `key` are answered only once every replica has them. */
  isSync(key: string): boolean {
    return this.o.cache.namespaceOf(key)?.replication === 'sync';
  }

  /**
   * Sends `cmds` (the AOF form of one write to `key`, which this node serves as primary) to the
   * replicas of `key`'s slot, in order on each link. @returns undefined when the key has none.
   */
  replicate(key: string, cmds: Buffer[][]): Acks | undefined {
    const factor = this.factorOf(key);
    const ring = this.o.slots.ring;
    if (factor <= 1 || ring === undefined || cmds.length === 0) return undefined;
    const replicas = ring.owners(keySlot(key), factor).slice(1);
    if (replicas.length === 0) return undefined;
    const sends = replicas.map((m) => {
      const addr = ring.addressOf(m.id);
      this.inFlight++;
      const all = cmds.map((argv) => this.o.router.sendTo(addr, [REPL, ...argv]));
      return Promise.all(all)
        .finally(() => this.inFlight--)
        .then(
          (replies) => {
            const bad = replies.find((r) => r[0] === 0x2d);
            return bad === undefined ? undefined : `${addr} answered ${bad.toString('utf8').trim()}`;
          },
          (err: unknown) => `${addr}: ${errorMessage(err)}`,
        );
    });
    return Promise.all(sends).then((errors) => {
      const failed = errors.filter((e): e is string => e !== undefined);
      return { acked: replicas.length - failed.length, wanted: replicas.length, ...(failed.length > 0 ? { error: failed.join('; ') } : {}) };
    });
  }

  /**
   * On the primary, once a new ring is settled (or, with `only`, once slots handed over to it
   * are served): sends each replica that is new to a slot this node serves a full copy of it
   * (only keys whose factor reaches that replica's rank). Without `prev` every replica is new.
   */
  copies(prev: CacheRing | undefined, ring: CacheRing, only?: readonly number[]): void {
    // Sent even when no namespace is replicated (then without keys): a replica's slots are valid
    // only after a copy, so a namespace whose factor is raised later has replicas to stream to.
    const self = ring.selfId;
    const candidates = only ?? Array.from({ length: SLOT_COUNT }, (_, s) => s);
    for (const m of ring.members) {
      if (m.id === self) continue;
      const slots: number[] = [];
      for (const s of candidates) {
        if (!ring.owns(s) || !this.o.slots.holds(s)) continue;
        const rank = ring.rankOf(s, m.id);
        if (rank === NO_RANK || rank === 0) continue;
        // Already a replica of this node at this rank: the stream kept it current.
        if (prev !== undefined && prev.owns(s) && prev.rankOf(s, m.id) === rank) continue;
        slots.push(s);
      }
      if (slots.length > 0) void this.copyTo(ring, m.id, slots, 0);
    }
  }

  private async copyTo(ring: CacheRing, id: string, slots: number[], attempt: number): Promise<void> {
    const addr = ring.addressOf(id);
    if (this.o.slots.ring !== ring) return; // a newer ring sends its own copies
    let begin: Buffer;
    try {
      begin = await this.o.router.sendTo(addr, [SYNC_BEGIN, Buffer.from(String(ring.epoch)), ...slots.map((s) => Buffer.from(String(s)))]);
    } catch (err) {
      this.o.logger.warn({ replica: id, err: errorMessage(err) }, 'replica copy could not start');
      return;
    }
    if (begin[0] === 0x2d) {
      if (attempt < COPY_RETRIES) {
        setTimeout(() => void this.copyTo(ring, id, slots, attempt + 1), COPY_RETRY_MS).unref();
      } else {
        this.o.logger.warn({ replica: id, reply: begin.toString('utf8').trim() }, 'replica refused its copy');
      }
      return;
    }
    if (this.o.slots.ring !== ring) return;
    // In steps of STEP entries: a key written after the pass went by is streamed to the replica
    // anyway (it is one of the slot's owners now), after the copy's start on the same link.
    const wanted = new Set(slots);
    const rankOf = new Map(slots.map((s) => [s, ring.rankOf(s, id)]));
    let keys = 0;
    let from = 0;
    if (this.maxFactor() > 1) {
      do {
        if (this.o.slots.ring !== ring) return; // a newer ring sends its own copies
        from = this.o.cache.visitKeys(from, STEP, (key) => {
          const slot = keySlot(key);
          if (!wanted.has(slot) || (rankOf.get(slot) as number) >= this.factorOf(key)) return;
          const cmds = this.o.cache.recreate(key);
          if (cmds === undefined) return;
          keys++;
          for (const argv of cmds) this.o.router.sendQuietTo(addr, [REPL, ...argv]);
        });
        if (from !== 0) await new Promise((r) => setImmediate(r));
      } while (from !== 0);
    }
    const end = this.o.router.sendTo(addr, [SYNC_END, ...slots.map((s) => Buffer.from(String(s)))]);
    end.then(
      () => this.o.logger.info({ replica: id, slots: slots.length, keys }, 'replica copy sent'),
      (err: unknown) => this.o.logger.warn({ replica: id, err: errorMessage(err) }, 'replica copy failed'),
    );
  }

  /**
   * On the previous primary, as `ring` moves `slots` it served to other nodes (called before
   * anything is dropped; the slots' keys are kept, not served, until the hand-over ends): each
   * new primary says which of its slots it still waits for, gets their keys in steps of
   * {@link STEP} entries (no stall on a large table; the slots are served nowhere meanwhile, so
   * no key of theirs changes), then the end.
   */
  handover(ring: CacheRing, slots: number[]): void {
    const bySlots = new Map<string, number[]>();
    for (const s of slots) {
      const id = ring.owners(s, 1)[0]?.id;
      if (id === undefined || id === ring.selfId) continue;
      let list = bySlots.get(id);
      if (list === undefined) bySlots.set(id, (list = []));
      list.push(s);
    }
    const p: Promise<void> = this.handAll(ring, bySlots)
      .catch((err: unknown) => this.o.logger.warn({ err: errorMessage(err) }, 'slot hand-over failed'))
      .finally(() => {
        this.handing.delete(p);
        this.o.slots.releaseHandout(slots);
      });
    this.handing.add(p);
  }

  /** Resolves once every hand-over this node sends has ended (or failed), or after `timeoutMs`. */
  async handoversSettled(timeoutMs: number): Promise<void> {
    if (this.handing.size === 0) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.allSettled([...this.handing]), new Promise((r) => (timer = setTimeout(r, timeoutMs)))]);
    clearTimeout(timer);
  }

  private async handAll(ring: CacheRing, bySlots: Map<string, number[]>): Promise<void> {
    if (bySlots.size === 0) return;
    this.o.logger.info({ slots: [...bySlots.values()].reduce((n, l) => n + l.length, 0), to: [...bySlots.keys()] }, 'handing slots over');
    // 1. Which slots each new primary still waits for.
    const accepted = new Map<string, number[]>();
    await Promise.all(
      [...bySlots].map(async ([id, list]) => {
        const took = await this.beginHandover(ring, id, list);
        if (took.length > 0) accepted.set(id, took);
      }),
    );
    if (accepted.size === 0) return;
    const target = new Map<number, string>();
    for (const [id, list] of accepted) for (const s of list) target.set(s, ring.addressOf(id));
    // 2. Their keys, with their expiry times, in steps.
    const sent = new Map<string, number>();
    let from = 0;
    do {
      from = this.o.cache.visitKeys(from, STEP, (key) => {
        const addr = target.get(keySlot(key));
        if (addr === undefined) return;
        const cmds = this.o.cache.recreate(key);
        if (cmds === undefined) return;
        sent.set(addr, (sent.get(addr) ?? 0) + 1);
        for (const argv of cmds) this.o.router.sendQuietTo(addr, [HANDOVER_KEY, ...argv]);
      });
      if (from !== 0) await new Promise((r) => setImmediate(r));
    } while (from !== 0);
    // 3. The end: each new primary serves its slots.
    await Promise.all(
      [...accepted].map(async ([id, list]) => {
        const addr = ring.addressOf(id);
        const keys = sent.get(addr) ?? 0;
        this.handedOver += keys;
        await this.o.router.sendTo(addr, [HANDOVER_END, ...list.map((s) => Buffer.from(String(s)))]).then(
          () => this.o.logger.info({ node: id, slots: list.length, keys }, 'slots handed over'),
          (err: unknown) => this.o.logger.warn({ node: id, err: errorMessage(err) }, 'slot hand-over failed'),
        );
      }),
    );
  }

  /** `BEACON.HANDOVER-BEGIN` to node `id`, retried while it has not applied `ring` yet: @returns the slots it takes (none on failure). */
  private async beginHandover(ring: CacheRing, id: string, slots: number[]): Promise<number[]> {
    const addr = ring.addressOf(id);
    for (let attempt = 0; ; attempt++) {
      let begin: Buffer;
      try {
        begin = await this.o.router.sendTo(addr, [HANDOVER_BEGIN, Buffer.from(String(ring.epoch)), ...slots.map((s) => Buffer.from(String(s)))]);
      } catch (err) {
        this.o.logger.warn({ node: id, slots: slots.length, err: errorMessage(err) }, 'slot hand-over could not start');
        return [];
      }
      if (begin[0] !== 0x2d) {
        const took = slotArgs(bulkText(begin).split(' ').filter((x) => x !== ''));
        if (took.length === 0) this.o.logger.info({ node: id, slots: slots.length }, 'the new primary takes none of the slots handed over (it serves them already)');
        return took;
      }
      // Not on this ring epoch yet: retry while the new primary still waits for us.
      if (attempt * COPY_RETRY_MS >= HANDOVER_WAIT_MS) {
        this.o.logger.warn({ node: id, reply: begin.toString('utf8').trim() }, 'slot hand-over refused');
        return [];
      }
      await new Promise((r) => setTimeout(r, COPY_RETRY_MS));
    }
  }

  /** The largest replication factor of any memory namespace (1 when there is none). */
  private maxFactor(): number {
    return this.o.maxFactor();
  }

  /**
   * Drops every key of `slots`, in steps of {@link DROP_STEP} table entries (no stall on a large
   * table; the slots are not served meanwhile), before a copy or a hand-over of them arrives.
   * Resolves when done. Drops run one after another.
   */
  private drop(slots: Set<number>): Promise<void> {
    return new Promise((resolve) => {
      this.drops.push({ slots, from: 0, done: resolve });
      if (this.drops.length === 1) setImmediate(() => this.dropStep());
    });
  }

  private dropStep(): void {
    const d = this.drops[0];
    if (d === undefined) return;
    d.from = this.o.cache.dropWhere(d.from, DROP_STEP, (key) => d.slots.has(keySlot(key)));
    if (d.from === 0) {
      this.drops.shift();
      d.done();
    }
    if (this.drops.length > 0) setImmediate(() => this.dropStep());
  }

  /**
   * Completes the drops in progress at once (before a ring change, which could make this node
   * serve those slots: nothing from before their copy may be left then).
   */
  finishDrops(): void {
    for (const d of this.drops) {
      this.o.cache.dropWhere(d.from, Number.MAX_SAFE_INTEGER, (key) => d.slots.has(keySlot(key)));
      d.from = 0;
      d.done();
    }
    this.drops.length = 0;
  }

  /**
   * The receiving side: one of the wire commands above (its reply, or a promise of it for the
   * begin of a copy or hand-over), or undefined for another name.
   */
  handle(name: string, args: Buffer[]): Reply | Promise<Reply> | undefined {
    switch (name) {
      case 'beacon.repl':
        if (args.length === 0) return R.error('ERR BEACON.REPL needs a command');
        try {
          this.o.exec(args);
        } catch (err) {
          return R.error(`ERR replicated command failed: ${errorMessage(err)}`);
        }
        return R.ok;
      case 'beacon.sync-begin': {
        const epoch = Number(args[0]?.toString('latin1'));
        const ring = this.o.slots.ring;
        if (ring === undefined || ring.epoch < epoch) return R.error(`TRYAGAIN this node has not applied ring epoch ${epoch} yet`);
        const slots = slotArgs(args.slice(1));
        this.o.slots.beginSync(slots);
        // Answered once what this node held of the slots is gone: the copy's keys come after the
        // answer, and the commands behind this one on the link wait for it.
        return this.drop(new Set(slots)).then(() => R.ok);
      }
      case 'beacon.sync-end':
        this.o.slots.endSync(slotArgs(args));
        return R.ok;
      case 'beacon.handover-begin': {
        let accepted: number[];
        try {
          accepted = this.o.slots.beginHandover(Number(args[0]?.toString('latin1')), slotArgs(args.slice(1)));
        } catch (err) {
          return R.error(`TRYAGAIN ${errorMessage(err)}`);
        }
        // A slot waiting for its hand-over holds nothing once the sweep went by; during a sweep,
        // what it held is dropped first (in steps), and the answer waits for that.
        const answer = R.bulk(accepted.join(' '));
        if (accepted.length > 0 && this.o.slots.busy) return this.drop(new Set(accepted)).then(() => answer);
        return answer;
      }
      case 'beacon.handover-key': {
        const key = args[1];
        if (key === undefined) return R.error('ERR BEACON.HANDOVER-KEY needs a command and its key');
        if (!this.o.slots.receiving(keySlot(key))) return R.int(0);
        try {
          this.o.exec(args);
        } catch (err) {
          return R.error(`ERR handed-over command failed: ${errorMessage(err)}`);
        }
        return R.int(1);
      }
      case 'beacon.handover-end':
        this.o.slots.endHandover(slotArgs(args));
        return R.ok;
      default:
        return undefined;
    }
  }
}

function slotArgs(args: readonly (Buffer | string)[]): number[] {
  const out: number[] = [];
  for (const a of args) {
    const s = Number(typeof a === 'string' ? a : a.toString('latin1'));
    if (Number.isInteger(s) && s >= 0 && s < SLOT_COUNT) out.push(s);
  }
  return out;
}

/** The text of a bulk-string reply (`$n\r\n…\r\n`); empty for a null or another type. */
function bulkText(raw: Buffer): string {
  if (raw[0] !== 0x24) return '';
  const at = raw.indexOf('\r\n');
  return at < 0 ? '' : raw.toString('latin1', at + 2, raw.length - 2);
}
