/**
 * Unit tests of the cache tier with a fake clock and a seeded random source: TTLs and the active
 * expiry cycle, every eviction policy with Redis's sampling, the LFU counter and its decay, SCAN
 * completeness under concurrent writes, per-namespace statistics and CONFIG.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { OutOfMemoryError } from '../errors.js';
import { prng, TEST_SEED } from '../../test/helpers/random.js';
import { CacheTier } from './tier.js';
import type { CacheNamespace, CacheTierOptions } from './types.js';
import type { CacheValue } from './values.js';

const SEED = TEST_SEED;

function fakeClock(start = 1_700_000_000_000): { now: () => number; advance: (ms: number) => void } {
  let t = start;
  return { now: () => t, advance: (ms) => (t += ms) };
}

function str(s: string): CacheValue {
  return { type: 'string', value: Buffer.from(s) };
}

function tier(opts: Partial<CacheTierOptions> = {}, clock = fakeClock()): { t: CacheTier; clock: ReturnType<typeof fakeClock> } {
  const ns: CacheNamespace = { prefix: '' };
  const t = new CacheTier({ namespaces: () => ns, now: clock.now, random: prng(SEED), ...opts });
  return { t, clock };
}

/** Bytes one string entry of `key`/`value` is counted as (measured, so tests do not depend on the constants). */
function entrySize(key: string, value: string): number {
  const { t } = tier();
  t.set(key, str(value));
  return t.usedMemory();
}

test(`[seed ${SEED}] a key with a TTL is gone after it (lazy expiry), counted as expired and announced`, () => {
  const { t, clock } = tier();
  const expired: string[] = [];
  t.on('expired', (k) => expired.push(k));
  t.set('query:123', str('result'), { expireAtMs: clock.now() + 3_600_000 });
  t.set('user:123', str('John Doe'));
  assert.equal(t.ttlMs('query:123'), 3_600_000);
  assert.equal(t.ttlMs('user:123'), -1);
  assert.equal(t.ttlMs('nope'), -2);
  clock.advance(3_599_999);
  assert.equal(t.lookup('query:123')?.type, 'string');
  clock.advance(1);
  assert.equal(t.lookup('query:123'), undefined);
  assert.deepEqual(expired, ['query:123']);
  const info = t.info();
  assert.equal(info.expired_keys, 1);
  assert.equal(info.keyspace_hits, 1);
  assert.equal(info.keyspace_misses, 1);
  assert.equal(t.dbsize(), 1);
});

test('a namespace default TTL applies to writes without one; null and keepTtl are honoured; a past expiry deletes', () => {
  const clock = fakeClock();
  const t = new CacheTier({ namespaces: (k) => (k.startsWith('s:') ? { prefix: 's:', defaultTtl: 60 } : { prefix: '' }), now: clock.now });
  t.set('s:a', str('x'));
  assert.equal(t.ttlMs('s:a'), 60_000);
  t.set('s:a', str('y'), { keepTtl: true });
  assert.equal(t.ttlMs('s:a'), 60_000);
  t.set('s:a', str('z'), { expireAtMs: null });
  assert.equal(t.ttlMs('s:a'), -1);
  t.set('b', str('x'));
  assert.equal(t.ttlMs('b'), -1);
  assert.equal(t.expireAt('b', clock.now() - 1), true);
  assert.equal(t.peek('b'), undefined);
  t.set('c', str('x'), { expireAtMs: clock.now() - 5 });
  assert.equal(t.peek('c'), undefined);
});

test('a key outside every memory namespace is refused by set', () => {
  const t = new CacheTier({ namespaces: (k) => (k.startsWith('cache:') ? { prefix: 'cache:' } : undefined) });
  assert.equal(t.isMemoryKey('cache:x'), true);
  assert.equal(t.isMemoryKey('app/x'), false);
  assert.throws(() => t.set('app/x', str('v')), { code: 'invalid_argument' });
});

