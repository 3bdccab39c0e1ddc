/**
 * postgres-vs-pgbench (issue 17 target 6): Beacon's durable PUT at 128 connections on a
 * PostgreSQL backend against `pgbench`'s single-row upsert rate on the same database of the same
 * server, in the same run, alternating which goes first.
 *
 * - PostgreSQL: a temporary local server (test/helpers/postgres.ts: Debian's PostgreSQL, default
 *   durability: `fsync` and `synchronous_commit` on), or the server `BENCH_POSTGRES_URL` names.
 * - Beacon: `serve --dev --backend <that database>`, loaded by the suite's own generator: PUT of
 *   256-byte values, each request one of 10,000 keys picked at random (the vs-etcd workload).
 * - pgbench: `pgbench -n -f upsert.sql -c 128 -j 2 -T S` on a table `bench_upsert (k int primary
 *   key, v text)` in the same database, seeded with the same 10,000 keys; `upsert.sql` is one
 *   `INSERT … ON CONFLICT (k) DO UPDATE` of a random key with a 256-byte value (one durable
 *   commit per statement, as Beacon's PUT).
 *
 * - While each side runs, `pg_stat_activity` is sampled every 50 ms: what that side's server
 *   processes were doing (on CPU, or the wait event: the counter row lock, WAL flush, waiting for
 *   the client…) and how many were active at once; the notes list the shares.
 *
 * Target: Beacon ≥ 80 % of pgbench's rate. Never fails on a time.
 */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { startPostgres } from '../test/helpers/postgres.js';
import { result, round, sleep, type BenchContext, type Benchmark } from './lib/bench.js';
import { runHttpLoad, type HttpLoadResult } from './lib/load.js';
import { spawnBeacon, track, type ListeningProcess } from './lib/proc.js';
import type { BenchResult } from './lib/report.js';
import { cpuSeconds, histogramDelta, readHistogram, scrapeMetrics } from './lib/server-stats.js';
import { median } from './lib/stats.js';

const CONNECTIONS = 128;
const KEY_SPACE = 10_000;
const VALUE_BYTES = 256;
/** Seconds added to pgbench's -T for connecting its clients (see the call). */
const PGBENCH_CONNECT_ALLOWANCE_S = 8;

/** The newest installed PostgreSQL's pgbench (Debian keeps it under /usr/lib/postgresql/<v>/bin). */
function pgbenchPath(): string {
  if (process.env.BENCH_PGBENCH !== undefined) return process.env.BENCH_PGBENCH;
  const base = '/usr/lib/postgresql';
  const versions = existsSync(base) ? readdirSync(base).filter((v) => existsSync(join(base, v, 'bin', 'pgbench'))).sort((a, b) => Number(b) - Number(a)) : [];
  if (versions[0] === undefined) throw new Error('pgbench not found under /usr/lib/postgresql/*/bin: install PostgreSQL (scripts/ensure-system-deps.sh) or set BENCH_PGBENCH');
  return join(base, versions[0], 'bin', 'pgbench');
}

interface PgbenchResult {
  tps: number;
  latencyAvgMs: number;
  failed: number;
  output: string;
}

/** Runs pgbench with `args` against `url`; parses tps (without connection time) and the mean latency. */
function runPgbench(url: string, args: string[]): Promise<PgbenchResult> {
  return new Promise((resolve, reject) => {
    const child = track(spawn(pgbenchPath(), [...args, url], { stdio: ['ignore', 'pipe', 'pipe'] }));
    let out = '';
    child.stdout?.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr?.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.once('error', reject);
    child.once('exit', (code) => {
      const tps = /tps = ([\d.]+) \(without initial connection time\)/.exec(out) ?? /tps = ([\d.]+)/.exec(out);
      if (code !== 0 || tps === null || /actually processed: 0\b/.test(out)) {
        reject(new Error(`pgbench exited with ${code}: ${out.slice(-1000)}`));
        return;
      }
      const lat = /latency average = ([\d.]+) ms/.exec(out);
      const failed = /number of failed transactions: (\d+)/.exec(out);
      resolve({ tps: Number(tps[1]), latencyAvgMs: Number(lat?.[1] ?? Number.NaN), failed: Number(failed?.[1] ?? 0), output: out });
    });
  });
}

