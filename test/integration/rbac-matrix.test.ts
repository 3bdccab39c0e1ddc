// The RBAC matrix: every route × admin / developer / viewer / a custom role / no credentials,
// allowed or denied, generated from one table and run against a real node with authentication on.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import WebSocket from 'ws';
import { ROUTE_RULES } from '../../src/api/http/authz.js';
import { ADMIN_PASSWORD, capturingLogger, client, login, startSecureNode, userToken, type SecureNode } from './security-helpers.js';
import { http } from '../helpers/node.js';

type Who = 'admin' | 'developer' | 'viewer' | 'team' | 'anonymous';
const ROLES: Who[] = ['admin', 'developer', 'viewer', 'team'];
const EVERYONE: Who[] = ['admin', 'developer', 'viewer', 'team'];
const WRITERS: Who[] = ['admin', 'developer', 'team'];
const GLOBAL_READERS: Who[] = ['admin', 'developer', 'viewer'];
const ADMIN: Who[] = ['admin'];

/** Per-role values the table refers to as `{role}` or through `vars`. */
interface Vars {
  role: Who;
  lease: number;
  emptyLease: number;
  /** Whether the role granted `lease` itself: a lease is its granter's own (issue 9 finding 9), others get 404. */
  ownsLease: boolean;
}

/** One row: a request and who may make it. Allowed means one of `ok` (default 200/201); denied means 403 (401 without credentials). */
interface Row {
  /** The exact key of the route's rule in ROUTE_RULES (src/api/http/authz.ts). */
  route: string;
  note?: string;
  path: (v: Vars) => string;
  method?: string;
  body?: (v: Vars) => unknown;
  allow: Who[] | 'public';
  ok?: number[] | ((v: Vars) => number[]);
  kind?: 'http' | 'ws' | 'sse';
}

const p = (s: string) => (v: Vars) => s.replaceAll('{role}', v.role);

/** The table. The custom role `team` writes `team-a/` and reads `shared/` only. */
/** The admin's refresh token (from the login in `before`): `POST /v1/auth/refresh` needs no other credential. */
let adminRefreshToken = '';

