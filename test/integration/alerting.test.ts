/**
 * Alerting in a running node (issue 13): rule files stored and evaluated, the seed's journey
 * (push api.latency 500 → pending → firing; 200 → resolved), Prometheus's `/api/v1/rules` and
 * `/api/v1/alerts` shapes, rule files refused with promtool's reasons, state kept across an edit
 * of the file and across a restart, a failing rule beside healthy ones, permissions, dashboards.
 * Groups use a 1 s interval; the node's clock is real.
 */
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { http, startTestNode, tempDir } from '../helpers/node.js';
import { ADMIN_PASSWORD, client, login, startSecureNode, userToken } from './security-helpers.js';

type Node = Awaited<ReturnType<typeof startTestNode>>;

const LATENCY_RULES = `groups:
  - name: api
    interval: 1s
    rules:
      - alert: HighLatency
        expr: avg_over_time(api_latency[3s]) > 400
        for: 2s
        labels:
          severity: page
        annotations:
          summary: 'latency {{ $value }} on {{ $labels.endpoint }}'
`;

async function waitFor<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function push(url: string, value: number, endpoint = '/users'): Promise<void> {
  const res = await http(`${url}/v1/metrics`, { method: 'POST', body: { name: 'api.latency', value, labels: { endpoint } } });
  assert.equal(res.status, 200, JSON.stringify(res.body));
}

async function alertState(url: string, name: string): Promise<string | undefined> {
  const res = await http(`${url}/v1/alerts`);
  assert.equal(res.status, 200, JSON.stringify(res.body));
  return (res.body.alerts as { rule: string; state: string }[]).find((a) => a.rule === name)?.state;
}

