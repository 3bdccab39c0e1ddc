/** Unit tests of the lessor's expiry queue with a fake clock: order, renew, revoke, stale heap entries. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Lessor } from './lessor.js';
import { prng, TEST_SEED } from '../../test/helpers/random.js';


const SEED = TEST_SEED;

function fakeClock(start = 1_000_000): { now: () => number; set: (t: number) => void; advance: (ms: number) => void } {
  let t = start;
  return { now: () => t, set: (v) => (t = v), advance: (ms) => (t += ms) };
}

test('expired() reports leases whose expiry has passed, oldest first, and nothing early', () => {
  const clock = fakeClock();
  const l = new Lessor(clock.now);
  l.grant(1, 5, 1_005_000);
  l.grant(2, 1, 1_001_000);
  l.grant(3, 3, 1_003_000);
  assert.deepEqual(l.expired(), []);
  assert.equal(l.nextExpiry(), 1_001_000);
  clock.set(1_000_999);
  assert.deepEqual(l.expired(), []);
  clock.set(1_001_000); // expiry is inclusive: at expiresAt the lease is expired
  assert.deepEqual(l.expired(), [2]);
  clock.set(1_010_000);
  assert.deepEqual(l.expired(), [2, 3, 1]);
});

test('an expired lease is reported on every call until it is revoked or renewed', () => {
  const clock = fakeClock();
  const l = new Lessor(clock.now);
  l.grant(7, 1, 1_001_000);
  clock.advance(2000);
  assert.deepEqual(l.expired(), [7]);
  assert.deepEqual(l.expired(), [7]);
  assert.equal(l.nextExpiry(), 1_001_000);
  l.revoke(7);
  assert.deepEqual(l.expired(), []);
  assert.equal(l.nextExpiry(), undefined);
  assert.equal(l.size, 0);
});

test('renew pushes the expiry to now + TTL and leaves no stale report behind', () => {
  const clock = fakeClock();
  const l = new Lessor(clock.now);
  l.grant(1, 10, 1_010_000);
  l.grant(2, 4, 1_004_000);
  clock.set(1_003_000);
  assert.equal(l.renew(2), 1_007_000);
  assert.equal(l.get(2)?.expiresAt, 1_007_000);
  assert.equal(l.nextExpiry(), 1_007_000);
  clock.set(1_005_000); // past the old expiry of 2: the stale heap entry must not report it
  assert.deepEqual(l.expired(), []);
  clock.set(1_007_000);
  assert.deepEqual(l.expired(), [2]);
  // A lease that has already expired cannot be renewed (etcd: the keep-alive answers TTL 0).
  assert.equal(l.renew(2), undefined);
  assert.equal(l.renew(99), undefined);
});

test('re-granting an id replaces its expiry and keeps its keys', () => {
  const clock = fakeClock();
  const l = new Lessor(clock.now);
  l.grant(1, 1, 1_001_000);
  l.attach(1, 'a');
  l.grant(1, 60, 1_060_000);
  clock.set(1_002_000);
  assert.deepEqual(l.expired(), []);
  assert.deepEqual([...(l.get(1)?.keys ?? [])], ['a']);
  // Re-granting with the same expiry must not report the lease twice.
  l.grant(1, 60, 1_060_000);
  clock.set(1_060_000);
  assert.deepEqual(l.expired(), [1]);
});

test('revoke returns the lease with its keys; a revoked id granted again starts fresh', () => {
  const clock = fakeClock();
  const l = new Lessor(clock.now);
  l.grant(5, 2, 1_002_000);
  l.attach(5, 'x');
  l.attach(5, 'y');
  l.detach(5, 'x');
  l.attach(0, 'ignored'); // lease 0 means "no lease"
  l.attach(6, 'unknown lease');
  const gone = l.revoke(5);
  assert.deepEqual([...(gone?.keys ?? [])], ['y']);
  assert.equal(l.revoke(5), undefined);
  l.grant(5, 9, 1_009_000);
  assert.deepEqual([...(l.get(5)?.keys ?? [])], []);
  clock.set(1_002_500); // the first grant's expiry: stale
  assert.deepEqual(l.expired(), []);
  clock.set(1_009_000);
  assert.deepEqual(l.expired(), [5]);
  assert.equal(l.get(6), undefined);
});

test('random grants, renews and revokes against a model: expired() and nextExpiry() stay exact', () => {
  const rnd = prng(SEED);
  const clock = fakeClock();
  const l = new Lessor(clock.now);
  const model = new Map<number, { ttl: number; at: number }>();
  for (let step = 0; step < 20_000; step++) {
    const where = `seed ${SEED} step ${step}`;
    const id = 1 + Math.floor(rnd() * 60);
    const r = rnd();
    if (r < 0.3) {
      const ttl = 1 + Math.floor(rnd() * 20);
      const at = clock.now() + ttl * 1000 - Math.floor(rnd() * 3) * 500;
      l.grant(id, ttl, at);
      model.set(id, { ttl, at });
    } else if (r < 0.45) {
      const m = model.get(id);
      const want = m !== undefined && m.at > clock.now() ? clock.now() + m.ttl * 1000 : undefined;
      assert.equal(l.renew(id), want, `${where}: renew(${id})`);
      if (m !== undefined && want !== undefined) m.at = want;
    } else if (r < 0.55) {
      l.revoke(id);
      model.delete(id);
    } else if (r < 0.8) {
      clock.advance(Math.floor(rnd() * 1500));
    } else {
      const now = clock.now();
      const want = [...model.entries()].filter(([, m]) => m.at <= now);
      const got = l.expired();
      assert.deepEqual(
        [...got].sort((a, b) => a - b),
        want.map(([i]) => i).sort((a, b) => a - b),
        `${where}: expired() at ${now}`,
      );
      const ats = got.map((i) => model.get(i)?.at as number);
      for (let i = 1; i < ats.length; i++) assert.ok((ats[i - 1] as number) <= (ats[i] as number), `${where}: expired() oldest first: ${ats}`);
      const next = model.size === 0 ? undefined : Math.min(...[...model.values()].map((m) => m.at));
      assert.equal(l.nextExpiry(), next, `${where}: nextExpiry()`);
      assert.equal(l.size, model.size, `${where}: size`);
    }
  }
});
