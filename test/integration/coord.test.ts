// Locks, elections and sequential keys over real HTTP against a real node (docs/coordination.md).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { http, startTestNode } from '../helpers/node.js';

let node: Awaited<ReturnType<typeof startTestNode>>;
let url: string;

before(async () => {
  node = await startTestNode();
  url = node.url;
});

after(async () => {
  await node.cleanup();
});

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `check` until it returns true (test-side only; the server never polls), failing after `ms`. */
async function eventually(check: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check()) return;
    await sleep(20);
  }
  assert.fail(`timed out after ${ms} ms waiting for ${what}`);
}

async function lockState(name: string): Promise<{ holder: { key: string } | null; waiters: { key: string }[] }> {
  const res = await http(`${url}/v1/locks/${name}`);
  assert.equal(res.status, 200);
  return res.body;
}

/** An SSE reader over fetch: yields `{event, data}` frames, skipping comments. */
function sse(path: string): { next: (ms: number) => Promise<{ event: string; data: any }>; close: () => void; opened: Promise<Response> } {
  const ctl = new AbortController();
  const opened = fetch(`${url}${path}`, { signal: ctl.signal });
  let buf = '';
  const frames: { event: string; data: any }[] = [];
  let reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
  const decoder = new TextDecoder();
  const pump = async (): Promise<void> => {
    reader ??= (await opened).body?.getReader();
    const { value, done } = await (reader as ReadableStreamDefaultReader<Uint8Array>).read();
    if (done) throw new Error('SSE stream ended');
    buf += decoder.decode(value, { stream: true });
    let i: number;
    while ((i = buf.indexOf('\n\n')) >= 0) {
      const frame = buf.slice(0, i);
      buf = buf.slice(i + 2);
      let event = 'message';
      let data = '';
      for (const line of frame.split('\n')) {
        if (line.startsWith('event: ')) event = line.slice(7);
        else if (line.startsWith('data: ')) data += line.slice(6);
      }
      if (data !== '') frames.push({ event, data: JSON.parse(data) });
    }
  };
  return {
    opened,
    close: () => ctl.abort(),
    next: async (ms) => {
      const deadline = Date.now() + ms;
      while (frames.length === 0) {
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`no SSE event within ${ms} ms`);
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([pump(), new Promise<void>((_, rej) => (timer = setTimeout(() => rej(new Error(`no SSE event within ${ms} ms`)), left)))]).finally(
          () => clearTimeout(timer),
        );
      }
      return frames.shift() as { event: string; data: any };
    },
  };
}

test('100 contenders over HTTP: one holder at a time, FIFO by createRevision, fencing tokens strictly increasing', async () => {
  // A first holder keeps the lock until all 100 are queued, so they really contend.
  const gate = await http(`${url}/v1/locks/hundred`, { method: 'POST', body: { ttl: 30 } });
  assert.equal(gate.status, 200);
  let inside = 0;
  let maxInside = 0;
  const acquired: number[] = [];
  const contenders = Array.from({ length: 100 }, async () => {
    const res = await http(`${url}/v1/locks/hundred`, { method: 'POST', body: { ttl: 30, timeoutMs: 30_000 } });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    inside++;
    maxInside = Math.max(maxInside, inside);
    acquired.push(res.body.fencingToken);
    await sleep(1);
    inside--;
    const del = await http(`${url}/v1/locks/${res.body.key}`, { method: 'DELETE' });
    assert.equal(del.status, 200);
    await http(`${url}/v1/leases/${res.body.lease}`, { method: 'DELETE' });
  });
  await eventually(async () => (await lockState('hundred')).waiters.length === 100, 10_000, '100 queued waiters');
  const queued = (await lockState('hundred')).waiters.map((w: any) => w.createRevision as number);
  assert.equal((await http(`${url}/v1/locks/${gate.body.key}`, { method: 'DELETE' })).status, 200);
  await Promise.all(contenders);
  assert.equal(maxInside, 1, 'never two holders at once');
  assert.equal(acquired.length, 100, 'every contender acquired (no starvation)');
  assert.ok((acquired[0] as number) > gate.body.fencingToken);
  for (let i = 1; i < acquired.length; i++) assert.ok((acquired[i] as number) > (acquired[i - 1] as number), `token ${acquired[i]} after ${acquired[i - 1]}`);
  assert.deepEqual(acquired, queued, 'acquisition order is the queue order');
  const state = await lockState('hundred');
  assert.equal(state.holder, null);
  assert.deepEqual(state.waiters, []);
});

