/**
 * The built-in notifier: Alertmanager's dispatcher for users without an Alertmanager. Alerts
 * are routed down the route tree, grouped by `group_by`, flushed after `group_wait` and then
 * every `group_interval`, de-duplicated against what each integration was last told (so an
 * unchanged group is re-sent only after `repeat_interval`), muted by silences and inhibit rules,
 * and delivered with retries and exponential backoff. Sending never blocks `receive`.
 */
import type { Logger } from '../logger.js';
import { InvalidArgumentError } from '../../errors.js';
import type { InhibitRule, NotifyConfig, NotifyRoute, ReceiverConfig } from './config.js';
import { SendError, emailIntegration, webhookIntegration, type Integration } from './integrations.js';
import { ZERO_TIME, fingerprint, goTime, labelSetString, matchesAll, validateAlert, type NotifyAlert } from './labels.js';
import type { NotificationData, PayloadAlert } from './render.js';
import type { Silences } from './silences.js';

/** One notification attempt, as the recent history per receiver shows it. */
export interface ReceiverHistoryEntry {
  /** When the attempt ended (RFC 3339). */
  time: string;
  receiver: string;
  /** `webhook[0]`, `email[0]`…: which integration of the receiver. */
  integration: string;
  groupKey: string;
  /** Alerts in the notification. */
  alerts: number;
  /** 1 for the first try of a notification, then 2, 3… for its retries. */
  attempt: number;
  status: 'success' | 'failed';
  /** Set when `status` is `failed`. */
  error?: string;
  /** Wall time of the attempt, milliseconds. */
  durationMs: number;
}

/** Labels of the notification metrics. */
export interface NotificationLabels {
  receiver: string;
  integration: string;
}

/**
 * Where the notifier counts its work. `Metrics` (src/obs/metrics.ts) has these three fields, so
 * a node passes its `metrics` object as is; prom-client counters and histograms fit the shapes.
 */
export interface NotifyMetrics {
  /** Notifications delivered (`beacon_notifications_total`). */
  notificationsTotal: { inc(labels: NotificationLabels): void };
  /** Failed attempts, retries included (`beacon_notifications_failed_total`). */
  notificationsFailedTotal: { inc(labels: NotificationLabels): void };
  /** Seconds per attempt (`beacon_notification_latency_seconds`). */
  notificationLatency: { observe(labels: NotificationLabels, seconds: number): void };
}

/** Options of {@link Notifier}. */
export interface NotifierOptions {
  config: NotifyConfig;
  logger: Logger;
  /** Applied at every flush; an alert muted by an active silence is not notified. */
  silences?: Silences;
  metrics?: NotifyMetrics;
  /** The payload's `externalURL` and the link in emails (e.g. the node's console URL). Default ''. */
  externalURL?: string;
  /** First retry delay, ms (doubles each retry up to {@link NotifierOptions.retryMaxMs}). Default 500. */
  retryInitialMs?: number;
  /** Largest retry delay, ms. Default 30 000. */
  retryMaxMs?: number;
  /**
   * Least time a flush may spend retrying, ms. A flush retries until `max(group_interval, this)`
   * (Alertmanager's bound); what is still undelivered is tried again at the next flush. Default 10 000.
   */
  minFlushTimeoutMs?: number;
  /** History entries kept per receiver. Default 50. */
  historySize?: number;
  /** User-Agent of webhook requests. Default `Beacon-Notifier`. */
  userAgent?: string;
}

interface StoredAlert {
  fp: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  generatorURL: string;
  startsAtMs: number;
  endsAtMs: number;
  /** endsAt came from resolve_timeout, not from the sender. */
  timeout: boolean;
  updatedAtMs: number;
}

interface LogEntry {
  firing: Set<string>;
  resolved: Set<string>;
  atMs: number;
}

interface Group {
  key: string;
  route: NotifyRoute;
  labels: Record<string, string>;
  alerts: Map<string, StoredAlert>;
  timer: NodeJS.Timeout | undefined;
  hasFlushed: boolean;
  flushing: Promise<void> | undefined;
  /** What each integration was last told: Alertmanager's notification log, per group. */
  log: Map<string, LogEntry>;
}

function isResolved(a: StoredAlert, nowMs: number): boolean {
  return a.endsAtMs <= nowMs;
}

