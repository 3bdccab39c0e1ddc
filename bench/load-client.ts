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
import { randomSpaceKey } from './lib/keys.js';
import { latencySummary, type LatencySummary } from './lib/stats.js';

/** What to send and for how long. Times in ms. */
export interface LoadSpec {
  host: string;
  port: number;
  connections: number;
  warmupMs: number;
  durationMs: number;
  /**
   * get: `GET path`; put: a write per request (see `api`, `keyOrder`); raw: the fixed request
   * `method path` with `body` (an etcd gateway read is a POST with a JSON body).
   */
  mode: 'get' | 'put' | 'raw';
  /** get and raw: the path requested. */
  path?: string;
  /** raw: the method (default GET). */
  method?: string;
  /** raw: the request body (none when absent). */
  body?: string;
  /** put: keys go under /v1/kv/<putPrefix>. */
  putPrefix?: string;
  /**
   * put: `sequential` keys count up across all connections (`<prefix>000000000001`, …), so every
   * insert lands at the right edge of the B-trees; `spread` keys are `<prefix><connection>-<n>`,
   * so concurrent writes land in as many key ranges as there are connections.
   */
  keyOrder?: 'sequential' | 'spread' | 'random';
  /** put with `random` keys: how many distinct keys (`<prefix>k00000` …), each request picks one uniformly. */
  keySpace?: number;
  /** put: Beacon's `PUT /v1/kv/<key>` (default) or etcd's JSON gateway `POST /v3/kv/put` (base64 key and value). */
  api?: 'beacon' | 'etcd';
  valueBytes?: number;
}

/** One complete PUT request for `key`, in Beacon's API or etcd's JSON gateway. */
function putRequest(spec: LoadSpec, key: string, value: string): Buffer {
  const host = `${spec.host}:${spec.port}`;
  if (spec.api === 'etcd') {
    const body = JSON.stringify({ key: Buffer.from(key).toString('base64'), value: Buffer.from(value).toString('base64') });
    return Buffer.from(`POST /v3/kv/put HTTP/1.1\r\nHost: ${host}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
  }
  const body = JSON.stringify({ value });
  return Buffer.from(`PUT /v1/kv/${key} HTTP/1.1\r\nHost: ${host}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
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
const CHUNKED = /\r\ntransfer-encoding:\s*chunked/i;

/**
 * The length of a complete chunked body starting at `from` in `buf` (through its terminating
 * zero-size chunk and the blank line), or -1 while it is incomplete. Trailers are not expected.
 */
function chunkedLength(buf: Buffer, from: number): number {
  let at = from;
  for (;;) {
    const lineEnd = buf.indexOf('\r\n', at);
    if (lineEnd < 0) return -1;
    const size = Number.parseInt(buf.subarray(at, lineEnd).toString('latin1'), 16);
    if (!Number.isFinite(size)) return -1;
    const next = lineEnd + 2 + size + 2;
    if (buf.length < next) return -1;
    if (size === 0) return next - from;
    at = next;
  }
}

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
  const rawBody = spec.body ?? '';
  const getRequest =
    spec.mode === 'raw'
      ? Buffer.from(
          `${spec.method ?? 'GET'} ${spec.path ?? '/'} HTTP/1.1\r\nHost: ${spec.host}:${spec.port}\r\n` +
            (rawBody === '' ? '\r\n' : `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(rawBody)}\r\n\r\n${rawBody}`),
        )
      : Buffer.from(`GET ${spec.path ?? '/'} HTTP/1.1\r\nHost: ${spec.host}:${spec.port}\r\n\r\n`);
  // Random keys: every request of the key space built once, so the generator's CPU goes to sockets.
  const keySpace = spec.keySpace ?? 10_000;
  const randomRequests =
    spec.mode === 'put' && spec.keyOrder === 'random'
      ? Array.from({ length: keySpace }, (_, i) => putRequest(spec, randomSpaceKey(spec.putPrefix ?? 'bench/put/', i), 'v'.repeat(valueBytes)))
      : [];

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
        if (spec.mode !== 'put') socket.write(getRequest);
        else if (randomRequests.length > 0) socket.write(randomRequests[Math.floor(Math.random() * randomRequests.length)] as Buffer);
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
        const headText = head.toString('latin1');
        let total: number;
        if (CHUNKED.test(headText)) {
          // etcd's gateway (Go net/http) answers large bodies chunked.
          const length = chunkedLength(buf, headEnd + 4);
          if (length < 0) return;
          total = headEnd + 4 + length;
        } else {
          const lower = Buffer.from(headText.toLowerCase(), 'latin1');
          const at = lower.indexOf(CONTENT_LENGTH);
          if (at < 0) {
            noteError('a response without content-length');
            close();
            return;
          }
          const lineEnd = lower.indexOf('\r\n', at);
          const length = Number(lower.subarray(at + CONTENT_LENGTH.length, lineEnd < 0 ? undefined : lineEnd).toString('latin1').trim());
          total = headEnd + 4 + length;
          if (buf.length < total) return;
        }
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
