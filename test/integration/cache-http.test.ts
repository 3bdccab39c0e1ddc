/**
 * The cache tier over HTTP against a real node and a real origin server in the test (seed 002
 * journeys 1–2): hit and miss with `x-cache`, read-through with single-flight (100 concurrent
 * misses → 1 origin request), the circuit breaker opening, half-opening and closing, an origin
 * timeout, PUT with a TTL, per-namespace series on /metrics, the SDK's getOrLoad, and the same
 * permissions as /v1/kv. Over RESP on the same node: GET reads through the same origin, and
 * writes over HTTP are keyspace notifications and break a WATCH like writes over RESP.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { Redis } from 'ioredis';
import { createClient } from '../../client/index.js';
import { http, startTestNode } from '../helpers/node.js';
import { client, login, startSecureNode, userToken, ADMIN_PASSWORD } from './security-helpers.js';

type Mode = 'ok' | 'fail' | 'slow';

/** An origin ("the database API") that counts requests, answers /users/{id}, and fails or stalls on command. */
class Origin {
  requests = 0;
  mode: Mode = 'ok';
  delayMs = 100;
  server: Server;
  constructor() {
    this.server = createServer((req, res) => {
      this.requests++;
      const id = decodeURIComponent((req.url ?? '').replace(/^\/users\//, ''));
      if (this.mode === 'fail') {
        res.statusCode = 500;
        res.end('database down');
        return;
      }
      const wait = this.mode === 'slow' ? 5000 : this.delayMs;
      const t = setTimeout(() => {
        if (id === 'missing') {
          res.statusCode = 404;
          res.end();
          return;
        }
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ id, name: `user ${id}` }));
      }, wait);
      res.on('close', () => clearTimeout(t));
    });
  }
  async start(): Promise<string> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }
  stop(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((r) => this.server.close(() => r()));
  }
}

let node: Awaited<ReturnType<typeof startTestNode>>;
const origin = new Origin();

before(async () => {
  const originUrl = await origin.start();
  node = await startTestNode({ respPort: 0 });
  const put = async (prefix: string, body: unknown) => {
    const res = await http(`${node.url}/v1/namespaces/${prefix}`, { method: 'PUT', body });
    assert.ok(res.status < 300, JSON.stringify(res.body));
  };
  await put('user:', {
    storage: 'memory',
    defaultTtl: 3600,
    origin: { url: `${originUrl}/users/{id}`, timeoutMs: 500, breaker: { minRequests: 10, halfOpenAfterMs: 1500 } },
  });
  // A generous timeout for the single-flight test: on a loaded machine a 300 ms origin must not time out.
  await put('profile:', { storage: 'memory', origin: { url: `${originUrl}/users/{id}`, timeoutMs: 20_000 } });
  await put('cache:', { storage: 'memory' });
  await put('sdk:', { storage: 'memory' });
});

after(async () => {
  await node?.cleanup();
  await origin.stop();
});

test('journeys 1–2: a miss reads through the origin and caches for the TTL; the next read is a hit', async () => {
  const before = origin.requests;
  const miss = await http(`${node.url}/v1/cache/user:456`);
  assert.equal(miss.status, 200);
  assert.equal(miss.headers.get('x-cache'), 'miss');
  assert.deepEqual(JSON.parse(miss.body.value), { id: '456', name: 'user 456' });
  assert.ok(miss.body.ttl > 3590 && miss.body.ttl <= 3600, `ttl ${miss.body.ttl}`);
  const hit = await http(`${node.url}/v1/cache/user:456`);
  assert.equal(hit.status, 200);
  assert.equal(hit.headers.get('x-cache'), 'hit');
  assert.equal(hit.body.value, miss.body.value);
  assert.equal(origin.requests, before + 1);
  // A key the origin does not have: a miss, with the reason, and no value cached.
  const none = await http(`${node.url}/v1/cache/user:missing`);
  assert.equal(none.status, 404);
  assert.equal(none.headers.get('x-cache'), 'miss');
  assert.match(none.body.error.message, /no value for this key \(404\)/);
});

