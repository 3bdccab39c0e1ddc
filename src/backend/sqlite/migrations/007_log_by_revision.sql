-- The revision log keyed by revision (issue 17). Keyed by (key, revision), every write of a
-- group commit landed in the leaf of its own key: a batch of writes to spread keys dirtied one
-- random leaf of the whole log (values included, ~12 rows a page) per write, and the WAL, the
-- page cache and the checkpoints carried those pages. Keyed by (revision, key), a batch appends
-- to the right edge of the log; the per-key order lives in kv_log_key, whose entries hold only
-- the key and the revision (~100 a page), so the random leaves a batch dirties are a tenth of the
-- bytes and stay in the page cache. kv_log_revision is rebuilt on the new table: its entries are
-- (revision, key) only, so a watch catching up on a narrow key range finds its rows there without
-- reading other keys' values (the primary key's pages hold them), and it grows at the right edge.
-- The rows are copied unchanged, in one transaction with the schema change (the migration runner
-- wraps each file in one), so a failed upgrade leaves the old table as it was.
CREATE TABLE kv_log_by_revision (
  key TEXT NOT NULL,
  revision INTEGER NOT NULL,
  create_revision INTEGER NOT NULL,
  version INTEGER NOT NULL,
  lease INTEGER NOT NULL DEFAULT 0,
  value BLOB NOT NULL,
  deleted INTEGER NOT NULL DEFAULT 0,
  ts INTEGER NOT NULL,
  meta TEXT,
  encrypted INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (revision, key)
) WITHOUT ROWID;
INSERT INTO kv_log_by_revision (key, revision, create_revision, version, lease, value, deleted, ts, meta, encrypted)
  SELECT key, revision, create_revision, version, lease, value, deleted, ts, meta, encrypted
    FROM kv_log INDEXED BY kv_log_revision ORDER BY revision, key;
DROP TABLE kv_log;
ALTER TABLE kv_log_by_revision RENAME TO kv_log;
CREATE INDEX kv_log_key ON kv_log (key, revision);
CREATE INDEX kv_log_revision ON kv_log (revision);
