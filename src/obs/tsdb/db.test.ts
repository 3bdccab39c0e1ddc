import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { InvalidArgumentError, TooLargeError } from '../../errors.js';
import { STALE_MARKER, Tsdb, isStaleMarker, type SeriesInput } from './db.js';
import { TooManySamplesError, type Labels } from './types.js';

const T0 = 1_700_000_000_000;

function labels(name: string, extra: Record<string, string> = {}): Labels {
  return [{ name: '__name__', value: name }, ...Object.entries(extra).map(([n, v]) => ({ name: n, value: v }))].sort((a, b) =>
    a.name < b.name ? -1 : a.name > b.name ? 1 : 0,
  );
}

function input(l: Labels, ts: number[], vs: number[]): SeriesInput {
  return { labels: l, timestamps: ts, values: Float64Array.from(vs) };
}

const slow = { fsyncIntervalMs: 3_600_000, checkpointIntervalMs: 3_600_000 };

describe('Tsdb', () => {
  it('stores series by label set and selects them with all four matchers', () => {
    const db = new Tsdb({ dir: null, now: () => T0 + 3_600_000 });
    db.append([
      input(labels('up', { job: 'api', instance: 'a' }), [T0, T0 + 15_000], [1, 1]),
      input(labels('up', { job: 'web', instance: 'b' }), [T0], [0]),
      input(labels('http_requests_total', { job: 'api' }), [T0], [5]),
    ]);
    assert.equal(db.seriesCount, 3);
    const sel = (m: Parameters<Tsdb['select']>[0]) => db.select(m, T0, T0 + 60_000).map((s) => s.labels.find((l) => l.name === 'job')?.value).sort();
    assert.deepEqual(sel([{ name: '__name__', op: '=', value: 'up' }]), ['api', 'web']);
    assert.deepEqual(sel([{ name: '__name__', op: '=', value: 'up' }, { name: 'job', op: '!=', value: 'api' }]), ['web']);
    assert.deepEqual(sel([{ name: 'job', op: '=~', value: 'a.*' }]), ['api', 'api']);
    assert.deepEqual(sel([{ name: '__name__', op: '=~', value: '.+' }, { name: 'instance', op: '!~', value: 'a|b' }]), ['api']);
    const up = db.select([{ name: 'instance', op: '=', value: 'a' }], T0, T0 + 60_000)[0];
    assert.deepEqual(Array.from(up?.timestamps ?? []), [T0, T0 + 15_000]);
    assert.deepEqual(db.labelValues('job', [], T0, T0 + 1), ['api', 'web']);
    assert.deepEqual(db.labelNames([{ name: 'job', op: '=', value: 'web' }], T0, T0 + 1), ['__name__', 'instance', 'job']);
    assert.equal(db.series([{ name: '__name__', op: '=', value: 'up' }], T0 + 10_000, T0 + 20_000).length, 1);
  });

  it('accepts out-of-order samples inside the window, refuses beyond it, and refuses a push whole', () => {
    const db = new Tsdb({ dir: null, oooWindowMs: 60_000, now: () => T0 + 3_600_000 });
    const a = labels('x', { s: 'a' });
    const b = labels('x', { s: 'b' });
    db.append([input(a, [T0 + 120_000], [2])]);
    db.append([input(a, [T0 + 90_000], [1.5])]); // 30 s late: inside the window
    assert.throws(() => db.append([input(b, [T0], [9]), input(a, [T0], [1])]), (e: unknown) => e instanceof InvalidArgumentError && /out of order/.test(e.message));
    assert.equal(db.seriesCount, 1, 'the refused push created no series');
    assert.throws(() => db.append([input(a, [T0 + 120_000], [3])]), /duplicate sample/);
    db.append([input(a, [T0 + 120_000], [2])]); // identical duplicate: ignored
    const got = db.select([{ name: 's', op: '=', value: 'a' }], T0, T0 + 200_000)[0];
    assert.deepEqual(Array.from(got?.timestamps ?? []), [T0 + 90_000, T0 + 120_000]);
    assert.deepEqual(Array.from(got?.values ?? []), [1.5, 2]);
  });

  it('enforces the series limits and the sample limit of a query', () => {
    const db = new Tsdb({ dir: null, maxSeries: 5, maxNewSeriesPerPush: 3, now: () => T0 });
    const many = (n: number, from = 0) => Array.from({ length: n }, (_, i) => input(labels('m', { i: String(from + i) }), [T0], [i]));
    assert.throws(() => db.append(many(4)), TooLargeError);
    db.append(many(3));
    assert.throws(() => db.append(many(3, 10)), TooLargeError);
    assert.equal(db.seriesCount, 3);
    assert.throws(() => db.select([{ name: '__name__', op: '=', value: 'm' }], T0, T0, { maxSamples: 2 }), TooManySamplesError);
  });

  it('keeps the stale marker exactly', () => {
    const db = new Tsdb({ dir: null, now: () => T0 });
    const v = new Float64Array(2); // not from an array literal: a plain array of doubles quiets a signalling NaN
    v[0] = 1;
    v[1] = STALE_MARKER;
    db.append([{ labels: labels('g'), timestamps: [T0 - 1000, T0], values: v }]);
    const got = db.select([{ name: '__name__', op: '=', value: 'g' }], 0, T0)[0];
    assert.ok(got !== undefined && isStaleMarker(got.values[1] as number) && !isStaleMarker(Number.NaN));
  });

  it('recovers every acknowledged sample after a crash (no close), and after a checkpoint', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tsdb-test-'));
    try {
      let now = T0;
      const db = new Tsdb({ dir, ...slow, now: () => now });
      const l = labels('c', { job: 'j' });
      now = T0 + 400 * 15_000;
      for (let i = 0; i < 300; i++) db.append([input(l, [T0 + i * 15_000], [i])]); // 2 closed chunks + a head
      db.checkpoint();
      for (let i = 300; i < 350; i++) db.append([input(l, [T0 + i * 15_000], [i])]);
      db.append([input(l, [T0 + 349 * 15_000 - 7_000], [-1])]); // out of order, after the checkpoint
      // No close(): the process "dies" here.
      const again = new Tsdb({ dir, ...slow, now: () => now });
      const got = again.select([{ name: '__name__', op: '=', value: 'c' }], 0, Infinity)[0];
      assert.equal(got?.timestamps.length, 351);
      assert.equal(got?.values[got.values.length - 1], 349);
      assert.equal(got?.values[got.values.length - 2], -1);
      again.append([input(l, [T0 + 350 * 15_000], [350])]);
      again.close(); // `db` is never closed: it stands for the killed process
      const third = new Tsdb({ dir, ...slow, now: () => now });
      assert.equal(third.select([{ name: '__name__', op: '=', value: 'c' }], 0, Infinity)[0]?.timestamps.length, 352);
      third.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('drops samples past retention and answers old ranges from a rollup when the step allows', () => {
    const T0 = 1_699_999_200_000; // on an hour boundary, so 5-minute buckets start at T0
    let now = T0;
    const db = new Tsdb({ dir: null, retentionMs: 3_600_000, rollups: [{ intervalMs: 300_000, retentionMs: 86_400_000 }], now: () => now });
    const l = labels('r');
    for (let i = 0; i < 240; i++) db.append([input(l, [T0 + i * 15_000], [i])]); // one hour
    now = T0 + 2 * 3_600_000;
    db.append([input(l, [now], [1000])]);
    db.applyRetention();
    const raw = db.select([{ name: '__name__', op: '=', value: 'r' }], T0, now)[0];
    assert.deepEqual(Array.from(raw?.values ?? []), [1000], 'raw samples older than retention are gone');
    const rolled = db.select([{ name: '__name__', op: '=', value: 'r' }], T0, now, { stepMs: 600_000 })[0];
    // The last sample of each 5-minute bucket: 19, 39, …, 239, then the raw 1000.
    assert.deepEqual(Array.from(rolled?.values ?? []), [19, 39, 59, 79, 99, 119, 139, 159, 179, 199, 219, 239, 1000]);
  });
});