test('100 concurrent misses of one key make exactly 1 origin request (single-flight)', async () => {
  origin.delayMs = 300;
  const before = origin.requests;
  const answers = await Promise.all(Array.from({ length: 100 }, () => http(`${node.url}/v1/cache/profile:789`)));
  origin.delayMs = 100;
  assert.equal(origin.requests - before, 1);
  for (const a of answers) {
    assert.equal(a.status, 200);
    assert.equal(JSON.parse(a.body.value).id, '789');
  }
});

test('RESP GET reads through too: one origin request for many clients, the TTL of the namespace, a nil for a 404, no fetch inside MULTI', async () => {
  const port = node.resp?.port as number;
  const clients = Array.from({ length: 5 }, () => new Redis({ port, host: '127.0.0.1' }));
  const io = clients[0] as Redis;
  try {
    origin.delayMs = 300;
    const before = origin.requests;
    const got = await Promise.all(clients.flatMap((c) => [c.get('profile:321'), c.get('profile:321')]));
    origin.delayMs = 100;
    assert.equal(origin.requests - before, 1, 'single-flight across connections');
    for (const g of got) assert.deepEqual(JSON.parse(g as string), { id: '321', name: 'user 321' });
    assert.deepEqual(JSON.parse((await io.get('user:654')) as string), { id: '654', name: 'user 654' });
    const ttl = await io.ttl('user:654');
    assert.ok(ttl > 3590 && ttl <= 3600, `the namespace's default TTL: ${ttl}`);
    const n = origin.requests;
    assert.equal(await io.get('user:654'), JSON.stringify({ id: '654', name: 'user 654' }), 'then a hit');
    assert.equal(origin.requests, n);
    assert.equal(await io.get('user:missing'), null, 'a 404 at the origin is a nil');
    assert.equal(await io.exists('user:missing'), 0);
    // Inside MULTI a command never waits on the network: a miss stays a miss.
    assert.deepEqual(await io.multi().get('user:in-multi').exec(), [[null, null]]);
    assert.equal(origin.requests, n + 1, 'only the 404 went to the origin');
    // A pipeline's later commands wait for the fill: GET, SET, GET answer in order.
    const p = await io.pipeline().get('user:777').set('user:777', 'mine').get('user:777').exec();
    assert.deepEqual(p?.map(([, v]) => v), [JSON.stringify({ id: '777', name: 'user 777' }), 'OK', 'mine']);
  } finally {
    for (const c of clients) c.disconnect();
  }
});

