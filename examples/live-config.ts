/**
 * A live config object: every key under a prefix, parsed as JSON, validated by a JSON Schema,
 * kept current by a watch, with a last-known-good file for starting while the server is down.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient } from '../client/index.js';

interface AppConfig {
  limits: { rps: number };
  mode: string;
}

const client = createClient({ endpoint: process.env.BEACON_ENDPOINT ?? 'http://127.0.0.1:7379', token: process.env.BEACON_TOKEN });
const prefix = `examples/config-${Date.now().toString(36)}/`;
const dir = mkdtempSync(join(tmpdir(), 'beacon-example-'));

await client.put(`${prefix}limits`, JSON.stringify({ rps: 100 }));
await client.put(`${prefix}mode`, 'normal');

const config = await client.config<AppConfig>(prefix, {
  schema: {
    type: 'object',
    required: ['limits', 'mode'],
    properties: { limits: { type: 'object', properties: { rps: { type: 'integer', minimum: 1 } } }, mode: { enum: ['normal', 'degraded'] } },
  },
  lastKnownGoodFile: join(dir, 'app-config.json'),
});
console.log(`loaded: rps=${config.value.limits.rps} mode=${config.value.mode} stale=${config.stale}`);

const changed = new Promise<void>((resolve) =>
  config.on('change', ({ value, changedKeys }) => {
    console.log(`changed ${changedKeys.join(',')}: rps=${value.limits.rps} mode=${value.mode}`);
    resolve();
  }),
);
const rejected = new Promise<void>((resolve) =>
  config.on('invalid', ({ errors }) => {
    console.log(`rejected an invalid update: ${errors.join('; ')}`);
    resolve();
  }),
);

await client.put(`${prefix}mode`, 'panic'); // not in the enum: the config keeps its last valid value
await rejected;
await client.put(`${prefix}mode`, 'degraded');
await changed;
await config.flushed(); // the last-known-good file now holds the latest valid state
console.log(`now: mode=${config.value.mode} at revision ${config.revision}`);

config.close();
await client.delete(prefix, { prefix: true });
client.close();
rmSync(dir, { recursive: true, force: true });
