-- History retention (namespace policies' historyRetention) removes superseded rows from the
-- middle of a key range's history. Each pruned range keeps a floor: the highest revision of a
-- row that superseded a removed one. For that range the effective compact revision is
-- max(compact_revision, floor), so a read or watch that would need a removed row fails with
-- `compacted` instead of answering wrongly. range_end '' (empty) means unbounded. A floor is
-- raised in the same transaction that deletes the rows; it never goes down. Keys are bytea, as
-- in beacon_kv_log; floors are few (one per pruned range) and compared in the node.
CREATE TABLE beacon_history_floors (
  key bytea NOT NULL,
  range_end bytea NOT NULL,
  revision bigint NOT NULL
);
-- Unique by digest: a btree entry holds at most ~2.7 KB and a prefix may have 4 KiB.
CREATE UNIQUE INDEX beacon_history_floors_range ON beacon_history_floors ((md5(key)), (md5(range_end)));

-- The highest revision of a row history retention removed. Like purged_revision (which the
-- compactor also uses as its own progress mark), a follower whose view is below it cannot catch
-- up from the log and rebuilds; readers see max(purged_revision, retained_revision).
ALTER TABLE beacon_meta ADD COLUMN retained_revision bigint NOT NULL DEFAULT 0;
