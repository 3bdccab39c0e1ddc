/**
 * Issue 9 finding 8: a waiting lock must not be granted on a nearly expired lease. The server
 * keeps a lease it granted for a blocking lock request alive while the request waits, refuses to
 * grant on a lease with less than the floor left (`lease_expiring`), and the SDK and the CLI keep
 * their lease alive while they wait, so the lock they get has (nearly) its whole TTL ahead.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createClient, type BeaconClient } from '../../client/index.js';
import { http, startTestNode } from '../helpers/node.js';
import { runCli } from '../e2e/cli-helpers.js';

type TestNode = Awaited<ReturnType<typeof startTestNode>>;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
/** The floor this node runs with: large, so the timing below has seconds of margin either side. */
const FLOOR_MS = 5000;

describe('hardening: locks are not granted on a nearly expired lease', () => {
  let node: TestNode;
  let client: BeaconClient;
  before(async () => {
    node = await startTestNode({ lockLeaseFloorMs: FLOOR_MS });
    client = createClient({ endpoint: node.url });
  });
  after(async () => {
    client.close();
    await node.cleanup();
  });

  /** Takes lock `name` with a 30 s server-granted lease; resolves with the lock key. */
  const hold = async (name: string): Promise<string> => {
    const res = await http(`${node.url}/v1/locks/${name}`, { method: 'POST', body: { ttl: 30 } });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    return res.body.key as string;
  };
  const release = async (key: string): Promise<void> => {
    assert.equal((await http(`${node.url}/v1/locks/${key}`, { method: 'DELETE' })).status, 200);
  };

  it('a lease the server granted for a waiting request is kept alive while it waits (wait of 2.5 × its TTL)', async () => {
    const key = await hold('f8/granted');
    const waiter = http(`${node.url}/v1/locks/f8/granted`, { method: 'POST', body: { ttl: 2, timeoutMs: 30_000 } });
    await sleep(5000);
    await release(key);
    const res = await waiter;
    assert.equal(res.status, 200, `the waiter's lease expired while it waited: ${JSON.stringify(res.body)}`);
    const lease = await http(`${node.url}/v1/leases/${res.body.lease}`);
    assert.equal(lease.status, 200);
    assert.ok(lease.body.ttl >= 1, `the lock came with ${lease.body.ttl}s of lease left`);
    await release(res.body.key);
  });

  it('a lease the client let run down is refused at grant with lease_expiring, and its waiting key withdrawn', async () => {
    const key = await hold('f8/floor');
    const granted = await http(`${node.url}/v1/leases`, { method: 'POST', body: { ttl: 10 } });
    const lease = granted.body.id as number;
    const started = Date.now();
    const waiter = http(`${node.url}/v1/locks/f8/floor`, { method: 'POST', body: { lease, timeoutMs: 30_000 } });
    // Release when the lease has about 2.5 s left: under the 5 s floor, well before it expires.
    await sleep(7500 - (Date.now() - started));
    await release(key);
    const res = await waiter;
    assert.equal(res.status, 409, `granted on a lease with ${res.body?.lease === lease ? 'seconds' : '?'} left: ${JSON.stringify(res.body)}`);
    assert.equal(res.body.error.code, 'conflict');
    assert.equal(res.body.error.details.reason, 'lease_expiring');
    assert.ok(res.body.error.details.remainingMs < FLOOR_MS);
    const state = await http(`${node.url}/v1/locks/f8/floor`);
    assert.equal(state.body.holder, null, 'the refused contender key was withdrawn');
    // Renewed, the same lease gets the lock.
    assert.equal((await http(`${node.url}/v1/leases/${lease}/keepalive`, { method: 'POST' })).status, 200);
    const again = await http(`${node.url}/v1/locks/f8/floor`, { method: 'POST', body: { lease, timeoutMs: 0 } });
    assert.equal(again.status, 200, JSON.stringify(again.body));
    await release(again.body.key);
  });

  it('an SDK session waiting 2.5 × its TTL gets the lock with its lease kept alive', async () => {
    const key = await hold('f8/sdk');
    const session = await client.session({ ttl: 2 });
    try {
      const locking = session.mutex('f8/sdk').lock({ timeoutMs: 30_000 });
      await sleep(5000);
      await release(key);
      const lock = await locking;
      assert.ok(session.alive);
      const info = await client.lease.timeToLive(lock.lease);
      assert.ok(info.ttl >= 1, `the lock came with ${info.ttl}s of lease left`);
    } finally {
      await session.close();
    }
  });

  it('`beacon lock --ttl 2` waiting 2.5 × its TTL runs its command under the lock', async () => {
    const key = await hold('f8/cli');
    const run = runCli(['--endpoint', node.url, 'lock', 'f8/cli', '--ttl', '2', '--', 'sh', '-c', 'echo "token $BEACON_FENCING_TOKEN"'], { timeoutMs: 30_000 });
    await sleep(5000);
    await release(key);
    const r = await run;
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /token \d+/);
  });
});
