/**
 * The web console's paged and refreshing pages in a real browser (Debian chromium through
 * playwright-core), authentication on: the audit log over more records than one page (Next /
 * Previous page keep the filters, no record lost or repeated), and a dashboard whose panels pick up
 * pushed samples on their own while auto-refresh is on (no reload). Everything asserted is what
 * the user sees; waits are generous (a shared CI machine), nothing is timed.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it as test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { startTestNode } from '../helpers/node.js';
import { ADMIN_PASSWORD, client, login } from '../integration/security-helpers.js';
import { itWithPage, launch, openPage, shot } from './console-helpers.js';

type TestNode = Awaited<ReturnType<typeof startTestNode>>;
const WAIT = 30_000;
/** Records the audit page shows at a time (web/src/views/admin.tsx). */
const AUDIT_PAGE = 100;
/** Writes made for the audit log: more than one page. */
const WRITES = 130;

async function logIn(page: Page): Promise<void> {
  await page.getByLabel('Username').fill('admin');
  await page.getByLabel('Password').fill(ADMIN_PASSWORD);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.getByRole('navigation', { name: 'Sections' }).waitFor({ timeout: WAIT });
}

describe('web console: audit paging and dashboard auto-refresh', { timeout: 300_000 }, () => {
  let node: TestNode;
  let browser: Browser;
  let as: ReturnType<typeof client>;

  before(async () => {
    node = await startTestNode({ dev: false, respPort: 'off', security: { adminPassword: ADMIN_PASSWORD, loginRateLimit: null } });
    as = client(node.url, await login(node.url, 'admin', ADMIN_PASSWORD));
    browser = await launch();
  });

  after(async () => {
    await browser?.close();
    await node?.cleanup();
  });

  // A failing test prints what its page showed and its last requests (flaky waits in CI).
  const it = itWithPage(test);

  it('pages through an audit log longer than a page, keeping the filters', async () => {
    const keys: string[] = [];
    for (let i = 0; i < WRITES; i++) {
      const key = `paged/k${String(i).padStart(3, '0')}`;
      keys.push(key);
      const res = await as(`/v1/kv/${key}`, { method: 'PUT', body: { value: String(i) } });
      assert.equal(res.status, 200, JSON.stringify(res.body));
    }
    // Records the filter must leave out: another action on the same prefix, the same action elsewhere.
    assert.equal((await as('/v1/kv/paged/k000', { method: 'DELETE' })).status, 200);
    assert.equal((await as('/v1/kv/other/x', { method: 'PUT', body: { value: 'x' } })).status, 200);

    const { page, problems } = await openPage(browser);
    await page.goto(`${node.url}/ui/audit?action=kv.put&key=paged%2F`);
    await logIn(page);
    const audit = page.getByTestId('audit');
    const rows = audit.locator('tbody tr');
    const column = (n: number): Promise<string[]> => audit.locator(`tbody tr td:nth-child(${n})`).allTextContents();
    // Newest first: the last write heads the first page.
    const newestFirst = [...keys].reverse();
    await audit.getByRole('cell', { name: keys[WRITES - 1], exact: true }).waitFor({ timeout: WAIT });
    assert.equal(await rows.count(), AUDIT_PAGE);
    const first = await column(5);
    assert.deepEqual(first, newestFirst.slice(0, AUDIT_PAGE));
    assert.ok((await column(3)).every((a) => a === 'kv.put'), 'only the filtered action');
    await page.getByText(`Newest first: records 1–${AUDIT_PAGE}, older ones on the next page.`).waitFor({ timeout: WAIT });
    assert.equal(await page.getByRole('button', { name: 'Previous page' }).count(), 0, 'nothing before the first page');

    await page.getByRole('button', { name: 'Next page' }).click();
    await audit.getByRole('cell', { name: keys[0], exact: true }).waitFor({ timeout: WAIT });
    const second = await column(5);
    assert.deepEqual(second, newestFirst.slice(AUDIT_PAGE), 'the rest, none repeated or lost');
    assert.ok((await column(3)).every((a) => a === 'kv.put'), 'the filter holds on the next page');
    await page.getByText(`Newest first: records ${AUDIT_PAGE + 1}–${WRITES}.`).waitFor({ timeout: WAIT });
    assert.equal(await page.getByRole('button', { name: 'Next page' }).count(), 0, 'no page beyond the last');
    assert.match(page.url(), /action=kv\.put/);
    assert.match(page.url(), /key=paged%2F/);
    assert.equal(await page.getByLabel('Action').inputValue(), 'kv.put');
    assert.equal(await page.getByLabel('Key prefix').inputValue(), 'paged/');
    await shot(page, 'audit-paged');

    await page.getByRole('button', { name: 'Previous page' }).click();
    await audit.getByRole('cell', { name: keys[WRITES - 1], exact: true }).waitFor({ timeout: WAIT });
    assert.deepEqual(await column(5), first, 'Previous page returns to the first page');
    // A new filter starts again at the first page: the delete of paged/k000 alone.
    await page.getByLabel('Action').fill('kv.delete');
    await page.getByRole('button', { name: 'Filter' }).click();
    await page.waitForURL(/action=kv\.delete/, { timeout: WAIT });
    await audit.getByRole('cell', { name: 'kv.delete', exact: true }).waitFor({ timeout: WAIT });
    assert.deepEqual(await column(5), [keys[0]]);
    assert.deepEqual(problems.filter((p) => !/401|Unauthorized/.test(p)), []);
    await page.context().close();
  });

  it('draws pushed samples on a dashboard and picks up new ones by itself while auto-refresh is on', async () => {
    const push = async (labels: Record<string, string>, value: number): Promise<void> => {
      const res = await as('/v1/metrics', { method: 'POST', body: { name: 'console.pushed', value, labels } });
      assert.equal(res.status, 200, JSON.stringify(res.body));
    };
    await push({ job: 'a' }, 1);
    const put = await as('/v1/dashboards/pushed', {
      method: 'PUT',
      body: {
        title: 'Pushed',
        refresh: '2s',
        range: '5m',
        panels: [
          { title: 'Pushed series', expr: 'console_pushed', type: 'graph', unit: '' },
          { title: 'Pushed sum', expr: 'sum(console_pushed)', type: 'stat', unit: '' },
        ],
      },
    });
    assert.equal(put.status, 200, JSON.stringify(put.body));

    const { page, problems } = await openPage(browser);
    await page.goto(`${node.url}/ui/dashboards/pushed`);
    await logIn(page);
    const graph = page.getByRole('region', { name: 'Pushed series' });
    const sum = page.getByRole('region', { name: 'Pushed sum' }).locator('.stat');
    await graph.locator('.chart canvas').first().waitFor({ timeout: 2 * WAIT });
    await graph.locator('.u-legend').getByText('console_pushed{job="a"}').waitFor({ timeout: WAIT });
    await sum.getByText('1', { exact: true }).waitFor({ timeout: WAIT });
    assert.equal(await page.getByLabel(/Auto-refresh/).isChecked(), true);
    // A mark in the page: a reload would lose it.
    await page.evaluate(() => ((globalThis as { __sameDocument?: boolean }).__sameDocument = true));

    await push({ job: 'b' }, 6);
    await graph.locator('.u-legend').getByText('console_pushed{job="b"}').waitFor({ timeout: 2 * WAIT });
    await sum.getByText('7', { exact: true }).waitFor({ timeout: 2 * WAIT });
    await graph.locator('.chart canvas').first().waitFor({ timeout: WAIT });
    assert.equal(await page.evaluate(() => (globalThis as { __sameDocument?: boolean }).__sameDocument), true, 'updated in place, not reloaded');
    assert.match(page.url(), /\/ui\/dashboards\/pushed$/);
    await shot(page, 'dashboard-refreshed');
    assert.deepEqual(problems.filter((p) => !/401|Unauthorized/.test(p)), []);
    await page.context().close();
  });
});
