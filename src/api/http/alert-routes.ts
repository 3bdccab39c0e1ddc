/**
 * Alerting and dashboard routes (issue 13): Prometheus's `/api/v1/rules` and `/api/v1/alerts` in
 * Prometheus's shapes (Grafana reads them), and Beacon's `/v1/alerts` (alerts with silences),
 * `/v1/alerts/rules` (rule files in the store), `/v1/alerts/silences`, `/v1/alerts/notifications`
 * and `/v1/dashboards`. Permissions are in authz.ts's route table (`@alerts`, `@dashboards`).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { parse as parseYaml } from 'yaml';
import { InvalidArgumentError, UnavailableError } from '../../errors.js';
import { addRuleToText, type ActiveAlert, type GroupStatus, type RuleManager } from '../../obs/alerting/index.js';
import type { DashboardStore } from '../../obs/dashboards/index.js';
import type { Alert, RuleStatus } from '../../obs/rules/index.js';
import type { HttpContext } from './context.js';
import { auditContext } from './request-context.js';

/** A silence as the routes see it (Alertmanager's shape); the notifier module defines the real one. */
export interface SilenceView {
  id: string;
  matchers: { name: string; value: string; isRegex: boolean; isEqual: boolean }[];
  startsAt: string;
  endsAt: string;
  createdBy: string;
  comment: string;
  status: { state: 'active' | 'pending' | 'expired' };
}

/** What the silence routes need (src/node wires it to the notifier's silences kept in the store). */
export interface SilenceService {
  list(): SilenceView[];
  /** Ids of the active silences that mute an alert with these labels. */
  mutedBy(labels: Record<string, string>): string[];
  /** @throws InvalidArgumentError for bad matchers or times. */
  create(body: unknown, createdBy: string, audit: ReturnType<typeof auditContext>): Promise<{ id: string }>;
  /** @throws NotFoundError for an unknown id. */
  expire(id: string, audit: ReturnType<typeof auditContext>): Promise<void>;
}

/** The alerting parts of a node, for the routes. */
export interface AlertingContext {
  rules: RuleManager;
  dashboards: DashboardStore;
  silences?: SilenceService;
  /** Recent notification attempts and receiver state (`GET /v1/alerts/notifications`). */
  notifications?: () => unknown;
}

