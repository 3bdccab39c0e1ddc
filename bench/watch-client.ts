/**
 * A watch-fanout client process (forked by bench/watch-fanout.ts and bench/watch-etcd.ts with
 * IPC). It opens BENCH_SOCKETS WebSockets to BENCH_WS_URL, creates BENCH_WATCHES watches on the
 * prefix `fan/` spread over them (with BENCH_TARGET=etcd instead: BENCH_WATCHES streaming POSTs
 * to etcd's JSON gateway `/v3/watch` at BENCH_WS_URL, one watch per connection, since the gateway
 * carries one watch stream per request), and for every event received records the write's sequence number and the
 * latency from the moment the writer sent it (the value embeds process.hrtime.bigint(), which is
 * CLOCK_MONOTONIC and so comparable across processes on one machine).
 *
 * IPC in: {type:'reset'} clears the samples; {type:'collect'} replies with them; {type:'count'}
 * replies with how many events arrived; {type:'exit'} closes the sockets and exits.
 * IPC out: {type:'ready', sockets, watches, connectMs} or {type:'failed', error}, then replies.
 */
import { request, type ClientRequest } from 'node:http';
import WebSocket from 'ws';

const url = process.env.BENCH_WS_URL ?? '';
const socketCount = Number(process.env.BENCH_SOCKETS ?? 1);
const watchCount = Number(process.env.BENCH_WATCHES ?? 1);
const target = process.env.BENCH_TARGET === 'etcd' ? 'etcd' : 'beacon';
/** Sockets opening at once: enough to be quick, few enough not to overflow the server's accept backlog. */
const CONNECT_PARALLEL = 64;

const sockets: WebSocket[] = [];
const streams: ClientRequest[] = [];
let seqs: number[] = [];
let latencies: number[] = [];
let received = 0;
let otherMessages = 0;
let closedEarly = 0;
let serverErrors = 0;
let lastError = '';

function send(msg: unknown): void {
  process.send?.(msg);
}

function onMessage(data: WebSocket.RawData): void {
  const now = process.hrtime.bigint();
  const msg = JSON.parse(data.toString()) as { type?: string; events?: { type: string; kv?: { key?: string; value?: string } }[]; error?: unknown };
  if (msg.type !== 'events' || !Array.isArray(msg.events)) {
    if (msg.type === 'error' || msg.error !== undefined) {
      serverErrors++;
      lastError = JSON.stringify(msg).slice(0, 300);
    } else otherMessages++;
    return;
  }
  for (const ev of msg.events) {
    if (ev.type !== 'put' || ev.kv?.value === undefined || !ev.kv.key?.startsWith('fan/')) continue;
    record(ev.kv.value, now);
  }
}

/** Records one event's value (the writer's `{seq, t}` JSON) received at `now`. */
function record(value: string, now: bigint): void {
  const v = JSON.parse(value) as { seq: number; t: string };
  seqs.push(v.seq);
  latencies.push(Number(now - BigInt(v.t)) / 1e6);
  received++;
}

interface EtcdWatchLine {
  result?: { created?: boolean; canceled?: boolean; events?: { type?: string; kv?: { key?: string; value?: string } }[] };
  error?: unknown;
}

/**
 * Opens one etcd gateway watch stream on `fan/` (range_end `fan0`): a POST whose answer is one
 * JSON object per line, `{"result":{…}}`, keys and values in base64. Resolves once etcd says it
 * created the watch.
 */
