/** `beacon history`, `diff` and `rollback`: the versions of an application config (`/v1/configs`). */
import type { Command } from 'commander';
import type { ConfigHistoryEntry } from '../../client/index.js';
import { REDACTED, contextOf, out, outJson } from './context.js';

/** A config value on one line, shortened to `max` characters. */
export function shortValue(value: unknown, max = 60): string {
  const s = typeof value === 'string' ? value : JSON.stringify(value) ?? String(value);
  const one = s.replace(/\s*[\r\n]+\s*/g, ' ');
  return one.length > max ? `${one.slice(0, max - 1)}…` : one;
}

/** Lays rows out in left-aligned columns. */
export function table(rows: string[][]): string[] {
  const widths: number[] = [];
  for (const r of rows) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('  ').trimEnd());
}

function pick(o: Record<string, unknown>, ...names: string[]): unknown {
  for (const n of names) if (n in o) return o[n];
  return undefined;
}

/**
 * One change of a diff as a line: `~ path: old → new`, `+ path: new` or `- path: old`. The
 * change objects come from the server; the common field spellings (op/type, path/key,
 * from/old/before, to/new/after/value) are understood, anything else is shown as JSON.
 */
export function formatChange(c: Record<string, unknown>): string {
  const op = String(pick(c, 'op', 'type', 'kind') ?? '');
  const path = pick(c, 'path', 'key', 'field');
  const before = pick(c, 'from', 'old', 'before', 'oldValue');
  const after = pick(c, 'to', 'new', 'after', 'newValue', 'value');
  const where = path === undefined ? '' : `${String(path)}: `;
  if (/^(add|added|\+)$/.test(op)) return `+ ${where}${shortValue(after, 200)}`;
  if (/^(remove|removed|delete|deleted|-)$/.test(op)) return `- ${where}${shortValue(before, 200)}`;
  if (/^(replace|replaced|change|changed|modify|modified|~)$/.test(op) || (before !== undefined && after !== undefined)) {
    return `~ ${where}${shortValue(before, 200)} → ${shortValue(after, 200)}`;
  }
  return `  ${JSON.stringify(c)}`;
}

/**
 * An object's own field names in snake_case (`updatedAt` → `updated_at`), values untouched (a
 * config value keeps its own spelling): `--json` of the config commands prints the configs API's
 * JSON as the HTTP API does (docs/configs.md), while the SDK's objects are camelCase.
 */
export function snakeFields(o: object): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).map(([k, v]) => [k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`), v]));
}

/** Adds the config commands. */
export function registerConfigCommands(program: Command): void {
  program
    .command('history')
    .description('list the versions of a config key, newest first')
    .argument('<key>', 'the config key')
    .action(async (key: string, _o: unknown, cmd: Command) => {
      const { client, json } = contextOf(cmd);
      const versions: ConfigHistoryEntry[] = [];
      for await (const v of client.configs.historyAll(key)) versions.push(v);
      if (json) {
        outJson({ key, versions: versions.map(snakeFields) });
        return;
      }
      const rows = [['VERSION', 'REVISION', 'UPDATED', 'EVENT', 'VALUE']];
      for (const v of versions) {
        const event = v.restoredVersion !== undefined ? `${v.event} (restored ${v.restoredVersion})` : v.event;
        const value = v.version === null ? '' : v.redacted ? REDACTED : v.encoding === 'base64' ? '<binary>' : shortValue(v.value);
        rows.push([v.version ?? '-', String(v.revision), v.updatedAt, event, value]);
      }
      for (const line of table(rows)) out(line);
    });

  program
    .command('diff')
    .description('show what changed in a config key between two versions')
    .argument('<key>', 'the config key')
    .option('--from <version>', 'the older version, e.g. v1 (default: the one before --to)')
    .option('--to <version>', 'the newer version, e.g. v3 (default: the latest)')
    .action(async (key: string, o: { from?: string; to?: string }, cmd: Command) => {
      const { client, json } = contextOf(cmd);
      const d = await client.configs.diff(key, { from: o.from, to: o.to });
      if (json) {
        outJson(d);
        return;
      }
      if (d.format === 'text' && d.unified !== undefined) {
        if (d.unified === '') out(`(no changes between ${d.from} and ${d.to})`);
        else process.stdout.write(d.unified.endsWith('\n') ? d.unified : `${d.unified}\n`);
        return;
      }
      out(`--- ${d.key} ${d.from}`);
      out(`+++ ${d.key} ${d.to}`);
      if (d.changes.length === 0) out('(no changes)');
      else if (d.format === 'binary') out('~ (binary value changed)');
      for (const c of d.format === 'binary' ? [] : d.changes) out(formatChange(c));
    });

  program
    .command('rollback')
    .description("write an earlier version's value again as the newest version")
    .argument('<key>', 'the config key')
    .requiredOption('--to <version>', 'the version to restore, e.g. v1')
    .option('--expect-version <version>', 'only if the config is still at this version (exit 5 otherwise)')
    .action(async (key: string, o: { to: string; expectVersion?: string }, cmd: Command) => {
      const { client, json } = contextOf(cmd);
      const r = await client.configs.rollback(key, o.to, { expectVersion: o.expectVersion });
      if (json) outJson(snakeFields(r));
      else out(`rolled back ${r.key} to the value of ${r.restoredVersion}: ${r.fromVersion} → ${r.toVersion} (revision ${r.revision})`);
    });
}
