/** The kv core: MVCC types, key ordering, the in-memory view and the store with group commit. */
export * from './types.js';
export {
  compareKeys,
  prefixEnd,
  inRange,
  validateKey,
  validateStoreKey,
  validateRangeEnd,
  isSystemKey,
  clampRange,
  parseRange,
  prefixRange,
  isCanonicalRange,
  MAX_KEY_BYTES,
  SYSTEM_PREFIX,
  FIRST_USER_KEY,
} from './keys.js';
export type { RangeInput } from './keys.js';
export { View } from './view.js';
export { Store, DEFAULT_MAX_VALUE_BYTES, MAX_TXN_OPS, WRITE_PROBE_INTERVAL_MS } from './store.js';
export type { StoreOptions, WriteOptions, CommitListener, LeaseInfo, WriteHealth } from './store.js';
