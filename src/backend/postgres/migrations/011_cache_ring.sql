-- The cache ring (issue 15, the cache tier across nodes): the members that share the 16,384
-- Redis Cluster slots of the memory namespaces, as the cluster's leader last committed them.
-- One row. `epoch` grows by one per commit (a compare-and-set on it, so two leaders cannot both
-- commit the same epoch); `members` is a JSON array of {id, url, respUrl}. Every node builds
-- the slot map from the members it reads here, so all agree on each slot's primary.
CREATE TABLE beacon_cache_ring (
  id smallint PRIMARY KEY CHECK (id = 1),
  epoch bigint NOT NULL,
  members text NOT NULL,
  committed_by text NOT NULL,
  committed_at timestamptz NOT NULL DEFAULT now()
);

-- Each node's count of cache keys (written with every heartbeat, for `GET /v1/cluster` and `beacon status`).
ALTER TABLE beacon_nodes ADD COLUMN cache_keys bigint NOT NULL DEFAULT 0;