/** Alertmanager's alert order in a notification: by `job`, then `instance`, then the whole label set. */
function compareAlerts(a: StoredAlert, b: StoredAlert): number {
  for (const k of ['job', 'instance']) {
    const x = a.labels[k];
    const y = b.labels[k];
    if (x === undefined && y === undefined) continue;
    if (x === undefined) return 1;
    if (y === undefined) return -1;
    if (x !== y) return x < y ? -1 : 1;
  }
  return labelsBefore(a.labels, b.labels);
}

/** prometheus/common `LabelSet.Before`: by size of the sets, then name by name, value by value. */
function labelsBefore(a: Record<string, string>, b: Record<string, string>): number {
  const an = Object.keys(a).sort();
  const bn = Object.keys(b).sort();
  if (an.length !== bn.length) return an.length - bn.length;
  for (let i = 0; i < an.length; i++) {
    const x = an[i] as string;
    const y = bn[i] as string;
    if (x !== y) return x < y ? -1 : 1;
    const xv = a[x] as string;
    const yv = b[y] as string;
    if (xv !== yv) return xv < yv ? -1 : 1;
  }
  return 0;
}

/** Alertmanager's `Route.Match`: depth first; a child that matches stops its siblings unless it has `continue`. */
function matchRoutes(r: NotifyRoute, labels: Record<string, string>): NotifyRoute[] {
  if (!matchesAll(r.matchers, labels)) return [];
  const all: NotifyRoute[] = [];
  for (const c of r.routes) {
    const m = matchRoutes(c, labels);
    all.push(...m);
    if (m.length > 0 && !c.continue) break;
  }
  if (all.length === 0) all.push(r);
  return all;
}

/** A copy with keys in sorted order, as Go marshals a map, so payloads read (and diff) like Alertmanager's. */
function sortedRecord(m: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of Object.keys(m).sort()) out[k] = m[k] as string;
  return out;
}

function subset(a: Set<string>, b: Set<string>): boolean {
  for (const x of a) if (!b.has(x)) return false;
  return true;
}

const sleep = (ms: number, signal: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done(): void {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });

/**
 * Alertmanager's dispatcher, built in. Feed it alerts with {@link Notifier.receive} (each
 * evaluation's firing alerts, and resolved ones with `endsAt` in the past); it groups, waits,
 * de-duplicates, silences and sends on its own timers. `stop()` ends it.
 *
 * @example
 * const notifier = new Notifier({ config: parseNotifyConfig(yamlText), logger, silences, metrics: node.metrics });
 * notifier.receive([{ labels: { alertname: 'HighLatency', severity: 'page' }, annotations: { summary: 'p99 > 400ms' }, startsAt: new Date().toISOString() }]);
 */
export class Notifier {
  private config: NotifyConfig;
  private readonly logger: Logger;
  private readonly silences: Silences | undefined;
  private readonly metrics: NotifyMetrics | undefined;
  private readonly externalURL: string;
  private readonly retryInitialMs: number;
  private readonly retryMaxMs: number;
  private readonly minFlushTimeoutMs: number;
  private readonly historySize: number;
  private readonly userAgent: string;
  private integrations = new Map<string, Integration[]>();
  private readonly alerts = new Map<string, StoredAlert>();
  private readonly groups = new Map<string, Group>();
  private readonly history = new Map<string, ReceiverHistoryEntry[]>();
  private readonly abort = new AbortController();
  private stopped = false;
  private lastGcMs = Date.now();

  constructor(opts: NotifierOptions) {
    this.config = opts.config;
    this.logger = opts.logger;
    this.silences = opts.silences;
    this.metrics = opts.metrics;
    this.externalURL = opts.externalURL ?? '';
    this.retryInitialMs = opts.retryInitialMs ?? 500;
    this.retryMaxMs = opts.retryMaxMs ?? 30_000;
    this.minFlushTimeoutMs = opts.minFlushTimeoutMs ?? 10_000;
    this.historySize = opts.historySize ?? 50;
    this.userAgent = opts.userAgent ?? 'Beacon-Notifier';
    this.integrations = this.buildIntegrations(opts.config);
  }

  private buildIntegrations(cfg: NotifyConfig): Map<string, Integration[]> {
    const m = new Map<string, Integration[]>();
    for (const r of cfg.receivers.values()) m.set(r.name, integrationsOf(r, this.userAgent));
    return m;
  }

