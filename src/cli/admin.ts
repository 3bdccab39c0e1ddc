/** `beacon status` and `beacon compact`: looking at and maintaining a node. */
import type { Command } from 'commander';
import { contextOf, formatBytes, out, outJson, parsePositive } from './context.js';
import { table } from './config.js';

/** Adds `status` and `compact`. */
export function registerAdminCommands(program: Command): void {
  program
    .command('status')
    .description("show the node's version, revision, key and lease counts, backend and size")
    .action(async (_o: unknown, cmd: Command) => {
      const { client, json, endpoint } = contextOf(cmd);
      const s = await client.status();
      const cluster = await client.cluster().catch(() => undefined);
      // `keys` counts the node's own system keys too (users, policies, signing keys): show what
      // the caller sees as well, the count of a listing of every key.
      const visible = json ? undefined : await client.range('', { limit: 1, keysOnly: true }).then((r) => r.count, () => undefined);
      if (json) {
        outJson(cluster === undefined ? s : { ...s, cluster });
        return;
      }
      const rows: string[][] = [
        ['endpoint', endpoint],
        ['version', s.version],
        ['node', s.nodeId],
        ['revision', String(s.revision)],
        ['compact revision', String(s.compactRevision)],
        ['keys', visible === undefined ? `${s.keys} stored (with system keys)` : `${visible} visible to you, ${s.keys} stored (with system keys)`],
        ['leases', String(s.leases)],
        ['watchers', String(s.watchers)],
        ['backend', s.backend],
        ['db size', s.dbSizeBytes === null ? 'unknown' : formatBytes(s.dbSizeBytes)],
        ['uptime', `${s.uptimeSeconds}s (since ${s.startedAt})`],
        ['ready', s.ready ? 'yes' : 'no'],
      ];
      if (s.dev) rows.push(['mode', 'DEV (no authentication)']);
      for (const line of table(rows.map(([k, v]) => [`${k}:`, v ?? '']))) out(line);
      if (cluster !== undefined && cluster.nodes.length > 0) {
        out('');
        out(`cluster (head revision ${cluster.revision}):`);
        const nodes = cluster.nodes.map((n) => [
          n.self ? `${n.id} *` : n.id,
          n.url,
          n.respUrl ?? '',
          String(n.appliedRevision),
          `lag ${n.lag}`,
          n.ready ? 'ready' : 'NOT READY',
          n.expiryLeader ? 'expiry leader' : '',
          n.cache === undefined ? '' : n.cache.role === 'primary' ? `${n.cache.slots} slots, ${n.cache.keys} cache keys` : 'not in the cache ring',
        ]);
        for (const line of table(nodes)) out(`  ${line}`);
      }
    });

  program
    .command('compact')
    .description('drop history superseded at or below REV (reads and watches below it then fail)')
    .argument('<rev>', 'the revision to compact up to', parsePositive)
    .action(async (rev: number, _o: unknown, cmd: Command) => {
      const { client, json } = contextOf(cmd);
      const r = await client.compact(rev);
      if (json) outJson(r);
      else out(`compacted up to revision ${r.compactRevision} (current revision ${r.revision})`);
    });
}
