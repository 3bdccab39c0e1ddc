// Live config through the SDK against a real node: near cache kept by a watch, schema validation,
// change events, the last-known-good file, and start-up while the server is down.
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { startTestNode, tempDir } from '../helpers/node.js';
import { Compare, Op, UnavailableError, createClient, type ConfigChange, type SafeParseSchema } from '../../client/index.js';
import { freePort, until, within } from './sdk-helpers.js';

interface AppConfig {
  db: { host: string; pool: number };
  color: string;
  [key: string]: unknown;
}

const SCHEMA = {
  type: 'object',
  required: ['db', 'color'],
  properties: {
    db: { type: 'object', required: ['host', 'pool'], properties: { host: { type: 'string' }, pool: { type: 'integer', minimum: 1 } } },
    color: { type: 'string' },
  },
};

function lkg(file: string): { revision: number; entries: Record<string, { value: string }> } {
  return JSON.parse(readFileSync(file, 'utf8')) as { revision: number; entries: Record<string, { value: string }> };
}

describe('SDK live config', () => {
  it('keeps a validated object current, emits changes once per revision, rejects invalid updates and writes the last-known-good file', async () => {
    const node = await startTestNode();
    const tmp = tempDir();
    const file = join(tmp.dir, 'state', 'app.lkg.json');
    const client = createClient({ endpoint: node.url });
    try {
      await client.put('app/db', JSON.stringify({ host: 'db-1', pool: 5 }));
      await client.put('app/color', 'blue');
      await client.put('other/x', '1');
      const cfg = await client.config<AppConfig>('app/', { schema: SCHEMA, lastKnownGoodFile: file });
      assert.deepEqual(cfg.value, { db: { host: 'db-1', pool: 5 }, color: 'blue' }, 'JSON values parsed, text kept as text, other prefixes left out');
      assert.equal(cfg.stale, false);
      assert.equal(cfg.source, 'server');
      await cfg.flushed();
      assert.equal(lkg(file).revision, cfg.revision);

      const changes: ConfigChange<AppConfig>[] = [];
      cfg.on('change', (c) => changes.push(c));
      const iterated: string[] = [];
      const iterating = (async () => {
        for await (const c of cfg.changes()) {
          iterated.push(c.value.color);
          if (c.value.color === 'green') return;
        }
      })();

      const r1 = await client.put('app/color', 'red');
      await until(() => cfg.value.color === 'red', 'the put to reach the config');
      assert.equal(cfg.revision, r1.revision);
      assert.deepEqual(changes.at(-1)?.changedKeys, ['color']);
      assert.equal(changes.at(-1)?.previous?.color, 'blue');

      // A txn touching two keys is one revision and one change.
      const before = changes.length;
      const tx = await client.txn().then(Op.put('app/db', '{"host":"db-2","pool":8}'), Op.put('app/color', 'green')).commit();
      await until(() => cfg.revision === tx.revision, 'the txn to reach the config');
      assert.equal(changes.length, before + 1, 'one change event for one revision');
      assert.deepEqual(changes.at(-1)?.changedKeys.sort(), ['color', 'db']);
      assert.deepEqual(cfg.value.db, { host: 'db-2', pool: 8 });
      await within(iterating, 2000, 'the async iterator of changes');
      assert.deepEqual(iterated, ['red', 'green']);

      // An update that breaks the schema is not applied and not saved.
      const invalid: string[][] = [];
      cfg.on('invalid', (e) => invalid.push(e.errors));
      await cfg.flushed();
      const savedBefore = lkg(file);
      const bad = await client.put('app/db', '{"host":"db-3","pool":0}');
      await until(() => invalid.length === 1, 'the invalid event');
      assert.match(invalid[0]?.join() ?? '', /pool/);
      assert.deepEqual(cfg.value.db, { host: 'db-2', pool: 8 }, 'the last valid value stays');
      assert.equal(cfg.get('db') !== undefined && (cfg.get('db') as { pool: number }).pool, 0, 'get() shows what the server has');
      await cfg.flushed();
      assert.deepEqual(lkg(file), savedBefore, 'the invalid state was not saved');

      // Fixing it applies again; a delete removes the key (and here breaks the schema: color is required).
      await client.put('app/db', '{"host":"db-3","pool":3}');
      await until(() => cfg.value.db.host === 'db-3', 'the fix to apply');
      await cfg.flushed();
      assert.ok(lkg(file).revision > bad.revision);
      assert.deepEqual(JSON.parse(lkg(file).entries.db?.value ?? '{}'), { host: 'db-3', pool: 3 });
      assert.deepEqual(readdirSync(join(tmp.dir, 'state')), ['app.lkg.json'], 'no temporary files left behind');
      await client.delete('app/color');
      await until(() => invalid.length === 2, 'deleting a required key is invalid too');
      assert.equal(cfg.value.color, 'green');
      assert.equal(cfg.get('color'), undefined);
      cfg.close();
    } finally {
      client.close();
      await node.cleanup();
      tmp.cleanup();
    }
  });

  it('validates with a zod-like safeParse schema and exposes its parsed data', async () => {
    const node = await startTestNode();
    const client = createClient({ endpoint: node.url });
    // The shape zod's safeParse has: { success, data } or { success: false, error: { issues } }.
    const schema: SafeParseSchema<{ limit: number }> = {
      safeParse: (input) => {
        const v = (input as { limit?: unknown }).limit;
        return typeof v === 'number' ? { success: true, data: { limit: v * 2 } } : { success: false, error: { issues: [{ path: ['limit'], message: 'Expected number' }] } };
      },
    };
    try {
      await client.put('z/limit', '21');
      const cfg = await client.config('z/', { schema });
      assert.deepEqual(cfg.value, { limit: 42 }, 'the schema output is the value');
      const invalid = new Promise<string[]>((resolve) => cfg.once('invalid', (e) => resolve(e.errors)));
      await client.put('z/limit', 'many');
      assert.deepEqual(await within(invalid, 3000, 'invalid event'), ['/limit Expected number']);
      assert.deepEqual(cfg.value, { limit: 42 });
      await assert.rejects(client.config('z/', { schema: { type: 'array' } }), /fails validation/);
    } finally {
      client.close();
      await node.cleanup();
    }
  });

  it('with the server down at start-up it loads the last-known-good file and says stale, then catches up when the server returns', async () => {
    const tmp = tempDir();
    const file = join(tmp.dir, 'lkg.json');
    let node = await startTestNode({ dataDir: join(tmp.dir, 'data') });
    const port = node.port;
    const endpoint = node.url;
    const seed = createClient({ endpoint });
    await seed.put('svc/flags', '{"darkMode":false}');
    await seed.put('svc/region', 'eu-west-1');
    const first = await seed.config('svc/', { lastKnownGoodFile: file });
    await first.flushed();
    first.close();
    // A change the copy does not have yet, then the server goes away.
    const newer = await seed.txn({ compare: [Compare.version('svc/flags', '>', 0)], success: [Op.put('svc/flags', '{"darkMode":true}')] });
    seed.close();
    await node.stop();

    const client = createClient({ endpoint, retry: false, healthCheck: { intervalMs: 50 } });
    try {
      const started = Date.now();
      const cfg = await client.config('svc/', { lastKnownGoodFile: file, retry: { initialDelayMs: 50, maxDelayMs: 200 } });
      assert.ok(Date.now() - started < 3000, 'start-up does not hang on the missing server');
      assert.equal(cfg.stale, true);
      assert.equal(cfg.source, 'last-known-good');
      assert.deepEqual(cfg.value, { flags: { darkMode: false }, region: 'eu-west-1' });
      const change = new Promise<ConfigChange<Record<string, unknown>>>((resolve) => cfg.once('change', resolve));
      const fresh = new Promise<number>((resolve) => cfg.once('fresh', (e) => resolve(e.revision)));

      node = await startTestNode({ dataDir: join(tmp.dir, 'data'), httpPort: port });
      const c = await within(change, 5000, 'the change after the server returned');
      assert.deepEqual(c.changedKeys, ['flags']);
      assert.deepEqual(c.value, { flags: { darkMode: true }, region: 'eu-west-1' });
      assert.equal(c.source, 'server');
      assert.equal(await within(fresh, 1000, 'fresh'), newer.revision);
      assert.equal(cfg.stale, false);
      await cfg.flushed();
      assert.equal(lkg(file).revision, newer.revision, 'the copy caught up too');

      // And it keeps following the server.
      await client.put('svc/region', 'us-east-1');
      await until(() => cfg.value.region === 'us-east-1', 'a later update');
    } finally {
      client.close();
      await node.stop();
      tmp.cleanup();
    }
  });

  it('with the server down and no last-known-good copy, start-up fails with UnavailableError', async () => {
    const tmp = tempDir();
    const client = createClient({ endpoint: `http://127.0.0.1:${await freePort()}`, retry: false });
    try {
      await assert.rejects(client.config('x/', { lastKnownGoodFile: join(tmp.dir, 'none.json') }), UnavailableError);
      assert.equal(existsSync(join(tmp.dir, 'none.json')), false);
    } finally {
      client.close();
      tmp.cleanup();
    }
  });
});
