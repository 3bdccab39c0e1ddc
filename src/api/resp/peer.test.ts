/** Tests of forwarding's client side: replyEnd on every RESP type and split, and PeerLink against a real redis-server. */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { UnavailableError } from '../../errors.js';
import { freePort } from '../../../test/helpers/net.js';
import { prng, TEST_SEED } from '../../../test/helpers/random.js';
import { PeerLink, PeerPool, replyEnd } from './peer.js';

const REDIS_SERVER = '/usr/bin/redis-server';

const b = (s: string): Buffer => Buffer.from(s, 'latin1');
const argv = (...args: (string | Buffer)[]): Buffer[] => args.map((a) => (typeof a === 'string' ? Buffer.from(a) : a));
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** One complete reply of every type (RESP3 spec examples among them); each parses alone. */
const REPLIES: string[] = [
  '+OK\r\n',
  '-ERR unknown command\r\n',
  ':0\r\n',
  ':-1234\r\n',
  '$3\r\nbar\r\n',
  '$0\r\n\r\n',
  '$-1\r\n',
  '$6\r\na\r\nb\r\n\r\n', // CRLF inside a payload is data
  '*-1\r\n',
  '*0\r\n',
  '*3\r\n:1\r\n$1\r\nx\r\n*1\r\n+y\r\n',
  '_\r\n',
  ',3.14\r\n',
  ',-inf\r\n',
  '#t\r\n',
  '#f\r\n',
  '(3492890328409238509324850943850943825024385\r\n',
  '!21\r\nSYNTAX invalid syntax\r\n',
  '=15\r\ntxt:Some string\r\n',
  '%2\r\n+first\r\n:1\r\n+second\r\n:2\r\n',
  '~3\r\n+a\r\n:2\r\n_\r\n',
  // An attribute, then the reply it annotates: one reply.
  '|1\r\n+key-popularity\r\n%2\r\n$1\r\na\r\n,0.1923\r\n$1\r\nb\r\n,0.0012\r\n*2\r\n:2039123\r\n:9543892\r\n',
  '*2\r\n|1\r\n+ttl\r\n:3600\r\n$1\r\nv\r\n:7\r\n', // an attribute inside an aggregate
  '>3\r\n+message\r\n+chan\r\n$5\r\nhello\r\n',
  '%0\r\n',
  '~0\r\n',
];

