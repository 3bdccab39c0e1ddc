// Issue 9: fuzzed WebSocket watch frames and random ranges against a real node, as a reader of
// `team/` only: no crash, no 5xx, the socket answers after every frame, never a key outside the
// grant. Seeded (BEACON_FUZZ_SEED) and bounded in time (~20 s).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import fc from 'fast-check';
import { ADMIN_PASSWORD, client, login, startSecureNode, userToken, type SecureNode } from './security-helpers.js';
import { JsonSocket } from './watch-helpers.js';

const SEED = Number(process.env.BEACON_FUZZ_SEED ?? 20260902);
const BUDGET_MS = 20_000;
let node: SecureNode;
let teamToken: string;
let team: ReturnType<typeof client>;
let admin: ReturnType<typeof client>;

before(async () => {
  node = await startSecureNode();
  const adminToken = await login(node.url, 'admin', ADMIN_PASSWORD);
  admin = client(node.url, adminToken);
  await admin('/v1/roles/team-reader', { method: 'PUT', body: { permissions: [{ prefix: 'team/', access: 'read' }] } });
  teamToken = await userToken(node.url, adminToken, 'fuzz-user', ['team-reader']);
  team = client(node.url, teamToken);
  for (const k of ['a', 'team/', 'team/x', 'tenant/secret', 'zzz']) await admin(`/v1/kv/${k}`, { method: 'PUT', body: { value: k } });
});

after(async () => {
  await node.cleanup();
});

const keyish = fc.oneof(
  fc.constantFrom('', '\u0000', '\u0001', 'team/', 'team0', 'team', 'a', 'zzz', '\uffff', 'team/\u0000', '\ud800'),
  fc.string({ maxLength: 8 }),
  fc.string({ maxLength: 4 }).map((s) => `team/${s}`),
);
const anyValue = fc.oneof(keyish, fc.constant(null), fc.boolean(), fc.integer(), fc.constant([]), fc.constant({}));
const rangeFields = fc.record({ key: anyValue, rangeEnd: anyValue, prefix: anyValue }, { requiredKeys: [] });
const frame = fc.oneof(
  rangeFields.map((r) => ({ type: 'create', fromRevision: 1, ...r })),
  fc.record({ type: fc.oneof(fc.constantFrom('create', 'cancel', 'progress', 'keepalive', 'bogus'), anyValue), watchId: anyValue, fromRevision: anyValue, lease: anyValue, key: anyValue }, { requiredKeys: [] }),
);

test('fuzzed watch frames and ranges: no crash, no 5xx, never a key outside the grant', async () => {
  const ws = await JsonSocket.open(`${node.url}/v1/watch`, { headers: { authorization: `Bearer ${teamToken}` } });
  const started = Date.now();
  let runs = 0;
  try {
    await fc.assert(
      fc.asyncProperty(frame, rangeFields, async (f, r) => {
        if (Date.now() - started > BUDGET_MS) return;
        runs++;
        ws.send(f);
        // The socket stays usable: a progress frame always gets its answer.
        ws.send({ type: 'progress' });
        await ws.take((m) => m.type === 'progress');
        const body = { success: [{ range: r }] };
        const res = await team('/v1/txn', { method: 'POST', body });
        assert.ok(res.status < 500, `txn answered ${res.status}`);
        if (res.status === 200) for (const kv of res.body.results[0].range.kvs) assert.ok(kv.key.startsWith('team/'), `txn saw ${kv.key}`);
      }),
      {
        seed: SEED,
        numRuns: 400,
        endOnFailure: true,
        // The shapes of the finding first, then the random ones.
        examples: [
          [{ type: 'create', key: 'team/', rangeEnd: '', fromRevision: 1 }, { key: 'team/', rangeEnd: '' }],
          [{ type: 'create', key: 'team/', rangeEnd: '\u0000', fromRevision: 1 }, { key: 'team/', rangeEnd: '\u0000' }],
        ],
      },
    );
    // Live writes on both sides of the grant, then a marker on team/: whatever leaked has arrived by then.
    await admin('/v1/kv/zzz/live', { method: 'PUT', body: { value: 'live' } });
    const marker = (await admin('/v1/kv/team/', { method: 'PUT', body: { value: 'marker' } })).body.revision as number;
    await ws.take((m) => m.type === 'events' && m.revision === marker, 3000).catch(() => undefined);
    for (const m of ws.events()) for (const e of m.events ?? []) assert.ok(e.kv.key.startsWith('team/'), `watch saw ${e.kv.key}`);
    assert.ok(runs > 10);
    assert.equal((await fetch(`${node.url}/healthz`)).status, 200);
  } finally {
    await ws.close();
  }
});
