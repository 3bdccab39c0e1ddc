// Rotating the token signing key online with the built CLI against a node with authentication
// on: tokens of the previous key keep working until a second rotation, `--revoke-tokens` refuses
// every issued token at once, only administrators may rotate, and the keyring survives a restart.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { http, spawnServer, tempDir, type ServerProcess } from '../helpers/node.js';
import { runCli } from './cli-helpers.js';

describe('beacon signing-key (e2e, auth on)', () => {
  const tmp = tempDir();
  const dataDir = join(tmp.dir, 'data');
  const password = 'a long enough admin password';
  let server: ServerProcess;

  const start = (): Promise<ServerProcess> => spawnServer(['--data-dir', dataDir], 20_000, { secure: true, env: { BEACON_ADMIN_PASSWORD: password } });
  const login = async (): Promise<string> => {
    const res = await runCli(['--endpoint', server.url, 'login', '--user', 'admin'], { input: `${password}\n` });
    assert.equal(res.code, 0, res.stderr);
    return res.stdout.trim();
  };
  const as = (token: string, ...args: string[]) => runCli(['--endpoint', server.url, '--token', token, ...args]);
  /** The status of an authenticated read with `token`. */
  const statusWith = async (token: string): Promise<number> => (await http(`${server.url}/v1/status`, { headers: { authorization: `Bearer ${token}` } })).status;

  before(async () => {
    server = await start();
  });
  after(async () => {
    await server.kill();
    tmp.cleanup();
  });

  it('a rotation keeps tokens of the previous key valid; the next one retires them', async () => {
    const old = await login();
    const shown = JSON.parse((await as(old, '--json', 'signing-key', 'show')).stdout);
    assert.equal(shown.kids.length, 1);

    const r1 = await as(old, 'signing-key', 'rotate');
    assert.equal(r1.code, 0, r1.stderr);
    assert.match(r1.stdout, new RegExp(`tokens signed by ${shown.kid} stay valid`));
    assert.equal(await statusWith(old), 200, 'a token of the previous key still works');
    const fresh = await login();
    const after1 = JSON.parse((await as(fresh, '--json', 'signing-key', 'show')).stdout);
    assert.equal(after1.kids.length, 2);
    assert.equal(after1.kids[1], shown.kid);

    const r2 = await as(fresh, '--json', 'signing-key', 'rotate');
    assert.equal(r2.code, 0, r2.stderr);
    const refused = await http(`${server.url}/v1/status`, { headers: { authorization: `Bearer ${old}` } });
    assert.equal(refused.status, 401, 'two rotations later the old token is refused');
    assert.equal(refused.body.error.details.reason, 'unknown_key');
    assert.equal(await statusWith(fresh), 200, 'the token of the previous key still works');
  });

  it('--revoke-tokens refuses every issued token at once; logging in again works', async () => {
    const token = await login();
    const res = await as(token, 'signing-key', 'rotate', '--revoke-tokens');
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stdout, /every token issued before is now refused/);
    assert.equal((await as(token, 'status')).code, 7, 'even the token that rotated is refused');
    assert.equal(await statusWith(await login()), 200);
  });

  it('only administrators rotate, and the rotation is audited', async () => {
    const admin = await login();
    const add = await runCli(['--endpoint', server.url, '--token', admin, 'user', 'add', 'dev1', '--role', 'developer'], { input: 'dev1-password-long\n' });
    assert.equal(add.code, 0, add.stderr);
    const dev = await runCli(['--endpoint', server.url, 'login', '--user', 'dev1'], { input: 'dev1-password-long\n' });
    assert.equal(dev.code, 0, dev.stderr);
    const denied = await as(dev.stdout.trim(), 'signing-key', 'rotate');
    assert.equal(denied.code, 7);
    assert.equal(await statusWith(admin), 200, 'the refused rotation changed nothing');
    const audit = JSON.parse((await as(admin, '--json', 'audit', '--action', 'auth.signing_key_rotate')).stdout);
    assert.ok(audit.records.length >= 3, JSON.stringify(audit));
    assert.ok(!JSON.stringify(audit).match(/[0-9a-f]{64}/), 'no key material in the audit log');
  });

  it('the keyring survives a restart: tokens signed before it still work', async () => {
    const token = await login();
    await as(token, 'signing-key', 'rotate');
    const kids = JSON.parse((await as(token, '--json', 'signing-key', 'show')).stdout).kids;
    await server.stop();
    server = await start();
    assert.equal(await statusWith(token), 200);
    assert.deepEqual(JSON.parse((await as(token, '--json', 'signing-key', 'show')).stdout).kids, kids);
  });
});