test('writes over HTTP are keyspace notifications and break a WATCH, as writes over RESP', async () => {
  const port = node.resp?.port as number;
  const io = new Redis({ port, host: '127.0.0.1' });
  const sub = new Redis({ port, host: '127.0.0.1' });
  try {
    assert.equal(await io.config('SET', 'notify-keyspace-events', 'KEA'), 'OK');
    const events: string[] = [];
    sub.on('pmessage', (_p: string, ch: string, m: string) => events.push(`${ch} ${m}`));
    await sub.psubscribe('__keyevent@0__:*');
    assert.equal((await http(`${node.url}/v1/cache/cache:note`, { method: 'PUT', body: { value: 'v' } })).status, 200);
    assert.equal((await http(`${node.url}/v1/cache/cache:note`, { method: 'DELETE' })).body.deleted, true);
    assert.equal(await io.get('profile:fill'), JSON.stringify({ id: 'fill', name: 'user fill' }));
    const deadline = Date.now() + 5000;
    const want = ['__keyevent@0__:set cache:note', '__keyevent@0__:del cache:note', '__keyevent@0__:set profile:fill'];
    while (!want.every((w) => events.includes(w)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.deepEqual(events.filter((e) => want.includes(e)), want, JSON.stringify(events));
    await io.set('cache:watched', '1');
    await io.watch('cache:watched');
    assert.equal((await http(`${node.url}/v1/cache/cache:watched`, { method: 'PUT', body: { value: '2' } })).status, 200);
    assert.equal(await io.multi().set('cache:watched', '3').exec(), null, 'EXEC aborts: the key changed over HTTP');
    assert.equal(await io.get('cache:watched'), '2');
  } finally {
    io.disconnect();
    sub.disconnect();
  }
});

test('a slow origin times out: the caller gets a miss with the reason, not a hang', async () => {
  origin.mode = 'slow';
  try {
    const res = await http(`${node.url}/v1/cache/user:slow`);
    assert.equal(res.status, 404);
    assert.equal(res.headers.get('x-cache'), 'miss');
    assert.match(res.body.error.message, /did not answer within 500 ms/);
  } finally {
    origin.mode = 'ok';
  }
  // Let the failure leave the breaker's window before the breaker test counts.
  await new Promise((r) => setTimeout(r, 100));
});

test('the breaker opens at 50 % failures, answers misses at once while open, half-opens and closes', async () => {
  await new Promise((r) => setTimeout(r, 10_100)); // a clean 10 s window (the timeout above counted as a failure)
  origin.mode = 'fail';
  for (let i = 0; i < 10; i++) {
    const res = await http(`${node.url}/v1/cache/user:f${i}`);
    assert.equal(res.status, 404);
    assert.match(res.body.error.message, /answered 500/);
  }
  const sent = origin.requests;
  const open = await http(`${node.url}/v1/cache/user:f-open`);
  assert.equal(open.status, 404);
  assert.equal(open.headers.get('x-cache'), 'miss');
  assert.match(open.body.error.message, /circuit breaker is open/);
  assert.equal(origin.requests, sent, 'no request reaches the origin while the breaker is open');
  const metrics = await (await fetch(`${node.url}/metrics`)).text();
  assert.match(metrics, /beacon_cache_origin_breaker_open\{namespace="user:"\} 1/);
  assert.match(metrics, /beacon_cache_origin_failures_total\{namespace="user:"\} (1[1-9]|[2-9]\d)/);
  // Half-open after halfOpenAfterMs: the origin still fails → a trial request, open again.
  await new Promise((r) => setTimeout(r, 1600));
  assert.match((await http(`${node.url}/v1/cache/user:f-trial1`)).body.error.message, /answered 500/);
  assert.equal(origin.requests, sent + 1);
  assert.match((await http(`${node.url}/v1/cache/user:f-trial2`)).body.error.message, /circuit breaker is open/);
  // The origin recovers: the next trial succeeds and closes the breaker.
  origin.mode = 'ok';
  await new Promise((r) => setTimeout(r, 1600));
  const trial = await http(`${node.url}/v1/cache/user:back1`);
  assert.equal(trial.status, 200);
  const after = await http(`${node.url}/v1/cache/user:back2`);
  assert.equal(after.status, 200, 'closed again: requests go through');
  assert.match(await (await fetch(`${node.url}/metrics`)).text(), /beacon_cache_origin_breaker_open\{namespace="user:"\} 0/);
});

test('PUT stores with a TTL, GET answers it, DELETE removes it; keys outside memory namespaces are refused', async () => {
  const put = await http(`${node.url}/v1/cache/cache:page`, { method: 'PUT', body: { value: '<html>', ttl: 2 } });
  assert.equal(put.status, 200);
  assert.equal(put.body.ttl, 2);
  const got = await http(`${node.url}/v1/cache/cache:page`);
  assert.equal(got.headers.get('x-cache'), 'hit');
  assert.equal(got.body.value, '<html>');
  const raw = await http(`${node.url}/v1/cache/cache:bin?ttl=60`, { method: 'PUT', raw: Buffer.from([0, 1, 255]), headers: { 'content-type': 'application/octet-stream' } });
  assert.equal(raw.status, 200);
  const bin = await http(`${node.url}/v1/cache/cache:bin`);
  assert.equal(bin.body.encoding, 'base64');
  assert.deepEqual(Buffer.from(bin.body.value, 'base64'), Buffer.from([0, 1, 255]));
  await new Promise((r) => setTimeout(r, 2100));
  const expired = await http(`${node.url}/v1/cache/cache:page`);
  assert.equal(expired.status, 404, 'gone after its TTL');
  assert.equal((await http(`${node.url}/v1/cache/cache:bin`, { method: 'DELETE' })).body.deleted, true);
  assert.equal((await http(`${node.url}/v1/cache/cache:bin`, { method: 'DELETE' })).body.deleted, false);
  const outside = await http(`${node.url}/v1/cache/app/color`, { method: 'PUT', body: { value: 'blue' } });
  assert.equal(outside.status, 400);
  assert.match(outside.body.error.message, /not in a cache namespace/);
  const badTtl = await http(`${node.url}/v1/cache/cache:x`, { method: 'PUT', body: { value: 'v', ttl: -1 } });
  assert.equal(badTtl.status, 400);
  const metrics = await (await fetch(`${node.url}/metrics`)).text();
  assert.match(metrics, /beacon_cache_hits_total\{namespace="cache:"\} [1-9]/);
  assert.match(metrics, /beacon_cache_expired_total\{namespace="cache:"\} 1/);
  assert.match(metrics, /beacon_cache_keys\{namespace="user:"\} [1-9]/);
  assert.match(metrics, /beacon_cache_memory_bytes\{namespace="user:"\} [1-9]/);
});

test('the SDK: set/get/delete, and getOrLoad runs the loader once for 50 concurrent callers', async () => {
  const c = createClient({ endpoint: node.url });
  try {
    assert.equal(await c.cache.get('sdk:none'), undefined);
    await c.cache.set('sdk:a', 'hello', { ttl: 60 });
    const a = await c.cache.get('sdk:a');
    assert.equal(a?.text, 'hello');
    assert.equal(a?.cache, 'hit');
    assert.ok((a?.ttl ?? 0) > 55);
    let loads = 0;
    const loader = async (): Promise<string> => {
      loads++;
      await new Promise((r) => setTimeout(r, 100));
      return 'loaded value';
    };
    const all = await Promise.all(Array.from({ length: 50 }, () => c.cache.getOrLoad('sdk:lazy', loader, { ttl: 30 })));
    assert.equal(loads, 1);
    for (const e of all) assert.equal(e.text, 'loaded value');
    const again = await c.cache.getOrLoad('sdk:lazy', loader);
    assert.equal(again.cache, 'hit');
    assert.equal(loads, 1);
    assert.equal(await c.cache.delete('sdk:a'), true);
    await assert.rejects(c.cache.set('app/x', 'v'), { code: 'invalid_argument' });
  } finally {
    c.close();
  }
});

test('the same users, roles and prefix permissions as /v1/kv', async () => {
  const secure = await startSecureNode();
  try {
    const adminToken = await login(secure.url, 'admin', ADMIN_PASSWORD);
    const admin = client(secure.url, adminToken);
    assert.ok((await admin('/v1/namespaces/cache:', { method: 'PUT', body: { storage: 'memory' } })).status < 300);
    assert.ok((await admin('/v1/roles/cache-reader', { method: 'PUT', body: { permissions: [{ prefix: 'cache:', access: 'read' }] } })).status < 300);
    const reader = client(secure.url, await userToken(secure.url, adminToken, 'reader', ['cache-reader']));
    assert.equal((await admin('/v1/cache/cache:k', { method: 'PUT', body: { value: 'v' } })).status, 200);
    assert.equal((await client(secure.url, undefined)('/v1/cache/cache:k')).status, 401);
    const read = await reader('/v1/cache/cache:k');
    assert.equal(read.status, 200);
    assert.equal(read.body.value, 'v');
    assert.equal((await reader('/v1/cache/cache:k', { method: 'PUT', body: { value: 'w' } })).status, 403);
    assert.equal((await reader('/v1/cache/cache:k', { method: 'DELETE' })).status, 403);
    assert.equal((await admin('/v1/cache/cache:k')).body.value, 'v');
  } finally {
    await secure.cleanup();
  }
});
