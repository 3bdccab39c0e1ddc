/**
 * The watch hub: fans committed revisions out to watchers in revision order, each exactly once and
 * without gaps (DESIGN.md §2 "Watch"). The design follows etcd's `watchableStore`: watchers are
 * either *synced* (they get each revision as it commits) or *unsynced* (behind, because they asked
 * for old revisions or their connection is congested); unsynced watchers are caught up from a
 * bounded ring of recent revisions or, when older, from the backend log, then rejoin live delivery.
 */
import { CompactedError, FutureRevisionError, InvalidArgumentError, TooManyRequestsError, UnavailableError } from '../errors.js';
import { compareKeys, inRange, validateKey, validateRangeEnd, type RevisionEvents, type Store, type WatchEvent } from '../kv/index.js';
import type { Metrics } from '../obs/index.js';
import { RevisionRing, revisionBytes } from './ring.js';

/** Tunables of the hub and of its transports. Counts are revisions or log entries; sizes bytes; times ms. */
export interface WatchHubOptions {
  /** Recent revisions kept in memory for cheap catch-up. Default 10,000. */
  ringSize: number;
  /** Byte budget of that ring (approximate; keys, values and prevKvs). Default 64 MiB. */
  ringBytes: number;
  /** A synced watcher that has been sent nothing for this long gets a progress notification. Default 10 s. */
  progressIntervalMs: number;
  /** A connection with more than this many bytes waiting to be sent is congested. Default 1 MiB. */
  congestionBytes: number;
  /**
   * The most log entries read from the backend per catch-up step. Default 256: a read blocks the
   * event loop (SQLite reads are synchronous), so smaller reads keep requests and commits moving
   * while many watchers catch up; reads are shared between watchers of a range.
   */
  catchUpEntries: number;
  /**
   * Bytes of log entries (keys, values and prevKvs, approximately) one catch-up step aims to read
   * and hold: the entry count of each read is sized from the entry sizes seen so far. Default 4 MiB.
   */
  catchUpBytes: number;
  /**
   * Node-wide bytes of log chunks held for catch-up (issue 9 finding 2): a catch-up read that
   * would go over it waits its turn, in the order asked, while chunks are released. Watchers
   * catching up over the same range and stretch share one chunk. Default 256 MiB.
   */
  catchUpBudgetBytes: number;
  /** Watches one connection may hold (WebSocket watch or config socket); the transports enforce it. Default 1,000. */
  maxWatchesPerConnection: number;
  /** Watches one principal (by name) may hold on this node over all its connections. Default 10,000. */
  maxWatchesPerPrincipal: number;
  /** WebSocket transports ping this often to find half-open connections. Default 15 s. */
  pingIntervalMs: number;
  /** A WebSocket that has not answered (pong or any frame) for this long is terminated. Default 30 s. */
  pongTimeoutMs: number;
}

/** The defaults of {@link WatchHubOptions}. */
export const DEFAULT_WATCH_HUB_OPTIONS: Readonly<WatchHubOptions> = Object.freeze({
  ringSize: 10_000,
  ringBytes: 64 * 1024 * 1024,
  progressIntervalMs: 10_000,
  congestionBytes: 1024 * 1024,
  catchUpEntries: 256,
  catchUpBytes: 4 * 1024 * 1024,
  catchUpBudgetBytes: 256 * 1024 * 1024,
  maxWatchesPerConnection: 1000,
  maxWatchesPerPrincipal: 10_000,
  pingIntervalMs: 15_000,
  pongTimeoutMs: 30_000,
});

/** Revisions delivered from the ring to one watcher before yielding the event loop to others. */
const RING_BUDGET = 512;
/**
 * Deliveries per turn of the event loop during a fan-out: 10,000 watchers of one revision take
 * five turns, with requests and commits served in between.
 */
const FANOUT_SLICE = 2000;
/**
 * Recent revisions whose serializations are kept for sharing. Sharing pays off mostly during the
 * live fan-out; keeping serializations for the whole ring would multiply its memory.
 */
const MEMO_REVISIONS = 64;
/**
 * Bytes per log entry assumed before any catch-up read has shown the real sizes: with 1 MiB
 * values a first read then holds about 64 MiB at worst, not `catchUpEntries` MiB.
 */
const FIRST_ENTRY_BYTES = 64 * 1024;
/**
 * A catch-up chunk nobody has used for this long is dropped (ms): long enough for watchers of the
 * same range that drift apart (each paced by its own connection) to share it, short enough that
 * chunks only parked watchers need (peers that do not read) go soon. Held chunks count against
 * the catch-up budget, which drops the least recently used first when it needs room.
 */
const CHUNK_IDLE_MS = 2000;
/**
 * Events delivered from the log per turn of the event loop, over all catching-up watchers: past
 * it they continue in the next turn, so requests and commits are served in between however many
 * watchers catch up (one connection's drain wakes all of its watchers at once).
 */
const CATCHUP_TURN_EVENTS = 256;

/**
 * Log revisions of one key range read for catch-up, shared by every watcher of that range (and
 * prevKv variant) whose next revision falls inside it. `revs` holds every revision of the range
 * in `[from, to]` that has events in it.
 */
interface Chunk {
  readonly id: string;
  readonly from: number;
  readonly to: number;
  readonly revs: RevisionEvents[];
  readonly bytes: number;
  usedAt: number;
}

