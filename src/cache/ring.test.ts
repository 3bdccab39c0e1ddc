/**
 * Unit tests of the cache ring: every node computes the same slot owners from the same members,
 * joins and leaves move only the slots they must, and a node serves a slot only once it holds
 * nothing stale for it (the sweep) and while its membership is confirmed (the fence).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { prng, TEST_SEED } from '../../test/helpers/random.js';
import { CacheRing, SLOT_BLOCK_BITS, SlotOwnership, clusterNodeId, respAddress, type RingMember } from './ring.js';
import { SLOT_COUNT, keySlot } from './slots.js';
import { CacheTier } from './tier.js';
import type { CacheNamespace } from './types.js';

function member(i: number): RingMember {
  return { id: `node-${i}`, url: `http://10.0.0.${i}:7379`, respUrl: `redis://10.0.0.${i}:6380` };
}

function owners(ring: CacheRing): string[] {
  const out: string[] = [];
  for (let s = 0; s < SLOT_COUNT; s++) out.push(ring.owner(s)?.id ?? '');
  return out;
}

test('every node builds the same owners from the same members, whatever their order, and its own slots are the ones it owns', () => {
  const ms = [member(1), member(2), member(3)];
  const a = new CacheRing(1, ms, 'node-1');
  const b = new CacheRing(1, [ms[2], ms[0], ms[1]] as RingMember[], 'node-2');
  assert.deepEqual(owners(a), owners(b));
  let mine = 0;
  for (let s = 0; s < SLOT_COUNT; s++) {
    assert.equal(a.owns(s), a.owner(s)?.id === 'node-1');
    assert.equal(b.owns(s), b.owner(s)?.id === 'node-2');
    if (a.owns(s)) mine++;
  }
  assert.equal(a.ownedCount, mine);
  assert.equal(a.address(keySlot('foo')), `10.0.0.${(a.owner(keySlot('foo')) as RingMember).id.slice(5)}:6380`);
});

test('slots are placed in blocks: CLUSTER SLOTS has at most 1,024 ranges, covering every slot once, each member a fair share', () => {
  const ring = new CacheRing(3, [member(1), member(2), member(3)], 'node-1');
  const ranges = ring.ownerRanges();
  assert.ok(ranges.length <= SLOT_COUNT >> SLOT_BLOCK_BITS, `${ranges.length} ranges`);
  let next = 0;
  for (const r of ranges) {
    assert.equal(r.start, next);
    assert.ok(r.end >= r.start);
    assert.equal(r.start % (1 << SLOT_BLOCK_BITS), 0);
    for (let s = r.start; s <= r.end; s++) assert.equal(ring.owner(s)?.id, r.owner.id);
    next = r.end + 1;
  }
  assert.equal(next, SLOT_COUNT);
  for (const m of ring.members) {
    const share = ring.slotCount(m.id) / SLOT_COUNT;
    assert.ok(share > 0.25 && share < 0.42, `${m.id} owns ${(share * 100).toFixed(1)} %`);
    assert.equal(ring.ranges(m.id).reduce((n, [s, e]) => n + e - s + 1, 0), ring.slotCount(m.id));
  }
  assert.deepEqual(new CacheRing(1, [], 'x').ownerRanges(), []);
  assert.equal(new CacheRing(1, [], 'x').owner(0), undefined);
});

test(`[seed ${TEST_SEED}] a join moves slots only to the newcomer and a leave only the leaver's, in any order of 60 changes`, () => {
  const rnd = prng(TEST_SEED);
  let live = [1, 2, 3];
  let next = 4;
  let prev = new CacheRing(1, live.map(member), 'node-1');
  for (let step = 0; step < 60; step++) {
    const join = live.length < 2 || (live.length < 8 && rnd() < 0.5);
    let changed: string;
    if (join) {
      changed = `node-${next}`;
      live = [...live, next++];
    } else {
      const i = Math.floor(rnd() * live.length);
      changed = `node-${live[i] as number}`;
      live = live.filter((_, j) => j !== i);
    }
    const ring = new CacheRing(step + 2, live.map(member), 'node-1');
    let moved = 0;
    for (let s = 0; s < SLOT_COUNT; s++) {
      const was = prev.owner(s)?.id;
      const now = ring.owner(s)?.id;
      if (was === now) continue;
      moved++;
      if (join) assert.equal(now, changed, `step ${step}: slot ${s} moved from ${was} to ${now}, not to the newcomer ${changed}`);
      else assert.equal(was, changed, `step ${step}: slot ${s} moved from ${was}, which did not leave`);
    }
    // What had to move did: the newcomer's share, or every slot of the leaver.
    if (join) assert.equal(moved, ring.slotCount(changed));
    else assert.equal(moved, prev.slotCount(changed));
    prev = ring;
  }
});

test('respAddress and clusterNodeId', () => {
  assert.deepEqual(respAddress('redis://127.0.0.1:6380'), { host: '127.0.0.1', port: 6380, tls: false });
  assert.deepEqual(respAddress('rediss://[::1]:7000'), { host: '::1', port: 7000, tls: true });
  assert.throws(() => respAddress('http://x:1'), /redis:\/\/host:port/);
  assert.throws(() => respAddress('redis://x'), /redis:\/\/host:port/);
  assert.match(clusterNodeId('node-1'), /^[0-9a-f]{40}$/);
  assert.notEqual(clusterNodeId('node-1'), clusterNodeId('node-2'));
  assert.equal(new CacheRing(1, [{ ...member(1), respUrl: 'nonsense' }], 'node-1').address(0), '');
});

function cacheTier(): CacheTier {
  const ns: CacheNamespace = { prefix: '' };
  return new CacheTier({ namespaces: () => ns, random: prng(TEST_SEED) });
}

/** Resolves once `own` finished its sweep. */
async function swept(own: SlotOwnership): Promise<void> {
  for (let i = 0; i < 1000 && own.busy; i++) await new Promise((r) => setImmediate(r));
  assert.equal(own.busy, false);
}

