/**
 * vs-etcd (issue 17): the core's speed against etcd 3.4 on the same machine, in the same run,
 * with the same load tools. Each run starts a fresh Beacon (`serve --dev`, SQLite) and a fresh
 * one-member etcd (default settings, data dir in the run's temporary root) and loads both through
 * their HTTP APIs — Beacon's `/v1/kv` and etcd's JSON gateway `/v3/kv` — with the suite's own
 * generator and with wrk (1 thread), alternating which server goes first:
 *
 * - durable PUT of 256-byte values over 10,000 random keys, at 128 connections and at 1;
 * - GET of one key at 64 connections, with a trivial Node `http` server answering Beacon's bytes
 *   as the ceiling;
 * - a range read of a 1,000-key prefix with its 256-byte values at 16 connections.
 *
 * Targets (issue 17): PUT ×128 ≥ 2× etcd with a lower p99; PUT ×1 p50 ≤ etcd's; GET ≥ 3× etcd and
 * ≥ 60 % of the trivial server, p99 < 5 ms (own generator); range ≥ 3× etcd. Never fails on a time.
 */
import { result, round, sleep, type BenchContext, type Benchmark } from './lib/bench.js';
import { b64, spawnEtcd } from './lib/etcd.js';
import { randomSpaceKey } from './lib/keys.js';
import { runHttpLoad, type HttpLoad, type HttpLoadResult } from './lib/load.js';
import { spawnBeacon, spawnTrivialServer, stopAll, type ListeningProcess } from './lib/proc.js';
import type { BenchResult, Figure } from './lib/report.js';
import { cpuSeconds, histogramDelta, readHistogram, scrapeMetrics } from './lib/server-stats.js';
import { median } from './lib/stats.js';

/** Distinct keys of the PUT workloads. */
const KEY_SPACE = 10_000;
const VALUE_BYTES = 256;
const PUT_PREFIX = 'bench/rand/';
const GET_KEY = 'bench/get/app-config';
const GET_VALUE = JSON.stringify({ featureFlags: { newCheckout: true, darkMode: false }, timeoutMs: 2500, region: 'eu-west-1' });
const RANGE_PREFIX = 'bench/range/';
/** `RANGE_PREFIX` with its last byte incremented: etcd's range_end of the prefix. */
const RANGE_END = 'bench/range0';
const RANGE_KEYS = 1000;
const RANGE_CONNECTIONS = 16;

type Loader = 'own' | 'wrk';
type Workload = 'put128' | 'put1' | 'get64' | 'range';
type Target = 'beacon' | 'etcd' | 'trivial';

const ALL_WORKLOADS: { id: Workload; label: string }[] = [
  { id: 'put128', label: 'PUT ×128' },
  { id: 'put1', label: 'PUT ×1' },
  { id: 'get64', label: 'GET ×64' },
  { id: 'range', label: `range ${RANGE_KEYS} keys ×${RANGE_CONNECTIONS}` },
];

type Measured = HttpLoadResult & { serverCpuPct: number };

/** The load of one workload against one server (everything but the loader, URL and timing). */
function loadFor(w: Workload, target: Target, putConnections: number): Omit<HttpLoad, 'loader' | 'url' | 'threads' | 'warmupMs' | 'durationMs'> {
  const api = target === 'etcd' ? 'etcd' : 'beacon';
  switch (w) {
    case 'put128':
    case 'put1':
      return { mode: 'put', api, connections: w === 'put1' ? 1 : putConnections, keyOrder: 'random', keySpace: KEY_SPACE, keyPrefix: PUT_PREFIX, valueBytes: VALUE_BYTES };
    case 'get64':
      if (target === 'etcd') return { mode: 'raw', method: 'POST', path: '/v3/kv/range', body: JSON.stringify({ key: b64(GET_KEY) }), connections: 64 };
      return { mode: 'get', path: target === 'trivial' ? '/' : `/v1/kv/${GET_KEY}`, connections: 64 };
    case 'range':
      if (target === 'etcd') {
        return { mode: 'raw', method: 'POST', path: '/v3/kv/range', body: JSON.stringify({ key: b64(RANGE_PREFIX), range_end: b64(RANGE_END) }), connections: RANGE_CONNECTIONS };
      }
      return { mode: 'get', path: `/v1/kv/${RANGE_PREFIX}?prefix=true`, connections: RANGE_CONNECTIONS };
  }
}

/** Runs `fn` over `items` with at most `n` in flight. */
async function pool<T>(items: T[], n: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: n }, async () => {
      while (next < items.length) await fn(items[next++] as T);
    }),
  );
}

