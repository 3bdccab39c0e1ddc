/**
 * put-durable: acknowledged-durable PUTs of fresh keys at 128 concurrent requests (throughput,
 * p99) and at 1 client (p50), compared with the machine's fsync time measured in the same data
 * dir in the same run. Each run starts from an empty store.
 * Targets: ≥ 15,000 ops/s and p99 < 30 ms at 128; p50 at 1 client ≤ 2× one fsync.
 */
import { result, round, type BenchContext, type Benchmark } from './lib/bench.js';
import { runHttpLoad, type HttpLoad, type HttpLoadResult } from './lib/load.js';
import { measureBackendCommit } from './lib/backend-probe.js';
import { measureFsync } from './lib/machine.js';
import { spawnBeacon, type ListeningProcess } from './lib/proc.js';
import type { BenchResult } from './lib/report.js';
import { cpuSeconds, histogramDelta, histogramQuantile, readHistogram, scrapeMetrics, type Histogram } from './lib/server-stats.js';
import { median } from './lib/stats.js';

/** The commit-path figures of one loaded window, from the server's histograms and its CPU time. */
interface Window {
  load: HttpLoadResult;
  batch: Histogram;
  commit: Histogram;
  cpuPct: number;
}

interface RunFigures {
  /** 128 concurrent, keys ascending across all connections (each insert at the B-trees' right edge). */
  seq: Window;
  /** 128 concurrent, one key range per connection (each batch touches ~128 B-tree leaves). */
  spread: Window;
  one: HttpLoadResult;
  get: HttpLoadResult;
  fsyncMs: number;
  sqliteMs: number;
  sqliteAuditMs: number;
}

async function commitHistograms(url: string): Promise<{ batch: Histogram; commit: Histogram }> {
  const text = await scrapeMetrics(url);
  return {
    batch: readHistogram(text, 'beacon_backend_commit_batch_size'),
    commit: readHistogram(text, 'beacon_backend_commit_duration_seconds'),
  };
}

/** Joins segment results: requests and errors add up, latency figures are the medians of the segments'. */
function combine(parts: HttpLoadResult[]): HttpLoadResult {
  const m = (f: (r: HttpLoadResult) => number): number => median(parts.map(f));
  return {
    requests: parts.reduce((s, r) => s + r.requests, 0),
    rps: m((r) => r.rps),
    p50Ms: m((r) => r.p50Ms),
    p90Ms: m((r) => r.p90Ms),
    p99Ms: m((r) => r.p99Ms),
    maxMs: Math.max(...parts.map((r) => r.maxMs)),
    errors: parts.reduce((s, r) => s + r.errors, 0),
    errorDetail: parts.map((r) => r.errorDetail).join('; '),
    loaderCpuPct: m((r) => r.loaderCpuPct),
  };
}

