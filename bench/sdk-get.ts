/**
 * sdk-get: the SDK's overhead on a GET. The same key is read from one `beacon serve` with the
 * SDK (`client.get`: failover, retries, breaker, typed decoding) and with a bare `fetch` +
 * `res.json()` over the same keep-alive pool (the global dispatcher) with the same headers, in
 * alternating rounds of the same run, one request at a time and 32 at a time. Target (issue 4):
 * SDK mean latency ≤ 110 % of bare fetch. The overhead is reported as the median of the rounds'
 * ratios (each round's SDK mean over the fetch mean measured next to it), so that a burst of noise
 * from other processes on the machine moves one round, not the figure.
 * Prints figures; never fails on a time. Run: `npm run build && node dist/bench/sdk-get.js [--requests N]`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient } from '../client/index.js';
import { spawnBeacon, type ListeningProcess } from './lib/proc.js';
import { latencySummary } from './lib/stats.js';

const KEY = 'bench/sdk-get/app-config';
const VALUE = JSON.stringify({ featureFlags: { newCheckout: true, darkMode: false }, timeoutMs: 2500, region: 'eu-west-1' });
const arg = (name: string, dflt: number): number => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
};
const REQUESTS = arg('--requests', 20_000);
const ROUNDS = 10;
const CONCURRENCY = 32;

type Reader = () => Promise<unknown>;

/** Runs `total` reads, `concurrency` at a time; returns per-request latencies (ms) and elapsed ms. */
async function load(read: Reader, total: number, concurrency: number): Promise<{ lat: number[]; elapsedMs: number }> {
  const lat: number[] = [];
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < total) {
        next++;
        const s = performance.now();
        await read();
        lat.push(performance.now() - s);
      }
    }),
  );
  return { lat, elapsedMs: performance.now() - t0 };
}

function fmt(n: number): string {
  return n.toFixed(3);
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'beacon-bench-sdk-get-'));
  let server: ListeningProcess | undefined;
  try {
    server = await spawnBeacon(dir);
    const client = createClient({ endpoint: server.url });
    await client.put(KEY, VALUE);
    const url = `${server.url}/v1/kv/${KEY}`;
    const readers: Record<'fetch' | 'sdk', Reader> = {
      fetch: async () => {
        const res = await fetch(url, { headers: { accept: 'application/json' } });
        if (!res.ok) throw new Error(`GET answered ${res.status}`);
        return res.json();
      },
      sdk: () => client.get(KEY),
    };
    // Warm up both paths (JIT, connection pool).
    for (const r of Object.values(readers)) await load(r, 2000, CONCURRENCY);

    console.log(`sdk-get: ${REQUESTS} GETs per reader and mode, ${ROUNDS} alternating rounds, against ${server.url}`);
    console.log('mode            reader  mean ms   p50 ms   p99 ms   req/s');
    const overheads: string[] = [];
    for (const concurrency of [1, CONCURRENCY]) {
      const lat: Record<string, number[]> = { fetch: [], sdk: [] };
      const elapsed: Record<string, number> = { fetch: 0, sdk: 0 };
      const ratios: number[] = [];
      for (let round = 0; round < ROUNDS; round++) {
        // Alternate which goes first, so drift (GC, CPU frequency) hits both alike.
        const order = round % 2 === 0 ? (['fetch', 'sdk'] as const) : (['sdk', 'fetch'] as const);
        const roundMean: Record<string, number> = {};
        for (const name of order) {
          const r = await load(readers[name], REQUESTS / ROUNDS, concurrency);
          lat[name]?.push(...r.lat);
          elapsed[name] = (elapsed[name] ?? 0) + r.elapsedMs;
          roundMean[name] = r.lat.reduce((a, b) => a + b, 0) / r.lat.length;
        }
        ratios.push((roundMean.sdk ?? 0) / (roundMean.fetch ?? 1));
      }
      const mean: Record<string, number> = {};
      for (const name of ['fetch', 'sdk'] as const) {
        const l = lat[name] ?? [];
        const s = latencySummary(l);
        mean[name] = l.reduce((a, b) => a + b, 0) / l.length;
        const rps = (l.length / (elapsed[name] ?? 1)) * 1000;
        console.log(`${`concurrency ${concurrency}`.padEnd(16)}${name.padEnd(8)}${fmt(mean[name] ?? 0).padStart(7)}  ${fmt(s.p50).padStart(7)}  ${fmt(s.p99).padStart(7)}  ${rps.toFixed(0).padStart(7)}`);
      }
      const pct = (ratio: number): string => `${ratio >= 1 ? '+' : ''}${((ratio - 1) * 100).toFixed(1)} %`;
      const sorted = [...ratios].sort((a, b) => a - b);
      const median = ((sorted[(ROUNDS - 1) >> 1] ?? 1) + (sorted[ROUNDS >> 1] ?? 1)) / 2;
      overheads.push(`concurrency ${concurrency}: ${pct(median)} (rounds ${pct(sorted[0] ?? 1)} … ${pct(sorted[ROUNDS - 1] ?? 1)}; all requests ${pct((mean.sdk ?? 0) / (mean.fetch ?? 1))})`);
    }
    console.log(`SDK overhead on mean latency, median of ${ROUNDS} rounds (target ≤ +10 %):\n  ${overheads.join('\n  ')}`);
    client.close();
  } finally {
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
