// The JSON of /v1/kv reads, which the server assembles from each kv's cached text (issue 17,
// range speed): the bytes a client receives are exactly JSON.stringify of the documented shape
// (field order included), for text, binary (base64) and non-ASCII values, leased keys, pages with
// a continuation, keysOnly and single-key reads; and a key written, deleted or re-leased since
// the last read is never answered from an older text.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { http, startTestNode } from '../helpers/node.js';

type TestNode = Awaited<ReturnType<typeof startTestNode>>;

/** GET as raw text: the exact bytes, and the parsed body. */
async function raw(url: string): Promise<{ status: number; text: string; body: any; type: string | null }> {
  const res = await fetch(url);
  const text = await res.text();
  return { status: res.status, text, body: JSON.parse(text), type: res.headers.get('content-type') };
}

describe('kv reads: JSON assembled from cached texts', () => {
  let node: TestNode;
  let lease = 0;

  before(async () => {
    node = await startTestNode();
    const put = (key: string, body: unknown) => http(`${node.url}/v1/kv/${key}`, { method: 'PUT', body });
    assert.equal((await put('r/a', { value: 'plain text' })).status, 200);
    assert.equal((await put('r/b', { value: Buffer.from([0xff, 0x00, 0x80, 0x7f]).toString('base64'), encoding: 'base64' })).status, 200);
    assert.equal((await put('r/c', { value: 'naïve ☃ "quoted" \\ back\nslash' })).status, 200);
    const g = await http(`${node.url}/v1/leases`, { method: 'POST', body: { ttl: 60 } });
    assert.equal(g.status, 201, JSON.stringify(g.body));
    lease = Number(g.body.id);
    assert.equal((await put('r/d', { value: 'leased', lease })).status, 200);
    for (let i = 0; i < 5; i++) assert.equal((await put(`r/e${i}`, { value: `v${i}` })).status, 200);
  });

  after(async () => {
    await node.cleanup();
  });

  it('answers a range with exactly the documented JSON, field order included', async () => {
    const r = await raw(`${node.url}/v1/kv/r/?prefix=true`);
    assert.equal(r.status, 200);
    assert.equal(r.type, 'application/json; charset=utf-8');
    assert.deepEqual(Object.keys(r.body), ['revision', 'kvs', 'count', 'more']);
    assert.equal(r.text, JSON.stringify(r.body), 'no whitespace or escaping that JSON.stringify would not produce');
    assert.equal(r.body.count, 9);
    assert.equal(r.body.more, false);
    const byKey = new Map(r.body.kvs.map((kv: { key: string }) => [kv.key, kv]));
    assert.deepEqual(Object.keys(byKey.get('r/a') as object), ['key', 'createRevision', 'modRevision', 'version', 'lease', 'value']);
    assert.deepEqual(byKey.get('r/b'), { ...(byKey.get('r/b') as object), value: '/wCAfw==', encoding: 'base64' });
    assert.equal((byKey.get('r/c') as { value: string }).value, 'naïve ☃ "quoted" \\ back\nslash');
    assert.equal((byKey.get('r/d') as { lease: number }).lease, lease);
    assert.deepEqual(
      r.body.kvs.map((kv: { key: string }) => kv.key),
      ['r/a', 'r/b', 'r/c', 'r/d', 'r/e0', 'r/e1', 'r/e2', 'r/e3', 'r/e4'],
    );
  });

  it('answers a one-key GET with the same kv JSON as the range, UTF-8 and escapes intact, and a content-length in bytes', async () => {
    const range = await raw(`${node.url}/v1/kv/r/?prefix=true`);
    for (const key of ['r/a', 'r/b', 'r/c', 'r/d']) {
      const res = await fetch(`${node.url}/v1/kv/${key}`);
      const bytes = Buffer.from(await res.arrayBuffer());
      assert.equal(res.status, 200, key);
      assert.equal(res.headers.get('content-type'), 'application/json; charset=utf-8');
      assert.equal(Number(res.headers.get('content-length')), bytes.length, `${key}: content-length counts bytes, not characters`);
      const text = bytes.toString('utf8');
      const body = JSON.parse(text) as { revision: number; kv: unknown };
      assert.equal(text, JSON.stringify(body));
      assert.deepEqual(Object.keys(body), ['revision', 'kv']);
      assert.equal(body.revision, range.body.revision);
      assert.deepEqual(body.kv, range.body.kvs.find((kv: { key: string }) => kv.key === key), key);
    }
  });

  it('answers an empty range, and a count-only one, with the same shape', async () => {
    for (const url of [`${node.url}/v1/kv/nothing/?prefix=true`, `${node.url}/v1/kv/r/?prefix=true&countOnly=true`, `${node.url}/v1/kv/nothing/?prefix=true&keysOnly=true`]) {
      const r = await raw(url);
      assert.equal(r.status, 200, url);
      assert.equal(r.text, JSON.stringify(r.body), url);
      assert.deepEqual(Object.keys(r.body), ['revision', 'kvs', 'count', 'more'], url);
      assert.deepEqual(r.body.kvs, [], url);
    }
    assert.equal((await raw(`${node.url}/v1/kv/r/?prefix=true&countOnly=true`)).body.count, 9);
  });

  it('pages with a continuation, and keysOnly leaves the values out', async () => {
    const p1 = await raw(`${node.url}/v1/kv/r/?prefix=true&limit=4`);
    assert.deepEqual(Object.keys(p1.body), ['revision', 'kvs', 'count', 'more', 'continue']);
    assert.equal(p1.text, JSON.stringify(p1.body));
    assert.equal(p1.body.more, true);
    const p2 = await raw(`${node.url}/v1/kv/r/?prefix=true&limit=10&continue=${encodeURIComponent(p1.body.continue)}`);
    assert.deepEqual(
      [...p1.body.kvs, ...p2.body.kvs].map((kv: { key: string }) => kv.key),
      ['r/a', 'r/b', 'r/c', 'r/d', 'r/e0', 'r/e1', 'r/e2', 'r/e3', 'r/e4'],
    );
    const k = await raw(`${node.url}/v1/kv/r/?prefix=true&keysOnly=true`);
    assert.equal(k.text, JSON.stringify(k.body));
    for (const kv of k.body.kvs) assert.deepEqual(Object.keys(kv), ['key', 'createRevision', 'modRevision', 'version', 'lease']);
  });

  it('never answers from an older text: a rewrite, a delete and a revoked lease show at once', async () => {
    const before1 = await raw(`${node.url}/v1/kv/r/?prefix=true`);
    const one = await raw(`${node.url}/v1/kv/r/a`);
    assert.equal(one.text, JSON.stringify(one.body));
    assert.deepEqual(Object.keys(one.body), ['revision', 'kv']);
    assert.equal(one.body.kv.value, 'plain text');

    assert.equal((await http(`${node.url}/v1/kv/r/a`, { method: 'PUT', body: { value: 'rewritten' } })).status, 200);
    assert.equal((await http(`${node.url}/v1/kv/r/e0`, { method: 'DELETE' })).status, 200);
    assert.equal((await http(`${node.url}/v1/leases/${lease}`, { method: 'DELETE' })).status, 200);

    const after1 = await raw(`${node.url}/v1/kv/r/?prefix=true`);
    const keys = after1.body.kvs.map((kv: { key: string }) => kv.key);
    assert.ok(!keys.includes('r/e0'), 'the deleted key is gone');
    assert.ok(!keys.includes('r/d'), "the revoked lease's key is gone");
    const a = after1.body.kvs.find((kv: { key: string }) => kv.key === 'r/a');
    assert.equal(a.value, 'rewritten');
    assert.equal(a.version, 2);
    assert.ok(after1.body.revision > before1.body.revision);
    const single = await raw(`${node.url}/v1/kv/r/a`);
    assert.equal(single.body.kv.value, 'rewritten');
    assert.equal(single.body.revision, after1.body.revision);
  });
});
