// Sessions, locks, elections and sequential keys through the SDK against a real node; holders and
// leaders that die are separate processes killed with SIGKILL.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTestNode } from '../helpers/node.js';
import { ConflictError, NotFoundError, createClient, type BeaconClient, type Leader, type Session } from '../../client/index.js';
import { runSdkChild, until, within, type SdkChild } from './sdk-helpers.js';

type TestNode = Awaited<ReturnType<typeof startTestNode>>;

/** Seconds of TTL of the processes that get killed: short, so the tests stay quick. */
const TTL = 2;

/** A child process that takes a lock (`lock NAME`) or campaigns (`campaign NAME VALUE`) with a 2 s session, prints it, and stays. */
const HOLDER = `
import { createClient } from '__SDK__';
const [endpoint, mode, name, value] = process.argv.slice(1);
const client = createClient({ endpoint });
const session = await client.session({ ttl: ${TTL} });
if (mode === 'lock') {
  const lock = await session.mutex(name).lock();
  console.log(JSON.stringify({ held: true, ...lock }));
} else {
  const won = await session.election(name).campaign(value);
  console.log(JSON.stringify({ leader: true, ...won }));
}
setInterval(() => {}, 1000); // live until killed; the session keeps its lease alive meanwhile
`;

describe('SDK coordination', () => {
  let node: TestNode;
  let client: BeaconClient;
  const sessions: Session[] = [];
  const children: SdkChild[] = [];
  const session = async (ttl = 30): Promise<Session> => {
    const s = await client.session({ ttl });
    sessions.push(s);
    return s;
  };
  before(async () => {
    node = await startTestNode();
    client = createClient({ endpoint: node.url });
  });
  after(async () => {
    for (const c of children) await c.kill();
    await Promise.allSettled(sessions.map((s) => s.close()));
    client.close();
    await node.cleanup();
  });

  it('a lock holder process killed with SIGKILL: its lease expires and the next waiter acquires within TTL + 1 s, with a larger fencing token', async (t) => {
    const holder = runSdkChild(HOLDER, [node.url, 'lock', 'jobs/nightly']);
    children.push(holder);
    const held = await holder.next();
    assert.equal(held.key, `jobs/nightly/${held.lease.toString(16)}`, 'the key layout is NAME/<lease hex>, as the server uses');

    const waiter = (await session()).mutex('jobs/nightly');
    let acquiredAt = 0;
    const acquiring = waiter.lock().then((l) => {
      acquiredAt = Date.now();
      return l;
    });
    // The holder's keep-alives keep the lock past its TTL while it lives.
    await new Promise((r) => setTimeout(r, TTL * 1000 + 300));
    assert.equal(acquiredAt, 0, 'the waiter acquired while the holder was alive');
    const state = await client.lockState('jobs/nightly');
    assert.equal(state.holder?.key, held.key);
    assert.deepEqual(
      state.waiters.map((w) => w.key),
      [waiter.key],
    );

    const killedAt = Date.now();
    await holder.kill();
    const lock = await within(acquiring, (TTL + 3) * 1000, 'the waiter acquiring');
    const took = acquiredAt - killedAt;
    t.diagnostic(`lock taken over ${took} ms after SIGKILL of the holder (TTL ${TTL} s)`);
    assert.ok(took <= (TTL + 1) * 1000, `acquired ${took} ms after the kill: more than TTL + 1 s`);
    assert.ok(lock.fencingToken > held.fencingToken, 'fencing tokens strictly increase');
    assert.equal(waiter.fencingToken, lock.fencingToken);
    assert.equal(await waiter.unlock(), true);
    assert.equal(await waiter.unlock(), false, 'unlocking twice reports nothing to release');
  });

  it('100 contenders: one holder at a time, acquired in createRevision order (FIFO), tokens strictly increasing', async (t) => {
    const N = 100;
    const all = await Promise.all(Array.from({ length: N }, () => session()));
    const mutexes = all.map((s) => s.mutex('fifo'));
    // Queue every contender first (in a known order), so that the acquisition order can be checked against it.
    const first = await mutexes[0]?.lock();
    assert.ok(first !== undefined);
    const order: number[] = [first.fencingToken];
    let holders = 0;
    let maxHolders = 0;
    const t0 = Date.now();
    const runs = mutexes.slice(1).map(async (m) => {
      const l = await m.lock({ timeoutMs: 30_000 });
      holders++;
      maxHolders = Math.max(maxHolders, holders);
      order.push(l.fencingToken);
      await new Promise((r) => setImmediate(r));
      holders--;
      await m.unlock();
    });
    await until(async () => (await client.lockState('fifo')).waiters.length === N - 1, 'every contender queued', 10_000, 20);
    const queued = (await client.lockState('fifo')).waiters.map((w) => w.createRevision);
    await mutexes[0]?.unlock();
    await within(Promise.all(runs), 30_000, '100 contenders');
    t.diagnostic(`99 hand-overs in ${Date.now() - t0} ms`);
    assert.equal(maxHolders, 1, 'never two holders at once');
    assert.equal(order.length, N);
    assert.deepEqual(order.slice(1), queued, 'acquired exactly in queue (createRevision) order');
    for (let i = 1; i < order.length; i++) assert.ok((order[i] as number) > (order[i - 1] as number), 'fencing tokens strictly increase');
  });

  it('gives up after timeoutMs or on abort, withdrawing the waiting key; tryLock does not wait', async () => {
    const a = (await session()).mutex('busy');
    const b = (await session()).mutex('busy');
    await a.lock();
    const started = Date.now();
    await assert.rejects(b.lock({ timeoutMs: 200 }), (err: unknown) => err instanceof ConflictError && err.details?.reason === 'timeout' && err.details.holder === a.key);
    const took = Date.now() - started;
    assert.ok(took >= 190 && took < 1500, `timed out after ${took} ms`);
    assert.deepEqual((await client.lockState('busy')).waiters, [], 'the timed-out waiter left the queue');

    const ac = new AbortController();
    const pending = b.lock({ signal: ac.signal });
    await until(async () => (await client.lockState('busy')).waiters.length === 1, 'the waiter queued');
    ac.abort();
    await assert.rejects(pending, { name: 'AbortError' });
    assert.deepEqual((await client.lockState('busy')).waiters, [], 'the aborted waiter left the queue');

    assert.equal(await b.tryLock(), undefined);
    await a.unlock();
    const got = await b.tryLock();
    assert.ok(got !== undefined && b.isHeld);
    await b.unlock();
  });

  it('a session whose lease is revoked elsewhere emits lost, aborts its signal and stops holding', async () => {
    const s = await client.session({ ttl: 30, keepAliveIntervalMs: 50 });
    sessions.push(s);
    const m = s.mutex('lost');
    await m.lock();
    const lost = new Promise<Error>((resolve) => s.once('lost', resolve));
    await client.lease.revoke(s.lease);
    const err = await within(lost, 3000, 'the lost event');
    assert.ok(err instanceof NotFoundError);
    assert.equal(s.alive, false);
    assert.equal(s.signal.aborted, true);
    assert.equal(m.isHeld, false);
    await assert.rejects(s.mutex('other').lock(), /has ended/);
  });

  it('election failover measured: leader process killed, the next candidate leads and observers see it within TTL + 1 s', async (t) => {
    const observed: { leader: Leader; at: number }[] = [];
    const observation = client.election('svc/primary').observe();
    const observing = (async () => {
      for await (const l of observation) observed.push({ leader: l, at: Date.now() });
    })();
    const leaderProc = runSdkChild(HOLDER, [node.url, 'campaign', 'svc/primary', 'node-a']);
    children.push(leaderProc);
    const won = await leaderProc.next();
    await until(() => observed.some((o) => o.leader.key === won.key), 'the first leader observed');
    assert.equal(observed.at(-1)?.leader.text, 'node-a');

    const candidate = (await session(10)).election('svc/primary');
    let ledAt = 0;
    const campaigning = candidate.campaign('node-b').then((l) => {
      ledAt = Date.now();
      return l;
    });
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(ledAt, 0, 'a candidate waits while the leader lives');
    assert.equal((await client.election('svc/primary').leader())?.text, 'node-a');

    const killedAt = Date.now();
    await leaderProc.kill();
    const mine = await within(campaigning, (TTL + 3) * 1000, 'the candidate winning');
    await until(() => observed.some((o) => o.leader.key === mine.key), 'the new leader observed', 3000);
    const seenAt = observed.find((o) => o.leader.key === mine.key)?.at ?? 0;
    t.diagnostic(`new leader elected ${ledAt - killedAt} ms and observed ${seenAt - killedAt} ms after SIGKILL of the leader (TTL ${TTL} s)`);
    assert.ok(ledAt - killedAt <= (TTL + 1) * 1000, `campaign returned ${ledAt - killedAt} ms after the kill`);
    assert.ok(seenAt - killedAt <= (TTL + 1) * 1000, `observed ${seenAt - killedAt} ms after the kill`);
    assert.ok(mine.fencingToken > won.fencingToken);

    // Proclaim reaches observers; a non-leader cannot proclaim; resigning hands over.
    await candidate.proclaim('node-b:9090');
    await until(() => observed.at(-1)?.leader.text === 'node-b:9090', 'the proclaimed value observed');
    const follower = (await session(10)).election('svc/primary');
    const followerWins = follower.campaign('node-c');
    await assert.rejects(follower.proclaim('x'), (err: unknown) => err instanceof ConflictError && err.details?.reason === 'not_leader');
    assert.equal(await candidate.resign(), true);
    const third = await within(followerWins, 3000, 'the follower winning after the resignation');
    assert.equal(third.key, follower.leadership?.key);
    await until(() => observed.at(-1)?.leader.text === 'node-c', 'the third leader observed');
    const texts = observed.map((o) => o.leader.text);
    assert.equal(new Set(observed.map((o) => `${o.leader.key}@${o.leader.modRevision}`)).size, observed.length, `no change observed twice: ${texts.join(', ')}`);
    observation.stop();
    await observing;
  });

  it('creates sequential keys, zero-padded and increasing, ephemeral with a lease', async () => {
    const a = await client.createSequential('queue/jobs', 'first');
    const b = await client.createSequential('queue/jobs', new Uint8Array([1, 2, 255]));
    assert.equal(a.key, `queue/jobs/${String(a.sequence).padStart(20, '0')}`);
    assert.equal(b.sequence, a.sequence + 1);
    assert.ok(b.key > a.key, 'byte order is numeric order');
    const lease = await client.lease.grant(30);
    const e = await client.createSequential('queue/jobs', 'ephemeral', { lease: lease.id });
    assert.equal((await client.get(e.key)).kv.lease, lease.id);
    await client.lease.revoke(lease.id);
    await assert.rejects(client.get(e.key), NotFoundError);
    await assert.rejects(client.createSequential('queue/jobs/', 'x'), /must not end with/);
  });
});
