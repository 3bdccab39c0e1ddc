/** `beacon watch`: prints changes to a key or prefix until Ctrl-C, resuming across reconnects. */
import type { Command } from 'commander';
import type { WatchEvent } from '../../client/index.js';
import { contextOf, inlineValue, interruptSignal, kvJson, note, out, outJson, parsePositive } from './context.js';

/** One event as a line for people: `PUT key = value  (rev N)` or `DELETE key  (rev N)`. */
export function formatEvent(ev: WatchEvent): string {
  const prev = ev.prevKv ? `  (was: ${inlineValue(ev.prevKv)})` : '';
  if (ev.type === 'delete') return `DELETE ${ev.kv.key}${prev}  (rev ${ev.revision})`;
  return `PUT ${ev.kv.key} = ${inlineValue(ev.kv)}${prev}  (rev ${ev.revision})`;
}

/** Adds the `watch` command. */
export function registerWatchCommand(program: Command): void {
  program
    .command('watch')
    .description('print changes to a key (or prefix) until Ctrl-C; reconnects and resumes without gaps')
    .argument('<key>', 'the key (or prefix with --prefix)')
    .option('--prefix', 'watch every key that starts with KEY')
    .option('--from-rev <revision>', 'replay history from this revision first', parsePositive)
    .option('--prev-kv', 'show the previous value of each changed key')
    .action(async (key: string, o: { prefix?: boolean; fromRev?: number; prevKv?: boolean }, cmd: Command) => {
      const { client, json } = contextOf(cmd);
      const { signal, dispose } = interruptSignal();
      const what = `'${key}'${o.prefix ? ' (prefix)' : ''}`;
      const watch = client.watch(key, {
        prefix: o.prefix,
        fromRevision: o.fromRev,
        prevKv: o.prevKv,
        signal,
        onStatus: (s) => {
          if (s.state === 'watching') {
            note(s.resumedFrom === undefined ? `watching ${what} after revision ${s.revision}` : `watching ${what} from revision ${s.resumedFrom}`);
          } else {
            note(`watch connection lost (${s.reason}); reconnecting in ${s.delayMs} ms (attempt ${s.attempt})`);
          }
        },
      });
      try {
        for await (const ev of watch) {
          if (json) outJson({ type: ev.type, revision: ev.revision, kv: kvJson(ev.kv, ev.type === 'delete'), ...(ev.prevKv ? { prevKv: kvJson(ev.prevKv) } : {}) });
          else out(formatEvent(ev));
        }
      } finally {
        dispose();
      }
    });
}
