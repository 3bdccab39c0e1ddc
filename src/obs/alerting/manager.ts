/**
 * The rule manager: rule files kept in the kv store (versioned, audited, watched, the same on every
 * node), each group evaluated on its interval by the one node that evaluates (the cluster's
 * expiry leader in postgres mode; the node itself on SQLite), `for` state restored from
 * `ALERTS_FOR_STATE` on start and on take-over, and firing/resolved alerts handed to the
 * notifiers with Prometheus's re-send rules. Semantics follow Prometheus 2.42's `rules.Manager`.
 */
import { createHash } from 'node:crypto';
import { parseDocument, stringify } from 'yaml';
import { ConflictError, InvalidArgumentError, NotFoundError } from '../../errors.js';
import { prefixEnd, type AuditContext, type RevisionEvents, type Store } from '../../kv/index.js';
import type { Logger } from '../logger.js';
import type { QueryOptions } from '../promql/index.js';
import { RuleEvaluator, loadRuleFile, ruleIdentity, type Alert, type Rule, type RuleGroup, type RuleSample, type RuleStatus } from '../rules/index.js';
import type { Querier } from '../tsdb/index.js';
import { ALERT_STATE_PREFIX, RULE_FILE_PREFIX, isValidName } from './keys.js';

/** An alert as it goes to Alertmanager and the built-in notifier (Alertmanager's `postableAlert`). Times are RFC 3339. */
export interface OutgoingAlert {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  /** When the alert started firing. */
  startsAt: string;
  /** For a resolved alert, when it resolved; for a firing one, when it should be taken as resolved unless re-sent. */
  endsAt: string;
  /** A link to the rule's expression in the console. */
  generatorURL: string;
}

/** Options of a {@link RuleManager}. */
export interface RuleManagerOptions {
  store: Store;
  /** Where rule queries read samples (the time-series store). */
  querier: Querier;
  /** Stores the samples rules produce (recording rules, `ALERTS`, `ALERTS_FOR_STATE`). May throw: the error is logged. */
  append: (samples: RuleSample[]) => void | Promise<void>;
  logger: Logger;
  /** Whether this node evaluates now (one node per cluster). Checked at every tick. */
  isEvaluator: () => boolean;
  /** Interval of groups that set none, ms (`--evaluation-interval`). Default 15 s (seed `003_…`: "Alert Engine (every 15 seconds)"). */
  evaluationIntervalMs?: number;
  /** The node's external URL: `$externalURL` in templates and the base of `generatorURL`. */
  externalURL: string;
  /** `$externalLabels` in templates; also added to outgoing alerts. */
  externalLabels?: Record<string, string>;
  queryOptions?: QueryOptions;
  /** Receives the alerts to notify after each evaluation (firing ones and recently resolved ones). */
  send?: (alerts: OutgoingAlert[]) => void;
  /** Least time between two sends of an unchanged firing alert, ms (Prometheus `--rules.alert.resend-delay`, 1 min). */
  resendDelayMs?: number;
  /** How far back `ALERTS_FOR_STATE` is looked for when restoring, ms (Prometheus `--rules.alert.for-outage-tolerance`, 1 h). */
  outageToleranceMs?: number;
  /** Rule files that are part of the build (the default SLO rules): evaluated like stored ones, read-only. */
  builtinFiles?: { name: string; text: string }[];
  /** Called after every group evaluation (metrics). */
  onEvaluation?: (e: { file: string; group: string; durationMs: number; failedRules: number }) => void;
  /** Called when a group's tick found its previous evaluation still running (metrics). */
  onMissed?: (e: { file: string; group: string }) => void;
}

/** A rule file as the manager holds it. */
export interface RuleFileInfo {
  name: string;
  /** `store` for files in the kv store; `builtin` for the default rules shipped with Beacon. */
  source: 'store' | 'builtin';
  /** The file's text as written. */
  text: string;
  /** The revision that last wrote it (0 for built-in files). */
  revision: number;
  groups: RuleGroup[];
  /** Why the file is not evaluated (it failed validation); '' otherwise. */
  error: string;
}

/** The state of one group, for `/api/v1/rules`. */
export interface GroupStatus {
  file: string;
  name: string;
  intervalMs: number;
  limit: number;
  /** When the group was last evaluated, ms since the epoch (0: never on this node). */
  lastEvaluationMs: number;
  /** How long the last evaluation took, ms. */
  evaluationMs: number;
  rules: RuleStatus[];
}

