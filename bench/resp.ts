/**
 * resp: Beacon's RESP listener against the Debian redis-server, started on free ports in the
 * same run, measured with `redis-benchmark -t set,get,incr,mset -n N -c 50` at -P 1 and -P 16.
 * Memory namespace (the whole keyspace a cache, no AOF) vs redis-server, each test on both servers
 * back to back (the order alternating by run): requests/s ratios and
 * p99 at -P 1; durable keys over RESP at -P 16 (SET) next to the durable HTTP PUT figure of the
 * put-durable benchmark; the writes (SET, INCR, MSET) with the append-only file on
 * (`appendonly yes`, `appendfsync everysec`) against off, on the same node, alternating. Prints
 * figures; never fails on a time.
 * Targets (issue 11): memory ≥ 60 % of redis-server at -P 1, ≥ 25 % at -P 16, p99 at -P 1 ≤ 2×;
 * AOF everysec costs ≤ 15 % of the rate without it.
 *
 * Standalone: `node dist/bench/resp.js [--n 200000] [--runs 3]`; also `node dist/bench/run.js resp`.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { result, type BenchContext, type Benchmark } from './lib/bench.js';
import { spawnBeacon, track, freePort } from './lib/proc.js';
import type { BenchResult, Figure } from './lib/report.js';
import { median } from './lib/stats.js';

const exec = promisify(execFile);
const TESTS = ['set', 'get', 'incr', 'mset'] as const;
/** The tests that write, measured with the append-only file on and off. */
const AOF_TESTS = ['set', 'incr', 'mset'] as const;

