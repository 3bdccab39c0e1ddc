/**
 * The Beacon TypeScript SDK (`beacon/client`): typed access to keys, ranges, txns, leases,
 * configs, watches and snapshots; live configs with a last-known-good copy; sessions, locks,
 * elections and sequential keys; endpoint failover, retries and circuit breakers. For Node and
 * browsers (global fetch and WebSocket; the `ws` package in Node when there is no global
 * WebSocket). See docs/sdk.md.
 * @example
 * import { createClient, Compare, Op } from 'beacon/client';
 * const client = createClient({ endpoints: ['http://10.0.0.1:7379', 'http://10.0.0.2:7379'], timeoutMs: 5000 });
 * await client.put('app/color', 'blue');
 * const res = await client.txn().if(Compare.value('app/color', '=', 'blue')).then(Op.put('app/size', 'L')).commit();
 */
export { BeaconClient, createClient } from './client.js';
export type { ClientOptions, Consistency, DeleteOptions, GetOptions, LoginResponse, PutOptions, RangeOptions, ScanOptions } from './client.js';
export { AdminClient } from './admin.js';
export type { ApiKeyInfo, AuditFilter, AuditRecord, LockStateWire, NamespaceInfo, Permission, PromResponse, RangePage, RoleInfo, UserInfo, WhoAmI } from './admin.js';
export { AsyncQueue } from './async-queue.js';
export { CacheClient } from './cache.js';
export type { CacheEntry, CacheSetOptions } from './cache.js';
export { AlertsClient, DashboardsClient } from './alerts.js';
export { RolloutsClient, candidateBytes, receivesCandidate, parseSelector, matchesSelector, rolloutBucket, isTargeted } from './rollouts.js';
export type { ClientIdentity, Rollout, RolloutStart, RolloutGuard, RolloutState, RolloutTransition } from './rollouts.js';
export type { AlertInfo, RuleFileSummary, Silence, SilenceMatcher, SilenceRequest, Dashboard, DashboardPanel } from './alerts.js';
export { ConfigsClient, configVersion } from './configs.js';
export { Election } from './election.js';
export type { Leader, LeaderInfo, Observation, ObserveOptions } from './election.js';
export { Emitter } from './emitter.js';
export type { EventMap } from './emitter.js';
export { DEFAULT_HEALTH_CHECK, EndpointPool } from './endpoints.js';
export type { EndpointStatus, HealthCheckOptions } from './endpoints.js';
export { LiveConfig, decodeConfigValue } from './live-config.js';
export type { ConfigChange, ConfigSchema, JsonSchema, LiveConfigEvents, LiveConfigOptions, ParseSchema, SafeParseSchema } from './live-config.js';
export { fileStorage, isNode, memoryStorage, webStorage } from './lkg-storage.js';
export type { LkgStorage, WebStorageLike } from './lkg-storage.js';
export { Mutex } from './mutex.js';
export type { LockInfo, LockOptions } from './mutex.js';
export { CircuitBreaker, DEFAULT_BREAKER, DEFAULT_RETRY, backoffDelay, systemClock } from './resilience.js';
export type { BreakerOptions, BreakerState, Clock, RetryOptions } from './resilience.js';
export { DEFAULT_SESSION_TTL_SECONDS, Session } from './session.js';
export type { SessionEvents, SessionOptions } from './session.js';
export type { Config, ConfigDiff, ConfigHistory, ConfigHistoryEntry, ConfigRollback, ConfigVersionRef, ConfigWrite } from './configs.js';
export { LeaseClient } from './lease.js';
export { DEFAULT_ENDPOINT, DEFAULT_TIMEOUT_MS, HttpTransport } from './transport.js';
export type { JsonResponse, RequestOptions, TransportOptions } from './transport.js';
export { Compare, Op, TxnBuilder } from './txn.js';
export type { CompareResult, CompareTarget, TxnCompare, TxnDelete, TxnOp, TxnOpResult, TxnPut, TxnRange, TxnRequest, TxnResponse } from './txn.js';
export type {
  CallOptions,
  CompactResponse,
  DeleteResponse,
  GetResponse,
  KeyValue,
  LeaseGrant,
  LeaseInfo,
  LeaseSummary,
  PutResponse,
  RangeResponse,
  SnapshotDownload,
  Status,
  ClusterNode,
  ClusterStatus,
  WatchEvent,
  WriteOptions,
} from './types.js';
export { fromBase64, toBase64, tryUtf8, utf8 } from './values.js';
export type { ValueInput } from './values.js';
export { defaultSocketFactory } from './watch.js';
export type { SocketFactory, SocketLike, Watch, WatchOptions, WatchStatus } from './watch.js';
export {
  BeaconError,
  CompactedError,
  ConflictError,
  ErrorCode,
  FutureRevisionError,
  InvalidArgumentError,
  NotFoundError,
  PermissionDeniedError,
  RateLimitedError,
  TooLargeError,
  TooManyRequestsError,
  UnauthenticatedError,
  UnavailableError,
} from '../src/errors.js';
export type { ErrorDetails } from '../src/errors.js';
