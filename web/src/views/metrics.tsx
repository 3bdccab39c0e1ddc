/**
 * Monitoring pages: the PromQL query page (table and graph, through the Prometheus HTTP API),
 * dashboards (panels of PromQL queries with a time range, drag-to-zoom and auto-refresh), and
 * alerts with silences. The charting code (uPlot) loads only when a chart is drawn. Routes a node
 * lacks answer 404, shown as "not available on this node".
 */
import type { JSX } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import type { AlertInfo, DashboardPanel, PromResponse } from '../../../client/index.js';
import { href, navigate, useRoute } from '../router.js';
import { admin, can, client } from '../session.js';
import { Link, Loaded, PageHead, act, useAsync } from '../ui.js';
import type * as ChartExports from './chart.js';
import type { MatrixSeries } from './chart.js';

type ChartModule = typeof ChartExports;
let chartModule: Promise<ChartModule> | undefined;

function useChartModule(): ChartModule | undefined {
  const [mod, setMod] = useState<ChartModule | undefined>(undefined);
  useEffect(() => {
    let live = true;
    const load = (): void => {
      chartModule ??= import('./chart.js');
      chartModule.then(
        (m) => live && setMod(m),
        () => {
          // A chunk request cut off (a busy or restarting node) is not remembered: try again.
          chartModule = undefined;
          if (live) setTimeout(load, 1000);
        },
      );
    };
    load();
    return () => {
      live = false;
    };
  }, []);
  return mod;
}

/** Seconds of a Prometheus duration such as `90s`, `15m`, `1h`, `7d`. */
export function durationSeconds(d: string, fallback: number): number {
  const m = /^(\d+)(ms|s|m|h|d|w)$/.exec(d.trim());
  if (m === null) return fallback;
  const n = Number(m[1]);
  return n * ({ ms: 0.001, s: 1, m: 60, h: 3600, d: 86400, w: 604800 } as Record<string, number>)[m[2] as string]!;
}

const RANGES = ['5m', '15m', '1h', '6h', '24h', '7d'];

function promError(res: PromResponse): string | undefined {
  return res.status === 'error' ? `${res.errorType ?? 'error'}: ${res.error ?? ''}` : undefined;
}

/** A step that gives about 250 points over the range (at least 1 s). */
function stepFor(rangeSeconds: number): number {
  return Math.max(1, Math.round(rangeSeconds / 250));
}

/** `/ui/metrics?expr=…&tab=graph&range=1h`: run a PromQL query, see it as a table or a graph. */
export function QueryPage(): JSX.Element {
  const route = useRoute();
  const expr = route.params.get('expr') ?? '';
  const tab = route.params.get('tab') ?? 'table';
  const range = route.params.get('range') ?? '1h';
  const end = Number(route.params.get('end') ?? 0);
  const [draft, setDraft] = useState(expr);
  useEffect(() => setDraft(expr), [expr]);
  const go = (p: Record<string, string | number | undefined>): void => navigate(href('metrics', { expr, tab, range, end: end || undefined, ...p }));
  return (
    <div>
      <PageHead title="Query" />
      <form class="query" onSubmit={(e) => {
        e.preventDefault();
        go({ expr: draft });
      }}>
        <label class="visually-hidden" for="promql">PromQL expression</label>
        <textarea id="promql" rows={2} spellcheck={false} value={draft} placeholder="rate(beacon_http_requests_total[5m])"
          onInput={(e) => setDraft((e.currentTarget as HTMLTextAreaElement).value)}
          onKeyDown={(e) => {
            if (e.key === 'Enter' && !e.shiftKey) {
              e.preventDefault();
              go({ expr: draft });
            }
          }} />
        <button type="submit" class="primary">Execute</button>
      </form>
      <nav class="tabs" aria-label="Result views">
        <Link href={href('metrics', { expr, tab: 'table', range })} aria-current={tab === 'table' ? 'page' : undefined}>Table</Link>
        <Link href={href('metrics', { expr, tab: 'graph', range })} aria-current={tab === 'graph' ? 'page' : undefined}>Graph</Link>
      </nav>
      {expr === '' ? <p class="hint">Enter a PromQL expression; Beacon answers from its own time-series store.</p> : tab === 'graph' ? (
        <GraphResult expr={expr} range={range} end={end} onRange={(r) => go({ range: r, end: undefined })} onZoom={(s, e) => go({ range: `${e - s}s`, end: e })} />
      ) : (
        <TableResult expr={expr} />
      )}
    </div>
  );
}

