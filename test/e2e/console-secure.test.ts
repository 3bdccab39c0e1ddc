/**
 * The web console with authentication on, in a real browser (Debian chromium through
 * playwright-core): the login (token in sessionStorage, never in the URL), an administrator
 * managing namespaces, users and API keys (shown once) and filtering the audit log, a secret
 * shown only after an explicit reveal, a viewer's read-only view with the secret redacted and the
 * administration pages not offered, and an expired token sending the user to the login and back
 * to the same view.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it as test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { http, startTestNode, tempDir } from '../helpers/node.js';
import { ADMIN_PASSWORD, client, login, writeKekFile } from '../integration/security-helpers.js';
import { itWithPage, launch, openPage, shot } from './console-helpers.js';

type TestNode = Awaited<ReturnType<typeof startTestNode>>;
const WAIT = 30_000;

async function logIn(page: Page, url: string, user: string, password: string): Promise<void> {
  await page.getByLabel('Username').fill(user);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.getByRole('navigation', { name: 'Sections' }).waitFor({ timeout: WAIT });
  assert.ok(!page.url().includes('token'), `no token in ${page.url()}`);
  void url;
}

describe('web console (authentication on)', { timeout: 300_000 }, () => {
  let node: TestNode;
  let browser: Browser;
  const kek = tempDir('beacon-console-kek-');
  let adminToken = '';

  before(async () => {
    node = await startTestNode({ dev: false, kekFile: writeKekFile(kek.dir), security: { adminPassword: ADMIN_PASSWORD, loginRateLimit: null } });
    adminToken = await login(node.url, 'admin', ADMIN_PASSWORD);
    const as = client(node.url, adminToken);
    assert.equal((await as('/v1/kv/app/color', { method: 'PUT', body: { value: 'blue' } })).status, 200);
    browser = await launch();
  });

  after(async () => {
    await browser?.close();
    await node?.cleanup();
    kek.cleanup();
  });

  // A failing test prints what its page showed and its last requests (flaky waits in CI).
  const it = itWithPage(test);

  it('an administrator logs in, manages namespaces, users and API keys, reveals a secret and filters the audit log', async () => {
    const { page, problems } = await openPage(browser);
    // The console's files are public; the data behind them is not.
    await page.goto(`${node.url}/ui/keys?key=app%2Fcolor`);
    await page.getByRole('button', { name: 'Log in' }).waitFor({ timeout: WAIT });
    await page.getByLabel('Password').fill('wrong password');
    await page.getByLabel('Username').fill('admin');
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.getByText('Wrong username or password.').waitFor({ timeout: WAIT });
    await shot(page, 'login');
    await logIn(page, node.url, 'admin', ADMIN_PASSWORD);
    // The deep link survives the login.
    await page.getByTestId('value').getByText('blue').waitFor({ timeout: WAIT });
    const stored = await page.evaluate(() => Object.keys(sessionStorage).map((k) => [k, sessionStorage.getItem(k)?.length ?? 0]));
    assert.equal(stored.length, 1, 'one token in sessionStorage');
    assert.equal(await page.evaluate(() => localStorage.length), 0, 'nothing in localStorage');

    // A secret namespace, made in the console.
    await page.getByRole('link', { name: 'Namespaces' }).click();
    await page.getByRole('button', { name: 'New namespace' }).click();
    const nsDialog = page.getByRole('dialog', { name: 'New namespace' });
    await nsDialog.getByLabel('Prefix').fill('secret/');
    await nsDialog.getByLabel(/Secret values/).check();
    await nsDialog.getByLabel('Description').fill('database passwords');
    await nsDialog.getByRole('button', { name: 'Save' }).click();
    const nsTable = page.getByRole('table', { name: 'Namespaces' });
    await nsTable.getByRole('cell', { name: 'secret', exact: true }).waitFor({ timeout: WAIT });
    await shot(page, 'namespaces');
    const as = client(node.url, adminToken);
    assert.equal((await as('/v1/kv/secret/db-password', { method: 'PUT', body: { value: 's3cr3t-value' } })).status, 200);

    // Hidden until revealed, for someone who may read it.
    await page.goto(`${node.url}/ui/keys?key=${encodeURIComponent('secret/db-password')}`);
    await page.getByText('Secret value hidden.').waitFor({ timeout: WAIT });
    assert.equal(await page.getByText('s3cr3t-value').count(), 0);
    await page.getByRole('button', { name: 'Reveal' }).click();
    await page.getByTestId('value').getByText('s3cr3t-value').waitFor({ timeout: WAIT });

    // A viewer, made in the console.
    await page.getByRole('link', { name: 'Users' }).click();
    await page.getByRole('button', { name: 'New user' }).click();
    const userDialog = page.getByRole('dialog', { name: 'New user' });
    await userDialog.getByLabel('Name').fill('vera');
    await userDialog.getByLabel('Password').fill('vera-password-1');
    await userDialog.getByRole('button', { name: 'Save' }).click();
    await page.getByRole('table', { name: 'Users' }).getByRole('cell', { name: 'vera' }).waitFor({ timeout: WAIT });
    await shot(page, 'users');

    // An API key, shown once.
    await page.getByRole('link', { name: 'API keys' }).click();
    await page.getByRole('button', { name: 'New API key' }).click();
    const keyDialog = page.getByRole('dialog', { name: 'New API key' });
    await keyDialog.getByLabel('Name').fill('billing-service');
    await keyDialog.getByRole('button', { name: 'Create' }).click();
    const shown = page.getByTestId('new-api-key');
    await shown.waitFor({ timeout: WAIT });
    const apiKey = ((await shown.textContent()) ?? '').trim();
    assert.ok(apiKey.length > 20);
    const whoami = await http(`${node.url}/v1/auth/whoami`, { headers: { authorization: `Bearer ${apiKey}` } });
    assert.equal(whoami.status, 200, 'the key shown works');
    await shot(page, 'apikey-once');
    await page.getByRole('button', { name: 'Done' }).click();
    await page.getByRole('table', { name: 'API keys' }).getByRole('cell', { name: 'billing-service' }).waitFor({ timeout: WAIT });
    assert.equal(await page.getByText(apiKey).count(), 0, 'never shown again');

    // The audit log, filtered by action; the filter lives in the URL.
    await page.getByRole('link', { name: 'Audit log' }).click();
    await page.getByLabel('Action').fill('user.create');
    await page.getByRole('button', { name: 'Filter' }).click();
    await page.waitForURL(/action=user.create/, { timeout: WAIT });
    const audit = page.getByTestId('audit');
    await audit.getByRole('cell', { name: 'user.create' }).first().waitFor({ timeout: WAIT });
    // The unfiltered rows may still be on screen until the filtered answer replaces them.
    await audit.locator('tbody tr td:nth-child(3)').filter({ hasNotText: /^user\.create$/ }).first().waitFor({ state: 'detached', timeout: WAIT });
    const actions = await audit.locator('tbody tr td:nth-child(3)').allTextContents();
    assert.ok(actions.length >= 1 && actions.every((a) => a === 'user.create'), actions.join(','));
    await shot(page, 'audit');
    await page.reload();
    await audit.getByRole('cell', { name: 'user.create' }).first().waitFor({ timeout: WAIT });
    assert.equal(await page.getByLabel('Action').inputValue(), 'user.create');
    assert.deepEqual(problems.filter((p) => !/401|Unauthorized/.test(p)), []);
    await page.context().close();
  });

  it("a viewer sees keys read-only, the secret redacted, and no administration", async () => {
    const as = client(node.url, adminToken);
    if ((await as('/v1/users/vera')).status !== 200) {
      assert.equal((await as('/v1/users', { method: 'POST', body: { name: 'vera', password: 'vera-password-1', roles: ['viewer'] } })).status, 201);
    }
    if ((await as('/v1/kv/secret/db-password')).status !== 200) {
      await as('/v1/namespaces/secret/', { method: 'PUT', body: { secret: true } });
      await as('/v1/kv/secret/db-password', { method: 'PUT', body: { value: 's3cr3t-value' } });
    }
    const { page } = await openPage(browser);
    const sockets: string[] = [];
    page.on('websocket', (ws) => sockets.push(ws.url()));
    await page.goto(`${node.url}/ui/`);
    await logIn(page, node.url, 'vera', 'vera-password-1');
    const nav = page.getByRole('navigation', { name: 'Sections' });
    for (const hidden of ['Users', 'API keys', 'Audit log']) assert.equal(await nav.getByRole('link', { name: hidden }).count(), 0, `${hidden} not offered`);
    assert.equal(await page.getByRole('button', { name: 'New key' }).count(), 0, 'no creating keys');
    await page.goto(`${node.url}/ui/keys?key=${encodeURIComponent('secret/db-password')}`);
    await page.getByTestId('redacted').waitFor({ timeout: WAIT });
    assert.equal(await page.getByText('s3cr3t-value').count(), 0);
    assert.equal(await page.getByRole('button', { name: 'Reveal' }).count(), 0);
    assert.equal(await page.getByRole('button', { name: 'Edit' }).count(), 0);
    await shot(page, 'viewer-redacted');
    await page.goto(`${node.url}/ui/keys?key=app%2Fcolor`);
    await page.getByTestId('value').getByText('blue').waitFor({ timeout: WAIT });
    assert.equal(await page.getByRole('button', { name: 'Edit' }).count(), 0, 'read-only');
    assert.equal(await page.getByRole('button', { name: 'Delete' }).count(), 0, 'read-only');
    // Live updates reach the viewer over a WebSocket authenticated without a token in its URL.
    await page.getByTestId('live-status').getByText('live', { exact: true }).waitFor({ timeout: 2 * WAIT });
    assert.equal((await as('/v1/kv/app/color', { method: 'PUT', body: { value: 'green' } })).status, 200);
    await page.getByTestId('value').getByText('green').waitFor({ timeout: WAIT });
    assert.ok(sockets.length >= 1, 'a live watch socket was opened');
    assert.ok(sockets.every((u) => !/token/i.test(u)), `no credential in ${sockets.join(' ')}`);
    await page.goto(`${node.url}/ui/keys?key=app%2Fcolor&tab=history`);
    await page.getByRole('list', { name: 'Versions' }).waitFor({ timeout: WAIT });
    assert.equal(await page.getByRole('button', { name: /Roll back/ }).count(), 0, 'no rollback offered');
    // The server enforces it too: the viewer's own token cannot write.
    const token = await page.evaluate(() => sessionStorage.getItem(Object.keys(sessionStorage)[0] ?? '') ?? '');
    const refused = await http(`${node.url}/v1/kv/app/color`, { method: 'PUT', body: { value: 'red' }, headers: { authorization: `Bearer ${token}` } });
    assert.equal(refused.status, 403);
    await page.context().close();
  });

  it('a user whose role grants one prefix sees that prefix as the tree, and its changes live', async () => {
    const as = client(node.url, adminToken);
    assert.equal((await as('/v1/roles/team-a', { method: 'PUT', body: { permissions: [{ prefix: 'team-a/', access: 'read' }] } })).status, 201);
    assert.equal((await as('/v1/users', { method: 'POST', body: { name: 'tom', password: 'tom-password-1', roles: ['team-a'] } })).status, 201);
    await as('/v1/kv/team-a/db/url', { method: 'PUT', body: { value: 'postgres://a' } });
    await as('/v1/kv/team-b/db/url', { method: 'PUT', body: { value: 'postgres://b' } });
    const { page } = await openPage(browser);
    await page.goto(`${node.url}/ui/`);
    await logIn(page, node.url, 'tom', 'tom-password-1');
    const tree = page.getByRole('tree', { name: 'Keys' });
    await tree.locator('[data-path="team-a/"] .count', { hasText: '1' }).waitFor({ timeout: WAIT });
    assert.equal(await tree.locator('[data-path="team-b/"]').count(), 0, 'no other prefix');
    assert.equal(await tree.locator('[data-path="app/"]').count(), 0, 'no other prefix');
    await tree.locator('[data-path="team-a/"]').click();
    await tree.locator('[data-path="team-a/db/"]').click();
    await tree.locator('[data-path="team-a/db/url"]').click();
    await page.getByTestId('value').getByText('postgres://a').waitFor({ timeout: WAIT });
    await page.getByTestId('live-status').getByText('live', { exact: true }).waitFor({ timeout: 2 * WAIT });
    await as('/v1/kv/team-a/db/url', { method: 'PUT', body: { value: 'postgres://a2' } });
    await page.getByTestId('value').getByText('postgres://a2').waitFor({ timeout: WAIT });
    assert.equal(await page.getByRole('button', { name: 'Edit' }).count(), 0, 'read access only');
    await page.context().close();
  });

  it('an expired token returns to the login, and the login returns to the same view', async () => {
    const short = await startTestNode({ dev: false, security: { adminPassword: ADMIN_PASSWORD, loginRateLimit: null, tokenTtlSeconds: 2 } });
    try {
      const token = await login(short.url, 'admin', ADMIN_PASSWORD);
      await client(short.url, token)('/v1/kv/app/x', { method: 'PUT', body: { value: 'one' } });
      const { page } = await openPage(browser);
      await page.goto(`${short.url}/ui/keys?key=app%2Fx`);
      await logIn(page, short.url, 'admin', ADMIN_PASSWORD);
      await page.getByTestId('value').getByText('one').waitFor({ timeout: WAIT });
      // 2 s of life plus the server's 5 s clock tolerance (src/auth/tokens.ts).
      await new Promise((r) => setTimeout(r, 8000));
      await page.getByRole('link', { name: 'History' }).click();
      await page.getByText('Your session expired.').waitFor({ timeout: WAIT });
      assert.match(page.url(), /\/ui\/keys\?key=app%2Fx&tab=history$/, 'the view is kept in the URL');
      await shot(page, 'session-expired');
      await logIn(page, short.url, 'admin', ADMIN_PASSWORD);
      await page.getByRole('list', { name: 'Versions' }).waitFor({ timeout: WAIT });
      await page.context().close();
    } finally {
      await short.cleanup();
    }
  });
});
