/** Token-bucket rate limits per principal or per source address (seed 000: "token bucket per user"). */
import { InvalidArgumentError, RateLimitedError } from '../errors.js';

/** A rate: `rate` tokens per second refilled into a bucket of `burst` tokens. */
export interface RateSpec {
  /** Tokens added per second. */
  rate: number;
  /** Bucket capacity: how many requests may arrive at once after a quiet period. */
  burst: number;
}

const UNITS: Record<string, number> = { s: 1, sec: 1, m: 60, min: 60, h: 3600, hour: 3600, d: 86400, day: 86400 };

/**
 * Parses a rate such as `100/s`, `10000/h` (the seed's figure) or `20/m,burst=5`; `off` or `0`
 * means no limit (null). The burst defaults to the count per unit, at least 1.
 * @throws InvalidArgumentError for anything else.
 * @example parseRate('10000/h') // → { rate: 2.777…, burst: 10000 }
 */
export function parseRate(text: string): RateSpec | null {
  const t = text.trim().toLowerCase();
  if (t === 'off' || t === '0' || t === 'none') return null;
  const m = /^(\d+(?:\.\d+)?)\s*\/\s*([a-z]+)(?:\s*,\s*burst\s*=\s*(\d+))?$/.exec(t);
  const unit = m === null ? undefined : UNITS[m[2] as string];
  if (m === null || unit === undefined) {
    throw new InvalidArgumentError(`rate '${text}' is not like 100/s, 10000/h or 20/m,burst=5 (units: s, m, h, d), or 'off'`);
  }
  const count = Number(m[1]);
  if (!(count > 0)) throw new InvalidArgumentError(`rate '${text}' must be positive, or 'off'`);
  const burst = m[3] === undefined ? Math.max(1, Math.floor(count)) : Number(m[3]);
  if (burst < 1) throw new InvalidArgumentError(`the burst of rate '${text}' must be at least 1`);
  return { rate: count / unit, burst };
}

interface Bucket {
  tokens: number;
  /** Last refill, ms. */
  at: number;
}

/** The most buckets kept; idle full ones are dropped first when this is reached. */
const MAX_BUCKETS = 100_000;

/**
 * A set of token buckets by name (a principal or a source address). A bucket starts full;
 * each request takes one token; tokens refill continuously. Buckets that have refilled
 * completely are forgotten, so memory follows the number of recently active callers.
 */
export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();

  constructor(
    readonly spec: RateSpec,
    private readonly clock: () => number = Date.now,
  ) {}

  /**
   * Takes one token for `name`, or reports how long until one is available.
   * @returns 0 when allowed, otherwise the wait in seconds (> 0).
   */
  take(name: string): number {
    const now = this.clock();
    let b = this.buckets.get(name);
    if (b === undefined) {
      if (this.buckets.size >= MAX_BUCKETS) this.sweep(now);
      b = { tokens: this.spec.burst, at: now };
      this.buckets.set(name, b);
    } else {
      b.tokens = Math.min(this.spec.burst, b.tokens + ((now - b.at) / 1000) * this.spec.rate);
      b.at = now;
    }
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    return (1 - b.tokens) / this.spec.rate;
  }

  /**
   * Takes one token or throws.
   * @throws RateLimitedError with `retryAfterSeconds` (whole seconds, at least 1).
   */
  check(name: string): void {
    const wait = this.take(name);
    if (wait > 0) throw new RateLimitedError(Math.max(1, Math.ceil(wait)));
  }

  /** Number of buckets held (for tests and metrics). */
  get size(): number {
    return this.buckets.size;
  }

  private sweep(now: number): void {
    for (const [k, b] of this.buckets) {
      if (b.tokens + ((now - b.at) / 1000) * this.spec.rate >= this.spec.burst) this.buckets.delete(k);
    }
    // Still full of active callers: drop the oldest half rather than grow without bound.
    if (this.buckets.size >= MAX_BUCKETS) {
      let n = this.buckets.size / 2;
      for (const k of this.buckets.keys()) {
        if (n-- <= 0) break;
        this.buckets.delete(k);
      }
    }
  }
}
