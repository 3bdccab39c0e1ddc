/**
 * sdk-lock: the round trip of an uncontended lock acquire + release through the SDK
 * (`session.mutex(name).lock()` then `unlock()`: one txn and one delete, each a durable write),
 * next to the same through the raw HTTP lock API (`POST /v1/locks/{name}` + `DELETE`).
 * Target (issue 4): SDK p50 < 5 ms. Prints figures; never fails on a time.
 * Run: `npm run build && node dist/bench/sdk-lock.js [--iterations N]`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient } from '../client/index.js';
import { measureFsync } from './lib/machine.js';
import { spawnBeacon, type ListeningProcess } from './lib/proc.js';
import { latencySummary } from './lib/stats.js';

const i = process.argv.indexOf('--iterations');
const ITERATIONS = i >= 0 ? Number(process.argv[i + 1]) : 2000;

function line(label: string, samples: number[]): string {
  const s = latencySummary(samples);
  return `${label.padEnd(34)} p50 ${s.p50.toFixed(3)} ms   p99 ${s.p99.toFixed(3)} ms   max ${s.max.toFixed(3)} ms   (${s.count} round trips)`;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'beacon-bench-sdk-lock-'));
  let server: ListeningProcess | undefined;
  try {
    server = await spawnBeacon(dir);
    const fsync = measureFsync(dir);
    const client = createClient({ endpoint: server.url });
    const session = await client.session({ ttl: 60 });
    const mutex = session.mutex('bench/lock');
    const sdk: number[] = [];
    const raw: number[] = [];
    const url = `${server.url}/v1/locks/bench/raw`;
    const rawRoundTrip = async (): Promise<void> => {
      const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ lease: session.lease }) });
      const lock = (await res.json()) as { key: string; fencingToken: number };
      const del = await fetch(`${server?.url}/v1/locks/${lock.key}?fencingToken=${lock.fencingToken}`, { method: 'DELETE' });
      await del.arrayBuffer();
    };
    for (let w = 0; w < 200; w++) {
      await mutex.lock();
      await mutex.unlock();
      await rawRoundTrip();
    }
    for (let n = 0; n < ITERATIONS; n++) {
      let t = performance.now();
      const l = await mutex.lock();
      await mutex.unlock();
      sdk.push(performance.now() - t);
      if (l.fencingToken <= 0) throw new Error('no fencing token');
      t = performance.now();
      await rawRoundTrip();
      raw.push(performance.now() - t);
    }
    console.log(`sdk-lock: uncontended acquire + release against ${server.url}; fsync on this disk p50 ${fsync.p50.toFixed(3)} ms`);
    console.log(line('SDK mutex.lock() + unlock()', sdk));
    console.log(line('HTTP POST /v1/locks + DELETE', raw));
    console.log(`target: SDK p50 < 5 ms → ${latencySummary(sdk).p50 < 5 ? 'met' : 'not met'} on this machine`);
    await session.close();
    client.close();
  } finally {
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
