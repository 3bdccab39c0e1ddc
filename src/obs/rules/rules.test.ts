import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createMemoryQuerier } from '../promql/index.js';
import { checkTemplate, formatFloat, humanize, humanizeDuration, loadRuleFile, parseRuleFile, renderTemplate, RuleEvaluator, RuleFileError, TemplateError } from './index.js';
import type { RuleSample } from './index.js';

const MIN = 60_000;

describe('rule files', () => {
  it('loads groups, intervals, limits and both rule kinds', () => {
    const groups = parseRuleFile(`
groups:
  - name: api
    interval: 15s
    limit: 10
    rules:
      - alert: HighErrorRate
        expr: rate(http_requests_total{status=~"5.."}[5m]) > 0.01
        for: 5m
        keep_firing_for: 1m
        labels: {severity: page}
        annotations: {summary: "{{ $labels.job }}"}
      - record: job:requests:rate5m
        expr: sum by (job) (rate(http_requests_total[5m]))
`);
    assert.equal(groups.length, 1);
    const g = groups[0]!;
    assert.deepEqual([g.name, g.intervalMs, g.limit], ['api', 15_000, 10]);
    const [a, r] = g.rules;
    assert.equal(a?.kind, 'alert');
    if (a?.kind === 'alert') assert.deepEqual([a.forMs, a.keepFiringForMs, a.labels.severity], [5 * MIN, MIN, 'page']);
    assert.equal(r?.kind, 'record');
  });

  it('lists every semantic problem with promtool wording', () => {
    const r = loadRuleFile(`groups:
  - name: g
    rules:
      - alert: A
        expr: rate(x[5m]
      - record: "bad name"
        expr: x
        for: 1m
      - alert: B
        expr: x
        labels: {"bad-label": x}
        annotations: {s: "{{ nosuch }}"}
  - name: g
    rules: []
`, 'f.yml');
    assert.deepEqual(r.groups, []);
    assert.match(r.errors[0]!, /^f\.yml: 5:15: group "g", rule 1, "A": could not parse expression: 1:\d+: parse error/);
    assert.ok(r.errors.includes('f.yml: 6:17: group "g", rule 2, "bad name": invalid field \'for\' in recording rule'));
    assert.ok(r.errors.includes('f.yml: 6:17: group "g", rule 2, "bad name": invalid recording rule name: bad name'));
    assert.ok(r.errors.includes('f.yml: group "g", rule 3, "B": invalid label name: bad-label'));
    assert.ok(r.errors.includes('f.yml: group "g", rule 3, "B": annotation "s": template: __alert_B:1: function "nosuch" not defined'));
    assert.ok(r.errors.includes('f.yml: 13:5: groupname: "g" is repeated in the same file'));
  });

  it('stops at unknown fields, YAML syntax and bad durations, with the line', () => {
    assert.deepEqual(loadRuleFile('groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: x\n        fo: 5m\n', 'f.yml').errors, [
      'f.yml: yaml: unmarshal errors:\n  line 6: field fo not found in type rulefmt.RuleNode',
    ]);
    assert.match(loadRuleFile('groups:\n  - name: [\n', 'f.yml').errors[0]!, /^f\.yml: yaml: line \d+: /);
    assert.deepEqual(loadRuleFile('groups:\n  - name: g\n    interval: 5x\n', 'f.yml').errors, ['f.yml: not a valid duration string: "5x"']);
    assert.throws(() => parseRuleFile('groups: 3'), RuleFileError);
  });
});

describe('templates', () => {
  const data = { labels: { __name__: 'api_latency', job: 'api', instance: 'h:9090' }, value: 1234.5678, externalLabels: { cluster: 'eu1' } };
  it('renders variables, pipelines and control flow as Go', () => {
    assert.equal(renderTemplate('{{ $labels.job }} at {{ $value }}', 't', data), 'api at 1234.5678');
    assert.equal(renderTemplate('{{ $value | humanize }} {{ .Labels.job | toUpper }} {{ $externalLabels.cluster }}', 't', data), '1.235k API eu1');
    assert.equal(renderTemplate('{{ if gt $value 1000.0 }}big{{ else }}small{{ end }}', 't', data), 'big');
    assert.equal(renderTemplate('{{ range $k, $v := $labels }}{{ $k }}={{ $v }} {{ end }}', 't', data), '__name__=api_latency instance=h:9090 job=api ');
    assert.equal(renderTemplate('{{ printf "%.2f %s" $value $labels.job }}', 't', data), '1234.57 api');
    assert.equal(renderTemplate('{{ $x := "v" }}{{ $x }}{{/* comment */}}', 't', data), 'v');
  });
  it('formats numbers as Go and Prometheus do', () => {
    assert.equal(formatFloat(1e6, -1), '1e+06');
    assert.equal(formatFloat(123456, -1), '123456');
    assert.equal(formatFloat(0.000012, -1), '1.2e-05');
    assert.equal(humanize(0.00123), '1.23m');
    assert.equal(humanizeDuration(90061), '1d 1h 1m 1s');
    assert.equal(humanizeDuration(0.25), '250ms');
  });
  it('reports parse and render errors clearly', () => {
    assert.throws(() => checkTemplate('{{ .Foo ', 't'), { name: 'TemplateError', message: 'template: t:1: unclosed action' });
    assert.throws(() => checkTemplate('{{ if true }}x', 't'), TemplateError);
    assert.throws(() => renderTemplate('{{ humanize "abc" }}', '__alert_A', data), /template: __alert_A:1:115: executing "__alert_A" at <humanize "abc">: error calling humanize: /);
  });
});

