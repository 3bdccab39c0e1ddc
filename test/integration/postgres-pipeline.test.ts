/**
 * Chained (pipelined) commits on PostgreSQL (issue 17 target 6, migration 009): a node keeps
 * several write batches in flight on separate connections. What users must not notice: two
 * nodes writing at once still get consecutive revisions, a watcher on a third node receives
 * every one exactly once and in order, no reader of the database ever sees a revision while an
 * earlier one is still missing, and connections killed while batches are in flight lose no
 * acknowledged write and leave no gap.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import type { PostgresBackend } from '../../src/backend/postgres/index.js';
import { http, startTestNode } from '../helpers/node.js';
import { eventually, startPostgres, WatchClient, type PostgresServer } from '../helpers/postgres.js';

type TestNode = Awaited<ReturnType<typeof startTestNode>>;

let server: PostgresServer | undefined;
const started: TestNode[] = [];

before(async () => {
  server = await startPostgres();
});

after(async () => {
  await Promise.all(started.map((n) => n.cleanup().catch(() => undefined)));
  await server?.stop();
});

async function startNodes(url: string, count: number): Promise<TestNode[]> {
  const out: TestNode[] = [];
  // One at a time: the first migrates the schema.
  for (let i = 0; i < count; i++) {
    const n = await startTestNode({ backend: url });
    started.push(n);
    out.push(n);
  }
  return out;
}

function backendOf(n: TestNode): PostgresBackend {
  return n.store.backend as PostgresBackend;
}

/**
 * `workers` concurrent PUT loops per target until `stop()`; every acknowledged write is recorded by
 * revision. `writing(target, ms)` (default always) says whether target number `target` writes at
 * `ms` after the start; its loops pause meanwhile.
 */
function writeLoad(targets: string[], prefix: string, workers: number, keys: number, writing: (target: number, ms: number) => boolean = () => true) {
  const t0 = Date.now();
  const acked = new Map<number, { key: string; value: string }>();
  const failures: { status: number; code: string | undefined }[] = [];
  let stopped = false;
  let seq = 0;
  const loops = targets.flatMap((base, t) =>
    Array.from({ length: workers }, async () => {
      while (!stopped) {
        if (!writing(t, Date.now() - t0)) {
          await new Promise((r) => setTimeout(r, 10));
          continue;
        }
        const i = seq++;
        const key = `${prefix}${t}/${i % keys}`;
        const value = `v${i}`;
        try {
          const res = await http(`${base}/v1/kv/${key}`, { method: 'PUT', body: { value } });
          if (res.status === 200) {
            const revision = res.body.revision as number;
            assert.equal(acked.has(revision), false, `revision ${revision} acknowledged twice`);
            acked.set(revision, { key, value });
          } else {
            failures.push({ status: res.status, code: res.body?.error?.code });
            await new Promise((r) => setTimeout(r, 20));
          }
        } catch {
          failures.push({ status: 0, code: 'network' });
          await new Promise((r) => setTimeout(r, 20));
        }
      }
    }),
  );
  return {
    acked,
    failures,
    stop: async () => {
      stopped = true;
      await Promise.all(loops);
    },
  };
}

/**
 * Reads the database in a loop, as another node's change feed does (one snapshot: the head, then
 * the log after `from`), and records every snapshot in which a revision is visible while an
 * earlier one is missing, or a log row lies beyond the head. Stops with `stop()`.
 */
