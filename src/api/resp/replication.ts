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
 *   slots (`-TRYAGAIN` while it has not applied that ring epoch yet: the primary retries).
 * - `BEACON.SYNC-END <slot>…` ends it: the replica's data of those slots is valid.
 */
import { NO_RANK, SLOT_COUNT, keySlot, type CacheRing, type CacheTier, type SlotOwnership } from '../../cache/index.js';
import type { Logger } from '../../obs/index.js';
import type { ClusterRouter } from './routing.js';
import { R, type Reply } from './protocol.js';

const REPL = Buffer.from('BEACON.REPL');
const SYNC_BEGIN = Buffer.from('BEACON.SYNC-BEGIN');
const SYNC_END = Buffer.from('BEACON.SYNC-END');
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
          (err: unknown) => `${addr}: ${err instanceof Error ? err.message : String(err)}`,
        );
    });
    return Promise.all(sends).then((errors) => {
      const failed = errors.filter((e): e is string => e !== undefined);
      return { acked: replicas.length - failed.length, wanted: replicas.length, ...(failed.length > 0 ? { error: failed.join('; ') } : {}) };
    });
  }

  /**
   * On the primary, once a new ring is settled: sends each replica that is new to a slot this
   * node serves a full copy of it (only keys whose factor reaches that replica's rank).
   */
  copies(prev: CacheRing | undefined, ring: CacheRing): void {
    // Sent even when no namespace is replicated (then without keys): a replica's slots are valid
    // only after a copy, so a namespace whose factor is raised later has replicas to stream to.
    const self = ring.selfId;
    for (const m of ring.members) {
      if (m.id === self) continue;
      const slots: number[] = [];
      for (let s = 0; s < SLOT_COUNT; s++) {
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
      this.o.logger.warn({ replica: id, err: err instanceof Error ? err.message : String(err) }, 'replica copy could not start');
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
    // One synchronous pass: the copy is one snapshot, and writes after it follow it on the link.
    const wanted = new Set(slots);
    const rankOf = new Map(slots.map((s) => [s, ring.rankOf(s, id)]));
    let keys = 0;
    for (const key of this.maxFactor() > 1 ? this.o.cache.keys('*') : []) {
      const slot = keySlot(key);
      if (!wanted.has(slot) || (rankOf.get(slot) as number) >= this.factorOf(key)) continue;
      const cmds = this.o.cache.recreate(key);
      if (cmds === undefined) continue;
      keys++;
      for (const argv of cmds) void this.o.router.sendTo(addr, [REPL, ...argv]).catch(() => undefined);
    }
    const end = this.o.router.sendTo(addr, [SYNC_END, ...slots.map((s) => Buffer.from(String(s)))]);
    end.then(
      () => this.o.logger.info({ replica: id, slots: slots.length, keys }, 'replica copy sent'),
      (err: unknown) => this.o.logger.warn({ replica: id, err: err instanceof Error ? err.message : String(err) }, 'replica copy failed'),
    );
  }

  /** The largest replication factor of any memory namespace (1 when there is none). */
  private maxFactor(): number {
    return this.o.maxFactor();
  }

  /** The replica side: one of the wire commands above, or undefined for another name. */
  handle(name: string, args: Buffer[]): Reply | undefined {
    switch (name) {
      case 'beacon.repl':
        if (args.length === 0) return R.error('ERR BEACON.REPL needs a command');
        try {
          this.o.exec(args);
        } catch (err) {
          return R.error(`ERR replicated command failed: ${err instanceof Error ? err.message : String(err)}`);
        }
        return R.ok;
      case 'beacon.sync-begin': {
        const epoch = Number(args[0]?.toString('latin1'));
        const ring = this.o.slots.ring;
        if (ring === undefined || ring.epoch < epoch) return R.error(`TRYAGAIN this node has not applied ring epoch ${epoch} yet`);
        const slots = slotArgs(args.slice(1));
        this.o.slots.beginSync(slots);
        const drop = new Set(slots);
        this.o.cache.dropWhere(0, Number.MAX_SAFE_INTEGER, (key) => drop.has(keySlot(key)));
        return R.ok;
      }
      case 'beacon.sync-end':
        this.o.slots.endSync(slotArgs(args));
        return R.ok;
      default:
        return undefined;
    }
  }
}

function slotArgs(args: Buffer[]): number[] {
  const out: number[] = [];
  for (const a of args) {
    const s = Number(a.toString('latin1'));
    if (Number.isInteger(s) && s >= 0 && s < SLOT_COUNT) out.push(s);
  }
  return out;
}
