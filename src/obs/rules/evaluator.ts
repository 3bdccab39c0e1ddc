/**
 * The rule evaluator: Prometheus 2.42's alerting and recording rule semantics over a
 * {@link Querier}, driven by the caller's clock (`evaluate(group, timeMs)`), with no timers or I/O.
 */
import { evaluateInstant } from '../promql/index.js';
import type { InstantSample, QueryOptions } from '../promql/index.js';
import type { Labels, Querier } from '../tsdb/index.js';
import { InvalidArgumentError, NotFoundError } from '../../errors.js';
import type { AlertingRule, RecordingRule, Rule, RuleGroup } from './model.js';
import { expandTemplate } from './template.js';

/** State of one alert (one label set of an alerting rule). `inactive` alerts are resolved ones kept for notification. */
export type AlertState = 'inactive' | 'pending' | 'firing';

/** One alert of an alerting rule, as Prometheus keeps it in `ActiveAlerts()`. Times in ms since the epoch. */
export interface Alert {
  /** The series' labels (without `__name__`), then the rule's labels, then `alertname`. */
  labels: Record<string, string>;
  annotations: Record<string, string>;
  state: AlertState;
  /** Value of the sample at the last evaluation that returned this label set. */
  value: number;
  /** When the label set was first returned (start of pending). */
  activeAtMs: number;
  /** When it went firing (0 while pending). */
  firedAtMs: number;
  /** When it resolved (0 while active). Resolved alerts are kept 15 min, for resolved notifications. */
  resolvedAtMs: number;
  /** When `expr` stopped returning it while `keep_firing_for` holds it firing (0 otherwise). */
  keepFiringSinceMs: number;
}

/** A sample a rule produced, for the caller to append to the store. `value` `'stale'` is a staleness marker. */
export interface RuleSample {
  labels: Record<string, string>;
  timestampMs: number;
  value: number | 'stale';
}

/** Health and last result of one rule (Prometheus `/api/v1/rules` fields). */
export interface RuleStatus {
  rule: Rule;
  health: 'unknown' | 'ok' | 'err';
  /** The last evaluation's error message, '' when it succeeded. */
  lastError: string;
  lastEvaluationMs: number;
  /** Alerts of an alerting rule, pending, firing and recently resolved. */
  alerts: Alert[];
}

/** Options of a {@link RuleEvaluator}. */
export interface EvaluatorOptions {
  /** `$externalLabels` in templates. */
  externalLabels?: Record<string, string>;
  /** `$externalURL` in templates. */
  externalURL?: string;
  /** Interval of groups that set none, ms (Prometheus's `evaluation_interval`, default 1 min). */
  defaultIntervalMs?: number;
  /** Passed to every query (lookback, max samples, timeout). */
  queryOptions?: QueryOptions;
  /**
   * Called with each rule's samples as soon as the rule is evaluated, so that later rules of the
   * same group see earlier recording rules' results (Prometheus appends after each rule).
   */
  append?: (samples: RuleSample[]) => void | Promise<void>;
}

/** How long a resolved alert is kept (Prometheus `resolvedRetention`). */
const RESOLVED_RETENTION_MS = 15 * 60_000;

interface RuleState {
  status: RuleStatus;
  /** Alerts by label-set key. */
  active: Map<string, Alert>;
  /** Keys of the series written at the last evaluation, for staleness markers. */
  lastSeries: Map<string, Record<string, string>>;
}

function keyOf(l: Record<string, string>): string {
  return JSON.stringify(Object.keys(l).sort().map((k) => [k, l[k]]));
}

function toRecord(ls: Labels): Record<string, string> {
  const o: Record<string, string> = {};
  for (const l of ls) o[l.name] = l.value;
  return o;
}

function sorted(l: Record<string, string>): Record<string, string> {
  const o: Record<string, string> = {};
  for (const k of Object.keys(l).sort()) if (l[k] !== '') o[k] = l[k] as string;
  return o;
}

/**
 * Evaluates rule groups. Each call to {@link RuleEvaluator.evaluate} is one evaluation of one
 * group at the given time: its rules run in order; an alerting rule moves each label set
 * inactive → pending → firing (after `for`) and back (kept firing for `keep_firing_for`, and kept
 * resolved for 15 min); it returns the `ALERTS` and `ALERTS_FOR_STATE` samples and the recording
 * rules' samples, with staleness markers for series that disappeared. A rule whose query fails
 * records the error and the others keep evaluating.
 */
