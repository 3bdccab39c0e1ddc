/**
 * cache-cluster: the cache tier across nodes (docs/operations/cache-cluster.md), measured with
 * `redis-benchmark -t set,get -n N -c 50 -r 100000` at -P 1 and -P 16, the whole keyspace a
 * memory namespace, every `beacon serve --dev` on one temporary PostgreSQL (127.0.0.1):
 *
 * - A: one node on PostgreSQL (a cluster of one), plain redis-benchmark;
 * - B: three nodes, `redis-benchmark --cluster` against one of them (it reads CLUSTER NODES and
 *   sends each key to the node that serves its slot: every command direct);
 * - C: the same three nodes, plain redis-benchmark against one node (about 2/3 of the commands
 *   are forwarded by that node to their owner).
 *
 * Per run, fresh databases and nodes; each pipeline depth runs A, B and C back to back, the order
 * reversed every other run (A B C, C B A, …), after an unmeasured warm-up of N/10 requests each.
 * Prints requests/s (median, min–max over runs) per test and pipeline, p99 at -P 1, the CPU per
 * request of the Beacon nodes, of redis-benchmark and of everything else on the (shared) machine,
 * how busy its cores were, the ratios B/A and C/B per run, and what the nodes counted meanwhile
 * (INFO: commands, error replies by code, forwarded commands, forward errors, MOVED replies, and
 * each node's share of the commands, which shows that B's commands went straight to their owners).
 *
 * Then the failover time: with three nodes (preloaded with keys), SIGKILL one node and, from a
 * plain client on a survivor, SET a key of a slot the killed node served every 20 ms until it
 * answers OK; the time from the kill to that OK, `--kills K` times (a node is started again after
 * each kill, back to three). Kills alternate between a node that is not the expiry leader (the
 * leader commits the ring) and the leader itself (a leader hand-over comes first).
 *
 * Targets (issue "The cache tier across nodes"): B total requests/s ≥ A (the 2 cores are shared by
 * every process, so no speed-up is expected, only no loss); C ≥ 50 % of B (a non-cluster client
 * through a forwarding node); failover: median and max reported, ideally ≤ 5 s.
 * Prints figures; never fails on a time.
 *
 * PostgreSQL: `BENCH_POSTGRES_URL` (or `BEACON_TEST_POSTGRES_URL`) names a server on which fresh
 * databases are created; otherwise a temporary local server is started (test/helpers/postgres.ts).
 *
 * Run: `npm run build && node dist/bench/cache-cluster.js [--runs 3] [--n 200000] [--kills 3]`
 * (`--kills 0` skips the failover part).
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { keySlot } from '../src/cache/index.js';
import { startPostgres, type PostgresServer } from '../test/helpers/postgres.js';
import { formatMachine, machineInfo } from './lib/machine.js';
import { killLiveChildren, ROOT, spawnBeacon, type ListeningProcess } from './lib/proc.js';
import { cpuSeconds } from './lib/server-stats.js';
import { median, summarize } from './lib/stats.js';
import { withTimeout } from '../test/helpers/time.js';

const exec = promisify(execFile);

const arg = (name: string, def: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  const v = i >= 0 ? Number(process.argv[i + 1]) : def;
  return Number.isFinite(v) && v >= 0 ? v : def;
};
const RUNS = Math.max(1, arg('runs', 3));
const N = Math.max(1000, arg('n', 200_000));
const KILLS = arg('kills', 3);
const CLIENTS = 50;
const KEYSPACE = 100_000;
const PIPELINES = [1, 16] as const;
const TESTS = ['set', 'get'] as const;
const CONFIGS = ['A', 'B', 'C'] as const;
type Config = (typeof CONFIGS)[number];
const CONFIG_NAME: Record<Config, string> = {
  A: 'A one node, plain client',
  B: 'B three nodes, --cluster',
  C: 'C three nodes, plain (forwarded)',
};
/** How long a failover may take before the attempt is given up (ms). */
const FAILOVER_GIVE_UP_MS = 30_000;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const log = (s: string): void => console.error(`[cache-cluster] ${s}`);

// ------------------------------------------------------------------------------------------------
// Nodes

/** A `beacon serve` of the benchmark: its process, RESP port and a control connection (INFO, CLUSTER). */
interface Member {
  proc: ListeningProcess;
  port: number;
  ctl: Redis;
  cleanup: () => void;
}

