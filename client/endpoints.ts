/**
 * The set of Beacon endpoints a client may talk to: which one requests go to (sticky until it
 * fails), a circuit breaker per endpoint, and `/readyz` health checks of the endpoints that
 * failed, so that they are used again as soon as they are ready.
 */
import { CircuitBreaker, circuitOpenError, systemClock, unrefTimer, type BreakerOptions, type BreakerState, type Clock } from './resilience.js';

/** Options of the health checks. Durations in milliseconds. */
export interface HealthCheckOptions {
  /** How often an endpoint marked down is probed. Default 1000. */
  intervalMs: number;
  /** How long one probe may take. Default 1000. */
  timeoutMs: number;
  /** The path probed; 200 means ready. Default `/readyz` (backend reachable, view caught up). */
  path: string;
}

/** Default health checks: `/readyz` every second while an endpoint is down. */
export const DEFAULT_HEALTH_CHECK: HealthCheckOptions = { intervalMs: 1000, timeoutMs: 1000, path: '/readyz' };

/** One endpoint's state, as {@link EndpointPool.status} reports it. */
export interface EndpointStatus {
  url: string;
  /** False after a failure, until a request or a health check succeeds. */
  healthy: boolean;
  /** The breaker's state (`closed` when breakers are off). */
  breaker: BreakerState;
  /** Whether requests go here first. */
  current: boolean;
}

/** Internal: one endpoint. */
export interface Endpoint {
  readonly url: string;
  readonly index: number;
  readonly breaker: CircuitBreaker | undefined;
  healthy: boolean;
}

/** Options of {@link EndpointPool}. */
export interface EndpointPoolOptions {
  /** Breaker options, or false for no breaker. */
  breaker?: Partial<BreakerOptions> | false;
  /** Health-check options, or false for none (endpoints are then only marked up by a successful request). */
  healthCheck?: Partial<HealthCheckOptions> | false;
  clock?: Clock;
  /** The fetch used by health checks. */
  fetch?: typeof fetch;
  /** Told when an endpoint goes down or up, or its breaker changes state. */
  onEvent?: (event: { url: string; type: 'down' | 'up' | BreakerState }) => void;
}

/**
 * Chooses endpoints for requests and streams. Requests stick to one endpoint (the "current"
 * one) while it works; after a failure the next healthy endpoint whose breaker admits a request
 * is used, and it becomes current once a request there succeeds (as etcd's client pins an
 * endpoint). Endpoints marked down are probed with `GET /readyz` until they answer 200; a passing
 * probe also half-opens an open breaker, so that a short outage does not fence an endpoint off
 * for the whole open period.
 */
export class EndpointPool {
  readonly endpoints: readonly Endpoint[];
  private currentIndex = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private checking = false;
  private closed = false;
  private readonly health: HealthCheckOptions | undefined;
  private readonly fetchFn: typeof fetch;

  constructor(
    urls: readonly string[],
    private readonly opts: EndpointPoolOptions = {},
  ) {
    const clock = opts.clock ?? systemClock;
    this.endpoints = urls.map((url, index) => ({
      url,
      index,
      healthy: true,
      breaker: opts.breaker === false ? undefined : new CircuitBreaker(opts.breaker ?? {}, clock, (state) => opts.onEvent?.({ url, type: state })),
    }));
    this.health = opts.healthCheck === false ? undefined : { ...DEFAULT_HEALTH_CHECK, ...(opts.healthCheck ?? {}) };
    this.fetchFn = opts.fetch ?? ((input, init) => fetch(input, init));
  }

  /**
   * The endpoint whose base URL is `url` (a trailing `/` ignored), when it is healthy and its
   * breaker admits a request now; undefined otherwise (the caller then picks as usual).
   */
  acquirePreferred(url: string): Endpoint | undefined {
    const want = url.replace(/\/+$/, '');
    const e = this.endpoints.find((x) => x.url.replace(/\/+$/, '') === want);
    if (e === undefined || !e.healthy) return undefined;
    return (e.breaker?.tryAcquire() ?? true) ? e : undefined;
  }

  /** The endpoint requests go to first. */
  get current(): Endpoint {
    return this.endpoints[this.currentIndex] as Endpoint;
  }

  /** Every endpoint's state. */
  status(): EndpointStatus[] {
    return this.endpoints.map((e) => ({ url: e.url, healthy: e.healthy, breaker: e.breaker?.state ?? 'closed', current: e.index === this.currentIndex }));
  }

  /** Endpoints in the order they should be tried: current first, then the rest in rotation. */
  private rotation(): Endpoint[] {
    const n = this.endpoints.length;
    const out: Endpoint[] = [];
    for (let i = 0; i < n; i++) out.push(this.endpoints[(this.currentIndex + i) % n] as Endpoint);
    return out;
  }

