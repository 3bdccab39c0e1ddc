/** Helpers for RESP integration tests: raw sockets, redis-cli runs and a node with its RESP port. */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { freePort, http, startTestNode, tempDir } from '../helpers/node.js';
import type { NodeOptions } from '../../src/node/index.js';

const exec = promisify(execFile);

/** A test node with its RESP port. */
export async function startRespNode(opts: NodeOptions = {}): Promise<Awaited<ReturnType<typeof startTestNode>> & { respPort: number }> {
  const node = await startTestNode({ respPort: 0, ...opts });
  if (node.resp === undefined) throw new Error('the node has no RESP listener');
  return Object.assign(node, { respPort: node.resp.port });
}

/** Runs redis-cli against `port` with `args`; resolves with stdout. */
export async function redisCli(port: number, args: string[], input?: string): Promise<string> {
  if (input !== undefined) {
    return new Promise((resolve, reject) => {
      const child = execFile('redis-cli', ['-p', String(port), ...args], { timeout: 20_000 }, (err, stdout) => (err ? reject(err) : resolve(stdout)));
      child.stdin?.end(input);
    });
  }
  const { stdout } = await exec('redis-cli', ['-p', String(port), ...args], { timeout: 20_000 });
  return stdout;
}

/** A raw TCP connection that collects everything the server sends. */
export class RawClient {
  readonly socket: Socket;
  private chunks: Buffer[] = [];
  closed = false;
  private readonly waiters: (() => void)[] = [];

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.on('data', (d: Buffer) => {
      this.chunks.push(d);
      this.wake();
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
    socket.on('error', () => undefined);
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  static async open(port: number): Promise<RawClient> {
    const s = connect({ port, host: '127.0.0.1' });
    await new Promise<void>((resolve, reject) => {
      s.once('connect', resolve);
      s.once('error', reject);
    });
    return new RawClient(s);
  }

  /** Everything received so far. */
  get received(): Buffer {
    return Buffer.concat(this.chunks);
  }

  write(data: string | Buffer): void {
    this.socket.write(data);
  }

  /** Waits until the received bytes satisfy `pred` (or the socket closes), at most `ms`. */
  async until(pred: (b: Buffer) => boolean, ms = 10_000): Promise<Buffer> {
    const deadline = Date.now() + ms;
    while (!pred(this.received)) {
      if (this.closed) return this.received;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out; received ${JSON.stringify(this.received.toString('latin1').slice(0, 500))}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    return this.received;
  }

  /** Waits for the server to close the connection. */
  async closedWithin(ms = 10_000): Promise<boolean> {
    await this.until(() => false, ms).catch(() => undefined);
    return this.closed;
  }

  clear(): void {
    this.chunks = [];
  }

  close(): void {
    this.socket.destroy();
  }
}

/** Encodes a command as a RESP multibulk request. */
export function frame(...args: (string | Buffer)[]): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
  for (const a of args) {
    const b = typeof a === 'string' ? Buffer.from(a) : a;
    parts.push(Buffer.from(`$${b.length}\r\n`), b, Buffer.from('\r\n'));
  }
  return Buffer.concat(parts);
}

/** Sleeps `ms`. */
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Starts a Debian redis-server on a free loopback port (no persistence), the peer a test compares against; stop it by its child's pid. */
export async function startRedis(): Promise<{ child: ChildProcess; port: number }> {
  const port = await freePort();
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  const until = Date.now() + 20_000;
  for (;;) {
    try {
      if ((await redisCli(port, ['ping'])).trim() === 'PONG') return { child, port };
    } catch {
      // not up yet
    }
    if (Date.now() > until) {
      child.kill('SIGKILL');
      throw new Error('redis-server did not start');
    }
    await sleep(100);
  }
}

/** A Beacon node and a redis-server side by side, with an ioredis client on each (`io` Beacon, `rd` redis-server). */
export interface SideBySide {
  node: Awaited<ReturnType<typeof startRespNode>>;
  redis: { child: ChildProcess; port: number };
  io: Redis;
  rd: Redis;
  /** Disconnects both clients and stops both servers. */
  stop(): Promise<void>;
}

/**
 * Starts a RESP node with `namespaces` (prefix → policy body, e.g. `{'': {storage: 'memory'}}`)
 * and a redis-server beside it, for tests that compare Beacon's answers with the peer's.
 */
export async function startBesideRedis(namespaces: Record<string, Record<string, unknown>>): Promise<SideBySide> {
  const node = await startRespNode();
  for (const [prefix, body] of Object.entries(namespaces)) {
    const res = await http(`${node.url}/v1/namespaces/${prefix}`, { method: 'PUT', body });
    if (res.status !== 201) throw new Error(`namespace '${prefix}' answered ${res.status}: ${JSON.stringify(res.body)}`);
  }
  const redis = await startRedis();
  const io = new Redis({ port: node.respPort, host: '127.0.0.1', maxRetriesPerRequest: 1 });
  const rd = new Redis({ port: redis.port, host: '127.0.0.1', maxRetriesPerRequest: 1 });
  return {
    node,
    redis,
    io,
    rd,
    stop: async () => {
      io.disconnect();
      rd.disconnect();
      if (redis.child.pid !== undefined) process.kill(redis.child.pid, 'SIGTERM');
      await node.cleanup();
    },
  };
}

/**
 * For tests of AOF replay: runs `write` against a node with `appendonly yes`, `appendfsync
 * always` and a memory namespace `c/`, stops it, runs `between` on its data dir, and runs
 * `check` against a node restarted on the same data dir. The data dir is removed after.
 * `write` may return a value that `check` receives.
 */
export async function acrossRestart<T>(
  write: (io: Redis, node: Awaited<ReturnType<typeof startRespNode>>) => Promise<T>,
  check: (io: Redis, written: T) => Promise<void>,
  between: (dataDir: string) => void = () => undefined,
): Promise<void> {
  const tmp = tempDir();
  try {
    const opts = { dataDir: tmp.dir, cache: { appendonly: true, appendfsync: 'always' as const } };
    let node = await startRespNode(opts);
    await http(`${node.url}/v1/namespaces/c/`, { method: 'PUT', body: { storage: 'memory' } });
    let io = new Redis({ port: node.respPort, host: '127.0.0.1' });
    const written = await write(io, node);
    io.disconnect();
    await node.stop();
    between(tmp.dir);
    await sleep(400);
    node = await startRespNode(opts);
    io = new Redis({ port: node.respPort, host: '127.0.0.1' });
    try {
      await check(io, written);
    } finally {
      io.disconnect();
      await node.stop();
    }
  } finally {
    tmp.cleanup();
  }
}
