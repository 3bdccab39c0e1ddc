/**
 * Unit tests of the append-only file: RESP encoding and parsing, a truncated last record
 * tolerated at load, a MULTI without EXEC dropped, expiries kept absolute across a restart, and
 * a rewrite (BGREWRITEAOF) taken while writes continue that reloads to exactly the same data,
 * and `appendfsync always` acknowledging a write only once it is in the file and fsynced.
 */
import assert from 'node:assert/strict';
import { appendFileSync, readFileSync, statSync } from 'node:fs';
import { test } from 'node:test';
import { tempDir } from '../../test/helpers/node.js';
import { prng, TEST_SEED } from '../../test/helpers/random.js';
import { AofFile, encodeCommand, parseAof } from './aof.js';
import { AOF_FILE, CacheTier } from './tier.js';
import type { CacheNamespace } from './types.js';
import { Deque, SortedSet, type CacheValue } from './values.js';

const SEED = TEST_SEED;
const NS: CacheNamespace = { prefix: '' };

function open(dir: string, now?: () => number, warnings: string[] = []): CacheTier {
  return new CacheTier({
    namespaces: () => NS,
    dataDir: dir,
    config: { appendonly: true, appendfsync: 'always' },
    ...(now !== undefined ? { now } : {}),
    logger: { info: () => undefined, warn: (_o, msg) => warnings.push(msg) },
  });
}

/** Everything in the tier as comparable JSON (type, content, expiry). */
function dump(t: CacheTier): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of t.keys('*').sort()) {
    const v = t.peek(k) as CacheValue;
    let content: unknown;
    if (v.type === 'string') content = v.value.toString('latin1');
    else if (v.type === 'hash') content = [...v.value].map(([f, b]) => [f, b.toString('latin1')]).sort();
    else if (v.type === 'list') content = v.value.toArray().map((b) => b.toString('latin1'));
    else if (v.type === 'set') content = [...v.value].sort();
    else content = v.value.entries().map((m) => [m.member, m.score]);
    out[k] = { type: v.type, content, expireAt: t.expireTimeMs(k) };
  }
  return out;
}

test('commands encode as RESP arrays and parse back byte for byte', () => {
  const bin = Buffer.from([0, 13, 10, 255]);
  const buf = Buffer.concat([encodeCommand(['SET', 'k', bin]), encodeCommand(['DEL', 'a', 'b'])]);
  const p = parseAof(buf);
  assert.equal(p.truncated, false);
  assert.equal(p.commands.length, 2);
  assert.deepEqual(p.commands[0]?.[2], bin);
  assert.deepEqual(p.commands[1]?.map(String), ['DEL', 'a', 'b']);
  // Cut at every byte: never an error, always the complete prefix of commands.
  for (let cut = 0; cut < buf.length; cut++) {
    const q = parseAof(buf.subarray(0, cut));
    assert.equal(q.truncated, cut !== 0 && cut !== encodeCommand(['SET', 'k', bin]).length);
    assert.ok(q.commands.length <= 1);
  }
  assert.throws(() => parseAof(Buffer.from('*1\r\n$3\r\nDEL\r\nGARBAGE\r\n*1\r\n$3\r\nDEL\r\n')), { code: 'unavailable' });
});

