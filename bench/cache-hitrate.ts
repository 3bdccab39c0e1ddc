/**
 * cache-hitrate: the hit rate of the cache tier under `allkeys-lfu` against redis-server on the
 * same trace (issue 11, seed 002 "Hit rate > 80 %"). A Zipf(0.99) trace over 1,000,000 keys is
 * replayed as cache-aside (GET; on a miss, SET a 100-byte value) in pipelined batches, by the
 * CacheTier in process and by the Debian redis-server (started here on a free port, driven with
 * ioredis pipelines), each with a maxmemory that holds the same number of keys (~10 %).
 * The hit rate is counted over the second half of each trace (the first half warms the cache: a
 * cold cache's compulsory misses say nothing about the policy); the whole-trace figure is printed too.
 * Prints the hit rate of every run and the medians; never fails on a figure.
 *
 * Run: `node dist/bench/cache-hitrate.js [--runs 3] [--requests 2000000] [--keys 1000000] [--capacity 0.1] [--samples 5] [--lfu-log-factor 10] [--no-redis]`
 * (`--no-redis`: the tier alone, for traces too long to replay through redis-server here).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { CacheTier } from '../src/cache/index.js';
import { median } from './lib/stats.js';
import { prng } from '../test/helpers/random.js';

const arg = (name: string, def: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : def;
};
const RUNS = arg('runs', 3);
const REQUESTS = arg('requests', 2_000_000);
const KEYS = arg('keys', 1_000_000);
const CAPACITY = arg('capacity', 0.1);
const BATCH = 1000;
const NO_REDIS = process.argv.includes('--no-redis');
/** maxmemory-samples for both (Redis's default 5; Redis's documentation suggests 10 for a closer approximation). */
const SAMPLES = arg('samples', 5);
/** lfu-log-factor for both (Redis's default 10: a counter of c > 5 grows with probability 1/((c-5)·factor+1)). */
const LOG_FACTOR = arg('lfu-log-factor', 10);
const VALUE = Buffer.alloc(100, 'v');
const SKEW = 0.99;

/** A Zipf(s) trace of key ranks in [0, n) by inverse CDF over the cumulative weights. */
function zipfTrace(n: number, s: number, length: number, seed: number): Uint32Array {
  const cdf = new Float64Array(n);
  let sum = 0;
  for (let i = 0; i < n; i++) {
    sum += 1 / Math.pow(i + 1, s);
    cdf[i] = sum;
  }
  const rnd = prng(seed);
  // Popular ranks are scattered over the key space, as real keys are.
  const perm = new Uint32Array(n);
  for (let i = 0; i < n; i++) perm[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    const t = perm[i] as number;
    perm[i] = perm[j] as number;
    perm[j] = t;
  }
  const out = new Uint32Array(length);
  for (let r = 0; r < length; r++) {
    const u = rnd() * sum;
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((cdf[mid] as number) < u) lo = mid + 1;
      else hi = mid;
    }
    out[r] = perm[lo] as number;
  }
  return out;
}

const keyOf = (id: number): string => `key:${String(id).padStart(7, '0')}`;

/** The ideal: the hit rate of a cache that always holds the `capacity` most popular keys (perfect LFU). */
function idealHitRate(n: number, s: number, capacity: number): number {
  let top = 0;
  let all = 0;
  for (let i = 0; i < n; i++) {
    const w = 1 / Math.pow(i + 1, s);
    all += w;
    if (i < capacity) top += w;
  }
  return top / all;
}

/** Replays the trace as cache-aside on the in-process tier, batch by batch like the pipelines. */
interface Replay {
  /** Hits / requests over the second half of the trace. */
  hitRate: number;
  /** Over the whole trace, cold start included. */
  overall: number;
  keys: number;
}

