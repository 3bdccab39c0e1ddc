/**
 * cache-memory: memory per key of the cache tier against redis-server for the same data
 * (issue 11: "1,000,000 keys of 100 bytes in a memory namespace: RSS ≤ 3× redis-server's").
 * The tier is filled in a child Node process (`--expose-gc`, so the figures are after a full
 * collection); redis-server (Debian, started here on a free port) is filled with ioredis
 * pipelines. Both report the RSS growth per key; the tier also its counted `used_memory`,
 * redis-server its `used_memory`. Medians of the runs; never fails on a figure.
 *
 * Run: `node dist/bench/cache-memory.js [--runs 3] [--keys 1000000] [--value-bytes 100]`
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { CacheTier } from '../src/cache/index.js';
import { median } from './lib/stats.js';
import { freePort } from './lib/proc.js';

const arg = (name: string, def: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : def;
};
const RUNS = arg('runs', 3);
const KEYS = arg('keys', 1_000_000);
const VALUE_BYTES = arg('value-bytes', 100);
const keyOf = (id: number): string => `key:${String(id).padStart(7, '0')}`;

function rssOf(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1] ?? 0) * 1024;
}

/** The child: fills a CacheTier and prints its growth as JSON. */
function child(): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) throw new Error('run the child with --expose-gc');
  gc();
  const before = process.memoryUsage();
  const tier = new CacheTier({ namespaces: () => ({ prefix: '' }) });
  const value = Buffer.alloc(VALUE_BYTES, 'v');
  for (let i = 0; i < KEYS; i++) {
    // A separate buffer per value, as a value arriving from the network is.
    const v = Buffer.allocUnsafe(VALUE_BYTES);
    value.copy(v);
    tier.set(keyOf(i), { type: 'string', value: v });
  }
  gc();
  const after = process.memoryUsage();
  process.stdout.write(
    JSON.stringify({ rss: after.rss - before.rss, heap: after.heapUsed - before.heapUsed, external: after.external - before.external, used: tier.usedMemory(), keys: tier.dbsize() }),
  );
}


async function redisRun(): Promise<{ rss: number; used: number }> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'bench-redis-'));
  const proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: 'ignore' });
  const redis = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: null });
  redis.on('error', () => undefined);
  try {
    for (let i = 0; i < 100; i++) {
      try {
        await redis.connect();
        break;
      } catch {
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    const usedOf = async (): Promise<number> => Number(/used_memory:(\d+)/.exec(await redis.info('memory'))?.[1]);
    const rss0 = rssOf(proc.pid as number);
    const used0 = await usedOf();
    const value = Buffer.alloc(VALUE_BYTES, 'v');
    for (let b = 0; b < KEYS; b += 1000) {
      const p = redis.pipeline();
      for (let i = b; i < Math.min(KEYS, b + 1000); i++) p.set(keyOf(i), value);
      await p.exec();
    }
    return { rss: rssOf(proc.pid as number) - rss0, used: (await usedOf()) - used0 };
  } finally {
    redis.disconnect();
    proc.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  console.log(`cache-memory: ${KEYS} keys of ${VALUE_BYTES}-byte values, ${RUNS} runs`);
  const beacon: { rss: number; used: number; heap: number; external: number }[] = [];
  const red: { rss: number; used: number }[] = [];
  for (let run = 0; run < RUNS; run++) {
    const out = spawnSync(process.execPath, ['--expose-gc', fileURLToPath(import.meta.url), '--child', '--keys', String(KEYS), '--value-bytes', String(VALUE_BYTES)], {
      encoding: 'utf8',
      maxBuffer: 1 << 20,
    });
    if (out.status !== 0) throw new Error(`the child failed: ${out.stderr}`);
    const b = JSON.parse(out.stdout) as { rss: number; used: number; heap: number; external: number };
    const r = await redisRun();
    beacon.push(b);
    red.push(r);
    console.log(
      `run ${run + 1}: beacon RSS +${(b.rss / KEYS).toFixed(0)} B/key (heap +${(b.heap / KEYS).toFixed(0)}, buffers +${(b.external / KEYS).toFixed(0)}, counted used_memory ${(b.used / KEYS).toFixed(0)})  ` +
        `redis-server RSS +${(r.rss / KEYS).toFixed(0)} B/key (used_memory +${(r.used / KEYS).toFixed(0)})`,
    );
  }
  const mb = median(beacon.map((b) => b.rss)) / KEYS;
  const mr = median(red.map((r) => r.rss)) / KEYS;
  console.log(`median RSS per key: beacon ${mb.toFixed(0)} B, redis-server ${mr.toFixed(0)} B, ratio ${(mb / mr).toFixed(2)}×`);
  console.log(`median counted used_memory per key: beacon ${(median(beacon.map((b) => b.used)) / KEYS).toFixed(0)} B, redis-server ${(median(red.map((r) => r.used)) / KEYS).toFixed(0)} B`);
  console.log(`target (issue 11): RSS ≤ 3× redis-server's → ${mb <= 3 * mr ? 'met' : 'MISSED'}`);
}

if (process.argv.includes('--child')) child();
else await main();
