/**
 * CLUSTER, READONLY, READWRITE and ASKING: Redis Cluster's view of the cache tier across nodes
 * (docs/operations/cache-cluster.md). On a node without a shared backend they answer as a
 * standalone redis-server does: cluster support disabled.
 */
import { SLOT_COUNT, clusterNodeId, keySlot, respAddress, type CacheRing, type RingMember } from '../../cache/index.js';
import { parseI64 } from './args.js';
import type { Ctx } from './context.js';
import { RespError } from './keyspace.js';
import { R, type Reply } from './protocol.js';

/** Redis's answer on a standalone server (`cluster.c`): a cluster client fails at once with a clear message. */
export function clusterDisabled(): Reply {
  throw new RespError('ERR This instance has cluster support disabled');
}

/** The ring of a node in cluster mode; throws Redis's standalone error otherwise. */
function ringOf(c: Ctx): CacheRing | undefined {
  const view = c.srv.cluster();
  if (view === undefined) clusterDisabled();
  c.conn.clusterAware = true;
  return view?.ring;
}

function hostPort(m: RingMember): { host: string; port: number } {
  try {
    const a = respAddress(m.respUrl);
    return { host: a.host, port: a.port };
  } catch {
    return { host: '', port: 0 };
  }
}

function slotArg(b: Buffer | undefined): number {
  const n = b === undefined ? null : parseI64(b);
  if (n === null || n < 0n || n >= BigInt(SLOT_COUNT)) throw new RespError('ERR Invalid or out of range slot');
  return Number(n);
}

/** ASKING: accepted in cluster mode (slots never move half-way here, so it changes nothing). */
export function clusterFlag(c: Ctx): Reply {
  ringOf(c);
  return R.ok;
}

/** READONLY: this connection's reads of slots this node replicates are served here (replica reads). */
export function readonly(c: Ctx): Reply {
  ringOf(c);
  c.conn.replicaReads = true;
  return R.ok;
}

/** READWRITE: back to every command on the slot's primary. */
export function readwrite(c: Ctx): Reply {
  ringOf(c);
  c.conn.replicaReads = false;
  return R.ok;
}

/** CLUSTER <subcommand> (Redis 7's replies, over the ring the cluster's leader committed). */
export function cluster(c: Ctx, a: Buffer[]): Reply {
  const sub = (a[0] as Buffer).toString('latin1').toUpperCase();
  if (sub === 'HELP') return R.array(HELP.map((l) => R.simple(l)));
  const ring = ringOf(c);
  const view = c.srv.cluster();
  const selfId = view?.selfId ?? '';
  const epoch = ring?.epoch ?? 0;
  const members = ring?.members ?? [];
  const argc = (n: number): void => {
    if (a.length !== n) throw new RespError(`ERR wrong number of arguments for 'cluster|${sub.toLowerCase()}' command`);
  };
  switch (sub) {
    case 'MYID':
      argc(1);
      return R.bulk(clusterNodeId(selfId));
    case 'MYSHARDID':
      argc(1);
      return R.bulk(clusterNodeId(`shard:${selfId}`));
    case 'KEYSLOT':
      argc(2);
      return R.int(keySlot(a[1] as Buffer));
    case 'COUNTKEYSINSLOT':
      argc(2);
      return R.int(c.srv.keysInSlot(slotArg(a[1]), Number.MAX_SAFE_INTEGER).length);
    case 'GETKEYSINSLOT': {
      argc(3);
      const slot = slotArg(a[1]);
      const n = parseI64(a[2] as Buffer);
      if (n === null || n < 0n) throw new RespError('ERR Invalid number of keys');
      return R.array(c.srv.keysInSlot(slot, Number(n)).map((k) => R.bulk(k)));
    }
    case 'INFO': {
      argc(1);
      const ok = view !== undefined && ring !== undefined && ring.members.length > 0 && view.confirmed();
      const lines = [
        `cluster_state:${ok ? 'ok' : 'fail'}`,
        `cluster_slots_assigned:${ring !== undefined && ring.members.length > 0 ? SLOT_COUNT : 0}`,
        `cluster_slots_ok:${ok ? SLOT_COUNT : 0}`,
        'cluster_slots_pfail:0',
        `cluster_slots_fail:${ok ? 0 : SLOT_COUNT}`,
        `cluster_known_nodes:${members.length}`,
        `cluster_size:${members.length}`,
        `cluster_current_epoch:${epoch}`,
        `cluster_my_epoch:${epoch}`,
        `cluster_stats_messages_sent:${view?.forwarded() ?? 0}`,
        'cluster_stats_messages_received:0',
        'total_cluster_links_buffer_limit_exceeded:0',
      ];
      return R.verbatim(`${lines.join('\r\n')}\r\n`);
    }
    case 'SLOTS': {
      argc(1);
      if (ring === undefined) return R.array([]);
      // Replicas too, as many as the largest replication factor asks (a client with replica reads uses them).
      return R.array(
        ring.ownerRanges(view?.maxFactor() ?? 1).map((r) =>
          R.array([
            R.int(r.start),
            R.int(r.end),
            ...r.owners.map((m) => {
              const { host, port } = hostPort(m);
              return R.array([R.bulk(host), R.int(port), R.bulk(clusterNodeId(m.id))]);
            }),
          ]),
        ),
      );
    }
    case 'SHARDS': {
      argc(1);
      if (ring === undefined) return R.array([]);
      return R.array(
        members.map((m) => {
          const { host, port } = hostPort(m);
          const slots = ring.ranges(m.id).flatMap(([s, e]) => [R.int(s), R.int(e)]);
          const node = R.map([
            [R.bulk('id'), R.bulk(clusterNodeId(m.id))],
            [R.bulk('port'), R.int(port)],
            [R.bulk('ip'), R.bulk(host)],
            [R.bulk('endpoint'), R.bulk(host)],
            [R.bulk('role'), R.bulk('master')],
            [R.bulk('replication-offset'), R.int(0)],
            [R.bulk('health'), R.bulk('online')],
          ]);
          return R.map([
            [R.bulk('slots'), R.array(slots)],
            [R.bulk('nodes'), R.array([node])],
          ]);
        }),
      );
    }
    case 'NODES': {
      argc(1);
      if (ring === undefined) return R.bulk('');
      const now = Date.now();
      const lines = members.map((m) => {
        const { host, port } = hostPort(m);
        const flags = m.id === selfId ? 'myself,master' : 'master';
        const slots = ring.ranges(m.id).map(([s, e]) => (s === e ? String(s) : `${s}-${e}`));
        return [clusterNodeId(m.id), `${host}:${port}@0`, flags, '-', 0, now, epoch, 'connected', ...slots].join(' ');
      });
      return R.verbatim(lines.map((l) => `${l}\n`).join(''));
    }
    case 'REPLICAS':
    case 'SLAVES': {
      argc(2);
      const id = (a[1] as Buffer).toString('latin1');
      if (!members.some((m) => clusterNodeId(m.id) === id)) throw new RespError(`ERR Unknown node ${id}`);
      return R.array([]);
    }
    default:
      if (MANAGED.has(sub)) {
        throw new RespError(`ERR CLUSTER ${sub} is not supported: Beacon assigns slots itself from the live nodes (see docs/operations/cache-cluster.md)`);
      }
      throw new RespError(`ERR unknown subcommand '${(a[0] as Buffer).toString('utf8').slice(0, 128)}'. Try CLUSTER HELP.`);
  }
}

