/**
 * The benchmark runner: `node dist/bench/run.js [benchmark …] [--quick] [--runs N] …`.
 * Prints the machine, then one table per benchmark (median, min, max over runs and the target),
 * and writes every figure as JSON to .bench/results.json. Never fails on a time.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { getHttp } from './get-http.js';
import { createContext, type Benchmark } from './lib/bench.js';
import { describeLoad, formatMachine, machineInfo, measureFsync, readLoad } from './lib/machine.js';
import { BENCHMARK_NAMES, parseOptions } from './lib/options.js';
import { killLiveChildren, ROOT } from './lib/proc.js';
import { formatResult, type BenchResult } from './lib/report.js';
import { memory } from './memory.js';
import { putDurable } from './put-durable.js';
import { restart } from './restart.js';
import { watchCatchup } from './watch-catchup.js';
import { resp } from './resp.js';
import { vsEtcd } from './vs-etcd.js';
import { watchFanout } from './watch-fanout.js';
import { watchVsEtcd } from './watch-etcd.js';
import { storeScale } from './store-scale.js';
import { postgresVsPgbench } from './postgres-pgbench.js';

const BENCHMARKS: Record<(typeof BENCHMARK_NAMES)[number], Benchmark> = {
  'get-http': getHttp,
  'put-durable': putDurable,
  'watch-fanout': watchFanout,
  memory,
  restart,
  'watch-catchup': watchCatchup,
  resp,
  'vs-etcd': vsEtcd,
  'watch-vs-etcd': watchVsEtcd,
  'store-scale': storeScale,
  'postgres-vs-pgbench': postgresVsPgbench,
};

/** The JSON file: the machine and options of the latest run of each benchmark, by name. */
interface ResultsFile {
  updatedAt: string;
  benchmarks: Record<string, { machine: unknown; options: unknown; result: BenchResult }>;
}

function readResults(path: string): ResultsFile {
  try {
    const parsed = JSON.parse(readFileSync(path, 'utf8')) as ResultsFile;
    if (parsed.benchmarks !== undefined && typeof parsed.benchmarks === 'object') return parsed;
  } catch {
    // absent or unreadable: start afresh
  }
  return { updatedAt: '', benchmarks: {} };
}

async function main(): Promise<number> {
  let opts;
  try {
    opts = parseOptions(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
    return 2;
  }
  if (opts.help) {
    process.stdout.write(`${opts.usage}\n`);
    return 0;
  }
  mkdirSync(opts.dataDir, { recursive: true });
  const root = mkdtempSync(join(opts.dataDir, 'beacon-bench-'));
  const cleanup = (): void => {
    killLiveChildren();
    rmSync(root, { recursive: true, force: true });
  };
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      process.stderr.write(`\n${sig}: stopping the benchmark processes\n`);
      cleanup();
      process.exit(130);
    });
  }

  const machine = machineInfo(root, ROOT);
  const fsync = measureFsync(root, 100);
  process.stdout.write(
    `Beacon benchmarks — ${new Date().toISOString()}${opts.quick ? ' (quick mode)' : ''}\n${formatMachine(machine)}\n` +
      `fsync   ${fsync.p50.toFixed(2)} ms median, ${fsync.p99.toFixed(2)} ms p99 (4 KiB write + fdatasync, ${fsync.count} times)\n\n`,
  );

  const names = opts.only.length > 0 ? BENCHMARK_NAMES.filter((n) => opts.only.includes(n)) : [...BENCHMARK_NAMES];
  const outPath = resolve(ROOT, opts.out);
  const ctx = createContext(opts, root);
  let failed = 0;
  try {
    for (const name of names) {
      const bench = BENCHMARKS[name];
      ctx.log(`${name}: starting`);
      let res: BenchResult;
      const loadBefore = readLoad();
      try {
        res = await bench.run(ctx);
        const load = describeLoad(loadBefore, readLoad());
        res.environment = load;
        res.notes.push(
          `machine during the run: CPU pressure ${load.cpuPressurePct} % (share of time some task waited for a CPU, /proc/pressure/cpu); load average ${load.loadBefore} before, ${load.loadAfter} after`,
        );
      } catch (err) {
        failed++;
        process.stdout.write(`== ${name}: FAILED TO RUN\n  ${(err as Error).stack ?? String(err)}\n\n`);
        continue;
      }
      process.stdout.write(`${formatResult(res)}\n\n`);
      const file = readResults(outPath);
      file.updatedAt = new Date().toISOString();
      const { only: _only, ...options } = opts;
      file.benchmarks[name] = { machine: { ...machine, fsyncMedianMs: fsync.p50 }, options, result: res };
      mkdirSync(dirname(outPath), { recursive: true });
      writeFileSync(outPath, `${JSON.stringify(file, null, 2)}\n`);
    }
  } finally {
    cleanup();
  }
  process.stdout.write(`results written to ${outPath}\n`);
  // A benchmark that could not run at all is a failure of the tool; a missed target never is.
  return failed > 0 ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    killLiveChildren();
    process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
