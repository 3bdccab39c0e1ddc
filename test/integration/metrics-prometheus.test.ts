/**
 * Beacon next to a real Prometheus (Debian `prometheus`, started here on a free port): Prometheus
 * remote-writes its own series to Beacon, `promtool query` runs against Beacon's API, `beacon
 * query` prints them, and a scrape target of `--scrape-config` that vanishes goes stale at once.
 */
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { CLI, freePort, http, spawnServer, tempDir, type ServerProcess } from '../helpers/node.js';

const run = promisify(execFile);

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

async function instant(url: string, query: string): Promise<{ metric: Record<string, string>; value: [number, string] }[]> {
  const res = await http(`${url}/api/v1/query?query=${encodeURIComponent(query)}`);
  if (res.status !== 200) throw new Error(`query ${query}: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body.data.result;
}

describe('Beacon with a real Prometheus', () => {
  const tmp = tempDir('beacon-prom-');
  let beacon: ServerProcess;
  let prom: ChildProcess;
  let promPort: number;
  let target: Server;
  let targetPort: number;
  let targetBody = 'target_metric{kind="a"} 1\ntarget_metric{kind="b"} 2\n';

  before(async () => {
    targetPort = await freePort();
    target = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
      res.end(targetBody);
    });
    await new Promise<void>((r) => target.listen(targetPort, '127.0.0.1', r));
    const scrape = join(tmp.dir, 'scrape.yml');
    writeFileSync(scrape, `scrape_configs:\n  - job_name: target\n    scrape_interval: 1s\n    scrape_timeout: 1s\n    static_configs:\n      - targets: ['127.0.0.1:${targetPort}']\n`);
    beacon = await spawnServer(['--data-dir', join(tmp.dir, 'beacon'), '--scrape-config', scrape]);
    promPort = await freePort();
    const promConfig = join(tmp.dir, 'prometheus.yml');
    writeFileSync(
      promConfig,
      [
        'global:',
        '  scrape_interval: 1s',
        'scrape_configs:',
        '  - job_name: prometheus',
        `    static_configs: [{targets: ['127.0.0.1:${promPort}']}]`,
        '  - job_name: beacon_via_prometheus',
        `    static_configs: [{targets: ['127.0.0.1:${beacon.port}']}]`,
        'remote_write:',
        `  - url: ${beacon.url}/api/v1/write`,
        '    queue_config: {batch_send_deadline: 1s, min_backoff: 100ms, max_backoff: 1s}',
        '',
      ].join('\n'),
    );
    prom = spawn('prometheus', [`--config.file=${promConfig}`, `--web.listen-address=127.0.0.1:${promPort}`, `--storage.tsdb.path=${join(tmp.dir, 'prom-data')}`], {
      stdio: 'ignore',
    });
  });

  after(async () => {
    if (prom?.pid !== undefined && prom.exitCode === null) {
      prom.kill('SIGKILL');
      await new Promise((r) => prom.once('exit', r));
    }
    await beacon?.stop();
    await new Promise((r) => target?.close(r));
    tmp.cleanup();
  });

  it("receives Prometheus's own series by remote write and answers queries over them", async () => {
    const build = await waitFor('prometheus_build_info in Beacon', async () => {
      const r = await instant(beacon.url, 'prometheus_build_info{job="prometheus"}');
      return r.length > 0 ? r : undefined;
    });
    assert.equal(build[0]?.metric.instance, `127.0.0.1:${promPort}`);
    assert.match(build[0]?.metric.version ?? '', /^2\./);
    // Prometheus's scrape of Beacon may land in a later remote-write batch than its own series.
    const up = await waitFor('up of the beacon_via_prometheus job in Beacon', async () => {
      const r = await instant(beacon.url, 'up{job="beacon_via_prometheus"}');
      return r.length > 0 ? r : undefined;
    });
    assert.equal(up[0]?.value[1], '1', 'Prometheus scraped Beacon and wrote the result back to it');
  });

  it('answers promtool query instant and range against Beacon', async () => {
    const expr = 'rate(beacon_http_requests_total[5m])';
    const out = await waitFor('a non-empty promtool answer', async () => {
      const { stdout } = await run('promtool', ['query', 'instant', `http://127.0.0.1:${beacon.port}`, expr], { timeout: 30_000 });
      return /route="\/metrics"/.test(stdout) ? stdout : undefined;
    });
    assert.match(out, /job="beacon_via_prometheus"/);
    assert.match(out, /=> \d/);
    const now = Math.floor(Date.now() / 1000);
    const { stdout: range } = await run(
      'promtool',
      ['query', 'range', `--start=${now - 60}`, `--end=${now}`, '--step=5s', `http://127.0.0.1:${beacon.port}`, `sum by (job) (${expr})`],
      { timeout: 30_000 },
    );
    assert.match(range, /\{job="beacon_via_prometheus"\} =>/);
    assert.match(range, /@\[/);
    const bad = await run('promtool', ['query', 'instant', `http://127.0.0.1:${beacon.port}`, 'rate(x[5m]'], { timeout: 30_000 }).then(
      () => '',
      (err: { stderr?: string }) => err.stderr ?? 'failed',
    );
    assert.match(bad, /bad_data|parse error/);
  });

  it('prints a table and JSON from beacon query', async () => {
    const { stdout } = await run(process.execPath, [CLI, '--endpoint', beacon.url, 'query', 'up{job="prometheus"}'], { timeout: 30_000 });
    assert.match(stdout, /SERIES\s+VALUE/);
    assert.match(stdout, /up\{instance="127\.0\.0\.1:\d+", job="prometheus"\}\s+1/);
    const { stdout: json } = await run(process.execPath, [CLI, '--endpoint', beacon.url, '--json', 'query', 'up{job="prometheus"}', '--range', '1m', '--step', '10s'], { timeout: 30_000 });
    const data = JSON.parse(json) as { resultType: string; result: { values: unknown[] }[] };
    assert.equal(data.resultType, 'matrix');
    assert.ok((data.result[0]?.values.length ?? 0) >= 1);
    const bad = await run(process.execPath, [CLI, '--endpoint', beacon.url, 'query', 'sum('], { timeout: 30_000 }).then(
      () => ({ code: 0, stderr: '' }),
      (err: { code: number; stderr: string }) => err,
    );
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /bad_data: 1:5: parse error/);
  });

  it('marks a vanished series and a vanished target stale at once (not 5 minutes later)', async () => {
    await waitFor('both target series', async () => ((await instant(beacon.url, 'target_metric')).length === 2 ? true : undefined));
    assert.equal((await instant(beacon.url, 'up{job="target"}'))[0]?.value[1], '1');
    targetBody = 'target_metric{kind="a"} 1\n'; // series b vanishes
    await waitFor('series b to go stale', async () => ((await instant(beacon.url, 'target_metric')).length === 1 ? true : undefined), 15_000);
    await new Promise<void>((r) => {
      target.close(() => r());
      target.closeAllConnections();
    });
    const down = await waitFor('up == 0', async () => ((await instant(beacon.url, 'up{job="target"} == 0')).length === 1 ? true : undefined), 15_000);
    assert.ok(down);
    assert.equal((await instant(beacon.url, 'target_metric')).length, 0, 'every series of the vanished target is stale');
    const dur = await instant(beacon.url, 'scrape_duration_seconds{job="target"}');
    assert.equal(dur.length, 1);
  });
});
