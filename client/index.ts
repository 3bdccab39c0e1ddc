/**
 * The Beacon TypeScript SDK (`beacon/client`): typed access to keys, ranges, txns, leases,
 * configs, watches and snapshots, for Node and browsers (global fetch and WebSocket; the `ws`
 * package in Node when there is no global WebSocket).
 * @example
 * import { createClient, Compare, Op } from 'beacon/client';
 * const client = createClient({ endpoint: 'http://127.0.0.1:7379', timeoutMs: 5000 });
 * await client.put('app/color', 'blue');
 * const res = await client.txn().if(Compare.value('app/color', '=', 'blue')).then(Op.put('app/size', 'L')).commit();
 */
export { BeaconClient, createClient } from './client.js';
export type { ClientOptions, Consistency, DeleteOptions, GetOptions, LoginResponse, PutOptions, RangeOptions, ScanOptions } from './client.js';
export { ConfigsClient, configVersion } from './configs.js';
export type { Config, ConfigDiff, ConfigHistory, ConfigHistoryEntry, ConfigRollback, ConfigVersionRef, ConfigWrite } from './configs.js';
export { LeaseClient } from './lease.js';
export { DEFAULT_ENDPOINT, DEFAULT_TIMEOUT_MS, HttpTransport } from './transport.js';
export type { JsonResponse, RequestOptions, TransportOptions } from './transport.js';
export { Compare, Op, TxnBuilder } from './txn.js';
export type { CompareResult, CompareTarget, TxnCompare, TxnDelete, TxnOp, TxnOpResult, TxnPut, TxnRange, TxnRequest, TxnResponse } from './txn.js';
export type {
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
  WatchEvent,
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
  UnauthenticatedError,
  UnavailableError,
} from '../src/errors.js';
export type { ErrorDetails } from '../src/errors.js';