/** What one side's PostgreSQL processes did, sampled: counts per state/wait event, and active processes per sample. */
interface Activity {
  samples: number;
  active: number;
  byState: Map<string, number>;
}

/**
 * Samples `pg_stat_activity` every `everyMs` for the sessions whose application_name is `app`
 * until the returned stop() is called. A session counts as `CPU` when active without a wait
 * event, else as its wait event (`Lock:tuple`, `LWLock:WALWrite`, `IO:WALSync`, `Client:ClientRead`
 * for an idle-in-transaction session waiting for its client…); idle sessions are not counted.
 */
function sampleActivity(url: string, app: string, everyMs = 50): { stop: () => Promise<Activity> } {
  const acc: Activity = { samples: 0, active: 0, byState: new Map() };
  const client = new pg.Client({ connectionString: url, application_name: 'bench-sampler' });
  client.on('error', () => undefined);
  let stopped = false;
  const loop = (async () => {
    await client.connect();
    while (!stopped) {
      const res = await client.query<{ s: string; n: string }>(
        `SELECT CASE WHEN state = 'active' AND wait_event IS NULL THEN 'CPU'
                     WHEN wait_event IS NULL THEN state ELSE wait_event_type || ':' || wait_event END AS s, count(*) AS n
           FROM pg_stat_activity WHERE application_name = $1 AND state <> 'idle' AND pid <> pg_backend_pid() GROUP BY 1`,
        [app],
      );
      acc.samples++;
      for (const r of res.rows) {
        const n = Number(r.n);
        acc.byState.set(r.s, (acc.byState.get(r.s) ?? 0) + n);
        if (r.s !== 'idle in transaction' && r.s !== 'Client:ClientRead') acc.active += n;
      }
      await sleep(everyMs);
    }
  })();
  return {
    stop: async () => {
      stopped = true;
      await loop.catch(() => undefined);
      await client.end().catch(() => undefined);
      return acc;
    },
  };
}

function mergeActivity(list: Activity[]): Activity {
  const out: Activity = { samples: 0, active: 0, byState: new Map() };
  for (const a of list) {
    out.samples += a.samples;
    out.active += a.active;
    for (const [k, v] of a.byState) out.byState.set(k, (out.byState.get(k) ?? 0) + v);
  }
  return out;
}

/** "CPU 41 %, Lock:tuple 30 %, …; 2.1 active" — shares of the sampled non-idle sessions. */
function describeActivity(a: Activity): string {
  const total = [...a.byState.values()].reduce((x, y) => x + y, 0);
  if (total === 0) return 'no samples';
  const parts = [...a.byState.entries()]
    .sort((x, y) => y[1] - x[1])
    .slice(0, 6)
    .map(([k, v]) => `${k} ${Math.round((v / total) * 100)} %`);
  return `${parts.join(', ')}; ${round(a.active / Math.max(1, a.samples), 1)} server processes busy on average`;
}

interface RunOut {
  /** `batch`: mean writes per backend transaction; `commitMs`: mean backend transaction time. */
  beacon: HttpLoadResult & { cpuPct: number; batch: number; commitMs: number; activity: Activity };
  pgbench: PgbenchResult & { activity: Activity };
}

