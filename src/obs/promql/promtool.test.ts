// The expected values in test/promql/*.test are checked against the real Prometheus: each file is
// turned into a `promtool test rules` file (same series, same expressions, same times) and the
// installed promtool must pass it. Skipped, with a message, when promtool is not installed.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { toPromtoolTests } from '../../../test/promql/runner.js';

const ROOT = resolve(new URL('../../../..', import.meta.url).pathname);
const DIR = join(ROOT, 'test/promql');
const files = readdirSync(DIR).filter((f) => f.endsWith('.test')).sort();
const promtool = spawnSync('promtool', ['--version'], { encoding: 'utf8' });
const skip = promtool.error ? 'promtool is not installed (Debian package "prometheus"); expected values not cross-checked' : false;

describe('promtool agrees with the expected values in test/promql', { skip }, () => {
  const tmp = mkdtempSync(join(tmpdir(), 'beacon-promtool-'));
  for (const file of files) {
    it(file, () => {
      const { yaml, checks } = toPromtoolTests(readFileSync(join(DIR, file), 'utf8'));
      if (checks === 0) return;
      const path = join(tmp, file.replace(/\.test$/, '.yml'));
      writeFileSync(path, yaml);
      const run = spawnSync('promtool', ['test', 'rules', path], { encoding: 'utf8', timeout: 120_000 });
      assert.equal(run.status, 0, `promtool test rules ${file} (${checks} checks):\n${run.stdout}\n${run.stderr}`);
    });
  }
  it('cleans up', () => rmSync(tmp, { recursive: true, force: true }));
});
