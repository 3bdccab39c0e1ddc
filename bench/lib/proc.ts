/**
 * Processes under test: the built `beacon serve`, the trivial Node HTTP baseline and the
 * benchmark's own helper scripts, each a separate child process that prints where it listens.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

/** The build this file belongs to (it runs as <build>/bench/lib/proc.js, normally dist/). */
const BUILD = resolve(new URL('../..', import.meta.url).pathname);
/** The repository root: the build's parent directory. */
export const ROOT = resolve(BUILD, '..');
/**
 * The built CLI entry point of the same build, so a copy of another build (say `dist-before/`,
 * next to `dist/`) benchmarks its own server: A/B comparisons of two builds in one run.
 */
export const CLI = join(BUILD, 'src/cli/main.js');
/** The compiled benchmark scripts. */
export const BENCH_DIST = join(BUILD, 'bench');

/** Every child process started here that has not exited yet, so an interrupted run can end them. */
const live = new Set<ChildProcess>();

/** Registers a child so {@link killLiveChildren} can end it; it leaves the set when it exits. */
export function track(child: ChildProcess): ChildProcess {
  live.add(child);
  child.once('exit', () => live.delete(child));
  return child;
}

/** SIGKILLs every child process this run started that is still alive (each by its own pid). */
export function killLiveChildren(): void {
  for (const c of live) c.kill('SIGKILL');
}

/** A child process that printed `listening on <url>` on stderr. */
export interface ListeningProcess {
  url: string;
  pid: number;
  child: ChildProcess;
  /** Milliseconds from spawn to the `listening on` line. */
  startupMs: number;
  /** Everything written to stderr so far. */
  stderr: () => string;
  /** Resident set size in bytes (VmRSS from /proc/<pid>/status). */
  rssBytes: () => number;
  /** Peak resident set size in bytes (VmHWM). */
  peakRssBytes: () => number;
  /** SIGTERM, then SIGKILL after `ms`; resolves once it has exited. */
  stop: (ms?: number) => Promise<void>;
}

/** Reads a `Vm…: N kB` line of /proc/<pid>/status, in bytes; NaN when the process is gone. */
export function procStatusBytes(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

/**
 * Spawns `node <args>` and waits for `listening on <url>` on its stderr.
 * @throws when the process exits first or does not listen within `timeoutMs`.
 */
export async function spawnListening(args: string[], env: Record<string, string> = {}, timeoutMs = 120_000): Promise<ListeningProcess> {
  const started = performance.now();
  const child = spawn(process.execPath, args, {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, BEACON_LOG_LEVEL: 'warn', ...env },
  });
  track(child);
  let err = '';
  child.stderr?.setEncoding('utf8');
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const { url, startupMs } = await new Promise<{ url: string; startupMs: number }>((resolveUrl, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${args.join(' ')} did not listen within ${timeoutMs} ms:\n${err}`));
    }, timeoutMs);
    const onData = (d: string): void => {
      err += d;
      const m = /listening on (https?:\/\/[^\s]+)/.exec(err);
      if (m) {
        const ms = performance.now() - started;
        clearTimeout(timer);
        child.removeListener('exit', onExit);
        resolveUrl({ url: m[1] as string, startupMs: ms });
      }
    };
    const onExit = (code: number | null): void => {
      clearTimeout(timer);
      reject(new Error(`${args.join(' ')} exited with ${code}:\n${err}`));
    };
    child.stderr?.on('data', onData);
    child.once('exit', onExit);
  });
  const pid = child.pid as number;
  return {
    url,
    pid,
    child,
    startupMs,
    stderr: () => err,
    rssBytes: () => procStatusBytes(pid, 'VmRSS'),
    peakRssBytes: () => procStatusBytes(pid, 'VmHWM'),
    stop: async (ms = 10_000) => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), ms);
      await exited;
      clearTimeout(t);
    },
  };
}

/**
 * Starts the built `beacon serve --dev` on 127.0.0.1 and a free port with its store in `dataDir`.
 * `BENCH_BEACON_NODE_ARGS` (space-separated) goes to node before the script, e.g.
 * `--cpu-prof --cpu-prof-dir=/tmp/prof` to profile the server during a benchmark.
 */
export function spawnBeacon(dataDir: string, extra: string[] = []): Promise<ListeningProcess> {
  const nodeArgs = (process.env.BENCH_BEACON_NODE_ARGS ?? '').split(' ').filter((a) => a !== '');
  return spawnListening([...nodeArgs, CLI, 'serve', '--data-dir', dataDir, '--http-port', '0', '--host', '127.0.0.1', '--dev', ...extra]);
}

/** Starts the trivial Node `http` baseline answering every request with `body` (JSON). */
export function spawnTrivialServer(body: string): Promise<ListeningProcess> {
  return spawnListening([join(BENCH_DIST, 'trivial-server.js')], { BENCH_TRIVIAL_BODY: body });
}

/** Stops every process given, ignoring ones already gone. */
export async function stopAll(procs: (ListeningProcess | undefined)[]): Promise<void> {
  await Promise.all(procs.map((p) => p?.stop().catch(() => undefined)));
}

export { freePort } from '../../test/helpers/net.js';
