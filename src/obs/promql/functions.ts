/**
 * The numeric kernels of PromQL's functions and aggregations, written from Prometheus 2.42's
 * documented and observed semantics (`promql/functions.go`, `promql/quantile.go`); checked
 * against the installed `promtool` by the tests in test/promql.
 */

/** Samples `[lo, hi)` of one series inside a range window, stale markers already removed. */
export interface Window {
  ts: ArrayLike<number>;
  vs: ArrayLike<number>;
  lo: number;
  hi: number;
}

/** The window's bounds: `rangeStartMs`..`rangeEndMs` is what the selector covered; `evalMs` the evaluation time. */
export interface WindowContext {
  rangeStartMs: number;
  rangeEndMs: number;
  rangeMs: number;
  evalMs: number;
  /** The scalar argument of quantile_over_time (φ) and predict_linear (seconds ahead). */
  param: number;
}

const staleBuf = new Float64Array(1);
const staleWords = new Uint32Array(staleBuf.buffer);

/**
 * True when `v` is Prometheus's staleness marker (bits `0x7ff0000000000002`; the quiet bit V8
 * may set is ignored). V8 canonicalises a NaN stored into a plain JS array, so a marker only
 * survives in a `Float64Array` written bit-exactly; prefer {@link staleMask} over stored values.
 */
export function isStaleNaN(v: number): boolean {
  if (v === v) return false;
  staleBuf[0] = v;
  return staleWords[0] === 2 && (staleWords[1]! & 0xfff7ffff) === 0x7ff00000;
}

/**
 * Marks which of `values` are staleness markers, reading a `Float64Array`'s bits directly (no NaN
 * passes through a JS number on the way) and other arrays value by value. Undefined when none is.
 */
export function staleMask(values: ArrayLike<number>): Uint8Array | undefined {
  let mask: Uint8Array | undefined;
  const n = values.length;
  if (values instanceof Float64Array) {
    const words = new Uint32Array(values.buffer, values.byteOffset, n * 2);
    for (let i = 0; i < n; i++) {
      if (words[2 * i] === 2 && (words[2 * i + 1]! & 0xfff7ffff) === 0x7ff00000) (mask ??= new Uint8Array(n))[i] = 1;
    }
    return mask;
  }
  for (let i = 0; i < n; i++) if (isStaleNaN(values[i]!)) (mask ??= new Uint8Array(n))[i] = 1;
  return mask;
}

/** Writes Prometheus's staleness marker bit-exactly at `values[i]`. */
export function writeStaleNaN(values: Float64Array, i: number): void {
  const words = new Uint32Array(values.buffer, values.byteOffset + i * 8, 2);
  words[0] = 2;
  words[1] = 0x7ff00000;
}

/** Increase over the window with counter-reset correction and Prometheus's extrapolation (rate, increase, delta). */
function extrapolatedRate(w: Window, c: WindowContext, isCounter: boolean, isRate: boolean): number | undefined {
  const n = w.hi - w.lo;
  if (n < 2) return undefined;
  const firstT = w.ts[w.lo]!;
  const lastT = w.ts[w.hi - 1]!;
  const firstV = w.vs[w.lo]!;
  let result = w.vs[w.hi - 1]! - firstV;
  if (isCounter) {
    let last = firstV;
    for (let i = w.lo + 1; i < w.hi; i++) {
      const x = w.vs[i]!;
      if (x < last) result += last;
      last = x;
    }
  }
  let durationToStart = (firstT - c.rangeStartMs) / 1000;
  const durationToEnd = (c.rangeEndMs - lastT) / 1000;
  const sampledInterval = (lastT - firstT) / 1000;
  const averageDurationBetweenSamples = sampledInterval / (n - 1);
  if (isCounter && result > 0 && firstV >= 0) {
    // A counter cannot go below zero: do not extrapolate further back than where it would be 0.
    const durationToZero = sampledInterval * (firstV / result);
    if (durationToZero < durationToStart) durationToStart = durationToZero;
  }
  const threshold = averageDurationBetweenSamples * 1.1;
  let extrapolateTo = sampledInterval;
  extrapolateTo += durationToStart < threshold ? durationToStart : averageDurationBetweenSamples / 2;
  extrapolateTo += durationToEnd < threshold ? durationToEnd : averageDurationBetweenSamples / 2;
  let factor = extrapolateTo / sampledInterval;
  if (isRate) factor /= c.rangeMs / 1000;
  return result * factor;
}

/**
 * One step of Kahan–Neumaier compensated summation: returns the new sum and compensation. Prometheus
 * sums this way in sum_over_time, avg_over_time, stddev/stdvar_over_time and the regression of
 * deriv/predict_linear, so results agree to the last bit.
 */
