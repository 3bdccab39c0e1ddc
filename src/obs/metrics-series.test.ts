/** The held-series histogram and counter export exactly what prom-client's own would for the same observations. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Counter, Histogram, Registry } from 'prom-client';
import { SeriesCounter, SeriesHistogram } from './metrics.js';

const BUCKETS = [0.001, 0.01, 0.1, 1];
const OBSERVED: [Record<string, string>, number][] = [
  [{ method: 'GET', route: '/v1/kv/*', status: '200' }, 0.0004],
  [{ method: 'GET', route: '/v1/kv/*', status: '200' }, 0.001],
  [{ method: 'GET', route: '/v1/kv/*', status: '200' }, 0.05],
  [{ method: 'PUT', route: '/v1/kv/*', status: '409' }, 3],
  [{ method: 'GET', route: '/v1/kv/*', status: '200' }, 0.2],
];

async function exposition(held: boolean): Promise<string> {
  const registry = new Registry();
  const config = { name: 't_duration_seconds', help: 'h', labelNames: ['method', 'route', 'status'], buckets: BUCKETS, registers: [registry] };
  const cconfig = { name: 't_requests_total', help: 'c', labelNames: ['method', 'route', 'status'], registers: [registry] };
  if (held) {
    const h = new SeriesHistogram(config);
    const c = new SeriesCounter(cconfig);
    for (const [labels, v] of OBSERVED) {
      h.series(labels).observe(v);
      c.series(labels).value++;
    }
  } else {
    const h = new Histogram(config);
    const c = new Counter(cconfig);
    for (const [labels, v] of OBSERVED) {
      h.labels(labels).observe(v);
      c.labels(labels).inc();
    }
  }
  return registry.metrics();
}

test('held series export the same text and JSON as prom-client for the same observations', async () => {
  const ours = await exposition(true);
  assert.equal(ours, await exposition(false));
  assert.match(ours, /t_duration_seconds_bucket\{le="\+Inf",method="PUT",route="\/v1\/kv\/\*",status="409"\} 1/);
  assert.match(ours, /t_requests_total\{method="GET",route="\/v1\/kv\/\*",status="200"\} 4/);
});

test('reset zeroes held series, and a series is the same object for the same labels', async () => {
  const registry = new Registry();
  const h = new SeriesHistogram({ name: 'r_seconds', help: 'h', labelNames: ['a'], buckets: BUCKETS, registers: [registry] });
  const s = h.series({ a: 'x' });
  assert.equal(h.series({ a: 'x' }), s);
  s.observe(0.5);
  assert.match(await registry.metrics(), /r_seconds_count\{a="x"\} 1/);
  registry.resetMetrics();
  assert.doesNotMatch(await registry.metrics(), /r_seconds_count/);
  s.observe(0.5);
  assert.match(await registry.metrics(), /r_seconds_count\{a="x"\} 1/);
  const json = await registry.getMetricsAsJSON();
  const values = (json[0] as { values: { labels: Record<string, unknown>; value: number; metricName?: string }[] }).values;
  assert.deepEqual(values.find((v) => v.metricName === 'r_seconds_bucket' && v.labels.le === 1), { labels: { le: 1, a: 'x' }, value: 1, metricName: 'r_seconds_bucket', exemplar: null });
});
