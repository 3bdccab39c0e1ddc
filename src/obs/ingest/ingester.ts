/** The ingestion path: a per-principal sample-rate limit, then the store, with metrics of both. */
import { RateLimitedError } from '../../errors.js';
import type { Metrics } from '../metrics.js';
import type { AppendResult, Tsdb } from '../tsdb/index.js';
import { DEFAULT_LABEL_LIMITS, type LabelLimits, type SeriesBatch } from './batch.js';

/** Default ingestion limit per principal: 100 000 samples per second (seed 003: "Default: 100K metrics/second"). */
export const DEFAULT_SAMPLES_PER_SECOND = 100_000;

/** Options of {@link Ingester}. */
export interface IngestOptions {
  /** Samples per second per principal; null for no limit. The bucket holds one second's worth. */
  samplesPerSecond?: number | null;
  labelLimits?: LabelLimits;
  now?: () => number;
}

interface Bucket {
  tokens: number;
  at: number;
}

/**
 * Accepts pushes into a {@link Tsdb}. The rate limit is a token bucket of samples per principal:
 * a push is admitted while the bucket is not in debt and then takes all its samples (so one
 * large push is never refused outright, but the next waits until it is paid off).
 */
export class Ingester {
  readonly labelLimits: LabelLimits;
  private readonly rate: number | null;
  private readonly buckets = new Map<string, Bucket>();
  private readonly now: () => number;

  constructor(
    readonly db: Tsdb,
    opts: IngestOptions = {},
    private readonly metrics?: Metrics,
  ) {
    this.rate = opts.samplesPerSecond === undefined ? DEFAULT_SAMPLES_PER_SECOND : opts.samplesPerSecond;
    this.labelLimits = opts.labelLimits ?? DEFAULT_LABEL_LIMITS;
    this.now = opts.now ?? Date.now;
  }

  /**
   * Stores a push whole or refuses it whole.
   * @param principal who pushes (the rate-limit bucket); internal scrapes pass null (not limited).
   * @param format `json`, `text`, `remote_write` or `scrape`, for metrics.
   * @throws RateLimitedError (429 with Retry-After) while the principal's bucket is in debt; the
   *   store's errors (InvalidArgumentError, TooLargeError, UnavailableError) otherwise.
   */
  push(principal: string | null, batch: SeriesBatch, format: string): AppendResult {
    const bucket = principal === null || this.rate === null ? undefined : this.bucket(principal);
    if (bucket !== undefined && bucket.tokens < 0) {
      this.metrics?.tsdbRejected.inc({ reason: 'rate_limited' });
      throw new RateLimitedError(Math.max(1, Math.ceil(-bucket.tokens / (this.rate as number))));
    }
    let res: AppendResult;
    try {
      res = this.db.append(batch.finish());
    } catch (err) {
      const reason = (err as { details?: { reason?: unknown } }).details?.reason;
      this.metrics?.tsdbRejected.inc({ reason: typeof reason === 'string' ? reason : ((err as { code?: string }).code ?? 'internal') });
      throw err;
    }
    if (bucket !== undefined) bucket.tokens -= batch.samples;
    this.metrics?.tsdbSamplesIngested.inc({ format }, res.samples);
    return res;
  }

  /** Counts a push refused before it reached {@link push} (a parse error). */
  rejected(reason: string): void {
    this.metrics?.tsdbRejected.inc({ reason });
  }

  private bucket(name: string): Bucket {
    const rate = this.rate as number;
    const now = this.now();
    let b = this.buckets.get(name);
    if (b === undefined) {
      if (this.buckets.size > 10_000) {
        for (const [k, v] of this.buckets) if (v.tokens + ((now - v.at) / 1000) * rate >= rate) this.buckets.delete(k);
      }
      b = { tokens: rate, at: now };
      this.buckets.set(name, b);
      return b;
    }
    b.tokens = Math.min(rate, b.tokens + ((now - b.at) / 1000) * rate);
    b.at = now;
    return b;
  }
}