/** An active alert with where it comes from. */
export interface ActiveAlert extends Alert {
  file: string;
  group: string;
  rule: string;
}

interface Runner {
  file: string;
  group: string;
  intervalMs: number;
  offsetMs: number;
  timer: NodeJS.Timeout | undefined;
  running: boolean;
  /** Whether `for` state has been restored since this node last started evaluating. */
  restored: boolean;
  lastEvaluationMs: number;
  evaluationMs: number;
}

/** The alert state of one rule file as the evaluating node saves it in the store. */
interface SavedState {
  /** When it was written, ms since the epoch. */
  writtenMs: number;
  groups: Record<string, { rules: { rule: string; health: RuleStatus['health']; lastError: string; lastEvaluationMs: number; alerts: Alert[] }[] }>;
}

interface LoadedFile extends RuleFileInfo {
  evaluator: RuleEvaluator | undefined;
  runners: Runner[];
}

const DEFAULT_EVALUATION_INTERVAL_MS = 15_000;

function labelsKey(l: Record<string, string>): string {
  return JSON.stringify(Object.keys(l).sort().map((k) => [k, l[k]]));
}

/**
 * Validates a rule file's text as `promtool check rules` does.
 * @throws InvalidArgumentError listing every reason, one per line, each prefixed by `name`.
 */
export function checkRuleFileText(name: string, text: string): RuleGroup[] {
  const loaded = loadRuleFile(text, name);
  if (loaded.errors.length > 0) throw new InvalidArgumentError(`rule file ${JSON.stringify(name)} is invalid:\n${loaded.errors.join('\n')}`, { errors: loaded.errors });
  return loaded.groups;
}

/**
 * Adds one rule (an object with `alert` or `record`, `expr`, …) to a group of a rule file's text,
 * replacing a rule of the same kind and name in that group, creating the group (with `interval`
 * when given) or the file when missing. Resolves with the new text (YAML).
 * @throws InvalidArgumentError when the rule is not an object with `alert` or `record`.
 */
export function addRuleToText(text: string | undefined, group: string, rule: Record<string, unknown>, interval?: string): string {
  const kind = typeof rule.alert === 'string' ? 'alert' : typeof rule.record === 'string' ? 'record' : undefined;
  if (kind === undefined) throw new InvalidArgumentError('a rule needs "alert" (an alerting rule) or "record" (a recording rule)');
  const doc = parseDocument(text ?? 'groups: []\n');
  const root = doc.toJS() as { groups?: unknown } | null;
  const groups: Record<string, unknown>[] = root !== null && typeof root === 'object' && Array.isArray(root.groups) ? (root.groups as Record<string, unknown>[]) : [];
  let g = groups.find((x) => x !== null && typeof x === 'object' && x.name === group);
  if (g === undefined) {
    g = { name: group, ...(interval !== undefined ? { interval } : {}), rules: [] };
    groups.push(g);
  } else if (interval !== undefined) {
    g.interval = interval;
  }
  const rules = Array.isArray(g.rules) ? (g.rules as Record<string, unknown>[]) : [];
  const at = rules.findIndex((r) => r !== null && typeof r === 'object' && r[kind] === rule[kind]);
  if (at >= 0) rules[at] = rule;
  else rules.push(rule);
  g.rules = rules;
  return stringify({ groups });
}

/**
 * Keeps rule files in the store and evaluates them. `start()` loads and follows the files;
 * `stop()` ends every timer. Every node holds the files and answers the APIs; only the node
 * whose `isEvaluator()` is true evaluates, so a group is evaluated once per cluster.
 */
export class RuleManager {
  private readonly files = new Map<string, LoadedFile>();
  private readonly lastSent = new Map<string, number>();
  private unsubscribe: (() => void) | undefined;
  private stopped = false;
  private readonly intervalMs: number;
  private wasEvaluator = false;
  /** Saved alert state per rule file, as read from the store (every node follows it). */
  private readonly saved = new Map<string, SavedState>();
  /** What was last saved per file (a fingerprint), and whether a save is running or wanted. */
  private readonly saving = new Map<string, { fingerprint: string; running: boolean; again: boolean }>();

  constructor(private readonly opts: RuleManagerOptions) {
    this.intervalMs = opts.evaluationIntervalMs ?? DEFAULT_EVALUATION_INTERVAL_MS;
  }

