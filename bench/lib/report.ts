/** Benchmark results: figures with per-run values and targets, printed as tables and kept as JSON. */
import { summarize, type Summary } from './stats.js';

/** A target from the issue: the figure's median should be `op` `value`. */
export interface Target {
  op: '>=' | '<=' | '<' | '>';
  value: number;
}

/** One figure measured in every run (e.g. requests/s), in `unit` (`/s`, `ms`, `%`, `MiB`, `s`, `x`, or free text). */
export interface Figure {
  name: string;
  unit: string;
  /** The value of each run, in run order. */
  values: number[];
  target?: Target;
}

/** A figure with its summary and, when it has a target, whether the median meets it. */
export interface FigureResult extends Figure {
  summary: Summary;
  meets?: boolean;
}

/** What one benchmark reports. */
export interface BenchResult {
  name: string;
  title: string;
  /** The parameters it ran with (connections, sizes, durations). */
  params: Record<string, unknown>;
  figures: FigureResult[];
  /** Free-text observations (diagnostics such as batch sizes, server CPU, skipped parts). */
  notes: string[];
  finishedAt: string;
  /** How busy the shared machine was during the run (filled in by the runner). */
  environment?: { cpuPressurePct: number; loadBefore: string; loadAfter: string };
}

/** Adds summaries and target verdicts to raw figures. */
export function finishFigures(figures: Figure[]): FigureResult[] {
  return figures.map((f) => {
    const summary = summarize(f.values);
    const out: FigureResult = { ...f, summary };
    if (f.target !== undefined && Number.isFinite(summary.median)) out.meets = meetsTarget(summary.median, f.target);
    return out;
  });
}

function meetsTarget(v: number, t: Target): boolean {
  switch (t.op) {
    case '>=':
      return v >= t.value;
    case '<=':
      return v <= t.value;
    case '<':
      return v < t.value;
    case '>':
      return v > t.value;
  }
}

/** Formats a number in a unit for a table cell: thousands separators for rates and counts, fixed decimals otherwise. */
export function formatValue(v: number, unit: string): string {
  if (!Number.isFinite(v)) return '—';
  const fixed = (d: number): string => v.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d });
  switch (unit) {
    case '/s':
    case 'count':
      return `${fixed(0)}${unit === '/s' ? '/s' : ''}`;
    case 'ms':
      return `${fixed(v < 10 ? 2 : 1)} ms`;
    case '%':
      return `${fixed(1)} %`;
    case 'MiB':
      return `${fixed(1)} MiB`;
    case 's':
      return `${fixed(2)} s`;
    case 'x':
      return `${fixed(2)}×`;
    default:
      return `${fixed(2)} ${unit}`;
  }
}

function formatTarget(t: Target | undefined, unit: string): string {
  if (t === undefined) return '';
  const op = { '>=': '≥', '<=': '≤', '<': '<', '>': '>' }[t.op];
  return `${op} ${formatValue(t.value, unit)}`;
}

/** Renders one benchmark's result as a text table followed by its notes. */
export function formatResult(r: BenchResult): string {
  const header = ['figure', 'median', 'min', 'max', 'target', ''];
  const rows = r.figures.map((f) => [
    f.name,
    formatValue(f.summary.median, f.unit),
    formatValue(f.summary.min, f.unit),
    formatValue(f.summary.max, f.unit),
    formatTarget(f.target, f.unit),
    f.meets === undefined ? '' : f.meets ? 'meets' : 'MISSES',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] as string).length)));
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => (i === 0 || i >= 4 ? c.padEnd(widths[i] as number) : c.padStart(widths[i] as number)))
      .join('  ')
      .trimEnd();
  const runs = Math.max(0, ...r.figures.map((f) => f.values.length));
  const out = [
    `== ${r.name}: ${r.title} (${runs} run${runs === 1 ? '' : 's'})`,
    `   ${Object.entries(r.params)
      .map(([k, v]) => `${k}=${Array.isArray(v) ? v.join(',') : String(v)}`)
      .join(' ')}`,
    '',
    `  ${line(header)}`,
    ...rows.map((row) => `  ${line(row)}`),
  ];
  if (r.notes.length > 0) out.push('', ...r.notes.map((n) => `  - ${n}`));
  return out.join('\n');
}

/** Bytes as MiB. */
export function mib(bytes: number): number {
  return bytes / 2 ** 20;
}
