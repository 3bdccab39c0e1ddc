/**
 * Alerting and dashboards over HTTP (issue 13, docs/alerting.md): the alerts now pending or
 * firing, rule files kept in the store, silences, notification history, and dashboards. Reach
 * them as `client.alerts` and `client.dashboards`.
 */
import type { HttpTransport } from './transport.js';
import type { CallOptions } from './types.js';

/** An alert that is pending or firing. Times are RFC 3339; `value` is the sample value as Prometheus prints it. */
export interface AlertInfo {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  state: 'pending' | 'firing';
  activeAt: string;
  firedAt?: string;
  value: string;
  rule: string;
  group: string;
  file: string;
  /** Ids of the silences that mute it (it is not notified while any is active). */
  silencedBy: string[];
}

/** A rule file as listed. */
export interface RuleFileSummary {
  name: string;
  /** `store`: written by a user; `builtin`: Beacon's default rules. */
  source: 'store' | 'builtin';
  revision: number;
  /** Why the file is not evaluated, '' when it is. */
  error: string;
  groups: { name: string; interval: number | null; rules: string[] }[];
}

/** One label matcher of a silence (Alertmanager's shape). */
export interface SilenceMatcher {
  name: string;
  value: string;
  isRegex: boolean;
  /** False for `!=` and `!~`. Default true. */
  isEqual?: boolean;
}

/** A silence (Alertmanager's shape). */
export interface Silence {
  id: string;
  matchers: Required<SilenceMatcher>[];
  startsAt: string;
  endsAt: string;
  createdBy: string;
  comment: string;
  status: { state: 'active' | 'pending' | 'expired' };
}

/** What {@link AlertsClient.silence} takes: matchers, and when it ends (`endsAt`) or how long it lasts (`duration`, e.g. `2h`). */
export interface SilenceRequest {
  matchers: SilenceMatcher[];
  startsAt?: string;
  endsAt?: string;
  duration?: string;
  comment?: string;
}

/** Alerts, rule files and silences. Every method throws the server's typed errors. */
export class AlertsClient {
  constructor(private readonly http: HttpTransport) {}

  /** Pending and firing alerts, optionally of one state. */
  async list(opts: CallOptions & { state?: 'pending' | 'firing' } = {}): Promise<AlertInfo[]> {
    const res = await this.http.request<{ alerts: AlertInfo[] }>('GET', '/v1/alerts', { query: { state: opts.state }, signal: opts.signal, timeoutMs: opts.timeoutMs });
    return res.body.alerts;
  }

  /** Every rule file (built-in ones first). */
  async ruleFiles(opts: CallOptions = {}): Promise<RuleFileSummary[]> {
    const res = await this.http.request<{ files: RuleFileSummary[] }>('GET', '/v1/alerts/rules', { signal: opts.signal, timeoutMs: opts.timeoutMs });
    return res.body.files;
  }

  /** A rule file's text. @throws NotFoundError when there is none by that name. */
  async ruleFile(name: string, opts: CallOptions = {}): Promise<{ name: string; source: string; revision: number; error: string; text: string }> {
    const res = await this.http.request<{ name: string; source: string; revision: number; error: string; text: string }>('GET', `/v1/alerts/rules/${encodeURIComponent(name)}`, {
      signal: opts.signal,
      timeoutMs: opts.timeoutMs,
    });
    return res.body;
  }

  /**
   * Stores a Prometheus rule file (YAML or JSON text) under `name`; every node evaluates it.
   * @throws InvalidArgumentError with every reason `promtool check rules` would give.
   */
  async putRuleFile(name: string, text: string, opts: CallOptions = {}): Promise<{ name: string; revision: number; groups: number; rules: number }> {
    const res = await this.http.request<{ name: string; revision: number; groups: number; rules: number }>('PUT', `/v1/alerts/rules/${encodeURIComponent(name)}`, {
      body: { text },
      signal: opts.signal,
      timeoutMs: opts.timeoutMs,
    });
    return res.body;
  }

