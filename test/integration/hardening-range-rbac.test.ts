// Issue 9, finding 1 (Critical): a watch range bypassed prefix RBAC. A user whose only grant is
// {prefix:"team/",access:"read"} sent {"type":"create","key":"team/","rangeEnd":""} (or "\u0000"):
// authorization judged a bounded range, the hub watched every key after team/. One parse
// (parseRange) now feeds both. Every range of the table, on every face, is refused or confined.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { ADMIN_PASSWORD, client, login, startSecureNode, userToken, type SecureNode } from './security-helpers.js';
import { JsonSocket } from './watch-helpers.js';

let node: SecureNode;
let admin: ReturnType<typeof client>;
let team: ReturnType<typeof client>;
let teamToken: string;

/** The ranges of the table, as JSON fields next to `key`. */
const RANGES: { name: string; key: string; fields: Record<string, unknown> }[] = [
  { name: 'rangeEnd ""', key: 'team/', fields: { rangeEnd: '' } },
  { name: 'rangeEnd "\\0"', key: 'team/', fields: { rangeEnd: '\u0000' } },
  { name: 'rangeEnd null', key: 'team/', fields: { rangeEnd: null } },
  { name: 'rangeEnd absent', key: 'team/', fields: {} },
  { name: 'prefix', key: 'team/', fields: { prefix: true } },
  { name: 'prefix + rangeEnd ""', key: 'team/', fields: { prefix: true, rangeEnd: '' } },
  { name: 'prefix + rangeEnd "\\0"', key: 'team/', fields: { prefix: true, rangeEnd: '\u0000' } },
  { name: 'prefix + rangeEnd past grant', key: 'team/', fields: { prefix: true, rangeEnd: 'zzz' } },
  { name: 'rangeEnd below key', key: 'team/', fields: { rangeEnd: 'a' } },
  { name: 'rangeEnd past grant', key: 'team/', fields: { rangeEnd: 'zzz' } },
  { name: 'rangeEnd inside grant', key: 'team/', fields: { rangeEnd: 'team0' } },
  { name: 'key "" rangeEnd "\\0"', key: '', fields: { rangeEnd: '\u0000' } },
  { name: 'key "" rangeEnd ""', key: '', fields: { rangeEnd: '' } },
  { name: 'key "" prefix', key: '', fields: { prefix: true } },
  { name: 'key "\\0" rangeEnd "\\0"', key: '\u0000', fields: { rangeEnd: '\u0000' } },
];

const confined = (keys: string[], where: string) => {
  for (const k of keys) assert.ok(k.startsWith('team/'), `${where}: saw '${k}' outside the grant`);
};

before(async () => {
  node = await startSecureNode();
  const adminToken = await login(node.url, 'admin', ADMIN_PASSWORD);
  admin = client(node.url, adminToken);
  assert.ok((await admin('/v1/roles/team-reader', { method: 'PUT', body: { permissions: [{ prefix: 'team/', access: 'read' }] } })).status < 300);
  teamToken = await userToken(node.url, adminToken, 'team-user', ['team-reader']);
  team = client(node.url, teamToken);
  for (const k of ['a/early', 'team/', 'team/x', 'tenant/secret', 'zzz/late']) {
    assert.equal((await admin(`/v1/kv/${k}`, { method: 'PUT', body: { value: `v-${k}` } })).status, 200);
  }
});

after(async () => {
  await node.cleanup();
});

test('txn range op, compare and delete: each range is refused or confined to the grant', async () => {
  for (const r of RANGES) {
    const op = { key: r.key, ...r.fields };
    const range = await team('/v1/txn', { method: 'POST', body: { success: [{ range: op }] } });
    if (range.status === 200) confined(range.body.results[0].range.kvs.map((kv: any) => kv.key), `txn range ${r.name}`);
    else assert.ok([400, 403].includes(range.status), `txn range ${r.name}: ${range.status}`);
    const cmp = await team('/v1/txn', { method: 'POST', body: { compare: [{ ...op, target: 'version', result: '>', value: 0 }] } });
    if (cmp.status === 200) assert.ok(!r.name.includes('past grant') && !r.fields.rangeEnd?.toString().startsWith('\u0000'), `txn compare ${r.name} was allowed`);
    else assert.ok([400, 403].includes(cmp.status), `txn compare ${r.name}: ${cmp.status}`);
    // The reader may not write: every delete is refused, never half-applied.
    const del = await team('/v1/txn', { method: 'POST', body: { success: [{ delete: op }] } });
    assert.ok([400, 403].includes(del.status), `txn delete ${r.name}: ${del.status}`);
  }
  assert.equal((await admin('/v1/kv/tenant/secret')).status, 200, 'nothing was deleted');
});