  /** Loads the built-in and stored rule files and follows changes to the stored ones (also other nodes'). */
  start(): void {
    for (const b of this.opts.builtinFiles ?? []) this.load(b.name, 'builtin', b.text, 0);
    for (const kv of this.opts.store.rangeLatest(RULE_FILE_PREFIX, prefixEnd(RULE_FILE_PREFIX)).kvs) {
      this.load(kv.key.slice(RULE_FILE_PREFIX.length), 'store', Buffer.from(kv.value).toString('utf8'), kv.modRevision);
    }
    for (const kv of this.opts.store.rangeLatest(ALERT_STATE_PREFIX, prefixEnd(ALERT_STATE_PREFIX)).kvs) this.applySaved(kv.key, kv.value);
    this.unsubscribe = this.opts.store.subscribe((rev) => this.onCommit(rev));
  }

  private applySaved(key: string, value: Uint8Array | undefined): void {
    const file = key.slice(ALERT_STATE_PREFIX.length);
    if (value === undefined) {
      this.saved.delete(file);
      return;
    }
    try {
      this.saved.set(file, JSON.parse(Buffer.from(value).toString('utf8')) as SavedState);
    } catch {
      this.saved.delete(file);
    }
  }

  /** Stops evaluating and following the store. Evaluations in flight finish on their own. */
  stop(): void {
    this.stopped = true;
    this.unsubscribe?.();
    for (const f of this.files.values()) for (const r of f.runners) clearTimeout(r.timer);
  }

  /** The evaluation interval of groups that set none, ms. */
  get defaultIntervalMs(): number {
    return this.intervalMs;
  }

  private onCommit(rev: RevisionEvents): void {
    for (const ev of rev.events) {
      if (ev.kv.key.startsWith(ALERT_STATE_PREFIX)) this.applySaved(ev.kv.key, ev.type === 'put' ? ev.kv.value : undefined);
      if (!ev.kv.key.startsWith(RULE_FILE_PREFIX)) continue;
      const name = ev.kv.key.slice(RULE_FILE_PREFIX.length);
      if (ev.type === 'put') this.load(name, 'store', Buffer.from(ev.kv.value).toString('utf8'), rev.revision);
      else this.unload(name);
    }
  }

  private unload(name: string): void {
    const f = this.files.get(name);
    if (f === undefined || f.source === 'builtin') return;
    for (const r of f.runners) clearTimeout(r.timer);
    this.files.delete(name);
  }

  private load(name: string, source: 'store' | 'builtin', text: string, revision: number): void {
    const old = this.files.get(name);
    if (old?.source === 'builtin' && source === 'store') {
      this.opts.logger.warn({ file: name }, 'a stored rule file has the name of a built-in one; it is ignored');
      return;
    }
    let groups: RuleGroup[] = [];
    let error = '';
    try {
      groups = checkRuleFileText(name, text);
    } catch (err) {
      error = err instanceof Error ? err.message : String(err);
    }
    const file: LoadedFile = { name, source, text, revision, groups, error, evaluator: undefined, runners: [] };
    if (error === '') {
      file.evaluator = new RuleEvaluator(this.opts.querier, groups, {
        externalURL: this.opts.externalURL,
        ...(this.opts.externalLabels !== undefined ? { externalLabels: this.opts.externalLabels } : {}),
        defaultIntervalMs: this.intervalMs,
        ...(this.opts.queryOptions !== undefined ? { queryOptions: this.opts.queryOptions } : {}),
        append: (samples) => this.append(samples),
      });
      if (old?.evaluator !== undefined) file.evaluator.copyStateFrom(old.evaluator);
    } else {
      this.opts.logger.warn({ file: name, error }, 'rule file is invalid and is not evaluated');
    }
    if (old !== undefined) for (const r of old.runners) clearTimeout(r.timer);
    this.files.set(name, file);
    if (file.evaluator === undefined || this.stopped) return;
    for (const g of groups) {
      const intervalMs = file.evaluator.intervalOf(g.name);
      const prev = old?.runners.find((r) => r.group === g.name);
      // Spread groups over their interval by a hash of their key, as Prometheus does, so they do
      // not all query at once; the same group keeps the same slots on every node.
      const h = createHash('sha256').update(`${name};${g.name}`).digest();
      const runner: Runner = {
        file: name,
        group: g.name,
        intervalMs,
        offsetMs: h.readUInt32BE(0) % intervalMs,
        timer: undefined,
        running: false,
        restored: prev?.restored ?? false,
        lastEvaluationMs: prev?.lastEvaluationMs ?? 0,
        evaluationMs: prev?.evaluationMs ?? 0,
      };
      file.runners.push(runner);
      this.schedule(runner);
    }
  }