/** A key whose slot `ring` gives to `id`, by trying `prefix0`, `prefix1`, … */
function keyOwnedBy(ring: CacheRing, id: string, prefix: string): string {
  for (let i = 0; ; i++) if (ring.owner(keySlot(`${prefix}${i}`))?.id === id) return `${prefix}${i}`;
}

test('a node serves a slot only once swept and while confirmed: a lost slot is dropped, a regained slot comes back empty', async () => {
  const tier = cacheTier();
  let fresh = true;
  const own = new SlotOwnership(tier, () => fresh);
  assert.equal(own.route(0), 'down', 'no ring yet');
  const three = new CacheRing(1, [member(1), member(2), member(3)], 'node-1');
  const k1 = keyOwnedBy(three, 'node-1', 'a');
  const k2 = keyOwnedBy(three, 'node-2', 'b');
  // What the tier held before this node joined (an AOF, an earlier membership) is not trusted.
  tier.set(k1, { type: 'string', value: Buffer.from('from before') });
  own.apply(three);
  await swept(own);
  assert.equal(tier.lookup(k1), undefined, 'nothing held before the ring is served');
  assert.equal(own.route(keySlot(k1)), 'serve');
  assert.equal(own.route(keySlot(k2)), 'elsewhere');
  tier.set(k1, { type: 'string', value: Buffer.from('v1') });

  // node-1 leaves the ring's view of itself (another node took its slots): k1 is dropped.
  const without = new CacheRing(2, [member(2), member(3)], 'node-1');
  own.apply(without);
  assert.equal(own.route(keySlot(k1)), 'elsewhere', 'a lost slot stops being served at once');
  await swept(own);
  assert.equal(tier.lookup(k1), undefined);
  assert.equal(tier.dbsize(), 0);

  // An older epoch changes nothing.
  own.apply(three);
  assert.equal(own.route(keySlot(k1)), 'elsewhere');

  // Back in: the slot's primary meanwhile hands it back (another node's data, empty here), then it is served.
  const again = new CacheRing(3, [member(1), member(2), member(3)], 'node-1');
  own.apply(again);
  await swept(own);
  assert.equal(own.route(keySlot(k1)), 'importing', 'waits for the hand-over of the node that served it meanwhile');
  assert.deepEqual(own.beginHandover(3, [keySlot(k1)]), [keySlot(k1)]);
  own.endHandover([keySlot(k1)]);
  assert.equal(own.route(keySlot(k1)), 'serve');
  assert.equal(tier.lookup(k1), undefined);

  // Not confirmed (a frozen node, PostgreSQL unreachable): nothing is served.
  fresh = false;
  assert.equal(own.route(keySlot(k1)), 'down');
  assert.equal(own.serves(keySlot(k1)), false);
  fresh = true;
  assert.equal(own.serves(keySlot(k1)), true);
});

