// The CLI against a node with authentication on (no --dev): exit 7 without credentials,
// `beacon login`, and `--token` / BEACON_TOKEN for requests and watches.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { spawnServer, tempDir, type ServerProcess } from '../helpers/node.js';
import { runCli, startCli } from './cli-helpers.js';

describe('beacon CLI with authentication (e2e)', () => {
  const tmp = tempDir();
  let server: ServerProcess;
  const password = 'a long enough test password';

  before(async () => {
    server = await spawnServer(['--data-dir', tmp.dir], 20_000, { secure: true, env: { BEACON_ADMIN_PASSWORD: password } });
  });
  after(async () => {
    await server.kill();
    tmp.cleanup();
  });

  it('exits 7 without credentials, logs in, and uses the token for requests and watches', async () => {
    const anonymous = await runCli(['--endpoint', server.url, 'get', 'k']);
    assert.equal(anonymous.code, 7);
    assert.match(anonymous.stderr, /^beacon: authentication required/);

    const wrong = await runCli(['--endpoint', server.url, 'login', '--user', 'admin'], { input: 'not-the-password\n' });
    assert.equal(wrong.code, 7);

    const login = await runCli(['--endpoint', server.url, 'login', '--user', 'admin'], { input: `${password}\n` });
    assert.equal(login.code, 0, login.stderr);
    const token = login.stdout.trim();
    assert.match(login.stderr, /logged in as admin \(admin\)/);

    const w = startCli(['--endpoint', server.url, 'watch', 'secure/', '--prefix'], { BEACON_TOKEN: token });
    try {
      await w.waitFor('stderr', /watching 'secure\/'/);
      const put = await runCli(['--endpoint', server.url, '--token', token, 'put', 'secure/k', 'v']);
      assert.equal(put.code, 0, put.stderr);
      const get = await runCli(['--endpoint', server.url, 'get', 'secure/k'], { env: { BEACON_TOKEN: token } });
      assert.equal(get.stdout, 'v\n');
      await w.waitFor('stdout', /PUT secure\/k = v/);
    } finally {
      await w.stop();
    }
    assert.equal((await runCli(['--endpoint', server.url, '--token', 'garbage', 'status'])).code, 7);
  });
});