  private async append(samples: RuleSample[]): Promise<void> {
    try {
      await this.opts.append(samples);
    } catch (err) {
      this.opts.logger.warn({ err: err instanceof Error ? err.message : String(err) }, 'rule samples could not be stored');
    }
  }

  /** The next slot of a runner strictly after `now`: `k × interval + offset`. */
  private nextSlot(r: Runner, now: number): number {
    const k = Math.floor((now - r.offsetMs) / r.intervalMs) + 1;
    return k * r.intervalMs + r.offsetMs;
  }

  private schedule(r: Runner): void {
    if (this.stopped) return;
    const now = Date.now();
    const slot = this.nextSlot(r, now);
    r.timer = setTimeout(() => void this.tick(r, slot), slot - now);
    r.timer.unref();
  }

  private async tick(r: Runner, slot: number): Promise<void> {
    const file = this.files.get(r.file);
    if (this.stopped || file === undefined || !file.runners.includes(r)) return;
    this.schedule(r);
    const evaluator = this.opts.isEvaluator();
    if (evaluator !== this.wasEvaluator) {
      this.wasEvaluator = evaluator;
      this.opts.logger.info({ evaluating: evaluator }, evaluator ? 'this node now evaluates the alerting rules' : 'this node no longer evaluates the alerting rules');
    }
    if (!evaluator) {
      // This node's state of the group goes stale: forget it, and take the saved state (and
      // ALERTS_FOR_STATE) again if it evaluates later.
      if (r.restored) file.evaluator?.resetGroup(r.group);
      r.restored = false;
      return;
    }
    if (r.running) {
      this.opts.onMissed?.({ file: r.file, group: r.group });
      this.opts.logger.warn({ file: r.file, group: r.group }, 'rule group evaluation skipped: the previous one is still running');
      return;
    }
    r.running = true;
    try {
      await this.evaluate(file, r, slot);
    } catch (err) {
      this.opts.logger.error({ err, file: r.file, group: r.group }, 'rule group evaluation failed');
    } finally {
      r.running = false;
    }
  }

  private async evaluate(file: LoadedFile, r: Runner, ts: number): Promise<void> {
    const ev = file.evaluator;
    if (ev === undefined) return;
    const started = performance.now();
    if (!r.restored) {
      const saved = this.saved.get(file.name)?.groups[r.group];
      const n = saved === undefined ? 0 : ev.importAlerts(r.group, saved.rules);
      if (n > 0) this.opts.logger.info({ file: r.file, group: r.group, alerts: n }, 'took over the saved alert state');
    }
    await ev.evaluate(r.group, ts);
    if (!r.restored) {
      const n = await ev.restoreForState(r.group, ts, this.opts.outageToleranceMs);
      r.restored = true;
      if (n > 0) this.opts.logger.info({ file: r.file, group: r.group, alerts: n }, 'restored the for state of pending alerts');
    }
    r.evaluationMs = performance.now() - started;
    r.lastEvaluationMs = ts;
    const statuses = ev.rules(r.group);
    this.opts.onEvaluation?.({ file: r.file, group: r.group, durationMs: r.evaluationMs, failedRules: statuses.filter((s) => s.health === 'err').length });
    this.sendAlerts(file, r, statuses, ts);
    this.save(file);
  }

