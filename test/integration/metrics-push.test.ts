/**
 * Metrics pushes against a real node over HTTP: the seed's JSON, Prometheus text, remote write,
 * every bad-input case of issue 12 (each refused whole, the node staying up), permissions and the
 * per-principal sample rate limit.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import snappy from 'snappyjs';
import { encodeRemoteWrite } from '../../src/obs/ingest/index.js';
import { http, startTestNode } from '../helpers/node.js';
import { client, login, startSecureNode, ADMIN_PASSWORD, userToken } from './security-helpers.js';

type Node = Awaited<ReturnType<typeof startTestNode>>;

async function instant(url: string, query: string, headers: Record<string, string> = {}) {
  return http(`${url}/api/v1/query?query=${encodeURIComponent(query)}`, { headers });
}

function text(url: string, body: string, headers: Record<string, string> = {}) {
  return http(`${url}/v1/metrics`, { method: 'POST', raw: body, headers: { 'content-type': 'text/plain; version=0.0.4', ...headers } });
}

describe('metrics pushes (dev node)', () => {
  let node: Node;
  before(async () => {
    node = await startTestNode({ metricsStore: { selfScrapeIntervalMs: 0, maxSeriesPerPush: 10_000 } });
  });
  after(async () => node.cleanup());

  it("stores the seed's JSON metric as api_latency, pushed as curl -d sends it", async () => {
    // curl -d sends application/x-www-form-urlencoded: the body is still taken as JSON.
    const res = await http(`${node.url}/v1/metrics`, {
      method: 'POST',
      raw: '{"name":"api.latency","value":500,"labels":{"endpoint":"/users"}}',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.deepEqual(res.body, { samples: 1, series: 1, newSeries: 1 });
    const q = await instant(node.url, 'avg(api_latency) > 400');
    assert.equal(q.status, 200);
    assert.equal(q.body.data.resultType, 'vector');
    assert.equal(q.body.data.result[0].value[1], '500');
  });

  it('takes an array with timestamps (ms and RFC 3339) and queries it back', async () => {
    const t = Date.now() - 60_000;
    const res = await http(`${node.url}/v1/metrics`, {
      method: 'POST',
      body: [
        { name: 'orders.count', value: 1, labels: { shop: 'a' }, timestamp: t },
        { name: 'orders.count', value: 2, labels: { shop: 'a' }, timestamp: new Date(t + 15_000).toISOString() },
        { name: 'orders.count', value: 7, labels: { shop: 'b' }, timestamp: t },
      ],
    });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.samples, 3);
    const q = await instant(node.url, `orders_count{shop="a"}[5m]`);
    assert.deepEqual(q.body.data.result[0].values.map((v: [number, string]) => v[1]), ['1', '2']);
  });

  it('takes Prometheus text with and without timestamps, NaN and Inf included', async () => {
    const t = Date.now() - 30_000;
    const res = await text(
      node.url,
      `# HELP jobs_total Jobs.\n# TYPE jobs_total counter\njobs_total{queue="q1",msg="a \\"quoted\\" \\\\ value"} 10 ${t}\njobs_total{queue="q2"} 3\ntemp NaN\nlimit +Inf\n`,
    );
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.samples, 4);
    const q = await http(`${node.url}/api/v1/series?match[]=jobs_total`);
    assert.deepEqual(q.body.data.map((s: Record<string, string>) => s.queue).sort(), ['q1', 'q2']);
    assert.ok(q.body.data.some((s: Record<string, string>) => s.msg === 'a "quoted" \\ value'));
    const lim = await instant(node.url, 'limit');
    assert.equal(lim.body.data.result[0].value[1], '+Inf');
  });

  it('takes remote write 1.0 (snappy + protobuf) with 204', async () => {
    const t = Date.now() - 10_000;
    const body = encodeRemoteWrite([
      { labels: [{ name: '__name__', value: 'rw_metric' }, { name: 'job', value: 'rw' }], samples: [{ value: 1.5, timestamp: t }, { value: 2.5, timestamp: t + 1000 }] },
    ]);
    const res = await http(`${node.url}/api/v1/write`, { method: 'POST', raw: Buffer.from(body), headers: { 'content-type': 'application/x-protobuf', 'content-encoding': 'snappy' } });
    assert.equal(res.status, 204);
    const q = await instant(node.url, 'rw_metric');
    assert.equal(q.body.data.result[0].value[1], '2.5');
  });

  it("keeps Prometheus's stale marker sent by remote write: the series ends at once", async () => {
    const t = Date.now() - 20_000;
    const staleValue = new Float64Array(new Uint32Array([2, 0x7ff00000]).buffer)[0] as number; // 0x7ff0000000000002
    const body = encodeRemoteWrite([
      { labels: [{ name: '__name__', value: 'rw_gone' }], samples: [{ value: 1, timestamp: t }, { value: staleValue, timestamp: t + 10_000 }] },
      { labels: [{ name: '__name__', value: 'rw_kept' }], samples: [{ value: 1, timestamp: t }, { value: Number.NaN, timestamp: t + 10_000 }] },
    ]);
    const res = await http(`${node.url}/api/v1/write`, { method: 'POST', raw: Buffer.from(body), headers: { 'content-type': 'application/x-protobuf' } });
    assert.equal(res.status, 204);
    assert.equal((await instant(node.url, 'rw_gone')).body.data.result.length, 0, 'stale: no value within the 5-minute lookback');
    assert.equal((await instant(node.url, 'rw_kept')).body.data.result[0].value[1], 'NaN', 'an ordinary NaN is a value');
  });

  it('refuses malformed JSON and text whole, with the reason and the line', async () => {
    const before = node.metricsStore.tsdb.seriesCount;
    const bad = await http(`${node.url}/v1/metrics`, { method: 'POST', raw: '{"name":"x","value":', headers: { 'content-type': 'application/json' } });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error.code, 'invalid_argument');
    const wrongType = await http(`${node.url}/v1/metrics`, { method: 'POST', body: [{ name: 'ok_one', value: 1 }, { name: 'bad', value: 'high' }] });
    assert.equal(wrongType.status, 400);
    assert.match(wrongType.body.error.message, /\[1\]\.value/);
    const badText = await text(node.url, 'good_one 1\ngood_two{a="b"} 2\nbroken{a="b" 3\n');
    assert.equal(badText.status, 400);
    assert.match(badText.body.error.message, /line 3/);
    const badName = await http(`${node.url}/v1/metrics`, { method: 'POST', body: { name: '9lives', value: 1 } });
    assert.equal(badName.status, 400);
    const badLabel = await text(node.url, 'm{__bad="x"} 1\n');
    assert.equal(badLabel.status, 400);
    assert.equal(node.metricsStore.tsdb.seriesCount, before, 'nothing of a refused push was stored');
    assert.equal((await instant(node.url, 'good_one')).body.data.result.length, 0);
  });

  it('refuses a series with 1,000 labels', async () => {
    const labels: Record<string, string> = {};
    for (let i = 0; i < 1000; i++) labels[`l${i}`] = 'v';
    const res = await http(`${node.url}/v1/metrics`, { method: 'POST', body: { name: 'wide', value: 1, labels } });
    assert.equal(res.status, 413);
    assert.match(res.body.error.message, /1001 labels; the limit is 64/);
  });

  it('refuses 10^6 new series in one push, stays up and keeps its memory', async () => {
    const lines: string[] = [];
    for (let i = 0; i < 1_000_000; i++) lines.push(`card{i="${i}"} 1`);
    const before = node.metricsStore.tsdb.seriesCount;
    const res = await text(node.url, lines.join('\n'));
    assert.equal(res.status, 413, JSON.stringify(res.body));
    assert.match(res.body.error.message, /more than 10000 new series/);
    assert.equal(node.metricsStore.tsdb.seriesCount, before);
    assert.equal((await http(`${node.url}/healthz`)).status, 200);
  });

  it('refuses a remote-write body that is not snappy, or not the protobuf', async () => {
    const notSnappy = await http(`${node.url}/api/v1/write`, { method: 'POST', raw: Buffer.from('plain text, not snappy'), headers: { 'content-type': 'application/x-protobuf' } });
    assert.equal(notSnappy.status, 400);
    assert.match(notSnappy.body.error.message, /not snappy/);
    const notProto = await http(`${node.url}/api/v1/write`, {
      method: 'POST',
      raw: Buffer.from(snappy.compress(Buffer.from([0x0a, 0xff, 0xff, 0xff, 0x0f, 0x01]))),
      headers: { 'content-type': 'application/x-protobuf' },
    });
    assert.equal(notProto.status, 400);
    assert.match(notProto.body.error.message, /not a protobuf WriteRequest/);
  });

  it('refuses out-of-order samples beyond the window and different duplicates', async () => {
    const t = Date.now();
    assert.equal((await http(`${node.url}/v1/metrics`, { method: 'POST', body: { name: 'ooo', value: 1, timestamp: t } })).status, 200);
    const late = await http(`${node.url}/v1/metrics`, { method: 'POST', body: { name: 'ooo', value: 2, timestamp: t - 3_600_000 } });
    assert.equal(late.status, 400);
    assert.match(late.body.error.message, /out of order sample/);
    const dup = await http(`${node.url}/v1/metrics`, { method: 'POST', body: { name: 'ooo', value: 3, timestamp: t } });
    assert.match(dup.body.error.message, /duplicate sample/);
    const inWindow = await http(`${node.url}/v1/metrics`, { method: 'POST', body: { name: 'ooo', value: 4, timestamp: t - 60_000 } });
    assert.equal(inWindow.status, 200, 'a minute late is inside the default 10-minute window');
  });

  it("answers query errors in Prometheus's shape, a syntax error with its position", async () => {
    const res = await instant(node.url, 'sum(rate(x[5m])');
    assert.equal(res.status, 400);
    assert.equal(res.body.status, 'error');
    assert.equal(res.body.errorType, 'bad_data');
    assert.match(res.body.error, /^1:\d+: parse error/);
    const range = await http(`${node.url}/api/v1/query_range?query=up&start=10&end=5&step=1`);
    assert.equal(range.body.errorType, 'bad_data');
    const post = await http(`${node.url}/api/v1/query`, { method: 'POST', raw: 'query=api_latency', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    assert.equal(post.body.data.result[0].metric.endpoint, '/users');
    const build = await http(`${node.url}/api/v1/status/buildinfo`);
    assert.equal(build.body.status, 'success');
    assert.equal(typeof build.body.data.version, 'string');
  });
});

describe('metrics permissions and rate limit (authentication on)', () => {
  let node: Node;
  let admin: string;
  before(async () => {
    node = await startSecureNode({ metricsStore: { selfScrapeIntervalMs: 0, samplesPerSecond: 10 } });
    admin = await login(node.url, 'admin', ADMIN_PASSWORD);
  });
  after(async () => node.cleanup());

  it('lets a viewer query but not push, and a service key with write on @metrics push and nothing else', async () => {
    const viewer = await userToken(node.url, admin, 'vera', ['viewer']);
    const v = client(node.url, viewer);
    assert.equal((await v('/api/v1/query?query=up')).status, 200);
    const denied = await v('/v1/metrics', { method: 'POST', body: { name: 'x', value: 1 } });
    assert.equal(denied.status, 403);
    const a = client(node.url, admin);
    assert.equal((await a('/v1/roles/metrics-pusher', { method: 'PUT', body: { permissions: [{ prefix: '@metrics', access: 'write' }] } })).status, 201);
    const key = await a('/v1/apikeys', { method: 'POST', body: { name: 'billing-service', roles: ['metrics-pusher'] } });
    assert.equal(key.status, 201, JSON.stringify(key.body));
    const k = (path: string, init: Parameters<typeof http>[1] = {}) => http(`${node.url}${path}`, { ...init, headers: { 'x-api-key': key.body.key as string } });
    const pushed = await k('/v1/metrics', { method: 'POST', body: { name: 'billing.invoices', value: 3 } });
    assert.equal(pushed.status, 200, JSON.stringify(pushed.body));
    // The grant reaches metrics only: keys stay closed to the service.
    assert.equal((await k('/v1/kv/some/key')).status, 403);
    assert.equal((await http(`${node.url}/api/v1/query?query=up`)).status, 401, 'no credential, no query');
  });

  it('limits samples per second per principal with 429 and Retry-After', async () => {
    const a = client(node.url, admin);
    const many = Array.from({ length: 30 }, (_, i) => ({ name: 'rl', value: i, labels: { i: String(i) } }));
    assert.equal((await a('/v1/metrics', { method: 'POST', body: many })).status, 200, 'a push larger than the bucket passes once');
    const next = await a('/v1/metrics', { method: 'POST', body: { name: 'rl2', value: 1 } });
    assert.equal(next.status, 429);
    assert.ok(Number(next.headers.get('retry-after')) >= 1);
  });
});