test('setMany writes every key or none: keys outside memory namespaces and maxmemory are checked before the first write', async () => {
  const t = new CacheTier({ namespaces: (k) => (k.startsWith('cache:') ? { prefix: 'cache:' } : k.startsWith('ttl:') ? { prefix: 'ttl:', defaultTtl: 60 } : undefined) });
  assert.throws(() => t.setMany(['cache:a', 'app/x'], [str('1'), str('2')]), { code: 'invalid_argument' });
  assert.equal(t.peek('cache:a'), undefined, 'nothing written when one key is not a memory key');
  // A key given twice ends with its last value; each key gets its own namespace's default TTL.
  t.setMany(['cache:a', 'ttl:b', 'cache:a'], [str('1'), str('2'), str('3')]);
  assert.deepEqual(t.peek('cache:a'), str('3'));
  assert.equal(t.ttlMs('cache:a'), -1);
  assert.ok(t.ttlMs('ttl:b') > 59_000);
  // Under the limit when it starts: written whole even if it ends over it (memory is made once,
  // before the first key, as Redis does before a command); over the limit: refused whole.
  await t.setConfig('maxmemory-policy', 'noeviction');
  await t.setConfig('maxmemory', String(t.usedMemory() + 10));
  const big = 'x'.repeat(1000);
  t.setMany(['cache:m1', 'cache:m2', 'cache:m3'], [str(big), str(big), str(big)]);
  assert.equal(t.keys('cache:m*').length, 3);
  assert.throws(() => t.setMany(['cache:n1', 'cache:n2'], [str(big), str(big)]), OutOfMemoryError);
  assert.equal(t.keys('cache:n*').length, 0);
});

test(`[seed ${SEED}] the active expiry cycle removes expired keys without anyone reading them, and leaves live ones`, () => {
  const { t, clock } = tier();
  for (let i = 0; i < 2000; i++) t.set(`tmp:${i}`, str('v'), { expireAtMs: clock.now() + 1000 });
  for (let i = 0; i < 1000; i++) t.set(`long:${i}`, str('v'), { expireAtMs: clock.now() + 3_600_000 });
  for (let i = 0; i < 1000; i++) t.set(`keep:${i}`, str('v'));
  clock.advance(1001);
  // hz 10 for 3 seconds: 30 cycles.
  for (let c = 0; c < 30; c++) t.activeExpireCycle(Infinity);
  const left = t.keys('tmp:*');
  // Keys left are at most Redis's acceptable stale share of the keys with a TTL (10 %), and usually none.
  assert.ok(t.volatileCount() - 1000 <= 0.1 * t.volatileCount() + 20, `too many expired keys left: ${t.volatileCount() - 1000}`);
  assert.equal(left.length, 0, 'KEYS never shows an expired key');
  assert.equal(t.keys('long:*').length, 1000);
  assert.equal(t.keys('keep:*').length, 1000);
  assert.equal(t.info().expired_keys, 2000);
});

test('the active expiry cycle stops at its time budget', () => {
  const { t, clock } = tier();
  for (let i = 0; i < 50_000; i++) t.set(`tmp:${i}`, str('v'), { expireAtMs: clock.now() + 1 });
  clock.advance(2);
  const removed = t.activeExpireCycle(0);
  assert.ok(removed > 0 && removed < 50_000, `one cycle with no budget runs one round only, removed ${removed}`);
});

test(`[seed ${SEED}] the LFU counter grows logarithmically and decays by one per lfu-decay-time minutes idle`, () => {
  const { t, clock } = tier();
  t.set('k', str('v'));
  assert.equal(t.objectFreq('k'), 5); // LFU_INIT_VAL
  for (let i = 0; i < 100; i++) t.lookup('k');
  const after100 = t.objectFreq('k') as number;
  for (let i = 0; i < 10_000; i++) t.lookup('k');
  const after10k = t.objectFreq('k') as number;
  // Redis's table for lfu-log-factor 10 (redis.conf): 100 hits → 10, 1K → 18, 100K → 142; 10K → about 50.
  // The counter is random: 20,000 simulated runs of Redis's rule gave 6–16 after 100 hits and
  // 36–67 after 10K (median 50); the bounds sit just outside (38–62 failed seed 7 with 65).
  assert.ok(after100 >= 6 && after100 <= 17, `after 100 hits: ${after100}`);
  assert.ok(after10k >= 34 && after10k <= 70, `after 10K hits: ${after10k}`);
  clock.advance(5 * 60_000);
  assert.equal(t.objectFreq('k'), after10k - 5);
  clock.advance(1000 * 60_000);
  assert.equal(t.objectFreq('k'), 0);
  const { t: t2 } = tier();
  void t2.setConfig('lfu-log-factor', '0');
  t2.set('k', str('v'));
  for (let i = 0; i < 100; i++) t2.lookup('k');
  assert.equal(t2.objectFreq('k'), 105, 'factor 0 counts every hit');
});

