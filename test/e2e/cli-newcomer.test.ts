// Issue 10 (a newcomer's first hour), the CLI's part: help never shows a credential (item 2),
// and every error, commander's usage errors too, has the one `beacon: ` prefix (item 12).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runCli } from './cli-helpers.js';

describe('beacon CLI for a newcomer (e2e)', () => {
  it('never prints BEACON_TOKEN in --help, of the program or of any subcommand', async () => {
    const token = 'eyJhbGciOiJFZERTQSJ9.a-credential-that-must-not-show';
    for (const args of [['--help'], ['get', '--help'], ['put', '--help'], ['watch', '--help'], ['login', '--help'], ['help', 'history']]) {
      const r = await runCli(args, { env: { BEACON_TOKEN: token } });
      assert.equal(r.code, 0, r.stderr);
      assert.ok(!`${r.stdout}${r.stderr}`.includes('eyJhbGciOi'), `${args.join(' ')} printed the token`);
      assert.ok(!`${r.stdout}${r.stderr}`.includes('must-not-show'), `${args.join(' ')} printed the token`);
    }
  });

  it('prefixes usage errors with `beacon: ` like every other error, exit 2', async () => {
    for (const args of [['no-such-command'], ['get'], ['get', 'k', '--no-such-option']]) {
      const r = await runCli(args);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /^beacon: /, `${args.join(' ')}: ${r.stderr}`);
      assert.doesNotMatch(r.stderr, /^error: /m);
    }
  });
});
