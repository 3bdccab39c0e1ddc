-- History retention (namespace policies' historyRetention) removes superseded rows from the
-- middle of a key range's history. Each pruned range keeps a floor: the highest revision of a
-- row that superseded a removed one. For that range the effective compact revision is
-- max(compact_revision, floor), so a read or watch that would need a removed row fails with
-- `compacted` instead of answering wrongly. range_end '' means unbounded. A floor is raised in
-- the same transaction that deletes the rows; it never goes down.
CREATE TABLE history_floors (
  key TEXT NOT NULL,
  range_end TEXT NOT NULL,
  revision INTEGER NOT NULL,
  PRIMARY KEY (key, range_end)
) WITHOUT ROWID;
