import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ErrorCode, InvalidArgumentError } from '../errors.js';
import { decodeConfigValue, encodeConfigValue } from './value.js';
import { formatVersion, parseVersion } from './version.js';

describe('config versions', () => {
  it('parses v<N> and formats it back', () => {
    assert.equal(parseVersion('v1'), 1);
    assert.equal(parseVersion('v42'), 42);
    assert.equal(formatVersion(parseVersion('v7')), 'v7');
  });

  it('rejects malformed versions with invalid_argument naming the field', () => {
    for (const bad of ['2', 'vx', 'v0', 'v01', 'V2', 'v-1', 'v1.5', '', 'v99999999999999999999', 2, null, {}]) {
      assert.throws(
        () => parseVersion(bad, 'version'),
        (e: unknown) => e instanceof InvalidArgumentError && e.code === ErrorCode.InvalidArgument && e.details?.field === 'version',
        `accepted ${JSON.stringify(bad)}`,
      );
    }
  });
});

describe('config values', () => {
  const text = (b: Uint8Array): string => Buffer.from(b).toString('utf8');

  it('stores strings as raw text and other JSON compactly', () => {
    assert.equal(text(encodeConfigValue('postgresql://db:5432/app')), 'postgresql://db:5432/app');
    assert.equal(text(encodeConfigValue({ a: [1, 2], b: { c: true } })), '{"a":[1,2],"b":{"c":true}}');
    assert.equal(text(encodeConfigValue(5)), '5');
    assert.equal(text(encodeConfigValue(false)), 'false');
  });

  it('rejects a missing or null value', () => {
    assert.throws(() => encodeConfigValue(undefined), InvalidArgumentError);
    assert.throws(() => encodeConfigValue(null), InvalidArgumentError);
  });

  it('returns JSON objects and arrays parsed, other text as text, other bytes as base64', () => {
    assert.deepEqual(decodeConfigValue(Buffer.from(' {"a":1}')), { value: { a: 1 }, json: true });
    assert.deepEqual(decodeConfigValue(Buffer.from('[1,2]')), { value: [1, 2], json: true });
    assert.deepEqual(decodeConfigValue(Buffer.from('5')), { value: '5', json: false });
    assert.deepEqual(decodeConfigValue(Buffer.from('{not json')), { value: '{not json', json: false });
    assert.deepEqual(decodeConfigValue(new Uint8Array([0xff, 0x00])), { value: '/wA=', encoding: 'base64', json: false });
  });
});
