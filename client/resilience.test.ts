// The resilience policies with a fake clock: circuit breaker schedule, back-off bounds, endpoint choice.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EndpointPool } from './endpoints.js';
import { CircuitBreaker, backoffDelay, type Clock } from './resilience.js';
import { readSse } from './sse.js';
import { ErrorCode, UnavailableError } from './index.js';

/** A clock that moves only when told to. */
class FakeClock implements Clock {
  t = 1_000_000;
  now(): number {
    return this.t;
  }
  advance(ms: number): void {
    this.t += ms;
  }
}

function outcomes(b: CircuitBreaker, failures: number, successes: number): void {
  for (let i = 0; i < successes; i++) {
    assert.ok(b.tryAcquire());
    b.success();
  }
  for (let i = 0; i < failures; i++) {
    assert.ok(b.tryAcquire());
    b.failure();
  }
}

describe('circuit breaker (the seeds: 50 % over 10 s opens it, half-open after 30 s)', () => {
  it('stays closed below the minimum request count, even when every request fails', () => {
    const clock = new FakeClock();
    const b = new CircuitBreaker({}, clock);
    outcomes(b, 9, 0);
    assert.equal(b.state, 'closed');
    assert.deepEqual(b.window, { failures: 9, requests: 9 });
    outcomes(b, 1, 0);
    assert.equal(b.state, 'open', 'the tenth failure reaches the minimum of 10 requests');
  });

  it('opens at exactly 50 % failures, not at 49 %', () => {
    const clock = new FakeClock();
    const under = new CircuitBreaker({ minRequests: 100 }, clock);
    outcomes(under, 49, 51);
    assert.equal(under.state, 'closed', '49 of 100 failed');
    const at = new CircuitBreaker({ minRequests: 100 }, clock);
    outcomes(at, 50, 50);
    assert.equal(at.state, 'open', '50 of 100 failed');
  });

  it('forgets outcomes older than the 10 s window', () => {
    const clock = new FakeClock();
    const b = new CircuitBreaker({}, clock);
    outcomes(b, 9, 0);
    clock.advance(10_000);
    assert.deepEqual(b.window, { failures: 0, requests: 0 }, 'old failures aged out');
    outcomes(b, 5, 5);
    assert.equal(b.state, 'open', 'only the last 10 s count: 5 of 10');
    const c = new CircuitBreaker({}, clock);
    outcomes(c, 9, 0);
    clock.advance(9_000);
    outcomes(c, 0, 10);
    assert.equal(c.state, 'closed', '9 failures and 10 successes within 10 s is under 50 %');
  });

  it('refuses every request while open, half-opens after 30 s and lets exactly one probe through', () => {
    const clock = new FakeClock();
    const changes: string[] = [];
    const b = new CircuitBreaker({}, clock, (s) => changes.push(s));
    outcomes(b, 10, 0);
    assert.equal(b.state, 'open');
    assert.equal(b.tryAcquire(), false);
    assert.equal(b.retryInMs, 30_000);
    clock.advance(29_999);
    assert.equal(b.state, 'open', 'still open 1 ms before 30 s');
    assert.equal(b.tryAcquire(), false);
    assert.equal(b.retryInMs, 1);
    clock.advance(1);
    assert.equal(b.state, 'half-open', 'half-open at 30 s');
    assert.equal(b.tryAcquire(), true, 'the probe');
    assert.equal(b.tryAcquire(), false, 'only one probe at a time');
    assert.equal(b.allows, false);
    b.success();
    assert.equal(b.state, 'closed', 'a successful probe closes it');
    assert.deepEqual(b.window, { failures: 0, requests: 0 }, 'with a clean window');
    assert.deepEqual(changes, ['open', 'half-open', 'closed']);
  });

  it('a failed probe opens it for another 30 s; an abandoned probe frees the slot', () => {
    const clock = new FakeClock();
    const b = new CircuitBreaker({ openMs: 30_000 }, clock);
    outcomes(b, 10, 0);
    clock.advance(30_000);
    assert.ok(b.tryAcquire());
    b.release(); // the caller aborted: no verdict
    assert.equal(b.state, 'half-open');
    assert.ok(b.tryAcquire(), 'another probe may go');
    b.failure();
    assert.equal(b.state, 'open');
    assert.equal(b.retryInMs, 30_000);
    clock.advance(30_000);
    assert.equal(b.state, 'half-open');
  });

  it('is configurable, and a passing health check half-opens it early', () => {
    const clock = new FakeClock();
    const b = new CircuitBreaker({ failureThreshold: 0.25, minRequests: 4, openMs: 500, windowMs: 1000 }, clock);
    outcomes(b, 1, 3);
    assert.equal(b.state, 'open', '1 of 4 is 25 %');
    clock.advance(100);
    b.halfOpen();
    assert.equal(b.state, 'half-open');
    assert.throws(() => new CircuitBreaker({ failureThreshold: 0 }), RangeError);
  });

  it('ignores outcomes of requests sent before it opened', () => {
    const clock = new FakeClock();
    const b = new CircuitBreaker({}, clock);
    outcomes(b, 10, 0);
    b.success(); // a slow request that was already in flight
    assert.equal(b.state, 'open');
  });
});