  /**
   * Picks the endpoint for one request attempt among those not in `tried`, taking a slot from
   * its breaker (release it with {@link EndpointPool.release}, or report the outcome). Healthy
   * endpoints come first; an endpoint marked down is still tried when no healthy one is left.
   * Returns undefined when every endpoint has been tried.
   * @throws UnavailableError (`details.reason: "circuit_open"`) when every untried endpoint's
   *   breaker refuses: the call fails fast instead of waiting on nodes known to be failing.
   */
  acquire(tried: ReadonlySet<Endpoint>): Endpoint | undefined {
    // The common case, one endpoint tried first: no arrays to build.
    if (tried.size === 0 && this.endpoints.length === 1) {
      const only = this.endpoints[0] as Endpoint;
      if (only.breaker?.tryAcquire() ?? true) return only;
    }
    const candidates = this.rotation().filter((e) => !tried.has(e));
    if (candidates.length === 0) return undefined;
    for (const healthy of [true, false]) {
      for (const e of candidates) {
        if (e.healthy === healthy && (e.breaker?.tryAcquire() ?? true)) return e;
      }
    }
    const retryInMs = Math.min(...candidates.map((e) => e.breaker?.retryInMs ?? 0));
    throw circuitOpenError(
      candidates.map((e) => e.url),
      retryInMs,
    );
  }

  /**
   * Picks the endpoint for a long-lived stream (a watch socket), skipping `tried`: healthy
   * endpoints with an admitting breaker first, then healthy ones, then any. Streams do not take
   * breaker slots: their reconnects are paced by their own back-off.
   */
  pickForStream(tried: ReadonlySet<Endpoint> = new Set()): Endpoint | undefined {
    const candidates = this.rotation().filter((e) => !tried.has(e));
    return (
      candidates.find((e) => e.healthy && (e.breaker?.allows ?? true)) ?? candidates.find((e) => e.healthy) ?? candidates.find((e) => e.breaker?.allows ?? true) ?? candidates[0]
    );
  }

  /** Hands back a breaker slot of a request that ended without a verdict on the endpoint (a caller's abort). */
  release(e: Endpoint): void {
    e.breaker?.release();
  }

  /** Reports a request the endpoint answered: it becomes current, healthy, and its breaker counts a success. */
  succeeded(e: Endpoint): void {
    e.breaker?.success();
    this.markUp(e);
    this.currentIndex = e.index;
  }

  /** Reports a request the endpoint failed: its breaker counts a failure and it is marked down. */
  failed(e: Endpoint): void {
    e.breaker?.failure();
    this.markDown(e);
  }

  /** Marks an endpoint down (health checks start) and moves "current" to the next endpoint. */
  markDown(e: Endpoint): void {
    if (e.healthy) {
      e.healthy = false;
      this.opts.onEvent?.({ url: e.url, type: 'down' });
    }
    if (e.index === this.currentIndex && this.endpoints.length > 1) {
      const next = this.rotation().find((x) => x.healthy);
      if (next !== undefined) this.currentIndex = next.index;
    }
    this.schedule();
  }

  /** Marks an endpoint up (a request or a probe succeeded). */
  markUp(e: Endpoint): void {
    if (e.healthy) return;
    e.healthy = true;
    this.opts.onEvent?.({ url: e.url, type: 'up' });
  }

  /** Stops the health checks. */
  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private schedule(): void {
    if (this.health === undefined || this.closed || this.timer !== undefined || this.checking) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.check();
    }, this.health.intervalMs);
    // A client must never keep a process alive just to probe a dead node.
    unrefTimer(this.timer);
  }

  /** Probes every endpoint marked down once, then schedules the next round while any stays down. */
  private async check(): Promise<void> {
    const health = this.health;
    if (health === undefined || this.closed) return;
    this.checking = true;
    try {
      await Promise.all(
        this.endpoints
          .filter((e) => !e.healthy)
          .map(async (e) => {
            const ctl = new AbortController();
            const t = setTimeout(() => ctl.abort(), health.timeoutMs);
            unrefTimer(t);
            try {
              const res = await this.fetchFn(e.url + health.path, { signal: ctl.signal, headers: { accept: 'application/json' } });
              await res.arrayBuffer().catch(() => undefined);
              if (res.ok && !this.closed) {
                this.markUp(e);
                e.breaker?.halfOpen();
              }
            } catch {
              // still down
            } finally {
              clearTimeout(t);
            }
          }),
      );
    } finally {
      this.checking = false;
    }
    if (this.endpoints.some((e) => !e.healthy)) this.schedule();
  }
}
