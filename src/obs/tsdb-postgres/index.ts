/** PostgreSQL mode of the time-series store: every node's samples flushed to one database and queried from any node (loaded only by nodes on PostgreSQL). */
export { PostgresTsdb, DEFAULT_FLUSH_INTERVAL_MS, DEFAULT_COMPACT_INTERVAL_MS, RAW_BLOCK_MS, MAX_OUTBOX_SAMPLES } from './shared-store.js';
export type { PostgresTsdbOptions, FlushResult, CompactResult } from './shared-store.js';
