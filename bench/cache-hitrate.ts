/**
 * cache-hitrate: the hit rate of the cache tier under `allkeys-lfu` against redis-server on the
 * same trace (issue 11, seed 002 "Hit rate > 80 %"). A Zipf(0.99) trace over 1,000,000 keys is
 * replayed as cache-aside (GET; on a miss, SET a 100-byte value) in pipelined batches, by the
 * CacheTier in process and by the Debian redis-server (started here on a free port, driven over
 * one socket with pipelines of raw RESP), each with a maxmemory that holds the same number of
 * keys (~10 %), Redis's LFU defaults on both (lfu-log-factor 10, lfu-decay-time 1).
 *
 * Steady state: the first `--warmup` requests of the trace (default 8,000,000) are replayed the
 * same way but not counted, then the hit rate is counted over the next `--requests` (default
 * 2,000,000): a cold cache's compulsory misses, and LFU counters that have not yet told keys near
 * the capacity boundary from the tail, say nothing about the policy at steady state. The
 * whole-trace figure (warm-up included) is printed too.
 * Prints the hit rate of every run and the medians; never fails on a figure.
 *
 * Run: `node dist/bench/cache-hitrate.js [--runs 3] [--warmup 8000000] [--requests 2000000] [--window 2000000] [--keys 1000000] [--capacity 0.1] [--samples 5] [--lfu-log-factor 10] [--no-redis]`
 * (`--no-redis`: the tier alone).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type Socket } from 'node:net';
import { CacheTier } from '../src/cache/index.js';
import { median } from './lib/stats.js';
import { prng } from '../test/helpers/random.js';
import { freePort } from './lib/proc.js';

const arg = (name: string, def: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : def;
};
const RUNS = arg('runs', 3);
/** Requests replayed before counting (the warm-up), then requests counted. */
const WARMUP = arg('warmup', 8_000_000);
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

/** The outcome of one replay. */
interface Replay {
  /** Hits / requests over the counted part of the trace (after the warm-up). */
  hitRate: number;
  /** Over the whole trace, cold start included. */
  overall: number;
  keys: number;
  /** Hit rate of each successive window of {@link WINDOW} requests (how fast the cache reaches steady state). */
  windows: number[];
}

/** Requests per window of the hit-rate curve printed for each replay. */
const WINDOW = arg('window', 2_000_000);

/** Counts hits per window of the trace. */
class Curve {
  readonly windows: number[] = [];
  private hits = 0;
  private n = 0;

  add(hit: boolean): void {
    if (hit) this.hits++;
    if (++this.n === WINDOW) {
      this.windows.push(this.hits / this.n);
      this.hits = this.n = 0;
    }
  }
}

/** Replays the trace as cache-aside on the in-process tier, batch by batch like the pipelines. */
async function replayTier(trace: Uint32Array, warmup: number, capacityKeys: number): Promise<Replay> {
  const tier = new CacheTier({ namespaces: () => ({ prefix: '' }) });
  const probe = new CacheTier({ namespaces: () => ({ prefix: '' }) });
  probe.set(keyOf(0), { type: 'string', value: VALUE });
  const perEntry = probe.usedMemory();
  await tier.setConfig('maxmemory', String(perEntry * capacityKeys), false);
  await tier.setConfig('maxmemory-policy', 'allkeys-lfu', false);
  await tier.setConfig('maxmemory-samples', String(SAMPLES), false);
  await tier.setConfig('lfu-log-factor', String(LOG_FACTOR), false);
  await tier.setConfig('lfu-decay-time', '1', false);
  let hits = 0;
  let warmHits = 0;
  const curve = new Curve();
  for (let b = 0; b < trace.length; b += BATCH) {
    const end = Math.min(trace.length, b + BATCH);
    const missed: string[] = [];
    for (let i = b; i < end; i++) {
      const k = keyOf(trace[i] as number);
      const hit = tier.lookup(k) !== undefined;
      curve.add(hit);
      if (hit) {
        hits++;
        if (i >= warmup) warmHits++;
      } else missed.push(k);
    }
    for (const k of missed) tier.set(k, { type: 'string', value: Buffer.from(VALUE) });
  }
  return { hitRate: warmHits / (trace.length - warmup), overall: hits / trace.length, keys: tier.dbsize(), windows: curve.windows };
}


