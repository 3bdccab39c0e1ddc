/**
 * Several endpoints with failover, retries and a circuit breaker. The first endpoint here has
 * nothing listening, so requests fail over to the second and stick to it; `/readyz` health
 * checks bring the first back once it answers.
 */
import { createServer } from 'node:net';
import { createClient } from '../client/index.js';

// A port with nothing listening on it, standing in for a node that is down.
const probe = createServer();
await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
const addr = probe.address();
const deadPort = typeof addr === 'object' && addr !== null ? addr.port : 1;
await new Promise<void>((r) => probe.close(() => r()));
const dead = `http://127.0.0.1:${deadPort}`;
const live = process.env.BEACON_ENDPOINT ?? 'http://127.0.0.1:7379';

const client = createClient({
  endpoints: [dead, live],
  token: process.env.BEACON_TOKEN, // a node with authentication: BEACON_TOKEN=$(npx beacon token) or an API key
  timeoutMs: 2000, // per attempt; each call may pass its own timeoutMs
  retry: { retries: 2, baseDelayMs: 100, maxDelayMs: 2000 }, // full jitter; idempotent calls only
  circuitBreaker: { failureThreshold: 0.5, windowMs: 10_000, minRequests: 10, openMs: 30_000 }, // the seeds' numbers
  onEndpointEvent: (e) => console.log(`endpoint ${e.url === dead ? 'dead' : 'live'} is ${e.type}`),
});

const key = `examples/failover-${Date.now().toString(36)}`;
await client.put(key, 'v'); // a refused connection never reached a node: safe to send elsewhere, even a write
console.log(`read back: ${(await client.get(key, { timeoutMs: 500 })).kv.text}`);
for (const s of client.endpointStatus()) {
  console.log(`${s.url === dead ? 'dead' : 'live'}: healthy=${s.healthy} breaker=${s.breaker} current=${s.current}`);
}
await client.delete(key);
client.close();
