/**
 * The cache tier across nodes with TLS (`--tls-cert`): the RESP listeners speak TLS only, so the
 * links between nodes do too, verified against the certificate the nodes share (made by
 * `openssl` here, for 127.0.0.1). A plain TLS client on one node reaches a key another node
 * serves (forwarded), a `sync` write with replication factor 2 is acknowledged (its replica got
 * it over a TLS link), and a node whose certificate the others do not trust is not forwarded to.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import { keySlot } from '../../src/cache/index.js';
import { spawnServer, tempDir, type ServerProcess } from '../helpers/node.js';
import { eventually, startPostgres, type PostgresServer } from '../helpers/postgres.js';
import { slotPorts } from './cache-cluster-helpers.js';

/** A self-signed certificate and key for 127.0.0.1, in `dir`. */
function makeCert(dir: string, name: string): { cert: string; key: string } {
  execFileSync(
    'openssl',
    ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.crt`, '-subj', `/CN=${name}`, '-days', '2', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost'],
    { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  return { cert: join(dir, `${name}.crt`), key: join(dir, `${name}.key`) };
}

/** An HTTPS request trusting `ca`; resolves with the status and the parsed body. */
function https(url: string, ca: Buffer, method = 'GET', body?: unknown): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, ca, headers: body !== undefined ? { 'content-type': 'application/json' } : {} }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text === '' ? undefined : JSON.parse(text) }));
    });
    req.on('error', reject);
    req.end(body !== undefined ? JSON.stringify(body) : undefined);
  });
}

interface Node {
  proc: ServerProcess;
  port: number;
}

describe('a cache cluster over TLS', { timeout: 120_000 }, () => {
  let pg: PostgresServer | undefined;
  const tmp = tempDir();
  const dirs: (() => void)[] = [tmp.cleanup];
  const nodes: Node[] = [];
  const clients: Redis[] = [];
  let ca: Buffer;
  let url = '';

  const start = async (cert: { cert: string; key: string }): Promise<Node> => {
    const data = tempDir();
    dirs.push(data.cleanup);
    const proc = await spawnServer(['--backend', url, '--data-dir', data.dir, '--dev', '--tls-cert', cert.cert, '--tls-key', cert.key]);
    const port = Number(/beacon RESP listening on rediss:\/\/[^\s]+:(\d+)/.exec(proc.stderr())?.[1]);
    assert.ok(port > 0, proc.stderr());
    return { proc, port };
  };
  const client = (port: number): Redis => {
    const c = new Redis({ port, host: '127.0.0.1', tls: { ca }, maxRetriesPerRequest: 1, connectTimeout: 2000, commandTimeout: 8000 });
    c.on('error', () => undefined);
    clients.push(c);
    return c;
  };

  before(async () => {
    const shared = makeCert(tmp.dir, 'shared');
    ca = readFileSync(shared.cert);
    pg = await startPostgres();
    url = await pg.createDatabase();
    nodes.push(await start(shared), await start(shared));
    const put = (prefix: string, body: unknown): Promise<{ status: number; body: unknown }> =>
      https(`${nodes[0]?.proc.url}/v1/namespaces/${prefix}`, ca, 'PUT', body);
    assert.equal((await put('c/', { storage: 'memory' })).status, 201);
    assert.equal((await put('r/', { storage: 'memory', replicationFactor: 2, replication: 'sync' })).status, 201);
    const ctl = nodes.map((n) => client(n.port));
    await eventually('both TLS nodes share the slots, with the namespaces', async () => {
      const maps = await Promise.all(ctl.map((c) => slotPorts(c)));
      const ns = await https(`${nodes[1]?.proc.url}/v1/namespaces/r/`, ca);
      return ns.status === 200 && new Set(maps[0]).size === 2 && !maps[0]?.includes(-1) && maps.every((m) => m.every((p, i) => maps[0]?.[i] === p));
    }, 15_000);
  });

  after(async () => {
    for (const c of clients) c.disconnect();
    for (const n of nodes) await n.proc.kill();
    await pg?.stop();
    for (const d of dirs) d();
  });

  test('a plain TLS client reaches every key through one node; sync replication is acknowledged over TLS links', async () => {
    const [a, b] = nodes as [Node, Node];
    const map = await slotPorts(client(a.port));
    const onB = (prefix: string): string => {
      for (let i = 0; ; i++) if (map[keySlot(`${prefix}${i}`)] === b.port) return `${prefix}${i}`;
    };
    const plain = client(a.port);
    const key = onB('c/tls/');
    // Retried: a slot of a node that just joined may still be readied (TRYAGAIN).
    await eventually('the forward over TLS succeeds', async () => (await plain.set(key, 'over-tls').catch((e: Error) => e.message)) === 'OK', 10_000);
    assert.equal(await plain.get(key), 'over-tls');
    const bKeys = await client(b.port).keys('c/tls/*');
    assert.deepEqual(bKeys, [key], 'the forwarded write is held by the owner');
    const info = (await plain.info('cluster')) as string;
    assert.match(info, /cluster_forward_errors:0/);
    // Factor 2, sync: the answer waits for the replica (the other node), over a TLS link.
    const direct = client(b.port);
    const rk = onB('r/tls/');
    assert.equal(await direct.set(rk, 'replicated'), 'OK');
    assert.equal(await direct.call('WAIT', '1', '2000'), 1, 'the replica acknowledged it');
    assert.deepEqual(await client(a.port).keys('r/tls/*'), [rk], 'the replica holds the copy');
  });

  test('/v1/cache over HTTPS reaches the owner through another node, trusting the certificate the nodes share', async () => {
    const [a, b] = nodes as [Node, Node];
    const map = await slotPorts(client(a.port));
    let key = '';
    for (let i = 0; key === ''; i++) if (map[keySlot(`c/https/${i}`)] === b.port) key = `c/https/${i}`;
    // The nodes run without NODE_EXTRA_CA_CERTS naming the shared certificate: a forward trusts what the RESP links trust.
    const put = await https(`${a.proc.url}/v1/cache/${key}`, ca, 'PUT', { value: 'via-a', ttl: 60 });
    assert.equal(put.status, 200, JSON.stringify(put.body));
    assert.deepEqual(await client(b.port).keys('c/https/*'), [key], 'the owner holds the value');
    const got = await https(`${a.proc.url}/v1/cache/${key}`, ca);
    assert.equal(got.status, 200, JSON.stringify(got.body));
    assert.equal((got.body as { value: string }).value, 'via-a');
  });

  test('a node with a certificate the others do not trust gets no forwards: TRYAGAIN names the failed check', async () => {
    const rogueCert = makeCert(tmp.dir, 'rogue');
    const rogue = await start(rogueCert);
    nodes.push(rogue);
    const [a] = nodes as [Node];
    // The rogue node's slots (once in the ring): a forward from a must fail its TLS check.
    const ctl = client(a.port);
    let map: Int32Array = new Int32Array(0);
    await eventually('the third node is in the ring', async () => (map = await slotPorts(ctl)).includes(rogue.port), 15_000);
    let key = '';
    for (let i = 0; key === ''; i++) if (map[keySlot(`c/rogue/${i}`)] === rogue.port) key = `c/rogue/${i}`;
    const err = await client(a.port).set(key, 'x').then(
      () => 'OK',
      (e: Error) => e.message,
    );
    assert.match(err, /^TRYAGAIN the node serving slot \d+ \(127\.0\.0\.1:\d+\) could not be used: .*(self.signed|certificate|verify)/i, err);
  });
});
