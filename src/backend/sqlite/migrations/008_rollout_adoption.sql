-- Which variant each SDK client last reported applying, per active rollout (issue 16,
-- docs/rollout.md "Adoption"). Not part of the revision log: a report is an upsert of one row
-- keyed by (rollout, client), so 10,000 clients reporting make no revisions. `bucket` is the
-- client's stable hash bucket in the rollout; `selected` whether its labels match the rollout's
-- selector (NULL: not said); `seen_at` ms since the epoch. Rows of finished rollouts and of
-- clients silent for longer than the adoption window are deleted by the rollout driver.
CREATE TABLE rollout_adoption (
  rollout TEXT NOT NULL,
  client TEXT NOT NULL,
  variant TEXT NOT NULL,
  bucket INTEGER NOT NULL,
  selected INTEGER,
  seen_at INTEGER NOT NULL,
  PRIMARY KEY (rollout, client)
) WITHOUT ROWID;
CREATE INDEX rollout_adoption_seen ON rollout_adoption (seen_at);
