/**
 * `/api/v1/rules` and `/api/v1/alerts` against the real Prometheus (Debian `prometheus`) as the
 * oracle (issue 13: "Prometheus's shapes, so Grafana and promtool read them"): the same rule file
 * loaded by both, evaluated every second; the answers must have the same fields, types and
 * states, rule by rule and alert by alert (values that depend on timing are not compared).
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { freePort, http, spawnServer, tempDir, type ServerProcess } from '../helpers/node.js';

const RULES = `groups:
  - name: oracle
    interval: 1s
    rules:
      - record: oracle:one
        expr: vector(1)
      - alert: AlwaysFiring
        expr: vector(2) > 1
        labels:
          severity: page
        annotations:
          summary: 'value {{ $value }}'
      - alert: LongPending
        expr: vector(3)
        for: 1h
        keep_firing_for: 5m
      - alert: NeverFires
        expr: vector(0) > 1
`;

const skip = spawnSync('prometheus', ['--version']).error ? 'prometheus is not installed' : false;

/** The shape of a JSON value: object keys (sorted) with their shapes, array element shapes, or the type. */
function shape(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(shape);
  if (v !== null && typeof v === 'object') {
    const o: Record<string, unknown> = {};
    for (const k of Object.keys(v).sort()) o[k] = shape((v as Record<string, unknown>)[k]);
    return o;
  }
  return v === null ? 'null' : typeof v;
}

async function eventually<T>(what: string, fn: () => Promise<T | undefined>, ms = 30_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

interface PromRule {
  name: string;
  type: string;
  state?: string;
  health: string;
  labels: Record<string, string>;
  alerts?: { labels: Record<string, string>; annotations: Record<string, string>; state: string; value: string }[];
}

describe('/api/v1/rules and /api/v1/alerts match Prometheus', { skip }, () => {
  const tmp = tempDir();
  let prom: ChildProcess | undefined;
  let promUrl = '';
  let beacon: ServerProcess;

  before(async () => {
    const rules = join(tmp.dir, 'oracle.yml');
    writeFileSync(rules, RULES);
    const config = join(tmp.dir, 'prometheus.yml');
    writeFileSync(config, `global:\n  evaluation_interval: 1s\nrule_files: [${JSON.stringify(rules)}]\n`);
    const port = await freePort();
    promUrl = `http://127.0.0.1:${port}`;
    prom = spawn('prometheus', [`--config.file=${config}`, `--web.listen-address=127.0.0.1:${port}`, `--storage.tsdb.path=${join(tmp.dir, 'prom')}`], { stdio: 'ignore' });
    beacon = await spawnServer(['--data-dir', join(tmp.dir, 'beacon'), '--rules', rules, '--no-default-rules', '--resp-port', 'off']);
  });

  after(async () => {
    if (prom?.exitCode === null) {
      prom.kill('SIGKILL');
      await new Promise((r) => prom?.once('exit', r));
    }
    await beacon?.stop();
    tmp.cleanup();
  });

  /** Both answers once every rule has been evaluated and AlwaysFiring fires. */
  async function both(path: string): Promise<[any, any]> {
    const ready = (b: any): boolean => {
      const rs: PromRule[] = b?.data?.groups?.[0]?.rules ?? [];
      return rs.length === 4 && rs.every((r) => r.health === 'ok') && rs.find((r) => r.name === 'AlwaysFiring')?.state === 'firing';
    };
    await eventually('Prometheus evaluated the rules', async () => (ready((await http(`${promUrl}/api/v1/rules`)).body) ? true : undefined));
    await eventually('Beacon evaluated the rules', async () => (ready((await http(`${beacon.url}/api/v1/rules`)).body) ? true : undefined));
    return [(await http(`${promUrl}${path}`)).body, (await http(`${beacon.url}${path}`)).body];
  }

  it('/api/v1/rules: the same groups, rules, fields, types, states and alerts', async () => {
    const [p, b] = await both('/api/v1/rules');
    assert.equal(b.status, 'success');
    const pg = p.data.groups[0];
    const bg = b.data.groups[0];
    assert.deepEqual(shape(bg), shape(pg), `Prometheus: ${JSON.stringify(pg)}\nBeacon: ${JSON.stringify(bg)}`);
    assert.equal(bg.name, pg.name);
    assert.equal(bg.interval, pg.interval);
    assert.deepEqual(
      bg.rules.map((r: PromRule) => [r.name, r.type, r.state, r.health, r.labels, r.alerts?.map((a) => [a.labels, a.annotations, a.state, a.value])]),
      pg.rules.map((r: PromRule) => [r.name, r.type, r.state, r.health, r.labels, r.alerts?.map((a) => [a.labels, a.annotations, a.state, a.value])]),
    );
    // ?type= filters as Prometheus does.
    const [pa, ba] = [(await http(`${promUrl}/api/v1/rules?type=record`)).body, (await http(`${beacon.url}/api/v1/rules?type=record`)).body];
    assert.deepEqual(
      ba.data.groups[0].rules.map((r: PromRule) => r.name),
      pa.data.groups[0].rules.map((r: PromRule) => r.name),
    );
  });

  it('/api/v1/alerts: the same alerts with the same fields', async () => {
    const [p, b] = await both('/api/v1/alerts');
    const sort = (xs: { labels: { alertname: string } }[]) => [...xs].sort((x, y) => x.labels.alertname.localeCompare(y.labels.alertname));
    const pa = sort(p.data.alerts);
    const ba = sort(b.data.alerts);
    assert.deepEqual(shape(ba), shape(pa), `Prometheus: ${JSON.stringify(pa)}\nBeacon: ${JSON.stringify(ba)}`);
    assert.deepEqual(
      ba.map((a: any) => [a.labels, a.annotations, a.state, a.value]),
      pa.map((a: any) => [a.labels, a.annotations, a.state, a.value]),
    );
  });
});
