// Authentication against real nodes: first-start bootstrap of the built CLI, bad tokens of
// every kind, deleted and disabled users, API keys, OIDC with a local JWKS, rate limits,
// oversized headers and path tricks that try to escape a prefix grant.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { SignJWT, exportJWK, generateKeyPair, type JWK } from 'jose';
import { http, spawnServer, startTestNode, tempDir } from '../helpers/node.js';
import { ADMIN_PASSWORD, client, login, startSecureNode, userToken, type SecureNode } from './security-helpers.js';

const b64 = (o: object): string => Buffer.from(JSON.stringify(o)).toString('base64url');

/** A raw HTTP request (fetch would normalise `..` and percent-escapes away). */
function raw(base: string, method: string, path: string, headers: Record<string, string>, body?: string): Promise<{ status: number; body: any }> {
  const u = new URL(base);
  return new Promise((resolve, reject) => {
    const req = request({ host: u.hostname, port: u.port, method, path, headers: { ...headers, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) } }, (res) => {
      let data = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (data += d));
      res.on('end', () => {
        let parsed: unknown = data;
        try {
          parsed = data === '' ? undefined : JSON.parse(data);
        } catch {
          // not JSON
        }
        resolve({ status: res.statusCode ?? 0, body: parsed });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('first start of `beacon serve` (the built CLI)', () => {
  it('bootstraps admin with a random password, written once (0600) and printed once; never again', async () => {
    const tmp = tempDir();
    try {
      const first = await spawnServer(['--data-dir', tmp.dir], 20_000, { secure: true });
      let password: string;
      try {
        const file = join(tmp.dir, 'admin-password');
        assert.equal(statSync(file).mode & 0o777, 0o600);
        password = readFileSync(file, 'utf8').trim();
        assert.ok(password.length >= 20);
        assert.ok(first.stderr().includes(password), 'printed on the first start');
        assert.equal(statSync(join(tmp.dir, 'jwt-signing.key')).mode & 0o777, 0o600);
        assert.ok(!first.stderr().includes('WARNING'), 'no dev warning');
        assert.equal((await http(`${first.url}/v1/kv/a`)).status, 401);
        assert.equal((await http(`${first.url}/healthz`)).status, 200);
        assert.equal((await http(`${first.url}/readyz`)).status, 200);
        assert.equal((await http(`${first.url}/metrics`)).status, 401);
        const token = await login(first.url, 'admin', password);
        const status = await client(first.url, token)('/v1/status');
        assert.equal(status.body.dev, false);
      } finally {
        await first.stop();
      }
      const key = readFileSync(join(tmp.dir, 'jwt-signing.key'), 'utf8');
      const second = await spawnServer(['--data-dir', tmp.dir, '--metrics-public'], 20_000, { secure: true });
      try {
        assert.ok(!second.stderr().includes(password), 'not printed again');
        assert.ok(!second.stderr().includes('first start'));
        assert.equal(readFileSync(join(tmp.dir, 'admin-password'), 'utf8').trim(), password, 'the file is not rewritten');
        assert.equal(readFileSync(join(tmp.dir, 'jwt-signing.key'), 'utf8'), key, 'the signing key is kept');
        assert.equal((await http(`${second.url}/metrics`)).status, 200, '--metrics-public');
        await login(second.url, 'admin', password);
      } finally {
        await second.stop();
      }
    } finally {
      tmp.cleanup();
    }
  });

  it('takes the first password from BEACON_ADMIN_PASSWORD and writes no file; --dev warns and says so in /v1/status', async () => {
    const tmp = tempDir();
    try {
      const s = await spawnServer(['--data-dir', tmp.dir], 20_000, { secure: true, env: { BEACON_ADMIN_PASSWORD: 'from-the-environment' } });
      try {
        assert.equal(existsSync(join(tmp.dir, 'admin-password')), false);
        assert.ok(!s.stderr().includes('from-the-environment'));
        await login(s.url, 'admin', 'from-the-environment');
      } finally {
        await s.stop();
      }
      const dev = await spawnServer(['--data-dir', tmp.dir]);
      try {
        assert.match(dev.stderr(), /WARNING: beacon is running in --dev mode/);
        assert.equal((await http(`${dev.url}/v1/status`)).body.dev, true);
        assert.equal((await http(`${dev.url}/v1/auth/whoami`)).body.via, 'dev');
      } finally {
        await dev.stop();
      }
    } finally {
      tmp.cleanup();
    }
  });
});

describe('tokens and users', () => {
  let node: SecureNode;
  let adminToken: string;
  let admin: ReturnType<typeof client>;
  let key: Buffer;

  before(async () => {
    node = await startSecureNode();
    adminToken = await login(node.url, 'admin', ADMIN_PASSWORD);
    admin = client(node.url, adminToken);
    key = Buffer.from(readFileSync(join(node.dataDir, 'jwt-signing.key'), 'utf8').trim(), 'hex');
  });
  after(async () => {
    await node.cleanup();
  });

  const whoami = (headers: Record<string, string>) => http(`${node.url}/v1/auth/whoami`, { headers });

  it('issues a short-lived token for a username and password', async () => {
    const res = await http(`${node.url}/v1/auth/token`, { method: 'POST', body: { username: 'admin', password: ADMIN_PASSWORD } });
    assert.equal(res.status, 200);
    const left = Date.parse(res.body.expiresAt) - Date.now();
    assert.ok(left > 14 * 60_000 && left <= 15 * 60_000, `expires in ${left} ms`);
    assert.equal(res.body.tokenType, 'Bearer');
    const me = await whoami({ authorization: `Bearer ${res.body.token}` });
    assert.deepEqual(me.body, { name: 'admin', roles: ['admin'], via: 'token', dev: false });
    const bad = await http(`${node.url}/v1/auth/token`, { method: 'POST', body: { username: 'admin', password: 'wrong-password' } });
    assert.equal(bad.status, 401);
    assert.equal(bad.body.error.code, 'unauthenticated');
    const unknown = await http(`${node.url}/v1/auth/token`, { method: 'POST', body: { username: 'nobody', password: 'wrong-password' } });
    assert.equal(unknown.status, 401);
    assert.equal(unknown.body.error.message, bad.body.error.message, 'the same answer whether or not the user exists');
    assert.equal((await http(`${node.url}/v1/auth/token`, { method: 'POST', body: { username: 'admin' } })).status, 400);
  });

  it('refuses expired, malformed, wrongly signed, alg:none and other-algorithm tokens with 401', async () => {
    const now = Math.floor(Date.now() / 1000);
    const uid = (JSON.parse(Buffer.from(adminToken.split('.')[1] as string, 'base64url').toString()) as { uid: string }).uid;
    const claims = { sub: 'admin', uid, iss: 'beacon', aud: 'beacon' };
    const expired = await new SignJWT({ ...claims, exp: now - 60, iat: now - 1000 }).setProtectedHeader({ alg: 'HS256' }).sign(key);
    const wrongKey = await new SignJWT({ ...claims, exp: now + 600 }).setProtectedHeader({ alg: 'HS256' }).sign(randomBytes(32));
    const hs512 = await new SignJWT({ ...claims, exp: now + 600 }).setProtectedHeader({ alg: 'HS512' }).sign(key);
    const none = `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ ...claims, exp: now + 600 })}.`;
    const parts = adminToken.split('.');
    const tampered = `${parts[0]}.${b64({ ...claims, sub: 'someone-else', exp: now + 600 })}.${parts[2]}`;
    const valid = await new SignJWT({ ...claims, exp: now + 600 }).setProtectedHeader({ alg: 'HS256' }).sign(key);
    assert.equal((await whoami({ authorization: `Bearer ${valid}` })).status, 200, 'the control case passes');
    const cases: [string, Record<string, string>, string][] = [
      ['expired', { authorization: `Bearer ${expired}` }, 'expired'],
      ['wrong key', { authorization: `Bearer ${wrongKey}` }, 'bad_signature'],
      ['HS512', { authorization: `Bearer ${hs512}` }, 'bad_algorithm'],
      ['alg none', { authorization: `Bearer ${none}` }, ''],
      ['tampered', { authorization: `Bearer ${tampered}` }, 'bad_signature'],
      ['garbage', { authorization: 'Bearer not.a.jwt' }, ''],
      ['no scheme', { authorization: adminToken }, 'malformed'],
      ['basic', { authorization: 'Basic YWRtaW46YWRtaW4=' }, 'malformed'],
      ['missing', {}, 'missing'],
    ];
    for (const [name, headers, reason] of cases) {
      const res = await whoami(headers);
      assert.equal(res.status, 401, name);
      assert.equal(res.body.error.code, 'unauthenticated', name);
      if (reason !== '') assert.equal(res.body.error.details.reason, reason, name);
      assert.equal(res.headers.get('www-authenticate'), 'Bearer realm="beacon"');
      assert.ok(!JSON.stringify(res.body).includes(valid.slice(-20)), 'no token echoed');
    }
  });

  it('a token of a deleted, disabled or deleted-and-recreated user is refused at once', async () => {
    const t1 = await userToken(node.url, adminToken, 'temp', ['developer']);
    const as = client(node.url, t1);
    assert.equal((await as('/v1/kv/x', { method: 'PUT', body: { value: '1' } })).status, 200);
    assert.equal((await admin('/v1/users/temp', { method: 'PATCH', body: { disabled: true } })).status, 200);
    assert.equal((await as('/v1/kv/x')).status, 401);
    assert.equal((await http(`${node.url}/v1/auth/token`, { method: 'POST', body: { username: 'temp', password: 'temp-password-1' } })).status, 401);
    assert.equal((await admin('/v1/users/temp', { method: 'PATCH', body: { disabled: false } })).status, 200);
    assert.equal((await as('/v1/kv/x')).status, 200, 'enabled again');
    assert.equal((await admin('/v1/users/temp', { method: 'DELETE' })).status, 200);
    const gone = await as('/v1/kv/x');
    assert.equal(gone.status, 401);
    assert.equal(gone.body.error.details.reason, 'unknown_user');
    await userToken(node.url, adminToken, 'temp', ['developer']);
    assert.equal((await as('/v1/kv/x')).status, 401, "the old token does not carry over to the new user 'temp'");
  });

  it('role changes apply to existing tokens immediately', async () => {
    const t = await userToken(node.url, adminToken, 'mover', ['viewer']);
    const as = client(node.url, t);
    assert.equal((await as('/v1/kv/m', { method: 'PUT', body: { value: '1' } })).status, 403);
    assert.equal((await admin('/v1/users/mover', { method: 'PATCH', body: { roles: ['developer'] } })).status, 200);
    assert.equal((await as('/v1/kv/m', { method: 'PUT', body: { value: '1' } })).status, 200);
  });

  it('auth.refresh re-checks the principal of a long-lived connection (the hook for watches)', async () => {
    const auth = node.security.auth;
    const t = await userToken(node.url, adminToken, 'watcher', ['viewer']);
    const p = await auth.authenticate({ authorization: `Bearer ${t}` });
    assert.deepEqual(auth.refresh(p)?.roles, ['viewer']);
    await admin('/v1/users/watcher', { method: 'PATCH', body: { roles: ['developer'] } });
    assert.deepEqual(auth.refresh(p)?.roles, ['developer']);
    await admin('/v1/users/watcher', { method: 'DELETE' });
    assert.equal(auth.refresh(p), undefined);
    const made = await admin('/v1/apikeys', { method: 'POST', body: { name: 'w', roles: ['viewer'] } });
    const k = await auth.authenticate({ apiKey: made.body.key });
    assert.equal(auth.refresh(k)?.name, 'apikey:w');
    await admin(`/v1/apikeys/${made.body.id}`, { method: 'DELETE' });
    assert.equal(auth.refresh(k), undefined);
    assert.equal(auth.canRead(auth.refresh(p) ?? p, '\u0000auth/users/admin'), false);
  });

  it('users change their own password with the current one; the last admin cannot be removed', async () => {
    const t = await userToken(node.url, adminToken, 'selfish', ['viewer']);
    const as = client(node.url, t);
    assert.equal((await as('/v1/users/selfish/password', { method: 'PUT', body: { password: 'a-new-password' } })).status, 400);
    assert.equal((await as('/v1/users/selfish/password', { method: 'PUT', body: { currentPassword: 'selfish-password-1', password: 'a-new-password' } })).status, 200);
    await login(node.url, 'selfish', 'a-new-password');
    assert.equal((await as('/v1/users/admin/password', { method: 'PUT', body: { password: 'taken-over!' } })).status, 403);
    const last = await admin('/v1/users/admin', { method: 'DELETE' });
    assert.equal(last.status, 409);
    assert.equal((await admin('/v1/users/admin', { method: 'PATCH', body: { roles: ['viewer'] } })).status, 409);
    const list = await admin('/v1/users');
    assert.ok(!JSON.stringify(list.body).includes('scrypt'), 'no password hashes in listings');
  });

  it('API keys: shown once, stored hashed, accepted as Bearer or x-api-key, revoked at once', async () => {
    const made = await admin('/v1/apikeys', { method: 'POST', body: { name: 'billing', roles: ['viewer'] } });
    assert.equal(made.status, 201);
    assert.match(made.body.key, /^bk_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/);
    const keyText = made.body.key as string;
    const secretPart = keyText.split('_')[2] as string;
    const listed = await admin('/v1/apikeys');
    assert.equal(listed.body.apiKeys.length, 1);
    assert.equal(listed.body.apiKeys[0].id, made.body.id);
    assert.ok(!JSON.stringify(listed.body).includes(secretPart));
    assert.equal(listed.body.apiKeys[0].key, undefined);
    const viaBearer = await whoami({ authorization: `Bearer ${keyText}` });
    assert.deepEqual(viaBearer.body, { name: 'apikey:billing', roles: ['viewer'], via: 'apikey', dev: false });
    assert.equal((await whoami({ 'x-api-key': keyText })).status, 200);
    assert.equal((await http(`${node.url}/v1/kv/x`, { method: 'PUT', body: { value: 'v' }, headers: { 'x-api-key': keyText } })).status, 403);
    const forged = `${keyText.slice(0, -4)}AAAA`;
    assert.equal((await whoami({ 'x-api-key': forged })).status, 401);
    assert.equal((await admin(`/v1/apikeys/${made.body.id}`, { method: 'DELETE' })).status, 200);
    const revoked = await whoami({ authorization: `Bearer ${keyText}` });
    assert.equal(revoked.status, 401);
    assert.equal(revoked.body.error.details.reason, 'bad_api_key');
    const soon = await admin('/v1/apikeys', { method: 'POST', body: { name: 'short', roles: ['viewer'], expiresAt: new Date(Date.now() + 1200).toISOString() } });
    assert.equal((await whoami({ 'x-api-key': soon.body.key })).status, 200);
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal((await whoami({ 'x-api-key': soon.body.key })).status, 401, 'expired');
  });

  it('path tricks never escape a prefix grant', async () => {
    await admin('/v1/roles/only-a', { method: 'PUT', body: { permissions: [{ prefix: 'team-a/', access: 'write' }] } });
    const t = await userToken(node.url, adminToken, 'tricky', ['only-a']);
    const h = { authorization: `Bearer ${t}` };
    await admin('/v1/kv/team-b/x', { method: 'PUT', body: { value: 'b-original' } });
    const body = JSON.stringify({ value: 'pwned' });
    // `..` is not a path segment to Beacon: the key below is team-a's own (and literally contains "..").
    const dots = await raw(node.url, 'PUT', '/v1/kv/team-a/../team-b/x', h, body);
    assert.equal(dots.status, 200);
    const escaped = await raw(node.url, 'PUT', '/v1/kv/team-a%2F..%2Fteam-b%2Fx', h, body);
    assert.equal(escaped.status, 200);
    assert.equal((await admin('/v1/kv/team-b/x')).body.kv.value, 'b-original', 'team-b/x is untouched');
    assert.equal((await admin('/v1/kv/team-a/../team-b/x?prefix=false')).status, 200, 'fetch-normalised or not, the odd key exists under team-a/');
    for (const path of ['/v1/kv/team-b/x', '/v1/kv/team-b%2Fx', '/v1/kv/%74eam-b/x', '/v1/kv/./team-b/x', '/v1/kv/team-b/x?prefix=true', '/v1/kv/team-?prefix=true', '/v1/kv?prefix=true']) {
      assert.equal((await raw(node.url, 'GET', path, h)).status, 403, path);
    }
    // Overlong UTF-8 for "/" is not valid UTF-8 at all: refused before any key exists.
    const overlong = await raw(node.url, 'PUT', '/v1/kv/team-a%C0%AF..%C0%AFteam-b%C0%AFx', h, body);
    assert.equal(overlong.status, 400);
    // The system keys (U+0000…) are out of everyone's reach, admin included.
    const sys = await raw(node.url, 'GET', '/v1/kv/%00auth/users/admin', { authorization: `Bearer ${adminToken}` });
    assert.equal(sys.status, 400);
    const txn = await raw(node.url, 'POST', '/v1/txn', h, JSON.stringify({ success: [{ range: { key: 'team-a/', rangeEnd: 'team-c' } }] }));
    assert.equal(txn.status, 403, 'a range reaching past the prefix');
    const list = await admin('/v1/kv?prefix=true');
    assert.ok(list.body.kvs.every((kv: any) => !kv.key.startsWith('\u0000')), 'system keys are never listed');
  });

  it('oversized headers are refused (431) and the node stays up', async () => {
    // Node's limit is 16 KiB of headers; far larger ones are cut off with a reset instead.
    const res = await raw(node.url, 'GET', '/v1/status', { authorization: `Bearer ${'x'.repeat(20 * 1024)}` });
    assert.equal(res.status, 431);
    await assert.rejects(raw(node.url, 'GET', '/v1/status', { 'x-filler': 'y'.repeat(256 * 1024) }));
    assert.equal((await admin('/v1/status')).status, 200);
  });
});

describe('rate limits', () => {
  let node: SecureNode;
  before(async () => {
    node = await startSecureNode({ security: { rateLimit: { rate: 0.5, burst: 3 }, loginRateLimit: { rate: 1 / 60, burst: 3 } } });
  });
  after(async () => {
    await node.cleanup();
  });

  it('a principal over its token bucket gets 429 with Retry-After; others are unaffected', async () => {
    const admin = client(node.url, await login(node.url, 'admin', ADMIN_PASSWORD));
    const key = (await admin('/v1/apikeys', { method: 'POST', body: { name: 'svc', roles: ['viewer'] } })).body.key as string;
    const statuses: number[] = [];
    let retryAfter: string | null = null;
    for (let i = 0; i < 4; i++) {
      const r = await http(`${node.url}/v1/status`, { headers: { 'x-api-key': key } });
      statuses.push(r.status);
      if (r.status === 429) {
        retryAfter = r.headers.get('retry-after');
        assert.equal(r.body.error.code, 'rate_limited');
      }
    }
    assert.deepEqual(statuses, [200, 200, 200, 429]);
    assert.ok(Number(retryAfter) >= 1, `Retry-After ${retryAfter}`);
    const metrics = await http(`${node.url}/metrics`, { headers: { 'x-api-key': key } });
    assert.equal(metrics.status, 429);
  });

  it('the token endpoint is limited per source address, whatever the password', async () => {
    // One login above already used a token; two more attempts fill the bucket of 3.
    const attempt = (password: string) => http(`${node.url}/v1/auth/token`, { method: 'POST', body: { username: 'admin', password } });
    assert.equal((await attempt('guess-one')).status, 401);
    assert.equal((await attempt('guess-two')).status, 401);
    const limited = await attempt(ADMIN_PASSWORD);
    assert.equal(limited.status, 429);
    assert.ok(Number(limited.headers.get('retry-after')) >= 1);
  });
});

describe('OIDC (JWKS served by a local identity provider)', () => {
  let idp: Server;
  let node: SecureNode;
  let signer: CryptoKey;
  let other: CryptoKey;
  const issuer = 'https://idp.test.example';

  before(async () => {
    const pair = await generateKeyPair('RS256');
    signer = pair.privateKey;
    other = (await generateKeyPair('RS256')).privateKey;
    const jwk: JWK = { ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
    idp = createServer((req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ keys: [jwk] }));
    });
    await new Promise<void>((r) => idp.listen(0, '127.0.0.1', () => r()));
    const port = (idp.address() as { port: number }).port;
    node = await startSecureNode({
      security: {
        oidc: { jwksUrl: `http://127.0.0.1:${port}/jwks.json`, issuer, audience: 'beacon', roleClaim: 'groups', roleMap: { 'beacon-devs': ['developer'], 'beacon-readers': ['viewer'] } },
      },
    });
  });
  after(async () => {
    await node.cleanup();
    await new Promise((r) => idp.close(r));
  });

  const mint = (claims: Record<string, unknown>, key: CryptoKey = signer, kid = 'k1') =>
    new SignJWT({ iss: issuer, aud: 'beacon', sub: 'jane', groups: ['beacon-devs', 'unrelated'], ...claims })
      .setProtectedHeader({ alg: 'RS256', kid })
      .setIssuedAt()
      .setExpirationTime(typeof claims.exp === 'number' ? claims.exp : '5m')
      .sign(key);

  it('accepts a provider token and maps its groups claim to roles', async () => {
    const t = await mint({});
    const me = await http(`${node.url}/v1/auth/whoami`, { headers: { authorization: `Bearer ${t}` } });
    assert.deepEqual(me.body, { name: 'oidc:jane', roles: ['developer'], via: 'oidc', dev: false });
    assert.equal((await http(`${node.url}/v1/kv/o`, { method: 'PUT', body: { value: 'x' }, headers: { authorization: `Bearer ${t}` } })).status, 200);
    const reader = await mint({ sub: 'rick', groups: ['beacon-readers'] });
    assert.equal((await http(`${node.url}/v1/kv/o`, { method: 'PUT', body: { value: 'x' }, headers: { authorization: `Bearer ${reader}` } })).status, 403);
  });

  it('refuses tokens with the wrong audience, an unknown key, an HMAC algorithm or past expiry', async () => {
    const now = Math.floor(Date.now() / 1000);
    const bad = [
      await mint({ aud: 'someone-else' }),
      await mint({}, other, 'k1'),
      await mint({}, other, 'k9'),
      await mint({ exp: now - 60 }),
      await new SignJWT({ iss: issuer, aud: 'beacon', sub: 'mallory', groups: ['beacon-devs'] }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('5m').sign(randomBytes(32)),
      `${b64({ alg: 'none' })}.${b64({ iss: issuer, aud: 'beacon', sub: 'mallory', exp: now + 600 })}.`,
    ];
    for (const [i, t] of bad.entries()) {
      const res = await http(`${node.url}/v1/auth/whoami`, { headers: { authorization: `Bearer ${t}` } });
      assert.equal(res.status, 401, `case ${i}`);
    }
  });
});

describe('--dev mode', () => {
  it('needs no credentials and says so', async () => {
    const node = await startTestNode();
    try {
      assert.equal((await http(`${node.url}/v1/kv/a`, { method: 'PUT', body: { value: '1' } })).status, 200);
      assert.equal((await http(`${node.url}/v1/status`)).body.dev, true);
      assert.equal((await http(`${node.url}/v1/kv/%00auth/users/admin`)).status, 400, 'system keys stay out of reach');
    } finally {
      await node.cleanup();
    }
  });
});