export class RuleEvaluator {
  private readonly groups = new Map<string, { group: RuleGroup; rules: RuleState[] }>();

  constructor(
    private readonly querier: Querier,
    groups: readonly RuleGroup[],
    private readonly opts: EvaluatorOptions = {},
  ) {
    for (const g of groups) {
      if (this.groups.has(g.name)) throw new InvalidArgumentError(`rule group ${JSON.stringify(g.name)} is defined twice`);
      this.groups.set(g.name, {
        group: g,
        rules: g.rules.map((rule) => ({ status: { rule, health: 'unknown', lastError: '', lastEvaluationMs: 0, alerts: [] }, active: new Map(), lastSeries: new Map() })),
      });
    }
  }

  /** The group names, in load order. */
  groupNames(): string[] {
    return [...this.groups.keys()];
  }

  /** A group's evaluation interval, ms. @throws NotFoundError for an unknown group. */
  intervalOf(groupName: string): number {
    return this.get(groupName).group.intervalMs ?? this.opts.defaultIntervalMs ?? 60_000;
  }

  /** The status of each rule of a group, in order. @throws NotFoundError for an unknown group. */
  rules(groupName: string): RuleStatus[] {
    return this.get(groupName).rules.map((r) => ({ ...r.status, alerts: [...r.active.values()].map((a) => ({ ...a })) }));
  }

  /** Every alert (pending, firing, resolved) of every group, or of the named alerting rule. */
  alerts(alertName?: string): Alert[] {
    const out: Alert[] = [];
    for (const { rules } of this.groups.values()) {
      for (const r of rules) if (r.status.rule.kind === 'alert' && (alertName === undefined || r.status.rule.name === alertName)) out.push(...[...r.active.values()].map((a) => ({ ...a })));
    }
    return out;
  }

  /** The group definition. @throws NotFoundError for an unknown group. */
  group(groupName: string): RuleGroup {
    return this.get(groupName).group;
  }

  /**
   * Takes over the state (alerts, last series) of the rules of `old` that this evaluator has too
   * — same group name, same kind, name and expression — as Prometheus does when a rule file is
   * reloaded, so an edited file does not reset pending `for` timers or re-fire alerts.
   */
  copyStateFrom(old: RuleEvaluator): void {
    for (const [name, g] of this.groups) {
      const prev = old.groups.get(name);
      if (!prev) continue;
      const byId = new Map(prev.rules.map((r) => [ruleIdentity(r.status.rule), r]));
      for (const r of g.rules) {
        const o = byId.get(ruleIdentity(r.status.rule));
        if (!o) continue;
        byId.delete(ruleIdentity(r.status.rule));
        r.active = new Map([...o.active].map(([k, a]) => [k, { ...a }]));
        r.lastSeries = new Map(o.lastSeries);
        r.status = { ...o.status, rule: r.status.rule, alerts: [] };
      }
    }
  }

  /**
   * The alerts of each alerting rule of a group (pending, firing and recently resolved), keyed by
   * the rule's identity, to be saved and later given to {@link importAlerts} (on this or another node).
   * @throws NotFoundError for an unknown group.
   */
  exportAlerts(groupName: string): { rule: string; alerts: Alert[] }[] {
    return this.get(groupName)
      .rules.filter((r) => r.status.rule.kind === 'alert')
      .map((r) => ({ rule: ruleIdentity(r.status.rule), alerts: [...r.active.values()].map((a) => ({ ...a })) }));
  }

  /**
   * Takes saved alerts (from {@link exportAlerts}) for the rules that match by identity and have no
   * alerts of their own yet — what a node does when it starts or takes over evaluation, so pending
   * `for` timers and firing alerts carry on where the previous evaluator left them. Resolves with
   * the number of alerts taken.
   * @throws NotFoundError for an unknown group.
   */
  importAlerts(groupName: string, saved: readonly { rule: string; alerts: readonly Alert[] }[]): number {
    const byRule = new Map(saved.map((s) => [s.rule, s.alerts]));
    let n = 0;
    for (const r of this.get(groupName).rules) {
      if (r.status.rule.kind !== 'alert' || r.active.size > 0) continue;
      for (const a of byRule.get(ruleIdentity(r.status.rule)) ?? []) {
        r.active.set(keyOf(a.labels), { ...a, labels: { ...a.labels }, annotations: { ...a.annotations } });
        n++;
      }
    }
    return n;
  }

