/**
 * The cache tier over HTTP (`/v1/cache/*`): get, set with a TTL, delete, and `getOrLoad`, which
 * runs your loader on a miss and caches its answer, with one load per key at a time in this
 * client however many callers ask (single-flight). Reach it as `client.cache`. See docs/cache.md.
 */
import { ErrorCode, type BeaconError } from '../src/errors.js';
import { SLOT_COUNT, keySlot } from '../src/cache/keyslot.js';
import type { HttpTransport } from './transport.js';
import type { CallOptions, ClusterStatus, WriteOptions } from './types.js';
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

/** How long the SDK uses a cache cluster's slot map before it reads it again, in ms. */
export const TOPOLOGY_REFRESH_MS = 10_000;
/** After the node a slot map named did not answer, how soon the SDK reads the map again, in ms. */
export const FAILOVER_REFRESH_MS = 1_000;

/**
 * Cache operations; reach them as `client.cache`. Every method throws the server's typed errors.
 *
 * In a cache cluster (several nodes on PostgreSQL, docs/operations/cache-cluster.md) each call
 * goes first to the node that serves the key's slot, when that node is one of the client's
 * endpoints: the slot map comes from `GET /v1/cluster`, read in the background and again every
 * {@link TOPOLOGY_REFRESH_MS}, within {@link FAILOVER_REFRESH_MS} once the owner it named did
 * not answer, and at once when another node served the key. Any other node forwards the
 * request, so a stale map costs a hop, never a wrong answer.
 */
export class CacheClient {
  private readonly loads = new Map<string, Promise<CacheEntry>>();
  /** Per slot, the index in {@link ownerUrls} of its primary (0xffff: unknown). */
  private owners: Uint16Array | undefined;
  private ownerUrls: string[] = [];
  /** The base URL of each node id in the map. */
  private nodeUrls = new Map<string, string>();
  private topologyAt = -Infinity;
  private topologyLoading = false;
  /** Whether to route by slot; off once the server shows it has no cache cluster. */
  private routing = true;

  constructor(private readonly http: HttpTransport) {}

  /** The base URL of the node that serves `key`'s slot, as last read; starts a refresh when stale. */
  private ownerOf(key: string): string | undefined {
    if (!this.routing) return undefined;
    if (Date.now() - this.topologyAt > TOPOLOGY_REFRESH_MS) void this.refreshTopology();
    const i = this.owners?.[keySlot(key)];
    return i === undefined || i === 0xffff ? undefined : this.ownerUrls[i];
  }

  /** Reads the slot map from `GET /v1/cluster` (never throws: without it, calls go anywhere). */
  private async refreshTopology(): Promise<void> {
    if (this.topologyLoading) return;
    this.topologyLoading = true;
    this.topologyAt = Date.now();
    try {
      const res = await this.http.request<ClusterStatus>('GET', '/v1/cluster', { retries: 0 });
      const slots = res.body.cacheSlots;
      if (slots === undefined) {
        this.routing = false; // a single node, or no RESP listeners: nothing to route
        return;
      }
      const urls = new Map(res.body.nodes.map((n) => [n.id, n.url]));
      const ownerUrls: string[] = [];
      const index = new Map<string, number>();
      const owners = new Uint16Array(SLOT_COUNT).fill(0xffff);
      for (const [start, end, id] of slots) {
        const url = urls.get(id);
        if (url === undefined) continue;
        let i = index.get(url);
        if (i === undefined) index.set(url, (i = ownerUrls.push(url) - 1));
        owners.fill(i, Math.max(0, start), Math.min(SLOT_COUNT, end + 1));
      }
      this.owners = owners;
      this.ownerUrls = ownerUrls;
      this.nodeUrls = urls;
    } catch {
      // keep the map we had; the next call after TOPOLOGY_REFRESH_MS tries again
    } finally {
      this.topologyLoading = false;
    }
  }

  /**
   * Reads the map again when it proved stale: the owner it named did not answer (another
   * endpoint did: the owner may have left the ring; read again within
   * {@link FAILOVER_REFRESH_MS}, not on every such call while the ring catches up), or it
   * answered but another node served the key (its id is in `x-cache-node`: the slot moved, and
   * the node we asked forwarded it).
   */
  private answeredBy(res: { headers: Headers; endpoint: string }, owner: string | undefined): void {
    if (owner === undefined) return;
    if (res.endpoint !== owner) {
      this.topologyAt = Math.min(this.topologyAt, Date.now() - TOPOLOGY_REFRESH_MS + FAILOVER_REFRESH_MS);
      return;
    }
    const node = res.headers.get('x-cache-node');
    if (node !== null && this.nodeUrls.get(node) !== owner) this.topologyAt = -Infinity;
  }

  /**
   * Reads `key` (the node reads through to the namespace's origin on a miss). Resolves undefined
   * on a miss (including while the origin's circuit breaker is open).
   * @throws InvalidArgumentError when `key` is not in a cache namespace or holds no string.
   */
  async get(key: string, opts: CallOptions = {}): Promise<CacheEntry | undefined> {
    try {
      const prefer = this.ownerOf(key);
      const res = await this.http.request<{ key: string; value?: string; encoding?: string; ttl: number }>('GET', `/v1/cache/${encodeKeyPath(key)}`, {
        signal: opts.signal,
        timeoutMs: opts.timeoutMs,
        ...(prefer !== undefined ? { prefer } : {}),
      });
      this.answeredBy(res, prefer);
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
    const prefer = this.ownerOf(key);
    const res = await this.http.request<{ ttl: number }>('PUT', `/v1/cache/${encodeKeyPath(key)}`, {
      body,
      signal: opts.signal,
      timeoutMs: opts.timeoutMs,
      idempotent: opts.retry ?? true,
      ...(prefer !== undefined ? { prefer } : {}),
    });
    this.answeredBy(res, prefer);
    return { ttl: res.body.ttl };
  }

  /** Removes `key`; resolves whether it was there. */
  async delete(key: string, opts: WriteOptions = {}): Promise<boolean> {
    const prefer = this.ownerOf(key);
    const res = await this.http.request<{ deleted: boolean }>('DELETE', `/v1/cache/${encodeKeyPath(key)}`, {
      signal: opts.signal,
      timeoutMs: opts.timeoutMs,
      idempotent: opts.retry ?? true,
      ...(prefer !== undefined ? { prefer } : {}),
    });
    this.answeredBy(res, prefer);
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
