/** Staged config rollouts (issue 16): the stored model and its driver, targeting shared with the SDK, and adoption counts. */
export { RolloutService, ROLLOUT_KEY_PREFIX, MAX_BAKE_MS, MAX_STEPS, MAX_GUARDS, MAX_HISTORY, guardText, rolloutShare } from './service.js';
export type { Rollout, RolloutGuard, RolloutSpec, RolloutState, RolloutTransition, GuardChecker, RolloutServiceOptions } from './service.js';
export { parseSelector, matchesSelector, rolloutBucket, inShare, isTargeted, ROLLOUT_BUCKETS } from './targeting.js';
export type { SelectorRequirement } from './targeting.js';
export { AdoptionTracker, MAX_REPORTED_CLIENTS, REPORT_TTL_MS, MAX_ROLLOUTS_TRACKED } from './adoption.js';
export type { AppliedVariant } from './adoption.js';
