// `beacon snapshot save` against a node taking writes, then `snapshot restore` into a new data
// dir and a node started on it: same revision, same data. Also what restore refuses.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { spawnServer, tempDir, type ServerProcess } from '../helpers/node.js';
import { runCli } from './cli-helpers.js';

describe('beacon snapshot save/restore (e2e)', () => {
  const tmp = tempDir();
  const file = join(tmp.dir, 'backup.db');
  let source: ServerProcess;

  before(async () => {
    source = await spawnServer(['--dev', '--data-dir', join(tmp.dir, 'source')]);
  });
  after(async () => {
    await source.kill();
    tmp.cleanup();
  });

  it('saves a consistent snapshot while writes continue; a node restored from it has the same revision and data', async () => {
    const written: { key: string; value: string; revision: number }[] = [];
    let writing = true;
    const writer = (async () => {
      for (let i = 0; writing; i++) {
        const key = `load/${String(i).padStart(6, '0')}`;
        const value = `value-${i}-${'x'.repeat(i % 50)}`;
        const res = await fetch(`${source.url}/v1/kv/${key}`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ value }) });
        assert.equal(res.status, 200);
        written.push({ key, value, revision: ((await res.json()) as { revision: number }).revision });
      }
    })();
    try {
      while (written.length < 50) await new Promise((r) => setTimeout(r, 10));
      const save = await runCli(['--endpoint', source.url, 'snapshot', 'save', file, '--json']);
      assert.equal(save.code, 0, save.stderr);
      const saved = JSON.parse(save.stdout) as { revision: number; size: number };
      while (!written.some((w) => w.revision > saved.revision)) await new Promise((r) => setTimeout(r, 10));
      writing = false;
      await writer;

      assert.equal(statSync(file).size, saved.size);
      assert.ok(!existsSync(`${file}.part`), 'the partial file was renamed');
      const expected = written.filter((w) => w.revision <= saved.revision);
      assert.ok(expected.length >= 50 && expected.length < written.length, 'writes went on before and after the snapshot');

      const restoredDir = join(tmp.dir, 'restored');
      const restore = await runCli(['snapshot', 'restore', file, '--data-dir', restoredDir]);
      assert.equal(restore.code, 0, restore.stderr);
      assert.match(restore.stdout, new RegExp(`revision ${saved.revision}, ${expected.length} keys`));

      const copy = await spawnServer(['--dev', '--data-dir', restoredDir]);
      try {
        const status = await runCli(['--endpoint', copy.url, 'status', '--json']);
        assert.equal((JSON.parse(status.stdout) as { revision: number }).revision, saved.revision);
        const listing = await runCli(['--endpoint', copy.url, 'get', 'load/', '--prefix', '--json']);
        const kvs = (JSON.parse(listing.stdout) as { kvs: { key: string; value: string; modRevision: number }[] }).kvs;
        assert.deepEqual(
          kvs.map((kv) => [kv.key, kv.value, kv.modRevision]),
          expected.map((w) => [w.key, w.value, w.revision]),
          'exactly the writes up to the snapshot revision',
        );
      } finally {
        await copy.kill();
      }
    } finally {
      writing = false;
      await writer.catch(() => undefined);
    }
  });

  it('refuses a non-empty data dir without --force, and files that are not Beacon snapshots', async () => {
    assert.ok(existsSync(file), 'needs the snapshot of the previous test');
    const busy = join(tmp.dir, 'busy');
    mkdirSync(busy);
    writeFileSync(join(busy, 'notes.txt'), 'keep me');
    const refused = await runCli(['snapshot', 'restore', file, '--data-dir', busy]);
    assert.equal(refused.code, 5);
    assert.match(refused.stderr, /data dir '.*busy' is not empty; .*--force/);
    assert.ok(!existsSync(join(busy, 'beacon.db')), 'nothing was written');

    const forced = await runCli(['snapshot', 'restore', file, '--data-dir', busy, '--force', '--json']);
    assert.equal(forced.code, 0, forced.stderr);
    assert.ok(existsSync(join(busy, 'beacon.db')));
    assert.ok(existsSync(join(busy, 'notes.txt')), 'only beacon.db is replaced');

    const text = join(tmp.dir, 'not-a-db.txt');
    writeFileSync(text, 'hello, this is not SQLite\n'.repeat(10));
    const notSqlite = await runCli(['snapshot', 'restore', text, '--data-dir', join(tmp.dir, 'x1')]);
    assert.equal(notSqlite.code, 2);
    assert.match(notSqlite.stderr, /is not a Beacon snapshot: it is not an SQLite database/);

    const other = join(tmp.dir, 'other.db');
    const db = new Database(other);
    db.exec('CREATE TABLE things (id INTEGER PRIMARY KEY)');
    db.close();
    const notBeacon = await runCli(['snapshot', 'restore', other, '--data-dir', join(tmp.dir, 'x2')]);
    assert.equal(notBeacon.code, 2);
    assert.match(notBeacon.stderr, /is not a Beacon snapshot: it has no meta, kv_log, leases, schema_migrations table/);
    assert.ok(!existsSync(join(tmp.dir, 'x2', 'beacon.db')));

    const missing = await runCli(['snapshot', 'restore', join(tmp.dir, 'nope.db'), '--data-dir', join(tmp.dir, 'x3')]);
    assert.equal(missing.code, 4);
  });
});
