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


  it('serve --help shows the rate-limit defaults readably, not as JSON', async () => {
    const r = await runCli(['serve', '--help']);
    assert.equal(r.code, 0, r.stderr);
    const help = r.stdout.replace(/\s+/g, ' ');
    assert.doesNotMatch(help, /\{"rate"|0\.333|default: null/);
    assert.match(help, /--auth-rate-limit .*\(default: 20 attempts at once, then 1 every 3 s\)/);
    assert.match(help, /--rate-limit .*\(default: off\)/);
  });

  it('draws the --dev warning box with straight borders', async () => {
    const tmp = tempDir();
    const node = startCli(['serve', '--dev', '--http-port', '0', '--data-dir', join(tmp.dir, 'data')]);
    try {
      await node.waitFor('stderr', /WARNING[^]*\*{20,}\n/);
      const box = node
        .stderr()
        .split('\n')
        .filter((l) => l.trimStart().startsWith('*'));
      assert.ok(box.length >= 3, node.stderr());
      for (const line of box) {
        assert.equal(line.length, (box[0] as string).length, `ragged: ${JSON.stringify(box)}`);
        assert.ok(line.endsWith('*'));
      }
    } finally {
      await node.stop();
      tmp.cleanup();
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

  it('beacon audit lists the newest records first; --limit keeps the newest', async () => {
    for (const k of ['a', 'b', 'c']) assert.equal((await as(admin, 'put', `audit-order/${k}`, k)).code, 0);
    const all = JSON.parse((await as(admin, '--json', 'audit', '--key', 'audit-order/')).stdout);
    const ids = all.records.map((r: any) => r.id as number);
    assert.equal(ids.length, 3);
    assert.deepEqual(ids, [...ids].sort((a: number, b: number) => b - a), 'newest first');
    assert.equal(all.records[0].key, 'audit-order/c');
    const two = JSON.parse((await as(admin, '--json', 'audit', '--key', 'audit-order/', '--limit', '2')).stdout);
    assert.deepEqual(two.records.map((r: any) => r.key), ['audit-order/c', 'audit-order/b']);
    assert.equal(two.more, true);
    const text = (await as(admin, 'audit', '--key', 'audit-order/')).stdout.split('\n');
    assert.ok(text.findIndex((l) => l.includes('audit-order/c')) < text.findIndex((l) => l.includes('audit-order/a')), text.join('\n'));
  });

  it('beacon status counts the keys a user sees apart from the system keys', async () => {
    const listed = JSON.parse((await as(admin, '--json', 'ls')).stdout).count as number;
    const stored = JSON.parse((await as(admin, '--json', 'status')).stdout).keys as number;
    assert.ok(stored > listed, 'a secure node has system keys');
    const r = await as(admin, 'status');
    assert.equal(r.code, 0, r.stderr);
    const m = /^keys:\s+(\d+) visible to you, (\d+) stored/m.exec(r.stdout);
    assert.ok(m, r.stdout);
    assert.equal(Number(m[1]), listed);
    assert.equal(Number(m[2]), stored);
  });
});