function openEtcdWatch(): Promise<void> {
  return new Promise((resolve, reject) => {
    const b64 = (s: string): string => Buffer.from(s).toString('base64');
    const body = JSON.stringify({ create_request: { key: b64('fan/'), range_end: b64('fan0') } });
    const req = request(`${url}/v3/watch`, { method: 'POST', agent: false, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } });
    let ready = false;
    const timer = setTimeout(() => reject(new Error('etcd watch not created within 60 s')), 60_000);
    req.on('response', (res) => {
      if (res.statusCode !== 200) {
        clearTimeout(timer);
        reject(new Error(`etcd /v3/watch answered HTTP ${res.statusCode}`));
        return;
      }
      let buf = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        const now = process.hrtime.bigint();
        buf += chunk;
        for (let nl = buf.indexOf('\n'); nl >= 0; nl = buf.indexOf('\n')) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          if (line.trim() === '') continue;
          const msg = JSON.parse(line) as EtcdWatchLine;
          if (msg.error !== undefined || msg.result?.canceled === true) {
            serverErrors++;
            lastError = line.slice(0, 300);
            continue;
          }
          if (!ready && msg.result?.created === true) {
            ready = true;
            clearTimeout(timer);
            resolve();
            continue;
          }
          const events = msg.result?.events;
          if (!Array.isArray(events)) {
            otherMessages++;
            continue;
          }
          for (const ev of events) {
            // etcd omits the default enum value: a PUT event has no "type".
            if ((ev.type ?? 'PUT') !== 'PUT' || ev.kv?.value === undefined) continue;
            if (!Buffer.from(ev.kv.key ?? '', 'base64').toString().startsWith('fan/')) continue;
            record(Buffer.from(ev.kv.value, 'base64').toString(), now);
          }
        }
      });
      res.on('close', () => {
        if (ready) closedEarly++;
      });
    });
    req.on('error', (err) => {
      lastError = err.message;
      if (!ready) {
        clearTimeout(timer);
        reject(err);
      }
    });
    // The gateway keeps the watch stream open after the request body ends.
    req.end(body);
    streams.push(req);
  });
}

/** Opens one socket and creates `watches` watches on it; resolves once every watch is created. */
function openSocket(watches: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: false });
    let created = 0;
    let ready = false;
    const timer = setTimeout(() => reject(new Error('socket did not open and create its watches within 60 s')), 60_000);
    ws.on('open', () => {
      for (let i = 0; i < watches; i++) ws.send(JSON.stringify({ type: 'create', key: 'fan/', prefix: true }));
    });
    ws.on('message', (data) => {
      if (!ready) {
        const msg = JSON.parse(data.toString()) as { type?: string };
        if (msg.type === 'created') {
          if (++created === watches) {
            ready = true;
            clearTimeout(timer);
            resolve();
          }
          return;
        }
        if (msg.type === 'error') {
          clearTimeout(timer);
          reject(new Error(`watch create failed: ${data.toString().slice(0, 300)}`));
          return;
        }
      }
      onMessage(data);
    });
    ws.on('error', (err) => {
      lastError = err.message;
      if (!ready) {
        clearTimeout(timer);
        reject(err);
      }
    });
    ws.on('close', () => {
      if (ready) closedEarly++;
    });
    sockets.push(ws);
  });
}

async function main(): Promise<void> {
  const started = performance.now();
  if (target === 'etcd') {
    let opened = 0;
    const etcdWorker = async (): Promise<void> => {
      while (opened < watchCount) {
        opened++;
        await openEtcdWatch();
      }
    };
    await Promise.all(Array.from({ length: Math.min(CONNECT_PARALLEL, watchCount) }, etcdWorker));
    send({ type: 'ready', sockets: streams.length, watches: watchCount, connectMs: performance.now() - started });
    return;
  }
  const perSocket = Array.from({ length: socketCount }, (_, i) => Math.floor(watchCount / socketCount) + (i < watchCount % socketCount ? 1 : 0));
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < perSocket.length) {
      const i = next++;
      await openSocket(perSocket[i] as number);
    }
  };
  await Promise.all(Array.from({ length: Math.min(CONNECT_PARALLEL, socketCount) }, worker));
  send({ type: 'ready', sockets: sockets.length, watches: watchCount, connectMs: performance.now() - started });
}

process.on('message', (m: { type: string }) => {
  if (m.type === 'reset') {
    seqs = [];
    latencies = [];
    received = 0;
    send({ type: 'reset-done' });
  } else if (m.type === 'count') {
    send({ type: 'count', received });
  } else if (m.type === 'collect') {
    send({ type: 'samples', seqs: Int32Array.from(seqs), latencies: Float64Array.from(latencies), closedEarly, serverErrors, otherMessages, lastError });
  } else if (m.type === 'exit') {
    for (const ws of sockets) ws.terminate();
    for (const r of streams) r.destroy();
    process.exit(0);
  }
});
process.on('disconnect', () => process.exit(0));

main().catch((err: unknown) => {
  send({ type: 'failed', error: (err as Error).message });
});