describe('back-off with full jitter', () => {
  it('is uniform in [0, min(max, base · 2^attempt))', () => {
    const opts = { baseDelayMs: 100, maxDelayMs: 2000 };
    assert.equal(backoffDelay(0, opts, () => 0), 0);
    assert.equal(backoffDelay(0, opts, () => 0.999999), 99);
    assert.equal(backoffDelay(1, opts, () => 0.999999), 199);
    assert.equal(backoffDelay(3, opts, () => 0.5), 400);
    assert.equal(backoffDelay(10, opts, () => 0.999999), 1999, 'capped at maxDelayMs');
    assert.equal(backoffDelay(1000, opts, () => 0.5), 1000, 'huge attempts do not overflow');
    for (let i = 0; i < 200; i++) {
      const d = backoffDelay(4, opts);
      assert.ok(d >= 0 && d < 1600, `${d}`);
    }
  });
});

describe('endpoint pool', () => {
  it('sticks to one endpoint, fails over on failure, and fails fast when every breaker is open', () => {
    const clock = new FakeClock();
    const pool = new EndpointPool(['http://a', 'http://b'], { clock, healthCheck: false, breaker: { minRequests: 2, openMs: 30_000 } });
    const a = pool.acquire(new Set());
    assert.equal(a?.url, 'http://a');
    pool.failed(a as NonNullable<typeof a>);
    assert.equal(pool.current.url, 'http://b', 'a failure moves the current endpoint');
    const b = pool.acquire(new Set());
    assert.equal(b?.url, 'http://b');
    pool.succeeded(b as NonNullable<typeof b>);
    // Open both breakers.
    for (const e of pool.endpoints) {
      for (let i = 0; i < 2; i++) {
        e.breaker?.tryAcquire();
        pool.failed(e);
      }
    }
    assert.deepEqual(
      pool.status().map((s) => [s.url, s.breaker, s.healthy]),
      [
        ['http://a', 'open', false],
        ['http://b', 'open', false],
      ],
    );
    assert.throws(
      () => pool.acquire(new Set()),
      (err: unknown) => err instanceof UnavailableError && err.code === ErrorCode.Unavailable && err.details?.reason === 'circuit_open' && err.details.retryInMs === 30_000,
    );
    clock.advance(30_000);
    const probe = pool.acquire(new Set());
    assert.ok(probe !== undefined, 'half-open after 30 s: one probe');
    const other = pool.acquire(new Set([probe]));
    assert.ok(other !== undefined && other !== probe, 'the other endpoint admits its own probe');
    assert.throws(() => pool.acquire(new Set()), UnavailableError, 'both probes are out: nothing else goes');
    pool.succeeded(probe);
    assert.equal(pool.acquire(new Set())?.url, probe.url, 'a successful probe closes its breaker');
  });

  it('prefers healthy endpoints and returns undefined once every endpoint was tried', () => {
    const pool = new EndpointPool(['http://a', 'http://b', 'http://c'], { healthCheck: false, breaker: false });
    const [a, b, c] = pool.endpoints as [NonNullable<ReturnType<typeof pool.acquire>>, NonNullable<ReturnType<typeof pool.acquire>>, NonNullable<ReturnType<typeof pool.acquire>>];
    pool.markDown(b);
    assert.equal(pool.acquire(new Set([a]))?.url, 'http://c', 'the healthy one before the one marked down');
    assert.equal(pool.acquire(new Set([a, c]))?.url, 'http://b', 'a down endpoint is still tried last');
    assert.equal(pool.acquire(new Set([a, b, c])), undefined);
    assert.equal(pool.pickForStream(new Set([a]))?.url, 'http://c');
  });
});

describe('SSE reader', () => {
  it('parses events split across chunks, skips comments, joins data lines', async () => {
    const text = ': hello\n\nevent: leader\nid: 5\ndata: {"a":\ndata: 1}\n\r\nevent: leader\ndata: x\n\n';
    const bytes = new TextEncoder().encode(text);
    const body = new ReadableStream<Uint8Array>({
      start(c) {
        for (let i = 0; i < bytes.length; i += 7) c.enqueue(bytes.subarray(i, i + 7));
        c.close();
      },
    });
    const got = [];
    for await (const m of readSse(body)) got.push(m);
    assert.deepEqual(got, [
      { event: 'leader', data: '{"a":\n1}', id: '5' },
      { event: 'leader', data: 'x', id: '5' },
    ]);
  });
});
