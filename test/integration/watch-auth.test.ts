// Watches with authentication on: every WebSocket create/subscribe frame is authorized against
// the principal's grants, system keys never reach a watcher, secret values are decrypted for
// principals who may read secrets and redacted for the others, and a deleted user loses its watches.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { tempDir } from '../helpers/node.js';
import { ADMIN_PASSWORD, client, login, startSecureNode, userToken, type SecureNode, writeKekFile } from './security-helpers.js';
import { JsonSocket, until } from './watch-helpers.js';

let node: SecureNode;
let adminToken: string;
let admin: ReturnType<typeof client>;
const kekDir = tempDir('beacon-kek-');

before(async () => {
  const kekFile = writeKekFile(kekDir.dir);
  node = await startSecureNode({ kekFile });
  adminToken = await login(node.url, 'admin', ADMIN_PASSWORD);
  admin = client(node.url, adminToken);
  assert.equal((await admin('/v1/roles/team', { method: 'PUT', body: { permissions: [{ prefix: 'team-a/', access: 'write' }, { prefix: 'shared/', access: 'read' }] } })).status < 300, true);
  assert.equal((await admin('/v1/namespaces/vault/', { method: 'PUT', body: { secret: true } })).status, 201);
});

after(async () => {
  await node.cleanup();
  kekDir.cleanup();
});

function socket(path: string, token: string): Promise<JsonSocket> {
  return JsonSocket.open(`${node.url}${path}`, { headers: { authorization: `Bearer ${token}` } });
}

test('a WebSocket without credentials is refused at the upgrade', async () => {
  await assert.rejects(JsonSocket.open(`${node.url}/v1/watch`));
});

test('each create frame is authorized: a custom role watches its own prefixes only', async () => {
  const team = await userToken(node.url, adminToken, 'team-watcher', ['team']);
  const ws = await socket('/v1/watch', team);
  try {
    ws.send({ type: 'create', key: 'shared/', prefix: true, watchId: 1 });
    assert.equal((await ws.takeType('created')).watchId, 1);
    ws.send({ type: 'create', key: 'other/', prefix: true, watchId: 2 });
    const denied = await ws.takeType('error');
    assert.equal(denied.watchId, 2);
    assert.equal(denied.error.code, 'permission_denied');
    ws.send({ type: 'create', key: '', prefix: true, watchId: 3 });
    assert.equal((await ws.takeType('error')).error.code, 'permission_denied');
    // The permitted watch still works after the refusals.
    await admin('/v1/kv/other/x', { method: 'PUT', body: { value: 'hidden' } });
    await admin('/v1/kv/shared/x', { method: 'PUT', body: { value: 'visible' } });
    const ev = await ws.takeType('events');
    assert.equal(ev.watchId, 1);
    assert.deepEqual(ev.events.map((e: any) => e.kv.key), ['shared/x']);
    // A lease keep-alive needs write access somewhere: the team role has it. A lease is its
    // granter's own (issue 9 finding 9), so the team user keeps alive a lease it granted.
    const lease = (await client(node.url, team)('/v1/leases', { method: 'POST', body: { ttl: 30 } })).body.id;
    ws.send({ type: 'keepalive', lease });
    assert.equal((await ws.takeType('keepalive')).ttl, 30);
  } finally {
    await ws.close();
  }
  // The refusal is audited.
  const audit = await admin('/v1/audit?outcome=denied&principal=team-watcher&action=watch.create');
  assert.ok(audit.body.records.some((r: any) => r.key === 'other/'), JSON.stringify(audit.body.records));
});

