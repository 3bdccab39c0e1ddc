// TLS and mTLS with certificates made by `openssl` in the set-up: HTTPS only, client
// certificates signed by the configured CA become principals (CN → roles from a flag or the
// user of that name), untrusted certificates are ignored, and the built CLI takes the flags.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { request as httpRequest } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { spawnServer, tempDir } from '../helpers/node.js';
import { ADMIN_PASSWORD, startSecureNode, type SecureNode } from './security-helpers.js';

interface Pem {
  cert: Buffer;
  key: Buffer;
}

function openssl(args: string[], cwd: string): void {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

/** A CA, a server certificate for 127.0.0.1, client certificates signed by the CA, and a self-signed impostor. */
function makeCerts(dir: string): { ca: Buffer; caFile: string; serverCert: string; serverKey: string; client: (cn: string) => Pem; rogue: Pem } {
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl(['req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.crt', '-subj', '/CN=beacon-test-ca', '-days', '2'], dir);
  writeFileSync(join(dir, 'server.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  openssl(['req', ...ec, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost'], dir);
  openssl(['x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.crt', '-days', '2', '-extfile', 'server.ext'], dir);
  const client = (cn: string): Pem => {
    openssl(['req', ...ec, '-keyout', `${cn}.key`, '-out', `${cn}.csr`, '-subj', `/CN=${cn}`], dir);
    openssl(['x509', '-req', '-in', `${cn}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${cn}.crt`, '-days', '2'], dir);
    return { cert: readFileSync(join(dir, `${cn}.crt`)), key: readFileSync(join(dir, `${cn}.key`)) };
  };
  openssl(['req', '-x509', ...ec, '-keyout', 'rogue.key', '-out', 'rogue.crt', '-subj', '/CN=billing', '-days', '2'], dir);
  return {
    ca: readFileSync(join(dir, 'ca.crt')),
    caFile: join(dir, 'ca.crt'),
    serverCert: join(dir, 'server.crt'),
    serverKey: join(dir, 'server.key'),
    client,
    rogue: { cert: readFileSync(join(dir, 'rogue.crt')), key: readFileSync(join(dir, 'rogue.key')) },
  };
}

/** One HTTPS request trusting `ca`, optionally presenting a client certificate. */
function get(url: string, ca: Buffer, opts: { method?: string; path?: string; headers?: Record<string, string>; body?: unknown; clientCert?: Pem } = {}): Promise<{ status: number; body: any }> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      {
        host: u.hostname,
        port: u.port,
        method: opts.method ?? 'GET',
        path: opts.path ?? '/',
        ca,
        ...(opts.clientCert ? { cert: opts.clientCert.cert, key: opts.clientCert.key } : {}),
        headers: { ...(opts.headers ?? {}), ...(opts.body !== undefined ? { 'content-type': 'application/json' } : {}) },
        agent: false,
      },
      (res) => {
        let data = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (data += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: data === '' ? undefined : JSON.parse(data) }));
      },
    );
    req.on('error', reject);
    req.end(opts.body !== undefined ? JSON.stringify(opts.body) : undefined);
  });
}

