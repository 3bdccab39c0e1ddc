/** Unit tests of Redis glob matching (KEYS, SCAN MATCH, PSUBSCRIBE), checked against redis-server's answers. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { globLiteralPrefix, globMatch } from './glob.js';

test('stars, question marks, classes, negation, ranges and escapes match as in Redis', () => {
  const cases: [string, string, boolean][] = [
    ['*', '', true],
    ['*', 'anything', true],
    ['user:*', 'user:123', true],
    ['user:*', 'users:1', false],
    ['h?llo', 'hello', true],
    ['h?llo', 'hllo', false],
    ['h*llo', 'heeeello', true],
    ['h[ae]llo', 'hallo', true],
    ['h[ae]llo', 'hillo', false],
    ['h[^e]llo', 'hallo', true],
    ['h[^e]llo', 'hello', false],
    ['h[a-b]llo', 'hbllo', true],
    ['h[a-b]llo', 'hcllo', false],
    ['h[b-a]llo', 'hallo', true], // reversed range, Redis swaps the ends
    ['h\\*llo', 'h*llo', true],
    ['h\\*llo', 'hello', false],
    ['*a*b*c*', 'xxaxxbxxcxx', true],
    ['*a*b*c*', 'xxaxxcxxbxx', false],
    ['a*', 'b', false],
    ['**x', 'abcx', true],
    ['[\\]]', ']', true],
    ['*:*:*', 'a:b:c', true],
    ['?', '', false],
    // Edge cases checked against redis-server 7.0 KEYS: a range may end in `]`.
    ['[a-]', ']', true],
    ['[a-]', '^', true],
    ['[a-]', '-', false],
  ];
  for (const [p, s, want] of cases) assert.equal(globMatch(p, s), want, `${JSON.stringify(p)} vs ${JSON.stringify(s)}`);
});

test('nocase folds ASCII case (CONFIG GET) and the literal prefix stops at the first special character', () => {
  assert.equal(globMatch('MAXMEMORY*', 'maxmemory-policy', true), true);
  assert.equal(globMatch('MAXMEMORY*', 'maxmemory-policy'), false);
  assert.equal(globLiteralPrefix('user:*:x'), 'user:');
  assert.equal(globLiteralPrefix('*x'), '');
  assert.equal(globLiteralPrefix('plain'), 'plain');
});

test('a pathological pattern does not take exponential time', () => {
  const subject = 'a'.repeat(5000);
  const pattern = `${'*a'.repeat(50)}b`;
  assert.equal(globMatch(pattern, subject), false);
});
