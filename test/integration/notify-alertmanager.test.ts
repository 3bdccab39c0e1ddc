/**
 * Notifications against a real Alertmanager (Debian `prometheus-alertmanager`): the
 * AlertmanagerClient delivers firing and resolved alerts through it to a webhook, survives a
 * down and a failing Alertmanager, drops the oldest alerts from a full queue; and the built-in
 * notifier, given the same alertmanager.yml, sends the same webhook payloads (fields, group
 * keys, grouping, order, truncation, fingerprints) as the real one.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Metrics } from '../../src/obs/index.js';
import { AlertmanagerClient, Notifier, Silences, parseNotifyConfig, type NotifyAlert, type SilenceInput } from '../../src/obs/notify/index.js';
import { freePort } from '../helpers/node.js';
import { parseMail, quietLogger, startAlertmanager, startSmtp, startWebhook, type AlertmanagerProcess, type WebhookServer } from './notify-helpers.js';

const CONFIG = (hook: string): string => `
route:
  receiver: hook
  group_by: [alertname]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
  routes:
    - matchers: ['severity="page"']
      group_by: ['...']
      continue: true
    - match:
        team: db
      group_by: [alertname, instance]
receivers:
  - name: hook
    webhook_configs:
      - url: ${hook}
        send_resolved: true
        max_alerts: 2
`;

const iso = (ms: number): string => new Date(ms).toISOString();

describe('notifications with a real Alertmanager', () => {
  let am: AlertmanagerProcess;
  let amHook: WebhookServer;

  before(async () => {
    amHook = await startWebhook();
    am = await startAlertmanager(CONFIG(amHook.url));
  });
  after(async () => {
    await am?.stop();
    await amHook?.close();
  });

  it('AlertmanagerClient: firing then resolved reach the webhook through Alertmanager; a down and a failing Alertmanager are counted and do not stop it', async () => {
    const failing = await startWebhook();
    failing.statuses.push(500, 500, 500, 500);
    const deadPort = await freePort();
    const metrics = new Metrics({ leaseCount: () => 0, keyCount: () => 0, revision: () => 0, compactRevision: () => 0 });
    const client = new AlertmanagerClient({ urls: [`http://127.0.0.1:${deadPort}`, failing.url.replace('/hook', ''), am.url], logger: quietLogger, timeoutMs: 5000, metrics });
    try {
      const startsAt = iso(Date.now());
      const alert: NotifyAlert = { labels: { alertname: 'ClientAlert', test: 'client', severity: 'warn' }, annotations: { summary: 'latency high' }, startsAt, generatorURL: 'http://beacon/graph' };
      client.send([alert]);
      const firing = await amHook.waitFor((h) => h.body.groupLabels?.alertname === 'ClientAlert' && h.body.status === 'firing');
      assert.equal(firing.body.alerts.length, 1);
      assert.deepEqual(firing.body.alerts[0].labels, alert.labels);
      assert.equal(firing.body.alerts[0].annotations.summary, 'latency high');
      assert.equal(firing.body.alerts[0].generatorURL, 'http://beacon/graph');

      const n = amHook.hits.length;
      client.send([{ ...alert, endsAt: iso(Date.now()) }]);
      const resolved = await amHook.waitFor((h) => h.body.groupLabels?.alertname === 'ClientAlert' && h.body.status === 'resolved', 15_000, n);
      assert.equal(resolved.body.alerts[0].status, 'resolved');
      await client.flush();

      const [dead, bad, real] = client.status();
      assert.equal(real?.sent, 2);
      assert.equal(real?.errors, 0);
      assert.equal(dead?.sent, 0);
      assert.equal(dead?.errors, 2);
      assert.ok(dead?.lastError !== undefined && dead.lastError.length > 0);
      assert.equal(bad?.errors, 2);
      assert.match(bad?.lastError ?? '', /500/);
      const text = await metrics.registry.metrics();
      assert.ok(text.includes(`beacon_alertmanager_alerts_sent_total{alertmanager="${am.url}"} 2`), text);
      assert.ok(text.includes(`beacon_alertmanager_errors_total{alertmanager="http://127.0.0.1:${deadPort}"} 2`), text);
    } finally {
      await client.stop();
      await failing.close();
    }
  });

  it('Silences accepts and refuses the same silences as Alertmanager, and mutes the same alerts', async () => {
    const hour = 3_600_000;
    const now = Date.now();
    const m = (name: string, value: string, isRegex = false, isEqual = true): SilenceInput['matchers'][number] => ({ name, value, isRegex, isEqual });
    const cases: Array<{ what: string; matchers: SilenceInput['matchers']; startsAt: number; endsAt: number }> = [
      { what: 'plain', matchers: [m('alertname', 'SilX'), m('test', 'silence')], startsAt: now, endsAt: now + hour },
      { what: 'regex and negations', matchers: [m('alertname', 'Sil.*', true), m('env', 'dev', false, false), m('zone', 'eu-.*', true, false)], startsAt: now, endsAt: now + hour },
      { what: 'pending', matchers: [m('alertname', 'SilY')], startsAt: now + hour, endsAt: now + 2 * hour },
      { what: 'ends in the past', matchers: [m('alertname', 'SilX')], startsAt: now - 2 * hour, endsAt: now - hour },
      { what: 'ends before it starts', matchers: [m('alertname', 'SilX')], startsAt: now + 2 * hour, endsAt: now + hour },
      { what: 'every matcher matches the empty string', matchers: [m('alertname', '.*', true), m('env', '')], startsAt: now, endsAt: now + hour },
      { what: 'invalid regex', matchers: [m('alertname', '(', true)], startsAt: now, endsAt: now + hour },
      { what: 'no matchers', matchers: [], startsAt: now, endsAt: now + hour },
    ];
    const ours = new Silences();
    for (const c of cases) {
      const body = { matchers: c.matchers, startsAt: iso(c.startsAt), endsAt: iso(c.endsAt), createdBy: 'test', comment: c.what };
      const res = await fetch(`${am.url}/api/v2/silences`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
      await res.text();
      let accepted = true;
      try {
        ours.add(body);
      } catch {
        accepted = false;
      }
      assert.equal(accepted, res.status === 200, `${c.what}: Alertmanager answered ${res.status}`);
    }
    // Which alerts are muted: Alertmanager's view (alerts pushed to it, ?silenced) against ours.
    const startsAt = iso(now);
    const labelSets = [
      { alertname: 'SilX', test: 'silence' },
      { alertname: 'SilX', test: 'other' },
      { alertname: 'SilZ', env: 'prod', test: 'silence' },
      { alertname: 'SilZ', env: 'dev', test: 'silence' },
      { alertname: 'SilZ', zone: 'eu-west', test: 'silence' },
      { alertname: 'SilY', test: 'silence' },
    ];
    const post = await fetch(`${am.url}/api/v2/alerts`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(labelSets.map((labels) => ({ labels, startsAt }))) });
    assert.equal(post.status, 200);
    const deadline = Date.now() + 10_000;
    let theirs: Array<{ labels: Record<string, string>; status: { silencedBy: string[] } }> = [];
    while (theirs.length < labelSets.length && Date.now() < deadline) {
      const r = await fetch(`${am.url}/api/v2/alerts?filter=${encodeURIComponent('alertname=~"Sil.*"')}`);
      theirs = (await r.json()) as typeof theirs;
      if (theirs.length < labelSets.length) await new Promise((res) => setTimeout(res, 100));
    }
    assert.equal(theirs.length, labelSets.length);
    for (const a of theirs) {
      assert.equal(ours.mutes(a.labels).length > 0, a.status.silencedBy.length > 0, `muted: ${JSON.stringify(a.labels)}`);
    }
    assert.ok(theirs.some((a) => a.status.silencedBy.length > 0) && theirs.some((a) => a.status.silencedBy.length === 0), 'some muted, some not');
  });

  it('AlertmanagerClient: a full queue drops the oldest alerts and counts them', async () => {
    const client = new AlertmanagerClient({ urls: [am.url], logger: quietLogger, queueCapacity: 3 });
    try {
      const startsAt = iso(Date.now());
      const alerts = [1, 2, 3, 4, 5].map((i) => ({ labels: { alertname: 'QueueAlert', test: 'queue', n: String(i) }, annotations: {}, startsAt }));
      client.send(alerts);
      await client.flush();
      const st = client.status()[0];
      assert.equal(st?.dropped, 2);
      assert.equal(st?.sent, 3);
      const res = await fetch(`${am.url}/api/v2/alerts?filter=${encodeURIComponent('test="queue"')}`);
      const got = ((await res.json()) as Array<{ labels: Record<string, string> }>).map((a) => a.labels.n).sort();
      assert.deepEqual(got, ['3', '4', '5']);
    } finally {
      await client.stop();
    }
  });

  it('AlertmanagerClient.stop() gives up on a hung Alertmanager and counts what it abandons', async () => {
    const { createServer } = await import('node:http');
    const hung = createServer((req) => req.resume()); // reads the request, never answers
    const port = await freePort();
    await new Promise<void>((r) => hung.listen(port, '127.0.0.1', r));
    const client = new AlertmanagerClient({ urls: [`http://127.0.0.1:${port}`], logger: quietLogger, timeoutMs: 60_000 });
    try {
      const startsAt = iso(Date.now());
      client.send(Array.from({ length: 100 }, (_, i) => ({ labels: { alertname: 'Hung', n: String(i) }, annotations: {}, startsAt })));
      await new Promise((r) => setTimeout(r, 200));
      await client.stop(300);
      const st = client.status()[0];
      assert.equal(st?.sent, 0);
      assert.equal(st?.queued, 0);
      assert.equal((st?.dropped ?? 0) + (st?.errors ?? 0), 100, 'the in-flight batch is an error, the queued rest is dropped');
      assert.equal(st?.dropped, 36);
    } finally {
      hung.closeAllConnections();
      await new Promise<void>((r) => hung.close(() => r()));
    }
  });

  it('the built-in notifier sends the same webhook payloads as Alertmanager for the same config and alerts', async () => {
    const hook = await startWebhook();
    const notifier = new Notifier({ config: parseNotifyConfig(CONFIG(hook.url)), logger: quietLogger, externalURL: 'http://beacon.example:7379' });
    const client = new AlertmanagerClient({ urls: [am.url], logger: quietLogger });
    try {
      const t0 = Date.now();
      const common = { runbook: 'http://runbooks/oracle' };
      const alerts: NotifyAlert[] = [
        { labels: { alertname: 'OracleHigh', instance: 'a', severity: 'page', team: 'db', test: 'oracle' }, annotations: { ...common, summary: 'a is slow' }, startsAt: iso(t0 - 1500) },
        { labels: { alertname: 'OracleHigh', instance: 'b', severity: 'warn', team: 'db', test: 'oracle' }, annotations: { ...common, summary: 'b is slow' }, startsAt: iso(t0 - 1200) },
        { labels: { test: 'oracle', alertname: 'OracleHigh', instance: 'c', severity: 'warn', job: 'x' }, annotations: { ...common }, startsAt: iso(t0 - 900), generatorURL: 'http://beacon/graph?g0.expr=up' },
        { labels: { alertname: 'OracleHigh', instance: 'd', severity: 'warn', test: 'oracle' }, annotations: { ...common }, startsAt: iso(t0 - 600) },
        { labels: { alertname: 'OracleHigh', instance: 'e', severity: 'warn', test: 'oracle', job: 'y' }, annotations: { ...common }, startsAt: iso(t0 - 300) },
        { labels: { alertname: 'OracleLow', instance: 'a', test: 'oracle' }, annotations: { summary: 'low' }, startsAt: iso(t0 - 100) },
      ];
      const amStart = amHook.hits.length;
      client.send(alerts);
      notifier.receive(alerts);
      const isOracle = (h: { body: any }): boolean => h.body.commonLabels?.test === 'oracle';
      // Four groups each: root by alertname (two), the severity="page" route by every label, the team="db" route by alertname+instance (two).
      const firstOf = async (server: WebhookServer, from: number, status: string): Promise<Map<string, any>> => {
        const deadline = Date.now() + 20_000;
        for (;;) {
          const m = new Map<string, any>();
          for (const h of server.hits.slice(from)) if (isOracle(h) && h.body.status === status && !m.has(h.body.groupKey)) m.set(h.body.groupKey, h.body);
          if (m.size >= 5 || Date.now() > deadline) return m;
          await new Promise((r) => setTimeout(r, 200));
        }
      };
      const compare = (ours: Map<string, any>, theirs: Map<string, any>): void => {
        assert.deepEqual([...ours.keys()].sort(), [...theirs.keys()].sort());
        assert.equal(theirs.size, 5, `Alertmanager made 5 groups: ${[...theirs.keys()].join(' ; ')}`);
        for (const [key, t] of theirs) {
          const o = ours.get(key);
          assert.deepEqual(Object.keys(o).sort(), Object.keys(t).sort(), `payload fields of ${key}`);
          for (const f of ['receiver', 'status', 'groupLabels', 'commonLabels', 'commonAnnotations', 'version', 'groupKey', 'truncatedAlerts']) {
            assert.deepEqual(o[f], t[f], `${f} of ${key}`);
          }
          assert.equal(typeof o.externalURL, 'string');
          assert.equal(JSON.stringify(o.groupLabels), JSON.stringify(t.groupLabels));
          assert.equal(JSON.stringify(o.commonLabels), JSON.stringify(t.commonLabels));
          assert.equal(o.alerts.length, t.alerts.length, `alerts in ${key}`);
          for (let i = 0; i < t.alerts.length; i++) {
            assert.deepEqual(Object.keys(o.alerts[i]).sort(), Object.keys(t.alerts[i]).sort(), `alert fields in ${key}`);
            for (const f of ['status', 'labels', 'annotations', 'startsAt', 'endsAt', 'generatorURL', 'fingerprint']) {
              assert.deepEqual(o.alerts[i][f], t.alerts[i][f], `alerts[${i}].${f} of ${key}`);
            }
            // Byte for byte too: Alertmanager writes label maps with sorted keys.
            assert.equal(JSON.stringify(o.alerts[i].labels), JSON.stringify(t.alerts[i].labels));
            assert.equal(JSON.stringify(o.alerts[i].annotations), JSON.stringify(t.alerts[i].annotations));
          }
        }
      };
      const theirsFiring = await firstOf(amHook, amStart, 'firing');
      const oursFiring = await firstOf(hook, 0, 'firing');
      compare(oursFiring, theirsFiring);
      const truncated = [...theirsFiring.values()].find((p) => p.truncatedAlerts > 0);
      assert.ok(truncated !== undefined, 'the root OracleHigh group of 3 alerts is cut to max_alerts 2');

      const amMid = amHook.hits.length;
      const ourMid = hook.hits.length;
      const end = iso(Date.now());
      const resolved = alerts.map((a) => ({ ...a, endsAt: end }));
      client.send(resolved);
      notifier.receive(resolved);
      compare(await firstOf(hook, ourMid, 'resolved'), await firstOf(amHook, amMid, 'resolved'));
    } finally {
      await client.stop();
      await notifier.stop();
      await hook.close();
    }
  });

  it("the built-in notifier's email subjects are Alertmanager's default subjects", async () => {
    const theirs = await startSmtp();
    const ours = await startSmtp();
    const mailConfig = (port: number): string => `
route:
  receiver: mail
  group_by: [alertname, env]
  group_wait: 1s
  group_interval: 1s
receivers:
  - name: mail
    email_configs:
      - to: oncall@example.org
        from: beacon@example.org
        smarthost: 127.0.0.1:${port}
        require_tls: false
        send_resolved: true
`;
    const am2 = await startAlertmanager(mailConfig(theirs.port));
    const n = new Notifier({ config: parseNotifyConfig(mailConfig(ours.port)), logger: quietLogger });
    const client = new AlertmanagerClient({ urls: [am2.url], logger: quietLogger });
    try {
      const startsAt = iso(Date.now());
      const alerts: NotifyAlert[] = [
        { labels: { zone: 'eu', alertname: 'Subj', env: 'prod', severity: 'page', instance: 'a' }, annotations: {}, startsAt },
        { labels: { zone: 'eu', alertname: 'Subj', env: 'prod', severity: 'page', instance: 'b' }, annotations: {}, startsAt },
        { labels: { alertname: 'Other', env: 'dev' }, annotations: {}, startsAt },
      ];
      client.send(alerts);
      n.receive(alerts);
      const subjects = async (smtp: typeof theirs, count: number): Promise<string[]> =>
        (await smtp.waitForMails(count)).map((m) => parseMail(m.raw).headers.subject ?? '').sort();
      const want = await subjects(theirs, 2);
      assert.deepEqual(await subjects(ours, 2), want);
      assert.ok(want.includes('[FIRING:2] Subj prod (page eu)'), want.join(' | '));
      const end = iso(Date.now());
      const resolved = alerts.map((a) => ({ ...a, endsAt: end }));
      client.send(resolved);
      n.receive(resolved);
      assert.deepEqual(await subjects(ours, 4), await subjects(theirs, 4));
    } finally {
      await client.stop();
      await n.stop();
      await am2.stop();
      await theirs.close();
      await ours.close();
    }
  });
});
