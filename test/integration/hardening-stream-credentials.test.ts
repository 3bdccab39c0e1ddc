// Issue 9 finding 5: open streams outlive their credentials. A WebSocket watch, an SSE watch and a
// config watch socket must end when their credential does — the token expires, the signing key is
// rotated with --revoke-tokens, the API key is deleted, or a role edit takes away the watched
// range — even when no event is written meanwhile, with an `error` frame then close 4401
// (`unauthenticated`) or 1008 (`permission_denied`), or SSE `event: error`; a socket whose
// credential ended takes no new `create`; and a client may present a fresh token on the same
// socket (`{"type":"auth","token"}`) before the old one expires and keep its watches.
import assert from 'node:assert/strict';
import { decodeJwt } from 'jose';
import { after, before, describe, test } from 'node:test';
import { createClient, type WatchEvent } from '../../client/index.js';
import { ADMIN_PASSWORD, client, login, startSecureNode, userToken, type SecureNode } from './security-helpers.js';
import { JsonSocket, SseReader, until } from './watch-helpers.js';

/** Streams of one principal: a WebSocket watch, a config watch socket and an SSE watch, all idle on `prefix`. */
async function openStreams(url: string, credential: { authorization: string } | { 'x-api-key': string }, prefix: string) {
  const ws = await JsonSocket.open(`${url}/v1/watch`, { headers: credential });
  ws.send({ type: 'create', key: prefix, prefix: true, watchId: 1 });
  await ws.takeType('created', 1);
  const configs = await JsonSocket.open(`${url}/v1/configs/watch?prefix=${encodeURIComponent(prefix)}`, { headers: credential });
  await configs.take((m) => m.type === 'subscribed');
  const sse = await new SseReader().open(`${url}/v1/watch/${prefix}?prefix=true`, credential);
  assert.equal(sse.status, 200);
  return {
    ws,
    configs,
    sse,
    close: async () => {
      await ws.close();
      await configs.close();
      await sse.close();
    },
  };
}

/** Waits until every stream has ended with `code` (the error frame first, then the WebSocket close code / SSE error event). */
async function assertEnded(s: Awaited<ReturnType<typeof openStreams>>, code: string, closeCode: number, ms: number): Promise<void> {
  await until(() => s.ws.closeCode !== undefined && s.configs.closeCode !== undefined && s.sse.ended, 'every stream to end', ms);
  for (const [name, sock] of [['watch', s.ws], ['configs', s.configs]] as const) {
    assert.equal(sock.closeCode, closeCode, `${name} socket close code`);
    const last = sock.received.at(-1);
    assert.equal(last?.type, 'error', `${name} socket: the last frame is an error frame`);
    assert.equal(last.error.code, code);
  }
  const err = s.sse.of('error').at(-1);
  assert.equal(err?.data.error.code, code, 'SSE: event: error with the code');
}

describe('default token lifetime', () => {
  let node: SecureNode;
  let adminToken: string;
  let admin: ReturnType<typeof client>;

  before(async () => {
    node = await startSecureNode();
    adminToken = await login(node.url, 'admin', ADMIN_PASSWORD);
    admin = client(node.url, adminToken);
  });

  after(async () => {
    await node.cleanup();
  });

  async function put(key: string, value: string): Promise<void> {
    const res = await admin(`/v1/kv/${key}`, { method: 'PUT', body: { value } });
    assert.equal(res.status, 200, JSON.stringify(res.body));
  }

  test('deleting an API key ends its idle streams (4401 unauthenticated) and nothing written later reaches them', async () => {
    const created = await admin('/v1/apikeys', { method: 'POST', body: { name: 'svc', roles: ['viewer'] } });
    assert.equal(created.status, 201);
    const s = await openStreams(node.url, { 'x-api-key': created.body.key }, 'svc/');
    try {
      assert.equal((await admin(`/v1/apikeys/${created.body.id}`, { method: 'DELETE' })).status, 200);
      await assertEnded(s, 'unauthenticated', 4401, 5000);
      await put('svc/after', 'not for a deleted key');
      assert.ok(!JSON.stringify(s.ws.received).includes('svc/after'));
    } finally {
      await s.close();
    }
  });

  test('a role edit that drops the watched prefix ends idle streams (1008 permission_denied); the socket took no new create meanwhile', async () => {
    assert.ok((await admin('/v1/roles/team', { method: 'PUT', body: { permissions: [{ prefix: 'team/', access: 'read' }] } })).status < 300);
    const token = await userToken(node.url, adminToken, 'teammate', ['team']);
    const s = await openStreams(node.url, { authorization: `Bearer ${token}` }, 'team/');
    try {
      assert.ok((await admin('/v1/roles/team', { method: 'PUT', body: { permissions: [{ prefix: 'other/', access: 'read' }] } })).status < 300);
      // A create sent right after the edit is not answered `created` under the old roles.
      s.ws.send({ type: 'create', key: 'team/', prefix: true, watchId: 2 });
      await assertEnded(s, 'permission_denied', 1008, 5000);
      assert.ok(!s.ws.received.some((m) => m.type === 'created' && m.watchId === 2), 'no watch created after the role edit');
    } finally {
      await s.close();
    }
  });

  test('signing-key rotate with keepPrevious false (--revoke-tokens) ends every stream on a token (4401)', async () => {
    const token = await userToken(node.url, adminToken, 'rotated', ['viewer']);
    const s = await openStreams(node.url, { authorization: `Bearer ${token}` }, 'rot/');
    try {
      const rotated = await admin('/v1/auth/signing-key/rotate', { method: 'POST', body: { keepPrevious: false } });
      assert.equal(rotated.status, 200, JSON.stringify(rotated.body));
      await assertEnded(s, 'unauthenticated', 4401, 5000);
      // A new socket with the revoked token is refused outright.
      assert.equal((await client(node.url, token)('/v1/kv/rot/x')).status, 401);
    } finally {
      await s.close();
      adminToken = await login(node.url, 'admin', ADMIN_PASSWORD);
      admin = client(node.url, adminToken);
    }
  });
});

