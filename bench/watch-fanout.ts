/**
 * watch-fanout: N watchers on the prefix `fan/` over WebSocket `/v1/watch`, held by several
 * client processes (bench/watch-client.ts), while this process writes `fan/*` at a steady rate
 * (open loop: a write every 1/rate s whether or not the previous one was answered). Each value
 * embeds the writer's CLOCK_MONOTONIC send time, so every client measures write→receipt.
 * write→receipt starts when the writer sends the PUT, so it is an upper bound of commit→receipt
 * (it adds the request's parse and durable commit, well under a millisecond on an idle node);
 * the server's own commit→send histogram (beacon_watch_propagation_seconds) is shown beside it.
 * Targets: p99 < 30 ms at 1,000 watchers, < 150 ms at 10,000.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import WebSocket from 'ws';
import { result, round, sleep, type BenchContext, type Benchmark } from './lib/bench.js';
import { BENCH_DIST, spawnBeacon, track, type ListeningProcess } from './lib/proc.js';
import { mib, type BenchResult, type Figure } from './lib/report.js';
import { cpuSeconds, histogramDelta, histogramQuantile, readHistogram, scrapeMetrics } from './lib/server-stats.js';
import { latencySummary, median, type LatencySummary } from './lib/stats.js';

/** The issue's p99 targets by watcher count, in ms. */
const TARGETS: Record<number, number> = { 1000: 30, 10000: 150 };

/** What a watch client process reports over IPC. */
export type ClientMessage =
  | { type: 'ready'; sockets: number; watches: number; connectMs: number }
  | { type: 'failed'; error: string }
  | { type: 'reset-done' }
  | { type: 'count'; received: number }
  | { type: 'samples'; seqs: Int32Array; latencies: Float64Array; closedEarly: number; serverErrors: number; otherMessages: number; lastError: string };

/** One forked watch client process (bench/watch-client.ts) and a request/reply helper over its IPC channel. */
export class Client {
  readonly child: ChildProcess;
  private waiting: { type: string; resolve: (m: ClientMessage) => void; reject: (e: Error) => void } | undefined;
  private early: ClientMessage[] = [];

  /** `url`: Beacon's `ws://…/v1/watch`, or etcd's client URL when `target` is `etcd`. */
  constructor(wsUrl: string, sockets: number, watches: number, target: 'beacon' | 'etcd' = 'beacon') {
    this.child = track(
      fork(join(BENCH_DIST, 'watch-client.js'), [], {
        env: { ...process.env, BENCH_WS_URL: wsUrl, BENCH_SOCKETS: String(sockets), BENCH_WATCHES: String(watches), BENCH_TARGET: target },
        serialization: 'advanced',
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      }),
    );
    this.child.on('message', (m: ClientMessage) => {
      const w = this.waiting;
      if (w !== undefined && (m.type === w.type || m.type === 'failed')) {
        this.waiting = undefined;
        if (m.type === 'failed') w.reject(new Error(`watch client failed: ${m.error}`));
        else w.resolve(m);
      } else this.early.push(m);
    });
    this.child.once('exit', (code) => {
      const w = this.waiting;
      this.waiting = undefined;
      w?.reject(new Error(`watch client exited with ${code}`));
    });
  }