test('the tier reloads its data from the AOF, with absolute expiries: an expired key stays expired', async () => {
  const tmp = tempDir();
  try {
    let now = 1_700_000_000_000;
    const clock = () => now;
    const t = open(tmp.dir, clock);
    await t.open();
    t.set('user:123', { type: 'string', value: Buffer.from('John Doe') });
    t.propagate(['SET', 'user:123', 'John Doe']);
    t.set('query:1', { type: 'string', value: Buffer.from('r') }, { expireAtMs: now + 3_600_000 });
    t.propagate(['SET', 'query:1', 'r', 'PXAT', String(now + 3_600_000)]);
    t.set('short', { type: 'string', value: Buffer.from('x') }, { expireAtMs: now + 1000 });
    t.propagate(['SET', 'short', 'x', 'PXAT', String(now + 1000)]);
    const h = new Map([['f', Buffer.from('v')]]);
    t.set('h', { type: 'hash', value: h });
    t.propagate(['HSET', 'h', 'f', 'v']);
    await t.durable();
    await t.close();
    now += 5000; // "short" expired while the node was down
    const t2 = open(tmp.dir, clock);
    const res = await t2.open();
    assert.equal(res.commands, 4);
    assert.equal(t2.peek('user:123')?.value.toString(), 'John Doe');
    assert.equal(t2.ttlMs('query:1'), 3_600_000 - 5000);
    assert.equal(t2.peek('short'), undefined);
    assert.equal(t2.peek('h')?.type, 'hash');
    await t2.close();
  } finally {
    tmp.cleanup();
  }
});

test('a truncated last record is cut off with a warning; a MULTI without EXEC at the end is not applied', async () => {
  const tmp = tempDir();
  try {
    const t = open(tmp.dir);
    await t.open();
    for (let i = 0; i < 10; i++) {
      t.set(`k${i}`, { type: 'string', value: Buffer.from(String(i)) });
      t.propagate(['SET', `k${i}`, String(i)]);
    }
    await t.durable();
    await t.close();
    const path = `${tmp.dir}/${AOF_FILE}`;
    const good = statSync(path).size;
    appendFileSync(path, encodeCommand(['MULTI']));
    appendFileSync(path, encodeCommand(['SET', 'tx', '1']));
    const complete = statSync(path).size;
    appendFileSync(path, encodeCommand(['SET', 'k0', 'overwritten']).subarray(0, 9)); // the crash mid-write
    const warnings: string[] = [];
    const t2 = open(tmp.dir, undefined, warnings);
    const res = await t2.open();
    assert.equal(res.truncatedBytes, 9 + (complete - good));
    assert.ok(warnings.some((w) => w.includes('truncated')), warnings.join('; '));
    assert.ok(warnings.some((w) => w.includes('MULTI without EXEC')), warnings.join('; '));
    assert.equal(t2.dbsize(), 10);
    assert.equal(t2.peek('k0')?.value.toString(), '0');
    assert.equal(t2.peek('tx'), undefined);
    assert.equal(statSync(path).size, good, 'the file is cut back to before the unfinished MULTI');
    // New writes go after the cut and reload.
    t2.set('after', { type: 'string', value: Buffer.from('yes') });
    t2.propagate(['SET', 'after', 'yes']);
    await t2.durable();
    await t2.close();
    const t3 = open(tmp.dir);
    await t3.open();
    assert.equal(t3.peek('after')?.value.toString(), 'yes');
    await t3.close();
  } finally {
    tmp.cleanup();
  }
});

