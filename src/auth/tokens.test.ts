import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { SignJWT, generateKeyPair } from 'jose';
import { UnauthenticatedError } from '../errors.js';
import { SqliteBackend } from '../backend/sqlite/sqlite-backend.js';
import { Store } from '../kv/index.js';
import {
  SIGNING_KEY_FILE,
  SIGNING_KEY_SYSTEM_KEY,
  TokenService,
  keyId,
  loadOrCreateKeyFile,
  loadOrCreateKeyInStore,
  saveKeyFile,
  saveKeyringInStore,
} from './tokens.js';

const b64 = (o: object): string => Buffer.from(JSON.stringify(o)).toString('base64url');

function reason(e: unknown): unknown {
  assert.ok(e instanceof UnauthenticatedError, String(e));
  return e.details?.reason;
}

describe('TokenService', () => {
  const key = randomBytes(32);
  let now = Date.UTC(2030, 0, 1);
  const tokens = new TokenService(key, 900, () => now);
  const user = { name: 'alice', uid: 'u-1' };

  it('issues HS256 tokens that verify to the user', async () => {
    const { token, expiresAt } = await tokens.issue(user);
    assert.equal(expiresAt, now + 900_000);
    const header = JSON.parse(Buffer.from(token.split('.')[0] as string, 'base64url').toString());
    assert.equal(header.alg, 'HS256');
    const claims = await tokens.verify(token);
    assert.deepEqual(claims, { sub: 'alice', uid: 'u-1', exp: expiresAt });
  });

  it('refuses an expired token, also once it was cached', async () => {
    const { token } = await tokens.issue(user);
    await tokens.verify(token);
    // Within the 5 s of clock skew tolerated after exp it still verifies, cached as uncached…
    now += 903_000;
    await tokens.verify(token);
    // …and past it, it is refused.
    now += 3_000;
    await assert.rejects(tokens.verify(token), (e) => reason(e) === 'expired');
    const fresh = await tokens.issue(user);
    now += 2_000_000;
    await assert.rejects(tokens.verify(fresh.token), (e) => reason(e) === 'expired');
  });

  it('refuses alg:none, other algorithms, wrong keys, tampering and garbage', async () => {
    const exp = Math.floor(now / 1000) + 600;
    const payload = { sub: 'admin', uid: 'x', iss: 'beacon', aud: 'beacon', exp };
    const none = `${b64({ alg: 'none', typ: 'JWT' })}.${b64(payload)}.`;
    await assert.rejects(tokens.verify(none), UnauthenticatedError);
    const hs512 = await new SignJWT(payload).setProtectedHeader({ alg: 'HS512' }).sign(key);
    await assert.rejects(tokens.verify(hs512), (e) => reason(e) === 'bad_algorithm');
    const { privateKey } = await generateKeyPair('ES256');
    const es = await new SignJWT(payload).setProtectedHeader({ alg: 'ES256' }).sign(privateKey);
    await assert.rejects(tokens.verify(es), UnauthenticatedError);
    const otherKey = await new SignJWT(payload).setProtectedHeader({ alg: 'HS256' }).sign(randomBytes(32));
    await assert.rejects(tokens.verify(otherKey), (e) => reason(e) === 'bad_signature');
    const good = (await tokens.issue(user)).token.split('.');
    const tampered = `${good[0]}.${b64({ ...payload, sub: 'admin' })}.${good[2]}`;
    await assert.rejects(tokens.verify(tampered), (e) => reason(e) === 'bad_signature');
    const wrongIss = await new SignJWT({ ...payload, iss: 'someone-else' }).setProtectedHeader({ alg: 'HS256' }).sign(key);
    await assert.rejects(tokens.verify(wrongIss), (e) => reason(e) === 'bad_claim');
    for (const junk of ['', 'abc', 'a.b.c', `${b64({ alg: 'HS256' })}.!!!.x`]) await assert.rejects(tokens.verify(junk), UnauthenticatedError);
  });

  it('never accepts a key shorter than 32 bytes', () => {
    assert.throws(() => new TokenService(randomBytes(16)));
  });
});

describe('signing key file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'beacon-key-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('is created once per installation with mode 0600 and then reused', () => {
    const [a, ...rest] = loadOrCreateKeyFile(dir);
    assert.equal(a?.length, 32);
    assert.equal(rest.length, 0);
    assert.equal(statSync(join(dir, SIGNING_KEY_FILE)).mode & 0o777, 0o600);
    const [b] = loadOrCreateKeyFile(dir);
    assert.deepEqual(Buffer.from(b as Uint8Array), Buffer.from(a as Uint8Array));
    const other = mkdtempSync(join(tmpdir(), 'beacon-key-'));
    try {
      assert.notDeepEqual(Buffer.from(loadOrCreateKeyFile(other)[0] as Uint8Array), Buffer.from(a as Uint8Array), 'another installation gets another key');
    } finally {
      rmSync(other, { recursive: true, force: true });
    }
  });
});

