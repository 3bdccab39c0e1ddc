/**
 * PromQL evaluation over a {@link Querier}, with Prometheus 2.x semantics: instant selectors look
 * back 5 minutes (inclusive) for the newest sample and stop at a staleness marker; range
 * selectors take the samples in `[t - range, t]`; `offset` and `@` shift the selection time;
 * subqueries evaluate their inner expression at times aligned to their step. Every selector's
 * samples are loaded once per query, then the expression is evaluated step by step.
 */
import { TooManySamplesError } from '../tsdb/index.js';
import type { Labels, Querier, SelectHints } from '../tsdb/index.js';
import type { AggregateExpr, AtModifier, BinaryExpr, Call, Expr, MatrixSelector, SubqueryExpr, VectorSelector } from './ast.js';
import { PromQLError } from './errors.js';
import {
  applyOp, bucketQuantile, DATE_FUNCTIONS, formatValue, MATH_FUNCTIONS, quantile, RANGE_FUNCTIONS, staleMask,
  goMax, goMin,
} from './functions.js';
import type { Bucket, RangeFn, Window, WindowContext } from './functions.js';
import { compareLabels, dropMetricName, fromMap, getLabel, labelsKey, labelsString, signatureFn, toMap } from './labels.js';
import { compileAnchored, isComparison, isSetOperator, parseExpr, typeOf } from './parser.js';

export { formatValue };

/** Options of one query. */
export interface QueryOptions {
  /** How far back an instant selector looks for a sample, ms (Prometheus `--query.lookback-delta`, default 5 min). */
  lookbackDeltaMs?: number;
  /** Most samples the query may hold in memory at once, and load (Prometheus `--query.max-samples`, default 50,000,000). */
  maxSamples?: number;
  /** Wall-clock budget, ms (default 2 min); past it the query fails with `timeout`. */
  timeoutMs?: number;
  /** Aborting it fails the query with `canceled`. */
  signal?: AbortSignal;
  /** Step of a subquery written without one (`x[1h:]`), ms; Prometheus uses its global evaluation interval (default 1 min). */
  defaultSubqueryStepMs?: number;
}

/** A sample value on the wire: `[unix seconds (float), value as a string]`. */
export type PromValue = [number, string];

/** The `data` of a Prometheus `/api/v1/query` or `/api/v1/query_range` answer. */
export type QueryData =
  | { resultType: 'vector'; result: { metric: Record<string, string>; value: PromValue }[] }
  | { resultType: 'matrix'; result: { metric: Record<string, string>; values: PromValue[] }[] }
  | { resultType: 'scalar'; result: PromValue }
  | { resultType: 'string'; result: PromValue };

/** One element of an instant vector as {@link evaluateInstant} returns it. */
export interface InstantSample {
  labels: Labels;
  value: number;
}

const DEFAULT_LOOKBACK_MS = 5 * 60_000;
const DEFAULT_MAX_SAMPLES = 50_000_000;
const DEFAULT_TIMEOUT_MS = 2 * 60_000;
const DEFAULT_SUBQUERY_STEP_MS = 60_000;
/** Prometheus's limit on points per series of a range query (`/api/v1/query_range`). */
const MAX_POINTS_PER_SERIES = 11_000;

interface Sample {
  labels: Labels;
  value: number;
  /** The sample's own timestamp (ms), for timestamp(); absent when it is the evaluation time. */
  ts?: number;
}

interface RangeSeries {
  labels: Labels;
  ts: number[];
  vs: number[];
}

type Value =
  | { type: 'scalar'; value: number }
  | { type: 'string'; value: string }
  | { type: 'vector'; samples: Sample[] }
  | { type: 'matrix'; series: RangeSeries[] };

/** One selected series: raw samples (with stale markers) and the same without them. */
interface LoadedSeries {
  labels: Labels;
  /** The labels without `__name__`, computed once for the functions that drop it. */
  dropped: Labels;
  ts: ArrayLike<number>;
  vs: ArrayLike<number>;
  /** 1 where the sample is a staleness marker; undefined when there is none. */
  stale: Uint8Array | undefined;
  /** Samples without stale markers (the raw arrays when there is none), for range windows. */
  fts: ArrayLike<number>;
  fvs: ArrayLike<number>;
}

/** A selector's series, plus whether their labels stay distinct once the metric name is dropped. */
interface LoadedSelector {
  series: LoadedSeries[];
  droppedUnique: boolean;
}

/** Where each series' window ended at the previous step, so that a range query walks forward instead of searching. */
interface Cursor {
  lastEndMs: number;
  lo: Int32Array;
  hi: Int32Array;
}

interface SelectPlan {
  minMs: number;
  maxMs: number;
  stepHintMs: number | undefined;
}

function toExpr(expr: string | Expr): Expr {
  return typeof expr === 'string' ? parseExpr(expr) : expr;
}

