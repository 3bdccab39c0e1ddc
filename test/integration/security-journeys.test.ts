// The seed's journeys 1 and 2 (000: configuration update and propagation, rollback) against the
// built `beacon serve` with authentication on, as a developer holding a token: the same steps as
// test/integration/configs.test.ts, plus the services' change notifications over a WebSocket
// (token in the Authorization header) and Server-Sent Events (token as `access_token`, as a
// browser's EventSource must send it).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { http, spawnServer, tempDir, type ServerProcess } from '../helpers/node.js';
import { login } from './security-helpers.js';

describe('seed journeys 1 and 2 with a token (auth on, built CLI)', () => {
  const tmp = tempDir();
  let server: ServerProcess;
  let token: string;
  let url: string;

  before(async () => {
    server = await spawnServer(['--data-dir', tmp.dir], 20_000, { secure: true, env: { BEACON_ADMIN_PASSWORD: 'journey-admin-pw' } });
    const admin = await login(server.url, 'admin', 'journey-admin-pw');
    const made = await http(`${server.url}/v1/users`, {
      method: 'POST',
      body: { name: 'release-engineer', password: 'release-pw-123', roles: ['developer'] },
      headers: { authorization: `Bearer ${admin}` },
    });
    assert.equal(made.status, 201);
    token = await login(server.url, 'release-engineer', 'release-pw-123');
    url = `${server.url}/v1/configs`;
  });
  after(async () => {
    await server.stop();
    tmp.cleanup();
  });

  /** What `curl -H "Authorization: Bearer $TOKEN" -X METHOD URL -d BODY` sends. */
  const curl = async (method: string, target: string, data?: string, auth = true): Promise<{ status: number; body: any }> => {
    const headers: Record<string, string> = auth ? { authorization: `Bearer ${token}` } : {};
    if (data !== undefined) headers['content-type'] = 'application/x-www-form-urlencoded';
    const res = await fetch(target, { method, headers, ...(data !== undefined ? { body: data } : {}) });
    const text = await res.text();
    return { status: res.status, body: text === '' ? undefined : JSON.parse(text) };
  };

  it('journeys 1 and 2: update to v2, notifications, stale write refused, rollback to v1 as v3', async () => {
    assert.equal((await curl('PUT', `${url}/database.url`, '{"value": "postgresql://old-db:5432/app"}', false)).status, 401, 'no token, no change');
    const v1 = await curl('PUT', `${url}/database.url`, '{"value": "postgresql://old-db:5432/app"}');
    assert.equal(v1.status, 200);
    assert.equal(v1.body.version, 'v1');

    // Services subscribe to changes: one over a WebSocket, one over SSE with the token in the query.
    const ws = new WebSocket(`${server.url.replace('http', 'ws')}/v1/configs/watch?key=database.url`, { headers: { authorization: `Bearer ${token}` } });
    const wsMessages: any[] = [];
    ws.on('message', (d) => wsMessages.push(JSON.parse(String(d))));
    await new Promise<void>((resolve, reject) => {
      ws.once('error', reject);
      const t = setInterval(() => {
        if (wsMessages.some((m) => m.type === 'subscribed')) {
          clearInterval(t);
          resolve();
        }
      }, 10);
    });
    const ctl = new AbortController();
    const sse = await fetch(`${server.url}/v1/watch/database.url?access_token=${encodeURIComponent(token)}`, { signal: ctl.signal });
    assert.equal(sse.status, 200, 'the access_token query parameter authenticates and is not taken for a watch option');
    const reader = (sse.body as ReadableStream<Uint8Array>).getReader();
    let sseText = '';
    void (async () => {
      try {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) return;
          sseText += Buffer.from(value).toString('utf8');
        }
      } catch {
        // aborted
      }
    })();

    // Journey 1: the update.
    const put = await curl('PUT', `${url}/database.url`, '{"value": "postgresql://new-db:5432/app", "version": "v2"}');
    assert.equal(put.status, 200);
    assert.equal(put.body.version, 'v2');
    const got = await curl('GET', `${url}/database.url`);
    assert.equal(got.body.value, 'postgresql://new-db:5432/app');
    assert.equal(got.body.version, 'v2');

    // A second writer from the old state is refused.
    const stale = await curl('PUT', `${url}/database.url`, '{"value": "postgresql://other-db:5432/app", "version": "v2"}');
    assert.equal(stale.status, 409);

    // Journey 2: the rollback.
    const rb = await curl('POST', `${url}/database.url/rollback`, '{"version": "v1"}');
    assert.equal(rb.status, 200);
    assert.deepEqual([rb.body.from_version, rb.body.to_version, rb.body.restored_version], ['v2', 'v3', 'v1']);
    const after = await curl('GET', `${url}/database.url`);
    assert.deepEqual([after.body.value, after.body.version], ['postgresql://old-db:5432/app', 'v3']);

    const deadline = Date.now() + 5000;
    while (Date.now() < deadline && (wsMessages.filter((m) => m.type === 'config_update').length < 2 || !sseText.includes(`"revision":${rb.body.revision}`))) {
      await new Promise((r) => setTimeout(r, 20));
    }
    ws.close();
    ctl.abort();
    const updates = wsMessages.filter((m) => m.type === 'config_update');
    assert.deepEqual(updates.map((m) => [m.version, m.event]), [['v2', 'config_updated'], ['v3', 'config_rolled_back']]);
    assert.ok(sseText.includes('new-db') && sseText.includes(`"revision":${rb.body.revision}`), 'SSE delivered both changes');

    // The audit trail names the engineer for every step.
    const audit = await curl('GET', `${server.url}/v1/audit?key=database.url`);
    assert.equal(audit.status, 403, 'developers do not read the audit log');
    const adminToken = await login(server.url, 'admin', 'journey-admin-pw');
    const trail = await http(`${server.url}/v1/audit?key=database.url`, { headers: { authorization: `Bearer ${adminToken}` } });
    assert.deepEqual(trail.body.records.map((r: any) => [r.principal, r.action, r.newVersion]), [
      ['release-engineer', 'config.put', 1],
      ['release-engineer', 'config.put', 2],
      ['release-engineer', 'config.rollback', 3],
    ]);
  });
});