describe('TLS and mTLS', () => {
  const tmp = tempDir('beacon-tls-');
  let certs: ReturnType<typeof makeCerts>;
  let node: SecureNode;
  let billing: Pem;
  let alice: Pem;
  let nobody: Pem;

  before(async () => {
    certs = makeCerts(tmp.dir);
    billing = certs.client('billing');
    alice = certs.client('alice');
    nobody = certs.client('nobody');
    node = await startSecureNode({
      tls: { cert: certs.serverCert, key: certs.serverKey, clientCa: certs.caFile },
      security: { clientCertRoles: { billing: ['viewer'] } },
      respPort: 0,
    });
  });
  after(async () => {
    await node.cleanup();
    tmp.cleanup();
  });

  it('serves HTTPS only', async () => {
    assert.match(node.url, /^https:\/\/127\.0\.0\.1:\d+$/);
    assert.equal((await get(node.url, certs.ca, { path: '/healthz' })).status, 200);
    await assert.rejects(get(node.url, certs.rogue.cert, { path: '/healthz' }), /certificate|self.signed|verify/i, 'a client that does not trust the CA refuses the server');
    const u = new URL(node.url);
    const plain = await new Promise<number | string>((resolve) => {
      const r = httpRequest({ host: u.hostname, port: u.port, path: '/healthz' }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      r.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
      r.end();
    });
    assert.notEqual(plain, 200, 'plain HTTP gets no answer from the API');
  });

  it('a client certificate signed by the CA is a principal: its CN, with roles from the flag or the user of that name', async () => {
    const me = await get(node.url, certs.ca, { path: '/v1/auth/whoami', clientCert: billing });
    assert.deepEqual(me.body, { name: 'billing', roles: ['viewer'], via: 'mtls', dev: false });
    assert.equal((await get(node.url, certs.ca, { method: 'PUT', path: '/v1/kv/x', body: { value: '1' }, clientCert: billing })).status, 403);
    assert.equal((await get(node.url, certs.ca, { path: '/v1/status', clientCert: billing })).status, 200);

    const token = (await get(node.url, certs.ca, { method: 'POST', path: '/v1/auth/token', body: { username: 'admin', password: ADMIN_PASSWORD } })).body.token;
    const made = await get(node.url, certs.ca, { method: 'POST', path: '/v1/users', headers: { authorization: `Bearer ${token}` }, body: { name: 'alice', password: 'alice-password', roles: ['developer'] } });
    assert.equal(made.status, 201);
    const asAlice = await get(node.url, certs.ca, { path: '/v1/auth/whoami', clientCert: alice });
    assert.deepEqual(asAlice.body.roles, ['developer']);
    assert.equal((await get(node.url, certs.ca, { method: 'PUT', path: '/v1/kv/x', body: { value: '1' }, clientCert: alice })).status, 200);

    const unmapped = await get(node.url, certs.ca, { path: '/v1/auth/whoami', clientCert: nobody });
    assert.deepEqual([unmapped.body.name, unmapped.body.roles], ['nobody', []]);
    assert.equal((await get(node.url, certs.ca, { path: '/v1/kv/x', clientCert: nobody })).status, 403);
  });

  it('the RESP port: a client certificate signed by the CA authenticates the connection as its CN; none or an untrusted one must AUTH', async () => {
    const port = node.resp?.port as number;
    const open = (cert?: Pem): Redis => {
      const r = new Redis({
        port,
        host: '127.0.0.1',
        tls: { ca: certs.ca, servername: 'localhost', ...(cert !== undefined ? { cert: cert.cert, key: cert.key } : {}) },
        maxRetriesPerRequest: 0,
        lazyConnect: true,
        enableReadyCheck: false, // its INFO would be refused (NOAUTH) before AUTH on the unauthenticated ones
        retryStrategy: () => null,
      });
      r.on('error', () => undefined);
      return r;
    };
    const asBilling = open(billing);
    const asRogue = open(certs.rogue);
    const asNobody = open();
    const token = (await get(node.url, certs.ca, { method: 'POST', path: '/v1/auth/token', body: { username: 'admin', password: ADMIN_PASSWORD } })).body.token as string;
    const admin = open();
    try {
      await admin.connect();
      assert.equal(await admin.call('AUTH', token), 'OK');
      assert.equal(await admin.set('mtls/key', 'v'), 'OK');
      await asBilling.connect();
      assert.equal(await asBilling.get('mtls/key'), 'v', 'billing (viewer by --tls-client-role) reads without AUTH');
      await assert.rejects(asBilling.set('mtls/key', 'w'), /NOPERM/, 'a viewer may not write');
      await asNobody.connect();
      await assert.rejects(asNobody.get('mtls/key'), /NOAUTH/);
      // A certificate the CA did not sign: refused by the handshake (ioredis cannot connect) or, if
      // the handshake passed, not a principal.
      const rogue = await asRogue.connect().then(
        () => asRogue.get('mtls/key').then(() => 'served', (e: Error) => e.message),
        (e: Error) => e.message,
      );
      assert.notEqual(rogue, 'served');
    } finally {
      for (const r of [asBilling, asRogue, asNobody, admin]) r.disconnect();
    }
  });

  it('an untrusted client certificate proves nothing; a token still works without one', async () => {
    const rogue = await get(node.url, certs.ca, { path: '/v1/auth/whoami', clientCert: certs.rogue });
    assert.equal(rogue.status, 401);
    const token = (await get(node.url, certs.ca, { method: 'POST', path: '/v1/auth/token', body: { username: 'admin', password: ADMIN_PASSWORD } })).body.token;
    assert.equal((await get(node.url, certs.ca, { path: '/v1/auth/whoami', headers: { authorization: `Bearer ${token}` } })).body.via, 'token');
  });

  it('`beacon serve --tls-cert --tls-key --tls-client-ca --tls-client-role` (the built CLI)', async () => {
    const data = tempDir();
    const server = await spawnServer(
      ['--data-dir', data.dir, '--tls-cert', certs.serverCert, '--tls-key', certs.serverKey, '--tls-client-ca', certs.caFile, '--tls-client-role', 'billing=developer+viewer'],
      20_000,
      { secure: true },
    );
    try {
      assert.match(server.url, /^https:/);
      const me = await get(server.url, certs.ca, { path: '/v1/auth/whoami', clientCert: billing });
      assert.deepEqual([me.body.name, me.body.roles, me.body.via], ['billing', ['developer', 'viewer'], 'mtls']);
    } finally {
      await server.stop();
      data.cleanup();
    }
  });
});
