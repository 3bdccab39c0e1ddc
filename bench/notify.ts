/**
 * notify: the cost of notifications on the evaluating node. Prints medians over runs; never
 * fails on a time.
 *
 *   node dist/bench/notify.js [--runs N]
 *
 * - receive: `Notifier.receive` of 10,000 firing alerts (1,000 groups by alertname × 10
 *   instances), what an evaluation round pays to hand its alerts over;
 * - deliver: with `group_wait: 0s`, time from `receive` until a local webhook has every one of
 *   the 1,000 group notifications;
 * - alertmanager: `AlertmanagerClient.send` of 10,000 alerts (returns at once) and the time until
 *   a local HTTP sink has acknowledged every batch of 64.
 */
import { createServer } from 'node:http';
import { cpus, totalmem } from 'node:os';
import { pino } from 'pino';
import { AlertmanagerClient, Notifier, parseNotifyConfig, type NotifyAlert } from '../src/obs/notify/index.js';
import { median } from './lib/stats.js';

const GROUPS = 1000;
const PER_GROUP = 10;

async function sink(onBody: (body: string) => void): Promise<{ url: string; close: () => Promise<void> }> {
  const server = createServer((req, res) => {
    let data = '';
    req.setEncoding('utf8');
    req.on('data', (d: string) => (data += d));
    req.on('end', () => {
      onBody(data);
      res.end('ok');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const addr = server.address();
  const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
  return { url: `http://127.0.0.1:${port}`, close: () => new Promise<void>((r) => server.close(() => r())) };
}

function alerts(run: number): NotifyAlert[] {
  const startsAt = new Date().toISOString();
  const out: NotifyAlert[] = [];
  for (let g = 0; g < GROUPS; g++) {
    for (let i = 0; i < PER_GROUP; i++) out.push({ labels: { alertname: `Rule${g}`, instance: `host-${i}:9100`, job: 'node', run: String(run), severity: 'page' }, annotations: { summary: `rule ${g} on host ${i}` }, startsAt });
  }
  return out;
}

async function main(): Promise<void> {
  const runsArg = process.argv.indexOf('--runs');
  const runs = runsArg > 0 ? Number(process.argv[runsArg + 1]) : 3;
  const logger = pino({ level: 'silent' });
  console.log(`machine: ${cpus().length} × ${cpus()[0]?.model ?? '?'}, ${Math.round(totalmem() / 2 ** 30)} GiB, node ${process.version}`);
  const receiveMs: number[] = [];
  const deliverMs: number[] = [];
  const amSendMs: number[] = [];
  const amDrainMs: number[] = [];
  for (let run = 0; run < runs; run++) {
    let got = 0;
    let done: () => void = () => {};
    const all = new Promise<void>((r) => (done = r));
    const hook = await sink(() => {
      if (++got === GROUPS) done();
    });
    const cfg = parseNotifyConfig(`route: {receiver: hook, group_by: [alertname], group_wait: 0s, group_interval: 1m}\nreceivers: [{name: hook, webhook_configs: [{url: '${hook.url}/hook'}]}]`);
    const n = new Notifier({ config: cfg, logger });
    const batch = alerts(run);
    const t0 = performance.now();
    n.receive(batch);
    const t1 = performance.now();
    await all;
    const t2 = performance.now();
    receiveMs.push(t1 - t0);
    deliverMs.push(t2 - t0);
    await n.stop();
    await hook.close();

    let acked = 0;
    let drained: () => void = () => {};
    const allAcked = new Promise<void>((r) => (drained = r));
    const am = await sink((body) => {
      acked += (JSON.parse(body) as unknown[]).length;
      if (acked === GROUPS * PER_GROUP) drained();
    });
    const client = new AlertmanagerClient({ urls: [am.url], logger });
    const s0 = performance.now();
    client.send(batch);
    const s1 = performance.now();
    await allAcked;
    const s2 = performance.now();
    amSendMs.push(s1 - s0);
    amDrainMs.push(s2 - s0);
    await client.stop();
    await am.close();
  }
  const f = (xs: number[]): string => `median ${median(xs).toFixed(1)} ms (min ${Math.min(...xs).toFixed(1)}, max ${Math.max(...xs).toFixed(1)})`;
  console.log(`notifier receive of ${GROUPS * PER_GROUP} alerts:           ${f(receiveMs)}`);
  console.log(`notifier receive → ${GROUPS} webhooks delivered:    ${f(deliverMs)}`);
  console.log(`alertmanager client send of ${GROUPS * PER_GROUP} alerts:   ${f(amSendMs)}`);
  console.log(`alertmanager client send → all batches acked: ${f(amDrainMs)}`);
}

await main();
