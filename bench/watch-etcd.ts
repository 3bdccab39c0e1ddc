/**
 * watch-vs-etcd (issue 17 target 4): commit-to-receipt latency of prefix watchers on Beacon and on
 * etcd 3.4, measured by the same client processes (bench/watch-client.ts) in the same run.
 *
 * Each run starts a fresh Beacon (`serve --dev`, SQLite) and a fresh one-member etcd (default
 * settings), then, alternating which goes first:
 *
 * - 1,000 watchers on `fan/` against each, one connection per watcher: Beacon's WebSocket
 *   `/v1/watch` (what the SDK uses), etcd's JSON gateway `/v3/watch` (a streaming POST whose
 *   answer is one JSON object per line; the gateway carries one watch per request, so one
 *   connection per watcher there too);
 * - 10,000 watchers on 10,000 WebSockets against Beacon (etcd too with `--watch-etcd-10k`).
 *
 * A writer in this process PUTs `fan/key-0…15` at `--watch-rate`/s (open loop) through each
 * server's own HTTP API, every value carrying its CLOCK_MONOTONIC send time; the clients subtract
 * it on receipt. write→receipt therefore includes the PUT's parse and durable commit on both
 * servers alike: an upper bound of commit→receipt, the same bound for both.
 *
 * Targets: 10,000 watchers p99 < 150 ms; 1,000 watchers p99 ≤ etcd's. Never fails on a time.
 */
import { result, round, sleep, type BenchContext, type Benchmark } from './lib/bench.js';
import { spawnEtcd } from './lib/etcd.js';
import { spawnBeacon, stopAll, type ListeningProcess } from './lib/proc.js';
import { mib, type BenchResult, type Figure } from './lib/report.js';
import { cpuSeconds } from './lib/server-stats.js';
import { latencySummary, median, type LatencySummary } from './lib/stats.js';
import { Client, probeWatch, writeLoad } from './watch-fanout.js';

type Target = 'beacon' | 'etcd';

interface Phase {
  lat: LatencySummary;
  put: LatencySummary;
  deliveredPct: number;
  duplicates: number;
  problems: number;
  lastError: string;
  cpuPct: number;
  rssMiB: number;
  connectS: number;
}

/**
 * Connects `watchers` watchers (on as many connections) to one server, warms up for 2 s of
 * writes, then measures one window of `durationS`; stops the clients before it resolves.
 */
async function phase(ctx: BenchContext, server: ListeningProcess, target: Target, watchers: number): Promise<Phase> {
  const { opts } = ctx;
  const clientUrl = target === 'etcd' ? server.url : `${server.url.replace(/^http/, 'ws')}/v1/watch`;
  const procs = Math.min(opts.watchClients, watchers);
  const clients: Client[] = [];
  try {
    const t0 = performance.now();
    for (let i = 0; i < procs; i++) {
      const share = Math.floor(watchers / procs) + (i < watchers % procs ? 1 : 0);
      clients.push(new Client(clientUrl, share, share, target));
    }
    await Promise.all(clients.map((c) => c.wait('ready', 300_000)));
    const connectS = (performance.now() - t0) / 1000;
    await sleep(500);
    const rssMiB = mib(server.rssBytes());

    const window = async (durationS: number): Promise<Phase> => {
      await Promise.all(clients.map((c) => c.wait('reset-done', 10_000, 'reset')));
      const cpu0 = cpuSeconds(server.pid);
      const start = performance.now();
      const w = await writeLoad(server.url, opts.watchRate, durationS, target);
      const expected = watchers * w.sent.length;
      const deadline = performance.now() + 15_000;
      while (performance.now() < deadline) {
        const got = (await Promise.all(clients.map((c) => c.wait('count', 10_000, 'count')))).reduce((s, m) => s + m.received, 0);
        if (got >= expected) break;
        await sleep(100);
      }
      const cpuPct = ((cpuSeconds(server.pid) - cpu0) / ((performance.now() - start) / 1000)) * 100;
      const samples = await Promise.all(clients.map((c) => c.wait('samples', 60_000, 'collect')));
      const lat: number[] = [];
      const seen = new Map<number, number>();
      for (const s of samples) {
        for (let i = 0; i < s.seqs.length; i++) {
          lat.push(s.latencies[i] as number);
          const seq = s.seqs[i] as number;
          seen.set(seq, (seen.get(seq) ?? 0) + 1);
        }
      }
      const put: number[] = [];
      for (let i = 0; i < w.sent.length; i++) {
        const ms = (w.acked[i] as number) - (w.sent[i] as number);
        if (Number.isFinite(ms)) put.push(ms);
      }
      return {
        lat: latencySummary(lat),
        put: latencySummary(put),
        deliveredPct: (lat.length / expected) * 100,
        duplicates: [...seen.values()].reduce((d, c) => d + Math.max(0, c - watchers), 0),
        problems: w.failed + samples.reduce((s, m) => s + m.closedEarly + m.serverErrors, 0),
        lastError: samples.find((m) => m.lastError !== '')?.lastError ?? '',
        cpuPct,
        rssMiB,
        connectS,
      };
    };
    await window(Math.min(2, opts.watchDurationS));
    return await window(opts.watchDurationS);
  } finally {
    for (const c of clients) c.stop();
    await Promise.all(clients.map((c) => (c.child.exitCode === null && c.child.signalCode === null ? new Promise((r) => c.child.once('exit', r)) : undefined)));
  }
}

