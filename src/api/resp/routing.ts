/**
 * The RESP side of the cache tier across nodes (docs/operations/cache-cluster.md): which node
 * serves a memory key's slot, `-MOVED` for clients that speak Redis Cluster, and forwarding to
 * the owner for clients that do not, over pipelined links to the other nodes ({@link PeerLink}).
 */
import { PEER_PRINCIPAL } from '../../auth/index.js';
import { NO_RANK, keySlot, respAddress, type SlotOwnership } from '../../cache/index.js';
import type { ConnState, ClusterView } from './context.js';
import { PeerLink, PeerPool } from './peer.js';
import { R, type Protocol, type Reply } from './protocol.js';
import { errorMessage } from '../../errors.js';

/** The client name of a node's links to other nodes; it tells the owner not to forward again. */
export const PEER_NAME_PREFIX = 'beacon-peer:';

/** The first command on a link to another node: `BEACON.PEER <cluster id> <node id>` (who is calling, from which cluster). */
export const PEER_HELLO = 'BEACON.PEER';

/** Redis Cluster's error for a multi-key command over several slots. */
export const CROSSSLOT = "CROSSSLOT Keys in request don't hash to the same slot";
/** Redis Cluster's error while the node cannot serve (no ring yet, or membership not confirmed). */
export const CLUSTERDOWN = 'CLUSTERDOWN The cluster is down';

/** What {@link ClusterRouter} needs. */
export interface ClusterRouterOptions {
  /** This node's id. */
  selfId: string;
  slots: SlotOwnership;
  /** The secret of this cluster's links ({@link AuthService.peerSecret}); undefined in `--dev` mode. */
  peerSecret: (() => string) | undefined;
  /** How long a forwarded command may take, in ms (default 5000). */
  timeoutMs?: number;
  /** A key's replication factor (its namespace's); default 1. */
  factorOf?: (key: string) => number;
  /** The largest replication factor of any memory namespace; default 1. */
  maxFactor?: () => number;
  /**
   * This cluster's id (the shared database's, `PostgresBackend.clusterId`): presented on
   * every link to another node as `BEACON.PEER <cluster id> <node id>`; none sent when absent.
   */
  clusterId?: string;
  /**
   * Why the link of node `nodeId`, presenting `clusterId`, must be refused (the error's text), or
   * undefined when it is a live member of this cluster (`Cluster.checkPeer`).
   */
  checkPeer?: (clusterId: string, nodeId: string) => Promise<string | undefined>;
  /**
   * The certificates (PEM) other nodes' TLS listeners are verified against, when the nodes'
   * RESP listeners speak TLS (`--tls-cert`): links are then TLS too.
   */
  peerCa?: (string | Buffer)[];
}

/** Where a memory command goes: run here, an error reply, or the `host:port` of the node to forward it to. */
/** `replica`: served here as a replica of the slot (a READONLY read), not as its primary. */
export type Routed = { to: 'here'; replica?: true } | { to: 'reply'; reply: Reply } | { to: 'peer'; addr: string; slot: number };

const HERE: Routed = { to: 'here' };
const HERE_AS_REPLICA: Routed = { to: 'here', replica: true };
/** The longest a Node.js timer waits, in ms. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Routing decisions and links to other nodes, for the RESP listener of a node in a cache cluster. */
export class ClusterRouter implements ClusterView {
  readonly selfId: string;
  private readonly pool = new PeerPool();
  private readonly stats = { forwarded: 0, moved: 0, forwardErrors: 0 };

  constructor(private readonly o: ClusterRouterOptions) {
    this.selfId = o.selfId;
  }

  get ring(): ClusterView['ring'] {
    return this.o.slots.ring;
  }

  confirmed(): boolean {
    return this.o.slots.route(0) !== 'down';
  }

  forwarded(): number {
    return this.stats.forwarded;
  }

  maxFactor(): number {
    return this.o.maxFactor?.() ?? 1;
  }

  /** Counters for INFO: forwarded commands, MOVED replies, forwards that failed. */
  counters(): Readonly<{ forwarded: number; moved: number; forwardErrors: number }> {
    return this.stats;
  }

  /**
   * Why the link of node `nodeId`, presenting `clusterId` in `BEACON.PEER`, must be refused, or
   * undefined to accept it (always, when no check is configured).
   */
  checkPeer(clusterId: string, nodeId: string): Promise<string | undefined> {
    return this.o.checkPeer?.(clusterId, nodeId) ?? Promise.resolve(undefined);
  }