/** The postgres-vs-pgbench benchmark (see the module comment). */
export const postgresVsPgbench: Benchmark = {
  name: 'postgres-vs-pgbench',
  title: "durable PUT ×128 on PostgreSQL against pgbench's single-row upsert on the same database, same run",
  async run(ctx: BenchContext): Promise<BenchResult> {
    const { opts } = ctx;
    const external = process.env.BENCH_POSTGRES_URL;
    if (external !== undefined && external !== '') process.env.BEACON_TEST_POSTGRES_URL = external;
    const server = await startPostgres();
    let beacon: ListeningProcess | undefined;
    const runs: RunOut[] = [];
    let version = '';
    let settings = '';
    try {
      const url = await server.createDatabase();
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      try {
        version = ((await client.query<{ v: string }>('SELECT version() AS v')).rows[0]?.v ?? '').split(' on ')[0] ?? '';
        const s = await client.query<{ name: string; setting: string }>(
          "SELECT name, setting FROM pg_settings WHERE name IN ('fsync', 'synchronous_commit', 'wal_sync_method', 'shared_buffers', 'max_connections') ORDER BY name",
        );
        settings = s.rows.map((r) => `${r.name}=${r.setting}`).join(', ');
        await client.query('CREATE TABLE bench_upsert (k int PRIMARY KEY, v text NOT NULL)');
        await client.query(`INSERT INTO bench_upsert SELECT g, repeat('v', ${VALUE_BYTES}) FROM generate_series(1, ${KEY_SPACE}) g`);
      } finally {
        await client.end();
      }
      const script = join(ctx.tempDir('pgbench-'), 'upsert.sql');
      writeFileSync(
        script,
        `\\set k random(1, ${KEY_SPACE})\nINSERT INTO bench_upsert (k, v) VALUES (:k, repeat(md5(CAST(:k AS text)), ${VALUE_BYTES / 32})) ON CONFLICT (k) DO UPDATE SET v = excluded.v;\n`,
      );
      beacon = await spawnBeacon(ctx.tempDir('pg-beacon-'), ['--backend', url]);
      const srv = beacon;
      const beaconWindow = async (ms: number, warmupMs: number): Promise<RunOut['beacon']> => {
        const before = await scrapeMetrics(srv.url);
        const cpu0 = cpuSeconds(srv.pid);
        const t0 = performance.now();
        const sampler = sampleActivity(url, 'beacon');
        const r = await runHttpLoad({
          loader: 'own',
          url: srv.url,
          threads: 1,
          warmupMs,
          durationMs: ms,
          mode: 'put',
          connections: CONNECTIONS,
          keyOrder: 'random',
          keySpace: KEY_SPACE,
          keyPrefix: 'bench/rand/',
          valueBytes: VALUE_BYTES,
        });
        const activity = await sampler.stop();
        const cpuPct = ((cpuSeconds(srv.pid) - cpu0) / ((performance.now() - t0) / 1000)) * 100;
        const after = await scrapeMetrics(srv.url);
        const b = histogramDelta(readHistogram(after, 'beacon_backend_commit_batch_size'), readHistogram(before, 'beacon_backend_commit_batch_size'));
        const c = histogramDelta(readHistogram(after, 'beacon_backend_commit_duration_seconds'), readHistogram(before, 'beacon_backend_commit_duration_seconds'));
        return { ...r, cpuPct, batch: b.sum / b.count, commitMs: (c.sum / c.count) * 1000, activity };
      };
      // pgbench's -T includes connecting its 128 clients, which took 5 s on the busy VM: the
      // allowance keeps the window of upserts about `s` long; its rate is the one it prints
      // "without initial connection time".
      const pgbenchArgs = (s: number): string[] => ['-n', '-f', script, '-c', String(CONNECTIONS), '-j', '2', '-T', String(s + PGBENCH_CONNECT_ALLOWANCE_S)];
      // Unmeasured: both key spaces written once, JIT, connection pools, PostgreSQL's caches.
      ctx.log('postgres-vs-pgbench: warm-up');
      await beaconWindow(3000, 1000);
      await runPgbench(url, pgbenchArgs(5));
      const pgbenchWindow = async (s: number): Promise<RunOut['pgbench']> => {
        const sampler = sampleActivity(url, 'pgbench');
        const p = await runPgbench(url, pgbenchArgs(s));
        return { ...p, activity: await sampler.stop() };
      };
      const seconds = Math.max(1, Math.round(opts.pgDurationS));
      for (let i = 1; i <= opts.runs; i++) {
        let b: RunOut['beacon'] | undefined;
        let p: RunOut['pgbench'] | undefined;
        const order = i % 2 === 1 ? ['beacon', 'pgbench'] : ['pgbench', 'beacon'];
        for (const who of order) {
          if (who === 'beacon') b = await beaconWindow(seconds * 1000, 1000);
          else p = await pgbenchWindow(seconds);
          await sleep(300);
        }
        const run = { beacon: b as RunOut['beacon'], pgbench: p as RunOut['pgbench'] };
        runs.push(run);
        ctx.log(
          `postgres-vs-pgbench run ${i}/${opts.runs}: Beacon ${Math.round(run.beacon.rps)}/s p50 ${round(run.beacon.p50Ms)} p99 ${round(run.beacon.p99Ms)} ms; ` +
            `pgbench ${Math.round(run.pgbench.tps)}/s mean ${round(run.pgbench.latencyAvgMs)} ms; ratio ${round((run.beacon.rps / run.pgbench.tps) * 100, 1)} %`,
        );
      }
    } finally {
      await beacon?.stop();
      await server.stop();
    }
    const errors = runs.filter((r) => r.beacon.errors > 0 || r.pgbench.failed > 0);
    return result(
      postgresVsPgbench,
      { runs: opts.runs, durationS: opts.pgDurationS, connections: CONNECTIONS, keySpace: KEY_SPACE, valueBytes: VALUE_BYTES },
      [
        { name: 'Beacon durable PUT ×128', unit: '/s', values: runs.map((r) => r.beacon.rps) },
        { name: 'pgbench single-row upsert ×128', unit: '/s', values: runs.map((r) => r.pgbench.tps) },
        { name: 'Beacon / pgbench', unit: '%', values: runs.map((r) => (r.beacon.rps / r.pgbench.tps) * 100), target: { op: '>=', value: 80 } },
        { name: 'Beacon p50', unit: 'ms', values: runs.map((r) => r.beacon.p50Ms) },
        { name: 'Beacon p99', unit: 'ms', values: runs.map((r) => r.beacon.p99Ms) },
        { name: 'pgbench mean latency', unit: 'ms', values: runs.map((r) => r.pgbench.latencyAvgMs) },
        { name: 'Beacon node CPU', unit: '%', values: runs.map((r) => r.beacon.cpuPct) },
        { name: 'Beacon writes per backend transaction', unit: 'count', values: runs.map((r) => r.beacon.batch) },
        { name: 'Beacon backend transaction time, mean', unit: 'ms', values: runs.map((r) => r.beacon.commitMs) },
      ],
      [
        `${version} (${external ? 'the server BENCH_POSTGRES_URL names' : 'a temporary local server'}): ${settings}`,
        `Beacon: serve --dev --backend <the database>, PUT of ${VALUE_BYTES}-byte values over ${KEY_SPACE.toLocaleString('en-US')} random keys, own generator, ${CONNECTIONS} connections, ${opts.pgDurationS} s; pgbench -n -f upsert.sql -c ${CONNECTIONS} -j 2 -T ${Math.round(opts.pgDurationS) + PGBENCH_CONNECT_ALLOWANCE_S} (its tps without the initial connection time) on bench_upsert in the same database (INSERT … ON CONFLICT DO UPDATE of one of ${KEY_SPACE.toLocaleString('en-US')} keys, ${VALUE_BYTES}-byte value)`,
        `median Beacon node CPU ${Math.round(median(runs.map((r) => r.beacon.cpuPct)))} % of one core; PostgreSQL, pgbench and the generator share the same two cores`,
        `PostgreSQL processes serving Beacon (pg_stat_activity every 50 ms, all windows): ${describeActivity(mergeActivity(runs.map((r) => r.beacon.activity)))}`,
        `PostgreSQL processes serving pgbench (same sampling; pgbench's connection phase included): ${describeActivity(mergeActivity(runs.map((r) => r.pgbench.activity)))}`,
        errors.length === 0 ? 'no errors' : `ERRORS: ${errors.map((r) => `${r.beacon.errorDetail} pgbench failed ${r.pgbench.failed}`).join('; ')}`,
      ],
    );
  },
};