test('a slot gained while the tier holds many keys answers importing until the sweep is done, and the sweep keeps served keys', async () => {
  const tier = cacheTier();
  const own = new SlotOwnership(tier, () => true);
  const two = new CacheRing(1, [member(1), member(2)], 'node-1');
  own.apply(two);
  await swept(own);
  const mine: string[] = [];
  for (let i = 0; mine.length < 60_000; i++) {
    const k = `k${i}`;
    if (two.owns(keySlot(k))) mine.push(k);
  }
  for (const k of mine) tier.set(k, { type: 'string', value: Buffer.from('x') });
  // Stale keys of node-2's slots (as if left from an earlier time this node owned them).
  const stale = keyOwnedBy(two, 'node-2', 'stale');
  tier.set(stale, { type: 'string', value: Buffer.from('old') });
  // node-2 leaves: its slots come to node-1, which must first drop the stale key.
  const alone = new CacheRing(2, [member(1)], 'node-1');
  own.apply(alone);
  assert.equal(own.busy, true, 'a sweep over 60,000 keys takes more than one step');
  assert.equal(own.route(keySlot(stale)), 'importing');
  assert.equal(own.route(keySlot(mine[0] as string)), 'serve', 'slots it kept are served throughout');
  await swept(own);
  assert.equal(own.route(keySlot(stale)), 'serve');
  assert.equal(tier.lookup(stale), undefined, 'the stale key was dropped before its slot was served');
  assert.equal(tier.dbsize(), mine.length, 'every key of a kept slot is still there');
});

test('owners by rank: the primary first, then replicas; ranks agree with owners and with the primary map', () => {
  const ring = new CacheRing(1, [member(1), member(2), member(3), member(4)], 'node-1');
  for (let s = 0; s < SLOT_COUNT; s += 97) {
    const three = ring.owners(s, 3);
    assert.equal(three.length, 3);
    assert.equal(new Set(three.map((m) => m.id)).size, 3);
    assert.equal(three[0]?.id, ring.owner(s)?.id);
    assert.deepEqual(ring.owners(s, 2), three.slice(0, 2));
    for (const [k, m] of three.entries()) assert.equal(ring.rankOf(s, m.id), k);
    const mine = three.findIndex((m) => m.id === 'node-1');
    assert.equal(ring.rank(s), mine === -1 ? 255 : mine);
  }
  assert.equal(new CacheRing(1, [member(1), member(2)], 'node-1').owners(0, 3).length, 2, 'fewer owners than members allow');
});

