/**
 * store-scale (issue 17 target 5): a store of 1,000,000 keys × 256 bytes and one with a long
 * revision log (10,000,000 revisions by default), on SQLite.
 *
 * - **Keys.** The key store is written through the store's own batch path, in process: a `Store`
 *   over the real `SqliteBackend`, txns of 128 puts, 64 in flight (so the group commit packs
 *   thousands of puts per transaction), not a million HTTP requests. Then the built
 *   `beacon serve` starts on that data dir: time to "listening" (warm and cold page cache), RSS
 *   once settled, and RSS after a few seconds of GET and PUT load. Targets: RSS < 1 GB, restart
 *   < 10 s.
 * - **Revisions.** The log store is written straight into SQLite after the real migrations (as
 *   bench/restart.ts does: revision r puts key (r−1) mod K, K = keys / 10), because 10,000,000
 *   one-revision writes through the store take far longer than the measurement. Then: time to
 *   "listening" (warm, cold), and the p99 of concurrent GETs and PUTs (own generator, 8
 *   connections each) in windows without a compaction and in windows while a compaction of the
 *   whole log (`POST /v1/compact` at the head) runs. Targets: restart < 30 s; p99 during the
 *   compaction ≤ 2× without.
 *
 * Never fails on a time.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { SqliteBackend } from '../src/backend/index.js';
import { Store, type TxnOp } from '../src/kv/index.js';
import { result, round, sleep, type BenchContext, type Benchmark } from './lib/bench.js';
import { runHttpLoad, type HttpLoadResult } from './lib/load.js';
import { spawnBeacon, type ListeningProcess } from './lib/proc.js';
import { mib, type BenchResult, type Figure } from './lib/report.js';
import { median } from './lib/stats.js';
import { dropFromCache, generateStore } from './restart.js';

const TXN_PUTS = 128;
const IN_FLIGHT = 64;
/** 1 GB as in the issue (decimal), in MiB for the table. */
const RSS_TARGET_MIB = 1e9 / 2 ** 20;
/** Value size of the long-log store (bench/restart.ts's generator). */
const LOG_VALUE_BYTES = 100;
const LOAD_CONNECTIONS = 8;
const WINDOW_MS = 3000;

/** Writes `keys` keys of `valueBytes` random printable bytes through `Store.txn`; resolves with keys/s. */
async function loadThroughStore(dir: string, keys: number, valueBytes: number): Promise<number> {
  const store = new Store({ backend: new SqliteBackend({ path: join(dir, 'beacon.db') }) });
  await store.open();
  const started = performance.now();
  try {
    // One pool of random bytes, each value a different window of it: incompressible, cheap to make.
    const pool = Buffer.from(randomBytes(Math.ceil(((keys + valueBytes) * 3) / 4) + 3).toString('base64'));
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < keys) {
        const from = next;
        const to = Math.min(keys, from + TXN_PUTS);
        next = to;
        const success: TxnOp[] = [];
        for (let i = from; i < to; i++) {
          success.push({ type: 'put', key: `scale/app-${String(i % 100).padStart(2, '0')}/key-${String(i).padStart(8, '0')}`, value: pool.subarray(i, i + valueBytes), lease: 0, prevKv: false });
        }
        await store.txn({ compare: [], success, failure: [] });
      }
    };
    await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
    return keys / ((performance.now() - started) / 1000);
  } finally {
    await store.close();
  }
}

async function start(dir: string): Promise<ListeningProcess> {
  return spawnBeacon(dir);
}

/** GET of one key and PUTs over 10,000 random keys, at once, for `ms`; both measured by the own generator. */
async function mixedLoad(url: string, getKey: string, ms: number): Promise<{ get: HttpLoadResult; put: HttpLoadResult }> {
  const common = { loader: 'own' as const, url, connections: LOAD_CONNECTIONS, threads: 1, warmupMs: 300, durationMs: ms };
  const [get, put] = await Promise.all([
    runHttpLoad({ ...common, mode: 'get', path: `/v1/kv/${getKey}` }),
    runHttpLoad({ ...common, mode: 'put', keyPrefix: 'scale/put/', keyOrder: 'random', keySpace: 10_000, valueBytes: 256 }),
  ]);
  return { get, put };
}

interface KeysRun {
  warmS: number;
  coldS: number;
  rssMiB: number;
  rssLoadedMiB: number;
  peakMiB: number;
  keys: number;
}

async function keysRun(ctx: BenchContext, dir: string): Promise<KeysRun> {
  let server: ListeningProcess | undefined;
  try {
    server = await start(dir);
    const warmS = server.startupMs / 1000;
    await sleep(2000);
    const rssMiB = mib(server.rssBytes());
    const status = (await (await fetch(`${server.url}/v1/status`)).json()) as { keys: number };
    await mixedLoad(server.url, 'scale/app-07/key-00000007', 3000);
    await sleep(1000);
    const rssLoadedMiB = mib(server.rssBytes());
    const peakMiB = mib(server.peakRssBytes());
    await server.stop();
    server = undefined;
    const dropped = dropFromCache(dir);
    if (!dropped) ctx.log('store-scale: could not drop the store from the page cache; the cold start is warm');
    server = await start(dir);
    const coldS = server.startupMs / 1000;
    return { warmS, coldS, rssMiB, rssLoadedMiB, peakMiB, keys: status.keys };
  } finally {
    await server?.stop();
  }
}

