// SDK against a real node in process (real HTTP, real WebSocket through `ws`).
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { freePort, startTestNode, tempDir } from '../test/helpers/node.js';
import {
  CompactedError,
  Compare,
  ConflictError,
  ErrorCode,
  InvalidArgumentError,
  NotFoundError,
  Op,
  UnavailableError,
  createClient,
  type BeaconClient,
  type Watch,
  type WatchEvent,
} from './index.js';

type TestNode = Awaited<ReturnType<typeof startTestNode>>;

/** Collects `n` events from a watch, failing after `ms`. */
async function take(w: Watch, n: number, ms = 5000): Promise<WatchEvent[]> {
  const got: WatchEvent[] = [];
  const it = w[Symbol.asyncIterator]();
  const deadline = Date.now() + ms;
  while (got.length < n) {
    const left = deadline - Date.now();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const r = await Promise.race([
      it.next(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`only ${got.length} of ${n} events within ${ms} ms`)), Math.max(0, left));
      }),
    ]).finally(() => clearTimeout(timer));
    if (r.done) break;
    got.push(r.value);
  }
  return got;
}

/** Waits until the watch reports it is live (so that writes after this are seen). */
function watching(onStatus: (cb: () => void) => void): Promise<void> {
  return new Promise((resolve) => onStatus(resolve));
}

describe('SDK: keys, ranges, txns', () => {
  let node: TestNode;
  let client: BeaconClient;
  before(async () => {
    node = await startTestNode();
    client = createClient({ endpoint: node.url, timeoutMs: 5000 });
  });
  after(async () => {
    client.close();
    await node.cleanup();
  });

  it('puts and gets text and bytes, returning both forms', async () => {
    const p = await client.put('t/text', 'héllo');
    const g = await client.get('t/text');
    assert.equal(g.kv.text, 'héllo');
    assert.deepEqual([...g.kv.value], [...new TextEncoder().encode('héllo')]);
    assert.equal(g.kv.modRevision, p.revision);
    assert.equal(g.kv.version, 1);

    const bin = new Uint8Array([0, 255, 1, 254, 128]);
    await client.put('t/bin', bin);
    const b = await client.get('t/bin');
    assert.equal(b.kv.text, undefined, 'bytes that are not UTF-8 have no text');
    assert.deepEqual([...b.kv.value], [...bin]);

    const second = await client.put('t/text', 'again', { prevKv: true });
    assert.equal(second.prevKv?.text, 'héllo');
    assert.equal((await client.get('t/text', { revision: p.revision })).kv.text, 'héllo', 'reads at an older revision');
  });

  it('takes the largest timeout a timer can hold (2^31 − 1 ms) without failing at once', async () => {
    const patient = createClient({ endpoint: node.url, timeoutMs: 2 ** 31 - 1 });
    await patient.put('sdk/patient', 'yes');
    assert.equal((await patient.get('sdk/patient')).kv.text, 'yes');
  });

  it('round-trips keys that need escaping in a URL, including . and ..', async () => {
    const keys = ['sp ace/q?x#y%z', 'a/../b', 'a/./b', '..', '.', 'ünï/☃', 'trailing/', '/leading', 'a//b'];
    for (const key of keys) {
      await client.put(key, `v:${key}`);
      assert.equal((await client.get(key)).kv.text, `v:${key}`, key);
    }
    const listed = new Set<string>();
    for await (const kv of client.scan('')) listed.add(kv.key);
    for (const key of keys) assert.ok(listed.has(key), `${key} listed under its own name`);
    for (const key of keys) assert.equal((await client.delete(key)).deleted, 1, key);
  });

  it('throws typed errors: NotFoundError for a missing key, InvalidArgumentError for bad input', async () => {
    await assert.rejects(client.get('no/such/key'), (err: unknown) => err instanceof NotFoundError && err.code === ErrorCode.NotFound);
    await assert.rejects(client.delete('', { prefix: true }), InvalidArgumentError);
    await assert.rejects(client.put('k', 'v', { lease: 424242 }), NotFoundError);
  });

  it('pages through a prefix at one pinned revision', async () => {
    for (let i = 0; i < 25; i++) await client.put(`page/${String(i).padStart(2, '0')}`, String(i));
    const first = await client.range('page/', { limit: 10 });
    assert.equal(first.kvs.length, 10);
    assert.equal(first.count, 25);
    assert.equal(first.more, true);
    assert.ok(first.continue);
    const seen: string[] = [];
    let pinned = 0;
    for await (const kv of client.scan('page/', { pageSize: 7, onFirstPage: (i) => (pinned = i.revision) })) {
      seen.push(kv.key);
      // A write in the middle of the listing must not show up in it.
      if (seen.length === 8) await client.put('page/99-late', 'x');
    }
    assert.equal(seen.length, 25);
    assert.deepEqual(seen, [...seen].sort());
    assert.ok(!seen.includes('page/99-late'));
    assert.ok(pinned > 0);
    const del = await client.delete('page/', { prefix: true, prevKv: true });
    assert.equal(del.deleted, 26);
    assert.equal(del.prevKvs?.length, 26);
  });

  it('runs txns from the builder and from a plain request', async () => {
    const ok = await client.txn().if(Compare.version('txn/lock', '=', 0)).then(Op.put('txn/lock', 'me'), Op.get('txn/lock')).else(Op.get('txn/lock')).commit();
    assert.equal(ok.succeeded, true);
    const read = ok.results[1];
    assert.equal(read?.type, 'range');
    assert.equal(read?.type === 'range' ? read.kvs[0]?.text : undefined, 'me', 'a read sees the earlier write of the same txn');

    const again = await client.txn({
      compare: [Compare.version('txn/lock', '=', 0)],
      success: [Op.put('txn/lock', 'other')],
      failure: [Op.get('txn/lock')],
    });
    assert.equal(again.succeeded, false);
    assert.equal(again.results[0]?.type === 'range' ? again.results[0].kvs[0]?.text : undefined, 'me');

    const bytes = new Uint8Array([0xff, 0xfe]);
    await client.txn().then(Op.put('txn/bin', bytes)).commit();
    const cas = await client.txn().if(Compare.value('txn/bin', '=', bytes)).then(Op.delete('txn/', { prefix: true })).commit();
    assert.equal(cas.succeeded, true, 'a compare on binary values works');
    assert.equal(cas.results[0]?.type === 'delete' ? cas.results[0].deleted : -1, 2);
  });

  it('compacts, and reads below the compact revision fail with CompactedError', async () => {
    const a = await client.put('cmp/k', '1');
    await client.put('cmp/k', '2');
    const res = await client.compact(a.revision + 1);
    assert.equal(res.compactRevision, a.revision + 1);
    await assert.rejects(client.get('cmp/k', { revision: a.revision }), (err: unknown) => err instanceof CompactedError && err.compactRevision === a.revision + 1);
    const status = await client.status();
    assert.equal(status.compactRevision, a.revision + 1);
    assert.ok(status.revision >= a.revision + 1);
  });

  it('downloads a snapshot as a stream of bytes of the announced size', async () => {
    await client.put('snap/k', 'v');
    const status = await client.status();
    const snap = await client.snapshot();
    let size = 0;
    let head = '';
    for await (const chunk of snap.chunks) {
      if (head === '') head = new TextDecoder('latin1').decode(chunk.subarray(0, 15));
      size += chunk.byteLength;
    }
    assert.equal(head, 'SQLite format 3');
    assert.equal(size, snap.size);
    assert.equal(snap.revision, status.revision);
  });
});

