import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InvalidArgumentError } from '../errors.js';
import { hashPassword, validatePassword, verifyPassword } from './password.js';

describe('passwords', () => {
  it('hashes with scrypt and a per-password salt, and verifies', async () => {
    const a = await hashPassword('correct horse battery');
    const b = await hashPassword('correct horse battery');
    assert.match(a, /^scrypt\$16384\$8\$1\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/);
    assert.notEqual(a, b, 'two hashes of one password differ (salt)');
    assert.ok(!a.includes('correct'));
    assert.equal(await verifyPassword('correct horse battery', a), true);
    assert.equal(await verifyPassword('correct horse batterY', a), false);
    assert.equal(await verifyPassword('', a), false);
  });

  it('refuses unknown users and corrupt hashes without throwing', async () => {
    assert.equal(await verifyPassword('whatever1', undefined), false);
    assert.equal(await verifyPassword('whatever1', 'plain'), false);
    assert.equal(await verifyPassword('whatever1', 'scrypt$999999999$8$1$AA$AA'), false);
  });

  it('validates new passwords without echoing them', () => {
    assert.throws(() => validatePassword('short'), (e: unknown) => e instanceof InvalidArgumentError && !e.message.includes('short'));
    assert.throws(() => validatePassword(42), InvalidArgumentError);
    assert.throws(() => validatePassword('x'.repeat(2000)), InvalidArgumentError);
    assert.equal(validatePassword('long enough'), 'long enough');
  });
});
