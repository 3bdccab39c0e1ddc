/**
 * auth-get: the cost of authentication on the read path. GET one key over HTTP keep-alive at 64
 * connections with wrk against the same build run twice in the same session — once with
 * `--dev` (no authentication) and once with authentication on, reading with a token (JWT,
 * verified once and then cached) and with an API key — alternating in every run.
 * Target (issue 5): authenticated GET throughput at least 85 % of `--dev` (auth costs ≤ 15 %).
 *
 * Run alone with `node dist/bench/auth-get.js [--quick] [--runs N] [--duration S]`, or register
 * `authGet` in bench/run.ts.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { createContext, result, round, type BenchContext, type Benchmark } from './lib/bench.js';
import { parseOptions } from './lib/options.js';
import { CLI, killLiveChildren, spawnBeacon, spawnListening, stopAll, type ListeningProcess } from './lib/proc.js';
import { formatResult, type BenchResult } from './lib/report.js';
import { cpuSeconds } from './lib/server-stats.js';
import { median } from './lib/stats.js';
import { runWrk, type WrkResult } from './lib/wrk.js';

const KEY = 'bench/auth/app-config';
const VALUE = JSON.stringify({ featureFlags: { newCheckout: true, darkMode: false }, timeoutMs: 2500, region: 'eu-west-1' });
const ADMIN_PASSWORD = 'bench-admin-password';

async function json(url: string, init: RequestInit): Promise<Record<string, string>> {
  const res = await fetch(url, init);
  const text = await res.text();
  if (!res.ok) throw new Error(`${init.method ?? 'GET'} ${url} answered ${res.status}: ${text}`);
  return JSON.parse(text) as Record<string, string>;
}

interface Target {
  name: string;
  server: ListeningProcess;
  headers: Record<string, string>;
}

export const authGet: Benchmark = {
  name: 'auth-get',
  title: 'GET one key at 64 connections: token / API key vs --dev (authentication overhead)',
  async run(ctx: BenchContext): Promise<BenchResult> {
    const { opts } = ctx;
    let dev: ListeningProcess | undefined;
    let secure: ListeningProcess | undefined;
    try {
      dev = await spawnBeacon(ctx.tempDir('auth-get-dev-'));
      secure = await spawnListening(
        [CLI, 'serve', '--data-dir', ctx.tempDir('auth-get-secure-'), '--http-port', '0', '--host', '127.0.0.1', '--rate-limit', 'off'],
        { BEACON_ADMIN_PASSWORD: ADMIN_PASSWORD },
      );
      const body = JSON.stringify({ value: VALUE });
      await json(`${dev.url}/v1/kv/${KEY}`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body });
      const { token } = await json(`${secure.url}/v1/auth/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ username: 'admin', password: ADMIN_PASSWORD }),
      });
      const auth = { authorization: `Bearer ${token}` };
      await json(`${secure.url}/v1/kv/${KEY}`, { method: 'PUT', headers: { ...auth, 'content-type': 'application/json' }, body });
      const reader = await json(`${secure.url}/v1/apikeys`, {
        method: 'POST',
        headers: { ...auth, 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'bench-reader', roles: ['viewer'] }),
      });
      const targets: Target[] = [
        { name: 'dev', server: dev, headers: {} },
        { name: 'token', server: secure, headers: auth },
        { name: 'apikey', server: secure, headers: { authorization: `Bearer ${reader.key}` } },
      ];
      const measure = async (t: Target, durationS: number): Promise<WrkResult & { cpuPct: number }> => {
        const cpu0 = cpuSeconds(t.server.pid);
        const t0 = performance.now();
        const r = await runWrk({ url: `${t.server.url}/v1/kv/${KEY}`, mode: 'get', connections: opts.getConnections, threads: opts.threads, durationS, headers: t.headers });
        return { ...r, cpuPct: ((cpuSeconds(t.server.pid) - cpu0) / ((performance.now() - t0) / 1000)) * 100 };
      };
      ctx.log(`auth-get: warm-up ${opts.warmupS} s each`);
      for (const t of targets) await measure(t, opts.warmupS);
      const by = new Map<string, (WrkResult & { cpuPct: number })[]>(targets.map((t) => [t.name, []]));
      for (let i = 0; i < opts.runs; i++) {
        // Rotate the order so a slow patch of the shared machine does not always hit the same target.
        const order = targets.map((_, j) => targets[(i + j) % targets.length] as Target);
        for (const t of order) (by.get(t.name) as WrkResult[]).push(await measure(t, opts.durationS));
        const rps = (n: string): number => (by.get(n)?.[i] as WrkResult).rps;
        ctx.log(`auth-get run ${i + 1}/${opts.runs}: dev ${Math.round(rps('dev'))}/s, token ${Math.round(rps('token'))}/s (${round((rps('token') / rps('dev')) * 100, 1)} %), API key ${Math.round(rps('apikey'))}/s`);
      }
      const d = by.get('dev') as (WrkResult & { cpuPct: number })[];
      const t = by.get('token') as (WrkResult & { cpuPct: number })[];
      const k = by.get('apikey') as (WrkResult & { cpuPct: number })[];
      const errors = [...d, ...t, ...k].reduce((s, r) => s + r.errors, 0);
      return result(
        authGet,
        { connections: opts.getConnections, threads: opts.threads, durationS: opts.durationS, warmupS: opts.warmupS },
        [
          { name: '--dev requests/s', unit: '/s', values: d.map((r) => r.rps) },
          { name: 'token requests/s', unit: '/s', values: t.map((r) => r.rps) },
          { name: 'API key requests/s', unit: '/s', values: k.map((r) => r.rps) },
          { name: 'token / --dev', unit: '%', values: t.map((r, i) => (r.rps / (d[i] as WrkResult).rps) * 100), target: { op: '>=', value: 85 } },
          { name: 'API key / --dev', unit: '%', values: k.map((r, i) => (r.rps / (d[i] as WrkResult).rps) * 100), target: { op: '>=', value: 85 } },
          { name: '--dev p99', unit: 'ms', values: d.map((r) => r.p99Ms) },
          { name: 'token p99', unit: 'ms', values: t.map((r) => r.p99Ms) },
        ],
        [
          `server CPU while loaded (median, % of one core): --dev ${Math.round(median(d.map((r) => r.cpuPct)))} %, token ${Math.round(median(t.map((r) => r.cpuPct)))} %, API key ${Math.round(median(k.map((r) => r.cpuPct)))} %`,
          'the token is verified (HS256) once and then served from the per-token cache until it expires; an API key is hashed (SHA-256) once and then remembered while its record is unchanged',
          errors === 0 ? 'no errors' : `ERRORS: dev ${d.map((r) => r.errorDetail).join('; ')} | token ${t.map((r) => r.errorDetail).join('; ')} | apikey ${k.map((r) => r.errorDetail).join('; ')}`,
        ],
      );
    } finally {
      await stopAll([dev, secure]);
    }
  },
};

// Run on its own: `node dist/bench/auth-get.js [--quick] [--runs N] [--duration S] [--warmup S]`.
if (process.argv[1] !== undefined && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  const opts = parseOptions(process.argv.slice(2));
  const root = mkdtempSync(join(opts.dataDir, 'beacon-bench-'));
  const cleanup = (): void => {
    killLiveChildren();
    rmSync(root, { recursive: true, force: true });
  };
  process.once('SIGINT', () => {
    cleanup();
    process.exit(130);
  });
  authGet
    .run(createContext(opts, root))
    .then(
      (r) => {
        process.stdout.write(`${formatResult(r)}\n`);
        return 0;
      },
      (err: unknown) => {
        process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
        return 1;
      },
    )
    .then((code) => {
      cleanup();
      process.exit(code);
    });
}
