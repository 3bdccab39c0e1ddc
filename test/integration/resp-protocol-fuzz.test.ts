/**
 * A seeded protocol fuzz of the RESP listener, compared with a real redis-server: random and
 * mutated request streams (valid pipelines, truncated multibulks, bad and huge lengths, nested
 * garbage, inline commands with quotes and escapes, random bytes) are sent on fresh connections
 * to both servers, and to Beacon a second time split across many writes at random boundaries.
 *
 * Asserted for every case: everything Beacon sends parses as complete, valid RESP; Beacon's
 * replies and whether it closed the connection are the same as redis-server's, and the same
 * whether the stream came in one write or many; a protocol error is `-ERR Protocol error: …`,
 * the last reply, followed by a close. Throughout, a separate ioredis client keeps getting
 * correct answers, and the node is still ready at the end.
 *
 * The split runs go to a second node, so no key is shared between the runs of a case. Each
 * case's keys carry a 4-byte id (replacing `@@@@` at the same length), so the cases run side
 * by side do not share keys either; the id is put back to `@@@@` in the replies before they are
 * compared (error messages echo arguments).
 * `BEACON_FUZZ_SEED=<n>` replays a seed; `BEACON_FUZZ_CASES` sets the number of cases.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { http } from '../helpers/node.js';
import { prng } from '../helpers/random.js';
import { RawClient, sleep, startBesideRedis, startRespNode, type SideBySide } from './resp-helpers.js';
import { encodeCommand, mapReply, parseAll, type Reply } from './resp-fuzz-helpers.js';

const SEED = Number(process.env.BEACON_FUZZ_SEED ?? Date.now() % 1_000_000);
const CASES = Number(process.env.BEACON_FUZZ_CASES ?? 300);
/** Cases run side by side. */
const PARALLEL = 12;
const ID = '@@@@';
/** Local triage: log every failing case and go on (the test still fails at the end). */
const KEEP_GOING = process.env.BEACON_FUZZ_KEEP_GOING === '1';

/** What one server did with a case's bytes. */
interface Outcome {
  replies: Reply[];
  closed: boolean;
  /** Bytes left that are not a complete reply (must be 0). */
  rest: number;
  /** Set when the bytes are not RESP. */
  invalid?: string;
  raw: string;
}

class Gen {
  private readonly rnd: () => number;
  constructor(seed: number) {
    this.rnd = prng(seed);
  }
  int(n: number): number {
    return Math.floor(this.rnd() * n);
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)] as T;
  }
  chance(p: number): boolean {
    return this.rnd() < p;
  }
  /**
   * A random byte: never '@' or a run letter (see {@link RUN_LETTERS}), and never NUL.
   * KNOWN DIVERGENCE (docs/resp.md "What differs"): redis-server finds the end of an inline
   * request with strchr, which stops at a NUL byte, so it never answers an inline line holding
   * one (it waits for more, up to 64 KiB); Beacon reads the line to its LF.
   */
  byte(): number {
    for (;;) {
      const b = 1 + this.int(255);
      if (b !== 0x40 && !RUN_LETTERS.includes(String.fromCharCode(b))) return b;
    }
  }
  bytes(n: number): Buffer {
    return Buffer.from(Array.from({ length: n }, () => this.byte()));
  }
}

/** A valid command frame over the case's own keys (`@@@@:…`). */
function validCommand(g: Gen): string[] {
  const key = `${ID}:${g.pick(['a', 'b', 'c'])}`;
  switch (g.int(12)) {
    case 0:
      return ['PING'];
    case 1:
      return ['PING', g.pick(['hi', '', 'x y'])];
    case 2:
      // ('hallo', not 'hello': a damaged frame could run it inline as HELLO, whose reply names the server.)
      return ['ECHO', g.pick(['hallo', '', '\r\n', 'é', '\x01\x02\xff'])];
    case 3:
      return ['SET', key, g.pick(['v', '1', '', 'x'.repeat(100)])];
    case 4:
      return ['GET', key];
    case 5:
      return ['INCR', key];
    case 6:
      return ['APPEND', key, 'z'];
    case 7:
      return ['DEL', key];
    case 8:
      return ['RPUSH', `${ID}:l`, g.pick(['a', 'b'])];
    case 9:
      return ['LRANGE', `${ID}:l`, '0', '-1'];
    case 10:
      return ['MGET', `${ID}:a`, `${ID}:b`];
    default:
      return [g.pick(['EXISTS', 'STRLEN', 'TYPE']), key];
  }
}