function kahanInc(inc: number, sum: number, c: number): [number, number] {
  const t = sum + inc;
  if (Math.abs(sum) >= Math.abs(inc)) c += sum - t + inc;
  else c += inc - t + sum;
  return [t, c];
}

/** Slope and intercept (at `interceptMs`) of the least-squares line through the window (deriv, predict_linear). */
function linearRegression(w: Window, interceptMs: number): [number, number] {
  let n = 0;
  let sumX = 0, cX = 0;
  let sumY = 0, cY = 0;
  let sumXY = 0, cXY = 0;
  let sumX2 = 0, cX2 = 0;
  const initY = w.vs[w.lo]!;
  let constY = true;
  for (let i = w.lo; i < w.hi; i++) {
    const y = w.vs[i]!;
    if (constY && i > w.lo && y !== initY) constY = false;
    n++;
    const x = (w.ts[i]! - interceptMs) / 1000;
    [sumX, cX] = kahanInc(x, sumX, cX);
    [sumY, cY] = kahanInc(y, sumY, cY);
    [sumXY, cXY] = kahanInc(x * y, sumXY, cXY);
    [sumX2, cX2] = kahanInc(x * x, sumX2, cX2);
  }
  if (constY) {
    if (initY === Infinity || initY === -Infinity) return [NaN, NaN];
    return [0, initY];
  }
  sumX += cX;
  sumY += cY;
  sumXY += cXY;
  sumX2 += cX2;
  const covXY = sumXY - (sumX * sumY) / n;
  const varX = sumX2 - (sumX * sumX) / n;
  const slope = covXY / varX;
  const intercept = sumY / n - (slope * sumX) / n;
  return [slope, intercept];
}

/**
 * φ-quantile of `values` (sorted in place) by linear interpolation between closest ranks, as
 * Prometheus's `quantile` aggregation and `quantile_over_time`: φ < 0 → -Inf, φ > 1 → +Inf.
 */
export function quantile(q: number, values: number[]): number {
  if (values.length === 0 || Number.isNaN(q)) return NaN;
  if (q < 0) return -Infinity;
  if (q > 1) return Infinity;
  // NaN sorts first, as in Prometheus's vectorByValueHeap.
  values.sort((a, b) => (Number.isNaN(a) ? (Number.isNaN(b) ? 0 : -1) : Number.isNaN(b) ? 1 : a - b));
  const n = values.length;
  const rank = q * (n - 1);
  const lower = Math.max(0, Math.floor(rank));
  const upper = Math.min(n - 1, lower + 1);
  const weight = rank - Math.floor(rank);
  return values[lower]! * (1 - weight) + values[upper]! * weight;
}

/** A classic histogram bucket: its `le` upper bound and cumulative count. */
export interface Bucket {
  upperBound: number;
  count: number;
}

/** histogram_quantile over classic buckets (Prometheus `bucketQuantile`): linear interpolation inside the bucket holding the rank. */
export function bucketQuantile(q: number, input: Bucket[]): number {
  if (Number.isNaN(q)) return NaN;
  if (q < 0) return -Infinity;
  if (q > 1) return Infinity;
  const sorted = [...input].sort((a, b) => a.upperBound - b.upperBound);
  if (sorted.length === 0 || sorted[sorted.length - 1]!.upperBound !== Infinity) return NaN;
  // Buckets with the same bound (e.g. from two sources) are added up.
  const buckets: Bucket[] = [];
  for (const b of sorted) {
    const prev = buckets[buckets.length - 1];
    if (prev && prev.upperBound === b.upperBound) prev.count += b.count;
    else buckets.push({ ...b });
  }
  // Cumulative counts that go down (scrape races) are raised to the running maximum.
  let max = -Infinity;
  for (const b of buckets) {
    if (b.count > max) max = b.count;
    else if (b.count < max) b.count = max;
  }
  if (buckets.length < 2) return NaN;
  const observations = buckets[buckets.length - 1]!.count;
  if (observations === 0) return NaN;
  let rank = q * observations;
  let b = 0;
  while (b < buckets.length - 1 && !(buckets[b]!.count >= rank)) b++;
  if (b === buckets.length - 1) return buckets[buckets.length - 2]!.upperBound;
  if (b === 0 && buckets[0]!.upperBound <= 0) return buckets[0]!.upperBound;
  let bucketStart = 0;
  const bucketEnd = buckets[b]!.upperBound;
  let count = buckets[b]!.count;
  if (b > 0) {
    bucketStart = buckets[b - 1]!.upperBound;
    count -= buckets[b - 1]!.count;
    rank -= buckets[b - 1]!.count;
  }
  return bucketStart + (bucketEnd - bucketStart) * (rank / count);
}