  /**
   * Saves the file's alert state in the store when it changed (an alert appeared, changed state or
   * went away; a rule's health changed) — not on every evaluation — so other nodes show it and a
   * node that takes over carries on from it. Saves of one file never overlap.
   */
  private save(file: LoadedFile): void {
    const ev = file.evaluator;
    if (ev === undefined) return;
    const doc: SavedState = { writtenMs: Date.now(), groups: {} };
    for (const g of file.groups) {
      const statuses = ev.rules(g.name);
      const exported = ev.exportAlerts(g.name);
      const rules = exported.map((e) => {
        const st = statuses.find((x) => x.rule.kind === 'alert' && ruleIdentity(x.rule) === e.rule);
        return { rule: e.rule, health: st?.health ?? 'unknown', lastError: st?.lastError ?? '', lastEvaluationMs: st?.lastEvaluationMs ?? 0, alerts: e.alerts };
      });
      doc.groups[g.name] = { rules };
    }
    const fingerprint = JSON.stringify(
      // A rule's health counts only as failing or not (its first evaluation turning 'unknown' into
      // 'ok' is no change worth a revision).
      Object.entries(doc.groups).map(([g, v]) => [g, v.rules.map((x) => [x.rule, x.health === 'err' ? x.lastError : '', x.alerts.map((a) => [labelsKey(a.labels), a.state, a.activeAtMs, a.firedAtMs, a.resolvedAtMs])])]),
    );
    let st = this.saving.get(file.name);
    if (st === undefined) {
      // A file with no alerts and no failing rule, and nothing saved for it, needs no write: a
      // quiet node's rules consume no revisions.
      const quiet = Object.values(doc.groups).every((g) => g.rules.every((r) => r.alerts.length === 0 && r.health !== 'err'));
      const prior = this.saved.get(file.name);
      st = { fingerprint: prior === undefined && quiet ? fingerprint : '', running: false, again: false };
      this.saving.set(file.name, st);
    }
    if (st.fingerprint === fingerprint) return;
    if (st.running) {
      st.again = true;
      return;
    }
    st.running = true;
    const state = st;
    void this.opts.store
      .put(ALERT_STATE_PREFIX + file.name, Buffer.from(JSON.stringify(doc)))
      .then(() => {
        state.fingerprint = fingerprint;
      })
      .catch((err: unknown) => this.opts.logger.warn({ err: err instanceof Error ? err.message : String(err), file: file.name }, 'alert state could not be saved'))
      .finally(() => {
        state.running = false;
        if (state.again && !this.stopped) {
          state.again = false;
          const current = this.files.get(file.name);
          if (current !== undefined) this.save(current);
        }
      });
  }

  /** Prometheus's `sendAlerts`: firing alerts every `resendDelay`, resolved ones at once and then again until they are dropped. */
  private sendAlerts(file: LoadedFile, r: Runner, statuses: RuleStatus[], ts: number): void {
    const send = this.opts.send;
    if (send === undefined) return;
    const resendDelay = this.opts.resendDelayMs ?? 60_000;
    const validFor = 4 * Math.max(resendDelay, r.intervalMs);
    const out: OutgoingAlert[] = [];
    const seen = new Set<string>();
    const prefix = `${file.name};${r.group};`;
    for (const s of statuses) {
      if (s.rule.kind !== 'alert') continue;
      for (const a of s.alerts) {
        // One entry per alert instance: an alert that resolves and comes back is a new alert
        // (as in Prometheus), sent at once whatever was sent for the previous one.
        const key = `${prefix}${labelsKey(a.labels)};${a.activeAtMs}`;
        seen.add(key);
        if (a.state === 'pending') continue;
        const last = this.lastSent.get(key) ?? 0;
        if (!(a.resolvedAtMs > last || last + resendDelay < ts)) continue;
        this.lastSent.set(key, ts);
        out.push({
          labels: { ...(this.opts.externalLabels ?? {}), ...a.labels },
          annotations: a.annotations,
          startsAt: new Date(a.firedAtMs).toISOString(),
          endsAt: new Date(a.state === 'inactive' ? a.resolvedAtMs : ts + validFor).toISOString(),
          generatorURL: this.generatorURL(s.rule),
        });
      }
    }
    for (const k of this.lastSent.keys()) if (k.startsWith(prefix) && !seen.has(k)) this.lastSent.delete(k);
    if (out.length > 0) send(out);
  }

  private generatorURL(rule: Rule): string {
    return `${this.opts.externalURL.replace(/\/$/, '')}/ui/metrics/query?expr=${encodeURIComponent(rule.expr)}`;
  }

  // --- files --------------------------------------------------------------------------------------

  /** Every rule file, built-in ones first, then by name. */
  list(): RuleFileInfo[] {
    return [...this.files.values()]
      .map(({ name, source, text, revision, groups, error }) => ({ name, source, text, revision, groups, error }))
      .sort((a, b) => (a.source === b.source ? (a.name < b.name ? -1 : 1) : a.source === 'builtin' ? -1 : 1));
  }

  /** One rule file. @throws NotFoundError when there is none by that name. */
  get(name: string): RuleFileInfo {
    const f = this.files.get(name);
    if (f === undefined) throw new NotFoundError(`rule file ${JSON.stringify(name)} not found`);
    const { source, text, revision, groups, error } = f;
    return { name, source, text, revision, groups, error };
  }

