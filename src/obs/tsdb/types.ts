/**
 * The contract between the time-series store and the PromQL engine: label sets, matchers and a
 * {@link Querier} that selects raw samples. The store implements it; the engine reads only it.
 */

/** One label: a name and its value (Prometheus's data model). */
export interface Label {
  name: string;
  value: string;
}

/**
 * A label set, sorted by name, with `__name__` holding the metric name. Two series are the same
 * series exactly when their label sets are equal.
 */
export type Labels = readonly Label[];

/** Prometheus's four label matchers: `=`, `!=`, `=~`, `!~` (regexes are fully anchored, RE2 syntax). */
export type MatchOp = '=' | '!=' | '=~' | '!~';

/** One label matcher, e.g. `{name: 'job', op: '=~', value: 'api|web'}`. */
export interface Matcher {
  name: string;
  op: MatchOp;
  value: string;
}

/**
 * The raw samples of one series inside a selected time range, in ascending timestamp order.
 * `timestamps` are milliseconds since the epoch; `values` are float64. A value whose bits are
 * Prometheus's stale marker ({@link STALE_NAN_BITS}) marks the series stale from that timestamp on.
 */
export interface SeriesSamples {
  labels: Labels;
  timestamps: ArrayLike<number>;
  values: ArrayLike<number>;
}

/** The bit pattern of Prometheus's staleness marker, a signalling NaN (`0x7ff0000000000002`). */
export const STALE_NAN_BITS = 0x7ff0000000000002n;

/** Options of one {@link Querier.select} call. */
export interface SelectHints {
  /**
   * The resolution the caller needs, in ms (a range query's step); a store with downsampled rollups
   * may answer from a rollup whose interval is at most this. Absent: raw samples.
   */
  stepMs?: number;
  /**
   * Most samples the caller accepts over all returned series; a store that would return more
   * throws {@link TooManySamplesError}. Absent: no limit.
   */
  maxSamples?: number;
}

/** Thrown by a {@link Querier} when a selection would exceed `maxSamples` (Prometheus: "query processing would load too many samples into memory"). */
export class TooManySamplesError extends Error {
  override readonly name = 'TooManySamplesError';
  constructor(readonly limit: number) {
    super(`query processing would load too many samples into memory in query execution (limit ${limit})`);
  }
}

/**
 * Read access to stored series, as the PromQL engine needs it. All times are ms since the epoch,
 * both bounds inclusive.
 */
export interface Querier {
  /** The series matching every matcher (at least one matcher must not match the empty string), with their samples in `[startMs, endMs]`. Series with no sample in the range may be omitted. */
  select(matchers: readonly Matcher[], startMs: number, endMs: number, hints?: SelectHints): Promise<SeriesSamples[]> | SeriesSamples[];
  /** Label names present on series matching `matchers` (all series when empty) with samples in the range, sorted. */
  labelNames(matchers: readonly Matcher[], startMs: number, endMs: number): Promise<string[]> | string[];
  /** Values of label `name` on series matching `matchers` (all series when empty) in the range, sorted. */
  labelValues(name: string, matchers: readonly Matcher[], startMs: number, endMs: number): Promise<string[]> | string[];
  /** The label sets of series matching `matchers` with samples in the range. */
  series(matchers: readonly Matcher[], startMs: number, endMs: number): Promise<Labels[]> | Labels[];
}