test('GET range and DELETE: refused or confined', async () => {
  for (const q of ['?prefix=true', '?prefix=true&rangeEnd=', '?prefix=true&rangeEnd=%00', '?rangeEnd=%00', '?rangeEnd=', '?rangeEnd=zzz']) {
    for (const key of ['team/', '']) {
      const res = await team(`/v1/kv/${key}${q}`);
      if (res.status === 200) confined(res.body.kvs ? res.body.kvs.map((kv: any) => kv.key) : [res.body.kv.key], `GET ${key}${q}`);
      else assert.ok([400, 403, 404].includes(res.status), `GET ${key}${q}: ${res.status}`);
      const del = await team(`/v1/kv/${key}${q}`, { method: 'DELETE' });
      assert.ok([400, 403].includes(del.status), `DELETE ${key}${q}: ${del.status}`);
    }
  }
});

test('WebSocket watch: each create is refused or sees only keys under the grant, past and live', async () => {
  const ws = await JsonSocket.open(`${node.url}/v1/watch`, { headers: { authorization: `Bearer ${teamToken}` } });
  try {
    const created: number[] = [];
    for (const [i, r] of RANGES.entries()) {
      ws.send({ type: 'create', watchId: i + 1, key: r.key, fromRevision: 1, ...r.fields });
      const m = await ws.take((f) => f.watchId === i + 1 && (f.type === 'created' || f.type === 'error'));
      if (m.type === 'created') created.push(i + 1);
      else assert.ok(['invalid_argument', 'permission_denied'].includes(m.error.code), `${r.name}: ${m.error.code}`);
    }
    assert.ok(created.length > 0);
    await admin('/v1/kv/zzz/live', { method: 'PUT', body: { value: 'live' } });
    await admin('/v1/kv/a/live', { method: 'PUT', body: { value: 'live' } });
    // A marker every confined watch includes: once it arrives, everything before it arrived too.
    const marker = (await admin('/v1/kv/team/', { method: 'PUT', body: { value: 'marker' } })).body.revision as number;
    for (const id of created) await ws.take((f) => f.type === 'events' && f.watchId === id && f.revision === marker);
    for (const id of created) confined(ws.events(id).flatMap((f: any) => f.events.map((e: any) => e.kv.key)), `ws watch ${RANGES[id - 1]?.name}`);
  } finally {
    await ws.close();
  }
});

test('SSE watch: each range is refused or confined', async () => {
  for (const q of ['?rangeEnd=', '?rangeEnd=%00', '?prefix=true&rangeEnd=%00', '?rangeEnd=zzz', '?rangeEnd=a']) {
    for (const key of ['team/', '']) {
      const ctl = new AbortController();
      const res = await fetch(`${node.url}/v1/watch/${key}${q}${q ? '&' : '?'}fromRevision=1`, { headers: { authorization: `Bearer ${teamToken}` }, signal: ctl.signal });
      if (res.status !== 200) {
        assert.ok([400, 403].includes(res.status), `SSE ${key}${q}: ${res.status}`);
        await res.body?.cancel();
        continue;
      }
      // Read what catch-up sends, then stop (a leaking watch would show a/early or tenant/secret first).
      const reader = res.body!.getReader();
      let text = '';
      const deadline = Date.now() + 1500;
      while (Date.now() < deadline && !text.includes('tenant/secret') && !text.includes('"team/x"')) {
        const chunk = await Promise.race([reader.read(), new Promise<{ done: true; value: undefined }>((r) => setTimeout(() => r({ done: true, value: undefined }), 300))]);
        if (chunk.value) text += Buffer.from(chunk.value).toString('utf8');
        if (chunk.done && !chunk.value) break;
      }
      ctl.abort();
      for (const m of text.matchAll(/"key":"([^"]*)"/g)) confined([m[1] as string], `SSE ${key}${q}`);
    }
  }
});

test('configs watch: subscribe to a prefix or key outside the grant is refused', async () => {
  const ws = await JsonSocket.open(`${node.url}/v1/configs/watch`, { headers: { authorization: `Bearer ${teamToken}` } });
  try {
    for (const t of [{ prefix: '' }, { prefix: 't' }, { key: '' }, { prefix: '\u0000' }, { key: 'tenant/secret' }]) {
      ws.send({ type: 'subscribe', ...t, fromRevision: 1 });
      const m = await ws.take((f) => f.type === 'subscribed' || f.type === 'error');
      assert.equal(m.type, 'error', `configs watch ${JSON.stringify(t)}`);
      assert.ok(['invalid_argument', 'permission_denied'].includes(m.error.code));
    }
  } finally {
    await ws.close();
  }
});
