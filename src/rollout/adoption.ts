/**
 * What the SDK clients report they applied, per rollout (issue 16, docs/rollout.md "Adoption"),
 * kept in the backend's `rollout_adoption` table (migration 008) so that in PostgreSQL mode
 * every node counts the clients that reported to any node. A report is not a revision: each node
 * buffers reports for about a second and upserts them in one statement keyed by (rollout,
 * client), so 10,000 clients cost one small write a second per node and no watch events.
 */
import type { AdoptionRow } from '../backend/index.js';

/** The variant a client applied: the rollout's candidate or the config's current version. */
export type AppliedVariant = 'candidate' | 'current';

/** Clients silent for longer than this are not counted (a client that went away), ms; the SDK re-reports well within it. */
export const ADOPTION_WINDOW_MS = 15 * 60_000;
/** How long a report waits in a node's buffer before it is written, ms. */
export const ADOPTION_FLUSH_MS = 1000;
/** The most reports buffered on a node between writes; beyond it new reports are dropped (the clients report again). */
export const MAX_PENDING_REPORTS = 100_000;

/** One report as the table keeps it: the backend's row. */
export type AdoptionReport = AdoptionRow;

/** The backend operations adoption needs (the node passes its backend). */
export interface AdoptionTable {
  recordAdoption(rows: AdoptionReport[]): Promise<void>;
  adoptionCounts(rollout: string, sinceMs: number): Promise<Record<string, number>>;
  adoptionBuckets(rollout: string, sinceMs: number): Promise<number[]>;
  pruneAdoption(keep: string[], beforeMs: number): Promise<number>;
}

/**
 * Adoption counts and buckets over the backend's table, with a per-node write buffer. Reads
 * write this node's buffer first, so a node sees its own reports at once and other nodes'
 * within about {@link ADOPTION_FLUSH_MS}.
 */
export class AdoptionLedger {
  private pending = new Map<string, AdoptionReport>();
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> = Promise.resolve();

  constructor(
    private readonly table: AdoptionTable,
    private readonly opts: { now?: () => number; onError?: (err: unknown) => void } = {},
  ) {}

  private now(): number {
    return (this.opts.now ?? Date.now)();
  }

  /** Buffers a report that client `client` applied `variant` of rollout `rollout` (written within {@link ADOPTION_FLUSH_MS}). */
  report(r: { rollout: string; client: string; variant: AppliedVariant; bucket: number; selected: boolean | null }): void {
    const id = `${r.rollout}\n${r.client}`;
    if (!this.pending.has(id) && this.pending.size >= MAX_PENDING_REPORTS) return;
    this.pending.set(id, { ...r, seenAt: this.now() });
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      this.flush().catch((err: unknown) => this.opts.onError?.(err));
    }, ADOPTION_FLUSH_MS);
    this.timer.unref?.();
  }

  /** Writes the buffered reports; resolves when every report buffered before the call is written. A failed write drops them (the SDK reports again). */
  flush(): Promise<void> {
    const rows = [...this.pending.values()];
    this.pending = new Map();
    this.flushing = this.flushing.catch(() => undefined).then(() => (rows.length === 0 ? undefined : this.table.recordAdoption(rows)));
    return this.flushing;
  }

  /** How many clients seen within {@link ADOPTION_WINDOW_MS} last applied each variant of `rollout`. */
  async counts(rollout: string): Promise<Record<AppliedVariant, number>> {
    await this.flush().catch((err: unknown) => this.opts.onError?.(err));
    const c = await this.table.adoptionCounts(rollout, this.now() - ADOPTION_WINDOW_MS);
    return { candidate: c.candidate ?? 0, current: c.current ?? 0 };
  }

  /** The buckets of the clients seen within the window that match `rollout`'s selector (for calibrating a step). */
  async selectedBuckets(rollout: string): Promise<number[]> {
    await this.flush().catch((err: unknown) => this.opts.onError?.(err));
    return this.table.adoptionBuckets(rollout, this.now() - ADOPTION_WINDOW_MS);
  }

  /** Drops the rows of rollouts not in `active` (finished ones) and of clients silent for longer than the window. */
  prune(active: string[]): Promise<number> {
    return this.table.pruneAdoption(active, this.now() - ADOPTION_WINDOW_MS);
  }

  /** Stops the flush timer and writes what is buffered. */
  async close(): Promise<void> {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    await this.flush().catch((err: unknown) => this.opts.onError?.(err));
  }
}