test('seed 004: a lock names its holder; GET shows who holds it, a waiter that times out is told, DELETE releases it', async () => {
  const name = 'locks/inventory-sku-123';
  const got = await http(`${url}/v1/locks/${name}`, { method: 'POST', body: { holder: 'order-service-1', ttl: 30 } });
  assert.equal(got.status, 200, JSON.stringify(got.body));
  assert.equal(got.body.ttl, 30);
  const state = await http(`${url}/v1/locks/${name}`);
  assert.equal(state.body.holder.key, got.body.key);
  assert.equal(state.body.holder.value, 'order-service-1');
  const other = await http(`${url}/v1/locks/${name}`, { method: 'POST', body: { holder: 'order-service-2', ttl: 30, timeoutMs: 100 } });
  assert.equal(other.status, 409);
  assert.equal(other.body.error.details.holder, got.body.key);
  for (const bad of [42, '', 'x'.repeat(257)]) {
    const res = await http(`${url}/v1/locks/${name}`, { method: 'POST', body: { holder: bad, ttl: 30 } });
    assert.equal(res.status, 400, `holder ${JSON.stringify(bad).slice(0, 20)}`);
    assert.match(res.body.error.message, /'holder' must be a non-empty string/);
  }
  assert.equal((await http(`${url}/v1/locks/${got.body.key}`, { method: 'DELETE' })).status, 200);
  assert.equal((await lockState(name)).holder, null);
  // Without a holder the key's value stays empty, as before.
  const anon = await http(`${url}/v1/locks/${name}`, { method: 'POST', body: { ttl: 30 } });
  assert.equal((await http(`${url}/v1/locks/${name}`)).body.holder.value, '');
  assert.equal((await http(`${url}/v1/locks/${anon.body.key}`, { method: 'DELETE' })).status, 200);
});

test('a holder whose lease expires (no keep-alives, TTL 1 s) loses the lock; the waiter acquires within TTL + 1 s', async () => {
  const holder = await http(`${url}/v1/locks/expiry`, { method: 'POST', body: { ttl: 1 } });
  assert.equal(holder.status, 200);
  const since = Date.now();
  assert.equal(holder.body.ttl, 1);
  const waiter = await http(`${url}/v1/locks/expiry`, { method: 'POST', body: { ttl: 10, timeoutMs: 5000 } });
  const waited = Date.now() - since;
  assert.equal(waiter.status, 200, JSON.stringify(waiter.body));
  assert.ok(waiter.body.fencingToken > holder.body.fencingToken);
  assert.ok(waited >= 700, `acquired after ${waited} ms: before the holder's lease could expire`);
  assert.ok(waited <= 2000, `acquired after ${waited} ms, more than TTL + 1 s`);
  // The stale holder cannot release the new holder's lock.
  const stale = await http(`${url}/v1/locks/${holder.body.key}?fencingToken=${holder.body.fencingToken}`, { method: 'DELETE' });
  assert.equal(stale.status, 404);
  assert.equal((await lockState('expiry')).holder?.key, waiter.body.key);
  await http(`${url}/v1/leases/${waiter.body.lease}`, { method: 'DELETE' });
});

