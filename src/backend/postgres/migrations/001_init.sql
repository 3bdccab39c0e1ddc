-- Beacon's schema on PostgreSQL. Every table is prefixed with beacon_ so a database can be shared.

-- The one row every write locks (SELECT … FOR UPDATE): the head revision, the compact revision,
-- the revision up to which compacted history is physically deleted, and the lease change counter. Holding it while a transaction allocates revisions and commits
-- is what makes revisions become visible strictly in order, with no gaps (docs/operations/postgresql.md).
CREATE TABLE beacon_meta (
  id integer PRIMARY KEY CHECK (id = 1),
  revision bigint NOT NULL,
  compact_revision bigint NOT NULL,
  purged_revision bigint NOT NULL,
  lease_seq bigint NOT NULL
);
INSERT INTO beacon_meta (id, revision, compact_revision, purged_revision, lease_seq) VALUES (1, 0, 0, 0, 0);

-- The revision log: one row per key per revision that changed it; deletes are tombstones.
-- Keys are bytea so that they sort in UTF-8 byte order whatever the database collation is.
CREATE TABLE beacon_kv_log (
  key bytea NOT NULL,
  revision bigint NOT NULL,
  create_revision bigint NOT NULL,
  version bigint NOT NULL,
  lease bigint NOT NULL DEFAULT 0,
  value bytea NOT NULL,
  deleted boolean NOT NULL DEFAULT false,
  ts bigint NOT NULL,
  meta text
);

-- The latest revision of a key (and a key's history) through an index on (key, revision). A
-- btree entry holds at most ~2.7 KB and keys may have 4 KiB, so the index holds the first
-- 2000 bytes of the key; the prefix is monotone in the key, and queries recheck the full key.
CREATE INDEX beacon_kv_log_key ON beacon_kv_log ((substring(key from 1 for 2000)), revision);

-- Followers, watch catch-up and compaction read the log in revision order.
CREATE INDEX beacon_kv_log_revision ON beacon_kv_log (revision);

-- Leases: ttl in seconds, expires_at in ms since the epoch. A revoked lease stays as a
-- tombstone for a while so that followers learn of the revoke; seq is beacon_meta.lease_seq at
-- the lease's last change (grant, keep-alive or revoke), so followers read what changed.
CREATE TABLE beacon_leases (
  id bigint PRIMARY KEY,
  ttl bigint NOT NULL,
  expires_at bigint NOT NULL,
  revoked boolean NOT NULL DEFAULT false,
  revoked_at bigint,
  seq bigint NOT NULL
);
CREATE INDEX beacon_leases_seq ON beacon_leases (seq);

-- Cluster membership: every node upserts its row about once a second; a row whose last_seen is
-- older than a few seconds (database clock) is a node that is gone.
CREATE TABLE beacon_nodes (
  id text PRIMARY KEY,
  url text NOT NULL,
  version text NOT NULL,
  started_at bigint NOT NULL,
  applied_revision bigint NOT NULL,
  ready boolean NOT NULL,
  expiry_leader boolean NOT NULL,
  last_seen timestamptz NOT NULL DEFAULT now()
);
