// The README's five-minute tour, run as written (issue 10): its shell blocks, in order, in bash,
// against a fresh node started by its own `npm start` line, with the built CLI as `npx beacon`.
// The only changes are those a second terminal on a shared machine needs: the ports (7379 and
// 6380 in the text become free ports), where the CLI keeps its login (a temporary BEACON_CONFIG_DIR), and
// Ctrl-C for the two commands that follow a watch until interrupted (sent after 3 s). Every
// `# {…}` / `# OK …` / `# PUT …` line under a command is the output the README promises: it must
// appear, in order, in what the block printed (`…` stands for anything). The start-up lines
// under "It prints:" must be what the node printed.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CLI, ROOT, freePort, tempDir } from '../helpers/node.js';

/** The tour's fenced blocks, in order: `sh` blocks and the plain block of start-up output. */
function tourBlocks(): { lang: string; text: string }[] {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const tour = readme.slice(readme.indexOf('## A five-minute tour'), readme.indexOf('## Documentation'));
  assert.ok(tour.length > 100, 'the README has a tour');
  return [...tour.matchAll(/^```(\w*)\n([^]*?)^```$/gm)].map((m) => ({ lang: m[1] as string, text: m[2] as string }));
}

/** A promised output line as a regex: `…` is anything; a remark after 3+ spaces and `(` is not output. */
function promise(line: string): RegExp {
  const text = line.replace(/\s{3,}\(.*$/, '').trim();
  return new RegExp(text.split('…').map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('.*?'));
}

/** Runs a bash script; resolves with its output once it exits (killed after `ms`). */
function bash(script: string, cwd: string, env: Record<string, string>, ms: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-c', script], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`the tour did not finish in ${ms} ms\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, ms);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

describe('the README tour, run as written (e2e)', () => {
  const tmp = tempDir('beacon-tour-');
  let port: number;
  let respPort: number;
  /** A block's text with the README's ports swapped for this run's. */
  const ports = (text: string): string => text.replaceAll('7379', String(port)).replaceAll('6380', String(respPort));
  let env: Record<string, string>;
  let serverPid: number | undefined;
  const blocks = tourBlocks();

  // What a user's shell has: `npx beacon` is the built CLI, `npm start` starts it in the
  // background (as the first terminal would), curl answers end with a newline so the next
  // output starts on its own line, and Ctrl-C ends the commands that follow a watch.
  const preamble = (): string => `
set -euo pipefail
npm() {
  [ "$1" = start ] || { echo "the tour runs only npm start, not npm $*" >&2; return 1; }
  shift
  node "${CLI}" serve --http-port ${port} --resp-port ${respPort} "$@" >"${tmp.dir}/serve.out" 2>"${tmp.dir}/serve.err" &
  echo $! >"${tmp.dir}/serve.pid"
}
npx() {
  [ "$1" = beacon ] || { echo "unexpected npx $*" >&2; return 1; }
  shift
  if [ "$1" = watch ]; then timeout -s INT 3 node "${CLI}" "$@" || [ $? -eq 124 ]; else node "${CLI}" "$@"; fi
}
curl() {
  local rc=0
  if [[ " $* " == *" -N "* ]]; then timeout -s INT 3 curl "$@" || [ $? -eq 124 ] || rc=$?; else command curl "$@" || rc=$?; fi
  echo
  return $rc
}
`;

  before(async () => {
    port = await freePort();
    respPort = await freePort();
    const base: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith('BEACON_')) base[k] = v;
    env = {
      ...base,
      BEACON_ENDPOINT: `http://127.0.0.1:${port}`,
      BEACON_CONFIG_DIR: join(tmp.dir, 'config'),
      // The README shows a terminal's start-up lines; under a test stdout is a pipe.
      BEACON_LOG_FORMAT: 'pretty',
    };
  });
  after(() => {
    if (serverPid !== undefined) {
      try {
        process.kill(serverPid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    tmp.cleanup();
  });

  it('starts the node with the first block and prints the start-up lines it shows', async () => {
    const start = blocks[0];
    assert.ok(start !== undefined && start.lang === 'sh' && /npm start/.test(start.text), 'the tour opens with npm start');
    const r = await bash(`${preamble()}\n${ports(start.text)}`, tmp.dir, env, 30_000);
    assert.equal(r.code, 0, r.stderr);
    serverPid = Number(readFileSync(join(tmp.dir, 'serve.pid'), 'utf8'));
    const printed = blocks.find((b) => b.lang === '');
    assert.ok(printed, 'the README shows what the node prints');
    const expected = ports(printed.text).split('\n').filter((l) => l.trim() !== '');
    let stderr = '';
    for (let i = 0; i < 200 && !/beacon logs:/.test(stderr); i++) {
      await new Promise((res) => setTimeout(res, 100));
      stderr = readFileSync(join(tmp.dir, 'serve.err'), 'utf8');
    }
    const lines = stderr.split('\n').filter((l) => l.trim() !== '');
    assert.equal(lines.length, expected.length, `printed:\n${stderr}`);
    expected.forEach((line, i) => assert.match(lines[i] as string, new RegExp(`^${promise(line).source}$`), `line ${i + 1}:\n${stderr}`));
    assert.doesNotMatch(stderr, /"level":/, 'no JSON log lines among the start-up lines');
  });

  it('runs every later block in order, each command succeeding with the output shown', async () => {
    const rest = blocks.slice(1).filter((b) => b.lang === 'sh');
    assert.ok(rest.length >= 8, `the tour has its blocks (${rest.length})`);
    const script = rest.map((b, i) => `echo "@@block ${i}@@"\n${ports(b.text)}`).join('\n');
    writeFileSync(join(tmp.dir, 'tour.sh'), script);
    const r = await bash(`${preamble()}\n${script}`, tmp.dir, env, 180_000);
    const outputs = r.stdout.split(/^@@block \d+@@\n/m).slice(1);
    assert.equal(r.code, 0, `a command failed in block ${outputs.length}:\n${rest[outputs.length - 1]?.text}\nstdout: ${outputs.at(-1)}\nstderr: ${r.stderr}`);
    rest.forEach((b, i) => {
      const out = outputs[i] ?? '';
      let from = 0;
      for (const line of b.text.split('\n')) {
        const m = /^# ((?:\{|OK |PUT ).*)$/.exec(line);
        if (m === null) continue;
        const re = promise(ports(m[1] as string));
        const found = out.slice(from).search(re);
        assert.ok(found >= 0, `block ${i + 1} promises ${JSON.stringify(m[1])}, printed:\n${out}`);
        from += found;
      }
    });
    // The tour's writes landed where it says.
    assert.match(outputs[rest.findIndex((b) => b.text.includes('secrets/db-password'))] ?? '', /^hunter2$/m, 'the admin reads the secret');
    assert.match(r.stdout, /^v3 .*config_rolled_back \(restored v1\)/m, 'beacon history shows the rollback');
  });
});
