/** An in-memory {@link Querier} for tests, benchmarks and `beacon rules test`. */
import type { Label, Labels, Matcher, Querier, SelectHints, SeriesSamples } from '../tsdb/index.js';
import { TooManySamplesError } from '../tsdb/index.js';
import { PromQLError } from './errors.js';
import { labelsKey } from './labels.js';
import { compileAnchored, matchesEmpty, parseExpr } from './parser.js';
import { isStaleNaN, writeStaleNaN } from './functions.js';
import { parseSeriesNotation } from './series-notation.js';

/** A {@link Querier} over series held in memory, with ways to load them. */
export interface MemoryQuerier extends Querier {
  /**
   * Appends samples to a series (created on first use). `labels` is a label set, a name→value
   * object, or a series in PromQL notation (`http_requests_total{job="api"}`). Timestamps in ms,
   * ascending and after the series' last sample. A value `'stale'` (or a NaN with the stale
   * marker's bits) stores Prometheus's staleness marker.
   * @throws PromQLError `bad_data` for unreadable labels or timestamps out of order.
   */
  add(labels: Labels | Record<string, string> | string, timestamps: ArrayLike<number>, values: ArrayLike<number | 'stale'>): void;
  /**
   * Loads promtool notation (`1+2x10 _ stale`) for a series: point i at `startMs + i·intervalMs`, gaps skipped.
   * @throws PromQLError `bad_data` as {@link parseSeriesNotation} and {@link MemoryQuerier.add}.
   */
  load(series: string, notation: string, intervalMs: number, startMs?: number): void;
  /** Number of series held. */
  readonly size: number;
}

/** One series; samples in growable typed arrays so that stale markers keep their bits. */
interface Stored {
  labels: Labels;
  ts: Float64Array;
  vs: Float64Array;
  n: number;
}

function grow(s: Stored, need: number): void {
  if (need <= s.ts.length) return;
  const cap = Math.max(need, s.ts.length * 2, 16);
  const ts = new Float64Array(cap);
  const vs = new Float64Array(cap);
  ts.set(s.ts.subarray(0, s.n));
  // Copy the bytes, not the numbers, so that stale markers survive.
  new Uint8Array(vs.buffer).set(new Uint8Array(s.vs.buffer, 0, s.n * 8));
  s.ts = ts;
  s.vs = vs;
}

/** Reads `name{a="b"}` (equality matchers only) into a sorted label set. */
function parseSeriesLabels(text: string): Labels {
  const e = parseExpr(text);
  if (e.kind !== 'vectorSelector' || e.offsetMs !== 0 || e.at || e.matchers.some((m) => m.op !== '=')) {
    throw new PromQLError('bad_data', `invalid series ${JSON.stringify(text)}: expected a metric name and label="value" pairs`);
  }
  return normalise(e.matchers.map((m) => ({ name: m.name, value: m.value })));
}

