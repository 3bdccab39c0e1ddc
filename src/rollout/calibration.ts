/**
 * Calibrated step thresholds (issue 16, docs/rollout.md "Calibrated steps"). A client is in a
 * step when its stable bucket is below the step's threshold. With the threshold fixed at the
 * share (`share × 100` of 10,000 buckets) the share on a small fleet is binomial around the
 * target (±1.9 points at 50 % of 700 clients), as with LaunchDarkly-style hashing. When a step
 * starts, the driver instead sets the threshold at the bucket quantile of the selected clients
 * that reported, so exactly the step's share of them is in; the SDK still evaluates
 * `bucket < threshold` locally and the server assigns nothing per client.
 */
import { ROLLOUT_BUCKETS, shareThreshold } from './targeting.js';

/** The fewest selected reporting clients a threshold is calibrated from; with fewer the threshold is the share's. */
export const MIN_CALIBRATION_REPORTS = 20;

/** A step's threshold and how it was chosen. */
export interface Calibration {
  /** Buckets below it are in the step, in [0, ROLLOUT_BUCKETS]. */
  threshold: number;
  /** How many selected clients' buckets it was chosen from. */
  reports: number;
  /** False when it is the share's threshold (too few reports, or the step is 100 %). */
  calibrated: boolean;
}

/**
 * The threshold of a step of `sharePercent` given the buckets of the selected clients that
 * reported: the smallest-count-error cut of the sorted buckets at `round(share × n)` clients,
 * placed midway between the two buckets around the cut (so clients that appear later are in
 * with probability ≈ the share). Never below `previousThreshold`, so a client that was in stays
 * in; never above {@link ROLLOUT_BUCKETS}. With fewer than `minReports` buckets, or at 100 %, it
 * is {@link shareThreshold} (raised to `previousThreshold` if that is higher).
 */
export function calibrateThreshold(buckets: readonly number[], sharePercent: number, previousThreshold = 0, minReports = MIN_CALIBRATION_REPORTS): Calibration {
  const n = buckets.length;
  if (sharePercent >= 100) return { threshold: ROLLOUT_BUCKETS, reports: n, calibrated: false };
  if (n < minReports) return { threshold: Math.max(shareThreshold(sharePercent), previousThreshold), reports: n, calibrated: false };
  const sorted = Float64Array.from(buckets).sort();
  const k = Math.round((sharePercent / 100) * n);
  const lo = k === 0 ? 0 : (sorted[k - 1] as number) + 1;
  const hi = k === n ? ROLLOUT_BUCKETS : (sorted[k] as number);
  let t: number;
  if (lo <= hi) {
    t = Math.floor((lo + hi) / 2);
  } else {
    // Clients share the bucket at the cut: take all or none of them, whichever lands nearer k.
    const b = sorted[k] as number;
    let below = 0;
    let atOrBelow = 0;
    for (const x of sorted) {
      if (x < b) below++;
      if (x <= b) atOrBelow++;
    }
    t = k - below <= atOrBelow - k ? b : b + 1;
  }
  return { threshold: Math.min(ROLLOUT_BUCKETS, Math.max(t, previousThreshold)), reports: n, calibrated: true };
}
