/** Issue 9 finding 10: the login limiter is keyed on (address, username), with a higher per-address cap. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { http } from '../helpers/node.js';
import { ADMIN_PASSWORD, startSecureNode, type SecureNode } from './security-helpers.js';

describe('hardening: login limiter per (address, username)', () => {
  let node: SecureNode;
  before(async () => {
    node = await startSecureNode({ security: { loginRateLimit: { rate: 1 / 60, burst: 3 } } });
  });
  after(async () => {
    await node.cleanup();
  });

  it('guessing one name on an address does not lock out another user on that address', async () => {
    const attempt = (username: string, password: string) => http(`${node.url}/v1/auth/token`, { method: 'POST', body: { username, password } });
    const guesses: number[] = [];
    for (let i = 0; i < 4; i++) guesses.push((await attempt('root', `guess-${i}`)).status);
    assert.deepEqual(guesses, [401, 401, 401, 429]);
    const real = await attempt('admin', ADMIN_PASSWORD);
    assert.equal(real.status, 200, JSON.stringify(real.body));
  });

  it('the per-address cap still stops guessing across many names', async () => {
    const attempt = (username: string) => http(`${node.url}/v1/auth/token`, { method: 'POST', body: { username, password: 'nope' } });
    let limited = false;
    // The address cap is 10 × the per-name burst (30); 5 attempts were spent above.
    for (let i = 0; i < 40 && !limited; i++) limited = (await attempt(`name-${i}`)).status === 429;
    assert.ok(limited, 'the address cap answered 429');
  });
});
