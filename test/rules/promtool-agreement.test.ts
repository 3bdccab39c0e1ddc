// `beacon rules test` and `beacon rules check` must give the same verdict as the real promtool
// (Debian `prometheus` 2.42) on the same files: pass/fail per test file, and SUCCESS/FAILED, the
// rule count and the exit status per rule file. Skipped, with a message, when promtool is absent.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

const ROOT = resolve(new URL('../../..', import.meta.url).pathname);
const DIR = join(ROOT, 'test/rules');
const BEACON = join(ROOT, 'dist/src/cli/main.js');
const promtool = spawnSync('promtool', ['--version'], { encoding: 'utf8' });
const skip = promtool.error ? 'promtool is not installed (Debian package "prometheus"); beacon rules not cross-checked' : false;
const files = readdirSync(DIR).sort();
const testFiles = files.filter((f) => f.endsWith('.yml') && !f.endsWith('.rules.yml'));
const ruleFiles = files.filter((f) => f.endsWith('.rules.yml'));

function run(cmd: string, args: string[]): { status: number | null; out: string } {
  const r = spawnSync(cmd, args, { cwd: DIR, encoding: 'utf8', timeout: 120_000 });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

/** The verdict lines of a check report: `SUCCESS: N rules found` or `FAILED:`. */
function verdict(out: string): string[] {
  return out.split('\n').map((l) => l.trim()).filter((l) => l.startsWith('SUCCESS') || l === 'FAILED:');
}

describe('beacon rules test agrees with promtool test rules', { skip }, () => {
  it('has passing and deliberately failing cases', () => {
    assert.ok(testFiles.filter((f) => f.startsWith('fail_')).length >= 2);
    assert.ok(testFiles.filter((f) => f.endsWith('_pass.yml')).length >= 2);
  });
  for (const f of testFiles) {
    it(f, () => {
      const p = run('promtool', ['test', 'rules', f]);
      const b = run(process.execPath, [BEACON, 'rules', 'test', f]);
      assert.equal(p.status, f.startsWith('fail_') ? 1 : 0, `promtool itself disagrees with the file's name:\n${p.out}`);
      assert.equal(b.status, p.status, `promtool:\n${p.out}\nbeacon:\n${b.out}`);
      assert.match(b.out, new RegExp(`Unit Testing:  ${f}\\n  ${p.status === 0 ? 'SUCCESS' : 'FAILED:'}`));
    });
  }
});

describe('beacon rules check agrees with promtool check rules', { skip }, () => {
  for (const f of ruleFiles) {
    it(f, () => {
      const p = run('promtool', ['check', 'rules', f]);
      const b = run(process.execPath, [BEACON, 'rules', 'check', f]);
      assert.equal(b.status, p.status, `promtool:\n${p.out}\nbeacon:\n${b.out}`);
      assert.deepEqual(verdict(b.out), verdict(p.out), `promtool:\n${p.out}\nbeacon:\n${b.out}`);
      assert.equal(verdict(p.out).length, 1);
    });
  }
  it("Beacon's default rules (src/obs/alerting/assets/default-rules.yml)", () => {
    const f = join(ROOT, 'src/obs/alerting/assets/default-rules.yml');
    const p = run('promtool', ['check', 'rules', f]);
    const b = run(process.execPath, [BEACON, 'rules', 'check', f]);
    assert.equal(p.status, 0, p.out);
    assert.equal(b.status, 0, b.out);
    assert.deepEqual(verdict(b.out), verdict(p.out));
  });
  it('several files at once: same verdicts in order, exit 1 when any fails', () => {
    const args = ['latency.rules.yml', 'check_bad_expr.rules.yml', 'recording.rules.yml'];
    const p = run('promtool', ['check', 'rules', ...args]);
    const b = run(process.execPath, [BEACON, 'rules', 'check', ...args]);
    assert.equal(p.status, 1);
    assert.equal(b.status, 1);
    assert.deepEqual(verdict(b.out).sort(), verdict(p.out).sort());
  });
  it('reports a syntax error with its line, and the bad expression with line:col', () => {
    assert.match(run(process.execPath, [BEACON, 'rules', 'check', 'check_bad_yaml.rules.yml']).out, /check_bad_yaml\.rules\.yml: yaml: line \d+: /);
    assert.match(run(process.execPath, [BEACON, 'rules', 'check', 'check_bad_expr.rules.yml']).out, /5:15: group "broken", rule 1, "Broken": could not parse expression: 1:\d+: parse error/);
  });
});