/**
 * A minimal pipelining RESP client for the replay: sends a batch of commands in one write and
 * resolves with the replies in order (bulk → Buffer, null → null, integer → number, simple →
 * string; an error reply rejects). ioredis costs more CPU per command than redis-server itself,
 * which made a long trace take many minutes on this machine.
 */
class Pipe {
  private buf: Buffer = Buffer.alloc(0);
  private waiting: { n: number; out: (Buffer | string | number | null)[]; resolve: (r: (Buffer | string | number | null)[]) => void; reject: (e: Error) => void }[] = [];

  constructor(private readonly sock: Socket) {
    sock.on('data', (chunk: Buffer) => this.onData(chunk));
    sock.on('error', (err) => this.fail(err));
    sock.on('close', () => this.fail(new Error('redis-server closed the connection')));
  }

  static async open(port: number): Promise<Pipe> {
    for (let i = 0; ; i++) {
      try {
        const sock = await new Promise<Socket>((resolve, reject) => {
          const s = connect(port, '127.0.0.1', () => resolve(s));
          s.once('error', reject);
        });
        sock.removeAllListeners('error');
        return new Pipe(sock);
      } catch (err) {
        if (i >= 100) throw err;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }

  /** Sends `cmds` (each its arguments) in one write; resolves with their replies. */
  send(cmds: (string | Buffer)[][]): Promise<(Buffer | string | number | null)[]> {
    const parts: Buffer[] = [];
    for (const c of cmds) {
      parts.push(Buffer.from(`*${c.length}\r\n`));
      for (const a of c) {
        const b = typeof a === 'string' ? Buffer.from(a) : a;
        parts.push(Buffer.from(`$${b.length}\r\n`), b, CRLF);
      }
    }
    return new Promise((resolve, reject) => {
      this.waiting.push({ n: cmds.length, out: [], resolve, reject });
      this.sock.write(Buffer.concat(parts));
    });
  }

  close(): void {
    this.sock.destroy();
  }

  private fail(err: Error): void {
    for (const w of this.waiting.splice(0)) w.reject(err);
  }

  private onData(chunk: Buffer): void {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    let pos = 0;
    while (this.waiting.length > 0) {
      const w = this.waiting[0] as (typeof this.waiting)[number];
      const nl = this.buf.indexOf('\r\n', pos);
      if (nl < 0) break;
      const type = this.buf[pos];
      const line = this.buf.toString('latin1', pos + 1, nl);
      let next = nl + 2;
      let v: Buffer | string | number | null;
      if (type === 0x24 /* $ */) {
        const len = Number(line);
        if (len < 0) v = null;
        else {
          if (this.buf.length < next + len + 2) break;
          v = this.buf.subarray(next, next + len);
          next += len + 2;
        }
      } else if (type === 0x3a /* : */) v = Number(line);
      else if (type === 0x2b /* + */) v = line;
      else {
        this.waiting.shift();
        w.reject(new Error(`redis-server: ${line}`));
        pos = next;
        continue;
      }
      pos = next;
      w.out.push(v);
      if (w.out.length === w.n) {
        this.waiting.shift();
        w.resolve(w.out);
      }
    }
    this.buf = pos >= this.buf.length ? Buffer.alloc(0) : Buffer.from(this.buf.subarray(pos));
  }
}

const CRLF = Buffer.from('\r\n');

async function startRedis(): Promise<{ redis: Pipe; child: ChildProcess; dir: string }> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'bench-redis-'));
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: 'ignore' });
  return { redis: await Pipe.open(port), child, dir };
}

/** Fills redis with `n` keys of the trace's shape and returns used_memory then (its maxmemory for `n` keys). */
async function redisMemoryFor(redis: Pipe, n: number): Promise<number> {
  await redis.send([['FLUSHALL']]);
  for (let b = 0; b < n; b += BATCH) {
    const cmds: (string | Buffer)[][] = [];
    for (let i = b; i < Math.min(n, b + BATCH); i++) cmds.push(['SET', keyOf(i), VALUE]);
    await redis.send(cmds);
  }
  const [info] = await redis.send([['INFO', 'memory']]);
  const used = Number(/used_memory:(\d+)/.exec(String(info))?.[1]);
  await redis.send([['FLUSHALL']]);
  return used;
}