interface CompactionOut {
  warmS: number;
  coldS: number;
  base: { get: HttpLoadResult; put: HttpLoadResult }[];
  during: { get: HttpLoadResult; put: HttpLoadResult }[];
  compactS: number;
  line: string;
}

async function logRun(ctx: BenchContext, dir: string, revisions: number, compactTo: number, getKey: string): Promise<CompactionOut> {
  let server: ListeningProcess | undefined;
  try {
    dropFromCache(dir);
    server = await start(dir);
    const coldS = server.startupMs / 1000;
    await server.stop();
    server = await start(dir);
    const warmS = server.startupMs / 1000;
    const line = /beacon data: .*$/m.exec(server.stderr())?.[0] ?? '';
    const url = server.url;
    // Unmeasured: JIT and the page cache of the keys touched.
    await mixedLoad(url, getKey, 2000);
    const base: CompactionOut['base'] = [];
    for (let i = 0; i < 2; i++) base.push(await mixedLoad(url, getKey, WINDOW_MS));
    ctx.log(`store-scale: compacting ${compactTo.toLocaleString('en-US')} of ${revisions.toLocaleString('en-US')} revisions under load`);
    const t0 = performance.now();
    let compactS = Number.NaN;
    let compactErr: unknown;
    const compaction = fetch(`${url}/v1/compact`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ revision: compactTo }) }).then(
      async (res) => {
        const text = await res.text();
        if (!res.ok) throw new Error(`POST /v1/compact answered ${res.status}: ${text.slice(0, 300)}`);
        compactS = (performance.now() - t0) / 1000;
      },
      (err: unknown) => {
        compactErr = err;
      },
    );
    const during: CompactionOut['during'] = [];
    // Windows while the compaction runs (at least one); the window that outlives it still counts.
    do during.push(await mixedLoad(url, getKey, WINDOW_MS));
    while (Number.isNaN(compactS) && compactErr === undefined && during.length < 200);
    await compaction;
    if (compactErr !== undefined) throw compactErr;
    for (let i = 0; i < 2; i++) base.push(await mixedLoad(url, getKey, WINDOW_MS));
    return { warmS, coldS, base, during, compactS, line };
  } finally {
    await server?.stop();
  }
}