  /**
   * Validates a rule file and stores it under `name` (one revision, audited); every node loads it.
   * @throws InvalidArgumentError for a bad name or an invalid file (every reason, as promtool
   *   prints them); ConflictError when `name` is a built-in file's.
   */
  async put(name: string, text: string, audit?: AuditContext): Promise<{ revision: number; groups: number; rules: number }> {
    if (!isValidName(name)) throw new InvalidArgumentError(`invalid rule file name ${JSON.stringify(name)}: use 1-128 letters, digits, '.', '_' or '-'`);
    if (this.files.get(name)?.source === 'builtin') throw new ConflictError(`rule file ${JSON.stringify(name)} is built in and cannot be replaced; turn the defaults off with --no-default-rules and store a copy under another name`);
    const groups = checkRuleFileText(name, text);
    const res = await this.opts.store.put(RULE_FILE_PREFIX + name, Buffer.from(text, 'utf8'), audit !== undefined ? { audit } : {});
    await this.opts.store.waitForRevision(res.revision);
    return { revision: res.revision, groups: groups.length, rules: groups.reduce((n, g) => n + g.rules.length, 0) };
  }

  /**
   * Removes a stored rule file; its alerts end (resolved notifications are not sent for them).
   * @throws NotFoundError when there is no stored file by that name; ConflictError for a built-in one.
   */
  async delete(name: string, audit?: AuditContext): Promise<{ revision: number }> {
    if (this.files.get(name)?.source === 'builtin') throw new ConflictError(`rule file ${JSON.stringify(name)} is built in; turn the defaults off with --no-default-rules`);
    if (this.opts.store.get(RULE_FILE_PREFIX + name) === undefined) throw new NotFoundError(`rule file ${JSON.stringify(name)} not found`);
    // The file and its saved alert state go in one revision.
    const res = await this.opts.store.txn(
      {
        compare: [{ key: RULE_FILE_PREFIX + name, target: 'version', result: '>', operand: 0 }],
        success: [
          { type: 'delete', key: RULE_FILE_PREFIX + name, prevKv: false },
          { type: 'delete', key: ALERT_STATE_PREFIX + name, prevKv: false },
        ],
        failure: [],
      },
      audit !== undefined ? { audit } : {},
    );
    if (!res.succeeded) throw new NotFoundError(`rule file ${JSON.stringify(name)} not found`);
    await this.opts.store.waitForRevision(res.revision);
    return { revision: res.revision };
  }

  // --- state --------------------------------------------------------------------------------------

  /** Every group's state, files in {@link list} order. */
  groups(): GroupStatus[] {
    const out: GroupStatus[] = [];
    for (const f of this.list()) {
      const loaded = this.files.get(f.name);
      if (loaded?.evaluator === undefined) continue;
      for (const g of loaded.groups) {
        const r = loaded.runners.find((x) => x.group === g.name);
        out.push({
          file: f.name,
          name: g.name,
          intervalMs: loaded.evaluator.intervalOf(g.name),
          limit: g.limit,
          lastEvaluationMs: r?.lastEvaluationMs ?? 0,
          evaluationMs: r?.evaluationMs ?? 0,
          rules: this.followerView(f.name, g.name, loaded.evaluator.rules(g.name), r),
        });
      }
    }
    return out;
  }

  /**
   * On a node that does not evaluate the group, the rules' alerts and health come from the state
   * the evaluating node saved; on the evaluating node, from its evaluator.
   */
  private followerView(file: string, group: string, statuses: RuleStatus[], r: Runner | undefined): RuleStatus[] {
    if (r?.restored === true) return statuses;
    const saved = this.saved.get(file)?.groups[group];
    if (saved === undefined) return statuses;
    return statuses.map((s) => {
      if (s.rule.kind !== 'alert') return s;
      const x = saved.rules.find((y) => y.rule === ruleIdentity(s.rule));
      return x === undefined ? s : { ...s, health: x.health, lastError: x.lastError, lastEvaluationMs: x.lastEvaluationMs, alerts: x.alerts };
    });
  }

  /** Pending and firing alerts of every alerting rule (resolved ones are left out). */
  activeAlerts(): ActiveAlert[] {
    const out: ActiveAlert[] = [];
    for (const g of this.groups()) {
      for (const s of g.rules) {
        if (s.rule.kind !== 'alert') continue;
        for (const a of s.alerts) if (a.state !== 'inactive') out.push({ ...a, file: g.file, group: g.name, rule: s.rule.name });
      }
    }
    return out;
  }
}
