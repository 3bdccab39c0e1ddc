/**
 * Metrics routes: pushes (`POST /v1/metrics` in the seed's JSON or Prometheus text, `POST
 * /api/v1/write` remote-write 1.0) and the Prometheus HTTP query API (`/api/v1/query`,
 * `query_range`, `series`, `labels`, `label/{name}/values`, `status/buildinfo`) in Prometheus's
 * JSON shapes, so promtool and Grafana work unchanged. The query API answers errors as Prometheus
 * does (`{"status":"error","errorType","error"}`): that mapping is this adapter's one error table.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { BeaconError, ErrorCode, InvalidArgumentError } from '../../errors.js';
import {
  parseDurationOrSeconds,
  parseJsonPush,
  parseRemoteWrite,
  parseTextPush,
  parseTime,
  type Ingester,
  type SeriesBatch,
} from '../../obs/ingest/index.js';
import { PromQLError, instantQuery, parseExpr, rangeQuery, type Expr } from '../../obs/promql/index.js';
import { TooManySamplesError, type Labels, type Matcher, type Querier, type Tsdb } from '../../obs/tsdb/index.js';
import { principalOf } from './authz.js';
import type { HttpContext } from './context.js';

/** The metrics store as the routes see it (src/node wires it). */
export interface MetricsStoreContext {
  tsdb: Tsdb;
  /** What queries read: the local store, or in PostgreSQL mode every node's samples. */
  querier: Querier;
  /** What this API reads: {@link querier}, falling back to this node's samples while PostgreSQL cannot be read. */
  apiQuerier?: Querier;
  /** Why answers are partial now (PostgreSQL unreadable): the answer's `warnings`. */
  partial?: () => string | undefined;
  ingester: Ingester;
  /** Query timeout, ms (default 2 min; `--query-timeout`). */
  queryTimeoutMs: number;
  /** Most samples one query may load (`--query-max-samples`). */
  maxQuerySamples: number;
  /** Reported by `/api/v1/status/buildinfo`. */
  version: string;
}

/** Largest push body, bytes. */
export const MAX_PUSH_BYTES = 32 * 1024 * 1024;

/** Prometheus's HTTP status per `errorType` (web/api/v1). */
const PROM_STATUS: Record<string, number> = { bad_data: 400, execution: 422, canceled: 499, timeout: 503, internal: 500, not_found: 404 };

/** A Prometheus API error answer. */
interface PromErrorBody {
  status: 'error';
  errorType: string;
  error: string;
}

/** Maps any error to Prometheus's `errorType` and HTTP status; unknown errors are `internal` without detail. */
export function toPromError(err: unknown, requestId: string): { status: number; body: PromErrorBody } {
  let errorType = 'internal';
  let message = `internal error (request id ${requestId})`;
  if (err instanceof PromQLError) {
    errorType = err.errorType;
    message = err.message;
  } else if (err instanceof TooManySamplesError) {
    errorType = 'execution';
    message = err.message;
  } else if (err instanceof BeaconError) {
    errorType = err.code === ErrorCode.InvalidArgument ? 'bad_data' : err.code === ErrorCode.Unavailable ? 'unavailable' : err.code === ErrorCode.TooLarge ? 'execution' : 'internal';
    message = err.message;
  }
  const status = PROM_STATUS[errorType] ?? (errorType === 'unavailable' ? 503 : 500);
  return { status, body: { status: 'error', errorType, error: message } };
}

/** The parameters of a query-API request: the URL's query and, for POST, the form body (repeated keys kept). */
function params(req: FastifyRequest): URLSearchParams {
  const out = new URLSearchParams(req.url.includes('?') ? req.url.slice(req.url.indexOf('?') + 1) : '');
  out.delete('access_token');
  if (req.method === 'POST' && req.body !== undefined && req.body !== null) {
    const text = Buffer.isBuffer(req.body) ? req.body.toString('utf8') : typeof req.body === 'string' ? req.body : '';
    for (const [k, v] of new URLSearchParams(text)) out.append(k, v);
  }
  return out;
}

function selectorMatchers(text: string): Matcher[] {
  let e: Expr;
  try {
    e = parseExpr(text);
  } catch (err) {
    if (err instanceof PromQLError) throw new PromQLError('bad_data', `invalid parameter "match[]": ${err.message}`);
    throw err;
  }
  if (e.kind !== 'vectorSelector') throw new PromQLError('bad_data', `invalid parameter "match[]": '${text}' is not a series selector`);
  return e.matchers;
}

