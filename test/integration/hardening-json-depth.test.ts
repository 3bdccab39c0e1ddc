// Issue 9 findings 7 and 6 (schema size): JSON nested ~5,000 deep answered 500 on configs PUT,
// on namespace schemas and on diff (the stack overflowed in JSON.stringify, ajv and the
// structural diff). Nesting is now capped (512 for values the node parses, 64 for schemas,
// `--max-json-depth` / `--max-schema-depth`) and so is a schema's size (256 KiB,
// `--max-schema-bytes`): past a limit the answer is 400 invalid_argument naming it. Deep JSON
// stored as raw bytes through /v1/kv is read and diffed as text, never a 500.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { CLI, http, startTestNode } from '../helpers/node.js';

const run = promisify(execFile);
type TestNode = Awaited<ReturnType<typeof startTestNode>>;

/** `{"a":{"a":…1…}}` nested `n` objects deep, as text (built without recursion). */
const deepText = (n: number): string => `${'{"a":'.repeat(n)}1${'}'.repeat(n)}`;
/** A JSON Schema nested `n` objects deep: `{"items":{"items":…{}}}` (any object is valid). */
const deepSchema = (n: number): string => `${'{"items":'.repeat(n - 1)}{}${'}'.repeat(n - 1)}`;

/** PUT with a raw JSON body (deep JSON cannot go through JSON.stringify in the test either). */
async function putRaw(url: string, body: string): Promise<{ status: number; body: any }> {
  const res = await fetch(url, { method: 'PUT', headers: { 'content-type': 'application/json' }, body });
  return { status: res.status, body: await res.json() };
}

function assertLimit(res: { status: number; body: any }, limit: number, flag: string): void {
  assert.equal(res.status, 400, JSON.stringify(res.body).slice(0, 300));
  assert.equal(res.body.error.code, 'invalid_argument');
  assert.equal(res.body.error.details.limit, limit);
  assert.ok(res.body.error.message.includes(String(limit)) && res.body.error.message.includes(flag), res.body.error.message);
}

