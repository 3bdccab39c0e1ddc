import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { SignJWT, generateKeyPair } from 'jose';
import { UnauthenticatedError } from '../errors.js';
import { SIGNING_KEY_FILE, TokenService, loadOrCreateKeyFile } from './tokens.js';

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
    now += 901_000;
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
    const a = loadOrCreateKeyFile(dir);
    assert.equal(a.length, 32);
    assert.equal(statSync(join(dir, SIGNING_KEY_FILE)).mode & 0o777, 0o600);
    const b = loadOrCreateKeyFile(dir);
    assert.deepEqual(Buffer.from(b), Buffer.from(a));
    const other = mkdtempSync(join(tmpdir(), 'beacon-key-'));
    try {
      assert.notDeepEqual(Buffer.from(loadOrCreateKeyFile(other)), Buffer.from(a), 'another installation gets another key');
    } finally {
      rmSync(other, { recursive: true, force: true });
    }
  });
});
