-- Which variant each SDK client last reported applying, per active rollout (issue 16,
-- docs/rollout.md "Adoption"), shared by every node so status on any node counts the clients
-- of all of them. Not part of the revision log: a report is an upsert of one row keyed by
-- (rollout, client), so 10,000 clients reporting make no revisions. `bucket` is the client's
-- stable hash bucket in the rollout; `selected` whether its labels match the rollout's selector
-- (NULL: not said); `seen_at` ms since the epoch. Rows of finished rollouts and of clients
-- silent for longer than the adoption window are deleted by the rollout driver.
CREATE TABLE beacon_rollout_adoption (
  rollout text NOT NULL,
  client text NOT NULL,
  variant text NOT NULL,
  bucket integer NOT NULL,
  selected boolean,
  seen_at bigint NOT NULL,
  PRIMARY KEY (rollout, client)
);
CREATE INDEX beacon_rollout_adoption_seen ON beacon_rollout_adoption (seen_at);
