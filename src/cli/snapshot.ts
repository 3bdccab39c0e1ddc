/**
 * `beacon snapshot save FILE` (online: downloads a consistent copy from a running node) and
 * `beacon snapshot restore FILE --data-dir DIR` (offline: checks the file and installs it as
 * DIR/beacon.db for `beacon serve --data-dir DIR`). Restore is the one client command that works
 * on local files, so it alone loads better-sqlite3 (on demand).
 */
import { copyFile, mkdir, open, readdir, rename, rm, stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import type { Command } from 'commander';
import { ConflictError, InvalidArgumentError, NotFoundError, UnavailableError } from '../errors.js';
import { NO_PROGRESS, contextOf, formatBytes, interruptSignal, note, out, outJson, progressBar } from './context.js';
import { CliExit, ExitCode } from './exit-codes.js';

/** The first 16 bytes of every SQLite database file. */
const SQLITE_MAGIC = 'SQLite format 3\u0000';
/** The file name `beacon serve` uses inside its data dir (the SQLite backend's default). */
export const DB_FILE = 'beacon.db';

/** What a verified snapshot holds. */
export interface SnapshotInfo {
  revision: number;
  compactRevision: number;
  keys: number;
  schemaVersion: number;
}

/** Makes a rename durable by syncing the directory that holds it (best effort where unsupported). */
async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r').catch(() => undefined);
  await fh?.sync().catch(() => undefined);
  await fh?.close();
}

async function hasSqliteHeader(path: string): Promise<boolean> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(16);
    const { bytesRead } = await fh.read(buf, 0, 16, 0);
    return bytesRead === 16 && buf.toString('latin1') === SQLITE_MAGIC;
  } finally {
    await fh.close();
  }
}

/**
 * Checks that `path` is a Beacon SQLite store: opens it read-only, requires Beacon's tables and
 * its `meta` revision rows, and runs `PRAGMA integrity_check`.
 * @throws InvalidArgumentError naming what is wrong.
 */
export async function verifySnapshot(path: string, label = path): Promise<SnapshotInfo> {
  if (!(await hasSqliteHeader(path))) throw new InvalidArgumentError(`'${label}' is not a Beacon snapshot: it is not an SQLite database`);
  const { default: Database } = await import('better-sqlite3');
  let db: InstanceType<typeof Database> | undefined;
  try {
    db = new Database(path, { readonly: true, fileMustExist: true });
    const tables = new Set((db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as { name: string }[]).map((r) => r.name));
    const missing = ['meta', 'kv_log', 'leases', 'schema_migrations'].filter((t) => !tables.has(t));
    if (missing.length > 0) throw new InvalidArgumentError(`'${label}' is not a Beacon snapshot: it has no ${missing.join(', ')} table`);
    const meta = new Map((db.prepare('SELECT name, value FROM meta').all() as { name: string; value: number }[]).map((r) => [r.name, r.value]));
    const revision = meta.get('revision');
    if (revision === undefined) throw new InvalidArgumentError(`'${label}' is not a Beacon snapshot: its meta table has no revision`);
    const problems = (db.pragma('integrity_check') as { integrity_check: string }[]).map((r) => r.integrity_check);
    if (problems.length !== 1 || problems[0] !== 'ok') {
      throw new InvalidArgumentError(`'${label}' is damaged: ${problems.slice(0, 3).join('; ')}`);
    }
    const keys = (
      db
        .prepare('SELECT COUNT(*) AS n FROM kv_log k WHERE deleted = 0 AND revision = (SELECT MAX(revision) FROM kv_log WHERE key = k.key)')
        .get() as { n: number }
    ).n;
    const schemaVersion = (db.prepare('SELECT MAX(version) AS v FROM schema_migrations').get() as { v: number | null }).v ?? 0;
    return { revision, compactRevision: meta.get('compact_revision') ?? 0, keys, schemaVersion };
  } catch (err) {
    if (err instanceof InvalidArgumentError) throw err;
    throw new InvalidArgumentError(`'${label}' is not a usable Beacon snapshot: ${(err as Error).message}`);
  } finally {
    db?.close();
  }
}

async function removeDb(path: string): Promise<void> {
  for (const suffix of ['', '-wal', '-shm', '-journal']) await rm(path + suffix, { force: true });
}