describe('replyEnd', () => {
  test('finds the end of one reply of every RESP2/RESP3 type, at any start offset, ignoring what follows', () => {
    for (const r of REPLIES) {
      assert.equal(replyEnd(b(r), 0), r.length, JSON.stringify(r));
      assert.equal(replyEnd(b(`+x\r\n${r}+next\r\n`), 4), 4 + r.length, `after a prefix: ${JSON.stringify(r)}`);
      assert.equal(replyEnd(b(r).subarray(0, r.length - 1), 0), -1, `short by one: ${JSON.stringify(r)}`);
    }
  });

  test('on every prefix of many replies in a row, each reply is found exactly when all its bytes are there', () => {
    const all = b(REPLIES.join(''));
    const bounds = [0];
    for (const r of REPLIES) bounds.push((bounds.at(-1) as number) + r.length);
    for (let p = 0; p <= all.length; p++) {
      const prefix = all.subarray(0, p);
      for (let i = 0; i < REPLIES.length; i++) {
        const start = bounds[i] as number;
        if (start >= p) break;
        const end = bounds[i + 1] as number;
        assert.equal(replyEnd(prefix, start), end <= p ? end : -1, `prefix ${p}, reply ${i} ${JSON.stringify(REPLIES[i])}`);
      }
    }
  });

  test('nests to any depth without recursion: 1000 and 300000 levels of arrays, maps, sets and attributes', () => {
    for (const depth of [1000, 300_000]) {
      for (const [open, tail] of [
        ['*1\r\n', ':1\r\n'],
        ['%1\r\n+k\r\n', '_\r\n'],
        ['~1\r\n', '#t\r\n'],
        ['|1\r\n+a\r\n+b\r\n*1\r\n', '$1\r\nz\r\n'],
      ] as const) {
        const buf = b(open.repeat(depth) + tail + '+after\r\n');
        const end = buf.length - '+after\r\n'.length;
        assert.equal(replyEnd(buf, 0), end, `${depth} × ${JSON.stringify(open)}`);
        assert.equal(replyEnd(buf.subarray(0, end - 1), 0), -1);
        assert.equal(replyEnd(buf.subarray(0, end - tail.length), 0), -1, 'only the openings: incomplete');
      }
    }
  });

  test('malformed replies throw a Protocol error; a reply cut inside \\r\\n is only incomplete', () => {
    const bad = [
      '?3\r\n', // unknown type (streamed aggregates are refused)
      'x\r\n',
      '$abc\r\n',
      '$\r\n',
      '$-2\r\n',
      '$+3\r\nbar\r\n',
      '*-5\r\n',
      '%-1\r\n',
      '*1x\r\n',
      '$1234567890123456\r\n',
      '$3\r\nbarXY',
      '$3\r\nbar\rX',
      '!3\r\nERRxx',
      '+OK\rX',
      '$3\rX',
      '_x\r\n',
      '#x\r\n',
      ':12a\r\n',
      ':\r\n',
      '=3\r\ntxt\r\n',
      '*2\r\n:1\r\n\x00',
    ];
    for (const s of bad) {
      assert.throws(() => replyEnd(b(s), 0), /^Error: Protocol error:/, JSON.stringify(s));
    }
    for (const s of ['+OK\r', '$3\r\nbar\r', '$3\r', '*1\r\n:1\r', '_\r', '#t\r', '$', '*12', ':-', '']) {
      assert.equal(replyEnd(b(s), 0), -1, JSON.stringify(s));
    }
  });
});

/** Every redis-server this file started, killed when the process exits whatever happened. */
const children = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of children) if (c.pid !== undefined && c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

/** Starts a redis-server on a free loopback port (or on `port`), without persistence, and waits for PING. */
async function startRedis(extra: string[] = [], port?: number): Promise<{ child: ChildProcess; port: number }> {
  const p = port ?? (await freePort());
  const child = spawn(
    REDIS_SERVER,
    ['--port', String(p), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--enable-debug-command', 'local', ...extra],
    { stdio: 'ignore' },
  );
  child.on('error', () => undefined);
  // A test that fails half-way must not leave a server behind, nor keep this process alive.
  children.add(child);
  child.unref();
  const until = Date.now() + 20_000;
  for (;;) {
    if (await pings(p)) return { child, port: p };
    if (Date.now() > until || child.exitCode !== null) {
      child.kill('SIGKILL');
      throw new Error(`redis-server did not start on port ${p}`);
    }
    await sleep(50);
  }
}

/** Whether something on `port` answers PING with +PONG, or -NOAUTH (a server that wants AUTH). */
function pings(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ port, host: '127.0.0.1' });
    let got = '';
    const done = (ok: boolean): void => {
      s.destroy();
      resolve(ok);
    };
    s.on('error', () => done(false));
    s.setTimeout(1000, () => done(false));
    s.on('data', (d) => {
      got += d.toString();
      if (got.includes('\r\n')) done(got.startsWith('+PONG') || got.startsWith('-NOAUTH'));
    });
    s.write('PING\r\n');
  });
}

/** Stops a redis-server by pid and waits for it to exit. */
async function stopRedis(child: ChildProcess | undefined, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (child?.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  process.kill(child.pid, signal);
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([exited, new Promise((resolve) => (timer = setTimeout(resolve, 5000)))]);
  clearTimeout(timer);
}

/** Asserts that `p` rejects with an UnavailableError whose message names `127.0.0.1:port` and matches `re`. */
async function rejectsFrom(p: Promise<unknown>, port: number, re: RegExp): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof UnavailableError, `an UnavailableError, not ${String(err)}`);
    assert.ok(err.message.includes(`127.0.0.1:${port}`), err.message);
    assert.match(err.message, re);
    return true;
  });
}

const skip = existsSync(REDIS_SERVER) ? false : `${REDIS_SERVER} is not installed (Debian package redis-server)`;