  /** Whether `conn` is another node's link (it gets MOVED rather than a forward: no loops). */
  isPeer(conn: ConnState, dev: boolean): boolean {
    return conn.principal?.via === 'peer' || (dev && conn.name.startsWith(PEER_NAME_PREFIX));
  }

  /**
   * Where a command on the memory keys `keys` goes. Every key must be in one slot (CROSSSLOT).
   * A slot this node serves runs here; a slot another node serves is `-MOVED slot host:port`
   * for a cluster client or another node, and forwarded for any other client; a slot this node
   * just gained answers TRYAGAIN until it is readied; no confirmed membership answers CLUSTERDOWN.
   * A `read` on a connection that sent READONLY is served here too when this node is a replica
   * of the slot for the key's namespace, with a complete copy (Redis Cluster's replica reads:
   * the value may lag the primary's by the writes in flight).
   */
  route(conn: ConnState, keys: readonly string[], dev: boolean, read = false): Routed {
    const slot = keySlot(keys[0] as string);
    for (let i = 1; i < keys.length; i++) if (keySlot(keys[i] as string) !== slot) return { to: 'reply', reply: R.error(CROSSSLOT) };
    const where = this.o.slots.route(slot);
    if (where === 'serve') return HERE;
    if (where === 'down') return { to: 'reply', reply: R.error(CLUSTERDOWN) };
    if (where === 'importing') return { to: 'reply', reply: R.error(`TRYAGAIN slot ${slot} just moved to this node and is being readied; try again shortly`) };
    const ring = this.o.slots.ring;
    if (read && conn.replicaReads && ring !== undefined && this.o.slots.holds(slot)) {
      const rank = ring.rank(slot);
      if (rank !== NO_RANK && rank < (this.o.factorOf?.(keys[0] as string) ?? 1)) return HERE_AS_REPLICA;
    }
    const addr = ring?.address(slot) ?? '';
    if (addr === '') return { to: 'reply', reply: R.error(CLUSTERDOWN) };
    if (conn.clusterAware || this.isPeer(conn, dev)) {
      this.stats.moved++;
      return { to: 'reply', reply: R.error(`MOVED ${slot} ${addr}`) };
    }
    return { to: 'peer', addr, slot };
  }

  /**
   * Sends `argv` to the node at `addr` and resolves with its reply, as it came (in `protocol`).
   * A `-MOVED` from there (the two nodes see different rings for a moment) and a node that does
   * not answer become `-TRYAGAIN`. `blockMs` (a blocking command's timeout; 0 forever) runs it
   * on a link of its own, so it holds up no other client. Never rejects.
   */
  forward(argv: Buffer[], addr: string, slot: number, protocol: Protocol, blockMs?: number): Promise<Reply> {
    // A blocking command gets a link of its own, waiting as long as a timer can (timeout 0) or its timeout and then some.
    const open =
      blockMs === undefined
        ? (): PeerLink => this.link(addr, protocol)
        : (): PeerLink => this.makeLink(addr, protocol, blockMs === 0 ? MAX_TIMER_MS : Math.min(MAX_TIMER_MS, blockMs + (this.o.timeoutMs ?? 5000)));
    return this.relay(addr, slot, open, (link) => link.send(argv), blockMs !== undefined);
  }

  /**
   * The common part of {@link forward} and {@link forwardTransaction}: opens the link, sends,
   * and turns the answer into the client's reply — the owner's bytes as they came, `-TRYAGAIN`
   * for a `-MOVED`/`-ASK` (the two nodes see different rings for a moment) or a node that cannot
   * be reached or does not answer. `own`: the link is closed after. Never rejects.
   */
  private relay(addr: string, slot: number, open: () => PeerLink, send: (link: PeerLink) => Promise<Buffer>, own: boolean): Promise<Reply> {
    this.stats.forwarded++;
    let link: PeerLink;
    try {
      link = open();
    } catch (err) {
      this.stats.forwardErrors++;
      return Promise.resolve(R.error(`TRYAGAIN the node serving slot ${slot} cannot be reached (${errorMessage(err)})`));
    }
    const answered = send(link).then(
      (raw): Reply => (isMoved(raw) ? R.error(`TRYAGAIN slot ${slot} is moving between nodes; try again shortly`) : { t: 'raw', v: raw }),
      (err: unknown): Reply => {
        this.stats.forwardErrors++;
        return R.error(`TRYAGAIN the node serving slot ${slot} (${addr}) could not be used: ${errorMessage(err)}`);
      },
    );
    if (!own) return answered;
    return answered.finally(() => link.close());
  }