test('watching every key from revision 1 never delivers a system key (users, roles, policies)', async () => {
  await userToken(node.url, adminToken, 'someone', ['viewer']); // writes system keys
  const ws = await socket('/v1/watch', adminToken);
  try {
    ws.send({ type: 'create', key: '', prefix: true, fromRevision: 1, watchId: 1 });
    await ws.takeType('created');
    await admin('/v1/kv/marker', { method: 'PUT', body: { value: 'end' } });
    await until(() => ws.received.some((m) => m.type === 'events' && m.events.some((e: any) => e.kv.key === 'marker')), 'the marker event');
    const keys = ws.received.filter((m) => m.type === 'events').flatMap((m) => m.events.map((e: any) => e.kv.key as string));
    assert.ok(keys.length > 1);
    assert.deepEqual(keys.filter((k) => k.startsWith('\u0000')), []);
  } finally {
    await ws.close();
  }
});

test('secret values in watch events: clear for developers, redacted for viewers, never the ciphertext', async () => {
  const dev = await userToken(node.url, adminToken, 'dev-watcher', ['developer']);
  const viewer = await userToken(node.url, adminToken, 'viewer-watcher', ['viewer']);
  const devWs = await socket('/v1/watch', dev);
  const viewerWs = await socket('/v1/watch', viewer);
  const sse = await fetch(`${node.url}/v1/watch/vault/?prefix=true`, { headers: { authorization: `Bearer ${viewer}` } });
  try {
    for (const ws of [devWs, viewerWs]) {
      ws.send({ type: 'create', key: 'vault/', prefix: true, prevKv: true, watchId: 1 });
      await ws.takeType('created');
    }
    assert.equal(sse.status, 200);
    await admin('/v1/kv/vault/db-password', { method: 'PUT', body: { value: 's3cret-one' } });
    await admin('/v1/kv/vault/db-password', { method: 'PUT', body: { value: 's3cret-two' } });
    const devEvents = [await devWs.takeType('events'), await devWs.takeType('events')];
    assert.equal(devEvents[1].events[0].kv.value, 's3cret-two');
    assert.equal(devEvents[1].events[0].prevKv.value, 's3cret-one');
    const viewerEvents = [await viewerWs.takeType('events'), await viewerWs.takeType('events')];
    for (const m of viewerEvents) {
      assert.equal(m.events[0].kv.redacted, true);
      assert.equal(m.events[0].kv.value, undefined);
    }
    assert.equal(viewerEvents[1].events[0].prevKv.redacted, true);
    const reader = (sse.body as ReadableStream<Uint8Array>).getReader();
    let text = '';
    const deadline = Date.now() + 5000;
    while (!text.includes('"version":2') && Date.now() < deadline) {
      const { value, done } = await reader.read();
      if (done) break;
      text += Buffer.from(value).toString('utf8');
    }
    await reader.cancel();
    assert.match(text, /"redacted":true/);
    assert.ok(!text.includes('s3cret'), text);
    assert.ok(!JSON.stringify(viewerWs.received).includes('s3cret'));
  } finally {
    await devWs.close();
    await viewerWs.close();
  }
});

test('a deleted user loses its watch: the socket is closed (4401 unauthenticated, issue 9 finding 5) without waiting for an event', async () => {
  const token = await userToken(node.url, adminToken, 'short-lived', ['viewer']);
  const ws = await socket('/v1/watch', token);
  try {
    ws.send({ type: 'create', key: 'shared/', prefix: true, watchId: 1 });
    await ws.takeType('created');
    assert.equal((await admin('/v1/users/short-lived', { method: 'DELETE' })).status < 300, true);
    await new Promise((r) => setTimeout(r, 1100)); // past the re-check interval
    await admin('/v1/kv/shared/after-delete', { method: 'PUT', body: { value: 'x' } });
    await until(() => ws.closeCode !== undefined, 'the socket to close', 5000);
    assert.equal(ws.closeCode, 4401);
    assert.equal(ws.received.at(-1)?.error?.code, 'unauthenticated');
    assert.ok(!ws.received.some((m) => m.type === 'events' && m.events.some((e: any) => e.kv.key === 'shared/after-delete')));
  } finally {
    await ws.close();
  }
});
