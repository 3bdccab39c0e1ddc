// The coordination recipes against a real store on an in-memory SQLite backend.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { SqliteBackend } from '../backend/index.js';
import { ConflictError, InvalidArgumentError, NotFoundError, UnavailableError } from '../errors.js';
import { Store, prefixEnd, type KeyValue } from '../kv/index.js';
import { DeleteWaiters } from './delete-waiters.js';
import { CoordService, SEQUENCE_COUNTER_PREFIX } from './index.js';

let store: Store;
let coord: CoordService;

before(async () => {
  store = new Store({ backend: new SqliteBackend({ path: ':memory:' }) });
  await store.open();
  coord = new CoordService(store);
});

after(async () => {
  coord.close();
  await store.close();
});

const bytes = (s: string): Uint8Array => Buffer.from(s);
const text = (b: Uint8Array): string => Buffer.from(b).toString('utf8');
const lease = async (ttl = 30): Promise<number> => (await store.grantLease(ttl)).id;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const keysUnder = (prefix: string): string[] => store.rangeLatest(prefix, prefixEnd(prefix)).kvs.map((kv) => kv.key);

/** Resolves when `p` settles or after `ms`, telling which. */
async function settledWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const done = await Promise.race([p.then(() => true, () => true), new Promise<boolean>((r) => (timer = setTimeout(() => r(false), ms)))]);
  clearTimeout(timer);
  return done;
}

test('an uncontended lock is held at once; its fencing token is the key createRevision; re-locking with the same lease is re-entrant', async () => {
  const id = await lease();
  const l = await coord.lock('u/lock', { lease: id });
  assert.equal(l.key, `u/lock/${id.toString(16)}`);
  const kv = store.get(l.key) as KeyValue;
  assert.equal(l.fencingToken, kv.createRevision);
  assert.equal(kv.lease, id);
  assert.equal(l.reentrant, false);
  const again = await coord.lock('u/lock', { lease: id, timeoutMs: 0 });
  assert.equal(again.fencingToken, l.fencingToken);
  assert.equal(again.reentrant, true);
  await coord.unlock(l);
  assert.equal(store.get(l.key), undefined);
  await assert.rejects(coord.unlock(l), NotFoundError);
});

test('20 contenders: one holder at a time, acquired in createRevision order, tokens strictly increasing', async () => {
  const leases = await Promise.all(Array.from({ length: 20 }, () => lease()));
  let inside = 0;
  const order: number[] = [];
  await Promise.all(
    leases.map(async (id) => {
      const l = await coord.lock('fifo', { lease: id, timeoutMs: 10_000 });
      assert.equal(inside, 0, 'two holders at once');
      inside++;
      order.push(l.fencingToken);
      await sleep(2);
      inside--;
      await coord.unlock(l);
    }),
  );
  assert.equal(order.length, 20);
  for (let i = 1; i < order.length; i++) assert.ok((order[i] as number) > (order[i - 1] as number), `token ${order[i]} after ${order[i - 1]}`);
  assert.deepEqual(keysUnder('fifo/'), []);
  assert.equal(coord.waiting, 0);
});

test('a waiter watches only its predecessor: the delete of an unrelated key wakes nobody', async () => {
  const w = new DeleteWaiters(store);
  await store.put('dw/a', bytes('1'));
  await store.put('dw/b', bytes('1'));
  let woke = false;
  const p = w.wait(['dw/a'], new AbortController().signal).then(() => (woke = true));
  await store.deleteRange('dw/b', undefined);
  await sleep(10);
  assert.equal(woke, false);
  assert.equal(w.size, 1);
  await store.deleteRange('dw/a', undefined);
  await p;
  assert.equal(w.size, 0);
});

test('the third in line waits for the second, not the holder; when the second withdraws it waits for the holder', async () => {
  const [a, b, c] = await Promise.all([lease(), lease(), lease()]);
  const la = await coord.lock('chain', { lease: a as number });
  const ctlB = new AbortController();
  const pb = coord.lock('chain', { lease: b as number, signal: ctlB.signal });
  const pc = coord.lock('chain', { lease: c as number, timeoutMs: 5000 });
  await sleep(20);
  assert.equal(coord.lockState('chain').waiters.length, 2);
  ctlB.abort(new Error('caller gave up'));
  await assert.rejects(pb, /caller gave up/);
  assert.equal(store.get(`chain/${(b as number).toString(16)}`), undefined, 'b withdrew its key');
  assert.equal(await settledWithin(pc, 30), false, 'c still waits for the holder');
  await coord.unlock(la);
  const lc = await pc;
  assert.ok(lc.fencingToken > la.fencingToken);
  await coord.unlock(lc);
});