test('a replica keeps a slot only after its copy, and a promoted replica serves what it holds at once', async () => {
  const tier = cacheTier();
  const own = new SlotOwnership(tier, () => true, (key) => (key.startsWith('r/') ? 2 : 1));
  const ring1 = new CacheRing(1, [member(1), member(2)], 'node-1');
  own.apply(ring1);
  await swept(own);
  // A slot node-2 is primary of, with node-1 its replica.
  let key = '';
  for (let i = 0; ; i++) {
    key = `r/${i}`;
    if (ring1.owner(keySlot(key))?.id === 'node-2') break;
  }
  const slot = keySlot(key);
  assert.equal(ring1.rank(slot), 1);
  assert.equal(own.route(slot), 'elsewhere');
  assert.equal(own.holds(slot), false, 'a replica slot is not valid before its copy');
  assert.equal(own.keeps(key), false);
  own.beginSync([slot]);
  tier.set(key, { type: 'string', value: Buffer.from('copied') });
  assert.equal(own.keeps(key), true, 'kept while the copy arrives');
  own.endSync([slot]);
  assert.equal(own.holds(slot), true);
  // A factor-1 key of a replica slot (same hash tag as a factor-2 one) is not a replica's to keep.
  let tag = 0;
  while (ring1.rank(keySlot(String(tag))) !== 1) tag++;
  const tagged = keySlot(String(tag));
  assert.equal(keySlot(`r/{${tag}}`), keySlot(`s/{${tag}}`));
  own.beginSync([tagged]);
  assert.equal(own.keeps(`r/{${tag}}`), true);
  assert.equal(own.keeps(`s/{${tag}}`), false, 'rank 1 is beyond a factor of 1');
  own.endSync([tagged]);

  // node-2 fails: node-1 is promoted and serves the copy, with no sweep in between.
  own.apply(new CacheRing(2, [member(1)], 'node-1'));
  assert.equal(own.route(slot), 'serve');
  await swept(own);
  assert.equal((tier.lookup(key) as { value: Buffer }).value.toString(), 'copied');

  // A copy that was cut short by the promotion: what arrived is served.
  const own2 = new SlotOwnership(cacheTier(), () => true, () => 2);
  own2.apply(ring1);
  await swept(own2);
  own2.beginSync([slot]);
  own2.apply(new CacheRing(2, [member(1)], 'node-1'));
  assert.equal(own2.route(slot), 'serve');
  // An end for a copy a ring change made moot changes nothing.
  own2.endSync([slot]);
  assert.equal(own2.route(slot), 'serve');
});

test('a slot lost and regained across epochs is dropped, and a gap in the epochs read trusts nothing', async () => {
  const tier = cacheTier();
  const own = new SlotOwnership(tier, () => true);
  const three = (epoch: number): CacheRing => new CacheRing(epoch, [member(1), member(2), member(3)], 'node-1');
  own.apply(three(3));
  await swept(own);
  const key = keyOwnedBy(three(3), 'node-1', 'k');
  tier.set(key, { type: 'string', value: Buffer.from('before') });
  // Epoch 4 without node-1 (frozen), epoch 5 with it again: applied in order, the key is gone.
  own.apply(new CacheRing(4, [member(2), member(3)], 'node-1'));
  own.apply(three(5));
  await swept(own);
  assert.equal(tier.lookup(key), undefined, 'the copy from before epoch 4 is not served');
  // Same owners, but epochs 6-7 were never read: nothing held is trusted.
  tier.set(key, { type: 'string', value: Buffer.from('at 5') });
  own.apply(three(8), true);
  await swept(own);
  assert.equal(tier.lookup(key), undefined);
  assert.equal(own.route(keySlot(key)), 'serve');
  // Without a gap, a slot kept through a ring change keeps its keys.
  tier.set(key, { type: 'string', value: Buffer.from('at 8') });
  own.apply(three(9));
  await swept(own);
  assert.equal((tier.lookup(key) as { value: Buffer }).value.toString(), 'at 8');
});

