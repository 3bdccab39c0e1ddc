import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { SqliteBackend } from '../backend/index.js';
import { InvalidArgumentError, UnavailableError } from '../errors.js';
import { Store } from '../kv/index.js';
import { PolicyStore, parsePolicy } from './policy.js';
import { Keyring, isEncrypted, parseEnvelope } from './secrets.js';

const text = (v: Uint8Array): string => Buffer.from(v).toString('utf8');

describe('parsePolicy', () => {
  it('accepts the documented fields and normalises a schema to format json', () => {
    const p = parsePolicy('app/', { schema: { type: 'object' }, secret: true, defaultTtl: 60, historyRetention: { versions: 10 }, description: 'x' });
    assert.deepEqual(p, { prefix: 'app/', format: 'json', schema: { type: 'object' }, secret: true, defaultTtl: 60, historyRetention: { versions: 10 }, description: 'x' });
  });

  it('rejects unknown fields, bad schemas and bad values with the field named', () => {
    const field = (body: unknown, f: string): void =>
      assert.throws(() => parsePolicy('app/', body), (e: unknown) => e instanceof InvalidArgumentError && e.details?.field === f, f);
    field({ colour: 'red' }, 'colour');
    field({ format: 'yaml' }, 'format');
    field({ schema: { type: 'no-such-type' } }, 'schema');
    field({ schema: [] }, 'schema');
    field({ defaultTtl: 0 }, 'defaultTtl');
    field({ secret: 'yes' }, 'secret');
    field({ historyRetention: { forever: true } }, 'historyRetention.forever');
    field({ format: 'text', schema: { type: 'object' } }, 'format');
    assert.throws(() => parsePolicy('', {}), InvalidArgumentError);
    assert.throws(() => parsePolicy('\u0000ns/', {}), InvalidArgumentError);
  });
});