function gapWatch(url: string, from: number) {
  const problems: string[] = [];
  let snapshots = 0;
  let stopped = false;
  const client = new pg.Client({ connectionString: url });
  client.on('error', () => undefined);
  const loop = (async () => {
    await client.connect();
    while (!stopped) {
      const res = (await client.query(
        `BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;
         SELECT revision FROM beacon_meta WHERE id = 1;
         SELECT DISTINCT revision FROM beacon_kv_log WHERE revision >= ${from} ORDER BY revision;
         COMMIT`,
      )) as unknown as pg.QueryResult[];
      const head = Number((res[1]?.rows[0] as { revision: string }).revision);
      const revisions = (res[2]?.rows ?? []).map((r) => Number((r as { revision: string }).revision));
      snapshots++;
      const want = Math.max(0, head - from + 1);
      if (revisions.length !== want || revisions.some((r, i) => r !== from + i)) {
        problems.push(`head ${head}: revisions ${revisions[0]}…${revisions[revisions.length - 1]} (${revisions.length}, want ${want})`);
      }
    }
  })();
  return {
    problems,
    snapshots: () => snapshots,
    stop: async () => {
      stopped = true;
      await loop;
      await client.end();
    },
  };
}

/** The log rows at or after `from`, by revision, read straight from the database. */
async function logRows(url: string, from: number): Promise<Map<number, { key: string; value: string }[]>> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const res = await c.query<{ revision: string; key: Buffer; value: Buffer }>(
      'SELECT revision, key, value FROM beacon_kv_log WHERE revision >= $1 ORDER BY revision, key',
      [from],
    );
    const out = new Map<number, { key: string; value: string }[]>();
    for (const r of res.rows) {
      const rev = Number(r.revision);
      const list = out.get(rev) ?? [];
      list.push({ key: r.key.toString('utf8'), value: r.value.toString('utf8') });
      out.set(rev, list);
    }
    return out;
  } finally {
    await c.end();
  }
}

async function sql(url: string, text: string, params: unknown[] = []): Promise<pg.QueryResult> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return await c.query(text, params);
  } finally {
    await c.end();
  }
}

function assertConsecutive(revisions: number[], first: number, what: string): void {
  for (let i = 0; i < revisions.length; i++) {
    assert.equal(revisions[i], first + i, `${what}: revision ${first + i} expected at position ${i}, got ${revisions[i]}`);
  }
}