  /** Forgets a group's alerts and written series (a node that stops evaluating: its state goes stale). @throws NotFoundError for an unknown group. */
  resetGroup(groupName: string): void {
    for (const r of this.get(groupName).rules) {
      r.active.clear();
      r.lastSeries.clear();
      r.status = { ...r.status, health: 'unknown', lastError: '', alerts: [] };
    }
  }

  /**
   * Restores the `for` state of a group's pending alerts from their `ALERTS_FOR_STATE` series, as
   * Prometheus's `RestoreForState` does after a restart (or, here, when this node takes over
   * evaluation from another): an alert whose series has a sample within `outageToleranceMs` of
   * `timeMs` gets that sample's value as its `activeAt`, so it fires on time instead of waiting a
   * whole `for` again. Call it after the group's first evaluation. Rules with `for: 0` need nothing.
   * Resolves with the number of alerts restored.
   * @throws NotFoundError for an unknown group.
   */
  async restoreForState(groupName: string, timeMs: number, outageToleranceMs = 3_600_000): Promise<number> {
    let restored = 0;
    for (const r of this.get(groupName).rules) {
      if (r.status.rule.kind !== 'alert' || r.status.rule.forMs === 0) continue;
      for (const a of r.active.values()) {
        if (a.state !== 'pending') continue;
        const matchers = Object.entries(a.labels).map(([name, value]) => ({ name, op: '=' as const, value }));
        matchers.push({ name: '__name__', op: '=', value: 'ALERTS_FOR_STATE' });
        const found = await this.querier.select(matchers, timeMs - outageToleranceMs, timeMs - 1);
        let best: number | undefined;
        for (const s of found) {
          // The series must carry exactly the alert's labels (not more), as in Prometheus.
          if (s.labels.length !== matchers.length) continue;
          const n = s.values.length;
          if (n === 0) continue;
          const v = s.values[n - 1] as number;
          if (Number.isFinite(v)) best = v * 1000;
        }
        if (best !== undefined && best < a.activeAtMs) {
          a.activeAtMs = best;
          restored++;
        }
      }
    }
    return restored;
  }

  private get(groupName: string): { group: RuleGroup; rules: RuleState[] } {
    const g = this.groups.get(groupName);
    if (!g) throw new NotFoundError(`rule group ${JSON.stringify(groupName)} not found`);
    return g;
  }

  /**
   * Evaluates every rule of a group at `timeMs` and returns the samples to append (also passed
   * to `append`, rule by rule). Errors are recorded on the rule, never thrown.
   * @throws NotFoundError for an unknown group.
   */
  async evaluate(groupName: string, timeMs: number): Promise<RuleSample[]> {
    const g = this.get(groupName);
    const all: RuleSample[] = [];
    for (const r of g.rules) {
      let samples: RuleSample[] = [];
      let failed = false;
      try {
        const vec = await this.query(r.status.rule, timeMs);
        samples = r.status.rule.kind === 'alert' ? this.evalAlert(r, r.status.rule, vec, timeMs, g.group.limit) : evalRecord(r.status.rule, vec, timeMs, g.group.limit);
        r.status.health = 'ok';
        r.status.lastError = '';
      } catch (err) {
        // Any failure of one rule (a query over a limit, a template error, a store error) is that
        // rule's error: the others keep evaluating.
        if (!(err instanceof Error)) throw err;
        r.status.health = 'err';
        r.status.lastError = err.message;
        failed = true;
      }
      r.status.lastEvaluationMs = timeMs;
      if (!failed) {
        // Series written last time and not now get a staleness marker, as Prometheus writes
        // (a failed evaluation leaves them alone, as Prometheus does).
        const now = new Map(samples.map((s) => [keyOf(s.labels), s.labels]));
        for (const [k, labels] of r.lastSeries) if (!now.has(k)) samples.push({ labels, timestampMs: timeMs, value: 'stale' });
        r.lastSeries = now;
      }
      if (this.opts.append && samples.length > 0) await this.opts.append(samples);
      all.push(...samples);
    }
    return all;
  }

  private async query(rule: Rule, timeMs: number): Promise<InstantSample[]> {
    const v = await evaluateInstant(this.querier, rule.parsed, timeMs, this.opts.queryOptions);
    // A scalar result counts as one sample with no labels, as in Prometheus's rule query function.
    return typeof v === 'number' ? [{ labels: [], value: v }] : v;
  }

