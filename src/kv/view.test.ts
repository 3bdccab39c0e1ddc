/** Unit tests of the in-memory view, randomized against a plain sorted-array model. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { KeyValue } from '../mvcc/index.js';
import { View } from './view.js';
import { prng, TEST_SEED } from '../../test/helpers/random.js';


const SEED = TEST_SEED;

function utf8Compare(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

const ALPHABET = ['a', 'b', '/', 'é', '\uE000', '\uFFFF', '\u{10000}', '\u{1F600}', '\0', 'z'];

function randomKey(rnd: () => number): string {
  const n = 1 + Math.floor(rnd() * 3);
  let s = '';
  for (let i = 0; i < n; i++) s += ALPHABET[Math.floor(rnd() * ALPHABET.length)] as string;
  return s;
}

function kv(key: string, rev: number, value = `v${rev}`): KeyValue {
  return { key, value: new TextEncoder().encode(value), createRevision: rev, modRevision: rev, version: 1, lease: 0 };
}

/** The model: a map plus a full sort on every read. */
class Model {
  readonly map = new Map<string, KeyValue>();
  range(key: string, end: string | null | undefined): KeyValue[] {
    if (end === undefined) {
      const v = this.map.get(key);
      return v ? [v] : [];
    }
    return [...this.map.values()]
      .filter((v) => utf8Compare(v.key, key) >= 0 && (end === null || utf8Compare(v.key, end) < 0))
      .sort((a, b) => utf8Compare(a.key, b.key));
  }
}

function scanAll(view: View, key: string, end: string | null | undefined, limit = 0): KeyValue[] {
  const out: KeyValue[] = [];
  view.scan(key, end, (v) => {
    if (limit > 0 && out.length >= limit) return false;
    out.push(v);
    return true;
  });
  return out;
}

test('View matches a sorted-array model under random set/delete/scan/count', () => {
  const rnd = prng(SEED);
  const view = new View();
  const model = new Model();
  let rev = 0;
  for (let step = 0; step < 20_000; step++) {
    const r = rnd();
    const key = randomKey(rnd);
    const where = `seed ${SEED} step ${step}`;
    if (r < 0.4) {
      const v = kv(key, ++rev);
      view.set(v);
      model.map.set(key, v);
    } else if (r < 0.6) {
      const got = view.delete(key);
      assert.equal(got, model.map.get(key), `${where}: delete(${JSON.stringify(key)}) returned the old kv`);
      model.map.delete(key);
    } else if (r < 0.8) {
      const a = randomKey(rnd);
      const b = randomKey(rnd);
      const end = rnd() < 0.15 ? null : rnd() < 0.1 ? undefined : b;
      const limit = rnd() < 0.3 ? 1 + Math.floor(rnd() * 4) : 0;
      const want = model.range(a, end);
      const got = scanAll(view, a, end, limit);
      assert.deepEqual(
        got.map((v) => v.key),
        (limit > 0 ? want.slice(0, limit) : want).map((v) => v.key),
        `${where}: scan(${JSON.stringify(a)}, ${JSON.stringify(end)}, limit ${limit})`,
      );
      assert.equal(view.count(a, end), want.length, `${where}: count(${JSON.stringify(a)}, ${JSON.stringify(end)})`);
    } else if (r < 0.95) {
      assert.equal(view.get(key), model.map.get(key), `${where}: get(${JSON.stringify(key)})`);
    } else if (r < 0.999) {
      assert.equal(view.size, model.map.size, `${where}: size`);
      assert.equal(view.count('', null), model.map.size, `${where}: count of everything`);
    } else {
      view.clear();
      model.map.clear();
    }
  }
  assert.deepEqual(
    scanAll(view, '', null).map((v) => v.key),
    model.range('', null).map((v) => v.key),
    `seed ${SEED}: final full scan`,
  );
});

test('View scan sees a key deleted and re-added between scans exactly once, with its newest kv', () => {
  const view = new View();
  view.set(kv('a', 1));
  view.set(kv('b', 2));
  assert.equal(view.count('', null), 2);
  view.delete('a');
  view.set(kv('a', 3));
  view.delete('b');
  view.set(kv('b', 4));
  view.set(kv('b', 5));
  const got = scanAll(view, '', null);
  assert.deepEqual(
    got.map((v) => [v.key, v.modRevision]),
    [
      ['a', 3],
      ['b', 5],
    ],
  );
  assert.equal(view.count('a', 'c'), 2);
});

test('View count of a reversed or empty range is 0 and scan visits nothing', () => {
  const view = new View();
  for (const k of ['a', 'b', 'c']) view.set(kv(k, 1));
  assert.equal(view.count('c', 'a'), 0);
  assert.deepEqual(scanAll(view, 'c', 'a'), []);
  assert.equal(view.count('b', 'b'), 0);
  assert.equal(view.count('zz', null), 0);
  assert.equal(view.count('x', undefined), 0);
});

test('View.bytes counts keys and values in UTF-8 bytes', () => {
  const view = new View();
  view.set(kv('é\u{1F600}', 1, 'xy')); // key: 2 + 4 bytes; value: 2 bytes
  assert.equal(view.bytes, 8);
  view.delete('é\u{1F600}');
  assert.equal(view.bytes, 0);
});

test('View keeps its key order through loads in key order, bulk creates merged after them, and deletes (ASCII and non-ASCII keys)', () => {
  const rnd = prng(SEED + 17);
  for (const alphabet of [['a', 'b', 'c', '/', '0', '9'], ALPHABET]) {
    const pick = (): string => {
      let s = '';
      const n = 1 + Math.floor(rnd() * 5);
      for (let i = 0; i < n; i++) s += alphabet[Math.floor(rnd() * alphabet.length)] as string;
      return s;
    };
    const view = new View();
    const model = new Model();
    let rev = 1;
    // A load in key order (a view snapshot), then rounds of many creates (more than are spliced
    // one by one), with and without deletes among them, each round checked by a full scan.
    const first = [...new Set(Array.from({ length: 3000 }, pick))].sort(utf8Compare);
    for (const k of first) {
      const v = kv(k, rev++);
      view.set(v);
      model.map.set(k, v);
    }
    for (let round = 0; round < 12; round++) {
      const creates = 300 + Math.floor(rnd() * 400);
      for (let i = 0; i < creates; i++) {
        const k = pick();
        const v = kv(k, rev++);
        view.set(v);
        model.map.set(k, v);
      }
      if (round % 3 === 2) {
        for (const k of [...model.map.keys()].slice(0, 50)) {
          view.delete(k);
          model.map.delete(k);
        }
      }
      const seen: string[] = [];
      view.scan('', null, (x) => void seen.push(x.key));
      assert.deepEqual(seen, model.range('', null).map((x) => x.key), `round ${round}`);
      assert.equal(view.count('', null), model.map.size);
    }
  }
});
