/** The kv core: the in-memory view and the store with group commit, over the backend; re-exports the MVCC types and key ordering (src/mvcc). */
export * from '../mvcc/index.js';
export { View } from './view.js';
export { Store, DEFAULT_MAX_VALUE_BYTES, MAX_TXN_OPS, WRITE_PROBE_INTERVAL_MS, VIEW_SNAPSHOT_CLOSE_ENTRIES, VIEW_SNAPSHOT_KEY_SHARE, VIEW_SNAPSHOT_MIN_ENTRIES } from './store.js';
export type { StoreOptions, WriteOptions, CommitListener, LeaseInfo, WriteHealth } from './store.js';