describe('signing-key rotation', () => {
  const user = { name: 'alice', uid: 'u-1' };

  it('keeps tokens of the previous key valid, refuses those of a key rotated out, and says why', async () => {
    const first = randomBytes(32);
    const tokens = new TokenService(first);
    const saved: Uint8Array[][] = [];
    tokens.persist = async (_old, next) => {
      saved.push(next);
    };
    const before = (await tokens.issue(user)).token;
    assert.equal(JSON.parse(Buffer.from(before.split('.')[0] as string, 'base64url').toString()).kid, keyId(first));
    await tokens.verify(before); // cached from here on: the rotation must forget it

    const r1 = await tokens.rotate();
    assert.equal(r1.previousKid, keyId(first));
    assert.deepEqual(tokens.kids, [r1.kid, keyId(first)]);
    assert.equal(saved.length, 1);
    assert.equal((await tokens.verify(before)).sub, 'alice', 'issued before the rotation: still valid');
    const after1 = (await tokens.issue(user)).token;
    assert.equal(JSON.parse(Buffer.from(after1.split('.')[0] as string, 'base64url').toString()).kid, r1.kid);

    await tokens.rotate();
    await assert.rejects(tokens.verify(before), (e) => reason(e) === 'unknown_key');
    assert.equal((await tokens.verify(after1)).sub, 'alice');

    await tokens.rotate(false);
    assert.equal(tokens.kids.length, 1);
    await assert.rejects(tokens.verify(after1), (e) => reason(e) === 'unknown_key', 'without keepPrevious every issued token is refused');
  });

  it('accepts a token without kid (issued before keyrings) against the oldest key', async () => {
    const legacyKey = randomBytes(32);
    const legacy = await new SignJWT({ uid: 'u-1' })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setSubject('alice')
      .setIssuer('beacon')
      .setAudience('beacon')
      .setIssuedAt()
      .setExpirationTime('10m')
      .sign(legacyKey);
    const tokens = new TokenService([randomBytes(32), legacyKey]);
    assert.equal((await tokens.verify(legacy)).sub, 'alice');
  });

  it('a key file rewritten by a rotation is read back as the same keyring', () => {
    const dir = mkdtempSync(join(tmpdir(), 'beacon-key-'));
    try {
      const keys = [randomBytes(32), randomBytes(32)];
      saveKeyFile(dir, keys);
      assert.equal(statSync(join(dir, SIGNING_KEY_FILE)).mode & 0o777, 0o600);
      assert.deepEqual(loadOrCreateKeyFile(dir).map((k) => keyId(k)), keys.map((k) => keyId(k)));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('signing-key rotation: races and upgrades', () => {
  const user = { name: 'mallory', uid: 'u-1' };

  it('a token whose verification straddles a revoking rotation is refused, then and later', async () => {
    const tokens = new TokenService(randomBytes(32));
    tokens.persist = async () => undefined;
    const { token } = await tokens.issue(user);
    const inFlight = tokens.verify(token); // first sight of the token: the signature check is asynchronous
    await new Promise((r) => setImmediate(r));
    await tokens.rotate(false);
    await assert.rejects(inFlight, (e) => reason(e) === 'unknown_key');
    await assert.rejects(tokens.verify(token), (e) => reason(e) === 'unknown_key', 'not cached by the straddling check');
  });

  it('rotates a key stored by an older release (hex without a newline) on a shared store; a stale keyring conflicts', async () => {
    const store = new Store({ backend: new SqliteBackend({ path: ':memory:' }) });
    await store.open();
    try {
      const legacy = randomBytes(32);
      await store.put(SIGNING_KEY_SYSTEM_KEY, Buffer.from(legacy.toString('hex')));
      const tokens = new TokenService(await loadOrCreateKeyInStore(store));
      assert.deepEqual(tokens.kids, [keyId(legacy)]);
      tokens.persist = (old, next) => saveKeyringInStore(store, old, next);
      const r = await tokens.rotate();
      assert.equal(r.previousKid, keyId(legacy));
      assert.deepEqual((await loadOrCreateKeyInStore(store)).map(keyId), [r.kid, keyId(legacy)], 'stored for every node');
      // A node that missed that rotation rotates from its stale keyring: refused, nothing written.
      const stale = new TokenService([legacy]);
      stale.persist = (old, next) => saveKeyringInStore(store, old, next);
      await assert.rejects(stale.rotate(), /changed while rotating/);
      assert.deepEqual((await loadOrCreateKeyInStore(store)).map(keyId), [r.kid, keyId(legacy)]);
    } finally {
      await store.close();
    }
  });
});
