/**
 * Test helper: a temporary PostgreSQL server for the PostgreSQL tier, or the server named by
 * `BEACON_TEST_POSTGRES_URL`. Each test file gets fresh databases from {@link PostgresServer.createDatabase}.
 *
 * The local server runs `initdb` and `postgres` from the Debian packages (installed by
 * scripts/ensure-system-deps.sh when missing) in a temporary directory, as the `postgres` system
 * user when this process is root (PostgreSQL refuses to run as root), on a free port on
 * 127.0.0.1 with its unix socket inside the temporary directory. It is stopped by pid.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import pg from 'pg';
import WebSocket from 'ws';
import { freePort, spawnServer, tempDir, type ServerProcess } from './node.js';

/** The repository root (this file runs from dist/test/helpers/). */
const ROOT = resolve(new URL('../../..', import.meta.url).pathname);

/** A PostgreSQL server for tests. */
export interface PostgresServer {
  /** A connection URL to `database` (default `postgres`). */
  url(database?: string): string;
  /** Creates a fresh, empty database and returns its URL; it is dropped by {@link PostgresServer.stop}. */
  createDatabase(): Promise<string>;
  /** Whether {@link PostgresServer.restart} can be used (false for an external `BEACON_TEST_POSTGRES_URL`). */
  readonly restartable: boolean;
  /** Stops the server (fast shutdown: open sessions are terminated) and waits until it exited. */
  shutdown(): Promise<void>;
  /** Starts it again on the same port and data directory. */
  start(): Promise<void>;
  /** {@link shutdown} then {@link start}. */
  restart(): Promise<void>;
  /** Drops the created databases, stops the local server and removes its directory. */
  stop(): Promise<void>;
  /**
   * Makes the local server unresponsive without closing a connection: SIGSTOPs the postmaster, then
   * its children (backends, background processes). The kernel still accepts connections and
   * answers TCP keep-alives. Returns the stopped pids.
   * @throws when the server is external ({@link restartable} false) or not running.
   */
  freeze(): number[];
  /** SIGCONTs every process {@link freeze} stopped; a no-op when none is. {@link stop} thaws first. */
  thaw(): void;
}

/** The pids of the direct children of `pid` (empty when it has none or ps fails). */
function childPids(pid: number): number[] {
  const r = spawnSync('ps', ['-o', 'pid=', '--ppid', String(pid)], { encoding: 'utf8' });
  return r.stdout
    .split('\n')
    .map((l) => Number(l.trim()))
    .filter((n) => Number.isInteger(n) && n > 0);
}

/** How long the server may take to accept connections after start, in ms. */
const START_TIMEOUT_MS = 30_000;

function findBinDir(): string | undefined {
  const base = '/usr/lib/postgresql';
  if (!existsSync(base)) return undefined;
  const versions = readdirSync(base)
    .filter((v) => existsSync(join(base, v, 'bin', 'initdb')))
    .sort((a, b) => Number(b) - Number(a));
  return versions[0] === undefined ? undefined : join(base, versions[0], 'bin');
}

function postgresUser(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const id = (flag: string): number => Number(spawnSync('id', [flag, 'postgres'], { encoding: 'utf8' }).stdout.trim());
  const uid = id('-u');
  const gid = id('-g');
  if (!Number.isInteger(uid) || uid <= 0) {
    throw new Error('running as root but there is no `postgres` system user to run PostgreSQL as (install the postgresql package)');
  }
  return { uid, gid };
}