/** Index of the first timestamp >= `t`. */
function lowerBound(ts: ArrayLike<number>, t: number, lo = 0, hi = ts.length): number {
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (ts[mid]! < t) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Index of the first timestamp > `t`. */
function upperBound(ts: ArrayLike<number>, t: number, lo = 0, hi = ts.length): number {
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (ts[mid]! <= t) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function loadSeries(labels: Labels, ts: ArrayLike<number>, vs: ArrayLike<number>): LoadedSeries {
  const stale = staleMask(vs);
  let fts = ts;
  let fvs = vs;
  if (stale) {
    const n = ts.length;
    let keep = 0;
    for (let i = 0; i < n; i++) if (!stale[i]) keep++;
    const kts = new Float64Array(keep);
    const kvs = new Float64Array(keep);
    for (let i = 0, j = 0; i < n; i++) {
      if (stale[i]) continue;
      kts[j] = ts[i]!;
      kvs[j++] = vs[i]!;
    }
    fts = kts;
    fvs = kvs;
  }
  return { labels, dropped: dropMetricName(labels), ts, vs, stale, fts, fvs };
}

class Evaluator {
  private readonly lookback: number;
  private readonly maxSamples: number;
  private readonly deadline: number;
  private readonly signal: AbortSignal | undefined;
  private readonly defaultStep: number;
  private readonly data = new Map<VectorSelector, LoadedSelector>();
  private readonly cursors = new Map<MatrixSelector, Cursor>();
  /** Reused for every window: range functions do not keep it. */
  private readonly window: Window = { ts: [], vs: [], lo: 0, hi: 0 };
  private readonly subqueryMemo = new Map<SubqueryExpr, Map<number, Sample[]>>();
  private readonly sigCache = new WeakMap<object, (ls: Labels) => string>();
  private readonly groupCache = new WeakMap<AggregateExpr, WeakMap<Labels, { key: string; labels: Labels }>>();
  /** Samples held by the step being evaluated (Prometheus's `currentSamples`). */
  private stepSamples = 0;
  private checks = 0;

  constructor(
    private readonly querier: Querier,
    private readonly startMs: number,
    private readonly endMs: number,
    private readonly stepMs: number,
    opts: QueryOptions,
  ) {
    this.lookback = opts.lookbackDeltaMs ?? DEFAULT_LOOKBACK_MS;
    this.maxSamples = opts.maxSamples ?? DEFAULT_MAX_SAMPLES;
    this.deadline = Date.now() + (opts.timeoutMs ?? DEFAULT_TIMEOUT_MS);
    this.signal = opts.signal;
    this.defaultStep = opts.defaultSubqueryStepMs ?? DEFAULT_SUBQUERY_STEP_MS;
  }

  /** Throws `timeout` or `canceled` when the query must stop. Cheap enough to call per step. */
  check(): void {
    if (this.signal?.aborted) throw new PromQLError('canceled', 'query was canceled in query execution');
    if ((++this.checks & 63) === 0 && Date.now() > this.deadline) throw new PromQLError('timeout', 'query timed out in query execution');
  }

  checkNow(): void {
    this.checks = 63;
    this.check();
  }

  private tooMany(): never {
    throw new PromQLError('execution', 'query processing would load too many samples into memory in query execution', { tooLarge: true });
  }

  /** Counts samples held at once; over `maxSamples` the query fails as Prometheus's does. */
  private hold(n: number): void {
    this.stepSamples += n;
    if (this.stepSamples > this.maxSamples) this.tooMany();
  }

  resetStep(): void {
    this.stepSamples = 0;
  }

  private atMs(at: AtModifier | undefined, t: number): number {
    if (!at) return t;
    return at.kind === 'time' ? at.ms : at.kind === 'start' ? this.startMs : this.endMs;
  }

  /** Works out which time range each selector needs, then loads them all. */
  async load(expr: Expr): Promise<void> {
    const plans = new Map<VectorSelector, SelectPlan>();
    const plan = (vs: VectorSelector, fromMs: number, toMs: number, back: number, stepHint: number | undefined): void => {
      const lo = (vs.at ? this.atMs(vs.at, 0) : fromMs) - vs.offsetMs - back;
      const hi = (vs.at ? this.atMs(vs.at, 0) : toMs) - vs.offsetMs;
      const p = plans.get(vs);
      if (!p) plans.set(vs, { minMs: lo, maxMs: hi, stepHintMs: stepHint });
      else {
        p.minMs = Math.min(p.minMs, lo);
        p.maxMs = Math.max(p.maxMs, hi);
        p.stepHintMs = p.stepHintMs === undefined || stepHint === undefined ? undefined : Math.min(p.stepHintMs, stepHint);
      }
    };
    // A rollup may serve a range query only at a resolution that keeps the selector's meaning:
    // finer than the step and than a quarter of the window (rate needs several points in it).
    const stepHint = (windowMs: number, evalStep: number): number | undefined =>
      evalStep > 0 ? Math.min(evalStep, Math.floor(windowMs / 4)) : undefined;
    const walk = (e: Expr, fromMs: number, toMs: number, evalStep: number): void => {
      switch (e.kind) {
        case 'vectorSelector': plan(e, fromMs, toMs, this.lookback, stepHint(this.lookback, evalStep)); break;
        case 'matrixSelector': plan(e.selector, fromMs, toMs, e.rangeMs, stepHint(e.rangeMs, evalStep)); break;
        case 'subquery': {
          const lo = (e.at ? this.atMs(e.at, 0) : fromMs) - e.offsetMs - e.rangeMs;
          const hi = (e.at ? this.atMs(e.at, 0) : toMs) - e.offsetMs;
          walk(e.expr, lo, hi, e.stepMs ?? this.defaultStep);
          break;
        }
        case 'call': e.args.forEach((a) => walk(a, fromMs, toMs, evalStep)); break;
        case 'aggregate': walk(e.expr, fromMs, toMs, evalStep); if (e.param) walk(e.param, fromMs, toMs, evalStep); break;
        case 'binary': walk(e.lhs, fromMs, toMs, evalStep); walk(e.rhs, fromMs, toMs, evalStep); break;
        case 'unary': case 'paren': walk(e.expr, fromMs, toMs, evalStep); break;
        default: break;
      }
    };
    walk(expr, this.startMs, this.endMs, this.stepMs);
    let loaded = 0;
    await Promise.all([...plans].map(async ([vs, p]) => {
      const hints: SelectHints = { maxSamples: this.maxSamples };
      if (p.stepHintMs !== undefined && p.stepHintMs > 0) hints.stepMs = p.stepHintMs;
      let series;
      try {
        series = await this.querier.select(vs.matchers, p.minMs, p.maxMs, hints);
      } catch (err) {
        if (err instanceof TooManySamplesError) this.tooMany();
        throw new PromQLError('execution', `selecting ${labelsOfSelector(vs)}: ${(err as Error).message}`, { cause: err });
      }
      for (const s of series) loaded += s.timestamps.length;
      if (loaded > this.maxSamples) this.tooMany();
      const loadedSeries = series.map((s) => loadSeries(s.labels, s.timestamps, s.values));
      // Under one metric name, labels that were distinct stay distinct without it.
      const oneName = vs.matchers.some((m) => m.name === '__name__' && m.op === '=');
      const droppedUnique = oneName || new Set(loadedSeries.map((s) => labelsKey(s.dropped))).size === loadedSeries.length;
      this.data.set(vs, { series: loadedSeries, droppedUnique });
    }));
    this.checkNow();
  }

  evalAt(e: Expr, t: number): Value {
    switch (e.kind) {
      case 'number': return { type: 'scalar', value: e.value };
      case 'string': return { type: 'string', value: e.value };
      case 'paren': return this.evalAt(e.expr, t);
      case 'vectorSelector': return { type: 'vector', samples: this.instantSelect(e, t) };
      case 'matrixSelector':
      case 'subquery': {
        const series: RangeSeries[] = this.windows(e, t).map((w) => {
          const ts: number[] = [];
          const vs: number[] = [];
          for (let i = w.lo; i < w.hi; i++) { ts.push(w.ts[i]!); vs.push(w.vs[i]!); }
          return { labels: w.labels, ts, vs };
        });
        return { type: 'matrix', series };
      }
      case 'unary': {
        const v = this.evalAt(e.expr, t);
        if (e.op === '+') return v;
        if (v.type === 'scalar') return { type: 'scalar', value: -v.value };
        if (v.type === 'vector') return { type: 'vector', samples: this.unique(v.samples.map((s) => ({ labels: dropMetricName(s.labels), value: -s.value }))) };
        return v;
      }
      case 'call': return this.call(e, t);
      case 'aggregate': return { type: 'vector', samples: this.aggregate(e, t) };
      case 'binary': return this.binary(e, t);
    }
  }

  private vector(e: Expr, t: number): Sample[] {
    const v = this.evalAt(e, t);
    if (v.type !== 'vector') throw new PromQLError('execution', `expected an instant vector, got ${v.type}`);
    return v.samples;
  }

  private scalar(e: Expr, t: number): number {
    const v = this.evalAt(e, t);
    if (v.type !== 'scalar') throw new PromQLError('execution', `expected a scalar, got ${v.type}`);
    return v.value;
  }

  private string(e: Expr, t: number): string {
    const v = this.evalAt(e, t);
    if (v.type !== 'string') throw new PromQLError('execution', `expected a string, got ${v.type}`);
    return v.value;
  }

  /** The newest non-stale sample of each series within the lookback of the selection time. */
  private instantSelect(vs: VectorSelector, t: number): Sample[] {
    const ref = this.atMs(vs.at, t) - vs.offsetMs;
    const out: Sample[] = [];
    for (const s of this.data.get(vs)?.series ?? []) {
      const i = upperBound(s.ts, ref) - 1;
      if (i < 0) continue;
      const ts = s.ts[i]!;
      if (ts < ref - this.lookback) continue;
      if (s.stale?.[i]) continue;
      out.push({ labels: s.labels, value: s.vs[i]!, ts });
    }
    this.hold(out.length);
    return out;
  }

  /** The samples of a range selector or subquery at time `t`, per series, with the range's bounds. */
  private windows(e: MatrixSelector | SubqueryExpr, t: number): (Window & { labels: Labels; startMs: number; endMs: number })[] {
    if (e.kind === 'matrixSelector') {
      const vs = e.selector;
      const endMs = this.atMs(vs.at, t) - vs.offsetMs;
      const startMs = endMs - e.rangeMs;
      const out: (Window & { labels: Labels; startMs: number; endMs: number })[] = [];
      let held = 0;
      for (const s of this.data.get(vs)?.series ?? []) {
        const fts = s.fts;
        const fvs = s.fvs;
        const lo = lowerBound(fts, startMs);
        const hi = upperBound(fts, endMs, lo);
        if (hi > lo) {
          out.push({ labels: s.labels, ts: fts, vs: fvs, lo, hi, startMs, endMs });
          held += hi - lo;
        }
      }
      this.hold(held);
      return out;
    }
    const endMs = this.atMs(e.at, t) - e.offsetMs;
    const startMs = endMs - e.rangeMs;
    const step = e.stepMs ?? this.defaultStep;
    let first = Math.trunc(startMs / step) * step;
    if (first < startMs) first += step;
    let memo = this.subqueryMemo.get(e);
    if (!memo) this.subqueryMemo.set(e, (memo = new Map()));
    const bySeries = new Map<string, RangeSeries>();
    let held = 0;
    for (let ti = first; ti <= endMs; ti += step) {
      this.check();
      let samples = memo.get(ti);
      if (!samples) {
        const saved = this.stepSamples;
        samples = this.vector(e.expr, ti);
        this.stepSamples = saved;
        memo.set(ti, samples);
      }
      for (const s of samples) {
        const k = labelsKey(s.labels);
        let rs = bySeries.get(k);
        if (!rs) bySeries.set(k, (rs = { labels: s.labels, ts: [], vs: [] }));
        rs.ts.push(ti);
        rs.vs.push(s.value);
      }
      held += samples.length;
    }
    this.hold(held);
    return [...bySeries.values()].map((rs) => ({ labels: rs.labels, ts: rs.ts, vs: rs.vs, lo: 0, hi: rs.ts.length, startMs, endMs }));
  }

  /** Fails when two samples of a vector have the same labels (Prometheus: "vector cannot contain metrics with the same labelset"). */
  private unique(samples: Sample[]): Sample[] {
    if (samples.length < 2) return samples;
    const seen = new Set<string>();
    for (const s of samples) {
      const k = labelsKey(s.labels);
      if (seen.has(k)) throw new PromQLError('execution', 'vector cannot contain metrics with the same labelset');
      seen.add(k);
    }
    return samples;
  }

  /**
   * A range function over a range selector: the hot path of `rate(x[5m])`. Windows advance with
   * per-series cursors while the evaluation time moves forward (a range query), and nothing is
   * allocated per series but the output sample.
   */
  private rangeFunction(m: MatrixSelector, t: number, fn: RangeFn, param: number, keepName: boolean): Sample[] {
    const vs = m.selector;
    const loaded = this.data.get(vs);
    if (!loaded) return [];
    const endMs = this.atMs(vs.at, t) - vs.offsetMs;
    const startMs = endMs - m.rangeMs;
    const series = loaded.series;
    let cur = this.cursors.get(m);
    const forward = cur !== undefined && endMs >= cur.lastEndMs;
    if (!cur) {
      cur = { lastEndMs: endMs, lo: new Int32Array(series.length), hi: new Int32Array(series.length) };
      this.cursors.set(m, cur);
    }
    cur.lastEndMs = endMs;
    const ctx: WindowContext = { rangeStartMs: startMs, rangeEndMs: endMs, rangeMs: m.rangeMs, evalMs: t, param };
    const w = this.window;
    const out: Sample[] = [];
    let held = 0;
    for (let i = 0; i < series.length; i++) {
      const s = series[i]!;
      const fts = s.fts;
      const n = fts.length;
      let lo: number;
      let hi: number;
      if (forward) {
        lo = cur.lo[i]!;
        while (lo < n && fts[lo]! < startMs) lo++;
        hi = Math.max(cur.hi[i]!, lo);
        while (hi < n && fts[hi]! <= endMs) hi++;
      } else {
        lo = lowerBound(fts, startMs);
        hi = upperBound(fts, endMs, lo);
      }
      cur.lo[i] = lo;
      cur.hi[i] = hi;
      if (hi <= lo) continue;
      held += hi - lo;
      w.ts = fts;
      w.vs = s.fvs;
      w.lo = lo;
      w.hi = hi;
      const value = fn(w, ctx);
      if (value !== undefined) out.push({ labels: keepName ? s.labels : s.dropped, value });
    }
    this.hold(held);
    return keepName || loaded.droppedUnique ? out : this.unique(out);
  }

  private call(e: Call, t: number): Value {
    const fn = e.func;
    const rangeFn = RANGE_FUNCTIONS.get(fn);
    if (rangeFn) {
      const arg = unwrap(e.args.find((a) => typeOf(a) === 'matrix')!) as MatrixSelector | SubqueryExpr;
      const param = e.args.length > 1 ? this.scalar(fn === 'predict_linear' ? e.args[1]! : e.args[0]!, t) : NaN;
      const keepName = fn === 'last_over_time';
      if (arg.kind === 'matrixSelector') return { type: 'vector', samples: this.rangeFunction(arg, t, rangeFn, param, keepName) };
      const windows = this.windows(arg, t);
      const out: Sample[] = [];
      for (const w of windows) {
        const value = rangeFn(w, { rangeStartMs: w.startMs, rangeEndMs: w.endMs, rangeMs: arg.rangeMs, evalMs: t, param });
        if (value !== undefined) out.push({ labels: keepName ? w.labels : dropMetricName(w.labels), value });
      }
      return { type: 'vector', samples: keepName ? out : this.unique(out) };
    }
    if (fn === 'absent_over_time') {
      const arg = unwrap(e.args[0]!) as MatrixSelector | SubqueryExpr;
      if (this.windows(arg, t).length > 0) return { type: 'vector', samples: [] };
      return { type: 'vector', samples: [{ labels: absentLabels(arg), value: 1 }] };
    }
    const math = MATH_FUNCTIONS.get(fn);
    if (math) return this.mapVector(e.args[0]!, t, math);
    const date = DATE_FUNCTIONS.get(fn);
    if (date) {
      if (e.args.length === 0) return { type: 'vector', samples: [{ labels: [], value: date(new Date(Math.trunc(t / 1000) * 1000)) }] };
      return this.mapVector(e.args[0]!, t, (v) => date(new Date(Math.trunc(v) * 1000)));
    }
    switch (fn) {
      case 'time': return { type: 'scalar', value: t / 1000 };
      case 'pi': return { type: 'scalar', value: Math.PI };
      case 'vector': return { type: 'vector', samples: [{ labels: [], value: this.scalar(e.args[0]!, t) }] };
      case 'scalar': {
        const v = this.vector(e.args[0]!, t);
        return { type: 'scalar', value: v.length === 1 ? v[0]!.value : NaN };
      }
      case 'timestamp': {
        const v = this.vector(e.args[0]!, t);
        // Prometheus 2.x gives the samples' own times only for a selector (in parentheses or not);
        // for any other argument, even one that passes samples through (`sort`, `x > 0`), the evaluation time.
        const own = unwrap(e.args[0]!).kind === 'vectorSelector';
        return { type: 'vector', samples: this.unique(v.map((s) => ({ labels: dropMetricName(s.labels), value: ((own ? s.ts : undefined) ?? t) / 1000 }))) };
      }
      case 'round': {
        const toNearest = e.args[1] ? this.scalar(e.args[1], t) : 1;
        const inverse = 1 / toNearest;
        return this.mapVector(e.args[0]!, t, (v) => Math.floor(v * inverse + 0.5) / inverse);
      }
      case 'clamp': {
        const min = this.scalar(e.args[1]!, t);
        const max = this.scalar(e.args[2]!, t);
        // The argument is evaluated even when max < min gives nothing: its errors still count
        // (but an empty result cannot hold two series with the same labels).
        const v = this.vector(e.args[0]!, t);
        if (max < min) return { type: 'vector', samples: [] };
        return { type: 'vector', samples: this.unique(v.map((s) => ({ labels: dropMetricName(s.labels), value: goMax(min, goMin(max, s.value)) }))) };
      }
      case 'clamp_min': {
        const min = this.scalar(e.args[1]!, t);
        return this.mapVector(e.args[0]!, t, (v) => goMax(min, v));
      }
      case 'clamp_max': {
        const max = this.scalar(e.args[1]!, t);
        return this.mapVector(e.args[0]!, t, (v) => goMin(max, v));
      }
      case 'sort':
      case 'sort_desc': {
        const v = [...this.vector(e.args[0]!, t)];
        const dir = fn === 'sort' ? 1 : -1;
        v.sort((a, b) => (Number.isNaN(a.value) ? (Number.isNaN(b.value) ? 0 : 1) : Number.isNaN(b.value) ? -1 : dir * (a.value - b.value)));
        return { type: 'vector', samples: v };
      }
      case 'absent': {
        if (this.vector(e.args[0]!, t).length > 0) return { type: 'vector', samples: [] };
        return { type: 'vector', samples: [{ labels: absentLabels(unwrap(e.args[0]!)), value: 1 }] };
      }
      case 'histogram_quantile': return { type: 'vector', samples: this.histogramQuantile(e, t) };
      case 'label_replace': return { type: 'vector', samples: this.labelReplace(e, t) };
      case 'label_join': return { type: 'vector', samples: this.labelJoin(e, t) };
      default:
        throw new PromQLError('bad_data', `function "${fn}" is not supported by Beacon`);
    }
  }

  private mapVector(arg: Expr, t: number, f: (v: number) => number): Value {
    const v = this.vector(arg, t);
    return { type: 'vector', samples: this.unique(v.map((s) => ({ labels: dropMetricName(s.labels), value: f(s.value) }))) };
  }

  private histogramQuantile(e: Call, t: number): Sample[] {
    const q = this.scalar(e.args[0]!, t);
    const groups = new Map<string, { labels: Labels; buckets: Bucket[] }>();
    for (const s of this.vector(e.args[1]!, t)) {
      const le = getLabel(s.labels, 'le');
      const upperBound = parseLe(le);
      if (upperBound === undefined) continue;
      const labels = s.labels.filter((l) => l.name !== 'le' && l.name !== '__name__');
      const k = labelsKey(labels);
      let g = groups.get(k);
      if (!g) groups.set(k, (g = { labels, buckets: [] }));
      g.buckets.push({ upperBound, count: s.value });
    }
    return [...groups.values()].map((g) => ({ labels: g.labels, value: bucketQuantile(q, g.buckets) }));
  }

  private labelReplace(e: Call, t: number): Sample[] {
    const dst = this.string(e.args[1]!, t);
    const replacement = this.string(e.args[2]!, t);
    const src = this.string(e.args[3]!, t);
    const regex = this.string(e.args[4]!, t);
    let re;
    try {
      re = compileAnchored(regex);
    } catch (err) {
      throw new PromQLError('bad_data', `invalid regular expression in label_replace(): ${regex}: ${(err as Error).message}`);
    }
    if (!/^[a-zA-Z_][a-zA-Z0-9_]*$/.test(dst)) throw new PromQLError('bad_data', `invalid destination label name in label_replace(): ${dst}`);
    const out = this.vector(e.args[0]!, t).map((s) => {
      const m = re.matcher(getLabel(s.labels, src));
      if (!m.matches()) return s;
      const value = expandTemplate(replacement, (g) => (/^\d+$/.test(g) ? (Number(g) <= m.groupCount() ? m.group(Number(g)) : null) : re.namedGroups()[g] !== undefined ? m.group(g) : null) ?? '');
      const map = toMap(s.labels);
      map.set(dst, value);
      return { labels: fromMap(map), value: s.value };
    });
    return this.unique(out);
  }

  private labelJoin(e: Call, t: number): Sample[] {
    const dst = this.string(e.args[1]!, t);
    const sep = this.string(e.args[2]!, t);
    const srcs = e.args.slice(3).map((a) => this.string(a, t));
    if (!/^[a-zA-Z_][a-zA-Z0-9_]*$/.test(dst)) throw new PromQLError('bad_data', `invalid destination label name in label_join(): ${dst}`);
    for (const s of srcs) {
      if (!/^[a-zA-Z_][a-zA-Z0-9_]*$/.test(s)) throw new PromQLError('bad_data', `invalid source label name in label_join(): ${s}`);
    }
    const out = this.vector(e.args[0]!, t).map((s) => {
      const map = toMap(s.labels);
      map.set(dst, srcs.map((l) => getLabel(s.labels, l)).join(sep));
      return { labels: fromMap(map), value: s.value };
    });
    return this.unique(out);
  }

  private aggregate(e: AggregateExpr, t: number): Sample[] {
    const input = this.vector(e.expr, t);
    let param = NaN;
    let label = '';
    if (e.op === 'count_values') {
      label = this.string(e.param!, t);
      if (!/^[a-zA-Z_][a-zA-Z0-9_]*$/.test(label)) throw new PromQLError('bad_data', `invalid label name ${JSON.stringify(label)}`);
    } else if (e.param) {
      param = this.scalar(e.param, t);
    }
    let cache = this.groupCache.get(e);
    if (!cache) this.groupCache.set(e, (cache = new WeakMap()));
    const grouping = new Set(e.grouping);
    const keeps = (name: string): boolean => (e.without ? name !== '__name__' && !grouping.has(name) : grouping.has(name));
    // The key is built without allocating; the grouped label set only when a group is new.
    const groupKey = (ls: Labels): string => {
      let k = '';
      for (const l of ls) if (keeps(l.name)) k += l.name + '\xff' + l.value + '\xff';
      return k;
    };
    const groupLabels = (ls: Labels): Labels => ls.filter((l) => keeps(l.name));
    // A range query meets the same label sets at every step: remember their keys.
    const cached = this.stepMs > 0;
    const keyOf = (ls: Labels): string => {
      if (!cached) return groupKey(ls);
      let g = cache.get(ls);
      if (!g) cache.set(ls, (g = { key: groupKey(ls), labels: ls }));
      return g.key;
    };
    if (e.op === 'count_values') {
      const counts = new Map<string, { labels: Labels; n: number }>();
      for (const s of input) {
        // As Prometheus: the value label is set first, then the grouping applies to it too, so
        // `without (…)` naming it drops it again; `by (…)` always keeps it.
        const map = toMap(s.labels);
        map.set(label, formatValue(s.value));
        for (const name of [...map.keys()]) if (!keeps(name) && (e.without || name !== label)) map.delete(name);
        const labels = fromMap(map);
        const k = labelsKey(labels);
        const c = counts.get(k);
        if (c) c.n++;
        else counts.set(k, { labels, n: 1 });
      }
      return [...counts.values()].map((c) => ({ labels: c.labels, value: c.n }));
    }
    interface Group { labels: Labels; value: number; mean: number; count: number; members: Sample[] }
    const groups = new Map<string, Group>();
    for (const s of input) {
      const key = keyOf(s.labels);
      const v = s.value;
      const g = groups.get(key);
      if (!g) {
        groups.set(key, { labels: groupLabels(s.labels), value: e.op === 'stddev' || e.op === 'stdvar' ? 0 : v, mean: v, count: 1, members: [s] });
        continue;
      }
      g.count++;
      switch (e.op) {
        case 'sum': g.value += v; break;
        case 'avg':
          if (!Number.isFinite(g.mean) && !Number.isNaN(g.mean)) {
            if (!Number.isFinite(v) && !Number.isNaN(v) && g.mean > 0 === v > 0) break;
            if (Number.isFinite(v)) break;
          }
          g.mean += v / g.count - g.mean / g.count;
          break;
        case 'max': if (g.value < v || Number.isNaN(g.value)) g.value = v; break;
        case 'min': if (g.value > v || Number.isNaN(g.value)) g.value = v; break;
        case 'stddev':
        case 'stdvar': {
          const delta = v - g.mean;
          g.mean += delta / g.count;
          g.value += delta * (v - g.mean);
          break;
        }
        default: g.members.push(s); break;
      }
    }
    const out: Sample[] = [];
    for (const g of groups.values()) {
      switch (e.op) {
        case 'sum': case 'max': case 'min': out.push({ labels: g.labels, value: g.value }); break;
        case 'avg': out.push({ labels: g.labels, value: g.mean }); break;
        case 'count': out.push({ labels: g.labels, value: g.count }); break;
        case 'group': out.push({ labels: g.labels, value: 1 }); break;
        case 'stdvar': out.push({ labels: g.labels, value: g.value / g.count }); break;
        case 'stddev': out.push({ labels: g.labels, value: Math.sqrt(g.value / g.count) }); break;
        case 'quantile': out.push({ labels: g.labels, value: quantile(param, g.members.map((m) => m.value)) }); break;
        case 'topk':
        case 'bottomk': {
          const k = Math.trunc(param);
          if (!(k >= 1)) break;
          const dir = e.op === 'topk' ? -1 : 1;
          // NaN never wins a place while a number is left, in either direction.
          const sorted = [...g.members].sort((a, b) =>
            Number.isNaN(a.value) ? (Number.isNaN(b.value) ? 0 : 1) : Number.isNaN(b.value) ? -1 : dir * (a.value - b.value));
          out.push(...sorted.slice(0, k));
          break;
        }
        default: break;
      }
    }
    return out;
  }

  private binary(e: BinaryExpr, t: number): Value {
    const l = this.evalAt(e.lhs, t);
    const r = this.evalAt(e.rhs, t);
    const op = e.op;
    const cmp = isComparison(op);
    if (l.type === 'scalar' && r.type === 'scalar') return { type: 'scalar', value: applyOp(op, l.value, r.value) };
    if (l.type === 'vector' && r.type === 'vector') return { type: 'vector', samples: this.vectorBinary(e, l.samples, r.samples) };
    // Vector and scalar: the operation applies to each sample; a filtering comparison keeps the vector's value.
    const swap = l.type === 'scalar';
    const vec = (swap ? r : l) as { type: 'vector'; samples: Sample[] };
    const sc = (swap ? l : r) as { type: 'scalar'; value: number };
    const drop = dropsName(op) || e.returnBool;
    const out: Sample[] = [];
    for (const s of vec.samples) {
      const lv = swap ? sc.value : s.value;
      const rv = swap ? s.value : sc.value;
      let value = applyOp(op, lv, rv);
      if (cmp && !e.returnBool) {
        if (value === 0) continue;
        value = s.value;
      }
      out.push({ labels: drop ? dropMetricName(s.labels) : s.labels, value });
    }
    return { type: 'vector', samples: drop ? this.unique(out) : out };
  }

  private signature(e: BinaryExpr): (ls: Labels) => string {
    let f = this.sigCache.get(e);
    if (!f) {
      f = signatureFn(e.matching!.on, e.matching!.labels);
      this.sigCache.set(e, f);
    }
    return f;
  }

  private vectorBinary(e: BinaryExpr, lhs: Sample[], rhs: Sample[]): Sample[] {
    const matching = e.matching!;
    const sig = this.signature(e);
    const op = e.op;
    if (isSetOperator(op)) {
      if (op === 'and') {
        if (lhs.length === 0 || rhs.length === 0) return [];
        const right = new Set(rhs.map((s) => sig(s.labels)));
        return lhs.filter((s) => right.has(sig(s.labels)));
      }
      if (op === 'unless') {
        if (rhs.length === 0) return lhs;
        const right = new Set(rhs.map((s) => sig(s.labels)));
        return lhs.filter((s) => !right.has(sig(s.labels)));
      }
      const left = new Set(lhs.map((s) => sig(s.labels)));
      return [...lhs, ...rhs.filter((s) => !left.has(sig(s.labels)))];
    }
    if (lhs.length === 0 || rhs.length === 0) return [];
    const oneToMany = matching.card === 'one-to-many';
    const [many, one] = oneToMany ? [rhs, lhs] : [lhs, rhs];
    const oneSide = new Map<string, Sample>();
    for (const s of one) {
      const k = sig(s.labels);
      const dup = oneSide.get(k);
      if (dup) {
        const group = s.labels.filter((x) => (matching.on ? matching.labels.includes(x.name) : x.name !== '__name__' && !matching.labels.includes(x.name)));
        throw new PromQLError('execution', `found duplicate series for the match group ${labelsString(group).replace(/^/, '')} on the ${oneToMany ? 'left' : 'right'} hand-side of the operation: [${labelsString(s.labels)}, ${labelsString(dup.labels)}];many-to-many matching not allowed: matching labels must be unique on one side`);
      }
      oneSide.set(k, s);
    }
    const cmp = isComparison(op);
    const matched = new Map<string, Set<string> | null>();
    const out: Sample[] = [];
    for (const s of many) {
      const k = sig(s.labels);
      const o = oneSide.get(k);
      if (!o) continue;
      const [vl, vr] = oneToMany ? [o.value, s.value] : [s.value, o.value];
      let value = applyOp(op, vl, vr);
      if (cmp) {
        if (e.returnBool) { /* value is already 1 or 0 */ } else if (value === 0) continue;
        else value = vl;
      }
      let labels = resultLabels(s.labels, o.labels, e);
      if (e.returnBool) labels = dropMetricName(labels);
      if (matching.card === 'one-to-one') {
        if (matched.has(k)) throw new PromQLError('execution', 'multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)');
        matched.set(k, null);
      } else {
        let inserted = matched.get(k);
        if (!inserted) matched.set(k, (inserted = new Set()));
        const lk = labelsKey(labels);
        if (inserted.has(lk)) throw new PromQLError('execution', 'multiple matches for labels: grouping labels must ensure unique matches');
        inserted.add(lk);
      }
      out.push({ labels, value });
    }
    return out;
  }
}

/** Labels of a vector/vector result: the "many" side's, less the name for arithmetic, narrowed for one-to-one, plus group_x labels from the "one" side. */
function resultLabels(many: Labels, one: Labels, e: BinaryExpr): Labels {
  const matching = e.matching!;
  const dropName = dropsName(e.op);
  if (!dropName && matching.card !== 'one-to-one' && matching.include.length === 0) return many;
  const map = toMap(many);
  if (dropName) map.delete('__name__');
  if (matching.card === 'one-to-one') {
    if (matching.on) {
      for (const k of [...map.keys()]) if (!matching.labels.includes(k)) map.delete(k);
    } else {
      for (const k of matching.labels) map.delete(k);
    }
  }
  for (const l of matching.include) {
    const v = getLabel(one, l);
    if (v !== '') map.set(l, v);
    else map.delete(l);
  }
  return fromMap(map);
}

/** Arithmetic drops the metric name; comparisons and (in Prometheus 2.x) atan2 keep it. */
function dropsName(op: string): boolean {
  return op === '+' || op === '-' || op === '*' || op === '/' || op === '%' || op === '^';
}

function unwrap(e: Expr): Expr {
  return e.kind === 'paren' ? unwrap(e.expr) : e;
}

/** The labels absent() and absent_over_time() give their answer: the selector's equality matchers (a label matched twice is left out). */
function absentLabels(e: Expr): Labels {
  const vs = e.kind === 'vectorSelector' ? e : e.kind === 'matrixSelector' ? e.selector : undefined;
  if (!vs) return [];
  const map = new Map<string, string>();
  const seen = new Set<string>();
  for (const m of vs.matchers) {
    if (m.name === '__name__') continue;
    if (seen.has(m.name)) { map.delete(m.name); continue; }
    seen.add(m.name);
    if (m.op === '=') map.set(m.name, m.value);
  }
  return fromMap(map);
}

function labelsOfSelector(vs: VectorSelector): string {
  return `{${vs.matchers.map((m) => `${m.name}${m.op}${JSON.stringify(m.value)}`).join(', ')}}`;
}

function parseLe(le: string): number | undefined {
  if (le === '') return undefined;
  const t = le.trim().toLowerCase();
  if (t === '+inf' || t === 'inf') return Infinity;
  if (t === '-inf') return -Infinity;
  if (t === 'nan') return NaN;
  const n = Number(t);
  return Number.isNaN(n) ? undefined : n;
}

/** Expands `$1`, `${1}`, `$name`, `${name}` and `$$` in a label_replace replacement, as Go's `Regexp.Expand` does. */
function expandTemplate(template: string, group: (name: string) => string): string {
  return template.replace(/\$(\$|\{([a-zA-Z0-9_]+)\}|([a-zA-Z0-9_]+))/g, (all, what: string, braced?: string, bare?: string) =>
    what === '$' ? '$' : group((braced ?? bare)!));
}

function metricObject(ls: Labels): Record<string, string> {
  const o: Record<string, string> = {};
  for (const l of ls) o[l.name] = l.value;
  return o;
}

function wrapError(err: unknown): never {
  if (err instanceof PromQLError) throw err;
  if (err instanceof RangeError && /call stack/.test(err.message)) throw new PromQLError('execution', 'expression is too deeply nested to evaluate', { cause: err });
  if (err instanceof TooManySamplesError) {
    throw new PromQLError('execution', 'query processing would load too many samples into memory in query execution', { tooLarge: true, cause: err });
  }
  throw err;
}

/**
 * Evaluates `expr` at one time (ms) as `/api/v1/query` does.
 *
 * @returns Prometheus's `data` object: a vector, a matrix (for a range selector or subquery), a scalar or a string; times in seconds.
 * @throws PromQLError `bad_data` (parse), `execution`, `timeout` or `canceled`.
 * @example await instantQuery(querier, 'sum by (job) (rate(http_requests_total[5m]))', Date.now())
 */
export async function instantQuery(q: Querier, expr: string | Expr, timeMs: number, opts: QueryOptions = {}): Promise<QueryData> {
  const ast = toExpr(expr);
  const ev = new Evaluator(q, timeMs, timeMs, 0, opts);
  try {
    await ev.load(ast);
    const v = ev.evalAt(ast, timeMs);
    const t = timeMs / 1000;
    switch (v.type) {
      case 'scalar': return { resultType: 'scalar', result: [t, formatValue(v.value)] };
      case 'string': return { resultType: 'string', result: [t, v.value] };
      case 'vector': return { resultType: 'vector', result: v.samples.map((s) => ({ metric: metricObject(s.labels), value: [t, formatValue(s.value)] })) };
      case 'matrix': return {
        resultType: 'matrix',
        result: [...v.series].sort((a, b) => compareLabels(a.labels, b.labels)).map((s) => ({
          metric: metricObject(s.labels),
          values: s.ts.map((ts, i): PromValue => [ts / 1000, formatValue(s.vs[i]!)]),
        })),
      };
    }
  } catch (err) {
    return wrapError(err);
  }
}

/**
 * Evaluates `expr` at every step from `startMs` to `endMs` (inclusive, ms) as `/api/v1/query_range` does.
 *
 * @returns a matrix, series sorted by labels; a scalar expression gives one series with no labels.
 * @throws PromQLError `bad_data` for a parse error, a range-vector or string expression, a non-positive
 *   step, an end before the start or more than 11,000 points per series; `execution`, `timeout`, `canceled`.
 */
export async function rangeQuery(q: Querier, expr: string | Expr, startMs: number, endMs: number, stepMs: number, opts: QueryOptions = {}): Promise<QueryData> {
  const ast = toExpr(expr);
  if (!(stepMs > 0)) throw new PromQLError('bad_data', 'zero or negative query resolution step widths are not accepted. Try a positive integer');
  if (endMs < startMs) throw new PromQLError('bad_data', 'end timestamp must not be before start time');
  if ((endMs - startMs) / stepMs > MAX_POINTS_PER_SERIES) {
    throw new PromQLError('bad_data', 'exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)');
  }
  const type = typeOf(ast);
  if (type !== 'vector' && type !== 'scalar') {
    throw new PromQLError('bad_data', `invalid expression type "${type === 'matrix' ? 'range vector' : 'string'}" for range query, must be Scalar or instant Vector`);
  }
  const ev = new Evaluator(q, startMs, endMs, stepMs, opts);
  const maxSamples = opts.maxSamples ?? DEFAULT_MAX_SAMPLES;
  try {
    await ev.load(ast);
    const series = new Map<string, { labels: Labels; values: PromValue[] }>();
    let points = 0;
    let lastYield = Date.now();
    for (let t = startMs; t <= endMs; t += stepMs) {
      ev.check();
      if (Date.now() - lastYield > 20) {
        // Let timers and abort signals run during a long evaluation.
        await new Promise<void>((resolve) => setImmediate(resolve));
        lastYield = Date.now();
        ev.checkNow();
      }
      ev.resetStep();
      const v = ev.evalAt(ast, t);
      const samples: Sample[] = v.type === 'scalar' ? [{ labels: [], value: v.value }] : v.type === 'vector' ? v.samples : [];
      for (const s of samples) {
        const k = labelsKey(s.labels);
        let sr = series.get(k);
        if (!sr) series.set(k, (sr = { labels: s.labels, values: [] }));
        sr.values.push([t / 1000, formatValue(s.value)]);
      }
      points += samples.length;
      if (points > maxSamples) {
        throw new PromQLError('execution', 'query processing would load too many samples into memory in query execution', { tooLarge: true });
      }
    }
    const result = [...series.values()].sort((a, b) => compareLabels(a.labels, b.labels)).map((s) => ({ metric: metricObject(s.labels), values: s.values }));
    return { resultType: 'matrix', result };
  } catch (err) {
    return wrapError(err);
  }
}

/**
 * Evaluates an expression at one time for the rule engine: an instant vector as label sets and
 * numbers, or a scalar as a number.
 *
 * @throws PromQLError as {@link instantQuery}; `execution` when the expression is a range vector or a string.
 */
export async function evaluateInstant(q: Querier, expr: string | Expr, timeMs: number, opts: QueryOptions = {}): Promise<InstantSample[] | number> {
  const ast = toExpr(expr);
  const type = typeOf(ast);
  if (type !== 'vector' && type !== 'scalar') {
    throw new PromQLError('execution', `rule result is not a vector or scalar: the expression is a ${type === 'matrix' ? 'range vector' : 'string'}`);
  }
  const ev = new Evaluator(q, timeMs, timeMs, 0, opts);
  try {
    await ev.load(ast);
    const v = ev.evalAt(ast, timeMs);
    if (v.type === 'scalar') return v.value;
    if (v.type === 'vector') return v.samples.map((s) => ({ labels: s.labels, value: s.value }));
    throw new PromQLError('execution', `rule result is not a vector or scalar: got ${v.type}`);
  } catch (err) {
    return wrapError(err);
  }
}
