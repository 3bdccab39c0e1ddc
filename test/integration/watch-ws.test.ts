// The /v1/watch WebSocket protocol against a real node: create/events/cancel/progress, errors, compaction, lease keep-alive, half-open sockets.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { http, startTestNode } from '../helpers/node.js';
import { JsonSocket, until } from './watch-helpers.js';

let node: Awaited<ReturnType<typeof startTestNode>>;

before(async () => {
  node = await startTestNode();
});

after(async () => {
  await node.cleanup();
});

test('create, events with prevKv, deletes, progress and cancel on one socket', async () => {
  const ws = await JsonSocket.open(`${node.url}/v1/watch`);
  try {
    ws.send({ type: 'create', key: 'app/', prefix: true, prevKv: true, watchId: 7 });
    const created = await ws.takeType('created', 7);
    assert.equal(created.revision, node.store.revision);
    ws.send({ type: 'create', key: 'app/one' });
    const second = await ws.takeType('created');
    assert.notEqual(second.watchId, 7);

    const put1 = await http(`${node.url}/v1/kv/app/one`, { method: 'PUT', body: { value: 'v1' } });
    const put2 = await http(`${node.url}/v1/kv/app/one`, { method: 'PUT', body: { value: 'v2' } });
    await http(`${node.url}/v1/kv/other`, { method: 'PUT', body: { value: 'x' } });
    const del = await http(`${node.url}/v1/kv/app/one`, { method: 'DELETE' });

    const e1 = await ws.takeType('events', 7);
    assert.deepEqual(e1, {
      type: 'events',
      watchId: 7,
      revision: put1.body.revision,
      events: [{ type: 'put', kv: { key: 'app/one', value: 'v1', createRevision: put1.body.revision, modRevision: put1.body.revision, version: 1, lease: 0 } }],
    });
    const e2 = await ws.takeType('events', 7);
    assert.equal(e2.revision, put2.body.revision);
    assert.equal(e2.events[0].prevKv.value, 'v1');
    const e3 = await ws.takeType('events', 7);
    assert.equal(e3.revision, del.body.revision, 'the put to "other" is not in the prefix');
    assert.equal(e3.events[0].type, 'delete');
    assert.equal(e3.events[0].kv.key, 'app/one');
    assert.equal(e3.events[0].kv.modRevision, del.body.revision);

    const single = ws.events(second.watchId);
    assert.deepEqual(single.map((m) => m.revision), [put1.body.revision, put2.body.revision, del.body.revision]);
    assert.equal(single[1].events[0].prevKv, undefined, 'no prevKv unless asked');

    ws.send({ type: 'progress' });
    assert.equal((await ws.takeType('progress')).revision, node.store.revision);

    ws.send({ type: 'cancel', watchId: 7 });
    await ws.takeType('canceled', 7);
    const again = await http(`${node.url}/v1/kv/app/one`, { method: 'PUT', body: { value: 'after cancel' } });
    await ws.take((m) => m.type === 'events' && m.watchId === second.watchId && m.revision === again.body.revision);
    // A progress answer is sent after the fan-out of that revision, so it orders the check below.
    ws.send({ type: 'progress' });
    await ws.takeType('progress');
    assert.equal(ws.events(7).length, 3, 'nothing arrives for a canceled watch');

    const status = await http(`${node.url}/v1/status`);
    assert.equal(status.body.watchers, 1);
  } finally {
    await ws.close();
  }
  await until(() => node.hub.watcherCount === 0, 'the watches of a closed socket to be released');
});

test('a watch from a past revision replays it, then continues live', async () => {
  const a = await http(`${node.url}/v1/kv/hist/a`, { method: 'PUT', body: { value: '1' } });
  await http(`${node.url}/v1/txn`, {
    method: 'POST',
    body: { success: [{ put: { key: 'hist/a', value: '2' } }, { put: { key: 'hist/b', value: '3' } }] },
  }).then((r) => assert.equal(r.status, 200, JSON.stringify(r.body)));
  const ws = await JsonSocket.open(`${node.url}/v1/watch`);
  try {
    ws.send({ type: 'create', key: 'hist/', prefix: true, fromRevision: a.body.revision, watchId: 1 });
    await ws.takeType('created', 1);
    const first = await ws.takeType('events', 1);
    assert.equal(first.revision, a.body.revision);
    const txn = await ws.takeType('events', 1);
    assert.equal(txn.revision, a.body.revision + 1);
    assert.deepEqual(txn.events.map((e: any) => e.kv.key), ['hist/a', 'hist/b'], 'one message per revision, all its events');
    const live = await http(`${node.url}/v1/kv/hist/c`, { method: 'PUT', body: { value: '4' } });
    assert.equal((await ws.takeType('events', 1)).revision, live.body.revision);
  } finally {
    await ws.close();
  }
});

