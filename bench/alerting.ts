/**
 * alerting: the alert engine's targets (issue 13; seed 003 "alert evaluation latency < 5 s").
 *
 * 1. Evaluation round: 1,000 alerting rules (10 groups × 100, every 15 s) over 10,000 series
 *    (`bench_requests_total`, 10 series per rule, 15 s samples for the last 10 minutes, pushed on
 *    every 15 s while measuring). Reports the round time (sum of the 10 groups' evaluation times
 *    from `/api/v1/rules`, median over rounds) and the node's CPU over the window (cores, from
 *    /proc/<pid>/stat) — target ≤ 5 s and below one core.
 * 2. Notification latency: a rule with `for: 0` in a 15 s group and the built-in notifier posting
 *    to a webhook here (group_wait 0); a sample crossing the threshold is pushed at t0 and the time
 *    to the webhook's POST is measured, several times — target ≤ one interval + 1 s (16 s).
 *
 * Run: `node dist/bench/alerting.js [--rounds 4] [--trials 5]`. Prints medians; never fails on a time.
 */
import { readFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatMachine, machineInfo } from './lib/machine.js';
import { ROOT, killLiveChildren, spawnBeacon } from './lib/proc.js';
import { median } from './lib/stats.js';

const arg = (name: string, def: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : def;
};
const ROUNDS = arg('rounds', 4);
const TRIALS = arg('trials', 5);
const RULES = 1000;
const GROUPS = 10;
const SERIES_PER_RULE = 10;
const STEP_MS = 15_000;

function log(msg: string): void {
  process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}

/** utime + stime of a process in seconds (/proc/<pid>/stat fields 14 and 15, in clock ticks of 1/100 s). */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

function ruleFile(): string {
  let out = 'groups:\n';
  for (let g = 0; g < GROUPS; g++) {
    out += `  - name: g${g}\n    interval: 15s\n    rules:\n`;
    for (let r = 0; r < RULES / GROUPS; r++) {
      const id = g * (RULES / GROUPS) + r;
      out += `      - alert: Rule${id}\n        expr: sum by (rule) (rate(bench_requests_total{rule="r${id}"}[5m])) > 1000\n        for: 5m\n        labels: {severity: warning}\n        annotations: {summary: 'rule ${id} at {{ $value }}'}\n`;
    }
  }
  return out;
}

/** Prometheus text for every series at time `t` (ms): counters growing 1/s. */
function exposition(t: number): string {
  const lines: string[] = [];
  for (let r = 0; r < RULES; r++) {
    for (let s = 0; s < SERIES_PER_RULE; s++) lines.push(`bench_requests_total{rule="r${r}",instance="i${s}"} ${Math.floor(t / 1000)} ${t}`);
  }
  return `${lines.join('\n')}\n`;
}

async function push(url: string, body: string): Promise<void> {
  const res = await fetch(`${url}/v1/metrics`, { method: 'POST', body, headers: { 'content-type': 'text/plain; version=0.0.4' } });
  if (res.status !== 200) throw new Error(`push answered ${res.status}: ${await res.text()}`);
}