/** A function of a range window; `undefined` means "no output sample for this series". */
export type RangeFn = (w: Window, c: WindowContext) => number | undefined;

function over(f: (w: Window) => number): RangeFn {
  return (w) => (w.hi > w.lo ? f(w) : undefined);
}

/** The range-vector functions, by name. */
export const RANGE_FUNCTIONS: ReadonlyMap<string, RangeFn> = new Map<string, RangeFn>([
  ['rate', (w, c) => extrapolatedRate(w, c, true, true)],
  ['increase', (w, c) => extrapolatedRate(w, c, true, false)],
  ['delta', (w, c) => extrapolatedRate(w, c, false, false)],
  ['irate', (w) => instantValue(w, true)],
  ['idelta', (w) => instantValue(w, false)],
  ['deriv', (w) => (w.hi - w.lo < 2 ? undefined : linearRegression(w, w.ts[w.lo]!)[0])],
  ['predict_linear', (w, c) => {
    if (w.hi - w.lo < 2) return undefined;
    const [slope, intercept] = linearRegression(w, c.evalMs);
    return slope * c.param + intercept;
  }],
  ['resets', over((w) => {
    let n = 0;
    for (let i = w.lo + 1; i < w.hi; i++) if (w.vs[i]! < w.vs[i - 1]!) n++;
    return n;
  })],
  ['changes', over((w) => {
    let n = 0;
    for (let i = w.lo + 1; i < w.hi; i++) {
      const cur = w.vs[i]!;
      const prev = w.vs[i - 1]!;
      if (cur !== prev && !(Number.isNaN(cur) && Number.isNaN(prev))) n++;
    }
    return n;
  })],
  ['avg_over_time', over((w) => {
    let mean = 0;
    let c = 0;
    let count = 0;
    for (let i = w.lo; i < w.hi; i++) {
      const x = w.vs[i]!;
      count++;
      if (mean === Infinity || mean === -Infinity) {
        if ((x === Infinity || x === -Infinity) && mean > 0 === x > 0) continue;
        if (Number.isFinite(x)) continue;
      }
      // Each term divided by count so that large values do not overflow.
      [mean, c] = kahanInc(x / count - mean / count, mean, c);
    }
    return mean === Infinity || mean === -Infinity ? mean : mean + c;
  })],
  ['sum_over_time', over((w) => {
    let sum = 0;
    let c = 0;
    for (let i = w.lo; i < w.hi; i++) [sum, c] = kahanInc(w.vs[i]!, sum, c);
    return sum === Infinity || sum === -Infinity ? sum : sum + c;
  })],
  ['count_over_time', over((w) => w.hi - w.lo)],
  ['min_over_time', over((w) => {
    let min = w.vs[w.lo]!;
    for (let i = w.lo + 1; i < w.hi; i++) {
      const x = w.vs[i]!;
      if (x < min || Number.isNaN(min)) min = x;
    }
    return min;
  })],
  ['max_over_time', over((w) => {
    let max = w.vs[w.lo]!;
    for (let i = w.lo + 1; i < w.hi; i++) {
      const x = w.vs[i]!;
      if (x > max || Number.isNaN(max)) max = x;
    }
    return max;
  })],
  ['last_over_time', over((w) => w.vs[w.hi - 1]!)],
  ['present_over_time', over(() => 1)],
  ['stdvar_over_time', over((w) => welford(w))],
  ['stddev_over_time', over((w) => Math.sqrt(welford(w)))],
  ['quantile_over_time', (w, c) => {
    if (w.hi <= w.lo) return undefined;
    const values: number[] = [];
    for (let i = w.lo; i < w.hi; i++) values.push(w.vs[i]!);
    return quantile(c.param, values);
  }],
]);

/** Population variance by Welford's method with compensated sums, as stdvar_over_time computes it. */
function welford(w: Window): number {
  let count = 0;
  let mean = 0, cMean = 0;
  let aux = 0, cAux = 0;
  for (let i = w.lo; i < w.hi; i++) {
    const x = w.vs[i]!;
    count++;
    const delta = x - (mean + cMean);
    [mean, cMean] = kahanInc(delta / count, mean, cMean);
    [aux, cAux] = kahanInc(delta * (x - (mean + cMean)), aux, cAux);
  }
  return (aux + cAux) / count;
}

