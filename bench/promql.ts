/**
 * promql: the engine alone, on the in-memory querier (no store, no HTTP), so that its share of a
 * query's latency is known. Prints median/min/max over runs; never fails on a time.
 *
 *   node dist/bench/promql.js [--runs N]
 *
 * - range: `sum by (job) (rate(x[5m]))` over 1,000 counters × 24 h of 15 s samples, 60 s step
 *   (1,441 steps, 5.76 M samples loaded);
 * - instant: `sum by (job) (rate(y[5m]))` and `y` at the end of 10,000 counters × 1 h of 15 s samples.
 */
import { cpus, totalmem } from 'node:os';
import { createMemoryQuerier, instantQuery, rangeQuery } from '../src/obs/promql/index.js';
import { median } from './lib/stats.js';

const SCRAPE_MS = 15_000;
const DAY_MS = 86_400_000;
const HOUR_MS = 3_600_000;

function loadCounters(q: ReturnType<typeof createMemoryQuerier>, metric: string, series: number, spanMs: number): number {
  const n = spanMs / SCRAPE_MS + 1;
  const ts = new Float64Array(n);
  for (let i = 0; i < n; i++) ts[i] = i * SCRAPE_MS;
  for (let s = 0; s < series; s++) {
    const vs = new Float64Array(n);
    let v = 0;
    for (let i = 0; i < n; i++) {
      // A counter with a per-series rate and a reset every ~6 h, so rate() does its reset work.
      v = i % 1440 === 1439 ? 0 : v + 1 + (s % 7);
      vs[i] = v;
    }
    q.add({ __name__: metric, job: `job${s % 10}`, instance: `host${s}:9100` }, ts, vs);
  }
  return series * n;
}

async function time(fn: () => Promise<unknown>, runs: number): Promise<{ median: number; min: number; max: number }> {
  await fn(); // warm-up: JIT and lazy filtering
  const ms: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await fn();
    ms.push(performance.now() - t0);
  }
  return { median: median(ms), min: Math.min(...ms), max: Math.max(...ms) };
}

function row(name: string, r: { median: number; min: number; max: number }, extra: string): void {
  console.log(`${name.padEnd(58)} median ${r.median.toFixed(1).padStart(7)} ms   min ${r.min.toFixed(1).padStart(7)}   max ${r.max.toFixed(1).padStart(7)}   ${extra}`);
}

async function main(): Promise<void> {
  const runsArg = process.argv.indexOf('--runs');
  const runs = runsArg > 0 ? Number(process.argv[runsArg + 1]) : 5;
  console.log(`promql bench: node ${process.version}, ${cpus().length} × ${cpus()[0]?.model ?? '?'}, ${(totalmem() / 2 ** 30).toFixed(1)} GiB, ${runs} runs after one warm-up`);

  const q = createMemoryQuerier();
  const t0 = performance.now();
  const samples = loadCounters(q, 'x', 1_000, DAY_MS);
  console.log(`loaded 1,000 series × 24 h (${(samples / 1e6).toFixed(2)} M samples) in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  let points = 0;
  const range = await time(async () => {
    const data = await rangeQuery(q, 'sum by (job) (rate(x[5m]))', 0, DAY_MS, 60_000);
    points = data.resultType === 'matrix' ? data.result.reduce((n, r) => n + r.values.length, 0) : 0;
  }, runs);
  row('range  sum by (job) (rate(x[5m])) 1k series 24h step 60s', range, `${points} points out`);

  const q2 = createMemoryQuerier();
  loadCounters(q2, 'y', 10_000, HOUR_MS);
  const inst = await time(() => instantQuery(q2, 'sum by (job) (rate(y[5m]))', HOUR_MS), runs);
  row('instant sum by (job) (rate(y[5m])) 10k series', inst, '');
  const sel = await time(() => instantQuery(q2, 'y', HOUR_MS), runs);
  row('instant y (10k series returned)', sel, '');
  const heap = process.memoryUsage();
  console.log(`heap used ${(heap.heapUsed / 2 ** 20).toFixed(0)} MiB, rss ${(heap.rss / 2 ** 20).toFixed(0)} MiB`);
}

await main();
