import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ErrorCode } from '../errors.js';
import { inShare, isTargeted, matchesSelector, parseSelector, rolloutBucket } from './targeting.js';

describe('rollout selectors', () => {
  it('parses =, ==, !=, in and notin, and matches like Kubernetes', () => {
    const sel = parseSelector("region=eu, env!=dev,tier in (a, b),zone notin (z1)");
    assert.deepEqual(sel, [
      { label: 'region', op: 'in', values: ['eu'] },
      { label: 'env', op: 'notin', values: ['dev'] },
      { label: 'tier', op: 'in', values: ['a', 'b'] },
      { label: 'zone', op: 'notin', values: ['z1'] },
    ]);
    assert.equal(matchesSelector(sel, { region: 'eu', env: 'prod', tier: 'b' }), true);
    assert.equal(matchesSelector(sel, { region: 'eu', tier: 'a' }), true, 'a missing label satisfies != and notin');
    assert.equal(matchesSelector(sel, { region: 'us', env: 'prod', tier: 'a' }), false);
    assert.equal(matchesSelector(sel, { region: 'eu', env: 'dev', tier: 'a' }), false);
    assert.equal(matchesSelector(sel, { region: 'eu', tier: 'c' }), false);
    assert.equal(matchesSelector(sel, { region: 'eu', tier: 'a', zone: 'z1' }), false);
    assert.deepEqual(parseSelector(''), []);
    assert.equal(matchesSelector([], {}), true);
    assert.deepEqual(parseSelector('a==b'), [{ label: 'a', op: 'in', values: ['b'] }]);
  });

  it('refuses what does not parse, saying where', () => {
    for (const bad of ['region', 'region=eu,', 'tier in (a,,b)', 'tier in a,b', '=eu', 'a=b c=d', 'tier in ()', 'a=b;c']) {
      assert.throws(() => parseSelector(bad), (e: { code: string; message: string }) => e.code === ErrorCode.InvalidArgument && e.message.includes('does not parse'), bad);
    }
  });
});

describe('rollout buckets', () => {
  it('are stable, spread evenly and grow with the share (a client in at 10 % is in at 50 %)', () => {
    assert.equal(rolloutBucket('k', 'r1', 'c1'), rolloutBucket('k', 'r1', 'c1'));
    const n = 20_000;
    for (const share of [1, 10, 50]) {
      let inside = 0;
      for (let i = 0; i < n; i++) if (inShare(rolloutBucket('app/x', 'abc', `client-${i}`), share)) inside++;
      assert.ok(Math.abs((inside / n) * 100 - share) < 1, `share ${share}: ${(inside / n) * 100}`);
    }
    for (let i = 0; i < 2000; i++) {
      const b = rolloutBucket('app/x', 'abc', `client-${i}`);
      if (inShare(b, 10)) assert.ok(inShare(b, 50));
    }
    assert.equal(inShare(9999, 100), true);
    assert.equal(inShare(0, 0.01), true);
    assert.equal(inShare(1, 0.01), false);
  });

  it('a new rollout draws new buckets; targeting needs both the share and the selector', () => {
    let same = 0;
    for (let i = 0; i < 1000; i++) if (inShare(rolloutBucket('k', 'r1', `c${i}`), 50) === inShare(rolloutBucket('k', 'r2', `c${i}`), 50)) same++;
    assert.ok(same > 400 && same < 600, String(same));
    const r = { key: 'k', id: 'r1', share: 100, selector: 'region=eu' };
    assert.equal(isTargeted(r, { id: 'x', labels: { region: 'eu' } }), true);
    assert.equal(isTargeted(r, { id: 'x', labels: { region: 'us' } }), false);
    assert.equal(isTargeted(r, { id: 'x' }), false);
  });
});
