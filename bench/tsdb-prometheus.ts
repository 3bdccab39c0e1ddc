/**
 * tsdb-prometheus: Beacon's metrics store against the Debian `prometheus` started here, same
 * machine, same run, same samples (issue 12):
 * - remote-write ingestion, samples/s (target ≥ 100,000 on one node), and the ratio to
 *   Prometheus's own receiver (`--web.enable-remote-write-receiver`);
 * - bytes per sample of regular 15 s series after compression (target ≤ 2);
 * - `query_range` of `sum by (job) (rate(x[5m]))` over 1,000 series × 24 h at a 60 s step, and an
 *   instant query over 10,000 series (target ≤ 2× Prometheus's latency);
 * - memory per active series (RSS growth / series; target ≤ 2× Prometheus's).
 * Prints figures (medians); never fails on a time. Run: `node dist/bench/tsdb-prometheus.js [--quick]`;
 * `--ingest-only [--runs N]` measures only remote-write ingestion, N times (default 3) with a fresh
 * Beacon and Prometheus each time, and prints every run and the medians.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeRemoteWrite } from '../src/obs/ingest/index.js';
import { formatMachine, machineInfo } from './lib/machine.js';
import { ROOT, killLiveChildren, procStatusBytes, spawnBeacon, track, freePort } from './lib/proc.js';
import { median } from './lib/stats.js';

const quick = process.argv.includes('--quick');
const SERIES = 1000;
const HOURS = quick ? 2 : 24;
const INTERVAL_MS = 15_000;
const CONCURRENCY = 4;
// Each sender owns a quarter of the series and sends them in time order (a receiver refuses
// out-of-order samples): 40 samples × 250 series = 10,000 samples per request.
const SAMPLES_PER_REQUEST_PER_SERIES = 40;
const WIDE_SERIES = 10_000;
const QUERY_RUNS = quick ? 3 : 7;
const ingestOnly = process.argv.includes('--ingest-only');
const runsAt = process.argv.indexOf('--runs');
const INGEST_RUNS = runsAt > 0 ? Number(process.argv[runsAt + 1]) : 3;

function log(msg: string): void {
  process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}


/** Remote-write bodies per sender, each sender's in time order. */
function buildBodies(start: number): { shards: Uint8Array<ArrayBuffer>[][]; samples: number } {
  const steps = (HOURS * 3_600_000) / INTERVAL_MS;
  const shards: Uint8Array<ArrayBuffer>[][] = Array.from({ length: CONCURRENCY }, () => []);
  let samples = 0;
  const labels = Array.from({ length: SERIES }, (_, s) => [
    { name: '__name__', value: 'x' },
    { name: 'instance', value: `host-${s}:9100` },
    { name: 'job', value: `job-${s % 10}` },
  ]);
  for (let k = 0; k < steps; k += SAMPLES_PER_REQUEST_PER_SERIES) {
    for (let w = 0; w < CONCURRENCY; w++) {
    const series = labels.filter((_, s) => s % CONCURRENCY === w).map((l, i) => {
      const s = i * CONCURRENCY + w;
      const out: { value: number; timestamp: number }[] = [];
      for (let j = k; j < Math.min(steps, k + SAMPLES_PER_REQUEST_PER_SERIES); j++) {
        // A counter that moves most scrapes, as request counters do; some series stay flat.
        out.push({ value: s % 5 === 0 ? 1 : Math.floor(j * (1 + (s % 7))), timestamp: start + j * INTERVAL_MS });
      }
      samples += out.length;
      return { labels: l, samples: out };
    });
    (shards[w] as Uint8Array<ArrayBuffer>[]).push(new Uint8Array(encodeRemoteWrite(series)));
    }
  }
  return { shards, samples };
}

function wideBodies(now: number): { bodies: Uint8Array<ArrayBuffer>[]; samples: number } {
  // 10,000 series × 20 samples (the last 5 minutes at 15 s), 1,000 series per request.
  const bodies: Uint8Array<ArrayBuffer>[] = [];
  let samples = 0;
  for (let b = 0; b < WIDE_SERIES / 1000; b++) {
    const series = Array.from({ length: 1000 }, (_, i) => {
      const s = b * 1000 + i;
      const out = Array.from({ length: 20 }, (_, j) => ({ value: j * (s % 3), timestamp: now - (20 - j) * INTERVAL_MS }));
      samples += out.length;
      return { labels: [{ name: '__name__', value: 'y' }, { name: 'job', value: `job-${s % 10}` }, { name: 'pod', value: `pod-${s}` }], samples: out };
    });
    bodies.push(new Uint8Array(encodeRemoteWrite(series)));
  }
  return { bodies, samples };
}

/**
 * Sends the shards side by side, round by round (request r of every shard, then r + 1), so every
 * series moves forward in time together: Prometheus refuses samples more than an hour behind its
 * newest ("out of bounds"). @returns seconds.
 */
