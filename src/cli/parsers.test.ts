// The CLI's pure parts: the txn line form, import input, the key tree and exit codes.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CompactedError, ConflictError, InvalidArgumentError, NotFoundError, UnavailableError } from '../errors.js';
import { formatChange } from './config.js';
import { ExitCode, exitCodeFor } from './exit-codes.js';
import { parseImport } from './import.js';
import { TreePrinter } from './kv.js';
import { parseTxnLines, parseTxnText, tokenize } from './txn.js';

describe('txn line form', () => {
  it('reads compares, success and failure ops like etcdctl', () => {
    const txn = parseTxnLines(
      'mod("key1") > "0"\nvalue("key 2") = "a b"\nver(k3) != 2\n\nput key1 "overwrote-key1" --lease 7\nget key2 --prefix --limit 5\n\ndel key1 --prefix\nput k "--not-a-flag"\n',
    );
    assert.deepEqual(txn.compare, [
      { key: 'key1', target: 'modRevision', result: '>', value: 0 },
      { key: 'key 2', target: 'value', result: '=', value: 'a b' },
      { key: 'k3', target: 'version', result: '!=', value: 2 },
    ]);
    assert.deepEqual(txn.success, [{ put: { key: 'key1', value: 'overwrote-key1', lease: 7 } }, { range: { key: 'key2', prefix: true, limit: 5 } }]);
    assert.deepEqual(txn.failure, [{ delete: { key: 'key1', prefix: true } }, { put: { key: 'k', value: '--not-a-flag' } }]);
  });

  it('allows no compares (a leading blank line) and headings', () => {
    const txn = parseTxnLines('\nput a 1\n');
    assert.deepEqual(txn, { compare: [], success: [{ put: { key: 'a', value: '1' } }], failure: [] });
    assert.deepEqual(parseTxnLines('compares:\ncreate("a") = 0\n\nsuccess requests (get, put, del):\nput a 1\n').success, [{ put: { key: 'a', value: '1' } }]);
  });

  it('names the line it cannot read', () => {
    assert.throws(() => parseTxnLines('size("a") = 1'), (e: unknown) => e instanceof InvalidArgumentError && /unknown compare target 'size'/.test(e.message));
    assert.throws(() => parseTxnLines('\nput a'), /put takes KEY and one VALUE/);
    assert.throws(() => parseTxnLines('\nfrob a'), /unknown op 'frob'/);
    assert.throws(() => parseTxnLines('version("a") = x'), /takes an integer/);
    assert.throws(() => tokenize('put a "open'), /unterminated quote/);
    assert.throws(() => parseTxnText('{"compare": ['), /not valid JSON/);
  });

  it('passes JSON through as the HTTP body', () => {
    assert.deepEqual(parseTxnText(' {"success":[{"put":{"key":"a","value":"b"}}]}'), { success: [{ put: { key: 'a', value: 'b' } }] });
  });
});

describe('import input', () => {
  it('reads a JSON object of key → value, storing non-strings as JSON text', () => {
    assert.deepEqual(parseImport('{"a":"1","b":{"x":[1]},"c":2}'), [
      { key: 'a', value: '1' },
      { key: 'b', value: '{"x":[1]}' },
      { key: 'c', value: '2' },
    ]);
  });

  it('reads JSON lines, including a single line that is an entry', () => {
    assert.deepEqual(parseImport('{"key":"k","value":"v"}'), [{ key: 'k', value: 'v' }]);
    assert.deepEqual(parseImport('{"key":"a","value":"AP8=","encoding":"base64","lease":5}\n\n{"key":"b","value":"2"}\n'), [
      { key: 'a', value: 'AP8=', encoding: 'base64', lease: 5 },
      { key: 'b', value: '2' },
    ]);
    assert.deepEqual(parseImport('{"key":"k","value":"v"}', 'json'), [
      { key: 'key', value: 'k' },
      { key: 'value', value: 'v' },
    ]);
  });

  it('names the bad line', () => {
    assert.throws(() => parseImport('{"key":"a","value":"1"}\n{"key":"b"}'), /line 2 must be an object with "key" and "value"/);
    assert.throws(() => parseImport('[1,2]'), /one object of key → value/);
    assert.throws(() => parseImport('{"key":"","value":"1"}'), /must not be empty/);
  });
});

describe('key tree', () => {
  it('prints each directory once, in key order', () => {
    const lines: string[] = [];
    const t = new TreePrinter((l) => lines.push(l));
    for (const k of ['app/', 'app/db/host', 'app/db/port', 'app/name', 'app0', 'b/c/d']) t.add(k);
    assert.deepEqual(lines, ['app/  (key)', '  db/', '    host', '    port', '  name', 'app0', 'b/', '  c/', '    d']);
  });
});

describe('diff lines', () => {
  it('renders JSON changes', () => {
    assert.equal(formatChange({ path: '/db/host', op: 'changed', from: 'a', to: 'b' }), '~ /db/host: a → b');
    assert.equal(formatChange({ path: '/x', op: 'added', to: { y: 1 } }), '+ /x: {"y":1}');
    assert.equal(formatChange({ path: '/z', op: 'removed', from: 3 }), '- /z: 3');
  });
});

describe('exit codes', () => {
  it('maps each error kind to its documented code', () => {
    assert.equal(exitCodeFor(new NotFoundError('x')), ExitCode.NotFound);
    assert.equal(exitCodeFor(new ConflictError('x')), ExitCode.Conflict);
    assert.equal(exitCodeFor(new CompactedError(1, 2)), ExitCode.Compacted);
    assert.equal(exitCodeFor(new UnavailableError('x')), ExitCode.Unavailable);
    assert.equal(exitCodeFor(new InvalidArgumentError('x')), ExitCode.Usage);
    assert.equal(exitCodeFor(new Error('boom')), ExitCode.Internal);
  });
});
