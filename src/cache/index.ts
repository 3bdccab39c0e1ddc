/** The cache tier: memory namespaces with TTLs, maxmemory eviction, AOF persistence and read-through from an origin. */
export {
  ACTIVE_EXPIRE_KEYS_PER_LOOP,
  AOF_FILE,
  CONFIG_FILE,
  CacheTier,
  EVICTION_POOL_SIZE,
  LFU_INIT_VAL,
  parseCacheSettings,
  parseMemory,
} from './tier.js';
export { OutOfMemoryError } from '../errors.js';
export {
  DEFAULT_CACHE_CONFIG,
  EVICTION_POLICIES,
  type AofExecutor,
  type AofLoadResult,
  type AppendFsync,
  type BreakerOptions,
  type CacheConfig,
  type CacheEvents,
  type CacheInfo,
  type CacheLogger,
  type CacheNamespace,
  type CacheTierOptions,
  type EvictionPolicy,
  type NamespaceResolver,
  type NamespaceStats,
  type OriginPolicy,
  type ReadThroughResult,
  type ScanOptions,
  type SetOptions,
} from './types.js';
export { CircuitBreaker, originUrl, type BreakerState } from './origin.js';
export { encodeCommand, parseAof, type ParsedAof } from './aof.js';
export {
  Deque,
  ENTRY_OVERHEAD_BYTES,
  MEMBER_ENCODING,
  SortedSet,
  isRaw,
  markRaw,
  memberFromBytes,
  memberToBytes,
  valueMemory,
  type CacheValue,
  type CacheValueType,
  type LexBound,
  type ScoreBound,
  type ScoredMember,
} from './values.js';
export { globLiteralPrefix, globMatch } from './glob.js';
export {
  MAX_SLOT_REPLICAS,
  SLOT_COUNT,
  crc16,
  hrwScore,
  keySlot,
  movedSlots,
  slotOwners,
  type SlotMap,
  type SlotRange,
} from './slots.js';
export {
  CacheRing,
  HANDOVER_TRANSFER_MS,
  HANDOVER_WAIT_MS,
  SLOT_BLOCK_BITS,
  NO_RANK,
  SlotOwnership,
  clusterNodeId,
  respAddress,
  type RingMember,
  type RingRange,
  type SlotRoute,
  type SweepTarget,
} from './ring.js';
