/**
 * A distributed lock held with a session: FIFO waiters, fencing tokens, timeouts; and sequential
 * keys. A session's lease is kept alive in the background; if the process dies, the lease
 * expires after its TTL and the lock passes to the next waiter.
 */
import { ConflictError, createClient } from '../client/index.js';

const client = createClient({ endpoint: process.env.BEACON_ENDPOINT ?? 'http://127.0.0.1:7379', token: process.env.BEACON_TOKEN });
const name = `examples/lock-${Date.now().toString(36)}`;

const alice = await client.session({ ttl: 10 });
const bob = await client.session({ ttl: 10 });
const aliceLock = alice.mutex(name);
const bobLock = bob.mutex(name);

const first = await aliceLock.lock();
console.log(`alice holds ${name} with fencing token ${first.fencingToken}`);

try {
  await bobLock.lock({ timeoutMs: 1000 });
} catch (err) {
  if (!(err instanceof ConflictError)) throw err;
  console.log(`bob gave up after 1000 ms (holder: ${err.details?.holder === aliceLock.key ? 'alice' : 'someone else'})`);
}

const bobWaits = bobLock.lock(); // queued behind alice
await aliceLock.unlock();
const second = await bobWaits;
console.log(`bob holds it now, fencing token ${second.fencingToken} > ${first.fencingToken}: ${second.fencingToken > first.fencingToken}`);
await bobLock.unlock();

// Sequential keys: ZooKeeper-style prefix/<zero-padded counter>, optionally ephemeral.
const job1 = await client.createSequential(`${name}-queue`, 'build 1');
const job2 = await client.createSequential(`${name}-queue`, 'build 2', { lease: bob.lease });
console.log(`queued ${job1.key.slice(name.length + 7)} and ${job2.key.slice(name.length + 7)}`);

await alice.close();
await bob.close(); // revokes bob's lease: job2, attached to it, is deleted too
console.log(`left in the queue: ${(await client.range(`${name}-queue/`)).count}`);
await client.delete(`${name}-queue/`, { prefix: true });
client.close();
