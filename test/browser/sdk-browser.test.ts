/**
 * The SDK in a real browser (Debian's chromium, headless, driven by playwright-core): a page served
 * from one origin imports the compiled `dist/client/**` as ES modules and talks to Beacon nodes on
 * another origin, as a browser app does — CORS for fetch, the global WebSocket with
 * `?access_token=` for watches, Web Storage for a live config's last-known-good copy. Results are
 * returned to Node with `page.evaluate` and asserted here; writes the page must see are made from
 * Node. Also `beacon serve --cors-origin` as a user starts it (the flag, its environment variable,
 * the refusal of `*` without `--dev`).
 *
 * chromium is a system package (scripts/ensure-system-deps.sh installs it): when it is missing this
 * test fails rather than skips, because CI always has it.
 */
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import type * as SdkModule from '../../client/index.js';
import { startNode } from '../../src/node/index.js';
import { ROOT, http, spawnServer, startTestNode, tempDir } from '../helpers/node.js';

const CHROMIUM = '/usr/bin/chromium';
const ADMIN_PASSWORD = 'browser-test-admin-password';
/** Every wait in a page is bounded by this (ms). */
const WAIT_MS = 8000;

/** What the test page keeps on `window` between `evaluate` calls. */
interface PageGlobals {
  sdk: typeof SdkModule;
  sdkReady: boolean;
  state: Record<string, any>;
}

type TestNode = Awaited<ReturnType<typeof startTestNode>>;

const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>beacon sdk in a browser</title></head>
<body><script type="module">
import * as sdk from '/dist/client/index.js';
window.sdk = sdk;
window.state = {};
window.sdkReady = true;
</script></body></html>`;

/**
 * The compiled SDK and the three pure modules it shares with the server (the error catalogue,
 * rollout targeting and a cache key's slot, which import nothing else); nothing else in dist/ is served, so an SDK
 * import of any other server module fails this test.
 */
const SERVED = /^\/dist\/(client\/[A-Za-z0-9_-]+\.js|src\/errors\.js|src\/rollout\/targeting\.js|src\/cache\/keyslot\.js)$/;

/** A static file server on 127.0.0.1 (its own origin): the page and the SDK as ES modules. */
async function startStatic(): Promise<{ origin: string; server: Server }> {
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    if (path === '/' || path === '/index.html') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
      res.end(PAGE);
      return;
    }
    if (SERVED.test(path) && !path.endsWith('.test.js')) {
      const file = join(ROOT, path);
      if (existsSync(file)) {
        res.writeHead(200, { 'content-type': 'text/javascript; charset=utf-8', 'cache-control': 'no-store' });
        res.end(readFileSync(file));
        return;
      }
    }
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('not found');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

function closeServer(server: Server | undefined): Promise<void> {
  if (server === undefined) return Promise.resolve();
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}

/** Resolves `p`, or rejects after `ms` naming `what`. */
async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: no answer in ${ms} ms`)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

/** A raw HTTP request with exactly the given headers (fetch would not let Node send `Origin` freely). */
function rawRequest(url: string, method: string, headers: Record<string, string>): Promise<{ status: number; headers: Record<string, string | string[] | undefined> }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers, timeout: 5000 }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers }));
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${url} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

/** Opens the test page of `origin` and waits until the SDK module has loaded in it. */
async function openPage(ctx: BrowserContext, origin: string, log: string[]): Promise<Page> {
  const page = await ctx.newPage();
  page.setDefaultTimeout(WAIT_MS);
  page.on('console', (m) => log.push(`[${origin} console.${m.type()}] ${m.text()}`));
  page.on('pageerror', (e) => log.push(`[${origin} pageerror] ${e.message}`));
  await page.goto(`${origin}/`);
  await page.waitForFunction(() => (window as unknown as PageGlobals).sdkReady === true, undefined, { timeout: WAIT_MS }).catch((err: unknown) => {
    throw new Error(`the SDK did not load in the page: ${(err as Error).message}\n${log.join('\n')}`);
  });
  return page;
}

