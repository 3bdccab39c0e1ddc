/**
 * The SQLite writer thread: owns the one connection that writes, so a group commit's fsync and
 * B-tree work run beside the event loop instead of blocking it. Reads stay on the main thread's
 * connection (WAL lets them run concurrently and see every committed transaction).
 *
 * Commits queued behind one another (the backend pipelines them, see
 * `SqliteBackend.commitPipelined`) are made together: when the writer takes a commit, it also
 * takes every chained commit already waiting behind it and makes them in one transaction, so
 * the WAL is synced once for all of them, and answers each after that transaction committed.
 */
import Database from 'better-sqlite3';
import { parentPort, receiveMessageOnPort, workerData, type MessagePort } from 'node:worker_threads';
import { prepareWrites, type CommitPackedOp, type WriteOp } from './writes.js';

/** The most queued commits made in one transaction. */
const MAX_RUN = 32;

type Message = { id: number; write: WriteOp } | { id: number; close: true };
/** One answer; the main thread also takes an array of them (a run's). */
type Reply = { id: number; ok: true; result: number } | { id: number; ok: false; message: string };

const { path } = workerData as { path: string };
const db = new Database(path);
db.pragma('journal_mode = WAL');
db.pragma('synchronous = FULL');
db.pragma('busy_timeout = 5000');
const writer = prepareWrites(db);
const port = parentPort as MessagePort;

/** Makes one commit in its own transaction. */
function one(id: number, w: CommitPackedOp): Reply {
  try {
    return { id, ok: true, result: writer.applyCommits([w])[0] as number };
  } catch (err) {
    return { id, ok: false, message: (err as Error).message };
  }
}

function handle(m: Message): void {
  if ('close' in m) {
    db.close();
    port.postMessage({ id: m.id, ok: true, result: 0 });
    return;
  }
  let next: Message | undefined;
  if (m.write.op === 'commitPacked') {
    // Take the chained commits already queued behind this one (in order); stop at anything else.
    const run: { id: number; write: CommitPackedOp }[] = [{ id: m.id, write: m.write }];
    while (run.length < MAX_RUN) {
      const r = receiveMessageOnPort(port) as { message: Message } | undefined;
      if (r === undefined) break;
      const q = r.message;
      if ('write' in q && q.write.op === 'commitPacked' && q.write.after !== undefined) run.push({ id: q.id, write: q.write });
      else {
        next = q;
        break;
      }
    }
    let replies: Reply[];
    try {
      const results = writer.applyCommits(run.map((x) => x.write));
      replies = run.map((x, i) => ({ id: x.id, ok: true, result: results[i] as number }));
    } catch (err) {
      // Nothing of the run was written. Made one by one, the commit that fails fails alone and
      // the ones chained on it are refused (planned again), as without the run.
      replies = run.length === 1 ? [{ id: m.id, ok: false, message: (err as Error).message }] : run.map((x) => one(x.id, x.write));
    }
    port.postMessage(replies.length === 1 ? replies[0] : replies);
  } else {
    try {
      port.postMessage({ id: m.id, ok: true, result: writer.apply(m.write) });
    } catch (err) {
      port.postMessage({ id: m.id, ok: false, message: (err as Error).message });
    }
  }
  if (next !== undefined) {
    handle(next);
    return;
  }
  // Upkeep after the answer, so the write it follows is not kept waiting.
  try {
    writer.maintain();
  } catch {
    // retried after the next write; queries read the unindexed tail meanwhile
  }
}

port.on('message', handle);
