import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MIN_CALIBRATION_REPORTS, calibrateThreshold } from './calibration.js';
import { ROLLOUT_BUCKETS, rolloutBucket, shareThreshold } from './targeting.js';

const below = (buckets: number[], t: number): number => buckets.filter((b) => b < t).length;

describe('calibrated step thresholds', () => {
  it('puts exactly round(share × n) of the reporting clients below the threshold, where the hash alone misses by binomial noise', () => {
    let worstHash = 0;
    for (let run = 0; run < 50; run++) {
      const buckets = Array.from({ length: 700 }, (_, i) => rolloutBucket('app/flags', `r${run}`, `instance-${i}`));
      for (const share of [1, 10, 25, 50, 90]) {
        const c = calibrateThreshold(buckets, share);
        assert.equal(c.calibrated, true);
        assert.equal(c.reports, 700);
        const k = Math.round((share / 100) * 700);
        // Ties at the cut may move a client or two; otherwise the count is exact.
        assert.ok(Math.abs(below(buckets, c.threshold) - k) <= 2, `run ${run} share ${share}: ${below(buckets, c.threshold)} vs ${k}`);
        worstHash = Math.max(worstHash, Math.abs(below(buckets, shareThreshold(share)) - k));
      }
    }
    // The same 50 fleets through the hash alone: some step is off by several points (7 clients = 1 point).
    assert.ok(worstHash >= 14, `the hash alone was never off by 2 points (${worstHash} clients): the comparison proves nothing`);
  });

  it('chooses the midpoint between the buckets around the cut', () => {
    const buckets = [100, 200, 300, 400, ...Array.from({ length: 16 }, (_, i) => 1000 + i * 100)];
    // 20 reports, 10 % → 2 clients in: the cut lies between 200 and 300.
    assert.deepEqual(calibrateThreshold(buckets, 10), { threshold: 250, reports: 20, calibrated: true });
    // 0 % of them (share 1 % of 20 rounds to 0): between 0 and the smallest bucket.
    assert.equal(calibrateThreshold(buckets, 1).threshold, 50);
  });

  it('never goes below the previous threshold, so a client that was in stays in', () => {
    const buckets = Array.from({ length: 100 }, (_, i) => i * 10);
    assert.equal(calibrateThreshold(buckets, 50).threshold, 495);
    assert.equal(calibrateThreshold(buckets, 50, 800).threshold, 800);
  });

  it('falls back to the share with fewer than 20 reports, and takes every bucket at 100 %', () => {
    const few = Array.from({ length: MIN_CALIBRATION_REPORTS - 1 }, (_, i) => i);
    assert.deepEqual(calibrateThreshold(few, 50), { threshold: 5000, reports: 19, calibrated: false });
    assert.deepEqual(calibrateThreshold([], 10, 1200), { threshold: 1200, reports: 0, calibrated: false });
    assert.equal(calibrateThreshold(Array.from({ length: 50 }, () => 9999), 100).threshold, ROLLOUT_BUCKETS);
  });

  it('handles clients sharing the bucket at the cut by taking the count nearer the target', () => {
    // 20 clients: 8 distinct low buckets, then 4 at 500, then 8 high. 50 % → 10 in; the cut falls inside the 500s.
    const buckets = [...[10, 20, 30, 40, 50, 60, 70, 80], 500, 500, 500, 500, ...[900, 910, 920, 930, 940, 950, 960, 970]];
    const c = calibrateThreshold(buckets, 50);
    // None of the 500s (8 in, 2 short) or all of them (12 in, 2 over): tied, the lower is taken.
    assert.equal(c.threshold, 500);
    assert.equal(below(buckets, c.threshold), 8);
    // 55 % → 11: all four (12, 1 over) is nearer than none (8, 3 short).
    assert.equal(calibrateThreshold(buckets, 55).threshold, 501);
  });
});
