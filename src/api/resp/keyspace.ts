/**
 * The keyspace as the RESP commands see it: typed values with an optional expiry time, behind
 * one interface whatever the key's kind. Durable keys (every key under no memory namespace) go
 * through the kv core in a {@link DurableTx}: reads come from the view, writes are collected and
 * committed as one txn (one revision) whose compares are the modRevisions of every key read, so
 * a read-modify-write (INCR, APPEND, HSET…) is a compare-and-swap.
 */
import { isUtf8 } from 'node:buffer';
import type { Principal } from '../../auth/index.js';
import type { PolicyStore } from '../../config/index.js';
import { BeaconError, InvalidArgumentError, PermissionDeniedError } from '../../errors.js';
import type { AuditContext, Compare, Store, TxnOp } from '../../kv/index.js';
import type { CacheValue } from '../../cache/index.js';

/** A Redis value: the cache tier's typed value (strings are bytes; members latin1 strings). */
export type Value = CacheValue;

/** An error reply raised by a command; `message` starts with its code word (`ERR`, `WRONGTYPE`…). */
export class RespError extends Error {
  override readonly name = 'RespError';
}

/** Redis's WRONGTYPE error text. */
export const WRONGTYPE = 'WRONGTYPE Operation against a key holding the wrong kind of value';

/** Keys of one kind, as commands use them. Implementations: {@link DurableTx}; the memory adapter. */
export interface Keyspace {
  readonly kind: 'durable' | 'memory';
  /**
   * The value of `key`, or undefined when absent or expired. A value of a memory key may be
   * mutated in place and then passed to {@link set} with `'keep'`.
   */
  get(key: string): Value | undefined;
  /** The expiry of an existing `key` in ms since the epoch, 0 for none. */
  expiresAt(key: string): number;
  /** The TYPE of `key` (`none` when absent). */
  typeOf(key: string): string;
  /** `key`'s fields when it holds a hash. @throws RespError WRONGTYPE otherwise. */
  getHash(key: string): Map<string, Buffer> | undefined;
  /**
   * Stores `value` at `key`; `expiresAt` ms since the epoch, 0 for no TTL, 'keep' to keep the
   * current one. `event` names the keyspace notification (`set`, `incrby`, `hset`…).
   * An empty hash, list, set or sorted set deletes the key, as in Redis.
   */
  set(key: string, value: Value, expiresAt: number | 'keep', event: string): void;
  /**
   * Stores string `values[i]` at `keys[i]` without a TTL (a namespace's default TTL applies to
   * memory keys), in order, as one write (MSET): all are written or, on an error, none.
   */
  setStrings(keys: readonly string[], values: readonly Buffer[], event: string): void;
  /** Deletes `key`; true when it existed. */
  delete(key: string, event?: string): boolean;
  /** Sets (ms since the epoch) or clears (0) the expiry of an existing key; false when absent. */
  expire(key: string, expiresAt: number, event: string): boolean;
  /**
   * After a miss of `key`: its value fetched from the namespace's origin (read-through), or
   * undefined when nothing is fetched (a durable key, no origin, MULTI, a replica read).
   */
  readThrough?(key: string): Promise<Value | undefined> | undefined;
}

/** The bytes of a string value. @throws RespError WRONGTYPE for another type. */
export function stringOf(v: Value | undefined): Buffer | undefined {
  if (v === undefined) return undefined;
  if (v.type !== 'string') throw new RespError(WRONGTYPE);
  return v.value;
}

/**
 * How a hash is stored as a durable key: its value is a JSON object whose members are the
 * fields (`{"host":"db1","port":"5432"}`), so the HTTP API, the CLI and the config layer (JSON
 * namespaces, schemas) see an ordinary JSON document. A durable key is a hash for RESP when its
 * value is a JSON object; a member that is not a string reads as its JSON text.
 * Field names and values must be UTF-8 (JSON strings).
 */
export function decodeDurableHash(value: Uint8Array): Map<string, Buffer> | undefined {
  let i = 0;
  while (i < value.length && (value[i] === 0x20 || value[i] === 0x0a || value[i] === 0x0d || value[i] === 0x09)) i++;
  if (value[i] !== 0x7b /* { */) return undefined;
  let doc: unknown;
  try {
    doc = JSON.parse(Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('utf8'));
  } catch {
    return undefined;
  }
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) return undefined;
  const out = new Map<string, Buffer>();
  for (const [k, v] of Object.entries(doc as Record<string, unknown>)) {
    out.set(Buffer.from(k, 'utf8').toString('latin1'), Buffer.from(typeof v === 'string' ? v : JSON.stringify(v), 'utf8'));
  }
  return out;
}

