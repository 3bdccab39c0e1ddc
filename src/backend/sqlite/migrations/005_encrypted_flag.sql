-- Whether a stored value is ciphertext is recorded in its row by the store (issue 9 finding 3):
-- 1 when the config layer sealed it for a secret namespace, 0 for the bytes as written. Before
-- this column, a value counted as encrypted when its bytes had the envelope layout, which any
-- writer could forge. Rows written before it are classified once, here: a put whose value has
-- the envelope layout (magic 00 42 4B 01, at least 34 bytes) and whose key lies under a
-- namespace that is secret at upgrade time is ciphertext (older releases encrypted every write
-- there); anything else, forged envelopes in plain namespaces included, is a plain value.
ALTER TABLE kv_log ADD COLUMN encrypted INTEGER NOT NULL DEFAULT 0;
-- Keys are TEXT with a leading U+0000 for system keys; byte work goes through BLOB casts.
CREATE TEMP TABLE upgrade_secret_prefixes AS
  SELECT substr(CAST(l.key AS BLOB), 5) AS prefix
    FROM kv_log l
   WHERE substr(CAST(l.key AS BLOB), 1, 4) = X'006E732F'
     AND l.deleted = 0
     AND l.revision = (SELECT max(m.revision) FROM kv_log m WHERE m.key = l.key)
     -- CASE, not AND: json_extract fails on bytes that are not JSON, whatever order terms run in.
     AND CASE WHEN json_valid(CAST(l.value AS TEXT)) THEN json_extract(CAST(l.value AS TEXT), '$.secret') END = 1;
UPDATE kv_log SET encrypted = 1
 WHERE deleted = 0
   AND length(value) >= 34
   AND substr(value, 1, 4) = X'00424B01'
   AND EXISTS (SELECT 1 FROM upgrade_secret_prefixes p
                WHERE length(p.prefix) > 0 AND substr(CAST(kv_log.key AS BLOB), 1, length(p.prefix)) = p.prefix);
DROP TABLE upgrade_secret_prefixes;
