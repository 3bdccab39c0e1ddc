/** A line diff for the side-by-side view of two versions (longest common subsequence). */

/** One row of a side-by-side diff: the left and right lines (undefined where one side has none). */
export interface DiffRow {
  kind: 'same' | 'changed' | 'removed' | 'added';
  left?: string;
  right?: string;
}

/** Lines above which the O(n·m) table is not built: the two sides are shown whole as one change. */
const MAX_LINES = 3000;

/** Aligns the lines of `a` and `b`: equal lines side by side, a removed and an added line paired as a change. */
export function sideBySide(a: string, b: string): DiffRow[] {
  const x = a.split('\n');
  const y = b.split('\n');
  if (x.length * y.length > MAX_LINES * MAX_LINES / 4) return [{ kind: 'changed', left: a, right: b }];
  const n = x.length;
  const m = y.length;
  const lcs: Uint32Array[] = Array.from({ length: n + 1 }, () => new Uint32Array(m + 1));
  for (let i = n - 1; i >= 0; i--) {
    const row = lcs[i] as Uint32Array;
    const next = lcs[i + 1] as Uint32Array;
    for (let j = m - 1; j >= 0; j--) row[j] = x[i] === y[j] ? (next[j + 1] as number) + 1 : Math.max(next[j] as number, row[j + 1] as number);
  }
  const rows: DiffRow[] = [];
  let i = 0;
  let j = 0;
  const removed: string[] = [];
  const added: string[] = [];
  const flush = (): void => {
    const k = Math.max(removed.length, added.length);
    for (let t = 0; t < k; t++) {
      const l = removed[t];
      const r = added[t];
      rows.push({ kind: l !== undefined && r !== undefined ? 'changed' : l !== undefined ? 'removed' : 'added', left: l, right: r });
    }
    removed.length = 0;
    added.length = 0;
  };
  while (i < n || j < m) {
    if (i < n && j < m && x[i] === y[j]) {
      flush();
      rows.push({ kind: 'same', left: x[i], right: y[j] });
      i++;
      j++;
    } else if (j < m && (i >= n || (lcs[i] as Uint32Array)[j + 1]! >= (lcs[i + 1] as Uint32Array)[j]!)) {
      added.push(y[j] as string);
      j++;
    } else {
      removed.push(x[i] as string);
      i++;
    }
  }
  flush();
  return rows;
}
