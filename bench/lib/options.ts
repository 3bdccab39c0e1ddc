/** Command-line options of `node dist/bench/run.js`: which benchmarks, how many runs, how long, how big. */
import { tmpdir } from 'node:os';
import { parseArgs } from 'node:util';

/** Every knob of the benchmark suite; `--quick` lowers runs and durations, not the sizes the targets are defined on. */
export interface BenchOptions {
  /** Benchmarks to run by name; empty means all. */
  only: string[];
  quick: boolean;
  /** Repeated runs per figure; each figure is the median over them. */
  runs: number;
  /** Seconds of load per run (get-http, put-durable). */
  durationS: number;
  /** Seconds of unmeasured load before the first run (JIT warm-up). */
  warmupS: number;
  /** HTTP load generator of get-http and put-durable: the suite's own (default) or wrk. */
  loader: 'own' | 'wrk';
  /** wrk threads. */
  threads: number;
  /** get-http: keep-alive connections. */
  getConnections: number;
  /** put-durable: concurrent requests (connections). */
  putConnections: number;
  /** put-durable: value size in bytes. */
  putValueBytes: number;
  /** watch-fanout: scenarios as `watchers/sockets`, e.g. `1000/1000`. */
  watchScenarios: { watchers: number; sockets: number }[];
  /** watch-fanout: client processes holding the sockets. */
  watchClients: number;
  /** watch-fanout: writes per second during a run. */
  watchRate: number;
  /** watch-fanout: seconds of writes per run. */
  watchDurationS: number;
  /** memory: keys loaded. */
  memoryKeys: number;
  /** memory: value size in bytes. */
  memoryValueBytes: number;
  /** restart: revisions in the generated store. */
  restartRevisions: number;
  /** restart: distinct keys those revisions are spread over. */
  restartKeys: number;
  /** vs-etcd: the load generators to run every workload with (own, wrk or both). */
  vsEtcdLoaders: ('own' | 'wrk')[];
  /** vs-etcd: which workloads (put128, put1, get64, range; default all). */
  vsEtcdWorkloads: string[];
  /** watch-vs-etcd: also put 10,000 watchers on etcd (informative; the target is Beacon's alone). */
  watchEtcd10k: boolean;
  /** store-scale: keys of the 1,000,000-key store. */
  scaleKeys: number;
  /** store-scale: value size of those keys. */
  scaleValueBytes: number;
  /** store-scale: revisions of the long-log store (issue 17: 10,000,000). */
  scaleRevisions: number;
  /** store-scale: which parts to run (keys, log; default both). */
  scaleParts: string[];
  /** store-scale: the compaction under load compacts up to this revision (default: the whole log). */
  scaleCompactRevisions: number | undefined;
  /** postgres-vs-pgbench: seconds per measured window. */
  pgDurationS: number;
  /** Where temporary stores go (default the OS temp dir). */
  dataDir: string;
  /** Where the JSON results go. */
  out: string;
}

const USAGE = `usage: node dist/bench/run.js [benchmark …] [options]

benchmarks: get-http, put-durable, watch-fanout, memory, restart, watch-catchup, resp, vs-etcd,
            watch-vs-etcd, store-scale, postgres-vs-pgbench (default: all)

options:
  --quick                  fewer, shorter runs (2 runs × 2 s, 1 s warm-up)
  --runs N                 repeated runs per figure (default 5)
  --duration S             seconds of load per run (default 10)
  --warmup S               seconds of unmeasured load first (default 3)
  --loader own|wrk         HTTP load generator (default own: exact latencies after a
                           warm-up on the same connections; wrk "corrects" its tails)
  --threads N              wrk threads (default 2)
  --get-connections N      get-http keep-alive connections (default 64)
  --put-connections N      put-durable concurrent requests (default 128)
  --put-value-bytes N      put-durable value size (default 128)
  --watch-scenarios LIST   watchers/sockets pairs (default 1000/1000,10000/10000,10000/500)
  --watch-clients N        watch client processes (default 4)
  --watch-rate N           writes per second while watching (default 2)
  --watch-duration S       seconds of writes per watch run (default 10)
  --memory-keys N          keys loaded by the memory benchmark (default 100000)
  --memory-value-bytes N   value size of those keys (default 1024)
  --restart-revisions N    revisions in the restart store (default 1000000)
  --restart-keys N         distinct keys in the restart store (default 100000)
  --vs-etcd-loaders LIST   vs-etcd's load generators: own,wrk (default both)
  --vs-etcd-workloads LIST vs-etcd's workloads: put128,put1,get64,range (default all)
  --watch-etcd-10k         watch-vs-etcd: also 10,000 watchers on etcd (default off)
  --scale-keys N           store-scale: keys (default 1000000)
  --scale-value-bytes N    store-scale: value size (default 256)
  --scale-revisions N      store-scale: revisions of the long log (default 10000000)
  --scale-parts LIST       store-scale: keys,log (default both)
  --scale-compact-revisions N  store-scale: compact up to revision N under load (default: the whole log)
  --pg-duration S          postgres-vs-pgbench: seconds per window (default 10)
  --data-dir DIR           where temporary stores go (default the OS temp dir)
  --out FILE               JSON results (default .bench/results.json)
  --help`;

/** Names of the benchmarks, in the order they run. */
export const BENCHMARK_NAMES = [
  'get-http',
  'put-durable',
  'watch-fanout',
  'memory',
  'restart',
  'watch-catchup',
  'resp',
  'vs-etcd',
  'watch-vs-etcd',
  'store-scale',
  'postgres-vs-pgbench',
] as const;