/** irate (per-second, reset-aware) and idelta over the last two samples of the window. */
function instantValue(w: Window, isRate: boolean): number | undefined {
  if (w.hi - w.lo < 2) return undefined;
  const last = w.vs[w.hi - 1]!;
  const prev = w.vs[w.hi - 2]!;
  const result = isRate && last < prev ? last : last - prev;
  if (!isRate) return result;
  const interval = w.ts[w.hi - 1]! - w.ts[w.hi - 2]!;
  if (interval === 0) return undefined;
  return result / (interval / 1000);
}

/** The per-sample math functions (`abs`, `ln`, …), by name. */
export const MATH_FUNCTIONS: ReadonlyMap<string, (v: number) => number> = new Map<string, (v: number) => number>([
  ['abs', Math.abs],
  ['ceil', Math.ceil],
  ['floor', Math.floor],
  ['exp', Math.exp],
  ['ln', Math.log],
  ['log2', Math.log2],
  ['log10', Math.log10],
  ['sqrt', Math.sqrt],
  ['sgn', (v) => (v < 0 ? -1 : v > 0 ? 1 : v)],
  ['acos', Math.acos], ['acosh', Math.acosh], ['asin', Math.asin], ['asinh', Math.asinh], ['atan', Math.atan],
  ['atanh', Math.atanh], ['cos', Math.cos], ['cosh', Math.cosh], ['sin', Math.sin], ['sinh', Math.sinh],
  ['tan', Math.tan], ['tanh', Math.tanh],
  ['deg', (v) => (v * 180) / Math.PI],
  ['rad', (v) => (v * Math.PI) / 180],
]);

/** The date functions over a Unix time in seconds, in UTC, by name. */
export const DATE_FUNCTIONS: ReadonlyMap<string, (d: Date) => number> = new Map<string, (d: Date) => number>([
  ['day_of_month', (d) => d.getUTCDate()],
  ['day_of_week', (d) => d.getUTCDay()],
  ['day_of_year', (d) => Math.round((Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate()) - Date.UTC(d.getUTCFullYear(), 0, 1)) / 86400000) + 1],
  ['days_in_month', (d) => new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 0)).getUTCDate()],
  ['hour', (d) => d.getUTCHours()],
  ['minute', (d) => d.getUTCMinutes()],
  ['month', (d) => d.getUTCMonth() + 1],
  ['year', (d) => d.getUTCFullYear()],
]);

/** Go's math.Max: like Math.max, except that +Inf wins over NaN. */
export function goMax(a: number, b: number): number {
  return a === Infinity || b === Infinity ? Infinity : Math.max(a, b);
}

/** Go's math.Min: like Math.min, except that -Inf wins over NaN. */
export function goMin(a: number, b: number): number {
  return a === -Infinity || b === -Infinity ? -Infinity : Math.min(a, b);
}

/** Applies a binary arithmetic or comparison operator; for comparisons returns 1/0 for true/false. */
export function applyOp(op: string, l: number, r: number): number {
  switch (op) {
    case '+': return l + r;
    case '-': return l - r;
    case '*': return l * r;
    case '/': return l / r;
    case '%': return l % r;
    // Go's math.Pow, unlike IEEE pow in V8, gives 1 for 1^y whatever y (NaN, ±Inf) and for (-1)^±Inf.
    case '^': return l === 1 || (l === -1 && (r === Infinity || r === -Infinity)) ? 1 : l ** r;
    case 'atan2': return Math.atan2(l, r);
    case '==': return l === r ? 1 : 0;
    case '!=': return l !== r ? 1 : 0;
    case '>': return l > r ? 1 : 0;
    case '<': return l < r ? 1 : 0;
    case '>=': return l >= r ? 1 : 0;
    case '<=': return l <= r ? 1 : 0;
    default: throw new Error(`unknown operator ${op}`);
  }
}

/**
 * Formats a sample value as Prometheus's API does (Go `strconv.FormatFloat(v, 'f', -1, 64)`):
 * shortest round-tripping digits, never an exponent; `NaN`, `+Inf`, `-Inf`.
 */
export function formatValue(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  if (Object.is(v, -0)) return '-0';
  const s = String(v);
  const e = s.indexOf('e');
  if (e < 0) return s;
  const neg = s.startsWith('-');
  const mant = s.slice(neg ? 1 : 0, e);
  const exp = Number(s.slice(e + 1));
  const dot = mant.indexOf('.');
  const digits = mant.replace('.', '');
  const point = (dot < 0 ? mant.length : dot) + exp;
  let out: string;
  if (point <= 0) out = `0.${'0'.repeat(-point)}${digits}`;
  else if (point >= digits.length) out = digits + '0'.repeat(point - digits.length);
  else out = `${digits.slice(0, point)}.${digits.slice(point)}`;
  return (neg ? '-' : '') + out;
}
