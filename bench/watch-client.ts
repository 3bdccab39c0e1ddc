/**
 * A watch-fanout client process (forked by bench/watch-fanout.ts with IPC). It opens
 * BENCH_SOCKETS WebSockets to BENCH_WS_URL, creates BENCH_WATCHES watches on the prefix `fan/`
 * spread over them, and for every event received records the write's sequence number and the
 * latency from the moment the writer sent it (the value embeds process.hrtime.bigint(), which is
 * CLOCK_MONOTONIC and so comparable across processes on one machine).
 *
 * IPC in: {type:'reset'} clears the samples; {type:'collect'} replies with them; {type:'count'}
 * replies with how many events arrived; {type:'exit'} closes the sockets and exits.
 * IPC out: {type:'ready', sockets, watches, connectMs} or {type:'failed', error}, then replies.
 */
import WebSocket from 'ws';

const url = process.env.BENCH_WS_URL ?? '';
const socketCount = Number(process.env.BENCH_SOCKETS ?? 1);
const watchCount = Number(process.env.BENCH_WATCHES ?? 1);
/** Sockets opening at once: enough to be quick, few enough not to overflow the server's accept backlog. */
const CONNECT_PARALLEL = 64;

const sockets: WebSocket[] = [];
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
    const v = JSON.parse(ev.kv.value) as { seq: number; t: string };
    seqs.push(v.seq);
    latencies.push(Number(now - BigInt(v.t)) / 1e6);
    received++;
  }
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
    process.exit(0);
  }
});
process.on('disconnect', () => process.exit(0));

main().catch((err: unknown) => {
  send({ type: 'failed', error: (err as Error).message });
});
