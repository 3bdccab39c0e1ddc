/**
 * An inverted index of label sets: label name → value → series ids, and the matching of
 * Prometheus label matchers against it (a series lacking a label has it as '').
 */
import { RE2JS } from 're2js';
import { InvalidArgumentError } from '../../errors.js';
import type { Labels, Matcher } from './types.js';

type Predicate = (value: string) => boolean;

const regexCache = new Map<string, RE2JS>();

function compileRegex(pattern: string): RE2JS {
  let re = regexCache.get(pattern);
  if (re === undefined) {
    try {
      re = RE2JS.compile(`^(?:${pattern})$`);
    } catch (err) {
      throw new InvalidArgumentError(`invalid regular expression '${pattern}': ${(err as Error).message}`);
    }
    if (regexCache.size > 1000) regexCache.clear();
    regexCache.set(pattern, re);
  }
  return re;
}

/** A matcher as a predicate over a label's value ('' when the series lacks the label). */
export function matcherPredicate(m: Matcher): Predicate {
  switch (m.op) {
    case '=':
      return (v) => v === m.value;
    case '!=':
      return (v) => v !== m.value;
    case '=~': {
      const re = compileRegex(m.value);
      return (v) => re.matches(v);
    }
    case '!~': {
      const re = compileRegex(m.value);
      return (v) => !re.matches(v);
    }
  }
}


const EMPTY_IDS: ReadonlySet<number> = new Set();

/** Series ids by label, for selecting the series that match a list of matchers. */
export class Postings {
  private readonly byName = new Map<string, Map<string, Set<number>>>();
  private readonly labelsById = new Map<number, Labels>();

  /** Series indexed. */
  get size(): number {
    return this.labelsById.size;
  }

  /** Indexes series `id` with its label set (sorted by name). Re-adding an id is a no-op. */
  add(id: number, labels: Labels): void {
    if (this.labelsById.has(id)) return;
    this.labelsById.set(id, labels);
    for (const l of labels) {
      let values = this.byName.get(l.name);
      if (values === undefined) {
        values = new Map();
        this.byName.set(l.name, values);
      }
      let ids = values.get(l.value);
      if (ids === undefined) {
        ids = new Set();
        values.set(l.value, ids);
      }
      ids.add(id);
    }
  }

  /** Forgets series `id`. */
  remove(id: number): void {
    const labels = this.labelsById.get(id);
    if (labels === undefined) return;
    this.labelsById.delete(id);
    for (const l of labels) {
      const values = this.byName.get(l.name);
      const ids = values?.get(l.value);
      ids?.delete(id);
      if (ids !== undefined && ids.size === 0) values?.delete(l.value);
      if (values !== undefined && values.size === 0) this.byName.delete(l.name);
    }
  }

  /** Every label name of an indexed series. */
  names(): string[] {
    return [...this.byName.keys()];
  }

  /** The label set of series `id`, if indexed. */
  labels(id: number): Labels | undefined {
    return this.labelsById.get(id);
  }

  /** Every indexed id. */
  ids(): IterableIterator<number> {
    return this.labelsById.keys();
  }

  /**
   * The ids of the series matching every matcher. Matchers that cannot match '' narrow through the
   * index; the others filter the candidates.
   * @throws InvalidArgumentError for an invalid regular expression.
   */
  match(matchers: readonly Matcher[]): number[] {
    // Postings of matchers that need the label; `=` uses the index's own set (no copy), so a
    // selector such as {__name__="x", rule="r17"} costs the smaller set, not the sum of both.
    const lists: ReadonlySet<number>[] = [];
    const rest: { name: string; pred: (v: string) => boolean }[] = [];
    for (const m of matchers) {
      const pred = matcherPredicate(m);
      if (pred('')) {
        rest.push({ name: m.name, pred });
        continue;
      }
      const values = this.byName.get(m.name);
      if (m.op === '=') {
        lists.push(values?.get(m.value) ?? EMPTY_IDS);
      } else {
        const ids = new Set<number>();
        if (values !== undefined) for (const [v, set] of values) if (pred(v)) for (const id of set) ids.add(id);
        lists.push(ids);
      }
    }
    const out: number[] = [];
    const keep = (id: number): void => {
      const labels = this.labelsById.get(id);
      if (labels === undefined) return;
      if (rest.every(({ name, pred }) => pred(labels.find((l) => l.name === name)?.value ?? ''))) out.push(id);
    };
    if (lists.length === 0) {
      for (const id of this.labelsById.keys()) keep(id);
      return out;
    }
    lists.sort((x, y) => x.size - y.size);
    const [smallest, ...others] = lists as [ReadonlySet<number>, ...ReadonlySet<number>[]];
    for (const id of smallest) if (others.every((o) => o.has(id))) keep(id);
    return out;
  }
}
