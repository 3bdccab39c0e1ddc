/** Unit tests of the key space across nodes: keySlot against Redis's vectors, and the HRW slot map over random joins and leaves. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InvalidArgumentError } from '../errors.js';
import { prng, TEST_SEED } from '../../test/helpers/random.js';
import { SLOT_COUNT, crc16, hrwScore, keySlot, movedSlots, slotOwners, type SlotMap } from './slots.js';

test('keySlot gives the slots of the Redis Cluster spec and redis.io CLUSTER KEYSLOT, hash tags included', () => {
  const vectors: [string, number][] = [
    ['foo', 12182],
    ['somekey', 11058],
    ['foo{hash_tag}', 2515],
    ['bar{hash_tag}', 2515],
    ['{user1000}.following', 3443],
    ['{user1000}.followers', 3443],
    ['foo{}{bar}', 8363], // `{}`: the whole key
    ['foo{{bar}}', 4015], // the slot of `{bar`
    ['foo{bar}{zap}', 5061], // the slot of `bar`
    ['', 0],
  ];
  for (const [key, slot] of vectors) {
    assert.equal(keySlot(key), slot, `keySlot(${JSON.stringify(key)})`);
    assert.equal(keySlot(Buffer.from(key)), slot, `keySlot(Buffer ${JSON.stringify(key)})`);
  }
  assert.equal(keySlot('foo{{bar}}'), keySlot('{bar'));
  assert.equal(keySlot('foo{bar}{zap}'), keySlot('bar'));
  assert.equal(keySlot('x{'), crc16('x{') & 0x3fff, 'a `{` with no `}` after it: the whole key');
  assert.equal(keySlot('}x{y'), crc16('}x{y') & 0x3fff, 'a `}` before the first `{` does not close it');
});

test('crc16 is CRC-16/XMODEM: the check value of "123456789" is 0x31C3', () => {
  assert.equal(crc16('123456789'), 0x31c3);
  assert.equal(crc16(Buffer.from('123456789')), 0x31c3);
  assert.equal(crc16(''), 0);
  assert.equal(keySlot('123456789'), 0x31c3);
});

test('a non-ASCII key is hashed as its UTF-8 bytes (slots taken from redis-server 7.0 CLUSTER KEYSLOT)', () => {
  assert.equal(keySlot('ключ'), 10303);
  assert.equal(keySlot(Buffer.from('ключ', 'utf8')), 10303);
  assert.equal(keySlot('{ключ}.x'), 10303);
  assert.equal(keySlot('é'), 10180);
  assert.equal(keySlot('a{é}b'), 10180);
  assert.equal(keySlot('😀{}'), 4432);
  // The one byte 0xE9 (é in Latin-1) is another key than the UTF-8 é.
  assert.equal(keySlot(Buffer.from([0xe9])), 11271);
});

test('slotOwners refuses replicas outside 1–3 and empty member ids; slot numbers are checked', () => {
  for (const r of [0, 4, 1.5, NaN, -1]) {
    assert.throws(() => slotOwners(['a', 'b'], r), InvalidArgumentError, `replicas ${r}`);
  }
  assert.throws(() => slotOwners(['a', ''], 1), InvalidArgumentError);
  assert.throws(() => slotOwners(['a', 7 as unknown as string], 1), InvalidArgumentError);
  const m = slotOwners(['a', 'b'], 1);
  for (const s of [-1, SLOT_COUNT, 0.5]) {
    assert.throws(() => m.primary(s), InvalidArgumentError, `slot ${s}`);
    assert.throws(() => m.owners(s), InvalidArgumentError, `slot ${s}`);
  }
  assert.throws(() => hrwScore(SLOT_COUNT, 'a'), InvalidArgumentError);
  assert.throws(() => hrwScore(0, ''), InvalidArgumentError);
});

test('with no members no slot has an owner; replicas is capped at the member count; repeats count once', () => {
  const empty = slotOwners([], 3);
  assert.equal(empty.replicas, 0);
  assert.equal(empty.primary(0), undefined);
  assert.deepEqual(empty.owners(100), []);
  assert.deepEqual(empty.ownerRanges(), []);
  const two = slotOwners(['b', 'a', 'b'], 3);
  assert.deepEqual(two.members, ['a', 'b']);
  assert.equal(two.replicas, 2);
  for (let s = 0; s < SLOT_COUNT; s += 97) assert.deepEqual([...two.owners(s)].sort(), ['a', 'b']);
  assert.deepEqual(two.slotsOf('a', 'owner').length, SLOT_COUNT);
  assert.deepEqual(two.slotsOf('nobody'), []);
  assert.deepEqual(two.ranges('nobody'), []);
});

/** The owners of `slot` by the definition: members by hrwScore descending, ties by id (UTF-8 bytes). */
function referenceOwners(members: readonly string[], replicas: number, seed: string, slot: number): string[] {
  return [...new Set(members)]
    .map((m) => ({ m, score: hrwScore(slot, m, seed) }))
    .sort((a, b) => (a.score !== b.score ? (a.score > b.score ? -1 : 1) : Buffer.compare(Buffer.from(a.m), Buffer.from(b.m))))
    .slice(0, replicas)
    .map((x) => x.m);
}

