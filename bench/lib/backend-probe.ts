/**
 * The durable-write floor of the storage layer alone: single-entry commits through the real
 * SqliteBackend (WAL, synchronous=FULL) in the benchmark's data dir, without HTTP or the kv core.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { SqliteBackend } from '../../src/backend/index.js';
import { latencySummary, type LatencySummary } from './stats.js';

/**
 * Commits `count` one-put batches (value of `valueBytes`) one after the other through a fresh
 * SqliteBackend in `dir` and returns their latencies in ms. With `withAudit`, each batch also
 * carries the one audit record the HTTP API writes with every changed key. The store is deleted
 * afterwards.
 */
export async function measureBackendCommit(dir: string, count = 300, valueBytes = 128, withAudit = false): Promise<LatencySummary> {
  const path = join(dir, `commit-probe-${process.pid}.db`);
  const backend = new SqliteBackend({ path });
  const samples: number[] = [];
  try {
    await backend.open();
    const value = Buffer.alloc(valueBytes, 'v');
    for (let i = 1; i <= count; i++) {
      const t = performance.now();
      await backend.commit(i - 1, (_missed, head) => ({
        revision: head + 1,
        entries: [{ key: `probe/${i}`, revision: head + 1, createRevision: head + 1, version: 1, lease: 0, value, deleted: false, ts: Date.now(), meta: null }],
        leaseGrants: [],
        leaseRevokes: [],
        ...(withAudit
          ? {
              audit: [
                {
                  ts: Date.now(),
                  principal: 'dev',
                  action: 'kv.put',
                  key: `probe/${i}`,
                  oldVersion: null,
                  newVersion: 1,
                  revision: head + 1,
                  requestId: '6f1c2b1e-3d4a-4f5b-9c8d-7e6f5a4b3c2d',
                  source: '127.0.0.1',
                  outcome: 'ok' as const,
                  details: null,
                },
              ],
            }
          : {}),
      }));
      samples.push(performance.now() - t);
    }
  } finally {
    await backend.close();
    for (const suffix of ['', '-wal', '-shm']) rmSync(path + suffix, { force: true });
  }
  // The first commits create the WAL and warm the caches; leave them out.
  return latencySummary(samples.slice(Math.min(20, samples.length - 1)));
}
