import assert from 'node:assert/strict';
import { test } from 'node:test';
import { COMPACTION_STEP_MAX, COMPACTION_STEP_MIN, COMPACTION_STEP_START, COMPACTION_STEP_TARGET_MS, nextCompactionStep } from './compaction.js';

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
