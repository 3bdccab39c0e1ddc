// Issue 9 finding 6: a namespace schema must not hang or break the node. A catastrophic
// backtracking pattern is matched by a linear-time engine (re2js), and a recursive or
// unresolvable `$ref` is refused when the schema is set (400 invalid_argument with its path).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { http, startTestNode } from '../helpers/node.js';

type TestNode = Awaited<ReturnType<typeof startTestNode>>;

describe('hardening: schema ReDoS and recursive $ref (issue 9 finding 6)', () => {
  let node: TestNode;
  before(async () => {
    node = await startTestNode();
  });
  after(async () => {
    await node.cleanup();
  });

  it('a pattern like ^(a+)+$ does not block the node', async () => {
    const set = await http(`${node.url}/v1/namespaces/redos/`, { method: 'PUT', body: { schema: { type: 'object', properties: { s: { type: 'string', pattern: '^(a+)+$' } } } } });
    assert.ok(set.status === 200 || set.status === 201, JSON.stringify(set.body));
    // 40 a's and a b: a backtracking engine takes hours here; RE2 answers at once.
    const put = await http(`${node.url}/v1/configs/redos/x`, { method: 'PUT', body: { value: { s: `${'a'.repeat(40)}b` } } });
    assert.equal(put.status, 400);
    assert.equal(put.body.error.code, 'invalid_argument');
    assert.equal(put.body.error.details.violations[0].keyword, 'pattern');
    const ok = await http(`${node.url}/v1/configs/redos/y`, { method: 'PUT', body: { value: { s: 'aaaa' } } });
    assert.equal(ok.status, 200);
  });

  for (const [name, schema, path] of [
    ['a self reference', { $ref: '#' }, '/$ref'],
    ['a cycle through $defs', { $defs: { a: { $ref: '#/$defs/b' }, b: { properties: { x: { $ref: '#/$defs/a' } } } }, $ref: '#/$defs/a' }, undefined],
    ['an unresolvable reference', { properties: { x: { $ref: '#/$defs/missing' } } }, '/properties/x/$ref'],
    ['a remote reference', { $ref: 'https://example.com/schema.json' }, '/$ref'],
    ['a backreference RE2 cannot run', { type: 'string', pattern: '(a)\\1' }, undefined],
  ] as const) {
    it(`refuses ${name} when the schema is set, and writes keep working`, async () => {
      const res = await http(`${node.url}/v1/namespaces/refs/`, { method: 'PUT', body: { schema } });
      assert.equal(res.status, 400, JSON.stringify(res.body));
      assert.equal(res.body.error.code, 'invalid_argument');
      if (path !== undefined) assert.equal(res.body.error.details.path, path);
      const put = await http(`${node.url}/v1/configs/refs/x`, { method: 'PUT', body: { value: { a: 1 } } });
      assert.equal(put.status, 200);
    });
  }

  it('a non-recursive $ref to $defs still works', async () => {
    const schema = { $defs: { port: { type: 'integer', minimum: 1 } }, type: 'object', properties: { a: { $ref: '#/$defs/port' }, b: { $ref: '#/$defs/port' } } };
    const res = await http(`${node.url}/v1/namespaces/okrefs/`, { method: 'PUT', body: { schema } });
    assert.ok(res.status === 200 || res.status === 201, JSON.stringify(res.body));
    assert.equal((await http(`${node.url}/v1/configs/okrefs/x`, { method: 'PUT', body: { value: { a: 1, b: 2 } } })).status, 200);
    assert.equal((await http(`${node.url}/v1/configs/okrefs/x`, { method: 'PUT', body: { value: { a: 0 } } })).status, 400);
  });
});
