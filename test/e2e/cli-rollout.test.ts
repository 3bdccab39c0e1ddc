/**
 * `beacon rollout` end to end (issue 16): the built CLI against a running node — start with a
 * value file, steps, bake, selector and guard; status; pause, resume, promote; abort; and the
 * usage and server errors with their exit codes.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startTestNode, tempDir } from '../helpers/node.js';
import { runCli } from './cli-helpers.js';

const RULES = `groups:
  - name: checkout
    interval: 1s
    rules:
      - alert: CheckoutErrorRateHigh
        expr: max_over_time(checkout_errors[3s]) > 5
`;

describe('beacon rollout', () => {
  let node: Awaited<ReturnType<typeof startTestNode>>;
  let dir: ReturnType<typeof tempDir>;
  const cli = (...args: string[]) => runCli(['--endpoint', node.url, ...args]);

  before(async () => {
    dir = tempDir();
    const rules = join(dir.dir, 'checkout.yml');
    writeFileSync(rules, RULES);
    node = await startTestNode({ metricsStore: { selfScrapeIntervalMs: 0 }, alerting: { ruleFiles: [rules], defaultRules: false }, rolloutTickMs: 200 });
  });
  after(async () => {
    await node?.cleanup();
    dir?.cleanup();
  });

  it('starts, shows, pauses, resumes, promotes and aborts a rollout', async () => {
    assert.equal((await cli('put', 'app/checkout/config', '{"enabled": false}')).code, 0);
    const file = join(dir.dir, 'new.json');
    writeFileSync(file, '{"enabled": true, "rollout": 10}');
    const started = await cli('rollout', 'start', 'app/checkout/config', '--value-file', file, '--steps', '1%,10%,50%,100%', '--bake', '10m', '--select', 'region=eu', '--guard', 'CheckoutErrorRateHigh');
    assert.equal(started.code, 0, started.stderr);
    assert.match(started.stdout, /started at 1%/);
    const status = await cli('rollout', 'status', 'app/checkout/config');
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, /running/);
    assert.match(status.stdout, /step +1\/4 \(\[1%\] 10% 50% 100%\)/);
    assert.match(status.stdout, /selector +region=eu/);
    assert.match(status.stdout, /guard +CheckoutErrorRateHigh: ok/);
    assert.match(status.stdout, /clients +candidate: 0, v1: 0/);
    assert.match((await cli('rollout', 'pause', 'app/checkout/config')).stdout, /paused at 1%/);
    assert.match((await cli('rollout', 'resume', 'app/checkout/config')).stdout, /running at 1%/);
    assert.match((await cli('rollout', 'promote', 'app/checkout/config')).stdout, /running at 10%/);
    const json = JSON.parse((await cli('rollout', 'status', 'app/checkout/config', '--json')).stdout) as { share: number; history: unknown[] };
    assert.equal(json.share, 10);
    assert.equal(json.history.length, 4);
    // A plain write is refused while it runs (server error: exit code of a conflict).
    const put = await cli('put', 'app/checkout/config', '{"enabled": false}');
    assert.notEqual(put.code, 0);
    assert.match(put.stderr, /rollout/);
    assert.match((await cli('rollout', 'abort', 'app/checkout/config', '--reason', 'not today')).stdout, /aborted/);
    const promote = await cli('rollout', 'promote', 'app/checkout/config');
    assert.notEqual(promote.code, 0);
    assert.match(promote.stderr, /aborted/);
    // Completion through promote --full on a new rollout writes the candidate as v2.
    assert.equal((await cli('rollout', 'start', 'app/checkout/config', '--value', '{"enabled": true}', '--steps', '50%', '--bake', '1h')).code, 0);
    assert.match((await cli('rollout', 'promote', 'app/checkout/config', '--full')).stdout, /completed \(now v2\)/);
    assert.match((await cli('get', 'app/checkout/config')).stdout, /"enabled": ?true/);
  });

  it('refuses bad options and bad input with clear errors', async () => {
    await cli('put', 'app/other', 'x');
    const badSteps = await cli('rollout', 'start', 'app/other', '--value', 'y', '--steps', '1%,ten', '--bake', '1m');
    assert.notEqual(badSteps.code, 0);
    assert.match(badSteps.stderr, /'ten' is not a percentage/);
    const badGuard = await cli('rollout', 'start', 'app/other', '--value', 'y', '--steps', '10%,100%', '--bake', '1m', '--guard', 'Nope');
    assert.notEqual(badGuard.code, 0);
    assert.match(badGuard.stderr, /names no alerting rule/);
    const badSelector = await cli('rollout', 'start', 'app/other', '--value', 'y', '--steps', '10%', '--bake', '1m', '--select', 'tier in (a,');
    assert.notEqual(badSelector.code, 0);
    assert.match(badSelector.stderr, /does not parse/);
    const none = await cli('rollout', 'status', 'app/other');
    assert.notEqual(none.code, 0);
    assert.match(none.stderr, /has no rollout/);
  });
});
