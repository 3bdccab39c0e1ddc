/** A line diff of two texts (Myers' O((N+M)·D) algorithm) and its unified-diff rendering. */

/** One line of an edit script: kept (`equal`), only in the old text, or only in the new text. */
export interface LineEdit {
  op: 'equal' | 'removed' | 'added';
  /** The line's text, without its newline. */
  text: string;
  /** 0-based index of the line in the old text (equal/removed); -1 for added lines. */
  oldIndex: number;
  /** 0-based index of the line in the new text (equal/added); -1 for removed lines. */
  newIndex: number;
}

/**
 * Edit distances above this fall back to "remove every old line, add every new line" so one
 * diff of two unrelated 1 MiB values cannot use more than ~16 MB or a noticeable amount of CPU
 * (Myers keeps O(D²) state for the way back).
 */
export const MAX_DIFF_EDITS = 2000;

/** Splits text into lines; `eol` says whether it ended with a newline (the empty last piece is dropped). */
export function splitLines(text: string): { lines: string[]; eol: boolean } {
  if (text === '') return { lines: [], eol: false };
  const lines = text.split('\n');
  const eol = lines[lines.length - 1] === '';
  if (eol) lines.pop();
  return { lines, eol };
}

/**
 * The shortest edit script turning `a` into `b` (Myers 1986), with the common prefix and
 * suffix trimmed first. Lines are compared as strings. Beyond {@link MAX_DIFF_EDITS} edits the
 * middle part is reported as wholly removed then wholly added.
 */
export function diffLines(a: readonly string[], b: readonly string[], maxEdits = MAX_DIFF_EDITS): LineEdit[] {
  let pre = 0;
  while (pre < a.length && pre < b.length && a[pre] === b[pre]) pre++;
  let suf = 0;
  while (suf < a.length - pre && suf < b.length - pre && a[a.length - 1 - suf] === b[b.length - 1 - suf]) suf++;
  const out: LineEdit[] = [];
  for (let i = 0; i < pre; i++) out.push({ op: 'equal', text: a[i] as string, oldIndex: i, newIndex: i });
  const A = a.slice(pre, a.length - suf);
  const B = b.slice(pre, b.length - suf);
  const middle = myers(A, B, maxEdits) ?? [
    ...A.map((text, i): LineEdit => ({ op: 'removed', text, oldIndex: i, newIndex: -1 })),
    ...B.map((text, j): LineEdit => ({ op: 'added', text, oldIndex: -1, newIndex: j })),
  ];
  for (const e of middle) {
    out.push({ ...e, oldIndex: e.oldIndex < 0 ? -1 : e.oldIndex + pre, newIndex: e.newIndex < 0 ? -1 : e.newIndex + pre });
  }
  for (let i = 0; i < suf; i++) {
    const oi = a.length - suf + i;
    out.push({ op: 'equal', text: a[oi] as string, oldIndex: oi, newIndex: b.length - suf + i });
  }
  return out;
}

/** Myers' greedy forward search; undefined when more than `maxEdits` edits are needed. */
function myers(A: readonly string[], B: readonly string[], maxEdits: number): LineEdit[] | undefined {
  const n = A.length;
  const m = B.length;
  if (n === 0 || m === 0) {
    return [
      ...A.map((text, i): LineEdit => ({ op: 'removed', text, oldIndex: i, newIndex: -1 })),
      ...B.map((text, j): LineEdit => ({ op: 'added', text, oldIndex: -1, newIndex: j })),
    ];
  }
  const max = Math.min(n + m, maxEdits);
  const off = max + 1;
  const v = new Int32Array(2 * max + 3);
  // trace[d] holds v[-d..d] after step d: enough to walk back from the end.
  const trace: Int32Array[] = [];
  let found = -1;
  for (let d = 0; d <= max && found < 0; d++) {
    for (let k = -d; k <= d; k += 2) {
      let x = k === -d || (k !== d && (v[off + k - 1] as number) < (v[off + k + 1] as number)) ? (v[off + k + 1] as number) : (v[off + k - 1] as number) + 1;
      let y = x - k;
      while (x < n && y < m && A[x] === B[y]) {
        x++;
        y++;
      }
      v[off + k] = x;
      if (x >= n && y >= m) found = d;
    }
    trace.push(v.slice(off - d, off + d + 1));
  }
  if (found < 0) return undefined;
  const rev: LineEdit[] = [];
  let x = n;
  let y = m;
  for (let d = found; d > 0; d--) {
    const prev = trace[d - 1] as Int32Array;
    const at = (k: number): number => prev[k + d - 1] as number;
    const k = x - y;
    const down = k === -d || (k !== d && at(k - 1) < at(k + 1));
    const prevK = down ? k + 1 : k - 1;
    const prevX = at(prevK);
    const prevY = prevX - prevK;
    while (x > prevX && y > prevY) {
      x--;
      y--;
      rev.push({ op: 'equal', text: A[x] as string, oldIndex: x, newIndex: y });
    }
    if (down) {
      y--;
      rev.push({ op: 'added', text: B[y] as string, oldIndex: -1, newIndex: y });
    } else {
      x--;
      rev.push({ op: 'removed', text: A[x] as string, oldIndex: x, newIndex: -1 });
    }
  }
  while (x > 0 && y > 0) {
    x--;
    y--;
    rev.push({ op: 'equal', text: A[x] as string, oldIndex: x, newIndex: y });
  }
  return rev.reverse();
}