async function oneRun(ctx: BenchContext, run: number): Promise<RunFigures> {
  const { opts } = ctx;
  const dir = ctx.tempDir(`put-durable-${run}-`);
  let server: ListeningProcess | undefined;
  try {
    const srv = await spawnBeacon(dir);
    server = srv;
    const base: HttpLoad = {
      loader: opts.loader,
      url: srv.url,
      connections: opts.putConnections,
      threads: opts.threads,
      warmupMs: 0,
      durationMs: opts.durationS * 1000,
      mode: 'put',
      valueBytes: opts.putValueBytes,
    };
    // Unmeasured load first, so the JIT and SQLite's caches are warm in this process too.
    await runHttpLoad({ ...base, durationMs: opts.warmupS * 1000, keyPrefix: 'bench/warm/' });
    const window = async (keyOrder: 'sequential' | 'spread'): Promise<Window> => {
      const before = await commitHistograms(srv.url);
      const cpu0 = cpuSeconds(srv.pid);
      const t0 = performance.now();
      const load = await runHttpLoad({ ...base, warmupMs: 1000, keyOrder, keyPrefix: `bench/${keyOrder}/` });
      const cpuPct = ((cpuSeconds(srv.pid) - cpu0) / ((performance.now() - t0) / 1000)) * 100;
      const after = await commitHistograms(srv.url);
      return { load, batch: histogramDelta(after.batch, before.batch), commit: histogramDelta(after.commit, before.commit), cpuPct };
    };
    // Alternate the order, so the store's growth between the two windows favours neither.
    let seq: Window;
    let spread: Window;
    if (run % 2 === 1) {
      seq = await window('sequential');
      spread = await window('spread');
    } else {
      spread = await window('spread');
      seq = await window('sequential');
    }
    // 1 client vs the disk: the disk of a shared machine changes speed from second to second, so
    // fsync, the bare backend commit and the PUT are measured in alternating short segments and
    // each figure is the median over the segments.
    const segments = 4;
    const fsyncs: number[] = [];
    const sqlites: number[] = [];
    const sqliteAudits: number[] = [];
    const ones: HttpLoadResult[] = [];
    for (let s = 0; s < segments; s++) {
      fsyncs.push(measureFsync(dir, 60).p50);
      sqlites.push((await measureBackendCommit(dir, 80, opts.putValueBytes)).p50);
      sqliteAudits.push((await measureBackendCommit(dir, 80, opts.putValueBytes, true)).p50);
      ones.push(await runHttpLoad({ ...base, connections: 1, threads: 1, warmupMs: 300, durationMs: (opts.durationS * 1000) / segments, keyPrefix: `bench/one${s}/` }));
    }
    const one = combine(ones);
    // The same round trip without a write: what HTTP alone costs one client on this machine.
    const get = await runHttpLoad({ ...base, mode: 'get', path: '/v1/kv/bench/one0/0-1', connections: 1, threads: 1, warmupMs: 300, durationMs: Math.max(1, opts.durationS / 4) * 1000 });
    const fsync = { p50: median(fsyncs) };
    const sqlite = { p50: median(sqlites) };
    const sqliteAudit = { p50: median(sqliteAudits) };
    return { seq, spread, one, get, fsyncMs: fsync.p50, sqliteMs: sqlite.p50, sqliteAuditMs: sqliteAudit.p50 };
  } finally {
    await server?.stop();
  }
}

