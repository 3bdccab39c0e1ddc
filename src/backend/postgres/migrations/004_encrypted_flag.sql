-- Whether a stored value is ciphertext is recorded in its row by the store (issue 9 finding 3):
-- true when the config layer sealed it for a secret namespace, false for the bytes as written.
-- Before this column, a value counted as encrypted when its bytes had the envelope layout, which
-- any writer could forge. Rows written before it are classified once, here: a put whose value
-- has the envelope layout (magic 00 42 4B 01, at least 34 bytes) and whose key lies under a
-- namespace that is secret at upgrade time is ciphertext (older releases encrypted every write
-- there); anything else, forged envelopes in plain namespaces included, is a plain value.
ALTER TABLE beacon_kv_log ADD COLUMN encrypted boolean NOT NULL DEFAULT false;
CREATE TEMP TABLE beacon_upgrade_secret_prefixes ON COMMIT DROP AS
  SELECT substring(l.key from 5) AS prefix
    FROM beacon_kv_log l
   WHERE substring(l.key from 1 for 4) = '\x006e732f'::bytea
     AND NOT l.deleted
     AND l.revision = (SELECT max(m.revision) FROM beacon_kv_log m WHERE m.key = l.key)
     -- Policies are compact JSON written by Beacon (JSON.stringify): a byte match, so no row is
     -- ever converted to text (other rows may hold any bytes, and the planner may try them first).
     AND position(convert_to('"secret":true', 'UTF8') in l.value) > 0;
UPDATE beacon_kv_log SET encrypted = true
 WHERE NOT deleted
   AND length(value) >= 34
   AND substring(value from 1 for 4) = '\x00424b01'::bytea
   AND EXISTS (SELECT 1 FROM beacon_upgrade_secret_prefixes p
                WHERE length(p.prefix) > 0 AND substring(beacon_kv_log.key from 1 for length(p.prefix)) = p.prefix);