describe('chained commits on PostgreSQL', () => {
  test('two nodes writing with batches in flight: consecutive revisions, a watcher on a third node gets every one in order, no reader sees a gap', async (t) => {
    const url = await (server as PostgresServer).createDatabase();
    const [a, b, w] = (await startNodes(url, 3)) as [TestNode, TestNode, TestNode];
    const from = (await http(`${w.url}/v1/status`)).body.revision + 1;
    const watcher = await WatchClient.open(w.url, 'pipe/', from);
    const gaps = gapWatch(url, from);
    // 48 writers per node: each node's group commit keeps several batches in flight. The two nodes
    // write in phases of different lengths, so there are stretches where one writes alone (its
    // batches chain) and stretches where both do, cutting into each other's chains (a batch chained
    // on a head the other node moved is refused and planned again under the lock).
    const load = writeLoad([a.url, b.url], 'pipe/', 48, 40, (t, ms) => (t === 0 ? ms % 700 < 450 : (ms + 300) % 900 < 500));
    await eventually('2,000 acknowledged writes', () => load.acked.size >= 2000, 120_000);
    await load.stop();
    await gaps.stop();

    assert.deepEqual(load.failures, []);
    const revisions = [...load.acked.keys()].sort((x, y) => x - y);
    assertConsecutive(revisions, from, 'acknowledged revisions');
    const last = revisions[revisions.length - 1] as number;
    // The path under test ran on both writers, and their chains met.
    t.diagnostic(`commits: ${JSON.stringify([a, b].map((n) => backendOf(n).commitStats))}; ${gaps.snapshots()} database snapshots checked`);
    for (const n of [a, b]) assert.ok(backendOf(n).commitStats.chained > 0, JSON.stringify(backendOf(n).commitStats));

    assert.ok(gaps.snapshots() > 0);
    assert.deepEqual(gaps.problems, [], 'a database snapshot showed a revision while an earlier one was missing');

    await watcher.waitForRevision(last, 30_000);
    watcher.close();
    assert.deepEqual(watcher.problems, []);
    const expected = revisions.map((r) => {
      const x = load.acked.get(r) as { key: string; value: string };
      return { revision: r, events: [{ type: 'put', key: x.key, value: x.value }] };
    });
    const seen = watcher.frames.map((f) => ({ revision: f.revision, events: f.events.map((e) => ({ type: e.type, key: e.kv.key, value: e.kv.value })) }));
    assert.deepEqual(seen, expected, 'the watcher on the third node');

    const rows = await logRows(url, from);
    assert.deepEqual([...rows.keys()], revisions, 'the log holds exactly the acknowledged revisions');
    for (const r of revisions) assert.deepEqual(rows.get(r), [load.acked.get(r)], `log row of revision ${r}`);
    await eventually('every view at the last revision', () => [a, b, w].every((n) => n.store.revision >= last));
    const views = [a, b, w].map((n) => n.store.rangeLatest('pipe/', 'pipe0').kvs.map((kv) => [kv.key, kv.modRevision, Buffer.from(kv.value).toString()]));
    assert.deepEqual(views[0], views[2]);
    assert.deepEqual(views[1], views[2]);
  });

  test('connections killed while batches are in flight: writes fail with unavailable, nothing acknowledged is lost, no gap appears', async (t) => {
    const url = await (server as PostgresServer).createDatabase();
    const [a, w] = (await startNodes(url, 2)) as [TestNode, TestNode];
    const from = (await http(`${a.url}/v1/status`)).body.revision + 1;
    const watcher = await WatchClient.open(w.url, 'kill/', from);
    const load = writeLoad([a.url], 'kill/', 64, 50);
    await eventually('load is flowing', () => load.acked.size >= 200, 60_000);

    // Terminate the connections running a chained commit, again and again: some are inserting
    // their rows, some waiting for the batch before them, some committing.
    const killer = new pg.Client({ connectionString: url });
    await killer.connect();
    let killed = 0;
    try {
      for (let round = 0; round < 400 && killed < 25; round++) {
        const res = await killer.query<{ n: string }>(
          `SELECT count(pg_terminate_backend(pid)) AS n FROM pg_stat_activity
            WHERE datname = current_database() AND pid <> pg_backend_pid() AND state = 'active'
              AND query LIKE 'SELECT beacon_commit_chained(%'`,
        );
        killed += Number(res.rows[0]?.n ?? 0);
        await new Promise((r) => setTimeout(r, 15));
      }
    } finally {
      await killer.end();
    }
    assert.ok(killed > 0, 'no chained commit was caught in flight');
    const ackedAfterKills = load.acked.size;
    await eventually('writes flow again after the kills', () => load.acked.size >= ackedAfterKills + 300, 60_000);
    await load.stop();

    t.diagnostic(`${killed} connections killed; ${load.failures.length} writes failed; commits: ${JSON.stringify(backendOf(a).commitStats)}`);
    for (const f of load.failures) assert.equal(f.code, 'unavailable', JSON.stringify(f));
    // Every acknowledged write is in the log at its revision, and the log has no gap.
    const rows = await logRows(url, from);
    const logged = [...rows.keys()];
    assertConsecutive(logged, from, 'log revisions');
    for (const [r, x] of load.acked) assert.deepEqual(rows.get(r), [x], `acknowledged revision ${r}`);
    const last = logged[logged.length - 1] as number;

    // Both nodes' views and the watcher on the other node end with exactly the database's history.
    await eventually('both views at the database head', () => [a, w].every((n) => n.store.revision >= last), 15_000);
    const latest = new Map<string, { revision: number; value: string }>();
    for (const [r, list] of rows) for (const x of list) latest.set(x.key, { revision: r, value: x.value });
    for (const n of [a, w]) {
      const view = new Map(n.store.rangeLatest('kill/', 'kill0').kvs.map((kv) => [kv.key, { revision: kv.modRevision, value: Buffer.from(kv.value).toString() }]));
      assert.deepEqual(view, latest, `view of ${n.url}`);
    }
    await watcher.waitForRevision(last, 30_000);
    watcher.close();
    assert.deepEqual(watcher.problems, []);
    assertConsecutive(
      watcher.frames.map((f) => f.revision),
      from,
      'watcher',
    );
    assert.equal(watcher.lastRevision, last);
  });
  test('a database made before migration 009 is upgraded in place, and a writer that does not know head tokens cuts into a chain safely', async (t) => {
    const url = await (server as PostgresServer).createDatabase();
    // The schema and data of the release before chained commits: version 008, no head token, no function.
    const [old] = (await startNodes(url, 1)) as [TestNode];
    for (let i = 0; i < 20; i++) assert.equal((await http(`${old.url}/v1/kv/up/${i}`, { method: 'PUT', body: { value: `old${i}` } })).status, 200);
    const before = old.store.revision;
    await old.cleanup();
    started.splice(started.indexOf(old), 1);
    // (Migrations 010, the nodes' RESP URLs, 011, the cache ring, and 012, the cluster id, came later: dropped too, so the upgrade runs all four.)
    await sql(url, 'ALTER TABLE beacon_meta DROP COLUMN cluster_id; DELETE FROM beacon_schema_migrations WHERE version = 12');
    await sql(url, 'DROP TABLE beacon_cache_ring; ALTER TABLE beacon_nodes DROP COLUMN cache_keys; DELETE FROM beacon_schema_migrations WHERE version = 11');
    await sql(url, 'ALTER TABLE beacon_nodes DROP COLUMN resp_url; DELETE FROM beacon_schema_migrations WHERE version = 10');
    await sql(url, 'DROP FUNCTION beacon_commit_chained; ALTER TABLE beacon_meta DROP COLUMN head_token; DELETE FROM beacon_schema_migrations WHERE version = 9');

    const [n] = (await startNodes(url, 1)) as [TestNode];
    const versions = (await sql(url, 'SELECT version FROM beacon_schema_migrations ORDER BY version')).rows.map((r) => Number(r.version));
    assert.deepEqual(versions.slice(-4), [9, 10, 11, 12]);
    assert.match(String((await sql(url, 'SELECT cluster_id FROM beacon_meta')).rows[0]?.cluster_id), /^[0-9a-f-]{36}$/, 'the upgrade gave the cluster an id');
    await eventually('the upgraded node advertises its RESP listener', async () => (await sql(url, 'SELECT resp_url FROM beacon_nodes WHERE resp_url = $1', [n.resp?.url])).rowCount === 1);
    assert.equal(n.store.revision, before);
    for (let i = 0; i < 20; i++) assert.equal(Buffer.from(n.store.get(`up/${i}`)?.value ?? []).toString(), `old${i}`);

    const watcher = await WatchClient.open(n.url, 'up/', before + 1);
    const load = writeLoad([n.url], 'up/', 32, 20);
    await eventually('load is flowing', () => load.acked.size >= 200, 60_000);
    // A writer of the old release commits between this node's batches: it takes the counter row
    // lock, writes the next revision and moves the head without touching the head token.
    const foreign: number[] = [];
    for (let i = 0; i < 5; i++) {
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      try {
        await c.query('BEGIN');
        const head = Number((await c.query('SELECT revision FROM beacon_meta WHERE id = 1 FOR UPDATE')).rows[0].revision);
        await c.query(
          `INSERT INTO beacon_kv_log (key, revision, create_revision, version, lease, value, deleted, ts, meta)
           VALUES ($1, $2, $2, 1, 0, $3, false, $4, null)`,
          [Buffer.from(`up/foreign/${i}`), head + 1, Buffer.from(`f${i}`), Date.now()],
        );
        await c.query('UPDATE beacon_meta SET revision = $1 WHERE id = 1', [head + 1]);
        await c.query(`SELECT pg_notify('beacon_changes', $1)`, [`${head + 1}:0:0`]);
        await c.query('COMMIT');
        foreign.push(head + 1);
      } finally {
        await c.end();
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    const ackedNow = load.acked.size;
    await eventually('writes flow on after the old writer', () => load.acked.size >= ackedNow + 200, 60_000);
    await load.stop();
    t.diagnostic(`commits: ${JSON.stringify(backendOf(n).commitStats)}`);
    assert.deepEqual(load.failures, []);
    assert.ok(backendOf(n).commitStats.chained > 0, JSON.stringify(backendOf(n).commitStats));

    const rows = await logRows(url, before + 1);
    const logged = [...rows.keys()];
    assertConsecutive(logged, before + 1, 'log revisions');
    for (const [r, x] of load.acked) assert.deepEqual(rows.get(r), [x], `acknowledged revision ${r}`);
    for (const [i, r] of foreign.entries()) assert.deepEqual(rows.get(r), [{ key: `up/foreign/${i}`, value: `f${i}` }]);
    assert.equal(load.acked.size + foreign.length, logged.length, 'every revision is an acknowledged write or the old writer\'s');
    const last = logged[logged.length - 1] as number;
    await watcher.waitForRevision(last, 30_000);
    watcher.close();
    assertConsecutive(
      watcher.frames.map((f) => f.revision),
      before + 1,
      'watcher',
    );
    await eventually('the view at the database head', () => n.store.revision >= last);
    for (const [i] of foreign.entries()) assert.equal(Buffer.from(n.store.get(`up/foreign/${i}`)?.value ?? []).toString(), `f${i}`);
  });
  test('compare-and-swap increments on one node never lose an update while batches are chained (a compare sees the writes of the batches in flight before it)', async (t) => {
    const url = await (server as PostgresServer).createDatabase();
    const [n] = (await startNodes(url, 1)) as [TestNode];
    const counters = ['cas/a', 'cas/b', 'cas/c'];
    for (const k of counters) assert.equal((await http(`${n.url}/v1/kv/${k}`, { method: 'PUT', body: { value: '0' } })).status, 200);
    // Plain writes keep several batches in flight, so the increments land in chained batches.
    const filler = writeLoad([n.url], 'fill/', 32, 50);
    const chainedBefore = backendOf(n).commitStats.chained;
    let successes = 0;
    let conflicts = 0;
    await Promise.all(
      Array.from({ length: 24 }, async (_, c) => {
        const key = counters[c % counters.length] as string;
        for (let done = 0; done < 8; ) {
          // A serializable read: the view may lag the batches in flight, so many compares fail; none may wrongly pass.
          const cur = await http(`${n.url}/v1/kv/${key}`);
          const res = await http(`${n.url}/v1/txn`, {
            method: 'POST',
            body: {
              compare: [{ key, target: 'modRevision', result: '=', value: cur.body.kv.modRevision }],
              success: [{ put: { key, value: String(Number(cur.body.kv.value) + 1) } }],
            },
          });
          assert.equal(res.status, 200, JSON.stringify(res.body));
          if (res.body.succeeded) {
            successes++;
            done++;
          } else conflicts++;
        }
      }),
    );
    await filler.stop();
    t.diagnostic(`${successes} increments, ${conflicts} failed compares; commits: ${JSON.stringify(backendOf(n).commitStats)}`);
    assert.deepEqual(filler.failures, []);
    assert.ok(backendOf(n).commitStats.chained > chainedBefore, 'no batch was chained during the increments');
    assert.equal(successes, 24 * 8);
    let total = 0;
    for (const k of counters) {
      const res = await http(`${n.url}/v1/kv/${k}?consistency=linearizable`);
      total += Number(res.body.kv.value);
    }
    assert.equal(total, successes, 'every acknowledged increment is in the counters');
  });
});
