// The identity and governance commands of the built CLI against a node with authentication on:
// roles, users, API keys, the audit log and namespace policies, as an administrator would use them.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { spawnServer, tempDir, type ServerProcess } from '../helpers/node.js';
import { runCli } from './cli-helpers.js';

describe('beacon user / role / apikey / audit / namespace (e2e, auth on)', () => {
  const tmp = tempDir();
  let server: ServerProcess;
  const password = 'a long enough admin password';
  let admin: string;

  const as = (token: string, ...args: string[]) => runCli(['--endpoint', server.url, '--token', token, ...args]);

  before(async () => {
    server = await spawnServer(['--data-dir', join(tmp.dir, 'data')], 20_000, { secure: true, env: { BEACON_ADMIN_PASSWORD: password } });
    const login = await runCli(['--endpoint', server.url, 'login', '--user', 'admin'], { input: `${password}\n` });
    assert.equal(login.code, 0, login.stderr);
    admin = login.stdout.trim();
  });
  after(async () => {
    await server.kill();
    tmp.cleanup();
  });

  it('an administrator creates a role and a user; the user may write only where the role allows', async () => {
    const role = await as(admin, 'role', 'put', 'team', '--grant', 'team-a/=write', '--grant', 'shared/=read');
    assert.equal(role.code, 0, role.stderr);
    assert.equal((await as(admin, 'role', 'put', 'bad', '--grant', 'team-a/')).code, 2, 'a grant without access is a usage error');

    const add = await runCli(['--endpoint', server.url, '--token', admin, 'user', 'add', 'alice', '--role', 'team'], { input: 'alice-password-1\n' });
    assert.equal(add.code, 0, add.stderr);
    const users = JSON.parse((await as(admin, '--json', 'user', 'ls')).stdout);
    assert.deepEqual(users.users.find((u: any) => u.name === 'alice').roles, ['team']);

    const login = await runCli(['--endpoint', server.url, 'login', '--user', 'alice'], { input: 'alice-password-1\n' });
    assert.equal(login.code, 0, login.stderr);
    const alice = login.stdout.trim();
    assert.equal((await as(alice, 'put', 'team-a/x', 'mine')).code, 0);
    const denied = await as(alice, 'put', 'other/x', 'not mine');
    assert.equal(denied.code, 7, 'permission denied exits 7');
    assert.match(denied.stderr, /permission|may not/i);
    // A user who is not an administrator cannot manage users.
    assert.equal((await as(alice, 'user', 'ls')).code, 7);

    // The audit log shows who did what, and the export holds every record as JSON lines.
    const audit = JSON.parse((await as(admin, '--json', 'audit', '--principal', 'alice')).stdout);
    const put = audit.records.find((r: any) => r.action === 'kv.put' && r.key === 'team-a/x');
    assert.ok(put, JSON.stringify(audit.records));
    assert.equal(put.newVersion, 1);
    assert.ok(audit.records.some((r: any) => r.key === 'other/x' && r.outcome === 'denied'));
    const file = join(tmp.dir, 'audit.jsonl');
    assert.equal((await as(admin, 'audit', '--export', file)).code, 0);
    const lines = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    assert.ok(lines.length >= audit.records.length);
    assert.ok(lines.some((r) => r.action === 'auth.login' && r.principal === 'alice'));

    // Deleting the user ends its token at once.
    assert.equal((await as(admin, 'user', 'rm', 'alice')).code, 0);
    assert.equal((await as(alice, 'get', 'team-a/x')).code, 7);
  });

  it('API keys are shown once, work as tokens and stop working when revoked', async () => {
    const created = await as(admin, 'apikey', 'create', 'billing', '--role', 'viewer');
    assert.equal(created.code, 0, created.stderr);
    const key = created.stdout.trim();
    assert.match(key, /^bk_/);
    await as(admin, 'put', 'shared/rate', '42');
    assert.equal((await as(key, 'get', 'shared/rate')).stdout, '42\n');
    assert.equal((await as(key, 'put', 'shared/rate', '43')).code, 7, 'a viewer key cannot write');
    const list = JSON.parse((await as(admin, '--json', 'apikey', 'ls')).stdout);
    const entry = list.apiKeys.find((k: any) => k.name === 'billing');
    assert.ok(entry);
    assert.ok(!JSON.stringify(list).includes(key), 'listing never shows the key');
    assert.equal((await as(admin, 'apikey', 'revoke', entry.id)).code, 0);
    assert.equal((await as(key, 'get', 'shared/rate')).code, 7);
  });

  it('namespace policies: a JSON namespace refuses text, and the policy is listed', async () => {
    const put = await as(admin, 'namespace', 'put', 'cfg/', '--format', 'json');
    assert.equal(put.code, 0, put.stderr);
    const bad = await as(admin, 'put', 'cfg/a', 'not json');
    assert.equal(bad.code, 2, bad.stderr);
    assert.equal((await as(admin, 'put', 'cfg/a', '{"ok":true}')).code, 0);
    const ls = JSON.parse((await as(admin, '--json', 'namespace', 'ls')).stdout);
    assert.ok(ls.namespaces.some((n: any) => n.prefix === 'cfg/' && n.format === 'json'));
    assert.equal((await as(admin, 'namespace', 'rm', 'cfg/')).code, 0);
    assert.equal((await as(admin, 'put', 'cfg/b', 'now text is fine')).code, 0);
  });

  it('namespace history retention is set with --keep-versions / --keep-days and listed; a bad count is refused', async () => {
    const put = await as(admin, 'namespace', 'put', 'hist/', '--keep-versions', '5', '--keep-days', '30');
    assert.equal(put.code, 0, put.stderr);
    assert.match(put.stdout, /"historyRetention":\{"versions":5,"days":30\}/);
    const ls = await as(admin, 'namespace', 'ls');
    assert.match(ls.stdout, /hist\/\s.*5 versions \/ 30 days/);
    const bad = await as(admin, 'namespace', 'put', 'hist/', '--keep-versions', 'many');
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /historyRetention\.versions/);
    const kept = JSON.parse((await as(admin, '--json', 'namespace', 'get', 'hist/')).stdout);
    assert.deepEqual(kept.historyRetention, { versions: 5, days: 30 }, 'the refused change left the policy as it was');
  });
});
