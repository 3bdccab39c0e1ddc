-- Audit lookups by key through a deferred index instead of an index on audit itself: a B-tree in
-- key order takes one random leaf page per record when it is kept in the write transaction (the
-- commit of a batch of writes to spread keys then dirtied ~1.5x the pages). The writer adds
-- records to audit_key_index in key order, thousands at a time, after the commits
-- (audit_indexed_id says how far); queries read the index up to there and scan the short
-- unindexed tail of the audit table after it.
CREATE TABLE audit_key_index (
  key TEXT NOT NULL,
  id INTEGER NOT NULL,
  PRIMARY KEY (key, id)
) WITHOUT ROWID;
INSERT INTO audit_key_index (key, id) SELECT key, id FROM audit WHERE key IS NOT NULL;
INSERT INTO meta (name, value) VALUES ('audit_indexed_id', (SELECT coalesce(max(id), 0) FROM audit));
DROP INDEX audit_key;