  private evalAlert(r: RuleState, rule: AlertingRule, vec: InstantSample[], ts: number, limit: number): RuleSample[] {
    const found = new Map<string, { labels: Record<string, string>; annotations: Record<string, string>; value: number }>();
    for (const s of vec) {
      const seriesLabels = toRecord(s.labels);
      const data = { labels: seriesLabels, value: s.value, externalLabels: this.opts.externalLabels ?? {}, externalURL: this.opts.externalURL ?? '' };
      const tmplName = `__alert_${rule.name}`;
      const labels: Record<string, string> = { ...seriesLabels };
      delete labels.__name__;
      for (const [k, v] of Object.entries(rule.labels)) labels[k] = expandTemplate(v, tmplName, data);
      labels.alertname = rule.name;
      const annotations: Record<string, string> = {};
      for (const [k, v] of Object.entries(rule.annotations)) annotations[k] = expandTemplate(v, tmplName, data);
      const final = sorted(labels);
      const key = keyOf(final);
      if (found.has(key)) throw new InvalidArgumentError('vector contains metrics with the same labelset after applying alert labels');
      found.set(key, { labels: final, annotations: sorted(annotations), value: s.value });
    }
    for (const [key, f] of found) {
      const a = r.active.get(key);
      if (a && a.state !== 'inactive') {
        a.value = f.value;
        a.annotations = f.annotations;
        continue;
      }
      r.active.set(key, { labels: f.labels, annotations: f.annotations, state: 'pending', value: f.value, activeAtMs: ts, firedAtMs: 0, resolvedAtMs: 0, keepFiringSinceMs: 0 });
    }
    const out: RuleSample[] = [];
    let activeCount = 0;
    for (const [key, a] of r.active) {
      if (!found.has(key)) {
        let keepFiring = false;
        if (a.state === 'firing' && rule.keepFiringForMs > 0) {
          if (a.keepFiringSinceMs === 0) a.keepFiringSinceMs = ts;
          if (ts - a.keepFiringSinceMs < rule.keepFiringForMs) keepFiring = true;
        }
        if (a.state === 'pending' || (a.resolvedAtMs !== 0 && ts - a.resolvedAtMs > RESOLVED_RETENTION_MS)) r.active.delete(key);
        if (a.state !== 'inactive' && !keepFiring) {
          a.state = 'inactive';
          a.resolvedAtMs = ts;
        }
        if (!keepFiring) continue;
      } else {
        a.keepFiringSinceMs = 0;
      }
      activeCount++;
      if (a.state === 'pending' && ts - a.activeAtMs >= rule.forMs) {
        a.state = 'firing';
        a.firedAtMs = ts;
      }
      out.push({ labels: sorted({ ...a.labels, __name__: 'ALERTS', alertstate: a.state }), timestampMs: ts, value: 1 });
      out.push({ labels: sorted({ ...a.labels, __name__: 'ALERTS_FOR_STATE' }), timestampMs: ts, value: a.activeAtMs / 1000 });
    }
    if (limit > 0 && activeCount > limit) {
      r.active.clear();
      throw new InvalidArgumentError(`exceeded limit of ${limit} with ${activeCount} alerts`);
    }
    return out;
  }
}

/** What makes two rules "the same rule" across a reload, and the key saved alert state is kept under. */
export function ruleIdentity(rule: Rule): string {
  return JSON.stringify([rule.kind, rule.name, rule.expr, Object.entries(rule.labels).sort()]);
}

function evalRecord(rule: RecordingRule, vec: InstantSample[], ts: number, limit: number): RuleSample[] {
  const out = new Map<string, RuleSample>();
  for (const s of vec) {
    const labels = toRecord(s.labels);
    labels.__name__ = rule.name;
    for (const [k, v] of Object.entries(rule.labels)) labels[k] = v;
    const final = sorted(labels);
    const key = keyOf(final);
    if (out.has(key)) throw new InvalidArgumentError('vector contains metrics with the same labelset after applying rule labels');
    out.set(key, { labels: final, timestampMs: ts, value: s.value });
  }
  if (limit > 0 && out.size > limit) throw new InvalidArgumentError(`exceeded limit ${limit} with ${out.size} series`);
  return [...out.values()];
}