describe('the SDK in a real browser (headless chromium), against nodes on another origin', () => {
  const log: string[] = [];
  let profile: ReturnType<typeof tempDir> | undefined;
  let ctx: BrowserContext | undefined;
  let app: { origin: string; server: Server } | undefined;
  let foreign: { origin: string; server: Server } | undefined;
  let node: TestNode | undefined;
  let secure: TestNode | undefined;
  let page: Page;
  let foreignPage: Page;

  before(async () => {
    if (!existsSync(CHROMIUM)) {
      throw new Error(`${CHROMIUM} is missing: run scripts/ensure-system-deps.sh (as root) to install Debian's chromium for this test`);
    }
    app = await startStatic();
    foreign = await startStatic(); // another origin, not in --cors-origin
    node = await startTestNode({ corsOrigins: [app.origin] });
    secure = await startTestNode({ dev: false, corsOrigins: [app.origin], security: { adminPassword: ADMIN_PASSWORD, loginRateLimit: null } });
    profile = tempDir('beacon-chromium-');
    ctx = await chromium.launchPersistentContext(profile.dir, {
      executablePath: CHROMIUM,
      headless: true,
      timeout: 15_000,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    page = await openPage(ctx, app.origin, log);
    foreignPage = await openPage(ctx, foreign.origin, log);
  });

  after(async () => {
    // Each part is closed even when another fails to; every close is bounded.
    const steps: [string, () => Promise<unknown>][] = [
      ['browser', async () => ctx?.close()],
      ['node', async () => node?.cleanup()],
      ['secure node', async () => secure?.cleanup()],
      ['static server', () => closeServer(app?.server)],
      ['foreign static server', () => closeServer(foreign?.server)],
    ];
    for (const [what, step] of steps) await within(step(), 10_000, `closing the ${what}`).catch((err: unknown) => log.push(String(err)));
    profile?.cleanup();
  });

  it('puts, gets, lists and runs a txn from the page; a missing key is a NotFoundError', async () => {
    const got = await page.evaluate(async (endpoint) => {
      const { sdk } = window as unknown as PageGlobals;
      const client = sdk.createClient({ endpoint, timeoutMs: 5000 });
      try {
        const put = await client.put('browser/kv/a', 'one');
        await client.put('browser/kv/b', 'two');
        const one = await client.get('browser/kv/a');
        const list = await client.range('browser/kv/');
        const txn = await client
          .txn()
          .if(sdk.Compare.value('browser/kv/a', '=', 'one'))
          .then(sdk.Op.put('browser/kv/c', 'three'), sdk.Op.get('browser/kv/b'))
          .else(sdk.Op.put('browser/kv/c', 'wrong'))
          .commit();
        let missing: Record<string, unknown> = {};
        try {
          await client.get('browser/kv/missing');
        } catch (err) {
          missing = {
            isNotFound: err instanceof sdk.NotFoundError,
            isBeaconError: err instanceof sdk.BeaconError,
            name: (err as Error).name,
            code: (err as { code?: string }).code,
            message: (err as Error).message,
          };
        }
        return {
          putRevision: put.revision,
          text: one.kv.text,
          keys: list.kvs.map((kv) => kv.key),
          txnSucceeded: txn.succeeded,
          txnRevision: txn.revision,
          missing,
        };
      } finally {
        client.close();
      }
    }, node!.url);
    assert.ok(got.putRevision > 0);
    assert.equal(got.text, 'one');
    assert.deepEqual(got.keys, ['browser/kv/a', 'browser/kv/b']);
    assert.equal(got.txnSucceeded, true);
    assert.equal(got.missing.isNotFound, true, JSON.stringify(got.missing));
    assert.equal(got.missing.isBeaconError, true);
    assert.equal(got.missing.code, 'not_found');
    // What the page wrote is in the node.
    const c = await http(`${node!.url}/v1/kv/browser/kv/c`);
    assert.equal(c.status, 200);
    assert.equal(c.body.kv.value, 'three');
    assert.equal(c.body.kv.modRevision, got.txnRevision);
  });

  it('watches a prefix with the global WebSocket as an async iterator: every put from Node, in order', async () => {
    await page.evaluate(async (endpoint) => {
      const w = window as unknown as PageGlobals;
      const client = w.sdk.createClient({ endpoint, timeoutMs: 5000 });
      const events: { type: string; key: string; text: string | undefined; revision: number }[] = [];
      let live!: () => void;
      const watching = new Promise<void>((resolve) => (live = resolve));
      const watch = client.watch('browser/w/', { prefix: true, onStatus: (s) => s.state === 'watching' && live() });
      w.state.watch = { client, watch, events, done: false, error: undefined as string | undefined };
      void (async () => {
        try {
          for await (const ev of watch) events.push({ type: ev.type, key: ev.kv.key, text: ev.kv.text, revision: ev.revision });
        } catch (err) {
          w.state.watch.error = String(err);
        } finally {
          w.state.watch.done = true;
        }
      })();
      await watching;
    }, node!.url);
    const revisions: number[] = [];
    for (let i = 0; i < 5; i++) {
      const res = await http(`${node!.url}/v1/kv/browser/w/k${i}`, { method: 'PUT', body: { value: `v${i}` } });
      assert.equal(res.status, 200);
      revisions.push(res.body.revision as number);
    }
    await http(`${node!.url}/v1/kv/browser/w/k0`, { method: 'DELETE' });
    await page.waitForFunction(() => (window as unknown as PageGlobals).state.watch.events.length >= 6, undefined, { timeout: WAIT_MS });
    const seen = await page.evaluate(() => {
      const s = (window as unknown as PageGlobals).state.watch;
      s.watch.stop();
      s.client.close();
      return { events: s.events as { type: string; key: string; text: string | undefined; revision: number }[], error: s.error as string | undefined };
    });
    assert.equal(seen.error, undefined);
    assert.deepEqual(
      seen.events.slice(0, 5).map((e) => [e.type, e.key, e.text, e.revision]),
      revisions.map((r, i) => ['put', `browser/w/k${i}`, `v${i}`, r]),
    );
    assert.equal(seen.events[5]?.type, 'delete');
    assert.equal(seen.events[5]?.key, 'browser/w/k0');
    assert.equal(seen.events.length, 6, 'no event twice');
  });

  it('keeps a live config current, saves it in Web Storage and starts from that copy without the server', async () => {
    await http(`${node!.url}/v1/kv/browser/cfg/color`, { method: 'PUT', body: { value: '"blue"' } });
    await http(`${node!.url}/v1/kv/browser/cfg/size`, { method: 'PUT', body: { value: '3' } });
    const first = await page.evaluate(async (endpoint) => {
      const w = window as unknown as PageGlobals;
      const client = w.sdk.createClient({ endpoint, timeoutMs: 5000 });
      const cfg = await client.config<{ color: string; size: number }>('browser/cfg/', {
        lastKnownGood: w.sdk.webStorage(localStorage, 'beacon-lkg:browser/cfg/'),
      });
      w.state.cfg = { client, cfg };
      return { value: cfg.value, stale: cfg.stale, source: cfg.source };
    }, node!.url);
    assert.deepEqual(first, { value: { color: 'blue', size: 3 }, stale: false, source: 'server' });

    const put = await http(`${node!.url}/v1/kv/browser/cfg/color`, { method: 'PUT', body: { value: '"red"' } });
    await page.waitForFunction(() => (window as unknown as PageGlobals).state.cfg.cfg.value.color === 'red', undefined, { timeout: WAIT_MS });
    const saved = await page.evaluate(async () => {
      const s = (window as unknown as PageGlobals).state.cfg;
      await s.cfg.flushed();
      const revision = s.cfg.revision as number;
      s.cfg.close();
      s.client.close();
      return { revision, stored: localStorage.getItem('beacon-lkg:browser/cfg/') };
    });
    assert.equal(saved.revision, put.body.revision);
    assert.ok(saved.stored !== null, 'the last-known-good copy is in localStorage');
    const doc = JSON.parse(saved.stored);
    assert.equal(doc.format, 'beacon-lkg/1');
    assert.equal(doc.revision, put.body.revision);
    assert.deepEqual(doc.entries, { color: { value: '"red"' }, size: { value: '3' } });

    // A page that starts while no node answers (a closed port) gets the copy, marked stale.
    const closed = await startStatic();
    await closeServer(closed.server);
    const offline = await page.evaluate(async (endpoint) => {
      const w = window as unknown as PageGlobals;
      const client = w.sdk.createClient({ endpoint, timeoutMs: 2000, retry: false, healthCheck: false });
      try {
        const cfg = await client.config<{ color: string; size: number }>('browser/cfg/', {
          lastKnownGood: w.sdk.webStorage(localStorage, 'beacon-lkg:browser/cfg/'),
          retry: { initialDelayMs: 60_000, maxDelayMs: 60_000 },
        });
        const out = { value: cfg.value, stale: cfg.stale, source: cfg.source, revision: cfg.revision };
        cfg.close();
        return out;
      } finally {
        client.close();
      }
    }, closed.origin);
    assert.deepEqual(offline, { value: { color: 'red', size: 3 }, stale: true, source: 'last-known-good', revision: put.body.revision });
  });

  it('holds a Mutex (seen held from Node) and releases it', async () => {
    const held = await page.evaluate(async (endpoint) => {
      const w = window as unknown as PageGlobals;
      const client = w.sdk.createClient({ endpoint, timeoutMs: 5000 });
      const session = await client.session({ ttl: 10 });
      const mutex = session.mutex('browser/lock');
      const info = await mutex.lock({ timeoutMs: 5000 });
      w.state.lock = { client, session, mutex };
      return { fencingToken: info.fencingToken, key: info.key, isHeld: mutex.isHeld };
    }, node!.url);
    assert.equal(held.isHeld, true);
    const during = await http(`${node!.url}/v1/locks/browser/lock`);
    assert.equal(during.status, 200);
    assert.equal(during.body.holder?.key, held.key);
    assert.equal(during.body.holder?.fencingToken, held.fencingToken);
    const released = await page.evaluate(async () => {
      const s = (window as unknown as PageGlobals).state.lock;
      const unlocked = (await s.mutex.unlock()) as boolean;
      await s.session.close();
      s.client.close();
      return unlocked;
    });
    assert.equal(released, true);
    const afterwards = await http(`${node!.url}/v1/locks/browser/lock`);
    assert.equal(afterwards.body.holder, null);
  });

  it('against a secure node: typed 401 without a token, then login, reads, writes and a watch through ?access_token=', async () => {
    const started = await page.evaluate(async (endpoint) => {
      const w = window as unknown as PageGlobals;
      const anonymous = w.sdk.createClient({ endpoint, timeoutMs: 5000 });
      let refused: Record<string, unknown> = {};
      try {
        await anonymous.get('browser/secure/x');
      } catch (err) {
        refused = { isUnauthenticated: err instanceof w.sdk.UnauthenticatedError, code: (err as { code?: string }).code };
      } finally {
        anonymous.close();
      }
      const client = w.sdk.createClient({ endpoint, timeoutMs: 5000 });
      const login = await client.login('admin', 'browser-test-admin-password');
      await client.put('browser/secure/a', 'from the page');
      const a = await client.get('browser/secure/a');
      const events: { key: string; text: string | undefined; revision: number }[] = [];
      let live!: () => void;
      const watching = new Promise<void>((resolve) => (live = resolve));
      const watch = client.watch('browser/secure/w/', { prefix: true, onStatus: (s) => s.state === 'watching' && live() });
      w.state.secure = { client, watch, events, error: undefined as string | undefined };
      void (async () => {
        try {
          for await (const ev of watch) events.push({ key: ev.kv.key, text: ev.kv.text, revision: ev.revision });
        } catch (err) {
          w.state.secure.error = String(err);
        }
      })();
      await watching;
      return { refused, user: login.user, text: a.kv.text };
    }, secure!.url);
    assert.deepEqual(started.refused, { isUnauthenticated: true, code: 'unauthenticated' });
    assert.equal(started.user, 'admin');
    assert.equal(started.text, 'from the page');

    const token = (await http(`${secure!.url}/v1/auth/token`, { method: 'POST', body: { username: 'admin', password: ADMIN_PASSWORD } })).body.token as string;
    const auth = { authorization: `Bearer ${token}` };
    const revisions: number[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await http(`${secure!.url}/v1/kv/browser/secure/w/${i}`, { method: 'PUT', body: { value: `s${i}` }, headers: auth });
      assert.equal(res.status, 200);
      revisions.push(res.body.revision as number);
    }
    await page.waitForFunction(() => (window as unknown as PageGlobals).state.secure.events.length >= 3, undefined, { timeout: WAIT_MS });
    const seen = await page.evaluate(() => {
      const s = (window as unknown as PageGlobals).state.secure;
      s.watch.stop();
      s.client.close();
      return { events: s.events as { key: string; text: string | undefined; revision: number }[], error: s.error as string | undefined };
    });
    assert.equal(seen.error, undefined);
    assert.deepEqual(
      seen.events.map((e) => [e.key, e.text, e.revision]),
      revisions.map((r, i) => [`browser/secure/w/${i}`, `s${i}`, r]),
    );
  });

  it('a page on an origin not in --cors-origin gets UnavailableError; the node is unaffected', async () => {
    const refused = await foreignPage.evaluate(async (endpoint) => {
      const { sdk } = window as unknown as PageGlobals;
      const client = sdk.createClient({ endpoint, timeoutMs: 3000, retry: false, healthCheck: false });
      const attempt = async (f: () => Promise<unknown>): Promise<Record<string, unknown>> => {
        try {
          await f();
          return { ok: true };
        } catch (err) {
          return { isUnavailable: err instanceof sdk.UnavailableError, code: (err as { code?: string }).code, message: (err as Error).message };
        }
      };
      try {
        // A simple GET (no preflight) and a JSON PUT (preflighted): both refused by the browser.
        return { get: await attempt(() => client.get('browser/kv/a')), put: await attempt(() => client.put('browser/foreign/x', 'no')) };
      } finally {
        client.close();
      }
    }, node!.url);
    for (const r of [refused.get, refused.put]) {
      assert.equal(r.isUnavailable, true, JSON.stringify(r));
      assert.equal(r.code, 'unavailable');
      assert.match(String(r.message), new RegExp(`cannot reach Beacon at ${node!.url.replace(/[.]/g, '\\.')}`));
    }
    // The preflighted PUT never reached a handler; the node still serves the allowed page and Node.
    assert.equal((await http(`${node!.url}/v1/kv/browser/foreign/x`)).status, 404);
    assert.equal((await http(`${node!.url}/healthz`)).status, 200);
    const again = await page.evaluate(async (endpoint) => {
      const { sdk } = window as unknown as PageGlobals;
      const client = sdk.createClient({ endpoint, timeoutMs: 5000 });
      try {
        return (await client.get('browser/kv/a')).kv.text;
      } finally {
        client.close();
      }
    }, node!.url);
    assert.equal(again, 'one');
  });
});

describe('beacon serve --cors-origin', () => {
  it("refuses '*' without --dev, with a clear error at start", async () => {
    const tmp = tempDir();
    try {
      await assert.rejects(
        spawnServer(['--data-dir', tmp.dir, '--cors-origin', '*'], 10_000, { secure: true, env: { BEACON_ADMIN_PASSWORD: ADMIN_PASSWORD } }),
        /--cors-origin: CORS origin '\*' \(any web page\) is allowed only with --dev/,
      );
      await assert.rejects(
        spawnServer(['--data-dir', tmp.dir, '--cors-origin', 'https://console.example.com/'], 10_000, { secure: true, env: { BEACON_ADMIN_PASSWORD: ADMIN_PASSWORD } }),
        /invalid CORS origin 'https:\/\/console\.example\.com\/'/,
      );
    } finally {
      tmp.cleanup();
    }
  });

  it("allows any origin with '*' in --dev only", async () => {
    // Refused before anything is opened: the data directory is never created.
    const never = join(tempDir().dir, 'never');
    await assert.rejects(startNode({ dev: false, corsOrigins: ['*'], dataDir: never }), {
      code: 'invalid_argument',
      message: /only with --dev/,
    });
    assert.equal(existsSync(never), false);
    rmSync(dirname(never), { recursive: true, force: true });
    const dev = await startTestNode({ corsOrigins: ['*'] });
    try {
      const preflight = await rawRequest(`${dev.url}/v1/kv/x`, 'OPTIONS', { origin: 'https://anything.example', 'access-control-request-method': 'PUT' });
      assert.equal(preflight.status, 204);
      assert.equal(preflight.headers['access-control-allow-origin'], '*');
    } finally {
      await dev.cleanup();
    }
  });

  it('takes BEACON_CORS_ORIGINS; answers preflights of listed origins without a credential, and only those', async () => {
    const tmp = tempDir();
    const srv = await spawnServer(['--data-dir', tmp.dir], 10_000, {
      secure: true,
      env: { BEACON_ADMIN_PASSWORD: ADMIN_PASSWORD, BEACON_CORS_ORIGINS: 'https://console.example.com,http://127.0.0.1:5173' },
    });
    try {
      assert.match(srv.stderr(), /beacon CORS: browser apps from https:\/\/console\.example\.com, http:\/\/127\.0\.0\.1:5173/);
      const url = `${srv.url}/v1/kv/app/x`;
      const preflight = await rawRequest(url, 'OPTIONS', {
        origin: 'http://127.0.0.1:5173',
        'access-control-request-method': 'PUT',
        'access-control-request-headers': 'authorization, content-type',
      });
      assert.equal(preflight.status, 204);
      assert.equal(preflight.headers['access-control-allow-origin'], 'http://127.0.0.1:5173');
      assert.equal(preflight.headers['access-control-allow-methods'], 'GET, PUT, POST, PATCH, DELETE', 'every method of the API, PATCH /v1/users/{name} included');
      assert.equal(preflight.headers['access-control-allow-headers'], 'content-type, authorization, last-event-id, x-request-id');
      assert.equal(preflight.headers['access-control-max-age'], '600');
      assert.equal(preflight.headers['access-control-allow-credentials'], undefined, 'no credentials mode');
      // An allowed origin's real request still needs a token; its error is readable by the page.
      const get = await rawRequest(url, 'GET', { origin: 'https://console.example.com' });
      assert.equal(get.status, 401);
      assert.equal(get.headers['access-control-allow-origin'], 'https://console.example.com');
      assert.match(String(get.headers['access-control-expose-headers']), /x-request-id/);
      assert.match(String(get.headers['access-control-expose-headers']), /retry-after/);
      // Another origin's preflight is not exempt from authentication and gets no CORS headers.
      const other = await rawRequest(url, 'OPTIONS', { origin: 'https://evil.example', 'access-control-request-method': 'PUT' });
      assert.equal(other.status, 401);
      assert.equal(other.headers['access-control-allow-origin'], undefined);
      // A request without Origin (curl, services) is answered as before, without CORS headers.
      const plain = await rawRequest(`${srv.url}/healthz`, 'GET', {});
      assert.equal(plain.status, 200);
      assert.equal(plain.headers['access-control-allow-origin'], undefined);
    } finally {
      await srv.kill();
      tmp.cleanup();
    }
  });
});