/**
 * What to watch. `rangeEnd` undefined watches the single key `key`; a string watches
 * `[key, rangeEnd)`; null watches every key ≥ `key` (with `key` "" that is every key).
 * `fromRevision` 0 or absent means from the next revision; otherwise the first revision to send,
 * which must be above the compact revision and at most the current revision + 1.
 */
export interface WatcherOptions {
  key: string;
  rangeEnd?: string | null;
  fromRevision?: number;
  /** Send each event's previous kv (when the key existed). */
  prevKv?: boolean;
  /** Who holds the watch (a principal name), counted against `maxWatchesPerPrincipal`; absent: not counted. */
  owner?: string;
  /** Leave out put events. */
  noPut?: boolean;
  /** Leave out delete events. */
  noDelete?: boolean;
}

/**
 * The events of one revision that match one watcher. Batches are shared between watchers that see
 * the same subset, so a transport can serialize once per revision with {@link WatchBatch.memo}.
 * `events` carry `prevKv` only when the watcher asked for it.
 */
export interface WatchBatch {
  readonly revision: number;
  /** Commit time of the revision in ms since the epoch. */
  readonly ts: number;
  /** The revision's meta JSON (for example a config rollback), or null. */
  readonly meta: string | null;
  readonly events: readonly WatchEvent[];
  readonly prevKv: boolean;
  /**
   * Returns `compute()`'s result, computed at most once per revision, event subset and prevKv
   * variant and `key`; use it to serialize a batch once for every watcher that receives it.
   */
  memo(key: string, compute: () => string): string;
}

/**
 * Where a watcher's output goes: one per watch, usually a view of a shared connection. The hub
 * never awaits a sink; it asks `congested()` before each send and parks a congested watcher until
 * `onDrain` calls back. Every method must return quickly and must not throw.
 */
export interface WatchSink {
  /** A metrics label: `ws` or `sse`. */
  readonly transport: string;
  /** True while the connection holds more unsent bytes than the hub's `congestionBytes`. */
  congested(): boolean;
  /** Calls `cb` once when the connection is no longer congested, or when it closes. */
  onDrain(cb: () => void): void;
  /** Sends the events of one revision. */
  events(batch: WatchBatch): void;
  /** Sends a progress notification: every matching revision ≤ `revision` has been sent. */
  progress(revision: number): void;
  /** The watch needs revisions at or below `compactRevision`, which are gone; the hub has removed it. */
  compacted(compactRevision: number): void;
  /** The hub is shutting down; the watch has been removed. */
  closed?(): void;
}

/** A registered watch, as returned by {@link WatchHub.watch}. */
export interface Watcher {
  /** Unique within the hub. */
  readonly id: number;
  readonly key: string;
  readonly rangeEnd: string | null | undefined;
  /** The hub revision when the watch was created. */
  readonly createdRevision: number;
  /** True while the watcher receives revisions as they commit; false while it catches up. */
  readonly synced: boolean;
  /** Every matching revision ≤ this one has been handed to the sink (safe to resume from it + 1). */
  readonly progressRevision: number;
  /** Removes the watch; nothing more is sent to its sink. Idempotent. */
  cancel(): void;
}

type WatcherState = 'synced' | 'unsynced' | 'done';

/** Watchers of one identical range, so the range test runs once per revision for all of them. */
interface Group {
  readonly id: string;
  readonly key: string;
  readonly rangeEnd: string | null | undefined;
  readonly watchers: Set<WatcherImpl>;
}

/** Per-revision caches shared by every batch made from that revision. */
interface RevisionCache {
  /** The events without prevKv, made once (the same array when none has a prevKv). */
  stripped?: WatchEvent[];
  memos: Map<string, string>;
}

class WatcherImpl implements Watcher {
  state: WatcherState = 'synced';
  /**
   * The next revision this watcher may be sent: while unsynced, where catch-up resumes; while
   * synced, one past the last revision delivered to it (the deferred fan-out skips revisions below
   * it, so a watcher that joined live after catching up never gets a revision twice).
   */
  nextRevision = 0;
  lastSentAt = Date.now();
  catchingUp = false;
  /** The principal counted for this watch, if any. */
  owner: string | undefined;
  /** Ends the drain wait this watcher's catch-up is in, if any (so that removing it releases it at once). */
  wake: (() => void) | undefined;
  group!: Group;

  constructor(
    private readonly hub: WatchHub,
    readonly id: number,
    readonly key: string,
    readonly rangeEnd: string | null | undefined,
    readonly prevKv: boolean,
    readonly noPut: boolean,
    readonly noDelete: boolean,
    readonly sink: WatchSink,
    readonly createdRevision: number,
  ) {}

  /** Index of this watcher's filter/prevKv variant (0–7) for sharing batches within a group. */
  get variant(): number {
    return (this.noPut ? 1 : 0) | (this.noDelete ? 2 : 0) | (this.prevKv ? 4 : 0);
  }

  get synced(): boolean {
    return this.state === 'synced';
  }

  get progressRevision(): number {
    return this.state === 'unsynced' ? this.nextRevision - 1 : Math.max(this.hub.deliveredRevision, this.nextRevision - 1);
  }

  cancel(): void {
    this.hub.cancelWatcher(this);
  }
}

class Batch implements WatchBatch {
  constructor(
    private readonly source: RevisionEvents,
    private readonly signature: string,
    readonly events: readonly WatchEvent[],
    readonly prevKv: boolean,
    private readonly memos: Map<string, string>,
  ) {}