async function evaluationRound(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'beacon-bench-alerting-'));
  const rules = join(dir, 'bench.yml');
  writeFileSync(rules, ruleFile());
  const node = await spawnBeacon(join(dir, 'data'), ['--rules', rules, '--no-default-rules', '--resp-port', 'off', '--max-series-per-push', '20000']);
  try {
    const start = Date.now() - 10 * 60_000;
    log(`pushing 10 minutes of ${RULES * SERIES_PER_RULE} series`);
    for (let t = start; t <= Date.now(); t += STEP_MS) await push(node.url, exposition(t));
    const pusher = setInterval(() => void push(node.url, exposition(Date.now())).catch(() => undefined), STEP_MS);
    try {
      // Let every group evaluate once, then measure rounds.
      await new Promise((r) => setTimeout(r, STEP_MS + 1000));
      const rounds: number[] = [];
      const cpu0 = cpuSeconds(node.pid);
      const t0 = performance.now();
      for (let i = 0; i < ROUNDS; i++) {
        await new Promise((r) => setTimeout(r, STEP_MS));
        const res = (await (await fetch(`${node.url}/api/v1/rules`)).json()) as { data: { groups: { evaluationTime: number; rules: { health: string }[] }[] } };
        const sum = res.data.groups.reduce((n, g) => n + g.evaluationTime, 0);
        const bad = res.data.groups.reduce((n, g) => n + g.rules.filter((r) => r.health !== 'ok').length, 0);
        rounds.push(sum);
        log(`round ${i + 1}: ${sum.toFixed(3)} s over ${res.data.groups.length} groups${bad > 0 ? `, ${bad} rules not ok` : ''}`);
      }
      const cores = (cpuSeconds(node.pid) - cpu0) / ((performance.now() - t0) / 1000);
      console.log(`evaluation round, 1,000 rules over 10,000 series: median ${median(rounds).toFixed(3)} s (min ${Math.min(...rounds).toFixed(3)}, max ${Math.max(...rounds).toFixed(3)}); target ≤ 5 s`);
      console.log(`node CPU while evaluating and ingesting: ${cores.toFixed(2)} cores; target < 1`);
    } finally {
      clearInterval(pusher);
    }
  } finally {
    await node.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function notificationLatency(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'beacon-bench-alerting-'));
  let arrived: (() => void) | undefined;
  const hook = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      if (body.includes('"status":"firing"')) arrived?.();
      res.end();
    });
  });
  await new Promise<void>((r) => hook.listen(0, '127.0.0.1', r));
  const port = (hook.address() as { port: number }).port;
  writeFileSync(join(dir, 'rules.yml'), 'groups:\n  - name: latency\n    interval: 15s\n    rules:\n      - alert: Crossed\n        expr: last_over_time(bench_gauge[1m]) > 100\n');
  writeFileSync(
    join(dir, 'notify.yml'),
    `route:\n  receiver: hook\n  group_by: ['...']\n  group_wait: 0s\n  group_interval: 1s\n  repeat_interval: 1h\nreceivers:\n  - name: hook\n    webhook_configs:\n      - url: http://127.0.0.1:${port}/\n        send_resolved: false\n`,
  );
  const node = await spawnBeacon(join(dir, 'data'), ['--rules', join(dir, 'rules.yml'), '--notify-config', join(dir, 'notify.yml'), '--no-default-rules', '--resp-port', 'off']);
  const latencies: number[] = [];
  try {
    for (let i = 0; i < TRIALS; i++) {
      await push(node.url, `bench_gauge 0 ${Date.now()}\n`);
      // Wait out a whole interval low, so the next crossing is seen fresh (the alert resolved).
      await new Promise((r) => setTimeout(r, STEP_MS + 2000 + Math.random() * STEP_MS));
      const got = new Promise<void>((r) => (arrived = r));
      const t0 = Date.now();
      await push(node.url, `bench_gauge 500 ${t0}\n`);
      await got;
      latencies.push((Date.now() - t0) / 1000);
      log(`trial ${i + 1}: webhook ${latencies.at(-1)?.toFixed(2)} s after the push`);
    }
    console.log(`pushed sample crossing the threshold → webhook: median ${median(latencies).toFixed(2)} s (min ${Math.min(...latencies).toFixed(2)}, max ${Math.max(...latencies).toFixed(2)}); target ≤ 16 s (interval 15 s + 1 s)`);
  } finally {
    await node.stop();
    await new Promise<void>((r) => hook.close(() => r()));
    rmSync(dir, { recursive: true, force: true });
  }
}

try {
  console.log(formatMachine(machineInfo(tmpdir(), ROOT)));
  await evaluationRound();
  await notificationLatency();
} finally {
  killLiveChildren();
}