  /**
   * Takes alerts from the rule engine (or an API). An alert is identified by its labels; a
   * newer copy updates the stored one (the earliest `startsAt` is kept). `endsAt` in the past
   * means resolved; no `endsAt` means firing until `resolve_timeout` after this call.
   * Returns at once; notifications go out on the groups' timers.
   * @throws InvalidArgumentError when an alert is malformed (nothing is taken then).
   */
  receive(alerts: readonly NotifyAlert[]): void {
    if (this.stopped) return;
    if (!Array.isArray(alerts)) throw new InvalidArgumentError('alerts: expected a list');
    const valid = alerts.map((a, i) => validateAlert(a, i));
    const now = Date.now();
    for (const [i, a] of valid.entries()) {
      if (a.endsAt !== undefined && Date.parse(a.endsAt) < Date.parse(a.startsAt)) throw new InvalidArgumentError(`alerts[${i}]: endsAt is before startsAt`);
    }
    for (const a of valid) {
      const fp = fingerprint(a.labels);
      let next: StoredAlert = {
        fp,
        labels: a.labels,
        annotations: a.annotations,
        generatorURL: a.generatorURL ?? '',
        startsAtMs: Date.parse(a.startsAt),
        endsAtMs: a.endsAt === undefined ? now + this.config.resolveTimeoutMs : Date.parse(a.endsAt),
        timeout: a.endsAt === undefined,
        updatedAtMs: now,
      };
      const old = this.alerts.get(fp);
      // Alertmanager merges a copy whose activity overlaps the stored alert's, keeping the
      // earliest start, so a re-sent firing alert keeps its original startsAt.
      if (old !== undefined && next.endsAtMs >= old.startsAtMs && next.startsAtMs <= old.endsAtMs) {
        next = { ...next, startsAtMs: Math.min(old.startsAtMs, next.startsAtMs) };
        if (!isResolved(next, now) && old.endsAtMs > next.endsAtMs && !old.timeout) next.endsAtMs = old.endsAtMs;
      }
      this.alerts.set(fp, next);
      for (const route of matchRoutes(this.config.route, next.labels)) this.insert(route, next, now);
    }
    if (now - this.lastGcMs > 60_000) this.gc(now);
  }

  private insert(route: NotifyRoute, alert: StoredAlert, now: number): void {
    const labels: Record<string, string> = {};
    if (route.groupByAll) Object.assign(labels, alert.labels);
    else for (const n of route.groupBy) if (alert.labels[n] !== undefined) labels[n] = alert.labels[n] as string;
    const key = `${route.key}:${labelSetString(labels)}`;
    let g = this.groups.get(key);
    if (g === undefined) {
      g = { key, route, labels, alerts: new Map(), timer: undefined, hasFlushed: false, flushing: undefined, log: new Map() };
      this.groups.set(key, g);
      this.schedule(g, route.groupWaitMs);
    }
    g.alerts.set(alert.fp, alert);
    // An alert that started longer than group_wait ago (e.g. after a restart) is sent at once.
    if (!g.hasFlushed && alert.startsAtMs + route.groupWaitMs < now && g.flushing === undefined) this.schedule(g, 0);
  }

  private schedule(g: Group, ms: number): void {
    if (this.stopped) return;
    if (g.timer !== undefined) clearTimeout(g.timer);
    g.timer = setTimeout(() => {
      g.timer = undefined;
      g.flushing = this.flush(g)
        .catch((err: unknown) => {
          // A bug here must neither crash the node nor stall the group: log it and try again later.
          this.logger.error({ err, groupKey: g.key }, 'notification flush failed');
          if (this.groups.get(g.key) === g) this.schedule(g, g.route.groupIntervalMs);
        })
        .finally(() => {
          g.flushing = undefined;
        });
    }, ms);
    g.timer.unref();
  }

  private muted(a: StoredAlert, now: number): boolean {
    if (this.silences !== undefined && this.silences.mutes(a.labels).length > 0) return true;
    return this.inhibited(a, now, this.config.inhibitRules);
  }

  private inhibited(a: StoredAlert, now: number, rules: InhibitRule[]): boolean {
    for (const rule of rules) {
      if (!matchesAll(rule.targetMatchers, a.labels)) continue;
      for (const s of this.alerts.values()) {
        if (s.fp === a.fp || isResolved(s, now) || !matchesAll(rule.sourceMatchers, s.labels)) continue;
        if (rule.equal.every((n) => (s.labels[n] ?? '') === (a.labels[n] ?? ''))) return true;
      }
    }
    return false;
  }