function positiveInt(name: string, v: string | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer, got '${v}'`);
  return n;
}

function positiveNumber(name: string, v: string | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`--${name} must be a positive number, got '${v}'`);
  return n;
}

function loaderOf(v: string | undefined): 'own' | 'wrk' {
  if (v === undefined || v === 'own' || v === 'wrk') return v ?? 'own';
  throw new Error(`--loader must be own or wrk, got '${v}'`);
}

function loaders(v: string): ('own' | 'wrk')[] {
  const list = v.split(',').map((s) => loaderOf(s.trim()));
  return [...new Set(list)];
}

/** The workloads of the vs-etcd benchmark, in the order they run. */
export const VS_ETCD_WORKLOADS = ['put128', 'put1', 'get64', 'range'] as const;

function workloads(v: string): string[] {
  const list = v.split(',').map((s) => s.trim());
  for (const w of list) {
    if (!(VS_ETCD_WORKLOADS as readonly string[]).includes(w)) throw new Error(`--vs-etcd-workloads takes ${VS_ETCD_WORKLOADS.join(', ')}; got '${w}'`);
  }
  return list;
}

function scenarios(v: string): { watchers: number; sockets: number }[] {
  return v.split(',').map((part) => {
    const m = /^(\d+)\/(\d+)$/.exec(part.trim());
    const watchers = Number(m?.[1]);
    const sockets = Number(m?.[2]);
    if (!m || watchers < 1 || sockets < 1 || sockets > watchers) {
      throw new Error(`--watch-scenarios takes watchers/sockets pairs such as 1000/1000,10000/500; got '${part}'`);
    }
    return { watchers, sockets };
  });
}

/**
 * Parses `argv` (without node and the script).
 * @throws Error naming the bad option or benchmark; `help: true` when --help was given.
 */
export function parseOptions(argv: string[]): BenchOptions & { help: boolean; usage: string } {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      quick: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
      runs: { type: 'string' },
      duration: { type: 'string' },
      warmup: { type: 'string' },
      threads: { type: 'string' },
      loader: { type: 'string' },
      'get-connections': { type: 'string' },
      'put-connections': { type: 'string' },
      'put-value-bytes': { type: 'string' },
      'watch-scenarios': { type: 'string' },
      'watch-clients': { type: 'string' },
      'watch-rate': { type: 'string' },
      'watch-duration': { type: 'string' },
      'memory-keys': { type: 'string' },
      'memory-value-bytes': { type: 'string' },
      'restart-revisions': { type: 'string' },
      'restart-keys': { type: 'string' },
      'vs-etcd-loaders': { type: 'string' },
      'vs-etcd-workloads': { type: 'string' },
      'watch-etcd-10k': { type: 'boolean', default: false },
      'scale-keys': { type: 'string' },
      'scale-value-bytes': { type: 'string' },
      'scale-revisions': { type: 'string' },
      'scale-compact-revisions': { type: 'string' },
      'scale-parts': { type: 'string' },
      'pg-duration': { type: 'string' },
      'data-dir': { type: 'string' },
      out: { type: 'string' },
    },
  });
  for (const p of positionals) {
    if (!(BENCHMARK_NAMES as readonly string[]).includes(p)) throw new Error(`unknown benchmark '${p}'; known: ${BENCHMARK_NAMES.join(', ')}`);
  }
  const quick = values.quick === true;
  return {
    help: values.help === true,
    usage: USAGE,
    only: positionals,
    quick,
    runs: positiveInt('runs', values.runs, quick ? 2 : 5),
    durationS: positiveNumber('duration', values.duration, quick ? 2 : 10),
    warmupS: positiveNumber('warmup', values.warmup, quick ? 1 : 3),
    loader: loaderOf(values.loader),
    threads: positiveInt('threads', values.threads, 2),
    getConnections: positiveInt('get-connections', values['get-connections'], 64),
    putConnections: positiveInt('put-connections', values['put-connections'], 128),
    putValueBytes: positiveInt('put-value-bytes', values['put-value-bytes'], 128),
    watchScenarios: scenarios(values['watch-scenarios'] ?? (quick ? '1000/1000,10000/1000' : '1000/1000,10000/10000,10000/500')),
    watchClients: positiveInt('watch-clients', values['watch-clients'], 4),
    watchRate: positiveNumber('watch-rate', values['watch-rate'], 2),
    watchDurationS: positiveNumber('watch-duration', values['watch-duration'], quick ? 3 : 10),
    memoryKeys: positiveInt('memory-keys', values['memory-keys'], 100_000),
    memoryValueBytes: positiveInt('memory-value-bytes', values['memory-value-bytes'], 1024),
    restartRevisions: positiveInt('restart-revisions', values['restart-revisions'], 1_000_000),
    restartKeys: positiveInt('restart-keys', values['restart-keys'], 100_000),
    vsEtcdLoaders: loaders(values['vs-etcd-loaders'] ?? 'own,wrk'),
    vsEtcdWorkloads: workloads(values['vs-etcd-workloads'] ?? VS_ETCD_WORKLOADS.join(',')),
    watchEtcd10k: values['watch-etcd-10k'] === true,
    scaleKeys: positiveInt('scale-keys', values['scale-keys'], 1_000_000),
    scaleValueBytes: positiveInt('scale-value-bytes', values['scale-value-bytes'], 256),
    scaleRevisions: positiveInt('scale-revisions', values['scale-revisions'], 10_000_000),
    scaleParts: (values['scale-parts'] ?? 'keys,log').split(',').map((x) => x.trim()),
    scaleCompactRevisions: values['scale-compact-revisions'] === undefined ? undefined : positiveInt('scale-compact-revisions', values['scale-compact-revisions'], 1),
    pgDurationS: positiveNumber('pg-duration', values['pg-duration'], quick ? 3 : 10),
    dataDir: values['data-dir'] ?? tmpdir(),
    out: values.out ?? '.bench/results.json',
  };
}
