/**
 * The SDK's resilience policies, free of I/O so they can be tested with a fake clock: a circuit
 * breaker per endpoint, exponential back-off with full jitter, and an abortable sleep.
 *
 * The numbers come from the seeds (`002_…` "Circuit Breaker": opens at 50 % failures over 10 s,
 * half-opens after 30 s) and the AWS Architecture Blog's "Exponential Backoff And Jitter" (full
 * jitter: a uniformly random delay between 0 and the exponential ceiling).
 */
import { UnavailableError } from '../src/errors.js';

/** A source of the current time in milliseconds; `Date.now` by default, a fake one in tests. */
export interface Clock {
  now(): number;
}

/** The wall clock. */
export const systemClock: Clock = { now: () => Date.now() };

/** Options of {@link CircuitBreaker}. Durations in milliseconds. */
export interface BreakerOptions {
  /** Failure ratio (0–1] over the window at or above which the breaker opens. Default 0.5 (the seeds' 50 %). */
  failureThreshold: number;
  /** Length of the sliding window the ratio is computed over. Default 10 000 (the seeds' 10 s). */
  windowMs: number;
  /** Fewest requests in the window before the ratio counts, so two failures out of three do not open it. Default 10. */
  minRequests: number;
  /** How long the breaker stays open before letting one probe through (half-open). Default 30 000 (the seeds' 30 s). */
  openMs: number;
}

/** The seeds' breaker: 50 % failures over 10 s (at least 10 requests) opens it for 30 s. */
export const DEFAULT_BREAKER: BreakerOptions = { failureThreshold: 0.5, windowMs: 10_000, minRequests: 10, openMs: 30_000 };

/** What a breaker lets through: `closed` everything, `open` nothing, `half-open` one probe at a time. */
export type BreakerState = 'closed' | 'open' | 'half-open';

/** Number of buckets the window is split into; a failure ages out with its bucket. */
const BUCKETS = 10;

/**
 * A circuit breaker for one endpoint. Callers ask {@link CircuitBreaker.tryAcquire} before a
 * request and report its outcome with {@link CircuitBreaker.success} or
 * {@link CircuitBreaker.failure}; a request that ended for a reason that says nothing about the
 * endpoint (the caller aborted) is handed back with {@link CircuitBreaker.release}.
 *
 * Closed: outcomes are counted in a sliding window of `windowMs` (ten buckets). When the window
 * holds at least `minRequests` outcomes and the failure ratio is at least `failureThreshold`, it
 * opens. Open: every request is refused for `openMs`. Then half-open: exactly one probe request
 * is let through; its success closes the breaker (with an empty window), its failure opens it
 * for another `openMs`.
 * @example
 * const b = new CircuitBreaker({ openMs: 5000 });
 * if (!b.tryAcquire()) throw new UnavailableError('circuit open');
 * try { await send(); b.success(); } catch (e) { b.failure(); throw e; }
 */
export class CircuitBreaker {
  readonly options: BreakerOptions;
  private state_: BreakerState = 'closed';
  private openedAt = 0;
  private probing = false;
  private readonly ok = new Array<number>(BUCKETS).fill(0);
  private readonly failed = new Array<number>(BUCKETS).fill(0);
  /** The absolute bucket index (time / bucket width) each slot last counted for. */
  private readonly slot = new Array<number>(BUCKETS).fill(-1);

  constructor(
    options: Partial<BreakerOptions> = {},
    private readonly clock: Clock = systemClock,
    /** Told of every state change (for logs and metrics). */
    private readonly onChange?: (state: BreakerState) => void,
  ) {
    this.options = { ...DEFAULT_BREAKER, ...options };
    const o = this.options;
    if (!(o.failureThreshold > 0 && o.failureThreshold <= 1)) throw new RangeError('failureThreshold must be in (0, 1]');
    if (!(o.windowMs > 0) || !(o.openMs >= 0) || !(o.minRequests >= 1)) throw new RangeError('windowMs, minRequests must be positive and openMs non-negative');
  }

  /** The state now; an open breaker whose `openMs` has passed reads as `half-open`. */
  get state(): BreakerState {
    if (this.state_ === 'open' && this.clock.now() - this.openedAt >= this.options.openMs) this.set('half-open');
    return this.state_;
  }

  /** Milliseconds until an open breaker half-opens (0 when it is not open). */
  get retryInMs(): number {
    return this.state === 'open' ? Math.max(0, this.openedAt + this.options.openMs - this.clock.now()) : 0;
  }

  /** Failures and total outcomes in the current window. */
  get window(): { failures: number; requests: number } {
    this.expire();
    let failures = 0;
    let requests = 0;
    for (let i = 0; i < BUCKETS; i++) {
      failures += this.failed[i] as number;
      requests += (this.failed[i] as number) + (this.ok[i] as number);
    }
    return { failures, requests };
  }

  /** Whether a request may go now, without taking the half-open probe slot. */
  get allows(): boolean {
    const s = this.state;
    return s === 'closed' || (s === 'half-open' && !this.probing);
  }

  /**
   * Asks to send one request. True when closed, or when half-open and no probe is in flight
   * (this request becomes the probe); false when open or a probe is already out.
   */
  tryAcquire(): boolean {
    const s = this.state;
    if (s === 'closed') return true;
    if (s === 'half-open' && !this.probing) {
      this.probing = true;
      return true;
    }
    return false;
  }

