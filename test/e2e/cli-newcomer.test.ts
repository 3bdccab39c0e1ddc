// Issue 10 (a newcomer's first hour), the CLI's part: help never shows a credential (item 2),
// every error, commander's usage errors too, has the one `beacon: ` prefix (item 12), a secret
// hidden from the caller says so in get, watch and history, text and JSON (item 1); a login that
// lasts a session with one expired-token hint (15), start-up messages (5, 6), errors_total (3),
// restore and the signing key (4), snake_case --json history (14), KEK hint (17), clearer
// messages (18), namespace set (19). The README tour itself runs in readme-tour.test.ts.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ROOT, http, spawnServer, tempDir, type ServerProcess } from '../helpers/node.js';
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

describe('beacon CLI for a newcomer: a login that lasts, start-up messages, clearer errors (e2e)', () => {
  const tmp = tempDir();
  const dataDir = join(tmp.dir, 'data');
  const configDir = join(tmp.dir, 'config');
  let server: ServerProcess;
  const password = 'a long enough admin password';
  // Every command of this suite shares one saved login, as one user's shell would.
  const cli = (args: string[], opts: { input?: string; env?: Record<string, string> } = {}) =>
    runCli(['--endpoint', server.url, ...args], { ...opts, env: { BEACON_CONFIG_DIR: configDir, ...(opts.env ?? {}) } });
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  // Raw HTTP checks use an API key: the node's tokens last one second.
  let apiKey: string | undefined;
  const adminAuth = async (): Promise<Record<string, string>> => {
    if (apiKey === undefined) {
      const r = await cli(['apikey', 'create', 'newcomer-tests', '--role', 'admin']);
      assert.equal(r.code, 0, r.stderr);
      apiKey = r.stdout.trim();
    }
    return { authorization: `Bearer ${apiKey}` };
  };

  before(async () => {
    // A 1-second token: every command after the first second needs the saved login's refresh.
    server = await spawnServer(['--data-dir', dataDir, '--token-ttl', '1'], 20_000, { secure: true, env: { BEACON_ADMIN_PASSWORD: password } });
  });
  after(async () => {
    await server.kill();
    tmp.cleanup();
  });

  it('keeps the login in a 0600 file and renews the short-lived token by itself; one hint for an expired token', async () => {
    const login = await cli(['login', '--user', 'admin'], { input: `${password}\n` });
    assert.equal(login.code, 0, login.stderr);
    const first = login.stdout.trim();
    const file = join(configDir, 'credentials.json');
    assert.equal(statSync(file).mode & 0o777, 0o600);
    assert.match(login.stderr, /logged in as admin \(admin\) to .* until .*; saved in .*credentials\.json \(mode 0600\)/);
    await sleep(2500); // the token from the login has expired now

    const put = await cli(['put', 'session/k', 'v']);
    assert.equal(put.code, 0, `the saved login renews the token: ${put.stderr}`);
    assert.equal((await cli(['get', 'session/k'])).stdout, 'v\n');
    const renewed = await cli(['token']);
    assert.equal(renewed.code, 0, renewed.stderr);
    assert.notEqual(renewed.stdout.trim(), first);

    // Past the 5 s of clock skew a node tolerates after a token's exp (docs/security.md).
    await sleep(5000);
    const viaOption = await cli(['--token', first, 'get', 'session/k']);
    assert.equal(viaOption.code, 7);
    assert.equal(viaOption.stderr, 'beacon: the token has expired (given with --token); log in again: beacon login --user NAME\n');
    const viaEnv = await cli(['get', 'session/k'], { env: { BEACON_TOKEN: first } });
    assert.equal(viaEnv.code, 7);
    assert.equal(viaEnv.stderr, 'beacon: the token has expired (BEACON_TOKEN holds it: unset it to use the saved login); log in again: beacon login --user NAME\n');
    const http401 = await http(`${server.url}/v1/kv/session/k`, { headers: { authorization: `Bearer ${first}` } });
    assert.equal(http401.body.error.message, 'the token has expired; log in again (beacon login, or POST /v1/auth/token)');
  });

  it('ends the saved login when the password changes, and logout forgets it', async () => {
    assert.equal((await cli(['user', 'add', 'dana', '--role', 'developer'], { input: 'danas-first-password\n' })).code, 0);
    const dana = join(tmp.dir, 'dana-config');
    const asDana = (args: string[], input?: string) => runCli(['--endpoint', server.url, ...args], { input, env: { BEACON_CONFIG_DIR: dana } });
    assert.equal((await asDana(['login', '--user', 'dana'], 'danas-first-password\n')).code, 0);
    await sleep(1500);
    assert.equal((await asDana(['put', 'dana/k', 'v'])).code, 0);
    assert.equal((await cli(['user', 'passwd', 'dana'], { input: 'danas-second-password\n' })).code, 0);
    await sleep(1500);
    const over = await asDana(['get', 'dana/k']);
    assert.equal(over.code, 7);
    assert.match(over.stderr, /^beacon: your login as dana at .* is over \(.*changed its password.*\); log in again: beacon login --user dana\n$/);
    assert.equal((await asDana(['login', '--user', 'dana'], 'danas-second-password\n')).code, 0);
    assert.match((await asDana(['logout'])).stderr, /logged out of/);
    const anonymous = await asDana(['get', 'dana/k']);
    assert.equal(anonymous.code, 7);
    assert.match(anonymous.stderr, /authentication required.*; log in first: beacon login --user NAME/);
  });

  it('a node without a KEK says how to add one when a secret namespace is asked for', async () => {
    const r = await cli(['namespace', 'put', 'secrets/', '--secret']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /needs a KEK, and this node has none: create one \(.*openssl rand -hex 32.*\), restart the node with --kek-file/);
  });

  it('namespace set merges into the policy; put replaces it', async () => {
    assert.equal((await cli(['namespace', 'put', 'svc/', '--format', 'json', '--keep-versions', '5'])).code, 0);
    const set = await cli(['namespace', 'set', 'svc/', '--default-ttl', '60']);
    assert.equal(set.code, 0, set.stderr);
    let p = JSON.parse((await cli(['namespace', 'get', 'svc/'])).stdout);
    assert.equal(p.format, 'json');
    assert.deepEqual(p.historyRetention, { versions: 5 });
    assert.equal(p.defaultTtl, 60);
    assert.equal((await cli(['namespace', 'set', 'svc/', '--unset', 'defaultTtl'])).code, 0);
    p = JSON.parse((await cli(['namespace', 'get', 'svc/'])).stdout);
    assert.equal(p.defaultTtl, undefined);
    assert.deepEqual(p.historyRetention, { versions: 5 });
    assert.equal((await cli(['namespace', 'put', 'svc/', '--format', 'text'])).code, 0);
    p = JSON.parse((await cli(['namespace', 'get', 'svc/'])).stdout);
    assert.equal(p.historyRetention, undefined, 'put replaces the whole policy');
    assert.equal((await cli(['namespace', 'set', 'nothing-here/', '--format', 'json'])).code, 4);
  });

  it('--json history and rollback spell configs fields as the HTTP API does (snake_case)', async () => {
    const auth = await adminAuth();
    for (const value of [{ db: { host: 'a' } }, { db: { host: 'b' } }]) {
      assert.equal((await http(`${server.url}/v1/configs/app.cfg`, { method: 'PUT', body: { value }, headers: auth })).status, 200);
    }
    const rb = JSON.parse((await cli(['--json', 'rollback', 'app.cfg', '--to', 'v1'])).stdout);
    assert.equal(rb.restored_version, 'v1');
    assert.equal(rb.to_version, 'v3');
    const h = JSON.parse((await cli(['--json', 'history', 'app.cfg'])).stdout);
    const api = (await http(`${server.url}/v1/configs/app.cfg/history`, { headers: auth })).body;
    assert.deepEqual(Object.keys(h.versions[0]).sort(), Object.keys(api.versions[0]).sort());
    assert.equal(h.versions[0].restored_version, 'v1');
    assert.ok(typeof h.versions[0].updated_at === 'string' && !('updatedAt' in h.versions[0]));
    assert.deepEqual(h.versions[0].value, { db: { host: 'a' } }, 'the value keeps its own spelling');
  });

  it('answers clearly: a txn without content-type, a version conflict, a missing required property, a lease without write access', async () => {
    const auth = await adminAuth();
    // curl -d sends application/x-www-form-urlencoded.
    const txn = await http(`${server.url}/v1/txn`, {
      method: 'POST',
      raw: JSON.stringify({ success: [{ put: { key: 'txn/k', value: 'v' } }] }),
      headers: { ...auth, 'content-type': 'application/x-www-form-urlencoded' },
    });
    assert.equal(txn.status, 200, JSON.stringify(txn.body));
    assert.equal(txn.body.succeeded, true);

    await http(`${server.url}/v1/configs/cfg.v`, { method: 'PUT', body: { value: 'a' }, headers: auth });
    await http(`${server.url}/v1/configs/cfg.v`, { method: 'PUT', body: { value: 'b' }, headers: auth });
    const conflict = await http(`${server.url}/v1/configs/cfg.v`, { method: 'PUT', body: { value: 'c', version: 'v2' }, headers: auth });
    assert.equal(conflict.status, 409);
    assert.match(conflict.body.error.message, /is at v2, so it cannot take "version": "v2" .*send "v3" or leave "version" out/);

    const schema = join(tmp.dir, 'schema.json');
    writeFileSync(schema, JSON.stringify({ type: 'object', required: ['db'] }));
    assert.equal((await cli(['namespace', 'put', 'strict/', '--schema', schema])).code, 0);
    const missing = await cli(['put', 'strict/c', '{}']);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /\/db is required but missing/);
    assert.doesNotMatch(missing.stderr, /must have required property/);

    assert.equal((await cli(['user', 'add', 'vic', '--role', 'viewer'], { input: 'vics-long-password\n' })).code, 0);
    const vic = (await runCli(['--endpoint', server.url, 'login', '--user', 'vic'], { input: 'vics-long-password\n', env: { BEACON_CONFIG_DIR: join(tmp.dir, 'vic') } })).stdout.trim();
    const grant = await http(`${server.url}/v1/leases`, { method: 'POST', body: { ttl: 10 }, headers: { authorization: `Bearer ${vic}` } });
    assert.equal(grant.status, 403);
    assert.equal(grant.body.error.message, "'vic' may not write anywhere: this needs write access to at least one key prefix, and its roles grant none");
  });

  it('counts a too-large body as too_large, not internal, in beacon_errors_total', async () => {
    const auth = await adminAuth();
    const count = async (code: string): Promise<number> => {
      const text = (await http(`${server.url}/metrics`, { headers: auth })).body as string;
      return Number(new RegExp(`^beacon_errors_total\\{code="${code}"\\} (\\d+)$`, 'm').exec(text)?.[1] ?? 0);
    };
    const internal = await count('internal');
    const tooLarge = await count('too_large');
    const big = await http(`${server.url}/v1/kv/big`, { method: 'PUT', raw: Buffer.alloc(2 * 1024 * 1024, 120), headers: { ...auth, 'content-type': 'application/octet-stream' } });
    assert.equal(big.status, 413);
    assert.equal(big.body.error.code, 'too_large');
    assert.equal(await count('too_large'), tooLarge + 1);
    assert.equal(await count('internal'), internal);
  });

  it("the SDK's examples take their token from BEACON_TOKEN, so they run against a node with authentication", async () => {
    const key = ((await adminAuth()).authorization ?? '').replace('Bearer ', '');
    const run = (env: Record<string, string>) =>
      new Promise<{ code: number | null; out: string }>((resolve) => {
        const child = spawn(process.execPath, [join(ROOT, 'dist/examples/lock.js')], { env: { ...process.env, BEACON_ENDPOINT: server.url, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
        let out = '';
        child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
        child.stderr.setEncoding('utf8').on('data', (d: string) => (out += d));
        const t = setTimeout(() => child.kill('SIGKILL'), 20_000);
        child.once('close', (code) => {
          clearTimeout(t);
          resolve({ code, out });
        });
      });
    const ok = await run({ BEACON_TOKEN: key });
    assert.equal(ok.code, 0, ok.out);
    assert.match(ok.out, /^alice holds examples\/lock-\w+ with fencing token \d+$/m);
    const without = await run({ BEACON_TOKEN: '' });
    assert.notEqual(without.code, 0);
    assert.match(without.out, /authentication required/);
  });

  it('a restored node refuses the old tokens and says a snapshot does not carry the signing key', async () => {
    const token = (await cli(['token'])).stdout.trim();
    const file = join(tmp.dir, 'backup.db');
    assert.equal((await cli(['snapshot', 'save', file])).code, 0);
    const restored = join(tmp.dir, 'restored');
    const r = await cli(['snapshot', 'restore', file, '--data-dir', restored]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout + r.stderr, /log in to it again/);
    const other = await spawnServer(['--data-dir', restored], 20_000, { secure: true });
    try {
      const old = await runCli(['--endpoint', other.url, '--token', token, 'get', 'session/k']);
      assert.equal(old.code, 7);
      assert.match(old.stderr, /signed with a key this node does not hold .*the node a snapshot was restored from.*log in again/);
      const login = await runCli(['--endpoint', other.url, 'login', '--user', 'admin'], { input: `${password}\n` });
      assert.equal(login.code, 0, 'users come with the snapshot');
    } finally {
      await other.kill();
    }
  });

  it('on a restart says BEACON_ADMIN_PASSWORD was ignored; on a terminal-style log format, no JSON among the lines', async () => {
    await server.stop();
    server = await spawnServer(['--data-dir', dataDir, '--token-ttl', '1'], 20_000, {
      secure: true,
      stdout: 'pipe',
      env: { BEACON_ADMIN_PASSWORD: 'another-password-entirely', BEACON_LOG_FORMAT: 'pretty', BEACON_LOG_LEVEL: 'info' },
    });
    await sleep(300);
    assert.match(server.stderr(), /^beacon: BEACON_ADMIN_PASSWORD ignored: this node's users were created on an earlier start/m);
    assert.doesNotMatch(server.stderr(), /first start/);
    assert.match(server.stderr(), /^beacon logs: on stdout, info and above/m);
    assert.match(server.stdout(), /^\d\d:\d\d:\d\d INFO {2}store opened {2}backend=sqlite:/m);
    assert.doesNotMatch(server.stdout(), /"level":/);
    const old = await runCli(['--endpoint', server.url, 'login', '--user', 'admin'], { input: 'another-password-entirely\n', env: { BEACON_CONFIG_DIR: join(tmp.dir, 'x') } });
    assert.equal(old.code, 7, 'the ignored password does not log in');
  });
});
