/**
 * AOF crash test (issue 11): `beacon serve --appendonly yes --appendfsync always` is killed with
 * SIGKILL at random moments while writers PUT and DELETE cache keys over HTTP, 20 times; after
 * each restart every acknowledged write is there, every acknowledged delete stays deleted, and
 * keys whose TTL passed (while the node was down or before) stay expired.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { http, spawnServer, tempDir } from '../helpers/node.js';
import { prng, TEST_SEED } from '../helpers/random.js';

const SEED = TEST_SEED;
const ROUNDS = 20;

interface Acked {
  value: string;
  /** ms since the epoch; 0 = none */
  expireAt: number;
  deleted: boolean;
  /** A DELETE was sent and not answered (the kill came first): either outcome is right. */
  uncertain?: boolean;
}

// On 2026-12-06 one CI run of this test found an acknowledged PUT missing after a SIGKILL: the
// AOF released a waiter when an fsync ended while that waiter's write was still buffered (see the
// regression test in src/cache/aof.test.ts); fixed by tracking durability by sequence.
test(`[seed ${SEED}] SIGKILL ×${ROUNDS} with appendfsync always loses no acknowledged write and resurrects no expired key`, { timeout: 600_000 }, async () => {
  const rnd = prng(SEED);
  const tmp = tempDir('beacon-aof-crash-');
  const acked = new Map<string, Acked>();
  const args = ['--data-dir', tmp.dir, '--appendonly', 'yes', '--appendfsync', 'always'];
  let serial = 0;
  try {
    for (let round = 0; round < ROUNDS; round++) {
      const srv = await spawnServer(args);
      try {
        if (round === 0) {
          const ns = await http(`${srv.url}/v1/namespaces/c:`, { method: 'PUT', body: { storage: 'memory' } });
          assert.ok(ns.status < 300, JSON.stringify(ns.body));
        } else {
          // After the restart: this round's predecessor's acknowledged writes are all there.
          await verify(srv.url, acked, (k) => k.startsWith(`c:${round - 1}:`));
        }
        let stop = false;
        const writer = async (w: number): Promise<void> => {
          const mine: string[] = [];
          while (!stop) {
            const r = rnd();
            if (r < 0.15 && mine.length > 0) {
              const key = mine.splice(Math.floor(rnd() * mine.length), 1)[0] as string;
              const a = acked.get(key) as Acked;
              a.uncertain = true;
              const res = await http(`${srv.url}/v1/cache/${key}`, { method: 'DELETE' }).catch(() => undefined);
              if (res?.status === 200) {
                a.deleted = true;
                a.uncertain = false;
              }
              continue;
            }
            const key = `c:${round}:${w}:${serial++}`;
            const value = `v${serial}-${'x'.repeat(Math.floor(rnd() * 200))}`;
            const ttl = r < 0.4 ? 1 : r < 0.5 ? 3600 : undefined;
            const sentAt = Date.now();
            const res = await http(`${srv.url}/v1/cache/${key}`, { method: 'PUT', body: { value, ...(ttl !== undefined ? { ttl } : {}) } }).catch(() => undefined);
            if (res?.status === 200) {
              acked.set(key, { value, expireAt: ttl !== undefined ? sentAt + ttl * 1000 : 0, deleted: false });
              mine.push(key);
            }
          }
        };
        const writers = [0, 1, 2, 3].map((w) => writer(w));
        await new Promise((r) => setTimeout(r, 150 + Math.floor(rnd() * 700)));
        await srv.kill(); // SIGKILL mid-write
        stop = true;
        await Promise.all(writers);
      } finally {
        await srv.kill();
      }
    }
    const srv = await spawnServer(args);
    try {
      await verify(srv.url, acked, () => true);
      assert.ok(acked.size > ROUNDS * 5, `only ${acked.size} writes were acknowledged`);
    } finally {
      await srv.kill();
    }
  } finally {
    tmp.cleanup();
  }
});

/** Checks every acknowledged key selected by `which` against what the restarted node answers. */
async function verify(url: string, acked: Map<string, Acked>, which: (key: string) => boolean): Promise<void> {
  for (const [key, a] of acked) {
    if (!which(key) || a.uncertain === true) continue;
    const now = Date.now();
    const res = await http(`${url}/v1/cache/${key}`);
    if (a.deleted) {
      assert.equal(res.status, 404, `${key} was deleted (acknowledged) but is back`);
    } else if (a.expireAt !== 0 && a.expireAt < now - 50) {
      assert.equal(res.status, 404, `${key} expired at ${a.expireAt} (now ${now}) but is back`);
    } else if (a.expireAt === 0 || a.expireAt > now + 1000) {
      assert.equal(res.status, 200, `${key} was acknowledged but is lost`);
      assert.equal(res.body.value, a.value);
    }
  }
}