async function replayTier(trace: Uint32Array, capacityKeys: number): Promise<Replay> {
  const tier = new CacheTier({ namespaces: () => ({ prefix: '' }) });
  const probe = new CacheTier({ namespaces: () => ({ prefix: '' }) });
  probe.set(keyOf(0), { type: 'string', value: VALUE });
  const perEntry = probe.usedMemory();
  await tier.setConfig('maxmemory', String(perEntry * capacityKeys));
  await tier.setConfig('maxmemory-policy', 'allkeys-lfu');
  await tier.setConfig('maxmemory-samples', String(SAMPLES));
  await tier.setConfig('lfu-log-factor', String(LOG_FACTOR));
  let hits = 0;
  let warmHits = 0;
  const half = Math.floor(trace.length / 2);
  for (let b = 0; b < trace.length; b += BATCH) {
    const end = Math.min(trace.length, b + BATCH);
    const missed: string[] = [];
    for (let i = b; i < end; i++) {
      const k = keyOf(trace[i] as number);
      if (tier.lookup(k) !== undefined) {
        hits++;
        if (i >= half) warmHits++;
      } else missed.push(k);
    }
    for (const k of missed) tier.set(k, { type: 'string', value: Buffer.from(VALUE) });
  }
  return { hitRate: warmHits / (trace.length - half), overall: hits / trace.length, keys: tier.dbsize() };
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

async function startRedis(): Promise<{ redis: Redis; child: ChildProcess; dir: string }> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'bench-redis-'));
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: 'ignore' });
  const redis = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: null });
  redis.on('error', () => undefined); // refused connects while redis-server starts are retried below
  for (let i = 0; i < 100; i++) {
    try {
      await redis.connect();
      break;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return { redis, child, dir };
}

/** Fills redis with `n` keys of the trace's shape and returns used_memory then (its maxmemory for `n` keys). */
async function redisMemoryFor(redis: Redis, n: number): Promise<number> {
  await redis.flushall();
  for (let b = 0; b < n; b += BATCH) {
    const p = redis.pipeline();
    for (let i = b; i < Math.min(n, b + BATCH); i++) p.set(keyOf(i), VALUE);
    await p.exec();
  }
  const info = await redis.info('memory');
  const used = Number(/used_memory:(\d+)/.exec(info)?.[1]);
  await redis.flushall();
  return used;
}

async function replayRedis(redis: Redis, trace: Uint32Array, capacityKeys: number): Promise<Replay> {
  const maxmemory = await redisMemoryFor(redis, capacityKeys);
  await redis.config('SET', 'maxmemory', String(maxmemory));
  await redis.config('SET', 'maxmemory-policy', 'allkeys-lfu');
  await redis.config('SET', 'maxmemory-samples', String(SAMPLES));
  await redis.config('SET', 'lfu-log-factor', String(LOG_FACTOR));
  await redis.config('RESETSTAT');
  let hits = 0;
  let warmHits = 0;
  const half = Math.floor(trace.length / 2);
  for (let b = 0; b < trace.length; b += BATCH) {
    const end = Math.min(trace.length, b + BATCH);
    const p = redis.pipeline();
    for (let i = b; i < end; i++) p.get(keyOf(trace[i] as number));
    const res = (await p.exec()) ?? [];
    const s = redis.pipeline();
    let misses = 0;
    res.forEach(([, v], j) => {
      if (v !== null) {
        hits++;
        if (b + j >= half) warmHits++;
      } else {
        s.set(keyOf(trace[b + j] as number), VALUE);
        misses++;
      }
    });
    if (misses > 0) await s.exec();
  }
  const keys = await redis.dbsize();
  await redis.config('SET', 'maxmemory', '0');
  return { hitRate: warmHits / (trace.length - half), overall: hits / trace.length, keys };
}

async function main(): Promise<void> {
  const capacityKeys = Math.round(KEYS * CAPACITY);
  console.log(`cache-hitrate: Zipf(${SKEW}) over ${KEYS} keys, ${REQUESTS} requests per run, capacity ${capacityKeys} keys, allkeys-lfu, maxmemory-samples ${SAMPLES}, lfu-log-factor ${LOG_FACTOR}, ${RUNS} runs`);
  console.log(`ideal (the ${capacityKeys} most popular keys always cached): ${(idealHitRate(KEYS, SKEW, capacityKeys) * 100).toFixed(2)} %`);
  const { redis, child, dir } = await startRedis();
  const beacon: number[] = [];
  const red: number[] = [];
  try {
    for (let run = 0; run < RUNS; run++) {
      const trace = zipfTrace(KEYS, SKEW, REQUESTS, 1000 + run);
      const t0 = performance.now();
      const b = await replayTier(trace, capacityKeys);
      const t1 = performance.now();
      const r = NO_REDIS ? { hitRate: NaN, overall: NaN, keys: 0 } : await replayRedis(redis, trace, capacityKeys);
      const t2 = performance.now();
      beacon.push(b.hitRate);
      red.push(r.hitRate);
      console.log(
        `run ${run + 1}: beacon ${(b.hitRate * 100).toFixed(2)} % (whole trace ${(b.overall * 100).toFixed(2)} %, ${b.keys} keys held, ${((t1 - t0) / 1000).toFixed(1)} s)  ` +
          `redis-server ${(r.hitRate * 100).toFixed(2)} % (whole trace ${(r.overall * 100).toFixed(2)} %, ${r.keys} keys held, ${((t2 - t1) / 1000).toFixed(1)} s)`,
      );
    }
  } finally {
    redis.disconnect();
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
  if (NO_REDIS) {
    console.log(`median hit rate: beacon ${(median(beacon) * 100).toFixed(2)} % (redis-server not run)`);
    return;
  }
  const mb = median(beacon) * 100;
  const mr = median(red) * 100;
  console.log(`median hit rate: beacon ${mb.toFixed(2)} %, redis-server ${mr.toFixed(2)} %, difference ${(mb - mr).toFixed(2)} points`);
  console.log(`targets (issue 11): ≥ 80 % → ${mb >= 80 ? 'met' : 'MISSED'}; within 3 points of redis-server → ${Math.abs(mb - mr) <= 3 ? 'met' : 'MISSED'}`);
}

await main();
