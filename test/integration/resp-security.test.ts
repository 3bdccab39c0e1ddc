/**
 * RESP security on a node with authentication on: -NOAUTH until AUTH, `AUTH user pass`,
 * `AUTH <apikey>`, `HELLO 3 AUTH …`, the same prefix permissions as HTTP (-NOPERM for a denied
 * key or an admin command), secrets never revealed without access, audit records for durable
 * writes, and TLS on the RESP port from the same certificate (`redis-cli --tls`).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import { createClient } from 'redis';
import { tempDir } from '../helpers/node.js';
import { ADMIN_PASSWORD, client, login, userToken, writeKekFile } from './security-helpers.js';
import { RawClient, frame, redisCli, startRespNode } from './resp-helpers.js';

describe('RESP security', () => {
  let node: Awaited<ReturnType<typeof startRespNode>>;
  let adminToken: string;
  const tmp = tempDir();

  before(async () => {
    node = await startRespNode({ dev: false, security: { adminPassword: ADMIN_PASSWORD, loginRateLimit: null }, kekFile: writeKekFile(tmp.dir) });
    adminToken = await login(node.url, 'admin', ADMIN_PASSWORD);
    const admin = client(node.url, adminToken);
    assert.equal((await admin('/v1/roles/team-a', { method: 'PUT', body: { permissions: [{ prefix: 'team-a/', access: 'write' }] } })).status < 300, true);
    await userToken(node.url, adminToken, 'alice', ['team-a']);
    await userToken(node.url, adminToken, 'vic', ['viewer']);
    assert.equal((await admin('/v1/namespaces/vault/', { method: 'PUT', body: { secret: true } })).status, 201);
  });
  after(async () => {
    await node.cleanup();
    tmp.cleanup();
  });

  test('-NOAUTH until AUTH; wrong passwords answer WRONGPASS; AUTH user pass and HELLO 3 AUTH work', async () => {
    const c = await RawClient.open(node.respPort);
    c.write(frame('GET', 'x'));
    assert.equal((await c.until((b) => b.includes('\r\n'))).toString(), '-NOAUTH Authentication required.\r\n');
    c.clear();
    c.write(frame('AUTH', 'alice', 'wrong-password'));
    assert.equal((await c.until((b) => b.includes('\r\n'))).toString(), '-WRONGPASS invalid username-password pair or user is disabled.\r\n');
    c.clear();
    c.write(frame('AUTH', 'alice', 'alice-password-1'));
    assert.equal((await c.until((b) => b.includes('\r\n'))).toString(), '+OK\r\n');
    c.close();
    const nr = createClient({ socket: { port: node.respPort, host: '127.0.0.1', reconnectStrategy: false }, username: 'alice', password: 'alice-password-1', RESP: 3 });
    await nr.connect(); // node-redis sends HELLO 3 AUTH alice …
    assert.equal(await nr.set('team-a/k', 'v'), 'OK');
    await nr.quit();
    assert.match(await redisCli(node.respPort, ['--user', 'alice', '--pass', 'alice-password-1', '--no-auth-warning', 'GET', 'team-a/k']), /^v/);
  });

  test("before AUTH, Redis's unauthenticated limits: a large bulk or a long multibulk is a protocol error and a close", async () => {
    const c = await RawClient.open(node.respPort);
    c.write('*2\r\n$3\r\nGET\r\n$67108864\r\n');
    assert.ok(await c.closedWithin(), 'the server closes the connection');
    assert.equal(c.received.toString(), '-ERR Protocol error: unauthenticated bulk length\r\n');
    const m = await RawClient.open(node.respPort);
    m.write('*11\r\n');
    assert.ok(await m.closedWithin());
    assert.equal(m.received.toString(), '-ERR Protocol error: unauthenticated multibulk length\r\n');
    // Once authenticated, a large value is accepted as before.
    const alice = new Redis({ port: node.respPort, host: '127.0.0.1', username: 'alice', password: 'alice-password-1' });
    const big = Buffer.alloc(512 * 1024, 0x62);
    assert.equal(await alice.set('team-a/big', big), 'OK');
    assert.ok((await alice.getBuffer('team-a/big'))?.equals(big));
    assert.equal(await alice.del('team-a/big'), 1);
    alice.disconnect();
  });

  test('the same prefix permissions as HTTP: -NOPERM for a denied key and for admin commands', async () => {
    const alice = new Redis({ port: node.respPort, host: '127.0.0.1', username: 'alice', password: 'alice-password-1' });
    assert.equal(await alice.set('team-a/x', '1'), 'OK');
    await assert.rejects(alice.set('team-b/x', '1'), /^ReplyError: NOPERM 'alice' may not write key 'team-b\/x'/);
    await assert.rejects(alice.get('other'), /NOPERM/);
    await assert.rejects(alice.config('SET', 'notify-keyspace-events', 'KEA'), /NOPERM .*administrators only/);
    await assert.rejects(alice.flushall(), /NOPERM/);
    assert.deepEqual(await alice.keys('*'), ['team-a/k', 'team-a/x'], 'KEYS lists only keys the principal may read');
    alice.disconnect();
    const vic = new Redis({ port: node.respPort, host: '127.0.0.1', username: 'vic', password: 'vic-password-1' });
    assert.equal(await vic.get('team-a/x'), '1');
    await assert.rejects(vic.set('team-a/x', '2'), /NOPERM/);
    // Keys after a count are checked like any others: every one of them, the destination as a write.
    await assert.rejects(vic.call('zunionstore', 'team-a/d', '1', 'team-a/x'), /NOPERM 'vic' may not write key 'team-a\/d'/);
    vic.disconnect();
    const alice2 = new Redis({ port: node.respPort, host: '127.0.0.1', username: 'alice', password: 'alice-password-1' });
    await assert.rejects(alice2.call('zunion', '2', 'team-a/z', 'team-b/z'), /NOPERM 'alice' may not read key 'team-b\/z'/);
    await assert.rejects(alice2.call('sintercard', '2', 'team-a/s', 'other'), /NOPERM 'alice' may not read key 'other'/);
    await assert.rejects(alice2.call('zinterstore', 'team-b/d', '1', 'team-a/z'), /NOPERM 'alice' may not write key 'team-b\/d'/);
    await assert.rejects(alice2.call('sintercard', '0', 'team-a/s'), /numkeys should be greater than 0/);
    alice2.disconnect();
  });

  test('SORT: the keys its BY and GET patterns name, and its STORE destination, need the same permissions', async () => {
    const admin = client(node.url, adminToken);
    for (const ns of ['team-a/c/', 'team-b/c/']) assert.equal((await admin(`/v1/namespaces/${ns}`, { method: 'PUT', body: { storage: 'memory' } })).status, 201);
    const root = new Redis({ port: node.respPort, host: '127.0.0.1', username: 'admin', password: ADMIN_PASSWORD });
    const alice = new Redis({ port: node.respPort, host: '127.0.0.1', username: 'alice', password: 'alice-password-1' });
    try {
      await root.mset('team-b/c/o_1', 'secret-1', 'team-a/c/o_1', 'one', 'team-a/c/w_1', '5', 'team-a/c/w_2', '1');
      await alice.rpush('team-a/c/l', '1', '2');
      assert.deepEqual(await alice.sort('team-a/c/l', 'BY', 'team-a/c/w_*', 'GET', '#', 'GET', 'team-a/c/o_*'), ['2', null, '1', 'one']);
      await assert.rejects(alice.sort('team-a/c/l', 'GET', 'team-b/c/o_*'), /^ReplyError: NOPERM SORT may not read 'team-b\/c\/o_1'/);
      await assert.rejects(alice.sort('team-a/c/l', 'BY', 'team-b/c/o_*'), /NOPERM/);
      await assert.rejects(alice.sort('team-a/c/l', 'STORE', 'team-b/c/d'), /NOPERM 'alice' may not write key 'team-b\/c\/d'/);
      assert.equal(await root.exists('team-b/c/d'), 0);
    } finally {
      root.disconnect();
      alice.disconnect();
    }
  });

  test('pub/sub: PUBSUB hides keyspace channels of unreadable keys; clients may not PUBLISH keyspace notifications', async () => {
    const root = new Redis({ port: node.respPort, host: '127.0.0.1', username: 'admin', password: ADMIN_PASSWORD });
    const alice = new Redis({ port: node.respPort, host: '127.0.0.1', username: 'alice', password: 'alice-password-1' });
    const adminSub = new Redis({ port: node.respPort, host: '127.0.0.1', username: 'admin', password: ADMIN_PASSWORD });
    try {
      const got: string[] = [];
      adminSub.on('message', (ch: string, msg: string) => got.push(`${ch} ${msg}`));
      await adminSub.ping(); // ioredis's ready check first (it would run INFO once subscribed)
      await adminSub.subscribe('__keyspace@0__:other/payroll', '__keyspace@0__:team-a/own', 'plain-news');
      // alice (team-a/ only) sees the plain channel and the keyspace channel of her own prefix.
      assert.deepEqual((await alice.pubsub('CHANNELS', '*')).sort(), ['__keyspace@0__:team-a/own', 'plain-news']);
      assert.deepEqual(await alice.pubsub('NUMSUB', '__keyspace@0__:other/payroll', 'plain-news'), ['__keyspace@0__:other/payroll', 0, 'plain-news', 1]);
      // The administrator sees everything.
      assert.deepEqual((await root.pubsub('CHANNELS', '*')).sort(), ['__keyspace@0__:other/payroll', '__keyspace@0__:team-a/own', 'plain-news']);
      assert.deepEqual(await root.pubsub('NUMSUB', '__keyspace@0__:other/payroll'), ['__keyspace@0__:other/payroll', 1]);
      // A forged notification is refused, for her and for an administrator alike; plain channels work.
      await assert.rejects(alice.publish('__keyspace@0__:other/x', 'del'), /^ReplyError: NOPERM 'alice' may not publish to '__keyspace@0__:other\/x'/);
      await assert.rejects(alice.publish('__keyevent@0__:del', 'other/payroll'), /NOPERM/);
      await assert.rejects(root.publish('__keyspace@0__:other/payroll', 'del'), /NOPERM/);
      assert.equal(await alice.publish('plain-news', 'hello'), 1);
      const deadline = Date.now() + 10_000;
      while (got.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      assert.deepEqual(got, ['plain-news hello'], 'the subscriber received only the plain message');
    } finally {
      root.disconnect();
      alice.disconnect();
      adminSub.disconnect();
    }
  });

  test('a subscriber whose user is deleted is disconnected; an administrator subscription keeps receiving', async () => {
    await userToken(node.url, adminToken, 'carol', ['team-a']);
    const carol = new Redis({ port: node.respPort, host: '127.0.0.1', username: 'carol', password: 'carol-password-1', retryStrategy: () => null });
    const adminSub = new Redis({ port: node.respPort, host: '127.0.0.1', username: 'admin', password: ADMIN_PASSWORD });
    const pub = new Redis({ port: node.respPort, host: '127.0.0.1', username: 'admin', password: ADMIN_PASSWORD });
    try {
      const carolGot: string[] = [];
      const adminGot: string[] = [];
      let carolClosed = false;
      carol.on('pmessage', (_p: string, _ch: string, msg: string) => carolGot.push(msg));
      carol.on('end', () => (carolClosed = true));
      adminSub.on('pmessage', (_p: string, _ch: string, msg: string) => adminGot.push(msg));
      // Wait for ioredis's ready check first: it would otherwise run INFO on a subscribed connection.
      await Promise.all([carol.ping(), adminSub.ping()]);
      await carol.psubscribe('news*');
      await adminSub.psubscribe('news*');
      assert.equal(await pub.publish('news-1', 'before'), 2);
      assert.equal((await client(node.url, adminToken)('/v1/users/carol', { method: 'DELETE' })).status < 300, true);
      // Publish until the server notices (it re-checks a subscriber at most once a second).
      let i = 0;
      const deadline = Date.now() + 20_000;
      while (!carolClosed && Date.now() < deadline) {
        await pub.publish('news-1', `after-${i++}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.ok(carolClosed, "the deleted user's subscribed connection was closed");
      assert.equal(await pub.publish('news-1', 'last'), 1, 'only the administrator is still subscribed');
      const until = Date.now() + 10_000;
      while (!adminGot.includes('last') && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
      assert.ok(adminGot.includes('before') && adminGot.includes('last'), 'the administrator kept receiving');
      assert.ok(carolGot.includes('before') && !carolGot.includes('last'));
    } finally {
      carol.disconnect();
      adminSub.disconnect();
      pub.disconnect();
    }
  });

  test('AUTH with an API key; audit records for durable writes name the principal', async () => {
    const admin = client(node.url, adminToken);
    const key = (await admin('/v1/apikeys', { method: 'POST', body: { name: 'svc', roles: ['team-a'] } })).body.key as string;
    const svc = new Redis({ port: node.respPort, host: '127.0.0.1', password: key });
    assert.equal(await svc.set('team-a/from-svc', 'v'), 'OK');
    svc.disconnect();
    const audit = await admin('/v1/audit?key=team-a/from-svc');
    const rec = (audit.body.records as { principal: string; action: string }[]).find((r) => r.action === 'resp.set');
    assert.equal(rec?.principal, 'apikey:svc');
    const denied = await admin('/v1/audit?outcome=denied');
    assert.ok((denied.body.records as { action: string }[]).some((r) => r.action.startsWith('resp.')), 'refusals are audited');
  });

  test('secrets: an admin reads the clear value; a viewer gets -NOPERM, never the plaintext', async () => {
    const adminR = new Redis({ port: node.respPort, host: '127.0.0.1', username: 'admin', password: ADMIN_PASSWORD });
    assert.equal(await adminR.set('vault/db-password', 's3cret'), 'OK');
    assert.equal(await adminR.get('vault/db-password'), 's3cret');
    const raw = (await client(node.url, adminToken)('/v1/kv/vault/db-password')).body.kv.value as string;
    assert.equal(raw, 's3cret', 'HTTP decrypts for the admin too');
    const vic = new Redis({ port: node.respPort, host: '127.0.0.1', username: 'vic', password: 'vic-password-1' });
    await assert.rejects(vic.get('vault/db-password'), (err: Error) => err.message.startsWith('NOPERM') && !err.message.includes('s3cret'));
    vic.disconnect();
    adminR.disconnect();
  });
});

test('TLS on the RESP port from --tls-cert/--tls-key (redis-cli --tls)', async () => {
  const tmp = tempDir();
  try {
    const cert = join(tmp.dir, 'cert.pem');
    const key = join(tmp.dir, 'key.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
    const node = await startRespNode({ tls: { cert, key } });
    try {
      assert.ok(node.resp?.url.startsWith('rediss://'));
      const out = await redisCli(node.respPort, ['--tls', '--cacert', cert, 'SET', 'tls/k', 'v']);
      assert.equal(out.trim(), 'OK');
      const io = new Redis({ port: node.respPort, host: '127.0.0.1', tls: { ca: execFileSync('cat', [cert]) } });
      assert.equal(await io.get('tls/k'), 'v');
      io.disconnect();
      // A plain-text client gets nothing useful from the TLS port.
      const plain = await RawClient.open(node.respPort);
      plain.write(frame('PING'));
      await plain.closedWithin(5000);
      assert.ok(!plain.received.toString().includes('PONG'));
      plain.close();
    } finally {
      await node.cleanup();
    }
  } finally {
    tmp.cleanup();
  }
});