interface RunOut {
  beacon1k: Phase;
  etcd1k: Phase;
  beacon10k: Phase;
  etcd10k: Phase | undefined;
  etcdVersion: string;
}

async function oneRun(ctx: BenchContext, run: number, etcd10k: boolean): Promise<RunOut> {
  let beacon: ListeningProcess | undefined;
  let etcd: (ListeningProcess & { version: string }) | undefined;
  try {
    [beacon, etcd] = await Promise.all([spawnBeacon(ctx.tempDir(`watch-etcd-beacon-${run}-`)), spawnEtcd(ctx.tempDir(`watch-etcd-etcd-${run}-`))]);
    const reason = await probeWatch(`${beacon.url.replace(/^http/, 'ws')}/v1/watch`);
    if (reason !== undefined) throw new Error(`Beacon's watch endpoint is not available: ${reason}`);
    const servers: Record<Target, ListeningProcess> = { beacon, etcd };
    const order: Target[] = run % 2 === 1 ? ['beacon', 'etcd'] : ['etcd', 'beacon'];
    const k1: Partial<Record<Target, Phase>> = {};
    for (const t of order) {
      ctx.log(`watch-vs-etcd run ${run}: 1,000 watchers on ${t}`);
      k1[t] = await phase(ctx, servers[t], t, 1000);
      await sleep(300);
    }
    ctx.log(`watch-vs-etcd run ${run}: 10,000 watchers on 10,000 sockets on beacon`);
    const beacon10k = await phase(ctx, beacon, 'beacon', 10_000);
    let e10k: Phase | undefined;
    if (etcd10k) {
      ctx.log(`watch-vs-etcd run ${run}: 10,000 watchers on etcd`);
      e10k = await phase(ctx, etcd, 'etcd', 10_000);
    }
    const b = k1.beacon as Phase;
    const e = k1.etcd as Phase;
    ctx.log(
      `watch-vs-etcd run ${run}: 1,000 watchers p50/p99 Beacon ${round(b.lat.p50)}/${round(b.lat.p99)} ms, etcd ${round(e.lat.p50)}/${round(e.lat.p99)} ms; ` +
        `10,000 on Beacon ${round(beacon10k.lat.p50)}/${round(beacon10k.lat.p99)} ms` +
        (e10k === undefined ? '' : `, on etcd ${round(e10k.lat.p50)}/${round(e10k.lat.p99)} ms`),
    );
    return { beacon1k: b, etcd1k: e, beacon10k, etcd10k: e10k, etcdVersion: etcd.version };
  } finally {
    await stopAll([beacon, etcd]);
  }
}