describe('PeerLink against redis-server', { skip, timeout: 120_000 }, () => {
  let redis: { child: ChildProcess; port: number } | undefined;
  let port = 0;
  const links: PeerLink[] = [];
  const link = (opts: Partial<ConstructorParameters<typeof PeerLink>[0]> = {}): PeerLink => {
    const l = new PeerLink({ host: '127.0.0.1', port, protocol: 2, ...opts });
    links.push(l);
    return l;
  };

  before(async () => {
    redis = await startRedis();
    port = redis.port;
  });

  after(async () => {
    for (const l of links) l.close();
    await stopRedis(redis?.child);
  });

  test('1000 pipelined SET/GET pairs sent in one tick resolve in order with the raw reply bytes', async () => {
    const l = link();
    const rand = prng(TEST_SEED);
    const values = Array.from({ length: 1000 }, (_, i) => Buffer.from(`v${i}-${'x'.repeat(Math.floor(rand() * 40))}`));
    const sets: Promise<Buffer>[] = [];
    const gets: Promise<Buffer>[] = [];
    for (let i = 0; i < values.length; i++) {
      sets.push(l.send(argv('SET', `pipe:${i}`, values[i] as Buffer)));
      gets.push(l.send(argv('GET', `pipe:${i}`)));
    }
    assert.equal(l.pending, 2000);
    const [setReplies, getReplies] = await Promise.all([Promise.all(sets), Promise.all(gets)]);
    for (const r of setReplies) assert.equal(r.toString(), '+OK\r\n');
    for (let i = 0; i < values.length; i++) {
      const v = values[i] as Buffer;
      assert.deepEqual(getReplies[i], Buffer.concat([b(`$${v.length}\r\n`), v, b('\r\n')]), `GET pipe:${i}`);
    }
    assert.equal(l.pending, 0);
    assert.equal((await l.send(argv('SET', 'foo', 'bar'))).toString(), '+OK\r\n');
    assert.equal((await l.send(argv('GET', 'foo'))).toString(), '$3\r\nbar\r\n');
    assert.equal((await l.send(argv('GET', 'no-such-key'))).toString(), '$-1\r\n');
  });

  test('an error reply resolves with its bytes and does not disturb the replies after it', async () => {
    const l = link();
    const [a, err1, err2, c] = await Promise.all([
      l.send(argv('SET', 'n', 'abc')),
      l.send(argv('NOSUCHCOMMAND', 'x')),
      l.send(argv('INCR', 'n')),
      l.send(argv('ECHO', 'still in order')),
    ]);
    assert.equal(a.toString(), '+OK\r\n');
    assert.match(err1.toString(), /^-ERR unknown command .*\r\n$/);
    assert.equal(err2.toString(), '-ERR value is not an integer or out of range\r\n');
    assert.equal(c.toString(), '$14\r\nstill in order\r\n');
  });

  test('protocol 3: HGETALL is a % map, a missing key is _, and push frames are not taken for replies', async () => {
    const l3 = link({ protocol: 3 });
    const l2 = link();
    await l2.send(argv('DEL', 'h'));
    assert.equal((await l2.send(argv('HSET', 'h', 'a', '1', 'b', '2'))).toString(), ':2\r\n');
    assert.equal((await l3.send(argv('HGETALL', 'h'))).toString(), '%2\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$1\r\n2\r\n');
    assert.equal((await l2.send(argv('HGETALL', 'h'))).toString(), '*4\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$1\r\n2\r\n');
    assert.equal((await l3.send(argv('GET', 'tracked'))).toString(), '_\r\n');
    // Client-side caching: once l3 read `tracked`, a write by l2 sends l3 an invalidation push,
    // here while l3 waits for a BLPOP, whose reply comes after the push.
    assert.equal((await l3.send(argv('CLIENT', 'TRACKING', 'on'))).toString(), '+OK\r\n');
    assert.equal((await l3.send(argv('GET', 'tracked'))).toString(), '_\r\n');
    await l2.send(argv('DEL', 'q'));
    const popped = l3.send(argv('BLPOP', 'q', '10'));
    while (!/blocked_clients:1\r/.test((await l2.send(argv('INFO', 'clients'))).toString())) await sleep(10);
    assert.equal((await l2.send(argv('SET', 'tracked', '1'))).toString(), '+OK\r\n');
    assert.equal((await l2.send(argv('RPUSH', 'q', 'x'))).toString(), ':1\r\n');
    assert.equal((await popped).toString(), '*2\r\n$1\r\nq\r\n$1\r\nx\r\n');
    assert.equal((await l3.send(argv('PING'))).toString(), '+PONG\r\n');
    assert.equal((await l3.send(argv('GET', 'tracked'))).toString(), '$1\r\n1\r\n');
  });

  test('a 1 MB value comes back whole although TCP splits it into chunks', async () => {
    const l = link();
    const rand = prng(TEST_SEED + 1);
    const big = Buffer.alloc(1024 * 1024);
    for (let i = 0; i < big.length; i++) big[i] = Math.floor(rand() * 256);
    big.write('\r\n$5\r\n*1\r\n', 1000, 'latin1'); // framing bytes inside the payload are data
    const [set, get, after] = await Promise.all([l.send(argv('SET', 'big', big)), l.send(argv('GET', 'big')), l.send(argv('STRLEN', 'big'))]);
    assert.equal(set.toString(), '+OK\r\n');
    assert.equal(get.length, big.length + '$1048576\r\n\r\n'.length);
    assert.ok(get.equals(Buffer.concat([b('$1048576\r\n'), big, b('\r\n')])), 'the GET reply bytes');
    assert.equal(after.toString(), ':1048576\r\n');
    const twice = await Promise.all([l.send(argv('GET', 'big')), l.send(argv('GET', 'big'))]);
    for (const r of twice) assert.ok(r.equals(get));
  });

  test('CLIENT SETNAME on connect: the name shows in CLIENT LIST, and handshake replies are not returned', async () => {
    const l = link({ name: 'beacon-peer-7' });
    assert.equal((await l.send(argv('CLIENT', 'GETNAME'))).toString(), '$13\r\nbeacon-peer-7\r\n');
    const list = (await link().send(argv('CLIENT', 'LIST'))).toString();
    assert.match(list, /\bname=beacon-peer-7\b/);
    const l3 = link({ protocol: 3, name: 'beacon-peer-r3' });
    assert.equal((await l3.send(argv('PING'))).toString(), '+PONG\r\n');
    assert.match((await l3.send(argv('CLIENT', 'INFO'))).toString(), /\bname=beacon-peer-r3\b.*\bresp=3\b/);
  });

  test('a reply later than timeoutMs rejects it and those behind it; the link reconnects after', async () => {
    const l = link({ timeoutMs: 100 });
    assert.equal((await l.send(argv('PING'))).toString(), '+PONG\r\n');
    const t0 = Date.now();
    const slow = l.send(argv('DEBUG', 'SLEEP', '0.6'));
    const behind = l.send(argv('PING'));
    await Promise.all([rejectsFrom(slow, port, /no reply within 100 ms/), rejectsFrom(behind, port, /no reply within 100 ms/)]);
    assert.ok(Date.now() - t0 < 500, `rejected after ${Date.now() - t0} ms, before the reply came`);
    assert.equal(l.pending, 0);
    await sleep(700); // redis-server sleeps through new connections too
    assert.equal((await l.send(argv('ECHO', 'again'))).toString(), '$5\r\nagain\r\n');
  });

  test('close() rejects what is waiting; a closed link refuses sends; a link to nothing rejects naming the peer', async () => {
    const l = link();
    const blocked = l.send(argv('BLPOP', 'empty-list', '5'));
    await sleep(50);
    assert.equal(l.pending, 1);
    l.close();
    await rejectsFrom(blocked, port, /closed/);
    await rejectsFrom(l.send(argv('PING')), port, /closed/);
    assert.equal(l.pending, 0);
    const nowhere = await freePort();
    const dead = new PeerLink({ host: '127.0.0.1', port: nowhere, protocol: 2 });
    links.push(dead);
    await rejectsFrom(dead.send(argv('PING')), nowhere, /ECONNREFUSED/);
  });
});

