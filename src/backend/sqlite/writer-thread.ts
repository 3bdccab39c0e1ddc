/**
 * The SQLite writer thread: owns the one connection that writes, so a group commit's fsync and
 * B-tree work run beside the event loop instead of blocking it. Reads stay on the main thread's
 * connection (WAL lets them run concurrently and see every committed transaction).
 */
import Database from 'better-sqlite3';
import { parentPort, workerData } from 'node:worker_threads';
import { prepareWrites, type WriteOp } from './writes.js';

const { path } = workerData as { path: string };
const db = new Database(path);
db.pragma('journal_mode = WAL');
db.pragma('synchronous = FULL');
db.pragma('busy_timeout = 5000');
const writer = prepareWrites(db);

parentPort?.on('message', (m: { id: number; write: WriteOp } | { id: number; close: true }) => {
  if ('close' in m) {
    db.close();
    parentPort?.postMessage({ id: m.id, ok: true, result: 0 });
    return;
  }
  try {
    parentPort?.postMessage({ id: m.id, ok: true, result: writer.apply(m.write) });
  } catch (err) {
    parentPort?.postMessage({ id: m.id, ok: false, message: (err as Error).message });
    return;
  }
  // Upkeep after the answer, so the write it follows is not kept waiting.
  try {
    writer.maintain();
  } catch {
    // retried after the next write; queries read the unindexed tail meanwhile
  }
});
