/** Unit tests of key ordering and prefix ranges: compareKeys must agree with UTF-8 byte order everywhere. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InvalidArgumentError, TooLargeError } from '../errors.js';
import { compareKeys, inRange, MAX_KEY_BYTES, prefixEnd, validateKey, validateRangeEnd } from './keys.js';
import { prng, TEST_SEED } from '../../test/helpers/random.js';


const SEED = TEST_SEED;

function utf8Compare(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

// Code points at the edges where UTF-16 order and UTF-8 order disagree or encodings change length.
const EDGES = [
  0x00, 0x01, 0x2f, 0x30, 0x41, 0x7e, 0x7f, 0x80, 0xff, 0x7ff, 0x800, 0xd7ff, 0xe000, 0xe001, 0xf8ff, 0xfffd, 0xfffe, 0xffff,
  0x10000, 0x10001, 0x1f600, 0x1f601, 0xfffff, 0x100000, 0x10fffe, 0x10ffff,
];

function randomCodePoint(rnd: () => number): number {
  const r = rnd();
  if (r < 0.5) return EDGES[Math.floor(rnd() * EDGES.length)] as number;
  if (r < 0.7) return 0x61 + Math.floor(rnd() * 3); // a few ASCII letters, so strings share prefixes
  for (;;) {
    const cp = Math.floor(rnd() * 0x110000);
    if (cp < 0xd800 || cp > 0xdfff) return cp;
  }
}

function randomKey(rnd: () => number, maxLen = 6): string {
  const n = Math.floor(rnd() * maxLen);
  let s = '';
  for (let i = 0; i < n; i++) s += String.fromCodePoint(randomCodePoint(rnd));
  return s;
}

test('compareKeys agrees with Buffer.compare on UTF-8 for random strings with astral and U+E000–U+FFFF characters', () => {
  const rnd = prng(SEED);
  for (let i = 0; i < 20_000; i++) {
    const a = randomKey(rnd);
    // Half the time derive b from a, so long shared prefixes are exercised too.
    const b = rnd() < 0.5 ? a.slice(0, Math.floor(rnd() * (a.length + 1))) + randomKey(rnd, 3) : randomKey(rnd);
    const got = Math.sign(compareKeys(a, b));
    const want = Math.sign(utf8Compare(a, b));
    assert.equal(got, want, `seed ${SEED}: compareKeys(${JSON.stringify(a)}, ${JSON.stringify(b)}) = ${got}, UTF-8 order says ${want}`);
    assert.equal(Math.sign(compareKeys(b, a)) + 0, -want + 0, `seed ${SEED}: antisymmetry for ${JSON.stringify(a)}, ${JSON.stringify(b)}`);
  }
});

test('sorting with compareKeys gives UTF-8 byte order, where JavaScript < would not', () => {
  const keys = ['\u{1F600}', '\uFFFF', '\uE000', 'z', '\u{10000}', '\uFFFD', 'a', '\u07FF', '\u0800', '\uD7FF', '\u{10FFFF}'];
  const byUtf8 = [...keys].sort(utf8Compare);
  assert.deepEqual([...keys].sort(compareKeys), byUtf8);
  // The case that motivates compareKeys: UTF-16 puts U+1F600 (a surrogate pair) before U+E000.
  assert.ok('\u{1F600}' < '\uE000');
  assert.ok(compareKeys('\u{1F600}', '\uE000') > 0);
  const rnd = prng(SEED + 1);
  const many = Array.from({ length: 2000 }, () => randomKey(rnd, 4));
  assert.deepEqual([...many].sort(compareKeys), [...many].sort(utf8Compare), `seed ${SEED + 1}`);
});

function startsWithBytes(key: string, prefix: string): boolean {
  const k = Buffer.from(key, 'utf8');
  const p = Buffer.from(prefix, 'utf8');
  return k.length >= p.length && k.subarray(0, p.length).equals(p);
}

test('[prefix, prefixEnd(prefix)) holds exactly the keys that start with prefix', () => {
  const rnd = prng(SEED + 2);
  for (let i = 0; i < 3000; i++) {
    const prefix = randomKey(rnd, 4) || 'a';
    const end = prefixEnd(prefix);
    const candidates: string[] = [prefix, prefix + randomKey(rnd, 3), randomKey(rnd, 5)];
    if (end !== null) candidates.push(end, end + randomKey(rnd, 2));
    // Keys that differ from the prefix only in the last code point, on both sides.
    const cps = Array.from(prefix);
    const last = (cps[cps.length - 1] as string).codePointAt(0) as number;
    for (const d of [-1, 1, 2]) {
      const cp = last + d;
      if (cp >= 0 && cp <= 0x10ffff && (cp < 0xd800 || cp > 0xdfff)) {
        candidates.push(cps.slice(0, -1).join('') + String.fromCodePoint(cp) + randomKey(rnd, 2));
      }
    }
    for (const k of candidates) {
      if (k === '') continue;
      const inside = compareKeys(k, prefix) >= 0 && (end === null || compareKeys(k, end) < 0);
      assert.equal(
        inside,
        startsWithBytes(k, prefix),
        `seed ${SEED + 2}: prefix ${JSON.stringify(prefix)} end ${JSON.stringify(end)} key ${JSON.stringify(k)}`,
      );
    }
  }
});

test('prefixEnd edge cases: surrogate gap, U+10FFFF carries, empty prefix has no end', () => {
  assert.equal(prefixEnd('a'), 'b');
  assert.equal(prefixEnd('a/'), 'a0');
  assert.equal(prefixEnd('\uD7FF'), '\uE000');
  assert.equal(prefixEnd('x\uFFFF'), 'x\u{10000}');
  assert.equal(prefixEnd('a\u{10FFFF}'), 'b');
  assert.equal(prefixEnd('a\u{10FFFF}\u{10FFFF}'), 'b');
  assert.equal(prefixEnd('\u{10FFFF}'), null);
  assert.equal(prefixEnd(''), null);
  assert.equal(prefixEnd('\u{1F600}'), '\u{1F601}');
  assert.ok((prefixEnd('\u{1F600}') as string).isWellFormed());
});

test('inRange: undefined end is one key, null end is unbounded, ranges are half-open in UTF-8 order', () => {
  assert.equal(inRange('a', 'a', undefined), true);
  assert.equal(inRange('ab', 'a', undefined), false);
  assert.equal(inRange('zzz', 'a', null), true);
  assert.equal(inRange('0', 'a', null), false);
  assert.equal(inRange('b', 'a', 'b'), false);
  assert.equal(inRange('a\u{10FFFF}', 'a', 'b'), true);
  assert.equal(inRange('\u{1F600}', '\uE000', '\u{10000}'), false);
  assert.equal(inRange('\uFFFF', '\uE000', '\u{10000}'), true);
});

test('validateKey accepts 4096 UTF-8 bytes and rejects 4097, empty keys and lone surrogates', () => {
  assert.equal(validateKey('k'.repeat(MAX_KEY_BYTES)), 'k'.repeat(MAX_KEY_BYTES));
  const emoji = '\u{1F600}'.repeat(MAX_KEY_BYTES / 4); // 4 bytes each, 2 UTF-16 units each
  assert.equal(validateKey(emoji), emoji);
  assert.throws(() => validateKey('k'.repeat(MAX_KEY_BYTES + 1)), TooLargeError);
  assert.throws(() => validateKey(`${'\u{1F600}'.repeat(MAX_KEY_BYTES / 4 - 1)}abcde`), TooLargeError);
  assert.throws(() => validateKey(''), InvalidArgumentError);
  assert.throws(() => validateKey('a\uD800b'), InvalidArgumentError);
  assert.throws(() => validateKey('\uDC00'), InvalidArgumentError);
  assert.throws(() => validateKey(42), InvalidArgumentError);
  assert.throws(() => validateKey(undefined), InvalidArgumentError);
});

test('validateRangeEnd reads "" and "\\0" as unbounded and checks everything else like a key', () => {
  assert.equal(validateRangeEnd(undefined), undefined);
  assert.equal(validateRangeEnd(null), null);
  assert.equal(validateRangeEnd(''), null);
  assert.equal(validateRangeEnd('\0'), null);
  assert.equal(validateRangeEnd('b'), 'b');
  assert.throws(() => validateRangeEnd(7), InvalidArgumentError);
  assert.throws(() => validateRangeEnd('x\uD800'), InvalidArgumentError);
  assert.throws(() => validateRangeEnd('k'.repeat(MAX_KEY_BYTES + 1)), TooLargeError);
});

test('parseRange: one canonical form for every face (issue 9, finding 1)', async () => {
  const { parseRange, isCanonicalRange, FIRST_USER_KEY } = await import('./keys.js');
  assert.deepEqual(parseRange({ key: 'team/', rangeEnd: '' }), { key: 'team/' }, '"" is one key (etcd)');
  assert.deepEqual(parseRange({ key: 'team/', rangeEnd: null }), { key: 'team/' });
  assert.deepEqual(parseRange({ key: 'team/' }), { key: 'team/' });
  assert.deepEqual(parseRange({ key: 'team/', rangeEnd: '\u0000' }), { key: 'team/', rangeEnd: null }, '"\\0" is every key >= key');
  assert.deepEqual(parseRange({ key: 'team/', prefix: true }), { key: 'team/', rangeEnd: 'team0' });
  assert.deepEqual(parseRange({ key: '', prefix: true }), { key: FIRST_USER_KEY, rangeEnd: null });
  assert.deepEqual(parseRange({ key: '', rangeEnd: '\u0000' }), { key: FIRST_USER_KEY, rangeEnd: null });
  assert.deepEqual(parseRange({ key: 'a', rangeEnd: 'b' }), { key: 'a', rangeEnd: 'b' });
  for (const bad of [
    { key: 'team/', rangeEnd: 'a' },
    { key: 'b', rangeEnd: 'b' },
    { key: 'team/', prefix: true, rangeEnd: '' },
    { key: 'team/', prefix: true, rangeEnd: '\u0000' },
    { key: '' },
    { key: '', rangeEnd: '' },
    { key: '\u0000x' },
    { key: 7 },
    { key: 'a', rangeEnd: 7 },
    { key: 'a', prefix: 'yes' },
    { key: '', rangeEnd: '\u0000z' },
  ]) {
    assert.throws(() => parseRange(bad), InvalidArgumentError, JSON.stringify(bad));
  }
  assert.equal(isCanonicalRange({ key: 'team/', rangeEnd: '' }), false);
  assert.equal(isCanonicalRange({ key: 'team/', rangeEnd: '\u0000' }), false);
  assert.equal(isCanonicalRange({ key: '', rangeEnd: null }), false);
  assert.equal(isCanonicalRange({ key: 'b', rangeEnd: 'a' }), false);
  assert.equal(isCanonicalRange({ key: 'team/', rangeEnd: 'team0' }), true);
});
