/**
 * Staged config rollouts in a running node (issue 16, docs/rollout.md), with real SDK clients:
 * targeting shares among 7,000 selected identities within ±3 points of each step's threshold and
 * none outside the selector, calibrated steps placing exactly the step's share of the reporting
 * live configs, live configs following their assignment and keeping it across a restart, adoption
 * reports, automatic advance and completion, a guard alert firing during the second bake rolling
 * every client back (audit record with the cause, webhook notification), and bad input refused
 * with nothing changed. Rule groups evaluate every second; bakes are seconds long.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createClient, receivesCandidate, rolloutBucket, type BeaconClient, type LiveConfig, type Rollout } from '../../client/index.js';
import { http, startTestNode, tempDir } from '../helpers/node.js';
import { startWebhook, type WebhookServer } from './notify-helpers.js';

type Node = Awaited<ReturnType<typeof startTestNode>>;

const RULES = `groups:
  - name: checkout
    interval: 1s
    rules:
      - alert: CheckoutErrorRateHigh
        expr: max_over_time(checkout_errors[3s]) > 5
        labels:
          severity: page
`;

async function waitFor<T>(what: string, fn: () => Promise<T | undefined> | T | undefined, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * 10,000 identities: 7,000 in region eu, 3,000 in us. Only the 30 live configs report, so the
 * calibrated threshold (docs/rollout.md "Calibrated steps") is chosen on them; the other
 * identities stand for clients that start after the step began, which the hash alone places:
 * their share is the threshold's within binomial noise (0.6 points at 50 % of 7,000).
 */
const IDENTITIES = Array.from({ length: 10_000 }, (_, i) => ({ id: `instance-${i}`, labels: { region: i % 10 < 7 ? 'eu' : 'us', tier: i % 5 === 0 ? 'canary' : 'main' } }));

