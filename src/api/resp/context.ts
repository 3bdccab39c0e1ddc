/** What a RESP command handler sees: its connection, the server's shared state, the keyspace of its keys. */
import type { Principal } from '../../auth/index.js';
import type { CacheRing } from '../../cache/index.js';
import type { Keyspace } from './keyspace.js';
import type { PeerLink } from './peer.js';
import type { Protocol, Reply } from './protocol.js';

/** One client connection's state (CLIENT LIST shows most of it). */
export interface ConnState {
  readonly id: number;
  /** `ip:port` of the peer. */
  readonly addr: string;
  readonly laddr: string;
  readonly createdAt: number;
  protocol: Protocol;
  name: string;
  libName: string;
  libVer: string;
  /** The authenticated principal; undefined until AUTH/HELLO … AUTH (always set with --dev). */
  principal: Principal | undefined;
  /** Queued commands between MULTI and EXEC; undefined outside a MULTI. */
  multi: Buffer[][] | undefined;
  /** A command failed to queue: EXEC answers EXECABORT. */
  multiError: boolean;
  /** WATCHed keys and what they were: the modRevision of durable keys (0 absent); memory keys by a version counter. */
  watched: Map<string, { kind: 'durable' | 'memory'; rev: number }>;
  /**
   * A plain client's WATCH of memory keys another node serves (cache cluster): the link of its
   * own on which that node watches them, where the transaction then runs.
   */
  watchLink: { link: PeerLink; addr: string; slot: number } | undefined;
  channels: Set<string>;
  patterns: Set<string>;
  /** CLIENT REPLY ON|OFF|SKIP. */
  replyMode: 'on' | 'off' | 'skip';
  /** Waiting in a blocking command (CLIENT LIST flag `b`). */
  blocked: boolean;
  /** The last command's name (CLIENT LIST `cmd=`). */
  lastCmd: string;
  lastActive: number;
  /** Sends a push/message outside the request/reply flow (pub/sub). */
  push(r: Reply): void;
  /**
   * The client speaks Redis Cluster (it sent CLUSTER, READONLY, READWRITE or ASKING): a key
   * another node serves gets `-MOVED`; other clients' commands are forwarded to that node.
   */
  clusterAware: boolean;
  /** READONLY was sent (and not READWRITE since): reads of slots this node replicates are served here. */
  replicaReads: boolean;
  /** Closes the connection after the pending replies are written. */
  closeAfterReply(): void;
  /** Closes at once (CLIENT KILL). */
  kill(): void;
}

/** A node's place in the cache tier across nodes (PostgreSQL mode), for CLUSTER. */
export interface ClusterView {
  /** This node's id. */
  readonly selfId: string;
  /** The ring in force; undefined before this node saw one. */
  readonly ring: CacheRing | undefined;
  /** Whether this node's membership is confirmed now (it serves its slots). */
  confirmed(): boolean;
  /** Commands this node forwarded to other nodes since it started. */
  forwarded(): number;
  /** The largest replication factor of any memory namespace (CLUSTER SLOTS lists that many owners per range). */
  maxFactor(): number;
}

/** What commands ask of the server beyond one keyspace (key enumeration, pub/sub, INFO, CONFIG, clients). */
export interface ServerApi {
  readonly dev: boolean;
  /** The keyspace of the kind `key` belongs to (a fresh durable txn for a durable key). */
  keyspaceOf(key: string, conn: ConnState): Keyspace;
  /** Every key matching `pattern` that `conn`'s principal may read, both kinds, in key order. */
  keys(conn: ConnState, pattern: string): string[];
  /** One SCAN step. `cursor` as the client sent it. @throws RespError for a bad cursor. */
  scan(conn: ConnState, cursor: string, count: number, match: string | undefined, type: string | undefined): [string, string[]];
  /** Keys `conn`'s principal may read (DBSIZE): durable keys not shadowed by a memory namespace, and memory keys. */
  dbsize(conn: ConnState): number;
  randomKey(conn: ConnState): string | undefined;
  /** Deletes every key (both kinds). */
  flushAll(conn: ConnState): Promise<void>;
  publish(channel: Buffer, message: Buffer): number;
  subscribe(conn: ConnState, channel: string, pattern: boolean): void;
  unsubscribe(conn: ConnState, channel: string, pattern: boolean): void;
  /** Active channels matching `pattern`; a keyspace channel only if `conn` may read the key it names. */
  pubsubChannels(conn: ConnState, pattern: string | undefined): string[];
  /** Subscribers of `channel`; 0 for a keyspace channel naming a key `conn` may not read. */
  pubsubNumsub(conn: ConnState, channel: string): number;
  pubsubNumpat(): number;
  /** INFO's text; the keyspace section counts the keys `conn`'s principal may read. */
  info(section: string | undefined, conn: ConnState): string;
  configGet(pattern: string): [string, string][];
  /** @throws RespError for an unknown parameter or a bad value. */
  configSet(name: string, value: string): Promise<void>;
  resetStats(): void;
  /** SLOWLOG GET: the newest `count` entries (all for a negative count), Redis's entry shape. */
  slowlogGet(count: number): Reply;
  slowlogLen(): number;
  slowlogReset(): void;
  /** DEBUG SET-ACTIVE-EXPIRE: runs (true) or stops (false) the cache tier's active expiry. */
  setActiveExpire(on: boolean): void;
  clients(): ConnState[];
  /** Whether `conn`'s principal may read `key` (SORT's BY and GET patterns name keys of their own). */
  canRead(conn: ConnState, key: string): boolean;
  /**
   * CLIENT UNBLOCK: answers client `id`'s blocking command now, with a nil array as if it timed
   * out, or with `error` the `-UNBLOCKED` error. @returns false when that client is not blocked.
   */
  unblockClient(id: number, error: boolean): boolean;
  /** Checks `AUTH` credentials: `user pass`, or an API key (user omitted or `default`). */
  authenticate(user: string | undefined, pass: string, conn: ConnState): Promise<Principal>;
  commandNames(): string[];
  /** The cache tier across nodes, or undefined on a node that is not part of one (CLUSTER answers "disabled"). */
  cluster(): ClusterView | undefined;
  /**
   * WAIT: resolves, after every replicated write `conn` made was acknowledged or `timeoutMs`
   * passed (0: no limit), with how many replicas acknowledged all of them (0 without replicas).
   */
  waitReplicas(conn: ConnState, count: number, timeoutMs: number): Promise<number>;
  /** Up to `count` memory keys of `slot` this node holds (CLUSTER GETKEYSINSLOT / COUNTKEYSINSLOT). */
  keysInSlot(slot: number, count: number): string[];
  /**
   * COMMAND GETKEYS: the key arguments of `argv` (a command with its arguments).
   * @throws RespError for an unknown command, a wrong argument count, or a command without keys (Redis's texts).
   */
  commandKeys(argv: Buffer[]): Buffer[];
  commandInfo(name: string): Reply | undefined;
  commandDocs(name: string): Reply | undefined;
}

/** A command's view of the node. */
export interface Ctx {
  readonly conn: ConnState;
  readonly srv: ServerApi;
  /** The keyspace of this command's keys (every key of one command is of one kind). */
  readonly ks: Keyspace;
}

/**
 * A command handler. A keyed command's handler is synchronous and pure with respect to a
 * durable keyspace (writes are collected, then committed), so it may be re-run after a conflict.
 * `args` excludes the command name.
 */
export type Handler = (c: Ctx, args: Buffer[]) => Reply | Promise<Reply>;