describe('SDK: leases and configs', () => {
  let node: TestNode;
  let client: BeaconClient;
  before(async () => {
    node = await startTestNode();
    client = createClient({ endpoint: node.url });
  });
  after(async () => node.cleanup());

  it('grants, attaches, renews, lists and revokes leases', async () => {
    const lease = await client.lease.grant(30);
    assert.equal(lease.ttl, 30);
    await client.put('lease/a', '1', { lease: lease.id });
    const info = await client.lease.timeToLive(lease.id);
    assert.deepEqual(info.keys, ['lease/a']);
    assert.ok(info.ttl > 0 && info.ttl <= 30);
    assert.ok((await client.lease.list()).some((l) => l.id === lease.id && l.keys === 1));
    assert.equal((await client.lease.keepAlive(lease.id)).ttl, 30);

    const ac = new AbortController();
    const renewals: number[] = [];
    for await (const r of client.lease.keepAliveLoop(lease.id, { signal: ac.signal, intervalMs: 20 })) {
      renewals.push(r.ttl);
      if (renewals.length === 3) ac.abort();
    }
    assert.deepEqual(renewals, [30, 30, 30], 'the loop ends quietly on abort');

    await client.lease.revoke(lease.id);
    await assert.rejects(client.get('lease/a'), NotFoundError, 'revoking deletes the attached keys');
    await assert.rejects(client.lease.revoke(lease.id), NotFoundError);
    await assert.rejects(client.lease.keepAlive(lease.id), NotFoundError);
  });

  it('writes configs and reads their history, diff and rollback', async () => {
    const v1 = await client.configs.put('svc/config', { db: { host: 'a', pool: 5 } });
    assert.equal(v1.version, 'v1');
    await client.configs.put('svc/config', { db: { host: 'b', pool: 5 } });
    await client.configs.put('svc/config', { db: { host: 'c' } }, { expectVersion: 'v3' });
    await assert.rejects(client.configs.put('svc/config', { x: 1 }, { expectVersion: 3 }), ConflictError);

    const cur = await client.configs.get('svc/config');
    assert.equal(cur.version, 'v3');
    assert.deepEqual(cur.value, { db: { host: 'c' } });
    assert.deepEqual((await client.configs.get('svc/config', { version: 1 })).value, { db: { host: 'a', pool: 5 } });

    const d = await client.configs.diff('svc/config', { from: 'v1', to: 'v3' });
    assert.equal(d.format, 'json');
    assert.deepEqual(
      d.changes.map((c) => [c.path, c.op]),
      [
        ['/db/host', 'changed'],
        ['/db/pool', 'removed'],
      ],
    );

    const rb = await client.configs.rollback('svc/config', 'v1');
    assert.deepEqual([rb.fromVersion, rb.toVersion, rb.restoredVersion], ['v3', 'v4', 'v1']);
    const versions = [];
    for await (const v of client.configs.historyAll('svc/config', { pageSize: 2 })) versions.push(v.version);
    assert.deepEqual(versions, ['v4', 'v3', 'v2', 'v1'], 'every page, newest first');
    await assert.rejects(client.configs.get('svc/none'), NotFoundError);
    await assert.rejects(client.configs.diff('svc/config', { from: 'one' }), InvalidArgumentError);
  });
});

