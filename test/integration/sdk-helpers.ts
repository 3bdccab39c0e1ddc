/** Helpers for the SDK integration tests: SDK child processes, bounded waits, free ports. */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ROOT } from '../helpers/node.js';

/** The compiled SDK, as a file URL a child process can import. */
export const SDK_URL = pathToFileURL(join(ROOT, 'dist/client/index.js')).href;

/** Resolves when `cond()` holds; rejects after `ms`. */
export async function until(cond: () => boolean | Promise<boolean>, what: string, ms = 5000, stepMs = 10): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, stepMs));
  }
}

/** Rejects with a clear message if `p` does not settle within `ms`. */
export async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, reject) => (t = setTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms`)), ms)))]);
  } finally {
    clearTimeout(t);
  }
}

export { freePort } from '../helpers/node.js';

/** A Node child process running an ES module given as text, with its stdout lines parsed as JSON. */
export interface SdkChild {
  child: ChildProcess;
  /** Every JSON line printed so far. */
  lines: unknown[];
  /** Resolves with the next JSON line (or the first one not consumed yet); rejects after `ms` or when the process exits. */
  next: (ms?: number) => Promise<any>;
  /** SIGKILL and wait for the exit. */
  kill: () => Promise<void>;
}

/** Runs `source` (an ES module; `SDK` is replaced by the SDK's URL) with `args` in a child process. */
export function runSdkChild(source: string, args: string[] = []): SdkChild {
  const child = spawn(process.execPath, ['--input-type=module', '-e', source.replaceAll('__SDK__', SDK_URL), '--', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: unknown[] = [];
  let buf = '';
  let err = '';
  let consumed = 0;
  const waiters: (() => void)[] = [];
  child.stdout?.setEncoding('utf8').on('data', (d: string) => {
    buf += d;
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      lines.push(JSON.parse(buf.slice(0, nl)));
      buf = buf.slice(nl + 1);
    }
    waiters.splice(0).forEach((w) => w());
  });
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (err += d));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.once('exit', () => waiters.splice(0).forEach((w) => w()));
  return {
    child,
    lines,
    next: (ms = 10_000) =>
      new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`child printed nothing within ${ms} ms; stderr: ${err}`)), ms);
        const check = (): void => {
          if (consumed < lines.length) {
            clearTimeout(t);
            resolve(lines[consumed++]);
          } else if (child.exitCode !== null || child.signalCode !== null) {
            clearTimeout(t);
            reject(new Error(`child exited (${child.exitCode ?? child.signalCode}); stderr: ${err}`));
          } else waiters.push(check);
        };
        check();
      }),
    kill: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}
