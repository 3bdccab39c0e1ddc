// The watch hub against a real store on an in-memory SQLite backend, with sinks whose congestion the test controls.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { SqliteBackend } from '../backend/index.js';
import { CompactedError, FutureRevisionError, InvalidArgumentError } from '../errors.js';
import { Store, prefixEnd } from '../kv/index.js';
import { Metrics } from '../obs/index.js';
import { WatchHub, type WatchBatch, type WatchSink } from './index.js';

/** A sink that records what it is sent and is congested while `jammed` is set. */
class RecordingSink implements WatchSink {
  readonly transport = 'test';
  readonly batches: WatchBatch[] = [];
  readonly progress_: number[] = [];
  compactedAt: number | undefined;
  jammed = false;
  private drains: (() => void)[] = [];

  congested(): boolean {
    return this.jammed;
  }
  onDrain(cb: () => void): void {
    this.drains.push(cb);
  }
  events(b: WatchBatch): void {
    this.batches.push(b);
  }
  progress(revision: number): void {
    this.progress_.push(revision);
  }
  compacted(c: number): void {
    this.compactedAt = c;
  }
  unjam(): void {
    this.jammed = false;
    const d = this.drains.splice(0);
    for (const cb of d) cb();
  }
  revisions(): number[] {
    return this.batches.map((b) => b.revision);
  }
  keys(): string[] {
    return this.batches.flatMap((b) => b.events.map((e) => `${e.type}:${e.kv.key}@${b.revision}`));
  }
}

const enc = (s: string): Uint8Array => Buffer.from(s);

