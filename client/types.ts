/** The data types the SDK returns, and their decoding from the HTTP API's JSON. */
import { valueFromWire } from './values.js';

/**
 * One key at one revision. `value` is always the bytes; `text` is the same value decoded as
 * UTF-8, or `undefined` when the bytes are not valid UTF-8. Revisions are global counters;
 * `version` counts puts since the key was created (reset by delete); `lease` is 0 for none.
 * With `keysOnly` reads, `value` is empty and `text` is `''`.
 */
export interface KeyValue {
  key: string;
  value: Uint8Array;
  text: string | undefined;
  createRevision: number;
  modRevision: number;
  version: number;
  lease: number;
  /**
   * Set when the value is a secret the caller may not read (no `read_secret`): `value` is then
   * empty and `text` is `''`, which is not the stored value.
   */
  redacted?: true;
  /**
   * Set in listings, txn ranges and watch events when this one value could not be shown: a
   * secret the node cannot decrypt (its key-encryption key is not in the keyring). `value` is
   * then empty and `text` is `''`; the other keys are unaffected.
   */
  error?: { code: string; message: string };
}

/** A kv as the HTTP API writes it (`value` is text, or base64 with `encoding: "base64"`). */
export interface KeyValueWire {
  key: string;
  value?: string;
  encoding?: 'base64';
  createRevision: number;
  modRevision: number;
  version: number;
  lease: number;
  redacted?: true;
  error?: { code: string; message: string };
}

/** Decodes a kv from its JSON form. */
export function kvFromWire(w: KeyValueWire): KeyValue {
  const { bytes, text } = valueFromWire(w.value, w.encoding);
  const kv: KeyValue = {
    key: w.key,
    value: bytes,
    text,
    createRevision: w.createRevision ?? 0,
    modRevision: w.modRevision ?? 0,
    version: w.version ?? 0,
    lease: w.lease ?? 0,
  };
  if (w.redacted === true) kv.redacted = true;
  if (w.error !== undefined) kv.error = { code: w.error.code, message: w.error.message };
  return kv;
}

/** The answer of a single-key read: the kv and the store revision it was read at. */
export interface GetResponse {
  revision: number;
  kv: KeyValue;
}

/**
 * One page of a prefix read: the kvs in key order, `count` of every match (not only this page),
 * `more` when another page exists and `continue`, the token that fetches it. `revision` is the
 * revision the listing is pinned to, the same for every page.
 */
export interface RangeResponse {
  revision: number;
  kvs: KeyValue[];
  count: number;
  more: boolean;
  continue?: string;
}

/** The answer of a put: the revision it created, and the previous kv when asked for. */
export interface PutResponse {
  revision: number;
  prevKv?: KeyValue;
}

/** The answer of a delete: the revision, how many keys were deleted, and their last kvs when asked for. */
export interface DeleteResponse {
  revision: number;
  deleted: number;
  prevKvs?: KeyValue[];
}

/**
 * A change to one key, delivered by a watch. `revision` is the revision that made it
 * (equal to `kv.modRevision`); a delete's `kv` has the key and `modRevision` only.
 * `prevKv` is there when the watch asked for it and the key existed before.
 */
export interface WatchEvent {
  type: 'put' | 'delete';
  revision: number;
  kv: KeyValue;
  prevKv?: KeyValue;
}

/** A lease just granted: its id and TTL in seconds. */
export interface LeaseGrant {
  id: number;
  ttl: number;
}

/** A lease's state: remaining `ttl` and `grantedTtl` in seconds, and the keys attached to it. */
export interface LeaseInfo {
  id: number;
  ttl: number;
  grantedTtl: number;
  keys: string[];
  /** Shown to administrators only: the principal that granted the lease (null: none recorded, e.g. granted before owners were stored). */
  owner?: string | null;
}

/** One entry of the lease list: remaining `ttl` and `grantedTtl` in seconds, and how many keys it holds. */
export interface LeaseSummary {
  id: number;
  ttl: number;
  grantedTtl: number;
  keys: number;
  /** Shown to administrators only: the principal that granted the lease (null: none recorded). */
  owner?: string | null;
}

/** What `GET /v1/status` reports about a node. Sizes in bytes, times in seconds or ISO 8601. */
export interface Status {
  version: string;
  nodeId: string;
  revision: number;
  compactRevision: number;
  keys: number;
  leases: number;
  watchers: number;
  backend: string;
  dbSizeBytes: number | null;
  uptimeSeconds: number;
  startedAt: string;
  dev: boolean;
  ready: boolean;
}

/** The answer of a compaction: the store revision and the new compact revision. */
export interface CompactResponse {
  revision: number;
  compactRevision: number;
}

/**
 * An online snapshot being downloaded: the revision it holds, its size in bytes (from
 * Content-Length, `undefined` if the server did not say), and the bytes as an async iterable of
 * chunks. Iterate it exactly once; stopping early (break, or the abort signal) cancels the download.
 */
export interface SnapshotDownload {
  revision: number;
  compactRevision: number;
  size: number | undefined;
  chunks: AsyncIterable<Uint8Array>;
}

/** Options every call accepts: an abort signal and a per-call timeout (per attempt, in milliseconds; 0 disables it). */
export interface CallOptions {
  signal?: AbortSignal;
  timeoutMs?: number;
}

/**
 * Options of a call that changes the store. `retry: true` declares it safe to send twice, so it
 * is retried after a failure that may have reached the node (a timeout, a reset connection, a
 * 503); without it, only failures that certainly did not reach a node are retried (elsewhere).
 */
export interface WriteOptions extends CallOptions {
  retry?: boolean;
}

/** One node of a cluster as `GET /v1/cluster` shows it; `lag` in revisions, `lastSeenMs` in ms. */
export interface ClusterNode {
  id: string;
  /** The node's HTTP base URL. */
  url: string;
  /** The node's RESP listener (`redis://host:port`); absent for a node without one. */
  respUrl?: string;
  version: string;
  startedAt: string;
  appliedRevision: number;
  lag: number;
  ready: boolean;
  expiryLeader: boolean;
  lastSeenMs: number;
  self: boolean;
  /** The node's part of the cache tier across nodes (PostgreSQL mode): in the ring or not, slots of 16,384, cache keys held. */
  cache?: { role: 'primary' | 'none'; slots: number; keys: number };
}

/** `GET /v1/cluster`: the store's head revision, the node driving lease expiry, and every live node. */
export interface ClusterStatus {
  revision: number;
  expiryLeader: string | null;
  /** The cache ring's committed epoch (PostgreSQL mode, with RESP listeners). */
  cacheRingEpoch?: number;
  /** Every slot's primary, as `[start, end, node id]` runs: the SDK sends a cache key to its owner. */
  cacheSlots?: [number, number, string][];
  nodes: ClusterNode[];
}