describe('staged rollouts', () => {
  let node: Node;
  let hook: WebhookServer;
  let dir: ReturnType<typeof tempDir>;
  let client: BeaconClient;
  const lives: LiveConfig[] = [];

  before(async () => {
    dir = tempDir();
    hook = await startWebhook();
    const rules = join(dir.dir, 'checkout.yml');
    writeFileSync(rules, RULES);
    const notify = join(dir.dir, 'notify.yml');
    writeFileSync(
      notify,
      `route:\n  receiver: hook\n  group_by: [alertname]\n  group_wait: 0s\n  group_interval: 1s\n  repeat_interval: 1h\nreceivers:\n  - name: hook\n    webhook_configs:\n      - url: ${hook.url}\n`,
    );
    node = await startTestNode({
      metricsStore: { selfScrapeIntervalMs: 0 },
      alerting: { ruleFiles: [rules], notifyConfig: notify, defaultRules: false },
      rolloutTickMs: 200,
    });
    client = createClient({ endpoint: node.url });
  });

  after(async () => {
    for (const l of lives) l.close();
    client?.close();
    await node?.cleanup();
    await hook?.close();
    dir?.cleanup();
  });

  async function live(prefix: string, identity?: { id: string; labels: Record<string, string> }): Promise<LiveConfig> {
    const c = await client.config(prefix, { ...(identity ? { identity } : {}), reportIntervalMs: 100 });
    lives.push(c);
    return c;
  }

  it('targets each step within ±3 points among 7,000 selected identities, none outside the selector, sticky across a restart', async () => {
    await client.configs.put('app/flags', { enabled: false, rollout: 0 });
    const started = await client.rollouts.start('app/flags', { value: { enabled: true, rollout: 10 }, steps: ['10%', '50%', '100%'], bake: '1h', selector: 'region=eu' });
    assert.equal(started.state, 'running');
    assert.equal(started.share, 10);
    // 30 real live configs (the first 30 identities) and a client without identity.
    const sample = IDENTITIES.slice(0, 30);
    const configs = await Promise.all(sample.map((id) => live('app/', id)));
    const anonymous = await live('app/');
    const onCandidate = (c: LiveConfig): boolean => (c.value.flags as { enabled: boolean }).enabled;
    let previouslyIn = new Set<string>();
    for (const share of [10, 50, 100]) {
      const [r] = (await client.rollouts.list('app/')) as [Rollout];
      assert.equal(r.share, share);
      const eu = IDENTITIES.filter((i) => i.labels.region === 'eu');
      const inside = IDENTITIES.filter((i) => receivesCandidate(r, i));
      assert.ok(inside.every((i) => i.labels.region === 'eu'), 'no client outside the selector gets the candidate');
      const pct = (inside.length / eu.length) * 100;
      const threshold = (r.threshold as number) / 100;
      assert.ok(Math.abs(pct - threshold) <= 3, `step ${share} % (threshold ${threshold} %): ${pct.toFixed(1)} % of the selected identities`);
      if (share === 10) assert.equal(r.threshold, 1000, "the first step's threshold is the share's (no buckets of a new rollout are known)");
      if (share === 50) {
        // Calibrated on the reports of the selected live configs: the step's share of them exactly (±1 for clients sharing the bucket at the cut).
        const selected = sample.filter((i) => i.labels.region === 'eu');
        const k = selected.filter((i) => receivesCandidate(r, i)).length;
        assert.ok(Math.abs(k - Math.round(selected.length / 2)) <= 1, `${k} of ${selected.length} reporting selected clients at 50 %`);
        assert.match(r.history.at(-1)?.cause ?? '', new RegExp(`calibrated on ${selected.length} selected clients' reports`));
      }
      for (const id of previouslyIn) assert.ok(inside.some((i) => i.id === id), `${id} stays in as the share grows`);
      previouslyIn = new Set(inside.map((i) => i.id));
      // The real live configs agree with the evaluation.
      await waitFor(`live configs at ${share} %`, () => (configs.every((c, i) => onCandidate(c) === receivesCandidate(r, sample[i] as (typeof sample)[number])) ? true : undefined));
      assert.equal(onCandidate(anonymous), false, 'a client without identity stays on the current version');
      // Adoption as reported by the live configs.
      const expected = sample.filter((i) => receivesCandidate(r, i)).length;
      await waitFor('adoption reports', async () => {
        const s = await client.rollouts.get('app/flags');
        return s.adoption?.candidate === expected && s.adoption?.v1 === sample.length - expected ? true : undefined;
      });
      if (share < 100) await client.rollouts.promote('app/flags');
    }
    // Sticky across a restart: a new live config with the identity of one on the candidate starts on it.
    const idx = configs.findIndex(onCandidate);
    assert.ok(idx >= 0);
    configs[idx]?.close();
    const again = await live('app/', sample[idx]);
    assert.equal(onCandidate(again), true, 'the restarted client is on the candidate from its first value');
    // A plain write is refused while the rollout runs; nothing changes.
    const refused = await http(`${node.url}/v1/configs/app/flags`, { method: 'PUT', body: { value: { enabled: false } } });
    assert.equal(refused.status, 409);
    assert.equal(refused.body.error.code, 'conflict');
    assert.match(refused.body.error.message, /rollout/);
    assert.equal((await client.configs.get('app/flags')).version, 'v1');
    // Promoting the last step completes: the candidate becomes v2 for everyone.
    const done = await client.rollouts.promote('app/flags');
    assert.equal(done.state, 'completed');
    assert.equal(done.completed_version, 'v2');
    assert.deepEqual((await client.configs.get('app/flags')).value, { enabled: true, rollout: 10 });
    await waitFor('everyone on v2', () => (onCandidate(anonymous) && configs.filter((c) => !c.closed).every(onCandidate) ? true : undefined));
  });

  it('advances after each bake and completes on its own; the history says why', async () => {
    await client.configs.put('app/auto', 'one');
    await client.rollouts.start('app/auto', { value: 'two', steps: [50, 100], bake: '1500ms' });
    const done = await waitFor('completion', async () => {
      const r = await client.rollouts.get('app/auto');
      return r.state === 'completed' ? r : undefined;
    });
    assert.deepEqual(
      done.history.map((h) => [h.to, h.share, h.by]),
      [
        ['running', 50, 'dev'],
        ['running', 100, 'system'],
        ['completed', 100, 'system'],
      ],
    );
    assert.match(done.history[1]?.cause ?? '', /baked 1500 ms with no guard firing/);
    const cfg = await client.configs.get('app/auto');
    assert.equal(cfg.value, 'two');
    assert.equal(cfg.version, 'v2');
    // The bake is measured from the stored step start: no step was shorter than the bake.
    const t = done.history.map((h) => Date.parse(h.at));
    assert.ok((t[1] as number) - (t[0] as number) >= 1500 && (t[2] as number) - (t[1] as number) >= 1500);
  });

  it('rolls back when the guard alert fires during the second bake: clients return, audit and webhook record it', async () => {
    await client.configs.put('app/checkout', { timeoutMs: 100 });
    const sample = IDENTITIES.filter((i) => i.labels.region === 'eu').slice(0, 20);
    const configs = await Promise.all(sample.map((id) => live('app/', id)));
    const r0 = await client.rollouts.start('app/checkout', { value: { timeoutMs: 5000 }, steps: [30, 60, 100], bake: '10s', guards: [{ alert: 'CheckoutErrorRateHigh' }] });
    // The second step starts after the first bake.
    await waitFor('step 2', async () => ((await client.rollouts.get('app/checkout')).step === 1 ? true : undefined));
    const r1 = (await client.rollouts.list('app/')).find((r) => r.key === 'app/checkout') as Rollout;
    const targeted = sample.filter((i) => receivesCandidate(r1, i));
    assert.ok(targeted.length > 0);
    const timeout = (c: LiveConfig): number => (c.value.checkout as { timeoutMs: number }).timeoutMs;
    await waitFor('targeted clients on the candidate', () => (configs.filter((c) => timeout(c) === 5000).length === targeted.length ? true : undefined));
    const pushed = Date.now();
    const res = await http(`${node.url}/v1/metrics`, { method: 'POST', body: { name: 'checkout.errors', value: 50 } });
    assert.equal(res.status, 200);
    await waitFor('every client back on the previous value', () => (configs.every((c) => timeout(c) === 100) ? true : undefined), 60_000);
    console.log(`# guard pushed → every client on the previous value in ${Date.now() - pushed} ms (rule interval 1 s, SDK long poll)`);
    const r = await client.rollouts.get('app/checkout');
    assert.equal(r.state, 'rolled_back');
    assert.equal(r.id, r0.id);
    const last = r.history[r.history.length - 1];
    assert.equal(last?.by, 'system');
    assert.match(last?.cause ?? '', /guard CheckoutErrorRateHigh fired during the bake of step 2 \(60 %\)/);
    // The config itself never changed.
    assert.equal((await client.configs.get('app/checkout')).version, 'v1');
    // The audit log shows the automatic rollback and its cause.
    const audit = await http(`${node.url}/v1/audit?action=rollout.rolled_back`);
    assert.equal(audit.status, 200, JSON.stringify(audit.body));
    const rec = (audit.body.records as { principal: string; key: string; details: { cause: string; rollout: string } }[]).find((x) => x.key === 'app/checkout');
    assert.ok(rec, JSON.stringify(audit.body));
    assert.equal(rec.principal, 'system');
    assert.equal(rec.details.rollout, r0.id);
    assert.match(rec.details.cause, /CheckoutErrorRateHigh/);
    // The webhook receives the notification.
    const hit = await hook.waitFor((h) => JSON.stringify(h.body).includes('BeaconRolloutRolledBack'), 30_000);
    const alert = (hit.body.alerts as { labels: Record<string, string>; annotations: Record<string, string> }[]).find((a) => a.labels.alertname === 'BeaconRolloutRolledBack');
    assert.equal(alert?.labels.key, 'app/checkout');
    assert.match(alert?.annotations.description ?? '', /CheckoutErrorRateHigh/);
    // A rolled-back rollout cannot be promoted; a new one cannot start while the guard fires.
    const promote = await http(`${node.url}/v1/configs/app/checkout/rollouts/current/promote`, { method: 'POST' });
    assert.equal(promote.status, 409);
    const again = await http(`${node.url}/v1/configs/app/checkout/rollouts`, { method: 'POST', body: { value: { timeoutMs: 1 }, steps: [100], bake: '1s', guards: [{ alert: 'CheckoutErrorRateHigh' }] } });
    assert.equal(again.status, 409);
    assert.match(again.body.error.message, /already firing/);
  });

  it('refuses bad input with a clear error and changes nothing', async () => {
    await client.configs.put('shop/cfg', { price: 1 });
    const ns = await http(`${node.url}/v1/namespaces/shop/`, { method: 'PUT', body: { schema: { type: 'object', required: ['price'], properties: { price: { type: 'integer', minimum: 1 } } } } });
    assert.ok(ns.status === 200 || ns.status === 201, JSON.stringify(ns.body));
    const start = (body: Record<string, unknown>, key = 'shop/cfg') => http(`${node.url}/v1/configs/${key}/rollouts`, { method: 'POST', body: { value: { price: 2 }, steps: [10, 100], bake: '10m', ...body } });
    const cases: [string, Record<string, unknown>, number, RegExp, string?][] = [
      ['steps not increasing', { steps: [50, 10] }, 400, /must increase/],
      ['a step over 100', { steps: [10, 150] }, 400, /at most 100/],
      ['a step of 0', { steps: [0, 100] }, 400, /above 0/],
      ['no steps', { steps: [] }, 400, /non-empty/],
      ['a bake of 0', { bake: '0s' }, 400, /bake/],
      ['a bake over 30 days', { bake: '31d' }, 400, /30 days/],
      ['a bake that is not a duration', { bake: 'soon' }, 400, /not a duration/],
      ['a selector that does not parse', { selector: 'region' }, 400, /does not parse/],
      ['a guard naming no rule', { guards: [{ alert: 'NoSuchRule' }] }, 400, /names no alerting rule/],
      ['a guard expression that does not parse', { guards: [{ expr: 'rate(' }] }, 400, /does not parse/],
      ['a guard of another shape', { guards: ['CheckoutErrorRateHigh'] }, 400, /must be/],
      ['a candidate failing the namespace schema', { value: { price: 0 } }, 400, /schema/],
      ['an unknown field', { stepz: [1] }, 400, /unknown field/],
      ['a config that does not exist', {}, 404, /not found/, 'shop/none'],
    ];
    for (const [what, body, status, message, key] of cases) {
      const res = await start(body, key);
      assert.equal(res.status, status, `${what}: ${JSON.stringify(res.body)}`);
      assert.match(res.body.error.message, message, what);
      const cur = await http(`${node.url}/v1/configs/shop/cfg/rollouts/current`);
      assert.equal(cur.status, 404, `${what}: nothing was stored`);
    }
    // A second rollout on the same key; then abort, and a plain write with abortRollout.
    assert.equal((await start({ guards: [{ expr: 'vector(1) > 2' }] })).status, 200);
    const second = await start({});
    assert.equal(second.status, 409);
    assert.match(second.body.error.message, /already has a running rollout/);
    assert.equal((await http(`${node.url}/v1/configs/shop/cfg/rollouts/current/pause`, { method: 'POST' })).status, 200);
    assert.equal((await http(`${node.url}/v1/configs/shop/cfg/rollouts/current/pause`, { method: 'POST' })).status, 409);
    assert.equal((await http(`${node.url}/v1/configs/shop/cfg/rollouts/current/resume`, { method: 'POST' })).status, 200);
    // Adoption reports: a bucket that is not the client's hash (it would skew calibration) or a malformed field is refused and not counted.
    const ro = await client.rollouts.get('shop/cfg');
    const report = (extra: Record<string, unknown>) => http(`${node.url}/v1/rollouts/report`, { method: 'POST', body: { key: 'shop/cfg', rollout: ro.id, client: 'c1', variant: 'current', ...extra } });
    const bucket = rolloutBucket('shop/cfg', ro.id, 'c1');
    const badReports: [Record<string, unknown>, RegExp][] = [
      [{ bucket: (bucket + 1) % 10_000 }, /not this client's bucket/],
      [{ bucket: 10_000 }, /integer in \[0, 10000\)/],
      [{ bucket: 1.5 }, /integer/],
      [{ selected: 'yes' }, /true or false/],
    ];
    for (const [extra, message] of badReports) {
      const res = await report(extra);
      assert.equal(res.status, 400, JSON.stringify(extra));
      assert.match(res.body.error.message, message);
    }
    assert.deepEqual((await client.rollouts.get('shop/cfg')).adoption, { candidate: 0, v1: 0 });
    assert.equal((await report({ bucket, selected: true })).status, 200);
    assert.deepEqual((await client.rollouts.get('shop/cfg')).adoption, { candidate: 0, v1: 1 });
    // A write bound to fail on its version leaves the rollout running.
    const stale = await http(`${node.url}/v1/configs/shop/cfg`, { method: 'PUT', body: { value: { price: 3 }, version: 'v7', abortRollout: true } });
    assert.equal(stale.status, 409);
    assert.equal((await client.rollouts.get('shop/cfg')).state, 'running');
    const kvPut = await http(`${node.url}/v1/kv/shop/cfg`, { method: 'PUT', body: { value: '{"price": 4}' } });
    assert.equal(kvPut.status, 409, 'a kv write of the key is refused too');
    const txnPut = await http(`${node.url}/v1/txn`, { method: 'POST', body: { success: [{ put: { key: 'shop/cfg', value: '{"price": 5}' } }] } });
    assert.equal(txnPut.status, 409, `a txn put of the key is refused too: ${JSON.stringify(txnPut.body)}`);
    const txnOther = await http(`${node.url}/v1/txn`, { method: 'POST', body: { compare: [], success: [], failure: [{ delete: { key: 'shop/cfg' } }] } });
    assert.equal(txnOther.status, 409, 'in either branch');
    const prefixDelete = await http(`${node.url}/v1/kv/shop/?prefix=true`, { method: 'DELETE' });
    assert.equal(prefixDelete.status, 409, 'a prefix delete covering the key is refused');
    assert.equal((await http(`${node.url}/v1/kv/shop/cfg`)).status, 200, 'and nothing was deleted');
    assert.equal((await client.rollouts.get('shop/cfg')).state, 'running');
    const put = await http(`${node.url}/v1/configs/shop/cfg`, { method: 'PUT', body: { value: { price: 3 }, abortRollout: true } });
    assert.equal(put.status, 200, JSON.stringify(put.body));
    const cur = await client.rollouts.get('shop/cfg');
    assert.equal(cur.state, 'aborted');
    assert.equal(cur.history[cur.history.length - 1]?.cause, 'aborted by a plain write');
    assert.equal((await http(`${node.url}/v1/configs/shop/cfg/rollouts/current/abort`, { method: 'POST' })).status, 409);
    // An inline PromQL guard that holds refuses the start.
    const firing = await start({ guards: [{ expr: 'vector(1) > 0' }] });
    assert.equal(firing.status, 409);
    assert.match(firing.body.error.message, /already firing/);
  });
});
