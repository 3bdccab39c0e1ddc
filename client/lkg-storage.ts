/**
 * Where a live config keeps its last-known-good copy: a file in Node (written atomically: a
 * temporary file, fsync, rename), Web Storage in browsers, or memory. `node:fs` is loaded only
 * when a file store is used, behind a check that this is Node, so browser bundles never import it.
 */
import { InvalidArgumentError } from '../src/errors.js';

/** A place for one text document: `load` returns undefined when nothing was saved yet. */
export interface LkgStorage {
  /** What and where, for messages (e.g. `file /var/lib/app/config.lkg.json`). */
  readonly description: string;
  load(): Promise<string | undefined>;
  /** Replaces the document; after it resolves, a crash leaves either the old or the new document, never a mix. */
  save(text: string): Promise<void>;
}

/** True in Node.js (and runtimes that pose as it), where `node:fs` can be loaded. */
export function isNode(): boolean {
  const p = (globalThis as { process?: { versions?: { node?: string } } }).process;
  return typeof p?.versions?.node === 'string';
}

interface FsPromises {
  readFile(path: string, encoding: 'utf8'): Promise<string>;
  open(path: string, flags: string): Promise<{ writeFile(data: string): Promise<void>; sync(): Promise<void>; close(): Promise<void> }>;
  rename(from: string, to: string): Promise<void>;
  mkdir(path: string, opts: { recursive: boolean }): Promise<unknown>;
  unlink(path: string): Promise<void>;
}

async function loadFs(): Promise<FsPromises> {
  if (!isNode()) throw new InvalidArgumentError('a last-known-good file needs Node.js; in a browser pass `lastKnownGood: webStorage(localStorage, key)`');
  const name = 'node:fs/promises'; // a variable, so bundlers leave the import alone
  return (await import(/* @vite-ignore */ name)) as FsPromises;
}

/**
 * A last-known-good file at `path`. `save` writes `path.<random>.tmp`, syncs it and renames it
 * over `path` (atomic on POSIX file systems), creating the directory if needed.
 * @throws InvalidArgumentError (from `load`/`save`) outside Node.
 */
export function fileStorage(path: string): LkgStorage {
  return {
    description: `file ${path}`,
    async load() {
      const fs = await loadFs();
      try {
        return await fs.readFile(path, 'utf8');
      } catch (err) {
        if ((err as { code?: string }).code === 'ENOENT') return undefined;
        throw err;
      }
    },
    async save(text) {
      const fs = await loadFs();
      const slash = path.lastIndexOf('/');
      if (slash > 0) await fs.mkdir(path.slice(0, slash), { recursive: true });
      const tmp = `${path}.${Math.random().toString(36).slice(2)}.tmp`;
      try {
        const fh = await fs.open(tmp, 'w');
        try {
          await fh.writeFile(text);
          await fh.sync();
        } finally {
          await fh.close();
        }
        await fs.rename(tmp, path);
      } catch (err) {
        await fs.unlink(tmp).catch(() => undefined);
        throw err;
      }
    },
  };
}

/** The subset of the Web Storage API used (`localStorage`, `sessionStorage`). */
export interface WebStorageLike {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
}

/** A last-known-good copy under `key` in Web Storage (browsers). One `setItem` is atomic. */
export function webStorage(storage: WebStorageLike, key: string): LkgStorage {
  return {
    description: `web storage key ${key}`,
    load: async () => storage.getItem(key) ?? undefined,
    save: async (text) => storage.setItem(key, text),
  };
}

/** A last-known-good copy in memory (tests, or a process that reconnects but never restarts). */
export function memoryStorage(initial?: string): LkgStorage {
  let text = initial;
  return {
    description: 'memory',
    load: async () => text,
    save: async (t) => {
      text = t;
    },
  };
}
