/** `beacon get`, `put`, `del` and `ls`: reading and writing keys. */
import type { Command } from 'commander';
import { Compare, Op, type KeyValue } from '../../client/index.js';
import { ConflictError, InvalidArgumentError } from '../errors.js';
import { REDACTED, contextOf, inlineValue, kvJson, note, out, outJson, parseCount, parsePositive, readStdin } from './context.js';

/**
 * Prints a key tree from keys that arrive in UTF-8 byte order. The keys under any prefix are
 * contiguous in that order, so each directory line is printed once and the tree streams.
 */
export class TreePrinter {
  private open: string[] = [];

  constructor(private readonly write: (line: string) => void) {}

  /** Prints `key`, after any directories above it that are not printed yet. */
  add(key: string): void {
    const parts = key.split('/');
    const leaf = parts.pop() as string;
    let same = 0;
    while (same < this.open.length && same < parts.length && this.open[same] === parts[same]) same++;
    this.open = this.open.slice(0, same);
    for (let i = same; i < parts.length; i++) {
      // A key that ends in '/' is itself a key as well as a directory: mark its directory line.
      const mark = i === parts.length - 1 && leaf === '' ? '  (key)' : '';
      this.write(`${'  '.repeat(i)}${parts[i]}/${mark}`);
      this.open.push(parts[i] as string);
    }
    if (leaf !== '') this.write(`${'  '.repeat(parts.length)}${leaf}`);
    else if (same === parts.length) this.write(`${'  '.repeat(parts.length)}(key '${key}')`);
  }
}

