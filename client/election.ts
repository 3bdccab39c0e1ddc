/**
 * `Election` (etcd `concurrency.Election`): leader election over the same contender layout as
 * locks — the candidate with the lowest createRevision under `NAME/` leads, and its key's value
 * is what it announces (an address, an id). Campaigning uses the contend protocol of
 * {@link Mutex}; observing reads the server's `GET /v1/elections/{name}/observe` SSE stream and
 * reconnects (failing over between endpoints) when it breaks, yielding each leader change once.
 */
import { ConflictError, ErrorCode, InvalidArgumentError, NotFoundError, UnavailableError, type BeaconError } from '../src/errors.js';
import { AsyncQueue } from './async-queue.js';
import type { Connection, LeaseHolder } from './connection.js';
import { checkName } from './coord-keys.js';
import { contend, release, type LockInfo, type LockOptions } from './mutex.js';
import { backoffDelay, sleep } from './resilience.js';
import { readSse } from './sse.js';
import { kvFromWire, type KeyValue, type KeyValueWire } from './types.js';
import { encodeKeyPath, valueToWire, type ValueInput } from './values.js';

/** A leader as observed: its candidate kv (the value is what it proclaims) and its fencing token (the key's createRevision). */
export interface Leader extends KeyValue {
  /** The election name. */
  name: string;
  fencingToken: number;
}

/** A won election: the leader key, its lease and fencing token. */
export type LeaderInfo = LockInfo;

/** Options of {@link Election.observe}. */
export interface ObserveOptions {
  /** Ends the observation (quietly) when aborted. */
  signal?: AbortSignal;
  /** Reconnect back-off with full jitter, in ms (defaults 100 and 5000). */
  reconnect?: { initialDelayMs?: number; maxDelayMs?: number };
}

/** A running observation of an election: iterate it with `for await`; `stop()` ends it. */
export interface Observation extends AsyncIterable<Leader> {
  stop(): void;
}

function leaderFromWire(w: KeyValueWire & { name: string; fencingToken: number }): Leader {
  return { ...kvFromWire(w), name: w.name, fencingToken: w.fencingToken };
}

/**
 * An election `name`. Built with a session (`session.election(name)`) it can campaign, proclaim
 * and resign; built without one (`client.election(name)`) it can only read the leader and observe.
 * @example
 * const election = session.election('scheduler');
 * await election.campaign('scheduler-1:8080');          // resolves once leader
 * for await (const leader of client.election('scheduler').observe()) console.log(leader.text);
 */
export class Election {
  /** The election name (a key prefix). */
  readonly name: string;
  private won: LeaderInfo | undefined;

  constructor(
    private readonly client: Connection,
    name: string,
    private readonly session?: LeaseHolder,
  ) {
    this.name = checkName(name, 'election name');
  }

  /** The leader key this session won, while it leads (and its session is alive). */
  get leadership(): LeaderInfo | undefined {
    return this.won !== undefined && this.session?.alive === true ? this.won : undefined;
  }

  /** Whether this session leads (as of its last campaign, proclaim or resign). */
  get isLeader(): boolean {
    return this.leadership !== undefined;
  }

  private needSession(what: string): LeaseHolder {
    if (this.session === undefined) throw new InvalidArgumentError(`${what} needs a session: use session.election('${this.name}')`);
    return this.session;
  }

  /**
   * Campaigns with `value` and resolves once this session is the leader (FIFO among candidates).
   * Campaigning again while a candidate keeps the place and updates the value.
   * @throws ConflictError (`details.reason: "timeout"`) after `timeoutMs`; the signal's reason;
   *   the session's `lost` error. The candidacy is withdrawn on any failure.
   */
  async campaign(value: ValueInput, opts: LockOptions = {}): Promise<LeaderInfo> {
    const session = this.needSession('campaign');
    this.won = await contend(session, 'election', this.name, valueToWire(value), opts);
    return this.won;
  }

