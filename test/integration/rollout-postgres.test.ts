/**
 * Staged rollouts in PostgreSQL mode (issue 16): two `beacon serve` processes on one real
 * PostgreSQL. The driving node (the expiry leader) is killed during the first bake; the other
 * node continues the rollout from the stored state and completes it, and no step baked less
 * than the bake time (measured from the stored step start).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
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
