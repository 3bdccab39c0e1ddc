/** The MVCC data types shared by the kv core, the backends, the watch hub and the adapters. */

/**
 * One key at one revision, as etcd's `mvccpb.KeyValue`.
 * Revisions are global counters (≥ 1); `version` counts puts since creation (reset by delete);
 * `lease` is 0 when the key has none.
 */
export interface KeyValue {
  key: string;
  value: Uint8Array;
  createRevision: number;
  modRevision: number;
  version: number;
  lease: number;
  /**
   * True when `value` is ciphertext sealed by the store's {@link ValueSealer} for this key;
   * absent for clear bytes. Recorded in the row by the store, never taken from a request or
   * from the value's bytes (issue 9 finding 3). Rows stored before the flag existed were
   * classified once by migration 005 (SQLite) / 004 (PostgreSQL).
   */
  encrypted?: true;
}

/**
 * One row of the revision log as a backend stores it: a put, or a delete (tombstone) of `key`
 * at `revision`. `ts` is the commit time in milliseconds since the epoch; `meta` is optional JSON
 * describing why the write happened (for example a config rollback).
 */
export interface LogEntry {
  revision: number;
  key: string;
  value: Uint8Array;
  createRevision: number;
  version: number;
  lease: number;
  deleted: boolean;
  ts: number;
  meta: string | null;
  /** True when `value` is ciphertext (see {@link KeyValue.encrypted}); absent for clear bytes and tombstones. */
  encrypted?: true;
}

/** A change to one key. `kv` is the new state (for a delete: the key with `modRevision` set and no value). */
export interface WatchEvent {
  type: 'put' | 'delete';
  kv: KeyValue;
  prevKv?: KeyValue;
}

/** Every change committed at one revision, in key order of application; `ts` in ms since the epoch. */
export interface RevisionEvents {
  revision: number;
  ts: number;
  meta: string | null;
  events: WatchEvent[];
}

/**
 * A key range `[key, rangeEnd)` in UTF-8 byte order. `rangeEnd` undefined means the single key
 * `key`; `rangeEnd` null means every key ≥ `key`.
 */
export interface KeyRange {
  key: string;
  rangeEnd?: string | null;
}

/** Options of a range read. `revision` 0 or undefined means the latest; `limit` 0 means no limit. */
export interface RangeOptions {
  revision?: number;
  limit?: number;
  keysOnly?: boolean;
  countOnly?: boolean;
}

/** The answer of a range read: the kvs in key order, whether more exist past `limit`, and `count` of all matches. */
export interface RangeResult {
  revision: number;
  kvs: KeyValue[];
  more: boolean;
  count: number;
}

/** What a txn compare looks at. */
export type CompareTarget = 'value' | 'version' | 'createRevision' | 'modRevision' | 'lease';
/** How a txn compare relates the key's field to the given operand. */
export type CompareResult = '=' | '!=' | '<' | '>';

/** One compare of a txn. A missing key has version, createRevision, modRevision and lease 0. */
export interface Compare {
  key: string;
  rangeEnd?: string | null;
  target: CompareTarget;
  result: CompareResult;
  /** A number for version/createRevision/modRevision/lease; bytes for value. */
  operand: number | Uint8Array;
}

/**
 * Turns the value of a put into the bytes the store keeps, for the real key being written: the
 * config layer encrypts values of secret namespaces here. The store calls it for every put (txn
 * ops, elections, sequences, locks, rollbacks, re-encryption), so a value is always sealed with
 * its own key as authenticated data (issue 9 finding 4), and the row records `encrypted` from
 * its answer, so whether a value is ciphertext never depends on its bytes (finding 3).
 * @throws a BeaconError to refuse the write (e.g. UnavailableError: no KEK for a secret namespace).
 */
export type ValueSealer = (key: string, value: Uint8Array) => { value: Uint8Array; encrypted: boolean };

/** A put inside a txn or on its own. `ignoreValue`/`ignoreLease` keep the current value/lease (etcd). */
export interface PutOp {
  type: 'put';
  key: string;
  value: Uint8Array;
  lease?: number;
  prevKv?: boolean;
  ignoreValue?: boolean;
  ignoreLease?: boolean;
}

/** A delete of a key or range. */
export interface DeleteOp {
  type: 'delete';
  key: string;
  rangeEnd?: string | null;
  prevKv?: boolean;
}

/** A read inside a txn; it sees the writes made earlier in the same txn. */
export interface RangeOp {
  type: 'range';
  key: string;
  rangeEnd?: string | null;
  limit?: number;
  keysOnly?: boolean;
  countOnly?: boolean;
}

/** Any op of a txn. */
export type TxnOp = PutOp | DeleteOp | RangeOp;

/** A txn: if every compare holds, run `success`, else `failure`. Atomic, at most one revision. */
export interface TxnRequest {
  compare: Compare[];
  success: TxnOp[];
  failure: TxnOp[];
}

/** The result of one op of a txn. */
export type OpResult =
  | { type: 'put'; prevKv?: KeyValue }
  | { type: 'delete'; deleted: number; prevKvs?: KeyValue[] }
  | { type: 'range'; kvs: KeyValue[]; more: boolean; count: number };

/** The result of a txn: which branch ran, the store revision after it, and one result per op. */
export interface TxnResponse {
  succeeded: boolean;
  revision: number;
  results: OpResult[];
}

/** A lease as the lessor knows it. `ttl` and `grantedTtl` are seconds; `expiresAt` is ms since the epoch. */
export interface Lease {
  id: number;
  grantedTtl: number;
  expiresAt: number;
  /**
   * The principal that granted it, who alone (with administrators) may see, keep alive or revoke
   * it (issue 9 finding 9). Absent for leases granted before owners were recorded and for leases
   * the node grants for itself: administrators only.
   */
  owner?: string;
}

/** Who caused a write, for the audit log: principal name, request id and source address. */
export interface AuditContext {
  principal: string;
  /** What the client asked for, e.g. `kv.put`, `config.rollback`, `lease.revoke`. */
  action: string;
  requestId?: string;
  source?: string;
}

/**
 * One audit record (DESIGN.md §4: who, when, what, old and new version, request id, source).
 * `ts` in ms since the epoch; `details` is JSON and never holds secret values.
 */
export interface AuditRecord {
  /** Assigned by the backend, increasing. */
  id?: number;
  ts: number;
  principal: string;
  action: string;
  key: string | null;
  oldVersion: number | null;
  newVersion: number | null;
  revision: number | null;
  requestId: string | null;
  source: string | null;
  outcome: 'ok' | 'denied' | 'failed';
  details: string | null;
}

/** A filter for reading the audit log; every field optional; times in ms since the epoch. */
export interface AuditQuery {
  fromTs?: number;
  toTs?: number;
  principal?: string;
  action?: string;
  keyPrefix?: string;
  outcome?: 'ok' | 'denied' | 'failed';
  /** Only records with an id greater than this (pagination oldest first). */
  afterId?: number;
  /** Only records with an id less than this (pagination newest first). */
  beforeId?: number;
  /** `asc` (default): oldest first; `desc`: newest first. */
  order?: 'asc' | 'desc';
  /** At most this many records, in `order`. */
  limit: number;
}
