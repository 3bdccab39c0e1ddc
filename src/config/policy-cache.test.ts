/** Unit tests of the cache fields of namespace policies (issue 11): storage, origin, the empty prefix. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parsePolicy } from './policy.js';

test('storage memory with an origin parses; the empty prefix is allowed only for a memory namespace', () => {
  const p = parsePolicy('user:', {
    storage: 'memory',
    defaultTtl: 3600,
    origin: { url: 'http://db-api/users/{id}', timeoutMs: 500, ttlSeconds: 60, breaker: { minRequests: 5, halfOpenAfterMs: 1000, failureRatio: 0.5, windowMs: 10000 } },
  });
  assert.equal(p.storage, 'memory');
  assert.deepEqual(p.origin, { url: 'http://db-api/users/{id}', timeoutMs: 500, ttlSeconds: 60, breaker: { minRequests: 5, halfOpenAfterMs: 1000, failureRatio: 0.5, windowMs: 10000 } });
  assert.equal(parsePolicy('', { storage: 'memory' }).prefix, '');
  assert.throws(() => parsePolicy('', { format: 'json' }), { code: 'invalid_argument' });
  assert.equal(parsePolicy('app/', { storage: 'durable' }).storage, undefined, 'durable is the default and is not stored');
});

test('bad cache fields are refused with the field named', () => {
  const bad: [unknown, string][] = [
    [{ storage: 'disk' }, 'storage'],
    [{ storage: 'memory', secret: true }, 'secret'],
    [{ storage: 'memory', historyRetention: { versions: 3 } }, 'historyRetention'],
    [{ origin: { url: 'http://x/{key}' } }, 'origin'],
    [{ storage: 'memory', origin: { url: 'ftp://x/{key}' } }, 'origin.url'],
    [{ storage: 'memory', origin: { url: 'http://x/{key}', timeoutMs: 0 } }, 'origin.timeoutMs'],
    [{ storage: 'memory', origin: { url: 'http://x/{key}', extra: 1 } }, 'origin.extra'],
    [{ storage: 'memory', origin: { url: 'http://x/{key}', breaker: { failureRatio: 2 } } }, 'origin.breaker.failureRatio'],
  ];
  for (const [body, field] of bad) {
    assert.throws(() => parsePolicy('c:', body), (err: unknown) => (err as { details?: { field?: string } }).details?.field === field, JSON.stringify(body));
  }
});
