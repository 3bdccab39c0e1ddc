// Every program in examples/ (compiled to dist/examples) runs against a real node and prints what its comments promise.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ROOT, startTestNode } from '../helpers/node.js';

type TestNode = Awaited<ReturnType<typeof startTestNode>>;

const DIST_EXAMPLES = join(ROOT, 'dist/examples');

/** What each example must print, line by line (regular expressions, in order). */
const EXPECTED: Record<string, RegExp[]> = {
  'watch-config': [/^put color=blue at revision (\d+)$/, /^put color=green \(was blue\) at revision \d+$/, /^delete color \(was green\) at revision \d+$/, /^last revision \d+$/],
  'live-config': [
    /^loaded: rps=100 mode=normal stale=false$/,
    /^rejected an invalid update: \/mode must be equal to one of the allowed values$/,
    /^changed mode: rps=100 mode=degraded$/,
    /^now: mode=degraded at revision \d+$/,
  ],
  lock: [
    /^alice holds examples\/lock-\w+ with fencing token \d+$/,
    /^bob gave up after 1000 ms \(holder: alice\)$/,
    /^bob holds it now, fencing token \d+ > \d+: true$/,
    /^queued 00000000000000000001 and 00000000000000000002$/,
    /^left in the queue: 1$/,
  ],
  election: [
    /^scheduler-1 leads: true$/,
    /^observed leader: scheduler-1:8080 \(fencing token \d+\)$/,
    /^observed leader: scheduler-1:9090 \(fencing token \d+\)$/,
    /^observed leader: scheduler-2:8080 \(fencing token \d+\)$/,
    /^scheduler-2 leads: true; current leader scheduler-2:8080$/,
  ],
  failover: [
    /^endpoint dead is down$/,
    /^read back: v$/,
    /^dead: healthy=false breaker=closed current=false$/,
    /^live: healthy=true breaker=closed current=true$/,
  ],
};

function run(file: string, endpoint: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [file], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, BEACON_ENDPOINT: endpoint } });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${file} did not finish in 15 s\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, 15_000);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

describe('examples/ run against a real node', { concurrency: true }, () => {
  let node: TestNode;
  before(async () => {
    node = await startTestNode();
  });
  after(async () => node.cleanup());

  it('has an expectation for every example, and an example for every expectation', () => {
    const built = readdirSync(DIST_EXAMPLES)
      .filter((f) => f.endsWith('.js'))
      .map((f) => f.slice(0, -3))
      .sort();
    assert.deepEqual(built, Object.keys(EXPECTED).sort());
  });

  for (const [name, lines] of Object.entries(EXPECTED)) {
    it(`examples/${name}.ts`, async () => {
      const r = await run(join(DIST_EXAMPLES, `${name}.js`), node.url);
      assert.equal(r.code, 0, `exited ${r.code}\nstderr: ${r.stderr}`);
      const out = r.stdout.trimEnd().split('\n');
      assert.equal(out.length, lines.length, `output:\n${r.stdout}`);
      lines.forEach((re, i) => assert.match(out[i] ?? '', re, `line ${i + 1}`));
    });
  }
});