test('timeouts: timeoutMs 0 tries once; a timed-out waiter gets a conflict naming the holder and its key is withdrawn', async () => {
  const [a, b] = await Promise.all([lease(), lease()]);
  const la = await coord.lock('to', { lease: a as number });
  const bKey = `to/${(b as number).toString(16)}`;
  await assert.rejects(coord.lock('to', { lease: b as number, timeoutMs: 0 }), (e: unknown) => {
    assert.ok(e instanceof ConflictError);
    assert.equal(e.details?.reason, 'timeout');
    assert.equal(e.details?.holder, la.key);
    return true;
  });
  assert.equal(store.get(bKey), undefined);
  const started = Date.now();
  await assert.rejects(coord.lock('to', { lease: b as number, timeoutMs: 150 }), ConflictError);
  assert.ok(Date.now() - started >= 140);
  assert.equal(store.get(bKey), undefined);
  assert.deepEqual(keysUnder('to/'), [la.key]);
  await coord.unlock(la);
});

test('an abort that fires before ownership is seen wins: the call fails and leaves no key, even on a free lock', async () => {
  const id = await lease();
  const ctl = new AbortController();
  const p = coord.lock('aw', { lease: id, signal: ctl.signal });
  ctl.abort(new Error('changed my mind'));
  await assert.rejects(p, /changed my mind/);
  assert.deepEqual(keysUnder('aw/'), []);
  const aborted = AbortSignal.abort(new Error('already'));
  await assert.rejects(coord.lock('aw', { lease: id, signal: aborted }), /already/);
  assert.deepEqual(keysUnder('aw/'), []);
});

test('a holder whose lease is revoked loses the lock and the next waiter acquires it', async () => {
  const [a, b] = await Promise.all([lease(), lease()]);
  const la = await coord.lock('rv', { lease: a as number });
  const pb = coord.lock('rv', { lease: b as number, timeoutMs: 5000 });
  await sleep(10);
  await store.revokeLease(a as number);
  const lb = await pb;
  assert.ok(lb.fencingToken > la.fencingToken);
  await coord.unlock(lb);
});

test('a waiter whose own lease expires is told so (not_found) instead of waiting for ever', async () => {
  const [a, b] = await Promise.all([lease(), lease()]);
  const la = await coord.lock('lost', { lease: a as number });
  const pb = coord.lock('lost', { lease: b as number, timeoutMs: 5000 });
  await sleep(10);
  await store.revokeLease(b as number);
  await assert.rejects(pb, (e: unknown) => e instanceof NotFoundError && e.details?.reason === 'lease_lost');
  await coord.unlock(la);
});

test('bad input: no lease, unknown lease, empty name, bad timeout, a key that is not a contender key', async () => {
  await assert.rejects(coord.lock('x', { lease: 0 }), InvalidArgumentError);
  await assert.rejects(coord.lock('x', { lease: 123456789 }), NotFoundError);
  await assert.rejects(coord.lock('', { lease: 1 }), InvalidArgumentError);
  await assert.rejects(coord.lock('x', { lease: await lease(), timeoutMs: -1 }), InvalidArgumentError);
  await store.put('plain/abc', bytes('not a lock'));
  await assert.rejects(coord.unlock({ key: 'plain/abc' }), InvalidArgumentError);
  await assert.rejects(coord.unlock({ key: 'plain/xyz' }), InvalidArgumentError);
  assert.equal(text((store.get('plain/abc') as KeyValue).value), 'not a lock');
});

test('nested names are separate locks: a holder of a/b does not block a', async () => {
  const [a, b] = await Promise.all([lease(), lease()]);
  const inner = await coord.lock('nest/a/b', { lease: a as number });
  const outer = await coord.lock('nest/a', { lease: b as number, timeoutMs: 0 });
  assert.equal(coord.lockState('nest/a').holder?.key, outer.key);
  await coord.unlock(inner);
  await coord.unlock(outer);
});