test('a new primary waits for the previous primary\'s hand-over: it takes only the slots it waits for, serves them at its end, and serves empty after the deadline', async () => {
  // The previous primary: the ring that moves its slots calls onHandover before anything is dropped.
  const oldTier = cacheTier();
  const old = new SlotOwnership(oldTier, () => true);
  const two = (self: string): CacheRing => new CacheRing(1, [member(1), member(2)], self);
  const three = (self: string): CacheRing => new CacheRing(2, [member(1), member(2), member(3)], self);
  old.apply(two('node-1'));
  await swept(old);
  let moving = '';
  const [r2, r3] = [two('node-1'), three('node-1')];
  for (let i = 0; moving === ''; i++) {
    const slot = keySlot(`m${i}`);
    if (r3.owner(slot)?.id === 'node-3' && r2.owner(slot)?.id === 'node-1') moving = `m${i}`;
  }
  const movingSlot = keySlot(moving);
  oldTier.set(moving, { type: 'string', value: Buffer.from('moves') });
  let handed: { slots: number[]; held: boolean } | undefined;
  old.onHandover = (ring, slots) => {
    handed = { slots, held: oldTier.lookup(moving) !== undefined };
    assert.equal(ring.epoch, 2);
  };
  old.apply(three('node-1'));
  assert.ok(handed !== undefined && handed.slots.includes(movingSlot), 'the moved slot is handed over');
  assert.equal(handed.held, true, 'while its keys are still held');
  assert.ok(handed.slots.every((s) => r3.owner(s)?.id === 'node-3'), 'only slots that moved to the newcomer');
  await swept(old);
  assert.equal(old.route(movingSlot), 'elsewhere', 'not served here any more');
  assert.equal(old.handingOver(movingSlot), true);
  assert.notEqual(oldTier.lookup(moving), undefined, 'but kept while the hand-over is sent, in steps');
  old.releaseHandout(handed.slots);
  for (let i = 0; i < 100 && oldTier.lookup(moving) !== undefined; i++) await new Promise((r) => setImmediate(r));
  assert.equal(oldTier.lookup(moving), undefined, 'dropped once it ended');
  assert.equal(old.handingOver(movingSlot), false);

  // The newcomer: it knows the epoch before its first one, so it waits for node-1 and node-2.
  const tier = cacheTier();
  const own = new SlotOwnership(tier, () => true, () => 1, { handoverWaitMs: 300 });
  const done: number[][] = [];
  own.onHandedOver = (_ring, slots) => done.push(slots);
  const stale = keyOwnedBy(three('node-3'), 'node-3', 's');
  tier.set(stale, { type: 'string', value: Buffer.from('from an old membership') });
  own.apply(three('node-3'), false, two('node-3'));
  await swept(own);
  assert.equal(tier.lookup(stale), undefined, 'what it held from before is dropped while it waits');
  assert.equal(own.route(movingSlot), 'importing');
  assert.equal(own.awaiting(movingSlot), true);
  assert.throws(() => own.beginHandover(3, [movingSlot]), /has not applied ring epoch 3/);
  const r3n = three('node-3');
  const elsewhere = [...Array(16384).keys()].find((s) => r3n.owner(s)?.id !== 'node-3') as number;
  assert.deepEqual(own.beginHandover(2, [movingSlot, elsewhere]), [movingSlot], 'only a slot it waits for');
  assert.equal(own.receiving(movingSlot), true);
  assert.equal(own.receiving(elsewhere), false);
  tier.set(moving, { type: 'string', value: Buffer.from('moves') });
  assert.equal(own.keeps(moving), true, 'the keys arriving are kept');
  assert.equal(own.route(movingSlot), 'importing', 'not served before the end');
  own.endHandover([movingSlot]);
  assert.equal(own.route(movingSlot), 'serve');
  assert.equal((tier.lookup(moving) as { value: Buffer }).value.toString(), 'moves');
  assert.deepEqual(done, [[movingSlot]], 'its replicas get their copies');
  // A late begin for a slot served already is refused, so nothing older overwrites it.
  assert.deepEqual(own.beginHandover(2, [movingSlot]), []);

  // Another slot whose hand-over never begins: served empty after the deadline.
  const other = [...Array(16384).keys()].find((s) => r3n.owner(s)?.id === 'node-3' && s !== movingSlot && own.awaiting(s)) as number;
  assert.equal(own.route(other), 'importing');
  await new Promise((r) => setTimeout(r, 700));
  assert.equal(own.route(other), 'serve');
  assert.ok(own.handoversMissed > 0);
  assert.ok(done.length === 2 && (done[1] as number[]).includes(other));
});

/**
 * node-2 joining a ring of node-1 (epoch 2), then node-3 joining (epoch 3): the rings, and the
 * slots node-2 gains from node-1 that move on to node-3 (`chained`).
 */
function twoJoins(): { before: CacheRing; e2: CacheRing; e3: CacheRing; chained: number[] } {
  const before = new CacheRing(1, [member(1)], 'node-2');
  const e2 = new CacheRing(2, [member(1), member(2)], 'node-2');
  const e3 = new CacheRing(3, [member(1), member(2), member(3)], 'node-2');
  const chained = [...Array(SLOT_COUNT).keys()].filter((s) => e2.owner(s)?.id === 'node-2' && e3.owner(s)?.id === 'node-3');
  return { before, e2, e3, chained };
}

/** A key in `slot`, by trying `prefix0`, `prefix1`, … */
function keyIn(slot: number, prefix: string): string {
  for (let i = 0; ; i++) if (keySlot(`${prefix}${i}`) === slot) return `${prefix}${i}`;
}