async function waitUntilAccepting(url: string, child: ChildProcess, log: () => string): Promise<void> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`postgres exited with ${child.exitCode}:\n${log()}`);
    const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 1000 });
    c.on('error', () => undefined);
    try {
      await c.connect();
      await c.query('SELECT 1');
      await c.end();
      return;
    } catch {
      await c.end().catch(() => undefined);
      if (Date.now() > deadline) throw new Error(`postgres did not accept connections in ${START_TIMEOUT_MS} ms:\n${log()}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

async function adminQuery(url: string, sql: string): Promise<void> {
  const c = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
  c.on('error', () => undefined);
  await c.connect();
  try {
    await c.query(sql);
  } finally {
    await c.end().catch(() => undefined);
  }
}

function databaseUrl(base: string, database: string): string {
  const u = new URL(base);
  u.pathname = `/${database}`;
  return u.toString();
}

/**
 * Starts a temporary PostgreSQL (or connects to `BEACON_TEST_POSTGRES_URL`).
 * @throws when PostgreSQL is not installed and cannot be installed, or does not start in 30 s.
 */
export async function startPostgres(): Promise<PostgresServer> {
  const created: string[] = [];
  const createDatabase = async (adminUrl: string): Promise<string> => {
    const name = `beacon_test_${randomBytes(6).toString('hex')}`;
    await adminQuery(adminUrl, `CREATE DATABASE ${name} ENCODING 'UTF8' TEMPLATE template0`);
    created.push(name);
    return databaseUrl(adminUrl, name);
  };
  const dropCreated = async (adminUrl: string): Promise<void> => {
    for (const name of created.splice(0)) {
      await adminQuery(adminUrl, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch(() => undefined);
    }
  };

  const external = process.env.BEACON_TEST_POSTGRES_URL;
  if (external !== undefined && external !== '') {
    const refuse = (): Promise<void> => Promise.reject(new Error('cannot stop or start an external PostgreSQL (BEACON_TEST_POSTGRES_URL)'));
    return {
      url: (db) => (db === undefined ? external : databaseUrl(external, db)),
      createDatabase: () => createDatabase(external),
      restartable: false,
      shutdown: refuse,
      start: refuse,
      restart: refuse,
      stop: () => dropCreated(external),
      freeze: () => {
        throw new Error('cannot freeze an external PostgreSQL (BEACON_TEST_POSTGRES_URL)');
      },
      thaw: () => undefined,
    };
  }

  let bin = findBinDir();
  if (bin === undefined && process.getuid?.() === 0) {
    spawnSync('bash', [join(ROOT, 'scripts/ensure-system-deps.sh')], { stdio: 'inherit' });
    bin = findBinDir();
  }
  if (bin === undefined) {
    throw new Error('PostgreSQL is not installed: run scripts/ensure-system-deps.sh as root, or set BEACON_TEST_POSTGRES_URL');
  }
  const owner = postgresUser();
  const dir = mkdtempSync(join(tmpdir(), 'beacon-pg-'));
  if (owner !== undefined) chownSync(dir, owner.uid, owner.gid);
  const dataDir = join(dir, 'data');
  const asOwner = owner === undefined ? {} : { uid: owner.uid, gid: owner.gid };
  const init = spawnSync(join(bin, 'initdb'), ['-D', dataDir, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--no-locale', '--no-sync'], {
    ...asOwner,
    encoding: 'utf8',
    env: { ...process.env, LC_ALL: 'C' },
  });
  if (init.status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`initdb failed (${init.status}): ${init.stderr}`);
  }
  const port = await freePort();
  const adminUrl = `postgres://postgres@127.0.0.1:${port}/postgres`;
  let child: ChildProcess | undefined;
  let log = '';
  const frozen: number[] = [];
  const thaw = (): void => {
    for (const pid of frozen.splice(0)) {
      try {
        process.kill(pid, 'SIGCONT');
      } catch {
        // exited meanwhile
      }
    }
  };

  const start = async (): Promise<void> => {
    const p = spawn(
      join(bin, 'postgres'),
      [
        '-D', dataDir,
        '-p', String(port),
        '-k', dir,
        '-c', 'listen_addresses=127.0.0.1',
        '-c', 'max_connections=200',
        '-c', 'shared_buffers=128MB',
        '-c', 'log_min_messages=warning',
      ],
      { ...asOwner, stdio: ['ignore', 'ignore', 'pipe'] },
    );
    p.stderr?.setEncoding('utf8');
    p.stderr?.on('data', (d: string) => {
      log = (log + d).slice(-20_000);
    });
    child = p;
    await waitUntilAccepting(adminUrl, p, () => log);
  };

  const shutdown = async (): Promise<void> => {
    thaw(); // a stopped server would never shut down
    const p = child;
    child = undefined;
    if (p === undefined || p.exitCode !== null || p.signalCode !== null) return;
    const exited = new Promise<void>((r) => p.once('exit', () => r()));
    p.kill('SIGINT'); // fast shutdown: roll back open transactions, end sessions, checkpoint
    const t = setTimeout(() => p.kill('SIGKILL'), 15_000);
    await exited;
    clearTimeout(t);
  };

  try {
    await start();
  } catch (err) {
    await shutdown();
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  const freeze = (): number[] => {
    const pid = child?.pid;
    if (pid === undefined || child?.exitCode !== null || child.signalCode !== null) throw new Error('the test PostgreSQL is not running');
    // The postmaster first, so that it forks no new backend while its children are being stopped.
    process.kill(pid, 'SIGSTOP');
    frozen.push(pid);
    for (const c of childPids(pid)) {
      try {
        process.kill(c, 'SIGSTOP');
        frozen.push(c);
      } catch {
        // exited meanwhile
      }
    }
    return [...frozen];
  };
  return {
    freeze,
    thaw,
    url: (db) => databaseUrl(adminUrl, db ?? 'postgres'),
    createDatabase: () => createDatabase(adminUrl),
    restartable: true,
    shutdown,
    start,
    restart: async () => {
      await shutdown();
      await start();
    },
    stop: async () => {
      await shutdown();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** One `events` frame of the `/v1/watch` WebSocket: every change of one revision. */
export interface WatchFrame {
  revision: number;
  events: { type: 'put' | 'delete'; kv: { key: string; value?: string; modRevision: number; version: number; lease: number } }[];
}

/**
 * A watch through a node's `/v1/watch` WebSocket (the protocol a user's client speaks), used by
 * the PostgreSQL tier to check what every node streams. Frames are kept in arrival order.
 */
export class WatchClient {
  readonly frames: WatchFrame[] = [];
  /** Error or compacted frames the server sent. */
  readonly problems: unknown[] = [];
  private closedFlag = false;
  private constructor(private readonly ws: WebSocket) {}

  /**
   * Opens a prefix watch on `baseUrl` from `fromRevision` and waits until it is created.
   * @throws when the socket fails or the watch is not created within 5 s.
   */
  static async open(baseUrl: string, prefix: string, fromRevision: number): Promise<WatchClient> {
    const ws = new WebSocket(`${baseUrl.replace(/^http/, 'ws')}/v1/watch`);
    const c = new WatchClient(ws);
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`watch on ${baseUrl} was not created in 5 s`)), 5000);
      ws.once('error', (err) => {
        clearTimeout(t);
        reject(err);
      });
      const create = (): void => ws.send(JSON.stringify({ type: 'create', key: prefix, prefix: true, fromRevision }));
      let created = false;
      ws.on('message', (data) => {
        const f = JSON.parse(String(data)) as { type: string; error?: { code?: string } } & WatchFrame;
        if (f.type === 'created') {
          created = true;
          clearTimeout(t);
          resolve();
        } else if (f.type === 'events') c.frames.push({ revision: f.revision, events: f.events });
        else if (!created && f.type === 'error' && f.error?.code === 'future_revision') {
          // This node has not applied `fromRevision - 1` yet (it was read from another node): ask
          // again in a moment, as the SDK does.
          setTimeout(create, 20);
        } else if (f.type !== 'progress') c.problems.push(f);
      });
      ws.once('open', create);
    });
    ws.on('error', () => undefined);
    ws.on('close', () => {
      c.closedFlag = true;
    });
    return c;
  }

  /** Whether the server (or the network) closed the socket. */
  get closed(): boolean {
    return this.closedFlag;
  }

  /** The revision of the last frame received, or 0. */
  get lastRevision(): number {
    return this.frames[this.frames.length - 1]?.revision ?? 0;
  }

  /**
   * Waits until a frame at or after `revision` arrived.
   * @throws when it did not within `timeoutMs`.
   */
  async waitForRevision(revision: number, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.lastRevision < revision) {
      if (Date.now() > deadline) throw new Error(`watch stopped at revision ${this.lastRevision}, waiting for ${revision}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  /** Closes the socket. */
  close(): void {
    this.ws.terminate();
  }
}

/**
 * Polls `check` every 20 ms until it returns true.
 * @throws with `what` when it did not within `timeoutMs`.
 */
export async function eventually(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * Built `beacon serve` processes on one PostgreSQL, each with its own data dir, started one after
 * the other (the first one migrates). Tracks what it starts so the caller's `after` hook can end it
 * with {@link ClusterProcesses.stop}.
 */
export class ClusterProcesses {
  readonly procs: ServerProcess[] = [];
  private readonly dirs: (() => void)[] = [];

  /** Starts `n` nodes on `url` (in `--dev` mode) and resolves with them. */
  async spawn(url: string, n: number): Promise<ServerProcess[]> {
    const out: ServerProcess[] = [];
    for (let i = 0; i < n; i++) {
      const tmp = tempDir();
      this.dirs.push(tmp.cleanup);
      const p = await spawnServer(['--backend', url, '--data-dir', tmp.dir, '--dev']);
      this.procs.push(p);
      out.push(p);
    }
    return out;
  }

  /** Resumes stopped ones (SIGCONT), kills them all and removes their data dirs. */
  async stop(): Promise<void> {
    for (const p of this.procs) {
      try {
        p.child.kill('SIGCONT'); // a stopped process must run again to exit cleanly
      } catch {
        // already gone
      }
    }
    await Promise.all(this.procs.map((p) => p.kill().catch(() => undefined)));
    for (const d of this.dirs) d();
  }
}
