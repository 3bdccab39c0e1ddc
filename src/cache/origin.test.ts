/** Unit tests of the origin circuit breaker with a fake clock (seed 002: 50 % over 10 s, half-open after 30 s). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CircuitBreaker, originUrl } from './origin.js';

test('the breaker opens at the failure ratio once the minimum count is reached, and not before', () => {
  let now = 0;
  const b = new CircuitBreaker({ minRequests: 10 }, () => now);
  for (let i = 0; i < 9; i++) {
    assert.equal(b.acquire(), undefined);
    b.record(false);
  }
  assert.equal(b.state, 'closed', '9 failures are below the minimum request count');
  assert.equal(b.acquire(), undefined);
  b.record(false);
  assert.equal(b.state, 'open');
  assert.match(b.acquire() ?? '', /circuit breaker is open/);
  now += 29_999;
  assert.equal(b.state, 'open');
  now += 1;
  assert.equal(b.state, 'half-open');
  assert.equal(b.acquire(), undefined, 'one trial request');
  assert.match(b.acquire() ?? '', /trial request is in flight/);
  b.record(false);
  assert.equal(b.state, 'open', 'a failed trial opens it again');
  now += 30_000;
  assert.equal(b.acquire(), undefined);
  b.record(true);
  assert.equal(b.state, 'closed', 'a successful trial closes it');
});

test('only outcomes inside the 10 s window count, and fewer than half failing keeps it closed', () => {
  let now = 0;
  const b = new CircuitBreaker({ minRequests: 4 }, () => now);
  for (let i = 0; i < 3; i++) b.record(false);
  now += 10_001; // those failures leave the window
  b.record(true);
  b.record(true);
  b.record(false);
  b.record(true);
  assert.equal(b.state, 'closed');
  b.record(false);
  b.record(false);
  assert.equal(b.state, 'open', '3 of 6 in the window failed: 50 %');
});

test('origin URLs substitute the full key and the id after the prefix, URL-encoded', () => {
  assert.equal(originUrl('http://db/users/{id}', 'user:', 'user:456'), 'http://db/users/456');
  assert.equal(originUrl('http://db/k/{key}', 'user:', 'user:a b/c'), 'http://db/k/user%3Aa%20b%2Fc');
  // Dot segments would leave the template's path (security review): such keys are never fetched.
  assert.equal(originUrl('http://db/api/items/{id}', 'cache/', 'cache/..'), undefined);
  assert.equal(originUrl('http://db/api/items/{id}', 'cache/', 'cache/.'), undefined);
  assert.equal(originUrl('http://db/api/items/{id}', 'cache/', 'cache/'), undefined);
  assert.equal(originUrl('http://db/api/items/{id}', 'cache/', 'cache/...'), 'http://db/api/items/...');
});
