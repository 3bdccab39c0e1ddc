/**
 * Reads PromQL evaluation test files written in Prometheus's test-file style and runs them
 * against Beacon's engine, or turns them into `promtool test rules` files so that the real
 * Prometheus checks the same expected values.
 *
 * The language (one command per line, indented lines belong to the command above):
 *
 *   load <interval>                 series in promtool's expanding notation, from time 0
 *     name{label="value"} 0+10x20 _ stale 5x3
 *   eval instant at <duration> <expr>
 *     name{label="value"} 1.5       expected samples (any order); a bare number for a scalar;
 *                                   no lines for an empty result
 *   eval_ordered instant at <duration> <expr>   the same, in this order
 *   eval range from <d> to <d> step <d> <expr>
 *     {label="value"} 1 2 _ 3       one value per step, _ for none
 *   eval_fail instant at <duration> <expr>
 *     expected_fail_message <text>  the error must contain this text (optional)
 *   clear                           forget every series loaded so far
 *
 * `#` starts a comment line. A file's sections between `clear`s must use one load interval
 * (promtool test groups have one `interval`).
 */
import { createMemoryQuerier, instantQuery, rangeQuery } from '../../src/obs/promql/index.js';
import { parseDuration, unquote } from '../../src/obs/promql/parser.js';
import { formatValue } from '../../src/obs/promql/functions.js';

/** One expected sample: its labels (`{}` text form, sorted) and value; `values` per step for range evals. */
export interface ExpectedSeries {
  labels: Record<string, string>;
  values: (number | undefined)[];
}

/** One `eval` command. */
export interface EvalCase {
  line: number;
  expr: string;
  kind: 'instant' | 'range';
  ordered: boolean;
  fail: boolean;
  failMessage: string | undefined;
  atMs: number;
  endMs: number;
  stepMs: number;
  /** `scalar` expectations have empty labels and are written as a bare number. */
  scalar: boolean;
  expected: ExpectedSeries[];
}

/** Series loaded by one `load` command. */
export interface LoadCase {
  intervalMs: number;
  series: { text: string; notation: string }[];
}

/** A run of loads and evals between `clear`s. */
export interface Section {
  loads: LoadCase[];
  evals: EvalCase[];
}

function duration(text: string, line: number): number {
  const d = text === '0' ? 0 : parseDuration(text);
  if (d === undefined) throw new Error(`line ${line}: bad duration ${JSON.stringify(text)}`);
  return d;
}

/** Parses `name{a="b", c="d"}` (either part optional) into a label object. */
export function parseLabels(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  let rest = text.trim();
  const name = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(rest);
  if (name) {
    out.__name__ = name[0];
    rest = rest.slice(name[0].length).trim();
  }
  if (rest === '') return out;
  if (!rest.startsWith('{') || !rest.endsWith('}')) throw new Error(`bad label set ${JSON.stringify(text)}`);
  rest = rest.slice(1, -1).trim();
  const re = /^\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*("(?:[^"\\]|\\.)*")\s*,?/;
  while (rest !== '') {
    const m = re.exec(rest);
    if (!m) throw new Error(`bad label set ${JSON.stringify(text)}`);
    out[m[1]!] = unquote(m[2]!);
    rest = rest.slice(m[0].length);
  }
  return out;
}

function parseNumber(text: string): number {
  const t = text.toLowerCase();
  if (t === 'nan') return NaN;
  if (t === 'inf' || t === '+inf') return Infinity;
  if (t === '-inf') return -Infinity;
  const n = Number(text);
  if (Number.isNaN(n)) throw new Error(`bad number ${JSON.stringify(text)}`);
  return n;
}

/** Splits an expectation line into its label part and the rest, respecting quoted `}` in values. */
function splitLabels(line: string): [string, string] {
  const brace = line.indexOf('{');
  if (brace < 0 || /\s/.test(line.slice(0, brace).trim())) {
    const sp = line.search(/\s/);
    return sp < 0 ? ['', line] : [line.slice(0, sp), line.slice(sp).trim()];
  }
  let inStr = false;
  for (let i = brace; i < line.length; i++) {
    const c = line[i];
    if (c === '\\') { i++; continue; }
    if (c === '"') inStr = !inStr;
    if (c === '}' && !inStr) return [line.slice(0, i + 1), line.slice(i + 1).trim()];
  }
  throw new Error(`unclosed label set in ${JSON.stringify(line)}`);
}

