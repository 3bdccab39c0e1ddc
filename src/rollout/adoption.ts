/** What the SDK clients report they applied, per rollout, held in memory on the node they report to. */

/** The variant a client applied: the rollout's candidate or the config's current version. */
export type AppliedVariant = 'candidate' | 'current';

/** The most clients remembered per rollout; beyond it the oldest reports are forgotten. */
export const MAX_REPORTED_CLIENTS = 100_000;
/** Reports older than this are not counted (a client that went away), ms. */
export const REPORT_TTL_MS = 15 * 60_000;

/**
 * Counts of the variant each client last reported for a rollout. It keeps no more than
 * {@link MAX_REPORTED_CLIENTS} clients per rollout and {@link MAX_ROLLOUTS_TRACKED} rollouts,
 * so a flood of reports costs bounded memory. Counts are per node: in PostgreSQL mode a client
 * reports to the node it is connected to.
 */
export class AdoptionTracker {
  private readonly byRollout = new Map<string, Map<string, { variant: AppliedVariant; at: number }>>();

  constructor(private readonly now: () => number = Date.now) {}

  /** Records that `clientId` applied `variant` of rollout `rolloutId`. */
  report(rolloutId: string, clientId: string, variant: AppliedVariant): void {
    let m = this.byRollout.get(rolloutId);
    if (m === undefined) {
      if (this.byRollout.size >= MAX_ROLLOUTS_TRACKED) this.byRollout.delete(this.byRollout.keys().next().value as string);
      m = new Map();
      this.byRollout.set(rolloutId, m);
    }
    m.delete(clientId);
    if (m.size >= MAX_REPORTED_CLIENTS) m.delete(m.keys().next().value as string);
    m.set(clientId, { variant, at: this.now() });
  }

  /** How many clients reported each variant within {@link REPORT_TTL_MS}. */
  counts(rolloutId: string): Record<AppliedVariant, number> {
    const out: Record<AppliedVariant, number> = { candidate: 0, current: 0 };
    const since = this.now() - REPORT_TTL_MS;
    for (const e of this.byRollout.get(rolloutId)?.values() ?? []) if (e.at >= since) out[e.variant]++;
    return out;
  }
}

/** The most rollouts whose reports are kept. */
export const MAX_ROLLOUTS_TRACKED = 1000;
