/**
 * Staged rollouts in PostgreSQL mode (issue 16): two `beacon serve` processes on one real
 * PostgreSQL. SDK clients connected to either node are counted by the status of both (adoption
 * is in a shared table), and a step promoted on one node is calibrated on the reports of the
 * clients of both. The driving node (the expiry leader) is killed during the first bake; the other
 * node continues the rollout from the stored state and completes it, and no step baked less
 * than the bake time (measured from the stored step start).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createClient, receivesCandidate, type LiveConfig, type Rollout } from '../../client/index.js';
import { http, spawnServer, tempDir, type ServerProcess } from '../helpers/node.js';
import { eventually, startPostgres, type PostgresServer } from '../helpers/postgres.js';

const BAKE_MS = 6000;

describe('rollouts on two nodes sharing PostgreSQL', () => {
  let pg: PostgresServer;
  const nodes: ServerProcess[] = [];
  const dirs: (() => void)[] = [];

  before(async () => {
    pg = await startPostgres();
    const url = await pg.createDatabase();
    for (let i = 0; i < 2; i++) {
      const tmp = tempDir();
      dirs.push(tmp.cleanup);
      nodes.push(await spawnServer(['--backend', url, '--data-dir', tmp.dir, '--no-default-rules']));
    }
  });

  after(async () => {
    await Promise.all(nodes.map((n) => n.kill().catch(() => undefined)));
    await pg.stop();
    for (const d of dirs) d();
  });

  async function leader(ask: ServerProcess): Promise<ServerProcess> {
    let url: string | undefined;
    await eventually('an expiry leader', async () => {
      const res = await http(`${ask.url}/v1/cluster`);
      url = (res.body.nodes as { url: string; expiryLeader: boolean }[] | undefined)?.find((x) => x.expiryLeader)?.url;
      return url !== undefined && nodes.some((n) => n.url === url && n.child.exitCode === null && n.child.signalCode === null);
    }, 20_000);
    const n = nodes.find((x) => x.url === url);
    assert.ok(n);
    return n;
  }

  it('counts the clients of both nodes in status and calibrates a step on their reports', async () => {
    const [a, b] = nodes as [ServerProcess, ServerProcess];
    assert.equal((await http(`${a.url}/v1/configs/fleet/flags`, { method: 'PUT', body: { value: { on: false } } })).status, 200);
    const start = await http(`${a.url}/v1/configs/fleet/flags/rollouts`, { method: 'POST', body: { value: { on: true }, steps: [10, 50, 100], bake: '1h', selector: 'region=eu' } });
    assert.equal(start.status, 200, JSON.stringify(start.body));
    // 50 SDK clients, half on each node: 40 in eu (selected), 10 in us.
    const ids = Array.from({ length: 50 }, (_, i) => ({ id: `host-${i}`, labels: { region: i % 5 === 4 ? 'us' : 'eu' } }));
    const sdks = [createClient({ endpoint: a.url }), createClient({ endpoint: b.url })];
    const lives: LiveConfig[] = [];
    try {
      for (const [i, identity] of ids.entries()) lives.push(await (sdks[i % 2] as (typeof sdks)[number]).config('fleet/', { identity, reportIntervalMs: 200 }));
      const on = (r: Rollout): number => ids.filter((i) => receivesCandidate(r, i)).length;
      const adoptionOn = async (n: ServerProcess, candidate: number): Promise<boolean> => {
        const res = await http(`${n.url}/v1/configs/fleet/flags/rollouts/current`);
        const ad = res.body.adoption as Record<string, number>;
        return ad.candidate === candidate && ad.candidate + (ad.v1 ?? 0) === ids.length;
      };
      const first = start.body as Rollout;
      // Each node's status counts all 50 clients, though each node saw only half of the reports.
      await eventually('adoption of all clients on node A', () => adoptionOn(a, on(first)), 30_000);
      await eventually('adoption of all clients on node B', () => adoptionOn(b, on(first)), 30_000);
      // Promoted on node B: the threshold is the quantile of all 40 selected clients' buckets, reported to either node.
      const promoted = await http(`${b.url}/v1/configs/fleet/flags/rollouts/current/promote`, { method: 'POST', body: {} });
      assert.equal(promoted.status, 200, JSON.stringify(promoted.body));
      const r = promoted.body as Rollout;
      assert.equal(r.share, 50);
      assert.match(r.history.at(-1)?.cause ?? '', /calibrated on 40 selected clients' reports/);
      const selected = ids.filter((i) => i.labels.region === 'eu');
      const inside = selected.filter((i) => receivesCandidate(r, i)).length;
      assert.ok(Math.abs(inside - 20) <= 1, `${inside} of 40 selected clients at 50 %`);
      assert.equal(on(r), inside, 'no client outside the selector');
      await eventually('the live configs follow the step', () => lives.filter((l) => (l.value.flags as { on: boolean }).on).length === inside, 30_000);
      await eventually('adoption of the new step on node A', () => adoptionOn(a, inside), 30_000);
      await eventually('adoption of the new step on node B', () => adoptionOn(b, inside), 30_000);
      assert.equal((await http(`${a.url}/v1/configs/fleet/flags/rollouts/current/abort`, { method: 'POST', body: {} })).status, 200);
    } finally {
      for (const l of lives) l.close();
      for (const c of sdks) c.close();
    }
  });

  it('continues and completes on the surviving node after the driving node is killed during a bake', async () => {
    const first = await leader(nodes[0] as ServerProcess);
    const other = nodes.find((n) => n !== first) as ServerProcess;
    assert.equal((await http(`${other.url}/v1/configs/svc/cfg`, { method: 'PUT', body: { value: { v: 1 } } })).status, 200);
    // Started through the node that will survive; the driver runs on the other.
    const start = await http(`${other.url}/v1/configs/svc/cfg/rollouts`, { method: 'POST', body: { value: { v: 2 }, steps: [50, 100], bake: BAKE_MS } });
    assert.equal(start.status, 200, JSON.stringify(start.body));
    await new Promise((r) => setTimeout(r, 1000));
    await first.kill();
    assert.equal(await leader(other), other);
    let done: { state: string; history: { at: string; to: string; share: number; by: string }[]; completed_version?: string } | undefined;
    await eventually('completion on the survivor', async () => {
      const res = await http(`${other.url}/v1/configs/svc/cfg/rollouts/current`);
      done = res.body;
      return done?.state === 'completed';
    }, 60_000);
    const h = done?.history ?? [];
    assert.deepEqual(h.map((x) => [x.to, x.share]), [['running', 50], ['running', 100], ['completed', 100]]);
    const t = h.map((x) => Date.parse(x.at));
    assert.ok((t[1] as number) - (t[0] as number) >= BAKE_MS, 'the first bake was not shortened by the failover');
    assert.ok((t[2] as number) - (t[1] as number) >= BAKE_MS);
    assert.equal(done?.completed_version, 'v2');
    const cfg = await http(`${other.url}/v1/configs/svc/cfg`);
    assert.deepEqual(cfg.body.value, { v: 2 });
    assert.equal(cfg.body.version, 'v2');
  });
});