/** The JSON object a durable hash is stored as. @throws RespError when a field or value is not UTF-8. */
export function encodeDurableHash(fields: Map<string, Buffer>): Buffer {
  const o: Record<string, string> = {};
  for (const [k, v] of fields) {
    const name = Buffer.from(k, 'latin1');
    if (!isUtf8(v) || !isUtf8(name)) throw new RespError('ERR a hash of a durable key holds UTF-8 text only (it is stored as a JSON object)');
    o[name.toString('utf8')] = v.toString('utf8');
  }
  return Buffer.from(JSON.stringify(o), 'utf8');
}

/** A durable write collected by a {@link DurableTx}. */
interface PendingWrite {
  /** Stored bytes (already through the namespace policy), or null for a delete. */
  value: Uint8Array | null;
  /** ms since the epoch; 0 none; 'keep' the current lease. */
  expiresAt: number | 'keep';
}

/** A key's state as a durable command reads it: stored bytes, version, expiry (ms, 0 none). */
interface Base {
  stored: Uint8Array;
  version: number;
  expiresAt: number;
  /** True when the store sealed `stored` (a secret namespace's ciphertext); projected writes are clear. */
  encrypted?: boolean;
}

/** Thrown by {@link DurableTx.commit} when a key read by the command changed before the commit. */
export class RetryError extends Error {
  override readonly name = 'RetryError';
}

/**
 * Writes of RESP commands enqueued in the kv core but not yet committed, by key. A read-modify-
 * write command (INCR, APPEND, HSET…) builds on the projected state and compares the version
 * and bytes it built on, so many increments of one hot key chain inside one group commit
 * instead of failing each other's compares; if a write it built on fails, its compare fails
 * and it runs again.
 */
export class Projection {
  private readonly m = new Map<string, { base: Base | null; token: object }>();

  /** The projected state of `key`: a Base, null (deleted), or undefined (nothing pending). */
  get(key: string): Base | null | undefined {
    return this.m.get(key)?.base;
  }

  /** Records a pending write; returns a token for {@link clear}. */
  set(key: string, base: Base | null): object {
    const token = {};
    this.m.set(key, { base, token });
    return token;
  }

  /** Forgets a pending write once it committed or failed (unless a later one replaced it). */
  clear(key: string, token: object): void {
    if (this.m.get(key)?.token === token) this.m.delete(key);
  }

  /** Pending writes (for tests and INFO). */
  get size(): number {
    return this.m.size;
  }
}

/** What a {@link DurableTx} needs from the node. */
export interface DurableDeps {
  store: Store;
  policies: PolicyStore;
  projection: Projection;
  /** May `principal` read `key`'s secret value in clear. */
  canReadSecret(principal: Principal, key: string): boolean;
}

/**
 * One command's (or one MULTI/EXEC's) view of the durable keys: reads see the view (or, for a
 * write command, the projection of pending writes) plus this txn's own writes; {@link commit}
 * writes them as one kv txn that compares the version and bytes of every key read, so the
 * outcome is as if the commands ran alone (compare-and-swap).
 */
export class DurableTx implements Keyspace {
  readonly kind = 'durable';
  /** What each key read was (null = absent), for the commit's compares. */
  readonly reads = new Map<string, { version: number; stored: Uint8Array | null }>();
  readonly writes = new Map<string, PendingWrite>();
  readonly events = new Map<string, string>();
  private readonly now = Date.now();

  /**
   * @param projected read through the projection of pending writes (write commands only: a
   *   read-only command must never see a write that may still fail).
   */
  constructor(
    private readonly deps: DurableDeps,
    private readonly principal: Principal,
    private readonly projected = false,
  ) {}

  /** The most bytes a value may have (the node's --max-value-bytes), so a command can refuse before building a larger one. */
  get valueLimit(): number {
    return this.deps.store.maxValueBytes;
  }

  /** Whether any key was read (a read makes the outcome depend on the state). */
  get hasReads(): boolean {
    return this.reads.size > 0;
  }

  /** Whether a write needs a lease granted first (its enqueue then is not immediate). */
  get needsLease(): boolean {
    for (const w of this.writes.values()) if (typeof w.expiresAt === 'number' && w.expiresAt !== 0) return true;
    return false;
  }

