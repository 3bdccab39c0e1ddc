/** Helpers for end-to-end tests of the built `beacon` CLI: run it to completion, or in the background. */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI } from '../helpers/node.js';

/**
 * Where the CLI under test keeps `beacon login`'s saved login: a directory of this test process,
 * never the user's ~/.config/beacon. A test may give its own BEACON_CONFIG_DIR.
 */
export const CLI_CONFIG_DIR = mkdtempSync(join(tmpdir(), 'beacon-cli-config-'));
process.once('exit', () => rmSync(CLI_CONFIG_DIR, { recursive: true, force: true }));

/** What a finished CLI run printed and how it exited. */
export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs `node dist/src/cli/main.js …args` with `input` on stdin (stdin is closed either way) and
 * waits for it to exit. It is killed after `timeoutMs`.
 */
export function runCli(args: string[], opts: { input?: string | Buffer; env?: Record<string, string>; timeoutMs?: number } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, BEACON_ENDPOINT: '', BEACON_CONFIG_DIR: CLI_CONFIG_DIR, ...(opts.env ?? {}) },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`beacon ${args.join(' ')} did not finish in ${opts.timeoutMs ?? 15_000} ms\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, opts.timeoutMs ?? 15_000);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(opts.input ?? '');
  });
}

/** A CLI process left running (watch, keep-alive): its output so far, waits on it, and a stop by pid. */
export interface BackgroundCli {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  /** Resolves once stdout or stderr (as chosen) matches `re`; rejects after `ms`. */
  waitFor: (stream: 'stdout' | 'stderr', re: RegExp, ms?: number) => Promise<void>;
  /** Sends `signal` (SIGINT by default, like Ctrl-C) and resolves with the exit code; SIGKILL after 5 s. */
  stop: (signal?: NodeJS.Signals) => Promise<number | null>;
}

/** Starts the CLI in the background. */
export function startCli(args: string[], env: Record<string, string> = {}): BackgroundCli {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, BEACON_CONFIG_DIR: CLI_CONFIG_DIR, ...env } });
  const out = { stdout: '', stderr: '' };
  const listeners = new Set<() => void>();
  const notify = (): void => {
    for (const l of [...listeners]) l();
  };
  child.stdout?.setEncoding('utf8').on('data', (d: string) => {
    out.stdout += d;
    notify();
  });
  child.stderr?.setEncoding('utf8').on('data', (d: string) => {
    out.stderr += d;
    notify();
  });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return {
    child,
    stdout: () => out.stdout,
    stderr: () => out.stderr,
    waitFor: (stream, re, ms = 10_000) =>
      new Promise<void>((resolve, reject) => {
        const check = (): void => {
          if (re.test(out[stream])) {
            cleanup();
            resolve();
          }
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(new Error(`no ${re} on ${stream} within ${ms} ms\nstdout: ${out.stdout}\nstderr: ${out.stderr}`));
        }, ms);
        const cleanup = (): void => {
          clearTimeout(timer);
          listeners.delete(check);
        };
        listeners.add(check);
        check();
      }),
    stop: async (signal = 'SIGINT') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      const t = setTimeout(() => child.kill('SIGKILL'), 5000);
      const code = await exited;
      clearTimeout(t);
      return code;
    },
  };
}

/** A TCP port on 127.0.0.1 with nothing listening on it (for "connection refused"). */
export { freePort as closedPort } from '../helpers/node.js';