describe('alerting in a node', () => {
  let node: Node;
  let files: ReturnType<typeof tempDir>;
  before(async () => {
    files = tempDir();
    const path = join(files.dir, 'latency.yml');
    writeFileSync(path, LATENCY_RULES);
    // A low sample limit per query, so a rule can hit it (the other rules read a few samples).
    node = await startTestNode({ metricsStore: { selfScrapeIntervalMs: 0, maxQuerySamples: 40 }, alerting: { ruleFiles: [path] } });
  });
  after(async () => {
    await node.cleanup();
    files.cleanup();
  });

  it('stores --rules files in the store and lists them beside the built-in defaults', async () => {
    const res = await http(`${node.url}/v1/alerts/rules`);
    assert.equal(res.status, 200);
    const names = (res.body.files as { name: string; source: string }[]).map((f) => `${f.source}:${f.name}`);
    assert.deepEqual(names, ['builtin:beacon-defaults', 'store:latency']);
    const text = await http(`${node.url}/v1/alerts/rules/latency`, { headers: { accept: 'application/yaml' } });
    assert.equal(text.body, LATENCY_RULES);
  });

  it('every metric the default rules read is one this node exports (a renamed metric would silence its alert)', async () => {
    const rules = readFileSync(new URL('../../src/obs/alerting/assets/default-rules.yml', import.meta.url), 'utf8');
    const exprs = rules.split('\n').filter((l) => !l.trimStart().startsWith('#')).join('\n');
    const used = new Set([...exprs.matchAll(/\bbeacon_[a-z_]+/g)].map((m) => m[0].replace(/_(bucket|sum|count)$/, '')));
    const text = await (await fetch(`${node.url}/metrics`)).text();
    const exported = new Set([...text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1] as string));
    // The cache cluster's metrics exist on nodes of a cache cluster only (PostgreSQL mode).
    const missing = [...used].filter((n) => !exported.has(n) && !n.startsWith('beacon_cache_cluster_'));
    assert.deepEqual(missing, [], `metrics the default rules read that /metrics does not export: ${missing.join(', ')}`);
    assert.ok(used.size >= 10, `${used.size} metric names found in the rules`);
  });

  it("runs the seed's journey: 500 → pending → firing, then 200 → resolved", async () => {
    await push(node.url, 500);
    await waitFor('pending', async () => ((await alertState(node.url, 'HighLatency')) === 'pending' ? true : undefined));
    await waitFor('firing', async () => ((await alertState(node.url, 'HighLatency')) === 'firing' ? true : undefined));
    const prom = await http(`${node.url}/api/v1/alerts`);
    assert.equal(prom.body.status, 'success');
    const a = prom.body.data.alerts[0];
    assert.deepEqual(a.labels, { alertname: 'HighLatency', endpoint: '/users', severity: 'page' });
    assert.deepEqual(a.annotations, { summary: 'latency 500 on /users' });
    assert.equal(a.state, 'firing');
    assert.equal(a.value, '5e+02');
    assert.ok(Date.parse(a.activeAt) > 0);
    const rules = await http(`${node.url}/api/v1/rules?type=alert`);
    const group = (rules.body.data.groups as { file: string; name: string; interval: number; rules: { name: string; state: string; duration: number; type: string; health: string }[] }[]).find(
      (g) => g.file === 'latency',
    );
    assert.ok(group);
    assert.equal(group.interval, 1);
    assert.deepEqual(
      group.rules.map((r) => [r.name, r.state, r.duration, r.type, r.health]),
      [['HighLatency', 'firing', 2, 'alerting', 'ok']],
    );
    // ALERTS is queryable like in Prometheus.
    const q = await http(`${node.url}/api/v1/query?query=${encodeURIComponent('ALERTS{alertname="HighLatency"}')}`);
    assert.equal(q.body.data.result[0].metric.alertstate, 'firing');
    // Recovery: the 3 s average falls below the threshold once the 500 leaves the window.
    await push(node.url, 200);
    await waitFor('resolved', async () => ((await alertState(node.url, 'HighLatency')) === undefined ? true : undefined), 30_000);
    const q2 = await http(`${node.url}/api/v1/query?query=${encodeURIComponent('ALERTS{alertname="HighLatency"}')}`);
    assert.deepEqual(q2.body.data.result, [], 'ALERTS is marked stale once resolved');
  });

  it('creates a rule with POST /v1/alerts/rules as the seed does, and keeps its state when the file is edited', async () => {
    const res = await http(`${node.url}/v1/alerts/rules?group=errors&interval=1s`, {
      method: 'POST',
      body: { alert: 'ErrorsHigh', expr: 'max(errors_ratio) > 0.01', for: '1h', labels: { severity: 'page' } },
    });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    assert.equal(res.body.name, 'errors');
    const pushed = await http(`${node.url}/v1/metrics`, { method: 'POST', body: { name: 'errors_ratio', value: 0.015 } });
    assert.equal(pushed.status, 200);
    const first = await waitFor('pending', async () => {
      const r = await http(`${node.url}/v1/alerts`);
      return (r.body.alerts as { rule: string; activeAt: string }[]).find((a) => a.rule === 'ErrorsHigh');
    });
    // A second rule in the same group: the pending alert keeps its activeAt (no reset of `for`).
    const res2 = await http(`${node.url}/v1/alerts/rules?group=errors`, { method: 'POST', body: { record: 'errors:max', expr: 'max(errors_ratio)' } });
    assert.equal(res2.status, 201, JSON.stringify(res2.body));
    await waitFor('recording rule output', async () => {
      const q = await http(`${node.url}/api/v1/query?query=errors:max`);
      return q.body.data.result.length === 1 ? true : undefined;
    });
    const again = await http(`${node.url}/v1/alerts`);
    const kept = (again.body.alerts as { rule: string; activeAt: string }[]).find((a) => a.rule === 'ErrorsHigh');
    assert.equal(kept?.activeAt, first.activeAt);
    const del = await http(`${node.url}/v1/alerts/rules/errors`, { method: 'DELETE' });
    assert.equal(del.status, 200);
    assert.equal(await alertState(node.url, 'ErrorsHigh'), undefined);
  });

  it("refuses invalid rule files with promtool's reasons and stores nothing", async () => {
    const put = (name: string, raw: string) => http(`${node.url}/v1/alerts/rules/${name}`, { method: 'PUT', raw, headers: { 'content-type': 'application/yaml' } });
    const syntax = await put('bad', 'groups:\n  - name: x\n    rules: [\n');
    assert.equal(syntax.status, 400);
    assert.match(syntax.body.error.message, /yaml: line \d+/);
    const unknown = await put('bad', 'groups:\n  - name: x\n    rules:\n      - alert: A\n        expr: up\n        annotation: {}\n');
    assert.equal(unknown.status, 400);
    assert.match(unknown.body.error.message, /field annotation not found in type rulefmt.RuleNode/);
    const expr = await put('bad', 'groups:\n  - name: x\n    rules:\n      - alert: A\n        expr: sum(\n');
    assert.equal(expr.status, 400);
    assert.match(expr.body.error.message, /group "x", rule 1, "A"/);
    const dup = await put('bad', 'groups:\n  - name: x\n    rules: []\n  - name: x\n    rules: []\n');
    assert.equal(dup.status, 400);
    assert.match(dup.body.error.message, /repeated in the same file|groupname/);
    const name = await put('..%2Fescape', LATENCY_RULES);
    assert.equal(name.status, 400);
    const builtin = await put('beacon-defaults', LATENCY_RULES);
    assert.equal(builtin.status, 409);
    const missing = await http(`${node.url}/v1/alerts/rules/bad`);
    assert.equal(missing.status, 404);
  });

  it('shows the error of a rule whose query fails or hits the sample limit while the other rules of the group keep evaluating', async () => {
    const text = `groups:
  - name: mixed
    interval: 1s
    rules:
      - alert: Broken
        expr: label_replace(vector(1), "a", "b", "c", "[")
      - alert: OverLimit
        expr: count_over_time(many_samples[1h]) > 0
      - alert: Healthy
        expr: vector(1)
`;
    const t = Date.now() - 30 * 60_000;
    const many = Array.from({ length: 60 }, (_, i) => ({ name: 'many_samples', value: i, timestamp: t + i * 15_000 }));
    assert.equal((await http(`${node.url}/v1/metrics`, { method: 'POST', body: many })).status, 200);
    const res = await http(`${node.url}/v1/alerts/rules/mixed`, { method: 'PUT', raw: text, headers: { 'content-type': 'application/yaml' } });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const group = await waitFor('evaluated group', async () => {
      const r = await http(`${node.url}/api/v1/rules`);
      const g = (r.body.data.groups as { file: string; rules: { name: string; health: string; lastError: string }[] }[]).find((x) => x.file === 'mixed');
      return g !== undefined && g.rules.every((x) => x.health !== 'unknown') ? g : undefined;
    });
    const broken = group.rules.find((r) => r.name === 'Broken');
    const healthy = group.rules.find((r) => r.name === 'Healthy');
    assert.equal(broken?.health, 'err');
    assert.match(broken?.lastError ?? '', /regex/i);
    assert.equal(healthy?.health, 'ok');
    const over = group.rules.find((r) => r.name === 'OverLimit');
    assert.equal(over?.health, 'err');
    assert.match(over?.lastError ?? '', /too many samples/);
    assert.equal(await alertState(node.url, 'Healthy'), 'firing');
    await http(`${node.url}/v1/alerts/rules/mixed`, { method: 'DELETE' });
  });

  it('serves the built-in dashboard, stores others, and refuses bad panels by path', async () => {
    const list = await http(`${node.url}/v1/dashboards`);
    assert.deepEqual(list.body.dashboards[0], { id: 'beacon', title: 'Beacon node' });
    const beacon = await http(`${node.url}/v1/dashboards/beacon`);
    assert.ok(beacon.body.panels.length >= 8);
    // Every built-in panel's query runs.
    for (const p of beacon.body.panels as { expr: string }[]) {
      const q = await http(`${node.url}/api/v1/query?query=${encodeURIComponent(p.expr)}`);
      assert.equal(q.status, 200, `${p.expr}: ${JSON.stringify(q.body)}`);
    }
    const body = { title: 'API latency', panels: [{ title: 'latency', expr: 'avg(api_latency)', unit: 's', thresholds: [{ value: 0.4, color: '#d33' }] }] };
    const put = await http(`${node.url}/v1/dashboards/api-latency`, { method: 'PUT', body });
    assert.equal(put.status, 200, JSON.stringify(put.body));
    assert.ok(put.body.revision > 0);
    const got = await http(`${node.url}/v1/dashboards/api-latency`);
    assert.deepEqual(got.body.panels, [{ title: 'latency', expr: 'avg(api_latency)', unit: 's', type: 'graph', thresholds: [{ value: 0.4, color: '#d33' }] }]);
    const bad = await http(`${node.url}/v1/dashboards/x`, { method: 'PUT', body: { title: 'x', panels: [{ title: 'a', expr: 'up' }, { title: 'b', expr: 'sum(' }] } });
    assert.equal(bad.status, 400);
    assert.match(bad.body.error.message, /^panels\[1\]\.expr: /);
    const color = await http(`${node.url}/v1/dashboards/x`, { method: 'PUT', body: { title: 'x', panels: [{ title: 'a', expr: 'up', thresholds: [{ value: 1, color: 'red;background:url(x)' }] }] } });
    assert.equal(color.status, 400);
    assert.equal((await http(`${node.url}/v1/dashboards/x`)).status, 404);
  });
});

