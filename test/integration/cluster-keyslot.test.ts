/**
 * keySlot against the peer: a real redis-server in cluster mode answers CLUSTER KEYSLOT for
 * random binary keys (braces, empty tags, non-ASCII and invalid UTF-8 bytes), and Beacon's
 * keySlot must give the same slot for every one.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import { keySlot } from '../../src/cache/index.js';
import { freePort, tempDir } from '../helpers/node.js';
import { prng, TEST_SEED } from '../helpers/random.js';
import { redisCli, sleep } from './resp-helpers.js';

const REDIS_SERVER = '/usr/bin/redis-server';
const KEYS = 2000;

/** Random bytes built from fragments that exercise the hash-tag rule and UTF-8. */
function randomBytes(rnd: () => number, most: number): Buffer {
  const fragments = ['{', '}', '{}', '{{', '}}', 'user', 'x', 'é', 'ключ', '😀', ':'];
  const parts: Buffer[] = [];
  const n = Math.floor(rnd() * (most + 1));
  for (let i = 0; i < n; i++) {
    const pick = rnd();
    if (pick < 0.6) parts.push(Buffer.from(fragments[Math.floor(rnd() * fragments.length)] as string, 'utf8'));
    else if (pick < 0.8) parts.push(Buffer.from([Math.floor(rnd() * 256)])); // any byte, also invalid UTF-8
    else parts.push(Buffer.from(String(Math.floor(rnd() * 1e6))));
  }
  return Buffer.concat(parts);
}

/** A random key; half of them put a (possibly empty) `{…}` around a random middle. */
function randomKey(rnd: () => number): Buffer {
  if (rnd() < 0.5) return randomBytes(rnd, 10);
  return Buffer.concat([randomBytes(rnd, 3), Buffer.from('{'), randomBytes(rnd, 3), Buffer.from('}'), randomBytes(rnd, 4)]);
}

const skip = existsSync(REDIS_SERVER) ? false : `${REDIS_SERVER} is not installed (Debian package redis-server): no peer to compare with`;

describe('keySlot against redis-server CLUSTER KEYSLOT', { skip, timeout: 60_000 }, () => {
  let child: ChildProcess | undefined;
  let tmp: ReturnType<typeof tempDir> | undefined;
  let rd: Redis | undefined;

  before(async () => {
    tmp = tempDir('beacon-cluster-keyslot-');
    const port = await freePort();
    // The cluster bus would take port + 10000, which may be past 65535 or busy: give it its own port.
    const busPort = await freePort();
    child = spawn(
      REDIS_SERVER,
      [
        '--cluster-enabled', 'yes',
        '--cluster-config-file', `${tmp.dir}/nodes.conf`,
        '--cluster-port', String(busPort),
        '--port', String(port),
        '--bind', '127.0.0.1',
        '--save', '',
        '--appendonly', 'no',
        '--dir', tmp.dir,
      ],
      { stdio: 'ignore' },
    );
    const until = Date.now() + 20_000;
    for (;;) {
      try {
        if ((await redisCli(port, ['ping'])).trim() === 'PONG') break;
      } catch {
        // not up yet
      }
      if (Date.now() > until) throw new Error('redis-server did not start in cluster mode within 20 s');
      await sleep(100);
    }
    rd = new Redis({ port, host: '127.0.0.1', maxRetriesPerRequest: 1 });
  });

  after(async () => {
    rd?.disconnect();
    if (child?.pid !== undefined && child.exitCode === null) {
      const exited = new Promise((resolve) => child?.once('exit', resolve));
      process.kill(child.pid, 'SIGTERM');
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([exited, new Promise((resolve) => (timer = setTimeout(resolve, 5000)))]);
      clearTimeout(timer);
    }
    tmp?.cleanup();
  });

  test(`[seed ${TEST_SEED}] ${KEYS} random binary keys: the same slot as redis-server, the spec's vectors included`, async () => {
    const c = rd as Redis;
    const rnd = prng(TEST_SEED);
    const keys: Buffer[] = ['foo', 'foo{}{bar}', 'foo{{bar}}', 'foo{bar}{zap}', '{user1000}.following', '', 'ключ'].map((k) => Buffer.from(k));
    while (keys.length < KEYS) keys.push(randomKey(rnd));
    // Sent together: ioredis pipelines them on the one connection.
    const want = await Promise.all(keys.map((k) => c.call('CLUSTER', 'KEYSLOT', k)));
    let tagged = 0;
    let emptyTag = 0;
    for (const [i, key] of keys.entries()) {
      assert.equal(keySlot(key), want[i], `key ${key.toString('hex')} (${JSON.stringify(key.toString('latin1'))})`);
      // A key that is valid UTF-8 gives the same slot passed as a string.
      const text = key.toString('utf8');
      if (Buffer.from(text, 'utf8').equals(key)) assert.equal(keySlot(text), want[i], `key ${JSON.stringify(text)} as a string`);
      const open = key.indexOf('{');
      const close = key.indexOf('}', open + 1);
      if (open !== -1 && close > open + 1) tagged++;
      if (open !== -1 && close === open + 1) emptyTag++;
    }
    // The generator must reach both hash-tag branches often, or the comparison proves little.
    assert.ok(tagged > KEYS / 5, `${tagged} of ${KEYS} keys have a non-empty hash tag`);
    assert.ok(emptyTag > KEYS / 50, `${emptyTag} of ${KEYS} keys start their tag with {}`);
  });
});
