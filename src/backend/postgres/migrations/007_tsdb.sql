-- The shared time-series store of PostgreSQL mode (issue 12, docs/metrics.md "PostgreSQL mode").
-- Every node flushes the samples it ingested as Gorilla-compressed chunks every few seconds; any
-- node's queries read them here (and merge its own not-yet-flushed samples). Numbered 007: the
-- SQLite backend has no such tables (a SQLite node keeps its samples in <data-dir>/tsdb).

-- One row per series ever flushed. `key_hash` is the SHA-256 of the sorted label set (a label set
-- can be longer than a B-tree entry may be); `labels` is [[name, value], …] sorted by name.
-- Ids are allocated under the tsdb write lock (a transaction-scoped advisory lock every flush
-- takes), so they become visible in id order and a node can follow new series with `id > last`.
CREATE TABLE beacon_tsdb_series (
  id bigserial PRIMARY KEY,
  key_hash bytea NOT NULL UNIQUE,
  labels jsonb NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);

-- Chunks of samples. `kind` 0 holds raw samples, 1.. the rollups in order (5 m, 1 h by default).
-- `block` is floor(min_t / block length of the kind), the unit of compaction. `level` 0 rows come
-- straight from a node's flush (a few samples each); compaction merges the rows of one
-- (series, kind, block) into level 1 while the block is open and level 2 once it is closed
-- (raw blocks then also yield their rollup rows). `data` is a Beacon chunk (src/obs/tsdb/chunk.ts).
CREATE TABLE beacon_tsdb_chunks (
  id bigserial PRIMARY KEY,
  series_id bigint NOT NULL,
  kind smallint NOT NULL,
  block bigint NOT NULL,
  min_t bigint NOT NULL,
  max_t bigint NOT NULL,
  samples integer NOT NULL,
  level smallint NOT NULL,
  data bytea NOT NULL
);

-- Queries: the chunks of given series overlapping a time range.
CREATE INDEX beacon_tsdb_chunks_series ON beacon_tsdb_chunks (series_id, kind, max_t);
-- Retention: chunks of a kind older than its retention.
CREATE INDEX beacon_tsdb_chunks_age ON beacon_tsdb_chunks (kind, max_t);
-- Compaction: the rows not yet merged for good (a small part of the table: the open blocks).
CREATE INDEX beacon_tsdb_chunks_unmerged ON beacon_tsdb_chunks (kind, block) WHERE level < 2;
