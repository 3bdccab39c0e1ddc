import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConflictError, InvalidArgumentError, NotFoundError } from '../../errors.js';
import { Silences, silenceInputFromRequest } from './silences.js';

const T0 = Date.UTC(2026, 11, 6, 12, 0, 0);

function clock(): { now: () => number; advance: (ms: number) => void } {
  let t = T0;
  return { now: () => t, advance: (ms) => (t += ms) };
}

describe('silences', () => {
  it('mutes matching alerts only while active: pending, active, expired', () => {
    const c = clock();
    const s = new Silences({ now: c.now });
    const sil = s.add({
      matchers: [
        { name: 'alertname', value: 'HighLatency' },
        { name: 'env', value: 'prod|staging', isRegex: true },
        { name: 'team', value: 'db', isEqual: false },
      ],
      startsAt: new Date(T0 + 60_000).toISOString(),
      endsAt: new Date(T0 + 3_600_000).toISOString(),
      createdBy: 'ops',
      comment: 'deploy',
    });
    assert.equal(sil.status.state, 'pending');
    const labels = { alertname: 'HighLatency', env: 'prod', team: 'api' };
    assert.deepEqual(s.mutes(labels), [], 'a pending silence mutes nothing');
    c.advance(60_000);
    assert.equal(s.get(sil.id)?.status.state, 'active');
    assert.deepEqual(s.mutes(labels), [sil.id]);
    assert.deepEqual(s.mutes({ ...labels, env: 'production' }), [], 'regexes are anchored');
    assert.deepEqual(s.mutes({ ...labels, team: 'db' }), [], '!= excludes');
    assert.deepEqual(s.mutes({ alertname: 'HighLatency', team: 'api' }), [], 'a missing label is the empty string');
    c.advance(3_600_000);
    assert.equal(s.get(sil.id)?.status.state, 'expired');
    assert.deepEqual(s.mutes(labels), []);
    assert.equal(s.list('expired').length, 1);
  });

  it('expires an active silence now, a pending one entirely; refuses unknown and already expired ones', () => {
    const c = clock();
    const s = new Silences({ now: c.now });
    const active = s.add({ matchers: [{ name: 'a', value: 'x' }], durationMs: 60_000 });
    const pending = s.add({ matchers: [{ name: 'a', value: 'y' }], startsAt: new Date(T0 + 10_000).toISOString(), durationMs: 60_000 });
    const e1 = s.expire(active.id);
    assert.equal(e1.status.state, 'expired');
    assert.equal(e1.endsAt, new Date(T0).toISOString());
    const e2 = s.expire(pending.id);
    assert.equal(e2.startsAt, new Date(T0).toISOString());
    assert.equal(e2.status.state, 'expired');
    assert.throws(() => s.expire(active.id), ConflictError);
    assert.throws(() => s.expire('nope'), NotFoundError);
  });

  it('validates as Alertmanager does', () => {
    const s = new Silences();
    const bad = [
      { matchers: [], durationMs: 1000 },
      { matchers: [{ name: 'a', value: '' }], durationMs: 1000 },
      { matchers: [{ name: 'a', value: '.*', isRegex: true }], durationMs: 1000 },
      { matchers: [{ name: 'a', value: '(', isRegex: true }], durationMs: 1000 },
      { matchers: [{ name: 'bad-name', value: 'x' }], durationMs: 1000 },
      { matchers: [{ name: 'a', value: 'x' }] },
      { matchers: [{ name: 'a', value: 'x' }], startsAt: '2026-12-06T12:00:00Z', endsAt: '2026-12-06T11:00:00Z' },
      { matchers: [{ name: 'a', value: 'x' }], endsAt: 'tomorrow' },
    ];
    bad.push({ matchers: [{ name: 'a', value: 'x' }], startsAt: '2020-01-01T00:00:00Z', endsAt: '2020-01-02T00:00:00Z' });
    for (const b of bad) assert.throws(() => s.add(b as never), InvalidArgumentError, JSON.stringify(b));
    assert.equal(s.size, 0, 'nothing half-applied');
    // A silence with one empty-matching matcher and one that is not is fine.
    s.add({ matchers: [{ name: 'a', value: '' }, { name: 'b', value: 'x' }], durationMs: 1000 });
    assert.equal(s.size, 1);
  });

  it('round-trips through JSON with its id and times, as the node persists it', () => {
    const c = clock();
    const s = new Silences({ now: c.now });
    const sil = s.add({ matchers: [{ name: 'job', value: 'api' }], durationMs: 7_200_000, createdBy: 'ops', comment: 'c' });
    const stored = Silences.toJSON(sil);
    const other = new Silences({ now: c.now });
    const back = other.add(Silences.fromJSON(stored));
    assert.deepEqual(back, sil);
    c.advance(10 * 3_600_000);
    const expired = new Silences({ now: c.now }).add(Silences.fromJSON(stored));
    assert.equal(expired.status.state, 'expired', 'an expired silence read back from the store is kept, as expired');
    assert.throws(() => Silences.fromJSON('{"matchers":[]}'), InvalidArgumentError);
    assert.throws(() => Silences.fromJSON('not json'), InvalidArgumentError);
    assert.equal(other.remove(sil.id), true);
    assert.equal(other.get(sil.id), undefined);
  });

  it('forgets silences expired longer than the retention', () => {
    const c = clock();
    const s = new Silences({ now: c.now });
    const sil = s.add({ matchers: [{ name: 'a', value: 'x' }], durationMs: 1000 });
    c.advance(1000 + 3_600_000);
    assert.deepEqual(s.gc(3_600_000 - 1), [sil.id]);
    assert.equal(s.size, 0);
  });

  it('reads the POST /v1/alerts/silences body: endsAt or duration, createdBy from the caller, unknown fields refused', () => {
    const c = clock();
    const s = new Silences({ now: c.now });
    const sil = s.add(silenceInputFromRequest({ matchers: [{ name: 'alertname', value: 'X', isRegex: false }], duration: '2h', comment: 'deploy' }, 'alice'));
    assert.equal(sil.createdBy, 'alice');
    assert.equal(sil.endsAt, new Date(T0 + 7_200_000).toISOString());
    assert.equal(sil.matchers[0]?.isEqual, true);
    const until = s.add(silenceInputFromRequest({ matchers: [{ name: 'a', value: 'b', isRegex: true, isEqual: false }, { name: 'c', value: 'd' }], endsAt: new Date(T0 + 60_000).toISOString() }, 'bob'));
    assert.equal(until.status.state, 'active');
    for (const bad of [
      null,
      [],
      { matchers: [{ name: 'a', value: 'b' }] },
      { matchers: [{ name: 'a', value: 'b' }], duration: '2h', endsAt: new Date(T0 + 1).toISOString() },
      { matchers: [{ name: 'a', value: 'b' }], duration: 'two hours' },
      { matchers: [{ name: 'a', value: 'b' }], duration: '2h', createdBy: 'mallory' },
      { matchers: [{ name: 'a', value: 1 }], duration: '2h' },
      { matchers: 'a=b', duration: '2h' },
    ]) {
      assert.throws(() => silenceInputFromRequest(bad, 'x'), InvalidArgumentError, JSON.stringify(bad));
    }
  });
});
