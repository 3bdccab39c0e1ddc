/**
 * get-http: GET one key over HTTP keep-alive at 64 connections, against Beacon and against a
 * trivial Node `http` server answering the same bytes, with the same load generator, alternating
 * in every run. Targets: Beacon at ≥ 50 % of the baseline's requests/s, p99 < 5 ms.
 */
import { cpus } from 'node:os';
import { result, round, type BenchContext, type Benchmark } from './lib/bench.js';
import { runHttpLoad, type HttpLoadResult } from './lib/load.js';
import { spawnBeacon, spawnTrivialServer, stopAll, type ListeningProcess } from './lib/proc.js';
import type { BenchResult } from './lib/report.js';
import { cpuSeconds } from './lib/server-stats.js';
import { median } from './lib/stats.js';

/** The key read and its value: a small config document, like the seeds' examples. */
const KEY = 'bench/get/app-config';
const VALUE = JSON.stringify({ featureFlags: { newCheckout: true, darkMode: false }, timeoutMs: 2500, region: 'eu-west-1' });

type Measured = HttpLoadResult & { serverCpuPct: number };

/** Loads `server` for `durationS` (after `warmupS` on the same connections) and measures its CPU use meanwhile (% of one core). */
async function measure(ctx: BenchContext, server: ListeningProcess, warmupS: number, durationS: number): Promise<Measured> {
  const cpu0 = cpuSeconds(server.pid);
  const t0 = performance.now();
  const r = await runHttpLoad({
    loader: ctx.opts.loader,
    url: server.url,
    connections: ctx.opts.getConnections,
    threads: ctx.opts.threads,
    warmupMs: warmupS * 1000,
    durationMs: durationS * 1000,
    mode: 'get',
    path: `/v1/kv/${KEY}`,
  });
  const serverCpuPct = ((cpuSeconds(server.pid) - cpu0) / ((performance.now() - t0) / 1000)) * 100;
  return { ...r, serverCpuPct };
}

/** The get-http benchmark (see the module comment). */
export const getHttp: Benchmark = {
  name: 'get-http',
  title: 'GET one key over HTTP keep-alive vs a trivial Node http server',
  async run(ctx: BenchContext): Promise<BenchResult> {
    const { opts } = ctx;
    const dir = ctx.tempDir('get-http-');
    let beacon: ListeningProcess | undefined;
    let trivial: ListeningProcess | undefined;
    try {
      beacon = await spawnBeacon(dir);
      const put = await fetch(`${beacon.url}/v1/kv/${KEY}`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ value: VALUE }) });
      if (!put.ok) throw new Error(`PUT ${KEY} answered ${put.status}: ${await put.text()}`);
      const res = await fetch(`${beacon.url}/v1/kv/${KEY}`);
      const body = await res.text();
      if (!res.ok) throw new Error(`GET ${KEY} answered ${res.status}: ${body}`);
      // The baseline answers exactly the bytes Beacon answers, so the ratio is about the work per request.
      trivial = await spawnTrivialServer(body);

      ctx.log(`get-http: warm-up ${opts.warmupS} s each`);
      await measure(ctx, beacon, 0, opts.warmupS);
      await measure(ctx, trivial, 0, opts.warmupS);

      const b: Measured[] = [];
      const t: Measured[] = [];
      const perRunWarmupS = Math.min(1, opts.warmupS);
      for (let i = 0; i < opts.runs; i++) {
        // Alternate which goes first, so a slow patch of the shared machine hits both alike.
        const order: [ListeningProcess, Measured[]][] = i % 2 === 0 ? [[beacon, b], [trivial, t]] : [[trivial, t], [beacon, b]];
        for (const [server, into] of order) into.push(await measure(ctx, server, perRunWarmupS, opts.durationS));
        const bi = b[i] as Measured;
        const ti = t[i] as Measured;
        ctx.log(`get-http run ${i + 1}/${opts.runs}: beacon ${Math.round(bi.rps)}/s p99 ${round(bi.p99Ms)} ms; trivial ${Math.round(ti.rps)}/s; ratio ${round((bi.rps / ti.rps) * 100, 1)} %`);
      }
      const errors = [...b, ...t].reduce((s, r) => s + r.errors, 0);
      const loaderCpu = median(t.map((r) => r.loaderCpuPct));
      const notes = [
        `server CPU under load (median, % of one core): Beacon ${Math.round(median(b.map((r) => r.serverCpuPct)))} %, trivial ${Math.round(median(t.map((r) => r.serverCpuPct)))} % — near 100 % means the server's one event loop is the limit`,
        `load generator: ${opts.loader === 'wrk' ? `wrk, ${opts.threads} threads` : `bench/load-client (own process${Number.isFinite(loaderCpu) ? `, ${Math.round(loaderCpu)} % of one core against the trivial server` : ''})`}; it shares the ${cpus().length} cores with the server`,
        `response body ${Buffer.byteLength(body)} bytes from both servers; ${perRunWarmupS} s unmeasured warm-up on the same connections before each measured window`,
        errors === 0 ? 'no errors' : `ERRORS: Beacon ${b.map((r) => r.errorDetail).join('; ')} | trivial ${t.map((r) => r.errorDetail).join('; ')}`,
      ];
      return result(
        getHttp,
        { connections: opts.getConnections, loader: opts.loader, durationS: opts.durationS, warmupS: opts.warmupS },
        [
          { name: 'Beacon requests/s', unit: '/s', values: b.map((r) => r.rps) },
          { name: 'trivial http requests/s', unit: '/s', values: t.map((r) => r.rps) },
          { name: 'Beacon / trivial', unit: '%', values: b.map((r, i) => (r.rps / (t[i] as Measured).rps) * 100), target: { op: '>=', value: 50 } },
          { name: 'Beacon p50', unit: 'ms', values: b.map((r) => r.p50Ms) },
          { name: 'Beacon p99', unit: 'ms', values: b.map((r) => r.p99Ms), target: { op: '<', value: 5 } },
          { name: 'Beacon max', unit: 'ms', values: b.map((r) => r.maxMs) },
          { name: 'trivial p50', unit: 'ms', values: t.map((r) => r.p50Ms) },
          { name: 'trivial p99', unit: 'ms', values: t.map((r) => r.p99Ms) },
        ],
        notes,
      );
    } finally {
      await stopAll([beacon, trivial]);
    }
  },
};