test(`[seed ${SEED}] a rewrite taken while non-idempotent writes continue reloads to exactly the same data`, async () => {
  const tmp = tempDir();
  const rnd = prng(SEED);
  try {
    const t = open(tmp.dir);
    await t.setConfig('appendfsync', 'no');
    await t.open();
    // Data of every type.
    for (let i = 0; i < 6000; i++) {
      const k = `k:${i}`;
      switch (i % 5) {
        case 0:
          t.set(k, { type: 'string', value: Buffer.from(`v${i}`) });
          t.propagate(['SET', k, `v${i}`]);
          break;
        case 1:
          t.set(k, { type: 'list', value: new Deque([Buffer.from('a'), Buffer.from('b')]) });
          t.propagate(['RPUSH', k, 'a', 'b']);
          break;
        case 2:
          t.set(k, { type: 'set', value: new Set(['x', 'y']) });
          t.propagate(['SADD', k, 'x', 'y']);
          break;
        case 3: {
          const z = new SortedSet();
          z.add('m', 1.5);
          z.add('n', -Infinity);
          t.set(k, { type: 'zset', value: z });
          t.propagate(['ZADD', k, '1.5', 'm', '-inf', 'n']);
          break;
        }
        default:
          t.set(k, { type: 'hash', value: new Map([['f', Buffer.from('1')]]) }, { expireAtMs: Date.now() + 3_600_000 });
          t.propagate(['HSET', k, 'f', '1']);
          t.propagate(['PEXPIREAT', k, String(t.expireTimeMs(k))]);
      }
    }
    const rewrite = t.rewriteAof();
    // While the rewrite runs in slices: appends to lists (not idempotent), deletes, new keys.
    let ops = 0;
    while (t.info().aof_rewrite_in_progress === 1) {
      for (let j = 0; j < 50; j++) {
        const i = Math.floor(rnd() * 6000);
        const k = `k:${i}`;
        const v = t.lookupWrite(k);
        if (v?.type === 'list') {
          v.value.pushBack(Buffer.from(`p${ops}`));
          t.modified(k);
          t.propagate(['RPUSH', k, `p${ops}`]);
        } else if (v !== undefined && rnd() < 0.3) {
          t.delete(k);
          t.propagate(['DEL', k]);
        }
        // A new key takes the id a delete just freed (ids are reused): as a list, a second copy
        // of it in the snapshot would show as a doubled element after the reload.
        t.set(`new:${ops}`, { type: 'list', value: new Deque([Buffer.from('n')]) });
        t.propagate(['RPUSH', `new:${ops}`, 'n']);
        ops++;
      }
      await new Promise((r) => setImmediate(r));
    }
    await rewrite;
    assert.ok(ops > 0, 'writes ran during the rewrite');
    t.set('after-rewrite', { type: 'string', value: Buffer.from('1') });
    t.propagate(['SET', 'after-rewrite', '1']);
    const before = dump(t);
    await t.close();
    const text = readFileSync(`${tmp.dir}/${AOF_FILE}`);
    assert.ok(text.length > 0);
    const t2 = open(tmp.dir);
    await t2.open();
    assert.deepEqual(dump(t2), before);
    await t2.close();
  } finally {
    tmp.cleanup();
  }
});

test('turning appendonly on writes the current data to a new AOF; turning it off stops appending', async () => {
  const tmp = tempDir();
  try {
    const t = new CacheTier({ namespaces: () => NS, dataDir: tmp.dir });
    await t.open();
    t.set('a', { type: 'string', value: Buffer.from('1') });
    t.propagate(['SET', 'a', '1']); // appendonly is off: not written
    await t.setConfig('appendonly', 'yes');
    t.set('b', { type: 'string', value: Buffer.from('2') });
    t.propagate(['SET', 'b', '2']);
    await t.close();
    // The setting was saved in the data dir, so the next start loads the AOF.
    const t2 = new CacheTier({ namespaces: () => NS, dataDir: tmp.dir });
    await t2.open();
    assert.equal(t2.config.appendonly, true);
    assert.deepEqual(t2.keys('*').sort(), ['a', 'b']);
    await t2.close();
  } finally {
    tmp.cleanup();
  }
});

