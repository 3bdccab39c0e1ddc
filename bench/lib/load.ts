/**
 * HTTP load for get-http and put-durable, from a separate process: the suite's own generator
 * (bench/load-client.ts, the default) or wrk (`--loader wrk`). Both report the same figures.
 */
import { fork } from 'node:child_process';
import { join } from 'node:path';
import type { LoadResult, LoadSpec } from '../load-client.js';
import { BENCH_DIST, track } from './proc.js';
import { runWrk } from './wrk.js';

/** Which load generator to use. */
export type Loader = 'own' | 'wrk';

/** One load run: `connections` keep-alive connections, each with one request in flight. Times in ms. */
export interface HttpLoad {
  loader: Loader;
  /** The server's base URL. */
  url: string;
  connections: number;
  /** wrk threads (the own generator is one process, one thread). */
  threads: number;
  /** Unmeasured load on the same connections first (own generator only; wrk has none). */
  warmupMs: number;
  durationMs: number;
  mode: 'get' | 'put' | 'raw';
  /** get and raw: the path requested, e.g. `/v1/kv/app/config`. */
  path?: string;
  /** raw: the method (default GET) and body of the one request sent over and over. */
  method?: string;
  body?: string;
  /** put: a fresh key per request under /v1/kv/<keyPrefix>. */
  keyPrefix?: string;
  /** put: keys ascending across connections, or one key range per connection (default). */
  keyOrder?: 'sequential' | 'spread' | 'random';
  /** put with random keys: how many distinct keys (default 10,000). */
  keySpace?: number;
  /** put: Beacon's API (default) or etcd's JSON gateway. */
  api?: 'beacon' | 'etcd';
  valueBytes?: number;
}

/** What a load run measured. Latencies in ms. */
export interface HttpLoadResult {
  requests: number;
  rps: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
  errors: number;
  errorDetail: string;
  /** The generator's own CPU use in % of one core (NaN for wrk). */
  loaderCpuPct: number;
}

function runOwn(url: string, spec: Omit<LoadSpec, 'host' | 'port'>): Promise<LoadResult> {
  const u = new URL(url);
  const full: LoadSpec = { ...spec, host: u.hostname, port: Number(u.port) };
  const child = track(fork(join(BENCH_DIST, 'load-client.js'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }));
  return new Promise((resolve, reject) => {
    let settled = false;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error('the load generator did not finish in time'));
    }, spec.warmupMs + spec.durationMs + 60_000);
    child.on('message', (m: { type: string; result?: LoadResult; error?: string }) => {
      clearTimeout(timer);
      settled = true;
      if (m.type === 'result' && m.result !== undefined) resolve(m.result);
      else reject(new Error(`load generator failed: ${m.error ?? 'unknown'}`));
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      if (!settled) reject(new Error(`the load generator exited with ${code}`));
    });
    child.send({ type: 'start', spec: full });
  });
}

/**
 * Runs one load and resolves with its figures.
 * @throws when the generator cannot run or reports nothing.
 */
export async function runHttpLoad(o: HttpLoad): Promise<HttpLoadResult> {
  if (o.loader === 'wrk') {
    const r = await runWrk({
      url: o.mode === 'put' ? o.url : `${o.url}${o.path ?? '/'}`,
      connections: o.connections,
      threads: o.threads,
      durationS: o.durationMs / 1000,
      mode: o.mode,
      method: o.method,
      body: o.body,
      keySpace: o.keySpace,
      api: o.api,
      putPrefix: o.api === 'etcd' ? (o.keyPrefix ?? 'bench/put/') : `/v1/kv/${o.keyPrefix ?? 'bench/put/'}`,
      valueBytes: o.valueBytes,
      keyOrder: o.keyOrder,
    });
    return { requests: r.requests, rps: r.rps, p50Ms: r.p50Ms, p90Ms: r.p90Ms, p99Ms: r.p99Ms, maxMs: r.maxMs, errors: r.errors, errorDetail: r.errorDetail, loaderCpuPct: Number.NaN };
  }
  const r = await runOwn(o.url, {
    connections: o.connections,
    warmupMs: o.warmupMs,
    durationMs: o.durationMs,
    mode: o.mode,
    path: o.path,
    method: o.method,
    body: o.body,
    keySpace: o.keySpace,
    api: o.api,
    putPrefix: o.keyPrefix,
    keyOrder: o.keyOrder,
    valueBytes: o.valueBytes,
  });
  return {
    requests: r.requests,
    rps: r.rps,
    p50Ms: r.latency.p50,
    p90Ms: r.latency.p90,
    p99Ms: r.latency.p99,
    maxMs: r.latency.max,
    errors: r.errors,
    errorDetail: r.errors === 0 ? 'none' : `${r.errors} (first: ${r.firstError})`,
    loaderCpuPct: r.cpuPct,
  };
}