/** Subcommands that change Redis Cluster's configuration by hand; Beacon's ring is managed. */
const MANAGED = new Set([
  'ADDSLOTS', 'ADDSLOTSRANGE', 'DELSLOTS', 'DELSLOTSRANGE', 'FLUSHSLOTS', 'FORGET', 'MEET', 'REPLICATE', 'RESET',
  'SETSLOT', 'SET-CONFIG-EPOCH', 'BUMPEPOCH', 'FAILOVER', 'SAVECONFIG', 'COUNT-FAILURE-REPORTS', 'LINKS',
]);

const HELP = [
  'CLUSTER <subcommand> [<arg> [value] [opt] ...]. Subcommands are:',
  'COUNTKEYSINSLOT <slot>',
  '    Return the number of keys in <slot>.',
  'GETKEYSINSLOT <slot> <count>',
  '    Return key names stored by current node in a slot.',
  'INFO',
  '    Return information about the cluster.',
  'KEYSLOT <key>',
  '    Return the hash slot for <key>.',
  'MYID',
  '    Return the node id.',
  'MYSHARDID',
  '    Return the node\'s shard id.',
  'NODES',
  '    Return cluster configuration seen by node. Output format:',
  '    <id> <ip:port@cport> <flags> <master> <pings> <pongs> <epoch> <link> <slot> ...',
  'REPLICAS <node-id>',
  '    Return <node-id> replicas.',
  'SHARDS',
  '    Return information about slot range mappings and the nodes associated with them.',
  'SLOTS',
  '    Return information about slots range mappings. Each range is made of:',
  '    start, end, master and replicas IP addresses, ports and ids',
  'HELP',
  '    Print this help.',
];

/**
 * WAIT numreplicas timeout: the number of replicas that acknowledged every replicated write of
 * this connection, once they all did or `timeout` ms passed (0: no limit). 0 on a node without
 * replicas, as on a standalone redis-server.
 */
export async function wait(c: Ctx, a: Buffer[]): Promise<Reply> {
  const n = parseI64(a[0] as Buffer);
  const t = parseI64(a[1] as Buffer);
  if (n === null || t === null) throw new RespError('ERR value is not an integer or out of range');
  if (t < 0n) throw new RespError('ERR timeout is negative');
  return R.int(await c.srv.waitReplicas(c.conn, Number(n), Number(t)));
}