describe('SDK: transport failures', () => {
  it('reports a refused connection as UnavailableError naming the endpoint', async () => {
    const endpoint = `http://127.0.0.1:${await freePort()}`;
    const client = createClient({ endpoint });
    await assert.rejects(client.get('k'), (err: unknown) => err instanceof UnavailableError && err.message.includes(endpoint) && /refused/.test(err.message));
  });

  it('gives up after timeoutMs with UnavailableError, and honours an abort signal', async () => {
    const hang: Server = createServer(() => undefined); // accepts and never answers
    await new Promise<void>((r) => hang.listen(0, '127.0.0.1', r));
    try {
      const client = createClient({ endpoint: `http://127.0.0.1:${(hang.address() as AddressInfo).port}`, timeoutMs: 150 });
      const started = Date.now();
      await assert.rejects(client.status(), (err: unknown) => err instanceof UnavailableError && err.details?.timeoutMs === 150);
      assert.ok(Date.now() - started < 2000);
      const ac = new AbortController();
      setTimeout(() => ac.abort(), 50);
      await assert.rejects(createClient({ endpoint: client.endpoint, timeoutMs: 0 }).status({ signal: ac.signal }), { name: 'AbortError' });
    } finally {
      hang.closeAllConnections();
      await new Promise<void>((r) => hang.close(() => r()));
    }
  });

  it('times out each hung request of a burst and aborts it at the server, while the burst’s quick requests succeed', async () => {
    // Requests started together share one deadline (client/deadlines.ts): the hung ones must still
    // each fail after their own timeout and have their connections closed, the answered ones must not notice.
    const closed: string[] = [];
    const server: Server = createServer((req, res) => {
      if (req.url?.includes('slow')) {
        res.on('close', () => closed.push(req.url ?? ''));
        return; // never answers
      }
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ revision: 7, kv: { key: 'fast', value: 'v', createRevision: 7, modRevision: 7, version: 1, lease: 0 } }));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const client = createClient({ endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, timeoutMs: 300, retry: false, healthCheck: false });
      const started = Date.now();
      const outcomes = await Promise.allSettled(
        Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? client.get(`fast/${i}`) : client.get(`slow/${i}`).finally(() => assert.ok(Date.now() - started >= 300)))),
      );
      const fast = outcomes.filter((_, i) => i % 2 === 0);
      const slow = outcomes.filter((_, i) => i % 2 === 1);
      for (const o of fast) assert.equal(o.status === 'fulfilled' ? o.value.kv.text : o.reason, 'v');
      for (const o of slow) assert.ok(o.status === 'rejected' && o.reason instanceof UnavailableError && o.reason.details?.timeoutMs === 300, String(o.status === 'rejected' ? o.reason : 'answered'));
      assert.ok(Date.now() - started < 2000);
      // The timeout aborted the requests themselves: the server sees each hung connection closed.
      const until = Date.now() + 2000;
      while (closed.length < slow.length && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
      assert.equal(closed.length, slow.length);
      client.close();
    } finally {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    }
  });

  it('rejects an endpoint that is not an http URL', () => {
    assert.throws(() => createClient({ endpoint: '127.0.0.1:7379' }), InvalidArgumentError);
  });
});