  /** Waits for a message of `type` (sending `request` first when given). */
  wait<T extends ClientMessage['type']>(type: T, timeoutMs: number, request?: string): Promise<Extract<ClientMessage, { type: T }>> {
    const early = this.early.findIndex((m) => m.type === type || m.type === 'failed');
    if (early >= 0) {
      const m = this.early.splice(early, 1)[0] as ClientMessage;
      if (m.type === 'failed') return Promise.reject(new Error(`watch client failed: ${m.error}`));
      return Promise.resolve(m as Extract<ClientMessage, { type: T }>);
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting = undefined;
        reject(new Error(`watch client: no '${type}' within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiting = {
        type,
        resolve: (m) => {
          clearTimeout(timer);
          resolve(m as Extract<ClientMessage, { type: T }>);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      if (request !== undefined) this.child.send({ type: request });
    });
  }

  /** Asks the process to close its sockets and exit; kills it 2 s later if it has not. */
  stop(): void {
    if (this.child.connected) this.child.send({ type: 'exit' });
    setTimeout(() => this.child.kill('SIGKILL'), 2000).unref();
  }
}

/**
 * Checks that `/v1/watch` accepts a watch: resolves with undefined, or a reason it does not.
 */
export function probeWatch(wsUrl: string, timeoutMs = 5000): Promise<string | undefined> {
  return new Promise((resolve) => {
    const ws = new WebSocket(wsUrl, { perMessageDeflate: false });
    const done = (reason: string | undefined): void => {
      clearTimeout(timer);
      ws.terminate();
      resolve(reason);
    };
    const timer = setTimeout(() => done(`no 'created' reply within ${timeoutMs} ms`), timeoutMs);
    ws.on('open', () => ws.send(JSON.stringify({ type: 'create', key: 'fan/', prefix: true })));
    ws.on('message', (d) => {
      const m = JSON.parse(d.toString()) as { type?: string };
      done(m.type === 'created' ? undefined : `first reply was ${d.toString().slice(0, 200)}`);
    });
    ws.on('unexpected-response', (_req, res) => done(`the upgrade was answered with HTTP ${res.statusCode}`));
    ws.on('error', (err) => done(err.message));
  });
}

/**
 * Writes `fan/*` at `rate`/s for `durationS` (Beacon's `/v1/kv`, or etcd's gateway `/v3/kv/put`
 * when `target` is `etcd`); resolves with each write's send and ack times (hrtime ms) once all
 * are answered.
 */
export async function writeLoad(url: string, rate: number, durationS: number, target: 'beacon' | 'etcd' = 'beacon'): Promise<{ sent: Float64Array; acked: Float64Array; failed: number }> {
  const n = Math.max(1, Math.round(rate * durationS));
  const sent = new Float64Array(n);
  const acked = new Float64Array(n).fill(Number.NaN);
  let failed = 0;
  const pending: Promise<void>[] = [];
  const start = performance.now();
  for (let seq = 0; seq < n; seq++) {
    const due = start + (seq * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 0) await sleep(wait);
    const t = process.hrtime.bigint();
    sent[seq] = Number(t) / 1e6;
    const value = JSON.stringify({ seq, t: t.toString(), pad: 'x'.repeat(64) });
    const key = `fan/key-${seq % 16}`;
    const req =
      target === 'etcd'
        ? fetch(`${url}/v3/kv/put`, { method: 'POST', body: JSON.stringify({ key: Buffer.from(key).toString('base64'), value: Buffer.from(value).toString('base64') }) })
        : fetch(`${url}/v1/kv/${key}`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ value }) });
    pending.push(
      req.then(
        async (res) => {
          await res.arrayBuffer();
          if (res.ok) acked[seq] = Number(process.hrtime.bigint()) / 1e6;
          else failed++;
        },
        () => void failed++,
      ),
    );
  }
  await Promise.all(pending);
  return { sent, acked, failed };
}

interface RunFigures {
  fromSend: LatencySummary;
  put: LatencySummary;
  deliveredPct: number;
  duplicates: number;
  eventsPerS: number;
  cpuPct: number;
  serverP99Ms: number;
}

async function scenario(ctx: BenchContext, watchers: number, socketCount: number): Promise<{ figures: Figure[]; notes: string[] }> {
  const { opts } = ctx;
  const label = `${watchers.toLocaleString('en-US')} watchers / ${socketCount.toLocaleString('en-US')} sockets`;
  const dir = ctx.tempDir('watch-fanout-');
  let server: ListeningProcess | undefined;
  const clients: Client[] = [];
  try {
    const srv = await spawnBeacon(dir);
    server = srv;
    const wsUrl = `${srv.url.replace(/^http/, 'ws')}/v1/watch`;
    const reason = await probeWatch(wsUrl);
    if (reason !== undefined) return { figures: [], notes: [`${label}: SKIPPED — the watch endpoint is not available (${reason})`] };
    const rssBefore = mib(srv.rssBytes());

    const procs = Math.min(opts.watchClients, socketCount);
    ctx.log(`watch-fanout ${label}: connecting ${procs} client processes`);
    const connectStart = performance.now();
    for (let i = 0; i < procs; i++) {
      const sockets = Math.floor(socketCount / procs) + (i < socketCount % procs ? 1 : 0);
      const share = Math.floor(watchers / procs) + (i < watchers % procs ? 1 : 0);
      clients.push(new Client(wsUrl, sockets, share));
    }
    await Promise.all(clients.map((c) => c.wait('ready', 180_000)));
    const connectS = (performance.now() - connectStart) / 1000;
    await sleep(500);
    const rssWatching = mib(srv.rssBytes());

    const oneRun = async (durationS: number): Promise<RunFigures> => {
      await Promise.all(clients.map((c) => c.wait('reset-done', 10_000, 'reset')));
      const metricsBefore = readHistogram(await scrapeMetrics(srv.url), 'beacon_watch_propagation_seconds');
      const cpu0 = cpuSeconds(srv.pid);
      const t0 = performance.now();
      const w = await writeLoad(srv.url, opts.watchRate, durationS);
      const expected = watchers * w.sent.length;
      // Wait until every watcher has every event, or 15 s after the last write was answered.
      const deadline = performance.now() + 15_000;
      let received = 0;
      while (performance.now() < deadline) {
        received = (await Promise.all(clients.map((c) => c.wait('count', 10_000, 'count')))).reduce((s, m) => s + m.received, 0);
        if (received >= expected) break;
        await sleep(100);
      }
      const elapsed = (performance.now() - t0) / 1000;
      const cpuPct = ((cpuSeconds(srv.pid) - cpu0) / elapsed) * 100;
      const metricsAfter = readHistogram(await scrapeMetrics(srv.url), 'beacon_watch_propagation_seconds');
      const samples = await Promise.all(clients.map((c) => c.wait('samples', 60_000, 'collect')));
      const fromSend: number[] = [];
      const seen = new Map<number, number>();
      for (const sample of samples) {
        for (let i = 0; i < sample.seqs.length; i++) {
          const seq = sample.seqs[i] as number;
          fromSend.push(sample.latencies[i] as number);
          seen.set(seq, (seen.get(seq) ?? 0) + 1);
        }
      }
      const duplicates = [...seen.values()].reduce((d, c) => d + Math.max(0, c - watchers), 0);
      const putLat: number[] = [];
      for (let i = 0; i < w.sent.length; i++) {
        const ms = (w.acked[i] as number) - (w.sent[i] as number);
        if (Number.isFinite(ms)) putLat.push(ms);
      }
      return {
        fromSend: latencySummary(fromSend),
        put: latencySummary(putLat),
        deliveredPct: (fromSend.length / expected) * 100,
        duplicates,
        eventsPerS: fromSend.length / durationS,
        cpuPct,
        serverP99Ms: histogramQuantile(histogramDelta(metricsAfter, metricsBefore), 0.99) * 1000,
      };
    };

    ctx.log(`watch-fanout ${label}: connected in ${round(connectS, 1)} s; warm-up`);
    await oneRun(Math.min(2, opts.watchDurationS));
    const runs: RunFigures[] = [];
    for (let i = 1; i <= opts.runs; i++) {
      const r = await oneRun(opts.watchDurationS);
      runs.push(r);
      ctx.log(
        `watch-fanout ${label} run ${i}/${opts.runs}: p50 ${round(r.fromSend.p50)} p99 ${round(r.fromSend.p99)} max ${round(r.fromSend.max)} ms from send; ` +
          `writer PUT p50 ${round(r.put.p50)} ms; delivered ${round(r.deliveredPct, 2)} %`,
      );
    }
    const target = TARGETS[watchers];
    const figures: Figure[] = [
      { name: `${label}: p50 write→receipt`, unit: 'ms', values: runs.map((r) => r.fromSend.p50) },
      { name: `${label}: p99 write→receipt`, unit: 'ms', values: runs.map((r) => r.fromSend.p99), ...(target !== undefined ? { target: { op: '<' as const, value: target } } : {}) },
      { name: `${label}: max write→receipt`, unit: 'ms', values: runs.map((r) => r.fromSend.max) },
      { name: `${label}: server commit→send p99 (≈, buckets)`, unit: 'ms', values: runs.map((r) => r.serverP99Ms) },
      { name: `${label}: writer PUT p50`, unit: 'ms', values: runs.map((r) => r.put.p50) },
      { name: `${label}: writer PUT p99`, unit: 'ms', values: runs.map((r) => r.put.p99) },
      { name: `${label}: delivered`, unit: '%', values: runs.map((r) => r.deliveredPct) },
    ];
    const finalSamples = await Promise.all(clients.map((c) => c.wait('samples', 60_000, 'collect')));
    const closed = finalSamples.reduce((s, m) => s + m.closedEarly, 0);
    const errs = finalSamples.reduce((s, m) => s + m.serverErrors, 0);
    const notes = [
      `${label}: connected in ${round(connectS, 1)} s; server RSS ${round(rssBefore, 1)} MiB idle → ${round(rssWatching, 1)} MiB watching; ` +
        `server CPU ${Math.round(median(runs.map((r) => r.cpuPct)))} % of one core; ${Math.round(median(runs.map((r) => r.eventsPerS))).toLocaleString('en-US')} events/s delivered`,
    ];
    const dups = runs.reduce((s, r) => s + r.duplicates, 0);
    if (dups > 0 || closed > 0 || errs > 0) notes.push(`${label}: PROBLEMS — ${dups} duplicate events, ${closed} sockets closed by the server, ${errs} error messages (${finalSamples.find((m) => m.lastError !== '')?.lastError ?? ''})`);
    return { figures, notes };
  } finally {
    for (const c of clients) c.stop();
    await Promise.all(clients.map((c) => (c.child.exitCode === null && c.child.signalCode === null ? new Promise((r) => c.child.once('exit', r)) : undefined)));
    await server?.stop();
  }
}

/** The watch-fanout benchmark (see the module comment). */
export const watchFanout: Benchmark = {
  name: 'watch-fanout',
  title: 'write → watcher receipt latency over WebSocket with many watchers',
  async run(ctx: BenchContext): Promise<BenchResult> {
    const { opts } = ctx;
    const figures: Figure[] = [];
    const notes: string[] = [];
    for (const s of opts.watchScenarios) {
      const r = await scenario(ctx, s.watchers, s.sockets);
      figures.push(...r.figures);
      notes.push(...r.notes);
    }
    notes.push(
      `writes: ${opts.watchRate}/s open loop to fan/key-0…15 (one durable PUT each), ${opts.watchDurationS} s per run; every watcher watches the prefix fan/, so each write is one event per watcher`,
      `${opts.watchClients} client processes share the machine's cores with the server and the writer, so client-side queueing is part of every figure`,
    );
    return result(
      watchFanout,
      { scenarios: opts.watchScenarios.map((s) => `${s.watchers}/${s.sockets}`), clients: opts.watchClients, writesPerS: opts.watchRate, durationS: opts.watchDurationS },
      figures,
      notes,
    );
  },
};
