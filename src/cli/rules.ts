/**
 * `beacon rules check FILE…` and `beacon rules test FILE…`: offline rule-file validation and rule
 * unit tests, with the report lines and exit status of `promtool check rules` / `promtool test rules`.
 */
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import type { Command } from 'commander';
import { duplicateRules, loadRuleFile, runRuleTestFile } from '../obs/rules/index.js';
import { table } from './config.js';
import { contextOf, out, outJson } from './context.js';
import { CliExit } from './exit-codes.js';

/**
 * Checks rule files as `promtool check rules` (Prometheus 2.42) does: per file, `Checking FILE`
 * then `  SUCCESS: N rules found` (stdout) or `  FAILED:` and the reasons (stderr). Duplicate
 * rules are reported as a lint problem that fails only with `--lint-fatal`.
 * @returns the exit status: 0 when every file is valid, 1 otherwise.
 */
export async function checkRuleFiles(files: string[], opts: { lintFatal?: boolean } = {}): Promise<number> {
  let failed = false;
  for (const file of files) {
    process.stdout.write(`Checking ${file}\n`);
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      process.stderr.write(`  FAILED:\n${file}: ${(err as Error).message}\n\n`);
      failed = true;
      continue;
    }
    const r = loadRuleFile(text, file);
    if (r.errors.length > 0) {
      process.stderr.write(`  FAILED:\n${r.errors.join('\n')}\n\n`);
      failed = true;
      continue;
    }
    const dups = duplicateRules(r.groups);
    if (dups.length > 0) {
      const list = dups.map((d) => `Metric: ${d.name}\nLabel(s):\n${Object.entries(d.labels).sort().map(([k, v]) => `\t${k}: ${v}\n`).join('')}`).join('\n');
      process.stderr.write(`  FAILED:\nlint error ${dups.length} duplicate rule(s) found.\n${list}Might cause inconsistency while recording expressions\n\n`);
      if (opts.lintFatal) failed = true;
      continue;
    }
    const n = r.groups.reduce((sum, g) => sum + g.rules.length, 0);
    process.stdout.write(`  SUCCESS: ${n} rules found\n\n`);
  }
  return failed ? 1 : 0;
}

/**
 * Runs rule unit test files as `promtool test rules` does (`Unit Testing:  FILE`, then `  SUCCESS`
 * or `  FAILED:` with what differed).
 * @returns the exit status: 0 when every test passes, 1 otherwise.
 */
export async function testRuleFiles(files: string[]): Promise<number> {
  let failed = false;
  for (const file of files) {
    const r = await runRuleTestFile(file);
    if (r.ok) process.stdout.write(`${r.lines.join('\n')}\n\n`);
    else {
      process.stderr.write(`${r.lines.join('\n')}\n\n`);
      failed = true;
    }
  }
  return failed ? 1 : 0;
}

/** Registers `beacon rules check|test` (offline) and `beacon rules put|get|ls|rm` (rule files in a node's store). */
export function registerRulesCommands(program: Command): void {
  const rules = program.command('rules').description('Prometheus rule files: validate and unit-test them offline, store them in a node (docs/alerting.md)');
  rules
    .command('put')
    .description('store a rule file in the node (checked like `rules check`); every node evaluates it')
    .argument('<file>', 'a Prometheus rule file (YAML or JSON)')
    .option('--name <name>', "the name to store it under (default: the file's base name without .yml/.yaml/.json)")
    .action(async (file: string, opts: { name?: string }, cmd: Command) => {
      const ctx = contextOf(cmd);
      const text = await readFile(file, 'utf8');
      const name = opts.name ?? basename(file).replace(/\.(ya?ml|json)$/i, '');
      const res = await ctx.client.alerts.putRuleFile(name, text);
      if (ctx.json) outJson(res);
      else out(`stored rule file ${res.name}: ${res.groups} group(s), ${res.rules} rule(s) at revision ${res.revision}`);
    });
  rules
    .command('ls')
    .description('list the rule files of the node, with their groups and rules')
    .action(async (_o: unknown, cmd: Command) => {
      const ctx = contextOf(cmd);
      const files = await ctx.client.alerts.ruleFiles();
      if (ctx.json) return outJson(files);
      const rows = [['FILE', 'SOURCE', 'REVISION', 'GROUP', 'INTERVAL', 'RULES']];
      for (const f of files) {
        if (f.error !== '') rows.push([f.name, f.source, String(f.revision), '-', '-', `invalid: ${f.error.split('\n')[0] ?? ''}`]);
        for (const g of f.groups) rows.push([f.name, f.source, String(f.revision), g.name, g.interval === null ? 'default' : `${g.interval}s`, g.rules.join(', ')]);
      }
      for (const line of table(rows)) out(line);
    });
  rules
    .command('get')
    .description("print a stored rule file's text")
    .argument('<name>', 'the rule file name')
    .action(async (name: string, _o: unknown, cmd: Command) => {
      const ctx = contextOf(cmd);
      const f = await ctx.client.alerts.ruleFile(name);
      if (ctx.json) outJson(f);
      else process.stdout.write(f.text.endsWith('\n') ? f.text : `${f.text}\n`);
    });
  rules
    .command('rm')
    .description('remove a stored rule file')
    .argument('<name>', 'the rule file name')
    .action(async (name: string, _o: unknown, cmd: Command) => {
      const ctx = contextOf(cmd);
      const res = await ctx.client.alerts.deleteRuleFile(name);
      if (ctx.json) outJson(res);
      else out(`removed rule file ${name} at revision ${res.revision}`);
    });
  rules
    .command('check')
    .description('validate rule files like `promtool check rules`')
    .argument('<file...>', 'rule files')
    .option('--lint-fatal', 'make lint problems (duplicate rules) fail the check')
    .action(async (files: string[], opts: { lintFatal?: boolean }) => {
      const status = await checkRuleFiles(files, opts);
      if (status !== 0) throw new CliExit('', status);
    });
  rules
    .command('test')
    .description('run rule unit tests in `promtool test rules` format')
    .argument('<file...>', 'test files')
    .action(async (files: string[]) => {
      const status = await testRuleFiles(files);
      if (status !== 0) throw new CliExit('', status);
    });
}
