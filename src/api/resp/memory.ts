/**
 * The memory keyspace: RESP commands over the cache tier (src/cache). Reads use the tier's
 * `lookup` (hit/miss, LRU/LFU touch) or `lookupWrite` for write commands; values are mutated in
 * place and reported with `modified`. Every change is recorded for keyspace notifications,
 * WATCH and the append-only file.
 */
import { OutOfMemoryError, type CacheTier, type CacheValue, type SetOptions } from '../../cache/index.js';
import { RespError, WRONGTYPE, type Keyspace } from './keyspace.js';

/** A memory key's change made by one command: the key and its keyspace event name. */
export interface MemoryChange {
  key: string;
  event: string;
}

/** Options of a write that keeps the key's TTL (never mutated). */
const KEEP_TTL: SetOptions = Object.freeze({ keepTtl: true });
/** Options of a write without a TTL: the namespace's default TTL if it has one (never mutated). */
const DEFAULT_TTL: SetOptions = Object.freeze({});

/** {@link Keyspace} over a {@link CacheTier}. One instance per server; `begin` resets it per command. */
export class MemoryKeyspace implements Keyspace {
  readonly kind = 'memory';
  /** A read command: lookups count hits and misses. */
  reading = false;
  /** Changes made since {@link begin}. */
  changes: MemoryChange[] = [];
  /** Record a `new` event when a write creates a key (keyspace notifications with the `n` class). */
  notifyNew = false;
  /**
   * The command may fetch a miss from its namespace's origin ({@link readThrough}): set by the
   * server for one command outside MULTI on the slot's primary, cleared by {@link begin}.
   */
  fetching = false;

  constructor(readonly tier: CacheTier) {}

  /** Starts a command: `reading` for a read-only command. */
  begin(reading: boolean): void {
    this.reading = reading;
    // The array is reused while its consumer empties it in place (the one-command path).
    if (this.changes.length !== 0) this.changes = [];
    this.fetching = false;
  }

  /**
   * After a miss of `key` (just counted by {@link get}): the value fetched from its namespace's
   * origin, stored with the origin's TTL (docs/cache.md, "Read-through"), or undefined when it
   * is not fetched at all — no origin, or inside MULTI/EXEC or on a replica, where a command
   * must not wait. The promise resolves undefined for a miss at the origin (404, a failure, an
   * open circuit breaker) and never rejects.
   */
  readThrough(key: string): Promise<CacheValue | undefined> | undefined {
    if (!this.fetching || this.tier.namespaceOf(key)?.origin === undefined) return undefined;
    return this.tier.fetch(key).then((r) => (r.outcome === 'miss' ? undefined : r.value));
  }

  get(key: string): CacheValue | undefined {
    return this.reading ? this.tier.lookup(key) : this.tier.lookupWrite(key);
  }

  expiresAt(key: string): number {
    const t = this.tier.expireTimeMs(key);
    return t < 0 ? 0 : t;
  }

  typeOf(key: string): string {
    return this.tier.typeOf(key) ?? 'none';
  }

  getHash(key: string): Map<string, Buffer> | undefined {
    const v = this.get(key);
    if (v === undefined) return undefined;
    if (v.type !== 'hash') throw new RespError(WRONGTYPE);
    return v.value;
  }

  set(key: string, value: CacheValue, expiresAt: number | 'keep', event: string): void {
    if (this.notifyNew && !this.tier.contains(key)) this.changes.push({ key, event: 'new' });
    if (expiresAt === 'keep') {
      // A collection mutated in place is the stored object itself; a string is always a copy.
      const cur = value.type === 'string' ? undefined : this.tier.peek(key);
      if (cur !== undefined && cur.type === value.type && cur.value === value.value) this.tier.modified(key);
      else this.tier.set(key, value, KEEP_TTL);
    } else if (expiresAt === 0) {
      // A write without a TTL gets the namespace's default TTL, if it has one (as over HTTP),
      // and no TTL otherwise: the tier's rule for a set without expireAtMs.
      this.tier.set(key, value, DEFAULT_TTL);
    } else this.tier.set(key, value, { expireAtMs: expiresAt });
    this.changes.push({ key, event });
  }

  setStrings(keys: readonly string[], values: readonly Buffer[], event: string): void {
    const n = keys.length;
    const wrapped = new Array<CacheValue>(n);
    for (let i = 0; i < n; i++) wrapped[i] = { type: 'string', value: values[i] as Buffer };
    // Whether each key is new is decided before anything is written (a key given twice is new
    // once); the tier then writes all keys or, out of memory, none.
    let created: boolean[] | undefined;
    if (this.notifyNew) {
      created = new Array<boolean>(n);
      const seen = new Set<string>();
      for (let i = 0; i < n; i++) {
        const key = keys[i] as string;
        created[i] = !seen.has(key) && !this.tier.contains(key);
        seen.add(key);
      }
    }
    this.tier.setMany(keys, wrapped, DEFAULT_TTL);
    // Redis's order: each key's `new` (if it was created), then its `set`.
    for (let i = 0; i < n; i++) {
      const key = keys[i] as string;
      if (created?.[i] === true) this.changes.push({ key, event: 'new' });
      this.changes.push({ key, event });
    }
  }

  delete(key: string, event = 'del'): boolean {
    const had = this.tier.delete(key);
    if (had) this.changes.push({ key, event });
    return had;
  }

  expire(key: string, expiresAt: number, event: string): boolean {
    const ok = this.tier.expireAt(key, expiresAt === 0 ? null : expiresAt);
    if (ok) this.changes.push({ key, event });
    return ok;
  }
}

/** Whether `err` is the tier's out-of-memory refusal. */
export function isOutOfMemory(err: unknown): err is OutOfMemoryError {
  return err instanceof OutOfMemoryError;
}
