// A lock holder that is a separate process, SIGKILLed while holding the lock against the built `beacon serve`.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { test } from 'node:test';
import { http, spawnServer, tempDir } from '../helpers/node.js';

const TTL_SECONDS = 2;

/** The holder: takes the lock over HTTP with a 2 s lease, prints it, then keeps the lease alive every 500 ms. */
const HOLDER = `
const url = process.argv[1];
const res = await fetch(url + '/v1/locks/jobs/nightly', {
  method: 'POST',
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify({ ttl: ${TTL_SECONDS} }),
});
const lock = await res.json();
process.stdout.write(JSON.stringify({ status: res.status, lock }) + '\\n');
setInterval(() => {
  fetch(url + '/v1/leases/' + lock.lease + '/keepalive', { method: 'POST' }).catch(() => {});
}, 500);
`;

function waitForLine(child: ChildProcess, ms: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`holder printed nothing within ${ms} ms: ${out}`)), ms);
    child.stdout?.setEncoding('utf8');
    child.stdout?.on('data', (d: string) => {
      out += d;
      const nl = out.indexOf('\n');
      if (nl >= 0) {
        clearTimeout(timer);
        resolve(out.slice(0, nl));
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`holder exited with ${code}: ${out}`));
    });
  });
}

test('a lock holder process killed with SIGKILL loses the lock once its lease expires; the waiter acquires within TTL + 1 s', async () => {
  const tmp = tempDir();
  const server = await spawnServer(['--data-dir', tmp.dir]);
  let holder: ChildProcess | undefined;
  try {
    holder = spawn(process.execPath, ['--input-type=module', '-e', HOLDER, server.url], { stdio: ['ignore', 'pipe', 'inherit'] });
    const held = JSON.parse(await waitForLine(holder, 10_000)) as { status: number; lock: { key: string; lease: number; fencingToken: number } };
    assert.equal(held.status, 200);

    let acquiredAt = 0;
    const waiter = http(`${server.url}/v1/locks/jobs/nightly`, { method: 'POST', body: { ttl: 10, timeoutMs: 15_000 } }).then((r) => {
      acquiredAt = Date.now();
      return r;
    });
    // The keep-alives hold the lock well past its TTL while the holder lives.
    await new Promise((r) => setTimeout(r, TTL_SECONDS * 1000 + 500));
    assert.equal(acquiredAt, 0, 'the waiter acquired while the holder was alive');
    const state = await http(`${server.url}/v1/locks/jobs/nightly`);
    assert.equal(state.body.holder.key, held.lock.key);
    assert.equal(state.body.waiters.length, 1);

    const killedAt = Date.now();
    holder.kill('SIGKILL');
    await new Promise((r) => holder?.once('exit', r));
    const res = await waiter;
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const took = acquiredAt - killedAt;
    assert.ok(took <= (TTL_SECONDS + 1) * 1000, `the waiter acquired ${took} ms after the kill, more than TTL + 1 s`);
    assert.ok(res.body.fencingToken > held.lock.fencingToken);
    assert.equal((await http(`${server.url}/v1/leases/${held.lock.lease}`)).status, 404, "the dead holder's lease is gone");
  } finally {
    if (holder !== undefined && holder.exitCode === null && holder.signalCode === null) holder.kill('SIGKILL');
    await server.kill();
    tmp.cleanup();
  }
});
