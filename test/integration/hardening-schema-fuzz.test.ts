// Issue 9: fuzzed namespace schemas and values against a real node, as an administrator: random
// JSON Schemas (nesting, patterns including catastrophic ones, $ref/$defs chains and cycles,
// uniqueItems, huge numbers, non-objects) are each accepted (201/200) or refused with 400, never a
// 5xx; a value written under an accepted schema is stored (200) or refused (400); the node keeps
// answering /healthz within its budget. Seeded (BEACON_FUZZ_SEED) and bounded in time (~20 s).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import fc from 'fast-check';
import { ADMIN_PASSWORD, client, login, startSecureNode, type SecureNode } from './security-helpers.js';

const SEED = Number(process.env.BEACON_FUZZ_SEED ?? 20261206);
const BUDGET_MS = 20_000;
let node: SecureNode;
let admin: ReturnType<typeof client>;

before(async () => {
  node = await startSecureNode();
  admin = client(node.url, await login(node.url, 'admin', ADMIN_PASSWORD));
});

after(async () => {
  await node.cleanup();
});

const patterns = fc.constantFrom('^(a+)+$', '^(a|a)*$', '(x+x+)+y', '^[a-z]+$', '\\d{3}', '(?=a)', '\\1', '[', '.*', '^$');
const types = fc.constantFrom('object', 'array', 'string', 'number', 'integer', 'boolean', 'null', 'bogus');

/** A random JSON Schema of bounded size; `depth` bounds recursion, not the nesting the schema may claim via $ref. */
const schema: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  node: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.record({ type: types }, { requiredKeys: [] }),
    fc.record({ type: fc.constant('string'), pattern: patterns, maxLength: fc.integer({ min: -1, max: 100 }) }, { requiredKeys: ['pattern'] }),
    fc.record({ type: fc.constant('array'), items: tie('node'), uniqueItems: fc.boolean() }, { requiredKeys: ['items'] }),
    fc.record(
      { type: fc.constant('object'), properties: fc.dictionary(fc.string({ maxLength: 4 }), tie('node'), { maxKeys: 3 }), required: fc.array(fc.string({ maxLength: 4 }), { maxLength: 2 }) },
      { requiredKeys: ['properties'] },
    ),
    fc.record({ $ref: fc.constantFrom('#', '#/$defs/a', '#/$defs/missing', 'http://example.com/s.json', '#/properties/x') }),
    fc.record({ anyOf: fc.array(tie('node'), { minLength: 1, maxLength: 3 }) }),
    fc.record({ $defs: fc.record({ a: tie('node'), b: fc.record({ $ref: fc.constantFrom('#/$defs/a', '#/$defs/b') }) }), $ref: fc.constant('#/$defs/a') }),
    fc.constantFrom(true, false, null, 42, 'schema', [] as unknown),
    // Deep nesting, beyond --max-schema-depth.
    fc.integer({ min: 50, max: 400 }).map((n) => {
      let s: unknown = { type: 'string' };
      for (let i = 0; i < n; i++) s = { type: 'object', properties: { a: s } };
      return s;
    }),
  ),
})).node;

/** Values to write under the schema: small JSON documents, deep ones, and bytes that are not JSON. */
const value = fc.oneof(
  fc.json({ maxDepth: 4 }),
  fc.constantFrom('"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!"', '[1,1,1,1]', '{"a":{"a":{"a":"x"}}}', 'not json', ''),
  fc.integer({ min: 100, max: 3000 }).map((n) => '['.repeat(n) + ']'.repeat(n)),
);

test('fuzzed namespace schemas and values: accepted or 400, never a 5xx, the node keeps answering', async () => {
  const started = Date.now();
  let runs = 0;
  let accepted = 0;
  await fc.assert(
    fc.asyncProperty(schema, fc.array(value, { minLength: 1, maxLength: 3 }), async (s, values) => {
      if (Date.now() - started > BUDGET_MS) return;
      runs++;
      const prefix = `fuzz${runs}/`;
      const put = await admin(`/v1/namespaces/${prefix}`, { method: 'PUT', body: { format: 'json', schema: s } });
      assert.ok(put.status === 201 || put.status === 200 || put.status === 400, `namespace PUT answered ${put.status}: ${JSON.stringify(put.body)}`);
      if (put.status === 400) {
        assert.equal(put.body.error.code, 'invalid_argument');
        return;
      }
      accepted++;
      for (const v of values) {
        const res = await admin(`/v1/kv/${prefix}k`, { method: 'PUT', raw: Buffer.from(v), headers: { 'content-type': 'application/octet-stream' } });
        assert.ok(res.status === 200 || res.status === 400, `value PUT answered ${res.status}: ${JSON.stringify(res.body)}`);
      }
    }),
    { seed: SEED, numRuns: 300, endOnFailure: true },
  );
  assert.ok(runs > 10, `only ${runs} runs`);
  assert.ok(accepted > 0, 'some schemas were accepted');
  assert.equal((await fetch(`${node.url}/healthz`)).status, 200);
});