  private base(key: string): Base | undefined {
    if (this.projected) {
      const p = this.deps.projection.get(key);
      if (p !== undefined) {
        if (!this.reads.has(key)) this.reads.set(key, p === null ? { version: 0, stored: null } : { version: p.version, stored: p.stored });
        return p ?? undefined;
      }
    }
    const kv = this.deps.store.get(key);
    if (!this.reads.has(key)) this.reads.set(key, kv === undefined ? { version: 0, stored: null } : { version: kv.version, stored: kv.value });
    if (kv === undefined) return undefined;
    let expiresAt = 0;
    if (kv.lease !== 0) {
      const ttl = this.leaseTtl(kv.lease);
      // A key whose lease ran out is gone for readers, even before the expiry loop deletes it.
      if (ttl === 0) return undefined;
      expiresAt = this.now + ttl * 1000;
    }
    return { stored: kv.value, version: kv.version, expiresAt, encrypted: kv.encrypted === true };
  }

  private leaseTtl(lease: number): number {
    try {
      return this.deps.store.timeToLive(lease).ttl;
    } catch {
      return 0;
    }
  }

  private clear(key: string, stored: Uint8Array, encrypted = false): Buffer {
    const p = this.deps.policies;
    const kv = encrypted ? { key, value: stored, encrypted: true as const } : { key, value: stored };
    if (!p.isSecretValue(kv)) return Buffer.from(stored.buffer, stored.byteOffset, stored.byteLength);
    const view = p.decodeForRead(kv, this.deps.canReadSecret(this.principal, key));
    if (view.redacted) throw new RespError(`NOPERM '${this.principal.name}' may not read the secret value of '${key}'`);
    const v = view.value as Uint8Array;
    return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
  }

  private current(key: string): { bytes: Buffer; expiresAt: number } | undefined {
    const w = this.writes.get(key);
    if (w !== undefined) {
      if (w.value === null) return undefined;
      return { bytes: this.clear(key, w.value), expiresAt: w.expiresAt === 'keep' ? (this.base(key)?.expiresAt ?? 0) : w.expiresAt };
    }
    const b = this.base(key);
    if (b === undefined) return undefined;
    return { bytes: this.clear(key, b.stored, b.encrypted === true), expiresAt: b.expiresAt };
  }

  get(key: string): Value | undefined {
    const c = this.current(key);
    if (c === undefined) return undefined;
    return { type: 'string', value: c.bytes };
  }

  expiresAt(key: string): number {
    return this.current(key)?.expiresAt ?? 0;
  }

  /** The TYPE of a durable key: `hash` when its value is a JSON object, else `string`. */
  typeOf(key: string): string {
    const c = this.current(key);
    if (c === undefined) return 'none';
    return decodeDurableHash(c.bytes) !== undefined ? 'hash' : 'string';
  }

  getHash(key: string): Map<string, Buffer> | undefined {
    const c = this.current(key);
    if (c === undefined) return undefined;
    const fields = decodeDurableHash(c.bytes);
    if (fields === undefined) throw new RespError(WRONGTYPE);
    return fields;
  }

  set(key: string, value: Value, expiresAt: number | 'keep', event: string): void {
    let bytes: Buffer;
    if (value.type === 'string') bytes = value.value;
    else if (value.type === 'hash') {
      if (value.value.size === 0) {
        this.delete(key, event);
        return;
      }
      bytes = encodeDurableHash(value.value);
    } else {
      throw new RespError(`ERR '${key}' is a durable key: lists, sets and sorted sets live in memory namespaces only (see docs/resp.md)`);
    }
    if (expiresAt !== 'keep' && expiresAt !== 0 && expiresAt <= Date.now()) {
      this.delete(key, 'expired');
      return;
    }
    if (expiresAt === 'keep') {
      // Keeping the TTL of a key that does not exist (or was deleted in this txn) means none.
      const prev = this.writes.get(key);
      if (prev !== undefined) expiresAt = prev.value === null ? 0 : prev.expiresAt;
    }
    const stored = toBeacon(() => this.deps.policies.checkWrite(key, bytes));
    if (stored.byteLength > this.deps.store.maxValueBytes) {
      throw new RespError(`ERR the value of '${key}' is ${stored.byteLength} bytes; the limit is ${this.deps.store.maxValueBytes} (--max-value-bytes)`);
    }
    this.writes.set(key, { value: stored, expiresAt });
    this.events.set(key, event);
  }

  setStrings(keys: readonly string[], values: readonly Buffer[], event: string): void {
    // Writes are only collected here and committed as one txn, so a failing key (a value over
    // the limit, a schema violation) throws before anything is written.
    for (let i = 0; i < keys.length; i++) this.set(keys[i] as string, { type: 'string', value: values[i] as Buffer }, 0, event);
  }