/** Adds the key commands. */
export function registerKvCommands(program: Command): void {
  program
    .command('get')
    .description('read a key, or every key under a prefix')
    .argument('<key>', 'the key (or prefix with --prefix)')
    .option('--prefix', 'read every key that starts with KEY')
    .option('--rev <revision>', 'read as of this revision', parsePositive)
    .option('--limit <n>', 'with --prefix: at most this many keys (default: all)', parseCount)
    .option('--keys-only', 'print keys without values')
    .action(async (key: string, o: { prefix?: boolean; rev?: number; limit?: number; keysOnly?: boolean }, cmd: Command) => {
      const { client, json } = contextOf(cmd);
      const keysOnly = o.keysOnly ?? false;
      if (!o.prefix) {
        const res = await client.get(key, { revision: o.rev, keysOnly });
        if (json) outJson({ revision: res.revision, kv: kvJson(res.kv, keysOnly) });
        else if (keysOnly) out(res.kv.key);
        else if (res.kv.redacted) {
          out(REDACTED);
          note(`'${key}' is a secret: its value is hidden from you (it needs the read_secret permission)`);
        } else if (res.kv.text !== undefined) out(res.kv.text);
        else out(res.kv.value); // binary: the exact bytes, so that `beacon get k > file` round-trips
        return;
      }
      const kvs: KeyValue[] = [];
      let revision = 0;
      let count = 0;
      let more = false;
      if (o.limit !== undefined && o.limit > 0) {
        const page = await client.range(key, { revision: o.rev, limit: o.limit, keysOnly });
        kvs.push(...page.kvs);
        ({ revision, count, more } = page);
      } else {
        for await (const kv of client.scan(key, { revision: o.rev, keysOnly, onFirstPage: (i) => ({ revision, count } = i) })) {
          if (json) kvs.push(kv);
          else out(keysOnly ? kv.key : `${kv.key} = ${inlineValue(kv)}`);
        }
      }
      if (json) {
        outJson({ revision, count, more, kvs: kvs.map((kv) => kvJson(kv, keysOnly)) });
        return;
      }
      for (const kv of kvs) out(keysOnly ? kv.key : `${kv.key} = ${inlineValue(kv)}`);
      if (more) note(`showing ${kvs.length} of ${count} keys (raise --limit, or leave it out for all)`);
    });

  program
    .command('put')
    .description('write a value (read from stdin when VALUE is left out)')
    .argument('<key>', 'the key')
    .argument('[value]', 'the value as text; omit it to read the bytes from stdin')
    .option('--lease <id>', 'attach the key to this lease (it is deleted when the lease ends)', parsePositive)
    .option('--if-version <n>', 'write only if the key is at this version (0: only if it does not exist); exit 5 otherwise', parseCount)
    .action(async (key: string, value: string | undefined, o: { lease?: number; ifVersion?: number }, cmd: Command) => {
      const { client, json } = contextOf(cmd);
      const bytes: string | Uint8Array = value ?? (await readStdin('VALUE'));
      let revision: number;
      if (o.ifVersion !== undefined) {
        const res = await client
          .txn()
          .if(Compare.version(key, '=', o.ifVersion))
          .then(Op.put(key, bytes, { lease: o.lease }))
          .else(Op.get(key, { keysOnly: true }))
          .commit();
        if (!res.succeeded) {
          const first = res.results[0];
          const current = first?.type === 'range' ? (first.kvs[0]?.version ?? 0) : 0;
          throw new ConflictError(
            current === 0 ? `key '${key}' does not exist, not at version ${o.ifVersion}` : `key '${key}' is at version ${current}, not ${o.ifVersion}`,
            { key, version: current, expected: o.ifVersion },
          );
        }
        revision = res.revision;
      } else {
        revision = (await client.put(key, bytes, { lease: o.lease })).revision;
      }
      if (json) outJson({ revision });
      else out(`OK (revision ${revision})`);
    });

  program
    .command('del')
    .alias('delete')
    .description('delete a key, or every key under a prefix')
    .argument('<key>', 'the key (or prefix with --prefix)')
    .option('--prefix', 'delete every key that starts with KEY')
    .option('--all', "with --prefix and an empty KEY (''): really delete every key")
    .option('--prev-kv', 'print the deleted keys and values')
    .action(async (key: string, o: { prefix?: boolean; all?: boolean; prevKv?: boolean }, cmd: Command) => {
      const { client, json } = contextOf(cmd);
      if (key === '' && o.prefix && !o.all) throw new InvalidArgumentError("deleting every key needs --all as well as --prefix: beacon del '' --prefix --all");
      const res = await client.delete(key, { prefix: o.prefix, all: o.all, prevKv: o.prevKv });
      if (json) {
        outJson({ revision: res.revision, deleted: res.deleted, ...(res.prevKvs ? { prevKvs: res.prevKvs.map((kv) => kvJson(kv)) } : {}) });
        return;
      }
      for (const kv of res.prevKvs ?? []) out(`${kv.key} = ${inlineValue(kv)}`);
      out(`deleted ${res.deleted} ${res.deleted === 1 ? 'key' : 'keys'}${res.deleted > 0 ? ` (revision ${res.revision})` : ''}`);
    });

  program
    .command('ls')
    .description('list keys as a tree (every page, at one revision)')
    .argument('[prefix]', 'list only keys under this prefix', '')
    .option('--flat', 'one full key per line instead of a tree')
    .option('--rev <revision>', 'list as of this revision', parsePositive)
    .action(async (prefix: string, o: { flat?: boolean; rev?: number }, cmd: Command) => {
      const { client, json } = contextOf(cmd);
      let revision = 0;
      let n = 0;
      const keys: string[] = [];
      const tree = new TreePrinter((line) => out(line));
      for await (const kv of client.scan(prefix, { revision: o.rev, keysOnly: true, onFirstPage: (i) => (revision = i.revision) })) {
        n++;
        if (json) keys.push(kv.key);
        else if (o.flat) out(kv.key);
        else tree.add(kv.key);
      }
      if (json) outJson({ revision, count: n, keys });
      else note(`${n} ${n === 1 ? 'key' : 'keys'} at revision ${revision}`);
    });
}
