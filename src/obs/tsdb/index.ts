/** The time-series store: series, samples, compression, retention, and the {@link Querier} the PromQL engine reads. */
export type { Label, Labels, MatchOp, Matcher, SeriesSamples, SelectHints, Querier } from './types.js';
export { STALE_NAN_BITS, TooManySamplesError } from './types.js';
export {
  Tsdb,
  STALE_MARKER,
  isStaleMarker,
  labelsKey,
  DEFAULT_RETENTION_MS,
  DEFAULT_OOO_WINDOW_MS,
  DEFAULT_MAX_SERIES,
  DEFAULT_MAX_NEW_SERIES_PER_PUSH,
  DEFAULT_ROLLUPS,
  forEachWalSample,
  walRecordSamples,
  sortDedupe,
} from './db.js';
export { Postings, matcherPredicate } from './postings.js';
export { RecordWriter, readRecords } from './records.js';
export type { TsdbOptions, SeriesInput, AppendResult, RollupSpec } from './db.js';
export { ChunkEncoder, decodeChunk, decodeChunkInto, chunkCount, SAMPLES_PER_CHUNK } from './chunk.js';
