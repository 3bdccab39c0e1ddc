/** A time-series chart drawn by uPlot (loaded only by the pages that draw charts), with drag-to-zoom. */
import type { JSX } from 'preact';
import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

/** One series of a matrix answer: its labels and [seconds, value] samples. */
export interface MatrixSeries {
  metric: Record<string, string>;
  values: [number, string][];
}

const COLORS = ['#3b82f6', '#ef4444', '#10b981', '#f59e0b', '#8b5cf6', '#ec4899', '#14b8a6', '#64748b'];

/** The label set of a series as Prometheus prints it. */
export function seriesName(m: Record<string, string>): string {
  const name = m.__name__ ?? '';
  const labels = Object.entries(m).filter(([k]) => k !== '__name__').map(([k, v]) => `${k}="${v}"`).join(', ');
  return labels === '' ? name || '{}' : `${name}{${labels}}`;
}

function format(unit: string | undefined, v: number | null): string {
  if (v === null || !Number.isFinite(v)) return '';
  if (unit === 'bytes') return v >= 1048576 ? `${(v / 1048576).toFixed(1)} MiB` : v >= 1024 ? `${(v / 1024).toFixed(1)} KiB` : `${v} B`;
  if (unit === 's') return v < 1 ? `${(v * 1000).toFixed(1)} ms` : `${v.toFixed(2)} s`;
  if (unit === 'percent') return `${v.toFixed(1)} %`;
  if (unit === 'ops') return `${v.toFixed(2)}/s`;
  return Math.abs(v) >= 1000 ? v.toExponential(2) : String(Math.round(v * 1000) / 1000);
}

/** Draws `series`; dragging across the plot calls `onZoom` with the chosen [start, end] (seconds). */
export function Chart(props: { series: MatrixSeries[]; unit?: string; height?: number; onZoom?: (start: number, end: number) => void; label: string }): JSX.Element {
  const ref = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const el = ref.current;
    if (el === null) return;
    const times = [...new Set(props.series.flatMap((s) => s.values.map((v) => v[0])))].sort((a, b) => a - b);
    const index = new Map(times.map((t, i) => [t, i]));
    const data: uPlot.AlignedData = [
      times,
      ...props.series.map((s) => {
        const col: (number | null)[] = new Array(times.length).fill(null);
        for (const [t, v] of s.values) col[index.get(t) as number] = Number(v);
        return col;
      }),
    ];
    const plot = new uPlot(
      {
        width: Math.max(300, el.clientWidth),
        height: props.height ?? 240,
        series: [{}, ...props.series.map((s, i) => ({ label: seriesName(s.metric), stroke: COLORS[i % COLORS.length], width: 1.5, value: (_u: uPlot, v: number | null) => format(props.unit, v) }))],
        axes: [{ stroke: 'currentColor', grid: { stroke: 'rgba(128,128,128,0.2)' } }, { stroke: 'currentColor', grid: { stroke: 'rgba(128,128,128,0.2)' }, values: (_u, vals) => vals.map((v) => format(props.unit, v)) }],
        legend: { show: props.series.length <= 8 },
        hooks: {
          setSelect: [
            (u) => {
              if (u.select.width < 5 || props.onZoom === undefined) return;
              const start = u.posToVal(u.select.left, 'x');
              const end = u.posToVal(u.select.left + u.select.width, 'x');
              props.onZoom(Math.floor(start), Math.ceil(end));
            },
          ],
        },
      },
      data,
      el,
    );
    const ro = new ResizeObserver(() => plot.setSize({ width: Math.max(300, el.clientWidth), height: props.height ?? 240 }));
    ro.observe(el);
    return () => {
      ro.disconnect();
      plot.destroy();
    };
  }, [props.series, props.unit]);
  return <div class="chart" ref={ref} role="img" aria-label={props.label} />;
}

/** Formats a single value with a unit (for stat panels). */
export { format as formatValue };