function labelsObject(labels: Labels): Record<string, string> {
  const o: Record<string, string> = {};
  for (const l of labels) o[l.name] = l.value;
  return o;
}

function timeRange(p: URLSearchParams): { start: number; end: number } {
  const s = p.get('start');
  const e = p.get('end');
  const start = s === null || s === '' ? -Infinity : parseTime(s, 'start');
  const end = e === null || e === '' ? Infinity : parseTime(e, 'end');
  if (end < start) throw new PromQLError('bad_data', 'invalid parameter "end": end timestamp must not be before start time');
  return { start, end };
}

/** The series matching any of the `match[]` selectors (all series when none is given and `optional`). */
function matchSets(p: URLSearchParams, optional: boolean): Matcher[][] {
  const sels = p.getAll('match[]');
  if (sels.length === 0) {
    if (optional) return [[]];
    throw new PromQLError('bad_data', 'no match[] parameter provided');
  }
  return sels.map(selectorMatchers);
}

/**
 * Registers the push and query routes. Their permissions (metrics write/read) are in the route
 * table of authz.ts; without a metrics store the routes answer 503.
 */
export function registerPromRoutes(app: FastifyInstance, ctx: HttpContext): void {
  const store = (): MetricsStoreContext => {
    const m = ctx.metricsStore;
    if (m === undefined) throw new BeaconError(ErrorCode.Unavailable, 'this node keeps no metrics store');
    return m;
  };

  // --- pushes (Beacon's error shape) --------------------------------------------------------------

  const ingest = (req: FastifyRequest, parse: () => SeriesBatch, format: string, reason: string): { samples: number; series: number; newSeries: number } => {
    const m = store();
    let batch: SeriesBatch;
    try {
      batch = parse();
    } catch (err) {
      m.ingester.rejected(reason);
      throw err;
    }
    const res = m.ingester.push(principalOf(req).name, batch, format);
    return { samples: res.samples, series: batch.seriesCount, newSeries: res.newSeries };
  };

  app.post('/v1/metrics', { bodyLimit: MAX_PUSH_BYTES }, async (req) => {
    const m = store();
    const type = String(req.headers['content-type'] ?? '').toLowerCase();
    const now = Date.now();
    const isText = type.startsWith('text/plain') || type.startsWith('application/openmetrics-text');
    if (isText) {
      const text = Buffer.isBuffer(req.body) ? req.body.toString('utf8') : String(req.body ?? '');
      return ingest(req, () => parseTextPush(text, now, m.ingester.labelLimits), 'text', 'bad_text');
    }
    // JSON, also when sent as a form (`curl -d '{…}'`, the seed's example, says x-www-form-urlencoded).
    let body: unknown = req.body;
    if (Buffer.isBuffer(body)) {
      try {
        body = JSON.parse(body.toString('utf8'));
      } catch (err) {
        m.ingester.rejected('bad_json');
        throw new InvalidArgumentError(`invalid JSON body: ${(err as Error).message} (send Prometheus text with content-type text/plain)`);
      }
    }
    if (body === undefined || body === null) throw new InvalidArgumentError('empty body: send a JSON metric {"name","value","labels"} or Prometheus text');
    return ingest(req, () => parseJsonPush(body, now, m.ingester.labelLimits), 'json', 'bad_json');
  });

  app.post('/api/v1/write', { bodyLimit: MAX_PUSH_BYTES }, async (req, reply) => {
    const m = store();
    if (!Buffer.isBuffer(req.body)) throw new InvalidArgumentError('the remote-write body must be snappy-compressed protobuf (content-type application/x-protobuf)');
    const body = req.body;
    ingest(req, () => parseRemoteWrite(body, m.ingester.labelLimits), 'remote_write', 'bad_remote_write');
    void reply.status(204);
    return null;
  });

  // --- query API (Prometheus's shapes) ------------------------------------------------------------

  const promRoute = (endpoint: string, handler: (p: URLSearchParams, req: FastifyRequest) => Promise<unknown>) => {
    return async (req: FastifyRequest, reply: FastifyReply) => {
      const started = performance.now();
      try {
        const data = await handler(params(req), req);
        const partial = ctx.metricsStore?.partial?.();
        return partial === undefined ? { status: 'success', data } : { status: 'success', data, warnings: [partial] };
      } catch (err) {
        const { status, body } = toPromError(err, String(req.id));
        if (status >= 500 && status !== 503) req.log.error({ err }, 'query failed');
        void reply.status(status);
        return body;
      } finally {
        ctx.metrics.tsdbQueryDuration.observe({ endpoint }, (performance.now() - started) / 1000);
      }
    };
  };

  /** What the API reads (see {@link MetricsStoreContext.apiQuerier}). */
  const reader = (m: MetricsStoreContext): Querier => m.apiQuerier ?? m.querier;

  const timeout = (p: URLSearchParams, m: MetricsStoreContext): number => {
    const t = p.get('timeout');
    if (t === null || t === '') return m.queryTimeoutMs;
    return Math.min(m.queryTimeoutMs, parseDurationOrSeconds(t, 'timeout'));
  };

  const query = promRoute('query', async (p) => {
    const m = store();
    const q = p.get('query');
    if (q === null) throw new PromQLError('bad_data', 'invalid parameter "query": no query given');
    const t = p.get('time');
    const at = t === null || t === '' ? Date.now() : parseTime(t, 'time');
    return instantQuery(reader(m), q, at, { timeoutMs: timeout(p, m), maxSamples: m.maxQuerySamples });
  });
  app.get('/api/v1/query', query);
  app.post('/api/v1/query', query);

  const queryRange = promRoute('query_range', async (p) => {
    const m = store();
    const q = p.get('query');
    if (q === null) throw new PromQLError('bad_data', 'invalid parameter "query": no query given');
    const s = p.get('start');
    const e = p.get('end');
    const st = p.get('step');
    if (s === null) throw new PromQLError('bad_data', 'invalid parameter "start": cannot parse "" to a valid timestamp');
    if (e === null) throw new PromQLError('bad_data', 'invalid parameter "end": cannot parse "" to a valid timestamp');
    if (st === null) throw new PromQLError('bad_data', 'invalid parameter "step": cannot parse "" to a valid duration');
    const start = parseTime(s, 'start');
    const end = parseTime(e, 'end');
    const step = parseDurationOrSeconds(st, 'step');
    if (end < start) throw new PromQLError('bad_data', 'invalid parameter "end": end timestamp must not be before start time');
    if (!(step > 0)) throw new PromQLError('bad_data', 'invalid parameter "step": zero or negative query resolution step widths are not accepted. Try a positive integer');
    if ((end - start) / step > 11_000) {
      throw new PromQLError('bad_data', 'exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)');
    }
    return rangeQuery(reader(m), q, start, end, step, { timeoutMs: timeout(p, m), maxSamples: m.maxQuerySamples });
  });
  app.get('/api/v1/query_range', queryRange);
  app.post('/api/v1/query_range', queryRange);

  const series = promRoute('series', async (p) => {
    const m = store();
    const { start, end } = timeRange(p);
    const seen = new Map<string, Record<string, string>>();
    for (const ms of matchSets(p, false)) {
      for (const l of await reader(m).series(ms, start, end)) seen.set(l.map((x) => `${x.name}\u00fe${x.value}`).join('\u00ff'), labelsObject(l));
    }
    return [...seen.values()];
  });
  app.get('/api/v1/series', series);
  app.post('/api/v1/series', series);

  const labels = promRoute('labels', async (p) => {
    const m = store();
    const { start, end } = timeRange(p);
    const names = new Set<string>();
    for (const ms of matchSets(p, true)) for (const n of await reader(m).labelNames(ms, start, end)) names.add(n);
    return [...names].sort();
  });
  app.get('/api/v1/labels', labels);
  app.post('/api/v1/labels', labels);

  app.get(
    '/api/v1/label/:name/values',
    promRoute('label_values', async (p, req) => {
      const m = store();
      const name = (req.params as { name: string }).name;
      if (!/^[a-zA-Z_][a-zA-Z0-9_]*$/.test(name)) throw new PromQLError('bad_data', `invalid label name: "${name}"`);
      const { start, end } = timeRange(p);
      const values = new Set<string>();
      for (const ms of matchSets(p, true)) for (const v of await reader(m).labelValues(name, ms, start, end)) values.add(v);
      return [...values].sort();
    }),
  );

  app.get(
    '/api/v1/status/buildinfo',
    promRoute('buildinfo', async () => ({
      version: store().version,
      revision: 'beacon',
      branch: 'beacon',
      buildUser: 'beacon',
      buildDate: '',
      goVersion: `node ${process.version}`,
    })),
  );
}