function TableResult(props: { expr: string }): JSX.Element {
  const state = useAsync((signal) => admin.query(props.expr, undefined, signal), [props.expr]);
  return (
    <Loaded state={state} missing="The Prometheus query API is not available on this node.">
      {(res) => {
        const err = promError(res);
        if (err !== undefined) return <p class="error" role="alert">{err}</p>;
        const data = res.data;
        if (data === undefined) return <p class="hint">No data.</p>;
        if (data.resultType === 'scalar' || data.resultType === 'string') {
          const [, v] = data.result as [number, string];
          return <p class="stat" data-testid="scalar">{v}</p>;
        }
        const rows = data.result as { metric: Record<string, string>; value?: [number, string]; values?: [number, string][] }[];
        return (
          <ChartNames>
            {(seriesName) => (
              <table class="grid" aria-label="Result" data-testid="query-result">
                <thead><tr><th scope="col">Series</th><th scope="col">Value</th></tr></thead>
                <tbody>
                  {rows.length === 0 ? <tr><td colSpan={2} class="hint">Empty result.</td></tr> : null}
                  {rows.map((r, i) => <tr key={i}><td><code>{seriesName(r.metric)}</code></td><td>{r.value?.[1] ?? r.values?.map((v) => v[1]).join(', ')}</td></tr>)}
                </tbody>
              </table>
            )}
          </ChartNames>
        );
      }}
    </Loaded>
  );
}

function plainName(m: Record<string, string>): string {
  const name = m.__name__ ?? '';
  const labels = Object.entries(m).filter(([k]) => k !== '__name__').map(([k, v]) => `${k}="${v}"`).join(', ');
  return labels === '' ? name || '{}' : `${name}{${labels}}`;
}

function ChartNames(props: { children: (name: (m: Record<string, string>) => string) => JSX.Element }): JSX.Element {
  return props.children(plainName);
}

function RangePicker(props: { range: string; onRange: (r: string) => void }): JSX.Element {
  return (
    <div class="range-picker" role="group" aria-label="Time range">
      {RANGES.map((r) => <button type="button" key={r} aria-pressed={props.range === r} onClick={() => props.onRange(r)}>{r}</button>)}
    </div>
  );
}

function GraphResult(props: { expr: string; range: string; end: number; onRange: (r: string) => void; onZoom: (s: number, e: number) => void }): JSX.Element {
  const mod = useChartModule();
  const seconds = durationSeconds(props.range, 3600);
  const state = useAsync((signal) => {
    const end = props.end || Math.floor(Date.now() / 1000);
    return admin.queryRange(props.expr, end - seconds, end, stepFor(seconds), signal);
  }, [props.expr, props.range, props.end]);
  return (
    <div>
      <RangePicker range={props.range} onRange={props.onRange} />
      <p class="hint">Drag across the chart to zoom in.</p>
      <Loaded state={state} missing="The Prometheus query API is not available on this node.">
        {(res) => {
          const err = promError(res);
          if (err !== undefined) return <p class="error" role="alert">{err}</p>;
          const series = (res.data?.result ?? []) as MatrixSeries[];
          if (series.length === 0) return <p class="hint">No samples in this range.</p>;
          return mod === undefined ? <p class="loading">Loading chart…</p> : <mod.Chart series={series} label={props.expr} onZoom={props.onZoom} />;
        }}
      </Loaded>
    </div>
  );
}