  /** Hands back a request that ended without saying anything about the endpoint (a caller's abort). */
  release(): void {
    this.probing = false;
  }

  /** Reports a request the endpoint answered properly (any status that is not its own failure). */
  success(): void {
    const s = this.state;
    if (s === 'open') return; // a request sent before the breaker opened proves little
    if (s === 'half-open') {
      // The probe got through: start over with a clean window.
      this.probing = false;
      this.ok.fill(0);
      this.failed.fill(0);
      this.slot.fill(-1);
      this.set('closed');
      return;
    }
    this.count(this.ok);
  }

  /** Reports a request the endpoint failed (unreachable, timed out, 5xx unavailable). */
  failure(): void {
    const s = this.state;
    if (s === 'half-open') {
      this.probing = false;
      this.trip();
      return;
    }
    if (s === 'open') return;
    this.count(this.failed);
    const { failures, requests } = this.window;
    if (requests >= this.options.minRequests && failures / requests >= this.options.failureThreshold) this.trip();
  }

  /**
   * Lets one probe through now instead of at the end of `openMs`: used when a health check has
   * just seen the endpoint ready again, so a short outage does not keep it fenced off for 30 s.
   */
  halfOpen(): void {
    if (this.state_ === 'open') this.set('half-open');
  }

  private trip(): void {
    this.openedAt = this.clock.now();
    this.set('open');
  }

  private set(state: BreakerState): void {
    if (this.state_ === state) return;
    this.state_ = state;
    this.onChange?.(state);
  }

  private bucketWidth(): number {
    return this.options.windowMs / BUCKETS;
  }

  /** Clears the buckets that have aged out of the window. */
  private expire(): void {
    const current = Math.floor(this.clock.now() / this.bucketWidth());
    for (let i = 0; i < BUCKETS; i++) {
      if ((this.slot[i] as number) <= current - BUCKETS) {
        this.ok[i] = 0;
        this.failed[i] = 0;
        this.slot[i] = -1;
      }
    }
  }

  /** Counts one outcome in the current bucket. Stale buckets are cleared when the window is read, not here: this runs on every request. */
  private count(into: number[]): void {
    const abs = Math.floor(this.clock.now() / this.bucketWidth());
    const i = abs % BUCKETS;
    if (this.slot[i] !== abs) {
      this.ok[i] = 0;
      this.failed[i] = 0;
      this.slot[i] = abs;
    }
    into[i] = (into[i] as number) + 1;
  }
}

/** Options of the retry policy. Durations in milliseconds. */
export interface RetryOptions {
  /** Retries after the first attempt (so `retries + 1` attempts at most). Default 2 (the seeds' "Node connection: 2 retries"). */
  retries: number;
  /** Ceiling of the first back-off. Default 100. */
  baseDelayMs: number;
  /** Largest ceiling of any back-off. Default 2000. */
  maxDelayMs: number;
}

/** Default retry policy: 2 retries, full-jitter back-off from 100 ms up to 2 s. */
export const DEFAULT_RETRY: RetryOptions = { retries: 2, baseDelayMs: 100, maxDelayMs: 2000 };

/**
 * The delay before retry number `attempt` (0 for the first retry) with full jitter: uniformly
 * random in `[0, min(maxDelayMs, baseDelayMs · 2^attempt))`. Full jitter spreads the retries of
 * many clients that failed at the same instant (a node restart) instead of synchronising them.
 * `random` returns a number in [0, 1) (`Math.random` by default).
 */
export function backoffDelay(attempt: number, opts: Pick<RetryOptions, 'baseDelayMs' | 'maxDelayMs'>, random: () => number = Math.random): number {
  const ceiling = Math.min(opts.maxDelayMs, opts.baseDelayMs * 2 ** Math.min(Math.max(0, attempt), 30));
  return Math.floor(random() * ceiling);
}

/**
 * Resolves after `ms` milliseconds, or rejects with the signal's reason when it aborts first.
 * The timer does not keep a Node process alive on its own when `unref` is set.
 */
export function sleep(ms: number, signal?: AbortSignal, opts: { unref?: boolean } = {}): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = (): void => {
      clearTimeout(t);
      reject(signal?.reason);
    };
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    if (opts.unref) unrefTimer(t);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Lets a Node timer not hold the process open (no-op in browsers, whose timers are numbers). */
export function unrefTimer(t: unknown): void {
  (t as { unref?: () => void }).unref?.();
}

/** The error a request gets when every endpoint's breaker is open: fail fast, say when to retry. */
export function circuitOpenError(endpoints: readonly string[], retryInMs: number): UnavailableError {
  const which = endpoints.length === 1 ? `Beacon at ${endpoints[0]}` : `all ${endpoints.length} Beacon endpoints (${endpoints.join(', ')})`;
  return new UnavailableError(`circuit breaker open for ${which} after repeated failures; next probe in ${Math.ceil(retryInMs)} ms`, {
    details: { reason: 'circuit_open', endpoints: [...endpoints], retryInMs: Math.ceil(retryInMs) },
  });
}
