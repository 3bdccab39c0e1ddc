/**
 * Pipelined commits on SQLite (issue 17 target 1): the store keeps several write batches in
 * flight, queued behind one another on the writer thread, which makes the ones waiting together
 * in one transaction. What users must not notice: every write still gets its own revision, in
 * order and without gaps, a compare sees the writes of batches still in flight, every acknowledged
 * write is in the database after a reopen, and a batch planned on one that failed is never
 * written (it is planned again instead).
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { SqliteBackend, type CommitBatch } from '../../src/backend/index.js';
import { Store } from '../../src/kv/index.js';
import type { LogEntry } from '../../src/mvcc/index.js';
import { tempDir } from '../helpers/node.js';
import { prng, TEST_SEED } from '../helpers/random.js';

const text = (v: Uint8Array): string => Buffer.from(v).toString();

test('concurrent writes on a SQLite file: chained commits, one revision per write in order, compares see writes in flight, all durable after reopen', async (t) => {
  const tmp = tempDir('beacon-sqlite-pipeline-');
  const path = join(tmp.dir, 'beacon.db');
  let store: Store | undefined;
  try {
    const backend = new SqliteBackend({ path });
    store = new Store({ backend });
    await store.open();
    const s = store;
    const rnd = prng(TEST_SEED);
    // Every acknowledged write: revision → [key, value].
    const acked = new Map<number, [string, string]>();
    const ack = (revision: number, key: string, value: string): void => {
      assert.equal(acked.has(revision), false, `revision ${revision} was answered twice`);
      acked.set(revision, [key, value]);
    };
    let increments = 0;
    const writers = Array.from({ length: 64 }, async (_, w) => {
      for (let i = 0; i < 40; i++) {
        // Spread over time, so writes arrive while batches are in flight (as requests from a network do).
        await new Promise((r) => setTimeout(r, rnd() * 3));
        if (w % 8 === 0) {
          // Compare-and-swap increments of one counter: each must see the increments still in flight.
          for (;;) {
            const cur = s.rangeLatest('counter', undefined).kvs[0];
            const n = cur === undefined ? 0 : Number(text(cur.value));
            const value = String(n + 1);
            const res = await s.txn({
              compare: [{ key: 'counter', target: 'modRevision', result: '=', operand: cur?.modRevision ?? 0 }],
              success: [{ type: 'put', key: 'counter', value: Buffer.from(value), lease: 0, prevKv: false }],
              failure: [],
            });
            if (res.succeeded) {
              ack(res.revision, 'counter', value);
              increments++;
              break;
            }
          }
        } else {
          const key = `app/k${Math.floor(rnd() * 300)}`;
          const value = `w${w}-${i}`;
          const { revision } = await s.put(key, Buffer.from(value));
          ack(revision, key, value);
        }
      }
    });
    await Promise.all(writers);
    const head = s.revision;
    assert.equal(acked.size, head, 'one revision per acknowledged write');
    for (let r = 1; r <= head; r++) assert.ok(acked.has(r), `revision ${r} was answered`);
    assert.equal(text((s.rangeLatest('counter', undefined).kvs[0] as { value: Uint8Array }).value), String(increments), 'no increment lost');
    t.diagnostic(`commits: ${JSON.stringify(backend.commitStats)}, revisions ${head}`);
    assert.ok(backend.commitStats.chained > 0, `some batches were chained (${JSON.stringify(backend.commitStats)})`);
    await s.close();
    store = undefined;

    // Reopened: the log holds exactly the acknowledged writes, each at its revision.
    const again = new SqliteBackend({ path });
    store = new Store({ backend: again });
    await store.open();
    assert.equal(store.revision, head);
    const log = await again.readLog(1, head, head + 10);
    assert.deepEqual(
      log.map((e) => [e.revision, e.key, text(e.value)]),
      [...acked].sort((a, b) => a[0] - b[0]).map(([r, [k, v]]) => [r, k, v]),
    );
    const latest = new Map<string, string>();
    for (const [, [k, v]] of [...acked].sort((a, b) => a[0] - b[0])) latest.set(k, v);
    for (const [k, v] of latest) assert.equal(text((store.rangeLatest(k, undefined).kvs[0] as { value: Uint8Array }).value), v, k);
  } finally {
    await store?.close();
    tmp.cleanup();
  }
});

function entry(key: string, revision: number): LogEntry {
  return { key, revision, createRevision: revision, version: 1, lease: 0, value: Buffer.from(`${key}@${revision}`), deleted: false, ts: Date.now(), meta: null };
}

function batch(revision: number, ...entries: LogEntry[]): CommitBatch {
  return { revision, entries, leaseGrants: [], leaseRevokes: [], audit: [] };
}

test('a SQLite commit chained on one that failed is refused with nothing written', async () => {
  const tmp = tempDir('beacon-sqlite-pipeline-');
  const b = new SqliteBackend({ path: join(tmp.dir, 'beacon.db') });
  await b.open();
  try {
    await b.commit(0, () => batch(1, entry('a', 1)));
    // Fails in the database: two rows with one (revision, key).
    const failing = b.commit(1, () => batch(2, entry('b', 2), entry('b', 2)));
    const chained = b.commitPipelined(2, batch(3, entry('c', 3)));
    const chainedAgain = b.commitPipelined(3, batch(4, entry('d', 4)));
    assert.ok(chained !== undefined && chainedAgain !== undefined, 'both were sent');
    await assert.rejects(failing, /UNIQUE|constraint/i);
    assert.equal(await chained, undefined, 'refused: planned on a batch that failed');
    assert.equal(await chainedAgain, undefined, 'refused: planned on a refused batch');
    assert.equal(b.commitStats.refused, 2);
    assert.equal(await b.headRevision(), 1);
    assert.deepEqual((await b.readLog(1, 10, 100)).map((e) => [e.revision, e.key]), [[1, 'a']]);

    // A batch not planned on the last one sent is not sent at all.
    assert.equal(b.commitPipelined(7, batch(8, entry('x', 8))), undefined);
    // Planned afresh, the next writes commit, chained or not.
    await b.commit(1, () => batch(2, entry('e', 2)));
    const next = b.commitPipelined(2, batch(3, entry('f', 3)));
    const last = b.commitPipelined(3, batch(4, entry('g', 4)));
    assert.equal((await next)?.revision, 3);
    assert.equal((await last)?.revision, 4);
    assert.equal(await b.headRevision(), 4);
    assert.deepEqual((await b.readLog(1, 10, 100)).map((e) => [e.revision, e.key]), [[1, 'a'], [2, 'e'], [3, 'f'], [4, 'g']]);
  } finally {
    await b.close();
    tmp.cleanup();
  }
});
