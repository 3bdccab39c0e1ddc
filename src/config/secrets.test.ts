import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { InvalidArgumentError, UnavailableError } from '../errors.js';
import { Keyring, isEncrypted, parseEnvelope } from './secrets.js';

describe('Keyring', () => {
  const k1 = randomBytes(32);
  const k2 = randomBytes(32);

  it('parses hex and base64 keys with optional ids; the first is the primary', () => {
    const ring = Keyring.parse(`# rotated 2030-01\nnew:${k2.toString('hex')}\nold:${k1.toString('base64')}\n`);
    assert.equal(ring.primary.id, 'new');
    assert.deepEqual(ring.ids, ['new', 'old']);
    const anon = Keyring.parse(k1.toString('hex'));
    assert.match(anon.primary.id, /^[0-9a-f]{8}$/);
    assert.equal(Keyring.parse(`a:${k1.toString('hex')},b:${k2.toString('hex')}`).ids.length, 2);
  });

  it('rejects bad keyrings without printing key material', () => {
    const short = randomBytes(16).toString('hex');
    assert.throws(() => Keyring.parse(short), (e: unknown) => e instanceof InvalidArgumentError && !e.message.includes(short));
    assert.throws(() => Keyring.parse(''), InvalidArgumentError);
    assert.throws(() => Keyring.parse(`a:${k1.toString('hex')}\na:${k2.toString('hex')}`), InvalidArgumentError);
    assert.throws(() => Keyring.parse(`bad id:${k1.toString('hex')}`), InvalidArgumentError);
  });

  it('encrypts with AES-256-GCM bound to the key name, and decrypts', () => {
    const ring = new Keyring([{ id: 'k1', key: k1 }]);
    const plain = Buffer.from('postgresql://app:hunter2@db/app');
    const sealed = ring.encrypt('app/db', plain);
    assert.ok(isEncrypted(sealed));
    assert.equal(Buffer.from(sealed).indexOf('hunter2'), -1);
    assert.equal(parseEnvelope(sealed)?.keyId, 'k1');
    assert.notDeepEqual(Buffer.from(ring.encrypt('app/db', plain)), Buffer.from(sealed), 'a fresh IV each time');
    assert.deepEqual(Buffer.from(ring.decrypt('app/db', sealed)), plain);
    assert.throws(() => ring.decrypt('app/other', sealed), UnavailableError, 'moved to another key');
    const tampered = Buffer.from(sealed);
    tampered[tampered.length - 1] = (tampered[tampered.length - 1] as number) ^ 1;
    assert.throws(() => ring.decrypt('app/db', tampered), UnavailableError);
    assert.equal(isEncrypted(plain), false);
  });

  it('keeps old keys for decryption after a rotation', () => {
    const old = new Keyring([{ id: 'k1', key: k1 }]);
    const sealed = old.encrypt('s', Buffer.from('v'));
    const rotated = new Keyring([{ id: 'k2', key: k2 }, { id: 'k1', key: k1 }]);
    assert.equal(Buffer.from(rotated.decrypt('s', sealed)).toString(), 'v');
    assert.equal(parseEnvelope(rotated.encrypt('s', Buffer.from('v')))?.keyId, 'k2');
    const newOnly = new Keyring([{ id: 'k2', key: k2 }]);
    assert.throws(() => newOnly.decrypt('s', sealed), (e: unknown) => e instanceof UnavailableError && /k1/.test(e.message));
  });
});
