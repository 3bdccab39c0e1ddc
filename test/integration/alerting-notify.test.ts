/**
 * The seed's alerting journeys end to end (issue 13, seed 003): a real node with a rule file,
 * the built-in notifier (webhook + email to a real SMTP server in the test) and a real
 * Alertmanager (Debian `prometheus-alertmanager`, forwarding to a webhook in the test). Push
 * `api.latency` 500 → pending → firing → a webhook, an email and Alertmanager's webhook arrive;
 * push 200 → resolved notifications arrive. A silence made with the CLI mutes the next alert.
 * Groups evaluate every second (the test shortens intervals, not the node's clock).
 */
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CLI, http, startTestNode, tempDir } from '../helpers/node.js';
import { ALERTMANAGER_BIN, parseMail, startAlertmanager, startSmtp, startWebhook, type AlertmanagerProcess, type SmtpServer, type WebhookServer } from './notify-helpers.js';

const RULES = `groups:
  - name: api
    interval: 1s
    rules:
      - alert: HighLatency
        expr: avg_over_time(api_latency[3s]) > 400
        for: 2s
        labels:
          severity: page
        annotations:
          summary: 'latency {{ $value }} ms on {{ $labels.endpoint }}'
      - alert: DiskFull
        expr: max(disk_used_ratio) > 0.9
        labels:
          severity: page
`;

const skip = spawnSync(ALERTMANAGER_BIN, ['--version']).error ? 'prometheus-alertmanager is not installed' : false;