test('a waiter that times out gets 409 reason "timeout"; its key is withdrawn and the lease granted for it revoked', async () => {
  const holder = await http(`${url}/v1/locks/busy`, { method: 'POST', body: { ttl: 30 } });
  const leasesBefore = (await http(`${url}/v1/leases`)).body.leases.length;
  const res = await http(`${url}/v1/locks/busy`, { method: 'POST', body: { ttl: 30, timeoutMs: 200 } });
  assert.equal(res.status, 409);
  assert.equal(res.body.error.code, 'conflict');
  assert.equal(res.body.error.details.reason, 'timeout');
  assert.equal(res.body.error.details.holder, holder.body.key);
  assert.deepEqual((await lockState('busy')).waiters, []);
  assert.equal((await http(`${url}/v1/leases`)).body.leases.length, leasesBefore);
  // With the caller's own lease: the key goes, the lease stays.
  const own = await http(`${url}/v1/leases`, { method: 'POST', body: { ttl: 30 } });
  const tryOnce = await http(`${url}/v1/locks/busy`, { method: 'POST', body: { lease: own.body.id, timeoutMs: 0 } });
  assert.equal(tryOnce.status, 409);
  assert.deepEqual((await lockState('busy')).waiters, []);
  assert.equal((await http(`${url}/v1/leases/${own.body.id}`)).status, 200);
  // Unlock by lease id.
  assert.equal((await http(`${url}/v1/locks/busy?lease=${holder.body.lease}`, { method: 'DELETE' })).status, 200);
  assert.equal((await lockState('busy')).holder, null);
});

test('an HTTP client that disconnects while waiting withdraws its key, and the next waiter is not blocked by it', async () => {
  const holder = await http(`${url}/v1/locks/drop`, { method: 'POST', body: { ttl: 30 } });
  const leasesBefore = (await http(`${url}/v1/leases`)).body.leases.length;
  const ctl = new AbortController();
  const gone = fetch(`${url}/v1/locks/drop`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ ttl: 30 }),
    signal: ctl.signal,
  }).catch((e: unknown) => e);
  await eventually(async () => (await lockState('drop')).waiters.length === 1, 5000, 'the waiter to queue');
  const third = http(`${url}/v1/locks/drop`, { method: 'POST', body: { ttl: 30, timeoutMs: 5000 } });
  await eventually(async () => (await lockState('drop')).waiters.length === 2, 5000, 'the third to queue');
  ctl.abort();
  assert.ok((await gone) instanceof Error);
  await eventually(async () => (await lockState('drop')).waiters.length === 1, 2000, 'the disconnected waiter to be withdrawn');
  await eventually(async () => (await http(`${url}/v1/leases`)).body.leases.length === leasesBefore + 1, 2000, 'its lease to be revoked');
  await http(`${url}/v1/locks/${holder.body.key}`, { method: 'DELETE' });
  const t = await third;
  assert.equal(t.status, 200);
  await http(`${url}/v1/leases/${t.body.lease}`, { method: 'DELETE' });
});