/** `/ui/dashboards[/id]?range=1h`: a dashboard's panels; the default is `beacon`. */
export function DashboardsPage(): JSX.Element {
  const route = useRoute();
  const id = route.rest[0] ?? 'beacon';
  const list = useAsync((signal) => client.dashboards.list({ signal }), []);
  const dash = useAsync((signal) => client.dashboards.get(id, { signal }), [id]);
  const [tick, setTick] = useState(0);
  const rangeParam = route.params.get('range');
  const end = Number(route.params.get('end') ?? 0);
  const [auto, setAuto] = useState(true);
  const refresh = dash.data?.refresh;
  useEffect(() => {
    if (!auto || refresh === undefined || end !== 0) return;
    const t = setInterval(() => setTick((x) => x + 1), durationSeconds(refresh, 30) * 1000);
    return () => clearInterval(t);
  }, [auto, refresh, end]);
  return (
    <div>
      <PageHead title={dash.data?.title ?? 'Dashboards'}>
        {list.data !== undefined && list.data.length > 1 ? (
          <select aria-label="Dashboard" value={id} onChange={(e) => navigate(href(`dashboards/${encodeURIComponent((e.currentTarget as HTMLSelectElement).value)}`))}>
            {list.data.map((d) => <option key={d.id} value={d.id}>{d.title}</option>)}
          </select>
        ) : null}
      </PageHead>
      <Loaded state={dash} missing="Dashboards are not available on this node.">
        {(d) => {
          const range = rangeParam ?? d.range ?? '1h';
          const seconds = durationSeconds(range, 3600);
          const setRange = (r: string, e?: number): void => navigate(href(`dashboards/${encodeURIComponent(id)}`, { range: r, end: e }));
          return (
            <>
              <div class="dash-tools">
                <RangePicker range={range} onRange={(r) => setRange(r)} />
                <label class="check"><input type="checkbox" checked={auto} onChange={() => setAuto(!auto)} /> Auto-refresh{d.refresh !== undefined ? ` every ${d.refresh}` : ''}</label>
                {end !== 0 ? <button type="button" onClick={() => setRange(range)}>Back to now</button> : null}
              </div>
              <div class="panels">
                {d.panels.map((p, i) => <Panel key={`${i}:${p.expr}`} panel={p} seconds={seconds} end={end} tick={tick} onZoom={(s, e) => setRange(`${e - s}s`, e)} />)}
              </div>
            </>
          );
        }}
      </Loaded>
    </div>
  );
}

function Panel(props: { panel: DashboardPanel; seconds: number; end: number; tick: number; onZoom: (s: number, e: number) => void }): JSX.Element {
  const { panel } = props;
  const mod = useChartModule();
  // An auto-refresh tick that comes while the panel's query is still running waits for it instead
  // of cutting it off: on a slow node a query longer than the refresh period would otherwise be
  // restarted forever and the chart never drawn.
  const [refreshed, setRefreshed] = useState(props.tick);
  const state = useAsync((signal) => {
    const end = props.end || Math.floor(Date.now() / 1000);
    return panel.type === 'stat' ? admin.query(panel.expr, end, signal) : admin.queryRange(panel.expr, end - props.seconds, end, stepFor(props.seconds), signal);
  }, [panel.expr, props.seconds, props.end, refreshed]);
  useEffect(() => {
    if (!state.loading && refreshed !== props.tick) setRefreshed(props.tick);
  }, [props.tick, state.loading]);
  return (
    <section class="panel" aria-label={panel.title}>
      <h2>{panel.title}</h2>
      <Loaded state={state}>
        {(res) => {
          const err = promError(res);
          if (err !== undefined) return <p class="error">{err}</p>;
          if (mod === undefined) return <p class="loading">Loading chart…</p>;
          if (panel.type === 'stat') {
            const first = ((res.data?.result ?? []) as { value: [number, string] }[])[0];
            const v = first === undefined ? null : Number(first.value[1]);
            const color = v === null ? undefined : [...(panel.thresholds ?? [])].sort((a, b) => b.value - a.value).find((t) => v >= t.value)?.color;
            return <p class={`stat${color !== undefined ? ` threshold-${color}` : ''}`}>{v === null ? 'no data' : mod.formatValue(panel.unit, v)}</p>;
          }
          const series = (res.data?.result ?? []) as MatrixSeries[];
          return series.length === 0 ? <p class="hint">No samples.</p> : <mod.Chart series={series} unit={panel.unit} height={180} label={panel.title} onZoom={props.onZoom} />;
        }}
      </Loaded>
    </section>
  );
}