  /**
   * Sends `argv` to the node at `addr` on the link for node-to-node commands (replication,
   * pub/sub) and resolves with its raw reply. That link carries only commands the other node
   * answers at once; forwarded client commands go on another link, where a write in a `sync`
   * namespace may wait for its replicas — whose acknowledgements must never queue behind it.
   * @throws (rejects) UnavailableError when that node cannot be reached or does not answer.
   */
  sendTo(addr: string, argv: Buffer[]): Promise<Buffer> {
    try {
      return this.pool.get(`${addr}/internal`, () => this.makeLink(addr, 2, this.o.timeoutMs ?? 5000)).send(argv);
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
  }

  /**
   * Sends `argv` to the node at `addr` on the node-to-node link, like {@link sendTo}, without
   * reading its reply (the keys of a copy or hand-over: the command that ends it is answered
   * after them on the same link, and tells whether the link held). Never throws.
   */
  sendQuietTo(addr: string, argv: Buffer[]): void {
    try {
      this.pool.get(`${addr}/internal`, () => this.makeLink(addr, 2, this.o.timeoutMs ?? 5000)).sendQuiet(argv);
    } catch {
      // no link to that address: the end of the copy fails and says so
    }
  }

  /**
   * Runs a plain client's transaction on the node at `addr`: `MULTI`, `cmds` and `EXEC` sent back
   * to back on one link (nothing else can come between them: they are queued in one go), and
   * resolves with `EXEC`'s reply as it came. Failures as {@link forward}. Never rejects.
   */
  forwardTransaction(cmds: Buffer[][], addr: string, slot: number, protocol: Protocol, watching?: PeerLink): Promise<Reply> {
    const send = (link: PeerLink): Promise<Buffer> =>
      Promise.all([link.send([MULTI]), ...cmds.map((argv) => link.send(argv)), link.send([EXEC])]).then((replies) => replies[replies.length - 1] as Buffer);
    if (watching !== undefined) return this.relay(addr, slot, () => watching, send, true);
    return this.relay(addr, slot, () => this.link(addr, protocol), send, false);
  }

  /**
   * A link of its own to the node at `addr` for a plain client's `WATCH` of keys that node serves:
   * the `WATCH` and the transaction after it run on that one connection, which is never
   * replaced (a broken one fails the `EXEC`, as the watch is gone). Close it on `UNWATCH`,
   * `DISCARD`, `EXEC` or when the client goes; {@link forwardTransaction} closes it after `EXEC`.
   */
  watchLink(addr: string, protocol: Protocol): PeerLink {
    return this.makeLink(addr, protocol, this.o.timeoutMs ?? 5000, true);
  }

  /** Sends `argv` to every other member of the ring, without waiting for or reading the answers. */
  broadcast(argv: Buffer[]): void {
    const ring = this.o.slots.ring;
    if (ring === undefined) return;
    for (const m of ring.members) {
      if (m.id === this.selfId) continue;
      const addr = ring.addressOf(m.id);
      if (addr === '') continue;
      this.sendTo(addr, argv).catch(() => undefined);
    }
  }

  private link(addr: string, protocol: Protocol): PeerLink {
    return this.pool.get(`${addr}/${protocol}`, () => this.makeLink(addr, protocol, this.o.timeoutMs ?? 5000));
  }

  private makeLink(addr: string, protocol: Protocol, timeoutMs: number, single = false): PeerLink {
    const { host, port } = respAddress(`redis://${addr}`);
    const secret = this.o.peerSecret;
    const clusterId = this.o.clusterId;
    return new PeerLink({
      host,
      port,
      protocol,
      name: `${PEER_NAME_PREFIX}${this.selfId}`,
      timeoutMs,
      ...(secret !== undefined ? { credentials: async () => ({ user: PEER_PRINCIPAL, pass: secret() }) } : {}),
      ...(clusterId !== undefined ? { hello: () => [PEER_HELLO, clusterId, this.selfId] } : {}),
      ...(this.o.peerCa !== undefined ? { tls: { ca: this.o.peerCa } } : {}),
      ...(single ? { single } : {}),
    });
  }

  /** Closes every link. */
  close(): void {
    this.pool.closeAll();
  }
}

const MULTI = Buffer.from('MULTI');
const EXEC = Buffer.from('EXEC');

/** `-MOVED …` or `-ASK …`: the other node disagrees about the slot for now. */
function isMoved(raw: Buffer): boolean {
  return raw[0] === 0x2d && (raw.subarray(1, 7).toString('latin1') === 'MOVED ' || raw.subarray(1, 5).toString('latin1') === 'ASK ');
}

