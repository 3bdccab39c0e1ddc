-- The audit log: every change with who, when, what, old and new version, request id, source.
-- `id` is the rowid (increasing; no AUTOINCREMENT, whose bookkeeping row costs a write per insert).
CREATE TABLE audit (
  id INTEGER PRIMARY KEY,
  ts INTEGER NOT NULL,
  principal TEXT NOT NULL,
  action TEXT NOT NULL,
  key TEXT,
  old_version INTEGER,
  new_version INTEGER,
  revision INTEGER,
  request_id TEXT,
  source TEXT,
  outcome TEXT NOT NULL,
  details TEXT
);
-- Retention deletes by time; reads by key are the common filter. Other filters scan by id.
CREATE INDEX audit_ts ON audit (ts);
CREATE INDEX audit_key ON audit (key, id);
