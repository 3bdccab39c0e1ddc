/** The time-series store: series, samples, compression, retention, and the {@link Querier} the PromQL engine reads. */
export type { Label, Labels, MatchOp, Matcher, SeriesSamples, SelectHints, Querier } from './types.js';
export { STALE_NAN_BITS, TooManySamplesError } from './types.js';