async function ok(res: Response, what: string): Promise<string> {
  const text = await res.text();
  if (!res.ok) throw new Error(`${what} answered ${res.status}: ${text.slice(0, 300)}`);
  return text;
}

/** Writes the same data into both stores: the key space of the PUT workloads, the GET key and the range. */
async function seed(beacon: string, etcd: string): Promise<void> {
  const value = 'v'.repeat(VALUE_BYTES);
  const writes: [string, string][] = [
    ...Array.from({ length: KEY_SPACE }, (_, i): [string, string] => [randomSpaceKey(PUT_PREFIX, i), value]),
    ...Array.from({ length: RANGE_KEYS }, (_, i): [string, string] => [`${RANGE_PREFIX}${String(i).padStart(4, '0')}`, value]),
    [GET_KEY, GET_VALUE],
  ];
  await pool(writes, 32, async ([k, v]) => {
    await ok(await fetch(`${beacon}/v1/kv/${k}`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ value: v }) }), `Beacon PUT ${k}`);
    await ok(await fetch(`${etcd}/v3/kv/put`, { method: 'POST', body: JSON.stringify({ key: b64(k), value: b64(v) }) }), `etcd PUT ${k}`);
  });
  const range = JSON.parse(await ok(await fetch(`${beacon}/v1/kv/${RANGE_PREFIX}?prefix=true`), 'Beacon range')) as { count: number; kvs: unknown[] };
  const erange = JSON.parse(await ok(await fetch(`${etcd}/v3/kv/range`, { method: 'POST', body: JSON.stringify({ key: b64(RANGE_PREFIX), range_end: b64(RANGE_END) }) }), 'etcd range')) as {
    count: string;
    kvs: unknown[];
  };
  if (range.kvs.length !== RANGE_KEYS || erange.kvs.length !== RANGE_KEYS) {
    throw new Error(`the range should hold ${RANGE_KEYS} keys: Beacon answered ${range.kvs.length}, etcd ${erange.kvs.length}`);
  }
}

interface RunOut {
  /** `${workload}/${loader}/${target}` → measured window. */
  m: Map<string, Measured>;
  /** Beacon's mean writes per backend transaction during PUT ×128 (own generator). */
  batch: number;
  /** Beacon's mean backend transaction time (ms) during PUT ×128 (own generator), from its histogram. */
  commitMs: number;
  etcdVersion: string;
}

