/**
 * Serving the web console and the WebSocket credential it uses, against real servers: the console's
 * files are public on a node with authentication on while the API stays closed; a node without a
 * build answers 503 saying how to build it; a WebSocket that offers its token as the
 * `beacon.bearer.<token>` subprotocol is authenticated with `beacon.v1` selected, and a wrong one is
 * refused (the browser tests in test/e2e/console*.test.ts drive the whole console).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import Fastify from 'fastify';
import { WebSocket } from 'ws';
import { registerConsole } from '../../src/api/http/console-routes.js';
import { http, tempDir } from '../helpers/node.js';
import { ADMIN_PASSWORD, login, startSecureNode, type SecureNode } from './security-helpers.js';

/** Opens a socket offering `protocols`; resolves with the selected protocol, or the HTTP status of a refused upgrade. */
function open(url: string, protocols: string[]): Promise<{ protocol?: string; status?: number; ws?: WebSocket }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, protocols);
    const timer = setTimeout(() => reject(new Error('no answer to the upgrade')), 10_000);
    ws.once('open', () => {
      clearTimeout(timer);
      resolve({ protocol: ws.protocol, ws });
    });
    ws.once('unexpected-response', (_req, res) => {
      clearTimeout(timer);
      resolve({ status: res.statusCode });
      ws.terminate();
    });
    ws.once('error', () => undefined);
  });
}

describe('console routes and the WebSocket subprotocol credential', () => {
  let node: SecureNode;
  let token = '';

  before(async () => {
    node = await startSecureNode();
    token = await login(node.url, 'admin', ADMIN_PASSWORD);
  });

  after(async () => {
    await node?.cleanup();
  });

  it('serves the console without a credential while the API stays closed', async () => {
    const ui = await fetch(`${node.url}/ui/`);
    assert.equal(ui.status, 200);
    assert.match(await ui.text(), /<div id="app">/);
    assert.equal((await http(`${node.url}/v1/kv/a`)).status, 401);
    // Only GET and HEAD are served; anything else under /ui/ is not a console file.
    assert.equal((await fetch(`${node.url}/ui/anything`, { method: 'POST' })).status, 401);
  });

  it('answers 503 with how to build it when there is no build', async () => {
    const empty = tempDir('beacon-no-console-');
    const app = Fastify();
    try {
      await registerConsole(app, empty.dir);
      const res = await app.inject({ method: 'GET', url: '/ui/keys' });
      assert.equal(res.statusCode, 503);
      assert.match(res.json().error.message, /npm run build/);
      assert.ok(res.headers['content-security-policy']);
    } finally {
      await app.close();
      empty.cleanup();
    }
  });

  it('authenticates a WebSocket whose token comes as a subprotocol, selecting beacon.v1, and refuses a wrong one', async () => {
    const ws = node.url.replace(/^http/, 'ws');
    const ok = await open(`${ws}/v1/watch`, ['beacon.v1', `beacon.bearer.${token}`]);
    assert.equal(ok.protocol, 'beacon.v1');
    const created = await new Promise<unknown>((resolve) => {
      ok.ws?.once('message', (d) => resolve(JSON.parse(String(d))));
      ok.ws?.send(JSON.stringify({ type: 'create', watchId: 1, key: 'a/', prefix: true }));
    });
    assert.equal((created as { type?: string }).type, 'created');
    ok.ws?.close();
    const bad = await open(`${ws}/v1/watch`, ['beacon.v1', 'beacon.bearer.not-a-token']);
    assert.equal(bad.status, 401);
    const none = await open(`${ws}/v1/watch`, ['beacon.v1']);
    assert.equal(none.status, 401);
  });
});
