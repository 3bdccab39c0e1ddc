// Issue 10 (a newcomer's first hour), the CLI's part: help never shows a credential (item 2),
// every error, commander's usage errors too, has the one `beacon: ` prefix (item 12), and a
// secret hidden from the caller says so in get, watch and history, text and JSON (item 1).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { spawnServer, tempDir, type ServerProcess } from '../helpers/node.js';
import { runCli, startCli } from './cli-helpers.js';

describe('beacon CLI for a newcomer (e2e)', () => {
  it('never prints BEACON_TOKEN in --help, of the program or of any subcommand', async () => {
    const token = 'eyJhbGciOiJFZERTQSJ9.a-credential-that-must-not-show';
    for (const args of [['--help'], ['get', '--help'], ['put', '--help'], ['watch', '--help'], ['login', '--help'], ['help', 'history']]) {
      const r = await runCli(args, { env: { BEACON_TOKEN: token } });
      assert.equal(r.code, 0, r.stderr);
      assert.ok(!`${r.stdout}${r.stderr}`.includes('eyJhbGciOi'), `${args.join(' ')} printed the token`);
      assert.ok(!`${r.stdout}${r.stderr}`.includes('must-not-show'), `${args.join(' ')} printed the token`);
    }
  });

  it('prefixes usage errors with `beacon: ` like every other error, exit 2', async () => {
    for (const args of [['no-such-command'], ['get'], ['get', 'k', '--no-such-option']]) {
      const r = await runCli(args);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /^beacon: /, `${args.join(' ')}: ${r.stderr}`);
      assert.doesNotMatch(r.stderr, /^error: /m);
    }
  });
});

describe('beacon CLI for a newcomer, against a secure node with a KEK (e2e)', () => {
  const tmp = tempDir();
  let server: ServerProcess;
  const password = 'a long enough admin password';
  let admin: string;
  let viewer: string;
  const as = (token: string, ...args: string[]) => runCli(['--endpoint', server.url, '--token', token, ...args]);

  before(async () => {
    const kekFile = join(tmp.dir, 'kek');
    writeFileSync(kekFile, `k1:${randomBytes(32).toString('hex')}\n`, { mode: 0o600 });
    server = await spawnServer(['--data-dir', join(tmp.dir, 'data'), '--kek-file', kekFile], 20_000, {
      secure: true,
      env: { BEACON_ADMIN_PASSWORD: password },
    });
    const login = await runCli(['--endpoint', server.url, 'login', '--user', 'admin'], { input: `${password}\n` });
    assert.equal(login.code, 0, login.stderr);
    admin = login.stdout.trim();
    const key = await as(admin, 'apikey', 'create', 'reader', '--role', 'viewer');
    assert.equal(key.code, 0, key.stderr);
    viewer = key.stdout.trim();
    assert.equal((await as(admin, 'namespace', 'put', 'secrets/', '--secret')).code, 0);
  });
  after(async () => {
    await server.kill();
    tmp.cleanup();
  });

  it('shows a secret hidden from a viewer as redacted in get, get --prefix, watch and history (text and JSON)', async () => {
    const w = startCli(['--endpoint', server.url, '--token', viewer, 'watch', 'secrets/', '--prefix']);
    const wj = startCli(['--endpoint', server.url, '--token', viewer, '--json', 'watch', 'secrets/', '--prefix']);
    try {
      await w.waitFor('stderr', /watching/);
      await wj.waitFor('stderr', /watching/);
      assert.equal((await as(admin, 'put', 'secrets/db-password', 'hunter2')).code, 0);
      // The administrator (read_secret) sees the value.
      assert.equal((await as(admin, 'get', 'secrets/db-password')).stdout, 'hunter2\n');

      const text = await as(viewer, 'get', 'secrets/db-password');
      assert.equal(text.code, 0, text.stderr);
      assert.equal(text.stdout, '<redacted>\n');
      const json = JSON.parse((await as(viewer, '--json', 'get', 'secrets/db-password')).stdout);
      assert.equal(json.kv.redacted, true);
      assert.ok(!('value' in json.kv), JSON.stringify(json));
      assert.match((await as(viewer, 'get', 'secrets/', '--prefix')).stdout, /^secrets\/db-password = <redacted>$/m);
      const list = JSON.parse((await as(viewer, '--json', 'get', 'secrets/', '--prefix')).stdout);
      assert.equal(list.kvs[0].redacted, true);

      await w.waitFor('stdout', /^PUT secrets\/db-password = <redacted> {2}\(rev \d+\)$/m);
      await wj.waitFor('stdout', /"redacted":true/);
      const ev = JSON.parse(wj.stdout().trim().split('\n')[0] as string);
      assert.equal(ev.kv.redacted, true);
      assert.ok(!('value' in ev.kv));

      assert.match((await as(viewer, 'history', 'secrets/db-password')).stdout, /^v1 .*<redacted>$/m);
      const hist = JSON.parse((await as(viewer, '--json', 'history', 'secrets/db-password')).stdout);
      assert.equal(hist.versions[0].redacted, true);
      for (const r of [text, json, list, hist]) assert.ok(!JSON.stringify(r).includes('hunter2'));
      assert.ok(!w.stdout().includes('hunter2') && !wj.stdout().includes('hunter2'));
    } finally {
      await w.stop();
      await wj.stop();
    }
  });
});
