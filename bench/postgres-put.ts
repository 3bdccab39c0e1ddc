/**
 * postgres-put: durable PUTs of fresh keys at 128 concurrent requests (wrk) against one Beacon
 * node on PostgreSQL, then GET of one key on that node and on a SQLite node (the view serves
 * both, so they should match). Prints ops/s and p50/p99/max; never fails on a time.
 *
 * PostgreSQL: `BENCH_POSTGRES_URL` (or `BEACON_TEST_POSTGRES_URL`) names a server on which a fresh
 * database is created; otherwise a temporary local server is started (test/helpers/postgres.ts).
 * Knobs: `BENCH_DURATION_S` (default 10), `BENCH_WARMUP_S` (2), `BENCH_CONNECTIONS` (128),
 * `BENCH_THREADS` (2), `BENCH_VALUE_BYTES` (128).
 *
 * Run: `npm run build && node dist/bench/postgres-put.js`
 */
import { cpus } from 'node:os';
import { startPostgres } from '../test/helpers/postgres.js';
import { tempDir } from '../test/helpers/node.js';
import { spawnBeacon, stopAll, type ListeningProcess } from './lib/proc.js';
import { cpuSeconds } from './lib/server-stats.js';
import { runWrk, type WrkResult } from './lib/wrk.js';

const num = (name: string, dflt: number): number => {
  const v = Number(process.env[name]);
  return Number.isFinite(v) && v > 0 ? v : dflt;
};
const DURATION_S = num('BENCH_DURATION_S', 10);
const WARMUP_S = num('BENCH_WARMUP_S', 2);
const CONNECTIONS = num('BENCH_CONNECTIONS', 128);
const THREADS = num('BENCH_THREADS', 2);
const VALUE_BYTES = num('BENCH_VALUE_BYTES', 128);

function line(what: string, r: WrkResult, extra = ''): string {
  return (
    `${what.padEnd(34)} ${Math.round(r.rps).toString().padStart(7)} ops/s   p50 ${r.p50Ms.toFixed(2)} ms   ` +
    `p99 ${r.p99Ms.toFixed(2)} ms   max ${r.maxMs.toFixed(1)} ms   errors ${r.errors}${extra}`
  );
}

async function main(): Promise<void> {
  const external = process.env.BENCH_POSTGRES_URL;
  if (external) process.env.BEACON_TEST_POSTGRES_URL = external;
  const pg = await startPostgres();
  const dirs = [tempDir('bench-pg-'), tempDir('bench-sqlite-')];
  let node: ListeningProcess | undefined;
  let sqlite: ListeningProcess | undefined;
  try {
    const url = await pg.createDatabase();
    node = await spawnBeacon((dirs[0] as { dir: string }).dir, ['--backend', url]);
    console.log(`postgres-put: ${cpus().length} CPUs, ${CONNECTIONS} connections, ${VALUE_BYTES}-byte values, ${DURATION_S} s`);
    console.log(`node ${node.url} on ${pg.restartable ? 'a temporary local PostgreSQL' : 'the given PostgreSQL'}`);
    const common = { url: node.url, threads: THREADS, connections: CONNECTIONS, mode: 'put' as const, valueBytes: VALUE_BYTES };
    await runWrk({ ...common, durationS: WARMUP_S, putPrefix: '/v1/kv/bench/warm/' });
    const cpu0 = cpuSeconds(node.pid);
    const t0 = performance.now();
    const put = await runWrk({ ...common, durationS: DURATION_S, putPrefix: '/v1/kv/bench/put/' });
    const cpuPct = ((cpuSeconds(node.pid) - cpu0) / ((performance.now() - t0) / 1000)) * 100;
    console.log(line(`durable PUT x${CONNECTIONS}`, put, `   node CPU ${Math.round(cpuPct)} %`));
    if (put.errors > 0) console.log(`  errors: ${put.errorDetail}`);

    const one = await runWrk({ ...common, connections: 1, threads: 1, durationS: Math.max(2, DURATION_S / 2), putPrefix: '/v1/kv/bench/one/' });
    console.log(line('durable PUT x1', one));

    // GET is served from the view on either backend: compare with a SQLite node.
    sqlite = await spawnBeacon((dirs[1] as { dir: string }).dir);
    const key = '/v1/kv/bench/get/app-config';
    for (const base of [node.url, sqlite.url]) {
      const res = await fetch(`${base}${key}`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: '{"value":"{\\"timeoutMs\\":2500}"}' });
      if (!res.ok) throw new Error(`PUT on ${base} answered ${res.status}`);
    }
    const getOpts = { threads: THREADS, connections: 64, mode: 'get' as const, durationS: Math.max(2, DURATION_S / 2) };
    await runWrk({ ...getOpts, url: `${node.url}${key}`, durationS: 1 });
    const getPg = await runWrk({ ...getOpts, url: `${node.url}${key}` });
    await runWrk({ ...getOpts, url: `${sqlite.url}${key}`, durationS: 1 });
    const getSqlite = await runWrk({ ...getOpts, url: `${sqlite.url}${key}` });
    console.log(line('GET x64 (PostgreSQL node)', getPg));
    console.log(line('GET x64 (SQLite node)', getSqlite));
  } finally {
    await stopAll([node, sqlite]);
    await pg.stop();
    for (const d of dirs) d.cleanup();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
