/**
 * The client side of the watch-catchup benchmark, forked by bench/watch-catchup.ts: opens
 * BENCH_SOCKETS WebSockets to BENCH_WS_URL, creates BENCH_WATCHES watches from revision 1 spread
 * over them (each socket's watches on the prefix `restart/` or on one `restart/app-NN/`), and
 * leaves every other socket unread (its TCP receive side paused, as a stuck consumer). Readers
 * count bytes without parsing. On `{"type":"count"}` over IPC it answers the bytes received.
 */
import WebSocket from 'ws';

const url = process.env.BENCH_WS_URL as string;
const socketCount = Number(process.env.BENCH_SOCKETS);
const watchCount = Number(process.env.BENCH_WATCHES);
let received = 0;
let errors = 0;
let closed = 0;
const sockets: WebSocket[] = [];

async function open(i: number): Promise<void> {
  const ws = new WebSocket(url);
  sockets.push(ws);
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  ws.on('message', (data: Buffer) => {
    received += data.length;
    // An error frame (a limit, a bad watch) would make the figures meaningless: count them.
    if (data.length < 400 && data.includes('"type":"error"')) errors++;
  });
  ws.on('close', () => closed++);
  const reads = i % 2 === 0;
  const per = Math.ceil(watchCount / socketCount);
  for (let w = 1; w <= per && (i * per + w) <= watchCount; w++) {
    // Half the watches of a socket on the whole prefix, half on one of 100 sub-prefixes.
    const key = w % 2 === 0 ? 'restart/' : `restart/app-${String((i * per + w) % 100).padStart(2, '0')}/`;
    ws.send(JSON.stringify({ type: 'create', key, prefix: true, fromRevision: 1, watchId: w }));
  }
  if (!reads) (ws as unknown as { _socket: { pause(): void } })._socket.pause();
}

async function main(): Promise<void> {
  try {
    for (let i = 0; i < socketCount; i++) await open(i);
    process.send?.({ type: 'ready' });
  } catch (err) {
    process.send?.({ type: 'failed', error: (err as Error).message });
  }
}

process.on('message', (m: { type: string }) => {
  if (m.type === 'count') process.send?.({ type: 'count', received, errors, closed });
  if (m.type === 'stop') {
    for (const ws of sockets) ws.terminate();
    setTimeout(() => process.exit(0), 50);
  }
});

void main();
