/**
 * `beacon elect NAME VALUE`: campaigns in an election and prints every leadership change until
 * Ctrl-C (then resigns); `beacon elect NAME --listen` only prints the changes (etcdctl `elect`).
 */
import type { Command } from 'commander';
import type { Leader } from '../../client/index.js';
import { InvalidArgumentError } from '../errors.js';
import { contextOf, note, out, outJson, parsePositive } from './context.js';
import { CliExit, ExitCode } from './exit-codes.js';
import { trapSignals } from './lock.js';

/** The session TTL when `--ttl` is not given, in seconds: how long a killed leader keeps its office. */
export const DEFAULT_ELECT_TTL_SECONDS = 10;

function leaderText(l: Leader): string {
  return l.text !== undefined ? l.text : `<${l.value.byteLength} bytes, binary>`;
}

/** Adds the `elect` command. */
export function registerElectCommand(program: Command): void {
  program
    .command('elect')
    .description('campaign in an election and print leadership changes until Ctrl-C (then resign); --listen only observes')
    .argument('<name>', 'the election name (a key prefix)')
    .argument('[value]', 'what this candidate announces when it leads (e.g. its address)')
    .option('--listen', 'do not campaign; print each new leader')
    .option('--ttl <seconds>', 'TTL of the candidacy lease: how long a killed leader keeps the office', parsePositive, DEFAULT_ELECT_TTL_SECONDS)
    .action(async (name: string, value: string | undefined, o: { listen?: boolean; ttl: number }, cmd: Command) => {
      if (!o.listen && value === undefined) throw new InvalidArgumentError('give the VALUE to campaign with, or --listen to only observe');
      if (o.listen && value !== undefined) throw new InvalidArgumentError('--listen observes only: leave VALUE out');
      const { client, json } = contextOf(cmd);
      const ctl = new AbortController();
      let signals = 0;
      const trap = trapSignals(() => {
        if (++signals > 1) process.exit(ExitCode.Interrupted);
        ctl.abort(new DOMException('interrupted', 'AbortError'));
      });
      const session = o.listen ? undefined : await client.session({ ttl: o.ttl, signal: ctl.signal }).catch((err: unknown) => {
        trap.dispose();
        throw ctl.signal.aborted ? new CliExit('interrupted', ExitCode.Interrupted) : err;
      });
      const mine = session === undefined ? undefined : `${name}/${session.lease.toString(16)}`;
      const show = (l: Leader): void => {
        const self = l.key === mine;
        if (json) outJson({ name, key: l.key, value: leaderText(l), fencingToken: l.fencingToken, lease: l.lease, self });
        else out(`leader of '${name}': ${leaderText(l)} (key ${l.key}, fencing token ${l.fencingToken})${self ? ' ← this process' : ''}`);
      };
      const observation = client.election(name).observe({ signal: ctl.signal });
      const observing = (async () => {
        for await (const l of observation) show(l);
      })();
      let lostError: Error | undefined;
      try {
        if (session !== undefined) {
          session.once('lost', (err) => {
            lostError = err;
            ctl.abort(err);
          });
          const election = session.election(name);
          if (!json) note(`campaigning in '${name}' with lease ${session.lease} (TTL ${session.ttl}s)`);
          try {
            const won = await election.campaign(value as string, { signal: ctl.signal });
            if (!json) note(`this process is the leader of '${name}' (fencing token ${won.fencingToken}); Ctrl-C to resign`);
          } catch (err) {
            if (!ctl.signal.aborted) throw err;
          }
        }
        await observing.catch((err: unknown) => {
          if (!ctl.signal.aborted) throw err;
        });
      } finally {
        observation.stop();
        trap.dispose();
        if (session !== undefined) await session.close().catch(() => undefined); // revoking resigns at once
      }
      if (lostError !== undefined) throw new CliExit(`lost the candidacy in '${name}': ${lostError.message}`, ExitCode.Unavailable);
      if (session !== undefined && !json) note(`resigned from '${name}'`);
    });
}