  get revision(): number {
    return this.source.revision;
  }

  get ts(): number {
    return this.source.ts;
  }

  get meta(): string | null {
    return this.source.meta;
  }

  memo(key: string, compute: () => string): string {
    const k = `${this.signature}|${key}`;
    let v = this.memos.get(k);
    if (v === undefined) {
      v = compute();
      this.memos.set(k, v);
    }
    return v;
  }
}

function stripPrevKv(events: WatchEvent[]): WatchEvent[] {
  if (!events.some((e) => e.prevKv !== undefined)) return events;
  return events.map((e) => (e.prevKv === undefined ? e : { type: e.type, kv: e.kv }));
}

function checkPositiveInt(name: string, v: unknown): void {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1) throw new InvalidArgumentError(`watch hub option ${name} must be a positive integer`);
}

/**
 * Fans committed revisions out to watchers (DESIGN.md §2 "Watch"). Construct one per node with
 * `new WatchHub(store, metrics)` after the store is open; it subscribes to the store at once.
 * Single-key watchers are indexed by key and watchers of identical ranges share one range test;
 * each revision's batch is built once per event subset and shared. Observes
 * `beacon_watch_propagation_seconds`, `beacon_watch_events_sent_total` and `beacon_watchers`.
 *
 * @example
 * const w = hub.watch({ key: 'app/', rangeEnd: prefixEnd('app/'), fromRevision: 5 }, sink);
 * // … later
 * w.cancel();
 */
export class WatchHub {
  private opts: WatchHubOptions;
  private head: number;
  private readonly ring: RevisionRing;
  /** Serialization caches of the latest revisions (insertion ordered, at most MEMO_REVISIONS). */
  private readonly caches = new Map<RevisionEvents, RevisionCache>();
  /** Caches of revisions read from the backend log: they live only as long as their chunk. */
  private readonly logCaches = new WeakMap<RevisionEvents, RevisionCache>();
  private readonly exact = new Map<string, Group>();
  private readonly ranges = new Map<string, Group>();
  private readonly all = new Set<WatcherImpl>();
  private nextId = 1;
  private syncedCount = 0;
  private unsyncedCount = 0;
  private closed = false;
  private readonly unsubscribe: () => void;
  private progressTimer: NodeJS.Timeout | undefined;
  private readonly transportMetrics = new Map<string, { sent: { inc(n: number): void }; propagation: { observe(v: number): void } }>();
  /** Committed revisions whose fan-out has not finished, oldest first. */
  private readonly pending: RevisionEvents[] = [];
  /** Where the fan-out of `pending[0]` stands: its matching groups and the watcher iterator of the current one. */
  private cursor: { rev: RevisionEvents; tasks: { g: Group; idx: number[] }[]; t: number; it: Iterator<WatcherImpl> | undefined; variants: (WatchBatch | null | undefined)[] } | undefined;
  private drainScheduled = false;
  private delivered = 0;
  /** Average bytes per entry of the latest log read (sizes the next read). */
  private entryBytes = FIRST_ENTRY_BYTES;
  /** Live watches per owner (principal name). */
  private readonly owners = new Map<string, number>();
  /** Catch-up chunks by range and prevKv variant, shared between watchers. */
  private readonly chunks = new Map<string, Chunk[]>();
  /** Reads in flight by range, variant and first revision, so watchers at the same place share one. */
  private readonly reading = new Map<string, Promise<Chunk>>();
  /** Bytes of held chunks plus those reserved by reads in flight (the catch-up budget in use). */
  private budgetUsed = 0;
  /** Reads waiting for the catch-up budget, in the order they asked. */
  private readonly budgetQueue: { bytes: number; resolve: () => void }[] = [];
  private chunkSweep: NodeJS.Timeout | undefined;
  /** Events delivered from the log in this turn of the event loop (see CATCHUP_TURN_EVENTS). */
  private turnEvents = 0;
  private turnReset = false;
  /** The latest log read's turn; see readTurn. */
  private readGate: Promise<void> = Promise.resolve();

  /**
   * @param store an opened store; the hub follows it from its current revision.
   * @param options overrides of {@link DEFAULT_WATCH_HUB_OPTIONS}.
   * @throws InvalidArgumentError for an option that is not a positive integer.
   */
  constructor(
    readonly store: Store,
    readonly metrics: Metrics,
    options: Partial<WatchHubOptions> = {},
  ) {
    this.opts = { ...DEFAULT_WATCH_HUB_OPTIONS };
    this.head = store.revision;
    this.delivered = this.head;
    this.ring = new RevisionRing(this.head + 1);
    this.configure(options);
    this.updateGauge();
    this.unsubscribe = store.subscribe((rev) => this.onCommit(rev));
  }

  /** The current tunables (read by the transports for each new connection). */
  get options(): Readonly<WatchHubOptions> {
    return this.opts;
  }

