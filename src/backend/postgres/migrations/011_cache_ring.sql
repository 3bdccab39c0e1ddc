-- The cache ring (issue 15, the cache tier across nodes): the members that share the 16,384
-- Redis Cluster slots of the memory namespaces, one row per epoch as the cluster's leader
-- committed them. Epochs are consecutive: the next is the latest + 1, and the primary key makes
-- two leaders' commits of the same epoch exclusive. `members` is a JSON array of
-- {id, url, respUrl}. Every node builds the slot map of each epoch from its members, and a node
-- that missed epochs applies each in order (its copy of a slot is stale if it lost the slot in
-- between). The leader keeps the newest 1,000.
CREATE TABLE beacon_cache_ring (
  epoch bigint PRIMARY KEY,
  members text NOT NULL,
  committed_by text NOT NULL,
  committed_at timestamptz NOT NULL DEFAULT now()
);

-- Each node's count of cache keys (written with every heartbeat, for `GET /v1/cluster` and `beacon status`).
ALTER TABLE beacon_nodes ADD COLUMN cache_keys bigint NOT NULL DEFAULT 0;
