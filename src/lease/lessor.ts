/** Lease bookkeeping: time-limited leases, the keys attached to them, and an expiry queue driven by a clock. */

/** The largest TTL a lease may ask for, in seconds (etcd's MaxLeaseTTL). */
export const MAX_LEASE_TTL_SECONDS = 9_000_000_000;

/**
 * A lease with its attached keys. `grantedTtl` in seconds; `expiresAt` in ms since the epoch;
 * `owner` the principal that granted it (absent: administrators only, see docs/coordination.md).
 */
export interface LeaseState {
  id: number;
  grantedTtl: number;
  expiresAt: number;
  keys: Set<string>;
  owner?: string;
}

/** A clock in milliseconds; tests pass a fake one. */
export type Clock = () => number;

/**
 * Tracks leases and finds the expired ones. It does not delete keys itself: the store revokes
 * expired leases through a commit, so an expiry deletes its keys in one revision.
 */
export class Lessor {
  private readonly leases = new Map<number, LeaseState>();
  // A binary min-heap of [expiresAt, id]; stale entries (lease renewed or gone) are skipped lazily.
  private heap: [number, number][] = [];

  constructor(private readonly clock: Clock = Date.now) {}

  /** The number of live leases. */
  get size(): number {
    return this.leases.size;
  }

  /** The lease with this id, or undefined. */
  get(id: number): LeaseState | undefined {
    return this.leases.get(id);
  }

  /** Every live lease. */
  all(): IterableIterator<LeaseState> {
    return this.leases.values();
  }

  /** Adds (or replaces) a lease; `owner` is the principal that granted it (undefined: none recorded). */
  grant(id: number, grantedTtl: number, expiresAt: number, owner?: string): LeaseState {
    const old = this.leases.get(id);
    const state: LeaseState = { id, grantedTtl, expiresAt, keys: old?.keys ?? new Set() };
    if (owner !== undefined) state.owner = owner;
    this.leases.set(id, state);
    this.push(expiresAt, id);
    return state;
  }

  /** Removes a lease and returns it (with the keys that were attached). */
  revoke(id: number): LeaseState | undefined {
    const state = this.leases.get(id);
    this.leases.delete(id);
    return state;
  }

  /** Renews a lease to its full TTL from now; returns the new expiry, or undefined if it is gone or already expired. */
  renew(id: number): number | undefined {
    const state = this.leases.get(id);
    const now = this.clock();
    if (state === undefined || state.expiresAt <= now) return undefined;
    state.expiresAt = now + state.grantedTtl * 1000;
    this.push(state.expiresAt, id);
    return state.expiresAt;
  }

  /** Records that `key` is now attached to lease `id` (no-op for 0 or an unknown lease). */
  attach(id: number, key: string): void {
    if (id !== 0) this.leases.get(id)?.keys.add(key);
  }

  /** Records that `key` is no longer attached to lease `id`. */
  detach(id: number, key: string): void {
    if (id !== 0) this.leases.get(id)?.keys.delete(key);
  }

  /** The ids of leases whose expiry is at or before now, oldest first (each reported until revoked or renewed). */
  expired(): number[] {
    const now = this.clock();
    const out: number[] = [];
    const seen = new Set<number>();
    const keep: [number, number][] = [];
    while (this.heap.length > 0 && (this.heap[0] as [number, number])[0] <= now) {
      const [at, id] = this.pop();
      const state = this.leases.get(id);
      if (state === undefined || state.expiresAt !== at || seen.has(id)) continue;
      seen.add(id);
      out.push(id);
      keep.push([at, id]); // stays queued until the revoke commits
    }
    for (const [at, id] of keep) this.push(at, id);
    return out;
  }

  /** The earliest expiry in ms since the epoch, or undefined with no leases. */
  nextExpiry(): number | undefined {
    while (this.heap.length > 0) {
      const [at, id] = this.heap[0] as [number, number];
      const state = this.leases.get(id);
      if (state !== undefined && state.expiresAt === at) return at;
      this.pop();
    }
    return undefined;
  }

  private push(at: number, id: number): void {
    const h = this.heap;
    h.push([at, id]);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if ((h[p] as [number, number])[0] <= at) break;
      h[i] = h[p] as [number, number];
      i = p;
    }
    h[i] = [at, id];
  }

  private pop(): [number, number] {
    const h = this.heap;
    const top = h[0] as [number, number];
    const last = h.pop() as [number, number];
    if (h.length > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        let mv = last[0];
        if (l < h.length && (h[l] as [number, number])[0] < mv) {
          m = l;
          mv = (h[l] as [number, number])[0];
        }
        if (r < h.length && (h[r] as [number, number])[0] < mv) m = r;
        if (m === i) break;
        h[i] = h[m] as [number, number];
        i = m;
      }
      h[i] = last;
    }
    return top;
  }
}