async function send(url: string, shards: Uint8Array<ArrayBuffer>[][]): Promise<number> {
  const started = performance.now();
  const post = async (body: Uint8Array<ArrayBuffer>): Promise<void> => {
    const res = await fetch(`${url}/api/v1/write`, {
      method: 'POST',
      body,
      headers: { 'content-type': 'application/x-protobuf', 'content-encoding': 'snappy', 'x-prometheus-remote-write-version': '0.1.0' },
    });
    if (res.status >= 300) throw new Error(`${url} answered ${res.status}: ${(await res.text()).slice(0, 300)}`);
    await res.arrayBuffer();
  };
  const rounds = Math.max(...shards.map((s) => s.length));
  for (let r = 0; r < rounds; r++) await Promise.all(shards.map((s) => (s[r] === undefined ? undefined : post(s[r] as Uint8Array<ArrayBuffer>))));
  return (performance.now() - started) / 1000;
}

async function timeQuery(url: string, path: string): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < QUERY_RUNS; i++) {
    const started = performance.now();
    const res = await fetch(`${url}${path}`);
    const body = (await res.json()) as { status: string; data?: { result: unknown[] }; error?: string };
    if (body.status !== 'success') throw new Error(`${url}${path}: ${body.error ?? res.status}`);
    if ((body.data?.result.length ?? 0) === 0) throw new Error(`${url}${path}: empty result`);
    times.push(performance.now() - started);
  }
  return times;
}

async function gauge(url: string, name: string, labels = ''): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const re = new RegExp(`^${name}${labels.replace(/[{}]/g, (c) => `\\${c}`)}\\s+([0-9.e+]+)`, 'm');
  const m = re.exec(text);
  return m === null ? Number.NaN : Number(m[1]);
}

async function startPrometheus(dir: string): Promise<{ url: string; pid: number; child: ChildProcess }> {
  const port = await freePort();
  mkdirSync(dir, { recursive: true });
  const config = join(dir, 'prometheus.yml');
  writeFileSync(config, 'global:\n  scrape_interval: 1h\nscrape_configs: []\n');
  const child = track(
    spawn('prometheus', [`--config.file=${config}`, `--web.listen-address=127.0.0.1:${port}`, `--storage.tsdb.path=${join(dir, 'data')}`, '--web.enable-remote-write-receiver'], {
      stdio: 'ignore',
    }),
  );
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 600; i++) {
    const ok = await fetch(`${url}/-/ready`).then((r) => r.status === 200, () => false);
    if (ok) return { url, pid: child.pid as number, child };
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('prometheus did not become ready');
}

/** Remote-write ingestion only, `INGEST_RUNS` times, each with a fresh Beacon and Prometheus. */
async function ingestRuns(root: string): Promise<void> {
  const end = Math.floor(Date.now() / 60_000) * 60_000 - 60_000;
  const start = end - HOURS * 3_600_000;
  const data = buildBodies(start);
  log(`${data.samples} samples in ${data.shards.flat().length} requests, ${INGEST_RUNS} runs`);
  const beaconRates: number[] = [];
  const promRates: number[] = [];
  for (let run = 0; run < INGEST_RUNS; run++) {
    const beacon = await spawnBeacon(join(root, `beacon-${run}`), ['--ingest-rate-limit', 'off', '--max-series-per-push', '100000']);
    const prom = await startPrometheus(join(root, `prom-${run}`));
    await new Promise((r) => setTimeout(r, 2000));
    // Alternate which server goes first, and let the first settle: a server still compacting
    // after its ingestion takes CPU from the other on a 2-core machine.
    let promSec: number;
    let beaconSec: number;
    if (run % 2 === 0) {
      promSec = await send(prom.url, data.shards);
      await new Promise((r) => setTimeout(r, 3000));
      beaconSec = await send(beacon.url, data.shards);
    } else {
      beaconSec = await send(beacon.url, data.shards);
      await new Promise((r) => setTimeout(r, 3000));
      promSec = await send(prom.url, data.shards);
    }
    beaconRates.push(data.samples / beaconSec);
    promRates.push(data.samples / promSec);
    process.stdout.write(
      `run ${run + 1}: Beacon ${Math.round(data.samples / beaconSec).toLocaleString('en')}/s, Prometheus ${Math.round(data.samples / promSec).toLocaleString('en')}/s, ratio ${(promSec / beaconSec).toFixed(2)}; load ${readFileSync('/proc/loadavg', 'utf8').trim()}\n`,
    );
    await beacon.stop();
    prom.child.kill('SIGTERM');
    await new Promise((r) => prom.child.once('exit', r));
  }
  const b = median(beaconRates);
  const p = median(promRates);
  const ratios = beaconRates.map((x, i) => x / (promRates[i] as number));
  process.stdout.write(
    `median: Beacon ${Math.round(b).toLocaleString('en')}/s, Prometheus ${Math.round(p).toLocaleString('en')}/s; median of the per-run ratios ${median(ratios).toFixed(2)}\n`,
  );
}