function normalise(ls: readonly Label[]): Labels {
  return ls.filter((l) => l.value !== '').sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

function matcherFn(m: Matcher): (v: string) => boolean {
  switch (m.op) {
    case '=': return (v) => v === m.value;
    case '!=': return (v) => v !== m.value;
    case '=~': { const re = compileAnchored(m.value); return (v) => re.matches(v); }
    case '!~': { const re = compileAnchored(m.value); return (v) => !re.matches(v); }
  }
}

function lowerBound(ts: Float64Array, t: number, n: number): number {
  let lo = 0;
  let hi = n;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (ts[mid]! < t) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * Creates an empty in-memory querier.
 *
 * @example
 * const q = createMemoryQuerier();
 * q.load('http_requests_total{job="api"}', '0+10x30', 60_000);
 * await instantQuery(q, 'rate(http_requests_total[5m])', 30 * 60_000);
 */
export function createMemoryQuerier(): MemoryQuerier {
  const series = new Map<string, Stored>();
  let sorted: Stored[] | undefined;

  const matching = (matchers: readonly Matcher[]): Stored[] => {
    if (!sorted) sorted = [...series.values()].sort((a, b) => (labelsKey(a.labels) < labelsKey(b.labels) ? -1 : 1));
    const fns = matchers.map((m) => ({ name: m.name, f: matcherFn(m) }));
    return sorted.filter((s) => fns.every(({ name, f }) => f(s.labels.find((l) => l.name === name)?.value ?? '')));
  };
  const requireNonEmpty = (matchers: readonly Matcher[]): void => {
    if (matchers.length > 0 && matchers.every(matchesEmpty)) {
      throw new PromQLError('bad_data', 'at least one matcher must not match the empty string');
    }
  };
  const inRange = (s: Stored, startMs: number, endMs: number): [number, number] => {
    const lo = lowerBound(s.ts, startMs, s.n);
    const hi = lowerBound(s.ts, endMs + 1, s.n);
    return [lo, hi];
  };

  return {
    get size() {
      return series.size;
    },
    add(labels, timestamps, values) {
      const ls = typeof labels === 'string'
        ? parseSeriesLabels(labels)
        : Array.isArray(labels) ? normalise(labels as Label[]) : normalise(Object.entries(labels).map(([name, value]) => ({ name, value })));
      if (timestamps.length !== values.length) throw new PromQLError('bad_data', 'timestamps and values differ in length');
      const k = labelsKey(ls);
      let s = series.get(k);
      if (!s) {
        series.set(k, (s = { labels: ls, ts: new Float64Array(0), vs: new Float64Array(0), n: 0 }));
        sorted = undefined;
      }
      for (let i = 1; i < timestamps.length; i++) {
        if (!(timestamps[i]! > timestamps[i - 1]!)) throw new PromQLError('bad_data', `timestamps out of order at ${timestamps[i]} for series ${k.replace(/\xff/g, ' ')}`);
      }
      if (timestamps.length > 0 && s.n > 0 && !(timestamps[0]! > s.ts[s.n - 1]!)) {
        throw new PromQLError('bad_data', `out of order sample at ${timestamps[0]} for series ${k.replace(/\xff/g, ' ')}`);
      }
      grow(s, s.n + timestamps.length);
      const stale = values instanceof Float64Array ? undefined : null;
      for (let i = 0; i < timestamps.length; i++) {
        const j = s.n + i;
        s.ts[j] = timestamps[i]!;
        const v = values[i]!;
        if (v === 'stale' || (stale === null && isStaleNaN(v))) writeStaleNaN(s.vs, j);
        else s.vs[j] = v;
      }
      if (values instanceof Float64Array) {
        new Uint8Array(s.vs.buffer, s.n * 8, values.length * 8).set(new Uint8Array(values.buffer, values.byteOffset, values.length * 8));
      }
      s.n += timestamps.length;
    },
    load(seriesText, notation, intervalMs, startMs = 0) {
      const points = parseSeriesNotation(notation);
      const ts: number[] = [];
      const vs: (number | 'stale')[] = [];
      points.forEach((v, i) => {
        if (v === undefined) return;
        ts.push(startMs + i * intervalMs);
        vs.push(v);
      });
      this.add(seriesText, ts, vs);
    },
    select(matchers: readonly Matcher[], startMs: number, endMs: number, hints?: SelectHints): SeriesSamples[] {
      requireNonEmpty(matchers);
      const out: SeriesSamples[] = [];
      let total = 0;
      for (const s of matching(matchers)) {
        const [lo, hi] = inRange(s, startMs, endMs);
        if (hi <= lo) continue;
        total += hi - lo;
        if (hints?.maxSamples !== undefined && total > hints.maxSamples) throw new TooManySamplesError(hints.maxSamples);
        out.push({ labels: s.labels, timestamps: s.ts.subarray(lo, hi), values: s.vs.subarray(lo, hi) });
      }
      return out;
    },
    labelNames(matchers, startMs, endMs) {
      const names = new Set<string>();
      for (const s of matchers.length ? matching(matchers) : matching([])) {
        const [lo, hi] = inRange(s, startMs, endMs);
        if (hi > lo) for (const l of s.labels) names.add(l.name);
      }
      return [...names].sort();
    },
    labelValues(name, matchers, startMs, endMs) {
      const values = new Set<string>();
      for (const s of matching(matchers)) {
        const [lo, hi] = inRange(s, startMs, endMs);
        const v = s.labels.find((l) => l.name === name)?.value;
        if (hi > lo && v !== undefined) values.add(v);
      }
      return [...values].sort();
    },
    series(matchers, startMs, endMs) {
      requireNonEmpty(matchers);
      return matching(matchers).filter((s) => { const [lo, hi] = inRange(s, startMs, endMs); return hi > lo; }).map((s) => s.labels);
    },
  };
}
