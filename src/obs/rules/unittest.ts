/**
 * Rule unit tests in `promtool test rules`'s file format (Prometheus 2.42 `cmd/promtool/unittest.go`
 * semantics): input series in promtool notation, alert checks at eval times, PromQL checks.
 */
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { isMap, isSeq, parse as parseYaml, parseDocument } from 'yaml';
import type { YAMLMap } from 'yaml';
import { createMemoryQuerier, evaluateInstant, parseExpr, PromQLError } from '../promql/index.js';
import { RuleFileError } from './errors.js';
import { RuleEvaluator } from './evaluator.js';
import { formatDuration, loadRuleFile, parseDuration } from './model.js';
import type { RuleGroup } from './model.js';

/** The verdict on one test file: `lines` are what `promtool test rules` would print for it. */
export interface RuleTestResult {
  ok: boolean;
  lines: string[];
}

interface TestGroup {
  name: string;
  intervalMs: number;
  externalLabels: Record<string, string>;
  externalURL: string;
  inputSeries: { series: string; values: string }[];
  alertTests: { evalMs: number; alertname: string; exp: { labels: Record<string, string>; annotations: Record<string, string> }[] }[];
  exprTests: { expr: string; evalMs: number; exp: { labels: string; value: number }[] }[];
}

const FIELDS: Record<string, Set<string>> = {
  'main.unitTestFile': new Set(['rule_files', 'evaluation_interval', 'group_eval_order', 'tests']),
  'main.testGroup': new Set(['interval', 'input_series', 'alert_rule_test', 'promql_expr_test', 'external_labels', 'external_url', 'name']),
  'main.series': new Set(['series', 'values']),
  'main.alertTestCase': new Set(['eval_time', 'alertname', 'exp_alerts']),
  'main.alert': new Set(['exp_labels', 'exp_annotations']),
  'main.promqlTestCase': new Set(['expr', 'eval_time', 'exp_samples']),
  'main.sample': new Set(['labels', 'value']),
};

/** Checks field names as Go's strict YAML unmarshal does; throws the first unknown one. */
function strict(node: unknown, type: string, lc: (off: number) => number): void {
  if (!isMap(node)) return;
  const allowed = FIELDS[type] as Set<string>;
  const children: Record<string, string> = { tests: 'main.testGroup', input_series: 'main.series', alert_rule_test: 'main.alertTestCase', exp_alerts: 'main.alert', promql_expr_test: 'main.promqlTestCase', exp_samples: 'main.sample' };
  for (const p of (node as YAMLMap).items) {
    const k = String((p.key as { value?: unknown }).value ?? p.key);
    if (!allowed.has(k)) throw new RuleFileError([`yaml: unmarshal errors:\n  line ${lc((p.key as { range?: [number] }).range?.[0] ?? 0)}: field ${k} not found in type ${type}`]);
    const child = children[k];
    if (child && isSeq(p.value)) for (const item of p.value.items) strict(item, child, lc);
  }
}

function dur(v: unknown, dflt: number): number {
  if (v === undefined || v === null) return dflt;
  return parseDuration(String(v));
}

function strRecord(v: unknown): Record<string, string> {
  const o: Record<string, string> = {};
  if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) o[k] = x === null ? '' : String(x);
  return o;
}

function arr(v: unknown): Record<string, unknown>[] {
  return Array.isArray(v) ? (v as Record<string, unknown>[]) : [];
}

/** Reads a label set written as `name{a="b"}`, `{a="b"}` or empty (promtool's `parser.ParseMetric`). */
function parseMetric(text: string): Record<string, string> {
  const t = text.trim();
  if (t === '' || t === '{}') return {};
  const e = parseExpr(t);
  if (e.kind !== 'vectorSelector' || e.matchers.some((m) => m.op !== '=')) throw new PromQLError('bad_data', `invalid labels ${JSON.stringify(text)}`);
  const o: Record<string, string> = {};
  for (const m of e.matchers) if (m.value !== '') o[m.name] = m.value;
  return o;
}

function showLabels(l: Record<string, string>): string {
  return `{${Object.keys(l).sort().map((k) => `${k}=${JSON.stringify(l[k])}`).join(', ')}}`;
}

function keyOf(l: Record<string, string>): string {
  return JSON.stringify(Object.keys(l).sort().map((k) => [k, l[k]]));
}

/**
 * Runs one test file: loads its `rule_files` (relative to the file), then each test group.
 * Never throws for a bad or failing file: the reasons are in `lines`.
 */
