// Server-Sent Events watches (GET /v1/watch/*) with fetch-streamed real responses: events, resume with Last-Event-ID, progress, compaction, bad requests.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { http, startTestNode } from '../helpers/node.js';
import { SseReader, until } from './watch-helpers.js';

let node: Awaited<ReturnType<typeof startTestNode>>;

before(async () => {
  node = await startTestNode();
});

after(async () => {
  await node.cleanup();
});

async function put(key: string, value: string): Promise<number> {
  const r = await http(`${node.url}/v1/kv/${key}`, { method: 'PUT', body: { value } });
  assert.equal(r.status, 200);
  return r.body.revision as number;
}

test('an SSE watch streams one event per revision and resumes after Last-Event-ID without gaps or repeats', async () => {
  const first = await put('sse/a', '1');
  const sse = await new SseReader().open(`${node.url}/v1/watch/sse/?prefix=true&fromRevision=${first}&prevKv=true`);
  assert.equal(sse.status, 200);
  assert.match(sse.headers?.get('content-type') ?? '', /^text\/event-stream/);
  const revs = [first];
  for (let i = 2; i <= 5; i++) revs.push(await put(`sse/${i % 2 ? 'a' : 'b'}`, String(i)));
  await put('other', 'not watched');
  await until(() => sse.of('events').length === 5, 'five events');
  const got = sse.of('events');
  assert.deepEqual(got.map((e) => Number(e.id)), revs);
  assert.deepEqual(got.map((e) => e.data.revision), revs);
  assert.equal(got[0]?.data.events[0].kv.value, '1');
  assert.equal(got[2]?.data.events[0].prevKv.value, '1', 'prevKv on request');
  await sse.close();
  await until(() => node.hub.watcherCount === 0, 'the disconnected stream to release its watch');

  // Missed while disconnected: a put and a delete.
  const lastId = got[2]?.id as string;
  const missed = [await put('sse/c', '6')];
  const del = await http(`${node.url}/v1/kv/sse/a`, { method: 'DELETE' });
  missed.push(del.body.revision);
  const resumed = await new SseReader().open(`${node.url}/v1/watch/sse/?prefix=true&fromRevision=${first}`, { 'Last-Event-ID': lastId });
  const want = [...revs.slice(3), ...missed];
  await until(() => resumed.of('events').length === want.length, 'the resumed stream to catch up');
  assert.deepEqual(resumed.of('events').map((e) => e.data.revision), want, 'resumes at Last-Event-ID + 1');
  assert.equal(resumed.of('events').at(-1)?.data.events[0].type, 'delete');
  const live = await put('sse/d', '7');
  await until(() => resumed.of('events').at(-1)?.data.revision === live, 'a live event after the catch-up');
  await resumed.close();

  // The query form for clients that cannot set headers.
  const byQuery = await new SseReader().open(`${node.url}/v1/watch/sse/d?lastEventId=${live - 1}`);
  await until(() => byQuery.of('events').length === 1, 'the event after lastEventId');
  assert.equal(byQuery.of('events')[0]?.data.revision, live);
  await byQuery.close();
});

test('an idle SSE stream gets progress events whose id is a safe resume point', async () => {
  node.hub.configure({ progressIntervalMs: 100 });
  try {
    const sse = await new SseReader().open(`${node.url}/v1/watch/quiet/key`);
    await put('elsewhere', 'x');
    await until(() => sse.of('progress').some((e) => e.data.revision === node.store.revision), 'a progress event at the current revision', 3000);
    const p = sse.of('progress').at(-1);
    assert.equal(p?.id, String(p?.data.revision));
    assert.equal(sse.of('events').length, 0);
    await sse.close();
  } finally {
    node.hub.configure({ progressIntervalMs: 10_000 });
  }
});

test('an SSE watch from a compacted revision gets a compacted event and the stream ends', async () => {
  const r1 = await put('cmp/sse', '1');
  await put('cmp/sse', '2');
  await http(`${node.url}/v1/compact`, { method: 'POST', body: { revision: r1 } });
  const sse = await new SseReader().open(`${node.url}/v1/watch/cmp/sse?fromRevision=${r1}`);
  await until(() => sse.ended, 'the stream to end');
  assert.deepEqual(sse.of('compacted').map((e) => e.data), [{ compactRevision: r1 }]);
  assert.equal(node.hub.watcherCount, 0);
});

test('bad SSE watch requests are answered with a JSON error before any stream starts', async () => {
  const unknown = await http(`${node.url}/v1/watch/k?colour=red`);
  assert.equal(unknown.status, 400);
  assert.equal(unknown.body.error.code, 'invalid_argument');
  assert.match(unknown.body.error.message, /colour/);
  const future = await http(`${node.url}/v1/watch/k?fromRevision=${node.store.revision + 50}`);
  assert.equal(future.status, 400);
  assert.equal(future.body.error.code, 'future_revision');
  const badId = await http(`${node.url}/v1/watch/k`, { headers: { 'last-event-id': 'abc' } });
  assert.equal(badId.status, 400);
  assert.match(badId.body.error.message, /Last-Event-ID/);
  const both = await http(`${node.url}/v1/watch/k?prefix=true&rangeEnd=z`);
  assert.equal(both.status, 400);
  assert.equal(node.hub.watcherCount, 0);
});
