/**
 * Leader election: candidates campaign with a value (their address); the first leads, the others
 * wait in FIFO order; observers see every change of leader once.
 */
import { createClient } from '../client/index.js';

const client = createClient({ endpoint: process.env.BEACON_ENDPOINT ?? 'http://127.0.0.1:7379', token: process.env.BEACON_TOKEN });
const name = `examples/election-${Date.now().toString(36)}`;

const observation = client.election(name).observe();
const observed = (async () => {
  let n = 0;
  for await (const leader of observation) {
    console.log(`observed leader: ${leader.text} (fencing token ${leader.fencingToken})`);
    if (++n === 3) observation.stop();
  }
})();

const s1 = await client.session({ ttl: 10 });
const s2 = await client.session({ ttl: 10 });
const e1 = s1.election(name);
const e2 = s2.election(name);

await e1.campaign('scheduler-1:8080');
console.log(`scheduler-1 leads: ${e1.isLeader}`);
const e2Wins = e2.campaign('scheduler-2:8080'); // waits behind scheduler-1

await e1.proclaim('scheduler-1:9090'); // a new value, only while still the leader
await new Promise((r) => setTimeout(r, 100));
await e1.resign(); // or: s1.close(), or the process dies and its lease expires
await e2Wins;
console.log(`scheduler-2 leads: ${e2.isLeader}; current leader ${(await client.election(name).leader())?.text}`);

await observed;
await s1.close();
await s2.close();
client.close();
