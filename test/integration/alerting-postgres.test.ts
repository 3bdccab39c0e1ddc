/**
 * Alerting in postgres mode (issue 13): two `beacon serve` processes on one real PostgreSQL. One
 * node evaluates; every node shows the same alerts; SIGKILL of the evaluating node while an alert
 * is pending: the other node takes over, the alert fires on time (its `for` counted from when it
 * first went pending), once, and resolves once.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { http, spawnServer, tempDir, type ServerProcess } from '../helpers/node.js';
import { eventually, startPostgres, type PostgresServer } from '../helpers/postgres.js';

const RULES = `groups:
  - name: failover
    interval: 1s
    rules:
      - alert: ValueHigh
        expr: last_over_time(fo_value[1m]) > 1
        for: 8s
        labels:
          severity: page
`;

interface Received {
  status: string;
  alerts: { status: string; labels: Record<string, string> }[];
}

describe('alerting on two nodes sharing PostgreSQL', () => {
  let pg: PostgresServer;
  const nodes: ServerProcess[] = [];
  const dirs: (() => void)[] = [];
  let webhook: Server;
  const received: Received[] = [];

  before(async () => {
    pg = await startPostgres();
    const url = await pg.createDatabase();
    webhook = createServer((req, res) => {
      let body = '';
      req.on('data', (d: Buffer) => (body += d.toString()));
      req.on('end', () => {
        try {
          received.push(JSON.parse(body) as Received);
        } catch {
          // not JSON: counted as nothing
        }
        res.end('ok');
      });
    });
    await new Promise<void>((r) => webhook.listen(0, '127.0.0.1', r));
    const hookPort = (webhook.address() as { port: number }).port;
    const cfg = tempDir();
    dirs.push(cfg.cleanup);
    const notifyConfig = join(cfg.dir, 'notify.yml');
    writeFileSync(
      notifyConfig,
      `route:\n  receiver: hook\n  group_by: [alertname]\n  group_wait: 0s\n  group_interval: 1s\n  repeat_interval: 1h\nreceivers:\n  - name: hook\n    webhook_configs:\n      - url: http://127.0.0.1:${hookPort}/hook\n        send_resolved: true\n`,
    );
    for (let i = 0; i < 2; i++) {
      const tmp = tempDir();
      dirs.push(tmp.cleanup);
      nodes.push(await spawnServer(['--backend', url, '--data-dir', tmp.dir, '--no-default-rules', '--notify-config', notifyConfig]));
    }
  });

  after(async () => {
    await Promise.all(nodes.map((n) => n.kill().catch(() => undefined)));
    await new Promise<void>((r) => webhook.close(() => r()));
    await pg.stop();
    for (const d of dirs) d();
  });

  async function push(value: number): Promise<void> {
    // Each node keeps the samples pushed to it; push to both so either can evaluate.
    for (const n of nodes) {
      if (n.child.exitCode !== null || n.child.signalCode !== null) continue;
      const res = await http(`${n.url}/v1/metrics`, { method: 'POST', body: { name: 'fo_value', value } });
      assert.equal(res.status, 200, JSON.stringify(res.body));
    }
  }

  async function alertOn(n: ServerProcess): Promise<{ state: string; activeAt: string; firedAt?: string } | undefined> {
    const res = await http(`${n.url}/v1/alerts`);
    return (res.body.alerts as { rule: string; state: string; activeAt: string; firedAt?: string }[] | undefined)?.find((a) => a.rule === 'ValueHigh');
  }

  async function evaluator(): Promise<ServerProcess> {
    let leader: string | undefined;
    await eventually('an expiry leader', async () => {
      const res = await http(`${nodes[0]?.url}/v1/cluster`);
      leader = (res.body.nodes as { url: string; expiryLeader: boolean }[] | undefined)?.find((x) => x.expiryLeader)?.url;
      return leader !== undefined;
    });
    const n = nodes.find((x) => x.url === leader);
    assert.ok(n, `leader ${leader} is one of ours`);
    return n;
  }

  it('fires once, on time, from the surviving node after the evaluating one is killed while pending, and resolves once', async () => {
    const put = await http(`${nodes[1]?.url}/v1/alerts/rules/failover`, { method: 'PUT', raw: RULES, headers: { 'content-type': 'application/yaml' } });
    assert.equal(put.status, 200, JSON.stringify(put.body));
    const first = await evaluator();
    const other = nodes.find((n) => n !== first) as ServerProcess;
    await push(5);
    let pending: { activeAt: string } | undefined;
    await eventually('pending on the evaluating node', async () => (pending = (await alertOn(first))?.state === 'pending' ? await alertOn(first) : undefined) !== undefined, 15_000);
    // The other node shows the same alert, from the state the evaluator saved.
    await eventually('the same pending alert on the other node', async () => (await alertOn(other))?.activeAt === pending?.activeAt, 10_000);
    await first.kill();
    const survivor = await evaluator();
    assert.equal(survivor, other);
    let firing: { state: string; activeAt: string; firedAt?: string } | undefined;
    await eventually('firing on the survivor', async () => (firing = await alertOn(other))?.state === 'firing', 30_000);
    assert.equal(firing?.activeAt, pending?.activeAt, 'the for timer carried on from the first node');
    // On time: `for` (8 s) after going pending, give or take the take-over (node TTL 5 s) and an interval.
    const late = Date.parse(firing?.firedAt ?? '') - Date.parse(pending?.activeAt ?? '');
    assert.ok(late >= 8000 && late < 8000 + 5000 + 3000, `fired ${late} ms after going pending`);
    await eventually('the firing notification', () => received.some((r) => r.status === 'firing'), 15_000);
    await push(0);
    await eventually('resolved on the survivor', async () => (await alertOn(other)) === undefined, 30_000);
    await eventually('the resolved notification', () => received.some((r) => r.status === 'resolved'), 15_000);
    await new Promise((r) => setTimeout(r, 3000)); // anything late or repeated would arrive now
    const firingCount = received.filter((r) => r.status === 'firing').length;
    const resolvedCount = received.filter((r) => r.status === 'resolved').length;
    assert.equal(firingCount, 1, JSON.stringify(received));
    assert.equal(resolvedCount, 1, JSON.stringify(received));
  });
});