describe('rule evaluator (caller-driven clock)', () => {
  const rules = parseRuleFile(`
groups:
  - name: g
    interval: 1m
    rules:
      - record: job:lat:max
        expr: max by (job) (lat)
      - alert: High
        expr: job:lat:max > 300
        for: 2m
        keep_firing_for: 1m
        annotations: {summary: "{{ $value }}"}
      - alert: Broken
        expr: sum(dup) / on() group_left dup
`);

  async function setup(values: string): Promise<{ ev: RuleEvaluator; out: RuleSample[][] }> {
    const q = createMemoryQuerier();
    q.load('lat{job="api"}', values, MIN);
    q.load('dup{a="1"}', '1x10', MIN);
    q.load('dup{a="2"}', '1x10', MIN);
    const out: RuleSample[][] = [];
    const ev = new RuleEvaluator(q, rules, { append: (s) => { for (const x of s) q.add(x.labels, [x.timestampMs], [x.value]); } });
    for (let t = 0; t <= 10 * MIN; t += MIN) out.push(await ev.evaluate('g', t));
    return { ev, out };
  }

  it('goes inactive → pending → firing → (kept firing) → resolved', async () => {
    // Above 300 from 1m to 5m; below from 6m.
    const q = createMemoryQuerier();
    q.load('lat{job="api"}', '100 500 500 500 500 500 100 100 100 100 100', MIN);
    const ev = new RuleEvaluator(q, [{ ...rules[0]!, rules: rules[0]!.rules.slice(0, 2) }], { append: (s) => { for (const x of s) q.add(x.labels, [x.timestampMs], [x.value]); } });
    const states: string[] = [];
    const samples: RuleSample[][] = [];
    for (let t = 0; t <= 9 * MIN; t += MIN) {
      samples.push(await ev.evaluate('g', t));
      states.push(ev.alerts('High').map((a) => a.state).join(',') || '-');
    }
    assert.deepEqual(states, ['-', 'pending', 'pending', 'firing', 'firing', 'firing', 'firing', 'inactive', 'inactive', 'inactive']);
    const a = ev.alerts('High')[0]!;
    assert.deepEqual([a.activeAtMs, a.firedAtMs, a.resolvedAtMs], [MIN, 3 * MIN, 7 * MIN]);
    assert.deepEqual(a.labels, { alertname: 'High', job: 'api' });
    assert.equal(a.annotations.summary, '500');
    const alerts = (i: number): string[] => samples[i]!.filter((s) => s.labels.__name__ === 'ALERTS').map((s) => `${s.labels.alertstate}=${String(s.value)}`);
    assert.deepEqual(alerts(2), ['pending=1']);
    // The pending series goes stale when the alert fires; the firing one when it resolves.
    assert.deepEqual(alerts(3).sort(), ['firing=1', 'pending=stale']);
    assert.deepEqual(alerts(7), ['firing=stale']);
    const forState = samples[4]!.find((s) => s.labels.__name__ === 'ALERTS_FOR_STATE');
    assert.equal(forState?.value, 60);
  });

  it('records the error of a failing rule and keeps evaluating the others', async () => {
    const { ev, out } = await setup('500x10');
    const st = ev.rules('g');
    assert.equal(st[2]?.health, 'err');
    assert.match(st[2]!.lastError, /many-to-many matching not allowed/);
    assert.equal(st[0]?.health, 'ok');
    assert.equal(st[1]?.health, 'ok');
    assert.ok(out[5]!.some((s) => s.labels.__name__ === 'job:lat:max' && s.value === 500));
    assert.equal(ev.alerts('High')[0]?.state, 'firing');
  });

  it('refuses an unknown group', async () => {
    const ev = new RuleEvaluator(createMemoryQuerier(), rules);
    await assert.rejects(ev.evaluate('nope', 0), { name: 'NotFoundError' });
  });

  it('enforces the group limit on alerts', async () => {
    const q = createMemoryQuerier();
    q.load('x{i="1"}', '1', MIN);
    q.load('x{i="2"}', '1', MIN);
    const ev = new RuleEvaluator(q, parseRuleFile('groups:\n- name: l\n  limit: 1\n  rules:\n  - alert: X\n    expr: x > 0\n'));
    assert.deepEqual(await ev.evaluate('l', 0), []);
    assert.equal(ev.rules('l')[0]?.lastError, 'exceeded limit of 1 with 2 alerts');
  });
});