test(`[seed ${TEST_SEED}] the fast build agrees with hrwScore on every slot (ranking by 64-bit score, then id)`, () => {
  const rnd = prng(TEST_SEED);
  const members = ['node-1', 'node-2', 'node-ü', 'node-😀', `node-${Math.floor(rnd() * 1e6)}`];
  const seed = `cluster-${Math.floor(rnd() * 1e6)}`;
  const m = slotOwners(members, 3, seed);
  for (let s = 0; s < SLOT_COUNT; s++) assert.deepEqual(m.owners(s), referenceOwners(members, 3, seed, s), `slot ${s}`);
  // The seed is part of the score: another seed gives another map.
  assert.ok(movedSlots(m, slotOwners(members, 3, `${seed}x`)).length > SLOT_COUNT / 2);
});

/** Checks the map's ranges and slot lists agree with its owners, and returns the primary count per member. */
function checkShape(m: SlotMap, live: ReadonlySet<string>, replicas: number, at: string): Map<string, number> {
  const want = Math.min(replicas, live.size);
  assert.equal(m.replicas, want, at);
  assert.deepEqual([...m.members].sort(), [...live].sort(), at);
  const primaries = new Map<string, number>();
  for (let s = 0; s < SLOT_COUNT; s++) {
    const o = m.owners(s);
    assert.equal(o.length, want, `${at}: slot ${s} has ${o.length} owners`);
    assert.equal(new Set(o).size, o.length, `${at}: slot ${s} owners are distinct`);
    for (const x of o) assert.ok(live.has(x), `${at}: slot ${s} owner ${x} is live`);
    assert.equal(m.primary(s), o[0], at);
    if (o[0] !== undefined) primaries.set(o[0], (primaries.get(o[0]) ?? 0) + 1);
  }
  // ranges() are the primary slots as maximal runs; ownerRanges() tile 0…16383 with equal owners inside.
  for (const x of live) {
    const slots = m.slotsOf(x);
    assert.equal(slots.length, primaries.get(x) ?? 0, at);
    const fromRanges: number[] = [];
    let prevEnd = -2;
    for (const [a, b] of m.ranges(x)) {
      assert.ok(a <= b && a > prevEnd + 1, `${at}: ranges of ${x} are ascending, disjoint and maximal`);
      for (let s = a; s <= b; s++) fromRanges.push(s);
      prevEnd = b;
    }
    assert.deepEqual(fromRanges, slots, `${at}: ranges(${x}) cover exactly slotsOf(${x})`);
  }
  if (live.size > 0) {
    let next = 0;
    let prevOwners: string[] | undefined;
    for (const r of m.ownerRanges()) {
      assert.equal(r.start, next, at);
      assert.notDeepEqual(r.owners, prevOwners, `${at}: ownerRanges are maximal`);
      for (let s = r.start; s <= r.end; s++) assert.deepEqual(m.owners(s), r.owners, `${at}: slot ${s} in its owner range`);
      next = r.end + 1;
      prevOwners = r.owners;
    }
    assert.equal(next, SLOT_COUNT, `${at}: ownerRanges end at 16383`);
  }
  return primaries;
}