describe('PeerLink handshake with requirepass and ACL users', { skip, timeout: 60_000 }, () => {
  let redis: { child: ChildProcess; port: number } | undefined;
  const links: PeerLink[] = [];
  const link = (protocol: 2 | 3, cred: { user?: string; pass: string } | undefined, name?: string): PeerLink => {
    const l = new PeerLink({ host: '127.0.0.1', port: redis?.port ?? 0, protocol, name, credentials: async () => cred });
    links.push(l);
    return l;
  };

  before(async () => {
    redis = await startRedis(['--requirepass', 's3cret']);
    const admin = link(2, { pass: 's3cret' });
    const r = await admin.send(argv('ACL', 'SETUSER', 'alice', 'on', '>alice-pw', '~*', '&*', '+@all'));
    assert.equal(r.toString(), '+OK\r\n');
  });

  after(async () => {
    for (const l of links) l.close();
    await stopRedis(redis?.child);
  });

  test('the right password works over RESP2 and RESP3, as default or as a named user', async () => {
    const port = redis?.port ?? 0;
    assert.equal((await link(2, { pass: 's3cret' }).send(argv('ACL', 'WHOAMI'))).toString(), '$7\r\ndefault\r\n');
    assert.equal((await link(3, { pass: 's3cret' }).send(argv('ACL', 'WHOAMI'))).toString(), '$7\r\ndefault\r\n');
    assert.equal((await link(2, { user: 'alice', pass: 'alice-pw' }).send(argv('ACL', 'WHOAMI'))).toString(), '$5\r\nalice\r\n');
    const named = link(3, { user: 'alice', pass: 'alice-pw' }, 'fwd-alice');
    assert.equal((await named.send(argv('ACL', 'WHOAMI'))).toString(), '$5\r\nalice\r\n');
    assert.match((await named.send(argv('CLIENT', 'INFO'))).toString(), /\bname=fwd-alice\b.*\buser=alice\b/);
    // Without credentials the peer's refusal is a reply like any other.
    const anon = new PeerLink({ host: '127.0.0.1', port, protocol: 2 });
    links.push(anon);
    assert.match((await anon.send(argv('GET', 'x'))).toString(), /^-NOAUTH /);
  });

  test('a wrong password rejects the queued commands with the server text, over RESP2 and RESP3; a later send tries again', async () => {
    const port = redis?.port ?? 0;
    for (const protocol of [2, 3] as const) {
      let pass = 'wrong';
      const l = new PeerLink({ host: '127.0.0.1', port, protocol, name: 'n', credentials: async () => ({ pass }) });
      links.push(l);
      const first = l.send(argv('SET', 'k', 'v'));
      const second = l.send(argv('GET', 'k'));
      await Promise.all([
        rejectsFrom(first, port, protocol === 3 ? /HELLO failed: WRONGPASS invalid username-password pair/ : /AUTH failed: WRONGPASS invalid username-password pair/),
        rejectsFrom(second, port, /WRONGPASS/),
      ]);
      assert.equal(l.pending, 0);
      pass = 's3cret'; // credentials are asked again on the next connect
      assert.equal((await l.send(argv('PING'))).toString(), '+PONG\r\n');
    }
    const failing = new PeerLink({ host: '127.0.0.1', port, protocol: 2, credentials: () => Promise.reject(new Error('vault sealed')) });
    links.push(failing);
    await rejectsFrom(failing.send(argv('PING')), port, /credentials failed: vault sealed/);
  });
});