describe('alerting across a restart', () => {
  it("restores a pending alert's for state from ALERTS_FOR_STATE, so it fires on time", async () => {
    const data = tempDir();
    const rules = `groups:
  - name: slow
    interval: 1s
    rules:
      - alert: Slow
        expr: max_over_time(slow_value[2m]) > 1
        for: 8s
`;
    const opts = { dataDir: data.dir, metricsStore: { selfScrapeIntervalMs: 0, tsdb: { fsyncIntervalMs: 50 } }, alerting: { defaultRules: false } } as const;
    let node = await startTestNode(opts);
    try {
      await http(`${node.url}/v1/alerts/rules/slow`, { method: 'PUT', raw: rules, headers: { 'content-type': 'application/yaml' } });
      await push(node.url, 0); // (a series for the restarted node to read from)
      const res = await http(`${node.url}/v1/metrics`, { method: 'POST', body: { name: 'slow_value', value: 5 } });
      assert.equal(res.status, 200);
      const pending = await waitFor('pending', async () => {
        const r = await http(`${node.url}/v1/alerts`);
        return (r.body.alerts as { rule: string; state: string; activeAt: string }[]).find((a) => a.rule === 'Slow' && a.state === 'pending');
      });
      // Let the pending state be written a few times, then restart.
      await new Promise((r) => setTimeout(r, 2500));
      await node.stop();
      node = await startTestNode(opts);
      const restored = await waitFor('restored activeAt', async () => {
        const r = await http(`${node.url}/v1/alerts`);
        const a = (r.body.alerts as { rule: string; activeAt: string }[]).find((x) => x.rule === 'Slow');
        return a !== undefined && a.activeAt === pending.activeAt ? a : undefined;
      });
      assert.equal(restored.activeAt, pending.activeAt);
      const firing = await waitFor('firing', async () => {
        const r = await http(`${node.url}/v1/alerts`);
        return (r.body.alerts as { rule: string; state: string; firedAt?: string }[]).find((x) => x.rule === 'Slow' && x.state === 'firing');
      });
      // It fired about `for` after it first went pending, not `for` after the restart.
      const firedAt = Date.parse(firing.firedAt ?? '');
      assert.ok(firedAt - Date.parse(pending.activeAt) < 8000 + 4000, `fired ${firedAt - Date.parse(pending.activeAt)} ms after going pending`);
    } finally {
      await node.stop();
      data.cleanup();
    }
  });
});

