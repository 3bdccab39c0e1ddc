/** Test helpers: a real node in process on a free port, or the built CLI as a child process. */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pino } from 'pino';
import { startNode, type BeaconNode, type NodeOptions } from '../../src/node/index.js';

/** The repository root (tests run from dist/test/…). */
export const ROOT = resolve(new URL('../../..', import.meta.url).pathname);
/** The built CLI entry point. */
export const CLI = join(ROOT, 'dist/src/cli/main.js');

/** A fresh temporary directory, removed by the returned cleanup. */
export function tempDir(prefix = 'beacon-test-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Starts a node in this process on 127.0.0.1 and a free port, with a temporary data dir and silent logs. */
export async function startTestNode(opts: NodeOptions = {}): Promise<BeaconNode & { cleanup: () => Promise<void> }> {
  const tmp = tempDir();
  const node = await startNode({
    dataDir: tmp.dir,
    httpPort: 0,
    host: '127.0.0.1',
    dev: true,
    logger: pino({ level: process.env.BEACON_TEST_LOG ?? 'silent' }),
    ...opts,
  });
  return Object.assign(node, {
    cleanup: async () => {
      await node.stop();
      if (opts.dataDir === undefined) tmp.cleanup();
    },
  });
}

/** A `beacon serve` child process. */
export interface ServerProcess {
  url: string;
  port: number;
  child: ChildProcess;
  /** Everything the process wrote to stderr so far. */
  stderr: () => string;
  /** Everything it wrote to stdout so far (with `stdout: 'pipe'`: the JSON logs). */
  stdout: () => string;
  /** SIGKILL, then wait for exit. */
  kill: () => Promise<void>;
  /** SIGTERM, then wait for exit (SIGKILL after `ms`). */
  stop: (ms?: number) => Promise<void>;
}

/** Options of {@link spawnServer}. */
export interface SpawnOptions {
  /** Run with authentication on (no `--dev`). Default false: tests that are not about security run in `--dev`. */
  secure?: boolean;
  /** Extra environment variables (e.g. `BEACON_ADMIN_PASSWORD`, `BEACON_KEK`). */
  env?: Record<string, string>;
  /** Where stdout goes: ignored by default, or collected (the JSON logs) with 'pipe'. */
  stdout?: 'ignore' | 'pipe';
}

/**
 * Spawns the built `beacon serve` on a free port and waits until it prints where it listens.
 * It runs with `--dev` unless `opts.secure` (or `--dev` is already among `args`), and on a free RESP port unless `args` names one.
 * @throws when it does not start within `timeoutMs`.
 */
export async function spawnServer(args: string[], timeoutMs = 20_000, opts: SpawnOptions = {}): Promise<ServerProcess> {
  const dev = opts.secure === true || args.includes('--dev') ? [] : ['--dev'];
  // A free RESP port too: a test that names its HTTP port (to restart on it) would otherwise get 6380, which another test may hold.
  const child = spawn(process.execPath, [CLI, 'serve', '--http-port', '0', '--resp-port', '0', ...dev, ...args], {
    stdio: ['ignore', opts.stdout ?? 'ignore', 'pipe'],
    env: { ...process.env, BEACON_LOG_LEVEL: process.env.BEACON_TEST_LOG ?? 'warn', ...(opts.env ?? {}) },
  });
  let out = '';
  child.stdout?.setEncoding('utf8');
  child.stdout?.on('data', (d: string) => (out += d));
  let err = '';
  child.stderr?.setEncoding('utf8');
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const url = await new Promise<string>((resolveUrl, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`beacon serve did not start in ${timeoutMs} ms:\n${err}`));
    }, timeoutMs);
    child.stderr?.on('data', (d: string) => {
      err += d;
      const m = /listening on (https?:\/\/[^\s]+)/.exec(err);
      if (m) {
        clearTimeout(timer);
        resolveUrl(m[1] as string);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`beacon serve exited with ${code}:\n${err}`));
    });
  });
  const kill = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  };
  return {
    url,
    port: Number(new URL(url).port),
    child,
    stderr: () => err,
    stdout: () => out,
    kill,
    stop: async (ms = 5000) => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), ms);
      await exited;
      clearTimeout(t);
    },
  };
}

/** fetch + JSON: returns status and parsed body. */
export async function http(
  url: string,
  init: { method?: string; body?: unknown; raw?: string | Buffer; headers?: Record<string, string> } = {},
): Promise<{ status: number; body: any; headers: Headers }> {
  const headers: Record<string, string> = { ...(init.headers ?? {}) };
  let body: string | Buffer | undefined;
  if (init.raw !== undefined) body = init.raw;
  else if (init.body !== undefined) {
    body = JSON.stringify(init.body);
    headers['content-type'] = 'application/json';
  }
  const res = await fetch(url, { method: init.method ?? 'GET', headers, body: typeof body === 'string' || body === undefined ? body : new Uint8Array(body) });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = text === '' ? undefined : JSON.parse(text);
  } catch {
    // not JSON
  }
  return { status: res.status, body: parsed, headers: res.headers };
}

export { freePort } from './net.js';