describe('PeerLink when redis-server dies mid-pipeline', { skip, timeout: 60_000 }, () => {
  let redis: { child: ChildProcess; port: number } | undefined;

  after(async () => {
    await stopRedis(redis?.child);
  });

  test('pending sends reject, sends fail while it is down, and the next send after a restart on the same port reconnects', async () => {
    redis = await startRedis();
    const { port } = redis;
    const l = new PeerLink({ host: '127.0.0.1', port, protocol: 3, name: 'survivor' });
    try {
      assert.equal((await l.send(argv('PING'))).toString(), '+PONG\r\n');
      // BLPOP holds its reply, and the SETs behind it wait their turn.
      const sent = [l.send(argv('BLPOP', 'never', '30')), ...Array.from({ length: 500 }, (_, i) => l.send(argv('SET', `k${i}`, 'v')))];
      const settled = Promise.all(sent.map((p) => rejectsFrom(p, port, /closed|ECONNRESET/)));
      await sleep(100);
      assert.equal(l.pending, 501);
      await stopRedis(redis.child, 'SIGKILL');
      await settled;
      assert.equal(l.pending, 0);
      await rejectsFrom(l.send(argv('PING')), port, /ECONNREFUSED/);
      redis = await startRedis([], port);
      assert.equal((await l.send(argv('PING'))).toString(), '+PONG\r\n');
      assert.match((await l.send(argv('CLIENT', 'INFO'))).toString(), /\bname=survivor\b.*\bresp=3\b/);
    } finally {
      l.close();
    }
  });
});

