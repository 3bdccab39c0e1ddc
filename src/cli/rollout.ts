/**
 * `beacon rollout`: staged config rollouts (issue 16, docs/rollout.md) — `start KEY --value-file F
 * --steps 1%,10%,50%,100% --bake 10m --select 'region=eu' --guard NAME`, `status`, `pause`,
 * `resume`, `promote`, `abort`.
 */
import { readFileSync } from 'node:fs';
import { InvalidArgumentError as CommanderInvalidArgument, type Command } from 'commander';
import type { Rollout, RolloutGuard } from '../../client/index.js';
import { contextOf, out, outJson } from './context.js';

/** Reads `--steps 1%,10%,50%,100%` (the `%` is optional). @throws commander's InvalidArgumentError (a usage error). */
export function parseStepsOption(text: string): number[] {
  const parts = text.split(',').map((s) => s.trim());
  return parts.map((p) => {
    if (!/^\d+(\.\d+)?%?$/.test(p)) throw new CommanderInvalidArgument(`'${p}' is not a percentage; write steps as 1%,10%,50%,100%`);
    return Number(p.replace('%', ''));
  });
}

/** A candidate read from a file: JSON when it parses, the text otherwise. */
function readValue(file: string): unknown {
  const text = readFileSync(file, 'utf8');
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

function printStatus(r: Rollout): void {
  out(`rollout ${r.id} of ${r.key}: ${r.state}`);
  out(`  step      ${r.step + 1}/${r.steps.length} (${r.steps.map((s, i) => (i === r.step ? `[${s}%]` : `${s}%`)).join(' ')}), share now ${r.share}%${r.threshold !== undefined && r.share > 0 ? ` (clients with bucket < ${r.threshold} of 10000)` : ''}`);
  out(`  bake      ${r.bake_ms / 1000}s per step${r.bake_ends_at !== undefined ? `, this one ends ${r.bake_ends_at}` : ''}`);
  out(`  selector  ${r.selector === '' ? '(every client with an identity)' : r.selector}`);
  out(`  from      ${r.base_version}${r.completed_version !== undefined ? `, completed as ${r.completed_version}` : ''}`);
  for (const g of r.guard_states ?? []) out(`  guard     ${g.guard}: ${g.firing ? `FIRING (${g.reason ?? ''})` : 'ok'}`);
  if ((r.guard_states ?? []).length === 0) for (const g of r.guards) out(`  guard     ${'alert' in g ? g.alert : `expr: ${g.expr}`}`);
  if (r.adoption !== undefined) out(`  clients   ${Object.entries(r.adoption).map(([v, n]) => `${v}: ${n}`).join(', ')} (reported in the last 15 minutes, to any node)`);
  out('  history');
  for (const h of r.history.slice(-10)) out(`    ${h.at}  ${h.from ?? '-'} → ${h.to} at ${h.share}% by ${h.by}: ${h.cause}`);
}

/** Registers `beacon rollout` and its subcommands. */
export function registerRolloutCommands(program: Command): void {
  const rollout = program.command('rollout').description('staged config rollouts with automatic rollback (docs/rollout.md)');
  rollout
    .command('start')
    .description("release a new value of KEY step by step, e.g. `beacon rollout start app/checkout --value-file new.json --steps 1%,10%,50%,100% --bake 10m --select 'region=eu' --guard CheckoutErrorRateHigh`")
    .argument('<key>')
    .option('--value-file <file>', 'the candidate value (JSON when it parses, text otherwise)')
    .option('--value <text>', 'the candidate value inline (JSON when it parses)')
    .requiredOption('--steps <list>', 'shares of the selected clients, increasing, e.g. 1%,10%,50%,100%', parseStepsOption)
    .requiredOption('--bake <duration>', 'how long each step runs with no guard firing before the next, e.g. 10m')
    .option('--select <selector>', "which clients take part, e.g. 'region=eu,env!=dev,tier in (a,b)'", '')
    .option('--guard <name>', 'an alerting rule that rolls back when it fires (repeatable)', (v: string, prev: string[] = []) => [...prev, v])
    .option('--guard-expr <promql>', 'a PromQL condition that rolls back when it returns a sample (repeatable)', (v: string, prev: string[] = []) => [...prev, v])
    .action(async (key: string, o: { valueFile?: string; value?: string; steps: number[]; bake: string; select: string; guard?: string[]; guardExpr?: string[] }, cmd: Command) => {
      const ctx = contextOf(cmd);
      if ((o.valueFile === undefined) === (o.value === undefined)) throw new CommanderInvalidArgument('give the candidate with exactly one of --value-file or --value');
      let value: unknown;
      if (o.valueFile !== undefined) value = readValue(o.valueFile);
      else {
        try {
          value = JSON.parse(o.value as string) as unknown;
        } catch {
          value = o.value;
        }
      }
      const guards: RolloutGuard[] = [...(o.guard ?? []).map((alert) => ({ alert })), ...(o.guardExpr ?? []).map((expr) => ({ expr }))];
      const r = await ctx.client.rollouts.start(key, { value, steps: o.steps, bake: o.bake, selector: o.select, guards });
      if (ctx.json) return outJson(r);
      out(`rollout ${r.id} of ${key} started at ${r.share}% (steps ${r.steps.join('%, ')}%, bake ${o.bake})`);
    });
  rollout
    .command('status')
    .description('step, share, clients on each version, guard states and history')
    .argument('<key>')
    .action(async (key: string, _o: unknown, cmd: Command) => {
      const ctx = contextOf(cmd);
      const r = await ctx.client.rollouts.get(key);
      if (ctx.json) return outJson(r);
      printStatus(r);
    });
  const verbs: [string, string][] = [
    ['pause', 'stop advancing (guards still roll it back)'],
    ['resume', 'advance again; the current step bakes again from now'],
    ['promote', 'start the next step now (with --full: complete now)'],
    ['abort', 'end it: every client returns to the current version'],
  ];
  for (const [verb, description] of verbs) {
    const c = rollout.command(verb).description(description).argument('<key>');
    if (verb === 'promote') c.option('--full', 'complete the rollout now: the candidate becomes the current version');
    if (verb === 'abort') c.option('--reason <text>', 'recorded in the history');
    c.action(async (key: string, o: { full?: boolean; reason?: string }, cmd: Command) => {
      const ctx = contextOf(cmd);
      const api = ctx.client.rollouts;
      const r =
        verb === 'pause' ? await api.pause(key)
        : verb === 'resume' ? await api.resume(key)
        : verb === 'promote' ? await api.promote(key, { full: o.full === true })
        : await api.abort(key, o.reason !== undefined ? { reason: o.reason } : {});
      if (ctx.json) return outJson(r);
      out(`rollout ${r.id} of ${key}: ${r.state}${r.state === 'running' || r.state === 'paused' ? ` at ${r.share}%` : ''}${r.completed_version !== undefined ? ` (now ${r.completed_version})` : ''}`);
    });
  }
}