test(`[seed ${SEED}] allkeys-lru evicts the keys not used recently and keeps used memory at maxmemory`, async () => {
  const size = entrySize('k:000', 'v'.repeat(100));
  const { t, clock } = tier();
  await t.setConfig('maxmemory', String(size * 100));
  await t.setConfig('maxmemory-policy', 'allkeys-lru');
  for (let i = 0; i < 100; i++) t.set(`k:${String(i).padStart(3, '0')}`, str('v'.repeat(100)));
  clock.advance(10_000);
  for (let i = 0; i < 50; i++) t.lookup(`k:${String(i).padStart(3, '0')}`); // the hot half
  clock.advance(10_000);
  const evicted: string[] = [];
  t.on('evicted', (k) => evicted.push(k));
  for (let i = 100; i < 140; i++) t.set(`k:${i}`, str('v'.repeat(100)));
  assert.ok(t.usedMemory() <= size * 101, `used ${t.usedMemory()} > maxmemory + one entry`);
  assert.equal(evicted.length, 39);
  const hotEvicted = evicted.filter((k) => Number(k.slice(2)) < 50).length;
  // Sampling 5 keys into a pool of 16 approximates LRU: the recently used half survives (almost)
  // entirely. Over 2,000 seeds: 0 hot keys evicted in 92 %, at most 3 in 99.85 %, at most 5 in
  // all (random eviction would take ~19). The bound leaves room for the tail, not for a broken LRU.
  assert.ok(hotEvicted <= 6, `${hotEvicted} recently used keys evicted: ${evicted.join(' ')}`);
  assert.equal(t.info().evicted_keys, 39);
  assert.equal(t.info().namespaces[0]?.evicted, 39);
});

test(`[seed ${SEED}] allkeys-lfu keeps frequently used keys over recently inserted ones`, async () => {
  const size = entrySize('k:000', 'v');
  const { t } = tier();
  await t.setConfig('maxmemory', String(size * 100));
  await t.setConfig('maxmemory-policy', 'allkeys-lfu');
  await t.setConfig('maxmemory-samples', '10');
  for (let i = 0; i < 100; i++) t.set(`k:${String(i).padStart(3, '0')}`, str('v'));
  for (let r = 0; r < 50; r++) for (let i = 0; i < 30; i++) t.lookup(`k:${String(i).padStart(3, '0')}`);
  for (let i = 0; i < 200; i++) t.set(`n:${String(i).padStart(3, '0')}`, str('v'));
  const frequentLeft = t.keys('k:0[0-2]?').length;
  assert.equal(frequentLeft, 30, 'every frequently read key survives 200 one-off inserts');
});

test(`[seed ${SEED}] allkeys-lfu evicts the least recently used among keys of one counter (a key inserted just now outlives an older one-off)`, async () => {
  const size = entrySize('k:000', 'v');
  const { t, clock } = tier();
  await t.setConfig('maxmemory', String(size * 40));
  await t.setConfig('maxmemory-policy', 'allkeys-lfu');
  // 40 keys written once, a second apart: every counter is LFU_INIT_VAL, only their age differs.
  for (let i = 0; i < 40; i++) {
    t.set(`k:${String(i).padStart(3, '0')}`, str('v'));
    clock.advance(1000);
  }
  const evicted: number[] = [];
  t.on('evicted', (key: string) => evicted.push(Number(key.slice(2))));
  for (let i = 0; i < 10; i++) {
    t.set(`n:${i}`, str('v'));
    clock.advance(1000);
  }
  // At the limit before a write is allowed (Redis checks before each command): 9 evictions for 10 writes.
  assert.equal(evicted.length, 9);
  // Sampled (5 a round, a pool of 16), so not exactly the 10 oldest, but from the older half,
  // and none of the new keys: with counters tied, Redis's choice would be as likely any of them.
  assert.ok(t.keys('n:*').length === 10, 'every key written just now is still there');
  const mean = evicted.reduce((a, b) => a + b, 0) / evicted.length;
  assert.ok(mean < 15, `evicted ${evicted.join(',')} (the population's mean index is 19.5)`);
});