/** A float as Go's `strconv.FormatFloat(v, 'e', -1, 64)` prints it (Prometheus's alert `value`). */
export function goExponent(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (!Number.isFinite(v)) return v > 0 ? '+Inf' : '-Inf';
  const [mant, exp] = v.toExponential().split('e') as [string, string];
  const sign = exp.startsWith('-') ? '-' : '+';
  const digits = exp.replace(/^[+-]/, '');
  return `${mant}e${sign}${digits.length < 2 ? `0${digits}` : digits}`;
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

function promAlert(a: Alert): Record<string, unknown> {
  return {
    labels: a.labels,
    annotations: a.annotations,
    state: a.state,
    activeAt: iso(a.activeAtMs),
    ...(a.keepFiringSinceMs > 0 ? { keepFiringSince: iso(a.keepFiringSinceMs) } : {}),
    value: goExponent(a.value),
  };
}

function promRule(s: RuleStatus): Record<string, unknown> {
  const common = { name: s.rule.name, query: s.rule.expr, labels: s.rule.labels, health: s.health, lastError: s.lastError, evaluationTime: 0, lastEvaluation: iso(s.lastEvaluationMs) };
  if (s.rule.kind === 'record') return { ...common, type: 'recording' };
  const active = s.alerts.filter((a) => a.state !== 'inactive');
  const state = active.some((a) => a.state === 'firing') ? 'firing' : active.length > 0 ? 'pending' : 'inactive';
  return {
    state,
    ...common,
    duration: s.rule.forMs / 1000,
    keepFiringFor: s.rule.keepFiringForMs / 1000,
    annotations: s.rule.annotations,
    alerts: active.map(promAlert),
    type: 'alerting',
  };
}

function promGroup(g: GroupStatus, type: string | undefined): Record<string, unknown> {
  const rules = g.rules.filter((r) => type === undefined || (type === 'alert' ? r.rule.kind === 'alert' : r.rule.kind === 'record'));
  return {
    name: g.name,
    file: g.file,
    rules: rules.map(promRule),
    interval: g.intervalMs / 1000,
    limit: g.limit,
    evaluationTime: g.evaluationMs / 1000,
    lastEvaluation: iso(g.lastEvaluationMs),
  };
}

/** The body of a rule-file write: YAML or JSON text, or a JSON object fastify already parsed. */
function bodyText(req: FastifyRequest): string {
  const b = req.body;
  if (b === undefined || b === null || (Buffer.isBuffer(b) && b.length === 0)) throw new InvalidArgumentError('missing body: send a Prometheus rule file (YAML or JSON)');
  if (Buffer.isBuffer(b)) return b.toString('utf8');
  if (typeof b === 'string') return b;
  // `{"text": "<YAML>"}` carries a file's text as JSON (the SDK and console send it so); any other
  // object is the rule file itself in JSON.
  const o = b as Record<string, unknown>;
  if (typeof o.text === 'string' && Object.keys(o).length === 1) return o.text;
  return `${JSON.stringify(b, null, 2)}\n`;
}

function bodyObject(req: FastifyRequest): unknown {
  const b = req.body;
  if (Buffer.isBuffer(b) || typeof b === 'string') {
    try {
      return parseYaml(b.toString());
    } catch (err) {
      throw new InvalidArgumentError(`the body is neither JSON nor YAML: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`);
    }
  }
  return b;
}

function alertView(a: ActiveAlert, silences: SilenceService | undefined): Record<string, unknown> {
  return {
    labels: a.labels,
    annotations: a.annotations,
    state: a.state,
    activeAt: iso(a.activeAtMs),
    ...(a.firedAtMs > 0 ? { firedAt: iso(a.firedAtMs) } : {}),
    value: goExponent(a.value),
    rule: a.rule,
    group: a.group,
    file: a.file,
    silencedBy: silences?.mutedBy(a.labels) ?? [],
  };
}

/** Registers the alerting and dashboard routes; without an alerting context they answer 503. */
export function registerAlertRoutes(app: FastifyInstance, ctx: HttpContext): void {
  const alerting = (): AlertingContext => {
    if (ctx.alerting === undefined) throw new UnavailableError('alerting is not running on this node');
    return ctx.alerting;
  };
  const dashboards = (): DashboardStore => alerting().dashboards;
  const name = (req: FastifyRequest): string => (req.params as { name: string }).name;

  // --- Prometheus's shapes ------------------------------------------------------------------------
  const promRules = (req: FastifyRequest, reply: FastifyReply): void => {
    const type = (req.query as { type?: string }).type;
    if (type !== undefined && type !== 'alert' && type !== 'record') {
      void reply.code(400).send({ status: 'error', errorType: 'bad_data', error: `unsupported type "${type}": use "alert" or "record"` });
      return;
    }
    const groups = alerting().rules.groups().map((g) => promGroup(g, type));
    void reply.send({ status: 'success', data: { groups } });
  };
  app.get('/api/v1/rules', promRules);
  app.get('/api/v1/alerts', async () => ({ status: 'success', data: { alerts: alerting().rules.activeAlerts().map(promAlert) } }));

  // --- alerts -----------------------------------------------------------------------------------
  app.get('/v1/alerts', async (req) => {
    const q = req.query as { state?: string; silenced?: string };
    const a = alerting();
    let alerts = a.rules.activeAlerts().map((x) => alertView(x, a.silences));
    if (q.state !== undefined) {
      if (q.state !== 'pending' && q.state !== 'firing') throw new InvalidArgumentError(`unknown state "${q.state}": use pending or firing`);
      alerts = alerts.filter((x) => x.state === q.state);
    }
    if (q.silenced === 'false') alerts = alerts.filter((x) => (x.silencedBy as string[]).length === 0);
    return { alerts, evaluationIntervalSeconds: a.rules.defaultIntervalMs / 1000 };
  });
  app.get('/v1/alerts/notifications', async () => {
    const a = alerting();
    if (a.notifications === undefined) return { receivers: [] };
    return a.notifications();
  });

  // --- rule files ---------------------------------------------------------------------------------
  app.get('/v1/alerts/rules', async () => ({
    files: alerting()
      .rules.list()
      .map((f) => ({
        name: f.name,
        source: f.source,
        revision: f.revision,
        error: f.error,
        groups: f.groups.map((g) => ({ name: g.name, interval: g.intervalMs === undefined ? null : g.intervalMs / 1000, rules: g.rules.map((r) => r.name) })),
      })),
  }));
  app.get('/v1/alerts/rules/:name', async (req, reply) => {
    const f = alerting().rules.get(name(req));
    const accept = String(req.headers.accept ?? '');
    if (accept.includes('yaml') || accept.startsWith('text/plain')) return reply.type('application/yaml; charset=utf-8').send(f.text);
    return { name: f.name, source: f.source, revision: f.revision, error: f.error, text: f.text };
  });
  app.put('/v1/alerts/rules/:name', async (req) => {
    const res = await alerting().rules.put(name(req), bodyText(req), auditContext(req, 'alerts.rules.put'));
    return { name: name(req), ...res };
  });
  app.delete('/v1/alerts/rules/:name', async (req) => alerting().rules.delete(name(req), auditContext(req, 'alerts.rules.delete')));
  // The seed's "create alert rule": one rule (`{"alert": …, "expr": …}`) into a group, or a whole file.
  app.post('/v1/alerts/rules', async (req, reply) => {
    const q = req.query as { file?: string; group?: string; interval?: string };
    const body = bodyObject(req);
    if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new InvalidArgumentError('send one rule ({"alert": …, "expr": …}) or a rule file ({"groups": […]})');
    const m = alerting().rules;
    const b = body as Record<string, unknown>;
    let file: string;
    let text: string;
    if ('groups' in b) {
      const groups = b.groups;
      const first = Array.isArray(groups) && groups[0] !== null && typeof groups[0] === 'object' ? (groups[0] as { name?: unknown }).name : undefined;
      file = q.file ?? (typeof first === 'string' ? first : '');
      if (file === '') throw new InvalidArgumentError('name the file with ?file= (or give the first group a name)');
      text = bodyText(req);
    } else {
      const { group: bodyGroup, interval: bodyInterval, ...rule } = b;
      const group = q.group ?? (typeof bodyGroup === 'string' ? bodyGroup : 'default');
      const interval = q.interval ?? (typeof bodyInterval === 'string' ? bodyInterval : undefined);
      file = q.file ?? group;
      let existing: string | undefined;
      try {
        existing = m.get(file).text;
      } catch {
        existing = undefined;
      }
      text = addRuleToText(existing, group, rule, interval);
    }
    const res = await m.put(file, text, auditContext(req, 'alerts.rules.put'));
    return reply.code(201).send({ name: file, ...res });
  });

  // --- silences -----------------------------------------------------------------------------------
  const silences = (): SilenceService => {
    const s = alerting().silences;
    if (s === undefined) throw new UnavailableError('silences are not available on this node');
    return s;
  };
  app.get('/v1/alerts/silences', async () => ({ silences: silences().list() }));
  app.post('/v1/alerts/silences', async (req, reply) => {
    const audit = auditContext(req, 'alerts.silences.create');
    const res = await silences().create(bodyObject(req), audit.principal, audit);
    return reply.code(201).send(res);
  });
  app.delete('/v1/alerts/silences/:id', async (req) => {
    await silences().expire((req.params as { id: string }).id, auditContext(req, 'alerts.silences.expire'));
    return { expired: true };
  });

  // --- dashboards ---------------------------------------------------------------------------------
  app.get('/v1/dashboards', async () => ({ dashboards: dashboards().list() }));
  app.get('/v1/dashboards/:id', async (req) => dashboards().get((req.params as { id: string }).id));
  app.put('/v1/dashboards/:id', async (req) => dashboards().put((req.params as { id: string }).id, bodyObject(req), auditContext(req, 'dashboards.put')));
  app.delete('/v1/dashboards/:id', async (req) => dashboards().delete((req.params as { id: string }).id, auditContext(req, 'dashboards.delete')));
}
