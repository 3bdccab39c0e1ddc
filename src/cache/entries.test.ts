/** Unit tests of the cache tier's entry table: keys found through an open-addressing index, ids reused, SCAN's table size. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { prng, TEST_SEED } from '../../test/helpers/random.js';
import { EntryTable, hashKey } from './entries.js';
import type { CacheValue } from './values.js';

const V: CacheValue = { type: 'string', value: Buffer.alloc(0) };
const NO = Buffer.alloc(0);

for (const [name, hash] of [
  ['the real hash', hashKey],
  ['a hash of 4 values (long probe runs)', (k: string) => k.length % 4],
  // Homes in the index's last slots at every size: runs wrap around its end, and removals must
  // shift members back across it.
  ['a hash of 4 values at the top of the range (runs wrap around)', (k: string) => 0x3fffffff - (k.length % 4)],
] as const) {
  test(`[seed ${TEST_SEED}] with ${name}, random adds and removes agree with a Map: find, keyOf, size, the live ids`, () => {
    const rnd = prng(TEST_SEED);
    const t = new EntryTable<null>(hash);
    const model = new Map<string, number>();
    // Latin-1, wide (past U+00FF) and slot-less (over 4 KiB) keys.
    const keyOf = (i: number): string => (i % 97 === 0 ? `wide-ключ-${i}` : i % 389 === 0 ? `long-${i}-${'x'.repeat(5000)}` : `k:${i}`);
    for (let op = 0; op < 30_000; op++) {
      const key = keyOf(Math.floor(rnd() * 3000));
      const have = model.get(key);
      assert.equal(t.find(key), have, `find('${key.slice(0, 20)}') at op ${op}`);
      if (have === undefined) {
        const id = t.add(key, V, null, NO);
        assert.ok(![...model.values()].includes(id), 'a live id is never handed out twice');
        model.set(key, id);
      } else if (rnd() < 0.6) {
        t.remove(have, V, NO);
        model.delete(key);
      }
    }
    assert.equal(t.size, model.size);
    for (const [key, id] of model) {
      assert.equal(t.find(key), id);
      assert.equal(t.keyOf(id), key);
      assert.ok(t.alive(id));
    }
    assert.deepEqual([...t.dense].sort((a, b) => a - b), [...model.values()].sort((a, b) => a - b));
    const highest = Math.max(-1, ...model.values());
    assert.equal(t.top, highest + 1, "SCAN's table ends at the highest live id");
    for (const key of model.keys()) t.remove(t.find(key) as number, V, NO);
    assert.equal(t.size, 0);
    assert.equal(t.top, 0);
    assert.equal(t.find('k:1'), undefined);
  });
}

test('a key equal in characters but not in storage width is another key; clear() forgets everything', () => {
  const t = new EntryTable<null>();
  const a = t.add('\u00e9t\u00e9', V, null, NO);
  const b = t.add('\u0113t\u0113', V, null, NO);
  assert.notEqual(a, b);
  assert.equal(t.find('\u00e9t\u00e9'), a);
  assert.equal(t.find('\u0113t\u0113'), b);
  assert.equal(t.keyOf(b), '\u0113t\u0113');
  assert.equal(t.keyBytes(a), 3);
  assert.equal(t.keyBytes(b), 6);
  assert.equal(t.find(''), undefined);
  const e = t.add('', V, null, NO);
  assert.equal(t.find(''), e);
  t.clear();
  assert.equal(t.size, 0);
  assert.equal(t.find('\u00e9t\u00e9'), undefined);
  assert.equal(t.alive(a), false);
});

for (const [name, hash] of [
  ['the real hash', hashKey],
  ['a hash of 61 values', (k: string) => hashKey(k) % 61],
] as const) {
  test(`[seed ${TEST_SEED}] with ${name}, every key stays findable while the index doubles step by step (adds, removes and look-ups interleaved)`, () => {
    const rnd = prng(TEST_SEED);
    const t = new EntryTable<null>(hash);
    const model = new Map<string, number>();
    let n = 0;
    // Up to ~6,000 keys: the index doubles from 2,048 slots four times, each rehash spread over the adds after it.
    for (let op = 0; op < 9000; op++) {
      if (model.size > 0 && rnd() < 0.3) {
        const keys = [...model.keys()];
        const key = keys[Math.floor(rnd() * keys.length)] as string;
        t.remove(model.get(key) as number, V, NO);
        model.delete(key);
      } else {
        const key = `k:${n++}`;
        model.set(key, t.add(key, V, null, NO));
      }
      if (op % 25 === 0 || op > 8900) {
        for (const [key, id] of model) assert.equal(t.find(key), id, `find('${key}') after op ${op}`);
        assert.equal(t.find(`k:${n + 1}`), undefined);
      }
    }
    assert.equal(t.size, model.size);
    for (const key of [...model.keys()]) t.remove(t.find(key) as number, V, NO);
    assert.equal(t.size, 0);
  });
}
