import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InvalidArgumentError } from '../../errors.js';
import { parseNotifyConfig } from './config.js';
import { fingerprint, goTime, parseDurationMs, parseMatchers, validateAlert } from './labels.js';

const BASE = `
route:
  receiver: team
  group_by: [alertname, cluster]
  group_wait: 10s
  routes:
    - matchers: ['severity=~"page|critical"', 'env!="dev"']
      receiver: pager
      repeat_interval: 1h
      routes:
        - match: {team: db}
          group_by: ['...']
    - match_re: {service: 'api|web'}
      continue: true
receivers:
  - name: team
    webhook_configs: [{url: 'http://hooks.example/team'}]
  - name: pager
    email_configs:
      - to: oncall@example.org
        from: beacon@example.org
        smarthost: smtp.example.org:587
`;

function rejects(text: string, path: string, line?: number): void {
  assert.throws(
    () => parseNotifyConfig(text),
    (err: unknown) => {
      assert.ok(err instanceof InvalidArgumentError, String(err));
      assert.equal(err.code, 'invalid_argument');
      assert.equal(err.details?.path, path, err.message);
      if (line !== undefined) assert.equal(err.details?.line, line, err.message);
      return true;
    },
  );
}

describe('notification config (Alertmanager format)', () => {
  it('applies Alertmanager defaults and inheritance down the route tree', () => {
    const c = parseNotifyConfig(BASE);
    const root = c.route;
    assert.equal(root.receiver, 'team');
    assert.deepEqual(root.groupBy, ['alertname', 'cluster']);
    assert.equal(root.groupWaitMs, 10_000);
    assert.equal(root.groupIntervalMs, 300_000, 'group_interval defaults to 5m');
    assert.equal(root.repeatIntervalMs, 4 * 3_600_000, 'repeat_interval defaults to 4h');
    const pager = root.routes[0];
    assert.ok(pager !== undefined);
    assert.equal(pager.receiver, 'pager');
    assert.deepEqual(pager.groupBy, ['alertname', 'cluster'], 'group_by is inherited');
    assert.equal(pager.groupWaitMs, 10_000, 'group_wait is inherited');
    assert.equal(pager.repeatIntervalMs, 3_600_000);
    const db = pager.routes[0];
    assert.ok(db !== undefined);
    assert.equal(db.receiver, 'pager', 'the receiver is inherited');
    assert.equal(db.repeatIntervalMs, 3_600_000, "the parent's override is inherited");
    assert.equal(db.groupByAll, true);
    // Route keys as Alertmanager builds them: parent key, '/', the sorted matchers.
    assert.equal(root.key, '{}');
    assert.equal(pager.key, '{}/{env!="dev",severity=~"page|critical"}');
    assert.equal(db.key, '{}/{env!="dev",severity=~"page|critical"}/{team="db"}');
    assert.equal(root.routes[1]?.continue, true);
    assert.equal(c.resolveTimeoutMs, 300_000);
    const mail = c.receivers.get('pager')?.emailConfigs[0];
    assert.deepEqual(mail?.smarthost, { host: 'smtp.example.org', port: 587 });
    assert.equal(mail?.requireTls, true, 'require_tls defaults to true');
    assert.equal(mail?.sendResolved, false, 'email send_resolved defaults to false');
    assert.equal(c.receivers.get('team')?.webhookConfigs[0]?.sendResolved, true, 'webhook send_resolved defaults to true');
  });

  it('takes SMTP settings from global and HTTP credentials from http_config', () => {
    const c = parseNotifyConfig(`
global:
  smtp_smarthost: 'mail:25'
  smtp_from: a@b
  smtp_require_tls: false
  resolve_timeout: 1m
route: {receiver: r}
receivers:
  - name: r
    email_configs: [{to: x@y}]
    webhook_configs: [{url: 'https://h/x', http_config: {basic_auth: {username: u, password: p}}}]
`);
    const e = c.receivers.get('r')?.emailConfigs[0];
    assert.equal(e?.from, 'a@b');
    assert.equal(e?.requireTls, false);
    assert.equal(c.resolveTimeoutMs, 60_000);
    assert.equal(c.receivers.get('r')?.webhookConfigs[0]?.headers.authorization, `Basic ${Buffer.from('u:p').toString('base64')}`);
  });

  it('refuses bad configs naming the field path and line', () => {
    rejects('route: {receiver: nope}\nreceivers: [{name: a}]', 'route.receiver', 1);
    rejects(`${BASE}\nfoo: 1`, 'foo');
    rejects(BASE.replace('group_wait: 10s', 'group_wait: 10 seconds'), 'route.group_wait', 5);
    rejects(BASE.replace('repeat_interval: 1h', 'repeat_intervall: 1h'), 'route.routes[0].repeat_intervall', 9);
    rejects(BASE.replace('env!="dev"', 'env!~"(dev"'), 'route.routes[0].matchers[1]', 7);
    rejects(BASE.replace("group_by: ['...']", "group_by: ['...', job]"), 'route.routes[0].routes[0].group_by', 12);
    rejects(BASE.replace("{url: 'http://hooks.example/team'}", "{url: 'ftp://x'}"), 'receivers[0].webhook_configs[0].url');
    rejects(BASE.replace('smarthost: smtp.example.org:587', 'smarthost: smtp.example.org'), 'receivers[1].email_configs[0].smarthost');
    rejects(BASE.replace('- name: pager', '- name: team'), 'receivers[1].name');
    rejects(BASE.replace('    webhook_configs:', '    slack_configs: []\n    webhook_configs:'), 'receivers[0].slack_configs');
    rejects('route:\n  receiver: a\n  matchers: [x="y"]\nreceivers: [{name: a}]', 'route');
    rejects('receivers: [{name: a}]', 'route');
    rejects('route: {receiver: a, group_interval: 0s}\nreceivers: [{name: a}]', 'route.group_interval');
  });

  it('reports YAML syntax errors with their line', () => {
    assert.throws(
      () => parseNotifyConfig('route:\n  receiver: a\n   bad: [\nreceivers: []'),
      (err: unknown) => err instanceof InvalidArgumentError && typeof err.details?.line === 'number',
    );
  });
});