async function respPortOf(p: ListeningProcess): Promise<number> {
  for (let i = 0; i < 200; i++) {
    const m = /RESP listening on redis:\/\/[^\s]+:(\d+)/.exec(p.stderr());
    if (m !== null) return Number(m[1]);
    await sleep(50);
  }
  throw new Error(`no RESP listening line from the node at ${p.url}:\n${p.stderr().slice(-2000)}`);
}

/** Starts `beacon serve --dev --backend <url> --resp-port 0` on 127.0.0.1 with a fresh data dir. */
async function startMember(url: string): Promise<Member> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-cache-cluster-'));
  const cleanup = (): void => rmSync(dir, { recursive: true, force: true });
  let proc: ListeningProcess | undefined;
  try {
    proc = await spawnBeacon(dir, ['--backend', url, '--resp-port', '0']);
    const port = await respPortOf(proc);
    const ctl = new Redis({ host: '127.0.0.1', port, maxRetriesPerRequest: 1, connectTimeout: 2000, enableOfflineQueue: true });
    ctl.on('error', () => undefined); // a killed node: ioredis reconnects; no unhandled 'error' event
    return { proc, port, ctl, cleanup };
  } catch (err) {
    await proc?.stop().catch(() => undefined);
    cleanup();
    throw err;
  }
}

/** Stops a member by its pid (SIGTERM, then SIGKILL) and removes its data dir. */
async function stopMember(m: Member): Promise<void> {
  m.ctl.disconnect();
  await m.proc.stop().catch(() => undefined);
  m.cleanup();
}

async function startCluster(url: string, n: number): Promise<Member[]> {
  const out: Member[] = [];
  try {
    // One after the other: the first one migrates the database.
    for (let i = 0; i < n; i++) out.push(await startMember(url));
    const res = await fetch(`${(out[0] as Member).proc.url}/v1/namespaces/`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: '{"storage":"memory"}' });
    if (res.status !== 201 && res.status !== 200) throw new Error(`PUT /v1/namespaces/ answered ${res.status}: ${await res.text()}`);
    // The policy reaches the other nodes through the change feed.
    await until('every node has the whole keyspace a memory namespace', 20_000, async () => {
      const all = await Promise.all(out.map((m) => fetch(`${m.proc.url}/v1/namespaces/`).then((r) => (r.ok ? r.json() : {}) as Promise<{ storage?: string }>)));
      return all.every((p) => p.storage === 'memory');
    });
    await converged(out, 30_000);
    return out;
  } catch (err) {
    await Promise.all(out.map(stopMember));
    throw err;
  }
}

