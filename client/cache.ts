/**
 * The cache tier over HTTP (`/v1/cache/*`): get, set with a TTL, delete, and `getOrLoad`, which
 * runs your loader on a miss and caches its answer, with one load per key at a time in this
 * client however many callers ask (single-flight). Reach it as `client.cache`. See docs/cache.md.
 */
import { ErrorCode, type BeaconError } from '../src/errors.js';
import type { HttpTransport } from './transport.js';
import type { CallOptions, WriteOptions } from './types.js';
import { encodeKeyPath, tryUtf8, valueFromWire, valueToWire, type ValueInput } from './values.js';

/** A value read from the cache. */
export interface CacheEntry {
  key: string;
  /** The value's bytes. */
  bytes: Uint8Array;
  /** The value as text when it is UTF-8. */
  text: string | undefined;
  /** Seconds left to live, -1 for no expiry. */
  ttl: number;
  /** `hit`: it was in memory; `miss`: the node fetched it from the namespace's origin just now. */
  cache: 'hit' | 'miss';
}

/** Options of {@link CacheClient.set} and {@link CacheClient.getOrLoad}. */
export interface CacheSetOptions extends WriteOptions {
  /** Seconds to live; default the namespace's TTL (or none). */
  ttl?: number;
}

/** Cache operations; reach them as `client.cache`. Every method throws the server's typed errors. */
export class CacheClient {
  private readonly loads = new Map<string, Promise<CacheEntry>>();

  constructor(private readonly http: HttpTransport) {}

  /**
   * Reads `key` (the node reads through to the namespace's origin on a miss). Resolves undefined
   * on a miss (including while the origin's circuit breaker is open).
   * @throws InvalidArgumentError when `key` is not in a cache namespace or holds no string.
   */
  async get(key: string, opts: CallOptions = {}): Promise<CacheEntry | undefined> {
    try {
      const res = await this.http.request<{ key: string; value?: string; encoding?: string; ttl: number }>('GET', `/v1/cache/${encodeKeyPath(key)}`, {
        signal: opts.signal,
        timeoutMs: opts.timeoutMs,
      });
      const v = valueFromWire(res.body.value, res.body.encoding);
      return { key, bytes: v.bytes, text: v.text, ttl: res.body.ttl, cache: res.headers.get('x-cache') === 'hit' ? 'hit' : 'miss' };
    } catch (err) {
      if ((err as BeaconError).code === ErrorCode.NotFound) return undefined;
      throw err;
    }
  }

  /**
   * Stores `value` under `key` with `ttl` seconds to live. Resolves with the TTL set (-1: none).
   * @throws InvalidArgumentError for a key outside cache namespaces or a value the namespace refuses;
   *   UnavailableError when the node is out of memory under `noeviction`.
   */
  async set(key: string, value: ValueInput, opts: CacheSetOptions = {}): Promise<{ ttl: number }> {
    const body: Record<string, unknown> = { ...valueToWire(value) };
    if (opts.ttl !== undefined) body.ttl = opts.ttl;
    // SET is idempotent: retrying it is harmless.
    const res = await this.http.request<{ ttl: number }>('PUT', `/v1/cache/${encodeKeyPath(key)}`, {
      body,
      signal: opts.signal,
      timeoutMs: opts.timeoutMs,
      idempotent: opts.retry ?? true,
    });
    return { ttl: res.body.ttl };
  }

  /** Removes `key`; resolves whether it was there. */
  async delete(key: string, opts: WriteOptions = {}): Promise<boolean> {
    const res = await this.http.request<{ deleted: boolean }>('DELETE', `/v1/cache/${encodeKeyPath(key)}`, {
      signal: opts.signal,
      timeoutMs: opts.timeoutMs,
      idempotent: opts.retry ?? true,
    });
    return res.body.deleted;
  }

  /**
   * Cache-aside in one call: the cached value of `key`, or on a miss the value of `loader()`,
   * stored with `ttl` and returned. Concurrent calls for one key share one `get` and one
   * `loader()` run (single-flight). When storing fails (node down, out of memory) the loaded
   * value is still returned: the cache is an optimisation, not the source of truth.
   * @throws what `loader` throws (nothing is cached then).
   */
  getOrLoad(key: string, loader: () => Promise<ValueInput> | ValueInput, opts: CacheSetOptions = {}): Promise<CacheEntry> {
    const running = this.loads.get(key);
    if (running !== undefined) return running;
    const p = (async (): Promise<CacheEntry> => {
      let cached: CacheEntry | undefined;
      try {
        cached = await this.get(key, opts);
      } catch (err) {
        if ((err as BeaconError).code === ErrorCode.InvalidArgument) throw err;
        cached = undefined; // the cache is unreachable: fall back to the loader
      }
      if (cached !== undefined) return cached;
      const value = await loader();
      const bytes = typeof value === 'string' ? new TextEncoder().encode(value) : value;
      let ttl = opts.ttl ?? -1;
      try {
        ttl = (await this.set(key, value, opts)).ttl;
      } catch {
        // not cached this time; the caller still gets the value
      }
      return { key, bytes, text: typeof value === 'string' ? value : tryUtf8(value), ttl, cache: 'miss' };
    })().finally(() => this.loads.delete(key));
    this.loads.set(key, p);
    return p;
  }
}