async function oneRun(ctx: BenchContext, run: number, loaders: Loader[], trivialBody: { body: string | undefined }): Promise<RunOut> {
  const { opts } = ctx;
  const WORKLOADS = ALL_WORKLOADS.filter((w) => opts.vsEtcdWorkloads.includes(w.id));
  let beacon: ListeningProcess | undefined;
  let etcd: (ListeningProcess & { version: string }) | undefined;
  let trivial: ListeningProcess | undefined;
  try {
    [beacon, etcd] = await Promise.all([spawnBeacon(ctx.tempDir(`vs-etcd-beacon-${run}-`)), spawnEtcd(ctx.tempDir(`vs-etcd-etcd-${run}-`))]);
    const servers: Partial<Record<Target, ListeningProcess>> = { beacon, etcd };
    ctx.log(`vs-etcd run ${run}: seeding ${KEY_SPACE + RANGE_KEYS + 1} keys into both (etcd ${etcd.version})`);
    await seed(beacon.url, etcd.url);
    const getBody = await ok(await fetch(`${beacon.url}/v1/kv/${GET_KEY}`), 'Beacon GET');
    trivialBody.body = getBody;
    // The baseline answers exactly the bytes Beacon answers, so the ratio is about the work per request.
    trivial = await spawnTrivialServer(getBody);
    servers.trivial = trivial;

    const measure = async (w: Workload, loader: Loader, target: Target, durationMs: number): Promise<Measured> => {
      const server = servers[target] as ListeningProcess;
      const cpu0 = cpuSeconds(server.pid);
      const t0 = performance.now();
      const r = await runHttpLoad({ ...loadFor(w, target, opts.putConnections), loader, url: server.url, threads: 1, warmupMs: loader === 'own' ? 1000 : 0, durationMs });
      return { ...r, serverCpuPct: ((cpuSeconds(server.pid) - cpu0) / ((performance.now() - t0) / 1000)) * 100 };
    };
    // Unmeasured: JIT, caches and connection set-up of both servers on every workload.
    for (const w of WORKLOADS) for (const t of ['beacon', 'etcd'] as Target[]) await measure(w.id, 'own', t, Math.min(2000, opts.warmupS * 1000));

    const m = new Map<string, Measured>();
    let batch = Number.NaN;
    let commitMs = Number.NaN;
    let flip = run % 2;
    for (const w of WORKLOADS) {
      for (const loader of loaders) {
        const targets: Target[] = w.id === 'get64' ? ['beacon', 'etcd', 'trivial'] : ['beacon', 'etcd'];
        // Alternate who goes first, so a slow patch of the shared machine hits neither always.
        if (flip++ % 2 === 1) targets.reverse();
        for (const t of targets) {
          const before = t === 'beacon' && w.id === 'put128' && loader === 'own' ? await scrapeMetrics(beacon.url) : undefined;
          const r = await measure(w.id, loader, t, opts.durationS * 1000);
          if (before !== undefined) {
            const after = await scrapeMetrics(beacon.url);
            const d = histogramDelta(readHistogram(after, 'beacon_backend_commit_batch_size'), readHistogram(before, 'beacon_backend_commit_batch_size'));
            batch = d.sum / d.count;
            const c = histogramDelta(readHistogram(after, 'beacon_backend_commit_duration_seconds'), readHistogram(before, 'beacon_backend_commit_duration_seconds'));
            commitMs = (c.sum / c.count) * 1000;
          }
          m.set(`${w.id}/${loader}/${t}`, r);
          await sleep(200);
        }
        const b = m.get(`${w.id}/${loader}/beacon`) as Measured;
        const e = m.get(`${w.id}/${loader}/etcd`) as Measured;
        ctx.log(
          `vs-etcd run ${run} ${w.label} (${loader}): Beacon ${Math.round(b.rps)}/s p50 ${round(b.p50Ms, 2)} p99 ${round(b.p99Ms, 1)} ms; ` +
            `etcd ${Math.round(e.rps)}/s p50 ${round(e.p50Ms, 2)} p99 ${round(e.p99Ms, 1)} ms; ratio ${round(b.rps / e.rps, 2)}×` +
            (w.id === 'get64' ? `; trivial ${Math.round((m.get(`${w.id}/${loader}/trivial`) as Measured).rps)}/s` : ''),
        );
      }
    }
    return { m, batch, commitMs, etcdVersion: etcd.version };
  } finally {
    await stopAll([beacon, etcd, trivial]);
  }
}

