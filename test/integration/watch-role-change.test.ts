// Watches follow role edits: when an administrator edits a role so that it no longer grants read
// access to a watched range, every WebSocket watch connection (and config watch socket) on that
// range is closed with 1008 and every SSE stream on it ends, before any event written after the
// edit is delivered; edits that keep access close nothing, and secret redaction follows the role.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { tempDir } from '../helpers/node.js';
import { ADMIN_PASSWORD, client, login, startSecureNode, userToken, type SecureNode, writeKekFile } from './security-helpers.js';
import { JsonSocket, SseReader, until } from './watch-helpers.js';

let node: SecureNode;
let admin: ReturnType<typeof client>;
let adminToken: string;
const kekDir = tempDir('beacon-kek-');

before(async () => {
  const kekFile = writeKekFile(kekDir.dir);
  node = await startSecureNode({ kekFile });
  adminToken = await login(node.url, 'admin', ADMIN_PASSWORD);
  admin = client(node.url, adminToken);
  assert.equal((await admin('/v1/namespaces/vault/', { method: 'PUT', body: { secret: true } })).status, 201);
});

after(async () => {
  await node.cleanup();
  kekDir.cleanup();
});

async function putRole(name: string, body: unknown): Promise<void> {
  const res = await admin(`/v1/roles/${name}`, { method: 'PUT', body });
  assert.ok(res.status < 300, `PUT /v1/roles/${name} answered ${res.status}: ${JSON.stringify(res.body)}`);
}

async function put(key: string, value: string): Promise<void> {
  const res = await admin(`/v1/kv/${key}`, { method: 'PUT', body: { value } });
  assert.equal(res.status, 200, JSON.stringify(res.body));
}

function socket(path: string, token: string): Promise<JsonSocket> {
  return JsonSocket.open(`${node.url}${path}`, { headers: { authorization: `Bearer ${token}` } });
}

function wsSaw(ws: JsonSocket, key: string): boolean {
  return ws.received.some((m) => m.type === 'events' && m.events.some((e: any) => e.kv.key === key));
}

function sseSaw(sse: SseReader, key: string): boolean {
  return sse.of('events').some((e) => e.data.events.some((ev: any) => ev.kv.key === key));
}

test('a role edit that drops a watched prefix closes the WebSocket (1008) and ends the SSE stream; other connections keep going', async () => {
  await putRole('team', { permissions: [{ prefix: 'team/', access: 'read' }, { prefix: 'shared/', access: 'read' }] });
  await putRole('bystander', { permissions: [{ prefix: 'elsewhere/', access: 'read' }] });
  const token = await userToken(node.url, adminToken, 'teammate', ['team']);
  const shared = await socket('/v1/watch', token);
  const teamOnly = await socket('/v1/watch', token);
  const configs = await socket('/v1/configs/watch?prefix=shared/', token);
  const sse = await new SseReader().open(`${node.url}/v1/watch/shared/?prefix=true`, { authorization: `Bearer ${token}` });
  try {
    assert.equal(sse.status, 200);
    shared.send({ type: 'create', key: 'shared/', prefix: true, watchId: 1 });
    await shared.takeType('created', 1);
    teamOnly.send({ type: 'create', key: 'team/', prefix: true, watchId: 1 });
    await teamOnly.takeType('created', 1);
    await configs.takeType('subscribed');

    // Edits that keep this user's access close nothing: an unrelated role, a grant added to its role.
    await putRole('bystander', { permissions: [{ prefix: 'elsewhere/', access: 'write' }] });
    await putRole('team', { permissions: [{ prefix: 'team/', access: 'read' }, { prefix: 'shared/', access: 'read' }, { prefix: 'more/', access: 'read' }] });
    await put('shared/kept', 'still visible');
    await until(() => wsSaw(shared, 'shared/kept') && sseSaw(sse, 'shared/kept'), 'the event written after harmless edits', 3000);
    await configs.take((m) => m.type === 'config_update' && m.key === 'shared/kept');
    assert.equal(shared.closeCode, undefined);
    assert.equal(configs.closeCode, undefined);
    assert.equal(sse.ended, false);

    // The revocation: the role keeps team/ and loses shared/.
    await putRole('team', { permissions: [{ prefix: 'team/', access: 'read' }] });
    assert.equal((await client(node.url, token)('/v1/kv/shared/kept')).status, 403);
    const editedAt = Date.now();
    await put('shared/after-revoke', 'must not be delivered');
    await put('team/after-revoke', 'still allowed');
    await until(() => shared.closeCode !== undefined && configs.closeCode !== undefined && sse.ended, 'the shared/ connections to end', 2000);
    assert.ok(Date.now() - editedAt < 2000);
    assert.equal(shared.closeCode, 1008);
    assert.equal(configs.closeCode, 1008);
    assert.ok(!wsSaw(shared, 'shared/after-revoke'), JSON.stringify(shared.received));
    assert.ok(!sseSaw(sse, 'shared/after-revoke'), JSON.stringify(sse.events));
    assert.ok(!configs.received.some((m) => m.key === 'shared/after-revoke'), JSON.stringify(configs.received));

    // The team/-only connection is still authorized: it stays open and keeps receiving.
    const ev = await teamOnly.take((m) => m.type === 'events' && m.events.some((e: any) => e.kv.key === 'team/after-revoke'));
    assert.equal(ev.events[0].kv.value, 'still allowed');
    await put('team/later', 'later');
    await teamOnly.take((m) => m.type === 'events' && m.events.some((e: any) => e.kv.key === 'team/later'));
    assert.equal(teamOnly.closeCode, undefined);
  } finally {
    await shared.close();
    await teamOnly.close();
    await configs.close();
    await sse.close();
  }
});