async function replayRedis(redis: Pipe, trace: Uint32Array, warmup: number, capacityKeys: number): Promise<Replay> {
  const maxmemory = await redisMemoryFor(redis, capacityKeys);
  await redis.send([
    ['CONFIG', 'SET', 'maxmemory', String(maxmemory)],
    ['CONFIG', 'SET', 'maxmemory-policy', 'allkeys-lfu'],
    ['CONFIG', 'SET', 'maxmemory-samples', String(SAMPLES)],
    ['CONFIG', 'SET', 'lfu-log-factor', String(LOG_FACTOR)],
    ['CONFIG', 'SET', 'lfu-decay-time', '1'],
    ['CONFIG', 'RESETSTAT'],
  ]);
  let hits = 0;
  let warmHits = 0;
  const curve = new Curve();
  for (let b = 0; b < trace.length; b += BATCH) {
    const end = Math.min(trace.length, b + BATCH);
    const gets: string[][] = [];
    for (let i = b; i < end; i++) gets.push(['GET', keyOf(trace[i] as number)]);
    const res = await redis.send(gets);
    const sets: (string | Buffer)[][] = [];
    res.forEach((v, j) => {
      curve.add(v !== null);
      if (v !== null) {
        hits++;
        if (b + j >= warmup) warmHits++;
      } else sets.push(['SET', (gets[j] as string[])[1] as string, VALUE]);
    });
    if (sets.length > 0) await redis.send(sets);
  }
  const [keys] = await redis.send([['DBSIZE']]);
  await redis.send([['CONFIG', 'SET', 'maxmemory', '0']]);
  return { hitRate: warmHits / (trace.length - warmup), overall: hits / trace.length, keys: Number(keys), windows: curve.windows };
}

async function main(): Promise<void> {
  const capacityKeys = Math.round(KEYS * CAPACITY);
  console.log(`cache-hitrate: Zipf(${SKEW}) over ${KEYS} keys, ${WARMUP} warm-up + ${REQUESTS} counted requests per run, capacity ${capacityKeys} keys, allkeys-lfu, maxmemory-samples ${SAMPLES}, lfu-log-factor ${LOG_FACTOR}, ${RUNS} runs`);
  console.log(`ideal (the ${capacityKeys} most popular keys always cached): ${(idealHitRate(KEYS, SKEW, capacityKeys) * 100).toFixed(2)} %`);
  const { redis, child, dir } = await startRedis();
  const beacon: number[] = [];
  const red: number[] = [];
  try {
    for (let run = 0; run < RUNS; run++) {
      const trace = zipfTrace(KEYS, SKEW, WARMUP + REQUESTS, 1000 + run);
      const t0 = performance.now();
      const b = await replayTier(trace, WARMUP, capacityKeys);
      const t1 = performance.now();
      const r = NO_REDIS ? { hitRate: NaN, overall: NaN, keys: 0, windows: [] } : await replayRedis(redis, trace, WARMUP, capacityKeys);
      const t2 = performance.now();
      beacon.push(b.hitRate);
      red.push(r.hitRate);
      console.log(
        `run ${run + 1}: beacon ${(b.hitRate * 100).toFixed(2)} % (whole trace ${(b.overall * 100).toFixed(2)} %, ${b.keys} keys held, ${((t1 - t0) / 1000).toFixed(1)} s)  ` +
          `redis-server ${(r.hitRate * 100).toFixed(2)} % (whole trace ${(r.overall * 100).toFixed(2)} %, ${r.keys} keys held, ${((t2 - t1) / 1000).toFixed(1)} s)`,
      );
      const pct = (w: number[]): string => w.map((x) => (x * 100).toFixed(2)).join(' ');
      console.log(`  per ${WINDOW} requests: beacon ${pct(b.windows)}`);
      if (!NO_REDIS) console.log(`  per ${WINDOW} requests: redis-server ${pct(r.windows)}`);
    }
  } finally {
    redis.close();
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
