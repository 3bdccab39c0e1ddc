import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InvalidArgumentError, RateLimitedError } from '../errors.js';
import { RateLimiter, parseRate } from './rate-limit.js';

describe('parseRate', () => {
  it('reads counts per unit with an optional burst', () => {
    assert.deepEqual(parseRate('100/s'), { rate: 100, burst: 100 });
    assert.deepEqual(parseRate('10000/h'), { rate: 10000 / 3600, burst: 10000 });
    assert.deepEqual(parseRate('20/m,burst=5'), { rate: 20 / 60, burst: 5 });
    assert.equal(parseRate('off'), null);
    assert.equal(parseRate('0'), null);
    for (const bad of ['fast', '10/fortnight', '-1/s', '10/s,burst=0', '']) assert.throws(() => parseRate(bad), InvalidArgumentError, bad);
  });
});

describe('RateLimiter', () => {
  it('allows a burst, then one request per refill interval, per name', () => {
    let now = 0;
    const rl = new RateLimiter({ rate: 2, burst: 3 }, () => now);
    assert.equal(rl.take('a'), 0);
    assert.equal(rl.take('a'), 0);
    assert.equal(rl.take('a'), 0);
    assert.ok(Math.abs(rl.take('a') - 0.5) < 1e-9, 'the fourth waits half a second');
    assert.equal(rl.take('b'), 0, 'another principal has its own bucket');
    now = 500;
    assert.equal(rl.take('a'), 0);
    assert.ok(rl.take('a') > 0);
    now = 10_000;
    assert.equal(rl.take('a'), 0, 'refilled after a quiet period');
  });

  it('throws RateLimitedError with whole seconds to wait', () => {
    const now = 0;
    const rl = new RateLimiter({ rate: 1 / 60, burst: 1 }, () => now);
    rl.check('x');
    assert.throws(
      () => rl.check('x'),
      (e: unknown) => e instanceof RateLimitedError && e.details?.retryAfterSeconds === 60,
    );
  });
});