test('with appendfsync always, a write appended while an fsync runs is not acknowledged until it is written and fsynced', async () => {
  // The regression behind a lost acknowledged write in the SIGKILL test: when an fsync ended while
  // the next write still sat in the buffer (its flush not yet run), the waiter of that write was
  // released because "nothing was dirty" — acknowledged before it reached the file.
  const tmp = tempDir();
  try {
    const path = `${tmp.dir}/${AOF_FILE}`;
    const aof = new AofFile(path, 'always', (err) => assert.fail(err));
    const a = encodeCommand(['SET', 'a', '1']);
    const b = encodeCommand(['SET', 'b', '2']);
    // Hold back the end-of-turn flushes so the fsync of A completes before B is written (the
    // order a loaded event loop can produce).
    const held: (() => void)[] = [];
    const realSetImmediate = globalThis.setImmediate;
    globalThis.setImmediate = ((fn: () => void) => {
      held.push(fn);
    }) as unknown as typeof setImmediate;
    let first: Promise<void>;
    let second: Promise<void>;
    try {
      aof.append(a);
      first = aof.durable();
      aof.flush(); // A written; its fsync starts
      aof.append(b);
      second = aof.durable();
    } finally {
      globalThis.setImmediate = realSetImmediate;
    }
    let secondDone = false;
    void second.then(() => (secondDone = true));
    await first;
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(secondDone, false, 'B was acknowledged before it was written');
    assert.equal(readFileSync(path).length, a.length);
    for (const fn of held) fn(); // the flush of B, and its fsync
    await second;
    assert.deepEqual(readFileSync(path), Buffer.concat([a, b]));
    aof.close();
  } finally {
    tmp.cleanup();
  }
});

test('encodeCommand writes RESP arrays of bulk strings byte for byte: UTF-8 strings, raw buffers, empty and long arguments', () => {
  assert.equal(encodeCommand(['GET', 'k']).toString('latin1'), '*2\r\n$3\r\nGET\r\n$1\r\nk\r\n');
  assert.equal(encodeCommand(['SET', 'clé', '']).toString('utf8'), '*3\r\n$3\r\nSET\r\n$4\r\nclé\r\n$0\r\n\r\n', 'the length counts bytes, not characters');
  const raw = Buffer.from([0, 0x0d, 0x0a, 0xff]);
  assert.deepEqual(encodeCommand([Buffer.from('SET'), Buffer.from('k'), raw]), Buffer.concat([Buffer.from('*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$4\r\n'), raw, Buffer.from('\r\n')]));
  for (const n of [9, 10, 99, 100, 999, 1000, 70_000]) {
    const v = 'x'.repeat(n);
    const args = Array.from({ length: n === 70_000 ? 12 : 1 }, () => v);
    const want = `*${args.length}\r\n${args.map((a) => `$${a.length}\r\n${a}\r\n`).join('')}`;
    assert.equal(encodeCommand(args).toString('latin1'), want, `arguments of ${n} bytes`);
  }
  const parsed = parseAof(encodeCommand(['HSET', 'h', 'f', 'ü']));
  assert.deepEqual(parsed.commands.map((c) => c.map((b) => b.toString('utf8'))), [['HSET', 'h', 'f', 'ü']]);
});

test('commands staged in one turn, past the staging buffer\'s size, reach the file whole and in order', () => {
  const tmp = tempDir();
  try {
    const path = `${tmp.dir}/${AOF_FILE}`;
    const aof = new AofFile(path, 'no', (err) => assert.fail(err));
    const big = Buffer.alloc(3 * 1024 * 1024, 0x61); // grows the stage past what is kept after a write
    const want: Buffer[][] = [];
    for (let i = 0; i < 2000; i++) {
      const argv = i === 700 ? [Buffer.from('SET'), Buffer.from('big'), big] : [Buffer.from('SET'), Buffer.from(`k${i}`), Buffer.from(`v${i}`)];
      want.push(argv);
      if (i % 2 === 0) aof.appendCommand(argv);
      else aof.append(encodeCommand(argv));
    }
    aof.flush();
    aof.appendCommand(['DEL', 'k0']);
    want.push([Buffer.from('DEL'), Buffer.from('k0')]);
    aof.close();
    const parsed = parseAof(readFileSync(path));
    assert.equal(parsed.truncated, false);
    assert.equal(parsed.commands.length, want.length);
    assert.ok(parsed.commands.every((c, i) => c.length === want[i]?.length && c.every((b, j) => b.equals(want[i]?.[j] as Buffer))));
  } finally {
    tmp.cleanup();
  }
});