export async function runRuleTestFile(path: string): Promise<RuleTestResult> {
  const lines = [`Unit Testing:  ${path}`];
  const failed = (reasons: string[]): RuleTestResult => ({ ok: false, lines: [...lines, '  FAILED:', ...reasons] });
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    return failed([`  ${(err as Error).message}`]);
  }
  let file: Record<string, unknown>;
  try {
    const doc = parseDocument(text, { prettyErrors: false });
    if (doc.errors.length > 0) throw new RuleFileError([`yaml: line ${doc.errors[0]?.linePos?.[0].line ?? 1}: ${doc.errors[0]?.message.split('\n')[0] ?? ''}`]);
    const starts: number[] = [0];
    for (let i = 0; i < text.length; i++) if (text[i] === '\n') starts.push(i + 1);
    strict(doc.contents, 'main.unitTestFile', (off) => starts.filter((s) => s <= off).length);
    file = (parseYaml(text) ?? {}) as Record<string, unknown>;
  } catch (err) {
    if (err instanceof RuleFileError) return failed(err.errors.map((e) => `  ${e}`));
    throw err;
  }
  let evalIntervalMs: number;
  let groups: RuleGroup[] = [];
  const errs: string[] = [];
  try {
    evalIntervalMs = dur(file.evaluation_interval, 60_000);
    for (const rf of arr(file.rule_files) as unknown as string[]) {
      const rpath = resolve(dirname(path), String(rf));
      let rtext: string;
      try {
        rtext = await readFile(rpath, 'utf8');
      } catch (err) {
        errs.push(`    ${(err as Error).message}`);
        continue;
      }
      const loaded = loadRuleFile(rtext, rpath);
      errs.push(...loaded.errors.map((e) => `    ${e}`));
      groups.push(...loaded.groups);
    }
  } catch (err) {
    if (err instanceof RuleFileError) return failed(err.errors.map((e) => `  ${e}`));
    throw err;
  }
  if (errs.length > 0) return failed(errs);
  const order = arr(file.group_eval_order) as unknown as string[];
  if (order.length > 0) {
    const byName = new Map(groups.map((g) => [g.name, g]));
    const missing = order.filter((n) => !byName.has(String(n)));
    if (missing.length > 0) return failed(missing.map((n) => `    group name ${JSON.stringify(n)} in group_eval_order not found`));
    groups = [...order.map((n) => byName.get(String(n)) as RuleGroup), ...groups.filter((g) => !order.includes(g.name))];
  }
  const reasons: string[] = [];
  for (const [i, raw] of arr(file.tests).entries()) {
    try {
      const tg: TestGroup = {
        name: typeof raw.name === 'string' ? raw.name : '',
        intervalMs: dur(raw.interval, evalIntervalMs),
        externalLabels: strRecord(raw.external_labels),
        externalURL: typeof raw.external_url === 'string' ? raw.external_url : '',
        inputSeries: arr(raw.input_series).map((s) => ({ series: String(s.series ?? ''), values: String(s.values ?? '') })),
        alertTests: arr(raw.alert_rule_test).map((a) => ({
          evalMs: dur(a.eval_time, 0),
          alertname: String(a.alertname ?? ''),
          exp: arr(a.exp_alerts).map((e) => ({ labels: strRecord(e.exp_labels), annotations: strRecord(e.exp_annotations) })),
        })),
        exprTests: arr(raw.promql_expr_test).map((p) => ({
          expr: String(p.expr ?? ''),
          evalMs: dur(p.eval_time, 0),
          exp: arr(p.exp_samples).map((s) => ({ labels: String(s.labels ?? ''), value: Number(s.value ?? 0) })),
        })),
      };
      const r = await runGroup(tg, groups, evalIntervalMs);
      if (r.length > 0) reasons.push(...(tg.name ? [`    name: ${tg.name},`] : []), ...r);
    } catch (err) {
      if (!(err instanceof PromQLError || err instanceof RuleFileError)) throw err;
      reasons.push(`    test ${i + 1}: ${err.message}`);
    }
  }
  if (reasons.length > 0) return failed(reasons);
  return { ok: true, lines: [...lines, '  SUCCESS'] };
}

