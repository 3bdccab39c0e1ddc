/** Staged config rollouts (issue 16): the stored model and its driver, targeting shared with the SDK, calibrated thresholds, and adoption counts. */
export { RolloutService, ROLLOUT_KEY_PREFIX, MAX_BAKE_MS, MAX_STEPS, MAX_GUARDS, MAX_HISTORY, guardText, rolloutShare, rolloutThreshold } from './service.js';
export type { Rollout, RolloutGuard, RolloutSpec, RolloutState, RolloutTransition, GuardChecker, RolloutServiceOptions } from './service.js';
export { parseSelector, matchesSelector, rolloutBucket, inShare, isTargeted, shareThreshold, ROLLOUT_BUCKETS } from './targeting.js';
export type { SelectorRequirement } from './targeting.js';
export { calibrateThreshold, MIN_CALIBRATION_REPORTS } from './calibration.js';
export type { Calibration } from './calibration.js';
export { AdoptionLedger, ADOPTION_WINDOW_MS, ADOPTION_FLUSH_MS, MAX_PENDING_REPORTS } from './adoption.js';
export type { AdoptionReport, AdoptionTable, AppliedVariant } from './adoption.js';