describe('seed 003 alerting journeys with real receivers', { skip }, () => {
  let node: Awaited<ReturnType<typeof startTestNode>>;
  let hook: WebhookServer;
  let amHook: WebhookServer;
  let smtp: SmtpServer;
  let am: AlertmanagerProcess;
  let dir: ReturnType<typeof tempDir>;

  before(async () => {
    dir = tempDir();
    hook = await startWebhook();
    amHook = await startWebhook();
    smtp = await startSmtp();
    am = await startAlertmanager(
      `route:\n  receiver: hook\n  group_by: [alertname]\n  group_wait: 0s\n  group_interval: 1s\n  repeat_interval: 1h\nreceivers:\n  - name: hook\n    webhook_configs:\n      - url: ${amHook.url}\n        send_resolved: true\n`,
    );
    const notify = join(dir.dir, 'notify.yml');
    writeFileSync(
      notify,
      `global:
  smtp_smarthost: '127.0.0.1:${smtp.port}'
  smtp_from: 'beacon@example.org'
  smtp_auth_username: beacon
  smtp_auth_password: secret
  smtp_require_tls: false
route:
  receiver: oncall
  group_by: [alertname]
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: oncall
    webhook_configs:
      - url: ${hook.url}
        send_resolved: true
    email_configs:
      - to: oncall@example.org
        send_resolved: true
`,
    );
    const rules = join(dir.dir, 'api.yml');
    writeFileSync(rules, RULES);
    node = await startTestNode({
      metricsStore: { selfScrapeIntervalMs: 0 },
      alerting: { ruleFiles: [rules], notifyConfig: notify, alertmanagerUrls: [am.url], defaultRules: false, externalUrl: 'http://beacon.example:7379' },
    });
  });

  after(async () => {
    await node?.cleanup();
    await am?.stop();
    await hook?.close();
    await amHook?.close();
    await smtp?.close();
    dir?.cleanup();
  });

  async function push(name: string, value: number, labels: Record<string, string> = {}): Promise<number> {
    const res = await http(`${node.url}/v1/metrics`, { method: 'POST', body: { name, value, labels } });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    return Date.now();
  }

  it('journey 1: api.latency 500 → firing, notified by webhook, email and Alertmanager within a minute', async () => {
    const t0 = await push('api.latency', 500, { endpoint: '/users' });
    const firing = (h: { body: { status?: string; commonLabels?: Record<string, string> } }) => h.body.status === 'firing' && h.body.commonLabels?.alertname === 'HighLatency';
    const ours = await hook.waitFor(firing, 60_000);
    assert.equal(ours.body.version, '4');
    assert.equal(ours.body.receiver, 'oncall');
    assert.equal(ours.body.externalURL, 'http://beacon.example:7379');
    const a = ours.body.alerts[0];
    assert.deepEqual(a.labels, { alertname: 'HighLatency', endpoint: '/users', severity: 'page' });
    assert.equal(a.annotations.summary, 'latency 500 ms on /users');
    assert.match(a.generatorURL, /^http:\/\/beacon\.example:7379\/ui\//);
    const theirs = await amHook.waitFor(firing, 60_000);
    assert.deepEqual(theirs.body.alerts[0].labels, a.labels);
    assert.equal(theirs.body.alerts[0].status, 'firing');
    const [mail] = await smtp.waitForMails(1, 60_000);
    assert.ok(mail);
    const parsed = parseMail(mail.raw);
    assert.match(parsed.headers.subject ?? '', /FIRING:1\] HighLatency/);
    assert.match(parsed.text, /latency 500 ms on \/users/);
    assert.match(parsed.html, /HighLatency/);
    // "Alert triggered and notified within 1 minute" (with for: 2s and a 1 s interval here).
    assert.ok(ours.at - t0 < 60_000, `notified ${ours.at - t0} ms after the push`);
  });

  it('journey 2: api.latency 200 → resolved, notified by webhook, email and Alertmanager within a minute', async () => {
    const t0 = await push('api.latency', 200, { endpoint: '/users' });
    const resolved = (h: { body: { status?: string; commonLabels?: Record<string, string> } }) => h.body.status === 'resolved' && h.body.commonLabels?.alertname === 'HighLatency';
    const ours = await hook.waitFor(resolved, 60_000);
    assert.equal(ours.body.alerts[0].status, 'resolved');
    assert.notEqual(ours.body.alerts[0].endsAt, '0001-01-01T00:00:00Z');
    await amHook.waitFor(resolved, 60_000);
    const mails = await smtp.waitForMails(2, 60_000);
    assert.match(parseMail(mails[1]?.raw ?? '').headers.subject ?? '', /RESOLVED\] HighLatency/);
    assert.ok(ours.at - t0 < 60_000);
    const hist = await http(`${node.url}/v1/alerts/notifications`);
    const oncall = (hist.body.receivers as { name: string; history: { status: string; integration: string }[] }[]).find((r) => r.name === 'oncall');
    assert.ok(oncall && oncall.history.some((h) => h.integration.startsWith('webhook')) && oncall.history.some((h) => h.integration.startsWith('email')), JSON.stringify(hist.body));
    assert.equal(hist.body.alertmanagers[0].url, am.url);
    assert.ok(hist.body.alertmanagers[0].sent >= 2, JSON.stringify(hist.body.alertmanagers));
  });

  it('an alert that comes back after resolving is notified again at once', async () => {
    const from = hook.hits.length;
    await push('api.latency', 900, { endpoint: '/users' });
    const again = await hook.waitFor((h) => h.body.status === 'firing' && h.body.commonLabels?.alertname === 'HighLatency', 30_000, from);
    assert.equal(again.body.alerts[0].annotations.summary, 'latency 900 ms on /users');
    await push('api.latency', 100, { endpoint: '/users' });
    await hook.waitFor((h) => h.body.status === 'resolved' && h.body.commonLabels?.alertname === 'HighLatency', 30_000, hook.hits.indexOf(again) + 1);
  });

  it('a silence made with `beacon alerts silence` mutes the built-in notifications of matching alerts, and shows on the alert', async () => {
    // Asynchronously: the node runs in this process, so a synchronous spawn would block it.
    const cli = (...args: string[]): Promise<{ status: number; stdout: string; stderr: string }> =>
      new Promise((resolve) => {
        execFile(process.execPath, [CLI, '--endpoint', node.url, ...args], { encoding: 'utf8' }, (err, stdout, stderr) =>
          resolve({ status: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, stdout, stderr }),
        );
      });
    const made = await cli('alerts', 'silence', 'alertname=DiskFull', '--for', '10m', '--comment', 'maintenance');
    assert.equal(made.status, 0, made.stderr);
    const id = /silence (\S+) created/.exec(made.stdout)?.[1];
    assert.ok(id, made.stdout);
    const hitsBefore = hook.hits.length;
    await push('disk_used_ratio', 0.95);
    let silencedBy: string[] = [];
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      const r = await http(`${node.url}/v1/alerts?state=firing`);
      const a = (r.body.alerts as { rule: string; silencedBy: string[] }[]).find((x) => x.rule === 'DiskFull');
      if (a) {
        silencedBy = a.silencedBy;
        break;
      }
      await new Promise((r2) => setTimeout(r2, 200));
    }
    assert.deepEqual(silencedBy, [id]);
    const listed = await cli('alerts');
    assert.match(listed.stdout, /DiskFull\s+firing \(silenced\)/);
    await new Promise((r) => setTimeout(r, 3000));
    assert.ok(!hook.hits.slice(hitsBefore).some((h) => h.body.commonLabels?.alertname === 'DiskFull'), 'a silenced alert was notified');
    // Expired, the next flush notifies it.
    const ended = await cli('alerts', 'expire', id);
    assert.equal(ended.status, 0, ended.stderr);
    await hook.waitFor((h) => h.body.commonLabels?.alertname === 'DiskFull' && h.body.status === 'firing', 30_000);
    const silences = await cli('--json', 'alerts', 'silences');
    assert.equal((JSON.parse(silences.stdout) as { id: string; status: { state: string } }[]).find((s) => s.id === id)?.status.state, 'expired');
  });

  it('refuses bad silences with the reason', async () => {
    const empty = await http(`${node.url}/v1/alerts/silences`, { method: 'POST', body: { matchers: [{ name: 'a', value: '.*', isRegex: true }], duration: '1h' } });
    assert.equal(empty.status, 400);
    assert.match(empty.body.error.message, /match the empty string|at least one matcher/i);
    const regex = await http(`${node.url}/v1/alerts/silences`, { method: 'POST', body: { matchers: [{ name: 'a', value: '(', isRegex: true }], duration: '1h' } });
    assert.equal(regex.status, 400);
    const unknown = await http(`${node.url}/v1/alerts/silences/does-not-exist`, { method: 'DELETE' });
    assert.equal(unknown.status, 404);
  });
});