test('a slot that moves on while its hand-over is still arriving is handed over again at its end (two joins close together lose no key)', async () => {
  const tier = cacheTier();
  const own = new SlotOwnership(tier, () => true, () => 1, { handoverWaitMs: 300 });
  const handed: { epoch: number; slots: number[] }[] = [];
  own.onHandover = (ring, slots) => handed.push({ epoch: ring.epoch, slots });
  // node-2 joins: the slots it gains come from node-1; node-3 joins before they have all arrived.
  const { before, e2, e3, chained } = twoJoins();
  const [arriving, waiting] = chained as [number, number];
  const key = keyIn(arriving, 'k');
  own.apply(e2, false, before);
  await swept(own);
  assert.deepEqual(own.beginHandover(2, [arriving]), [arriving]);
  tier.set(key, { type: 'string', value: Buffer.from('from node-1') });
  own.apply(e3);
  assert.equal(handed.length, 0, 'nothing is handed on before it has arrived');
  await swept(own);
  assert.equal(own.route(arriving), 'elsewhere');
  assert.equal(own.receiving(arriving), true, 'the keys still arriving are taken');
  assert.equal((tier.lookup(key) as { value: Buffer }).value.toString(), 'from node-1', 'and kept through the sweep');
  // node-1 was slow: its begin for a slot that moved on is still accepted, to be relayed.
  assert.deepEqual(own.beginHandover(2, [waiting]), [waiting]);
  own.endHandover([arriving]);
  assert.deepEqual(handed, [{ epoch: 3, slots: [arriving] }], 'handed over to the primary in force at the end');
  assert.equal(own.route(arriving), 'elsewhere', 'never served here');
  assert.equal(own.handingOver(arriving), true);
  assert.notEqual(tier.lookup(key), undefined, 'kept until that hand-over ends');
  own.releaseHandout([arriving]);
  for (let i = 0; i < 100 && tier.lookup(key) !== undefined; i++) await new Promise((r) => setImmediate(r));
  assert.equal(tier.lookup(key), undefined, 'then dropped');
  own.endHandover([waiting]);
  assert.deepEqual(handed[1], { epoch: 3, slots: [waiting] }, 'the slow one too, at its end');
  // One whose hand-over never begins: given up after the deadline, nothing passed on, the miss not counted here.
  const never = chained[2] as number;
  assert.equal(own.awaiting(never), true);
  const missed = own.handoversMissed;
  await new Promise((r) => setTimeout(r, 700));
  assert.equal(own.awaiting(never), false);
  assert.equal(own.handingOver(never), false);
  assert.ok(!handed.some((h) => h.slots.includes(never)));
  const stayed = [...Array(SLOT_COUNT).keys()].filter((s) => e2.owner(s)?.id === 'node-2' && e3.owner(s)?.id === 'node-2').length;
  assert.equal(own.handoversMissed - missed, stayed, 'only the slots this node serves count as missed here');
});

test('a slot that moves on and back while its hand-over arrives is served here at its end, with what arrived', async () => {
  const tier = cacheTier();
  const own = new SlotOwnership(tier, () => true, () => 1, { handoverWaitMs: 5000 });
  const handed: number[][] = [];
  own.onHandover = (_ring, slots) => handed.push(slots);
  const { before, e2, e3, chained } = twoJoins();
  const e4 = new CacheRing(4, [member(1), member(2)], 'node-2');
  const slot = chained[0] as number;
  const key = keyIn(slot, 'b');
  own.apply(e2, false, before);
  await swept(own);
  assert.deepEqual(own.beginHandover(2, [slot]), [slot]);
  tier.set(key, { type: 'string', value: Buffer.from('arrived') });
  own.apply(e3);
  own.apply(e4);
  await swept(own);
  assert.equal(own.route(slot), 'importing', 'not served before its hand-over ends');
  assert.equal((tier.lookup(key) as { value: Buffer }).value.toString(), 'arrived', 'what arrived is kept');
  own.endHandover([slot]);
  assert.equal(own.route(slot), 'serve');
  assert.equal((tier.lookup(key) as { value: Buffer }).value.toString(), 'arrived');
  assert.ok(!handed.some((h) => h.includes(slot)), 'not handed on: it is this node\'s again');
});
