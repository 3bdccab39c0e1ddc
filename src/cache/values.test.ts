/** Unit tests of the list deque and the sorted set: Redis's index rules, ordering and ranges. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Deque, SortedSet, memberFromBytes, memberToBytes } from './values.js';

test('the deque pushes and pops at both ends across growth, and ranges follow LRANGE index rules', () => {
  const d = new Deque<number>();
  for (let i = 0; i < 20; i++) d.pushBack(i);
  for (let i = 1; i <= 5; i++) d.pushFront(-i);
  assert.equal(d.length, 25);
  assert.deepEqual(d.range(0, 2), [-5, -4, -3]);
  assert.deepEqual(d.range(-3, -1), [17, 18, 19]);
  assert.deepEqual(d.range(20, 100), [15, 16, 17, 18, 19]);
  assert.deepEqual(d.range(5, 2), []);
  assert.equal(d.at(-1), 19);
  assert.equal(d.at(25), undefined);
  assert.equal(d.popFront(), -5);
  assert.equal(d.popBack(), 19);
  assert.equal(d.set(0, 100), true);
  assert.equal(d.set(99, 1), false);
  assert.equal(d.toArray()[0], 100);
  d.replaceAll([1, 2]);
  assert.deepEqual([...d], [1, 2]);
});

test('the sorted set orders by score then member, updates scores, and answers ranks and ranges', () => {
  const z = new SortedSet();
  assert.equal(z.add('b', 2), 'added');
  assert.equal(z.add('a', 2), 'added');
  assert.equal(z.add('c', 1), 'added');
  assert.equal(z.add('c', 1), 'unchanged');
  assert.deepEqual(z.rangeByRank(0, -1).map((m) => m.member), ['c', 'a', 'b']);
  assert.equal(z.add('c', 3), 'updated');
  assert.deepEqual(z.rangeByRank(0, -1).map((m) => m.member), ['a', 'b', 'c']);
  assert.deepEqual(z.rangeByRank(0, 1, true).map((m) => m.member), ['c', 'b']);
  assert.equal(z.rank('c'), 2);
  assert.equal(z.rank('c', true), 0);
  assert.deepEqual(
    z.rangeByScore({ value: 2, exclusive: true }, { value: Infinity, exclusive: false }).map((m) => m.member),
    ['c'],
  );
  assert.equal(z.countByScore({ value: -Infinity, exclusive: false }, { value: 2, exclusive: false }), 2);
  assert.deepEqual(z.rangeByScore({ value: 0, exclusive: false }, { value: 10, exclusive: false }, 1, 1).map((m) => m.member), ['b']);
  assert.equal(z.remove('a'), true);
  assert.equal(z.remove('a'), false);
  assert.equal(z.size, 2);
  const lex = new SortedSet();
  for (const m of ['a', 'b', 'c', 'd']) lex.add(m, 0);
  assert.deepEqual(lex.rangeByLex({ kind: 'value', value: 'b', exclusive: false }, { kind: 'value', value: 'd', exclusive: true }).map((m) => m.member), ['b', 'c']);
  assert.deepEqual(lex.rangeByLex({ kind: 'min' }, { kind: 'max' }, 3).map((m) => m.member), ['d']);
});

test('members round-trip any bytes through their string form', () => {
  const bytes = Buffer.from([0, 255, 128, 10, 13, 0xe2, 0x82]);
  assert.deepEqual(memberToBytes(memberFromBytes(bytes)), bytes);
});