test('elections: campaign, leader, proclaim only by the leader, resign hands over, observe reports each change', async () => {
  const [a, b] = await Promise.all([lease(), lease()]);
  const seen: string[] = [];
  const ctl = new AbortController();
  const observing = (async () => {
    for await (const kv of coord.observe('el', { signal: ctl.signal })) seen.push(text(kv.value));
  })();
  const la = await coord.campaign('el', bytes('node-a'), { lease: a as number });
  assert.equal(text((coord.leader('el') as KeyValue).value), 'node-a');
  const pb = coord.campaign('el', bytes('node-b'), { lease: b as number });
  await sleep(10);
  const bKey = `el/${(b as number).toString(16)}`;
  await assert.rejects(coord.proclaim('el', { key: bKey }, bytes('usurper')), (e: unknown) => {
    assert.ok(e instanceof ConflictError);
    assert.equal(e.details?.reason, 'not_leader');
    assert.equal(e.details?.leader, la.key);
    return true;
  });
  await coord.proclaim('el', la, bytes('node-a:v2'));
  assert.equal(text((coord.leader('el') as KeyValue).value), 'node-a:v2');
  await coord.resign('el', la);
  const lb = await pb;
  assert.ok(lb.fencingToken > la.fencingToken);
  assert.equal(text((coord.leader('el') as KeyValue).value), 'node-b');
  await assert.rejects(coord.proclaim('el', la, bytes('stale')), ConflictError);
  await sleep(10);
  ctl.abort();
  await observing;
  assert.deepEqual(seen, ['node-a', 'node-a:v2', 'node-b']);
  await coord.resign('el', lb);
  assert.equal(coord.leader('el'), undefined);
});

test('campaigning again with the same lease keeps the place and updates the value', async () => {
  const a = await lease();
  const first = await coord.campaign('re', bytes('v1'), { lease: a });
  const second = await coord.campaign('re', bytes('v2'), { lease: a });
  assert.equal(second.fencingToken, first.fencingToken);
  assert.equal(text((coord.leader('re') as KeyValue).value), 'v2');
  await coord.resign('re', second);
});

test('50 concurrent sequential creates get unique, gap-free, increasing, 20-digit keys; numbers are never reused', async () => {
  const made = await Promise.all(Array.from({ length: 50 }, (_, i) => coord.createSequential('q/jobs', bytes(`job ${i}`))));
  const seqs = made.map((m) => m.sequence).sort((x, y) => x - y);
  assert.deepEqual(seqs, Array.from({ length: 50 }, (_, i) => i + 1));
  for (const m of made) {
    assert.match(m.key, /^q\/jobs\/\d{20}$/);
    assert.equal(Number(m.key.slice('q/jobs/'.length)), m.sequence);
  }
  const byRevision = [...made].sort((x, y) => x.revision - y.revision);
  for (let i = 1; i < byRevision.length; i++) assert.ok((byRevision[i] as { sequence: number }).sequence > (byRevision[i - 1] as { sequence: number }).sequence);
  await store.deleteRange('q/jobs/', prefixEnd('q/jobs/'));
  const next = await coord.createSequential('q/jobs', bytes('after delete'));
  assert.equal(next.sequence, 51);
  assert.deepEqual(keysUnder('q/jobs/'), ['q/jobs/00000000000000000051']);
});

test('an ephemeral sequential key goes with its lease; a failed create does not burn a number', async () => {
  const id = await lease();
  const e = await coord.createSequential('eph', bytes('x'), { lease: id });
  assert.equal((store.get(e.key) as KeyValue).lease, id);
  await assert.rejects(coord.createSequential('eph', bytes('x'), { lease: 987654321 }), NotFoundError);
  await store.revokeLease(id);
  assert.equal(store.get(e.key), undefined);
  const next = await coord.createSequential('eph', bytes('y'));
  assert.equal(next.sequence, e.sequence + 1);
});

test('a corrupted counter is a conflict, a prefix ending in / is rejected', async () => {
  await store.put(`${SEQUENCE_COUNTER_PREFIX}bad`, bytes('banana'));
  await assert.rejects(coord.createSequential('bad', bytes('x')), ConflictError);
  await assert.rejects(coord.createSequential('bad/', bytes('x')), InvalidArgumentError);
});

test('close() fails every wait with unavailable and withdraws the waiters; later calls fail at once', async () => {
  const s = new Store({ backend: new SqliteBackend({ path: ':memory:' }) });
  await s.open();
  const c = new CoordService(s);
  const [a, b] = [(await s.grantLease(30)).id, (await s.grantLease(30)).id];
  await c.lock('z', { lease: a });
  const pb = c.lock('z', { lease: b });
  const ctl = new AbortController();
  const obs = (async () => {
    const got: KeyValue[] = [];
    for await (const kv of c.observe('z', { signal: ctl.signal })) got.push(kv);
    return got;
  })();
  await sleep(10);
  c.close();
  await assert.rejects(pb, UnavailableError);
  assert.equal((await obs).length, 1);
  assert.equal(s.get(`z/${b.toString(16)}`), undefined);
  await assert.rejects(c.lock('z', { lease: b }), UnavailableError);
  await s.close();
});