/** The put-durable benchmark (see the module comment). */
export const putDurable: Benchmark = {
  name: 'put-durable',
  title: 'durable PUT of fresh keys: 128 concurrent requests, and 1 client vs fsync',
  async run(ctx: BenchContext): Promise<BenchResult> {
    const { opts } = ctx;
    const runs: RunFigures[] = [];
    for (let i = 1; i <= opts.runs; i++) {
      const r = await oneRun(ctx, i);
      runs.push(r);
      ctx.log(
        `put-durable run ${i}/${opts.runs}: ${Math.round(r.seq.load.rps)}/s p99 ${round(r.seq.load.p99Ms)} ms sequential keys, ` +
          `${Math.round(r.spread.load.rps)}/s p99 ${round(r.spread.load.p99Ms)} ms spread keys at ${opts.putConnections}; ` +
          `1 client p50 ${round(r.one.p50Ms, 3)} ms vs fsync ${round(r.fsyncMs, 3)} ms (GET ${round(r.get.p50Ms, 3)} ms)`,
      );
    }
    const errors = runs.reduce((s, r) => s + r.seq.load.errors + r.spread.load.errors + r.one.errors + r.get.errors, 0);
    // The histograms count the 1 s connection warm-up too (own generator), so divide by both.
    const windowS = opts.durationS + (opts.loader === 'own' ? 1 : 0);
    const commitNote = (name: string, pick: (r: RunFigures) => Window): string => {
      const w = runs.map(pick);
      const avgBatch = median(w.map((x) => x.batch.sum / x.batch.count));
      const mean = median(w.map((x) => (x.commit.sum / x.commit.count) * 1000));
      const p50 = median(w.map((x) => histogramQuantile(x.commit, 0.5) * 1000));
      const p99 = median(w.map((x) => histogramQuantile(x.commit, 0.99) * 1000));
      const perS = median(w.map((x) => x.commit.count / windowS));
      const cpu = median(w.map((x) => x.cpuPct));
      return (
        `${name}: ${round(avgBatch, 1)} writes per backend transaction, ${round(mean, 2)} ms mean per transaction (p50 ≈ ${round(p50, 2)} ms, ` +
        `p99 ≈ ${round(p99, 1)} ms from the server's histogram), ${Math.round(perS)} transactions/s, server CPU ${Math.round(cpu)} % of one core`
      );
    };
    const notes = [
      commitNote(`group commit at ${opts.putConnections}, sequential keys`, (r) => r.seq),
      commitNote(`group commit at ${opts.putConnections}, spread keys`, (r) => r.spread),
      `keys: sequential = one ascending counter across all connections (every insert at the B-trees' right edge); spread = one key range per connection, so a batch touches ~${opts.putConnections} B-tree leaves (and as many WAL pages)`,
      `1 client: ${Math.round(median(runs.map((r) => r.one.rps)))} sequential PUTs/s; fsync = 4 KiB overwrite + fdatasync in the data dir; SQLite commit alone = one-put commits through SqliteBackend in the same dir (no HTTP, no kv core), without and with the audit record every API write carries; they alternate in 4 short segments per run and each is the median over them`,
      `load generator: ${opts.loader === 'wrk' ? 'wrk' : 'bench/load-client (own process)'}; each run starts a fresh node and store, warms up ${opts.warmupS} s, then 1 s more on the measured connections`,
      errors === 0
        ? 'no errors'
        : `ERRORS: ${runs.map((r) => `${r.seq.load.errorDetail} / ${r.spread.load.errorDetail} / 1 client: ${r.one.errorDetail} / get: ${r.get.errorDetail}`).join('; ')}`,
    ];
    return result(
      putDurable,
      { concurrency: opts.putConnections, valueBytes: opts.putValueBytes, durationS: opts.durationS, loader: opts.loader },
      [
        { name: `ops/s at ${opts.putConnections}, sequential keys`, unit: '/s', values: runs.map((r) => r.seq.load.rps), target: { op: '>=', value: 15_000 } },
        { name: `p50 at ${opts.putConnections}, sequential keys`, unit: 'ms', values: runs.map((r) => r.seq.load.p50Ms) },
        { name: `p99 at ${opts.putConnections}, sequential keys`, unit: 'ms', values: runs.map((r) => r.seq.load.p99Ms), target: { op: '<', value: 30 } },
        { name: `max at ${opts.putConnections}, sequential keys`, unit: 'ms', values: runs.map((r) => r.seq.load.maxMs) },
        { name: `ops/s at ${opts.putConnections}, spread keys`, unit: '/s', values: runs.map((r) => r.spread.load.rps), target: { op: '>=', value: 15_000 } },
        { name: `p50 at ${opts.putConnections}, spread keys`, unit: 'ms', values: runs.map((r) => r.spread.load.p50Ms) },
        { name: `p99 at ${opts.putConnections}, spread keys`, unit: 'ms', values: runs.map((r) => r.spread.load.p99Ms), target: { op: '<', value: 30 } },
        { name: `max at ${opts.putConnections}, spread keys`, unit: 'ms', values: runs.map((r) => r.spread.load.maxMs) },
        { name: 'fsync (write + fdatasync)', unit: 'ms', values: runs.map((r) => r.fsyncMs) },
        { name: 'p50 at 1 client', unit: 'ms', values: runs.map((r) => r.one.p50Ms) },
        { name: 'p99 at 1 client', unit: 'ms', values: runs.map((r) => r.one.p99Ms) },
        { name: 'p50 at 1 client / fsync', unit: 'x', values: runs.map((r) => r.one.p50Ms / r.fsyncMs), target: { op: '<=', value: 2 } },
        { name: 'SQLite commit alone p50 (1 kv entry)', unit: 'ms', values: runs.map((r) => r.sqliteMs) },
        { name: 'SQLite commit alone p50 (+ audit record)', unit: 'ms', values: runs.map((r) => r.sqliteAuditMs) },
        { name: 'SQLite commit (+ audit) / fsync', unit: 'x', values: runs.map((r) => r.sqliteAuditMs / r.fsyncMs) },
        { name: 'GET p50 at 1 client (HTTP alone)', unit: 'ms', values: runs.map((r) => r.get.p50Ms) },
        { name: 'p50 at 1 client / (SQLite + audit + GET)', unit: 'x', values: runs.map((r) => r.one.p50Ms / (r.sqliteAuditMs + r.get.p50Ms)) },
      ],
      notes,
    );
  },
};