/** The position of an empty or non-empty range in a hunk header (GNU diff's rules). */
function hunkRange(start: number, count: number): string {
  if (count === 0) return `${start},0`;
  if (count === 1) return `${start + 1}`;
  return `${start + 1},${count}`;
}

/**
 * Renders two texts as a unified diff (`---`/`+++` header, `@@` hunks with `context` lines of
 * context, `\ No newline at end of file` markers). Returns the empty string when they are equal.
 * @example unifiedDiff('a\nb\n', 'a\nc\n', 'v1', 'v2') // → '--- v1\n+++ v2\n@@ -1,2 +1,2 @@\n a\n-b\n+c\n'
 */
export function unifiedDiff(oldText: string, newText: string, oldLabel: string, newLabel: string, context = 3): string {
  const { edits, noEolOld, noEolNew } = diffTexts(oldText, newText);
  const changeAt: number[] = [];
  edits.forEach((e, i) => {
    if (e.op !== 'equal') changeAt.push(i);
  });
  if (changeAt.length === 0) return '';
  let out = `--- ${oldLabel}\n+++ ${newLabel}\n`;
  let c = 0;
  while (c < changeAt.length) {
    const first = changeAt[c] as number;
    let last = first;
    while (c + 1 < changeAt.length && (changeAt[c + 1] as number) - last <= 2 * context + 1) last = changeAt[++c] as number;
    c++;
    const from = Math.max(0, first - context);
    const to = Math.min(edits.length, last + context + 1);
    const hunk = edits.slice(from, to);
    // Lines before the hunk on each side: the first old/new index it touches, or where it sits.
    let oldStart = 0;
    let newStart = 0;
    for (let i = 0; i < from; i++) {
      const e = edits[i] as LineEdit;
      if (e.op !== 'added') oldStart++;
      if (e.op !== 'removed') newStart++;
    }
    const oldCount = hunk.filter((e) => e.op !== 'added').length;
    const newCount = hunk.filter((e) => e.op !== 'removed').length;
    out += `@@ -${hunkRange(oldStart, oldCount)} +${hunkRange(newStart, newCount)} @@\n`;
    for (const e of hunk) {
      out += `${e.op === 'equal' ? ' ' : e.op === 'removed' ? '-' : '+'}${e.text}\n`;
      const noEol = (e.op !== 'added' && e.oldIndex === noEolOld) || (e.op !== 'removed' && e.newIndex === noEolNew);
      if (noEol) out += '\\ No newline at end of file\n';
    }
  }
  return out;
}

/**
 * Diffs two texts line by line. A last line without a trailing newline never equals one with
 * it, as in diff(1); `noEolOld`/`noEolNew` give the index of such a line (-1 when none).
 */
export function diffTexts(oldText: string, newText: string): { edits: LineEdit[]; noEolOld: number; noEolNew: number } {
  const a = splitLines(oldText);
  const b = splitLines(newText);
  const noEolOld = !a.eol && a.lines.length > 0 ? a.lines.length - 1 : -1;
  const noEolNew = !b.eol && b.lines.length > 0 ? b.lines.length - 1 : -1;
  // A marker character that cannot occur inside a line keeps "x" and "x\n" apart while diffing.
  const keyA = a.lines.map((l, i) => (i === noEolOld ? `${l}\n` : l));
  const keyB = b.lines.map((l, i) => (i === noEolNew ? `${l}\n` : l));
  const edits = diffLines(keyA, keyB).map((e) => ({ ...e, text: e.text.endsWith('\n') ? e.text.slice(0, -1) : e.text }));
  return { edits, noEolOld, noEolNew };
}
