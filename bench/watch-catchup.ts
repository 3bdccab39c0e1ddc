/**
 * watch-catchup (issue 9 finding 2): a node restarted on a store of 100,000 revisions (1,000 keys
 * under `restart/`, 1 KiB values: ~100 MB of log) gets 2,000 watches from revision 1 over 20
 * WebSockets, half of which never read (bench/watch-catchup-client.ts). Meanwhile this process
 * PUTs small values with 4 requests in flight (closed loop) and samples the server's VmRSS every
 * 100 ms. The same PUT loop on the idle node (same process, before any watch) gives the
 * reference. Targets: p99 PUT latency during catch-up within 2× the idle node's, peak RSS under
 * 1 GiB. Each run starts a fresh node on the same store (so the ring of recent revisions is empty
 * and every watch catches up from the log).
 */
import Database from 'better-sqlite3';
import { fork, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { SqliteBackend } from '../src/backend/index.js';
import { result, round, sleep, type BenchContext, type Benchmark } from './lib/bench.js';
import { BENCH_DIST, spawnBeacon, track, type ListeningProcess } from './lib/proc.js';
import { mib, type BenchResult } from './lib/report.js';
import { latencySummary, median } from './lib/stats.js';

const REVISIONS = 100_000;
const KEYS = 1000;
const VALUE_BYTES = 1024;
const WATCHES = 2000;
const SOCKETS = 20;
const PUT_CONCURRENCY = 4;

/** Writes the store straight into SQLite through the real migrations (as bench/restart.ts does). */
export async function generateCatchUpStore(dir: string): Promise<void> {
  const path = join(dir, 'beacon.db');
  const backend = new SqliteBackend({ path });
  await backend.open();
  await backend.close();
  const db = new Database(path);
  try {
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = OFF');
    const insert = db.prepare('INSERT INTO kv_log (key, revision, create_revision, version, lease, value, deleted, ts, meta) VALUES (?, ?, ?, ?, 0, ?, 0, ?, NULL)');
    const names = Array.from({ length: KEYS }, (_, i) => `restart/app-${String(i % 100).padStart(2, '0')}/key-${String(i).padStart(7, '0')}`);
    const value = Buffer.alloc(VALUE_BYTES, 'x');
    const ts = Date.now() - REVISIONS;
    db.transaction(() => {
      for (let r = 1; r <= REVISIONS; r++) {
        const k = (r - 1) % KEYS;
        value.writeUInt32BE(r, 0);
        insert.run(names[k] as string, r, k + 1, Math.floor((r - 1) / KEYS) + 1, value, ts + r);
      }
    })();
    db.prepare("UPDATE meta SET value = ? WHERE name = 'revision'").run(REVISIONS);
    db.pragma('wal_checkpoint(TRUNCATE)');
  } finally {
    db.close();
  }
}

/** PUTs for `seconds` with PUT_CONCURRENCY requests in flight; resolves with each latency in ms and the failures. */
async function putLoop(url: string, seconds: number, tag: string): Promise<{ latencies: number[]; failed: number }> {
  const latencies: number[] = [];
  let failed = 0;
  const end = performance.now() + seconds * 1000;
  let n = 0;
  await Promise.all(
    Array.from({ length: PUT_CONCURRENCY }, async () => {
      while (performance.now() < end) {
        const i = n++;
        const t0 = performance.now();
        try {
          const res = await fetch(`${url}/v1/kv/bench/${tag}-${i % 100}`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: `{"value":"${'v'.repeat(100)}"}` });
          await res.arrayBuffer();
          if (res.status !== 200) failed++;
          else latencies.push(performance.now() - t0);
        } catch {
          failed++;
        }
      }
    }),
  );
  return { latencies, failed };
}

function request(child: ChildProcess, type: string, timeoutMs: number, send?: string): Promise<Record<string, number>> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`catch-up client: no '${type}' within ${timeoutMs} ms`)), timeoutMs);
    const on = (m: { type: string; error?: string }): void => {
      if (m.type !== type && m.type !== 'failed') return;
      clearTimeout(t);
      child.off('message', on);
      if (m.type === 'failed') reject(new Error(m.error));
      else resolve(m as unknown as Record<string, number>);
    };
    child.on('message', on);
    if (send !== undefined) child.send({ type: send });
  });
}

