/**
 * How large each step of a compaction is, and how long it rests after one. A compaction deletes
 * superseded log rows in steps, one write transaction each, and every write that arrives
 * meanwhile waits for the step in progress (one writer). A fixed number of revisions per step
 * costs anything from a few milliseconds to a few hundred, depending on how many rows and index
 * pages those revisions touch and on how busy the machine is (issue 17: 2,000 revisions took
 * 190–280 ms on a busy 2-core VM, and the p99 of concurrent PUTs rose sixfold). So the step is
 * sized by time: it halves after a step slower than {@link COMPACTION_STEP_TARGET_MS} and doubles
 * after one faster than half of it. Between two steps the compaction rests: as long as the step
 * took while nothing else writes, three times as long while clients write (see
 * {@link compactionRestMs}). Measured on the 2-core VM (docs/performance.md, issue 17 target 5):
 * 10 ms steps with a rest as long raised the p99 of concurrent PUTs 2.4–3.2×; 4 ms steps with
 * three times the rest while clients write, 1.6–1.8×.
 */

/** Wall time one compaction step aims at, in ms (including its wait for the writer). */
export const COMPACTION_STEP_TARGET_MS = 4;
/** Fewest revisions per step: below this, per-transaction costs dominate. */
export const COMPACTION_STEP_MIN = 32;
/** Most revisions per step. */
export const COMPACTION_STEP_MAX = 8192;
/** Rest after a step while clients write, as a multiple of the step's time: about a quarter of the writer goes to the compaction. */
export const COMPACTION_REST_FACTOR_BUSY = 3;
/** Longest rest between two steps, in ms. */
export const COMPACTION_REST_MAX_MS = 100;
/** Revisions of the first step. */
export const COMPACTION_STEP_START = 256;

/**
 * The size of the next compaction step, in revisions, from the size of the last one and how long
 * it took in ms: half after a step over the target, double after one under half of it, else the
 * same; always within [{@link COMPACTION_STEP_MIN}, {@link COMPACTION_STEP_MAX}].
 */
export function nextCompactionStep(step: number, tookMs: number, targetMs = COMPACTION_STEP_TARGET_MS): number {
  let next = step;
  if (tookMs > targetMs) next = Math.floor(step / 2);
  else if (tookMs < targetMs / 2) next = step * 2;
  return Math.min(COMPACTION_STEP_MAX, Math.max(COMPACTION_STEP_MIN, next));
}

/**
 * The rest after a compaction step that took `tookMs`, in ms: as long as the step when no client
 * write was committed since the step before (the compaction then takes about half of the writer),
 * {@link COMPACTION_REST_FACTOR_BUSY} times as long when one was (a quarter), at most
 * {@link COMPACTION_REST_MAX_MS}.
 */
export function compactionRestMs(tookMs: number, clientsWrote: boolean): number {
  return Math.min(COMPACTION_REST_MAX_MS, (clientsWrote ? COMPACTION_REST_FACTOR_BUSY : 1) * Math.max(0, tookMs));
}
