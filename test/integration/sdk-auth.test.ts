// The SDK's coordination helpers and live config against a node with authentication on: the
// token travels with every request, watch socket and SSE stream, and a missing one is refused.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { UnauthenticatedError, createClient } from '../../client/index.js';
import { ADMIN_PASSWORD, startSecureNode } from './security-helpers.js';
import { until } from './sdk-helpers.js';

test('sessions, locks, elections, sequences and live config work with a token, and fail typed without one', async () => {
  const node = await startSecureNode();
  const client = createClient({ endpoint: node.url });
  try {
    await assert.rejects(client.session({ ttl: 5 }), UnauthenticatedError);
    await assert.rejects(client.config('auth/'), UnauthenticatedError);
    await client.login('admin', ADMIN_PASSWORD);

    await client.put('auth/cfg/mode', 'on');
    const cfg = await client.config('auth/cfg/');
    const session = await client.session({ ttl: 5 });
    const lock = await session.mutex('auth/lock').lock();
    assert.ok(lock.fencingToken > 0);
    const leaders: string[] = [];
    const observation = client.election('auth/election').observe();
    void (async () => {
      for await (const l of observation) leaders.push(l.text ?? '');
    })();
    await session.election('auth/election').campaign('me');
    await until(() => leaders.includes('me'), 'the leader observed over SSE with the token');
    await client.put('auth/cfg/mode', 'off');
    await until(() => cfg.value.mode === 'off', 'the config watch (WebSocket) with the token');
    assert.match((await client.createSequential('auth/seq')).key, /^auth\/seq\/0+1$/);
    observation.stop();
    await session.close();
  } finally {
    client.close();
    await node.cleanup();
  }
});