describe('SDK: watch', () => {
  let node: TestNode;
  let client: BeaconClient;
  before(async () => {
    node = await startTestNode();
    client = createClient({ endpoint: node.url });
  });
  after(async () => {
    client.close();
    await node.cleanup();
  });

  it('yields puts and deletes in order, with prevKv, and ends on stop()', async () => {
    let live!: () => void;
    const ready = watching((cb) => (live = cb));
    const w = client.watch('w1/', { prefix: true, prevKv: true, onStatus: (s) => s.state === 'watching' && live() });
    await ready;
    const a = await client.put('w1/a', '1');
    await client.put('w1/a', '2');
    await client.put('other', 'x');
    await client.delete('w1/a');
    const evs = await take(w, 3);
    assert.deepEqual(
      evs.map((e) => [e.type, e.kv.key, e.kv.text, e.prevKv?.text]),
      [
        ['put', 'w1/a', '1', undefined],
        ['put', 'w1/a', '2', '1'],
        ['delete', 'w1/a', '', '2'],
      ],
    );
    assert.deepEqual(
      evs.map((e) => e.revision),
      [a.revision, a.revision + 1, a.revision + 3],
    );
    assert.equal(w.lastRevision, a.revision + 3);
    const pending = w[Symbol.asyncIterator]().next();
    w.stop();
    assert.deepEqual(await pending, { done: true, value: undefined });
  });

  it('replays history from fromRevision and ends when its signal aborts', async () => {
    const first = await client.put('w2/k', 'a');
    await client.put('w2/k', 'b');
    const ac = new AbortController();
    const w = client.watch('w2/k', { fromRevision: first.revision, signal: ac.signal });
    const evs = await take(w, 2);
    assert.deepEqual(
      evs.map((e) => e.kv.text),
      ['a', 'b'],
    );
    ac.abort();
    assert.deepEqual(await w[Symbol.asyncIterator]().next(), { done: true, value: undefined });
  });

  it('fails with CompactedError when asked for compacted history', async () => {
    const a = await client.put('w3/k', 'a');
    await client.put('w3/k', 'b');
    await client.compact(a.revision + 1);
    const w = client.watch('w3/k', { fromRevision: a.revision });
    await assert.rejects(take(w, 1), (err: unknown) => err instanceof CompactedError && err.compactRevision === a.revision + 1);
  });

  it('fails with UnavailableError when the first connection cannot be made', async () => {
    const c = createClient({ endpoint: `http://127.0.0.1:${await freePort()}`, timeoutMs: 2000 });
    await assert.rejects(take(c.watch('k'), 1), UnavailableError);
  });
});

describe('SDK: watch across a server restart', () => {
  it('resumes from lastRevision + 1: nothing missed, nothing twice', async () => {
    const tmp = tempDir();
    let node = await startTestNode({ dataDir: tmp.dir });
    const port = node.port;
    const client = createClient({ endpoint: node.url });
    const statuses: string[] = [];
    let live!: () => void;
    const ready = watching((cb) => (live = cb));
    // A long first back-off, so that writes land while the watch is disconnected.
    const w = client.watch('r/', {
      prefix: true,
      reconnect: { initialDelayMs: 400, maxDelayMs: 400 },
      onStatus: (s) => {
        statuses.push(s.state);
        if (s.state === 'watching') live();
      },
    });
    try {
      await ready;
      const r1 = await client.put('r/1', 'a');
      assert.deepEqual((await take(w, 1)).map((e) => e.revision), [r1.revision]);
      await node.stop();
      node = await startTestNode({ dataDir: tmp.dir, httpPort: port });
      const r2 = await client.put('r/2', 'b'); // written before the watch is back
      const evs = await take(w, 1);
      const r3 = await client.put('r/3', 'c');
      evs.push(...(await take(w, 1)));
      assert.deepEqual(
        evs.map((e) => [e.kv.key, e.revision]),
        [
          ['r/2', r2.revision],
          ['r/3', r3.revision],
        ],
      );
      assert.ok(statuses.includes('reconnecting'));
      assert.equal(w.lastRevision, r3.revision);
    } finally {
      w.stop();
      await node.stop();
      tmp.cleanup();
    }
  });
});