test('election failover: the leader lease expires, the next candidate leads within TTL + 1 s and observe reports it', async () => {
  const obs = sse('/v1/elections/svc/primary/observe');
  assert.equal((await obs.opened).headers.get('content-type'), 'text/event-stream; charset=utf-8');
  try {
    const a = await http(`${url}/v1/elections/svc/primary/campaign`, { method: 'POST', body: { value: 'node-a:7000', ttl: 1 } });
    assert.equal(a.status, 200);
    const since = Date.now();
    let ev = await obs.next(2000);
    assert.equal(ev.event, 'leader');
    assert.equal(ev.data.value, 'node-a:7000');
    assert.equal(ev.data.key, a.body.key);

    const b = http(`${url}/v1/elections/svc/primary/campaign`, { method: 'POST', body: { value: 'node-b:7000', ttl: 10, timeoutMs: 5000 } });
    await eventually(async () => (await http(`${url}/v1/elections/svc/primary/candidates`)).body.candidates.length === 2, 2000, 'b to queue');
    const bKey = (await http(`${url}/v1/elections/svc/primary/candidates`)).body.candidates[1].key;
    const usurp = await http(`${url}/v1/elections/svc/primary/proclaim`, { method: 'POST', body: { key: bKey, value: 'me!' } });
    assert.equal(usurp.status, 409);
    assert.equal(usurp.body.error.details.reason, 'not_leader');

    const leader = await http(`${url}/v1/elections/svc/primary/leader`);
    assert.equal(leader.body.value, 'node-a:7000');
    assert.equal(leader.body.fencingToken, a.body.fencingToken);

    const rb = await b;
    const failover = Date.now() - since;
    assert.equal(rb.status, 200, JSON.stringify(rb.body));
    assert.ok(failover <= 2000, `new leader after ${failover} ms, more than TTL + 1 s`);
    assert.ok(rb.body.fencingToken > a.body.fencingToken);
    ev = await obs.next(1000);
    assert.equal(ev.data.value, 'node-b:7000');
    assert.equal(ev.data.key, rb.body.key);

    const pr = await http(`${url}/v1/elections/svc/primary/proclaim`, { method: 'POST', body: { lease: rb.body.lease, value: 'node-b:7001' } });
    assert.equal(pr.status, 200);
    ev = await obs.next(1000);
    assert.equal(ev.data.value, 'node-b:7001');
    const stale = await http(`${url}/v1/elections/svc/primary/proclaim`, { method: 'POST', body: { key: a.body.key, value: 'back' } });
    assert.equal(stale.status, 409);

    assert.equal((await http(`${url}/v1/elections/svc/primary/resign`, { method: 'POST', body: { lease: rb.body.lease } })).status, 200);
    assert.equal((await http(`${url}/v1/elections/svc/primary/leader`)).status, 404);
    assert.equal((await http(`${url}/v1/elections/svc/primary/resign`, { method: 'POST', body: { lease: rb.body.lease } })).status, 404);
  } finally {
    obs.close();
  }
});

test('50 concurrent sequential creates over HTTP: unique, increasing, zero-padded to 20 digits', async () => {
  const made = await Promise.all(Array.from({ length: 50 }, (_, i) => http(`${url}/v1/sequences/queue/tasks`, { method: 'POST', body: { value: `t${i}` } })));
  for (const r of made) {
    assert.equal(r.status, 201);
    assert.match(r.body.key, /^queue\/tasks\/\d{20}$/);
    assert.equal(Number(r.body.key.slice('queue/tasks/'.length)), r.body.sequence);
  }
  const seqs = made.map((r) => r.body.sequence as number);
  assert.equal(new Set(seqs).size, 50);
  assert.deepEqual([...seqs].sort((x, y) => x - y), Array.from({ length: 50 }, (_, i) => i + 1));
  const list = await http(`${url}/v1/kv/queue/tasks/?prefix=true`);
  assert.equal(list.status, 200);
  assert.equal(list.body.kvs.length, 50, 'the counter does not live under the prefix');
  // Ephemeral: under a lease.
  const lease = await http(`${url}/v1/leases`, { method: 'POST', body: { ttl: 30 } });
  const eph = await http(`${url}/v1/sequences/queue/tasks`, { method: 'POST', body: { value: 'e', lease: lease.body.id } });
  assert.equal(eph.body.sequence, 51);
  await http(`${url}/v1/leases/${lease.body.id}`, { method: 'DELETE' });
  assert.equal((await http(`${url}/v1/kv/${eph.body.key}`)).status, 404);
});

test('coordination writes are audited: acquire, release, campaign, sequence create', async () => {
  const lock = await http(`${url}/v1/locks/audited`, { method: 'POST', body: { ttl: 30 } });
  assert.equal(lock.status, 200);
  assert.equal((await http(`${url}/v1/locks/${lock.body.key}`, { method: 'DELETE' })).status, 200);
  const seq = await http(`${url}/v1/sequences/audited-seq`, { method: 'POST', body: { value: 'x' } });
  assert.equal(seq.status, 201);
  const records = await node.store.backend.queryAudit({ limit: 10_000 });
  const actions = (key: string): string[] => records.filter((r) => r.key === key).map((r) => r.action);
  assert.deepEqual(actions(lock.body.key), ['lock.acquire', 'lock.release']);
  assert.deepEqual(actions(seq.body.key), ['sequence.create']);
  assert.ok(records.filter((r) => r.key === lock.body.key).every((r) => r.principal === 'dev' && r.requestId !== null));
});

