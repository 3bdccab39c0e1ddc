/** Label-set helpers for the engine: keys, metric-name dropping, matching signatures (all cached per label-set object). */
import type { Label, Labels } from '../tsdb/index.js';

const SEP = '\xff';
const keyCache = new WeakMap<Labels, string>();
const dropCache = new WeakMap<Labels, Labels>();

/** A string that is equal for two label sets exactly when they are equal. */
export function labelsKey(ls: Labels): string {
  let k = keyCache.get(ls);
  if (k === undefined) {
    k = '';
    for (const l of ls) k += l.name + SEP + l.value + SEP;
    keyCache.set(ls, k);
  }
  return k;
}

/** The label set without `__name__` (the same object when it has none). */
export function dropMetricName(ls: Labels): Labels {
  let d = dropCache.get(ls);
  if (d === undefined) {
    d = ls.some((l) => l.name === '__name__') ? ls.filter((l) => l.name !== '__name__') : ls;
    dropCache.set(ls, d);
  }
  return d;
}

/** The value of label `name`, or '' when absent (Prometheus treats both alike). */
export function getLabel(ls: Labels, name: string): string {
  for (const l of ls) if (l.name === name) return l.value;
  return '';
}

/** A label set from a map, sorted by name, without empty values. */
export function fromMap(map: Map<string, string>): Labels {
  const out: Label[] = [];
  for (const [name, value] of map) if (value !== '') out.push({ name, value });
  out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return out;
}

/** A label set as a mutable map. */
export function toMap(ls: Labels): Map<string, string> {
  return new Map(ls.map((l) => [l.name, l.value]));
}

/** Prometheus's text form of a label set, `{a="b", c="d"}` (the metric name first, outside the braces). */
export function labelsString(ls: Labels): string {
  const name = getLabel(ls, '__name__');
  const rest = ls.filter((l) => l.name !== '__name__').map((l) => `${l.name}=${JSON.stringify(l.value)}`);
  return `${name}{${rest.join(', ')}}`;
}

/** Compares label sets the way Prometheus sorts series (name by name, then value). */
export function compareLabels(a: Labels, b: Labels): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (x.name !== y.name) return x.name < y.name ? -1 : 1;
    if (x.value !== y.value) return x.value < y.value ? -1 : 1;
  }
  return a.length - b.length;
}

/**
 * A function giving the key of the labels kept by `on(names)` (`on` true) or left by
 * `ignoring(names)` plus `__name__` (`on` false), cached per label-set object.
 */
export function signatureFn(on: boolean, names: readonly string[]): (ls: Labels) => string {
  const set = new Set(names);
  if (!on) set.add('__name__');
  const cache = new WeakMap<Labels, string>();
  return (ls) => {
    let k = cache.get(ls);
    if (k === undefined) {
      k = '';
      for (const l of ls) if (set.has(l.name) === on) k += l.name + SEP + l.value + SEP;
      cache.set(ls, k);
    }
    return k;
  };
}