  /**
   * Announces a new value as the leader, only while this session is still the leader (the same
   * key incarnation).
   * @throws ConflictError (`details.reason: "not_leader"`) when it is not the leader.
   */
  async proclaim(value: ValueInput, opts: { signal?: AbortSignal } = {}): Promise<{ revision: number }> {
    this.needSession('proclaim');
    const won = this.leadership;
    if (won === undefined) throw new ConflictError(`this session is not the leader of election '${this.name}'`, { reason: 'not_leader', name: this.name });
    const { body } = await this.client.transport.request<{ revision: number }>('POST', `/v1/elections/${encodeKeyPath(this.name)}/proclaim`, {
      body: { key: won.key, fencingToken: won.fencingToken, ...valueToWire(value) },
      signal: opts.signal,
      // Setting the same value on the same incarnation twice is harmless.
      idempotent: true,
    });
    return body;
  }

  /**
   * Gives up leadership (or candidacy): deletes the key so the next candidate leads.
   * @returns true when this call resigned, false when there was nothing to resign (never won, or the key is gone).
   */
  async resign(): Promise<boolean> {
    const session = this.needSession('resign');
    const won = this.won;
    this.won = undefined;
    if (won === undefined) return false;
    try {
      await release(session, 'election', won.key, won.fencingToken);
      return true;
    } catch (err) {
      if (err instanceof NotFoundError) return false;
      throw err;
    }
  }

  /** The current leader, or undefined when there is none. */
  async leader(opts: { signal?: AbortSignal } = {}): Promise<Leader | undefined> {
    try {
      const { body } = await this.client.transport.request<KeyValueWire & { name: string; fencingToken: number }>(
        'GET',
        `/v1/elections/${encodeKeyPath(this.name)}/leader`,
        { signal: opts.signal },
      );
      return leaderFromWire(body);
    } catch (err) {
      if (err instanceof NotFoundError) return undefined;
      throw err;
    }
  }

  /**
   * Leader changes as an async iterator (etcd `Election.Observe`): the current leader first (if
   * any), then every new leader and every value a leader proclaims; a vacancy yields nothing. When
   * the stream breaks (a node restarts) it reconnects with back-off, to another endpoint if the
   * node is down, and skips the leader it already yielded, so each change arrives once.
   * @throws (from the iteration) the server's typed error when it refuses the observation (bad
   *   name, permission denied); connection failures are retried for ever.
   */
  observe(opts: ObserveOptions = {}): Observation {
    const ctl = new AbortController();
    const queue = new AsyncQueue<Leader>(() => ctl.abort());
    const onAbort = (): void => queue.stop();
    if (opts.signal?.aborted) queue.stop();
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    const path = `/v1/elections/${encodeKeyPath(this.name)}/observe`;
    const run = async (): Promise<void> => {
      let last: { key: string; modRevision: number } | undefined;
      let attempt = 0;
      while (!ctl.signal.aborted) {
        try {
          const res = await this.client.transport.open('GET', path, { signal: ctl.signal, query: {} });
          if (res.body === null) throw new UnavailableError('the observe stream has no body');
          attempt = 0;
          for await (const msg of readSse(res.body, ctl.signal)) {
            if (msg.event !== 'leader') continue;
            const leader = leaderFromWire(JSON.parse(msg.data) as KeyValueWire & { name: string; fencingToken: number });
            if (last !== undefined && last.key === leader.key && last.modRevision === leader.modRevision) continue;
            last = { key: leader.key, modRevision: leader.modRevision };
            queue.push(leader);
          }
        } catch (err) {
          if (ctl.signal.aborted) break;
          const code = (err as BeaconError).code;
          const retryable = code === ErrorCode.Unavailable || !(err instanceof Error && 'code' in err);
          if (!retryable) {
            queue.fail(err);
            break;
          }
        }
        if (ctl.signal.aborted) break;
        const delay = backoffDelay(attempt++, { baseDelayMs: opts.reconnect?.initialDelayMs ?? 100, maxDelayMs: opts.reconnect?.maxDelayMs ?? 5000 });
        await sleep(delay, ctl.signal).catch(() => undefined);
      }
      opts.signal?.removeEventListener('abort', onAbort);
      queue.end();
    };
    void run();
    return queue;
  }
}
