import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  COMPACTION_REST_MAX_MS,
  COMPACTION_STEP_MAX,
  COMPACTION_STEP_MIN,
  COMPACTION_STEP_START,
  COMPACTION_STEP_TARGET_MS,
  compactionRestMs,
  nextCompactionStep,
} from './compaction.js';

test('a slow compaction step halves the next one, down to the minimum', () => {
  let step = COMPACTION_STEP_START;
  const sizes: number[] = [];
  for (let i = 0; i < 20; i++) sizes.push((step = nextCompactionStep(step, COMPACTION_STEP_TARGET_MS * 20)));
  assert.equal(sizes[0], COMPACTION_STEP_START / 2);
  assert.equal(sizes.at(-1), COMPACTION_STEP_MIN);
  assert.ok(sizes.every((s, i) => i === 0 || s <= (sizes[i - 1] as number)));
});

test('a fast compaction step doubles the next one, up to the maximum', () => {
  let step = COMPACTION_STEP_START;
  for (let i = 0; i < 20; i++) step = nextCompactionStep(step, 0.1);
  assert.equal(step, COMPACTION_STEP_MAX);
  assert.equal(nextCompactionStep(1000, COMPACTION_STEP_TARGET_MS / 2 - 0.1), 2000);
});

test('a step near the target keeps its size', () => {
  assert.equal(nextCompactionStep(1000, COMPACTION_STEP_TARGET_MS), 1000);
  assert.equal(nextCompactionStep(1000, (COMPACTION_STEP_TARGET_MS * 3) / 4), 1000);
});

test('a compaction takes about a quarter of the writer while clients write and half while none do', () => {
  const share = (tookMs: number, clientsWrote: boolean): number => tookMs / (tookMs + compactionRestMs(tookMs, clientsWrote));
  assert.equal(share(COMPACTION_STEP_TARGET_MS, true), 0.25);
  assert.equal(share(COMPACTION_STEP_TARGET_MS, false), 0.5);
  // A slow step rests at most the cap, so a compaction is never parked for long; no negative rest.
  assert.equal(compactionRestMs(10_000, true), COMPACTION_REST_MAX_MS);
  assert.equal(compactionRestMs(-1, true), 0);
});