const frameOf = (args: string[]): Buffer => encodeCommand(args.map((a) => Buffer.from(a, 'latin1')));

/** Inline commands (telnet style) with quotes and escapes, valid and not. */
const INLINE = [
  'PING',
  'ECHO "hello world"',
  "ECHO 'single quoted'",
  'ECHO "a\\x41b\\n\\t\\\\"',
  "ECHO 'it\\'s'",
  'ECHO "unterminated',
  "ECHO 'unterminated",
  'ECHO "a"b',
  "ECHO 'a'b",
  `SET ${ID}:q "x y"`,
  `GET ${ID}:q`,
  '   ',
  '',
  'ECHO a\tb',
  'ECHO "\\x4"',
  'ECHO "\\xZZ"',
  'NOSUCH "a b" c',
  `GET ${ID}:q extra`,
  'ECHO ""',
  'ECHO "x" "y"',
];

/** Lengths that are not valid counts. (`*-1` and `*0` are valid: Redis ignores them.) */
const BAD_LENGTHS = ['-5', 'abc', '', '99999999999', '+3', ' 3', '3 ', '0x3', '-2', '2147483648', '536870913', '1.5'];

/**
 * A case: the bytes sent. KNOWN DIVERGENCE (docs/resp.md "Protocol, limits": 1,048,576
 * arguments per request): a multibulk count from 1,048,577 to 2^31-1 is refused by Beacon
 * and awaited by Redis, so no count in that range is generated.
 */
function generateCase(g: Gen): Buffer {
  const frames = (n: number): Buffer[] => Array.from({ length: n }, () => frameOf(validCommand(g)));
  switch (g.int(9)) {
    case 0:
      return Buffer.concat(frames(1 + g.int(6)));
    case 1: {
      // A valid pipeline, then a frame cut short.
      const last = frameOf(validCommand(g));
      return Buffer.concat([...frames(g.int(4)), last.subarray(0, 1 + g.int(last.length - 1))]);
    }
    case 2: {
      // A bad count or bulk length somewhere.
      const args = validCommand(g);
      const bad = g.pick(BAD_LENGTHS);
      let f: string;
      if (g.chance(0.5)) f = `*${bad}\r\n` + args.map((a) => `$${Buffer.byteLength(a, 'latin1')}\r\n${a}\r\n`).join('');
      else f = `*${args.length}\r\n$${bad}\r\n${args[0]}\r\n` + args.slice(1).map((a) => `$${Buffer.byteLength(a, 'latin1')}\r\n${a}\r\n`).join('');
      return Buffer.concat([...frames(g.int(3)), Buffer.from(f, 'latin1'), ...frames(g.int(3))]);
    }
    case 3: {
      // Nested garbage: a multibulk whose items are not bulk strings.
      const garbage = g.pick(['*2\r\n*1\r\n$1\r\na\r\n', '*1\r\n:5\r\n', '*1\r\n+PING\r\n', '*2\r\n$4\r\nECHO\r\n*0\r\n', '*1\r\n$4\r\nPING\r\r\n', '*1\r\n$4\r\nPINGxx\r\n', '*-1\r\n', '*0\r\n', '*1\r\n$0\r\n\r\n', '*3\r\n$3\r\nSET\r\n$-1\r\n']);
      return Buffer.concat([...frames(g.int(3)), Buffer.from(garbage, 'latin1'), ...frames(g.int(3))]);
    }
    case 4: {
      // Inline commands, CRLF or LF ended.
      const n = 1 + g.int(4);
      const eol = g.chance(0.7) ? '\r\n' : '\n';
      return Buffer.from(Array.from({ length: n }, () => g.pick(INLINE)).join(eol) + eol, 'latin1');
    }
    case 5: {
      // A valid stream with 1–3 random mutations.
      const b = Buffer.from(Buffer.concat(frames(1 + g.int(4))));
      let out = b;
      for (let i = 1 + g.int(3); i > 0; i--) {
        const pos = g.int(out.length);
        const op = g.int(4);
        if (op === 0) out[pos] = g.byte();
        else if (op === 1) out[pos] = g.pick([0x2a, 0x24, 0x0d, 0x0a, 0x2d, 0x30, 0x22]);
        else if (op === 2) out = Buffer.concat([out.subarray(0, pos), out.subarray(pos + 1 + g.int(4))]);
        else out = Buffer.concat([out.subarray(0, pos), Buffer.from(String(g.int(1e6))), out.subarray(pos)]);
      }
      return out;
    }
    case 6: {
      // Random bytes, sometimes after a valid frame.
      const junk = g.bytes(1 + g.int(64));
      return g.chance(0.5) ? Buffer.concat([frameOf(validCommand(g)), junk]) : junk;
    }
    case 7:
      // Huge counts and lengths: refused at once, or (within the limits) awaited.
      return Buffer.from(g.pick(['*99999999999\r\n', '*1\r\n$99999999999\r\n', '*5000\r\n$4\r\nPING\r\n', '*1048576\r\n', `*2\r\n$3\r\nGET\r\n$100000\r\n${ID}`]), 'latin1');
    default: {
      // A long valid pipeline (many replies in one write).
      return Buffer.concat(frames(20 + g.int(60)));
    }
  }
}

