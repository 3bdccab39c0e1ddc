// `beacon watch` as a user runs it: spawned, fed by writes, read from its stdout, stopped with
// Ctrl-C; and across a server restart, where it must reconnect and resume without gaps.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { spawnServer, tempDir, type ServerProcess } from '../helpers/node.js';
import { closedPort, runCli, startCli } from './cli-helpers.js';

describe('beacon watch (e2e)', () => {
  const tmp = tempDir();
  let server: ServerProcess;

  before(async () => {
    server = await spawnServer(['--dev', '--data-dir', tmp.dir]);
  });
  after(async () => {
    await server.kill();
    tmp.cleanup();
  });

  async function put(key: string, value: string): Promise<number> {
    const r = await runCli(['--endpoint', server.url, 'put', key, value, '--json']);
    assert.equal(r.code, 0, r.stderr);
    return (JSON.parse(r.stdout) as { revision: number }).revision;
  }

  it('prints puts and deletes under a prefix as they happen, and exits 0 on Ctrl-C', async () => {
    const w = startCli(['--endpoint', server.url, 'watch', 'app/', '--prefix', '--prev-kv']);
    try {
      await w.waitFor('stderr', /watching 'app\/' \(prefix\) after revision \d+/);
      const r1 = await put('app/color', 'blue');
      const r2 = await put('app/color', 'green');
      await put('elsewhere', 'not shown');
      const del = await runCli(['--endpoint', server.url, 'del', 'app/color']);
      assert.equal(del.code, 0);
      await w.waitFor('stdout', /DELETE/);
      assert.equal(
        w.stdout(),
        `PUT app/color = blue  (rev ${r1})\nPUT app/color = green  (was: blue)  (rev ${r2})\nDELETE app/color  (was: green)  (rev ${r2 + 2})\n`,
      );
    } finally {
      assert.equal(await w.stop('SIGINT'), 0);
    }
  });

  it('replays history with --from-rev as JSON lines', async () => {
    const first = await put('hist/k', 'one');
    await put('hist/k', 'two');
    const w = startCli(['--endpoint', server.url, 'watch', 'hist/k', '--from-rev', String(first), '--json']);
    try {
      await w.waitFor('stdout', /"two"/);
      const events = w
        .stdout()
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { type: string; revision: number; kv: { key: string; value: string } });
      assert.deepEqual(
        events.map((e) => [e.type, e.kv.key, e.kv.value, e.revision]),
        [
          ['put', 'hist/k', 'one', first],
          ['put', 'hist/k', 'two', first + 1],
        ],
      );
    } finally {
      await w.stop();
    }
  });

  it('reconnects when the server restarts and resumes where it stopped: no gap, no repeat', async () => {
    const w = startCli(['--endpoint', server.url, 'watch', 'restart/', '--prefix']);
    try {
      await w.waitFor('stderr', /watching 'restart\/'/);
      const r1 = await put('restart/a', '1');
      await w.waitFor('stdout', /PUT restart\/a/);
      const port = server.port;
      await server.kill(); // SIGKILL: no goodbye to the watcher
      server = await spawnServer(['--dev', '--data-dir', tmp.dir, '--http-port', String(port)]);
      const r2 = await put('restart/b', '2');
      const r3 = await put('restart/c', '3');
      await w.waitFor('stdout', /PUT restart\/c/, 15_000);
      assert.equal(w.stdout(), `PUT restart/a = 1  (rev ${r1})\nPUT restart/b = 2  (rev ${r2})\nPUT restart/c = 3  (rev ${r3})\n`);
      assert.match(w.stderr(), /watch connection lost .*; reconnecting in \d+ ms/);
      assert.match(w.stderr(), new RegExp(`watching 'restart/' \\(prefix\\) from revision ${r1 + 1}`));
    } finally {
      await w.stop();
    }
  });

  it('exits 3 when there is no server to watch', async () => {
    const r = await runCli(['--endpoint', `http://127.0.0.1:${await closedPort()}`, '--timeout', '2000', 'watch', 'k']);
    assert.equal(r.code, 3);
    assert.match(r.stderr, /cannot open a watch/);
  });
});
