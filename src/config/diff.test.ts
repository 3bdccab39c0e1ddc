import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { diffValues } from './diff.js';
import { jsonDiff } from './json-diff.js';
import { diffLines, unifiedDiff, type LineEdit } from './line-diff.js';

const bytes = (s: string): Uint8Array => Buffer.from(s, 'utf8');

/** Length of the longest common subsequence, by dynamic programming (the reference for Myers). */
function lcs(a: string[], b: string[]): number {
  const dp = Array.from({ length: a.length + 1 }, () => new Array<number>(b.length + 1).fill(0));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      dp[i]![j] = a[i - 1] === b[j - 1] ? dp[i - 1]![j - 1]! + 1 : Math.max(dp[i - 1]![j]!, dp[i]![j - 1]!);
    }
  }
  return dp[a.length]![b.length]!;
}

function apply(edits: LineEdit[]): { old: string[]; new: string[] } {
  return {
    old: edits.filter((e) => e.op !== 'added').map((e) => e.text),
    new: edits.filter((e) => e.op !== 'removed').map((e) => e.text),
  };
}

describe('line diff (Myers)', () => {
  it('produces a minimal edit script that rebuilds both sides, on random inputs', () => {
    let seed = 42;
    const rnd = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    for (let round = 0; round < 300; round++) {
      const a = Array.from({ length: rnd(12) }, () => 'abcd'[rnd(4)] as string);
      const b = Array.from({ length: rnd(12) }, () => 'abcd'[rnd(4)] as string);
      const edits = diffLines(a, b);
      const sides = apply(edits);
      assert.deepEqual(sides.old, a);
      assert.deepEqual(sides.new, b);
      const changed = edits.filter((e) => e.op !== 'equal').length;
      assert.equal(changed, a.length + b.length - 2 * lcs(a, b), `not minimal for ${a.join('')} → ${b.join('')}`);
      for (const e of edits) {
        if (e.op !== 'added') assert.equal(a[e.oldIndex], e.text);
        if (e.op !== 'removed') assert.equal(b[e.newIndex], e.text);
      }
    }
  });

  it('falls back to remove-all/add-all beyond the edit budget, still rebuilding both sides', () => {
    const a = Array.from({ length: 50 }, (_, i) => `a${i}`);
    const b = Array.from({ length: 50 }, (_, i) => `b${i}`);
    const edits = diffLines(['same', ...a, 'end'], ['same', ...b, 'end'], 10);
    assert.deepEqual(apply(edits), { old: ['same', ...a, 'end'], new: ['same', ...b, 'end'] });
    assert.equal(edits[0]?.op, 'equal');
    assert.equal(edits[edits.length - 1]?.op, 'equal');
  });

  it('renders unified hunks exactly as GNU diff -u does', () => {
    const o = 'a\nb\nc\nd\ne\nf\ng\nh\ni\nj\nk\n';
    const n = 'a\nB\nc\nd\ne\nf\ng\nh\ni\nk\nl\n';
    assert.equal(
      unifiedDiff(o, n, 'o', 'n'),
      '--- o\n+++ n\n@@ -1,5 +1,5 @@\n a\n-b\n+B\n c\n d\n e\n@@ -7,5 +7,5 @@\n g\n h\n i\n-j\n k\n+l\n',
    );
    assert.equal(unifiedDiff('x\ny', 'x\ny\n', 'o', 'n'), '--- o\n+++ n\n@@ -1,2 +1,2 @@\n x\n-y\n\\ No newline at end of file\n+y\n');
    assert.equal(unifiedDiff('', 'one\n', 'o', 'n'), '--- o\n+++ n\n@@ -0,0 +1 @@\n+one\n');
    assert.equal(unifiedDiff('one\n', '', 'o', 'n'), '--- o\n+++ n\n@@ -1 +0,0 @@\n-one\n');
    assert.equal(unifiedDiff('same\n', 'same\n', 'o', 'n'), '');
  });
});

describe('json diff', () => {
  it('reports added, removed and changed members with JSON Pointer paths', () => {
    const changes = jsonDiff(
      { db: { host: 'old', port: 5432 }, 'a/b': 1, 'x~y': true, list: [1, 2, 3], gone: 'x' },
      { db: { host: 'new', port: 5432, pool: 10 }, 'a/b': 2, 'x~y': true, list: [1, 9], extra: null },
    );
    assert.deepEqual(changes, [
      { path: '/db/host', op: 'changed', from: 'old', to: 'new' },
      { path: '/db/pool', op: 'added', to: 10 },
      { path: '/a~1b', op: 'changed', from: 1, to: 2 },
      { path: '/list/1', op: 'changed', from: 2, to: 9 },
      { path: '/list/2', op: 'removed', from: 3 },
      { path: '/gone', op: 'removed', from: 'x' },
      { path: '/extra', op: 'added', to: null },
    ]);
  });

  it('treats key order as irrelevant and a type change as one change', () => {
    assert.deepEqual(jsonDiff({ a: 1, b: { c: [1] } }, { b: { c: [1] }, a: 1 }), []);
    assert.deepEqual(jsonDiff({ a: { b: 1 } }, { a: [1] }), [{ path: '/a', op: 'changed', from: { b: 1 }, to: [1] }]);
  });
});

describe('diffValues', () => {
  it('diffs JSON objects structurally and text by lines', () => {
    const j = diffValues(bytes('{"a":1}'), bytes('{"a":2}'), 'v1', 'v2');
    assert.deepEqual(j, { format: 'json', changes: [{ path: '/a', op: 'changed', from: 1, to: 2 }] });
    const t = diffValues(bytes('host=a\nport=1\n'), bytes('host=b\nport=1\n'), 'k v1', 'k v2');
    assert.equal(t.format, 'text');
    assert.deepEqual(t.changes, [
      { op: 'removed', line: 1, text: 'host=a' },
      { op: 'added', line: 1, text: 'host=b' },
    ]);
    assert.ok(t.format === 'text' && t.unified.startsWith('--- k v1\n+++ k v2\n@@ -1,2 +1,2 @@\n-host=a\n+host=b\n port=1\n'));
  });

  it('falls back to a whole-value change for bytes that are not UTF-8', () => {
    assert.deepEqual(diffValues(new Uint8Array([0xff]), bytes('a'), 'v1', 'v2'), { format: 'binary', changes: [{ path: '', op: 'changed' }] });
    assert.deepEqual(diffValues(new Uint8Array([0xff]), new Uint8Array([0xff]), 'v1', 'v2'), { format: 'binary', changes: [] });
  });
});