  /**
   * Changes tunables at run time (a smaller ring is trimmed at once).
   * @throws InvalidArgumentError for a value that is not a positive integer.
   */
  configure(options: Partial<WatchHubOptions>): void {
    for (const [k, v] of Object.entries(options)) {
      if (!(k in DEFAULT_WATCH_HUB_OPTIONS)) throw new InvalidArgumentError(`unknown watch hub option ${k}`);
      if (v !== undefined) checkPositiveInt(k, v);
    }
    const before = this.opts.progressIntervalMs;
    this.opts = { ...this.opts, ...Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) };
    this.ring.trim(this.opts.ringSize, this.opts.ringBytes);
    if (this.progressTimer === undefined || before !== this.opts.progressIntervalMs) this.startProgressTimer();
  }

  /** The number of active watchers. */
  get watcherCount(): number {
    return this.all.size;
  }

  /** The last revision the hub has seen committed (every watcher's events up to it are sent or queued). */
  get revision(): number {
    return this.head;
  }

  /** The last revision whose fan-out to live watchers has finished (≤ {@link revision}). */
  get deliveredRevision(): number {
    return this.delivered;
  }

  /** How many watchers are caught up and how many are catching up. */
  get stats(): { synced: number; unsynced: number; ringRevisions: number; ringBytes: number; ringFloor: number } {
    return { synced: this.syncedCount, unsynced: this.unsyncedCount, ringRevisions: this.ring.length, ringBytes: this.ring.bytes, ringFloor: this.ring.floor };
  }

  /**
   * Registers a watch. Nothing is sent to `sink` before this returns, so a transport can first
   * acknowledge the watch; past revisions follow asynchronously, then live ones.
   * @throws InvalidArgumentError for a bad key, range or revision; CompactedError when
   * `fromRevision` is at or below the compact revision of the watched range (the global one, or
   * the history-retention floor of an overlapping namespace; its `compactRevision` says where
   * history starts); FutureRevisionError when it is beyond the current revision + 1; UnavailableError
   * after {@link close}.
   */
  watch(options: WatcherOptions, sink: WatchSink): Watcher {
    if (this.closed) throw new UnavailableError('the node is shutting down');
    const { key } = options;
    if (typeof key !== 'string') throw new InvalidArgumentError('key must be a string');
    const rangeEnd = validateRangeEnd(options.rangeEnd);
    if (rangeEnd === undefined || key !== '') validateKey(key);
    if (typeof rangeEnd === 'string' && compareKeys(rangeEnd, key) <= 0) {
      throw new InvalidArgumentError('rangeEnd must be greater than key', { key, rangeEnd });
    }
    const from = options.fromRevision ?? 0;
    if (!Number.isSafeInteger(from) || from < 0) throw new InvalidArgumentError('fromRevision must be a non-negative integer', { fromRevision: from });
    const head = this.head;
    if (from > head + 1) throw new FutureRevisionError(from, head);
    // The range's effective compact revision: the global one, or a history-retention floor of an overlapping namespace.
    const compacted = this.store.compactRevisionFor(key, rangeEnd);
    if (from > 0 && from <= compacted) throw new CompactedError(from, compacted);
    const owner = options.owner;
    if (owner !== undefined) {
      const max = this.opts.maxWatchesPerPrincipal;
      if ((this.owners.get(owner) ?? 0) >= max) {
        this.metrics.watchLimitHits.inc({ limit: 'per_principal' });
        throw new TooManyRequestsError(`'${owner}' already holds ${max} watches on this node (--max-watches-per-principal); cancel some first`, {
          limit: 'watches_per_principal',
          max,
        });
      }
      this.owners.set(owner, (this.owners.get(owner) ?? 0) + 1);
    }

    const w = new WatcherImpl(
      this,
      this.nextId++,
      key,
      rangeEnd,
      options.prevKv ?? false,
      options.noPut ?? false,
      options.noDelete ?? false,
      sink,
      head,
    );
    w.owner = owner;
    const start = from === 0 ? head + 1 : from;
    w.nextRevision = start;
    this.index(w);
    this.all.add(w);
    if (start > head) {
      this.syncedCount++;
      this.updateGauge();
    } else {
      w.state = 'unsynced';
      w.nextRevision = start;
      this.unsyncedCount++;
      this.updateGauge();
      this.kick(w);
    }
    return w;
  }

  /**
   * The revision a connection carrying `watchers` may report as progress: the lowest revision
   * through which all of them have been sent everything (the hub revision when there are none).
   */
  progressRevision(watchers: Iterable<Watcher>): number {
    let r = this.head;
    for (const w of watchers) r = Math.min(r, w.progressRevision);
    return r;
  }

  /** Removes one watcher (what {@link Watcher.cancel} calls). */
  cancelWatcher(watcher: Watcher): void {
    if (watcher instanceof WatcherImpl) this.remove(watcher);
  }

  /** Stops following the store and ends every watcher (each sink's `closed()` is called). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.unsubscribe();
    if (this.progressTimer) clearInterval(this.progressTimer);
    this.progressTimer = undefined;
    this.caches.clear();
    this.chunks.clear();
    if (this.chunkSweep) clearInterval(this.chunkSweep);
    this.chunkSweep = undefined;
    for (const q of this.budgetQueue.splice(0)) q.resolve();
    for (const w of [...this.all]) {
      this.remove(w);
      try {
        w.sink.closed?.();
      } catch {
        // a failing transport must not stop the shutdown of the others
      }
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Live fan-out

  private onCommit(rev: RevisionEvents): void {
    if (this.closed || rev.revision <= this.head) return;
    if (rev.revision !== this.head + 1) {
      // A gap should never happen (the store publishes every revision in order); if it does, nobody
      // may skip it: every synced watcher catches up from the backend log.
      // Revisions still queued for fan-out (after `delivered`) are not lost either.
      for (const w of this.all) if (w.state === 'synced') this.setUnsynced(w, Math.max(w.nextRevision, this.delivered + 1));
    }
    this.head = rev.revision;
    this.ring.push(rev, this.opts.ringSize, this.opts.ringBytes);
    if (this.syncedCount === 0 && this.pending.length === 0) {
      this.delivered = rev.revision;
      return;
    }
    // The fan-out runs after the committing writes have been answered, and in slices, so that
    // thousands of watchers never hold up writes or other requests (DESIGN.md §2: fair to others).
    this.pending.push(rev);
    this.scheduleDrain();
  }

  private scheduleDrain(): void {
    if (this.drainScheduled || this.closed) return;
    this.drainScheduled = true;
    setImmediate(() => {
      this.drainScheduled = false;
      this.drain();
    });
  }

  /** Fans out pending revisions in order, at most {@link FANOUT_SLICE} deliveries per turn of the event loop. */
  private drain(): void {
    let budget = FANOUT_SLICE;
    const now = Date.now();
    while (this.pending.length > 0 && !this.closed) {
      const rev = this.pending[0] as RevisionEvents;
      let c = this.cursor;
      if (c === undefined || c.rev !== rev) {
        c = { rev, tasks: this.matchGroups(rev), t: 0, it: undefined, variants: [] };
        this.cursor = c;
      }
      while (c.t < c.tasks.length) {
        const task = c.tasks[c.t] as { g: Group; idx: number[] };
        if (c.it === undefined) {
          c.it = task.g.watchers.values();
          c.variants = [];
        }
        for (let n = c.it.next(); !n.done; n = c.it.next()) {
          if (this.fanOutOne(n.value, rev, task.idx, c.variants, now)) budget--;
          if (budget <= 0) {
            this.scheduleDrain();
            return;
          }
        }
        c.it = undefined;
        c.t++;
      }
      this.pending.shift();
      this.cursor = undefined;
      this.delivered = rev.revision;
    }
  }

  /** The groups a revision's events match, with the indexes of those events. */
  private matchGroups(rev: RevisionEvents): { g: Group; idx: number[] }[] {
    const tasks: { g: Group; idx: number[] }[] = [];
    const events = rev.events;
    if (this.exact.size > 0) {
      for (let i = 0; i < events.length; i++) {
        const g = this.exact.get((events[i] as WatchEvent).kv.key);
        if (g !== undefined) tasks.push({ g, idx: [i] });
      }
    }
    for (const g of this.ranges.values()) {
      let idx: number[] | undefined;
      for (let i = 0; i < events.length; i++) {
        if (inRange((events[i] as WatchEvent).kv.key, g.key, g.rangeEnd)) (idx ??= []).push(i);
      }
      if (idx !== undefined) tasks.push({ g, idx });
    }
    return tasks;
  }

  /** Delivers one revision to one watcher if it is live and has not had it yet; true when it was sent. */
  private fanOutOne(w: WatcherImpl, rev: RevisionEvents, idx: number[], variants: (WatchBatch | null | undefined)[], now: number): boolean {
    if (w.state !== 'synced' || rev.revision < w.nextRevision) return false;
    const v = w.variant;
    let b = variants[v];
    if (b === undefined) {
      b = this.makeBatch(rev, idx, w);
      variants[v] = b;
    }
    if (b === null) return false;
    // Never wait for one connection here: a congested watcher is parked and caught up later.
    if (w.sink.congested()) {
      this.setUnsynced(w, rev.revision);
      return false;
    }
    this.deliver(w, b, now);
    w.nextRevision = rev.revision + 1;
    return true;
  }

  // ---------------------------------------------------------------------------------------------
  // Catch-up

  private kick(w: WatcherImpl): void {
    // Later, not now: the caller may be in the middle of a fan-out or of creating the watch.
    queueMicrotask(() => void this.catchUp(w));
  }

  private async catchUp(w: WatcherImpl): Promise<void> {
    if (w.catchingUp) return;
    w.catchingUp = true;
    let failures = 0;
    try {
      while (w.state === 'unsynced' && !this.closed) {
        if (w.sink.congested()) {
          await this.drained(w);
          continue;
        }
        if (w.nextRevision <= this.compactRevisionOf(w)) {
          this.compactWatcher(w);
          return;
        }
        if (w.nextRevision > this.head) {
          this.setSynced(w);
          return;
        }
        if (w.nextRevision >= this.ring.floor) {
          this.catchUpFromRing(w);
          if (w.state === 'unsynced' && w.nextRevision > this.head) {
            this.setSynced(w);
            return;
          }
          // Budget used up (or congested): let other watchers and connections run first.
          await new Promise<void>((resolve) => setImmediate(resolve));
          continue;
        }
        try {
          await this.catchUpFromLog(w);
          failures = 0;
          // Backend reads and deliveries resolve without touching the event loop: give requests
          // and commits a turn before this watcher's next step (writers never wait on watchers).
          await new Promise<void>((resolve) => setImmediate(resolve));
        } catch (err) {
          if (err instanceof CompactedError) {
            this.compactWatcher(w);
            return;
          }
          // The backend is unreachable: keep the watcher and retry with backoff, never skip.
          failures++;
          await new Promise<void>((resolve) => setTimeout(resolve, Math.min(2000, 25 * 2 ** failures)).unref());
        }
      }
    } finally {
      w.catchingUp = false;
    }
  }

  private catchUpFromRing(w: WatcherImpl): void {
    const ring = this.ring;
    let i = ring.indexOf(w.nextRevision);
    let budget = RING_BUDGET;
    const now = Date.now();
    for (; i < ring.length && budget > 0; i++, budget--) {
      const rev = ring.at(i) as RevisionEvents;
      const b = this.makeBatch(rev, this.matching(w, rev), w);
      if (b !== null) {
        if (w.sink.congested()) return;
        this.deliver(w, b, now);
        if (w.state !== 'unsynced') return;
      }
      w.nextRevision = rev.revision + 1;
    }
  }

  /**
   * Resolves when `w`'s sink has drained, or at once when `w` is removed meanwhile (cancel,
   * compaction, close): a removed watcher must not wait on a socket that may never be read.
   */
  private drained(w: WatcherImpl): Promise<void> {
    return new Promise<void>((resolve) => {
      const wake = (): void => {
        if (w.wake === wake) w.wake = undefined;
        resolve();
      };
      w.wake = wake;
      w.sink.onDrain(wake);
    });
  }

  /** The entry count of a catch-up read: about `catchUpBytes` at the entry size of the latest read. */
  private logLimit(): number {
    return Math.max(1, Math.min(this.opts.catchUpEntries, Math.floor(this.opts.catchUpBytes / this.entryBytes)));
  }

  /** The chunk cache id of a range and prevKv variant. */
  private chunkId(w: WatcherImpl, prevKv: boolean): string {
    return `${w.group.id}|${prevKv ? '+' : '-'}`;
  }

  /** A held chunk that covers revision `n` for `w` (a prevKv chunk serves a watcher without prevKv too). */
  private findChunk(w: WatcherImpl, n: number): Chunk | undefined {
    const ids = w.prevKv ? [this.chunkId(w, true)] : [this.chunkId(w, false), this.chunkId(w, true)];
    for (const id of ids) {
      for (const c of this.chunks.get(id) ?? []) if (c.from <= n && n <= c.to) return c;
    }
    return undefined;
  }

  /**
   * Catches `w` up by one chunk of the backend log: a chunk of its range held by the hub (another
   * watcher read it), a read in flight from the same revision, or a new read within the catch-up
   * budget. Nothing is held across a wait: a congested watcher stops, keeps `nextRevision` at the
   * first revision not sent, and finds (or reads) its place again after the drain.
   */
  private async catchUpFromLog(w: WatcherImpl): Promise<void> {
    let chunk = this.findChunk(w, w.nextRevision);
    if (chunk === undefined) {
      const id = this.chunkId(w, w.prevKv);
      const key = `${id}@${w.nextRevision}`;
      let read = this.reading.get(key);
      if (read === undefined) {
        read = this.readChunk(w, id);
        this.reading.set(key, read);
        const forget = (): void => {
          if (this.reading.get(key) === read) this.reading.delete(key);
        };
        read.then(forget, forget);
      }
      chunk = await read;
    }
    if (w.state !== 'unsynced') return;
    chunk.usedAt = Date.now();
    // A compaction or a retention pass may have removed part of what was read (floors are read after the rows).
    const floor = this.compactRevisionOf(w);
    if (w.nextRevision <= floor) throw new CompactedError(w.nextRevision, floor);
    const revs = chunk.revs;
    let lo = 0;
    let hi = revs.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((revs[mid] as RevisionEvents).revision < w.nextRevision) lo = mid + 1;
      else hi = mid;
    }
    for (let i = lo; i < revs.length; i++) {
      const rev = revs[i] as RevisionEvents;
      const b = this.makeBatch(rev, this.matching(w, rev), w, true);
      if (b !== null) {
        if (w.sink.congested() || !this.spendTurn(b.events.length)) return;
        this.deliver(w, b, Date.now());
        if (w.state !== 'unsynced') return;
      }
      w.nextRevision = rev.revision + 1;
    }
    w.nextRevision = Math.max(w.nextRevision, chunk.to + 1);
  }

  /** Counts `events` against this turn's catch-up delivery budget; false when it is spent (continue next turn). */
  private spendTurn(events: number): boolean {
    if (this.turnEvents >= CATCHUP_TURN_EVENTS) return false;
    this.turnEvents += events;
    if (!this.turnReset) {
      this.turnReset = true;
      setImmediate(() => {
        this.turnReset = false;
        this.turnEvents = 0;
      });
    }
    return true;
  }

  /**
   * Reads the chunk of `w`'s range from its next revision, within the catch-up budget (waiting
   * in order for it), and holds it for other watchers of the range until it has been idle for
   * {@link CHUNK_IDLE_MS} or the budget needs room.
   */
  private async readChunk(w: WatcherImpl, id: string): Promise<Chunk> {
    const from = w.nextRevision;
    const limit = this.logLimit();
    const reserved = Math.min(this.opts.catchUpBudgetBytes, limit * this.entryBytes);
    await this.acquire(reserved);
    let held = reserved;
    try {
      await this.readTurn();
      if (this.closed) throw new UnavailableError('the node is shutting down');
      const to = Math.min(this.ring.floor - 1, this.head);
      const range = w.rangeEnd === undefined ? { key: w.key } : { key: w.key, rangeEnd: w.rangeEnd };
      const revs = await this.store.readEvents(from, to, limit, w.prevKv, range);
      let entries = 0;
      let bytes = 0;
      for (const rev of revs) {
        entries += rev.events.length;
        bytes += revisionBytes(rev);
      }
      if (entries > 0) this.entryBytes = Math.max(1, bytes / entries);
      // Sizes are only known once read (the backend limits entries, not bytes): account what is held.
      this.budgetUsed += bytes - held;
      held = bytes;
      if (from <= this.store.compactRevision) throw new CompactedError(from, this.store.compactRevision);
      await this.store.refreshFloors();
      const floor = this.store.compactRevisionFor(w.key, w.rangeEnd);
      if (from <= floor) throw new CompactedError(from, floor);
      const last = revs[revs.length - 1];
      // A read cut by the limit covers up to its last revision; otherwise the whole span.
      const chunk: Chunk = { id, from, to: entries >= limit && last !== undefined ? last.revision : to, revs, bytes, usedAt: Date.now() };
      if (this.closed) {
        this.releaseBudget(held);
        return chunk;
      }
      let list = this.chunks.get(id);
      if (list === undefined) this.chunks.set(id, (list = []));
      list.push(chunk);
      this.metrics.watchCatchUpBytes.set(this.budgetUsed);
      this.chunkSweep ??= setInterval(() => {
        this.sweepChunks(Date.now() - CHUNK_IDLE_MS);
        // Reads waiting for room get it as soon as chunks can go (fits() drops the least recently used).
        if (this.budgetQueue.length > 0) this.releaseBudget(0);
      }, 100).unref();
      return chunk;
    } catch (err) {
      this.releaseBudget(held);
      throw err;
    }
  }

  /**
   * Resolves when it is this read's turn: log reads run one at a time, each in its own turn of the
   * event loop (a setImmediate queued from a check phase runs in the next loop iteration), so
   * the reads of many catching-up watchers never run back to back while requests and commits
   * wait (SQLite reads are synchronous).
   */
  private readTurn(): Promise<void> {
    const turn = this.readGate.then(() => new Promise<void>((resolve) => setImmediate(resolve)));
    this.readGate = turn;
    return turn;
  }

  /**
   * Reserves `bytes` of the catch-up budget: at once when it fits and nobody waits, else after the
   * reads that asked earlier (idle chunks are dropped first to make room). A read larger than the
   * whole budget goes alone.
   */
  private acquire(bytes: number): Promise<void> | undefined {
    if (this.budgetQueue.length === 0 && this.fits(bytes)) {
      this.budgetUsed += bytes;
      return undefined;
    }
    this.metrics.watchLimitHits.inc({ limit: 'catchup_bytes' });
    return new Promise<void>((resolve) => this.budgetQueue.push({ bytes, resolve }));
  }

  private fits(bytes: number): boolean {
    const budget = this.opts.catchUpBudgetBytes;
    if (this.budgetUsed + bytes > budget) this.sweepChunks(Infinity, this.budgetUsed + bytes - budget);
    return this.budgetUsed + bytes <= budget || this.budgetUsed <= 0;
  }

  private releaseBudget(bytes: number): void {
    this.budgetUsed = Math.max(0, this.budgetUsed - bytes);
    this.metrics.watchCatchUpBytes.set(this.budgetUsed);
    while (this.budgetQueue.length > 0 && !this.closed) {
      const head = this.budgetQueue[0] as { bytes: number; resolve: () => void };
      if (!this.fits(head.bytes)) return;
      this.budgetQueue.shift();
      this.budgetUsed += head.bytes;
      head.resolve();
    }
  }

  /**
   * Drops held chunks last used before `idleBefore` (ms since the epoch), least recently used
   * first, until `need` bytes are freed (all of them by default). Watchers that were using a
   * dropped chunk read their place again.
   */
  private sweepChunks(idleBefore: number, need = Infinity): void {
    const all: Chunk[] = [];
    for (const list of this.chunks.values()) for (const c of list) if (c.usedAt < idleBefore) all.push(c);
    all.sort((a, b) => a.usedAt - b.usedAt);
    let freed = 0;
    const dropped = new Set<Chunk>();
    for (const c of all) {
      if (freed >= need) break;
      dropped.add(c);
      freed += c.bytes;
    }
    if (dropped.size > 0) {
      for (const [id, list] of this.chunks) {
        const keep = list.filter((c) => !dropped.has(c));
        if (keep.length === 0) this.chunks.delete(id);
        else if (keep.length !== list.length) this.chunks.set(id, keep);
      }
      // Freed bytes go back to the budget; a sweep from fits() is already inside a release, so no re-entry there.
      this.budgetUsed = Math.max(0, this.budgetUsed - freed);
      this.metrics.watchCatchUpBytes.set(this.budgetUsed);
    }
    if (this.chunks.size === 0 && this.chunkSweep !== undefined) {
      clearInterval(this.chunkSweep);
      this.chunkSweep = undefined;
    }
  }

  private matching(w: WatcherImpl, rev: RevisionEvents): number[] {
    const idx: number[] = [];
    const events = rev.events;
    for (let i = 0; i < events.length; i++) {
      if (inRange((events[i] as WatchEvent).kv.key, w.key, w.rangeEnd)) idx.push(i);
    }
    return idx;
  }

  /** The effective compact revision of a watcher's range (global, or a history-retention floor). */
  private compactRevisionOf(w: WatcherImpl): number {
    return this.store.compactRevisionFor(w.key, w.rangeEnd);
  }

  private compactWatcher(w: WatcherImpl): void {
    const c = this.compactRevisionOf(w);
    this.remove(w);
    try {
      w.sink.compacted(c);
    } catch {
      // the watch is gone either way
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Delivery

  /** The batch of `idx` (indices into `rev.events`) after `w`'s filters, or null when nothing is left. */
  private makeBatch(rev: RevisionEvents, idx: number[], w: WatcherImpl, fromLog = false): Batch | null {
    const events = rev.events;
    let sel = idx;
    if (w.noPut || w.noDelete) {
      sel = idx.filter((i) => {
        const t = (events[i] as WatchEvent).type;
        return t === 'put' ? !w.noPut : !w.noDelete;
      });
    }
    if (sel.length === 0) return null;
    const cache = this.cacheFor(rev, fromLog);
    const all = sel.length === events.length;
    let source = events;
    if (!w.prevKv) source = cache.stripped ??= stripPrevKv(events);
    const chosen = all ? source : sel.map((i) => source[i] as WatchEvent);
    const signature = `${all ? '*' : sel.join(',')}${w.prevKv ? '+' : '-'}`;
    return new Batch(rev, signature, chosen, w.prevKv, cache.memos);
  }

  private cacheFor(rev: RevisionEvents, fromLog: boolean): RevisionCache {
    const map = fromLog ? this.logCaches : this.caches;
    let cache = map.get(rev);
    if (cache === undefined) {
      cache = { memos: new Map() };
      map.set(rev, cache);
      if (!fromLog && this.caches.size > MEMO_REVISIONS) {
        const oldest = this.caches.keys().next().value;
        if (oldest !== undefined) this.caches.delete(oldest);
      }
    }
    return cache;
  }

  private deliver(w: WatcherImpl, b: WatchBatch, now: number): void {
    try {
      w.sink.events(b);
    } catch {
      // A sink that throws is broken: drop that watcher rather than stall the fan-out.
      this.remove(w);
      return;
    }
    w.lastSentAt = now;
    const m = this.metricsFor(w.sink.transport);
    m.sent.inc(b.events.length);
    // Propagation is commit → send; revisions a watcher asked for from the past are history, not propagation.
    if (b.revision > w.createdRevision) m.propagation.observe(Math.max(0, Date.now() - b.ts) / 1000);
  }

  private metricsFor(transport: string): { sent: { inc(n: number): void }; propagation: { observe(v: number): void } } {
    let m = this.transportMetrics.get(transport);
    if (m === undefined) {
      m = {
        sent: this.metrics.watchEventsSent.labels({ transport }),
        propagation: this.metrics.watchPropagation.labels({ transport }),
      };
      this.transportMetrics.set(transport, m);
    }
    return m;
  }

  // ---------------------------------------------------------------------------------------------
  // Bookkeeping

  private index(w: WatcherImpl): void {
    const single = w.rangeEnd === undefined;
    const map = single ? this.exact : this.ranges;
    const id = single ? w.key : JSON.stringify([w.key, w.rangeEnd]);
    let g = map.get(id);
    if (g === undefined) {
      g = { id, key: w.key, rangeEnd: w.rangeEnd, watchers: new Set() };
      map.set(id, g);
    }
    g.watchers.add(w);
    w.group = g;
  }

  private remove(w: WatcherImpl): void {
    if (w.state === 'done') return;
    if (w.state === 'synced') this.syncedCount--;
    else this.unsyncedCount--;
    w.state = 'done';
    if (w.owner !== undefined) {
      const n = (this.owners.get(w.owner) ?? 1) - 1;
      if (n <= 0) this.owners.delete(w.owner);
      else this.owners.set(w.owner, n);
    }
    const wake = w.wake;
    w.wake = undefined;
    wake?.();
    const g = w.group;
    g.watchers.delete(w);
    if (g.watchers.size === 0) (w.rangeEnd === undefined ? this.exact : this.ranges).delete(g.id);
    this.all.delete(w);
    this.updateGauge();
  }

  private setUnsynced(w: WatcherImpl, nextRevision: number): void {
    if (w.state !== 'synced') return;
    w.state = 'unsynced';
    w.nextRevision = nextRevision;
    this.syncedCount--;
    this.unsyncedCount++;
    this.updateGauge();
    this.kick(w);
  }

  private setSynced(w: WatcherImpl): void {
    if (w.state !== 'unsynced') return;
    w.state = 'synced';
    this.unsyncedCount--;
    this.syncedCount++;
    this.updateGauge();
  }

  private updateGauge(): void {
    this.metrics.watchers.set({ state: 'synced' }, this.syncedCount);
    this.metrics.watchers.set({ state: 'unsynced' }, this.unsyncedCount);
  }

  private startProgressTimer(): void {
    if (this.progressTimer) clearInterval(this.progressTimer);
    if (this.closed) return;
    const every = this.opts.progressIntervalMs;
    // Ticking at half the interval bounds an idle watcher's wait for progress to 1.5 intervals.
    this.progressTimer = setInterval(() => this.sendProgress(), Math.max(10, Math.floor(every / 2)));
    this.progressTimer.unref();
  }

  private sendProgress(): void {
    const now = Date.now();
    const every = this.opts.progressIntervalMs;
    for (const w of this.all) {
      if (w.state !== 'synced' || now - w.lastSentAt < every || w.sink.congested()) continue;
      w.lastSentAt = now;
      try {
        // Never the hub's head: revisions up to it may still wait in the deferred fan-out, and a
        // client resumes after the revision a progress frame names.
        w.sink.progress(w.progressRevision);
      } catch {
        this.remove(w);
      }
    }
  }
}
