// /v1/configs under contention and bad input, against a real node: concurrent writers expecting
// the same version (exactly one wins), rollback races, malformed requests (clear 400/413, nothing
// written) and versions lost to compaction (410).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { http, startTestNode } from '../helpers/node.js';

type TestNode = Awaited<ReturnType<typeof startTestNode>>;

const MAX_VALUE_BYTES = 4096;

describe('/v1/configs: conflicts and bad input', () => {
  let node: TestNode;
  let url: string;
  before(async () => {
    node = await startTestNode({ maxValueBytes: MAX_VALUE_BYTES });
    url = `${node.url}/v1/configs`;
  });
  after(async () => {
    await node.cleanup();
  });

  const revision = async (): Promise<number> => Number((await http(`${node.url}/v1/status`)).headers.get('x-beacon-revision'));

  it('of many concurrent PUTs expecting to create v2, exactly one wins', async () => {
    await http(`${url}/race.put`, { method: 'PUT', body: { value: 'base' } });
    const writers = Array.from({ length: 20 }, (_, i) => http(`${url}/race.put`, { method: 'PUT', body: { value: `writer ${i}`, version: 'v2' } }));
    const results = await Promise.all(writers);
    const winners = results.filter((r) => r.status === 200);
    const losers = results.filter((r) => r.status === 409);
    assert.equal(winners.length, 1);
    assert.equal(losers.length, 19);
    for (const l of losers) {
      assert.equal(l.body.error.code, 'conflict');
      assert.equal(l.body.error.details.expected, 'v2');
      assert.equal(l.body.error.details.current, 'v2');
    }
    const now = await http(`${url}/race.put`);
    assert.equal(now.body.version, 'v2');
    const winnerIndex = results.findIndex((r) => r.status === 200);
    assert.equal(now.body.value, `writer ${winnerIndex}`);
    assert.equal((await http(`${url}/race.put/history`)).body.versions.length, 2);
  });

  it('"v1" creates a config only when it does not exist; one of many creators wins', async () => {
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) => http(`${url}/race.create`, { method: 'PUT', body: { value: `c${i}`, version: 'v1' } })));
    assert.equal(results.filter((r) => r.status === 200).length, 1);
    const lost = results.find((r) => r.status === 409);
    assert.deepEqual(lost?.body.error.details, { key: 'race.create', expected: 'v1', current: 'v1' });
    const missing = await http(`${url}/race.absent`, { method: 'PUT', body: { value: 'x', version: 'v3' } });
    assert.equal(missing.status, 409);
    assert.deepEqual(missing.body.error.details, { key: 'race.absent', expected: 'v3', current: null });
    assert.equal((await http(`${url}/race.absent`)).status, 404);
  });

  it('a rollback racing with writes either applies on top of what it saw or is refused', async () => {
    await http(`${url}/race.rb`, { method: 'PUT', body: { value: 'one' } });
    await http(`${url}/race.rb`, { method: 'PUT', body: { value: 'two' } });
    // Several rollbacks all guarded on v2: one moves the config to v3, the others see it moved.
    const results = await Promise.all(
      Array.from({ length: 8 }, () => http(`${url}/race.rb/rollback`, { method: 'POST', body: { version: 'v1', expectedVersion: 'v2' } })),
    );
    assert.equal(results.filter((r) => r.status === 200).length, 1);
    for (const r of results.filter((x) => x.status !== 200)) {
      assert.equal(r.status, 409);
      assert.equal(r.body.error.code, 'conflict');
      assert.equal(r.body.error.details.expected, 'v2');
      assert.equal(r.body.error.details.current, 'v3');
    }
    // Unguarded rollbacks racing with a PUT: every answer matches what history recorded.
    const mixed = await Promise.all([
      http(`${url}/race.rb/rollback`, { method: 'POST', body: { version: 'v2' } }),
      http(`${url}/race.rb`, { method: 'PUT', body: { value: 'three' } }),
      http(`${url}/race.rb/rollback`, { method: 'POST', body: { version: 'v2' } }),
    ]);
    for (const r of mixed) assert.ok(r.status === 200 || r.status === 409, `status ${r.status}`);
    const hist = (await http(`${url}/race.rb/history`)).body.versions;
    for (const r of mixed.filter((x) => x.status === 200 && x.body.to_version !== undefined)) {
      const entry = hist.find((v: any) => v.version === r.body.to_version);
      assert.equal(entry.value, 'two');
      assert.equal(entry.event, 'config_rolled_back');
      assert.equal(entry.revision, r.body.revision);
    }
    const versions = hist.map((v: any) => Number(v.version.slice(1)));
    assert.deepEqual(versions, Array.from({ length: versions.length }, (_, i) => versions.length - i));
  });

  it('answers 404 for unknown keys and versions, and rejects a stale expectedVersion', async () => {
    await http(`${url}/nf.key`, { method: 'PUT', body: { value: 'x' } });
    const cases: [string, string, unknown, number][] = [
      ['GET', `${url}/nf.nothing`, undefined, 404],
      ['GET', `${url}/nf.key?version=v2`, undefined, 404],
      ['GET', `${url}/nf.nothing/history`, undefined, 404],
      ['GET', `${url}/nf.nothing/diff?from=v1&to=v2`, undefined, 404],
      ['POST', `${url}/nf.key/rollback`, { version: 'v5' }, 404],
      ['POST', `${url}/nf.nothing/rollback`, { version: 'v1' }, 404],
      ['DELETE', `${url}/nf.nothing`, undefined, 404],
      ['POST', `${url}/nf.key`, { version: 'v1' }, 404],
      ['POST', `${url}/nf.key/rollback`, { version: 'v1', expectedVersion: 'v7' }, 409],
    ];
    const before = await revision();
    for (const [method, u, body, status] of cases) {
      const res = await http(u, { method, ...(body !== undefined ? { body } : {}) });
      assert.equal(res.status, status, `${method} ${u}: ${JSON.stringify(res.body)}`);
      assert.equal(res.body.error.code, status === 404 ? 'not_found' : 'conflict');
      assert.ok(res.body.error.message.length > 0);
    }
    assert.equal(await revision(), before, 'a refused request wrote something');
  });

  it('rejects malformed bodies, versions and parameters with 400 naming the problem, writing nothing', async () => {
    await http(`${url}/bad.key`, { method: 'PUT', body: { value: 'keep me' } });
    const before = await revision();
    const puts: [unknown, RegExp][] = [
      [{}, /'value' is required/],
      [{ version: 'v2' }, /'value' is required/],
      [{ value: null }, /'value'/],
      [{ value: 'x', extra: 1 }, /unknown field 'extra'/],
      [{ value: 'x', version: 2 }, /'version' must be a string/],
      [{ value: 'x', version: '2' }, /'version' must look like/],
      [{ value: 'x', version: 'vx' }, /'version' must look like/],
      [{ value: 'x', version: 'v0' }, /'version' must look like/],
      [[{ value: 'x' }], /must be a JSON object/],
      ['just a string', /must be a JSON object/],
    ];
    for (const [body, message] of puts) {
      const res = await http(`${url}/bad.key`, { method: 'PUT', body });
      assert.equal(res.status, 400, JSON.stringify(body));
      assert.equal(res.body.error.code, 'invalid_argument');
      assert.match(res.body.error.message, message);
    }
    const notJson = await http(`${url}/bad.key`, { method: 'PUT', raw: 'value=x', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    assert.equal(notJson.status, 400);
    assert.match(notJson.body.error.message, /JSON/);
    const brokenJson = await http(`${url}/bad.key`, { method: 'PUT', raw: '{"value": ', headers: { 'content-type': 'application/json' } });
    assert.equal(brokenJson.status, 400);
    const noBody = await http(`${url}/bad.key`, { method: 'PUT' });
    assert.equal(noBody.status, 400);

    const rollbacks: [unknown, RegExp][] = [
      [{}, /'version'.*required/],
      [{ version: 1 }, /'version' must be a string/],
      [{ version: 'v1', extra: true }, /unknown field 'extra'/],
      [{ version: 'v1', expectedVersion: 'two' }, /'expectedVersion' must look like/],
    ];
    for (const [body, message] of rollbacks) {
      const res = await http(`${url}/bad.key/rollback`, { method: 'POST', body });
      assert.equal(res.status, 400, JSON.stringify(body));
      assert.match(res.body.error.message, message);
    }
    const queries = [
      `${url}/bad.key?version=1`,
      `${url}/bad.key/diff?from=v0`,
      `${url}/bad.key/diff?to=latest`,
      `${url}/bad.key/diff`, // v1 has no earlier version to diff against
      `${url}/bad.key/history?limit=-1`,
      `${url}/bad.key/history?continue=not-a-token`,
      `${url}?prefix=bad.&continue=eyJrIjoxfQ`,
      `${url}/bad.key?consistency=sometimes`,
    ];
    for (const q of queries) {
      const res = await http(q);
      assert.equal(res.status, 400, q);
      assert.equal(res.body.error.code, 'invalid_argument', q);
    }
    assert.equal(await revision(), before, 'a rejected request wrote something');
    const still = await http(`${url}/bad.key`);
    assert.equal(still.body.value, 'keep me');
    assert.equal(still.body.version, 'v1');
  });

  it('refuses oversized values with 413 and keeps the old version', async () => {
    await http(`${url}/big.key`, { method: 'PUT', body: { value: 'small' } });
    const before = await revision();
    const tooBig = await http(`${url}/big.key`, { method: 'PUT', body: { value: 'x'.repeat(MAX_VALUE_BYTES + 1) } });
    assert.equal(tooBig.status, 413);
    assert.equal(tooBig.body.error.code, 'too_large');
    const hugeObject = await http(`${url}/big.key`, { method: 'PUT', body: { value: { blob: 'y'.repeat(MAX_VALUE_BYTES) } } });
    assert.equal(hugeObject.status, 413);
    // Past the HTTP body limit the request is refused before it is parsed.
    const hugeBody = await http(`${url}/big.key`, { method: 'PUT', body: { value: 'z'.repeat(200 * 1024) } });
    assert.equal(hugeBody.status, 413);
    assert.equal(await revision(), before);
    assert.equal((await http(`${url}/big.key`)).body.value, 'small');
  });

  it('answers 410 for a version lost to compaction, while later versions stay readable', async () => {
    for (const v of ['c1', 'c2', 'c3']) await http(`${url}/compact.key`, { method: 'PUT', body: { value: v } });
    const head = await revision();
    const compact = await http(`${node.url}/v1/compact`, { method: 'POST', body: { revision: head } });
    assert.equal(compact.status, 200);
    await http(`${url}/compact.key`, { method: 'PUT', body: { value: 'c4' } });

    const v1 = await http(`${url}/compact.key?version=v1`);
    assert.equal(v1.status, 410);
    assert.equal(v1.body.error.code, 'compacted');
    assert.equal(v1.body.error.details.compactRevision, head);
    // v3 was the latest at the compact revision, so it survives; v4 is newer.
    assert.equal((await http(`${url}/compact.key?version=v3`)).body.value, 'c3');
    assert.equal((await http(`${url}/compact.key/rollback`, { method: 'POST', body: { version: 'v1' } })).status, 410);
    const hist = await http(`${url}/compact.key/history`);
    assert.deepEqual(hist.body.versions.map((v: any) => v.version), ['v4', 'v3']);
    assert.equal(hist.body.compact_revision, head);
    const d = await http(`${url}/compact.key/diff?from=v3&to=v4`);
    assert.equal(d.status, 200);
    assert.equal((await http(`${url}/compact.key/diff?from=v2&to=v4`)).status, 410);
  });
});