/** Runs one command on `port` with redis-cli; @throws when it answers an error. */
async function redisCli(port: number, ...args: string[]): Promise<string> {
  const { stdout } = await exec('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args], { timeout: 30_000 });
  if (stdout.startsWith('ERR') || stdout.startsWith('(error)')) throw new Error(`redis-cli ${args.join(' ')}: ${stdout.trim()}`);
  return stdout;
}

/** One redis-benchmark line: requests/s and p99 in ms per test. */
type Figures = Record<string, { rps: number; p99: number }>;


/** Runs redis-benchmark with --csv and parses "test","rps","avg","min","p50","p95","p99","max". */
async function redisBenchmark(port: number, tests: readonly string[], n: number, pipeline: number, keyspace = 100_000, command: string[] = []): Promise<Figures> {
  const { stdout } = await exec(
    'redis-benchmark',
    ['-h', '127.0.0.1', '-p', String(port), ...(command.length > 0 ? [] : ['-t', tests.join(',')]), '-n', String(n), '-c', '50', '-P', String(pipeline), '-r', String(keyspace), '--csv', ...command],
    { timeout: 900_000, maxBuffer: 16 * 1024 * 1024 },
  );
  const out: Figures = {};
  for (const line of stdout.split('\n')) {
    const cells = line.split(',').map((c) => c.replace(/"/g, ''));
    if (cells.length < 7 || cells[0] === 'test') continue;
    const name = (cells[0] as string).toLowerCase().split(' ')[0] as string;
    out[name] = { rps: Number(cells[1]), p99: Number(cells[6]) };
  }
  return out;
}

async function startRedis(): Promise<{ port: number; child: ChildProcess; stop: () => Promise<void> }> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'bench-redis-'));
  const child = track(spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: 'ignore' }));
  for (let i = 0; i < 100; i++) {
    try {
      await exec('redis-cli', ['-p', String(port), 'PING'], { timeout: 2000 });
      break;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return {
    port,
    child,
    stop: async () => {
      const gone = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await gone;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The RESP benchmark as the runner's {@link Benchmark}. */
export const resp: Benchmark = {
  name: 'resp',
  title: 'RESP listener vs redis-server (redis-benchmark -c 50)',
  run: async (ctx: BenchContext): Promise<BenchResult> => {
    const n = ctx.opts.quick ? 50_000 : 200_000;
    const runs = ctx.opts.runs;
    const redisFig: Figures[][] = [[], []];
    const memFig: Figures[][] = [[], []];
    const durable: number[] = [];
    const pipelines = [1, 16];
    /** Per pipeline depth, per run: the write tests with the AOF off and on (everysec). */
    const aofOff: Figures[][] = [[], []];
    const aofOn: Figures[][] = [[], []];
    for (let run = 0; run < runs; run++) {
      const redis = await startRedis();
      const beacon = await spawnBeacon(ctx.tempDir('resp-'), ['--resp-port', '0']);
      try {
        const m = /redis:\/\/127\.0\.0\.1:(\d+)/.exec(beacon.stderr());
        const bport = Number(m?.[1]);
        // The whole keyspace a cache namespace, except durable/ (the rule of docs/resp.md).
        await fetch(`${beacon.url}/v1/namespaces/`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: '{"storage":"memory"}' });
        await fetch(`${beacon.url}/v1/namespaces/durable/`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: '{"storage":"durable"}' });
        // Each test runs on both servers back to back, the order alternating by run, so that a
        // ratio compares two windows seconds apart rather than a minute apart on a shared machine.
        for (const [i, p] of pipelines.entries()) {
          const rf: Figures = {};
          const bf: Figures = {};
          for (const t of TESTS) {
            ctx.log(`run ${run + 1}/${runs}: ${t.toUpperCase()} -P ${p}, redis-server and beacon memory`);
            const both = run % 2 === 0 ? [redis.port, bport] : [bport, redis.port];
            for (const port of both) Object.assign(port === bport ? bf : rf, await redisBenchmark(port, [t], n, p));
          }
          (redisFig[i] as Figures[]).push(rf);
          (memFig[i] as Figures[]).push(bf);
        }
        // The append-only file's cost: each write test with the AOF off and on, on an emptied
        // keyspace each time (new keys both ways), the order alternating by run.
        for (const [i, p] of pipelines.entries()) {
          const off: Figures = {};
          const on: Figures = {};
          for (const t of AOF_TESTS) {
            for (const mode of run % 2 === 0 ? ['off', 'on'] : ['on', 'off']) {
              ctx.log(`run ${run + 1}/${runs}: ${t.toUpperCase()} -P ${p}, beacon memory, AOF ${mode === 'on' ? 'everysec' : 'off'}`);
              await redisCli(bport, 'FLUSHALL');
              await redisCli(bport, 'CONFIG', 'SET', 'appendonly', mode === 'on' ? 'yes' : 'no');
              if (mode === 'on') await redisCli(bport, 'CONFIG', 'SET', 'appendfsync', 'everysec');
              Object.assign(mode === 'on' ? on : off, await redisBenchmark(bport, [t], n, p));
            }
          }
          (aofOff[i] as Figures[]).push(off);
          (aofOn[i] as Figures[]).push(on);
        }
        await redisCli(bport, 'CONFIG', 'SET', 'appendonly', 'no');
        // Durable keys: SET under durable/ (a durable namespace inside the memory catch-all).
        ctx.log(`run ${run + 1}/${runs}: beacon durable SET -P 16`);
        const d = await redisBenchmark(bport, [], Math.min(n, 100_000), 16, 100_000, ['SET', 'durable/key:__rand_int__', 'xxx']);
        durable.push(Object.values(d)[0]?.rps ?? 0);
      } finally {
        await beacon.stop();
        await redis.stop();
      }
    }
    const figures: Figure[] = [];
    const notes: string[] = [];
    for (const [i, p] of pipelines.entries()) {
      for (const t of TESTS) {
        const r = (redisFig[i] as Figures[]).map((f) => f[t]?.rps ?? 0);
        const b = (memFig[i] as Figures[]).map((f) => f[t]?.rps ?? 0);
        figures.push({ name: `redis-server ${t.toUpperCase()} -P ${p}`, unit: '/s', values: r });
        figures.push({ name: `beacon memory ${t.toUpperCase()} -P ${p}`, unit: '/s', values: b });
        figures.push({
          name: `ratio ${t.toUpperCase()} -P ${p}`,
          unit: '%',
          values: b.map((x, k) => (100 * x) / Math.max(1, r[k] ?? 1)),
          target: { op: '>=', value: p === 1 ? 60 : 25 },
        });
        if (p === 1) {
          const rp = (redisFig[i] as Figures[]).map((f) => f[t]?.p99 ?? 0);
          const bp = (memFig[i] as Figures[]).map((f) => f[t]?.p99 ?? 0);
          figures.push({ name: `p99 ${t.toUpperCase()} -P 1 beacon/redis`, unit: 'x', values: bp.map((x, k) => x / Math.max(0.001, rp[k] ?? 1)), target: { op: '<=', value: 2 } });
          notes.push(`${t.toUpperCase()} -P 1 p99: redis-server median ${median(rp)} ms, beacon ${median(bp)} ms`);
        }
      }
    }
    for (const [i, p] of pipelines.entries()) {
      for (const t of AOF_TESTS) {
        const off = (aofOff[i] as Figures[]).map((f) => f[t]?.rps ?? 0);
        const on = (aofOn[i] as Figures[]).map((f) => f[t]?.rps ?? 0);
        figures.push({ name: `beacon memory ${t.toUpperCase()} -P ${p}, AOF everysec`, unit: '/s', values: on });
        figures.push({
          name: `AOF everysec cost ${t.toUpperCase()} -P ${p}`,
          unit: '%',
          values: on.map((x, k) => 100 * (1 - x / Math.max(1, off[k] ?? 1))),
          target: { op: '<=', value: 15 },
        });
      }
    }
    figures.push({ name: 'beacon durable SET -P 16 (compare put-durable)', unit: '/s', values: durable });
    return result(resp, { n, clients: 50, runs, keyspace: 100_000 }, figures, notes);
  },
};
