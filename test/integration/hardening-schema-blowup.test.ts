// Issue 9 finding 6 (the rest): beyond ReDoS and recursive $ref, two more schemas made every
// write block the node. `{"uniqueItems": true}` compared every pair of object items (100 KB of
// distinct objects took 11 s, 1 MiB about half an hour), and a small schema whose definitions
// reuse each other (`allOf` of the same `$ref` several times, a few levels deep) expanded to
// hundreds of thousands of subschemas checked on every write. uniqueItems now runs in linear
// time, and such a schema is refused (400, the limit named) when it is set.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { http, startTestNode } from '../helpers/node.js';

type TestNode = Awaited<ReturnType<typeof startTestNode>>;

describe('hardening: schemas whose checks blow up (issue 9 finding 6)', () => {
  let node: TestNode;
  before(async () => {
    node = await startTestNode();
  });
  after(async () => {
    await node.cleanup();
  });

  it('uniqueItems over ~1 MiB of distinct objects is checked without blocking the node, and still catches a duplicate', async () => {
    assert.equal((await http(`${node.url}/v1/namespaces/uniq/`, { method: 'PUT', body: { schema: { type: 'array', uniqueItems: true } } })).status, 201);
    const items = Array.from({ length: 80_000 }, (_, i) => ({ a: i }));
    const ok = await http(`${node.url}/v1/configs/uniq/big`, { method: 'PUT', body: { value: items } });
    assert.equal(ok.status, 200, JSON.stringify(ok.body).slice(0, 300));
    // Equal as JSON whatever the key order: a duplicate.
    const dup = await http(`${node.url}/v1/configs/uniq/dup`, { method: 'PUT', body: { value: [{ a: 1, b: [1, { c: 2 }] }, { x: 0 }, { b: [1, { c: 2 }], a: 1 }] } });
    assert.equal(dup.status, 400);
    assert.equal(dup.body.error.details.violations[0].keyword, 'uniqueItems');
    assert.equal((await http(`${node.url}/v1/configs/uniq/fine`, { method: 'PUT', body: { value: [1, '1', [1], { a: 1 }, { a: '1' }] } })).status, 200);
  });

  it('a schema whose $refs fan out to hundreds of thousands of subschemas is refused when it is set', async () => {
    const defs: Record<string, unknown> = {};
    for (let i = 0; i < 6; i++) defs[`d${i}`] = { allOf: Array.from({ length: 8 }, () => ({ $ref: `#/$defs/d${i + 1}` })) };
    defs.d6 = { type: 'object', properties: { x: { type: 'string' } } };
    const res = await http(`${node.url}/v1/namespaces/fan/`, { method: 'PUT', body: { schema: { $defs: defs, $ref: '#/$defs/d0' } } });
    assert.equal(res.status, 400, JSON.stringify(res.body));
    assert.equal(res.body.error.code, 'invalid_argument');
    assert.equal(res.body.error.details.limit, 10_000);
    assert.equal((await http(`${node.url}/v1/configs/fan/x`, { method: 'PUT', body: { value: { x: 1 } } })).status, 200, 'no policy was stored');
    // Reusing a definition a few times is fine.
    defs.d0 = { allOf: [{ $ref: '#/$defs/d6' }, { $ref: '#/$defs/d6' }] };
    const small = await http(`${node.url}/v1/namespaces/fan/`, { method: 'PUT', body: { schema: { $defs: { d0: defs.d0, d6: defs.d6 }, $ref: '#/$defs/d0' } } });
    assert.equal(small.status, 201, JSON.stringify(small.body));
    assert.equal((await http(`${node.url}/v1/configs/fan/y`, { method: 'PUT', body: { value: { x: 1 } } })).status, 400);
  });
});
