// Migration 007 (the revision log keyed by revision) against a database in the previous
// release's layout: a store written through the real writer under migrations 001–006 is opened by
// the current backend, which upgrades it in place; every read the backend serves — the view at
// start, ranges at old revisions, history, watch catch-up, prevKv, compaction — must answer what
// the data said before the upgrade, and new writes must continue at the next revision.
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { KeyValue, LogEntry } from '../../mvcc/index.js';
import type { CommitBatch } from '../types.js';
import { SqliteBackend } from './sqlite-backend.js';
import { prepareWrites } from './writes.js';
import { prng } from '../../../test/helpers/random.js';

const MIGRATIONS = fileURLToPath(new URL('./migrations/', import.meta.url));

/**
 * Writes a store in the layout of migrations 001–006 through the real writer: puts, overwrites,
 * deletes (tombstones), several keys at one revision, a sealed value, a lease and audit records.
 * Returns every log entry written, in commit order.
 */
function writePreUpgradeStore(path: string): LogEntry[] {
  const db = new Database(path);
  const log: LogEntry[] = [];
  try {
    db.pragma('journal_mode = WAL');
    db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)');
    for (const file of readdirSync(MIGRATIONS).filter((f) => /^\d+_.*\.sql$/.test(f)).sort()) {
      const version = Number.parseInt(file, 10);
      if (version >= 7) continue;
      db.exec(readFileSync(join(MIGRATIONS, file), 'utf8'));
      db.prepare('INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)').run(version, Date.now());
    }
    const writer = prepareWrites(db);
    const rnd = prng(17);
    const latest = new Map<string, LogEntry>();
    let head = 0;
    for (let c = 0; c < 400; c++) {
      const entries: LogEntry[] = [];
      const keys = new Set<string>();
      // Mostly one key per revision; now and then a txn of several keys at one revision.
      const width = rnd() < 0.1 ? 2 + Math.floor(rnd() * 4) : 1;
      while (keys.size < width) keys.add(`app/${rnd() < 0.5 ? 'a' : 'b'}/k${Math.floor(rnd() * 60)}`);
      const revision = head + 1;
      for (const key of [...keys].sort()) {
        const prev = latest.get(key);
        const live = prev !== undefined && !prev.deleted;
        const e: LogEntry =
          live && rnd() < 0.15
            ? { key, revision, createRevision: prev.createRevision, version: 0, lease: 0, value: new Uint8Array(), deleted: true, ts: 1_700_000_000_000 + revision, meta: null }
            : {
                key,
                revision,
                createRevision: live ? prev.createRevision : revision,
                version: live ? prev.version + 1 : 1,
                lease: c === 7 ? 4242 : 0,
                value: Buffer.from(`${key}@${revision}`),
                deleted: false,
                ts: 1_700_000_000_000 + revision,
                meta: c % 50 === 0 ? '{"reason":"test"}' : null,
                ...(c === 9 ? { encrypted: true as const } : {}),
              };
        if (e.deleted) e.version = 0;
        entries.push(e);
        latest.set(key, e);
      }
      const batch: CommitBatch = {
        revision,
        entries,
        leaseGrants: c === 7 ? [{ id: 4242, grantedTtl: 600, expiresAt: Date.now() + 600_000 }] : [],
        leaseRevokes: [],
        audit: entries.map((e) => ({
          ts: e.ts,
          principal: 'alice',
          action: e.deleted ? 'kv.delete' : 'kv.put',
          key: e.key,
          oldVersion: null,
          newVersion: e.version,
          revision: e.revision,
          requestId: null,
          source: 'test',
          outcome: 'ok' as const,
          details: null,
        })),
      };
      writer.apply({ op: 'commit', batch, head });
      head = revision;
      log.push(...entries);
    }
  } finally {
    db.close();
  }
  return log;
}

/** The model's state at `revision`: the latest live entry of each key, in key order. */
function stateAt(log: LogEntry[], revision: number, prefix = ''): LogEntry[] {
  const m = new Map<string, LogEntry>();
  for (const e of log) if (e.revision <= revision && e.key.startsWith(prefix)) m.set(e.key, e);
  return [...m.values()].filter((e) => !e.deleted).sort((a, b) => (a.key < b.key ? -1 : 1));
}

const kvOf = (e: LogEntry): [string, string, number, number, number] => [e.key, Buffer.from(e.value).toString(), e.revision, e.createRevision, e.version];
const fromKv = (k: KeyValue): [string, string, number, number, number] => [k.key, Buffer.from(k.value).toString(), k.modRevision, k.createRevision, k.version];
const entryOf = (e: LogEntry): unknown[] => [e.key, e.revision, e.deleted, e.deleted ? '' : Buffer.from(e.value).toString(), e.version, e.createRevision, e.meta, e.encrypted === true];

