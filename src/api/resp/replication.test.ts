/**
 * The replica side of a copy's begin (`BEACON.SYNC-BEGIN`): what the node held of the slots is
 * dropped in steps, not in one pass over the table, and the answer comes once it is gone (the
 * copy's keys come after it); a ring change completes a drop in progress first.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { prng, TEST_SEED } from '../../../test/helpers/random.js';
import { CacheRing, CacheTier, SlotOwnership, keySlot, type CacheNamespace, type RingMember } from '../../cache/index.js';
import { createLogger } from '../../obs/index.js';
import { Replicator } from './replication.js';
import { ClusterRouter } from './routing.js';
import type { Reply } from './protocol.js';

function member(i: number): RingMember {
  return { id: `node-${i}`, url: `http://10.0.0.${i}:7379`, respUrl: `redis://10.0.0.${i}:6380` };
}

/** A replica (node-2) of two members holding `n` keys, and the slot of the copy that begins. */
async function replica(n: number): Promise<{ tier: CacheTier; slots: SlotOwnership; repl: Replicator; copied: number; keys: string[] }> {
  const ns: CacheNamespace = { prefix: '', replicationFactor: 2 };
  const tier = new CacheTier({ namespaces: () => ns, random: prng(TEST_SEED) });
  const slots = new SlotOwnership(tier, () => true, () => 2);
  const ring = new CacheRing(1, [member(1), member(2)], 'node-2');
  slots.apply(ring);
  for (let i = 0; i < 1000 && slots.busy; i++) await new Promise((r) => setImmediate(r));
  const keys: string[] = [];
  for (let i = 0; i < n; i++) {
    const key = `k${i}`;
    keys.push(key);
    tier.set(key, { type: 'string', value: Buffer.from('held before the copy') });
  }
  // A slot node-1 serves (node-2 is its replica) with keys held here.
  const copied = keySlot(keys.find((k) => ring.owner(keySlot(k))?.id === 'node-1') as string);
  const router = new ClusterRouter({ selfId: 'node-2', slots, peerSecret: undefined });
  const repl = new Replicator({ router, slots, cache: tier, logger: createLogger('silent'), exec: () => undefined, maxFactor: () => 2 });
  slots.beforeApply = () => repl.finishDrops(); // as the RESP server wires it
  return { tier, slots, repl, copied, keys };
}

test('a copy begins: the replica drops what it held of the slot in steps and answers once it is gone; other slots keep their keys', async () => {
  const { tier, repl, copied, keys } = await replica(60_000);
  const inSlot = keys.filter((k) => keySlot(k) === copied);
  assert.ok(inSlot.length > 0);
  const answer = repl.handle('beacon.sync-begin', [Buffer.from('1'), Buffer.from(String(copied))]);
  assert.ok(answer instanceof Promise, 'answered later, not in one pass now');
  assert.ok(inSlot.every((k) => tier.lookup(k) !== undefined), 'nothing dropped in the same turn');
  let answered = false;
  void answer.then(() => (answered = true));
  await new Promise((r) => setImmediate(r));
  assert.equal(answered, false, 'a 60,000-key table takes more than one step');
  const reply: Reply = await answer;
  assert.deepEqual(reply, { t: 'simple', v: 'OK' });
  assert.deepEqual(inSlot.filter((k) => tier.lookup(k) !== undefined), [], 'every key of the slot is gone');
  const others = keys.filter((k) => keySlot(k) !== copied);
  assert.equal(others.filter((k) => tier.lookup(k) === undefined).length, 0, 'the other slots keep theirs');
});

test('a ring change while a drop is in progress completes it first', async () => {
  const { tier, slots, repl, copied, keys } = await replica(60_000);
  const inSlot = keys.filter((k) => keySlot(k) === copied);
  const answer = repl.handle('beacon.sync-begin', [Buffer.from('1'), Buffer.from(String(copied))]) as Promise<Reply>;
  await new Promise((r) => setImmediate(r));
  // node-1 is gone: node-2 becomes the primary of the slot, with what the copy brought (nothing yet).
  slots.apply(new CacheRing(2, [member(2)], 'node-2'));
  assert.deepEqual(inSlot.filter((k) => tier.lookup(k) !== undefined), [], 'nothing from before the copy is left to be served');
  assert.deepEqual(await answer, { t: 'simple', v: 'OK' });
});