describe('PeerLink against a scripted peer', () => {
  /** A TCP server that records what it receives and answers each data event with `answer(received so far)`. */
  async function scripted(answer: (received: string, socket: Socket) => void): Promise<{ server: Server; port: number; received: () => string }> {
    let received = '';
    const server = createServer((s) => {
      s.on('error', () => undefined);
      s.on('data', (d) => {
        received += d.toString('latin1');
        answer(received, s);
      });
    });
    const port = await new Promise<number>((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port)));
    return { server, port, received: () => received };
  }

  test('a single-connection link (a forwarded WATCH) never connects again once its connection broke; a plain one does', async () => {
    let conns = 0;
    const peer = await scripted((got, s) => {
      // Answers the first WATCH, then drops the connection.
      if (got.endsWith('WATCH\r\n$1\r\nk\r\n')) {
        s.write('+OK\r\n');
        setTimeout(() => s.destroy(), 20);
      } else if (got.endsWith('PING\r\n')) s.write('+PONG\r\n');
    });
    peer.server.on('connection', () => conns++);
    const single = new PeerLink({ host: '127.0.0.1', port: peer.port, protocol: 2, single: true });
    const plainLink = new PeerLink({ host: '127.0.0.1', port: peer.port, protocol: 2 });
    try {
      assert.equal((await single.send(argv('WATCH', 'k'))).toString(), '+OK\r\n');
      await new Promise((r) => setTimeout(r, 100));
      await rejectsFrom(single.send(argv('EXEC')), peer.port, /the connection broke \(what it held there is gone\)/);
      assert.equal(conns, 1, 'no second connection for the single link');
      assert.equal((await plainLink.send(argv('WATCH', 'k'))).toString(), '+OK\r\n');
      await new Promise((r) => setTimeout(r, 100));
      assert.equal((await plainLink.send(argv('PING'))).toString(), '+PONG\r\n', 'a plain link connects again');
    } finally {
      single.close();
      plainLink.close();
      peer.server.close();
    }
  });

  test('the handshake goes first, in order, alone: the commands queued before it are written once it is answered', async () => {
    let greeted = false;
    let early = false;
    let answered = false;
    const peer = await scripted((got, s) => {
      const ping = '*1\r\n$4\r\nPING\r\n';
      if (!greeted && got.includes('SETNAME\r\n$2\r\nme\r\n')) {
        greeted = true;
        early = got.includes(ping);
        // The peer parses a request before it runs the AUTH ahead of it: nothing may come before this answer.
        setTimeout(() => s.write('%1\r\n+server\r\n+fake\r\n+OK\r\n>2\r\n+noise\r\n:1\r\n'), 50);
      }
      if (greeted && !answered && got.includes(ping)) {
        answered = true;
        s.write('+PONG\r\n');
      }
    });
    const l = new PeerLink({ host: '127.0.0.1', port: peer.port, protocol: 3, name: 'me', credentials: async () => ({ pass: 'p w' }) });
    try {
      assert.equal((await l.send(argv('PING'))).toString(), '+PONG\r\n');
      assert.equal(
        peer.received(),
        '*5\r\n$5\r\nHELLO\r\n$1\r\n3\r\n$4\r\nAUTH\r\n$7\r\ndefault\r\n$3\r\np w\r\n' +
          '*3\r\n$6\r\nCLIENT\r\n$7\r\nSETNAME\r\n$2\r\nme\r\n' +
          '*1\r\n$4\r\nPING\r\n',
      );
      assert.equal(early, false, 'PING was written only after the handshake was answered');
    } finally {
      l.close();
      peer.server.close();
    }
  });

  test('a protocol error in the stream rejects everything waiting; so does an error reply that takes the handshake\'s place', async () => {
    const garbage = await scripted((_got, s) => s.write('+OK\r\n?what\r\n'));
    const l = new PeerLink({ host: '127.0.0.1', port: garbage.port, protocol: 2 });
    // redis-server greets a client over maxclients with an error before any command.
    const full = await scripted(() => undefined);
    full.server.on('connection', (s) => s.write('-ERR max number of clients reached\r\n'));
    const l2 = new PeerLink({ host: '127.0.0.1', port: full.port, protocol: 2, name: 'x' });
    try {
      const [a, c] = [l.send(argv('PING')), l.send(argv('PING'))];
      const refused = rejectsFrom(c, garbage.port, /Protocol error: unknown reply type byte 0x3f/);
      assert.equal((await a).toString(), '+OK\r\n');
      await refused;
      await rejectsFrom(l2.send(argv('PING')), full.port, /CLIENT SETNAME failed: ERR max number of clients reached/);
    } finally {
      l.close();
      l2.close();
      garbage.server.close();
      full.server.close();
    }
  });

  test('a reply nobody asked for drops the connection, so that it is never taken for the next reply', async () => {
    let connections = 0;
    const peer = await scripted((got, s) => {
      if (got.endsWith('PING\r\n')) s.write('+PONG\r\n+EXTRA\r\n');
    });
    peer.server.on('connection', () => connections++);
    const l = new PeerLink({ host: '127.0.0.1', port: peer.port, protocol: 2 });
    try {
      assert.equal((await l.send(argv('PING'))).toString(), '+PONG\r\n');
      await sleep(50);
      assert.equal((await l.send(argv('PING'))).toString(), '+PONG\r\n');
      assert.equal(connections, 2);
    } finally {
      l.close();
      peer.server.close();
    }
  });

  test('a peer that accepts but never answers fails the send after timeoutMs', async () => {
    const server = createServer({ pauseOnConnect: true });
    const port = await new Promise<number>((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port)));
    const l = new PeerLink({ host: '127.0.0.1', port, protocol: 2, timeoutMs: 150 });
    try {
      await rejectsFrom(l.send(argv('PING')), port, /no reply within 150 ms/);
    } finally {
      l.close();
      server.close();
    }
  });
});

test('PeerPool keeps one link per key, and closes links on delete and closeAll', async () => {
  const pool = new PeerPool();
  let made = 0;
  const make = (): PeerLink => {
    made++;
    return new PeerLink({ host: '127.0.0.1', port: 1, protocol: 2 });
  };
  const a = pool.get('127.0.0.1:1/2/alice', make);
  assert.equal(pool.get('127.0.0.1:1/2/alice', make), a);
  const c = pool.get('127.0.0.1:1/3/alice', make);
  assert.notEqual(c, a);
  assert.equal(made, 2);
  assert.equal(pool.size, 2);
  assert.equal(pool.delete('127.0.0.1:1/2/alice'), true);
  assert.equal(pool.delete('127.0.0.1:1/2/alice'), false);
  assert.equal(pool.size, 1);
  await assert.rejects(a.send(argv('PING')), /link is closed/);
  pool.closeAll();
  assert.equal(pool.size, 0);
  await assert.rejects(c.send(argv('PING')), /link is closed/);
  assert.notEqual(pool.get('127.0.0.1:1/2/alice', make), a);
  assert.equal(made, 3);
  pool.closeAll();
});
