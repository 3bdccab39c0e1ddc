/** Runs wrk (the HTTP load generator, a separate process) with bench/wrk/beacon.lua and parses its figures. */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { join } from 'node:path';
import { ROOT, track } from './proc.js';

/** The wrk binary; override with BENCH_WRK. */
export const WRK = process.env.BENCH_WRK ?? '/usr/bin/wrk';
const SCRIPT = join(ROOT, 'bench/wrk/beacon.lua');

/** One wrk run. */
export interface WrkOptions {
  url: string;
  connections: number;
  threads: number;
  durationS: number;
  /** Per-request timeout in seconds (wrk's default is 2). */
  timeoutS?: number;
  mode: 'get' | 'put' | 'raw';
  /** raw mode: the method and body of the request (the URL's path is the path). */
  method?: string;
  body?: string;
  /** put mode: the path prefix of the keys, e.g. `/v1/kv/bench/put/r1/`; with `api: 'etcd'` the key prefix itself. */
  putPrefix?: string;
  /** put mode: Beacon's `PUT <prefix><key>` (default) or etcd's gateway `POST /v3/kv/put` with base64 key and value. */
  api?: 'beacon' | 'etcd';
  /** put mode with `random` keys: how many distinct keys (default 10,000). */
  keySpace?: number;
  /** put mode: value size in bytes. */
  valueBytes?: number;
  /** put mode: one ascending key run per wrk thread, or 64 key ranges per thread; unset: `<thread>-<n>`. */
  keyOrder?: 'sequential' | 'spread' | 'random';
  /** Extra request headers, e.g. `authorization`. */
  headers?: Record<string, string>;
}

/** What one wrk run measured. Latencies in ms; `errors` counts socket errors, timeouts and non-2xx/3xx answers. */
export interface WrkResult {
  requests: number;
  rps: number;
  meanMs: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  p999Ms: number;
  maxMs: number;
  errors: number;
  errorDetail: string;
}

/**
 * Runs wrk once and resolves with its figures.
 * @throws when wrk cannot run or prints no result line.
 */
export function runWrk(o: WrkOptions): Promise<WrkResult> {
  const args = [
    '-t', String(Math.min(o.threads, o.connections)),
    '-c', String(o.connections),
    '-d', `${Math.max(1, Math.round(o.durationS))}s`, // wrk takes whole seconds
    '--timeout', `${o.timeoutS ?? 10}s`,
    '-s', SCRIPT,
    ...Object.entries(o.headers ?? {}).flatMap(([k, v]) => ['-H', `${k}: ${v}`]),
    o.url,
  ];
  const child = track(spawn(WRK, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      BENCH_MODE: o.mode,
      BENCH_PUT_PREFIX: o.putPrefix ?? '/v1/kv/bench/put/',
      BENCH_VALUE_BYTES: String(o.valueBytes ?? 128),
      BENCH_KEY_ORDER: o.keyOrder ?? '',
      BENCH_KEY_SPACE: String(o.keySpace ?? 10_000),
      BENCH_API: o.api ?? 'beacon',
      BENCH_METHOD: o.method ?? 'GET',
      BENCH_BODY: o.body ?? '',
    },
  })) as ChildProcessWithoutNullStreams;
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => {
      const line = /^BENCH_RESULT (\{.*\})$/m.exec(out)?.[1];
      if (line === undefined) {
        reject(new Error(`wrk exited with ${code} and no result:\n${out}\n${err}`));
        return;
      }
      const r = JSON.parse(line) as Record<string, number>;
      const n = (k: string): number => r[k] ?? 0;
      const errors = n('errConnect') + n('errRead') + n('errWrite') + n('errStatus') + n('errTimeout');
      resolve({
        requests: n('requests'),
        rps: n('requests') / (n('durationUs') / 1e6),
        meanMs: n('meanUs') / 1000,
        p50Ms: n('p50Us') / 1000,
        p90Ms: n('p90Us') / 1000,
        p99Ms: n('p99Us') / 1000,
        p999Ms: n('p999Us') / 1000,
        maxMs: n('maxUs') / 1000,
        errors,
        errorDetail: `connect ${n('errConnect')}, read ${n('errRead')}, write ${n('errWrite')}, status ${n('errStatus')}, timeout ${n('errTimeout')}`,
      });
    });
  });
}
