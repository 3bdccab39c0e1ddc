/**
 * `beacon import FILE`: bulk-loads keys from JSON lines (`{"key":…,"value":…}` per line) or from
 * one JSON object of key → value, in txns of up to 128 puts, with a progress bar on a terminal.
 */
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import type { TxnPut } from '../../client/index.js';
import { InvalidArgumentError, NotFoundError } from '../errors.js';
import { contextOf, note, out, outJson, parsePositive, progressBar, readStdin } from './context.js';

/** Puts per txn: the server's limit of ops per txn branch. */
const BATCH_OPS = 128;
/** Value bytes per txn, well under the request body limit. */
const BATCH_BYTES = 256 * 1024;

/** One key to import. `encoding: "base64"` marks a base64 value, as in the HTTP API. */
export interface ImportEntry {
  key: string;
  value: string;
  encoding?: 'base64';
  lease?: number;
}

function asValue(v: unknown): string {
  // Structured values are stored as their JSON text, which is what a JSON config holds.
  return typeof v === 'string' ? v : JSON.stringify(v);
}

const ENTRY_FIELDS = new Set(['key', 'value', 'encoding', 'lease']);

function isEntry(o: unknown): o is Record<string, unknown> {
  return (
    o !== null &&
    typeof o === 'object' &&
    !Array.isArray(o) &&
    typeof (o as Record<string, unknown>).key === 'string' &&
    'value' in o &&
    Object.keys(o).every((k) => ENTRY_FIELDS.has(k))
  );
}

function toEntry(o: Record<string, unknown>, where: string): ImportEntry {
  const e: ImportEntry = { key: o.key as string, value: asValue(o.value) };
  if (o.encoding !== undefined) {
    if (o.encoding !== 'base64') throw new InvalidArgumentError(`${where}: 'encoding' may only be "base64"`);
    e.encoding = 'base64';
  }
  if (o.lease !== undefined) {
    if (typeof o.lease !== 'number' || !Number.isSafeInteger(o.lease) || o.lease < 0) throw new InvalidArgumentError(`${where}: 'lease' must be a lease id`);
    if (o.lease > 0) e.lease = o.lease;
  }
  if (e.key === '') throw new InvalidArgumentError(`${where}: 'key' must not be empty`);
  return e;
}

/**
 * Reads import input: a JSON object of key → value (strings as they are, anything else as its
 * JSON text), or JSON lines of `{"key", "value", "encoding"?, "lease"?}`. A single line that is
 * itself such an entry counts as JSON lines.
 * @throws InvalidArgumentError naming the line that is wrong.
 */
export function parseImport(text: string, format: 'auto' | 'json' | 'jsonl' = 'auto'): ImportEntry[] {
  const trimmed = text.trim();
  if (trimmed === '') return [];
  if (format !== 'jsonl') {
    let whole: unknown;
    let parsed = false;
    try {
      whole = JSON.parse(trimmed);
      parsed = true;
    } catch (err) {
      if (format === 'json') throw new InvalidArgumentError(`the input is not valid JSON: ${(err as Error).message}`);
    }
    if (parsed && (format === 'json' || !isEntry(whole))) {
      if (whole === null || typeof whole !== 'object' || Array.isArray(whole)) {
        throw new InvalidArgumentError('JSON input must be one object of key → value (or use JSON lines of {"key","value"})');
      }
      return Object.entries(whole as Record<string, unknown>).map(([key, value]) => toEntry({ key, value }, `key '${key}'`));
    }
  }
  const entries: ImportEntry[] = [];
  text.split(/\r?\n/).forEach((line, i) => {
    if (line.trim() === '') return;
    let o: unknown;
    try {
      o = JSON.parse(line);
    } catch (err) {
      throw new InvalidArgumentError(`line ${i + 1} is not valid JSON: ${(err as Error).message}`);
    }
    if (!isEntry(o)) throw new InvalidArgumentError(`line ${i + 1} must be an object with "key" and "value" (and optionally "encoding", "lease")`);
    entries.push(toEntry(o, `line ${i + 1}`));
  });
  return entries;
}

/** Adds the `import` command. */
export function registerImportCommand(program: Command): void {
  program
    .command('import')
    .description('bulk-load keys from JSON lines or a JSON object of key → value (FILE, or - for stdin)')
    .argument('<file>', "the file to read, or '-' for stdin")
    .option('--format <format>', 'auto, json (one object) or jsonl (one entry per line)', 'auto')
    .option('--lease <id>', 'attach every imported key to this lease', parsePositive)
    .action(async (file: string, o: { format: string; lease?: number }, cmd: Command) => {
      const { client, json } = contextOf(cmd);
      if (!['auto', 'json', 'jsonl'].includes(o.format)) throw new InvalidArgumentError(`--format must be auto, json or jsonl, not '${o.format}'`);
      let text: string;
      if (file === '-') text = (await readStdin('the import data')).toString('utf8');
      else {
        text = await readFile(file, 'utf8').catch((err: NodeJS.ErrnoException) => {
          if (err.code === 'ENOENT') throw new NotFoundError(`import file '${file}' not found`);
          throw new InvalidArgumentError(`cannot read import file '${file}': ${err.message}`);
        });
      }
      const entries = parseImport(text, o.format as 'auto' | 'json' | 'jsonl');
      const bar = await progressBar(entries.length, 'importing', 'keys', !json);
      let done = 0;
      let firstRevision = 0;
      let lastRevision = 0;
      try {
        // Batches go one after another, so a key listed twice ends with its last value.
        for (let i = 0; i < entries.length; ) {
          const batch: TxnPut[] = [];
          let bytes = 0;
          while (i < entries.length && batch.length < BATCH_OPS && (batch.length === 0 || bytes < BATCH_BYTES)) {
            const e = entries[i++] as ImportEntry;
            bytes += e.key.length + e.value.length;
            const lease = e.lease ?? o.lease;
            batch.push({ put: { key: e.key, value: e.value, ...(e.encoding ? { encoding: e.encoding } : {}), ...(lease ? { lease } : {}) } });
          }
          const res = await client.txn({ success: batch });
          if (firstRevision === 0) firstRevision = res.revision;
          lastRevision = res.revision;
          done += batch.length;
          bar.update(done);
        }
      } catch (err) {
        bar.stop();
        if (done > 0) note(`${done} of ${entries.length} keys were imported (through revision ${lastRevision}) before this error`);
        throw err;
      }
      bar.stop();
      if (json) outJson({ imported: done, firstRevision, lastRevision });
      else if (done === 0) out('imported 0 keys');
      else out(`imported ${done} ${done === 1 ? 'key' : 'keys'} (${firstRevision === lastRevision ? `revision ${lastRevision}` : `revisions ${firstRevision}–${lastRevision}`})`);
    });
}
