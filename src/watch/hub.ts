/** Placeholder: the watch hub is being written (see the watch task). */
import type { Store, RevisionEvents } from '../kv/index.js';
import type { Metrics } from '../obs/index.js';

/** Options of a watcher. */
export interface WatcherOptions {
  key: string;
  rangeEnd?: string | null;
  fromRevision?: number;
  prevKv?: boolean;
}

/** Where a watcher's output goes. */
export interface WatchSink {
  send(events: RevisionEvents): void;
}

/** A registered watcher. */
export interface Watcher {
  id: number;
  cancel(): void;
}

/** Fans committed revisions out to watchers. */
export class WatchHub {
  constructor(
    readonly store: Store,
    readonly metrics: Metrics,
  ) {}

  /** The number of active watchers. */
  get watcherCount(): number {
    return 0;
  }

  /** Stops every watcher. */
  close(): void {}
}
