-- The audit log: every change with who, when, what, old and new version, request id, source.
CREATE TABLE audit (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
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
CREATE INDEX audit_ts ON audit (ts);
CREATE INDEX audit_principal ON audit (principal, id);
CREATE INDEX audit_key ON audit (key, id);
