/**
 * The built-in notifier's configuration: a documented subset of Alertmanager's own
 * `alertmanager.yml` (global, route, receivers with webhook and email configs, inhibit_rules),
 * parsed with its defaults and inheritance rules. See docs/notifications.md.
 */
import { LineCounter, parseDocument, isMap, isSeq, type Document } from 'yaml';
import { InvalidArgumentError } from '../../errors.js';
import { LABEL_NAME_RE, compileMatcher, matchersString, parseDurationMs, parseMatchers, type CompiledMatcher } from './labels.js';

/** Alertmanager's route defaults: group_wait 30 s, group_interval 5 m, repeat_interval 4 h. */
export const DEFAULT_GROUP_WAIT_MS = 30_000;
/** See {@link DEFAULT_GROUP_WAIT_MS}. */
export const DEFAULT_GROUP_INTERVAL_MS = 300_000;
/** See {@link DEFAULT_GROUP_WAIT_MS}. */
export const DEFAULT_REPEAT_INTERVAL_MS = 4 * 3_600_000;
/** Alertmanager's `global.resolve_timeout` default: an alert without `endsAt` resolves 5 m after it was last received. */
export const DEFAULT_RESOLVE_TIMEOUT_MS = 300_000;
/** Per-request timeout of a webhook when the config gives none (Alertmanager ≥ 0.28's `timeout`). */
export const DEFAULT_WEBHOOK_TIMEOUT_MS = 10_000;

/** One node of the route tree, with inherited values already applied (as Alertmanager's `NewRoute` does). */
export interface NotifyRoute {
  /** Alertmanager's route key (`{}` for the root, `{}/{severity="page"}` below it), the first half of a group key. */
  key: string;
  receiver: string;
  /** Label names to group by; ignored when `groupByAll`. */
  groupBy: string[];
  /** `group_by: ['...']`: every label set is its own group. */
  groupByAll: boolean;
  groupWaitMs: number;
  groupIntervalMs: number;
  repeatIntervalMs: number;
  /** `matchers`, `match` and `match_re` together, sorted as Alertmanager sorts them. */
  matchers: CompiledMatcher[];
  continue: boolean;
  routes: NotifyRoute[];
}

/** A `webhook_configs` entry. */
export interface WebhookConfig {
  url: string;
  sendResolved: boolean;
  /** 0: no limit; otherwise the payload carries at most this many alerts and counts the rest in `truncatedAlerts`. */
  maxAlerts: number;
  timeoutMs: number;
  /** Headers from `http_config` (basic_auth, authorization, bearer_token). Never logged. */
  headers: Record<string, string>;
}

/** An `email_configs` entry, with `global.smtp_*` defaults applied. */
export interface EmailConfig {
  to: string;
  from: string;
  hello: string;
  smarthost: { host: string; port: number };
  authUsername: string;
  authPassword: string;
  requireTls: boolean;
  insecureSkipVerify: boolean;
  sendResolved: boolean;
  /** Extra or overriding headers (`Subject`, `To`, `From` override the defaults), as given. */
  headers: Record<string, string>;
}

/** A named receiver and its integrations. */
export interface ReceiverConfig {
  name: string;
  webhookConfigs: WebhookConfig[];
  emailConfigs: EmailConfig[];
}

/** An inhibit rule: a firing source alert mutes target alerts that agree with it on `equal`. */
export interface InhibitRule {
  sourceMatchers: CompiledMatcher[];
  targetMatchers: CompiledMatcher[];
  equal: string[];
}

/** A parsed, validated notifier configuration. */
export interface NotifyConfig {
  resolveTimeoutMs: number;
  route: NotifyRoute;
  receivers: Map<string, ReceiverConfig>;
  inhibitRules: InhibitRule[];
}

type Path = Array<string | number>;

function pathString(p: Path): string {
  let s = '';
  for (const seg of p) s += typeof seg === 'number' ? `[${seg}]` : s === '' ? seg : `.${seg}`;
  return s === '' ? '(top level)' : s;
}