async function runGroup(tg: TestGroup, groups: RuleGroup[], evalIntervalMs: number): Promise<string[]> {
  const q = createMemoryQuerier();
  for (const s of tg.inputSeries) q.load(s.series, s.values, tg.intervalMs, 0);
  const ev = new RuleEvaluator(q, groups, {
    externalLabels: tg.externalLabels,
    externalURL: tg.externalURL,
    defaultIntervalMs: evalIntervalMs,
    append: (samples) => {
      for (const s of samples) q.add(s.labels, [s.timestampMs], [s.value]);
    },
  });
  const alertTimes = [...new Set(tg.alertTests.map((a) => a.evalMs))].sort((a, b) => a - b);
  const maxt = Math.max(0, ...tg.alertTests.map((a) => a.evalMs), ...tg.exprTests.map((p) => p.evalMs));
  const errs: string[] = [];
  let curr = 0;
  // As promtool: every group is evaluated at every evaluation_interval step, whatever its own interval.
  for (let ts = 0; ts <= maxt; ts += evalIntervalMs) {
    const evalErrs: string[] = [];
    for (const g of ev.groupNames()) {
      await ev.evaluate(g, ts);
      for (const r of ev.rules(g)) if (r.lastError) evalErrs.push(`    rule: ${r.rule.name}, time: ${formatDuration(ts)}, err: ${r.lastError}`);
    }
    if (evalErrs.length > 0) return evalErrs;
    // Alerts asked for at `t` are compared with the evaluation at the step `ts <= t < ts + interval`.
    while (curr < alertTimes.length && (alertTimes[curr] as number) >= ts && (alertTimes[curr] as number) < ts + evalIntervalMs) {
      const t = alertTimes[curr] as number;
      for (const at of tg.alertTests.filter((a) => a.evalMs === t)) {
        const got = ev.alerts(at.alertname).filter((a) => a.state === 'firing').map((a) => ({ labels: a.labels, annotations: a.annotations }));
        const exp = at.exp.map((e) => ({ labels: { ...e.labels, alertname: at.alertname }, annotations: e.annotations }));
        const norm = (xs: { labels: Record<string, string>; annotations: Record<string, string> }[]): string[] =>
          xs.map((x) => `Labels:${showLabels(x.labels)} Annotations:${showLabels(x.annotations)}`).sort();
        const g = norm(got.map((x) => ({ labels: Object.fromEntries(Object.entries(x.labels).filter(([, v]) => v !== '')), annotations: x.annotations })));
        const e = norm(exp.map((x) => ({ labels: Object.fromEntries(Object.entries(x.labels).filter(([, v]) => v !== '')), annotations: Object.fromEntries(Object.entries(x.annotations).filter(([, v]) => v !== '')) })));
        if (JSON.stringify(g) !== JSON.stringify(e)) {
          errs.push(`    alertname: ${at.alertname}, time: ${formatDuration(t)}, `, `        exp:[${e.join(', ')}], `, `        got:[${g.join(', ')}]`);
        }
      }
      curr++;
    }
  }
  for (const pt of tg.exprTests) {
    let got: { labels: Record<string, string>; value: number }[];
    try {
      const v = await evaluateInstant(q, pt.expr, pt.evalMs);
      got = typeof v === 'number' ? [{ labels: {}, value: v }] : v.map((s) => ({ labels: Object.fromEntries(s.labels.map((l) => [l.name, l.value])), value: s.value }));
    } catch (err) {
      if (!(err instanceof PromQLError)) throw err;
      errs.push(`    expr: ${JSON.stringify(pt.expr)}, time: ${formatDuration(pt.evalMs)}, err: ${err.message}`);
      continue;
    }
    const exp = pt.exp.map((s) => ({ labels: parseMetric(s.labels), value: s.value }));
    const show = (xs: { labels: Record<string, string>; value: number }[]): string[] => xs.map((x) => `${showLabels(x.labels)} ${x.value}`);
    const sortFn = (a: { labels: Record<string, string> }, b: { labels: Record<string, string> }): number => (keyOf(a.labels) < keyOf(b.labels) ? -1 : keyOf(a.labels) > keyOf(b.labels) ? 1 : 0);
    got.sort(sortFn);
    exp.sort(sortFn);
    const same = got.length === exp.length && got.every((x, i) => keyOf(x.labels) === keyOf(exp[i]?.labels ?? {}) && x.value === exp[i]?.value);
    if (!same) errs.push(`    expr: ${JSON.stringify(pt.expr)}, time: ${formatDuration(pt.evalMs)},`, `        exp: ${JSON.stringify(show(exp))}`, `        got: ${JSON.stringify(show(got))}`);
  }
  return errs;
}
