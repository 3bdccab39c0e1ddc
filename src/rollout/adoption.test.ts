import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { SqliteBackend } from '../backend/index.js';
import { ADOPTION_WINDOW_MS, AdoptionLedger } from './adoption.js';

describe('adoption ledger over the SQLite table', () => {
  const backend = new SqliteBackend({ path: ':memory:' });
  let now = 1_000_000_000;
  const ledger = new AdoptionLedger(backend, { now: () => now });

  before(() => backend.open());
  after(async () => {
    await ledger.close();
    await backend.close();
  });

  it('keeps one row per client (the latest report wins) and counts clients seen within the window', async () => {
    ledger.report({ rollout: 'r1', client: 'a', variant: 'current', bucket: 10, selected: true });
    ledger.report({ rollout: 'r1', client: 'b', variant: 'candidate', bucket: 20, selected: true });
    ledger.report({ rollout: 'r1', client: 'c', variant: 'current', bucket: 30, selected: false });
    ledger.report({ rollout: 'r2', client: 'a', variant: 'candidate', bucket: 40, selected: null });
    assert.deepEqual(await ledger.counts('r1'), { candidate: 1, current: 2 });
    now += 1000;
    ledger.report({ rollout: 'r1', client: 'a', variant: 'candidate', bucket: 10, selected: true });
    assert.deepEqual(await ledger.counts('r1'), { candidate: 2, current: 1 });
    // Only clients that said they match the selector are calibration input.
    assert.deepEqual((await ledger.selectedBuckets('r1')).sort((x, y) => x - y), [10, 20]);
    // A client silent for longer than the window is no longer counted.
    now += ADOPTION_WINDOW_MS - 500;
    ledger.report({ rollout: 'r1', client: 'c', variant: 'current', bucket: 30, selected: false });
    assert.deepEqual(await ledger.counts('r1'), { candidate: 1, current: 1 });
  });

  it('a late write of an older report does not overwrite a newer one', async () => {
    await backend.recordAdoption([{ rollout: 'r3', client: 'x', variant: 'candidate', bucket: 1, selected: true, seenAt: now }]);
    await backend.recordAdoption([{ rollout: 'r3', client: 'x', variant: 'current', bucket: 1, selected: true, seenAt: now - 5000 }]);
    assert.deepEqual(await ledger.counts('r3'), { candidate: 1, current: 0 });
  });

  it('prune drops the rows of finished rollouts and of silent clients', async () => {
    // r1 (active): b is silent for longer than the window, a and c were seen within it; r2 and r3 finished.
    const removed = await ledger.prune(['r1']);
    assert.equal(removed, 3);
    assert.deepEqual(await ledger.counts('r1'), { candidate: 1, current: 1 });
    assert.equal(await ledger.prune(['r1']), 0);
    assert.deepEqual(await ledger.counts('r2'), { candidate: 0, current: 0 });
  });
});
