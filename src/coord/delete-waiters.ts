/** Waits for the deletion of given keys, driven by the store's stream of committed revisions. */
import type { RevisionEvents, Store } from '../kv/index.js';

interface Registration {
  keys: string[];
  wake: () => void;
}

/**
 * One store subscription shared by every waiting contender: a map from key to the waiters on
 * its deletion. A committed delete wakes only the waiters of that key, which is what keeps a
 * lock release from waking the whole queue (no thundering herd). The subscription exists only
 * while someone waits.
 */
export class DeleteWaiters {
  private readonly byKey = new Map<string, Set<Registration>>();
  private unsubscribe: (() => void) | undefined;

  constructor(private readonly store: Store) {}

  /** The number of waiting registrations (for tests and metrics). */
  get size(): number {
    const all = new Set<Registration>();
    for (const set of this.byKey.values()) for (const r of set) all.add(r);
    return all.size;
  }

  /**
   * Resolves when any of `keys` is deleted by a revision committed after this call; rejects with
   * `signal.reason` when the signal aborts first. The caller checks the keys' state in the same
   * synchronous turn before calling, so no deletion can fall between the check and the wait.
   */
  wait(keys: string[], signal: AbortSignal): Promise<void> {
    if (signal.aborted) return Promise.reject(signal.reason as unknown);
    return new Promise<void>((resolve, reject) => {
      const reg: Registration = {
        keys,
        wake: () => {
          this.remove(reg);
          signal.removeEventListener('abort', onAbort);
          resolve();
        },
      };
      const onAbort = (): void => {
        this.remove(reg);
        reject(signal.reason as unknown);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      for (const k of keys) {
        let set = this.byKey.get(k);
        if (set === undefined) this.byKey.set(k, (set = new Set()));
        set.add(reg);
      }
      this.unsubscribe ??= this.store.subscribe((group) => this.onCommit(group));
    });
  }

  private onCommit(group: RevisionEvents): void {
    for (const ev of group.events) {
      if (ev.type !== 'delete') continue;
      const set = this.byKey.get(ev.kv.key);
      if (set === undefined) continue;
      for (const reg of [...set]) reg.wake();
    }
  }

  private remove(reg: Registration): void {
    for (const k of reg.keys) {
      const set = this.byKey.get(k);
      if (set === undefined) continue;
      set.delete(reg);
      if (set.size === 0) this.byKey.delete(k);
    }
    if (this.byKey.size === 0 && this.unsubscribe !== undefined) {
      this.unsubscribe();
      this.unsubscribe = undefined;
    }
  }
}
