-- The revision log: one row per key per revision that changed it. Deletes are tombstones.
CREATE TABLE kv_log (
  key TEXT NOT NULL,
  revision INTEGER NOT NULL,
  create_revision INTEGER NOT NULL,
  version INTEGER NOT NULL,
  lease INTEGER NOT NULL DEFAULT 0,
  value BLOB NOT NULL,
  deleted INTEGER NOT NULL DEFAULT 0,
  ts INTEGER NOT NULL,
  meta TEXT,
  PRIMARY KEY (key, revision)
) WITHOUT ROWID;

-- Watch catch-up and followers read the log in revision order.
CREATE INDEX kv_log_revision ON kv_log (revision);

-- Store-wide counters: the head revision and the compact revision.
CREATE TABLE meta (
  name TEXT PRIMARY KEY,
  value INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO meta (name, value) VALUES ('revision', 0), ('compact_revision', 0);

-- Leases: ttl in seconds, expires_at in ms since the epoch.
CREATE TABLE leases (
  id INTEGER PRIMARY KEY,
  ttl INTEGER NOT NULL,
  expires_at INTEGER NOT NULL
);
