// Endpoint failover, retries and the circuit breaker through the SDK against real nodes that stop and start.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { startTestNode, tempDir } from '../helpers/node.js';
import { UnavailableError, createClient, type BeaconClient } from '../../client/index.js';
import { freePort, until } from './sdk-helpers.js';

/** A node that is always shutting down: answers every request `503 unavailable`, counting them. */
async function unavailableServer(): Promise<{ url: string; requests: string[]; close: () => Promise<void> }> {
  const requests: string[] = [];
  const server: Server = createServer((req, res) => {
    requests.push(`${req.method} ${req.url}`);
    req.resume();
    res.writeHead(503, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ error: { code: 'unavailable', message: 'the node is shutting down' } }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

function isUnavailable(err: unknown): boolean {
  return err instanceof UnavailableError;
}

describe('SDK resilience', () => {
  it('fails over from an endpoint that refuses connections, for reads and writes alike, and sticks to the one that works', async () => {
    const node = await startTestNode();
    const dead = `http://127.0.0.1:${await freePort()}`;
    const client = createClient({ endpoints: [dead, node.url], healthCheck: false });
    try {
      const put = await client.put('fo/k', 'v'); // never reached the dead node: safe to send elsewhere
      assert.ok(put.revision > 0);
      assert.equal((await client.get('fo/k')).kv.text, 'v');
      assert.equal(client.endpoint, node.url, 'the working endpoint became current');
      const status = client.endpointStatus();
      assert.deepEqual(
        status.map((s) => [s.url, s.healthy, s.current]),
        [
          [dead, false, false],
          [node.url, true, true],
        ],
      );
    } finally {
      client.close();
      await node.cleanup();
    }
  });

  it('retries idempotent calls with back-off, never a put or txn unless the caller opts in', async () => {
    const srv = await unavailableServer();
    const client = createClient({ endpoint: srv.url, healthCheck: false, circuitBreaker: false, retry: { retries: 2, baseDelayMs: 20, maxDelayMs: 50 } });
    try {
      await assert.rejects(client.get('k'), isUnavailable);
      assert.equal(srv.requests.length, 3, 'a GET: first attempt + 2 retries');
      srv.requests.length = 0;
      await assert.rejects(client.put('k', 'v'), isUnavailable);
      assert.deepEqual(srv.requests, ['PUT /v1/kv/k'], 'a put that may have been applied is not sent again');
      srv.requests.length = 0;
      await assert.rejects(client.txn().then().commit(), isUnavailable);
      assert.equal(srv.requests.length, 1, 'nor a txn');
      srv.requests.length = 0;
      await assert.rejects(client.put('k', 'v', { retry: true }), isUnavailable);
      assert.equal(srv.requests.length, 3, 'a put the caller declared safe to repeat is retried');
      srv.requests.length = 0;
      await assert.rejects(client.lease.keepAlive(7), isUnavailable);
      assert.equal(srv.requests.length, 3, 'a lease keep-alive is idempotent');
      srv.requests.length = 0;
      await assert.rejects(client.get('k', { timeoutMs: 1000 }), isUnavailable);
      await assert.rejects(createClient({ endpoint: srv.url, retry: false, healthCheck: false }).status(), isUnavailable);
      assert.equal(srv.requests.length, 4, 'retry: false sends once');
    } finally {
      client.close();
      await srv.close();
    }
  });

  it('the circuit breaker opens on a stopped server, fails fast while open, half-opens on schedule with one probe, and closes when the server is back', async () => {
    const tmp = tempDir();
    let node = await startTestNode({ dataDir: tmp.dir });
    const port = node.port;
    const openMs = 600;
    const events: string[] = [];
    let fetches = 0; // the real fetch, counted, to see which requests reach the network
    const client: BeaconClient = createClient({
      endpoint: node.url,
      fetch: (input, init) => {
        fetches++;
        return fetch(input, init);
      },
      retry: false,
      healthCheck: false, // the schedule alone decides here
      circuitBreaker: { minRequests: 4, failureThreshold: 0.5, windowMs: 5000, openMs },
      onEndpointEvent: (e) => events.push(e.type),
    });
    try {
      await client.put('cb/k', 'v');
      for (let i = 0; i < 2; i++) await client.get('cb/k'); // with the put: 3 successes
      await node.stop();

      // Failures in the window: 3 successes + 3 failures = 50 % of 6 requests: open.
      let lastFailureStarted = 0; // the breaker opens during the third failure: after this instant
      for (let i = 0; i < 3; i++) {
        lastFailureStarted = Date.now();
        await assert.rejects(client.get('cb/k'), (err: unknown) => isUnavailable(err) && (err as UnavailableError).details?.reason !== 'circuit_open');
      }
      assert.equal(client.endpointStatus()[0]?.breaker, 'open');
      const openedAt = Date.now(); // ... and before this one
      const before = fetches;
      await assert.rejects(client.get('cb/k'), (err: unknown) => isUnavailable(err) && (err as UnavailableError).details?.reason === 'circuit_open');
      assert.equal(fetches, before, 'an open breaker fails fast, without a connection attempt');

      // After openMs: half-open, one probe; the server is still down, so it opens again.
      await until(() => client.endpointStatus()[0]?.breaker === 'half-open', 'half-open', 3000, 5);
      const halfOpenAt = Date.now();
      assert.ok(halfOpenAt - lastFailureStarted >= openMs - 2, `half-opened ${halfOpenAt - lastFailureStarted} ms after the failure that opened it began`);
      assert.ok(halfOpenAt - openedAt < openMs + 500, `half-opened ${halfOpenAt - openedAt} ms after it was seen open`);
      const probeFrom = fetches;
      await assert.rejects(client.get('cb/k'), (err: unknown) => isUnavailable(err) && /refused/.test((err as Error).message));
      assert.equal(fetches, probeFrom + 1, 'exactly one probe');
      assert.equal(client.endpointStatus()[0]?.breaker, 'open', 'the failed probe opened it again');
      await assert.rejects(client.get('cb/k'), (err: unknown) => (err as UnavailableError).details?.reason === 'circuit_open');

      // The server returns; the next probe (after openMs) succeeds and closes the breaker.
      node = await startTestNode({ dataDir: tmp.dir, httpPort: port });
      await until(() => client.endpointStatus()[0]?.breaker === 'half-open', 'half-open again', 3000, 5);
      assert.equal((await client.get('cb/k')).kv.text, 'v');
      assert.equal(client.endpointStatus()[0]?.breaker, 'closed');
      assert.deepEqual(
        events.filter((e) => e !== 'down' && e !== 'up'),
        ['open', 'half-open', 'open', 'half-open', 'closed'],
      );
    } finally {
      client.close();
      await node.stop();
      tmp.cleanup();
    }
  });

  it('a passing /readyz health check half-opens an open breaker early, so a short outage does not fence the node off for 30 s', async () => {
    const tmp = tempDir();
    let node = await startTestNode({ dataDir: tmp.dir });
    const port = node.port;
    const client = createClient({ endpoint: node.url, retry: false, healthCheck: { intervalMs: 50 }, circuitBreaker: { minRequests: 3 } });
    try {
      await client.put('hc/k', 'v');
      await node.stop();
      for (let i = 0; i < 3; i++) await assert.rejects(client.get('hc/k'), isUnavailable);
      assert.equal(client.endpointStatus()[0]?.breaker, 'open', 'the default open period is 30 s');
      node = await startTestNode({ dataDir: tmp.dir, httpPort: port });
      await until(() => client.endpointStatus()[0]?.healthy === true, 'the health check to see the node ready', 3000);
      assert.equal((await client.get('hc/k')).kv.text, 'v', 'served well before 30 s');
      assert.equal(client.endpointStatus()[0]?.breaker, 'closed');
    } finally {
      client.close();
      await node.stop();
      tmp.cleanup();
    }
  });

  it('a session whose keep-alives cannot reach any node for longer than its TTL emits lost', async () => {
    const node = await startTestNode();
    const client = createClient({ endpoint: node.url, retry: { retries: 0 }, healthCheck: false });
    try {
      const session = await client.session({ ttl: 1, keepAliveIntervalMs: 100 });
      const renewed = new Promise<void>((resolve) => session.once('keepalive', () => resolve()));
      await renewed;
      const lost = new Promise<Error>((resolve) => session.once('lost', resolve));
      const stoppedAt = Date.now();
      await node.stop();
      const err = await lost;
      const took = Date.now() - stoppedAt;
      assert.ok(err instanceof UnavailableError, String(err));
      assert.ok(took >= 800 && took <= 2500, `lost ${took} ms after the node stopped (TTL 1 s)`);
      assert.equal(session.signal.aborted, true);
    } finally {
      client.close();
      await node.cleanup();
    }
  });

  it('a lock waiter keeps its place in the queue across a server restart', async () => {
    const tmp = tempDir();
    let node = await startTestNode({ dataDir: tmp.dir });
    const port = node.port;
    const client = createClient({ endpoint: node.url, healthCheck: { intervalMs: 50 } });
    try {
      const holder = (await client.session({ ttl: 30 })).mutex('restart/lock');
      const waiter = (await client.session({ ttl: 30 })).mutex('restart/lock');
      await holder.lock();
      let acquired = false;
      const waiting = waiter.lock({ timeoutMs: 15_000 }).then((l) => {
        acquired = true;
        return l;
      });
      await until(async () => (await client.lockState('restart/lock')).waiters.length === 1, 'the waiter queued');
      const place = (await client.lockState('restart/lock')).waiters[0]?.createRevision;
      await node.stop();
      await new Promise((r) => setTimeout(r, 300));
      node = await startTestNode({ dataDir: tmp.dir, httpPort: port });
      await new Promise((r) => setTimeout(r, 500));
      assert.equal(acquired, false, 'still waiting behind the holder after the restart');
      assert.equal(await holder.unlock(), true);
      const lock = await waiting;
      assert.equal(lock.fencingToken, place, 'acquired with the key it queued with: its place was kept');
      await waiter.session.close();
      await holder.session.close();
    } finally {
      client.close();
      await node.stop();
      tmp.cleanup();
    }
  });
});
