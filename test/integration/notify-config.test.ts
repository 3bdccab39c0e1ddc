/**
 * The built-in notifier's config format is Alertmanager's: the full example in
 * docs/notifications.md is accepted by both `amtool check-config` (Debian
 * prometheus-alertmanager) and Beacon, and configs Alertmanager refuses are refused by Beacon too.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { InvalidArgumentError } from '../../src/errors.js';
import { parseNotifyConfig } from '../../src/obs/notify/index.js';
import { ROOT, tempDir } from '../helpers/node.js';

const AMTOOL = '/usr/bin/amtool';

function amtoolAccepts(yaml: string): { ok: boolean; output: string } {
  const tmp = tempDir('beacon-amtool-');
  try {
    const file = join(tmp.dir, 'alertmanager.yml');
    writeFileSync(file, yaml);
    const r = spawnSync(AMTOOL, ['check-config', file], { encoding: 'utf8', timeout: 30_000 });
    return { ok: r.status === 0, output: `${r.stdout}${r.stderr}` };
  } finally {
    tmp.cleanup();
  }
}

function docsExample(): string {
  const md = readFileSync(join(ROOT, 'docs/notifications.md'), 'utf8');
  const at = md.indexOf('<!-- notify-config-example');
  assert.ok(at >= 0, 'docs/notifications.md has the marked example');
  const m = /```yaml\n([\s\S]*?)```/.exec(md.slice(at));
  assert.ok(m !== null);
  return m[1] as string;
}

const OK = `
route:
  receiver: a
  group_by: [alertname]
  routes:
    - matchers: ['severity="page"']
receivers:
  - name: a
    webhook_configs: [{url: 'http://127.0.0.1:9/x'}]
`;

describe('notification config agrees with Alertmanager', () => {
  it('the documented full example is valid for amtool and for Beacon', () => {
    const yaml = docsExample();
    const am = amtoolAccepts(yaml);
    assert.ok(am.ok, am.output);
    const c = parseNotifyConfig(yaml);
    assert.equal(c.route.routes.length, 3);
    assert.deepEqual([...c.receivers.keys()], ['team-email', 'pager', 'api-team', 'dba']);
    assert.equal(c.inhibitRules.length, 1);
  });

  it('configs that Alertmanager refuses are refused by Beacon', () => {
    assert.ok(amtoolAccepts(OK).ok, 'the base config is valid');
    assert.doesNotThrow(() => parseNotifyConfig(OK));
    const bad: Record<string, string> = {
      'unknown receiver': OK.replace('receiver: a', 'receiver: b'),
      'unknown field': OK.replace('group_by: [alertname]', 'group_by: [alertname]\n  group_bye: [x]'),
      'bad duration': OK.replace('group_by: [alertname]', 'group_by: [alertname]\n  group_wait: 10 seconds'),
      'bad matcher regex': OK.replace('severity="page"', 'severity=~"(page"'),
      "'...' with other labels": OK.replace('group_by: [alertname]', "group_by: ['...', alertname]"),
      'duplicate receiver': OK.replace("    webhook_configs: [{url: 'http://127.0.0.1:9/x'}]", "    webhook_configs: [{url: 'http://127.0.0.1:9/x'}]\n  - name: a"),
      'webhook without url': OK.replace("{url: 'http://127.0.0.1:9/x'}", '{send_resolved: true}'),
      'email without smarthost': OK.replace("webhook_configs: [{url: 'http://127.0.0.1:9/x'}]", 'email_configs: [{to: a@b, from: c@d}]'),
      'no route': "receivers: [{name: a}]\n",
      'zero group_interval': OK.replace('group_by: [alertname]', 'group_by: [alertname]\n  group_interval: 0s'),
    };
    for (const [what, yaml] of Object.entries(bad)) {
      assert.equal(amtoolAccepts(yaml).ok, false, `amtool refuses: ${what}`);
      assert.throws(() => parseNotifyConfig(yaml), InvalidArgumentError, `Beacon refuses: ${what}`);
    }
  });
});
