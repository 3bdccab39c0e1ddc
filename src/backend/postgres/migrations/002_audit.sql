-- The audit log: every change with who, when, what, old and new version, request id, source.
-- Rows written with a commit are inserted under the counter row lock, so ids grow in commit order.
CREATE TABLE beacon_audit (
  id bigserial PRIMARY KEY,
  ts bigint NOT NULL,
  principal text NOT NULL,
  action text NOT NULL,
  key bytea,
  old_version bigint,
  new_version bigint,
  revision bigint,
  request_id text,
  source text,
  outcome text NOT NULL,
  details text
);
CREATE INDEX beacon_audit_ts ON beacon_audit (ts);
CREATE INDEX beacon_audit_principal ON beacon_audit (principal, id);
CREATE INDEX beacon_audit_key ON beacon_audit ((substring(key from 1 for 2000)), id);
