// Regressions from a review of the watch path, against a real node: progress frames never vouch
// for a revision whose events are still queued; a gap in the revisions the store publishes does
// not lose revisions queued for fan-out; an SSE client gone before its watch was set up leaves
// no watcher behind.
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { WebSocket } from 'ws';
import type { WatchSink } from '../../src/watch/index.js';
import { startTestNode } from '../helpers/node.js';
import { ADMIN_PASSWORD, login, startSecureNode } from './security-helpers.js';

type TestNode = Awaited<ReturnType<typeof startTestNode>>;

describe('watch path regressions', () => {
  let node: TestNode;
  before(async () => {
    node = await startTestNode();
  });
  after(async () => {
    await node.cleanup();
  });

  it('a progress frame never names a revision whose events the watch has not been sent yet', async () => {
    // More watchers than one fan-out slice (2,000), so a revision's fan-out spans event-loop turns.
    // One socket holds them all: above the default per-connection limit (1,000), raised here.
    node.hub.configure({ progressIntervalMs: 10, congestionBytes: 256 * 1024 * 1024, maxWatchesPerConnection: 10_000 });
    const n = 4500;
    const ws = new WebSocket(`${node.url.replace('http', 'ws')}/v1/watch`);
    await new Promise((r) => ws.once('open', r));
    const progress = new Map<number, number>();
    let created = 0;
    let events = 0;
    const violations: string[] = [];
    ws.on('message', (d) => {
      const m = JSON.parse(String(d)) as { type: string; watchId: number; revision: number };
      if (m.type === 'created') created++;
      else if (m.type === 'progress') progress.set(m.watchId, Math.max(progress.get(m.watchId) ?? 0, m.revision));
      else if (m.type === 'events') {
        events++;
        const p = progress.get(m.watchId) ?? 0;
        if (m.revision <= p && violations.length < 3) violations.push(`watch ${m.watchId}: events at ${m.revision} after progress ${p}`);
      }
    });
    try {
      for (let i = 1; i <= n; i++) ws.send(JSON.stringify({ type: 'create', key: 'review/k', watchId: i }));
      for (const deadline = Date.now() + 20_000; created < n; ) {
        assert.ok(Date.now() < deadline, `only ${created} watches created`);
        await new Promise((r) => setTimeout(r, 10));
      }
      for (let i = 0; i < 30; i++) {
        await new Promise((r) => setTimeout(r, 20));
        await node.store.put('review/k', Buffer.from(`v${i}`));
      }
      for (const deadline = Date.now() + 20_000; events < 30 * n; ) {
        assert.ok(Date.now() < deadline, `only ${events} of ${30 * n} events arrived`);
        await new Promise((r) => setTimeout(r, 20));
      }
      assert.deepEqual(violations, []);
    } finally {
      ws.terminate();
      node.hub.configure({ progressIntervalMs: 10 * 60_000, maxWatchesPerConnection: 1000 });
    }
  });

  it('a gap in published revisions does not lose a revision still queued for fan-out', async () => {
    const got: number[] = [];
    const sink: WatchSink = {
      transport: 'ws',
      congested: () => false,
      onDrain: (cb) => cb(),
      events: (b) => got.push(b.revision),
      progress: () => undefined,
      compacted: () => undefined,
    };
    const w = node.hub.watch({ key: 'review/gap' }, sink);
    try {
      const { revision: r1 } = await node.store.put('review/gap', Buffer.from('a')); // its fan-out is deferred
      // In the same turn, a revision two ahead arrives (as a follower may see): r1 must still be sent.
      node.store.applyLog([{ revision: r1 + 2, key: 'review/gap', value: Buffer.from('c'), createRevision: r1, version: 2, lease: 0, deleted: false, ts: Date.now(), meta: null }]);
      for (const deadline = Date.now() + 5000; !got.includes(r1 + 2); ) {
        assert.ok(Date.now() < deadline, `delivered so far: ${got.join(',')}`);
        await new Promise((r) => setTimeout(r, 10));
      }
      assert.ok(got.includes(r1), `revision ${r1} was delivered: ${got.join(',')}`);
    } finally {
      w.cancel();
    }
  });

  it('an SSE request abandoned while its first-seen token is verified leaves no watcher', async () => {
    // A token seen for the first time is verified asynchronously: the client can be gone by the
    // time the watch is set up (many reconnect at once after a node restart).
    const secure = await startSecureNode();
    try {
      const port = Number(new URL(secure.url).port);
      for (let i = 0; i < 5; i++) {
        const token = await login(secure.url, 'admin', ADMIN_PASSWORD);
        for (const delay of [0, 1, 2]) {
          const s = connect(port, '127.0.0.1', () => {
            s.write(`GET /v1/watch/app/?prefix=true HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\n\r\n`);
            if (delay === 0) s.destroy();
            else setTimeout(() => s.destroy(), delay);
          });
          s.on('error', () => undefined);
          await new Promise((r) => setTimeout(r, 50));
        }
      }
      for (const deadline = Date.now() + 5000; secure.hub.stats.synced + secure.hub.stats.unsynced > 0; ) {
        assert.ok(Date.now() < deadline, `watchers left behind: ${secure.hub.stats.synced + secure.hub.stats.unsynced}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    } finally {
      await secure.cleanup();
    }
  });
});