describe('alerting permissions', () => {
  let node: Awaited<ReturnType<typeof startSecureNode>>;
  let admin: string;
  before(async () => {
    node = await startSecureNode({ metricsStore: { selfScrapeIntervalMs: 0 } });
    admin = await login(node.url, 'admin', ADMIN_PASSWORD);
  });
  after(async () => node.cleanup());

  it('lets a viewer read alerts, rules and dashboards but not change them; a role on @alerts may', async () => {
    const viewer = client(node.url, await userToken(node.url, admin, 'vera', ['viewer']));
    assert.equal((await viewer('/v1/alerts')).status, 200);
    assert.equal((await viewer('/api/v1/rules')).status, 200);
    assert.equal((await viewer('/v1/dashboards/beacon')).status, 200);
    const put = await viewer('/v1/alerts/rules/x', { method: 'PUT', body: { text: LATENCY_RULES } });
    assert.equal(put.status, 403);
    const dash = await viewer('/v1/dashboards/x', { method: 'PUT', body: { title: 'x', panels: [] } });
    assert.equal(dash.status, 403);
    const anonymous = await http(`${node.url}/v1/alerts`);
    assert.equal(anonymous.status, 401);
    const adm = client(node.url, admin);
    assert.equal((await adm('/v1/roles/alert-editor', { method: 'PUT', body: { permissions: [{ prefix: '@alerts', access: 'write' }] } })).status, 201);
    const editor = client(node.url, await userToken(node.url, admin, 'ed', ['alert-editor']));
    const ok = await editor('/v1/alerts/rules/x', { method: 'PUT', body: { text: LATENCY_RULES } });
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    // The write is audited like any other.
    const audit = await adm('/v1/audit?action=alerts.rules.put');
    assert.ok((audit.body.records as { principal: string }[]).some((r) => r.principal === 'ed'), JSON.stringify(audit.body));
    // An @alerts editor cannot read keys.
    assert.equal((await editor('/v1/kv/app/x')).status, 403);
  });
});