/** The store-scale benchmark (see the module comment). */
export const storeScale: Benchmark = {
  name: 'store-scale',
  title: 'a store of 1,000,000 keys and one of 10,000,000 revisions: RSS, restart, compaction under load',
  async run(ctx: BenchContext): Promise<BenchResult> {
    const { opts } = ctx;
    const figures: Figure[] = [];
    const notes: string[] = [];

    if (opts.scaleParts.includes('keys')) {
      // BENCH_SCALE_KEYS_DIR: a data dir to keep (written when it holds no store yet, reused as it
      // is otherwise), so that builds can be compared on the same store without writing it again.
      const keptDir = process.env.BENCH_SCALE_KEYS_DIR;
      const keysDir = keptDir ?? ctx.tempDir('scale-keys-');
      let keysPerS = Number.NaN;
      if (keptDir === undefined || !existsSync(join(keptDir, 'beacon.db'))) {
        ctx.log(`store-scale: writing ${opts.scaleKeys.toLocaleString('en-US')} keys × ${opts.scaleValueBytes} bytes through Store.txn`);
        keysPerS = await loadThroughStore(keysDir, opts.scaleKeys, opts.scaleValueBytes);
        ctx.log(`store-scale: ${Math.round(keysPerS)} keys/s`);
      } else {
        ctx.log(`store-scale: reusing the store in ${keptDir}`);
      }
      const kr: KeysRun[] = [];
      for (let i = 1; i <= opts.runs; i++) {
        const r = await keysRun(ctx, keysDir);
        kr.push(r);
        ctx.log(`store-scale keys run ${i}/${opts.runs}: warm ${round(r.warmS, 2)} s, cold ${round(r.coldS, 2)} s, RSS ${round(r.rssMiB)} MiB (${round(r.rssLoadedMiB)} after load, peak ${round(r.peakMiB)})`);
      }
      const k = opts.scaleKeys.toLocaleString('en-US');
      figures.push(
        { name: `${k} keys: restart to listening, warm`, unit: 's', values: kr.map((r) => r.warmS), target: { op: '<', value: 10 } },
        { name: `${k} keys: restart to listening, cold`, unit: 's', values: kr.map((r) => r.coldS), target: { op: '<', value: 10 } },
        { name: `${k} keys: RSS settled after restart`, unit: 'MiB', values: kr.map((r) => r.rssMiB), target: { op: '<', value: RSS_TARGET_MIB } },
        { name: `${k} keys: RSS after 3 s of GET+PUT`, unit: 'MiB', values: kr.map((r) => r.rssLoadedMiB), target: { op: '<', value: RSS_TARGET_MIB } },
        { name: `${k} keys: RSS peak (VmHWM)`, unit: 'MiB', values: kr.map((r) => r.peakMiB) },
      );
      notes.push(
        `keys: ${k} × ${opts.scaleValueBytes}-byte values (keys and values alone ${round(mib(opts.scaleKeys * (opts.scaleValueBytes + 26)), 1)} MiB), written in process through Store.txn (${TXN_PUTS} puts a txn, ${IN_FLIGHT} in flight) at ${Math.round(keysPerS).toLocaleString('en-US')} keys/s; the node reported ${kr.map((r) => r.keys).join(', ')} keys`,
        `1 GB = ${round(RSS_TARGET_MIB, 1)} MiB; RSS from /proc/<pid>/status, 2 s after listening and 1 s after a 3 s GET+PUT load`,
      );

    }
    if (!opts.scaleParts.includes('log')) return result(storeScale, { keys: opts.scaleKeys, valueBytes: opts.scaleValueBytes, runs: opts.runs }, figures, notes);
    const logDir = ctx.tempDir('scale-log-');
    const logKeys = Math.max(1, Math.floor(opts.scaleRevisions / 100));
    ctx.log(`store-scale: generating ${opts.scaleRevisions.toLocaleString('en-US')} revisions over ${logKeys.toLocaleString('en-US')} keys`);
    const genS = await generateStore(logDir, opts.scaleRevisions, logKeys);
    ctx.log(`store-scale: generated in ${round(genS, 1)} s`);
    const getKey = `restart/app-07/key-${String(7).padStart(7, '0')}`;
    const compactTo = Math.min(opts.scaleRevisions, opts.scaleCompactRevisions ?? opts.scaleRevisions);
    const lr = await logRun(ctx, logDir, opts.scaleRevisions, compactTo, getKey);
    const r = opts.scaleRevisions.toLocaleString('en-US');
    const p99 = (xs: { get: HttpLoadResult; put: HttpLoadResult }[], w: 'get' | 'put'): number[] => xs.map((x) => x[w].p99Ms);
    const baseGet = median(p99(lr.base, 'get'));
    const basePut = median(p99(lr.base, 'put'));
    figures.push(
      { name: `${r} revisions: restart to listening, warm`, unit: 's', values: [lr.warmS], target: { op: '<', value: 30 } },
      { name: `${r} revisions: restart to listening, cold`, unit: 's', values: [lr.coldS], target: { op: '<', value: 30 } },
      { name: `${r} revisions: compaction to revision ${compactTo.toLocaleString('en-US')} under load`, unit: 's', values: [lr.compactS] },
      { name: 'compaction rate under load', unit: 'rev/s', values: [compactTo / lr.compactS] },
      { name: 'GET ×8 p99 without compaction (windows)', unit: 'ms', values: p99(lr.base, 'get') },
      { name: 'GET ×8 p99 during compaction (windows)', unit: 'ms', values: p99(lr.during, 'get') },
      { name: 'PUT ×8 p99 without compaction (windows)', unit: 'ms', values: p99(lr.base, 'put') },
      { name: 'PUT ×8 p99 during compaction (windows)', unit: 'ms', values: p99(lr.during, 'put') },
      { name: 'GET p99 during / without compaction (per window)', unit: 'x', values: p99(lr.during, 'get').map((v) => v / baseGet), target: { op: '<=', value: 2 } },
      { name: 'PUT p99 during / without compaction (per window)', unit: 'x', values: p99(lr.during, 'put').map((v) => v / basePut), target: { op: '<=', value: 2 } },
      { name: 'GET /s without / during compaction', unit: '/s', values: [median(lr.base.map((x) => x.get.rps)), median(lr.during.map((x) => x.get.rps))] },
      { name: 'PUT /s without / during compaction', unit: '/s', values: [median(lr.base.map((x) => x.put.rps)), median(lr.during.map((x) => x.put.rps))] },
    );
    const errors = [...lr.base, ...lr.during].flatMap((x) => [x.get, x.put]).filter((x) => x.errors > 0);
    notes.push(
      `revisions: ${r} over ${logKeys.toLocaleString('en-US')} keys (${LOG_VALUE_BYTES}-byte values), generated straight into kv_log after the real migrations in ${round(genS, 1)} s; the node reported: ${lr.line}`,
      `compaction: POST /v1/compact at revision ${compactTo.toLocaleString('en-US')} (${compactTo === opts.scaleRevisions ? 'the whole log: ' : ''}every revision up to it but each key's latest goes), answered after ${round(lr.compactS, 1)} s; GET of one key and PUT over 10,000 random keys, ${LOAD_CONNECTIONS} connections each at once, in ${WINDOW_MS / 1000} s windows: ${lr.base.length} without (2 before, 2 after), ${lr.during.length} during; the ratio divides each window during by the median without`,
      errors.length === 0 ? 'no request failed' : `ERRORS: ${errors.map((e) => e.errorDetail).join('; ')}`,
    );
    return result(storeScale, { keys: opts.scaleKeys, valueBytes: opts.scaleValueBytes, revisions: opts.scaleRevisions, runs: opts.runs }, figures, notes);
  },
};
