/**
 * Wiring of staged rollouts (issue 16) into a node: guards checked against the node's alert
 * engine and time-series store, transitions noted in the audit log, rollbacks notified through
 * the alert receivers, adoption reports in the backend's table, and the driver's timer on the
 * node that drives lease expiry (which also drops the adoption rows of finished rollouts).
 */
import type { RolloutContext } from '../api/http/rollout-routes.js';
import { guardStatesOf } from '../api/http/rollout-routes.js';
import type { AuditLog } from '../audit/index.js';
import { InvalidArgumentError } from '../errors.js';
import type { Store } from '../kv/index.js';
import type { Logger } from '../obs/index.js';
import type { OutgoingAlert, RuleManager } from '../obs/alerting/index.js';
import { evaluateInstant, parseExpr } from '../obs/promql/index.js';
import type { Querier } from '../obs/tsdb/index.js';
import { AdoptionLedger, RolloutService, guardText, type AdoptionTable, type GuardChecker, type Rollout, type RolloutGuard } from '../rollout/index.js';

/** The alert name of the notification sent when a rollout is rolled back automatically. */
export const ROLLBACK_ALERT_NAME = 'BeaconRolloutRolledBack';
/** How long a rollback notification stays firing at the receivers, ms (it is sent once). */
const ROLLBACK_NOTICE_MS = 5 * 60_000;
/** How often the driver drops adoption rows of finished rollouts and silent clients, ms. */
const ADOPTION_PRUNE_MS = 60_000;

/** What {@link startRollouts} needs from the node. */
export interface RolloutWiring {
  store: Store;
  rules: RuleManager;
  querier: Querier;
  audit: AuditLog;
  logger: Logger;
  externalURL: string;
  /** Whether this node drives rollouts now (the expiry leader). */
  isDriver: () => boolean;
  /** The node's alert send path (Alertmanagers and the built-in notifier). */
  send: (alerts: OutgoingAlert[]) => void;
  /** Where adoption reports are kept: the node's backend (its `rollout_adoption` table). */
  adoption: AdoptionTable;
  /** Driver interval, ms. Default 1000. */
  tickMs?: number;
}

/** Guards over the alert engine: a rule name must name an alerting rule; an expression must parse. */
export function createGuardChecker(rules: RuleManager, querier: Querier): GuardChecker {
  return {
    validate(g: RolloutGuard): void {
      if ('alert' in g) {
        const known = rules.groups().some((gr) => gr.rules.some((s) => s.rule.kind === 'alert' && s.rule.name === g.alert));
        if (!known) throw new InvalidArgumentError(`guard '${g.alert}' names no alerting rule (see GET /v1/alerts/rules)`, { field: 'guards', guard: g.alert });
        return;
      }
      try {
        parseExpr(g.expr);
      } catch (err) {
        throw new InvalidArgumentError(`guard expression ${JSON.stringify(g.expr)} does not parse: ${(err as Error).message}`, { field: 'guards' });
      }
    },
    async firing(g: RolloutGuard): Promise<string | undefined> {
      if ('alert' in g) {
        const firing = rules.activeAlerts().filter((a) => a.rule === g.alert && a.state === 'firing');
        if (firing.length === 0) return undefined;
        const first = firing[0] as (typeof firing)[number];
        return `alert ${g.alert} is firing (${firing.length} alert${firing.length > 1 ? 's' : ''}; value ${first.value})`;
      }
      const res = await evaluateInstant(querier, g.expr, Date.now());
      if (typeof res === 'number') return res !== 0 && !Number.isNaN(res) ? `${g.expr} = ${res}` : undefined;
      const first = res[0];
      return first === undefined ? undefined : `${g.expr} returned ${res.length} series (first value ${first.value})`;
    },
  };
}

/** Starts the rollout service and its driver timer; `stop()` ends the timer. */
export function startRollouts(w: RolloutWiring): { context: RolloutContext; service: RolloutService; stop(): void } {
  const guards = createGuardChecker(w.rules, w.querier);
  const notify = (r: Rollout, cause: string): void => {
    const now = Date.now();
    const alert: OutgoingAlert = {
      labels: { alertname: ROLLBACK_ALERT_NAME, severity: 'warning', key: r.key, rollout: r.id, guards: r.guards.map(guardText).join(', ') },
      annotations: { summary: `the rollout of ${r.key} was rolled back`, description: cause },
      startsAt: new Date(now).toISOString(),
      endsAt: new Date(now + ROLLBACK_NOTICE_MS).toISOString(),
      generatorURL: `${w.externalURL}/v1/configs/${encodeURI(r.key)}/rollouts/current`,
    };
    try {
      w.send([alert]);
    } catch (err) {
      w.logger.error({ err }, 'the rollback notification could not be sent');
    }
  };
  const adoption = new AdoptionLedger(w.adoption, { onError: (err) => w.logger.warn({ err }, 'adoption reports could not be written; the clients report again') });
  const service = new RolloutService({
    store: w.store,
    guards,
    note: (e) => w.audit.note(e),
    onRolledBack: notify,
    logger: w.logger,
    selectedBuckets: (id) => adoption.selectedBuckets(id),
  });
  let lastPrune = Date.now();
  const timer = setInterval(() => {
    if (!w.isDriver()) return;
    service.tick().catch((err: unknown) => w.logger.warn({ err }, 'rollout driver pass failed'));
    if (Date.now() - lastPrune >= ADOPTION_PRUNE_MS) {
      lastPrune = Date.now();
      service
        .listActive('')
        .then((active) => adoption.prune(active.map((r) => r.id)))
        .catch((err: unknown) => w.logger.warn({ err }, 'adoption rows could not be pruned; retrying later'));
    }
  }, w.tickMs ?? 1000);
  timer.unref();
  const context: RolloutContext = {
    service,
    adoption,
    guardStates: (r) => guardStatesOf(r, (g) => guards.firing(g)),
  };
  return {
    context,
    service,
    stop: () => {
      clearInterval(timer);
      service.stop();
      // Reports still buffered are written if the backend is still open; otherwise the clients report again.
      void adoption.close();
    },
  };
}
