/**
 * Silences kept in the kv store (one key per silence: versioned, audited, the same on every
 * node), mirrored into the notifier's in-memory {@link Silences}, which mutes alerts.
 */
import { InvalidArgumentError, NotFoundError } from '../../errors.js';
import { prefixEnd, type AuditContext, type RevisionEvents, type Store } from '../../kv/index.js';
import type { Logger } from '../logger.js';
import { Silences, silenceInputFromRequest, type Silence } from '../notify/index.js';
import { SILENCE_PREFIX } from './keys.js';

/** Silences in the store. `start()` loads and follows them; `stop()` ends that. */
export class SilenceStore {
  readonly silences: Silences;
  private unsubscribe: (() => void) | undefined;

  constructor(
    private readonly store: Store,
    private readonly logger: Logger,
    silences?: Silences,
  ) {
    this.silences = silences ?? new Silences();
  }

  /** Loads every stored silence and follows changes (also other nodes'). */
  start(): void {
    for (const kv of this.store.rangeLatest(SILENCE_PREFIX, prefixEnd(SILENCE_PREFIX)).kvs) this.apply(kv.key, kv.value);
    this.unsubscribe = this.store.subscribe((rev: RevisionEvents) => {
      for (const ev of rev.events) if (ev.kv.key.startsWith(SILENCE_PREFIX)) this.apply(ev.kv.key, ev.type === 'put' ? ev.kv.value : undefined);
    });
  }

  stop(): void {
    this.unsubscribe?.();
  }

  private apply(key: string, value: Uint8Array | undefined): void {
    const id = key.slice(SILENCE_PREFIX.length);
    if (value === undefined) {
      this.silences.remove(id);
      return;
    }
    try {
      this.silences.add(Silences.fromJSON(Buffer.from(value).toString('utf8')));
    } catch (err) {
      this.logger.warn({ id, err: err instanceof Error ? err.message : String(err) }, 'a stored silence could not be read; it is ignored');
    }
  }

  /** Every silence: active, pending, then expired (kept 5 days, as Alertmanager). */
  list(): Silence[] {
    return this.silences.list();
  }

  /** Ids of the active silences muting an alert with these labels. */
  mutedBy(labels: Record<string, string>): string[] {
    return this.silences.mutes(labels);
  }

  /**
   * Creates a silence from a request body (`{matchers, endsAt | duration, startsAt?, comment?}`).
   * @throws InvalidArgumentError saying what is wrong (matchers, regex, times, unknown fields).
   */
  async create(body: unknown, createdBy: string, audit: AuditContext): Promise<{ id: string }> {
    const input = silenceInputFromRequest(body, createdBy);
    // Checked (and given its id) by a scratch set, so a refused silence changes nothing here.
    const scratch = new Silences();
    const s = scratch.add(input);
    const res = await this.store.put(SILENCE_PREFIX + s.id, Buffer.from(Silences.toJSON(s)), { audit });
    await this.store.waitForRevision(res.revision);
    return { id: s.id };
  }

  /**
   * Ends a silence now (it stays listed as expired).
   * @throws NotFoundError for an unknown id; ConflictError when it has already expired.
   */
  async expire(id: string, audit: AuditContext): Promise<void> {
    if (!/^[A-Za-z0-9-]{1,64}$/.test(id)) throw new InvalidArgumentError(`invalid silence id ${JSON.stringify(id)}`);
    const current = this.silences.get(id);
    if (current === undefined) throw new NotFoundError(`silence ${id} not found`, { id });
    const scratch = new Silences();
    scratch.add(Silences.fromJSON(Silences.toJSON(current)));
    const expired = scratch.expire(id);
    const res = await this.store.put(SILENCE_PREFIX + id, Buffer.from(Silences.toJSON(expired)), { audit });
    await this.store.waitForRevision(res.revision);
  }

  /** Removes silences expired for longer than the retention (run by the evaluating node). Resolves with how many. */
  async collect(): Promise<number> {
    const ids = this.silences.gc();
    for (const id of ids) await this.store.deleteRange(SILENCE_PREFIX + id, undefined, { audit: { principal: 'system', action: 'alerts.silences.gc' } });
    return ids.length;
  }
}
