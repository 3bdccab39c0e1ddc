/**
 * Read-through from a namespace's HTTP origin: single-flight per key, a timeout, and a circuit
 * breaker (seed 002 "Circuit Breaker": opens at 50 % failures over 10 s, half-opens after 30 s,
 * falls back to a cache miss).
 */
import type { BreakerOptions, OriginPolicy } from './types.js';

/** Default origin timeout, ms. */
export const DEFAULT_ORIGIN_TIMEOUT_MS = 1000;
/** Largest origin body stored, bytes (the value limit of the node applies too). */
export const MAX_ORIGIN_BODY_BYTES = 1024 * 1024;

/** The state of a breaker (Hystrix / resilience4j terms). */
export type BreakerState = 'closed' | 'open' | 'half-open';

/**
 * A circuit breaker over a rolling window of outcomes. Closed: every request goes; when at
 * least `minRequests` finished in the window and the failure share reaches `failureRatio`, it
 * opens. Open: requests are refused until `halfOpenAfterMs` passed; then one trial request is
 * let through (half-open): success closes it (the window restarts), failure opens it again.
 */
export class CircuitBreaker {
  private outcomes: { at: number; ok: boolean }[] = [];
  private stateValue: BreakerState = 'closed';
  private openedAt = 0;
  private trial = false;
  readonly failureRatio: number;
  readonly windowMs: number;
  readonly minRequests: number;
  readonly halfOpenAfterMs: number;

  constructor(
    opts: BreakerOptions = {},
    private readonly now: () => number = Date.now,
  ) {
    this.failureRatio = opts.failureRatio ?? 0.5;
    this.windowMs = opts.windowMs ?? 10_000;
    this.minRequests = opts.minRequests ?? 20;
    this.halfOpenAfterMs = opts.halfOpenAfterMs ?? 30_000;
  }

  /** The state now (an open breaker whose wait passed reads as half-open). */
  get state(): BreakerState {
    if (this.stateValue === 'open' && this.now() - this.openedAt >= this.halfOpenAfterMs) return 'half-open';
    return this.stateValue;
  }

  /**
   * Asks to send a request. @returns undefined when it may go (call {@link record} with its
   * outcome), else why not.
   */
  acquire(): string | undefined {
    const s = this.state;
    if (s === 'closed') return undefined;
    if (s === 'open') {
      const left = Math.ceil((this.halfOpenAfterMs - (this.now() - this.openedAt)) / 1000);
      return `the origin's circuit breaker is open (too many failures); it lets a trial request through in ${left}s`;
    }
    if (this.trial) return "the origin's circuit breaker is half-open and its trial request is in flight";
    this.stateValue = 'half-open';
    this.trial = true;
    return undefined;
  }

  /** Records the outcome of a request allowed by {@link acquire}. */
  record(ok: boolean): void {
    const now = this.now();
    if (this.stateValue === 'half-open') {
      this.trial = false;
      if (ok) {
        this.stateValue = 'closed';
        this.outcomes = [];
      } else {
        this.stateValue = 'open';
        this.openedAt = now;
      }
      return;
    }
    if (this.stateValue === 'open') return; // a straggler from before it opened
    this.outcomes.push({ at: now, ok });
    const from = now - this.windowMs;
    let drop = 0;
    while (drop < this.outcomes.length && (this.outcomes[drop] as { at: number }).at < from) drop++;
    if (drop > 0) this.outcomes.splice(0, drop);
    if (this.outcomes.length < this.minRequests) return;
    let failed = 0;
    for (const o of this.outcomes) if (!o.ok) failed++;
    if (failed / this.outcomes.length >= this.failureRatio) {
      this.stateValue = 'open';
      this.openedAt = now;
      this.outcomes = [];
    }
  }
}

/** The outcome of one origin fetch. */
export type FetchOutcome = { ok: true; body: Buffer } | { ok: false; reason: string; failure: boolean };

/**
 * Expands an origin URL template for `key` in the namespace `prefix`: `{key}` is the full key,
 * `{id}` the key without the prefix, both URL-encoded. Returns undefined when a value substituted
 * for a placeholder is `.` or `..` (empty counts too, for `{id}`): a URL parser resolves those
 * as path segments (even percent-encoded, per the WHATWG URL standard), so the request would
 * leave the template's path; such keys are never fetched from the origin.
 */
export function originUrl(template: string, prefix: string, key: string): string | undefined {
  const id = key.startsWith(prefix) ? key.slice(prefix.length) : key;
  const dotSegment = (v: string): boolean => v === '.' || v === '..';
  if ((template.includes('{key}') && dotSegment(key)) || (template.includes('{id}') && (dotSegment(id) || id === ''))) return undefined;
  return template.replaceAll('{key}', encodeURIComponent(key)).replaceAll('{id}', encodeURIComponent(id));
}

/**
 * Fetches `url` with a timeout. 200 → the body; 404 → a miss that is not a failure (the origin
 * answered: there is no such value); anything else, a timeout or a connection error → a failure.
 */
export async function fetchOrigin(url: string, timeoutMs: number, maxBytes: number): Promise<FetchOutcome> {
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), timeoutMs);
  try {
    const res = await fetch(url, { signal: ctl.signal, redirect: 'error', headers: { accept: '*/*' } });
    if (res.status === 404) {
      await res.body?.cancel();
      return { ok: false, reason: 'the origin has no value for this key (404)', failure: false };
    }
    if (res.status !== 200) {
      await res.body?.cancel();
      return { ok: false, reason: `the origin answered ${res.status}`, failure: true };
    }
    const body = Buffer.from(await res.arrayBuffer());
    if (body.length > maxBytes) return { ok: false, reason: `the origin's value is larger than ${maxBytes} bytes`, failure: true };
    return { ok: true, body };
  } catch (err) {
    if (ctl.signal.aborted) return { ok: false, reason: `the origin did not answer within ${timeoutMs} ms`, failure: true };
    const cause = (err as { cause?: { code?: string } }).cause?.code;
    return { ok: false, reason: `the origin could not be reached${cause !== undefined ? ` (${cause})` : ''}`, failure: true };
  } finally {
    clearTimeout(timer);
  }
}

/** One origin's breaker and counters, kept per namespace prefix + URL. */
export interface OriginState {
  breaker: CircuitBreaker;
  requests: number;
  failures: number;
}

/** Creates the state of an origin. */
export function newOriginState(origin: OriginPolicy, now: () => number): OriginState {
  return { breaker: new CircuitBreaker(origin.breaker ?? {}, now), requests: 0, failures: 0 };
}