/** Alertmanager fields Beacon knows but does not implement, with the reason given to the user. */
const UNSUPPORTED: Record<string, string> = {
  templates: 'notification text has a fixed format in Beacon (no Alertmanager templates)',
  time_intervals: 'time intervals are not supported',
  mute_time_intervals: 'time intervals are not supported',
  active_time_intervals: 'time intervals are not supported',
  html: 'the email body has a fixed format in Beacon (no Alertmanager templates)',
  text: 'the email body has a fixed format in Beacon (no Alertmanager templates)',
  auth_secret: 'only PLAIN/LOGIN authentication with auth_username and auth_password is supported',
  auth_password_file: 'give auth_password',
  auth_identity: 'only auth_username and auth_password are supported',
  url_file: 'give url',
  slack_configs: 'only webhook_configs and email_configs are supported',
  pagerduty_configs: 'only webhook_configs and email_configs are supported',
  opsgenie_configs: 'only webhook_configs and email_configs are supported',
  wechat_configs: 'only webhook_configs and email_configs are supported',
  pushover_configs: 'only webhook_configs and email_configs are supported',
  victorops_configs: 'only webhook_configs and email_configs are supported',
  sns_configs: 'only webhook_configs and email_configs are supported',
  telegram_configs: 'only webhook_configs and email_configs are supported',
  webex_configs: 'only webhook_configs and email_configs are supported',
  discord_configs: 'only webhook_configs and email_configs are supported',
  msteams_configs: 'only webhook_configs and email_configs are supported',
  source_match: 'use source_matchers',
  source_match_re: 'use source_matchers',
  target_match: 'use target_matchers',
  target_match_re: 'use target_matchers',
};

class Reader {
  constructor(
    private readonly doc: Document | undefined,
    private readonly lines: LineCounter | undefined,
  ) {}

  fail(path: Path, message: string): never {
    let line: number | undefined;
    if (this.doc !== undefined && this.lines !== undefined) {
      for (let n = path.length; n >= 0 && line === undefined; n--) {
        const node = this.doc.getIn(path.slice(0, n), true) as { range?: [number, number, number] } | undefined;
        if (node !== null && typeof node === 'object' && Array.isArray(node.range)) line = this.lines.linePos(node.range[0]).line;
      }
    }
    const where = `${pathString(path)}${line === undefined ? '' : ` (line ${line})`}`;
    throw new InvalidArgumentError(`notification config: ${where}: ${message}`, { path: pathString(path), ...(line === undefined ? {} : { line }) });
  }

  object(v: unknown, path: Path, known: readonly string[]): Record<string, unknown> {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) this.fail(path, 'expected a mapping');
    const o = v as Record<string, unknown>;
    for (const k of Object.keys(o)) {
      if (known.includes(k)) continue;
      const why = UNSUPPORTED[k];
      this.fail([...path, k], why === undefined ? `unknown field '${k}'` : `'${k}' is not supported: ${why}`);
    }
    return o;
  }

  list(v: unknown, path: Path): unknown[] {
    if (v === undefined || v === null) return [];
    if (!Array.isArray(v)) this.fail(path, 'expected a list');
    return v;
  }

  string(v: unknown, path: Path, required = false): string | undefined {
    if (v === undefined || v === null) {
      if (required) this.fail(path, 'is required');
      return undefined;
    }
    if (typeof v !== 'string') this.fail(path, `expected a string, got ${JSON.stringify(v)}`);
    return v;
  }

  bool(v: unknown, path: Path): boolean | undefined {
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'boolean') this.fail(path, `expected true or false, got ${JSON.stringify(v)}`);
    return v;
  }

  duration(v: unknown, path: Path): number | undefined {
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'string' && typeof v !== 'number') this.fail(path, 'expected a duration such as 30s or 5m');
    try {
      return parseDurationMs(String(v));
    } catch (err) {
      this.fail(path, (err as Error).message.replace(/^duration: /, ''));
    }
  }

  wrap<T>(path: Path, fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      if (err instanceof InvalidArgumentError && !err.message.startsWith('notification config:')) this.fail(path, err.message);
      throw err;
    }
  }
}

const MATCHER_TYPE_ORDER: Record<string, number> = { '=': 0, '!=': 1, '=~': 2, '!~': 3 };