async function until(what: string, ms: number, check: () => Promise<boolean>): Promise<void> {
  const deadline = performance.now() + ms;
  let last = '';
  for (;;) {
    try {
      if (await check()) return;
    } catch (err) {
      last = String(err);
    }
    if (performance.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for: ${what}${last === '' ? '' : ` (last: ${last})`}`);
    await sleep(50);
  }
}


/** Whether every member's CLUSTER INFO says `cluster_state:ok`, `cluster_known_nodes:<members>` and the same epoch. */
async function clusterOk(members: Member[]): Promise<boolean> {
  const infos = await Promise.all(members.map((m) => withTimeout(m.ctl.call('CLUSTER', 'INFO') as Promise<string>, 1000)));
  const epochs = new Set(infos.map((i) => /^cluster_current_epoch:(\d+)/m.exec(i)?.[1]));
  return epochs.size === 1 && infos.every((i) => /^cluster_state:ok\r?$/m.test(i) && new RegExp(`^cluster_known_nodes:${members.length}\\r?$`, 'm').test(i));
}

/** Waits until {@link clusterOk}; resolves with the ms it took. */
async function converged(members: Member[], ms: number): Promise<number> {
  const t0 = performance.now();
  await until(`CLUSTER INFO cluster_state:ok and cluster_known_nodes:${members.length} on every node`, ms, () => clusterOk(members));
  return performance.now() - t0;
}

// ------------------------------------------------------------------------------------------------
// redis-benchmark and the nodes' counters

/** requests/s and p99 (ms) per test of one redis-benchmark run. */
type Figures = Record<string, { rps: number; p99: number }>;

/**
 * Runs redis-benchmark with --csv against `port` (with `--cluster`: against the cluster it finds
 * there) and parses "test","rps","avg","min","p50","p95","p99","max". A failed run (redis-benchmark
 * exits on an error reply that is not MOVED/ASK/CLUSTERDOWN) yields what it printed and `error`.
 * It runs under bash so that `times` gives its CPU seconds (user + system).
 */
async function redisBenchmark(
  port: number,
  opts: { n: number; pipeline: number; cluster: boolean; tests?: readonly string[] },
): Promise<{ figures: Figures; error?: string; stderr: string; cpuS: number }> {
  const args = ['-h', '127.0.0.1', '-p', String(port), ...(opts.cluster ? ['--cluster'] : []), '-t', (opts.tests ?? TESTS).join(','), '-n', String(opts.n), '-c', String(CLIENTS), '-P', String(opts.pipeline), '-r', String(KEYSPACE), '--csv'];
  let stdout = '';
  let stderr = '';
  let error: string | undefined;
  try {
    ({ stdout, stderr } = await exec('bash', ['-c', 'redis-benchmark "$@"; rc=$?; times >&2; exit $rc', 'redis-benchmark', ...args], { timeout: 900_000, maxBuffer: 16 * 1024 * 1024 }));
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; code?: number | string; message: string };
    stdout = e.stdout ?? '';
    stderr = e.stderr ?? '';
    error = `redis-benchmark ${args.join(' ')} failed (${e.code ?? e.message})`;
  }
  // `times`: the shell's user and system time, then its children's.
  const lines = stderr.split('\n').filter((l) => l.trim() !== '');
  const times = /^(\d+)m([\d.]+)s (\d+)m([\d.]+)s$/.exec(lines[lines.length - 1] ?? '');
  const cpuS = times === null ? Number.NaN : Number(times[1]) * 60 + Number(times[2]) + Number(times[3]) * 60 + Number(times[4]);
  const own = lines.filter((l) => !/^\d+m[\d.]+s \d+m[\d.]+s$/.test(l));
  if (error !== undefined) error += `: ${own.slice(-3).join(' | ')}`;
  const figures: Figures = {};
  for (const line of stdout.split('\n')) {
    const cells = line.split(',').map((c) => c.replace(/"/g, ''));
    if (cells.length < 7 || cells[0] === 'test') continue;
    const name = (cells[0] as string).toLowerCase().split(' ')[0] as string;
    figures[name] = { rps: Number(cells[1]), p99: Number(cells[6]) };
  }
  return { figures, stderr: own.join('\n'), cpuS, ...(error !== undefined ? { error } : {}) };
}

/** The machine's busy and total CPU time so far, in seconds summed over cores (/proc/stat; steal counts as busy). */
function machineCpu(): { busyS: number; totalS: number } {
  try {
    const f = (readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '').trim().split(/\s+/).slice(1).map(Number);
    const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = f;
    const busy = user + nice + system + irq + softirq + steal;
    return { busyS: busy / 100, totalS: (busy + idle + iowait) / 100 };
  } catch {
    return { busyS: Number.NaN, totalS: Number.NaN };
  }
}

/** What the nodes counted (INFO everything) and the CPU seconds they used. */
interface Counters {
  /** Commands run: the sum of INFO commandstats `calls` (forwarded ones count on both nodes). */
  commands: number;
  /** INFO `total_commands_processed`: it also counts a command again when it is run again after waiting for the replies before it. */
  processed: number;
  errors: number;
  forwarded: number;
  forwardErrors: number;
  moved: number;
  /** Error replies by code word (errorstat_…). */
  byCode: Map<string, number>;
  cpuS: number;
  /** Commands processed per node, in member order. */
  perNode: number[];
}

function infoNumber(info: string, name: string): number {
  const m = new RegExp(`^${name}:(\\d+)`, 'm').exec(info);
  return m === null ? 0 : Number(m[1]);
}

async function counters(members: Member[]): Promise<Counters> {
  const infos = await Promise.all(members.map((m) => withTimeout(m.ctl.call('INFO', 'everything') as Promise<string>, 5000)));
  const byCode = new Map<string, number>();
  for (const info of infos) {
    for (const m of info.matchAll(/^errorstat_([^:]+):count=(\d+)/gm)) byCode.set(m[1] as string, (byCode.get(m[1] as string) ?? 0) + Number(m[2]));
  }
  const sum = (name: string): number => infos.reduce((a, i) => a + infoNumber(i, name), 0);
  const calls = (info: string): number => [...info.matchAll(/^cmdstat_[^:]+:calls=(\d+)/gm)].reduce((a, m) => a + Number(m[1]), 0);
  return {
    commands: infos.reduce((a, i) => a + calls(i), 0),
    processed: sum('total_commands_processed'),
    errors: sum('total_error_replies'),
    forwarded: sum('cluster_forwarded_commands'),
    forwardErrors: sum('cluster_forward_errors'),
    moved: sum('cluster_moved_replies'),
    byCode,
    cpuS: members.reduce((a, m) => a + cpuSeconds(m.proc.pid), 0),
    perNode: infos.map(calls),
  };
}

function delta(after: Counters, before: Counters): Counters {
  const byCode = new Map<string, number>();
  for (const [k, v] of after.byCode) if (v - (before.byCode.get(k) ?? 0) > 0) byCode.set(k, v - (before.byCode.get(k) ?? 0));
  return {
    commands: after.commands - before.commands,
    processed: after.processed - before.processed,
    errors: after.errors - before.errors,
    forwarded: after.forwarded - before.forwarded,
    forwardErrors: after.forwardErrors - before.forwardErrors,
    moved: after.moved - before.moved,
    byCode,
    cpuS: after.cpuS - before.cpuS,
    perNode: after.perNode.map((v, i) => v - (before.perNode[i] ?? 0)),
  };
}

function addInto(total: Counters, d: Counters): void {
  total.commands += d.commands;
  total.processed += d.processed;
  total.errors += d.errors;
  total.forwarded += d.forwarded;
  total.forwardErrors += d.forwardErrors;
  total.moved += d.moved;
  total.cpuS += d.cpuS;
  for (const [k, v] of d.byCode) total.byCode.set(k, (total.byCode.get(k) ?? 0) + v);
}

const emptyCounters = (): Counters => ({ commands: 0, processed: 0, errors: 0, forwarded: 0, forwardErrors: 0, moved: 0, byCode: new Map(), cpuS: 0, perNode: [] });

// ------------------------------------------------------------------------------------------------
// The throughput runs

/** One configuration at one pipeline depth, one entry per run. */
interface Cell {
  figures: Figures[];
  /** CPU µs per request of the Beacon nodes, of redis-benchmark, and of everything else on the machine. */
  nodeUs: number[];
  clientUs: number[];
  otherUs: number[];
  /** How busy the machine's cores were (0–100 %). */
  busyPct: number[];
}

/** Per configuration, per pipeline depth: the runs' figures. */
type Results = Record<Config, Record<number, Cell>>;

interface Setup {
  single: Member[];
  three: Member[];
  /** The node of the three that B and C connect to this run. */
  entry: Member;
}

function target(s: Setup, c: Config): { members: Member[]; port: number; cluster: boolean } {
  if (c === 'A') return { members: s.single, port: (s.single[0] as Member).port, cluster: false };
  return { members: s.three, port: s.entry.port, cluster: c === 'B' };
}

async function measureRun(pg: PostgresServer, run: number, results: Results, totals: Record<Config, Counters>, failures: string[], shares: string[]): Promise<void> {
  const single = await startCluster(await pg.createDatabase(), 1);
  let three: Member[] = [];
  try {
    three = await startCluster(await pg.createDatabase(), 3);
    const entry = three[run % 3] as Member;
    const s: Setup = { single, three, entry };
    const order: Config[] = run % 2 === 0 ? ['A', 'B', 'C'] : ['C', 'B', 'A'];
    log(`run ${run + 1}/${RUNS}: nodes up (A on RESP ${single[0]?.port}; B/C nodes ${three.map((m) => m.port).join(', ')}, entry ${entry.port}); order ${order.join(' ')}`);
    for (const c of order) {
      const t = target(s, c);
      const w = await redisBenchmark(t.port, { n: Math.max(1000, Math.round(N / 10)), pipeline: 16, cluster: t.cluster });
      if (w.error !== undefined) failures.push(`run ${run + 1} ${c} warm-up: ${w.error}`);
    }
    for (const p of PIPELINES) {
      for (const c of order) {
        const t = target(s, c);
        const before = await counters(t.members);
        const m0 = machineCpu();
        const r = await redisBenchmark(t.port, { n: N, pipeline: p, cluster: t.cluster });
        const m1 = machineCpu();
        const d = delta(await counters(t.members), before);
        addInto(totals[c], d);
        if (r.error !== undefined) failures.push(`run ${run + 1} ${c} -P ${p}: ${r.error}`);
        const chatter = r.stderr.split('\n').filter((l) => /error/i.test(l));
        if (chatter.length > 0) failures.push(`run ${run + 1} ${c} -P ${p}: redis-benchmark printed ${chatter.length} error lines, e.g. ${chatter[0]}`);
        const slot = results[c][p] as Cell;
        slot.figures.push(r.figures);
        const requests = TESTS.length * N;
        slot.nodeUs.push((d.cpuS * 1e6) / requests);
        slot.clientUs.push((r.cpuS * 1e6) / requests);
        slot.otherUs.push(((m1.busyS - m0.busyS - d.cpuS - r.cpuS) * 1e6) / requests);
        slot.busyPct.push((100 * (m1.busyS - m0.busyS)) / (m1.totalS - m0.totalS));
        if (c !== 'A') {
          const share = d.perNode.map((x) => `${Math.round((100 * x) / Math.max(1, d.commands))} %`).join('/');
          shares.push(`run ${run + 1} ${c} -P ${p}: commands per node ${share}, forwarded ${d.forwarded} (${((100 * d.forwarded) / requests).toFixed(1)} % of ${requests}), MOVED ${d.moved}, error replies ${d.errors}`);
        }
        const f = TESTS.map((x) => `${x.toUpperCase()} ${Math.round(r.figures[x]?.rps ?? Number.NaN)}/s p99 ${r.figures[x]?.p99 ?? Number.NaN} ms`).join(', ');
        log(
          `run ${run + 1}/${RUNS} -P ${p} ${CONFIG_NAME[c]}: ${f}; CPU µs/request nodes ${fmt(slot.nodeUs.at(-1) as number, 1)}, redis-benchmark ${fmt(slot.clientUs.at(-1) as number, 1)}, ` +
            `others ${fmt(slot.otherUs.at(-1) as number, 1)}; machine ${fmt(slot.busyPct.at(-1) as number)} % busy; errors ${d.errors}, forwarded ${d.forwarded}, MOVED ${d.moved}`,
        );
      }
    }
  } finally {
    await Promise.all([...single, ...three].map(stopMember));
  }
}

// ------------------------------------------------------------------------------------------------
// Failover

/** A plain RESP client over one socket, one command at a time, reading one-line replies (+OK, -ERR …). */
class LineClient {
  private buf = '';
  private waiter: ((line: string) => void) | undefined;
  private closed = false;

  private constructor(private readonly socket: Socket) {
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => {
      this.buf += d;
      this.drain();
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      this.closed = true;
      this.waiter?.('-CONNCLOSED the server closed the connection');
      this.waiter = undefined;
    });
  }

  static async open(port: number): Promise<LineClient> {
    const s = connect({ host: '127.0.0.1', port });
    await new Promise<void>((resolve, reject) => {
      s.once('connect', resolve);
      s.once('error', reject);
    });
    return new LineClient(s);
  }

  private drain(): void {
    const i = this.buf.indexOf('\r\n');
    if (i < 0 || this.waiter === undefined) return;
    const line = this.buf.slice(0, i);
    this.buf = this.buf.slice(i + 2);
    const w = this.waiter;
    this.waiter = undefined;
    w(line);
  }

  /** Sends one command and resolves with the first line of its reply (`-TIMEOUT` after `ms`). */
  command(args: string[], ms: number): Promise<string> {
    if (this.closed) return Promise.resolve('-CONNCLOSED the connection is closed');
    const frame = `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`;
    return new Promise<string>((resolve) => {
      const t = setTimeout(() => {
        this.waiter = undefined;
        this.socket.destroy();
        resolve(`-TIMEOUT no reply in ${ms} ms`);
      }, ms);
      this.waiter = (line) => {
        clearTimeout(t);
        resolve(line);
      };
      this.socket.write(frame);
      this.drain();
    });
  }

  close(): void {
    this.socket.destroy();
  }
}

interface Kill {
  leader: boolean;
  /** Kill → first OK of a SET, from a plain client on a survivor, to a key of a slot the killed node served. */
  firstOkMs: number;
  /** Kill → CLUSTER INFO on both survivors says ok, two known nodes, one epoch. */
  ringMs: number;
  attempts: number;
  /** Replies before the OK, by their first word. */
  replies: Map<string, number>;
  /** The slowest single SET attempt (ms): does a client block while the owner is dead? */
  slowestAttemptMs: number;
  /** Start of the replacement node → three nodes converged again. */
  rejoinMs: number;
}

/** The HTTP URL of the expiry leader (it commits the ring), from GET /v1/cluster on `base`. */
async function leaderUrl(base: string): Promise<string | undefined> {
  const res = await fetch(`${base}/v1/cluster`);
  const body = (await res.json()) as { nodes?: { url: string; expiryLeader: boolean }[] };
  return body.nodes?.find((n) => n.expiryLeader)?.url;
}

/** Per slot the RESP port that serves it, from CLUSTER SLOTS. */
async function slotPorts(m: Member): Promise<Int32Array> {
  const raw = (await m.ctl.call('CLUSTER', 'SLOTS')) as [number, number, [string, number, string]][];
  const map = new Int32Array(16_384).fill(-1);
  for (const [start, end, [, port]] of raw) map.fill(port, start, end + 1);
  return map;
}

async function failover(url: string, kills: number): Promise<{ kills: Kill[]; problems: string[] }> {
  const out: Kill[] = [];
  const problems: string[] = [];
  const members = await startCluster(url, 3);
  try {
    // Keys on every node, so that the survivors have something to keep and the killed node something to lose.
    const pre = await redisBenchmark(members[0]?.port as number, { n: 100_000, pipeline: 16, cluster: true, tests: ['set'] });
    if (pre.error !== undefined) problems.push(`preload: ${pre.error}`);
    for (let k = 0; k < kills; k++) {
      const lead = await leaderUrl(members[0]?.proc.url as string);
      const leaderIdx = members.findIndex((m) => m.proc.url === lead);
      const killLeader = k % 2 === 1 && leaderIdx >= 0;
      const others = members.map((_, i) => i).filter((i) => i !== leaderIdx);
      const victimIdx = killLeader ? leaderIdx : (others[k % others.length] ?? 0);
      const victim = members[victimIdx] as Member;
      const survivors = members.filter((m) => m !== victim);
      const probeNode = survivors[0] as Member;
      const map = await slotPorts(probeNode);
      let key = '';
      for (let i = 0; key === ''; i++) if (map[keySlot(`failover:${k}:${i}`)] === victim.port) key = `failover:${k}:${i}`;
      const client = await LineClient.open(probeNode.port);
      // A node started after the last kill may still be receiving its slots' keys (hand-over: TRYAGAIN).
      let pre1 = '';
      for (let tries = 0; tries < 200; tries++) {
        pre1 = await client.command(['SET', key, 'before'], 5000);
        if (!pre1.startsWith('-TRYAGAIN')) break;
        await sleep(25);
      }
      if (pre1 !== '+OK') problems.push(`kill ${k + 1}: SET before the kill answered ${pre1}`);

      victim.ctl.disconnect();
      const exited = new Promise<void>((r) => (victim.proc.child.exitCode !== null ? r() : victim.proc.child.once('exit', () => r())));
      const t0 = performance.now();
      victim.proc.child.kill('SIGKILL');
      // The ring as the survivors see it, polled beside the writes.
      let ringMs = Number.NaN;
      const ring = (async () => {
        while (performance.now() - t0 < FAILOVER_GIVE_UP_MS) {
          try {
            if (await clusterOk(survivors)) {
              ringMs = performance.now() - t0;
              return;
            }
          } catch {
            // a survivor busy or reconnecting
          }
          await sleep(20);
        }
      })();
      const replies = new Map<string, number>();
      let attempts = 0;
      let firstOkMs = Number.NaN;
      let slowest = 0;
      let c = client;
      while (performance.now() - t0 < FAILOVER_GIVE_UP_MS) {
        attempts++;
        const a0 = performance.now();
        const reply = await c.command(['SET', key, `after-${attempts}`], 6000);
        slowest = Math.max(slowest, performance.now() - a0);
        if (reply === '+OK') {
          firstOkMs = performance.now() - t0;
          break;
        }
        const word = /^[-+]?(\S+)/.exec(reply)?.[1] ?? reply;
        replies.set(word, (replies.get(word) ?? 0) + 1);
        if (word === 'TIMEOUT' || word === 'CONNCLOSED') {
          c.close();
          c = await LineClient.open(probeNode.port);
        }
        await sleep(20);
      }
      c.close();
      await ring;
      await exited;
      victim.cleanup();
      if (Number.isNaN(firstOkMs)) problems.push(`kill ${k + 1}: no OK within ${FAILOVER_GIVE_UP_MS} ms (${[...replies].map(([w, n]) => `${w}×${n}`).join(', ')})`);
      // Back to three: a fresh node (its start included in the rejoin time).
      const r0 = performance.now();
      members.splice(victimIdx, 1, await startMember(url));
      const rejoinMs = await converged(members, 30_000).then(
        () => performance.now() - r0,
        (err: Error) => {
          problems.push(`kill ${k + 1}: ${err.message}`);
          return Number.NaN;
        },
      );
      const kill: Kill = { leader: killLeader, firstOkMs, ringMs, attempts, replies, slowestAttemptMs: slowest, rejoinMs };
      out.push(kill);
      log(
        `kill ${k + 1}/${kills} (${killLeader ? 'the expiry leader' : 'not the leader'}): first OK ${Math.round(firstOkMs)} ms after SIGKILL, ` +
          `survivors' ring ok ${Math.round(ringMs)} ms, ${attempts} attempts (${[...replies].map(([w, n]) => `${w}×${n}`).join(', ') || 'no errors'}), ` +
          `slowest attempt ${Math.round(slowest)} ms; replacement node converged ${Math.round(kill.rejoinMs)} ms after its start`,
      );
    }
  } finally {
    await Promise.all(members.map(stopMember));
  }
  return { kills: out, problems };
}

