/**
 * The HTTP load generator of get-http and put-durable, run as its own process (forked with IPC).
 * It opens `connections` keep-alive connections over raw TCP (one request in flight on each),
 * runs an unmeasured warm-up, then counts only requests that start and finish inside the
 * measured window, and records every latency exactly (no coordinated-omission "correction",
 * which makes wrk's closed-loop tails depend on its first requests on cold connections).
 *
 * IPC in: one {type:'start', spec: LoadSpec}. IPC out: {type:'result', result: LoadResult} or
 * {type:'failed', error}. The process exits after replying.
 */
import { connect, type Socket } from 'node:net';
import { latencySummary, type LatencySummary } from './lib/stats.js';

/** What to send and for how long. Times in ms. */
export interface LoadSpec {
  host: string;
  port: number;
  connections: number;
  warmupMs: number;
  durationMs: number;
  mode: 'get' | 'put';
  /** get: the path requested. */
  path?: string;
  /** put: keys go under /v1/kv/<putPrefix>. */
  putPrefix?: string;
  /**
   * put: `sequential` keys count up across all connections (`<prefix>000000000001`, …), so every
   * insert lands at the right edge of the B-trees; `spread` keys are `<prefix><connection>-<n>`,
   * so concurrent writes land in as many key ranges as there are connections.
   */
  keyOrder?: 'sequential' | 'spread';
  valueBytes?: number;
}

/** What the measured window saw. Latencies in ms. */
export interface LoadResult {
  requests: number;
  rps: number;
  latency: LatencySummary & { p90: number; p999: number; mean: number };
  /** Answers outside 2xx, and socket errors. */
  errors: number;
  firstError: string;
  /** CPU the load generator used, in % of one core (near 100 % means it, not the server, may be the limit). */
  cpuPct: number;
}

const CRLFCRLF = Buffer.from('\r\n\r\n');
const CONTENT_LENGTH = Buffer.from('content-length:');

function run(spec: LoadSpec): Promise<LoadResult> {
  const started = performance.now();
  const measureFrom = started + spec.warmupMs;
  const measureTo = measureFrom + spec.durationMs;
  const samples: number[] = [];
  let errors = 0;
  let firstError = '';
  let done = 0;
  let sequence = 0;
  const valueBytes = spec.valueBytes ?? 128;
  const putBody = Buffer.from(JSON.stringify({ value: 'v'.repeat(valueBytes) }));
  const getRequest = Buffer.from(`GET ${spec.path ?? '/'} HTTP/1.1\r\nHost: ${spec.host}:${spec.port}\r\n\r\n`);

  const noteError = (msg: string): void => {
    errors++;
    if (firstError === '') firstError = msg;
  };

  return new Promise((resolve) => {
    const cpu0 = process.cpuUsage();
    const finish = (): void => {
      if (++done < spec.connections) return;
      const cpu = process.cpuUsage(cpu0);
      const wallMs = performance.now() - started;
      const sorted = Float64Array.from(samples).sort();
      const base = latencySummary(sorted);
      const p = (q: number): number => (sorted.length === 0 ? Number.NaN : (sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] as number));
      const mean = sorted.reduce((s, v) => s + v, 0) / Math.max(1, sorted.length);
      resolve({
        requests: samples.length,
        rps: samples.length / (spec.durationMs / 1000),
        latency: { ...base, p90: p(0.9), p999: p(0.999), mean },
        errors,
        firstError,
        cpuPct: ((cpu.user + cpu.system) / 1000 / wallMs) * 100,
      });
    };

    for (let c = 0; c < spec.connections; c++) {
      let n = 0;
      let sentAt = 0;
      let buf: Buffer = Buffer.alloc(0);
      const socket: Socket = connect({ host: spec.host, port: spec.port, noDelay: true });
      let closed = false;
      const close = (): void => {
        if (closed) return;
        closed = true;
        socket.destroy();
        finish();
      };
      const send = (): void => {
        if (performance.now() >= measureTo) {
          close();
          return;
        }
        sentAt = performance.now();
        if (spec.mode === 'get') socket.write(getRequest);
        else {
          const key = spec.keyOrder === 'sequential' ? String(++sequence).padStart(12, '0') : `${c}-${++n}`;
          const path = `/v1/kv/${spec.putPrefix ?? 'bench/put/'}${key}`;
          const head = `PUT ${path} HTTP/1.1\r\nHost: ${spec.host}:${spec.port}\r\nContent-Type: application/json\r\nContent-Length: ${putBody.length}\r\n\r\n`;
          socket.write(Buffer.concat([Buffer.from(head, 'latin1'), putBody]));
        }
      };
      socket.on('connect', send);
      socket.on('data', (chunk: Buffer) => {
        buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
        const headEnd = buf.indexOf(CRLFCRLF);
        if (headEnd < 0) return;
        const head = buf.subarray(0, headEnd);
        const lower = Buffer.from(head.toString('latin1').toLowerCase(), 'latin1');
        const at = lower.indexOf(CONTENT_LENGTH);
        if (at < 0) {
          noteError('a response without content-length');
          close();
          return;
        }
        const lineEnd = lower.indexOf('\r\n', at);
        const length = Number(lower.subarray(at + CONTENT_LENGTH.length, lineEnd < 0 ? undefined : lineEnd).toString('latin1').trim());
        const total = headEnd + 4 + length;
        if (buf.length < total) return;
        const status = Number(buf.subarray(9, 12).toString('latin1'));
        const now = performance.now();
        if (sentAt >= measureFrom && now <= measureTo) {
          samples.push(now - sentAt);
          if (status < 200 || status > 299) noteError(`HTTP ${status}: ${buf.subarray(headEnd + 4, total).toString('utf8').slice(0, 200)}`);
        }
        buf = buf.length === total ? Buffer.alloc(0) : buf.subarray(total);
        send();
      });
      socket.on('error', (err) => {
        noteError(err.message);
        close();
      });
      socket.on('close', close);
    }
  });
}

process.once('message', (m: { type: string; spec: LoadSpec }) => {
  if (m.type !== 'start') return;
  run(m.spec).then(
    (result) => process.send?.({ type: 'result', result }, () => process.exit(0)),
    (err: unknown) => process.send?.({ type: 'failed', error: (err as Error).message }, () => process.exit(1)),
  );
});
