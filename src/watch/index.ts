/** The watch hub: ordered fan-out of committed revisions to watchers, with catch-up from the backend log. */
export { WatchHub, DEFAULT_WATCH_HUB_OPTIONS } from './hub.js';
export type { Watcher, WatcherOptions, WatchSink, WatchBatch, WatchHubOptions } from './hub.js';
export { RevisionRing, revisionBytes } from './ring.js';
export { WsChannel } from './ws-channel.js';