  private async flush(g: Group): Promise<void> {
    const start = Date.now();
    g.hasFlushed = true;
    const snapshot = [...g.alerts.values()].sort(compareAlerts);
    const live = snapshot.filter((a) => !this.muted(a, start));
    const firing = new Set(live.filter((a) => !isResolved(a, start)).map((a) => a.fp));
    const resolved = new Set(live.filter((a) => isResolved(a, start)).map((a) => a.fp));
    const integrations = this.integrations.get(g.route.receiver) ?? [];
    const deadline = start + Math.max(g.route.groupIntervalMs, this.minFlushTimeoutMs);
    const results = await Promise.all(
      integrations.map(async (integ) => {
        const entry = g.log.get(integ.name);
        if (!needsUpdate(entry, firing, resolved, integ.sendResolved, g.route.repeatIntervalMs, start)) return true;
        const toSend = live.filter((a) => firing.has(a.fp) || (integ.sendResolved && resolved.has(a.fp)));
        let ok = true;
        if (toSend.length > 0) ok = await this.deliver(g, integ, this.data(g, toSend, start), deadline);
        if (ok) g.log.set(integ.name, { firing, resolved, atMs: start });
        return ok;
      }),
    );
    // Stopped, or replaced by a reload while this flush was sending: the group is no longer ours to keep.
    if (this.stopped || this.groups.get(g.key) !== g) return;
    if (results.every(Boolean)) {
      // As Alertmanager: resolved alerts leave the group once notified, unless updated meanwhile.
      for (const a of snapshot) if (isResolved(a, start) && g.alerts.get(a.fp) === a) g.alerts.delete(a.fp);
    }
    if (g.alerts.size === 0) {
      this.groups.delete(g.key);
      return;
    }
    this.schedule(g, Math.max(0, start + g.route.groupIntervalMs - Date.now()));
  }

  private data(g: Group, alerts: StoredAlert[], now: number): NotificationData {
    return {
      receiver: g.route.receiver,
      groupKey: g.key,
      groupLabels: sortedRecord(g.labels),
      externalURL: this.externalURL,
      alerts: alerts.map(
        (a): PayloadAlert => ({
          status: isResolved(a, now) ? 'resolved' : 'firing',
          labels: sortedRecord(a.labels),
          annotations: sortedRecord(a.annotations),
          startsAt: goTime(a.startsAtMs),
          endsAt: isResolved(a, now) ? goTime(a.endsAtMs) : ZERO_TIME,
          generatorURL: a.generatorURL,
          fingerprint: a.fp,
        }),
      ),
    };
  }

  /** Sends with retries and exponential backoff until delivered, refused for good, past `deadline`, or stopped. */
  private async deliver(g: Group, integ: Integration, data: NotificationData, deadline: number): Promise<boolean> {
    const labels = { receiver: g.route.receiver, integration: integ.kind };
    let delay = this.retryInitialMs;
    for (let attempt = 1; ; attempt++) {
      const t0 = Date.now();
      try {
        await integ.send(data, this.abort.signal);
        const ms = Date.now() - t0;
        this.metrics?.notificationsTotal.inc(labels);
        this.metrics?.notificationLatency.observe(labels, ms / 1000);
        this.record({ time: new Date().toISOString(), receiver: labels.receiver, integration: integ.name, groupKey: g.key, alerts: data.alerts.length, attempt, status: 'success', durationMs: ms });
        return true;
      } catch (err) {
        const ms = Date.now() - t0;
        const e = err instanceof SendError ? err : new SendError((err as Error).message, true, { cause: err });
        this.metrics?.notificationsFailedTotal.inc(labels);
        this.metrics?.notificationLatency.observe(labels, ms / 1000);
        this.record({ time: new Date().toISOString(), receiver: labels.receiver, integration: integ.name, groupKey: g.key, alerts: data.alerts.length, attempt, status: 'failed', error: e.message, durationMs: ms });
        const giveUp = !e.retryable || this.stopped || Date.now() + delay > deadline;
        this.logger.warn({ receiver: labels.receiver, integration: integ.name, groupKey: g.key, attempt, err: e.message, retrying: !giveUp }, giveUp ? 'notification failed' : 'notification failed; retrying');
        if (giveUp) return false;
        await sleep(delay, this.abort.signal);
        if (this.stopped) return false;
        delay = Math.min(delay * 2, this.retryMaxMs);
      }
    }
  }