describe('notify label primitives', () => {
  it('parses matchers as Alertmanager writes them', () => {
    const ms = parseMatchers('{alertname="High latency", severity=~"crit|page",env!=dev}');
    assert.deepEqual(
      ms.map((m) => [m.name, m.value, m.isRegex, m.isEqual]),
      [
        ['alertname', 'High latency', false, true],
        ['severity', 'crit|page', true, true],
        ['env', 'dev', false, false],
      ],
    );
    assert.equal(ms[1]?.matches('crit'), true);
    assert.equal(ms[1]?.matches('critical'), false, 'regexes are anchored');
    assert.equal(ms[2]?.matches(''), true);
    assert.throws(() => parseMatchers('a=~"("'), InvalidArgumentError);
    assert.throws(() => parseMatchers('1a=b'), InvalidArgumentError);
    assert.throws(() => parseMatchers('a~b'), InvalidArgumentError);
  });

  it('validates alerts: labels required, empty values dropped, Go zero endsAt means unset', () => {
    const a = validateAlert({ labels: { alertname: 'X', empty: '' }, startsAt: '2026-12-06T12:00:00Z', endsAt: '0001-01-01T00:00:00Z' }, 0);
    assert.deepEqual(a.labels, { alertname: 'X' });
    assert.deepEqual(a.annotations, {});
    assert.equal(a.endsAt, undefined);
    assert.throws(() => validateAlert({ labels: {}, startsAt: '2026-12-06T12:00:00Z' }, 3), InvalidArgumentError);
    assert.throws(() => validateAlert({ labels: { 'bad-name': 'x' }, startsAt: '2026-12-06T12:00:00Z' }, 0), InvalidArgumentError);
    assert.throws(() => validateAlert({ labels: { a: 'x' }, startsAt: 'yesterday' }, 0), InvalidArgumentError);
    assert.throws(() => validateAlert({ labels: { a: 1 }, startsAt: '2026-12-06T12:00:00Z' }, 0), InvalidArgumentError);
  });

  it('parses durations in Alertmanager form', () => {
    assert.equal(parseDurationMs('1h30m'), 5_400_000);
    assert.equal(parseDurationMs('200ms'), 200);
    assert.equal(parseDurationMs('0'), 0);
    assert.throws(() => parseDurationMs('30m1h'), InvalidArgumentError);
    assert.throws(() => parseDurationMs('1.5s'), InvalidArgumentError);
  });

  it("computes fingerprints that do not depend on label order, and formats times as Go's RFC3339Nano", () => {
    assert.equal(fingerprint({ a: '1', b: '2' }), fingerprint({ b: '2', a: '1' }));
    assert.notEqual(fingerprint({ a: '1', b: '2' }), fingerprint({ a: '12' }));
    assert.match(fingerprint({ alertname: 'x' }), /^[0-9a-f]{16}$/);
    // Against a plain BigInt FNV-1a 64, including non-ASCII values.
    const reference = (labels: Record<string, string>): string => {
      let h = 14695981039346656037n;
      const feed = (bytes: Iterable<number>): void => {
        for (const b of bytes) h = ((h ^ BigInt(b)) * 1099511628211n) & ((1n << 64n) - 1n);
      };
      for (const n of Object.keys(labels).sort()) {
        feed(Buffer.from(n));
        feed([0xff]);
        feed(Buffer.from(labels[n] as string));
        feed([0xff]);
      }
      return h.toString(16).padStart(16, '0');
    };
    const samples: Array<Record<string, string>> = [{}, { a: '' }, { alertname: 'HighLatency', instance: 'host-1:9100', job: 'node' }, { zone: 'zürich', msg: '警告 🚨 ok' }, { x: 'y'.repeat(300) }];
    for (const l of samples) {
      assert.equal(fingerprint(l), reference(l), JSON.stringify(l));
    }
    assert.equal(goTime(Date.UTC(2026, 11, 6, 15, 40, 0, 0)), '2026-12-06T15:40:00Z');
    assert.equal(goTime(Date.UTC(2026, 11, 6, 15, 40, 0, 120)), '2026-12-06T15:40:00.12Z');
  });
});