  delete(key: string, event = 'del'): boolean {
    const existed = this.current(key) !== undefined;
    if (!existed) return false;
    this.writes.set(key, { value: null, expiresAt: 0 });
    this.events.set(key, event);
    return true;
  }

  expire(key: string, expiresAt: number, event: string): boolean {
    const c = this.current(key);
    if (c === undefined) return false;
    if (expiresAt !== 0 && expiresAt <= Date.now()) {
      this.delete(key, 'del');
      return true;
    }
    const w = this.writes.get(key);
    const b = this.base(key);
    this.writes.set(key, { value: w?.value ?? (b?.stored as Uint8Array), expiresAt });
    this.events.set(key, event);
    return true;
  }

  /**
   * Writes the collected changes as one kv txn. Resolves with the revision and whether the
   * WATCHed keys (`watched`: modRevision compares) were unchanged; nothing is written otherwise.
   * @throws RetryError when a key read (not a watched one) changed; a BeaconError from the store.
   */
  async commit(watched: Map<string, number>, audit: AuditContext): Promise<{ revision: number; succeeded: boolean }> {
    if (this.writes.size === 0) return { revision: this.deps.store.revision, succeeded: true };
    const leases = new Map<number, number>(); // ttl seconds -> lease id
    const ops: TxnOp[] = [];
    const now = Date.now();
    for (const [key, w] of this.writes) {
      if (w.value === null) {
        ops.push({ type: 'delete', key });
        continue;
      }
      if (w.expiresAt === 'keep') {
        // etcd refuses ignoreLease on a missing key: a new key simply gets no lease.
        const exists = this.base(key) !== undefined;
        ops.push(exists ? { type: 'put', key, value: w.value, ignoreLease: true } : { type: 'put', key, value: w.value, lease: 0 });
        continue;
      }
      let lease = 0;
      if (w.expiresAt !== 0) {
        // A lease counts whole seconds: a TTL is rounded up to the next second (docs/resp.md).
        const ttl = Math.max(1, Math.ceil((w.expiresAt - now) / 1000));
        let id = leases.get(ttl);
        if (id === undefined) {
          id = (await this.deps.store.grantLease(ttl, 0, { ...audit, action: 'lease.grant' })).id;
          leases.set(ttl, id);
        }
        lease = id;
      }
      ops.push({ type: 'put', key, value: w.value, lease });
    }
    const compare: Compare[] = [];
    for (const [key, rev] of watched) compare.push({ key, target: 'modRevision', result: '=', operand: rev });
    for (const [key, r] of this.reads) {
      compare.push({ key, target: 'version', result: '=', operand: r.version });
      if (r.stored !== null) compare.push({ key, target: 'value', result: '=', operand: r.stored });
    }
    const meta: Record<string, string> = {};
    let custom = false;
    for (const [key, ev] of this.events) {
      meta[key] = ev;
      if (ev !== 'set' && ev !== 'del') custom = true;
    }
    // Project the writes so later read-modify-writes of these keys build on them (see Projection).
    const projection = this.deps.projection;
    const tokens: [string, object][] = [];
    for (const [key, w] of this.writes) {
      const prev = projection.get(key);
      const prevVersion = prev === undefined ? (this.deps.store.get(key)?.version ?? 0) : (prev?.version ?? 0);
      const base =
        w.value === null
          ? null
          : { stored: w.value, version: prevVersion + 1, expiresAt: w.expiresAt === 'keep' ? (prev?.expiresAt ?? this.base(key)?.expiresAt ?? 0) : w.expiresAt };
      tokens.push([key, projection.set(key, base)]);
    }
    let res;
    try {
      res = await this.deps.store.txn({ compare, success: ops, failure: [] }, { audit, ...(custom ? { meta: JSON.stringify({ resp: meta }) } : {}) });
    } finally {
      for (const [key, token] of tokens) projection.clear(key, token);
    }
    if (!res.succeeded) {
      for (const [key, rev] of watched) if ((this.deps.store.get(key)?.modRevision ?? 0) !== rev) return { revision: res.revision, succeeded: false };
      throw new RetryError('a key read by the command changed; retrying');
    }
    return { revision: res.revision, succeeded: true };
  }
}

/** Runs `f`, turning a Beacon error about bad input into an error reply of the same wording. */
function toBeacon<T>(f: () => T): T {
  try {
    return f();
  } catch (err) {
    if (err instanceof PermissionDeniedError) throw new RespError(`NOPERM ${err.message}`);
    if (err instanceof InvalidArgumentError || err instanceof BeaconError) throw new RespError(`ERR ${err.message}`);
    throw err;
  }
}
