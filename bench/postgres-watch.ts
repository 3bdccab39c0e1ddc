/**
 * postgres-watch: cross-node watch latency on PostgreSQL. Two Beacon nodes share a database; a
 * client watches a prefix over node B's WebSocket while PUTs go to node A at a steady rate. The
 * latency of one write is from sending the PUT to A until the event arrives from B (so it
 * includes A's durable commit, the NOTIFY, B's log read and B's fan-out). Target: p99 < 50 ms.
 *
 * PostgreSQL as in bench/postgres-put.ts. Knobs: `BENCH_DURATION_S` (default 10),
 * `BENCH_RATE` (writes per second, default 500), `BENCH_CONCURRENCY` (writers, default 8).
 *
 * Run: `npm run build && node dist/bench/postgres-watch.js`
 */
import WebSocket from 'ws';
import { tempDir } from '../test/helpers/node.js';
import { startPostgres } from '../test/helpers/postgres.js';
import { spawnBeacon, stopAll, type ListeningProcess } from './lib/proc.js';
import { latencySummary } from './lib/stats.js';

const num = (name: string, dflt: number): number => {
  const v = Number(process.env[name]);
  return Number.isFinite(v) && v > 0 ? v : dflt;
};
const DURATION_S = num('BENCH_DURATION_S', 10);
const RATE = num('BENCH_RATE', 500);
const CONCURRENCY = num('BENCH_CONCURRENCY', 8);

async function main(): Promise<void> {
  const external = process.env.BENCH_POSTGRES_URL;
  if (external) process.env.BEACON_TEST_POSTGRES_URL = external;
  const pg = await startPostgres();
  const dirs = [tempDir('bench-pgw-a-'), tempDir('bench-pgw-b-')];
  let a: ListeningProcess | undefined;
  let b: ListeningProcess | undefined;
  let ws: WebSocket | undefined;
  try {
    const url = await pg.createDatabase();
    a = await spawnBeacon((dirs[0] as { dir: string }).dir, ['--backend', url]);
    b = await spawnBeacon((dirs[1] as { dir: string }).dir, ['--backend', url]);
    const sent = new Map<string, number>();
    const latencies: number[] = [];
    let measuring = false;
    const socket = new WebSocket(`${b.url.replace(/^http/, 'ws')}/v1/watch`);
    ws = socket;
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.on('message', (data) => {
        const now = performance.now();
        const f = JSON.parse(String(data)) as { type: string; events?: { kv: { key: string } }[] };
        if (f.type === 'created') resolve();
        if (f.type !== 'events' || !measuring) return;
        for (const e of f.events ?? []) {
          const t = sent.get(e.kv.key);
          if (t !== undefined) latencies.push(now - t);
        }
      });
      socket.once('open', () => socket.send(JSON.stringify({ type: 'create', key: 'lat/', prefix: true })));
    });

    const base = a.url;
    let n = 0;
    const run = async (seconds: number): Promise<void> => {
      const deadline = performance.now() + seconds * 1000;
      const interval = (1000 * CONCURRENCY) / RATE; // each writer's pace
      await Promise.all(
        Array.from({ length: CONCURRENCY }, async (_, w) => {
          let next = performance.now() + (interval * w) / CONCURRENCY;
          while (performance.now() < deadline) {
            const wait = next - performance.now();
            if (wait > 0) await new Promise((r) => setTimeout(r, wait));
            next += interval;
            const key = `lat/${n++}`;
            sent.set(key, performance.now());
            const res = await fetch(`${base}/v1/kv/${key}`, {
              method: 'PUT',
              headers: { 'content-type': 'application/json' },
              body: '{"value":"x"}',
            });
            await res.arrayBuffer();
          }
        }),
      );
    };
    await run(1); // warm-up
    await new Promise((r) => setTimeout(r, 200));
    measuring = true;
    await run(DURATION_S);
    await new Promise((r) => setTimeout(r, 500));
    measuring = false;
    const s = latencySummary(latencies);
    console.log(`postgres-watch: writes to node A at ${RATE}/s by ${CONCURRENCY} writers for ${DURATION_S} s, watched on node B`);
    console.log(
      `PUT on A → event on B: ${latencies.length} events   p50 ${s.p50.toFixed(2)} ms   p99 ${s.p99.toFixed(2)} ms   max ${s.max.toFixed(1)} ms`,
    );
  } finally {
    ws?.terminate();
    await stopAll([a, b]);
    await pg.stop();
    for (const d of dirs) d.cleanup();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