const TABLE: Row[] = [
  // operations
  { route: 'GET /healthz', path: p('/healthz'), allow: 'public' },
  { route: 'GET /readyz', path: p('/readyz'), allow: 'public' },
  // the web console's files (issue 14): public; the API calls they make are checked as usual
  { route: 'GET /ui', path: p('/ui'), allow: 'public', ok: [200, 301] },
  { route: 'GET /ui/', path: p('/ui/'), allow: 'public' },
  { route: 'GET /ui/*', note: 'a deep link', path: p('/ui/keys?key=team-a%2Fx'), allow: 'public' },
  { route: 'GET /metrics', path: p('/metrics'), allow: EVERYONE },
  { route: 'GET /v1/status', path: p('/v1/status'), allow: EVERYONE },
  { route: 'GET /v1/cluster', path: p('/v1/cluster'), allow: EVERYONE },
  { route: 'POST /v1/compact', method: 'POST', path: p('/v1/compact'), body: () => ({ revision: 1 }), allow: ADMIN, ok: [200, 410] },
  { route: 'GET /v1/snapshot', path: p('/v1/snapshot'), allow: ADMIN },
  // kv
  { route: 'GET /v1/kv/*', note: 'shared key', path: p('/v1/kv/shared/k'), allow: EVERYONE },
  { route: 'GET /v1/kv/*', note: 'other key', path: p('/v1/kv/other/k'), allow: GLOBAL_READERS },
  { route: 'GET /v1/kv/*', note: '?prefix own prefix', path: p('/v1/kv/team-a/?prefix=true'), allow: EVERYONE },
  { route: 'GET /v1/kv', note: '?prefix everything', path: p('/v1/kv?prefix=true'), allow: GLOBAL_READERS },
  { route: 'GET /v1/kv/*', note: '?rev history read', path: p('/v1/kv/shared/k?rev=2'), allow: EVERYONE, ok: [200, 404] },
  { route: 'PUT /v1/kv/*', note: 'team-a', method: 'PUT', path: p('/v1/kv/team-a/{role}'), body: () => ({ value: 'v' }), allow: WRITERS },
  { route: 'PUT /v1/kv/*', note: 'other', method: 'PUT', path: p('/v1/kv/other/{role}'), body: () => ({ value: 'v' }), allow: ['admin', 'developer'] },
  { route: 'DELETE /v1/kv/*', note: 'team-a', method: 'DELETE', path: p('/v1/kv/team-a/{role}-gone'), allow: WRITERS },
  { route: 'DELETE /v1/kv/*', note: '?prefix other', method: 'DELETE', path: p('/v1/kv/other/{role}-dir/?prefix=true'), allow: ['admin', 'developer'] },
  { route: 'POST /v1/txn', note: 'put team-a', method: 'POST', path: p('/v1/txn'), body: (v) => ({ success: [{ put: { key: `team-a/txn-${v.role}`, value: 'x' } }] }), allow: WRITERS },
  {
    route: 'POST /v1/txn', note: 'put team-a, range other',
    method: 'POST',
    path: p('/v1/txn'),
    body: (v) => ({ success: [{ put: { key: `team-a/txn2-${v.role}`, value: 'x' } }], failure: [{ range: { key: 'other/', prefix: true } }] }),
    allow: ['admin', 'developer'],
  },
  { route: 'POST /v1/txn', note: 'compare other', method: 'POST', path: p('/v1/txn'), body: () => ({ compare: [{ key: 'other/k', target: 'version', result: '>', value: 0 }] }), allow: GLOBAL_READERS },
  { route: 'POST /v1/txn', note: 'read shared', method: 'POST', path: p('/v1/txn'), body: () => ({ success: [{ range: { key: 'shared/', prefix: true } }] }), allow: EVERYONE },
  // cache tier (issue 11): memory namespaces shared/cache/ and team-a/cache/
  { route: 'GET /v1/cache/*', note: 'shared', path: p('/v1/cache/shared/cache/k'), allow: EVERYONE },
  { route: 'GET /v1/cache/*', note: 'other', path: p('/v1/cache/other/cache/k'), allow: GLOBAL_READERS, ok: [404] },
  { route: 'PUT /v1/cache/*', note: 'team-a', method: 'PUT', path: p('/v1/cache/team-a/cache/{role}'), body: () => ({ value: 'v', ttl: 60 }), allow: WRITERS },
  { route: 'DELETE /v1/cache/*', note: 'team-a', method: 'DELETE', path: p('/v1/cache/team-a/cache/{role}'), allow: WRITERS },
  // leases
  { route: 'POST /v1/leases', method: 'POST', path: p('/v1/leases'), body: () => ({ ttl: 30 }), allow: WRITERS },
  { route: 'GET /v1/leases', path: p('/v1/leases'), allow: EVERYONE },
  // A viewer cannot grant a lease, so the one it looks up is another principal's: 404, as if it did not exist.
  { route: 'GET /v1/leases/:id', path: (v) => `/v1/leases/${v.lease}`, allow: EVERYONE, ok: (v) => (v.ownsLease ? [200] : [404]) },
  { route: 'POST /v1/leases/:id/keepalive', method: 'POST', path: (v) => `/v1/leases/${v.lease}/keepalive`, allow: WRITERS },
  { route: 'DELETE /v1/leases/:id', note: 'no keys', method: 'DELETE', path: (v) => `/v1/leases/${v.emptyLease}`, allow: WRITERS },
  { route: 'DELETE /v1/leases/:id', note: 'holds other/', method: 'DELETE', path: (v) => `/v1/leases/${v.lease}`, allow: ['admin', 'developer'] },
  // configs
  { route: 'GET /v1/configs', note: '?prefix team-a', path: p('/v1/configs?prefix=team-a/'), allow: EVERYONE },
  { route: 'GET /v1/configs', note: 'everything', path: p('/v1/configs'), allow: GLOBAL_READERS },
  { route: 'GET /v1/configs/*', path: p('/v1/configs/shared/cfg'), allow: EVERYONE },
  { route: 'GET /v1/configs/*', note: 'other', path: p('/v1/configs/other/cfg'), allow: GLOBAL_READERS },
  { route: 'GET /v1/configs/*', note: '/history', path: p('/v1/configs/shared/cfg/history'), allow: EVERYONE },
  { route: 'GET /v1/configs/*', note: '/diff', path: p('/v1/configs/shared/cfg/diff'), allow: EVERYONE },
  { route: 'PUT /v1/configs/*', method: 'PUT', path: p('/v1/configs/team-a/cfg-{role}'), body: () => ({ value: { a: 1 } }), allow: WRITERS },
  { route: 'POST /v1/configs/*', note: '/rollback', method: 'POST', path: p('/v1/configs/team-a/rb-{role}/rollback'), body: () => ({ version: 'v1' }), allow: WRITERS },
  // staged rollouts (issue 16): the SDK's listing and adoption report; reading needs read on the prefix or key
  { route: 'GET /v1/rollouts', note: 'shared prefix', path: p('/v1/rollouts?prefix=shared/'), allow: EVERYONE },
  { route: 'GET /v1/rollouts', note: 'other prefix', path: p('/v1/rollouts?prefix=other/'), allow: GLOBAL_READERS },
  { route: 'POST /v1/rollouts/report', method: 'POST', path: p('/v1/rollouts/report'), body: () => ({ key: 'shared/k', rollout: 'r', client: 'c', variant: 'current' }), allow: EVERYONE },
  { route: 'POST /v1/configs/*', note: '/rollouts on another key', method: 'POST', path: p('/v1/configs/other/none/rollouts'), body: () => ({ value: 1, steps: [10], bake: '1m' }), allow: ['admin', 'developer'], ok: [404] },
  { route: 'POST /v1/configs/*', note: '/rollback shared', method: 'POST', path: p('/v1/configs/shared/cfg/rollback'), body: () => ({ version: 'v1' }), allow: ['admin', 'developer'] },
  { route: 'DELETE /v1/configs/*', method: 'DELETE', path: p('/v1/configs/team-a/del-{role}'), allow: WRITERS },
  // watches
  { route: 'GET /v1/watch/*', note: 'SSE, shared', path: p('/v1/watch/shared/k'), allow: EVERYONE, kind: 'sse' },
  { route: 'GET /v1/watch/*', note: 'SSE, other prefix', path: p('/v1/watch/other/?prefix=true'), allow: GLOBAL_READERS, kind: 'sse' },
  // WebSocket watches authorize each create/subscribe frame (test/integration/watch-auth.test.ts): any principal may connect.
  { route: 'GET /v1/watch', note: 'WebSocket', path: p('/v1/watch'), allow: EVERYONE, kind: 'ws' },
  { route: 'GET /v1/watch/*', note: 'SSE, every client key (clamped past the system keys)', path: p('/v1/watch/?prefix=true'), allow: GLOBAL_READERS, kind: 'sse' },
  { route: 'GET /v1/configs/watch', note: 'WebSocket', path: p('/v1/configs/watch?prefix=shared/'), allow: EVERYONE, kind: 'ws' },
  { route: 'GET /v1/configs/watch', note: 'WebSocket, prefix ""', path: p('/v1/configs/watch?prefix='), allow: EVERYONE, kind: 'ws' },
  // coordination
  { route: 'POST /v1/locks/*', method: 'POST', path: p('/v1/locks/team-a/lock-{role}'), body: () => ({ ttl: 10 }), allow: WRITERS },
  { route: 'POST /v1/locks/*', note: 'other', method: 'POST', path: p('/v1/locks/other/lock-{role}'), body: () => ({ ttl: 10 }), allow: ['admin', 'developer'] },
  { route: 'GET /v1/locks/*', path: p('/v1/locks/shared/lock'), allow: EVERYONE },
  { route: 'DELETE /v1/locks/*', method: 'DELETE', path: p('/v1/locks/team-a/nolock-{role}?lease=1'), allow: WRITERS, ok: [200, 404] },
  { route: 'POST /v1/elections/*', note: '/campaign', method: 'POST', path: p('/v1/elections/team-a/e-{role}/campaign'), body: () => ({ value: 'me', ttl: 10 }), allow: WRITERS },
  { route: 'GET /v1/elections/*', note: '/leader', path: p('/v1/elections/shared/e/leader'), allow: EVERYONE, ok: [404] },
  { route: 'GET /v1/elections/*', note: '/candidates', path: p('/v1/elections/other/e/candidates'), allow: GLOBAL_READERS },
  { route: 'POST /v1/sequences/*', method: 'POST', path: p('/v1/sequences/team-a/seq-{role}'), body: () => ({ value: 'x' }), allow: WRITERS },
  // metrics (issue 12): write on @metrics pushes, read queries; `team` holds neither
  { route: 'POST /v1/metrics', method: 'POST', path: p('/v1/metrics'), body: (v) => ({ name: 'rbac.push', value: 1, labels: { who: v.role } }), allow: ['admin', 'developer'] },
  { route: 'POST /api/v1/write', note: 'not snappy: 400 once admitted', method: 'POST', path: p('/api/v1/write'), body: () => ({}), allow: ['admin', 'developer'], ok: [400] },
  { route: 'GET /api/v1/query', path: p('/api/v1/query?query=up'), allow: GLOBAL_READERS },
  { route: 'POST /api/v1/query', method: 'POST', path: p('/api/v1/query?query=up'), allow: GLOBAL_READERS },
  { route: 'GET /api/v1/query_range', path: p('/api/v1/query_range?query=up&start=1&end=2&step=1'), allow: GLOBAL_READERS },
  { route: 'POST /api/v1/query_range', method: 'POST', path: p('/api/v1/query_range?query=up&start=1&end=2&step=1'), allow: GLOBAL_READERS },
  { route: 'GET /api/v1/series', path: p('/api/v1/series?match[]=up'), allow: GLOBAL_READERS },
  { route: 'POST /api/v1/series', method: 'POST', path: p('/api/v1/series?match[]=up'), allow: GLOBAL_READERS },
  { route: 'GET /api/v1/labels', path: p('/api/v1/labels'), allow: GLOBAL_READERS },
  { route: 'POST /api/v1/labels', method: 'POST', path: p('/api/v1/labels'), allow: GLOBAL_READERS },
  { route: 'GET /api/v1/label/:name/values', path: p('/api/v1/label/job/values'), allow: GLOBAL_READERS },
  { route: 'GET /api/v1/status/buildinfo', path: p('/api/v1/status/buildinfo'), allow: EVERYONE },
  // alerting and dashboards (issue 13): read or write on @alerts / @dashboards; `team` holds neither
  { route: 'GET /api/v1/rules', path: p('/api/v1/rules'), allow: GLOBAL_READERS },
  { route: 'GET /api/v1/alerts', path: p('/api/v1/alerts'), allow: GLOBAL_READERS },
  { route: 'GET /v1/alerts', path: p('/v1/alerts'), allow: GLOBAL_READERS },
  { route: 'GET /v1/alerts/notifications', path: p('/v1/alerts/notifications'), allow: GLOBAL_READERS },
  { route: 'GET /v1/alerts/rules', path: p('/v1/alerts/rules'), allow: GLOBAL_READERS },
  { route: 'GET /v1/alerts/rules/:name', path: p('/v1/alerts/rules/beacon-defaults'), allow: GLOBAL_READERS },
  {
    route: 'PUT /v1/alerts/rules/:name', method: 'PUT', path: p('/v1/alerts/rules/rbac-{role}'),
    body: () => ({ text: 'groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: vector(0) > 1\n' }), allow: ['admin', 'developer'],
  },
  { route: 'POST /v1/alerts/rules', method: 'POST', path: p('/v1/alerts/rules?file=rbac-post-{role}'), body: () => ({ alert: 'B', expr: 'vector(0) > 1' }), allow: ['admin', 'developer'] },
  { route: 'DELETE /v1/alerts/rules/:name', method: 'DELETE', path: p('/v1/alerts/rules/rbac-post-{role}'), allow: ['admin', 'developer'], ok: [200, 404] },
  { route: 'GET /v1/alerts/silences', path: p('/v1/alerts/silences'), allow: GLOBAL_READERS },
  {
    route: 'POST /v1/alerts/silences', method: 'POST', path: p('/v1/alerts/silences'),
    body: (v) => ({ matchers: [{ name: 'alertname', value: `rbac-${v.role}`, isRegex: false }], duration: '1h' }), allow: ['admin', 'developer'],
  },
  { route: 'DELETE /v1/alerts/silences/:id', note: 'unknown id: 404 once admitted', method: 'DELETE', path: p('/v1/alerts/silences/00000000-0000-0000-0000-000000000000'), allow: ['admin', 'developer'], ok: [404] },
  { route: 'GET /v1/dashboards', path: p('/v1/dashboards'), allow: GLOBAL_READERS },
  { route: 'GET /v1/dashboards/:id', path: p('/v1/dashboards/beacon'), allow: GLOBAL_READERS },
  { route: 'PUT /v1/dashboards/:id', method: 'PUT', path: p('/v1/dashboards/rbac-{role}'), body: () => ({ title: 't', panels: [{ title: 'up', expr: 'up' }] }), allow: ['admin', 'developer'] },
  { route: 'DELETE /v1/dashboards/:id', method: 'DELETE', path: p('/v1/dashboards/rbac-{role}'), allow: ['admin', 'developer'], ok: [200, 404] },
  // identity, audit, namespaces
  { route: 'POST /v1/auth/token', method: 'POST', path: p('/v1/auth/token'), body: () => ({ username: 'admin', password: ADMIN_PASSWORD }), allow: 'public' },
  { route: 'POST /v1/auth/refresh', method: 'POST', path: p('/v1/auth/refresh'), body: () => ({ refreshToken: adminRefreshToken }), allow: 'public' },
  { route: 'GET /v1/auth/whoami', path: p('/v1/auth/whoami'), allow: EVERYONE },
  { route: 'GET /v1/users', path: p('/v1/users'), allow: ADMIN },
  { route: 'POST /v1/users', method: 'POST', path: p('/v1/users'), body: (v) => ({ name: `made-by-${v.role}`, password: 'long-enough-pw', roles: ['viewer'] }), allow: ADMIN },
  { route: 'GET /v1/users/:name', note: 'self', path: (v) => `/v1/users/${v.role === 'admin' ? 'admin' : `${v.role}-user`}`, allow: EVERYONE },
  { route: 'GET /v1/users/:name', note: 'other', path: p('/v1/users/victim-{role}'), allow: ADMIN },
  { route: 'PATCH /v1/users/:name', method: 'PATCH', path: p('/v1/users/victim-{role}'), body: () => ({ roles: ['developer'] }), allow: ADMIN },
  { route: 'PUT /v1/users/:name/password', note: 'other', method: 'PUT', path: p('/v1/users/victim-{role}/password'), body: () => ({ password: 'new-long-password' }), allow: ADMIN },
  { route: 'DELETE /v1/users/:name', method: 'DELETE', path: p('/v1/users/victim-{role}'), allow: ADMIN },
  { route: 'GET /v1/roles', path: p('/v1/roles'), allow: EVERYONE },
  { route: 'GET /v1/roles/:name', path: p('/v1/roles/viewer'), allow: EVERYONE },
  { route: 'PUT /v1/roles/:name', method: 'PUT', path: p('/v1/roles/made-by-{role}'), body: () => ({ permissions: [{ prefix: 'x/', access: 'read' }] }), allow: ADMIN },
  { route: 'DELETE /v1/roles/:name', method: 'DELETE', path: p('/v1/roles/doomed-{role}'), allow: ADMIN },
  { route: 'POST /v1/apikeys', method: 'POST', path: p('/v1/apikeys'), body: (v) => ({ name: `key-${v.role}`, roles: ['viewer'] }), allow: ADMIN },
  { route: 'GET /v1/apikeys', path: p('/v1/apikeys'), allow: ADMIN },
  { route: 'DELETE /v1/apikeys/:id', method: 'DELETE', path: p('/v1/apikeys/0000000000000000'), allow: ADMIN, ok: [404] },
  { route: 'GET /v1/audit', path: p('/v1/audit?limit=5'), allow: ADMIN },
  { route: 'GET /v1/namespaces', path: p('/v1/namespaces'), allow: EVERYONE },
  { route: 'GET /v1/namespaces/*', note: 'team-a', path: p('/v1/namespaces/team-a/'), allow: EVERYONE },
  { route: 'PUT /v1/namespaces/*', method: 'PUT', path: p('/v1/namespaces/team-a/ns-{role}/'), body: () => ({ format: 'json' }), allow: ADMIN },
  { route: 'PATCH /v1/namespaces/*', method: 'PATCH', path: p('/v1/namespaces/team-a/'), body: () => ({ description: 'patched' }), allow: ADMIN },
  { route: 'DELETE /v1/namespaces/*', method: 'DELETE', path: p('/v1/namespaces/team-a/ns-{role}/'), allow: ADMIN },
  { route: 'POST /v1/secrets/reencrypt', method: 'POST', path: p('/v1/secrets/reencrypt'), allow: ADMIN },
  { route: 'GET /v1/auth/signing-key', method: 'GET', path: p('/v1/auth/signing-key'), allow: ADMIN },
  // keepPrevious (the default): every token of the matrix stays valid after the admin's rotation.
  { route: 'POST /v1/auth/signing-key/rotate', method: 'POST', path: p('/v1/auth/signing-key/rotate'), body: () => ({}), allow: ADMIN },
];

