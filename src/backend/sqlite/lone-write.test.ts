// Lone writes committed on the event loop's connection beside the writer thread (issue 17 target 1):
// the two connections must keep one ordered log, a lone write must never overtake a write still
// queued on the thread, and the deferred audit key index must advance whichever connection adds
// the records.
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { AuditRecord, LogEntry } from '../../mvcc/index.js';
import type { CommitBatch } from '../types.js';
import { LONE_COMMIT_MAX_MS, LONE_RETRY_MS, LoneWritePolicy, SqliteBackend } from './sqlite-backend.js';
import { AUDIT_INDEX_BATCH } from './writes.js';

function entry(key: string, revision: number): LogEntry {
  return { key, revision, createRevision: revision, version: 1, lease: 0, value: Buffer.from(`${key}@${revision}`), deleted: false, ts: Date.now(), meta: null };
}

function audit(key: string, revision: number): AuditRecord {
  return { ts: Date.now(), principal: 'alice', action: 'kv.put', key, oldVersion: null, newVersion: 1, revision, requestId: null, source: 'test', outcome: 'ok', details: null };
}

function batch(revision: number, keys: string[]): CommitBatch {
  return { revision, entries: keys.map((k) => entry(k, revision)), leaseGrants: [], leaseRevokes: [], audit: keys.map((k) => audit(k, revision)) };
}

describe('SQLite lone writes on the event loop', () => {
  it('lone writes, batches on the writer thread and queued audit appends keep one ordered log', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'beacon-lone-'));
    const path = join(dir, 'beacon.db');
    const b = new SqliteBackend({ path });
    await b.open();
    const expected: [number, string][] = [];
    try {
      const appends: Promise<void>[] = [];
      for (let r = 1; r <= 300; r++) {
        // Now and then an audit append is queued on the thread just before a lone write: the
        // write must then go through the thread too, behind it.
        if (r % 7 === 0) appends.push(b.appendAudit([audit(`login/${r}`, r)]));
        const keys = r % 3 === 0 ? [`app/m${r}-a`, `app/m${r}-b`, `app/m${r}-c`] : [`app/k${r % 20}`];
        await b.commit(r - 1, (_missed, head) => {
          assert.equal(head, r - 1, 'every commit sees the one before it');
          return batch(r, keys);
        });
        for (const k of keys) expected.push([r, k]);
      }
      await Promise.all(appends);
      assert.ok(b.commitStats.onLoop > 0 && b.commitStats.onWriter > 0, `both paths were used (${JSON.stringify(b.commitStats)})`);
      assert.equal(await b.headRevision(), 300);
      const log = await b.readLog(1, 300, 10_000);
      assert.deepEqual(
        log.map((e) => [e.revision, e.key]),
        expected,
      );
      const records = await b.queryAudit({ limit: 10_000 });
      assert.equal(records.length, expected.length + appends.length, 'every audit record once');
    } finally {
      await b.close();
    }
    const again = new SqliteBackend({ path });
    await again.open();
    try {
      assert.equal(await again.headRevision(), 300);
      assert.equal((await again.readLog(1, 300, 10_000)).length, expected.length);
    } finally {
      await again.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the audit key index advances when lone writes add the records', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'beacon-lone-'));
    const path = join(dir, 'beacon.db');
    const b = new SqliteBackend({ path });
    await b.open();
    const n = AUDIT_INDEX_BATCH + 200;
    try {
      for (let r = 1; r <= n; r++) {
        // On a disk with slow syncs lone writes would move to the thread (LoneWritePolicy); this
        // test is about the loop's connection adding records, so it keeps them there.
        b.lonePolicy.averageMs = 0;
        await b.commit(r - 1, () => batch(r, [`app/a/k${r % 50}`]));
      }
      await new Promise((r) => setImmediate(r));
      assert.ok(b.commitStats.onLoop > AUDIT_INDEX_BATCH, `lone writes committed on the loop (${JSON.stringify(b.commitStats)})`);
      const read = new Database(path, { readonly: true });
      try {
        const indexed = (read.prepare("SELECT value FROM meta WHERE name = 'audit_indexed_id'").get() as { value: number }).value;
        assert.ok(indexed >= AUDIT_INDEX_BATCH, `audit_indexed_id ${indexed}`);
        assert.ok((read.prepare('SELECT count(*) AS c FROM audit_key_index').get() as { c: number }).c >= AUDIT_INDEX_BATCH);
      } finally {
        read.close();
      }
      const byKey = await b.queryAudit({ keyPrefix: 'app/a/', limit: 10_000 });
      assert.equal(byKey.length, n, 'every record found by key: the indexed ones and the tail');
      // The loop's connection never checkpoints; the writer thread is asked to every so many lone
      // writes, so the WAL is reused instead of growing by every commit (~8 pages each).
      const wal = statSync(`${path}-wal`).size;
      assert.ok(wal < 16 * 1024 * 1024, `WAL ${wal} bytes after ${n} lone writes`);
    } finally {
      await b.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('moves lone writes off the loop while they are slow, and tries the loop again later', () => {
    const p = new LoneWritePolicy();
    const t0 = 1_000_000;
    for (let i = 0; i < 20; i++) p.record(0.3);
    assert.ok(p.allowed(t0), 'fast commits stay on the loop');
    for (let i = 0; i < 20; i++) p.record(LONE_COMMIT_MAX_MS * 5);
    assert.equal(p.allowed(t0), false, 'slow commits (a slow disk) go to the writer thread');
    assert.equal(p.allowed(t0 + LONE_RETRY_MS - 1), false);
    assert.ok(p.allowed(t0 + LONE_RETRY_MS), 'tried on the loop again after the pause');
    assert.ok(p.allowed(t0 + LONE_RETRY_MS + 1), 'with the average reset');
    // One slow commit among fast ones does not move them.
    const q = new LoneWritePolicy();
    for (let i = 0; i < 20; i++) q.record(0.3);
    q.record(LONE_COMMIT_MAX_MS * 3);
    assert.ok(q.allowed(t0));
  });
});
