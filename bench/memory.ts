/**
 * memory: loads 100,000 keys × 1 KiB into a fresh node over HTTP (txns of 128 puts, 8 in flight,
 * from this process; the server is its own process) and reads the server's VmRSS from
 * /proc/<pid>/status; then restarts the node on the same data and reads it again (the view
 * rebuilt from SQLite). Target: RSS < 400 MB.
 */
import { randomBytes } from 'node:crypto';
import { result, round, sleep, type BenchContext, type Benchmark } from './lib/bench.js';
import { spawnBeacon, type ListeningProcess } from './lib/proc.js';
import { mib, type BenchResult } from './lib/report.js';
import { median } from './lib/stats.js';

/** Puts per txn: the store's MAX_TXN_OPS. */
const BATCH = 128;
const IN_FLIGHT = 8;
/** 400 MB as in the issue (decimal megabytes), in MiB for the table. */
const TARGET_MIB = 400e6 / 2 ** 20;

/** Loads `keys` keys of `valueBytes` random printable bytes each; resolves with the keys/s achieved. */
export async function loadKeys(url: string, keys: number, valueBytes: number, prefix = 'bench/mem/'): Promise<number> {
  let next = 0;
  const started = performance.now();
  const worker = async (): Promise<void> => {
    while (next < keys) {
      const from = next;
      const to = Math.min(keys, from + BATCH);
      next = to;
      const success = [];
      for (let i = from; i < to; i++) {
        // base64 of random bytes: printable, so the value travels as UTF-8 text, and incompressible.
        const value = randomBytes(Math.ceil((valueBytes * 3) / 4)).toString('base64').slice(0, valueBytes);
        success.push({ put: { key: `${prefix}${String(i).padStart(8, '0')}`, value } });
      }
      const res = await fetch(`${url}/v1/txn`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ success }) });
      if (!res.ok) throw new Error(`POST /v1/txn answered ${res.status}: ${await res.text()}`);
      await res.arrayBuffer();
    }
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
  return keys / ((performance.now() - started) / 1000);
}

interface RunFigures {
  emptyMiB: number;
  loadedMiB: number;
  peakMiB: number;
  restartedMiB: number;
  keysPerS: number;
  keys: number;
}

async function oneRun(ctx: BenchContext, run: number): Promise<RunFigures> {
  const { opts } = ctx;
  const dir = ctx.tempDir(`memory-${run}-`);
  let server: ListeningProcess | undefined;
  try {
    server = await spawnBeacon(dir);
    await sleep(500);
    const emptyMiB = mib(server.rssBytes());
    const keysPerS = await loadKeys(server.url, opts.memoryKeys, opts.memoryValueBytes);
    // Let allocation settle (V8 frees young-generation garbage lazily); RSS is what the OS sees.
    await sleep(2000);
    const status = (await (await fetch(`${server.url}/v1/status`)).json()) as { keys: number };
    const loadedMiB = mib(server.rssBytes());
    const peakMiB = mib(server.peakRssBytes());
    await server.stop();
    server = await spawnBeacon(dir);
    await sleep(2000);
    const restartedMiB = mib(server.rssBytes());
    return { emptyMiB, loadedMiB, peakMiB, restartedMiB, keysPerS, keys: status.keys };
  } finally {
    await server?.stop();
  }
}

/** The memory benchmark (see the module comment). */
export const memory: Benchmark = {
  name: 'memory',
  title: 'server RSS with many keys loaded',
  async run(ctx: BenchContext): Promise<BenchResult> {
    const { opts } = ctx;
    const runs: RunFigures[] = [];
    for (let i = 1; i <= opts.runs; i++) {
      const r = await oneRun(ctx, i);
      runs.push(r);
      ctx.log(`memory run ${i}/${opts.runs}: empty ${round(r.emptyMiB, 1)} MiB, loaded ${round(r.loadedMiB, 1)} MiB (peak ${round(r.peakMiB, 1)}), after restart ${round(r.restartedMiB, 1)} MiB`);
    }
    const rawMiB = mib(opts.memoryKeys * (opts.memoryValueBytes + 'bench/mem/00000000'.length));
    const notes = [
      `keys and values alone are ${round(rawMiB, 1)} MiB; every run had ${runs.map((r) => r.keys).join(', ')} keys after loading`,
      `loading over HTTP: ${Math.round(median(runs.map((r) => r.keysPerS)))} keys/s (txns of ${BATCH} puts, ${IN_FLIGHT} in flight)`,
      `target 400 MB = ${round(TARGET_MIB, 1)} MiB; RSS read from /proc/<pid>/status VmRSS 2 s after the load (peak = VmHWM)`,
    ];
    return result(
      memory,
      { keys: opts.memoryKeys, valueBytes: opts.memoryValueBytes },
      [
        { name: 'RSS empty', unit: 'MiB', values: runs.map((r) => r.emptyMiB) },
        { name: 'RSS loaded', unit: 'MiB', values: runs.map((r) => r.loadedMiB), target: { op: '<', value: TARGET_MIB } },
        { name: 'RSS peak while loading', unit: 'MiB', values: runs.map((r) => r.peakMiB) },
        { name: 'RSS after restart', unit: 'MiB', values: runs.map((r) => r.restartedMiB), target: { op: '<', value: TARGET_MIB } },
      ],
      notes,
    );
  },
};
