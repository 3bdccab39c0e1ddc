/**
 * `beacon txn`: one atomic transaction read from `--file` or stdin, either as the JSON body of
 * `POST /v1/txn` or in etcdctl's line form (compares, blank line, success ops, blank line, failure ops).
 */
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import type { CompareResult, CompareTarget, TxnCompare, TxnOp, TxnOpResult, TxnRequest } from '../../client/index.js';
import { InvalidArgumentError, NotFoundError } from '../errors.js';
import { contextOf, inlineValue, kvJson, out, outJson, readStdin } from './context.js';

const TARGETS: Record<string, CompareTarget> = {
  value: 'value',
  val: 'value',
  version: 'version',
  ver: 'version',
  mod: 'modRevision',
  modrevision: 'modRevision',
  mod_revision: 'modRevision',
  create: 'createRevision',
  createrevision: 'createRevision',
  create_revision: 'createRevision',
  lease: 'lease',
};

interface Word {
  text: string;
  quoted: boolean;
}

function words(line: string): Word[] {
  const out: Word[] = [];
  let i = 0;
  while (i < line.length) {
    const c = line[i] as string;
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    if (c === '"') {
      let j = i + 1;
      while (j < line.length && line[j] !== '"') j += line[j] === '\\' ? 2 : 1;
      if (j >= line.length) throw new InvalidArgumentError(`unterminated quote in: ${line}`);
      try {
        out.push({ text: JSON.parse(line.slice(i, j + 1)) as string, quoted: true });
      } catch {
        throw new InvalidArgumentError(`bad escape in quoted string: ${line.slice(i, j + 1)}`);
      }
      i = j + 1;
    } else if (c === "'") {
      const j = line.indexOf("'", i + 1);
      if (j < 0) throw new InvalidArgumentError(`unterminated quote in: ${line}`);
      out.push({ text: line.slice(i + 1, j), quoted: true });
      i = j + 1;
    } else {
      let j = i;
      while (j < line.length && !/\s/.test(line[j] as string)) j++;
      out.push({ text: line.slice(i, j), quoted: false });
      i = j;
    }
  }
  return out;
}

/**
 * Splits a line into words: bare words, "double-quoted" strings with JSON escapes, or
 * 'single-quoted' strings taken literally.
 * @throws InvalidArgumentError for an unterminated quote.
 */
export function tokenize(line: string): string[] {
  return words(line).map((w) => w.text);
}

function parseCompareLine(line: string): TxnCompare {
  const m = /^([A-Za-z_]+)\(\s*("(?:[^"\\]|\\.)*"|'[^']*'|[^)\s]+)\s*\)\s*(==|=|!=|<|>)\s*(.+)$/.exec(line);
  if (m === null) throw new InvalidArgumentError(`cannot read compare '${line}': write it like mod("key") > "0" or value("key") = "v"`);
  const target = TARGETS[(m[1] as string).toLowerCase()];
  if (target === undefined) throw new InvalidArgumentError(`unknown compare target '${m[1]}': use value, version, mod, create or lease`);
  const key = tokenize(m[2] as string)[0] ?? '';
  const operand = tokenize(m[4] as string);
  if (operand.length !== 1) throw new InvalidArgumentError(`compare '${line}' needs exactly one operand (quote it if it has spaces)`);
  const result = (m[3] === '==' ? '=' : m[3]) as CompareResult;
  if (target === 'value') return { key, target, result, value: operand[0] as string };
  const n = Number(operand[0]);
  if (operand[0] === '' || !Number.isSafeInteger(n)) throw new InvalidArgumentError(`compare '${line}': ${target} takes an integer, not '${operand[0]}'`);
  return { key, target, result, value: n };
}

function parseOpLine(line: string): TxnOp {
  const [verb, key, ...rest] = words(line);
  if (verb === undefined || key === undefined) throw new InvalidArgumentError(`cannot read op '${line}': write put KEY VALUE, get KEY or del KEY`);
  const positional: string[] = [];
  const flags = new Map<string, number | true>();
  for (let i = 0; i < rest.length; i++) {
    const w = rest[i] as Word;
    // Quoted words are always values, so a value may start with "--".
    if (w.quoted || !w.text.startsWith('--')) {
      positional.push(w.text);
      continue;
    }
    if (w.text === '--lease' || w.text === '--limit') {
      const n = Number(rest[i + 1]?.text);
      if (rest[i + 1] === undefined || !Number.isSafeInteger(n) || n < 0) throw new InvalidArgumentError(`op '${line}': ${w.text} takes a non-negative integer`);
      flags.set(w.text, n);
      i++;
    } else if (['--prefix', '--keys-only', '--count-only'].includes(w.text)) flags.set(w.text, true);
    else throw new InvalidArgumentError(`op '${line}': unknown option ${w.text}`);
  }
  const num = (name: string): number => {
    const v = flags.get(name);
    return typeof v === 'number' ? v : 0;
  };
  switch (verb.text) {
    case 'put':
      if (positional.length !== 1) throw new InvalidArgumentError(`op '${line}': put takes KEY and one VALUE (quote it if it has spaces)`);
      return { put: { key: key.text, value: positional[0] as string, ...(num('--lease') ? { lease: num('--lease') } : {}) } };
    case 'get':
    case 'range':
      return {
        range: {
          key: key.text,
          ...(flags.has('--prefix') ? { prefix: true } : {}),
          ...(num('--limit') ? { limit: num('--limit') } : {}),
          ...(flags.has('--keys-only') ? { keysOnly: true } : {}),
          ...(flags.has('--count-only') ? { countOnly: true } : {}),
        },
      };
    case 'del':
    case 'delete':
      return { delete: { key: key.text, ...(flags.has('--prefix') ? { prefix: true } : {}) } };
    default:
      throw new InvalidArgumentError(`unknown op '${verb.text}' in '${line}': use put, get or del`);
  }
}