test('malformed frames get error frames and the socket keeps working', async () => {
  const ws = await JsonSocket.open(`${node.url}/v1/watch`);
  try {
    const cases: [unknown, string, RegExp][] = [
      ['{not json', 'invalid_argument', /JSON/],
      ['[1,2]', 'invalid_argument', /object/],
      [{ key: 'a' }, 'invalid_argument', /type/],
      [{ type: 'subscribe' }, 'invalid_argument', /unknown frame type/],
      [{ type: 'create', key: 'a', colour: 'red' }, 'invalid_argument', /colour/],
      [{ type: 'create' }, 'invalid_argument', /key/],
      [{ type: 'create', key: '' }, 'invalid_argument', /key/],
      [{ type: 'create', key: 'a', fromRevision: 'soon' }, 'invalid_argument', /fromRevision/],
      [{ type: 'create', key: 'a', prefix: true, rangeEnd: 'b' }, 'invalid_argument', /prefix/],
      [{ type: 'create', key: 'a', fromRevision: node.store.revision + 100 }, 'future_revision', /future/],
      [{ type: 'create', key: 'x'.repeat(5000) }, 'too_large', /key/],
      [{ type: 'cancel', watchId: 999 }, 'not_found', /999/],
      [{ type: 'cancel' }, 'invalid_argument', /watchId/],
      [{ type: 'keepalive' }, 'invalid_argument', /lease/],
      [{ type: 'progress', extra: 1 }, 'invalid_argument', /extra/],
    ];
    for (const [frame, code, message] of cases) {
      ws.send(frame);
      const err = await ws.takeType('error');
      assert.equal(err.error.code, code, `frame ${JSON.stringify(frame)}`);
      assert.match(err.error.message, message, `frame ${JSON.stringify(frame)}`);
    }
    ws.ws.send(Buffer.from([1, 2, 3]), { binary: true });
    const bin = await ws.takeType('error');
    assert.match(bin.error.message, /binary/);

    ws.send({ type: 'create', key: 'a', fromRevision: node.store.revision + 100, watchId: 4 });
    assert.equal((await ws.takeType('error')).watchId, 4, 'errors name the watch they refer to');

    ws.send({ type: 'create', key: 'still/works', watchId: 3 });
    await ws.takeType('created', 3);
    ws.send({ type: 'create', key: 'still/works', watchId: 3 });
    assert.match((await ws.takeType('error', 3)).error.message, /already in use/);
    const put = await http(`${node.url}/v1/kv/still/works`, { method: 'PUT', body: { value: 'yes' } });
    assert.equal((await ws.takeType('events', 3)).revision, put.body.revision);
  } finally {
    await ws.close();
  }
});

test('a frame over the size limit closes the socket with 1009 and the node stays up', async () => {
  const ws = await JsonSocket.open(`${node.url}/v1/watch`);
  ws.send({ type: 'create', key: 'big', pad: 'x'.repeat(70 * 1024) });
  await until(() => ws.closeCode !== undefined, 'the close');
  assert.equal(ws.closeCode, 1009);
  assert.equal((await http(`${node.url}/healthz`)).status, 200);
});

test('watching at or below the compact revision answers compacted; lease keep-alive over the socket', async () => {
  await http(`${node.url}/v1/kv/cmp`, { method: 'PUT', body: { value: '1' } });
  const r2 = await http(`${node.url}/v1/kv/cmp`, { method: 'PUT', body: { value: '2' } });
  const c = await http(`${node.url}/v1/compact`, { method: 'POST', body: { revision: r2.body.revision - 1 } });
  assert.equal(c.status, 200);
  const ws = await JsonSocket.open(`${node.url}/v1/watch`);
  try {
    ws.send({ type: 'create', key: 'cmp', fromRevision: r2.body.revision - 1, watchId: 2 });
    assert.deepEqual(await ws.takeType('compacted', 2), { type: 'compacted', watchId: 2, compactRevision: r2.body.revision - 1 });
    ws.send({ type: 'create', key: 'cmp', fromRevision: r2.body.revision, watchId: 2 });
    await ws.takeType('created', 2);
    assert.equal((await ws.takeType('events', 2)).events[0].kv.value, '2');

    const lease = await http(`${node.url}/v1/leases`, { method: 'POST', body: { ttl: 10 } });
    assert.equal(lease.status, 201);
    ws.send({ type: 'keepalive', lease: lease.body.id });
    assert.deepEqual(await ws.takeType('keepalive'), { type: 'keepalive', lease: lease.body.id, ttl: 10 });
    ws.send({ type: 'keepalive', lease: 424242 });
    const err = await ws.takeType('error');
    assert.equal(err.error.code, 'not_found');
    assert.equal(err.lease, 424242);
  } finally {
    await ws.close();
  }
});

test('a half-open socket that stops answering pings is terminated and its watches released', async () => {
  node.hub.configure({ pingIntervalMs: 50, pongTimeoutMs: 250 });
  try {
    const silent = await JsonSocket.open(`${node.url}/v1/watch`, { autoPong: false });
    const healthy = await JsonSocket.open(`${node.url}/v1/watch`);
    silent.send({ type: 'create', key: 'hb', watchId: 1 });
    healthy.send({ type: 'create', key: 'hb', watchId: 1 });
    await silent.takeType('created', 1);
    await healthy.takeType('created', 1);
    assert.equal(node.hub.watcherCount, 2);
    await until(() => silent.closeCode !== undefined, 'the silent socket to be terminated', 3000);
    await until(() => node.hub.watcherCount === 1, 'its watch to be released');
    await new Promise((r) => setTimeout(r, 400));
    assert.equal(healthy.closeCode, undefined, 'a socket that answers pings stays open');
    await healthy.close();
  } finally {
    node.hub.configure({ pingIntervalMs: 15_000, pongTimeoutMs: 30_000 });
  }
});
