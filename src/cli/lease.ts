/** `beacon lease grant | revoke | keep-alive | ttl | ls`. */
import type { Command } from 'commander';
import { contextOf, interruptSignal, note, out, outJson, parsePositive } from './context.js';

/** Adds the `lease` command group. */
export function registerLeaseCommands(program: Command): void {
  const lease = program.command('lease').description('grant, renew, inspect and revoke leases (keys put with a lease die with it)');

  lease
    .command('grant')
    .description('grant a lease of TTL seconds and print its id')
    .argument('<ttl>', 'time to live in seconds', parsePositive)
    .option('--id <id>', 'ask for this lease id', parsePositive)
    .action(async (ttl: number, o: { id?: number }, cmd: Command) => {
      const { client, json } = contextOf(cmd);
      const g = await client.lease.grant(ttl, { id: o.id });
      if (json) outJson(g);
      else out(`lease ${g.id} granted with TTL ${g.ttl}s`);
    });

  lease
    .command('revoke')
    .description('revoke a lease, deleting every key attached to it')
    .argument('<id>', 'the lease id', parsePositive)
    .action(async (id: number, _o: unknown, cmd: Command) => {
      const { client, json } = contextOf(cmd);
      const r = await client.lease.revoke(id);
      if (json) outJson({ id, revision: r.revision });
      else out(`lease ${id} revoked (revision ${r.revision})`);
    });

  lease
    .command('keep-alive')
    .alias('keepalive')
    .description('renew a lease every third of its TTL until Ctrl-C')
    .argument('<id>', 'the lease id', parsePositive)
    .option('--once', 'renew once and exit')
    .action(async (id: number, o: { once?: boolean }, cmd: Command) => {
      const { client, json } = contextOf(cmd);
      const show = (ttl: number): void => (json ? outJson({ id, ttl }) : out(`lease ${id} kept alive with TTL ${ttl}s`));
      if (o.once) {
        show((await client.lease.keepAlive(id)).ttl);
        return;
      }
      const { signal, dispose } = interruptSignal();
      try {
        for await (const r of client.lease.keepAliveLoop(id, { signal })) show(r.ttl);
      } finally {
        dispose();
      }
      if (!json) note(`stopped renewing lease ${id}; it expires after its TTL`);
    });

  lease
    .command('ttl')
    .alias('timetolive')
    .description("show a lease's remaining TTL and its keys")
    .argument('<id>', 'the lease id', parsePositive)
    .action(async (id: number, _o: unknown, cmd: Command) => {
      const { client, json } = contextOf(cmd);
      const l = await client.lease.timeToLive(id);
      if (json) {
        outJson(l);
        return;
      }
      out(`lease ${l.id}: ${l.ttl}s remaining of ${l.grantedTtl}s granted, ${l.keys.length} ${l.keys.length === 1 ? 'key' : 'keys'}`);
      for (const k of l.keys) out(`  ${k}`);
    });

  lease
    .command('ls')
    .alias('list')
    .description('list your live leases (an administrator sees every lease and its owner)')
    .action(async (_o: unknown, cmd: Command) => {
      const { client, json } = contextOf(cmd);
      const leases = await client.lease.list();
      if (json) {
        outJson({ leases });
        return;
      }
      if (leases.length === 0) note('no leases');
      for (const l of leases) {
        const owner = l.owner === undefined ? '' : `  owner ${l.owner ?? '(none recorded)'}`;
        out(`${l.id}  ttl ${l.ttl}s/${l.grantedTtl}s  ${l.keys} ${l.keys === 1 ? 'key' : 'keys'}${owner}`);
      }
    });
}