/** The watch-catchup benchmark (see the module comment). */
export const watchCatchup: Benchmark = {
  name: 'watch-catchup',
  title: `PUT latency and server RSS while ${WATCHES} watches catch up from revision 1 of ${REVISIONS / 1000}k revisions (${SOCKETS} sockets, half never read)`,
  async run(ctx: BenchContext): Promise<BenchResult> {
    const { opts } = ctx;
    const dir = ctx.tempDir('watch-catchup-');
    ctx.log(`watch-catchup: generating ${REVISIONS} revisions of ${VALUE_BYTES} B over ${KEYS} keys`);
    await generateCatchUpStore(dir);
    const seconds = Math.max(5, opts.durationS);
    const idleP99: number[] = [];
    const busyP99: number[] = [];
    const ratio: number[] = [];
    const peakRss: number[] = [];
    const idleRss: number[] = [];
    const notes: string[] = [];
    for (let run = 1; run <= opts.runs; run++) {
      let server: ListeningProcess | undefined;
      let child: ChildProcess | undefined;
      try {
        server = await spawnBeacon(dir);
        await putLoop(server.url, 1, 'warm');
        const idle = await putLoop(server.url, seconds, 'idle');
        const rssIdle = server.rssBytes();
        child = track(
          fork(join(BENCH_DIST, 'watch-catchup-client.js'), [], {
            env: { ...process.env, BENCH_WS_URL: `${server.url.replace('http', 'ws')}/v1/watch`, BENCH_SOCKETS: String(SOCKETS), BENCH_WATCHES: String(WATCHES) },
            stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
          }),
        );
        await request(child, 'ready', 60_000);
        let peak = rssIdle;
        const proc = server;
        const sampler = setInterval(() => {
          const v = proc.rssBytes();
          if (Number.isFinite(v)) peak = Math.max(peak, v);
        }, 100);
        const busy = await putLoop(server.url, seconds * 2, 'busy');
        clearInterval(sampler);
        const counts = await request(child, 'count', 10_000, 'count');
        const metrics = await (await fetch(`${server.url}/metrics`)).text();
        const waits = /^beacon_watch_limit_hits_total\{limit="catchup_bytes"\} (\d+)/m.exec(metrics)?.[1] ?? '0';
        const i = latencySummary(idle.latencies);
        const b = latencySummary(busy.latencies);
        idleP99.push(i.p99);
        busyP99.push(b.p99);
        ratio.push(b.p99 / i.p99);
        peakRss.push(mib(peak));
        idleRss.push(mib(rssIdle));
        const line =
          `run ${run}: idle p50 ${round(i.p50)} / p99 ${round(i.p99)} ms (${i.count} PUTs); catch-up p50 ${round(b.p50)} / p99 ${round(b.p99)} / max ${round(b.max)} ms ` +
          `(${b.count} PUTs, ${busy.failed} failed); RSS ${round(mib(rssIdle), 0)} → peak ${round(mib(peak), 0)} MiB; readers got ${round(mib(counts.received ?? 0), 0)} MiB, ` +
          `${counts.errors ?? 0} error frames, ${counts.closed ?? 0} sockets closed; ${waits} catch-up reads waited for the budget`;
        ctx.log(`watch-catchup ${line}`);
        notes.push(line);
      } finally {
        child?.send({ type: 'stop' });
        await sleep(100);
        child?.kill('SIGKILL');
        await server?.stop();
      }
    }
    notes.push(`PUTs: ${PUT_CONCURRENCY} in flight, 100-byte values; idle ${seconds} s then ${seconds * 2} s during catch-up; RSS = VmRSS sampled every 100 ms`);
    return result(
      watchCatchup,
      { revisions: REVISIONS, keys: KEYS, valueBytes: VALUE_BYTES, watches: WATCHES, sockets: SOCKETS, unreadSockets: SOCKETS / 2, putConcurrency: PUT_CONCURRENCY },
      [
        { name: 'PUT p99, idle node', unit: 'ms', values: idleP99 },
        { name: 'PUT p99, during catch-up', unit: 'ms', values: busyP99 },
        { name: 'p99 ratio catch-up / idle', unit: 'x', values: ratio, target: { op: '<=', value: 2 } },
        { name: 'server RSS, idle', unit: 'MiB', values: idleRss },
        { name: 'server peak RSS during catch-up', unit: 'MiB', values: peakRss, target: { op: '<', value: 1024 } },
      ],
      [`medians over ${opts.runs} runs: p99 ratio ${round(median(ratio))}x, peak RSS ${round(median(peakRss), 0)} MiB`, ...notes],
    );
  },
};