test('bad input gets a clear 400/404 and never disturbs the node', async () => {
  const cases: [string, string, unknown, number, RegExp][] = [
    ['POST', '/v1/locks/bad', { ttl: 'soon' }, 400, /ttl/],
    ['POST', '/v1/locks/bad', { ttl: 5, lease: 7 }, 400, /either 'lease'.*or 'ttl'/],
    ['POST', '/v1/locks/bad', { tll: 5 }, 400, /unknown field 'tll'/],
    ['POST', '/v1/locks/bad', [1], 400, /JSON object/],
    ['POST', '/v1/locks/bad', { timeoutMs: -5 }, 400, /timeoutMs/],
    ['POST', '/v1/locks/bad', { lease: 424242 }, 404, /lease 424242/],
    ['POST', '/v1/locks/', {}, 400, /lock name/],
    ['DELETE', '/v1/locks/bad/zz', undefined, 400, /not a lock key.*\?lease=ID/],
    ['DELETE', '/v1/locks/bad/abc', undefined, 404, /not held/],
    ['POST', '/v1/elections/e1/crown', { value: 'x' }, 404, /campaign/],
    ['POST', '/v1/elections/campaign', { value: 'x' }, 404, /campaign/],
    ['POST', '/v1/elections/e1/campaign', { ttl: 5 }, 400, /'value' is required/],
    ['POST', '/v1/elections/e1/campaign', { value: 5 }, 400, /'value' must be a string/],
    ['POST', '/v1/elections/e1/proclaim', { value: 'x' }, 400, /exactly one of 'key' or 'lease'/],
    ['POST', '/v1/elections/e1/proclaim', { key: 'e2/abc', value: 'x' }, 400, /does not belong/],
    ['POST', '/v1/elections/e1/resign', { key: 'e1/abc', lease: 3 }, 400, /exactly one/],
    ['GET', '/v1/elections/e1/leader', undefined, 404, /no leader/],
    ['POST', '/v1/sequences/s/', { value: 'x' }, 400, /must not end with '\/'/],
    ['POST', '/v1/sequences/s', { value: 'x', lease: -1 }, 400, /lease/],
    ['POST', '/v1/sequences/s', { value: '!!', encoding: 'base64' }, 400, /base64/],
  ];
  for (const [method, path, body, status, message] of cases) {
    const res = await http(`${url}${path}`, { method, body });
    assert.equal(res.status, status, `${method} ${path} ${JSON.stringify(body)} → ${res.status} ${JSON.stringify(res.body)}`);
    assert.match(res.body.error.message, message, `${method} ${path}`);
  }
  assert.equal((await http(`${url}/healthz`)).status, 200);
});

test('stopping the node answers a blocked lock request with 503 and ends election observer streams', async () => {
  const own = await startTestNode();
  try {
    const holder = await http(`${own.url}/v1/locks/shutdown`, { method: 'POST', body: { ttl: 30 } });
    assert.equal(holder.status, 200);
    const waiter = http(`${own.url}/v1/locks/shutdown`, { method: 'POST', body: { ttl: 30 } }).catch((e: unknown) => e);
    await eventually(async () => (await http(`${own.url}/v1/locks/shutdown`)).body.waiters.length === 1, 2000, 'the waiter to queue');
    const res = await fetch(`${own.url}/v1/elections/shutdown/observe`);
    const reader = res.body?.getReader();
    assert.ok(reader !== undefined);
    const ended = (async () => {
      for (;;) if ((await reader.read()).done) return true;
    })().catch(() => true);
    const started = Date.now();
    await own.stop();
    assert.ok(Date.now() - started < 3000, 'stop was not held up by blocked requests');
    const w = (await waiter) as { status: number; body: any };
    assert.equal(w.status, 503, String(w));
    assert.equal(w.body.error.code, 'unavailable');
    assert.equal(await ended, true);
  } finally {
    await own.cleanup();
  }
});
