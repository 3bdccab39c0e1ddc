/**
 * Dashboards: named sets of panels, each a PromQL query with a title, a unit and thresholds,
 * kept in the kv store (versioned, audited, the same on every node) and drawn by the console.
 * The default dashboard of a Beacon node (`beacon`) is built in and can be overridden by a PUT.
 */
import { InvalidArgumentError, NotFoundError } from '../../errors.js';
import { SYSTEM_PREFIX, prefixEnd, type AuditContext, type Store } from '../../kv/index.js';
import { PromQLError, parseExpr } from '../promql/index.js';

/** A dashboard is the key `DASHBOARD_PREFIX + id`; its value is {@link Dashboard} JSON without `revision`. */
export const DASHBOARD_PREFIX = `${SYSTEM_PREFIX}dashboards/`;

/** Units a panel's values are shown in (`s` seconds, `bytes`, `percent` a ratio 0–1, `ops` per second, '' plain). */
export const PANEL_UNITS = ['', 's', 'bytes', 'percent', 'ops'] as const;
/** How a panel draws: a time-series graph, or its latest value. */
export const PANEL_TYPES = ['graph', 'stat'] as const;

/** One threshold line or colour step: values at or above `value` are drawn in `color`. */
export interface Threshold {
  value: number;
  /** A CSS colour name (`red`) or hex (`#d33`, `#dd3333`). */
  color: string;
}

/** One panel: a PromQL query drawn as a graph or a single value. */
export interface Panel {
  title: string;
  /** A PromQL expression (checked when stored). */
  expr: string;
  unit: (typeof PANEL_UNITS)[number];
  type: (typeof PANEL_TYPES)[number];
  thresholds: Threshold[];
}

/** A dashboard. `refresh` and `range` are Prometheus durations (`30s`, `1h`). */
export interface Dashboard {
  id: string;
  title: string;
  /** The revision that last wrote it; 0 for the built-in default. */
  revision: number;
  /** How often the console re-runs the queries ('' = never). Default `30s`. */
  refresh: string;
  /** The time range shown by default. Default `1h`. */
  range: string;
  panels: Panel[];
}

const ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const DURATION = /^(\d+(ms|s|m|h|d|w|y))+$/;
const COLOR = /^(#[0-9a-fA-F]{3}|#[0-9a-fA-F]{6}|[a-z]{3,20})$/;
const MAX_PANELS = 50;

/** The built-in dashboard of a Beacon node (seed `003_…` journey 1 step 6: "views dashboard"). */
export const DEFAULT_DASHBOARD: Dashboard = {
  id: 'beacon',
  title: 'Beacon node',
  revision: 0,
  refresh: '30s',
  range: '1h',
  panels: [
    { title: 'HTTP requests per second', expr: 'sum by (instance) (rate(beacon_http_requests_total[5m]))', unit: 'ops', type: 'graph', thresholds: [] },
    {
      title: 'Read latency p99',
      expr: 'histogram_quantile(0.99, sum by (instance, le) (rate(beacon_http_request_duration_seconds_bucket{method="GET", route=~"/v1/(kv|configs)/\\\\*"}[5m])))',
      unit: 's',
      type: 'graph',
      thresholds: [{ value: 0.01, color: 'red' }],
    },
    { title: 'Write latency p99', expr: 'histogram_quantile(0.99, sum by (instance, le) (rate(beacon_write_duration_seconds_bucket[5m])))', unit: 's', type: 'graph', thresholds: [{ value: 0.1, color: 'red' }] },
    {
      title: 'Watch propagation p99',
      expr: 'histogram_quantile(0.99, sum by (instance, le) (rate(beacon_watch_propagation_seconds_bucket[5m])))',
      unit: 's',
      type: 'graph',
      thresholds: [{ value: 5, color: 'red' }],
    },
    {
      title: 'Error rate (5xx)',
      expr: 'sum by (instance) (rate(beacon_http_requests_total{status=~"5.."}[5m])) / sum by (instance) (rate(beacon_http_requests_total[5m]))',
      unit: 'percent',
      type: 'graph',
      thresholds: [{ value: 0.001, color: 'red' }],
    },
    {
      title: 'Cache hit rate',
      expr: 'sum by (namespace) (rate(beacon_cache_hits_total[5m])) / (sum by (namespace) (rate(beacon_cache_hits_total[5m])) + sum by (namespace) (rate(beacon_cache_misses_total[5m])))',
      unit: 'percent',
      type: 'graph',
      thresholds: [{ value: 0.8, color: 'green' }],
    },
    { title: 'Keys', expr: 'sum by (instance) (beacon_keys)', unit: '', type: 'stat', thresholds: [] },
    { title: 'Revision', expr: 'max(beacon_revision)', unit: '', type: 'stat', thresholds: [] },
    { title: 'Watchers', expr: 'sum by (instance) (beacon_watchers)', unit: '', type: 'stat', thresholds: [] },
    { title: 'Leases', expr: 'sum by (instance) (beacon_leases)', unit: '', type: 'stat', thresholds: [] },
    { title: 'Resident memory', expr: 'beacon_process_resident_memory_bytes', unit: 'bytes', type: 'graph', thresholds: [] },
    { title: 'Firing alerts', expr: 'count(ALERTS{alertstate="firing"}) or vector(0)', unit: '', type: 'stat', thresholds: [{ value: 1, color: 'red' }] },
  ],
};

function fail(msg: string): never {
  throw new InvalidArgumentError(msg);
}

/**
 * Checks a dashboard body (as a client sends it: `title`, `panels`, optional `refresh`, `range`)
 * and returns it normalised, with `id`.
 * @throws InvalidArgumentError naming the first offending field (`panels[2].expr: …`), e.g. an
 *   expression that does not parse, an unknown unit or type, a colour that is not a name or hex.
 */
export function parseDashboard(id: string, body: unknown): Dashboard {
  if (!ID.test(id)) fail(`invalid dashboard id ${JSON.stringify(id)}: use 1-128 letters, digits, '.', '_' or '-'`);
  if (body === null || typeof body !== 'object' || Array.isArray(body)) fail('a dashboard is a JSON object with "title" and "panels"');
  const b = body as Record<string, unknown>;
  for (const k of Object.keys(b)) if (!['id', 'title', 'revision', 'refresh', 'range', 'panels'].includes(k)) fail(`unknown field ${JSON.stringify(k)} (fields: title, refresh, range, panels)`);
  if (b.id !== undefined && b.id !== id) fail(`"id" ${JSON.stringify(b.id)} does not match the URL's ${JSON.stringify(id)}`);
  if (typeof b.title !== 'string' || b.title.length === 0 || b.title.length > 200) fail('"title" must be a string of 1-200 characters');
  const dur = (f: string, v: unknown, dflt: string, allowEmpty: boolean): string => {
    if (v === undefined) return dflt;
    if (typeof v !== 'string' || !((allowEmpty && v === '') || DURATION.test(v))) fail(`"${f}" must be a duration such as 30s or 1h${allowEmpty ? ", or ''" : ''}`);
    return v;
  };
  const refresh = dur('refresh', b.refresh, '30s', true);
  const range = dur('range', b.range, '1h', false);
  if (!Array.isArray(b.panels)) fail('"panels" must be an array');
  if (b.panels.length > MAX_PANELS) fail(`a dashboard has at most ${MAX_PANELS} panels`);
  const panels = b.panels.map((p: unknown, i: number): Panel => {
    const at = `panels[${i}]`;
    if (p === null || typeof p !== 'object' || Array.isArray(p)) fail(`${at}: a panel is an object with "title" and "expr"`);
    const q = p as Record<string, unknown>;
    for (const k of Object.keys(q)) if (!['title', 'expr', 'unit', 'type', 'thresholds'].includes(k)) fail(`${at}: unknown field ${JSON.stringify(k)} (fields: title, expr, unit, type, thresholds)`);
    if (typeof q.title !== 'string' || q.title.length > 200) fail(`${at}.title must be a string of at most 200 characters`);
    if (typeof q.expr !== 'string' || q.expr.trim() === '') fail(`${at}.expr must be a PromQL expression`);
    try {
      parseExpr(q.expr);
    } catch (err) {
      if (err instanceof PromQLError) fail(`${at}.expr: ${err.message}`);
      throw err;
    }
    const unit = q.unit ?? '';
    if (!PANEL_UNITS.includes(unit as Panel['unit'])) fail(`${at}.unit must be one of ${PANEL_UNITS.map((u) => JSON.stringify(u)).join(', ')}`);
    const type = q.type ?? 'graph';
    if (!PANEL_TYPES.includes(type as Panel['type'])) fail(`${at}.type must be "graph" or "stat"`);
    const th = q.thresholds ?? [];
    if (!Array.isArray(th) || th.length > 10) fail(`${at}.thresholds must be an array of at most 10 {value, color}`);
    const thresholds = th.map((t: unknown, j: number): Threshold => {
      const tt = t as Record<string, unknown> | null;
      if (tt === null || typeof tt !== 'object' || typeof tt.value !== 'number' || !Number.isFinite(tt.value)) fail(`${at}.thresholds[${j}].value must be a finite number`);
      if (typeof tt.color !== 'string' || !COLOR.test(tt.color)) fail(`${at}.thresholds[${j}].color must be a colour name or #rgb / #rrggbb`);
      return { value: tt.value, color: tt.color };
    });
    return { title: q.title, expr: q.expr, unit: unit as Panel['unit'], type: type as Panel['type'], thresholds };
  });
  return { id, title: b.title, revision: 0, refresh, range, panels };
}

/** Dashboards in the kv store, with the built-in default. */
export class DashboardStore {
  constructor(private readonly store: Store) {}

  /** Every dashboard's id and title, the default first. */
  list(): { id: string; title: string }[] {
    const stored = this.store.rangeLatest(DASHBOARD_PREFIX, prefixEnd(DASHBOARD_PREFIX)).kvs.map((kv) => this.decode(kv.key.slice(DASHBOARD_PREFIX.length), kv.value, kv.modRevision));
    const out = stored.map((d) => ({ id: d.id, title: d.title }));
    if (!stored.some((d) => d.id === DEFAULT_DASHBOARD.id)) out.unshift({ id: DEFAULT_DASHBOARD.id, title: DEFAULT_DASHBOARD.title });
    return out.sort((a, b) => (a.id === DEFAULT_DASHBOARD.id ? -1 : b.id === DEFAULT_DASHBOARD.id ? 1 : a.id < b.id ? -1 : 1));
  }

  /** One dashboard. @throws NotFoundError when there is none by that id. */
  get(id: string): Dashboard {
    const kv = this.store.get(DASHBOARD_PREFIX + id);
    if (kv !== undefined) return this.decode(id, kv.value, kv.modRevision);
    if (id === DEFAULT_DASHBOARD.id) return DEFAULT_DASHBOARD;
    throw new NotFoundError(`dashboard ${JSON.stringify(id)} not found`);
  }

  /**
   * Checks and stores a dashboard (one revision, audited).
   * @throws InvalidArgumentError as {@link parseDashboard}.
   */
  async put(id: string, body: unknown, audit?: AuditContext): Promise<Dashboard> {
    const d = parseDashboard(id, body);
    const { revision: _r, ...stored } = d;
    const res = await this.store.put(DASHBOARD_PREFIX + id, Buffer.from(JSON.stringify(stored)), audit !== undefined ? { audit } : {});
    return { ...d, revision: res.revision };
  }

  /**
   * Removes a stored dashboard (the built-in default comes back when its override is removed).
   * @throws NotFoundError when nothing is stored under that id.
   */
  async delete(id: string, audit?: AuditContext): Promise<{ revision: number }> {
    const res = await this.store.deleteRange(DASHBOARD_PREFIX + id, undefined, audit !== undefined ? { audit } : {});
    if (res.deleted === 0) throw new NotFoundError(`dashboard ${JSON.stringify(id)} not found`);
    return { revision: res.revision };
  }

  private decode(id: string, value: Uint8Array, revision: number): Dashboard {
    const d = JSON.parse(Buffer.from(value).toString('utf8')) as Omit<Dashboard, 'revision'>;
    return { ...d, id, revision };
  }
}
