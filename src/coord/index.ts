/** Coordination recipes on the kv core: locks with fencing tokens, leader elections and sequential keys (etcd `concurrency` semantics). */
export { CoordService, DEFAULT_LOCK_LEASE_FLOOR_MS, MAX_WAIT_MS, parseContenderKey } from './service.js';
export type {
  CampaignOptions,
  ContenderRef,
  CoordServiceOptions,
  LeaderKey,
  LockHandle,
  LockOptions,
  LockState,
  SequentialKey,
  WaitOptions,
} from './service.js';
export { SEQUENCE_COUNTER_PREFIX, SEQUENCE_DIGITS, contenderKey, sequentialKey, validateName, validateSequencePrefix } from './names.js';
