/** Unit tests of the pure RESP parser and writer (src/api/resp): frames, limits, split at every byte. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { encode, R, ReplyWriter, RespParser, RESP_LIMITS, UNAUTH_LIMITS, splitArgs, writeReply } from '../../src/api/resp/index.js';

const strs = (cmds: Buffer[][]): string[][] => cmds.map((c) => c.map((a) => a.toString('latin1')));

function parseAll(input: Buffer): { commands: string[][]; error?: string } {
  const r = new RespParser().feed(input);
  return r.error === undefined ? { commands: strs(r.commands) } : { commands: strs(r.commands), error: r.error };
}

test('multibulk and inline commands, pipelined in one chunk', () => {
  const input = Buffer.from('*3\r\n$3\r\nSET\r\n$8\r\nuser:123\r\n$8\r\nJohn Doe\r\nPING\r\n\r\nGET "a b" \'c\'\n*0\r\n*1\r\n$0\r\n\r\n');
  assert.deepEqual(parseAll(input), {
    commands: [['SET', 'user:123', 'John Doe'], ['PING'], ['GET', 'a b', 'c'], ['']],
  });
});

test('binary-safe bulk values (CR/LF inside)', () => {
  const input = Buffer.from('*2\r\n$4\r\nECHO\r\n$4\r\n\r\n\r\n\r\n');
  assert.deepEqual(parseAll(input).commands, [['ECHO', '\r\n\r\n']]);
});

test('split at every byte boundary gives the same commands', () => {
  const input = Buffer.from('*3\r\n$3\r\nSET\r\n$3\r\nk\r\n\r\n$5\r\nv\r\nx1\r\nPING_INLINE x\r\n*1\r\n$4\r\nPING\r\n');
  const whole = parseAll(input).commands;
  assert.equal(whole.length, 3);
  for (let i = 0; i <= input.length; i++) {
    for (let j = i; j <= input.length; j++) {
      const p = new RespParser();
      const got = [
        ...p.feed(input.subarray(0, i)).commands,
        ...p.feed(input.subarray(i, j)).commands,
        ...p.feed(input.subarray(j)).commands,
      ];
      assert.deepEqual(strs(got), whole, `split at ${i},${j}`);
      assert.equal(p.buffered, 0);
    }
  }
  // And one byte at a time.
  const p = new RespParser();
  const got: Buffer[][] = [];
  for (let i = 0; i < input.length; i++) got.push(...p.feed(input.subarray(i, i + 1)).commands);
  assert.deepEqual(strs(got), whole);
});

test('feedInto appends to the caller\'s queue; small and large argument counts come out whole, with no holes', () => {
  const frame = (args: string[]): string => `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`;
  // 1,500 arguments: past the count up to which the parser sizes a request's array up front.
  const many = ['RPUSH', 'l', ...Array.from({ length: 1498 }, (_, i) => `v${i}`)];
  const input = Buffer.from(frame(['SET', 'k', 'v']) + frame(many) + frame(['GET', 'k']));
  for (const cut of [1, 7, 100, 5000, input.length - 3]) {
    const p = new RespParser();
    const queue: unknown[] = ['earlier'];
    assert.equal(p.feedInto(input.subarray(0, cut), queue), undefined);
    assert.equal(p.feedInto(input.subarray(cut), queue), undefined);
    assert.equal(queue[0], 'earlier');
    const got = queue.slice(1) as Buffer[][];
    assert.deepEqual(strs(got), [['SET', 'k', 'v'], many, ['GET', 'k']], `cut at ${cut}`);
    for (const c of got) assert.ok(c.every((a) => Buffer.isBuffer(a)) && Object.keys(c).length === c.length, `a dense array at cut ${cut}`);
    assert.ok(p.idle);
  }
  // The protocol error comes back as the text, after the commands before it; as in Redis, a
  // bulk count line is judged once it is complete (up to its CR and one more byte).
  const q: unknown[] = [];
  assert.equal(new RespParser().feedInto(Buffer.from('*1\r\n$4\r\nPING\r\n*1\r\nx'), []), undefined);
  assert.equal(new RespParser().feedInto(Buffer.from('*1\r\n$4\r\nPING\r\n*1\r\nx\r\n'), q), "Protocol error: expected '$', got 'x'");
  assert.deepEqual(strs(q as Buffer[][]), [['PING']]);
});

test('feedInto with a reused read buffer: only the first n bytes count, and a split request survives the buffer being overwritten', () => {
  // The listener reads every socket into one shared buffer; the parser must copy what it keeps.
  const wire = Buffer.from('*3\r\n$3\r\nSET\r\n$5\r\nk:abc\r\n$40\r\n' + 'v'.repeat(40) + '\r\n*2\r\n$3\r\nGET\r\n$5\r\nk:abc\r\nPING\r\n');
  for (let cut = 1; cut < wire.length; cut += 3) {
    const shared = Buffer.alloc(256, 0x2a);
    const p = new RespParser();
    const out: Buffer[][] = [];
    wire.copy(shared, 0, 0, cut);
    assert.equal(p.feedInto(shared, out, cut), undefined);
    shared.fill(0x24); // the next read of another socket lands here
    wire.copy(shared, 0, cut);
    assert.equal(p.feedInto(shared, out, wire.length - cut), undefined);
    shared.fill(0x00);
    assert.deepEqual(strs(out), [['SET', 'k:abc', 'v'.repeat(40)], ['GET', 'k:abc'], ['PING']], `cut at ${cut}`);
    assert.equal(p.buffered, 0);
  }
});

test("protocol errors use Redis's wording and stop the parser", () => {
  const cases: [string, string][] = [
    ['*abc\r\n', 'Protocol error: invalid multibulk length'],
    [`*${RESP_LIMITS.multibulkMax + 1}\r\n`, 'Protocol error: invalid multibulk length'],
    ['*1\r\n$-1\r\n', 'Protocol error: invalid bulk length'],
    ['*1\r\n$x\r\n', 'Protocol error: invalid bulk length'],
    [`*1\r\n$${RESP_LIMITS.bulkMax + 1}\r\n`, 'Protocol error: invalid bulk length'],
    ['*1\r\n:3\r\n', "Protocol error: expected '$', got ':'"],
    ['GET "abc\r\n', 'Protocol error: unbalanced quotes in request'],
    ['GET "a"b\r\n', 'Protocol error: unbalanced quotes in request'],
  ];
  for (const [input, error] of cases) {
    const p = new RespParser();
    const r = p.feed(Buffer.from(input));
    assert.equal(r.error, error, JSON.stringify(input));
    assert.deepEqual(p.feed(Buffer.from('PING\r\n')).commands, [], 'nothing parsed after an error');
  }
  // Commands before the bad frame are still delivered.
  const r = new RespParser().feed(Buffer.from('PING\r\n*x\r\n'));
  assert.deepEqual(strs(r.commands), [['PING']]);
  assert.equal(r.error, 'Protocol error: invalid multibulk length');
});

test('oversized inline requests and count lines are refused without waiting for a newline', () => {
  const big = Buffer.alloc(RESP_LIMITS.inlineMax + 10, 0x61);
  assert.equal(new RespParser().feed(big).error, 'Protocol error: too big inline request');
  const mb = Buffer.concat([Buffer.from('*'), Buffer.alloc(RESP_LIMITS.inlineMax + 10, 0x31)]);
  assert.equal(new RespParser().feed(mb).error, 'Protocol error: too big mbulk count string');
  const bl = Buffer.concat([Buffer.from('*1\r\n$'), Buffer.alloc(RESP_LIMITS.inlineMax + 10, 0x31)]);
  assert.equal(new RespParser().feed(bl).error, 'Protocol error: too big bulk count string');
});

test('a half frame stays buffered until completed', () => {
  const p = new RespParser();
  assert.deepEqual(p.feed(Buffer.from('*2\r\n$3\r\nGET\r\n$5\r\nab')).commands, []);
  assert.ok(p.buffered > 0);
  assert.deepEqual(strs(p.feed(Buffer.from('cde\r\n')).commands), [['GET', 'abcde']]);
});

test('a 4 MiB bulk fed in chunks of 1 byte to 64 KiB yields the same command, and a split at an argument boundary keeps state', () => {
  const value = Buffer.alloc(4 * 1024 * 1024);
  for (let i = 0; i < value.length; i++) value[i] = (i * 31) & 0xff;
  const input = Buffer.concat([Buffer.from(`*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$${value.length}\r\n`), value, Buffer.from('\r\n*1\r\n$4\r\nPING\r\n')]);
  for (const size of [1, 7, 1000, 4096, 65536]) {
    const p = new RespParser();
    const got: Buffer[][] = [];
    for (let i = 0; i < input.length; i += size) got.push(...p.feed(input.subarray(i, i + size)).commands);
    assert.equal(got.length, 2, `chunk ${size}`);
    assert.deepEqual(strs([got[0]!.slice(0, 2)]), [['SET', 'k']]);
    assert.ok(got[0]![2]!.equals(value), `chunk ${size}: the value arrives intact`);
    assert.deepEqual(strs([got[1]!]), [['PING']]);
    assert.ok(p.idle);
  }
  const p = new RespParser();
  assert.deepEqual(p.feed(Buffer.from('*2\r\n$3\r\nGET\r\n')).commands, []);
  assert.equal(p.idle, false, 'a request awaiting its next argument is not idle');
});

test("before AUTH, Redis's unauthenticated limits apply (10 arguments, 16 KiB bulks)", () => {
  const p = new RespParser();
  p.unauthenticated = true;
  assert.equal(p.feed(Buffer.from(`*${UNAUTH_LIMITS.multibulkMax + 1}\r\n`)).error, 'Protocol error: unauthenticated multibulk length');
  const q = new RespParser();
  q.unauthenticated = true;
  assert.equal(q.feed(Buffer.from('*2\r\n$3\r\nGET\r\n$67108864\r\n')).error, 'Protocol error: unauthenticated bulk length');
  const ok = new RespParser();
  ok.unauthenticated = true;
  const v = 'x'.repeat(UNAUTH_LIMITS.bulkMax);
  assert.deepEqual(strs(ok.feed(Buffer.from(`*2\r\n$4\r\nAUTH\r\n$${v.length}\r\n${v}\r\n`)).commands), [['AUTH', v]]);
  const authed = new RespParser();
  assert.deepEqual(authed.feed(Buffer.from('*2\r\n$3\r\nGET\r\n$67108864\r\n')), { commands: [] }, 'no limit once authenticated');
});

test('splitArgs handles escapes like redis-cli', () => {
  assert.deepEqual(splitArgs(Buffer.from('set k "a\\x41\\n" \'it\\\'s\''))?.map((b) => b.toString('latin1')), ['set', 'k', 'aA\n', "it's"]);
  assert.deepEqual(splitArgs(Buffer.from('   ')), []);
});

test('writer: RESP2 and RESP3 forms of every type', () => {
  const e = (r: Parameters<typeof encode>[0], p: 2 | 3): string => encode(r, p).toString('latin1');
  assert.equal(e(R.ok, 2), '+OK\r\n');
  assert.equal(e(R.error('ERR bad\r\nthing'), 2), '-ERR bad  thing\r\n');
  assert.equal(e(R.int(42), 3), ':42\r\n');
  assert.equal(e(R.bulk('John Doe'), 2), '$8\r\nJohn Doe\r\n');
  assert.equal(e(R.bulk(Buffer.from([0, 13, 10])), 2), '$3\r\n\x00\r\n\r\n');
  assert.equal(e(R.null, 2), '$-1\r\n');
  assert.equal(e(R.null, 3), '_\r\n');
  assert.equal(e(R.nullArray, 2), '*-1\r\n');
  assert.equal(e(R.array([R.int(1), R.bulk('a')]), 2), '*2\r\n:1\r\n$1\r\na\r\n');
  assert.equal(e(R.map([[R.bulk('k'), R.int(1)]]), 2), '*2\r\n$1\r\nk\r\n:1\r\n');
  assert.equal(e(R.map([[R.bulk('k'), R.int(1)]]), 3), '%1\r\n$1\r\nk\r\n:1\r\n');
  assert.equal(e(R.set([R.bulk('a')]), 3), '~1\r\n$1\r\na\r\n');
  assert.equal(e(R.set([R.bulk('a')]), 2), '*1\r\n$1\r\na\r\n');
  assert.equal(e({ t: 'bignum', v: '1234567999999999999999999999999999999' }, 3), '(1234567999999999999999999999999999999\r\n');
  assert.equal(e({ t: 'bignum', v: '12345' }, 2), '$5\r\n12345\r\n');
  const attr: Parameters<typeof encode>[0] = { t: 'attribute', attrs: [[R.bulk('key-popularity'), R.int(90)]], v: R.bulk('real') };
  assert.equal(e(attr, 3), '|1\r\n$14\r\nkey-popularity\r\n:90\r\n$4\r\nreal\r\n');
  assert.equal(e(attr, 2), '$4\r\nreal\r\n', 'RESP2 sees the reply alone');
  // Many replies into one writer: one buffer, in order, large bulks included.
  const w = new ReplyWriter();
  const big = Buffer.alloc(100_000, 0x61);
  writeReply(R.bulk('é'), 2, w);
  writeReply(R.bulk(big), 2, w);
  writeReply(R.int(7), 2, w);
  assert.equal(w.take().toString('latin1'), `$2\r\n\xc3\xa9\r\n$100000\r\n${'a'.repeat(100_000)}\r\n:7\r\n`);
  assert.equal(w.length, 0);
  writeReply(R.ok, 2, w);
  assert.equal(w.take().toString(), '+OK\r\n', 'the writer is reusable after take()');
  assert.equal(e(R.double(1.5), 3), ',1.5\r\n');
  assert.equal(e(R.double(Infinity), 3), ',inf\r\n');
  assert.equal(e(R.double(1.5), 2), '$3\r\n1.5\r\n');
  assert.equal(e(R.bool(true), 3), '#t\r\n');
  assert.equal(e(R.bool(false), 2), ':0\r\n');
  assert.equal(e(R.push([R.bulk('message'), R.bulk('ch'), R.bulk('hi')]), 3), '>3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n');
  assert.equal(e(R.push([R.bulk('x')]), 2), '*1\r\n$1\r\nx\r\n');
  assert.equal(e(R.verbatim('hi'), 3), '=6\r\ntxt:hi\r\n');
  assert.equal(e(R.verbatim('hi'), 2), '$2\r\nhi\r\n');
});