/** Parses a test file into sections. Throws on a malformed line, naming it. */
export function parseTestFile(text: string): Section[] {
  const sections: Section[] = [{ loads: [], evals: [] }];
  const lines = text.split('\n');
  let current: LoadCase | EvalCase | undefined;
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i]!;
    const lineNo = i + 1;
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const section = sections[sections.length - 1]!;
    if (/^\s/.test(raw)) {
      if (!current) throw new Error(`line ${lineNo}: indented line outside a command`);
      if ('intervalMs' in current) {
        const [labels, notation] = splitLabels(line);
        current.series.push({ text: labels, notation });
      } else if (current.fail) {
        const m = /^expected_fail_message\s+(.*)$/.exec(line);
        if (!m) throw new Error(`line ${lineNo}: expected expected_fail_message`);
        current.failMessage = m[1]!;
      } else if (/^[-+]?(?:[\d.]+(?:e[-+]?\d+)?|nan|inf)$/i.test(line)) {
        current.scalar = true;
        current.expected.push({ labels: {}, values: [parseNumber(line)] });
      } else {
        const [labels, rest] = splitLabels(line);
        const values = current.kind === 'instant'
          ? [parseNumber(rest)]
          : rest.split(/\s+/).map((x) => (x === '_' ? undefined : parseNumber(x)));
        current.expected.push({ labels: parseLabels(labels), values });
      }
      continue;
    }
    current = undefined;
    let m: RegExpExecArray | null;
    if (line === 'clear') {
      sections.push({ loads: [], evals: [] });
    } else if ((m = /^load\s+(\S+)$/.exec(line))) {
      current = { intervalMs: duration(m[1]!, lineNo), series: [] };
      section.loads.push(current);
    } else if ((m = /^(eval|eval_ordered|eval_fail)\s+instant\s+at\s+(\S+)\s+(.+)$/.exec(line))) {
      const atMs = duration(m[2]!, lineNo);
      current = {
        line: lineNo, expr: m[3]!, kind: 'instant', ordered: m[1] === 'eval_ordered', fail: m[1] === 'eval_fail', failMessage: undefined,
        atMs, endMs: atMs, stepMs: 0, scalar: false, expected: [],
      };
      section.evals.push(current);
    } else if ((m = /^(eval|eval_fail)\s+range\s+from\s+(\S+)\s+to\s+(\S+)\s+step\s+(\S+)\s+(.+)$/.exec(line))) {
      current = {
        line: lineNo, expr: m[5]!, kind: 'range', ordered: false, fail: m[1] === 'eval_fail', failMessage: undefined,
        atMs: duration(m[2]!, lineNo), endMs: duration(m[3]!, lineNo), stepMs: duration(m[4]!, lineNo), scalar: false, expected: [],
      };
      section.evals.push(current);
    } else {
      throw new Error(`line ${lineNo}: unknown command ${JSON.stringify(line)}`);
    }
  }
  return sections.filter((s) => s.evals.length > 0 || s.loads.length > 0);
}

function sameValue(a: number, b: number): boolean {
  if (Number.isNaN(a) || Number.isNaN(b)) return Number.isNaN(a) && Number.isNaN(b);
  if (a === b) return true;
  // Floating-point sums may differ in the last bits from Go's order of operations.
  return Math.abs(a - b) <= 1e-12 * Math.max(Math.abs(a), Math.abs(b));
}

function labelsText(l: Record<string, string>): string {
  const name = l.__name__ ?? '';
  const rest = Object.keys(l).filter((k) => k !== '__name__').sort().map((k) => `${k}=${JSON.stringify(l[k])}`);
  return `${name}{${rest.join(', ')}}`;
}

/** Runs one eval against an engine loaded with the section's series; returns a failure description or undefined. */
async function runEval(section: Section, ev: EvalCase): Promise<string | undefined> {
  const q = createMemoryQuerier();
  for (const load of section.loads) for (const s of load.series) q.load(s.text, s.notation, load.intervalMs);
  const where = `line ${ev.line}: ${ev.expr}`;
  let got: { labels: Record<string, string>; values: (number | undefined)[] }[];
  let scalar = false;
  try {
    if (ev.kind === 'instant') {
      const data = await instantQuery(q, ev.expr, ev.atMs);
      if (data.resultType === 'scalar') {
        scalar = true;
        got = [{ labels: {}, values: [parseNumber(data.result[1])] }];
      } else if (data.resultType === 'vector') {
        got = data.result.map((r) => ({ labels: r.metric, values: [parseNumber(r.value[1])] }));
      } else {
        return `${where}: unexpected result type ${data.resultType}`;
      }
    } else {
      const data = await rangeQuery(q, ev.expr, ev.atMs, ev.endMs, ev.stepMs);
      if (data.resultType !== 'matrix') return `${where}: range query gave ${data.resultType}`;
      const steps = Math.floor((ev.endMs - ev.atMs) / ev.stepMs) + 1;
      got = data.result.map((r) => {
        const values: (number | undefined)[] = new Array(steps).fill(undefined);
        for (const [t, v] of r.values) values[Math.round((t * 1000 - ev.atMs) / ev.stepMs)] = parseNumber(v);
        return { labels: r.metric, values };
      });
    }
  } catch (err) {
    if (ev.fail) {
      const msg = (err as Error).message;
      return ev.failMessage && !msg.includes(ev.failMessage) ? `${where}: error ${JSON.stringify(msg)} lacks ${JSON.stringify(ev.failMessage)}` : undefined;
    }
    return `${where}: ${(err as Error).message}`;
  }
  if (ev.fail) return `${where}: expected an error, got a result`;
  if (ev.scalar !== scalar && got.length > 0) return `${where}: expected a ${ev.scalar ? 'scalar' : 'vector'}, got a ${scalar ? 'scalar' : 'vector'}`;
  const show = (xs: typeof got): string => xs.map((x) => `${labelsText(x.labels)} ${x.values.map((v) => (v === undefined ? '_' : formatValue(v))).join(' ')}`).join('\n    ');
  const diff = (): string => `${where}\n  expected:\n    ${show(ev.expected)}\n  got:\n    ${show(got)}`;
  if (got.length !== ev.expected.length) return diff();
  const used = new Set<number>();
  for (let i = 0; i < ev.expected.length; i++) {
    const exp = ev.expected[i]!;
    const key = labelsText(exp.labels);
    const j = ev.ordered ? (labelsText(got[i]!.labels) === key ? i : -1) : got.findIndex((g, k) => !used.has(k) && labelsText(g.labels) === key);
    if (j < 0) return diff();
    used.add(j);
    const g = got[j]!;
    if (g.values.length !== exp.values.length) return diff();
    for (let k = 0; k < exp.values.length; k++) {
      const a = exp.values[k];
      const b = g.values[k];
      if (a === undefined || b === undefined ? a !== b : !sameValue(a, b)) return diff();
    }
  }
  return undefined;
}

