/**
 * How large each step of a compaction is. A compaction deletes superseded log rows in steps, one
 * write transaction each, and every write that arrives meanwhile waits for the step in progress
 * (one writer). A fixed number of revisions per step costs anything from a few milliseconds to a
 * few hundred, depending on how many rows and index pages those revisions touch and on how busy
 * the machine is (issue 17: 2,000 revisions took 190–280 ms on a busy 2-core VM, and the p99 of
 * concurrent PUTs rose sixfold). So the step is sized by time: it halves after a step slower than
 * {@link COMPACTION_STEP_TARGET_MS} and doubles after one faster than half of it. Between two
 * steps the compaction rests as long as the step took, so it never takes more than about half of
 * the writer's time.
 */

/** Wall time one compaction step aims at, in ms (including its wait for the writer). */
export const COMPACTION_STEP_TARGET_MS = 10;
/** Fewest revisions per step: below this, per-transaction costs dominate. */
export const COMPACTION_STEP_MIN = 32;
/** Most revisions per step. */
export const COMPACTION_STEP_MAX = 8192;
/** Longest rest between two steps, in ms (a rest lasts as long as the step before it took). */
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