test('a role that loses secrets gets redacted values from then on, without losing its watch', async () => {
  await putRole('vault-reader', { permissions: [{ prefix: 'vault/', access: 'read' }], secrets: true });
  const token = await userToken(node.url, adminToken, 'vault-user', ['vault-reader']);
  const ws = await socket('/v1/watch', token);
  const sse = await new SseReader().open(`${node.url}/v1/watch/vault/?prefix=true`, { authorization: `Bearer ${token}` });
  try {
    ws.send({ type: 'create', key: 'vault/', prefix: true, watchId: 7 });
    await ws.takeType('created', 7);
    await put('vault/pw', 'clear-before');
    const before = await ws.take((m) => m.type === 'events' && m.events[0].kv.key === 'vault/pw');
    assert.equal(before.events[0].kv.value, 'clear-before');
    await until(() => sseSaw(sse, 'vault/pw'), 'the SSE event before the edit', 3000);

    await putRole('vault-reader', { permissions: [{ prefix: 'vault/', access: 'read' }], secrets: false });
    await put('vault/pw2', 'secret-after');
    const afterEdit = await ws.take((m) => m.type === 'events' && m.events[0].kv.key === 'vault/pw2');
    assert.equal(afterEdit.events[0].kv.redacted, true);
    assert.equal(afterEdit.events[0].kv.value, undefined);
    await until(() => sseSaw(sse, 'vault/pw2'), 'the SSE event after the edit', 3000);
    assert.equal(sse.of('events').find((e) => e.data.events[0].kv.key === 'vault/pw2')?.data.events[0].kv.redacted, true);
    assert.ok(!JSON.stringify(ws.received).includes('secret-after'));
    assert.ok(!JSON.stringify(sse.events).includes('secret-after'));
    assert.equal(ws.closeCode, undefined);
    assert.equal(sse.ended, false);
  } finally {
    await ws.close();
    await sse.close();
  }
});

test('a user deleted and created again under the same name is someone else: the old watch ends', async () => {
  await putRole('solo', { permissions: [{ prefix: 'solo/', access: 'read' }] });
  const token = await userToken(node.url, adminToken, 'phoenix', ['solo']);
  const ws = await socket('/v1/watch', token);
  try {
    ws.send({ type: 'create', key: 'solo/', prefix: true, watchId: 1 });
    await ws.takeType('created', 1);
    // Between two events: delete the user and create a new one with the same name and more access.
    assert.equal((await admin('/v1/users/phoenix', { method: 'DELETE' })).status, 200);
    assert.equal((await admin('/v1/users', { method: 'POST', body: { name: 'phoenix', password: 'another-long-password', roles: ['admin'] } })).status, 201);
    await put('solo/after', 'not for the old session');
    await until(() => ws.closeCode !== undefined, 'the old session closed', 3000);
    assert.equal(ws.closeCode, 4401, 'its credential is gone: unauthenticated (issue 9 finding 5)');
    assert.ok(!wsSaw(ws, 'solo/after'), 'no event after the user was replaced');
    assert.equal((await client(node.url, token)('/v1/kv/solo/after')).status, 401, 'its token is refused too');
  } finally {
    ws.close();
  }
});