describe('PolicyStore', () => {
  let store: Store;
  const k1 = { id: 'k1', key: randomBytes(32) };
  const k2 = { id: 'k2', key: randomBytes(32) };
  let policies: PolicyStore;

  before(async () => {
    store = new Store({ backend: new SqliteBackend({ path: ':memory:' }) });
    await store.open();
    policies = new PolicyStore(store, new Keyring([k1]));
    policies.start();
  });
  after(async () => {
    policies.stop();
    await store.close();
  });

  it('validates JSON values against the namespace schema and lists every failing path', async () => {
    await policies.put(
      parsePolicy('svc/', { schema: { type: 'object', required: ['host'], properties: { host: { type: 'string' }, pool: { type: 'integer', minimum: 1 } } } }),
      'admin',
    );
    const ok = Buffer.from('{"host":"db","pool":5}');
    assert.equal(policies.checkWrite('svc/db', ok), ok);
    assert.throws(
      () => policies.checkWrite('svc/db', Buffer.from('{"pool":0,"secretish":"hunter2"}')),
      (e: unknown) => {
        assert.ok(e instanceof InvalidArgumentError);
        const paths = (e.details?.violations as { path: string }[]).map((v) => v.path).sort();
        assert.deepEqual(paths, ['/host', '/pool']);
        assert.match(e.message, /\/host/);
        assert.match(e.message, /\/pool/);
        assert.ok(!e.message.includes('hunter2'), 'the value is never echoed');
        return true;
      },
    );
    assert.throws(() => policies.checkWrite('svc/db', Buffer.from('not json')), /must be JSON/);
    assert.equal(text(policies.checkWrite('other/db', Buffer.from('not json'))), 'not json', 'no policy, no check');
  });

  it('the longest prefix governs', async () => {
    await policies.put(parsePolicy('svc/raw/', { format: 'text' }), 'admin');
    assert.equal(text(policies.checkWrite('svc/raw/x', Buffer.from('plain text'))), 'plain text');
    assert.throws(() => policies.checkWrite('svc/raw/x', Buffer.from([0xff, 0xfe])), /UTF-8/);
    assert.equal(policies.forKey('svc/raw/x')?.prefix, 'svc/raw/');
    assert.equal(policies.forKey('svc/x')?.prefix, 'svc/');
  });

  it('encrypts secrets, redacts them for readers without read_secret, decrypts for the others', async () => {
    await policies.put(parsePolicy('sec/', { secret: true }), 'admin');
    await store.put('sec/db', Buffer.from('hunter2'));
    const kv = store.get('sec/db');
    assert.ok(kv !== undefined && kv.encrypted === true && isEncrypted(kv.value), 'the store sealed it and flagged the row');
    assert.deepEqual(policies.decodeForRead(kv, false), { redacted: true });
    const clear = policies.decodeForRead(kv, true);
    assert.ok(!clear.redacted && text(clear.value) === 'hunter2');
    assert.deepEqual(policies.decodeForRead({ key: 'plain/x', value: Buffer.from('v') }, false), { redacted: false, value: Buffer.from('v') });
    // A sealed value stays secret even outside a secret namespace.
    assert.deepEqual(policies.decodeForRead({ ...kv, key: 'plain/x' }, false), { redacted: true });
    // Bytes that merely look sealed are a plain value: only the row's flag says ciphertext.
    await store.put('plain/forged', kv.value);
    const forged = store.get('plain/forged');
    assert.ok(forged !== undefined && forged.encrypted === undefined);
    assert.deepEqual(policies.decodeForRead(forged, true), { redacted: false, value: forged.value });
    assert.equal(policies.rangeHasSecret('a', null), true);
    assert.equal(policies.rangeHasSecret('sec/a', 'sec/b'), true);
    assert.equal(policies.rangeHasSecret('a', 'b'), false);
    assert.equal(policies.rangeHasSecret('sec/db', undefined), true);
  });

  it('reconcile encrypts existing plaintext and re-encrypts under a rotated KEK, keeping history readable', async () => {
    await store.put('vault/a', Buffer.from('plain-a'));
    await store.put('vault/b', Buffer.from('plain-b'));
    await policies.put(parsePolicy('vault/', { secret: true }), 'admin');
    const r1 = await policies.reconcile('vault/');
    assert.equal(r1.encrypted, 2);
    assert.equal(parseEnvelope((store.get('vault/a') as { value: Uint8Array }).value)?.keyId, 'k1');

    const rotated = new PolicyStore(store, new Keyring([k2, k1]));
    rotated.start();
    try {
      const r2 = await rotated.reconcile(undefined);
      assert.ok(r2.encrypted >= 2);
      const kv = store.get('vault/a');
      assert.equal(parseEnvelope(kv?.value ?? new Uint8Array())?.keyId, 'k2');
      const v = rotated.decodeForRead(kv as NonNullable<typeof kv>, true);
      assert.ok(!v.redacted && text(v.value) === 'plain-a');
      assert.deepEqual(await rotated.reconcile(undefined), { encrypted: 0, decrypted: 0, skipped: 0, failed: 0, failedKeys: [], revision: store.revision }, 'idempotent');
    } finally {
      rotated.stop();
    }
  });

  it('a node without a KEK can neither create nor write secrets', async () => {
    const bare = new PolicyStore(store, undefined);
    bare.start();
    try {
      await assert.rejects(bare.put(parsePolicy('nokek/', { secret: true }), 'admin'), InvalidArgumentError);
      assert.throws(() => bare.checkWrite('sec/x', Buffer.from('v')), UnavailableError);
      assert.throws(() => bare.seal('sec/x', Buffer.from('v')), UnavailableError);
      const sealed = { key: 'sec/x', value: policies.seal('sec/x', Buffer.from('v')).value, encrypted: true as const };
      assert.throws(() => bare.decodeForRead(sealed, true), UnavailableError);
      assert.deepEqual(bare.decodeForRead(sealed, false), { redacted: true });
    } finally {
      bare.stop();
    }
  });

  it('follows policy changes made through the store', async () => {
    await policies.delete('svc/raw/');
    assert.equal(policies.forKey('svc/raw/x')?.prefix, 'svc/');
    const other = new PolicyStore(store, undefined);
    other.start();
    try {
      assert.deepEqual(other.list().map((p) => p.prefix), policies.list().map((p) => p.prefix));
    } finally {
      other.stop();
    }
  });
});