/** Adds the `snapshot` command group. */
export function registerSnapshotCommands(program: Command): void {
  const snapshot = program.command('snapshot').description('save a consistent copy of a running node, or restore one offline');

  snapshot
    .command('save')
    .description('download an online, consistent snapshot to FILE (written to FILE.part, then renamed)')
    .argument('<file>', 'where to write the snapshot')
    .action(async (file: string, _o: unknown, cmd: Command) => {
      const { client, json } = contextOf(cmd);
      const { signal, dispose } = interruptSignal();
      const part = `${file}.part`;
      let fh: Awaited<ReturnType<typeof open>> | undefined;
      const bar = { current: NO_PROGRESS };
      try {
        const snap = await client.snapshot({ signal });
        fh = await open(part, 'w');
        bar.current = await progressBar(snap.size ?? 0, 'snapshot', 'bytes', !json);
        let written = 0;
        let head = Buffer.alloc(0);
        for await (const chunk of snap.chunks) {
          // A cheap sanity check before writing gigabytes: the stream must start as an SQLite file.
          if (head.length < 16) {
            head = Buffer.concat([head, Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength)]).subarray(0, 16);
            if (head.length === 16 && head.toString('latin1') !== SQLITE_MAGIC) {
              throw new UnavailableError(`${client.endpoint} sent a snapshot that is not an SQLite database`);
            }
          }
          await fh.write(chunk);
          written += chunk.byteLength;
          bar.current.update(written);
        }
        if (snap.size !== undefined && written !== snap.size) {
          throw new UnavailableError(`the snapshot download ended after ${written} of ${snap.size} bytes`);
        }
        await fh.sync();
        await fh.close();
        fh = undefined;
        await rename(part, file);
        await syncDir(dirname(resolve(file)));
        bar.current.stop();
        if (json) outJson({ file, revision: snap.revision, compactRevision: snap.compactRevision, size: written });
        else out(`snapshot saved to ${file}: revision ${snap.revision}, ${written} bytes (${formatBytes(written)})`);
      } catch (err) {
        bar.current.stop();
        await fh?.close().catch(() => undefined);
        await rm(part, { force: true });
        if (signal.aborted) throw new CliExit('snapshot cancelled; nothing was written', ExitCode.Interrupted);
        throw err;
      } finally {
        dispose();
      }
    });

  snapshot
    .command('restore')
    .description('offline: check a snapshot file and install it as DIR/beacon.db for `beacon serve --data-dir DIR`')
    .argument('<file>', 'a file written by `beacon snapshot save`')
    .requiredOption('--data-dir <dir>', 'the data dir to restore into (must be empty unless --force)')
    .option('--force', 'replace the beacon.db of a non-empty data dir')
    .action(async (file: string, o: { dataDir: string; force?: boolean }, cmd: Command) => {
      const { json } = contextOf(cmd);
      const source = await stat(file).catch(() => undefined);
      if (source === undefined || !source.isFile()) throw new NotFoundError(`snapshot file '${file}' not found`);
      const dir = resolve(o.dataDir);
      const entries = await readdir(dir).catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') return [] as string[];
        throw new InvalidArgumentError(`cannot read data dir '${o.dataDir}': ${err.message}`);
      });
      if (entries.length > 0 && !o.force) {
        throw new ConflictError(`data dir '${o.dataDir}' is not empty; stop the node using it and pass --force to replace its ${DB_FILE}`, {
          dataDir: dir,
        });
      }
      if (!(await hasSqliteHeader(file))) throw new InvalidArgumentError(`'${file}' is not a Beacon snapshot: it is not an SQLite database`);
      await mkdir(dir, { recursive: true });
      // Check a private copy inside the target dir: opening a WAL-mode database, even read-only,
      // creates side files next to it, which must not land beside the user's snapshot.
      const target = join(dir, DB_FILE);
      const tmp = join(dir, `.${DB_FILE}.restore-${process.pid}`);
      let info: SnapshotInfo;
      try {
        await copyFile(file, tmp);
        info = await verifySnapshot(tmp, file);
        const fh = await open(tmp, 'r+');
        await fh.sync();
        await fh.close();
        await removeDb(target);
        await rename(tmp, target);
        await syncDir(dir);
      } finally {
        await removeDb(tmp);
      }
      if (json) outJson({ file, dataDir: dir, path: target, ...info });
      else out(`restored ${file} into ${target}: revision ${info.revision}, ${info.keys} ${info.keys === 1 ? 'key' : 'keys'}; start it with: beacon serve --data-dir ${o.dataDir}`);
      // What a restore does not carry (docs/cli.md, docs/security.md): said here, where people look.
      if (!json) {
        note(
          'users, roles and API keys come with the snapshot; the token signing key does not (the restored node makes its own), ' +
            'so tokens of the old node are refused there: log in to it again. Secrets need the same KEK.',
        );
      }
    });
}
