/**
 * The shared time-series store against a real PostgreSQL, in process with a controlled clock:
 * flushes from one node are read by another, compaction merges a block's rows without changing
 * what a query answers, re-flushed samples are not doubled, closed blocks yield rollups that
 * long-range queries use once the raw samples are past their retention, and retention deletes
 * the raw chunks.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { createPostgresBackend } from '../../src/backend/postgres/index.js';
import { Tsdb, type SeriesInput, type SeriesSamples } from '../../src/obs/tsdb/index.js';
import { PostgresTsdb, RAW_BLOCK_MS } from '../../src/obs/tsdb-postgres/index.js';
import { startPostgres, type PostgresServer } from '../helpers/postgres.js';

const HOUR = 3_600_000;
const STEP = 15_000;

let server: PostgresServer | undefined;
let url = '';
let db: pg.Client | undefined;

before(async () => {
  server = await startPostgres();
  url = await server.createDatabase();
  const backend = createPostgresBackend(url);
  await backend.open(); // runs the migrations, 007 included
  await backend.close();
  db = new pg.Client({ connectionString: url });
  await db.connect();
});

after(async () => {
  await db?.end();
  await server?.stop();
});

/** One node: a local in-memory store and its shared store, on a clock the test moves. */
function node(clock: { now: number }): { local: Tsdb; shared: PostgresTsdb } {
  const local = new Tsdb({ dir: null, retentionMs: 8 * HOUR, now: () => clock.now });
  const shared = new PostgresTsdb({ url, local, dir: null, compactIntervalMs: 0, now: () => clock.now });
  return { local, shared };
}

function series(name: string, from: number, to: number): SeriesInput {
  const ts: number[] = [];
  for (let t = from; t < to; t += STEP) ts.push(t);
  return {
    labels: [
      { name: '__name__', value: name },
      { name: 'job', value: 'api' },
    ],
    timestamps: Float64Array.from(ts),
    values: Float64Array.from(ts, (t) => (t - from) / STEP),
  };
}

function flat(r: SeriesSamples[]): Record<string, [number, number][]> {
  const out: Record<string, [number, number][]> = {};
  for (const s of r) out[s.labels.map((l) => `${l.name}=${l.value}`).join(',')] = Array.from(s.timestamps, (t, i) => [t, s.values[i] as number]);
  return out;
}

async function rows(): Promise<{ kind: number; level: number; n: number }[]> {
  const r = await (db as pg.Client).query<{ kind: number; level: number; n: string }>(
    'SELECT kind, level, count(*) AS n FROM beacon_tsdb_chunks GROUP BY kind, level ORDER BY kind, level',
  );
  return r.rows.map((x) => ({ kind: x.kind, level: x.level, n: Number(x.n) }));
}

