import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { runTestFile } from '../../../test/promql/runner.js';

const ROOT = resolve(new URL('../../../..', import.meta.url).pathname);
const DIR = join(ROOT, 'test/promql');

describe('PromQL evaluation tests (test/promql/*.test)', () => {
  for (const file of readdirSync(DIR).filter((f) => f.endsWith('.test')).sort()) {
    it(file, async () => {
      const { failures, evals } = await runTestFile(readFileSync(join(DIR, file), 'utf8'));
      assert.ok(evals > 0, `${file} has no eval commands`);
      assert.deepEqual(failures, [], `${failures.length} of ${evals} evals failed:\n${failures.join('\n')}`);
    });
  }
});
