/**
 * A push being assembled: samples grouped per series, label sets checked against Prometheus's
 * naming rules and Beacon's limits, before anything reaches the store.
 */
import { InvalidArgumentError, TooLargeError } from '../../errors.js';
import type { Label, SeriesInput } from '../tsdb/index.js';
import { labelsKey } from '../tsdb/index.js';

/** Prometheus's metric-name syntax. */
export const METRIC_NAME_RE = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
/** Prometheus's label-name syntax. */
export const LABEL_NAME_RE = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** Limits on label sets (per series). */
export interface LabelLimits {
  /** Most labels per series, `__name__` included. Default 64. */
  maxLabels: number;
  /** Longest label name (and metric name), in characters. Default 256. */
  maxNameLength: number;
  /** Longest label value, in characters. Default 4096. */
  maxValueLength: number;
}

/** Beacon's default label limits. */
export const DEFAULT_LABEL_LIMITS: LabelLimits = { maxLabels: 64, maxNameLength: 256, maxValueLength: 4096 };

/**
 * The Prometheus name of a pushed JSON metric name: every `.` and `-` becomes `_`
 * (`api.latency` → `api_latency`); the result must then be a valid Prometheus metric name.
 * @throws InvalidArgumentError when it is not.
 */
export function promName(name: string): string {
  const mapped = name.replace(/[.-]/g, '_');
  if (!METRIC_NAME_RE.test(mapped)) {
    throw new InvalidArgumentError(`invalid metric name '${truncate(name)}': after mapping '.' and '-' to '_' it must match [a-zA-Z_:][a-zA-Z0-9_:]*`, { reason: 'invalid_name' });
  }
  return mapped;
}

const EMPTY = new Float64Array(0);

/** Grows a pending series' arrays to hold at least `need` samples (doubling, so appends stay amortised O(1)). */
function grow(p: Pending, need: number): void {
  // A first bulk add gets exactly its size (a remote-write series arrives whole); later adds double.
  const size = p.n === 0 ? need : Math.max(need, p.vs.length * 2);
  const ts = new Float64Array(size);
  ts.set(p.ts.subarray(0, p.n));
  const vs = new Float64Array(size);
  vs.set(p.vs.subarray(0, p.n));
  p.ts = ts;
  p.vs = vs;
}

function truncate(s: string): string {
  return s.length > 80 ? `${s.slice(0, 80)}…` : s;
}

interface Pending {
  labels: Label[];
  /** Timestamps (ms) and values in typed arrays: no boxed number per sample, NaN payloads kept. */
  ts: Float64Array;
  vs: Float64Array;
  n: number;
}

/**
 * Collects samples of one push. `add` checks each label set once per series; `finish` sorts each
 * series' samples by time and hands the batch to the store.
 */
export class SeriesBatch {
  private readonly series = new Map<string, Pending>();
  /** Samples added. */
  samples = 0;

  constructor(private readonly limits: LabelLimits = DEFAULT_LABEL_LIMITS) {}

  /**
   * Adds one sample. `labels` need not be sorted; `__name__` must be among them.
   * @throws InvalidArgumentError for an invalid or missing name, an invalid or duplicated label name,
   *   an empty-value label (dropped instead, as Prometheus does), too many or too long labels.
   */
  add(labels: Label[], t: number, v: number): void {
    this.addBits(labels, t, v);
  }

  /** Like {@link add}, with the value read from `src[i]` (a typed array: NaN payloads are kept). */
  addFrom(labels: Label[], t: number, src: Float64Array, i: number): void {
    const p = this.pending(labels);
    this.push(p, t);
    p.vs[p.n - 1] = src[i] as number;
  }

  /**
   * Checks a label set once and adds `n` samples to its series in one copy (the fast path of a
   * remote-write series): `ts[i]` ms, `vs[i]` (a typed array: NaN payloads are kept).
   * @throws as {@link add}.
   */
  addSamples(labels: Label[], ts: Float64Array, vs: Float64Array, n: number): void {
    const p = this.pending(labels);
    if (p.n + n > p.vs.length) grow(p, p.n + n);
    p.ts.set(ts.subarray(0, n), p.n);
    p.vs.set(vs.subarray(0, n), p.n);
    p.n += n;
    this.samples += n;
  }

  private addBits(labels: Label[], t: number, v: number): void {
    const p = this.pending(labels);
    this.push(p, t);
    p.vs[p.n - 1] = v;
  }

  private push(p: Pending, t: number): void {
    if (p.n === p.vs.length) grow(p, p.n + 1);
    p.ts[p.n] = t;
    p.n++;
    this.samples++;
  }