function sortMatchers(ms: CompiledMatcher[]): CompiledMatcher[] {
  const op = (m: CompiledMatcher): number => MATCHER_TYPE_ORDER[m.isRegex ? (m.isEqual ? '=~' : '!~') : m.isEqual ? '=' : '!='] as number;
  return [...ms].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : a.value < b.value ? -1 : a.value > b.value ? 1 : op(a) - op(b)));
}

interface Inherited {
  receiver: string | undefined;
  groupBy: string[];
  groupByAll: boolean;
  groupWaitMs: number;
  groupIntervalMs: number;
  repeatIntervalMs: number;
  key: string | undefined;
}

const ROUTE_FIELDS = ['receiver', 'group_by', 'group_wait', 'group_interval', 'repeat_interval', 'matchers', 'match', 'match_re', 'continue', 'routes', 'mute_time_intervals', 'active_time_intervals'];

function parseMatcherList(r: Reader, v: unknown, path: Path): CompiledMatcher[] {
  const out: CompiledMatcher[] = [];
  r.list(v, path).forEach((item, i) => {
    const s = r.string(item, [...path, i], true) as string;
    out.push(...r.wrap([...path, i], () => parseMatchers(s, 'matcher')));
  });
  return out;
}

function parseRoute(r: Reader, v: unknown, path: Path, parent: Inherited, receivers: Set<string>, isRoot: boolean): NotifyRoute {
  const o = r.object(v, path, ROUTE_FIELDS);
  const receiver = r.string(o.receiver, [...path, 'receiver']) ?? parent.receiver;
  if (receiver === undefined || receiver === '') r.fail([...path, 'receiver'], 'the root route must have a receiver');
  if (!receivers.has(receiver)) r.fail([...path, 'receiver'], `no receiver named '${receiver}'`);
  let groupBy = parent.groupBy;
  let groupByAll = parent.groupByAll;
  if (o.group_by !== undefined) {
    const names = r.list(o.group_by, [...path, 'group_by']).map((n, i) => r.string(n, [...path, 'group_by', i], true) as string);
    groupByAll = names.includes('...');
    if (groupByAll && names.length > 1) r.fail([...path, 'group_by'], "'...' must be the only element: it groups by all labels");
    const seen = new Set<string>();
    names.forEach((n, i) => {
      if (groupByAll) return;
      if (!LABEL_NAME_RE.test(n)) r.fail([...path, 'group_by', i], `invalid label name '${n}'`);
      if (seen.has(n)) r.fail([...path, 'group_by', i], `duplicate label name '${n}'`);
      seen.add(n);
    });
    groupBy = groupByAll ? [] : names;
  }
  const groupWaitMs = r.duration(o.group_wait, [...path, 'group_wait']) ?? parent.groupWaitMs;
  const groupIntervalMs = r.duration(o.group_interval, [...path, 'group_interval']) ?? parent.groupIntervalMs;
  const repeatIntervalMs = r.duration(o.repeat_interval, [...path, 'repeat_interval']) ?? parent.repeatIntervalMs;
  if (groupIntervalMs === 0) r.fail([...path, 'group_interval'], 'cannot be zero');
  if (repeatIntervalMs === 0) r.fail([...path, 'repeat_interval'], 'cannot be zero');
  const matchers: CompiledMatcher[] = [];
  if (o.match !== undefined) {
    const m = r.object(o.match, [...path, 'match'], Object.keys((o.match ?? {}) as object));
    for (const [name, value] of Object.entries(m)) {
      const s = r.string(value, [...path, 'match', name], true) as string;
      matchers.push(r.wrap([...path, 'match', name], () => compileMatcher({ name, value: s, isRegex: false, isEqual: true }, 'match')));
    }
  }
  if (o.match_re !== undefined) {
    const m = r.object(o.match_re, [...path, 'match_re'], Object.keys((o.match_re ?? {}) as object));
    for (const [name, value] of Object.entries(m)) {
      const s = r.string(value, [...path, 'match_re', name], true) as string;
      matchers.push(r.wrap([...path, 'match_re', name], () => compileMatcher({ name, value: s, isRegex: true, isEqual: true }, 'match_re')));
    }
  }
  matchers.push(...parseMatcherList(r, o.matchers, [...path, 'matchers']));
  if (isRoot && matchers.length > 0) r.fail(path, 'the root route must not have matchers (it matches every alert)');
  const cont = r.bool(o.continue, [...path, 'continue']) ?? false;
  if (isRoot && cont) r.fail([...path, 'continue'], 'cannot be set on the root route');
  for (const f of ['mute_time_intervals', 'active_time_intervals']) if (o[f] !== undefined) r.fail([...path, f], `'${f}' is not supported: time intervals are not supported`);
  const sorted = sortMatchers(matchers);
  const key = parent.key === undefined ? matchersString(sorted) : `${parent.key}/${matchersString(sorted)}`;
  const here: Inherited = { receiver, groupBy, groupByAll, groupWaitMs, groupIntervalMs, repeatIntervalMs, key };
  const routes = r.list(o.routes, [...path, 'routes']).map((c, i) => parseRoute(r, c, [...path, 'routes', i], here, receivers, false));
  return { key, receiver, groupBy, groupByAll, groupWaitMs, groupIntervalMs, repeatIntervalMs, matchers: sorted, continue: cont, routes };
}