describe('hardening: deep JSON and large schemas (issue 9 findings 6, 7)', () => {
  let node: TestNode;
  before(async () => {
    node = await startTestNode();
  });
  after(async () => {
    await node.cleanup();
  });

  it('a config value nested 5,000 deep is refused with 400 naming the limit; 512 is accepted', async () => {
    assertLimit(await putRaw(`${node.url}/v1/configs/deep/x`, `{"value":${deepText(5000)}}`), 512, '--max-json-depth');
    assertLimit(await putRaw(`${node.url}/v1/configs/deep/x`, `{"value":${deepText(513)}}`), 512, '--max-json-depth');
    const ok = await putRaw(`${node.url}/v1/configs/deep/x`, `{"value":${deepText(512)}}`);
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    const read = await http(`${node.url}/v1/configs/deep/x`);
    assert.equal(read.status, 200);
    assert.equal(typeof read.body.value, 'object', 'a value within the limit reads back as JSON');
    const metrics = await (await fetch(`${node.url}/metrics`)).text();
    assert.match(metrics, /beacon_json_limit_rejections_total\{limit="max_json_depth"\} 2/);
  });

  it('a namespace schema nested 5,000 deep, or through a long $ref chain, is refused with 400; 64 is accepted', async () => {
    assertLimit(await putRaw(`${node.url}/v1/namespaces/s1/`, `{"schema":${deepSchema(5000)}}`), 64, '--max-schema-depth');
    assertLimit(await putRaw(`${node.url}/v1/namespaces/s1/`, `{"schema":${deepSchema(65)}}`), 64, '--max-schema-depth');
    const defs: Record<string, unknown> = {};
    for (let i = 0; i < 3000; i++) defs[`d${i}`] = { $ref: `#/$defs/d${i + 1}` };
    defs.d3000 = { type: 'string' };
    const chain = await http(`${node.url}/v1/namespaces/s1/`, { method: 'PUT', body: { schema: { $defs: defs, $ref: '#/$defs/d0' } } });
    assertLimit(chain, 64, '--max-schema-depth');
    const ok = await putRaw(`${node.url}/v1/namespaces/s1/`, `{"schema":${deepSchema(64)}}`);
    assert.equal(ok.status, 201, JSON.stringify(ok.body).slice(0, 300));
    assert.equal((await http(`${node.url}/v1/configs/s1/x`, { method: 'PUT', body: { value: { a: 1 } } })).status, 200, 'writes keep working');
  });

  it('a schema over 256 KiB is refused with 400 naming the limit', async () => {
    const big = { type: 'object', description: 'x'.repeat(300 * 1024) };
    assertLimit(await http(`${node.url}/v1/namespaces/big/`, { method: 'PUT', body: { schema: big } }), 256 * 1024, '--max-schema-bytes');
    const fits = await http(`${node.url}/v1/namespaces/big/`, { method: 'PUT', body: { schema: { type: 'object', description: 'x'.repeat(200 * 1024) } } });
    assert.equal(fits.status, 201);
  });

  it('a deep value written to a json namespace through /v1/kv is refused with 400', async () => {
    assert.equal((await http(`${node.url}/v1/namespaces/js/`, { method: 'PUT', body: { schema: { type: 'object' } } })).status, 201);
    assertLimit(await http(`${node.url}/v1/kv/js/x`, { method: 'PUT', body: { value: deepText(5000) } }), 512, '--max-json-depth');
    assertLimit(await http(`${node.url}/v1/txn`, { method: 'POST', body: { success: [{ put: { key: 'js/y', value: deepText(5000) } }] } }), 512, '--max-json-depth');
  });

  it('deep JSON stored as raw bytes reads, lists history and diffs as text, never a 500', async () => {
    assert.equal((await http(`${node.url}/v1/kv/raw/x`, { method: 'PUT', body: { value: deepText(5000) } })).status, 200);
    assert.equal((await http(`${node.url}/v1/kv/raw/x`, { method: 'PUT', body: { value: deepText(5001) } })).status, 200);
    const read = await http(`${node.url}/v1/configs/raw/x`);
    assert.equal(read.status, 200);
    assert.equal(read.body.value, deepText(5001), 'too deep to parse: the text as stored');
    assert.equal((await http(`${node.url}/v1/configs/raw/x/history`)).status, 200);
    const diff = await http(`${node.url}/v1/configs/raw/x/diff`);
    assert.equal(diff.status, 200, JSON.stringify(diff.body).slice(0, 300));
    assert.equal(diff.body.format, 'text');
  });

  it('the limits are node options (flags of beacon serve)', async () => {
    const small = await startTestNode({ maxJsonDepth: 8, maxSchemaDepth: 4, maxSchemaBytes: 1000 });
    try {
      assertLimit(await putRaw(`${small.url}/v1/configs/a`, `{"value":${deepText(9)}}`), 8, '--max-json-depth');
      assert.equal((await putRaw(`${small.url}/v1/configs/a`, `{"value":${deepText(8)}}`)).status, 200);
      assertLimit(await putRaw(`${small.url}/v1/namespaces/n/`, `{"schema":${deepSchema(5)}}`), 4, '--max-schema-depth');
      assertLimit(await http(`${small.url}/v1/namespaces/n/`, { method: 'PUT', body: { schema: { description: 'x'.repeat(1000) } } }), 1000, '--max-schema-bytes');
    } finally {
      await small.cleanup();
    }
    const help = await run(process.execPath, [CLI, 'serve', '--help'], { timeout: 30_000 });
    for (const flag of ['--max-json-depth', '--max-schema-depth', '--max-schema-bytes']) assert.ok(help.stdout.includes(flag), `${flag} in serve --help`);
    await assert.rejects(run(process.execPath, [CLI, 'serve', '--dev', '--http-port', '0', '--max-json-depth', '100000'], { timeout: 30_000 }), /max-json-depth/);
  });
});
