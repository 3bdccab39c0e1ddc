/**
 * The MVCC vocabulary, pure and below the backend: keys, values, revisions, leases, events and
 * audit records (types), and key validation and byte order. The backends store these; the kv
 * core (src/kv, above the backend) re-exports them, so modules above it import from there.
 */
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
