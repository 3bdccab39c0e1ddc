/** Leases: time-limited grants that keys attach to, with an expiry queue over a (fake-able) clock. */
export { Lessor, MAX_LEASE_TTL_SECONDS } from './lessor.js';
export type { LeaseState, Clock } from './lessor.js';