/** Sends `bytes` (in `chunks` writes, a few ms apart, when given) and collects what comes back. */
async function run(port: number, bytes: Buffer, enough: (o: Outcome) => boolean, chunks?: number[]): Promise<Outcome> {
  const c = await RawClient.open(port);
  try {
    if (chunks === undefined) c.write(bytes);
    else {
      let at = 0;
      for (const n of chunks) {
        c.write(bytes.subarray(at, at + n));
        at += n;
        await sleep(1);
      }
      c.write(bytes.subarray(at));
    }
    const outcome = (): Outcome => {
      const raw = c.received;
      try {
        const { replies, rest } = parseAll(raw);
        return { replies, rest, closed: c.closed, raw: raw.toString('latin1') };
      } catch (err) {
        return { replies: [], rest: raw.length, closed: c.closed, invalid: (err as Error).message, raw: raw.toString('latin1') };
      }
    };
    // Until closed, or until `enough` holds and nothing more comes for a while (at most 5 s).
    const deadline = Date.now() + 5000;
    let lastLength = -1;
    let quietSince = Date.now();
    for (;;) {
      const o = outcome();
      if (o.closed || o.invalid !== undefined) return o;
      if (c.received.length !== lastLength) {
        lastLength = c.received.length;
        quietSince = Date.now();
      } else if (enough(o) && Date.now() - quietSince >= 80) return o;
      if (Date.now() > deadline) return o;
      await sleep(10);
    }
  } finally {
    c.close();
  }
}

/** Random write boundaries for `n` bytes: many small writes. */
function splits(g: Gen, n: number): number[] {
  const out: number[] = [];
  let left = n;
  while (left > 1 && out.length < 40) {
    const k = 1 + g.int(Math.min(left - 1, 12));
    out.push(k);
    left -= k;
  }
  return out;
}

/**
 * KNOWN DIVERGENCE (docs/resp.md "What differs"): Beacon refuses a multibulk count over
 * 1,048,576 at once; redis-server accepts any count up to 2^31-1 and waits for the arguments.
 * A stream with such a count line (a mutation can make one) is checked for valid RESP only.
 */
function overArgLimit(b: Buffer): boolean {
  for (const m of b.toString('latin1').matchAll(/\*([0-9]+)\r?\n/g)) {
    const n = Number(m[1]);
    if (n > 1024 * 1024 && n <= 2 ** 31 - 1) return true;
  }
  return false;
}

/**
 * Each run's bytes: `@@@@` becomes the run's id (unique per case and run), and any other `@`
 * (a key a mutation damaged) the run's letter, so that no two runs share a key, damaged or not.
 */
const RUN_LETTERS = '\x1c\x1d\x1e';
const withId = (b: Buffer, id: string, letter: string): Buffer => Buffer.from(b.toString('latin1').replaceAll(ID, id).replaceAll('@', letter), 'latin1');
const unId = (r: Reply, id: string, letter: string): Reply => JSON.parse(JSON.stringify(mapReply(r, (s) => s.replaceAll(id, ID).replaceAll(letter, '@')))) as Reply;

const showBytes = (b: Buffer): string => JSON.stringify(b.toString('latin1')).slice(0, 400);