/** Runs every eval of a parsed file; returns the failures (empty when all pass) and how many evals ran. */
export async function runTestFile(text: string): Promise<{ failures: string[]; evals: number }> {
  const failures: string[] = [];
  let evals = 0;
  for (const section of parseTestFile(text)) {
    for (const ev of section.evals) {
      evals++;
      const f = await runEval(section, ev);
      if (f) failures.push(f);
    }
  }
  return { failures, evals };
}

function ms(d: number): string {
  return `${d}ms`;
}

function yamlString(s: string): string {
  return `'${s.replace(/'/g, "''")}'`;
}

/**
 * Writes the file as a `promtool test rules` YAML: one test group per section, one
 * `promql_expr_test` per instant eval and per step of a range eval. Left out, because promtool
 * cannot express them: `eval_fail` cases, expected NaN values (promtool compares with `==`) and
 * range evals using `start()`/`end()` (promtool's instant evaluations would give them other times).
 * Returns the YAML and the number of checks written.
 */
export function toPromtoolTests(text: string): { yaml: string; checks: number; skipped: number } {
  let checks = 0;
  let skipped = 0;
  const groups: string[] = [];
  for (const section of parseTestFile(text)) {
    const intervals = new Set(section.loads.map((l) => l.intervalMs));
    if (intervals.size > 1) throw new Error('a section loads series at more than one interval; promtool groups have one');
    const interval = [...intervals][0] ?? 60_000;
    const series = section.loads.flatMap((l) => l.series);
    const cases: string[] = [];
    for (const ev of section.evals) {
      if (ev.fail) { skipped++; continue; }
      // promtool evaluates each step as an instant query, where start() and end() are that step.
      if (ev.kind === 'range' && /\b(start|end)\(\s*\)/.test(ev.expr)) { skipped++; continue; }
      const steps = ev.kind === 'instant' ? [ev.atMs] : Array.from({ length: Math.floor((ev.endMs - ev.atMs) / ev.stepMs) + 1 }, (_, i) => ev.atMs + i * ev.stepMs);
      steps.forEach((t, stepIndex) => {
        const samples = ev.expected
          .map((e) => ({ labels: e.labels, value: e.values[stepIndex] }))
          .filter((e): e is { labels: Record<string, string>; value: number } => e.value !== undefined);
        if (samples.some((x) => Number.isNaN(x.value))) { skipped++; return; }
        const exp = samples.map((x) => `          - labels: ${yamlString(ev.scalar ? '' : labelsText(x.labels))}\n            value: ${x.value === Infinity ? '.inf' : x.value === -Infinity ? '-.inf' : formatValue(x.value)}`);
        cases.push(`      - expr: ${yamlString(ev.expr)}\n        eval_time: ${ms(t)}\n        exp_samples:${exp.length ? `\n${exp.join('\n')}` : ' []'}`);
        checks++;
      });
    }
    if (cases.length === 0) continue;
    const input = series.map((s) => `      - series: ${yamlString(s.text)}\n        values: ${yamlString(s.notation)}`);
    groups.push(`  - interval: ${ms(interval)}\n    input_series:${input.length ? `\n${input.join('\n')}` : ' []'}\n    promql_expr_test:\n${cases.join('\n')}`);
  }
  return { yaml: `rule_files: []\nevaluation_interval: 1m\ntests:\n${groups.join('\n')}\n`, checks, skipped };
}