describe('short-lived tokens (3 s)', () => {
  let node: SecureNode;
  const TTL = 3;

  before(async () => {
    node = await startSecureNode({ security: { adminPassword: ADMIN_PASSWORD, loginRateLimit: null, tokenTtlSeconds: TTL } });
  });

  after(async () => {
    await node.cleanup();
  });

  test('streams end when their token expires, though idle: error unauthenticated, close 4401, SSE event: error', async () => {
    const token = await login(node.url, 'admin', ADMIN_PASSWORD);
    const s = await openStreams(node.url, { authorization: `Bearer ${token}` }, 'exp/');
    try {
      await assertEnded(s, 'unauthenticated', 4401, (TTL + 5) * 1000);
      assert.match(s.ws.received.at(-1).error.message, /expired/);
    } finally {
      await s.close();
    }
  });

  test('a fresh token sent as {"type":"auth"} before expiry keeps the socket and its watches past the first token’s expiry', async () => {
    const first = await login(node.url, 'admin', ADMIN_PASSWORD);
    const expiresAt = (decodeJwt(first).exp as number) * 1000; // whole seconds: 2–3 s from now
    const ws = await JsonSocket.open(`${node.url}/v1/watch`, { headers: { authorization: `Bearer ${first}` } });
    try {
      ws.send({ type: 'create', key: 'renew/', prefix: true, watchId: 1 });
      await ws.takeType('created', 1);
      // A token of someone else is refused and changes nothing; the socket stays open.
      const other = await userToken(node.url, first, 'someone', ['viewer']);
      ws.send({ type: 'auth', token: other });
      const refused = await ws.take((m) => m.type === 'error');
      assert.equal(refused.error.code, 'permission_denied');
      ws.send({ type: 'auth', token: 'not-a-token' });
      assert.equal((await ws.take((m) => m.type === 'error')).error.code, 'unauthenticated');
      assert.equal(ws.closeCode, undefined);

      await new Promise((r) => setTimeout(r, 1100)); // a later login gives an expiry at least a second later
      const fresh = await login(node.url, 'admin', ADMIN_PASSWORD);
      ws.send({ type: 'auth', token: fresh });
      const ok = await ws.take((m) => m.type === 'authenticated');
      assert.equal(ok.principal, 'admin');
      assert.ok(ok.expiresAt > expiresAt, 'the connection now expires with the fresh token');

      // Past the first token's expiry the socket is open and its watch still delivers.
      await new Promise((r) => setTimeout(r, Math.max(0, expiresAt - Date.now()) + 300));
      assert.equal(ws.closeCode, undefined, 'still open after the first token expired');
      const res = await client(node.url, fresh)('/v1/kv/renew/k', { method: 'PUT', body: { value: 'v' } });
      assert.equal(res.status, 200);
      const ev = await ws.take((m) => m.type === 'events' && m.watchId === 1);
      assert.equal(ev.events[0].kv.key, 'renew/k');
      // …and it ends when the fresh one expires, unless renewed again.
      await until(() => ws.closeCode !== undefined, 'the socket to close at the fresh token’s expiry', (TTL + 5) * 1000);
      assert.equal(ws.closeCode, 4401);
    } finally {
      await ws.close();
    }
  });
  test('the SDK sends a fresh token (login) on its open watch socket, so the watch outlives the first token', async () => {
    const sdk = createClient({ endpoint: node.url });
    const firstExpiry = Date.parse((await sdk.login('admin', ADMIN_PASSWORD)).expiresAt); // whole seconds: 2–3 s from now
    let live = false;
    const w = sdk.watch('sdk-renew/', { prefix: true, onStatus: (st) => (live ||= st.state === 'watching') });
    const got: WatchEvent[] = [];
    let failure: unknown;
    const reading = (async () => {
      try {
        for await (const ev of w) got.push(ev);
      } catch (err) {
        failure = err;
      }
    })();
    try {
      await until(() => live, 'the SDK watch to be live', 5000);
      await new Promise((r) => setTimeout(r, 1100));
      await sdk.login('admin', ADMIN_PASSWORD); // a new token (expiring at least a second later), which the open socket is given
      await new Promise((r) => setTimeout(r, Math.max(0, firstExpiry - Date.now()) + 300));
      await sdk.put('sdk-renew/k', 'after the first expiry');
      await until(() => got.some((e) => e.kv.key === 'sdk-renew/k') || failure !== undefined, 'the event after the first token expired', 5000);
      assert.equal(failure, undefined);
      assert.equal(got.at(-1)?.kv.key, 'sdk-renew/k');
    } finally {
      w.stop();
      await reading;
    }
  });
});