// ------------------------------------------------------------------------------------------------
// Report

const fmt = (x: number, digits = 0): string => (Number.isFinite(x) ? x.toFixed(digits) : '—');

/** "median (min–max)" of per-run values. */
function range(values: number[], digits = 0): string {
  const s = summarize(values);
  if (s.n === 0) return '—';
  return `${fmt(s.median, digits)} (${fmt(s.min, digits)}–${fmt(s.max, digits)})`;
}

async function main(): Promise<void> {
  console.log(`cache-cluster: redis-benchmark -t ${TESTS.join(',')} -n ${N} -c ${CLIENTS} -r ${KEYSPACE} at -P ${PIPELINES.join(' and -P ')}, ${RUNS} runs; failover ×${KILLS}`);
  console.log(formatMachine(machineInfo(tmpdir(), ROOT)));
  const external = process.env.BENCH_POSTGRES_URL;
  if (external) process.env.BEACON_TEST_POSTGRES_URL = external;
  const pg = await startPostgres();
  const onSignal = (): void => {
    killLiveChildren();
    void pg.stop().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const results = {} as Results;
  const totals = {} as Record<Config, Counters>;
  for (const c of CONFIGS) {
    results[c] = {};
    for (const p of PIPELINES) results[c][p] = { figures: [], nodeUs: [], clientUs: [], otherUs: [], busyPct: [] };
    totals[c] = emptyCounters();
  }
  const failures: string[] = [];
  const shares: string[] = [];
  let fo: { kills: Kill[]; problems: string[] } = { kills: [], problems: [] };
  try {
    for (let run = 0; run < RUNS; run++) await measureRun(pg, run, results, totals, failures, shares);
    if (KILLS > 0) fo = await failover(await pg.createDatabase(), KILLS);
  } finally {
    killLiveChildren();
    await pg.stop();
  }

  console.log('');
  console.log(`requests/s, median (min–max) over ${RUNS} runs; p99 in ms at -P 1; CPU: µs per request (median) of the Beacon nodes, redis-benchmark and everything else; busy: the 2 cores`);
  const head = `${'configuration'.padEnd(33)} ${'test'.padEnd(4)} ${'-P'.padStart(3)}  ${'requests/s'.padEnd(25)} ${'p99 ms'.padEnd(19)} ${'nodes'.padStart(6)} ${'client'.padStart(6)} ${'others'.padStart(6)} ${'busy'.padStart(5)}`;
  console.log(head);
  console.log('-'.repeat(head.length));
  for (const p of PIPELINES) {
    for (const t of TESTS) {
      for (const c of CONFIGS) {
        const slot = results[c][p] as Cell;
        const rps = slot.figures.map((f) => f[t]?.rps ?? Number.NaN);
        const p99 = p === 1 ? range(slot.figures.map((f) => f[t]?.p99 ?? Number.NaN), 2) : '';
        const cpu = [slot.nodeUs, slot.clientUs, slot.otherUs].map((v) => fmt(median(v), 1).padStart(6)).join(' ');
        console.log(`${CONFIG_NAME[c].padEnd(33)} ${t.toUpperCase().padEnd(4)} ${String(p).padStart(3)}  ${range(rps).padEnd(25)} ${p99.padEnd(19)} ${cpu} ${`${fmt(median(slot.busyPct))} %`.padStart(5)}`);
      }
    }
  }
  console.log('(CPU and busy are per redis-benchmark run, SET and GET together)');
  console.log('');
  console.log('ratios per run (same run, same pipeline depth), median (min–max):');
  for (const p of PIPELINES) {
    for (const t of TESTS) {
      const rps = (c: Config): number[] => (results[c][p] as Cell).figures.map((f) => f[t]?.rps ?? Number.NaN);
      const [a, b, cc] = [rps('A'), rps('B'), rps('C')];
      const ba = b.map((x, i) => (100 * x) / (a[i] as number));
      const cb = cc.map((x, i) => (100 * x) / (b[i] as number));
      const mba = median(ba);
      const mcb = median(cb);
      console.log(
        `  ${t.toUpperCase().padEnd(4)} -P ${String(p).padEnd(3)} B/A ${range(ba).padEnd(16)} % (target ≥ 100 %: ${Number.isFinite(mba) ? (mba >= 100 ? 'met' : 'MISSED') : '—'})   ` +
          `C/B ${range(cb).padEnd(16)} % (target ≥ 50 %: ${Number.isFinite(mcb) ? (mcb >= 50 ? 'met' : 'MISSED') : '—'})`,
      );
    }
  }
  console.log('');
  console.log("what the nodes counted during the measured runs (INFO; B's and C's commands per node show where the commands ran):");
  for (const c of CONFIGS) {
    const d = totals[c];
    const codes = [...d.byCode].map(([k, v]) => `${k} ${v}`).join(', ');
    console.log(
      `  ${CONFIG_NAME[c].padEnd(34)} commands ${d.commands} (total_commands_processed ${d.processed}), error replies ${d.errors}${codes === '' ? '' : ` (${codes})`}, ` +
        `forwarded ${d.forwarded}, forward errors ${d.forwardErrors}, MOVED ${d.moved}`,
    );
  }
  for (const s of shares) console.log(`  ${s}`);
  if (failures.length > 0) {
    console.log('');
    console.log('problems:');
    for (const f of failures) console.log(`  ${f}`);
  }
  if (KILLS > 0) {
    console.log('');
    console.log(`failover: SIGKILL of one of three nodes → first OK of a SET (plain client on a survivor) to a key of a slot the killed node served, ${fo.kills.length} kills`);
    for (const [i, k] of fo.kills.entries()) {
      const rs = [...k.replies].map(([w, n]) => `${w}×${n}`).join(', ') || 'none';
      console.log(
        `  kill ${i + 1} (${k.leader ? 'expiry leader' : 'not the leader'}): first OK ${fmt(k.firstOkMs)} ms, survivors' ring ok ${fmt(k.ringMs)} ms, ` +
          `${k.attempts} attempts, replies before: ${rs}, slowest attempt ${fmt(k.slowestAttemptMs)} ms; replacement converged ${fmt(k.rejoinMs)} ms after its start`,
      );
    }
    const all = fo.kills.map((k) => k.firstOkMs);
    const s = summarize(all);
    console.log(`  first OK: median ${fmt(s.median)} ms, max ${fmt(s.max)} ms (target: report; ideally ≤ 5000 ms → ${s.n === 0 ? '—' : s.max <= 5000 ? 'met' : 'over'})`);
    for (const leader of [false, true]) {
      const v = fo.kills.filter((k) => k.leader === leader).map((k) => k.firstOkMs);
      if (v.length > 0) console.log(`    ${leader ? 'leader killed    ' : 'non-leader killed'}: median ${fmt(median(v))} ms, max ${fmt(Math.max(...v))} ms over ${v.length}`);
    }
    for (const p of fo.problems) console.log(`  problem: ${p}`);
  }
}

main().catch((err: unknown) => {
  console.error(err);
  killLiveChildren();
  process.exit(1);
});