describe('shared time-series store in PostgreSQL', () => {
  const base = Math.floor(Date.now() / RAW_BLOCK_MS) * RAW_BLOCK_MS;
  const clock = { now: base };
  const start = base - 7 * HOUR;
  const end = base - HOUR;
  let writer: ReturnType<typeof node>;
  let reader: ReturnType<typeof node>;

  before(() => {
    writer = node(clock);
    reader = node(clock);
  });

  after(async () => {
    await writer.shared.close();
    await reader.shared.close();
  });

  test('flushed in many small pieces, the samples are read whole by another node, and compaction changes nothing a query sees', async () => {
    // 24 pushes of 15 minutes per series, a flush after each: many level-0 rows per block.
    for (let from = start; from < end; from += 15 * 60_000) {
      writer.local.append([series('load', from, from + 15 * 60_000), series('errors', from, from + 15 * 60_000)]);
      const f = await writer.shared.flush();
      assert.equal(f.samples, 2 * 60);
    }
    const expected = flat(writer.local.select([{ name: 'job', op: '=', value: 'api' }], start, end));
    assert.equal(Object.keys(expected).length, 2);
    assert.equal(reader.local.seriesCount, 0, 'the reading node holds nothing of its own');
    const before = flat(await reader.shared.select([{ name: 'job', op: '=', value: 'api' }], start, end));
    assert.deepEqual(before, expected);
    assert.deepEqual(await rows(), [{ kind: 0, level: 0, n: 2 * 24 }]);

    const c = await writer.shared.compact();
    assert.equal(c.ran, true);
    // Per series: 3 closed raw blocks merged for good (level 2) with their 5 m and 1 h rollups
    // written (level 0 until the next pass merges them), and the open block merged (level 1).
    const after = await rows();
    assert.deepEqual(after.filter((r) => r.kind === 0), [{ kind: 0, level: 1, n: 2 }, { kind: 0, level: 2, n: 2 * 3 }]);
    assert.ok(after.some((r) => r.kind === 1) && after.some((r) => r.kind === 2), JSON.stringify(after));
    assert.deepEqual(flat(await reader.shared.select([{ name: 'job', op: '=', value: 'api' }], start, end)), expected);
  });

  test('samples flushed twice (a restart replaying its outbox) are not doubled', async () => {
    const again = series('load', start, start + 15 * 60_000); // the writer's first push, again
    // The writer's local store already has them: append them to a third node's store and flush from there.
    const other = node(clock);
    other.local.append([again]);
    await other.shared.flush();
    await other.shared.close();
    const got = flat(await reader.shared.select([{ name: '__name__', op: '=', value: 'load' }], start, end));
    const want = flat(writer.local.select([{ name: '__name__', op: '=', value: 'load' }], start, end));
    assert.deepEqual(got, want);
    await writer.shared.compact();
    assert.deepEqual(flat(await reader.shared.select([{ name: '__name__', op: '=', value: 'load' }], start, end)), want);
  });

  test('past the raw retention, a long-range query reads the 5 m rollup and retention deletes the raw chunks', async () => {
    await writer.shared.compact(); // merges the rollup rows
    clock.now = base + 4 * HOUR; // raw floor: base - 4 h
    const c = await writer.shared.compact();
    assert.ok(c.expired > 0, 'raw chunks past the 8 h retention were deleted');
    const floor = clock.now - 8 * HOUR;
    const got = await reader.shared.select([{ name: '__name__', op: '=', value: 'errors' }], start, end, { stepMs: 5 * 60_000 });
    assert.equal(got.length, 1);
    const ts = Array.from((got[0] as SeriesSamples).timestamps);
    const old = ts.filter((t) => t < floor);
    const recent = ts.filter((t) => t >= floor);
    // Below the floor: the last sample of each 5-minute interval; above it: every raw sample.
    assert.deepEqual(old, Array.from({ length: (floor - start) / 300_000 }, (_, i) => start + i * 300_000 + 300_000 - STEP));
    assert.deepEqual(recent, Array.from({ length: (end - floor) / STEP }, (_, i) => floor + i * STEP));
    const values = (got[0] as SeriesSamples).values;
    assert.equal(values[0], 19, 'a rollup sample keeps its value (the 20th raw sample of the interval)');
    // Raw samples below the floor are gone from PostgreSQL: a raw query has only the recent part.
    const raw = await reader.shared.select([{ name: '__name__', op: '=', value: 'errors' }], start, end);
    assert.equal(Math.min(...Array.from((raw[0] as SeriesSamples).timestamps)), floor);
  });

  test('while PostgreSQL is down a flush fails and keeps its samples; once it is back they are flushed', async (t) => {
    if (server?.restartable !== true) return t.skip('an external PostgreSQL cannot be stopped');
    const from = clock.now - 30 * 60_000;
    writer.local.append([series('outage', from, from + 60_000)]);
    await (db as pg.Client).end();
    db = undefined;
    await server.shutdown();
    try {
      await assert.rejects(writer.shared.flush(), (err: Error) => err.name === 'UnavailableError');
      assert.equal(writer.shared.pendingSamples, 4, 'the samples wait in the outbox');
    } finally {
      await server.start();
    }
    const f = await writer.shared.flush();
    assert.equal(f.samples, 4);
    assert.equal(writer.shared.pendingSamples, 0);
    const got = await reader.shared.select([{ name: '__name__', op: '=', value: 'outage' }], from, from + 60_000);
    assert.deepEqual(Array.from((got[0] as SeriesSamples).values), [0, 1, 2, 3]);
  });
});