/** Makes the request of `row` as `token`; resolves with the HTTP status (for WebSocket: 101 when upgraded). */
async function send(base: string, row: Row, v: Vars, token: string | undefined): Promise<number> {
  const headers: Record<string, string> = token !== undefined ? { authorization: `Bearer ${token}` } : {};
  if (row.kind === 'ws') {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(`${base.replace('http', 'ws')}${row.path(v)}`, { headers });
      const t = setTimeout(() => reject(new Error(`${row.route}: no answer`)), 5000);
      ws.once('upgrade', () => {
        clearTimeout(t);
        ws.close();
        resolve(101);
      });
      ws.once('unexpected-response', (_req, res) => {
        clearTimeout(t);
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      ws.once('error', (err) => {
        clearTimeout(t);
        reject(err);
      });
    });
  }
  const ctl = new AbortController();
  const res = await fetch(`${base}${row.path(v)}`, {
    method: row.method ?? 'GET',
    headers: { ...headers, ...(row.body ? { 'content-type': 'application/json' } : {}) },
    ...(row.body ? { body: JSON.stringify(row.body(v)) } : {}),
    signal: ctl.signal,
  });
  if (row.kind === 'sse' && res.status === 200) ctl.abort();
  else await res.arrayBuffer();
  return res.status;
}