async function until(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Waits until the hub has fanned out every committed revision (the fan-out runs after the write resolves). */
async function fannedOut(hub: WatchHub): Promise<void> {
  await until(() => hub.deliveredRevision === hub.revision, 'the fan-out');
}

let store: Store;
let metrics: Metrics;

before(async () => {
  store = new Store({ backend: new SqliteBackend({ path: ':memory:' }) });
  await store.open();
  metrics = new Metrics({ leaseCount: () => 0, keyCount: () => 0, revision: () => store.revision, compactRevision: () => 0 });
});

after(async () => {
  await store.close();
});

test('a congested watcher is parked without delaying others, then gets every revision exactly once', async () => {
  const hub = new WatchHub(store, metrics);
  try {
    const fast = new RecordingSink();
    const slow = new RecordingSink();
    hub.watch({ key: 'c/', rangeEnd: prefixEnd('c/') }, fast);
    hub.watch({ key: 'c/', rangeEnd: prefixEnd('c/') }, slow);
    const first = store.revision + 1;
    await store.put('c/0', enc('0'));
    await fannedOut(hub);
    slow.jammed = true;
    for (let i = 1; i <= 20; i++) await store.put(`c/${i}`, enc(String(i)));
    await fannedOut(hub);
    assert.equal(fast.batches.length, 21, 'the fast watcher got every revision while the slow one was congested');
    assert.equal(slow.batches.length, 1);
    assert.equal(hub.stats.unsynced, 1);
    const gauge = await metrics.watchers.get();
    assert.equal(gauge.values.find((v) => v.labels.state === 'unsynced')?.value, 1);
    slow.unjam();
    await until(() => hub.stats.unsynced === 0, 'the slow watcher to catch up');
    await store.put('c/last', enc('x'));
    await fannedOut(hub);
    const expected = Array.from({ length: 22 }, (_, i) => first + i);
    assert.deepEqual(slow.revisions(), expected);
    assert.deepEqual(fast.revisions(), expected);
  } finally {
    hub.close();
  }
});

test('a watch older than the ring is caught up from the backend log in chunks while writes continue', async () => {
  const hub = new WatchHub(store, metrics, { ringSize: 5, catchUpEntries: 7 });
  try {
    const from = store.revision + 1;
    for (let i = 0; i < 40; i++) await store.put(`log/${i % 3}`, enc(String(i)));
    await store.deleteRange('log/1', undefined);
    const sink = new RecordingSink();
    hub.watch({ key: 'log/', rangeEnd: prefixEnd('log/'), fromRevision: from, prevKv: true }, sink);
    assert.equal(hub.stats.unsynced, 1);
    // Writes racing the catch-up must neither be lost nor duplicated.
    const racing = (async () => {
      for (let i = 0; i < 10; i++) await store.put(`log/r${i}`, enc('r'));
    })();
    await racing;
    await until(() => hub.stats.unsynced === 0, 'catch-up');
    await fannedOut(hub);
    const head = store.revision;
    assert.deepEqual(sink.revisions(), Array.from({ length: head - from + 1 }, (_, i) => from + i));
    const del = sink.batches.find((b) => b.events[0]?.type === 'delete');
    assert.equal(del?.events[0]?.kv.key, 'log/1');
    const fourth = sink.batches[3]?.events[0];
    assert.equal(Buffer.from(fourth?.prevKv?.value ?? []).toString(), '0', 'prevKv comes from the log too');
  } finally {
    hub.close();
  }
});

test('single keys, ranges, filters and prevKv select the right events; batches share serialization', async () => {
  const hub = new WatchHub(store, metrics);
  try {
    const one = new RecordingSink();
    const onePrev = new RecordingSink();
    const range = new RecordingSink();
    const noPut = new RecordingSink();
    const noDelete = new RecordingSink();
    hub.watch({ key: 'f/b' }, one);
    hub.watch({ key: 'f/b', prevKv: true }, onePrev);
    hub.watch({ key: 'f/a', rangeEnd: 'f/c' }, range);
    hub.watch({ key: 'f/', rangeEnd: prefixEnd('f/'), noPut: true }, noPut);
    hub.watch({ key: 'f/', rangeEnd: prefixEnd('f/'), noDelete: true }, noDelete);
    await store.put('f/b', enc('1'));
    await store.txn({
      compare: [],
      success: [
        { type: 'put', key: 'f/a', value: enc('a') },
        { type: 'put', key: 'f/b', value: enc('2') },
        { type: 'put', key: 'f/c', value: enc('c') },
      ],
      failure: [],
    });
    await store.deleteRange('f/', prefixEnd('f/'));
    await fannedOut(hub);
    const r = store.revision;
    assert.deepEqual(one.keys(), [`put:f/b@${r - 2}`, `put:f/b@${r - 1}`, `delete:f/b@${r}`]);
    assert.equal(one.batches[1]?.events[0]?.prevKv, undefined, 'no prevKv unless asked');
    assert.equal(Buffer.from(onePrev.batches[1]?.events[0]?.prevKv?.value ?? []).toString(), '1');
    assert.deepEqual(range.keys(), [`put:f/b@${r - 2}`, `put:f/a@${r - 1}`, `put:f/b@${r - 1}`, `delete:f/a@${r}`, `delete:f/b@${r}`]);
    assert.deepEqual(noPut.keys(), [`delete:f/a@${r}`, `delete:f/b@${r}`, `delete:f/c@${r}`]);
    assert.equal(noDelete.batches.length, 2);

    // Two watchers of the same key share one serialization per revision.
    const other = new RecordingSink();
    hub.watch({ key: 'f/z' }, other);
    const twin = new RecordingSink();
    hub.watch({ key: 'f/z' }, twin);
    await store.put('f/z', enc('z'));
    await fannedOut(hub);
    let computed = 0;
    const a = other.batches[0]?.memo('x', () => `${++computed}`);
    const b = twin.batches[0]?.memo('x', () => `${++computed}`);
    assert.equal(a, '1');
    assert.equal(b, '1');
    assert.equal(computed, 1);
  } finally {
    hub.close();
  }
});

test('watch arguments are checked: compacted, future and malformed requests throw typed errors', async () => {
  const hub = new WatchHub(store, metrics);
  try {
    await store.put('k/1', enc('1'));
    await store.put('k/1', enc('2'));
    const head = store.revision;
    assert.throws(() => hub.watch({ key: 'k/1', fromRevision: head + 2 }, new RecordingSink()), FutureRevisionError);
    assert.throws(() => hub.watch({ key: '' }, new RecordingSink()), InvalidArgumentError);
    assert.throws(() => hub.watch({ key: 'b', rangeEnd: 'a' }, new RecordingSink()), InvalidArgumentError);
    assert.throws(() => hub.watch({ key: 'a', fromRevision: -1 }, new RecordingSink()), InvalidArgumentError);
    await store.compact(head - 1);
    assert.throws(
      () => hub.watch({ key: 'k/1', fromRevision: head - 1 }, new RecordingSink()),
      (e: unknown) => e instanceof CompactedError && e.compactRevision === head - 1,
    );
    const ok = new RecordingSink();
    hub.watch({ key: 'k/1', fromRevision: head }, ok);
    await until(() => ok.batches.length === 1, 'the revision right after the compaction');
    assert.equal(hub.watcherCount, 1);
  } finally {
    hub.close();
  }
  assert.equal(hub.watcherCount, 0);
});

test('a watcher parked behind a compaction is told so and removed', async () => {
  const hub = new WatchHub(store, metrics);
  try {
    const sink = new RecordingSink();
    hub.watch({ key: 'cp' }, sink);
    sink.jammed = true;
    await store.put('cp', enc('1'));
    await store.put('cp', enc('2'));
    assert.equal(hub.stats.unsynced, 1);
    await store.compact(store.revision);
    sink.unjam();
    await until(() => sink.compactedAt !== undefined, 'the compacted notice');
    assert.equal(sink.compactedAt, store.revision);
    assert.equal(sink.batches.length, 0);
    assert.equal(hub.watcherCount, 0);
  } finally {
    hub.close();
  }
});

test('idle watchers get progress notifications with the current revision', async () => {
  const hub = new WatchHub(store, metrics, { progressIntervalMs: 40 });
  try {
    const idle = new RecordingSink();
    const w = hub.watch({ key: 'idle/key' }, idle);
    await store.put('elsewhere', enc('x'));
    await until(() => idle.progress_.length > 0, 'a progress notification');
    assert.equal(idle.progress_.at(-1), store.revision);
    assert.equal(w.progressRevision, store.revision);
    assert.equal(hub.progressRevision([w]), store.revision);
  } finally {
    hub.close();
  }
});

test('the ring stays within its count and byte budget', async () => {
  const hub = new WatchHub(store, metrics, { ringSize: 8, ringBytes: 4096 });
  try {
    for (let i = 0; i < 20; i++) await store.put('ring', enc('v'.repeat(100)));
    assert.ok(hub.stats.ringRevisions <= 8);
    await store.put('ring', new Uint8Array(10_000));
    assert.equal(hub.stats.ringRevisions, 1, 'one oversized revision evicts the rest but stays');
    assert.equal(hub.stats.ringFloor, store.revision);
  } finally {
    hub.close();
  }
});
