/**
 * The web console in a real browser (Debian chromium, headless, driven by playwright-core)
 * against a real node in `--dev` mode: how it is served (CSP, caching, deep links), browsing
 * keys (awkward keys, a 1 MiB value, bytes that are not UTF-8), editing with a schema error then a
 * valid save, an expected-version conflict, history with a diff and a rollback, live updates from
 * writes made with fetch and curl (latency printed), a lease expiring live, the live event
 * stream, hostile HTML in a key and a value, the metrics pages, and resuming after the node
 * restarts. Screenshots go to docs/console/. Security (login, roles, secrets, audit) is in
 * console-secure.test.ts, the 100,000-key tree in console-scale.test.ts.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it as test } from 'node:test';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import type { Browser, Page } from 'playwright-core';
import { createClient, type BeaconClient } from '../../client/index.js';
import { ROOT, freePort, http, startTestNode, tempDir } from '../helpers/node.js';
import { itWithPage, launch, median, openPage, shot } from './console-helpers.js';

const run = promisify(execFile);
type TestNode = Awaited<ReturnType<typeof startTestNode>>;

/** Bounds every wait in the page (ms): generous, the machine is shared. */
// Generous: a CI runner shares two cores between this browser, the node and other test files.
const WAIT = 30_000;

function keyUrl(base: string, key: string, extra = ''): string {
  return `${base}/ui/keys?key=${encodeURIComponent(key)}${extra}`;
}