  private pending(raw: Label[]): Pending {
    // Empty values mean "no label" in Prometheus's model.
    const labels = raw.filter((l) => l.value !== '');
    labels.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const key = labelsKey(labels);
    const found = this.series.get(key);
    if (found !== undefined) return found;
    this.check(labels);
    const p: Pending = { labels, ts: EMPTY, vs: EMPTY, n: 0 };
    this.series.set(key, p);
    return p;
  }

  private check(labels: Label[]): void {
    const name = labels.find((l) => l.name === '__name__')?.value;
    if (name === undefined) throw new InvalidArgumentError('a series has no metric name (__name__)', { reason: 'invalid_name' });
    if (!METRIC_NAME_RE.test(name)) throw new InvalidArgumentError(`invalid metric name '${truncate(name)}': it must match [a-zA-Z_:][a-zA-Z0-9_:]*`, { reason: 'invalid_name' });
    if (labels.length > this.limits.maxLabels) {
      throw new TooLargeError(`series '${truncate(name)}' has ${labels.length} labels; the limit is ${this.limits.maxLabels}`, { reason: 'too_many_labels', limit: this.limits.maxLabels });
    }
    for (let i = 0; i < labels.length; i++) {
      const l = labels[i] as Label;
      if (l.name.length > this.limits.maxNameLength) {
        throw new TooLargeError(`a label name of '${truncate(name)}' is ${l.name.length} characters; the limit is ${this.limits.maxNameLength}`, { reason: 'label_too_long' });
      }
      if (l.value.length > this.limits.maxValueLength) {
        throw new TooLargeError(`label '${l.name}' of '${truncate(name)}' is ${l.value.length} characters; the limit is ${this.limits.maxValueLength}`, { reason: 'label_too_long' });
      }
      if (l.name !== '__name__' && (!LABEL_NAME_RE.test(l.name) || l.name.startsWith('__'))) {
        throw new InvalidArgumentError(`invalid label name '${truncate(l.name)}' on '${truncate(name)}': it must match [a-zA-Z_][a-zA-Z0-9_]* and not start with __`, { reason: 'invalid_label' });
      }
      if (i > 0 && (labels[i - 1] as Label).name === l.name) {
        throw new InvalidArgumentError(`label '${l.name}' appears twice on '${truncate(name)}'`, { reason: 'invalid_label' });
      }
    }
  }

  /** The label sets of the batch's series, by their identity string ({@link labelsKey}). */
  labelSets(): Map<string, Label[]> {
    const out = new Map<string, Label[]>();
    for (const [k, p] of this.series) out.set(k, p.labels);
    return out;
  }

  /** Distinct series in the batch. */
  get seriesCount(): number {
    return this.series.size;
  }

  /**
   * The batch as the store takes it: each series' samples sorted by timestamp.
   * @throws InvalidArgumentError when one series has two different samples at one timestamp.
   */
  finish(): SeriesInput[] {
    const out: SeriesInput[] = [];
    for (const p of this.series.values()) {
      let sorted = true;
      for (let i = 1; i < p.n; i++) if ((p.ts[i] as number) <= (p.ts[i - 1] as number)) sorted = false;
      if (sorted) {
        out.push({ labels: p.labels, timestamps: p.ts.subarray(0, p.n), values: p.vs.subarray(0, p.n) });
        continue;
      }
      const idx = Array.from({ length: p.n }, (_, i) => i).sort((a, b) => (p.ts[a] as number) - (p.ts[b] as number));
      const ts: number[] = [];
      const vs = new Float64Array(p.n);
      const inU = new Uint32Array(p.vs.buffer);
      const outU = new Uint32Array(vs.buffer);
      for (const i of idx) {
        const t = p.ts[i] as number;
        if (ts.length > 0 && ts[ts.length - 1] === t) {
          const j = ts.length - 1;
          if (outU[j * 2] !== inU[i * 2] || outU[j * 2 + 1] !== inU[i * 2 + 1]) {
            throw new InvalidArgumentError(`the push holds two different samples of the same series at timestamp ${t}; nothing was stored`, { reason: 'duplicate' });
          }
          continue;
        }
        outU[ts.length * 2] = inU[i * 2] as number;
        outU[ts.length * 2 + 1] = inU[i * 2 + 1] as number;
        ts.push(t);
      }
      out.push({ labels: p.labels, timestamps: Float64Array.from(ts), values: vs.subarray(0, ts.length) }); // typed like the sorted case: the store's loops stay monomorphic
    }
    return out;
  }
}
