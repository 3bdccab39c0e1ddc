/** The watch hub: ordered fan-out of committed revisions to watchers, with catch-up from the backend log. */
export { WatchHub } from './hub.js';
export type { Watcher, WatcherOptions, WatchSink } from './hub.js';