describe('web console (dev mode)', { timeout: 300_000 }, () => {
  let node: TestNode;
  let browser: Browser;
  let page: Page;
  let problems: string[];
  let sdk: BeaconClient;
  const data = tempDir('beacon-console-');
  let port = 0;

  before(async () => {
    port = await freePort();
    node = await startTestNode({ httpPort: port, dataDir: data.dir, respPort: 'off' });
    sdk = createClient({ endpoint: node.url, healthCheck: false });
    browser = await launch();
    ({ page, problems } = await openPage(browser));
  });

  after(async () => {
    await browser?.close();
    sdk?.close();
    await node?.cleanup();
    data.cleanup();
  });
  // A failing test prints what the page showed and its last requests (flaky waits in CI).
  const it = itWithPage(test, () => page);

  it('is served at /ui/ with a strict CSP, immutable hashed assets, a no-cache index and deep links', async () => {
    const index = await fetch(`${node.url}/ui/`);
    assert.equal(index.status, 200);
    const csp = index.headers.get('content-security-policy') ?? '';
    assert.match(csp, /script-src 'self'(;|$)/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
    assert.match(csp, /frame-ancestors 'none'/);
    assert.equal(index.headers.get('cache-control'), 'no-cache');
    const html = await index.text();
    assert.doesNotMatch(html, /<script(?![^>]*\bsrc=)[^>]*>/, 'no inline script');
    const deep = await fetch(`${node.url}/ui/keys?key=${encodeURIComponent('a/b c')}`);
    assert.equal(deep.status, 200);
    assert.equal(await deep.text(), html, 'a deep link gets the app');
    const redirect = await fetch(`${node.url}/ui`, { redirect: 'manual' });
    assert.equal(redirect.status, 301);
    assert.equal(redirect.headers.get('location'), '/ui/');
    assert.equal((await fetch(`${node.url}/ui/assets/missing.js`)).status, 404);

    // First load: the JS and CSS index.html references, as the browser receives them (gzip).
    const assets = [...html.matchAll(/(?:src|href)="(\/ui\/assets\/[^"]+)"/g)].map((m) => m[1] as string);
    assert.ok(assets.length >= 2, 'index.html references its script and stylesheet');
    let raw = 0;
    let gz = 0;
    for (const a of assets) {
      const res = await fetch(`${node.url}${a}`, { headers: { 'accept-encoding': 'gzip' } });
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('cache-control'), 'public, max-age=31536000, immutable');
      const file = readFileSync(join(ROOT, 'dist/web', a.slice('/ui/'.length)));
      raw += file.byteLength;
      gz += gzipSync(file, { level: 9 }).byteLength;
    }
    console.log(`# console first load: ${assets.length} files, ${(raw / 1024).toFixed(1)} KiB raw, ${(gz / 1024).toFixed(1)} KiB gzip`);
    assert.ok(gz < 300 * 1024, `first load ${gz} bytes compressed`);
  });

  it('browses the tree: folders with counts, awkward keys, a 1 MiB value and bytes shown as base64, exactly', async () => {
    await sdk.put('app/db/url', 'postgres://db:5432/app');
    await sdk.put('app/db/pool', '10');
    await sdk.put('app/feature/dark-mode', 'true');
    const odd = 'odd/100% sure? #1 😀 key';
    await sdk.put(odd, 'emoji 😀 and spaces');
    const long = `long/${'k'.repeat(3000)}`;
    await sdk.put(long, 'long key');
    const big = Array.from({ length: 16384 }, (_, i) => `line ${String(i).padStart(5, '0')} ${'x'.repeat(52)}\n`).join('');
    assert.equal(Buffer.byteLength(big), 1024 * 1024);
    await sdk.put('big/value', big);
    await sdk.put('bin/blob', new Uint8Array([0xff, 0xfe, 0x00, 0x41]));

    await page.goto(`${node.url}/ui/`);
    const tree = page.getByRole('tree', { name: 'Keys' });
    await tree.locator('[data-path="app/"]').waitFor({ timeout: WAIT });
    // Counts arrive lazily per folder.
    await tree.locator('[data-path="app/"] .count', { hasText: '3' }).waitFor({ timeout: WAIT });
    await tree.locator('[data-path="app/"]').click();
    await tree.locator('[data-path="app/db/"]').click();
    await tree.locator('[data-path="app/db/url"]').click();
    await page.waitForURL(/\/ui\/keys\?key=app%2Fdb%2Furl$/, { timeout: WAIT });
    await page.getByTestId('value').getByText('postgres://db:5432/app').waitFor({ timeout: WAIT });
    assert.equal(await page.getByTestId('version').textContent(), '1');
    assert.ok(Number(await page.getByTestId('mod-revision').textContent()) > 0);
    // Keyboard: the tree is focusable and arrows move through it; Enter opens a key.
    await tree.focus();
    await page.keyboard.press('Home');
    await page.keyboard.press('ArrowDown');
    assert.equal(await tree.getAttribute('aria-activedescendant'), 'tree-row-1');
    await shot(page, 'keys');

    // Deep links with awkward keys round-trip exactly; back returns to the previous key.
    await page.goto(keyUrl(node.url, odd));
    await page.getByTestId('value').waitFor({ timeout: WAIT });
    assert.equal(await page.locator('h1').textContent(), odd);
    assert.equal(await page.getByTestId('value').textContent(), 'emoji 😀 and spaces');
    await page.goto(keyUrl(node.url, long));
    await page.getByTestId('value').getByText('long key').waitFor({ timeout: WAIT });
    assert.equal(await page.locator('h1').textContent(), long);
    await page.goBack();
    await page.getByTestId('value').getByText('emoji 😀 and spaces').waitFor({ timeout: WAIT });

    await page.goto(keyUrl(node.url, 'bin/blob'));
    await page.getByTestId('value').waitFor({ timeout: WAIT });
    assert.equal(await page.getByTestId('value').textContent(), Buffer.from([0xff, 0xfe, 0x00, 0x41]).toString('base64'));
    await page.getByText('not UTF-8: shown as base64').waitFor({ timeout: WAIT });

    await page.goto(keyUrl(node.url, 'big/value'));
    await page.getByTestId('value').waitFor({ timeout: WAIT });
    assert.equal(await page.getByTestId('value').evaluate((el) => el.textContent), big);
    // Saved back unchanged through the editor: the 1 MiB value round-trips byte for byte.
    await page.getByRole('button', { name: 'Edit' }).click();
    await page.getByRole('button', { name: 'Save' }).click();
    await page.getByTestId('version').getByText('2').waitFor({ timeout: WAIT });
    const back = await sdk.get('big/value');
    assert.equal(back.kv.version, 2);
    assert.equal(back.kv.text, big);

    // Editing the awkward key through the UI stores exactly what was typed.
    await page.goto(keyUrl(node.url, odd));
    await page.getByRole('button', { name: 'Edit' }).click();
    const typed = 'new 😀 value\n  with <b>markup</b> & "quotes" %20 ?#';
    await page.locator('#value-editor').fill(typed);
    await page.getByRole('button', { name: 'Save' }).click();
    await page.getByTestId('value').getByText('with <b>markup</b>').waitFor({ timeout: WAIT });
    assert.equal((await sdk.get(odd)).kv.text, typed);
  });

  it('edits a config: a schema error shown at its path, the server’s error at its path, then a valid save', async () => {
    const policy = {
      format: 'json',
      schema: {
        type: 'object',
        required: ['port'],
        additionalProperties: false,
        properties: { port: { type: 'integer', maximum: 65535 }, tags: { type: 'array', uniqueItems: true } },
      },
    };
    const ns = await http(`${node.url}/v1/namespaces/cfg/`, { method: 'PUT', body: policy });
    assert.ok(ns.status === 200 || ns.status === 201, JSON.stringify(ns.body));
    await sdk.put('cfg/app', '{"port": 80}');
    await page.goto(keyUrl(node.url, 'cfg/app'));
    await page.getByText('JSON Schema checked').waitFor({ timeout: WAIT });
    await page.getByRole('button', { name: 'Edit' }).click();
    const editor = page.locator('#value-editor');
    await editor.fill('{"port": "eighty"}');
    const local = page.getByRole('list', { name: 'Schema problems' });
    await local.getByText('/port').waitFor({ timeout: WAIT });
    assert.match((await local.textContent()) ?? '', /\/port\s*must be integer/);
    assert.equal(await page.getByRole('button', { name: 'Save' }).isDisabled(), true, 'a value the schema refuses is not sent');
    // Every keyword is checked in the page (the library @cfworker/json-schema), each problem at its path.
    await editor.fill('{"port": 80, "tags": ["a", "a"], "extra": true}');
    await local.getByText('/tags').waitFor({ timeout: WAIT });
    await local.getByText('/extra').waitFor({ timeout: WAIT });
    assert.match((await local.textContent()) ?? '', /\/extra\s*is not an allowed property/);
    assert.equal(await page.getByRole('button', { name: 'Save' }).isDisabled(), true);
    await editor.fill('{"tags": []}');
    await local.getByText('/port').waitFor({ timeout: WAIT });
    assert.match((await local.textContent()) ?? '', /\/port\s*is required but missing/);
    await editor.fill('{"port": 80');
    await page.getByTestId('parse-error').waitFor({ timeout: WAIT });
    // The schema changes on the server while the editor is open: the page's check passes, the
    // server's refuses, and its violation comes back at its path.
    const tightened = await http(`${node.url}/v1/namespaces/cfg/`, {
      method: 'PUT',
      body: { format: 'json', schema: { type: 'object', required: ['port'], additionalProperties: false, properties: { port: { type: 'integer', maximum: 1000 }, tags: { type: 'array', uniqueItems: true } } } },
    });
    assert.ok([200, 201].includes(tightened.status), JSON.stringify(tightened.body));
    await editor.fill('{"port": 8080, "tags": ["a"]}');
    await page.getByRole('button', { name: 'Save' }).click();
    const server = page.getByRole('list', { name: 'Server problems' });
    await server.getByText('/port').waitFor({ timeout: WAIT });
    await shot(page, 'edit-schema-error');
    assert.equal((await sdk.get('cfg/app')).kv.text, '{"port": 80}', 'nothing was written');
    const restored = await http(`${node.url}/v1/namespaces/cfg/`, { method: 'PUT', body: policy });
    assert.ok([200, 201].includes(restored.status), JSON.stringify(restored.body));
    await editor.fill('{"port": 8080, "tags": ["a", "b"]}');
    await page.getByRole('button', { name: 'Save' }).click();
    await page.getByTestId('value').getByText('8080').waitFor({ timeout: WAIT });
    assert.equal((await sdk.get('cfg/app')).kv.text, '{"port": 8080, "tags": ["a", "b"]}');
  });

  it('shows an expected-version conflict with the newer value, and saves over it when asked', async () => {
    await page.goto(keyUrl(node.url, 'cfg/app'));
    await page.getByRole('button', { name: 'Edit' }).click();
    await page.locator('#value-editor').fill('{"port": 1111}');
    await sdk.put('cfg/app', '{"port": 2222}'); // someone else, meanwhile
    // The live update tells the editor before the save does; the text being edited is kept.
    await page.getByTestId('changed-while-editing').waitFor({ timeout: WAIT });
    assert.equal(await page.locator('#value-editor').inputValue(), '{"port": 1111}');
    await page.getByRole('button', { name: 'Save' }).click();
    const conflict = page.getByTestId('conflict');
    await conflict.waitFor({ timeout: WAIT });
    assert.equal(await page.getByTestId('newer-value').textContent(), '{"port": 2222}');
    await shot(page, 'conflict');
    assert.equal((await sdk.get('cfg/app')).kv.text, '{"port": 2222}', 'the conflicting save wrote nothing');
    await page.getByRole('button', { name: /Keep my edit/ }).click();
    await page.getByRole('button', { name: 'Save' }).click();
    await page.getByTestId('value').getByText('1111').waitFor({ timeout: WAIT });
    assert.equal((await sdk.get('cfg/app')).kv.text, '{"port": 1111}');
  });

  it('shows history as a timeline, a side-by-side diff, and rolls back after a confirmation naming both versions (seed 000 journey 2)', async () => {
    await sdk.configs.put('database.url', 'postgresql://old-db:5432/app');
    await sdk.configs.put('database.url', 'postgresql://new-db:5432/app', { expectVersion: 'v2' });
    await page.goto(keyUrl(node.url, 'database.url', '&tab=history'));
    const timeline = page.getByRole('list', { name: 'Versions' });
    await timeline.getByText('v2').first().waitFor({ timeout: WAIT });
    const diff = page.getByRole('table', { name: 'Differences from v1 to v2' });
    await diff.waitFor({ timeout: WAIT });
    await diff.locator('tr.changed td:first-child', { hasText: 'old-db' }).waitFor({ timeout: WAIT });
    await diff.locator('tr.changed td:last-child', { hasText: 'new-db' }).waitFor({ timeout: WAIT });
    await shot(page, 'history-diff');
    await page.getByRole('button', { name: 'Roll back to v1' }).click();
    const dialog = page.getByRole('dialog', { name: 'Roll back' });
    await dialog.waitFor({ timeout: WAIT });
    assert.match((await dialog.getByTestId('rollback-question').textContent()) ?? '', /from v2 to the value of v1/);
    await shot(page, 'rollback-confirm');
    await dialog.getByRole('button', { name: 'Roll back to v1' }).click();
    await page.getByText('Rolled back database.url from v2 to v3 (the value of v1).').waitFor({ timeout: WAIT });
    const now = await sdk.configs.get('database.url');
    assert.equal(now.version, 'v3');
    assert.equal(now.value, 'postgresql://old-db:5432/app');
    await timeline.getByText('v3').first().waitFor({ timeout: WAIT });
  });

  it('shows a staged rollout with its step, guards and history, and pauses and aborts it (issue 16)', async () => {
    await sdk.configs.put('checkout.cfg', { timeoutMs: 500 });
    const started = await http(`${node.url}/v1/configs/checkout.cfg/rollouts`, {
      method: 'POST',
      body: { value: { timeoutMs: 900 }, steps: [10, 50, 100], bake: '10m', selector: 'region=eu' },
    });
    assert.equal(started.status, 200, JSON.stringify(started.body));
    await page.goto(keyUrl(node.url, 'checkout.cfg', '&tab=rollout'));
    const view = page.getByTestId('rollout');
    await view.getByTestId('rollout-state').getByText('running').waitFor({ timeout: WAIT });
    await view.getByText('1 of 3: 10% of the selected clients').waitFor({ timeout: WAIT });
    await view.getByText('region=eu').waitFor({ timeout: WAIT });
    await shot(page, 'rollout');
    await view.getByRole('button', { name: 'Pause' }).click();
    await view.getByTestId('rollout-state').getByText('paused').waitFor({ timeout: WAIT });
    await view.getByRole('button', { name: 'Abort' }).click();
    const dialog = page.getByRole('dialog', { name: 'Abort the rollout?' });
    await dialog.getByText('Every client returns to v1').waitFor({ timeout: WAIT });
    await dialog.getByRole('button', { name: 'Abort the rollout' }).click();
    await view.getByTestId('rollout-state').getByText('aborted').waitFor({ timeout: WAIT });
    await view.getByRole('list', { name: 'Rollout history' }).getByText('aborted from the console', { exact: false }).waitFor({ timeout: WAIT });
    const after = (await http(`${node.url}/v1/configs/checkout.cfg/rollouts/current`)).body as { state: string };
    assert.equal(after.state, 'aborted');
    assert.equal((await sdk.configs.get('checkout.cfg')).version, 'v1', 'the candidate was never applied');
  });

  it('updates an open key live with a visible mark, from fetch and from curl; the live stream shows the events', async () => {
    await sdk.put('live/x', 'start');
    await page.goto(keyUrl(node.url, 'live/x'));
    await page.getByTestId('value').getByText('start').waitFor({ timeout: WAIT });
    await page.getByTestId('live-status').getByText('live', { exact: true }).waitFor({ timeout: 2 * WAIT });
    const box = await page.getByTestId('value').boundingBox();
    const latencies: number[] = [];
    const painted: number[] = [];
    for (let i = 1; i <= 10; i++) {
      const res = await fetch(`${node.url}/v1/kv/live/x`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ value: `update ${i}` }) });
      const acked = Date.now();
      const { revision } = (await res.json()) as { revision: number };
      await page.getByTestId('value').getByText(`update ${i}`, { exact: true }).waitFor({ timeout: WAIT });
      const seen = await page.evaluate(
        (rev) => (globalThis as unknown as { __beaconLive: { applied: { revision: number; at: number; painted?: number }[] } }).__beaconLive.applied.find((a) => a.revision === rev),
        revision,
      );
      assert.ok(seen !== undefined, 'the page recorded the event');
      latencies.push(Math.max(0, seen.at - acked));
      if (seen.painted !== undefined) painted.push(Math.max(0, seen.painted - acked));
    }
    console.log(
      `# live update latency in the browser, from the write's acknowledgement: applied median ${median(latencies)} ms (max ${Math.max(...latencies)}), on screen median ${median(painted)} ms (max ${Math.max(...painted)}) over ${latencies.length} writes`,
    );
    await page.getByTestId('live-mark').getByText(/Updated live: revision \d+/).waitFor({ timeout: WAIT });
    const after = await page.getByTestId('value').boundingBox();
    assert.equal(after?.y, box?.y, 'the value did not move when the update landed');

    await run('curl', ['-s', '-f', '-X', 'PUT', `${node.url}/v1/kv/live/x`, '-H', 'content-type: application/json', '-d', '{"value":"from curl"}']);
    await page.getByTestId('value').getByText('from curl', { exact: true }).waitFor({ timeout: WAIT });
    await shot(page, 'live-update');

    await page.goto(`${node.url}/ui/live?prefix=live/`);
    await page.getByTestId('live-status').getByText('live', { exact: true }).waitFor({ timeout: 2 * WAIT });
    await sdk.put('live/y', 'streamed');
    const events = page.getByTestId('events');
    await events.getByText('streamed').waitFor({ timeout: WAIT });
    await shot(page, 'live-events');
  });

  it('shows leases with their TTL and keys, and a key whose lease expires disappears live', async () => {
    const long = await sdk.lease.grant(300);
    await sdk.put('lease/held', 'kept alive', { lease: long.id });
    const short = await sdk.lease.grant(2);
    await sdk.put('lease/ephemeral', 'goes away', { lease: short.id });
    await page.goto(keyUrl(node.url, 'lease/ephemeral'));
    await page.getByTestId('value').getByText('goes away').waitFor({ timeout: WAIT });
    await page.getByRole('link', { name: String(short.id) }).waitFor({ timeout: WAIT });
    await page.getByTestId('live-mark').getByText(/Deleted elsewhere at revision/).waitFor({ timeout: WAIT });
    await page.getByText('This key was deleted.').waitFor({ timeout: WAIT });
    await page.goto(`${node.url}/ui/leases?id=${long.id}`);
    const leases = page.getByRole('table', { name: 'Leases' });
    await leases.getByRole('link', { name: String(long.id) }).waitFor({ timeout: WAIT });
    await page.getByRole('link', { name: 'lease/held' }).waitFor({ timeout: WAIT });
    assert.equal(await leases.getByRole('link', { name: String(short.id) }).count(), 0, 'the expired lease is gone');
    await shot(page, 'leases');
  });

  it('shows hostile HTML in keys and values as text and never runs it', async () => {
    const key = 'xss/<img src=x onerror="window.__pwned=1">';
    const value = '<script>window.__pwned=2</script><img src=x onerror="window.__pwned=3"><a href="javascript:window.__pwned=4">x</a>';
    await sdk.put(key, value);
    await page.goto(keyUrl(node.url, key));
    await page.getByTestId('value').waitFor({ timeout: WAIT });
    assert.equal(await page.getByTestId('value').textContent(), value);
    assert.equal(await page.locator('h1').textContent(), key);
    await page.goto(`${node.url}/ui/keys`);
    const tree = page.getByRole('tree', { name: 'Keys' });
    await tree.locator('[data-path="xss/"]').click();
    await tree.locator(`[data-path="${key.replace(/"/g, '\\"')}"]`).waitFor({ timeout: WAIT });
    await page.goto(`${node.url}/ui/live?prefix=xss/`);
    await page.getByTestId('live-status').getByText('live', { exact: true }).waitFor({ timeout: 2 * WAIT });
    await sdk.put(key, value);
    await page.getByTestId('events').getByText('<script>', { exact: false }).waitFor({ timeout: WAIT });
    assert.equal(await page.evaluate(() => (globalThis as { __pwned?: number }).__pwned), undefined, 'no hostile script ran');
    assert.equal(await page.locator('main img').count(), 0, 'no element was created from the value');
    assert.deepEqual(problems.filter((p) => /Content Security Policy/i.test(p)), [], 'nothing needed the CSP to stop it');
  });

  it('runs PromQL as a table and a graph, draws dashboards with zoom, and silences a firing alert', async () => {
    await page.goto(`${node.url}/ui/metrics?expr=${encodeURIComponent('vector(42)')}`);
    await page.getByTestId('query-result').getByText('42').waitFor({ timeout: WAIT });
    await page.goto(`${node.url}/ui/metrics?expr=${encodeURIComponent('vector(1) + 1')}&tab=graph&range=5m`);
    await page.locator('.chart canvas').waitFor({ timeout: WAIT });
    await shot(page, 'query-graph');

    // The default dashboard, and one of ours whose panels always have data.
    const beacon = (await (await fetch(`${node.url}/v1/dashboards/beacon`)).json()) as { title: string; panels: { title: string }[] };
    await page.goto(`${node.url}/ui/dashboards`);
    await page.getByRole('heading', { name: beacon.title }).waitFor({ timeout: WAIT });
    for (const p of beacon.panels) await page.getByRole('region', { name: p.title }).waitFor({ timeout: WAIT });
    const put = await http(`${node.url}/v1/dashboards/console-test`, {
      method: 'PUT',
      body: {
        title: 'Console test',
        refresh: '5s',
        range: '15m',
        panels: [
          { title: 'Always one', expr: 'vector(1)', type: 'graph', unit: '' },
          { title: 'Error ratio', expr: 'vector(0.5)', type: 'stat', unit: 'percent', thresholds: [{ value: 0.1, color: 'red' }] },
        ],
      },
    });
    assert.equal(put.status, 200, JSON.stringify(put.body));
    await page.goto(`${node.url}/ui/dashboards/console-test`);
    const chart = page.getByRole('region', { name: 'Always one' }).locator('.chart canvas').first();
    await chart.waitFor({ timeout: 2 * WAIT });
    await page.getByRole('region', { name: 'Error ratio' }).locator('.stat.threshold-red').waitFor({ timeout: WAIT });
    await shot(page, 'dashboard');
    // Drag across the chart to zoom: the range becomes the selection, in the URL.
    const box = await page.getByRole('region', { name: 'Always one' }).locator('.u-over').boundingBox();
    assert.ok(box !== null);
    await page.mouse.move(box.x + box.width * 0.3, box.y + box.height / 2);
    await page.mouse.down();
    await page.mouse.move(box.x + box.width * 0.6, box.y + box.height / 2, { steps: 5 });
    await page.mouse.up();
    await page.waitForURL(/\/ui\/dashboards\/console-test\?range=\d+s&end=\d+/, { timeout: WAIT });
    await page.getByRole('button', { name: 'Back to now' }).waitFor({ timeout: WAIT });

    // A firing alert, silenced from the console.
    const rules = await fetch(`${node.url}/v1/alerts/rules/console`, {
      method: 'PUT',
      headers: { 'content-type': 'application/yaml' },
      body: 'groups:\n  - name: console\n    interval: 1s\n    rules:\n      - alert: ConsoleAlwaysFiring\n        expr: vector(1)\n        labels:\n          severity: page\n        annotations:\n          summary: always firing, for the console test\n',
    });
    assert.equal(rules.status, 200, await rules.text());
    await page.goto(`${node.url}/ui/alerts`);
    const alerts = page.getByTestId('alerts');
    for (let i = 0; i < 10 && (await alerts.getByText('ConsoleAlwaysFiring').count()) === 0; i++) {
      await new Promise((r) => setTimeout(r, 2000));
      await page.reload();
    }
    const row = alerts.locator('tr', { hasText: 'ConsoleAlwaysFiring' });
    await row.getByRole('cell', { name: 'firing', exact: true }).waitFor({ timeout: WAIT });
    // Silenced from the page: the silence is listed and the alert shows it.
    await row.getByRole('button', { name: 'Silence 2h' }).click();
    await page.getByTestId('silences').getByText('alertname="ConsoleAlwaysFiring"').waitFor({ timeout: WAIT });
    await row.getByText('(silenced)').waitFor({ timeout: WAIT });
    const silences = (await (await fetch(`${node.url}/v1/alerts/silences`)).json()) as { silences: { matchers: { value: string }[]; status: { state: string } }[] };
    assert.ok(silences.silences.some((x) => x.status.state === 'active' && x.matchers.some((m) => m.value === 'ConsoleAlwaysFiring')), JSON.stringify(silences));
    await page.getByRole('table', { name: 'Rule files' }).getByRole('cell', { name: 'console', exact: true }).waitFor({ timeout: WAIT });
    await shot(page, 'alerts');
  });

  it('creates and deletes keys through dialogs, and shows locks with their queue, an election, sequences, the cluster and the cache', async () => {
    await page.goto(`${node.url}/ui/keys`);
    await page.getByRole('button', { name: 'New key' }).click();
    const create = page.getByRole('dialog', { name: 'New key' });
    await create.getByLabel('Key').fill('made/in the console');
    await create.getByLabel('Value').fill('hello');
    await create.getByRole('button', { name: 'Create' }).click();
    await page.waitForURL(/key=made%2Fin\+the\+console|key=made%2Fin%20the%20console/, { timeout: WAIT });
    await page.getByTestId('value').getByText('hello').waitFor({ timeout: WAIT });
    assert.equal((await sdk.get('made/in the console')).kv.text, 'hello');
    // Creating a key that exists is refused, not an overwrite.
    await page.getByRole('button', { name: 'New key' }).click();
    await create.getByLabel('Key').fill('made/in the console');
    await create.getByLabel('Value').fill('again');
    await create.getByRole('button', { name: 'Create' }).click();
    await create.getByText("'made/in the console' already exists").waitFor({ timeout: WAIT });
    await create.getByRole('button', { name: 'Cancel' }).click();
    assert.equal((await sdk.get('made/in the console')).kv.text, 'hello');
    await page.getByRole('button', { name: 'Delete' }).click();
    const del = page.getByRole('dialog', { name: 'Delete key' });
    await del.getByText('Delete made/in the console (version 1)?').waitFor({ timeout: WAIT });
    await del.getByRole('button', { name: 'Delete' }).click();
    await page.getByText('This key was deleted.').waitFor({ timeout: WAIT });
    await assert.rejects(sdk.get('made/in the console'), { code: 'not_found' });

    // A lock held and one waiter queued behind it (the waiter's request blocks until released).
    const held = await http(`${node.url}/v1/locks/jobs/nightly`, { method: 'POST', body: { ttl: 60 } });
    assert.equal(held.status, 200, JSON.stringify(held.body));
    const waiter = new AbortController();
    const queued = fetch(`${node.url}/v1/locks/jobs/nightly`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"ttl": 60}', signal: waiter.signal }).catch(() => undefined);
    const campaign = await http(`${node.url}/v1/elections/leader-demo/campaign`, { method: 'POST', body: { value: 'node-a', ttl: 60 } });
    assert.equal(campaign.status, 200, JSON.stringify(campaign.body));
    await page.goto(`${node.url}/ui/locks?name=jobs/nightly`);
    const lock = page.getByRole('region', { name: 'Lock' });
    await lock.getByText(`fencing token ${held.body.fencingToken}`).waitFor({ timeout: WAIT });
    await lock.getByText('Queue (1)').waitFor({ timeout: WAIT });
    await shot(page, 'locks');
    waiter.abort();
    await queued;
    await page.goto(`${node.url}/ui/locks?name=leader-demo`);
    await page.getByRole('region', { name: 'Election' }).getByText('node-a').waitFor({ timeout: WAIT });

    await page.goto(`${node.url}/ui/sequences?prefix=queue/jobs`);
    await page.getByRole('button', { name: 'Create next' }).click();
    await page.getByRole('table', { name: 'Sequential keys' }).getByText('queue/jobs/00000000000000000001').waitFor({ timeout: WAIT });

    await page.goto(`${node.url}/ui/cluster`);
    await page.getByRole('table', { name: 'Nodes' }).getByText('(this node)').waitFor({ timeout: WAIT });
    await page.goto(`${node.url}/ui/cache`);
    await page.getByRole('table', { name: 'Cache namespaces' }).waitFor({ timeout: WAIT });
  });

  it('reads well on a narrow window and in the dark theme', async () => {
    const { page: narrow } = await openPage(browser, { width: 420, height: 800, colorScheme: 'dark' });
    await narrow.goto(keyUrl(node.url, 'cfg/app'));
    await narrow.getByTestId('value').waitFor({ timeout: WAIT });
    const bg = await narrow.evaluate(() => getComputedStyle(document.body).backgroundColor);
    assert.equal(bg, 'rgb(20, 23, 31)', 'dark theme follows the system');
    const overflow = await narrow.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    assert.ok(overflow <= 1, `no horizontal scrolling (${overflow}px)`);
    await narrow.getByRole('button', { name: 'Menu' }).click();
    await narrow.getByRole('link', { name: 'Leases' }).click();
    await narrow.waitForURL(/\/ui\/leases$/, { timeout: WAIT });
    await shot(narrow, 'narrow-dark');
    await narrow.context().close();
  });

  it('shows "reconnecting" while the node is away and misses no change when it is back', async () => {
    await page.goto(`${node.url}/ui/live?prefix=resume/`);
    await page.getByTestId('live-status').getByText('live', { exact: true }).waitFor({ timeout: 2 * WAIT });
    await sdk.put('resume/a', 'before');
    await page.getByTestId('events').getByText('before').waitFor({ timeout: WAIT });
    await node.stop();
    await page.getByTestId('live-status').getByText('reconnecting…').waitFor({ timeout: WAIT });
    node = await startTestNode({ httpPort: port, dataDir: data.dir, respPort: 'off' });
    // Written at once, before the page has reconnected: the watch resumes from its last revision.
    await sdk.put('resume/b', 'while away');
    await sdk.put('resume/c', 'after');
    await page.getByTestId('live-status').getByText('live', { exact: true }).waitFor({ timeout: 2 * WAIT });
    await page.getByTestId('events').getByText('after').waitFor({ timeout: WAIT });
    await page.getByTestId('events').getByText('while away').waitFor({ timeout: WAIT });
    assert.deepEqual(problems.filter((p) => !/WebSocket|ERR_CONNECTION_REFUSED|Failed to fetch|net::/.test(p)), []);
  });
});