/** `/ui/alerts`: firing and pending alerts, silences (create from an alert, expire), rule files. */
export function AlertsPage(): JSX.Element {
  const alerts = useAsync((signal) => client.alerts.list({ signal }), []);
  const silences = useAsync((signal) => client.alerts.silences({ signal }), []);
  const rules = useAsync((signal) => client.alerts.ruleFiles({ signal }), []);
  const [error, setError] = useState<string | undefined>(undefined);
  useEffect(() => {
    const t = setInterval(() => {
      alerts.reload();
      silences.reload();
    }, 10_000);
    return () => clearInterval(t);
  }, []);
  const mayWrite = can('write', '@alerts');
  const silence = (a: AlertInfo): void => {
    const matchers = Object.entries(a.labels).map(([name, value]) => ({ name, value, isRegex: false, isEqual: true }));
    void act(() => client.alerts.silence({ matchers, duration: '2h', comment: `silenced from the console: ${a.rule}` })).then((e) => {
      setError(e);
      silences.reload();
      alerts.reload();
    });
  };
  return (
    <div>
      <PageHead title="Alerts" />
      {error !== undefined ? <p class="error" role="alert">{error}</p> : null}
      <section aria-label="Active alerts">
        <h2>Active alerts</h2>
        <Loaded state={alerts} missing="Alerting is not available on this node.">
          {(list) => (
            <table class="grid" aria-label="Alerts" data-testid="alerts">
              <thead><tr><th scope="col">Alert</th><th scope="col">State</th><th scope="col">Labels</th><th scope="col">Value</th><th scope="col">Active since</th><th scope="col" /></tr></thead>
              <tbody>
                {list.length === 0 ? <tr><td colSpan={6} class="hint">Nothing pending or firing.</td></tr> : null}
                {list.map((a, i) => (
                  <tr key={i} class={a.state}>
                    <td>{a.rule}<div class="hint">{a.annotations.summary ?? ''}</div></td>
                    <td>{a.state}{a.silencedBy !== undefined && a.silencedBy.length > 0 ? ' (silenced)' : ''}</td>
                    <td><code>{plainName(a.labels)}</code></td>
                    <td>{a.value}</td>
                    <td>{new Date(a.activeAt).toLocaleString()}</td>
                    <td>{mayWrite && (a.silencedBy ?? []).length === 0 ? <button type="button" onClick={() => silence(a)}>Silence 2h</button> : null}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </Loaded>
      </section>
      <section aria-label="Silences">
        <h2>Silences</h2>
        <Loaded state={silences} missing="Silences are not available on this node.">
          {(list) => (
            <table class="grid" aria-label="Silences list" data-testid="silences">
              <thead><tr><th scope="col">Matchers</th><th scope="col">State</th><th scope="col">Ends</th><th scope="col">By</th><th scope="col">Comment</th><th scope="col" /></tr></thead>
              <tbody>
                {list.length === 0 ? <tr><td colSpan={6} class="hint">No silences.</td></tr> : null}
                {list.map((s) => (
                  <tr key={s.id}>
                    <td><code>{s.matchers.map((m) => `${m.name}${m.isEqual === false ? '!' : ''}${m.isRegex ? '=~' : '='}"${m.value}"`).join(', ')}</code></td>
                    <td>{s.status.state}</td><td>{new Date(s.endsAt).toLocaleString()}</td><td>{s.createdBy}</td><td>{s.comment}</td>
                    <td>{mayWrite && s.status.state !== 'expired' ? <button type="button" onClick={() => void act(() => client.alerts.expireSilence(s.id)).then((e) => (setError(e), silences.reload()))}>Expire</button> : null}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </Loaded>
      </section>
      <section aria-label="Rules">
        <h2>Rule files</h2>
        <Loaded state={rules} missing="Alert rules are not available on this node.">
          {(files) => (
            <table class="grid" aria-label="Rule files">
              <thead><tr><th scope="col">File</th><th scope="col">Source</th><th scope="col">Revision</th><th scope="col">Groups and rules</th><th scope="col">State</th></tr></thead>
              <tbody>
                {files.map((f) => (
                  <tr key={f.name}>
                    <td>{f.name}</td><td>{f.source}</td><td>{f.revision}</td>
                    <td>{f.groups.map((g) => <div key={g.name}><strong>{g.name}</strong>: {g.rules.join(', ')}</div>)}</td>
                    <td>{f.error === '' ? 'evaluated' : <span class="error">{f.error}</span>}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </Loaded>
      </section>
    </div>
  );
}