/** The watch-vs-etcd benchmark (see the module comment). */
export const watchVsEtcd: Benchmark = {
  name: 'watch-vs-etcd',
  title: 'watch commit→receipt: Beacon (WebSocket) against etcd 3.4 (JSON gateway /v3/watch), same clients, same run',
  async run(ctx: BenchContext): Promise<BenchResult> {
    const { opts } = ctx;
    const runs: RunOut[] = [];
    for (let i = 1; i <= opts.runs; i++) runs.push(await oneRun(ctx, i, opts.watchEtcd10k));
    const figs = (label: string, ps: Phase[], target?: Figure['target']): Figure[] => [
      { name: `${label}: p50`, unit: 'ms', values: ps.map((p) => p.lat.p50) },
      { name: `${label}: p99`, unit: 'ms', values: ps.map((p) => p.lat.p99), ...(target === undefined ? {} : { target }) },
      { name: `${label}: max`, unit: 'ms', values: ps.map((p) => p.lat.max) },
      { name: `${label}: writer PUT p50`, unit: 'ms', values: ps.map((p) => p.put.p50) },
      { name: `${label}: delivered`, unit: '%', values: ps.map((p) => p.deliveredPct) },
      { name: `${label}: server CPU`, unit: '%', values: ps.map((p) => p.cpuPct) },
      { name: `${label}: server RSS watching`, unit: 'MiB', values: ps.map((p) => p.rssMiB) },
    ];
    const b1 = runs.map((r) => r.beacon1k);
    const e1 = runs.map((r) => r.etcd1k);
    const b10 = runs.map((r) => r.beacon10k);
    const figures: Figure[] = [
      ...figs('1,000 watchers, Beacon', b1),
      ...figs('1,000 watchers, etcd', e1),
      { name: '1,000 watchers: Beacon p99 / etcd p99', unit: 'x', values: b1.map((b, i) => b.lat.p99 / (e1[i] as Phase).lat.p99), target: { op: '<=', value: 1 } },
      ...figs('10,000 watchers on 10,000 WebSockets, Beacon', b10, { op: '<', value: 150 }),
    ];
    const e10 = runs.map((r) => r.etcd10k).filter((p): p is Phase => p !== undefined);
    if (e10.length > 0) figures.push(...figs('10,000 watchers, etcd', e10));
    const all = runs.flatMap((r) => [r.beacon1k, r.etcd1k, r.beacon10k, ...(r.etcd10k ? [r.etcd10k] : [])]);
    const problems = all.filter((p) => p.problems > 0 || p.duplicates > 0);
    const notes = [
      `etcd ${runs[0]?.etcdVersion ?? '?'}: one member, default settings; watches through its JSON gateway (POST /v3/watch, one watch per request and connection, events as base64 JSON lines); writes through /v3/kv/put`,
      `Beacon: serve --dev on SQLite; watches over WebSocket /v1/watch (the SDK's transport), one watch per socket; writes through PUT /v1/kv`,
      `writes: ${opts.watchRate}/s open loop to fan/key-0…15 for ${opts.watchDurationS} s after a 2 s warm-up; each write is one event for every watcher; write→receipt includes the write's commit on both servers`,
      `${opts.watchClients} client processes (the same code for both servers) share the machine's two cores with the server and the writer`,
      `connect time, median: 1,000 Beacon ${round(median(b1.map((p) => p.connectS)), 1)} s, etcd ${round(median(e1.map((p) => p.connectS)), 1)} s; 10,000 Beacon ${round(median(b10.map((p) => p.connectS)), 1)} s`,
      problems.length === 0 ? 'every watcher got every event exactly once; no write failed, no stream closed' : `PROBLEMS in ${problems.length} windows: ${problems.map((p) => `${p.problems} failures/closes, ${p.duplicates} duplicates ${p.lastError}`).join('; ')}`,
    ];
    return result(watchVsEtcd, { runs: opts.runs, clients: opts.watchClients, writesPerS: opts.watchRate, durationS: opts.watchDurationS }, figures, notes);
  },
};