/**
 * Parses etcdctl's txn line form: compare lines, a blank line, success ops, a blank line,
 * failure ops. Section headings such as `compares:` and `#` comments are ignored.
 * @throws InvalidArgumentError naming the line that cannot be read.
 */
export function parseTxnLines(text: string): TxnRequest {
  const sections: string[][] = [[]];
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line.startsWith('#') || /^(compares?|success|failure)[^:]*:$/i.test(line)) continue;
    if (line === '') {
      if ((sections[sections.length - 1] as string[]).length > 0 || sections.length === 1) sections.push([]);
      continue;
    }
    (sections[sections.length - 1] as string[]).push(line);
  }
  while (sections.length > 3 && (sections[sections.length - 1] as string[]).length === 0) sections.pop();
  if (sections.length > 3) throw new InvalidArgumentError('a txn has at most three sections (compares, success, failure) separated by blank lines');
  const [compares = [], success = [], failure = []] = sections;
  return { compare: compares.map(parseCompareLine), success: success.map(parseOpLine), failure: failure.map(parseOpLine) };
}

/**
 * Reads a txn from text: JSON when it starts with `{`, else the line form.
 * @throws InvalidArgumentError for malformed input.
 */
export function parseTxnText(text: string): TxnRequest {
  const trimmed = text.trim();
  if (trimmed === '') throw new InvalidArgumentError('the txn is empty');
  if (!trimmed.startsWith('{')) return parseTxnLines(text);
  let parsed: unknown;
  try {
    parsed = JSON.parse(trimmed);
  } catch (err) {
    throw new InvalidArgumentError(`the txn is not valid JSON: ${(err as Error).message}`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new InvalidArgumentError('a JSON txn must be an object with compare, success and failure');
  return parsed as TxnRequest;
}

/** The JSON form of one op result, as the HTTP API writes it. */
export function opResultJson(r: TxnOpResult): Record<string, unknown> {
  if (r.type === 'put') return { put: r.prevKv ? { prevKv: kvJson(r.prevKv) } : {} };
  if (r.type === 'delete') return { delete: { deleted: r.deleted, ...(r.prevKvs ? { prevKvs: r.prevKvs.map((kv) => kvJson(kv)) } : {}) } };
  return { range: { kvs: r.kvs.map((kv) => kvJson(kv)), more: r.more, count: r.count } };
}

/** Adds the `txn` command. */
export function registerTxnCommand(program: Command): void {
  program
    .command('txn')
    .description('run one atomic transaction read from --file or stdin (JSON, or etcdctl-style lines)')
    .option('-f, --file <path>', 'read the txn from this file instead of stdin')
    .addHelpText(
      'after',
      `
JSON (the body of POST /v1/txn):
  {"compare":[{"key":"k","target":"version","result":"=","value":0}],
   "success":[{"put":{"key":"k","value":"v"}}], "failure":[{"range":{"key":"k"}}]}

Lines (compares, blank line, success ops, blank line, failure ops):
  version("k") = "0"

  put k "v"

  get k

Prints SUCCESS or FAILURE and each op's result; a failed compare still exits 0.`,
    )
    .action(async (o: { file?: string }, cmd: Command) => {
      const { client, json } = contextOf(cmd);
      let text: string;
      if (o.file !== undefined) {
        text = await readFile(o.file, 'utf8').catch((err: NodeJS.ErrnoException) => {
          if (err.code === 'ENOENT') throw new NotFoundError(`txn file '${o.file}' not found`);
          throw new InvalidArgumentError(`cannot read txn file '${o.file}': ${err.message}`);
        });
      } else text = (await readStdin('the txn')).toString('utf8');
      const res = await client.txn(parseTxnText(text));
      if (json) {
        outJson({ succeeded: res.succeeded, revision: res.revision, results: res.results.map(opResultJson) });
        return;
      }
      out(res.succeeded ? 'SUCCESS' : 'FAILURE');
      for (const r of res.results) {
        out();
        if (r.type === 'put') out('OK');
        else if (r.type === 'delete') out(String(r.deleted));
        else for (const kv of r.kvs) out(`${kv.key} = ${inlineValue(kv)}`);
      }
    });
}
