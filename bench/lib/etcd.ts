/**
 * The etcd anchor of the vs-etcd benchmark: one etcd 3.4 member (Debian's `etcd-server`,
 * default settings) on two free loopback ports with its data dir in the run's temporary root,
 * started as a child process and stopped by its pid. Clients use its JSON gateway (`/v3/kv/…`).
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { procStatusBytes, track, type ListeningProcess, freePort } from './proc.js';

/** The etcd binary; override with BENCH_ETCD. */
export const ETCD = process.env.BENCH_ETCD ?? '/usr/bin/etcd';


/**
 * Starts one etcd member with its data in `dataDir` and waits until its gateway answers
 * `/version`; the result's `url` is the client URL.
 * @throws when the binary is missing (install Debian's `etcd-server`), or etcd exits or does not
 *   answer within `timeoutMs`.
 */
export async function spawnEtcd(dataDir: string, timeoutMs = 60_000): Promise<ListeningProcess & { version: string }> {
  if (!existsSync(ETCD)) throw new Error(`etcd not found at ${ETCD}: install Debian's etcd-server (apt-get install etcd-server) or set BENCH_ETCD`);
  const [client, peer] = [await freePort(), await freePort()];
  const url = `http://127.0.0.1:${client}`;
  const peerUrl = `http://127.0.0.1:${peer}`;
  const started = performance.now();
  const child = spawn(
    ETCD,
    [
      '--name', 'bench',
      '--data-dir', dataDir,
      '--listen-client-urls', url,
      '--advertise-client-urls', url,
      '--listen-peer-urls', peerUrl,
      '--initial-advertise-peer-urls', peerUrl,
      '--initial-cluster', `bench=${peerUrl}`,
      '--log-level', 'warn',
      '--logger', 'zap',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  track(child);
  let err = '';
  child.stderr?.setEncoding('utf8').on('data', (d: string) => {
    err = (err + d).slice(-20_000);
  });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const pid = child.pid as number;
  const stop = async (ms = 10_000): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const t = setTimeout(() => child.kill('SIGKILL'), ms);
    await exited;
    clearTimeout(t);
  };
  let version = '';
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`etcd exited with ${child.exitCode ?? child.signalCode}:\n${err}`);
    if (performance.now() - started > timeoutMs) {
      await stop(1000);
      throw new Error(`etcd did not answer within ${timeoutMs} ms:\n${err}`);
    }
    try {
      const res = await fetch(`${url}/version`);
      if (res.ok) {
        version = ((await res.json()) as { etcdserver?: string }).etcdserver ?? '?';
        // /version answers before the member has elected itself; a write proves it serves.
        const put = await fetch(`${url}/v3/kv/put`, { method: 'POST', body: JSON.stringify({ key: Buffer.from('bench/ready').toString('base64'), value: '' }) });
        if (put.ok) break;
      }
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    pid,
    child,
    version,
    startupMs: performance.now() - started,
    stderr: () => err,
    rssBytes: () => procStatusBytes(pid, 'VmRSS'),
    peakRssBytes: () => procStatusBytes(pid, 'VmHWM'),
    stop,
  };
}

/** etcd's gateway wants keys and values as base64 (protobuf bytes in JSON). */
export function b64(s: string): string {
  return Buffer.from(s).toString('base64');
}