test(`[seed ${SEED}] volatile-ttl evicts the keys that expire soonest; volatile policies never touch keys without a TTL`, async () => {
  const size = entrySize('k:000', 'v');
  const { t, clock } = tier();
  await t.setConfig('maxmemory', String(size * 60));
  await t.setConfig('maxmemory-policy', 'volatile-ttl');
  await t.setConfig('maxmemory-samples', '10');
  for (let i = 0; i < 20; i++) t.set(`p:${String(i).padStart(3, '0')}`, str('v'));
  for (let i = 0; i < 40; i++) t.set(`t:${String(i).padStart(3, '0')}`, str('v'), { expireAtMs: clock.now() + 1000 * (i + 1) });
  for (let i = 0; i < 10; i++) t.set(`x:${i}`, str('v'));
  assert.equal(t.keys('p:*').length, 20);
  const left = t.keys('t:*').map((k) => Number(k.slice(2))).sort((a, b) => a - b);
  // At the limit before a write is allowed (Redis checks before each command): 9 evictions for 10 writes.
  assert.equal(left.length, 31);
  const evicted = [...Array(40).keys()].filter((i) => !left.includes(i));
  const mean = evicted.reduce((a, b) => a + b, 0) / evicted.length;
  // Sampled, not exact (as in Redis): the evicted keys are among the sooner-expiring ones.
  assert.ok(mean < 12 && Math.max(...evicted) < 30, `evicted ${evicted.join(',')} (the population's mean index is 19.5)`);
  // volatile-lru with no key that has a TTL: nothing can be evicted, so the write is refused.
  const { t: t2 } = tier();
  await t2.setConfig('maxmemory', String(size * 3));
  await t2.setConfig('maxmemory-policy', 'volatile-lru');
  for (let i = 0; i < 4; i++) t2.set(`p:${i}`, str('v'));
  assert.throws(() => t2.set('p:9', str('v')), OutOfMemoryError);
});

test('noeviction refuses writes over maxmemory with Redis wording and still serves reads and deletes', async () => {
  const size = entrySize('k:0', 'v');
  const { t } = tier();
  await t.setConfig('maxmemory', String(size * 2));
  t.set('k:0', str('v'));
  t.set('k:1', str('v'));
  t.set('k:2', str('v')); // at the limit before this write: allowed, as in Redis (checked before a command)
  assert.throws(
    () => t.set('k:3', str('v')),
    (err: unknown) => err instanceof OutOfMemoryError && err.message === "command not allowed when used memory > 'maxmemory'." && err.redisPrefix === 'OOM',
  );
  assert.equal(t.lookup('k:0')?.type, 'string');
  assert.equal(t.delete('k:0'), true);
  assert.equal(t.delete('k:1'), true);
  t.set('k:3', str('v'));
});

test(`[seed ${SEED}] allkeys-random and volatile-random evict within their key sets`, async () => {
  const size = entrySize('k:000', 'v');
  for (const policy of ['allkeys-random', 'volatile-random'] as const) {
    const { t, clock } = tier();
    await t.setConfig('maxmemory', String(size * 50));
    await t.setConfig('maxmemory-policy', policy);
    for (let i = 0; i < 25; i++) t.set(`p:${String(i).padStart(3, '0')}`, str('v'));
    for (let i = 0; i < 100; i++) t.set(`t:${String(i).padStart(3, '0')}`, str('v'), { expireAtMs: clock.now() + 60_000 });
    assert.ok(t.dbsize() <= 51);
    if (policy === 'volatile-random') assert.equal(t.keys('p:*').length, 25);
  }
});

test(`[seed ${SEED}] a full SCAN returns every key present throughout, whatever is added and removed meanwhile`, () => {
  const rnd = prng(SEED + 1);
  const { t } = tier();
  const stable = new Set<string>();
  for (let i = 0; i < 3000; i++) {
    const k = `s:${i}`;
    t.set(k, str('v'));
    stable.add(k);
  }
  for (let i = 0; i < 3000; i++) t.set(`churn:${i}`, str('v'));
  const seen = new Set<string>();
  let cursor = '0';
  let churn = 3000;
  let calls = 0;
  do {
    const r = t.scan(cursor, { count: 37 });
    for (const k of r.keys) seen.add(k);
    cursor = r.cursor;
    calls++;
    // Between calls: delete and add churn keys (which forces slot compaction) and overwrite stable ones.
    for (let j = 0; j < 40; j++) {
      t.delete(`churn:${Math.floor(rnd() * churn)}`);
      t.set(`churn:${churn++}`, str('v'));
    }
    t.set(`s:${Math.floor(rnd() * 3000)}`, str('new value'));
  } while (cursor !== '0' && calls < 10_000);
  assert.equal(cursor, '0', 'the iteration ends');
  for (const k of stable) assert.ok(seen.has(k), `SCAN missed ${k}`);
  const m = t.scan('0', { count: 100_000, match: 's:1?', type: 'string' });
  assert.equal(m.keys.length, 10);
  assert.equal(t.scan('0', { count: 100_000, type: 'hash' }).keys.length, 0);
  assert.throws(() => t.scan('abc'), { message: 'invalid cursor' });
});