describe('RESP protocol fuzz against redis-server', () => {
  let pair: SideBySide;
  /** A second node for the split runs: a mutation can make a key no run id reaches (digits inserted before it), and INCR on it twice would differ. */
  let second: Awaited<ReturnType<typeof startRespNode>>;

  before(async () => {
    pair = await startBesideRedis({ '': { storage: 'memory' } });
    second = await startRespNode();
    assert.equal((await http(`${second.url}/v1/namespaces/`, { method: 'PUT', body: { storage: 'memory' } })).status, 201);
  });
  after(async () => {
    await second?.cleanup();
    await pair?.stop();
  });

  test(`${CASES} random and mutated request streams: valid RESP back, the same replies as redis-server, split or not`, { timeout: 180_000 }, async () => {
    process.stderr.write(`resp protocol fuzz seed ${SEED} (BEACON_FUZZ_SEED=${SEED} replays it)\n`);
    const g = new Gen(SEED);
    const started = Date.now();
    // A well-behaved client, counting throughout.
    let failures = 0;
    let stop = false;
    let counted = 0;
    const counter = (async () => {
      await pair.io.del('pf:counter');
      while (!stop) {
        const n = await pair.io.incr('pf:counter');
        assert.equal(n, ++counted, 'the well-behaved client reads its own increments');
        assert.equal(await pair.io.get('pf:counter'), String(counted));
        await sleep(5);
      }
    })();
    try {
      for (let base = 0; base < CASES; base += PARALLEL) {
        const batch = Array.from({ length: Math.min(PARALLEL, CASES - base) }, (_, j) => {
          const n = base + j;
          const bytes = generateCase(g);
          const chunked = splits(g, bytes.length);
          return { n, bytes, chunked };
        });
        await Promise.all(
          batch.map(async ({ n, bytes, chunked }) => {
            // A run's id is the case's number and the run's letter: an error quoting part of a key
            // reads the same once the letter is put back to '@'.
            const letters = [...RUN_LETTERS] as [string, string, string];
            const ids = letters.map((x) => `${n.toString(36).padStart(3, '0')}${x}`) as [string, string, string];
            const redis = await run(pair.redis.port, withId(bytes, ids[0], letters[0]), () => true);
            const count = redis.replies.length;
            const enough = (o: Outcome): boolean => o.replies.length >= count;
            const whole = await run(pair.node.respPort, withId(bytes, ids[1], letters[1]), enough);
            const split = await run(second.respPort, withId(bytes, ids[2], letters[2]), enough, chunked);
            const check = (fn: () => void): void => {
              try {
                fn();
              } catch (err) {
                if (!KEEP_GOING) throw err;
                failures++;
                process.stderr.write(`FAILURE ${(err as Error).message}\n`);
              }
            };
            const context = `seed ${SEED} (BEACON_FUZZ_SEED=${SEED}), case #${n}, bytes ${showBytes(bytes)}`;
            for (const [name, o, id, letter] of [['in one write', whole, ids[1], letters[1]], ['split', split, ids[2], letters[2]]] as const) check(() => {
              assert.equal(o.invalid, undefined, `${context}: Beacon (${name}) sent bytes that are not RESP: ${o.invalid} in ${JSON.stringify(o.raw.slice(0, 400))}`);
              assert.equal(o.rest, 0, `${context}: Beacon (${name}) left a reply unfinished: ${JSON.stringify(o.raw.slice(-200))}`);
              const replies = o.replies.map((r) => unId(r, id, letter));
              const protoErr = replies.findIndex((r) => typeof r === 'string' && r.startsWith('-ERR Protocol error'));
              if (protoErr >= 0) {
                assert.equal(protoErr, replies.length - 1, `${context}: a protocol error is the last reply (${name})`);
                assert.ok(o.closed, `${context}: the connection is closed after a protocol error (${name})`);
              }
              if (overArgLimit(bytes)) return;
              // Keys must be non-empty UTF-8 (docs/resp.md "What differs"): a damaged key may not be.
              if (replies.some((r) => typeof r === 'string' && /^-ERR (keys must be UTF-8|empty keys are not allowed)/.test(r))) return;
              const want = redis.replies.map((r) => unId(r, ids[0], letters[0]));
              assert.deepEqual(
                { replies, closed: o.closed },
                { replies: want, closed: redis.closed },
                `${context}: Beacon (${name}) and redis-server differ`,
              );
            });
          }),
        );
        assert.equal(await pair.io.ping(), 'PONG', `after ${base + batch.length} cases`);
      }
    } finally {
      stop = true;
      await counter;
    }
    assert.equal(failures, 0, 'failures (BEACON_FUZZ_KEEP_GOING)');
    assert.ok(counted > 0);
    assert.equal(await pair.io.get('pf:counter'), String(counted));
    assert.equal((await http(`${pair.node.url}/readyz`)).status, 200, 'the node is still ready');
    assert.equal((await http(`${second.url}/readyz`)).status, 200, 'the second node is still ready');
    process.stderr.write(`resp protocol fuzz: ${CASES} cases (each 3 runs), ${counted} checked increments, in ${Date.now() - started} ms\n`);
  });
});
