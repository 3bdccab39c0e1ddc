// A store's start from the view snapshot (issue 17 target 5) uses it only when it is whole and
// current. Every way it can be wrong — torn, corrupt, another format, not the one the database
// recorded, ahead of the database, behind a compaction — must leave the view exactly what the log
// says, and writes after it (puts, deletes, lease revokes) must be replayed from the log. The
// file format itself is tested beside it, in src/backend/sqlite/view-snapshot.test.ts.
import assert from 'node:assert/strict';
import { copyFileSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { SqliteBackend } from '../backend/index.js';
import type { TxnOp } from '../mvcc/index.js';
import { Store, VIEW_SNAPSHOT_CLOSE_ENTRIES } from './store.js';
import { tempDirs } from '../../test/helpers/temp.js';

const tempDir = tempDirs('beacon-view-snapshot-');

/** Puts `n` keys `prefix<i>` in txns of 100 (values name their key and a generation). */
async function putKeys(store: Store, prefix: string, n: number, gen: string, lease = 0): Promise<void> {
  for (let from = 0; from < n; from += 100) {
    const success: TxnOp[] = [];
    for (let i = from; i < Math.min(n, from + 100); i++) success.push({ type: 'put', key: `${prefix}${i}`, value: Buffer.from(`${prefix}${i}=${gen}`), lease, prevKv: false });
    await store.txn({ compare: [], success, failure: [] });
  }
}

/** The view as a store holds it: every kv in key order, values as text. */
function dump(store: Store): unknown[] {
  return store.rangeLatest('', null).kvs.map((k) => ({ ...k, value: Buffer.from(k.value).toString() }));
}

describe('loading the view from a snapshot', () => {
  const open = async (path: string): Promise<Store> => {
    const s = new Store({ backend: new SqliteBackend({ path }) });
    await s.open();
    return s;
  };
  /**
   * A store of 1,500 keys (some with a lease) closed cleanly (so it wrote a snapshot), then
   * `change` applied and the store closed without a new snapshot (fewer changes than the close
   * threshold), so the next start must replay them. Resolves with the expected view.
   */
  const setUp = async (change: (s: Store) => Promise<void>): Promise<{ path: string; expected: unknown[]; revision: number }> => {
    const path = join(tempDir(), 'beacon.db');
    let s = await open(path);
    const lease = await s.grantLease(600);
    await putKeys(s, 'k/', 1400, 'one');
    await putKeys(s, 'leased/', 100, 'one', lease.id);
    await s.close();
    s = await open(path);
    assert.equal(s.backend.lastViewLoad?.source, 'snapshot', JSON.stringify(s.backend.lastViewLoad));
    await change(s);
    const expected = dump(s);
    const revision = s.revision;
    await s.close();
    return { path, expected, revision };
  };
  const changes = async (s: Store): Promise<void> => {
    await putKeys(s, 'k/', 50, 'two'); // overwrites
    await putKeys(s, 'new/', 20, 'two'); // creates
    await s.txn({ compare: [], success: [{ type: 'delete', key: 'k/100', rangeEnd: 'k/200', prevKv: false }], failure: [] });
    await s.txn({ compare: [], success: [{ type: 'delete', key: 'k/7', prevKv: false }], failure: [] });
  };

  it('replays the writes after the snapshot: puts, overwrites, deletes', async () => {
    const { path, expected, revision } = await setUp(changes);
    assert.ok(expected.length > 1000 && expected.length < 1520);
    const s = await open(path);
    try {
      assert.equal(s.backend.lastViewLoad?.source, 'snapshot');
      assert.ok((s.backend.lastViewLoad?.logEntries ?? 0) > 0, 'the writes after it came from the log');
      assert.equal(s.revision, revision);
      assert.deepEqual(dump(s), expected);
      assert.equal(s.get('k/7'), undefined);
      assert.equal(s.rangeLatest('k/100', 'k/200').count, 0);
      // The view's sorted index is whole and in order: keys from the snapshot and from the log.
      const keys = s.rangeLatest('', null).kvs.map((k) => k.key);
      assert.equal(keys.length, s.keyCount);
      assert.deepEqual(keys, [...keys].sort());
      assert.deepEqual(s.rangeLatest('new/', 'new0').kvs.length, 20);
    } finally {
      await s.close();
    }
  });

  it('attaches leases to the keys it loads: revoking the lease after a restart deletes them', async () => {
    let leaseId = 0;
    const { path } = await setUp(async (s) => {
      leaseId = s.rangeLatest('leased/', 'leased0').kvs[0]?.lease ?? 0;
    });
    assert.ok(leaseId > 0);
    const s = await open(path);
    try {
      assert.equal(s.backend.lastViewLoad?.source, 'snapshot');
      assert.equal(s.timeToLive(leaseId).keys.length, 100);
      await s.revokeLease(leaseId);
      assert.equal(s.rangeLatest('leased/', 'leased0').count, 0);
    } finally {
      await s.close();
    }
  });

  it('replays a lease revoked after the snapshot (its keys stay deleted)', async () => {
    const { path, expected } = await setUp(async (s) => {
      const id = s.rangeLatest('leased/', 'leased0').kvs[0]?.lease ?? 0;
      await s.revokeLease(id);
    });
    const s = await open(path);
    try {
      assert.equal(s.backend.lastViewLoad?.source, 'snapshot');
      assert.equal(s.rangeLatest('leased/', 'leased0').count, 0);
      assert.deepEqual(dump(s), expected);
    } finally {
      await s.close();
    }
  });

  const fallsBack = async (what: string, spoil: (path: string) => void | Promise<void>, reason: RegExp): Promise<void> => {
    const { path, expected, revision } = await setUp(changes);
    await spoil(path);
    const s = await open(path);
    try {
      assert.equal(s.backend.lastViewLoad?.source, 'log', `${what}: ${JSON.stringify(s.backend.lastViewLoad)}`);
      assert.match(s.backend.lastViewLoad?.reason ?? '', reason);
      assert.equal(s.revision, revision);
      assert.deepEqual(dump(s), expected, what);
    } finally {
      await s.close();
    }
  };

  it('falls back to the log when the snapshot is truncated (a torn write)', () =>
    fallsBack('truncated', (p) => truncateSync(`${p}-view`, statSync(`${p}-view`).size - 1000), /truncated/));

  it('falls back to the log when a byte of the snapshot is corrupt', () =>
    fallsBack(
      'corrupt',
      (p) => {
        const f = readFileSync(`${p}-view`);
        f[Math.floor(f.length / 2)] = (f[Math.floor(f.length / 2)] as number) ^ 1;
        writeFileSync(`${p}-view`, f);
      },
      /checksum/,
    ));

  it('falls back to the log when the snapshot is of another format version', () =>
    fallsBack(
      'version',
      (p) => {
        const f = readFileSync(`${p}-view`);
        f.writeUInt32LE(99, 8);
        writeFileSync(`${p}-view`, f);
      },
      /format version 99/,
    ));

  it('falls back to the log when the database did not record this snapshot (a database restored from a backup)', async () => {
    // A backup taken at revision 5; the store goes on and snapshots at a later revision; the
    // backup is restored and gets other writes, past that revision. The snapshot's revision is
    // then within the restored database's log, but of another history: only the recorded id tells.
    const path = join(tempDir(), 'beacon.db');
    let s = await open(path);
    await putKeys(s, 'k/', 500, 'one');
    await s.close(); // below the close threshold: no snapshot
    const backup = `${path}.backup`;
    copyFileSync(path, backup);
    s = await open(path);
    await putKeys(s, 'k/', 1200, 'two');
    await putKeys(s, 'gone-with-the-restore/', 100, 'two');
    await s.close();
    const snapshotRevision = s.revision;
    copyFileSync(backup, path);
    rmSync(`${path}-wal`, { force: true });
    rmSync(`${path}-shm`, { force: true });
    s = await open(path);
    for (let i = 0; i <= snapshotRevision; i++) await putKeys(s, `restored/${i}/`, 1, 'three');
    const expected = dump(s);
    await s.close();
    s = await open(path);
    try {
      assert.ok(s.revision > snapshotRevision);
      assert.equal(s.backend.lastViewLoad?.source, 'log');
      assert.match(s.backend.lastViewLoad?.reason ?? '', /not the one this database recorded/);
      assert.deepEqual(dump(s), expected);
      assert.equal(s.rangeLatest('gone-with-the-restore/', 'gone-with-the-restore0').count, 0);
    } finally {
      await s.close();
    }
  });

  it('falls back to the log when the database was compacted past the snapshot (tombstones gone)', async () => {
    // The backend's own compaction, so the store does not write a new snapshot after it: the
    // state a crash during a long compaction leaves. Replayed from the snapshot, k/7 and the
    // deleted range would come back, their tombstones being compacted away.
    const { path, expected, revision } = await setUp(async (s) => {
      await changes(s);
      await s.backend.compact(s.revision);
    });
    const s = await open(path);
    try {
      assert.equal(s.backend.lastViewLoad?.source, 'log');
      assert.match(s.backend.lastViewLoad?.reason ?? '', /compacted to revision/);
      assert.equal(s.compactRevision, revision);
      assert.deepEqual(dump(s), expected);
    } finally {
      await s.close();
    }
  });

  it('falls back to the log when the snapshot is ahead of the database', async () => {
    const path = join(tempDir(), 'beacon.db');
    const b = new SqliteBackend({ path });
    await b.open();
    await b.saveViewSnapshot(5, [{ key: 'ghost', value: Buffer.from('boo'), createRevision: 5, modRevision: 5, version: 1, lease: 0 }]);
    await b.close();
    const s = await open(path);
    try {
      assert.equal(s.backend.lastViewLoad?.source, 'log');
      assert.match(s.backend.lastViewLoad?.reason ?? '', /past the database/);
      assert.equal(s.get('ghost'), undefined);
    } finally {
      await s.close();
    }
  });

  it('writes a new snapshot after a compaction past the last one, and at a clean shutdown after enough writes', async () => {
    const path = join(tempDir(), 'beacon.db');
    let s = await open(path);
    await putKeys(s, 'k/', VIEW_SNAPSHOT_CLOSE_ENTRIES + 10, 'one');
    await s.close();
    s = await open(path);
    const first = s.backend.lastViewLoad?.snapshotRevision ?? 0;
    assert.ok(first > 0);
    await s.txn({ compare: [], success: [{ type: 'delete', key: 'k/3', prevKv: false }], failure: [] });
    await s.compact(s.revision);
    const expected = dump(s);
    await s.close();
    s = await open(path);
    try {
      assert.equal(s.backend.lastViewLoad?.source, 'snapshot', JSON.stringify(s.backend.lastViewLoad));
      assert.ok((s.backend.lastViewLoad?.snapshotRevision ?? 0) >= s.compactRevision);
      assert.deepEqual(dump(s), expected);
    } finally {
      await s.close();
    }
  });
});
