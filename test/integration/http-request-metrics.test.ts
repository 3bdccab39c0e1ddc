// The per-request HTTP machinery after the GET path was trimmed (issue 17): request metrics are
// recorded per route with the route's own labels (HEAD included, unmatched routes counted as
// 'unmatched'), the request log line of an error answer still carries its request id, and the
// synchronous head read answers the same as the async reads (404, bad query, linearizable, ?rev).
import assert from 'node:assert/strict';
import { statfsSync } from 'node:fs';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { http, startTestNode } from '../helpers/node.js';

type TestNode = Awaited<ReturnType<typeof startTestNode>>;

/** The value of one sample line of /metrics (0 when absent). */
async function sample(url: string, name: string, labels: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}}`));
  return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1));
}

describe('HTTP request metrics and the head read', () => {
  let node: TestNode;
  const logLines: string[] = [];

  before(async () => {
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        logLines.push(...chunk.toString('utf8').split('\n').filter((l) => l !== ''));
        done();
      },
    });
    node = await startTestNode({ logger: pino({ level: 'info' }, sink) });
    assert.equal((await http(`${node.url}/v1/kv/m/a`, { method: 'PUT', body: { value: 'one' } })).status, 200);
    assert.equal((await http(`${node.url}/v1/kv/m/a`, { method: 'PUT', body: { value: 'two' } })).status, 200);
  });

  after(async () => {
    await node.cleanup();
  });

  it('counts each request under its route, method and status, in the counter and the histogram alike', async () => {
    const ok = 'method="GET",route="/v1/kv/*",status="200"';
    const missing = 'method="GET",route="/v1/kv/*",status="404"';
    const head = 'method="HEAD",route="/v1/kv/*",status="200"';
    const unmatched = 'method="GET",route="unmatched",status="404"';
    const before0 = await Promise.all([ok, missing, head, unmatched].map((l) => sample(node.url, 'beacon_http_requests_total', l)));
    for (let i = 0; i < 3; i++) assert.equal((await http(`${node.url}/v1/kv/m/a`)).status, 200);
    assert.equal((await http(`${node.url}/v1/kv/m/none`)).status, 404);
    assert.equal((await fetch(`${node.url}/v1/kv/m/a`, { method: 'HEAD' })).status, 200);
    assert.equal((await http(`${node.url}/no/such/route`)).status, 404);
    const after0 = await Promise.all([ok, missing, head, unmatched].map((l) => sample(node.url, 'beacon_http_requests_total', l)));
    assert.deepEqual(
      after0.map((v, i) => v - (before0[i] as number)),
      [3, 1, 1, 1],
    );
    // The histogram counts the same requests as the counter.
    for (const l of [ok, missing, head, unmatched]) {
      assert.equal(await sample(node.url, 'beacon_http_request_duration_seconds_count', l), await sample(node.url, 'beacon_http_requests_total', l), l);
    }
  });

  it("exports the data directory's file system size and free bytes, as df reads them (the BeaconStorageFull rule's input)", async () => {
    const text = await (await fetch(`${node.url}/metrics`)).text();
    const value = (name: string): number => Number(/^(\S+) (\S+)$/m.exec(text.split('\n').find((l) => l.startsWith(`${name} `)) ?? '')?.[2]);
    const capacity = value('beacon_data_dir_capacity_bytes');
    const free = value('beacon_data_dir_free_bytes');
    const st = statfsSync(node.dataDir);
    assert.equal(capacity, st.blocks * st.bsize);
    assert.ok(free > 0 && free <= capacity, `free ${free} of ${capacity}`);
    assert.ok(Math.abs(free - st.bavail * st.bsize) < 64 * 1024 * 1024, 'free bytes as statfs reads them, within what other writers changed meanwhile');
  });

  it('logs an error answer with its request id', async () => {
    const res = await fetch(`${node.url}/v1/kv/m/absent`, { headers: { 'x-request-id': 'req-metrics-test-1' } });
    assert.equal(res.status, 404);
    assert.equal(res.headers.get('x-request-id'), 'req-metrics-test-1');
    const line = logLines.map((l) => JSON.parse(l) as Record<string, unknown>).find((o) => o.reqId === 'req-metrics-test-1');
    assert.ok(line, 'a log line with the request id');
    assert.equal(line.status, 404);
    assert.equal(line.msg, 'request answered with an error');
  });

  it('gives a request without a usable x-request-id a fresh one, and logs it', async () => {
    const ids: string[] = [];
    for (const given of [undefined, 'bad id with spaces', 'x'.repeat(129)]) {
      const res = await fetch(`${node.url}/v1/kv/m/absent`, given === undefined ? {} : { headers: { 'x-request-id': given } });
      assert.equal(res.status, 404);
      const id = res.headers.get('x-request-id') ?? '';
      assert.match(id, /^[0-9a-f]{12}-[0-9a-z]+$/, 'a node prefix and a counter');
      ids.push(id);
      const line = logLines.map((l) => JSON.parse(l) as Record<string, unknown>).find((o) => o.reqId === id);
      assert.ok(line, `a log line with the generated id ${id}`);
    }
    assert.equal(new Set(ids).size, ids.length, 'every generated id is new');
    assert.equal(new Set(ids.map((i) => i.split('-')[0])).size, 1, 'one prefix per node start');
  });

  it('answers the head read, a linearizable read and a read at a revision alike', async () => {
    const head = await http(`${node.url}/v1/kv/m/a`);
    assert.equal(head.status, 200);
    assert.equal(head.body.kv.value, 'two');
    assert.equal(head.headers.get('x-beacon-revision'), String(head.body.revision));
    const lin = await http(`${node.url}/v1/kv/m/a?consistency=linearizable`);
    assert.equal(lin.status, 200);
    assert.deepEqual(lin.body, head.body);
    const old = await http(`${node.url}/v1/kv/m/a?rev=${head.body.kv.modRevision - 1}`);
    assert.equal(old.status, 200);
    assert.equal(old.body.kv.value, 'one');
    const bad = await http(`${node.url}/v1/kv/m/a?consistency=eventual`);
    assert.equal(bad.status, 400);
    assert.match(bad.body.error.message, /consistency/);
    const none = await http(`${node.url}/v1/kv/m/none`);
    assert.equal(none.status, 404);
    assert.equal(none.body.error.code, 'not_found');
  });
});
