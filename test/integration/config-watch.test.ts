// Config notifications over GET /v1/configs/watch (seed 000, journeys 1 and 2): config_update per new version, one merged message for a rollback, deletes, subscribe frames.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { http, startTestNode } from '../helpers/node.js';
import { JsonSocket } from './watch-helpers.js';

let node: Awaited<ReturnType<typeof startTestNode>>;

before(async () => {
  node = await startTestNode();
});

after(async () => {
  await node.cleanup();
});

const enc = (s: string): Uint8Array => Buffer.from(s);

/** The commit time of `revision` as the log recorded it, in ISO 8601. */
async function committedAt(revision: number): Promise<string> {
  const [rev] = await node.store.readEvents(revision, revision, 100, false);
  assert.ok(rev !== undefined);
  return new Date(rev.ts).toISOString();
}

test('journeys 1 and 2: a service subscribed to database.url hears each new version and the rollback', async () => {
  const ws = await JsonSocket.open(`${node.url}/v1/configs/watch?key=database.url`);
  try {
    const sub = await ws.takeType('subscribed');
    assert.deepEqual(sub, { type: 'subscribed', key: 'database.url', revision: node.store.revision });

    const v1 = await node.store.put('database.url', enc('postgresql://old-db:5432/app'));
    await node.store.put('database.urls', enc('a different key'));
    const v2 = await http(`${node.url}/v1/kv/database.url`, { method: 'PUT', body: { value: 'postgresql://new-db:5432/app' } });
    // The config layer writes a rollback as a new version with revision meta describing it.
    const meta = { event: 'config_rolled_back', from_version: 'v2', to_version: 'v3', restored_version: 'v1' };
    const v3 = await node.store.put('database.url', enc('postgresql://old-db:5432/app'), { meta: JSON.stringify(meta) });

    assert.deepEqual(await ws.takeType('config_update'), {
      type: 'config_update',
      key: 'database.url',
      version: 'v1',
      revision: v1.revision,
      updated_at: await committedAt(v1.revision),
      event: 'config_updated',
    });
    assert.deepEqual(await ws.takeType('config_update'), {
      type: 'config_update',
      key: 'database.url',
      version: 'v2',
      revision: v2.body.revision,
      updated_at: await committedAt(v2.body.revision),
      event: 'config_updated',
    });
    assert.deepEqual(await ws.takeType('config_update'), {
      type: 'config_update',
      key: 'database.url',
      version: 'v3',
      revision: v3.revision,
      updated_at: await committedAt(v3.revision),
      event: 'config_rolled_back',
      from_version: 'v2',
      to_version: 'v3',
      restored_version: 'v1',
    });

    const del = await node.store.deleteRange('database.url', undefined);
    const gone = await ws.takeType('config_deleted');
    assert.equal(gone.key, 'database.url');
    assert.equal(gone.revision, del.revision);
    assert.equal(gone.event, 'config_deleted');

    ws.send({ type: 'progress' });
    await ws.takeType('progress');
    const notes = ws.received.filter((m) => m.type === 'config_update' || m.type === 'config_deleted');
    assert.equal(notes.length, 4, 'one message per change: none for other keys, one for the rollback');
  } finally {
    await ws.close();
  }
});

test('subscribe and unsubscribe frames, prefixes, fromRevision catch-up and errors', async () => {
  const before = await node.store.put('app.feature', enc('on'));
  await node.store.put('app.timeout', enc('30'));
  const ws = await JsonSocket.open(`${node.url}/v1/configs/watch`);
  try {
    ws.send({ type: 'subscribe', prefix: 'app.', fromRevision: before.revision });
    assert.equal((await ws.takeType('subscribed')).prefix, 'app.');
    const past = [await ws.takeType('config_update'), await ws.takeType('config_update')];
    assert.deepEqual(past.map((m) => `${m.key} ${m.version}`), ['app.feature v1', 'app.timeout v1']);
    await node.store.put('app.timeout', enc('60'));
    const live = await ws.takeType('config_update');
    assert.equal(`${live.key} ${live.version}`, 'app.timeout v2');

    for (const [frame, message] of [
      [{ type: 'subscribe' }, /exactly one/],
      [{ type: 'subscribe', key: 'a', prefix: 'b' }, /exactly one/],
      [{ type: 'subscribe', prefix: 'app.' }, /already subscribed/],
      [{ type: 'subscribe', key: 'x', when: 'now' }, /when/],
      [{ type: 'unsubscribe', key: 'never' }, /not subscribed/],
      [{ type: 'create', key: 'x' }, /unknown frame type/],
      ['not json', /JSON/],
    ] as const) {
      ws.send(frame);
      assert.match((await ws.takeType('error')).error.message, message, JSON.stringify(frame));
    }

    ws.send({ type: 'unsubscribe', prefix: 'app.' });
    assert.deepEqual(await ws.takeType('unsubscribed'), { type: 'unsubscribed', prefix: 'app.' });
    ws.send({ type: 'subscribe', key: 'app.timeout' });
    await ws.takeType('subscribed');
    await node.store.put('app.feature', enc('off'));
    const again = await node.store.put('app.timeout', enc('90'));
    const next = await ws.takeType('config_update');
    assert.equal(next.revision, again.revision, 'the unsubscribed prefix sends nothing more');
  } finally {
    await ws.close();
  }
});

test('GET /v1/configs/watch upgrades even beside the config routes, and a compacted fromRevision is reported', async () => {
  const r = await node.store.put('cfg.compacted', enc('1'));
  await node.store.put('cfg.compacted', enc('2'));
  await node.store.compact(r.revision);
  const ws = await JsonSocket.open(`${node.url}/v1/configs/watch?key=cfg.compacted&fromRevision=${r.revision}`);
  try {
    assert.deepEqual(await ws.takeType('compacted'), { type: 'compacted', key: 'cfg.compacted', compactRevision: r.revision });
    ws.send({ type: 'subscribe', key: 'cfg.compacted', fromRevision: r.revision + 1 });
    await ws.takeType('subscribed');
    assert.equal((await ws.takeType('config_update')).version, 'v2');
  } finally {
    await ws.close();
  }
  const bad = await JsonSocket.open(`${node.url}/v1/configs/watch?colour=red`);
  try {
    assert.match((await bad.takeType('error')).error.message, /colour/);
  } finally {
    await bad.close();
  }
});
