/**
 * What a RESP session may see and do over time, on a node with authentication on, short-lived
 * tokens and a per-principal rate limit: a connection authenticated with an access token ends
 * with the token (a subscriber is cut off without waiting for a message), every command queued
 * in a MULTI counts against the rate limit, DBSIZE and INFO keyspace count only the keys the
 * caller may read, and `/v1/kv` refuses keys of a memory namespace, pointing to `/v1/cache` and RESP.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import { ADMIN_PASSWORD, client, login, userToken } from './security-helpers.js';
import { RawClient, frame, startRespNode } from './resp-helpers.js';

/** Lifetime of the node's access tokens, seconds: short, so the expiry test need not wait long. */
const TOKEN_TTL = 4;

describe('RESP sessions: token expiry, MULTI and the rate limit, what DBSIZE counts, /v1/kv and memory keys', () => {
  let node: Awaited<ReturnType<typeof startRespNode>>;
  /** An admin HTTP client with a fresh token (tokens live TOKEN_TTL seconds here). */
  const admin = async (): Promise<ReturnType<typeof client>> => client(node.url, await login(node.url, 'admin', ADMIN_PASSWORD));

  before(async () => {
    node = await startRespNode({
      dev: false,
      security: { adminPassword: ADMIN_PASSWORD, loginRateLimit: null, tokenTtlSeconds: TOKEN_TTL, rateLimit: { rate: 2, burst: 30 } },
    });
    const a = await admin();
    assert.ok((await a('/v1/roles/team-a', { method: 'PUT', body: { permissions: [{ prefix: 'team-a/', access: 'write' }] } })).status < 300);
    await userToken(node.url, await login(node.url, 'admin', ADMIN_PASSWORD), 'alice', ['team-a']);
    // A durable key under a prefix that then becomes a memory namespace: hidden from RESP, not counted.
    assert.equal((await a('/v1/kv/team-a/cache/shadowed', { method: 'PUT', body: { value: 'old' } })).status, 200);
    assert.equal((await a('/v1/namespaces/team-a/cache/', { method: 'PUT', body: { storage: 'memory' } })).status, 201);
    assert.equal((await a('/v1/namespaces/other/cache/', { method: 'PUT', body: { storage: 'memory' } })).status, 201);
  });
  after(async () => {
    await node.cleanup();
  });

  test('a connection authenticated with an access token ends with it: a subscriber is cut off, a command answers NOAUTH', async () => {
    const token = await login(node.url, 'alice', 'alice-password-1');
    const issued = Date.now();
    const sub = await RawClient.open(node.respPort);
    const cmd = await RawClient.open(node.respPort);
    try {
      for (const c of [sub, cmd]) {
        c.write(frame('AUTH', token));
        assert.equal((await c.until((b) => b.includes('\r\n'))).toString(), '+OK\r\n');
        c.clear();
      }
      sub.write(frame('SUBSCRIBE', 'team-a/news'));
      await sub.until((b) => b.toString().includes('subscribe'));
      cmd.write(frame('SET', 'team-a/cache/k', 'v'));
      assert.equal((await cmd.until((b) => b.includes('\r\n'))).toString(), '+OK\r\n');
      cmd.clear();
      // Nothing is published: the node must notice the expiry on its own.
      assert.ok(await sub.closedWithin(TOKEN_TTL * 1000 + 15_000), 'the subscribed connection was closed when its token expired');
      assert.ok(Date.now() - issued >= TOKEN_TTL * 1000 - 1000, 'not before the token expired');
      cmd.write(frame('GET', 'team-a/cache/k'));
      assert.match((await cmd.until((b) => b.includes('\r\n'))).toString(), /^-NOAUTH the token this connection authenticated with has expired/);
      cmd.clear();
      cmd.write(frame('GET', 'team-a/cache/k'));
      assert.equal((await cmd.until((b) => b.includes('\r\n'))).toString(), '-NOAUTH Authentication required.\r\n');
      cmd.clear();
      // A fresh token authenticates the same connection again.
      cmd.write(frame('AUTH', await login(node.url, 'alice', 'alice-password-1')));
      assert.equal((await cmd.until((b) => b.includes('\r\n'))).toString(), '+OK\r\n');
      cmd.clear();
      cmd.write(frame('GET', 'team-a/cache/k'));
      assert.equal((await cmd.until((b) => b.toString().endsWith('v\r\n'))).toString(), '$1\r\nv\r\n');
    } finally {
      sub.close();
      cmd.close();
    }
  });

  test('every command queued in a MULTI counts against the rate limit; a refused one aborts EXEC', async () => {
    const c = await RawClient.open(node.respPort);
    try {
      c.write(frame('AUTH', 'alice', 'alice-password-1'));
      assert.equal((await c.until((b) => b.includes('\r\n'))).toString(), '+OK\r\n');
      c.clear();
      // The bucket holds 30 tokens: 60 queued commands in one MULTI exceed it.
      const req = [frame('MULTI')];
      for (let i = 0; i < 60; i++) req.push(frame('SET', `team-a/cache/r${i}`, 'x'));
      req.push(frame('EXEC'));
      c.write(Buffer.concat(req));
      const text = (await c.until((b) => b.toString().includes('EXECABORT'))).toString();
      const lines = text.split('\r\n');
      assert.equal(lines[0], '+OK');
      assert.ok(lines.filter((l) => l === '+QUEUED').length < 60, 'not every command was queued');
      assert.ok(lines.some((l) => l.startsWith('-ERR rate limit exceeded')), 'a queued command was refused by the rate limit');
      assert.match(text, /-EXECABORT Transaction discarded because of previous errors\./);
    } finally {
      c.close();
    }
    const root = new Redis({ port: node.respPort, host: '127.0.0.1', username: 'admin', password: ADMIN_PASSWORD });
    try {
      assert.equal(await root.exists('team-a/cache/r0'), 0, 'nothing of the aborted transaction ran');
    } finally {
      root.disconnect();
    }
    await new Promise((r) => setTimeout(r, 3000)); // let alice's bucket refill for the next test
  });

  test('DBSIZE and INFO keyspace count the keys the caller may read; a shadowed durable key is not counted', async () => {
    const root = new Redis({ port: node.respPort, host: '127.0.0.1', username: 'admin', password: ADMIN_PASSWORD });
    const alice = new Redis({ port: node.respPort, host: '127.0.0.1', username: 'alice', password: 'alice-password-1' });
    try {
      await root.flushall(); // a clean keyspace (also removes team-a/cache/shadowed's durable copy)
      const a = await admin();
      assert.equal((await a('/v1/namespaces/team-a/cache/', { method: 'DELETE' })).status < 300, true);
      assert.equal((await a('/v1/kv/team-a/cache/shadowed', { method: 'PUT', body: { value: 'old' } })).status, 200);
      assert.equal((await a('/v1/namespaces/team-a/cache/', { method: 'PUT', body: { storage: 'memory' } })).status, 201);
      await root.set('team-a/d1', 'durable');
      await root.set('other/d2', 'durable', 'EX', 100);
      await root.set('team-a/cache/m1', 'memory', 'EX', 100);
      await root.set('other/cache/m2', 'memory');
      assert.equal(await root.dbsize(), 4, 'the admin sees every key but the shadowed durable one');
      assert.equal(await alice.dbsize(), 2, 'alice counts team-a/d1 and team-a/cache/m1 only');
      assert.match(await alice.info('keyspace'), /db0:keys=2,expires=1,/);
      assert.match(await root.info('keyspace'), /db0:keys=4,expires=2,/);
    } finally {
      root.disconnect();
      alice.disconnect();
    }
  });

  test('/v1/kv refuses keys of a memory namespace with an error pointing to /v1/cache and RESP', async () => {
    const a = await admin();
    for (const [method, body] of [
      ['PUT', { value: 'x' }],
      ['GET', undefined],
      ['DELETE', undefined],
    ] as const) {
      const res = await a('/v1/kv/team-a/cache/via-kv', { method, ...(body !== undefined ? { body } : {}) });
      assert.equal(res.status, 400, `${method} is refused`);
      const msg = (res.body.error as { message: string }).message;
      assert.match(msg, /memory namespace 'team-a\/cache\/'/);
      assert.match(msg, /\/v1\/cache\/team-a\/cache\/via-kv or the RESP port/);
    }
    const txn = await a('/v1/txn', { method: 'POST', body: { compare: [], success: [{ type: 'put', key: 'team-a/cache/via-txn', value: 'x' }], failure: [] } });
    assert.equal(txn.status, 400);
    // The cache face serves it, and durable keys outside memory namespaces still work.
    assert.equal((await a('/v1/cache/team-a/cache/via-kv', { method: 'PUT', body: { value: 'x' } })).status, 200);
    assert.equal((await a('/v1/kv/team-a/durable-ok', { method: 'PUT', body: { value: 'x' } })).status, 200);
  });
});
