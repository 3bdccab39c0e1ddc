/**
 * tsdb-postgres: the metrics store in PostgreSQL mode (issue 12). Two Beacon nodes share a
 * database:
 * - cross-node visibility lag: a JSON push to node A, then instant queries on node B every 50 ms
 *   until the sample is there (the flush interval is 2 s, so expect 1–3 s); `BENCH_PUSHES` pushes
 *   (default 20), with varying pauses so they fall at different points of the flush cycle;
 * - remote-write ingestion into node A (1,000 series × 2 h at 15 s = 480,000 samples, 4 senders in
 *   lockstep, as in tsdb-prometheus.ts), and the time until node B answers a `count_over_time`
 *   over all of them.
 * Prints figures; never fails on a time. PostgreSQL as in bench/postgres-put.ts
 * (`BENCH_POSTGRES_URL` for an external one). Run: `npm run build && node dist/bench/tsdb-postgres.js`
 */
import { readFileSync } from 'node:fs';
import { encodeRemoteWrite } from '../src/obs/ingest/index.js';
import { tempDir } from '../test/helpers/node.js';
import { startPostgres } from '../test/helpers/postgres.js';
import { formatMachine, machineInfo } from './lib/machine.js';
import { ROOT, killLiveChildren, spawnBeacon, stopAll, type ListeningProcess } from './lib/proc.js';
import { latencySummary } from './lib/stats.js';

const PUSHES = Number(process.env.BENCH_PUSHES ?? 20);
const SERIES = 1000;
const HOURS = 2;
const STEP_MS = 15_000;

function log(msg: string): void {
  process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}

async function instant(base: string, expr: string, timeSec: number): Promise<{ metric: Record<string, string>; value: [number, string] }[]> {
  const res = await fetch(`${base}/api/v1/query?query=${encodeURIComponent(expr)}&time=${timeSec}`);
  const body = (await res.json()) as { status: string; data?: { result: { metric: Record<string, string>; value: [number, string] }[] }; error?: string };
  if (body.status !== 'success') throw new Error(`${expr}: ${body.error ?? res.status}`);
  return body.data?.result ?? [];
}

async function main(): Promise<void> {
  const external = process.env.BENCH_POSTGRES_URL;
  if (external) process.env.BEACON_TEST_POSTGRES_URL = external;
  const dirs = [tempDir('bench-tsdbpg-a-'), tempDir('bench-tsdbpg-b-')];
  process.stdout.write(`${formatMachine(machineInfo((dirs[0] as { dir: string }).dir, ROOT))}\n\n`);
  const pg = await startPostgres();
  let a: ListeningProcess | undefined;
  let b: ListeningProcess | undefined;
  try {
    const url = await pg.createDatabase();
    const flags = ['--backend', url, '--ingest-rate-limit', 'off', '--max-series-per-push', '100000'];
    a = await spawnBeacon((dirs[0] as { dir: string }).dir, flags);
    b = await spawnBeacon((dirs[1] as { dir: string }).dir, flags);

    log(`cross-node lag, ${PUSHES} pushes`);
    const lags: number[] = [];
    for (let i = 0; i < PUSHES; i++) {
      const t = Date.now();
      const res = await fetch(`${a.url}/v1/metrics`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'bench.lag', value: i, labels: { i: String(i) }, timestamp: t }),
      });
      if (res.status !== 200) throw new Error(`push answered ${res.status}: ${await res.text()}`);
      const acked = performance.now();
      for (;;) {
        const r = await instant(b.url, `bench_lag{i="${i}"}`, t / 1000);
        if (r.length === 1) break;
        if (performance.now() - acked > 60_000) throw new Error(`push ${i} not visible on node B after 60 s`);
        await new Promise((r2) => setTimeout(r2, 50));
      }
      lags.push(performance.now() - acked);
      // A pause that varies (100–2,099 ms), so pushes fall at different points of the flush cycle.
      await new Promise((r) => setTimeout(r, 100 + ((i * 737) % 2000)));
    }

    log('remote write into node A');
    const end = Math.floor(Date.now() / 60_000) * 60_000 - 60_000;
    const start = end - HOURS * 3_600_000;
    const steps = (HOURS * 3_600_000) / STEP_MS;
    const shards: Uint8Array<ArrayBuffer>[][] = [[], [], [], []];
    let samples = 0;
    for (let k = 0; k < steps; k += 40) {
      for (let w = 0; w < 4; w++) {
        const series = [];
        for (let s = w; s < SERIES; s += 4) {
          const out: { value: number; timestamp: number }[] = [];
          for (let j = k; j < Math.min(steps, k + 40); j++) out.push({ value: j * (1 + (s % 7)), timestamp: start + j * STEP_MS });
          samples += out.length;
          series.push({ labels: [{ name: '__name__', value: 'bench_rw' }, { name: 'instance', value: `host-${s}:9100` }], samples: out });
        }
        (shards[w] as Uint8Array<ArrayBuffer>[]).push(new Uint8Array(encodeRemoteWrite(series)));
      }
    }
    const base = a.url;
    const sendStarted = performance.now();
    for (let r = 0; r < (shards[0] as Uint8Array<ArrayBuffer>[]).length; r++) {
      await Promise.all(
        shards.map(async (s) => {
          const res = await fetch(`${base}/api/v1/write`, { method: 'POST', body: s[r] as Uint8Array<ArrayBuffer>, headers: { 'content-type': 'application/x-protobuf', 'content-encoding': 'snappy' } });
          if (res.status >= 300) throw new Error(`remote write answered ${res.status}: ${await res.text()}`);
          await res.arrayBuffer();
        }),
      );
    }
    const sendSec = (performance.now() - sendStarted) / 1000;
    const expr = `sum(count_over_time(bench_rw[${HOURS * 60 + 1}m]))`;
    for (;;) {
      const r = await instant(b.url, expr, end / 1000);
      if (Number(r[0]?.value[1] ?? 0) >= samples) break;
      if (performance.now() - sendStarted > 600_000) throw new Error('node B did not see every sample in 10 minutes');
      await new Promise((r2) => setTimeout(r2, 100));
    }
    const visibleSec = (performance.now() - sendStarted) / 1000;

    const lag = latencySummary(lags);
    const rows: [string, string][] = [
      ['cross-node lag, push to A → visible on B: p50 ms', lag.p50.toFixed(0)],
      ['  … p99 ms', lag.p99.toFixed(0)],
      ['  … max ms', lag.max.toFixed(0)],
      [`remote write into A (${samples.toLocaleString('en')} samples): samples/s`, Math.round(samples / sendSec).toLocaleString('en')],
      ['  … all of them answered by node B after (s, from the first request)', visibleSec.toFixed(1)],
    ];
    const width = Math.max(...rows.map((r) => r[0].length));
    for (const [k, v] of rows) process.stdout.write(`${k.padEnd(width)}  ${v}\n`);
    process.stdout.write(`\nload ${readFileSync('/proc/loadavg', 'utf8').trim()}\n`);
  } finally {
    await stopAll([a, b]);
    killLiveChildren();
    await pg.stop();
    for (const d of dirs) d.cleanup();
  }
}

main().catch((err: unknown) => {
  killLiveChildren();
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
