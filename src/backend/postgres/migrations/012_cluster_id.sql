-- The cluster's identity (issue 15, the cache tier across nodes): a random id made when the
-- database is first migrated. A node presents it on every link to another node's RESP listener,
-- and a node refuses a link that presents another id: a node given a different cluster's
-- database, or listening on an address another cluster still lists, never takes that cluster's
-- cache writes. A copy of the database (a restore) keeps the id; the sender's node id is then
-- checked against the nodes that heartbeat here.
ALTER TABLE beacon_meta ADD COLUMN cluster_id text NOT NULL DEFAULT gen_random_uuid()::text;