interface Globals {
  resolveTimeoutMs: number;
  smtpFrom: string | undefined;
  smtpHello: string;
  smtpSmarthost: string | undefined;
  smtpAuthUsername: string;
  smtpAuthPassword: string;
  smtpRequireTls: boolean;
}

function parseHostPort(r: Reader, s: string, path: Path): { host: string; port: number } {
  const m = /^(.*):(\d+)$/.exec(s);
  if (m === null || m[1] === '') r.fail(path, `expected host:port, got '${s}'`);
  const port = Number(m[2]);
  if (port < 1 || port > 65535) r.fail(path, `invalid port ${port}`);
  return { host: (m[1] as string).replace(/^\[(.*)\]$/, '$1'), port };
}

function parseHttpConfig(r: Reader, v: unknown, path: Path): Record<string, string> {
  if (v === undefined || v === null) return {};
  const o = r.object(v, path, ['basic_auth', 'authorization', 'bearer_token']);
  const headers: Record<string, string> = {};
  if (o.basic_auth !== undefined) {
    const b = r.object(o.basic_auth, [...path, 'basic_auth'], ['username', 'password']);
    const user = r.string(b.username, [...path, 'basic_auth', 'username'], true) as string;
    const pass = r.string(b.password, [...path, 'basic_auth', 'password']) ?? '';
    headers.authorization = `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;
  }
  if (o.authorization !== undefined) {
    const a = r.object(o.authorization, [...path, 'authorization'], ['type', 'credentials']);
    const type = r.string(a.type, [...path, 'authorization', 'type']) ?? 'Bearer';
    const cred = r.string(a.credentials, [...path, 'authorization', 'credentials'], true) as string;
    if (headers.authorization !== undefined) r.fail(path, 'at most one of basic_auth, authorization and bearer_token');
    headers.authorization = `${type} ${cred}`;
  }
  if (o.bearer_token !== undefined) {
    const t = r.string(o.bearer_token, [...path, 'bearer_token'], true) as string;
    if (headers.authorization !== undefined) r.fail(path, 'at most one of basic_auth, authorization and bearer_token');
    headers.authorization = `Bearer ${t}`;
  }
  return headers;
}

function parseWebhook(r: Reader, v: unknown, path: Path): WebhookConfig {
  const o = r.object(v, path, ['url', 'send_resolved', 'max_alerts', 'timeout', 'http_config', 'url_file']);
  const url = r.string(o.url, [...path, 'url'], true) as string;
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    r.fail([...path, 'url'], `invalid URL '${url}'`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') r.fail([...path, 'url'], `scheme must be http or https, got '${u.protocol}'`);
  let maxAlerts = 0;
  if (o.max_alerts !== undefined) {
    if (typeof o.max_alerts !== 'number' || !Number.isInteger(o.max_alerts) || o.max_alerts < 0) r.fail([...path, 'max_alerts'], 'expected a non-negative integer');
    maxAlerts = o.max_alerts;
  }
  const timeoutMs = r.duration(o.timeout, [...path, 'timeout']) ?? DEFAULT_WEBHOOK_TIMEOUT_MS;
  return {
    url,
    sendResolved: r.bool(o.send_resolved, [...path, 'send_resolved']) ?? true,
    maxAlerts,
    timeoutMs: timeoutMs === 0 ? DEFAULT_WEBHOOK_TIMEOUT_MS : timeoutMs,
    headers: parseHttpConfig(r, o.http_config, [...path, 'http_config']),
  };
}

function parseEmail(r: Reader, v: unknown, path: Path, g: Globals): EmailConfig {
  const o = r.object(v, path, ['to', 'from', 'hello', 'smarthost', 'auth_username', 'auth_password', 'require_tls', 'tls_config', 'send_resolved', 'headers']);
  const to = r.string(o.to, [...path, 'to'], true) as string;
  if (to.trim() === '') r.fail([...path, 'to'], 'is required');
  const from = r.string(o.from, [...path, 'from']) ?? g.smtpFrom;
  if (from === undefined || from === '') r.fail([...path, 'from'], 'is required (here or as global.smtp_from)');
  const smarthost = r.string(o.smarthost, [...path, 'smarthost']) ?? g.smtpSmarthost;
  if (smarthost === undefined || smarthost === '') r.fail([...path, 'smarthost'], 'is required (here or as global.smtp_smarthost)');
  let insecureSkipVerify = false;
  if (o.tls_config !== undefined) {
    const t = r.object(o.tls_config, [...path, 'tls_config'], ['insecure_skip_verify']);
    insecureSkipVerify = r.bool(t.insecure_skip_verify, [...path, 'tls_config', 'insecure_skip_verify']) ?? false;
  }
  const headers: Record<string, string> = {};
  if (o.headers !== undefined) {
    const h = r.object(o.headers, [...path, 'headers'], Object.keys((o.headers ?? {}) as object));
    for (const [k, val] of Object.entries(h)) headers[k] = r.string(val, [...path, 'headers', k], true) as string;
  }
  return {
    to,
    from,
    hello: r.string(o.hello, [...path, 'hello']) ?? g.smtpHello,
    smarthost: parseHostPort(r, smarthost, [...path, 'smarthost']),
    authUsername: r.string(o.auth_username, [...path, 'auth_username']) ?? g.smtpAuthUsername,
    authPassword: r.string(o.auth_password, [...path, 'auth_password']) ?? g.smtpAuthPassword,
    requireTls: r.bool(o.require_tls, [...path, 'require_tls']) ?? g.smtpRequireTls,
    insecureSkipVerify,
    sendResolved: r.bool(o.send_resolved, [...path, 'send_resolved']) ?? false,
    headers,
  };
}

/**
 * Parses the built-in notifier's configuration: Alertmanager's `alertmanager.yml` format
 * (YAML, or JSON, which is YAML) restricted to the subset in docs/notifications.md, with
 * Alertmanager's defaults and inheritance (a child route takes its parent's receiver, group_by
 * and timers unless it sets them).
 * @throws InvalidArgumentError naming the field path and line (`details.path`, `details.line`)
 *   for a YAML syntax error, an unknown or unsupported field, a bad duration, matcher or URL,
 *   a route naming a receiver that does not exist, or a duplicate receiver.
 */
export function parseNotifyConfig(text: string): NotifyConfig {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const e = doc.errors[0];
    const pos = e?.linePos?.[0];
    const line = pos?.line;
    throw new InvalidArgumentError(`notification config: YAML${line === undefined ? '' : ` line ${line}, column ${pos?.col}`}: ${(e?.message.split('\n')[0] ?? 'syntax error').replace(/ at line \d+, column \d+:?$/, '')}`, line === undefined ? {} : { line });
  }
  if (!isMap(doc.contents) && !isSeq(doc.contents) && doc.contents !== null) {
    throw new InvalidArgumentError('notification config: expected a mapping with route and receivers');
  }
  return buildConfig(doc.toJS() as unknown, new Reader(doc, lines));
}

/** Builds the config from an already parsed object (no line numbers in errors). See {@link parseNotifyConfig}. */
export function notifyConfigFromObject(obj: unknown): NotifyConfig {
  return buildConfig(obj, new Reader(undefined, undefined));
}

function buildConfig(obj: unknown, r: Reader): NotifyConfig {
  const top = r.object(obj ?? {}, [], ['global', 'route', 'receivers', 'inhibit_rules', 'templates', 'time_intervals', 'mute_time_intervals']);
  for (const f of ['templates', 'time_intervals', 'mute_time_intervals']) {
    const v = top[f];
    if (v !== undefined && v !== null && !(Array.isArray(v) && v.length === 0)) r.fail([f], `'${f}' is not supported: ${UNSUPPORTED[f] as string}`);
  }
  const g: Globals = {
    resolveTimeoutMs: DEFAULT_RESOLVE_TIMEOUT_MS,
    smtpFrom: undefined,
    smtpHello: 'localhost',
    smtpSmarthost: undefined,
    smtpAuthUsername: '',
    smtpAuthPassword: '',
    smtpRequireTls: true,
  };
  if (top.global !== undefined && top.global !== null) {
    const o = r.object(top.global, ['global'], ['resolve_timeout', 'smtp_from', 'smtp_hello', 'smtp_smarthost', 'smtp_auth_username', 'smtp_auth_password', 'smtp_require_tls']);
    const rt = r.duration(o.resolve_timeout, ['global', 'resolve_timeout']);
    if (rt !== undefined) {
      if (rt === 0) r.fail(['global', 'resolve_timeout'], 'cannot be zero');
      g.resolveTimeoutMs = rt;
    }
    g.smtpFrom = r.string(o.smtp_from, ['global', 'smtp_from']);
    g.smtpHello = r.string(o.smtp_hello, ['global', 'smtp_hello']) ?? g.smtpHello;
    g.smtpSmarthost = r.string(o.smtp_smarthost, ['global', 'smtp_smarthost']);
    g.smtpAuthUsername = r.string(o.smtp_auth_username, ['global', 'smtp_auth_username']) ?? '';
    g.smtpAuthPassword = r.string(o.smtp_auth_password, ['global', 'smtp_auth_password']) ?? '';
    g.smtpRequireTls = r.bool(o.smtp_require_tls, ['global', 'smtp_require_tls']) ?? true;
  }
  const receivers = new Map<string, ReceiverConfig>();
  const recList = r.list(top.receivers, ['receivers']);
  recList.forEach((rv, i) => {
    const path: Path = ['receivers', i];
    const o = r.object(rv, path, ['name', 'webhook_configs', 'email_configs']);
    const name = r.string(o.name, [...path, 'name'], true) as string;
    if (name === '') r.fail([...path, 'name'], 'is required');
    if (receivers.has(name)) r.fail([...path, 'name'], `duplicate receiver name '${name}'`);
    receivers.set(name, {
      name,
      webhookConfigs: r.list(o.webhook_configs, [...path, 'webhook_configs']).map((w, j) => parseWebhook(r, w, [...path, 'webhook_configs', j])),
      emailConfigs: r.list(o.email_configs, [...path, 'email_configs']).map((e, j) => parseEmail(r, e, [...path, 'email_configs', j], g)),
    });
  });
  if (top.route === undefined || top.route === null) r.fail(['route'], 'is required (the root route and its receiver)');
  const root = parseRoute(
    r,
    top.route,
    ['route'],
    { receiver: undefined, groupBy: [], groupByAll: false, groupWaitMs: DEFAULT_GROUP_WAIT_MS, groupIntervalMs: DEFAULT_GROUP_INTERVAL_MS, repeatIntervalMs: DEFAULT_REPEAT_INTERVAL_MS, key: undefined },
    new Set(receivers.keys()),
    true,
  );
  const inhibitRules = r.list(top.inhibit_rules, ['inhibit_rules']).map((v, i): InhibitRule => {
    const path: Path = ['inhibit_rules', i];
    const o = r.object(v, path, ['source_matchers', 'target_matchers', 'equal']);
    const equal = r.list(o.equal, [...path, 'equal']).map((n, j) => {
      const s = r.string(n, [...path, 'equal', j], true) as string;
      if (!LABEL_NAME_RE.test(s)) r.fail([...path, 'equal', j], `invalid label name '${s}'`);
      return s;
    });
    return {
      sourceMatchers: parseMatcherList(r, o.source_matchers, [...path, 'source_matchers']),
      targetMatchers: parseMatcherList(r, o.target_matchers, [...path, 'target_matchers']),
      equal,
    };
  });
  return { resolveTimeoutMs: g.resolveTimeoutMs, route: root, receivers, inhibitRules };
}