  /** Removes a stored rule file. @throws NotFoundError when there is none by that name. */
  async deleteRuleFile(name: string, opts: CallOptions = {}): Promise<{ revision: number }> {
    const res = await this.http.request<{ revision: number }>('DELETE', `/v1/alerts/rules/${encodeURIComponent(name)}`, { signal: opts.signal, timeoutMs: opts.timeoutMs });
    return res.body;
  }

  /** Active, pending and recently expired silences. */
  async silences(opts: CallOptions = {}): Promise<Silence[]> {
    const res = await this.http.request<{ silences: Silence[] }>('GET', '/v1/alerts/silences', { signal: opts.signal, timeoutMs: opts.timeoutMs });
    return res.body.silences;
  }

  /** Creates a silence; resolves with its id. @throws InvalidArgumentError for bad matchers or times. */
  async silence(req: SilenceRequest, opts: CallOptions = {}): Promise<{ id: string }> {
    const res = await this.http.request<{ id: string }>('POST', '/v1/alerts/silences', { body: req, signal: opts.signal, timeoutMs: opts.timeoutMs });
    return res.body;
  }

  /** Ends a silence now. @throws NotFoundError for an unknown id. */
  async expireSilence(id: string, opts: CallOptions = {}): Promise<void> {
    await this.http.request('DELETE', `/v1/alerts/silences/${encodeURIComponent(id)}`, { signal: opts.signal, timeoutMs: opts.timeoutMs });
  }

  /** Receivers with their recent notification attempts. */
  async notifications(opts: CallOptions = {}): Promise<unknown> {
    const res = await this.http.request<unknown>('GET', '/v1/alerts/notifications', { signal: opts.signal, timeoutMs: opts.timeoutMs });
    return res.body;
  }
}

/** One dashboard panel: a PromQL query drawn as a graph or its latest value. */
export interface DashboardPanel {
  title: string;
  expr: string;
  unit?: '' | 's' | 'bytes' | 'percent' | 'ops';
  type?: 'graph' | 'stat';
  thresholds?: { value: number; color: string }[];
}

/** A dashboard. */
export interface Dashboard {
  id: string;
  title: string;
  revision: number;
  refresh: string;
  range: string;
  panels: Required<DashboardPanel>[];
}

/** Dashboards; reach them as `client.dashboards`. */
export class DashboardsClient {
  constructor(private readonly http: HttpTransport) {}

  /** Every dashboard's id and title (the built-in `beacon` first). */
  async list(opts: CallOptions = {}): Promise<{ id: string; title: string }[]> {
    const res = await this.http.request<{ dashboards: { id: string; title: string }[] }>('GET', '/v1/dashboards', { signal: opts.signal, timeoutMs: opts.timeoutMs });
    return res.body.dashboards;
  }

  /** One dashboard. @throws NotFoundError. */
  async get(id: string, opts: CallOptions = {}): Promise<Dashboard> {
    const res = await this.http.request<Dashboard>('GET', `/v1/dashboards/${encodeURIComponent(id)}`, { signal: opts.signal, timeoutMs: opts.timeoutMs });
    return res.body;
  }

  /** Stores a dashboard. @throws InvalidArgumentError naming the offending field (e.g. `panels[1].expr`). */
  async put(id: string, dashboard: { title: string; refresh?: string; range?: string; panels: DashboardPanel[] }, opts: CallOptions = {}): Promise<Dashboard> {
    const res = await this.http.request<Dashboard>('PUT', `/v1/dashboards/${encodeURIComponent(id)}`, { body: dashboard, signal: opts.signal, timeoutMs: opts.timeoutMs });
    return res.body;
  }

  /** Removes a stored dashboard. @throws NotFoundError. */
  async delete(id: string, opts: CallOptions = {}): Promise<{ revision: number }> {
    const res = await this.http.request<{ revision: number }>('DELETE', `/v1/dashboards/${encodeURIComponent(id)}`, { signal: opts.signal, timeoutMs: opts.timeoutMs });
    return res.body;
  }
}