test('modified() recounts memory and deletes an emptied collection; flush() empties the tier', () => {
  const { t } = tier();
  t.set('h', { type: 'hash', value: new Map([['f', Buffer.from('v')]]) });
  const before = t.usedMemory();
  const h = t.lookupWrite('h');
  assert.ok(h?.type === 'hash');
  h.value.set('g', Buffer.alloc(1000));
  t.modified('h');
  assert.ok(t.usedMemory() > before + 1000);
  h.value.clear();
  t.modified('h');
  assert.equal(t.peek('h'), undefined);
  assert.equal(t.usedMemory(), 0);
  t.set('a', str('1'));
  t.set('b', str('2'));
  assert.equal(t.flush(), 2);
  assert.equal(t.dbsize(), 0);
  assert.equal(t.randomKey(), undefined);
});

test('per-namespace statistics count hits, misses, keys and memory under the governing prefix', () => {
  const ns = (k: string): CacheNamespace | undefined => (k.startsWith('a:') ? { prefix: 'a:' } : k.startsWith('b:') ? { prefix: 'b:' } : undefined);
  const t = new CacheTier({ namespaces: ns });
  t.set('a:1', str('x'));
  t.set('b:1', str('y'));
  t.lookup('a:1');
  t.lookup('a:2');
  t.lookup('b:2');
  const byPrefix = Object.fromEntries(t.namespaceStats().map((s) => [s.prefix, s]));
  assert.equal(byPrefix['a:']?.hits, 1);
  assert.equal(byPrefix['a:']?.misses, 1);
  assert.equal(byPrefix['b:']?.misses, 1);
  assert.equal(byPrefix['a:']?.keys, 1);
  assert.ok((byPrefix['b:']?.memory ?? 0) > 0);
  t.resetStats();
  assert.equal(t.info().keyspace_hits, 0);
});

test('CONFIG GET matches names by glob and CONFIG SET validates values with Redis wording', async () => {
  const { t } = tier();
  assert.deepEqual(t.getConfig('maxmemory*').map(([n]) => n), ['maxmemory', 'maxmemory-policy', 'maxmemory-samples']);
  assert.equal(await t.setConfig('MAXMEMORY', '1mb'), true);
  assert.deepEqual(t.getConfig('maxmemory'), [['maxmemory', String(1024 * 1024)]]);
  await t.setConfig('maxmemory', '2k');
  assert.equal(t.config.maxmemory, 2000);
  await assert.rejects(t.setConfig('maxmemory-policy', 'lru'), /argument\(s\) must be one of the following: noeviction, allkeys-lru/);
  await assert.rejects(t.setConfig('maxmemory', 'lots'), { code: 'invalid_argument' });
  await assert.rejects(t.setConfig('appendonly', 'yes'), /no data directory/);
  assert.equal(await t.setConfig('save', ''), false);
  assert.deepEqual(t.getConfig('appendonly'), [['appendonly', 'no']]);
});

test('a string is held in its own bytes: a value read earlier never changes when the key is overwritten, and memory follows the size class', () => {
  const { t } = tier();
  t.set('k', str('aaa'));
  const before = t.lookup('k');
  const mem = t.usedMemory();
  t.set('k', str('bbb')); // same size class: rewritten in place
  assert.equal(t.usedMemory(), mem);
  assert.equal(before?.type === 'string' && before.value.toString(), 'aaa');
  const w = t.lookupWrite('k');
  assert.ok(w !== undefined && w.type === 'string');
  w.value[0] = 0x7a; // a caller scribbling on its copy changes nothing stored
  assert.equal(t.peek('k')?.value.toString(), 'bbb');
  for (const v of ['', 'x'.repeat(16), 'y'.repeat(17), 'z'.repeat(5000), 'w'.repeat(4999), 'q']) {
    t.set('k', str(v));
    assert.equal(t.lookup('k')?.value.toString(), v);
    assert.equal(t.typeOf('k'), 'string');
  }
  assert.equal(t.usedMemory(), mem, 'a 1-byte value counts as the 3-byte one did: one 16-byte class');
  t.set('k', { type: 'hash', value: new Map([['f', Buffer.from('v')]]) });
  assert.equal(t.typeOf('k'), 'hash');
  t.set('k', str('again'));
  assert.equal(t.lookup('k')?.value.toString(), 'again');
  assert.equal(t.typeOf('nope'), undefined);
});
