-- Chained commits (issue 17 target 6, docs/architecture.md "PostgreSQL commit path"). A node may
-- have several write batches in flight on separate connections, each planned on top of the one
-- before it; PostgreSQL still commits them one after the other in revision order.
--
-- head_token: a random number each batch writes together with the head revision. A batch that a
-- node planned on top of its own batch B states the head it expects (B's revision and B's token);
-- only B ever writes that token, so the check passes exactly when B committed and nothing came
-- between, whichever node (of whichever version) wrote meanwhile. 0 until a node of this version
-- writes; older nodes leave it alone, and their writes still move the revision.
ALTER TABLE beacon_meta ADD COLUMN head_token bigint NOT NULL DEFAULT 0;

-- One batch of key writes (no lease changes) in one statement, so one round trip commits it.
-- It first takes a transaction advisory lock named by its own token (the two-int4 form, a lock
-- space no other Beacon lock uses), so the batch after it can wait for its end. The log rows go
-- in without any other lock, so batches in flight insert them in parallel. Then the counter row:
-- the UPDATE succeeds only on the expected head (revision and token). While the batch before has
-- not reached its own UPDATE, the head is still older than expected: wait for that batch's
-- advisory lock (its transaction's end), or briefly sleep when it has not started yet, and look
-- again. Once the batch before holds the row, this UPDATE waits for its COMMIT and then sees its
-- head. (A batch before that was written under the lock holds the row from its start.) A batch
-- before that ended without reaching the expected head failed: this one is refused at once. A head that moved past the expected one (another writer, or the
-- batch before failed) raises SQLSTATE BCN01 and nothing of this batch is written: the node plans
-- it again. From the UPDATE on, the row lock is held until COMMIT, so this batch commits, and
-- becomes visible, after every revision before it. Audit rows are written under that lock, so
-- their ids grow in commit order (migration 002). The NOTIFY is delivered at COMMIT.
CREATE FUNCTION beacon_commit_chained(
  expect_revision bigint, expect_token bigint, new_revision bigint, new_token bigint, channel text,
  keys bytea[], revisions bigint[], create_revisions bigint[], versions bigint[], leases bigint[], vals bytea[],
  deleted boolean[], tss bigint[], metas text[], encrypted boolean[],
  a_ts bigint[], a_principal text[], a_action text[], a_key bytea[], a_old bigint[], a_new bigint[], a_revision bigint[],
  a_request text[], a_source text[], a_outcome text[], a_details text[]
) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  m record;
  cur record;
  done boolean := false;
  waited boolean := false;
  h int4 := (expect_token / 2147483648)::int4;
  l int4 := (expect_token % 2147483648)::int4;
BEGIN
  PERFORM pg_advisory_xact_lock((new_token / 2147483648)::int4, (new_token % 2147483648)::int4);
  INSERT INTO beacon_kv_log (key, revision, create_revision, version, lease, value, deleted, ts, meta, encrypted)
    SELECT * FROM unnest(keys, revisions, create_revisions, versions, leases, vals, deleted, tss, metas, encrypted);
  -- At most ~1 s of sleeping for a batch before that has not started (0.5 ms growing to 5 ms).
  FOR i IN 1..220 LOOP
    UPDATE beacon_meta SET revision = new_revision, head_token = new_token
     WHERE id = 1 AND revision = expect_revision AND head_token = expect_token
     RETURNING revision, lease_seq, compact_revision INTO m;
    done := FOUND;
    EXIT WHEN done;
    SELECT revision, head_token INTO cur FROM beacon_meta WHERE id = 1;
    IF cur.revision > expect_revision OR (cur.revision = expect_revision AND cur.head_token <> expect_token) THEN
      RAISE EXCEPTION 'the head moved: revision % (expected % from this node''s batch before)', cur.revision, expect_revision
        USING ERRCODE = 'BCN01';
    END IF;
    IF cur.revision < expect_revision THEN
      IF waited THEN
        RAISE EXCEPTION 'the batch before ended without committing revision %', expect_revision USING ERRCODE = 'BCN01';
      END IF;
      -- Session locks, given back at once: they only test for, or wait for, the batch before.
      IF pg_try_advisory_lock_shared(h, l) THEN
        -- Not started yet (or just ended): look again in a moment.
        PERFORM pg_advisory_unlock_shared(h, l);
        PERFORM pg_sleep(least(0.005, 0.00025 * i));
      ELSE
        PERFORM pg_advisory_lock_shared(h, l);
        PERFORM pg_advisory_unlock_shared(h, l);
        waited := true;
      END IF;
    END IF;
  END LOOP;
  IF NOT done THEN
    RAISE EXCEPTION 'the batch before did not commit in time (head still below %)', expect_revision USING ERRCODE = 'BCN01';
  END IF;
  INSERT INTO beacon_audit (ts, principal, action, key, old_version, new_version, revision, request_id, source, outcome, details)
    SELECT * FROM unnest(a_ts, a_principal, a_action, a_key, a_old, a_new, a_revision, a_request, a_source, a_outcome, a_details);
  PERFORM pg_notify(channel, m.revision || ':' || m.lease_seq || ':' || m.compact_revision);
END
$$;