describe('SQLite migration 007: the revision log keyed by revision', () => {
  it('upgrades a store of the previous layout in place and every read answers as before', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'beacon-007-'));
    const path = join(dir, 'beacon.db');
    const log = writePreUpgradeStore(path);
    const head = (log[log.length - 1] as LogEntry).revision;
    const backend = new SqliteBackend({ path });
    try {
      const state = await backend.open();
      assert.deepEqual(state, { revision: head, compactRevision: 0 });
      const check = new Database(path, { readonly: true });
      try {
        const sql = (check.prepare("SELECT sql FROM sqlite_master WHERE name = 'kv_log'").get() as { sql: string }).sql;
        assert.match(sql, /PRIMARY KEY \(revision, key\)/, 'the log is keyed by revision');
        assert.equal((check.prepare('SELECT count(*) AS n FROM kv_log').get() as { n: number }).n, log.length, 'no row lost or added');
        assert.ok(check.prepare('SELECT 1 FROM schema_migrations WHERE version = 7').get() !== undefined, 'migration 007 is recorded');
      } finally {
        check.close();
      }

      // The view loaded at start: the latest live value of every key.
      const view: KeyValue[] = [];
      await backend.loadView((kv) => view.push(kv));
      view.sort((a, b) => (a.key < b.key ? -1 : 1));
      assert.deepEqual(view.map(fromKv), stateAt(log, head).map(kvOf));
      assert.deepEqual(view.map((k) => k.encrypted === true), stateAt(log, head).map((e) => e.encrypted === true), 'the sealed flag survives');
      assert.ok(log.some((e) => e.encrypted === true), 'the data set holds a sealed value');

      // Ranges at old revisions, with and without a limit; one key; the count of a limited page.
      for (const rev of [1, 57, 200, 333, head]) {
        const all = await backend.range({ key: 'app/a/', rangeEnd: 'app/a0', revision: rev, limit: 0 });
        assert.deepEqual(all.kvs.map(fromKv), stateAt(log, rev, 'app/a/').map(kvOf), `range at ${rev}`);
        const page = await backend.range({ key: 'app/', rangeEnd: null, revision: rev, limit: 5 });
        const want = stateAt(log, rev, 'app/');
        assert.deepEqual(page.kvs.map(fromKv), want.slice(0, 5).map(kvOf), `first page at ${rev}`);
        assert.equal(page.more, want.length > 5);
        assert.equal(page.count, want.length);
      }
      const some = (log[123] as LogEntry).key;
      const one = await backend.range({ key: some, rangeEnd: undefined, revision: 250, limit: 0 });
      assert.deepEqual(one.kvs.map(fromKv), stateAt(log, 250).filter((e) => e.key === some).map(kvOf));

      // History of a key, both ways, and the entry before a revision (prevKv).
      const rows = log.filter((e) => e.key === some);
      assert.deepEqual((await backend.history(some, {})).map(entryOf), rows.map(entryOf));
      assert.deepEqual((await backend.history(some, { reverse: true, limit: 3 })).map(entryOf), rows.slice().reverse().slice(0, 3).map(entryOf));
      const at = (rows[rows.length - 1] as LogEntry).revision;
      const prev = await backend.previous(some, at);
      assert.deepEqual(prev === undefined ? undefined : entryOf(prev), rows.length > 1 ? entryOf(rows[rows.length - 2] as LogEntry) : undefined);

      // Watch catch-up: the whole log, a key range, one key, and a limit that never splits a revision.
      const byRev = (a: LogEntry, b: LogEntry): number => a.revision - b.revision || (a.key < b.key ? -1 : 1);
      assert.deepEqual((await backend.readLog(1, head, 100_000)).map(entryOf), log.slice().sort(byRev).map(entryOf));
      assert.deepEqual(
        (await backend.readLog(30, 300, 100_000, { key: 'app/b/', rangeEnd: 'app/b0' })).map(entryOf),
        log.filter((e) => e.revision >= 30 && e.revision <= 300 && e.key.startsWith('app/b/')).sort(byRev).map(entryOf),
      );
      assert.deepEqual((await backend.readLog(1, head, 100_000, { key: some, rangeEnd: undefined })).map(entryOf), rows.map(entryOf));
      for (let from = 1; from <= head; ) {
        const page = await backend.readLog(from, head, 7);
        assert.ok(page.length >= 1);
        const last = (page[page.length - 1] as LogEntry).revision;
        assert.equal(page.filter((e) => e.revision === last).length, log.filter((e) => e.revision === last).length, `revision ${last} is whole`);
        from = last + 1;
      }

      // Leases survive; writes continue at the next revision; compaction keeps each key's state.
      assert.deepEqual((await backend.loadLeases()).map((l) => l.id), [4242]);
      const value = Buffer.from('after the upgrade');
      const next = await backend.commit(head, (_missed, h) => ({
        revision: h + 1,
        entries: [{ key: 'app/new', revision: h + 1, createRevision: h + 1, version: 1, lease: 0, value, deleted: false, ts: Date.now(), meta: null }],
        leaseGrants: [],
        leaseRevokes: [],
      }));
      assert.equal(next.revision, head + 1);
      assert.equal(await backend.headRevision(), head + 1);
      await backend.compact(300);
      const compacted = await backend.range({ key: 'app/', rangeEnd: null, revision: 300, limit: 0 });
      assert.deepEqual(compacted.kvs.map(fromKv), stateAt(log, 300, 'app/').map(kvOf), 'the state at the compact revision is kept');
      const kept = rows.filter((e) => e.revision <= 300).slice(-1).filter((e) => !e.deleted);
      assert.deepEqual((await backend.history(some, { toRevision: 300 })).map(entryOf), kept.map(entryOf), 'history at or below 300 keeps only the state at 300');
    } finally {
      await backend.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
