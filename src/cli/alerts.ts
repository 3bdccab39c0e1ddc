/**
 * `beacon alerts`: the alerts pending or firing now, and silences (`beacon alerts silence
 * alertname=X --for 2h`, `beacon alerts silences`, `beacon alerts expire ID`). docs/alerting.md.
 */
import { InvalidArgumentError as CommanderInvalidArgument, type Command } from 'commander';
import type { SilenceMatcher } from '../../client/index.js';
import { table } from './config.js';
import { contextOf, out, outJson } from './context.js';

/**
 * Parses a silence matcher as Alertmanager's amtool writes it: `name=value`, `name!=value`,
 * `name=~regex`, `name!~regex` (a value may be quoted).
 * @throws commander's InvalidArgumentError (a usage error) for anything else.
 */
export function parseMatcher(text: string): SilenceMatcher {
  const m = /^\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*(.*?)\s*$/.exec(text);
  if (!m) throw new CommanderInvalidArgument(`'${text}' is not a matcher: use name=value, name!=value, name=~regex or name!~regex`);
  let value = m[3] as string;
  if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = JSON.parse(value) as string;
  const op = m[2] as string;
  return { name: m[1] as string, value, isRegex: op.endsWith('~'), isEqual: op.startsWith('=') };
}

function ago(iso: string): string {
  const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.round(s / 60)}m`;
  return `${Math.round(s / 3600)}h`;
}

function matcherText(m: Required<SilenceMatcher>): string {
  return `${m.name}${m.isEqual ? '' : '!'}${m.isRegex ? (m.isEqual ? '=~' : '~') : '='}${JSON.stringify(m.value)}`;
}

/** Registers `beacon alerts` and its subcommands. */
export function registerAlertsCommands(program: Command): void {
  const alerts = program
    .command('alerts')
    .description('alerts pending or firing now, and silences (docs/alerting.md)')
    .option('--state <state>', 'only pending or only firing alerts')
    .action(async (o: { state?: 'pending' | 'firing' }, cmd: Command) => {
      const ctx = contextOf(cmd);
      const list = await ctx.client.alerts.list(o.state !== undefined ? { state: o.state } : {});
      if (ctx.json) return outJson(list);
      if (list.length === 0) return out('no alerts pending or firing');
      const rows = [['ALERT', 'STATE', 'SINCE', 'VALUE', 'LABELS', 'SUMMARY']];
      for (const a of list) {
        const labels = Object.entries(a.labels)
          .filter(([k]) => k !== 'alertname')
          .map(([k, v]) => `${k}=${v}`)
          .join(',');
        const state = a.silencedBy.length > 0 ? `${a.state} (silenced)` : a.state;
        rows.push([a.labels.alertname ?? a.rule, state, ago(a.activeAt), a.value, labels, a.annotations.summary ?? '']);
      }
      for (const line of table(rows)) out(line);
    });
  alerts
    .command('silence')
    .description('silence alerts matching every matcher, e.g. `beacon alerts silence alertname=HighLatency env=~"prod|stage" --for 2h`')
    .argument('<matcher...>', 'name=value, name!=value, name=~regex, name!~regex', (v: string, prev: SilenceMatcher[] = []) => [...prev, parseMatcher(v)])
    .option('--for <duration>', 'how long the silence lasts (e.g. 30m, 2h)', '1h')
    .option('--until <time>', 'when it ends (RFC 3339); instead of --for')
    .option('--comment <text>', 'why', '')
    .action(async (matchers: SilenceMatcher[], o: { for: string; until?: string; comment: string }, cmd: Command) => {
      const ctx = contextOf(cmd);
      const res = await ctx.client.alerts.silence({ matchers, ...(o.until !== undefined ? { endsAt: o.until } : { duration: o.for }), comment: o.comment });
      if (ctx.json) outJson(res);
      else out(`silence ${res.id} created`);
    });
  alerts
    .command('silences')
    .description('list silences (active, pending and recently expired)')
    .action(async (_o: unknown, cmd: Command) => {
      const ctx = contextOf(cmd);
      const list = await ctx.client.alerts.silences();
      if (ctx.json) return outJson(list);
      if (list.length === 0) return out('no silences');
      const rows = [['ID', 'STATE', 'ENDS', 'CREATED BY', 'MATCHERS', 'COMMENT']];
      for (const s of list) rows.push([s.id, s.status.state, s.endsAt, s.createdBy, s.matchers.map(matcherText).join(','), s.comment]);
      for (const line of table(rows)) out(line);
    });
  alerts
    .command('expire')
    .description('end a silence now')
    .argument('<id>', 'the silence id')
    .action(async (id: string, _o: unknown, cmd: Command) => {
      const ctx = contextOf(cmd);
      await ctx.client.alerts.expireSilence(id);
      if (ctx.json) outJson({ expired: id });
      else out(`silence ${id} expired`);
    });
}
