/**
 * Watch a prefix with an async iterator: every change once, in revision order, resumed across
 * reconnects. Run against a node: `BEACON_ENDPOINT=http://127.0.0.1:7379 node dist/examples/watch-config.js`.
 */
import { createClient } from '../client/index.js';

const client = createClient({ endpoint: process.env.BEACON_ENDPOINT ?? 'http://127.0.0.1:7379', token: process.env.BEACON_TOKEN });
const prefix = `examples/watch-${Date.now().toString(36)}/`;

// Start watching before writing, from the next revision; onStatus says when the watch is live.
let live!: () => void;
const ready = new Promise<void>((resolve) => (live = resolve));
const watch = client.watch(prefix, {
  prefix: true,
  prevKv: true,
  onStatus: (s) => {
    if (s.state === 'watching') live();
  },
});
await ready;

await client.put(`${prefix}color`, 'blue');
await client.put(`${prefix}color`, 'green');
await client.delete(`${prefix}color`);

let seen = 0;
for await (const ev of watch) {
  const was = ev.prevKv ? ` (was ${ev.prevKv.text})` : '';
  console.log(`${ev.type} ${ev.kv.key.slice(prefix.length)}${ev.type === 'put' ? `=${ev.kv.text}` : ''}${was} at revision ${ev.revision}`);
  if (++seen === 3) watch.stop(); // ends the loop
}
console.log(`last revision ${watch.lastRevision}`);
await client.delete(prefix, { prefix: true });
client.close();
