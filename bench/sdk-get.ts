/**
 * sdk-get: the SDK's overhead on a GET. The same key is read from one `beacon serve` with the
 * SDK (`client.get`: failover, retries, breaker, typed decoding) and with a bare `fetch` +
 * `res.json()` over the same keep-alive pool, in alternating rounds of the same run, one request
 * at a time and 32 at a time. Target (issue 4): SDK mean latency ≤ 110 % of bare fetch.
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
    console.log('mode          reader  mean ms   p50 ms   p99 ms   req/s');
    const overheads: string[] = [];
    for (const concurrency of [1, CONCURRENCY]) {
      const lat: Record<string, number[]> = { fetch: [], sdk: [] };
      const elapsed: Record<string, number> = { fetch: 0, sdk: 0 };
      for (let round = 0; round < ROUNDS; round++) {
        // Alternate which goes first, so drift (GC, CPU frequency) hits both alike.
        const order = round % 2 === 0 ? (['fetch', 'sdk'] as const) : (['sdk', 'fetch'] as const);
        for (const name of order) {
          const r = await load(readers[name], REQUESTS / ROUNDS, concurrency);
          lat[name]?.push(...r.lat);
          elapsed[name] = (elapsed[name] ?? 0) + r.elapsedMs;
        }
      }
      const mean: Record<string, number> = {};
      for (const name of ['fetch', 'sdk'] as const) {
        const l = lat[name] ?? [];
        const s = latencySummary(l);
        mean[name] = l.reduce((a, b) => a + b, 0) / l.length;
        const rps = (l.length / (elapsed[name] ?? 1)) * 1000;
        console.log(`${`concurrency ${concurrency}`.padEnd(14)}${name.padEnd(8)}${fmt(mean[name] ?? 0).padStart(7)}  ${fmt(s.p50).padStart(7)}  ${fmt(s.p99).padStart(7)}  ${rps.toFixed(0).padStart(7)}`);
      }
      const overhead = ((mean.sdk ?? 0) / (mean.fetch ?? 1) - 1) * 100;
      overheads.push(`concurrency ${concurrency}: ${overhead >= 0 ? '+' : ''}${overhead.toFixed(1)} %`);
    }
    console.log(`SDK overhead on mean latency (target ≤ +10 %): ${overheads.join(', ')}`);
    client.close();
  } finally {
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
