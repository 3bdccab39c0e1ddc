// The deferred audit key index against a real SQLite store: an append that fails (a full disk)
// must not make later records invisible to key queries.
import assert from 'node:assert/strict';
import type Database from 'better-sqlite3';
import { describe, it } from 'node:test';
import type { AuditRecord } from '../../mvcc/index.js';
import { SqliteBackend } from './sqlite-backend.js';

const rec = (key: string, i: number): AuditRecord => ({
  ts: Date.now(),
  principal: 'alice',
  action: 'kv.put',
  key,
  oldVersion: null,
  newVersion: 1,
  revision: i,
  requestId: null,
  source: 'test',
  outcome: 'ok',
  details: 'x'.repeat(200),
});

describe('SQLite audit key index', () => {
  it('after an append that failed for lack of space, every later record is found by key', async () => {
    const b = new SqliteBackend({ path: ':memory:' });
    await b.open();
    try {
      await b.appendAudit(Array.from({ length: 10 }, (_, i) => rec('app/a', i)));
      // A full disk: SQLite may not grow the database by more than a few pages.
      const db = (b as unknown as { db: Database.Database }).db;
      const pages = db.pragma('page_count', { simple: true }) as number;
      db.pragma(`max_page_count = ${pages + 200}`);
      await assert.rejects(b.appendAudit(Array.from({ length: 5000 }, (_, i) => rec('app/b', i))), /full/);
      db.pragma('max_page_count = 1073741823');
      assert.equal((await b.queryAudit({ keyPrefix: 'app/', limit: 1000 })).length, 10, 'the failed append left nothing');
      await b.appendAudit([rec('app/c', 99)]);
      const byKey = await b.queryAudit({ keyPrefix: 'app/', limit: 10_000 });
      assert.deepEqual(byKey.map((r) => r.key), [...Array(10).fill('app/a'), 'app/c']);
    } finally {
      await b.close();
    }
  });
});
