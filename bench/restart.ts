/**
 * restart: a store with 1,000,000 revisions (100,000 keys × 10 versions, 100-byte values), written
 * straight into SQLite through the real migrations, then the time for the built `beacon serve` to
 * print "listening" on it — with the file in the page cache (warm) and after dropping it from the
 * cache (cold, `dd iflag=nocache`). An empty store's start is measured in the same runs for scale.
 * Target: < 10 s.
 */
import Database from 'better-sqlite3';
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, fsyncSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { SqliteBackend } from '../src/backend/index.js';
import { result, round, type BenchContext, type Benchmark } from './lib/bench.js';
import { spawnBeacon, type ListeningProcess } from './lib/proc.js';
import type { BenchResult } from './lib/report.js';
import { median } from './lib/stats.js';

const VALUE_BYTES = 100;

/**
 * Writes `revisions` revisions over `keys` keys into `<dir>/beacon.db`: revision r puts key
 * (r-1) mod keys, so every key has revisions/keys versions. Resolves with the seconds it took.
 */
export async function generateStore(dir: string, revisions: number, keys: number): Promise<number> {
  const started = performance.now();
  const path = join(dir, 'beacon.db');
  // Open and close through the real backend first: it creates the schema with every migration.
  const backend = new SqliteBackend({ path });
  await backend.open();
  await backend.close();
  const db = new Database(path);
  try {
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = OFF');
    db.pragma('cache_size = -262144'); // 256 MiB, so the B-tree stays in memory while it is built
    const insert = db.prepare(
      'INSERT INTO kv_log (key, revision, create_revision, version, lease, value, deleted, ts, meta) VALUES (?, ?, ?, ?, 0, ?, 0, ?, NULL)',
    );
    const names = Array.from({ length: keys }, (_, i) => `restart/app-${String(i % 100).padStart(2, '0')}/key-${String(i).padStart(7, '0')}`);
    const value = Buffer.alloc(VALUE_BYTES, 'x');
    const ts = Date.now() - revisions;
    const chunk = 100_000;
    for (let lo = 1; lo <= revisions; lo += chunk) {
      const hi = Math.min(revisions, lo + chunk - 1);
      db.transaction(() => {
        for (let r = lo; r <= hi; r++) {
          const k = (r - 1) % keys;
          const version = Math.floor((r - 1) / keys) + 1;
          value.writeUInt32BE(r, 0);
          insert.run(names[k] as string, r, k + 1, version, value, ts + r);
        }
      })();
    }
    db.prepare("UPDATE meta SET value = ? WHERE name = 'revision'").run(revisions);
    db.pragma('wal_checkpoint(TRUNCATE)');
  } finally {
    db.close();
  }
  for (const f of [path, `${path}-wal`]) {
    if (!existsSync(f)) continue;
    const fd = openSync(f, 'r+');
    fsyncSync(fd);
    closeSync(fd);
  }
  return (performance.now() - started) / 1000;
}

/** Drops the store's files from the page cache (GNU dd's documented `iflag=nocache count=0`), for a cold start. */
export function dropFromCache(dir: string): boolean {
  let ok = true;
  for (const f of ['beacon.db', 'beacon.db-wal', 'beacon.db-view']) {
    const path = join(dir, f);
    if (!existsSync(path)) continue;
    ok = spawnSync('dd', [`if=${path}`, 'iflag=nocache', 'count=0'], { stdio: 'ignore' }).status === 0 && ok;
  }
  return ok;
}

/** Starts a node on `dir`, returns seconds to "listening" and the status line, and stops it. */
async function startOnce(dir: string): Promise<{ s: number; line: string }> {
  let server: ListeningProcess | undefined;
  try {
    server = await spawnBeacon(dir);
    const line = /beacon data: .*$/m.exec(server.stderr())?.[0] ?? '';
    return { s: server.startupMs / 1000, line };
  } finally {
    await server?.stop();
  }
}

/** The restart benchmark (see the module comment). */
export const restart: Benchmark = {
  name: 'restart',
  title: 'time to listening on a store with a long revision log',
  async run(ctx: BenchContext): Promise<BenchResult> {
    const { opts } = ctx;
    const dir = ctx.tempDir('restart-');
    const emptyDir = ctx.tempDir('restart-empty-');
    ctx.log(`restart: generating ${opts.restartRevisions} revisions over ${opts.restartKeys} keys`);
    const genS = await generateStore(dir, opts.restartRevisions, opts.restartKeys);
    ctx.log(`restart: generated in ${round(genS, 1)} s`);
    const warm: number[] = [];
    const cold: number[] = [];
    const empty: number[] = [];
    let line = '';
    let dropped = true;
    // One start first so the file is in the cache and the node binary's pages too.
    await startOnce(dir);
    await startOnce(emptyDir);
    for (let i = 1; i <= opts.runs; i++) {
      empty.push((await startOnce(emptyDir)).s);
      const w = await startOnce(dir);
      warm.push(w.s);
      line = w.line;
      dropped = dropFromCache(dir) && dropped;
      cold.push((await startOnce(dir)).s);
      ctx.log(`restart run ${i}/${opts.runs}: warm ${round(warm[i - 1] as number, 2)} s, cold ${round(cold[i - 1] as number, 2)} s, empty store ${round(empty[i - 1] as number, 2)} s`);
    }
    const expect = `revision ${opts.restartRevisions}, ${opts.restartKeys} keys`;
    const notes = [
      `generating the store took ${round(genS, 1)} s (better-sqlite3 straight into kv_log, after the real migrations)`,
      `the node reported: ${line}${line.includes(expect) ? '' : ` — EXPECTED "${expect}"`}`,
      `start-up cost of the data itself (median warm − empty): ${round(median(warm) - median(empty), 2)} s`,
      dropped ? 'cold = the store files dropped from the page cache with dd iflag=nocache before the start (the VM host may still cache them)' : 'WARNING: could not drop the files from the page cache; cold figures are warm',
    ];
    return result(
      restart,
      { revisions: opts.restartRevisions, keys: opts.restartKeys, valueBytes: VALUE_BYTES },
      [
        { name: 'start to listening, warm cache', unit: 's', values: warm, target: { op: '<', value: 10 } },
        { name: 'start to listening, cold cache', unit: 's', values: cold, target: { op: '<', value: 10 } },
        { name: 'start to listening, empty store', unit: 's', values: empty },
      ],
      notes,
    );
  },
};
