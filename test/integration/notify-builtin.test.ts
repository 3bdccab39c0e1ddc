/**
 * The built-in notifier against real receivers: a webhook HTTP server and an SMTP server
 * (smtp-server) in the test. Grouping and timers run with short durations and generous margins;
 * nothing here asserts on a duration.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Metrics } from '../../src/obs/index.js';
import { Notifier, Silences, parseNotifyConfig, type NotifyAlert } from '../../src/obs/notify/index.js';
import { freePort } from '../helpers/node.js';
import { parseMail, quietLogger, startSmtp, startWebhook, type WebhookServer } from './notify-helpers.js';

const iso = (ms: number): string => new Date(ms).toISOString();
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const alert = (labels: Record<string, string>, extra: Partial<NotifyAlert> = {}): NotifyAlert => ({ labels, annotations: { summary: `${labels.alertname ?? ''} summary` }, startsAt: iso(Date.now()), ...extra });

function webhookConfig(urls: Array<{ url: string; sendResolved?: boolean }>, timers = 'group_wait: 200ms\n  group_interval: 700ms\n  repeat_interval: 1h'): string {
  return `
route:
  receiver: hook
  group_by: [alertname]
  ${timers}
receivers:
  - name: hook
    webhook_configs:
${urls.map((u) => `      - url: ${u.url}\n        send_resolved: ${u.sendResolved ?? true}`).join('\n')}
`;
}

const newMetrics = (): Metrics => new Metrics({ leaseCount: () => 0, keyCount: () => 0, revision: () => 0, compactRevision: () => 0 });

async function metricValue(m: Metrics, name: string, labels: string): Promise<number> {
  const text = await m.registry.metrics();
  const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}}`));
  return line === undefined ? 0 : Number(line.split(' ').pop());
}

describe('built-in notifier', () => {
  it('groups alerts by group_by after group_wait, adds newcomers at group_interval, repeats after repeat_interval', async () => {
    const hook = await startWebhook();
    const n = new Notifier({ config: parseNotifyConfig(webhookConfig([{ url: hook.url }], 'group_wait: 300ms\n  group_interval: 700ms\n  repeat_interval: 5s')), logger: quietLogger });
    try {
      n.receive([alert({ alertname: 'Latency', instance: '1' })]);
      await sleep(20);
      n.receive([alert({ alertname: 'Latency', instance: '2' }), alert({ alertname: 'Errors', instance: '1' })]);
      const lat = await hook.waitFor((h) => h.body.groupLabels.alertname === 'Latency');
      const err = await hook.waitFor((h) => h.body.groupLabels.alertname === 'Errors');
      assert.deepEqual(lat.body.alerts.map((a: any) => a.labels.instance), ['1', '2'], 'both Latency alerts in one notification');
      assert.equal(lat.body.groupKey, '{}:{alertname="Latency"}');
      assert.equal(lat.body.status, 'firing');
      assert.deepEqual(lat.body.commonLabels, { alertname: 'Latency' });
      assert.deepEqual(lat.body.commonAnnotations, { summary: 'Latency summary' });
      assert.equal(err.body.alerts.length, 1);

      const before = hook.hits.length;
      n.receive([alert({ alertname: 'Latency', instance: '3' })]);
      const third = await hook.waitFor((h) => h.body.groupLabels.alertname === 'Latency', 10_000, before);
      assert.deepEqual(third.body.alerts.map((a: any) => a.labels.instance), ['1', '2', '3'], 'the newcomer joins its group at the next group_interval');
      assert.equal(hook.hits.slice(before).filter((h) => h.body.groupLabels.alertname === 'Errors').length, 0, 'an unchanged group is not re-sent before repeat_interval');

      const afterThird = hook.hits.indexOf(third) + 1;
      // Keep the alerts firing (as the rule engine re-sends them) until the repeat.
      const keep = setInterval(() => n.receive([alert({ alertname: 'Latency', instance: '1' }), alert({ alertname: 'Latency', instance: '2' }), alert({ alertname: 'Latency', instance: '3' })]), 500);
      try {
        const repeat = await hook.waitFor((h) => h.body.groupLabels.alertname === 'Latency', 15_000, afterThird);
        assert.deepEqual(repeat.body.alerts.map((a: any) => a.labels.instance), ['1', '2', '3']);
        assert.equal(repeat.body.alerts[0].startsAt, lat.body.alerts[0].startsAt, 'a re-sent alert keeps its first startsAt');
      } finally {
        clearInterval(keep);
      }
    } finally {
      await n.stop();
      await hook.close();
    }
  });

  it('sends resolved notifications to integrations with send_resolved, and not to the others', async () => {
    const withResolved = await startWebhook();
    const without = await startWebhook();
    const n = new Notifier({ config: parseNotifyConfig(webhookConfig([{ url: withResolved.url }, { url: without.url, sendResolved: false }])), logger: quietLogger });
    try {
      const a1 = alert({ alertname: 'Disk', instance: '1' });
      const a2 = alert({ alertname: 'Disk', instance: '2' });
      n.receive([a1, a2]);
      await withResolved.waitFor((h) => h.body.status === 'firing');
      await without.waitFor((h) => h.body.status === 'firing');

      n.receive([{ ...a1, endsAt: iso(Date.now()) }]);
      const partial = await withResolved.waitFor((h) => h.body.alerts.some((a: any) => a.status === 'resolved'));
      assert.equal(partial.body.status, 'firing', 'a group with one alert still firing is firing');
      assert.deepEqual(
        partial.body.alerts.map((a: any) => [a.labels.instance, a.status]),
        [['1', 'resolved'], ['2', 'firing']],
      );
      assert.notEqual(partial.body.alerts[0].endsAt, '0001-01-01T00:00:00Z');
      assert.equal(partial.body.alerts[1].endsAt, '0001-01-01T00:00:00Z');

      n.receive([{ ...a2, endsAt: iso(Date.now()) }]);
      const done = await withResolved.waitFor((h) => h.body.status === 'resolved');
      assert.deepEqual(done.body.alerts.map((a: any) => a.status), ['resolved']);
      await sleep(1500);
      assert.equal(without.hits.length, 1, 'send_resolved: false gets the firing notification only');
      assert.equal(n.groupsSnapshot().length, 0, 'a group whose alerts all resolved and were notified is gone');
    } finally {
      await n.stop();
      await withResolved.close();
      await without.close();
    }
  });

  it('retries a webhook that answers 500 with backoff until it answers 200; history and metrics show every attempt', async () => {
    const hook = await startWebhook();
    hook.statuses.push(500, 503);
    const metrics = newMetrics();
    const n = new Notifier({ config: parseNotifyConfig(webhookConfig([{ url: hook.url.replace('http://', 'http://alice:s3cret@') }])), logger: quietLogger, metrics, retryInitialMs: 100 });
    try {
      n.receive([alert({ alertname: 'Retry' })]);
      const got = await hook.waitFor((h) => h.body.groupLabels.alertname === 'Retry');
      assert.equal(got.body.alerts.length, 1);
      assert.equal(got.headers.authorization, `Basic ${Buffer.from('alice:s3cret').toString('base64')}`, 'credentials in the URL are sent as basic auth');
      const deadline = Date.now() + 10_000;
      while (!n.recentHistory('hook').some((e) => e.status === 'success')) {
        assert.ok(Date.now() < deadline, 'the delivery is recorded');
        await sleep(20);
      }
      const h = n.recentHistory('hook');
      assert.deepEqual(h.map((e) => [e.status, e.attempt]), [['failed', 1], ['failed', 2], ['success', 3]]);
      assert.match(h[0]?.error ?? '', /500/);
      assert.ok(!h.some((e) => (e.error ?? '').includes('s3cret')), 'errors never carry credentials');
      assert.equal(h[2]?.integration, 'webhook[0]');
      assert.equal(h[2]?.alerts, 1);
      assert.deepEqual(
        n.receiversStatus().receivers.map((r) => [r.name, r.integrations, r.history.length]),
        [['hook', ['webhook[0]'], 3]],
      );
      assert.equal(await metricValue(metrics, 'beacon_notifications_failed_total', 'receiver="hook",integration="webhook"'), 2);
      assert.equal(await metricValue(metrics, 'beacon_notifications_total', 'receiver="hook",integration="webhook"'), 1);
      assert.equal(await metricValue(metrics, 'beacon_notification_latency_seconds_count', 'receiver="hook",integration="webhook"'), 3);
    } finally {
      await n.stop();
      await hook.close();
    }
  });

  it('a webhook that is down is retried at the next flush: the notification is not lost', async () => {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}/hook`;
    // Retry for 1 s per flush at most, so the first flush gives up while the receiver is down.
    const n = new Notifier({ config: parseNotifyConfig(webhookConfig([{ url }])), logger: quietLogger, retryInitialMs: 100, retryMaxMs: 200, minFlushTimeoutMs: 1000 });
    let hook: WebhookServer | undefined;
    try {
      n.receive([alert({ alertname: 'Down' })]);
      const deadline = Date.now() + 15_000;
      while (!n.recentHistory('hook').some((e) => e.status === 'failed' && /ECONNREFUSED|fetch failed|connect/i.test(e.error ?? ''))) {
        assert.ok(Date.now() < deadline, 'a refused attempt is recorded');
        await sleep(50);
      }
      await sleep(1500);
      hook = await startWebhook(port);
      const got = await hook.waitFor((h) => h.body.groupLabels?.alertname === 'Down', 15_000);
      assert.equal(got.body.alerts[0].labels.alertname, 'Down');
    } finally {
      await n.stop();
      await hook?.close();
    }
  });

  it('a slow webhook holds up only its own group: receive() returns and other groups are notified meanwhile', async () => {
    const hook = await startWebhook();
    const { createServer } = await import('node:http');
    const slowPort = await freePort();
    let release: () => void = () => {};
    const released = new Promise<void>((r) => (release = r));
    const slow = createServer((req, res) => {
      req.resume();
      void released.then(() => res.end('ok'));
    });
    await new Promise<void>((r) => slow.listen(slowPort, '127.0.0.1', r));
    const cfg = `
route:
  receiver: fast
  group_by: [alertname]
  group_wait: 200ms
  group_interval: 700ms
  routes:
    - matchers: [alertname="Slow"]
      receiver: slow
receivers:
  - name: fast
    webhook_configs: [{url: '${hook.url}'}]
  - name: slow
    webhook_configs: [{url: 'http://127.0.0.1:${slowPort}/hook', timeout: 30s}]
`;
    const n = new Notifier({ config: parseNotifyConfig(cfg), logger: quietLogger });
    try {
      n.receive([alert({ alertname: 'Slow' })]);
      await sleep(600); // the slow group's flush is now waiting on its webhook
      n.receive([alert({ alertname: 'Fast' })]);
      const got = await hook.waitFor((h) => h.body.groupLabels.alertname === 'Fast');
      assert.equal(got.body.receiver, 'fast');
      assert.equal(n.recentHistory('slow').length, 0, 'the slow webhook has not answered yet');
      release();
      const deadline = Date.now() + 10_000;
      while (n.recentHistory('slow').length === 0) {
        assert.ok(Date.now() < deadline, 'the slow webhook is recorded once it answers');
        await sleep(50);
      }
      assert.equal(n.recentHistory('slow')[0]?.status, 'success');
    } finally {
      release();
      await n.stop();
      slow.closeAllConnections();
      await new Promise<void>((r) => slow.close(() => r()));
      await hook.close();
    }
  });

  it('stop() aborts a delivery stuck on a hung webhook and records it as failed', async () => {
    const { createServer } = await import('node:http');
    const port = await freePort();
    let reached: () => void = () => {};
    const requested = new Promise<void>((r) => (reached = r));
    const hung = createServer((req) => {
      req.resume();
      reached();
    });
    await new Promise<void>((r) => hung.listen(port, '127.0.0.1', r));
    const n = new Notifier({ config: parseNotifyConfig(webhookConfig([{ url: `http://127.0.0.1:${port}/hook` }])), logger: quietLogger });
    try {
      n.receive([alert({ alertname: 'Hung' })]);
      await requested;
      await n.stop(2000);
      const h = n.recentHistory('hook');
      assert.equal(h.length, 1);
      assert.equal(h[0]?.status, 'failed');
      n.receive([alert({ alertname: 'AfterStop' })]); // ignored, does not throw
    } finally {
      hung.closeAllConnections();
      await new Promise<void>((r) => hung.close(() => r()));
    }
  });

  it('does not notify an alert muted by an active silence; once the silence expires it is notified', async () => {
    const hook = await startWebhook();
    const silences = new Silences();
    const s = silences.add({ matchers: [{ name: 'alertname', value: 'Muted' }, { name: 'env', value: 'prod|staging', isRegex: true }], durationMs: 3_600_000, createdBy: 'test', comment: 'maintenance' });
    const n = new Notifier({ config: parseNotifyConfig(webhookConfig([{ url: hook.url }])), logger: quietLogger, silences });
    try {
      n.receive([alert({ alertname: 'Muted', env: 'prod' }), alert({ alertname: 'Other', env: 'prod' })]);
      await hook.waitFor((h) => h.body.groupLabels.alertname === 'Other');
      await sleep(1500); // more than group_wait + group_interval
      assert.equal(hook.hits.filter((h) => h.body.groupLabels.alertname === 'Muted').length, 0, 'the silenced alert is not notified');
      silences.expire(s.id);
      const got = await hook.waitFor((h) => h.body.groupLabels.alertname === 'Muted');
      assert.equal(got.body.alerts[0].labels.env, 'prod');
    } finally {
      await n.stop();
      await hook.close();
    }
  });

  it('inhibit_rules: a firing critical alert mutes the warning with the same instance', async () => {
    const hook = await startWebhook();
    const cfg = `${webhookConfig([{ url: hook.url }])}
inhibit_rules:
  - source_matchers: [severity="critical"]
    target_matchers: [severity="warning"]
    equal: [instance]
`;
    const n = new Notifier({ config: parseNotifyConfig(cfg), logger: quietLogger });
    try {
      n.receive([alert({ alertname: 'Down', severity: 'critical', instance: 'a' }), alert({ alertname: 'Slow', severity: 'warning', instance: 'a' }), alert({ alertname: 'Slow2', severity: 'warning', instance: 'b' })]);
      await hook.waitFor((h) => h.body.groupLabels.alertname === 'Down');
      await hook.waitFor((h) => h.body.groupLabels.alertname === 'Slow2');
      await sleep(1500);
      assert.equal(hook.hits.filter((h) => h.body.groupLabels.alertname === 'Slow').length, 0);
    } finally {
      await n.stop();
      await hook.close();
    }
  });

  it('reload re-routes the alerts held to the new configuration', async () => {
    const first = await startWebhook();
    const second = await startWebhook();
    const n = new Notifier({ config: parseNotifyConfig(webhookConfig([{ url: first.url }])), logger: quietLogger });
    try {
      n.receive([alert({ alertname: 'Moved' })]);
      await first.waitFor((h) => h.body.groupLabels.alertname === 'Moved');
      n.reload(parseNotifyConfig(webhookConfig([{ url: second.url }])));
      const got = await second.waitFor((h) => h.body.groupLabels.alertname === 'Moved');
      assert.equal(got.body.alerts[0].status, 'firing');
      await sleep(1000);
      assert.equal(first.hits.length, 1, 'the old receiver is no longer used');
    } finally {
      await n.stop();
      await first.close();
      await second.close();
    }
  });

  it('emails firing and resolved notifications over SMTP with auth: subject, recipients, text and HTML bodies', async () => {
    const smtp = await startSmtp();
    const cfg = `
global:
  smtp_smarthost: '127.0.0.1:${smtp.port}'
  smtp_from: 'beacon@example.org'
  smtp_auth_username: beacon
  smtp_auth_password: secret
  smtp_require_tls: false
route:
  receiver: mail
  group_by: [alertname]
  group_wait: 200ms
  group_interval: 700ms
receivers:
  - name: mail
    email_configs:
      - to: 'oncall@example.org, lead@example.org'
        send_resolved: true
        headers:
          X-Beacon-Team: core
`;
    const n = new Notifier({ config: parseNotifyConfig(cfg), logger: quietLogger, externalURL: 'http://beacon.example:7379' });
    try {
      const a = alert(
        { alertname: 'HighLatency', endpoint: '/users', severity: 'critical' },
        { annotations: { summary: 'api.latency is 500 ms', description: 'p99 <above> 400 ms & rising' }, generatorURL: 'http://beacon/graph?x=1' },
      );
      n.receive([a]);
      const [m] = await smtp.waitForMails(1);
      assert.ok(m !== undefined);
      assert.equal(m.from, 'beacon@example.org');
      assert.deepEqual(m.to.sort(), ['lead@example.org', 'oncall@example.org']);
      assert.deepEqual(smtp.auths, ['beacon']);
      const p = parseMail(m.raw);
      assert.equal(p.headers.subject, '[FIRING:1] HighLatency (/users critical)');
      assert.equal(p.headers['x-beacon-team'], 'core');
      for (const s of ['HighLatency', 'FIRING', 'endpoint = /users', 'severity = critical', 'summary = api.latency is 500 ms', 'p99 <above> 400 ms & rising', `Started: ${a.startsAt.slice(0, 19).replace('T', ' ')} UTC`]) {
        assert.ok(p.text.includes(s), `text body has ${JSON.stringify(s)}:\n${p.text}`);
      }
      for (const s of ['HighLatency', 'FIRING', '/users', 'critical', 'api.latency is 500 ms', 'p99 &lt;above&gt; 400 ms &amp; rising', 'http://beacon.example:7379']) {
        assert.ok(p.html.includes(s), `HTML body has ${JSON.stringify(s)}:\n${p.html}`);
      }
      assert.ok(!p.html.includes('<above>'), 'annotation text is escaped in HTML');

      n.receive([{ ...a, endsAt: iso(Date.now()) }]);
      const [, r] = await smtp.waitForMails(2);
      const pr = parseMail(r?.raw ?? '');
      assert.equal(pr.headers.subject, '[RESOLVED] HighLatency (/users critical)');
      assert.ok(pr.text.includes('RESOLVED') && pr.text.includes('Resolved:'), pr.text);
    } finally {
      await n.stop();
      await smtp.close();
    }
  });

  it('an SMTP server that is down is retried until it is up: the email arrives', async () => {
    const port = await freePort();
    const cfg = `
route:
  receiver: mail
  group_wait: 200ms
  group_interval: 700ms
receivers:
  - name: mail
    email_configs:
      - to: oncall@example.org
        from: beacon@example.org
        smarthost: 127.0.0.1:${port}
        require_tls: false
`;
    const n = new Notifier({ config: parseNotifyConfig(cfg), logger: quietLogger, retryInitialMs: 200, retryMaxMs: 500 });
    let smtp: Awaited<ReturnType<typeof startSmtp>> | undefined;
    try {
      n.receive([alert({ alertname: 'MailLater' })]);
      const deadline = Date.now() + 15_000;
      while (!n.recentHistory('mail').some((e) => e.status === 'failed')) {
        assert.ok(Date.now() < deadline, 'a failed SMTP attempt is recorded');
        await sleep(50);
      }
      smtp = await startSmtp(port);
      const [m] = await smtp.waitForMails(1);
      assert.match(parseMail(m?.raw ?? '').headers.subject ?? '', /^\[FIRING:1\]/);
      const h = n.recentHistory('mail');
      assert.equal(h.at(-1)?.status, 'success');
      assert.equal(h.at(-1)?.integration, 'email[0]');
      assert.match(h[0]?.error ?? '', /ECONNREFUSED|connect/i);
    } finally {
      await n.stop();
      await smtp?.close();
    }
  });
});