  private record(e: ReceiverHistoryEntry): void {
    let h = this.history.get(e.receiver);
    if (h === undefined) this.history.set(e.receiver, (h = []));
    h.push(e);
    if (h.length > this.historySize) h.splice(0, h.length - this.historySize);
  }

  private gc(now: number): void {
    this.lastGcMs = now;
    const held = new Set<string>();
    for (const g of this.groups.values()) for (const fp of g.alerts.keys()) held.add(fp);
    for (const [fp, a] of this.alerts) if (isResolved(a, now) && !held.has(fp)) this.alerts.delete(fp);
  }

  /** The recent notification attempts of one receiver (oldest first), or of every receiver when none is named. */
  recentHistory(receiver?: string): ReceiverHistoryEntry[] {
    if (receiver !== undefined) return [...(this.history.get(receiver) ?? [])];
    return [...this.history.values()].flat().sort((a, b) => a.time.localeCompare(b.time));
  }

  /**
   * Every receiver with its integrations and recent attempts (oldest first), the body of
   * `GET /v1/alerts/notifications`: `{"receivers":[{"name","integrations":["webhook[0]"],"history":[…]}]}`.
   */
  receiversStatus(): { receivers: Array<{ name: string; integrations: string[]; history: ReceiverHistoryEntry[] }> } {
    return {
      receivers: [...this.integrations.entries()].map(([name, list]) => ({ name, integrations: list.map((i) => i.name), history: this.recentHistory(name) })),
    };
  }

  /** Alert groups currently held: key, receiver, group labels and alert count, for inspection. */
  groupsSnapshot(): Array<{ groupKey: string; receiver: string; labels: Record<string, string>; alerts: number }> {
    return [...this.groups.values()].map((g) => ({ groupKey: g.key, receiver: g.route.receiver, labels: g.labels, alerts: g.alerts.size }));
  }

  /**
   * Replaces the configuration. Groups are rebuilt from the alerts held (as Alertmanager does on
   * reload): what each integration was told is forgotten, so firing alerts are notified again
   * after the new `group_wait`.
   */
  reload(config: NotifyConfig): void {
    for (const g of this.groups.values()) if (g.timer !== undefined) clearTimeout(g.timer);
    this.groups.clear();
    for (const list of this.integrations.values()) for (const i of list) i.close();
    this.config = config;
    this.integrations = this.buildIntegrations(config);
    const now = Date.now();
    for (const a of this.alerts.values()) if (!isResolved(a, now)) for (const r of matchRoutes(config.route, a.labels)) this.insert(r, a, now);
  }

  /**
   * Stops the timers and aborts retries and in-flight requests, waiting at most `timeoutMs`
   * (default 5 000) for deliveries under way to end. Alerts not yet notified are abandoned.
   */
  async stop(timeoutMs = 5000): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.abort.abort();
    const pending: Promise<void>[] = [];
    for (const g of this.groups.values()) {
      if (g.timer !== undefined) clearTimeout(g.timer);
      if (g.flushing !== undefined) pending.push(g.flushing);
    }
    let t: NodeJS.Timeout | undefined;
    await Promise.race([Promise.allSettled(pending), new Promise<void>((r) => (t = setTimeout(r, timeoutMs)))]);
    if (t !== undefined) clearTimeout(t);
    for (const list of this.integrations.values()) for (const i of list) i.close();
  }
}

function integrationsOf(r: ReceiverConfig, userAgent: string): Integration[] {
  return [...r.webhookConfigs.map((w, i) => webhookIntegration(w, i, userAgent)), ...r.emailConfigs.map((e, i) => emailIntegration(e, i))];
}

/**
 * Alertmanager's de-duplication (`DedupStage.needsUpdate`): notify when something new fires,
 * when every alert has resolved after a notification about firing ones, when resolved alerts
 * changed and the integration sends resolved notifications, or when `repeat_interval` has passed.
 */
function needsUpdate(entry: LogEntry | undefined, firing: Set<string>, resolved: Set<string>, sendResolved: boolean, repeatMs: number, now: number): boolean {
  if (entry === undefined) return firing.size > 0;
  if (!subset(firing, entry.firing)) return true;
  if (firing.size === 0) return entry.firing.size > 0;
  if (sendResolved && !subset(resolved, entry.resolved)) return true;
  return entry.atMs < now - repeatMs;
}