async function main(): Promise<void> {
  const root = mkdtempSync(join(tmpdir(), 'beacon-tsdb-bench-'));
  process.stdout.write(`${formatMachine(machineInfo(root, ROOT))}\n\n`);
  if (ingestOnly) {
    try {
      await ingestRuns(root);
    } finally {
      killLiveChildren();
      rmSync(root, { recursive: true, force: true });
    }
    return;
  }
  try {
    const end = Math.floor(Date.now() / 60_000) * 60_000 - 60_000;
    const start = end - HOURS * 3_600_000;
    log(`building ${SERIES} series × ${HOURS} h at 15 s`);
    const data = buildBodies(start);
    const wide = wideBodies(end);
    log(`${data.samples} samples in ${data.shards.flat().length} requests; ${wide.samples} samples over ${WIDE_SERIES} series for the instant query`);

    const beacon = await spawnBeacon(join(root, 'beacon'), ['--ingest-rate-limit', 'off', '--max-series-per-push', '100000']);
    const prom = await startPrometheus(join(root, 'prom'));
    await new Promise((r) => setTimeout(r, 2000));
    const rssBefore = { beacon: beacon.rssBytes(), prom: procStatusBytes(prom.pid, 'VmRSS') };

    log('remote write → Prometheus');
    const promSec = await send(prom.url, data.shards);
    log('remote write → Beacon');
    const beaconSec = await send(beacon.url, data.shards);
    await send(prom.url, wide.bodies.map((b) => [b]));
    await send(beacon.url, wide.bodies.map((b) => [b]));
    const series = SERIES + WIDE_SERIES;
    const rssAfter = { beacon: beacon.rssBytes(), prom: procStatusBytes(prom.pid, 'VmRSS') };

    const rangePath = `/api/v1/query_range?query=${encodeURIComponent('sum by (job) (rate(x[5m]))')}&start=${start / 1000 + 300}&end=${end / 1000}&step=60`;
    const instantPath = `/api/v1/query?query=${encodeURIComponent('sum by (job) (rate(y[5m]))')}&time=${end / 1000}`;
    log('queries');
    const rangeProm = await timeQuery(prom.url, rangePath);
    const rangeBeacon = await timeQuery(beacon.url, rangePath);
    const instProm = await timeQuery(prom.url, instantPath);
    const instBeacon = await timeQuery(beacon.url, instantPath);

    const rawBytes = await gauge(beacon.url, 'beacon_tsdb_storage_bytes', '{where="raw_chunks"}');
    const rawSamples = await gauge(beacon.url, 'beacon_tsdb_samples');
    const promChunkBytes = await gauge(prom.url, 'prometheus_tsdb_head_chunks_storage_size_bytes');

    const rows: [string, string][] = [
      ['samples sent (each server)', String(data.samples + wide.samples)],
      ['remote-write ingestion, Beacon (samples/s)', Math.round(data.samples / beaconSec).toLocaleString('en')],
      ['remote-write ingestion, Prometheus (samples/s)', Math.round(data.samples / promSec).toLocaleString('en')],
      ['ingestion ratio Beacon / Prometheus', (promSec / beaconSec).toFixed(2)],
      ['Beacon bytes per sample (raw chunks, 15 s series)', (rawBytes / rawSamples).toFixed(3)],
      ['Prometheus head chunk bytes on disk (mmapped, for scale)', String(promChunkBytes)],
      [`query_range sum by (job)(rate(x[5m])) ${SERIES} series × ${HOURS} h, step 60 s: Beacon median ms`, median(rangeBeacon).toFixed(1)],
      ['  … Prometheus median ms', median(rangeProm).toFixed(1)],
      ['  … ratio Beacon / Prometheus', (median(rangeBeacon) / median(rangeProm)).toFixed(2)],
      [`instant sum by (job)(rate(y[5m])) over ${WIDE_SERIES} series: Beacon median ms`, median(instBeacon).toFixed(1)],
      ['  … Prometheus median ms', median(instProm).toFixed(1)],
      ['  … ratio Beacon / Prometheus', (median(instBeacon) / median(instProm)).toFixed(2)],
      ['memory per active series, Beacon (bytes, RSS growth / series)', Math.round((rssAfter.beacon - rssBefore.beacon) / series).toLocaleString('en')],
      ['memory per active series, Prometheus', Math.round((rssAfter.prom - rssBefore.prom) / series).toLocaleString('en')],
    ];
    const width = Math.max(...rows.map((r) => r[0].length));
    for (const [k, v] of rows) process.stdout.write(`${k.padEnd(width)}  ${v}\n`);
    process.stdout.write(`\nquery runs: ${QUERY_RUNS}; remote-write concurrency ${CONCURRENCY}, 10,000 samples per request; load ${readFileSync('/proc/loadavg', 'utf8').trim()}\n`);
    await beacon.stop();
    prom.child.kill('SIGTERM');
    await new Promise((r) => prom.child.once('exit', r));
  } finally {
    killLiveChildren();
    rmSync(root, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  killLiveChildren();
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