/** The vs-etcd benchmark (see the module comment). */
export const vsEtcd: Benchmark = {
  name: 'vs-etcd',
  title: 'Beacon (--dev, SQLite) against etcd 3.4 through its JSON gateway, same tools, same run',
  async run(ctx: BenchContext): Promise<BenchResult> {
    const { opts } = ctx;
    const loaders = opts.vsEtcdLoaders;
    const runs: RunOut[] = [];
    const trivialBody: { body: string | undefined } = { body: undefined };
    for (let i = 1; i <= opts.runs; i++) runs.push(await oneRun(ctx, i, loaders, trivialBody));
    const WORKLOADS = ALL_WORKLOADS.filter((w) => opts.vsEtcdWorkloads.includes(w.id));
    const get = (r: RunOut, w: Workload, l: Loader, t: Target): Measured => r.m.get(`${w}/${l}/${t}`) as Measured;
    const figures: Figure[] = [];
    for (const w of WORKLOADS) {
      for (const l of loaders) {
        const tag = `${w.label}, ${l === 'own' ? 'own loader' : 'wrk -t1'}`;
        const b = runs.map((r) => get(r, w.id, l, 'beacon'));
        const e = runs.map((r) => get(r, w.id, l, 'etcd'));
        const ratioTarget = w.id === 'put128' ? 2 : w.id === 'put1' ? undefined : 3;
        figures.push(
          { name: `${tag}: Beacon`, unit: '/s', values: b.map((x) => x.rps) },
          { name: `${tag}: etcd`, unit: '/s', values: e.map((x) => x.rps) },
          { name: `${tag}: Beacon / etcd`, unit: 'x', values: b.map((x, i) => x.rps / (e[i] as Measured).rps), ...(ratioTarget === undefined ? {} : { target: { op: '>=' as const, value: ratioTarget } }) },
          { name: `${tag}: Beacon p50`, unit: 'ms', values: b.map((x) => x.p50Ms) },
          { name: `${tag}: etcd p50`, unit: 'ms', values: e.map((x) => x.p50Ms) },
          { name: `${tag}: Beacon p99`, unit: 'ms', values: b.map((x) => x.p99Ms), ...(w.id === 'get64' && l === 'own' ? { target: { op: '<' as const, value: 5 } } : {}) },
          { name: `${tag}: etcd p99`, unit: 'ms', values: e.map((x) => x.p99Ms) },
        );
        // CPU per request: on a shared machine the rate follows whatever else runs; the CPU each
        // server spends per answer does much less (server CPU share over the window / rate).
        figures.push(
          { name: `${tag}: Beacon CPU per request`, unit: 'µs', values: b.map((x) => (x.serverCpuPct / 100 / x.rps) * 1e6) },
          { name: `${tag}: etcd CPU per request`, unit: 'µs', values: e.map((x) => (x.serverCpuPct / 100 / x.rps) * 1e6) },
        );
        if (w.id === 'put128') figures.push({ name: `${tag}: Beacon p99 / etcd p99`, unit: 'x', values: b.map((x, i) => x.p99Ms / (e[i] as Measured).p99Ms), target: { op: '<', value: 1 } });
        if (w.id === 'put1') figures.push({ name: `${tag}: Beacon p50 / etcd p50`, unit: 'x', values: b.map((x, i) => x.p50Ms / (e[i] as Measured).p50Ms), target: { op: '<=', value: 1 } });
        if (w.id === 'get64') {
          const t = runs.map((r) => get(r, w.id, l, 'trivial'));
          figures.push(
            { name: `${tag}: trivial Node http`, unit: '/s', values: t.map((x) => x.rps) },
            { name: `${tag}: Beacon / trivial`, unit: '%', values: b.map((x, i) => (x.rps / (t[i] as Measured).rps) * 100), target: { op: '>=', value: 60 } },
          );
        }
      }
    }
    const all = runs.flatMap((r) => [...r.m.entries()]);
    const errors = all.filter(([, x]) => x.errors > 0).map(([k, x]) => `${k}: ${x.errorDetail}`);
    const cpu = (w: Workload, t: Target): number => Math.round(median(runs.flatMap((r) => loaders.map((l) => r.m.get(`${w}/${l}/${t}`)?.serverCpuPct ?? Number.NaN))));
    const notes = [
      `etcd ${runs[0]?.etcdVersion ?? '?'}: one member, default settings (its WAL fsyncs every commit), data dir in the run's temporary root, its JSON gateway /v3/kv/put and /v3/kv/range (keys and values base64); Beacon: serve --dev on SQLite (WAL, synchronous=FULL)`,
      `PUT: ${VALUE_BYTES}-byte values, each request one of ${KEY_SPACE.toLocaleString('en-US')} keys picked uniformly at random (the keys exist: both stores are seeded first); Beacon's mean writes per backend transaction at ${opts.putConnections}: ${round(median(runs.map((r) => r.batch)), 1)}`,
      `server CPU, median over runs and loaders (% of one core): ${WORKLOADS.map((w) => `${w.label} Beacon ${cpu(w.id, 'beacon')} % / etcd ${cpu(w.id, 'etcd')} %`).join('; ')}`,
      `GET: Beacon ${Buffer.byteLength(trivialBody.body ?? '')}-byte answer, the trivial server the same bytes; range: ${RANGE_KEYS} keys under ${RANGE_PREFIX} with their values, the whole range in one answer from both`,
      `loaders: ${loaders.map((l) => (l === 'own' ? 'bench/load-client (own process, 1 s warm-up on the measured connections, exact latencies)' : 'wrk -t1 (closed loop, latencies as wrk reports them)')).join('; ')}; ${opts.durationS} s per window; every window alternates which server goes first; everything shares the machine's cores`,
      errors.length === 0 ? 'no errors' : `ERRORS: ${errors.join('; ')}`,
    ];
    if (loaders.includes('own') && WORKLOADS.some((w) => w.id === 'put128')) {
      figures.push(
        { name: `PUT ×${opts.putConnections}, own loader: Beacon writes per transaction`, unit: 'count', values: runs.map((r) => r.batch) },
        { name: `PUT ×${opts.putConnections}, own loader: Beacon transaction time, mean`, unit: 'ms', values: runs.map((r) => r.commitMs) },
        { name: `PUT ×${opts.putConnections}, own loader: Beacon transaction time per write`, unit: 'µs', values: runs.map((r) => (r.commitMs / r.batch) * 1000) },
      );
    }
    return result(vsEtcd, { runs: opts.runs, durationS: opts.durationS, putConnections: opts.putConnections, loaders: loaders.join(',') }, figures, notes);
  },
};