describe('RBAC matrix (auth on)', () => {
  const logs = capturingLogger();
  let node: SecureNode;
  let admin: ReturnType<typeof client>;
  const tokens = new Map<Who, string | undefined>();
  const vars = new Map<Who, Vars>();

  before(async () => {
    node = await startSecureNode({ logger: logs.logger });
    const adminToken = await login(node.url, 'admin', ADMIN_PASSWORD);
    adminRefreshToken = (await http(`${node.url}/v1/auth/token`, { method: 'POST', body: { username: 'admin', password: ADMIN_PASSWORD } })).body.refreshToken;
    admin = client(node.url, adminToken);
    const ok = async (r: Promise<{ status: number; body: any }>): Promise<any> => {
      const res = await r;
      assert.ok(res.status < 300, JSON.stringify(res.body));
      return res.body;
    };
    await ok(admin('/v1/roles/team', { method: 'PUT', body: { permissions: [{ prefix: 'team-a/', access: 'write' }, { prefix: 'shared/', access: 'read' }] } }));
    tokens.set('admin', adminToken);
    for (const r of ['developer', 'viewer', 'team'] as const) tokens.set(r, await userToken(node.url, adminToken, `${r}-user`, [r]));
    tokens.set('anonymous', undefined);
    await ok(admin('/v1/kv/shared/k', { method: 'PUT', body: { value: 'shared value' } }));
    await ok(admin('/v1/kv/other/k', { method: 'PUT', body: { value: 'other value' } }));
    await ok(admin('/v1/configs/shared/cfg', { method: 'PUT', body: { value: { v: 1 } } }));
    await ok(admin('/v1/configs/shared/cfg', { method: 'PUT', body: { value: { v: 2 } } }));
    await ok(admin('/v1/configs/other/cfg', { method: 'PUT', body: { value: { v: 1 } } }));
    await ok(admin('/v1/namespaces/team-a/', { method: 'PUT', body: { format: 'text' } }));
    for (const ns of ['shared/cache/', 'team-a/cache/', 'other/cache/']) await ok(admin(`/v1/namespaces/${ns}`, { method: 'PUT', body: { storage: 'memory' } }));
    await ok(admin('/v1/cache/shared/cache/k', { method: 'PUT', body: { value: 'cached' } }));
    for (const who of [...ROLES, 'anonymous'] as Who[]) {
      // Writers grant their own leases (a lease is its granter's); the admin attaches a key outside the role's reach.
      const ownsLease = WRITERS.includes(who);
      const granter = ownsLease ? client(node.url, tokens.get(who)) : admin;
      const lease = (await ok(granter('/v1/leases', { method: 'POST', body: { ttl: 300 } }))).id as number;
      await ok(admin(`/v1/kv/other/leased-${who}`, { method: 'PUT', body: { value: 'x', lease } }));
      const emptyLease = (await ok(granter('/v1/leases', { method: 'POST', body: { ttl: 300 } }))).id as number;
      vars.set(who, { role: who, lease, emptyLease, ownsLease });
      await ok(admin(`/v1/kv/team-a/${who}-gone`, { method: 'PUT', body: { value: 'x' } }));
      await ok(admin(`/v1/configs/team-a/rb-${who}`, { method: 'PUT', body: { value: 'one' } }));
      await ok(admin(`/v1/configs/team-a/rb-${who}`, { method: 'PUT', body: { value: 'two' } }));
      await ok(admin(`/v1/configs/team-a/del-${who}`, { method: 'PUT', body: { value: 'x' } }));
      await ok(admin('/v1/users', { method: 'POST', body: { name: `victim-${who}`, password: 'victim-password', roles: ['viewer'] } }));
      await ok(admin(`/v1/roles/doomed-${who}`, { method: 'PUT', body: { permissions: [] } }));
    }
  });
  after(async () => {
    await node.cleanup();
  });

  it('covers every route: each has a rule, and each rule has a row here', () => {
    assert.ok(!logs.text().includes('routes without an authorisation rule'), 'the node found routes without a rule');
    const rows = new Set(TABLE.map((r) => r.route));
    const missing = Object.keys(ROUTE_RULES).filter((k) => !rows.has(k));
    assert.deepEqual(missing, []);
    for (const r of rows) assert.ok(r in ROUTE_RULES, `${r} is not a route`);
  });

  for (const who of [...ROLES, 'anonymous'] as Who[]) {
    it(`as ${who}`, async () => {
      const failures: string[] = [];
      for (const row of TABLE) {
        const v = vars.get(who) as Vars;
        const status = await send(node.url, row, v, tokens.get(who));
        const allowed = row.allow === 'public' || (who !== 'anonymous' && row.allow.includes(who));
        const ok = row.kind === 'ws' ? [101] : typeof row.ok === 'function' ? row.ok(v) : (row.ok ?? [200, 201]);
        const expected = allowed ? ok : who === 'anonymous' ? [401] : [403];
        if (!expected.includes(status)) failures.push(`${row.route}${row.note ? ` (${row.note})` : ''}: ${status}, expected ${expected.join('/')} (${allowed ? 'allowed' : 'denied'})`);
      }
      assert.deepEqual(failures, []);
    });
  }

  it('denials are in the audit log with principal, action, key and source', async () => {
    const res = await admin('/v1/audit?outcome=denied&principal=team-user&limit=1000');
    assert.equal(res.status, 200);
    const put = res.body.records.find((r: any) => r.action === 'kv.put' && r.key === 'other/team');
    assert.ok(put, JSON.stringify(res.body.records.map((r: any) => [r.action, r.key])));
    assert.equal(put.source, '127.0.0.1');
    assert.equal(typeof put.requestId, 'string');
  });
});
