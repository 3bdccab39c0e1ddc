/**
 * A process of SDK clients for the rollout tests: `node rollout-worker.js ENDPOINT FROM COUNT`
 * opens COUNT live configs of `app/` with identities `instance-FROM…` (labels as in
 * rollout-processes.test.ts) and prints, on every change, one JSON line
 * `{"ready": true, "candidate": [ids on the candidate]}`.
 */
import { createClient, type LiveConfig } from '../../client/index.js';

const [endpoint, fromText, countText] = process.argv.slice(2);
const from = Number(fromText);
const count = Number(countText);
const client = createClient({ endpoint: endpoint as string });
const configs: [string, LiveConfig][] = [];

/** The labels of identity `i`: 70 % eu, 30 % us. */
export function labelsOf(i: number): Record<string, string> {
  return { region: i % 10 < 7 ? 'eu' : 'us' };
}

let last = '';
function print(): void {
  const candidate = configs.filter(([, c]) => (c.value.flags as { enabled: boolean }).enabled).map(([id]) => id);
  const line = JSON.stringify({ ready: configs.length === count, candidate });
  if (line === last) return;
  last = line;
  process.stdout.write(`${line}\n`);
}

for (let i = from; i < from + count; i++) {
  const id = `instance-${i}`;
  const c = await client.config('app/', { identity: { id, labels: labelsOf(i) }, reportIntervalMs: 500 });
  configs.push([id, c]);
  c.on('change', print);
}
print();
setInterval(print, 200);
process.on('SIGTERM', () => {
  client.close();
  process.exit(0);
});