function shuffled<T>(xs: readonly T[], rnd: () => number): T[] {
  const a = [...xs];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [a[i], a[j]] = [a[j] as T, a[i] as T];
  }
  return a;
}

for (const replicas of [1, 2, 3]) {
  test(`[seed ${TEST_SEED}] replicas ${replicas}: random joins and leaves keep every slot owned by live members, order-free, with minimal movement`, () => {
    const rnd = prng(TEST_SEED + replicas);
    const seed = `cluster-${Math.floor(rnd() * 1e6)}`;
    const live = new Set<string>();
    let nextId = 1;
    let prev = slotOwners([], replicas, seed);
    for (let step = 0; step < 24; step++) {
      // Grow towards 3–10 members, then wander; never below one member after the first join.
      const join = live.size <= 1 || (live.size < 10 && rnd() < 0.6);
      let changed: string;
      if (join) {
        changed = `node-${nextId++}`;
        live.add(changed);
      } else {
        changed = [...live][Math.floor(rnd() * live.size)] as string;
        live.delete(changed);
      }
      const at = `step ${step} (${join ? 'join' : 'leave'} ${changed}, ${live.size} members)`;
      const next = slotOwners(shuffled([...live], rnd), replicas, seed);

      // (a) min(replicas, n) distinct live owners per slot; ranges agree with owners.
      const primaries = checkShape(next, live, replicas, at);

      // (b) the same set in another order (and with a repeat) gives the same map.
      const again = slotOwners([...shuffled([...live], rnd), [...live][0] as string], replicas, seed);
      assert.deepEqual(again.members, next.members, at);
      for (let s = 0; s < SLOT_COUNT; s++) assert.deepEqual(again.owners(s), next.owners(s), `${at}: slot ${s} in another order`);

      // (c) minimal movement.
      for (let s = 0; s < SLOT_COUNT; s++) {
        const before = prev.owners(s);
        const after = next.owners(s);
        if (join) {
          // The others keep their order; only the newcomer can enter, pushing the last one out.
          const others = after.filter((x) => x !== changed);
          assert.deepEqual(others, before.slice(0, others.length), `${at}: slot ${s} ${before} → ${after}`);
        } else if (!before.includes(changed)) {
          assert.deepEqual(after, before, `${at}: slot ${s} did not list the leaver, so it does not change`);
        } else {
          // The survivors move up in order (the first surviving replica becomes primary); one member may join at the tail.
          const survivors = before.filter((x) => x !== changed);
          assert.deepEqual(after.slice(0, survivors.length), survivors, `${at}: slot ${s} ${before} → ${after}`);
        }
      }
      // The primaries that changed are exactly the newcomer's, or exactly the leaver's.
      assert.deepEqual(movedSlots(prev, next), join ? next.slotsOf(changed) : prev.slotsOf(changed), at);

      // (d) balance: ±5 % of 16384/3 with 3 members (about 4.5 σ), ±15 % up to 10 (about 6 σ).
      if (live.size >= 2) {
        const fair = SLOT_COUNT / live.size;
        const tolerance = replicas === 1 && live.size === 3 ? 0.05 : 0.15;
        for (const x of live) {
          const got = primaries.get(x) ?? 0;
          assert.ok(Math.abs(got - fair) <= fair * tolerance, `${at}: ${x} is primary of ${got} slots, ${fair.toFixed(0)} ± ${tolerance * 100} % expected`);
        }
      }
      prev = next;
    }
  });
}

test(`[seed ${TEST_SEED}] balance with 3 members and replicas 1: each primary count within ±5 % of 16384/3`, () => {
  const rnd = prng(TEST_SEED ^ 0x5eed);
  for (let draw = 0; draw < 20; draw++) {
    const members = [0, 1, 2].map((i) => `node-${i}-${Math.floor(rnd() * 1e9)}`);
    const seed = String(Math.floor(rnd() * 1e9));
    const m = slotOwners(members, 1, seed);
    const fair = SLOT_COUNT / 3;
    for (const x of members) {
      const got = m.slotsOf(x).length;
      assert.ok(Math.abs(got - fair) <= fair * 0.05, `${members} seed ${seed}: ${x} is primary of ${got} slots`);
    }
  }
});
