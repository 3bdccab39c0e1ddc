/**
 * Live config (DESIGN.md §8): every key under a prefix, kept current by a watch (a near cache),
 * parsed as JSON where it is JSON, validated as a whole by a schema, with change events and a
 * last-known-good copy for starting while the server is unreachable.
 *
 * Life cycle: `start()` lists the prefix at one revision and watches from the next one, so no
 * change between the listing and the watch is lost. If the server cannot be reached, the
 * last-known-good copy is loaded instead and the config says `stale: true`; it keeps trying and,
 * once the server answers, replaces the copy with the server's state (a `change` event when they
 * differ) and says `stale: false`. A watch that falls behind a compaction lists again. An update
 * that fails validation is not applied (the last valid value stays, an `invalid` event says why)
 * and is not saved.
 */
import { BeaconError, ErrorCode, InvalidArgumentError, UnavailableError } from '../src/errors.js';
import { AsyncQueue } from './async-queue.js';
import type { Connection } from './connection.js';
import { Emitter } from './emitter.js';
import { fileStorage, type LkgStorage } from './lkg-storage.js';
import { backoffDelay, sleep } from './resilience.js';
import type { KeyValue, WatchEvent } from './types.js';
import { fromBase64, toBase64, tryUtf8, utf8 } from './values.js';
import type { Watch } from './watch.js';
import { candidateBytes, rolloutPlacement, type ClientIdentity, type Rollout } from './rollouts.js';

/**
 * How often a client re-reports an unchanged variant, ms: the server counts clients seen within
 * its 15-minute adoption window (docs/rollout.md "Adoption"), so a steady client reports again
 * every 5 minutes (10,000 clients: about 33 small upserts a second, no revisions).
 */
const REPORT_REFRESH_MS = 5 * 60_000;

/** A zod-like schema with `safeParse` (zod, valibot adapters, …); `data` becomes the config's value. */
export interface SafeParseSchema<T> {
  safeParse(input: unknown): { success: true; data: T } | { success: false; error: unknown };
}

/** A schema with a throwing `parse` (zod, superstruct-like); its result becomes the config's value. */
export interface ParseSchema<T> {
  parse(input: unknown): T;
}

/** A JSON Schema document (draft-07 / 2019-09 as ajv reads it). */
export type JsonSchema = Record<string, unknown> & { parse?: never; safeParse?: never };

/** Anything a live config can validate with. */
export type ConfigSchema<T> = SafeParseSchema<T> | ParseSchema<T> | JsonSchema;

/** Options of {@link BeaconClient.config}. */
export interface LiveConfigOptions<T> {
  /** Validates the whole config object: a JSON Schema (checked with ajv) or an object with `safeParse`/`parse` (zod). */
  schema?: ConfigSchema<T>;
  /** A file for the last-known-good copy (Node only), written atomically after every valid update. */
  lastKnownGoodFile?: string;
  /** Any other place for the last-known-good copy (`webStorage(localStorage, 'cfg')` in browsers); wins over the file. */
  lastKnownGood?: LkgStorage;
  /** Wait for the server when it is unreachable and there is no last-known-good copy, instead of failing. */
  waitForServer?: boolean;
  /** Retry back-off while the server is unreachable at start-up, in ms (defaults 200 and 5000). */
  retry?: { initialDelayMs?: number; maxDelayMs?: number };
  /**
   * Who this client is, for staged rollouts (docs/rollout.md): with an identity, keys under the
   * prefix that have an active rollout take its candidate value when this client falls in the
   * current step (a stable hash of key, rollout id and `id`, within the rollout's selector over
   * `labels`). Without one, the config always holds the current versions.
   */
  identity?: ClientIdentity;
  /**
   * How long one long poll for rollout changes is held by the server, ms (default 25000; only
   * with `identity`). A change (a step, a rollback) answers it at once, whatever this is.
   */
  rolloutWaitMs?: number;
  /** The least time between two adoption reports for one key, ms (default 10000). */
  reportIntervalMs?: number;
}

/** A change of the config's value. `changedKeys` are relative to the prefix; `source` says where the value came from. */
export interface ConfigChange<T> {
  value: T;
  previous: T | undefined;
  revision: number;
  changedKeys: string[];
  source: 'server' | 'last-known-good';
}

/** The events of a {@link LiveConfig}. */
export interface LiveConfigEvents<T> extends Record<string, unknown> {
  /** The value changed (also when the server's state replaces a last-known-good copy). */
  change: ConfigChange<T>;
  /** An update from the server failed validation and was not applied. */
  invalid: { revision: number; errors: string[]; changedKeys: string[] };
  /** The value may lag the server: loaded from the last-known-good copy, or the watch is reconnecting. */
  stale: { reason: string };
  /** The value is current again, as of `revision`. */
  fresh: { revision: number };
  /** A background failure: saving the last-known-good copy, a watch refused by the server (it is retried). */
  error: unknown;
}

/** The last-known-good document: the raw values, so they are parsed and validated again on load. */
interface LkgDocument {
  format: 'beacon-lkg/1';
  prefix: string;
  revision: number;
  savedAt: string;
  entries: Record<string, { value: string; encoding?: 'base64' }>;
}

/** A config value's decoded form: parsed JSON when the text is JSON, the text otherwise, bytes when not UTF-8. */
export function decodeConfigValue(bytes: Uint8Array, text: string | undefined): unknown {
  if (text === undefined) return bytes;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

type Validator<T> = (input: Record<string, unknown>) => { ok: true; value: T } | { ok: false; errors: string[] };

function issuesOf(error: unknown): string[] {
  const issues = (error as { issues?: { path?: (string | number)[]; message?: string }[] }).issues;
  if (Array.isArray(issues)) return issues.map((i) => `${(i.path ?? []).length > 0 ? `/${(i.path ?? []).join('/')} ` : ''}${i.message ?? 'invalid'}`);
  return [error instanceof Error ? error.message : String(error)];
}

async function makeValidator<T>(schema: ConfigSchema<T> | undefined): Promise<Validator<T>> {
  if (schema === undefined) return (input) => ({ ok: true, value: input as T });
  if (typeof (schema as SafeParseSchema<T>).safeParse === 'function') {
    const s = schema as SafeParseSchema<T>;
    return (input) => {
      const r = s.safeParse(input);
      return r.success ? { ok: true, value: r.data } : { ok: false, errors: issuesOf(r.error) };
    };
  }
  if (typeof (schema as ParseSchema<T>).parse === 'function') {
    const s = schema as ParseSchema<T>;
    return (input) => {
      try {
        return { ok: true, value: s.parse(input) };
      } catch (err) {
        return { ok: false, errors: issuesOf(err) };
      }
    };
  }
  // ajv is loaded only for JSON Schemas, so bundles that validate with zod never carry it.
  const { Ajv } = await import('ajv');
  const ajv = new Ajv({ allErrors: true, strict: false });
  let validate: ReturnType<typeof ajv.compile>;
  try {
    validate = ajv.compile(schema);
  } catch (err) {
    throw new InvalidArgumentError(`the config schema is not a valid JSON Schema: ${(err as Error).message}`);
  }
  return (input) =>
    validate(input)
      ? { ok: true, value: input as T }
      : { ok: false, errors: (validate.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message ?? 'is invalid'}`) };
}

/**
 * A config object kept current by a watch. Read `value` (the last valid value), `stale`,
 * `revision`; listen to `change`, `invalid`, `stale`, `fresh` and `error`, or iterate `changes()`.
 * Create it with `await client.config(prefix, opts)`; `close()` stops the watch.
 * @example
 * const cfg = await client.config<{ flags: { darkMode: boolean } }>('app/', {
 *   schema: { type: 'object', required: ['flags'] },
 *   lastKnownGoodFile: '/var/lib/app/config.lkg.json',
 * });
 * cfg.on('change', ({ value }) => applyFlags(value.flags));
 * if (cfg.stale) console.warn('running on the last-known-good config');
 */
export class LiveConfig<T = Record<string, unknown>> extends Emitter<LiveConfigEvents<T>> {
  /** The watched prefix; keys of the value are relative to it. */
  readonly prefix: string;
  private readonly storage: LkgStorage | undefined;
  private validator: Validator<T> | undefined;
  /** Every key under the prefix as last seen from the server (or the copy), raw. */
  private raw = new Map<string, KeyValue>();
  private value_: T | undefined;
  private revision_ = 0;
  private source_: 'server' | 'last-known-good' = 'server';
  private stale_ = true;
  private watch: Watch | undefined;
  private readonly ctl = new AbortController();
  private saving: Promise<void> = Promise.resolve();
  private savedRevision = 0;
  /** Events of the revision being received, applied together when it is complete. */
  private pending: { revision: number; events: WatchEvent[] } | undefined;
  private flushTimer: ReturnType<typeof setTimeout> | undefined;
  // Staged rollouts (issue 16): the candidate bytes this client takes instead of a key's current value.
  private overrides = new Map<string, Uint8Array>();
  /** The store revision of the last rollout listing (the next long poll waits for a change after it). */
  private rolloutRevision = 0;
  /** Per key: the `rollout:variant` last reported and when. */
  private reported = new Map<string, { what: string; at: number }>();
  /** Per key: a report held back by the rate limit (the latest wins). */
  private reportLater = new Map<string, { r: Rollout; variant: 'candidate' | 'current'; place: { bucket: number; selected: boolean } }>();

  constructor(
    private readonly client: Connection,
    prefix: string,
    private readonly opts: LiveConfigOptions<T> = {},
  ) {
    super();
    if (typeof prefix !== 'string') throw new InvalidArgumentError('config prefix must be a string');
    this.prefix = prefix;
    this.storage = opts.lastKnownGood ?? (opts.lastKnownGoodFile !== undefined ? fileStorage(opts.lastKnownGoodFile) : undefined);
  }

  /** The last valid value. @throws UnavailableError before `start()` has produced one. */
  get value(): T {
    if (this.value_ === undefined) throw new UnavailableError(`config '${this.prefix}' has no value yet: await client.config(…) first`);
    return this.value_;
  }

  /** True while the value may lag the server: it came from the last-known-good copy, or the watch is reconnecting. */
  get stale(): boolean {
    return this.stale_;
  }

  /** The store revision the value reflects (from the copy while it is the source). */
  get revision(): number {
    return this.revision_;
  }

  /** Where the value came from. */
  get source(): 'server' | 'last-known-good' {
    return this.source_;
  }

  /** Whether `close()` was called. */
  get closed(): boolean {
    return this.ctl.signal.aborted;
  }

  /** One key's decoded value (relative to the prefix), as the server last had it, valid or not. */
  get(relativeKey: string): unknown {
    const kv = this.raw.get(this.prefix + relativeKey);
    return kv === undefined ? undefined : decodeConfigValue(kv.value, kv.text);
  }

  /** Changes as an async iterator, from now on; ends with `close()` or when `signal` aborts. */
  changes(opts: { signal?: AbortSignal } = {}): AsyncIterable<ConfigChange<T>> & { stop(): void } {
    const off: (() => void)[] = [];
    const queue = new AsyncQueue<ConfigChange<T>>(() => off.forEach((f) => f()));
    off.push(this.on('change', (c) => queue.push(c)));
    const end = (): void => queue.stop();
    this.ctl.signal.addEventListener('abort', end, { once: true });
    off.push(() => this.ctl.signal.removeEventListener('abort', end));
    if (opts.signal !== undefined) {
      const s = opts.signal;
      if (s.aborted) queue.stop();
      s.addEventListener('abort', end, { once: true });
      off.push(() => s.removeEventListener('abort', end));
    }
    return queue;
  }

  /**
   * Loads the config: from the server (then watches it), or from the last-known-good copy when
   * the server is unreachable (then keeps trying in the background).
   * @throws UnavailableError when the server is unreachable and there is no usable copy (unless
   *   `waitForServer`); the server's error when it refuses the read (permission denied …);
   *   InvalidArgumentError for a bad schema or when the server's config fails validation and
   *   there is no valid copy either.
   */
  async start(signal?: AbortSignal): Promise<this> {
    this.validator = await makeValidator(this.opts.schema);
    if (this.opts.identity !== undefined) {
      if (typeof this.opts.identity.id !== 'string' || this.opts.identity.id === '') throw new InvalidArgumentError('identity.id must be a non-empty string');
      // Read the rollouts before the first value, so a targeted client never shows the current value first.
      await this.refreshRollouts(false).catch(() => undefined);
      void this.followRollouts();
    }
    try {
      await this.loadFromServer(signal);
      return this;
    } catch (err) {
      if (!isUnreachable(err)) throw err;
      const fromCopy = await this.loadFromCopy().catch((e: unknown) => {
        this.emit('error', e);
        return false;
      });
      if (!fromCopy && !this.opts.waitForServer) {
        this.close();
        throw err;
      }
      this.markStale(`server unreachable (${(err as Error).message}); ${fromCopy ? `using the last-known-good copy from ${this.storage?.description}` : 'waiting for it'}`);
      if (fromCopy) {
        void this.catchUp();
        return this;
      }
      await this.catchUp(signal);
      if (this.value_ === undefined) throw err;
      return this;
    }
  }

  /** Stops the watch and the retries. The value stays readable. */
  close(): void {
    if (this.ctl.signal.aborted) return;
    this.ctl.abort();
    clearTimeout(this.flushTimer);
    this.watch?.stop();
    this.watch = undefined;
  }

  // ---- loading ---------------------------------------------------------------------------------

  /** Lists the prefix at one revision, applies it as the whole state, then watches from the next revision. */
  private async loadFromServer(signal?: AbortSignal): Promise<void> {
    const kvs = new Map<string, KeyValue>();
    let revision = 0;
    for await (const kv of this.client.scan(this.prefix, { signal: signal ?? this.ctl.signal, onFirstPage: (i) => (revision = i.revision) })) kvs.set(kv.key, kv);
    if (this.closed) return;
    const before = new Map(this.raw);
    this.raw = kvs;
    const changed = diffKeys(before, kvs).map((k) => this.rel(k));
    const applied = this.commit(revision, changed, 'server', this.value_ === undefined);
    if (!applied && this.value_ === undefined) {
      throw new InvalidArgumentError(`config '${this.prefix}' at revision ${revision} fails validation and there is no valid value to fall back to`);
    }
    this.source_ = 'server';
    this.revision_ = revision;
    this.markFresh();
    this.startWatch(revision + 1);
  }

  /** Retries the listing with back-off until it works or the config is closed. */
  private async catchUp(signal?: AbortSignal): Promise<void> {
    for (let attempt = 0; !this.closed && !signal?.aborted; attempt++) {
      const delay = backoffDelay(attempt, { baseDelayMs: this.opts.retry?.initialDelayMs ?? 200, maxDelayMs: this.opts.retry?.maxDelayMs ?? 5000 });
      try {
        await sleep(delay, this.ctl.signal);
        await this.loadFromServer(signal);
        return;
      } catch (err) {
        if (this.closed || signal?.aborted) return;
        if (!isUnreachable(err)) this.emit('error', err);
      }
    }
  }

  private async loadFromCopy(): Promise<boolean> {
    if (this.storage === undefined) return false;
    const text = await this.storage.load();
    if (text === undefined) return false;
    let doc: LkgDocument;
    try {
      doc = JSON.parse(text) as LkgDocument;
      if (doc.format !== 'beacon-lkg/1' || typeof doc.entries !== 'object' || doc.entries === null) throw new Error('not a beacon-lkg/1 document');
    } catch (err) {
      throw new InvalidArgumentError(`the last-known-good copy in ${this.storage.description} is unreadable: ${(err as Error).message}`);
    }
    if (doc.prefix !== this.prefix) {
      throw new InvalidArgumentError(`the last-known-good copy in ${this.storage.description} is for prefix '${doc.prefix}', not '${this.prefix}'`);
    }
    const kvs = new Map<string, KeyValue>();
    for (const [rel, e] of Object.entries(doc.entries)) {
      const bytes = e.encoding === 'base64' ? fromBase64(e.value) : utf8(e.value);
      const key = this.prefix + rel;
      kvs.set(key, { key, value: bytes, text: tryUtf8(bytes), createRevision: 0, modRevision: 0, version: 0, lease: 0 });
    }
    this.raw = kvs;
    const applied = this.commit(doc.revision, [...kvs.keys()].map((k) => this.rel(k)), 'last-known-good', true);
    if (!applied) return false;
    this.revision_ = doc.revision;
    this.source_ = 'last-known-good';
    // What was just loaded is what the copy holds: no need to write it back.
    this.savedRevision = doc.revision;
    return true;
  }

  // ---- watching --------------------------------------------------------------------------------

  private startWatch(fromRevision: number): void {
    if (this.closed) return;
    this.watch?.stop();
    const watch = this.client.watch(this.prefix, {
      prefix: true,
      fromRevision,
      retryInitial: true,
      signal: this.ctl.signal,
      onStatus: (s) => {
        if (s.state === 'reconnecting') this.markStale(`watch reconnecting: ${s.reason}`);
        else this.markFresh();
      },
    });
    this.watch = watch;
    void (async () => {
      try {
        for await (const ev of watch) this.receive(ev);
      } catch (err) {
        if (this.closed || this.watch !== watch) return;
        // Fell behind a compaction, or the server refused: list again and watch from there.
        if (!(err instanceof BeaconError && err.code === ErrorCode.Compacted)) this.emit('error', err);
        this.markStale(`watch ended: ${(err as Error).message}`);
        this.flush();
        void this.catchUp();
      }
    })();
  }

  /** Collects the events of one revision; they are applied together once the revision is complete. */
  private receive(ev: WatchEvent): void {
    if (this.pending !== undefined && this.pending.revision !== ev.revision) this.flush();
    this.pending ??= { revision: ev.revision, events: [] };
    this.pending.events.push(ev);
    // Every event of one revision arrives in one frame, queued before this timer can fire.
    clearTimeout(this.flushTimer);
    this.flushTimer = setTimeout(() => this.flush(), 0);
  }

  private flush(): void {
    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    const p = this.pending;
    this.pending = undefined;
    if (p === undefined || this.closed) return;
    const changed: string[] = [];
    for (const ev of p.events) {
      if (ev.type === 'put') this.raw.set(ev.kv.key, ev.kv);
      else this.raw.delete(ev.kv.key);
      changed.push(this.rel(ev.kv.key));
    }
    this.commit(p.revision, changed, 'server', false);
    this.revision_ = p.revision;
  }

  // ---- applying --------------------------------------------------------------------------------

  private rel(key: string): string {
    return key.slice(this.prefix.length);
  }

  private rawObject(): Record<string, unknown> {
    const o: Record<string, unknown> = {};
    for (const kv of [...this.raw.values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))) {
      const candidate = this.overrides.get(kv.key);
      o[this.rel(kv.key)] = candidate === undefined ? decodeConfigValue(kv.value, kv.text) : decodeConfigValue(candidate, tryUtf8(candidate));
    }
    return o;
  }

  // ---- staged rollouts (issue 16) --------------------------------------------------------------

  /** Keys (relative to the prefix) on which this client holds a rollout's candidate now. */
  get candidateKeys(): string[] {
    return [...this.overrides.keys()].filter((k) => this.raw.has(k)).map((k) => this.rel(k));
  }

  /**
   * Long-polls the rollouts under the prefix until closed: each answer comes as soon as one
   * changes (or after `rolloutWaitMs`); while the server is unreachable the assignment stays as
   * it is and the poll retries with back-off.
   */
  private async followRollouts(): Promise<void> {
    for (let attempt = 0; !this.closed; ) {
      try {
        await this.refreshRollouts(true, this.opts.rolloutWaitMs ?? 25_000);
        attempt = 0;
      } catch (err) {
        if (this.closed) return;
        if (!isUnreachable(err)) this.emit('error', err);
        await sleep(backoffDelay(attempt++, { baseDelayMs: 200, maxDelayMs: 5000 }), this.ctl.signal).catch(() => undefined);
      }
    }
  }

  /** Reads the active rollouts under the prefix (with `waitMs`: once one changes) and recomputes which keys take their candidate. */
  private async refreshRollouts(apply: boolean, waitMs?: number): Promise<void> {
    const identity = this.opts.identity as ClientIdentity;
    const query: Record<string, string | number> = { prefix: this.prefix };
    if (waitMs !== undefined) Object.assign(query, { wait: this.rolloutRevision, timeout: waitMs });
    const { body } = await this.client.transport.request<{ rollouts: Rollout[]; revision: number }>('GET', '/v1/rollouts', {
      query,
      signal: this.ctl.signal,
      ...(waitMs !== undefined ? { longPoll: true, timeoutMs: waitMs + 10_000 } : {}),
    });
    if (this.closed) return;
    this.rolloutRevision = body.revision;
    const next = new Map<string, Uint8Array>();
    for (const r of body.rollouts) {
      const place = rolloutPlacement(r, identity);
      if (place.targeted) next.set(r.key, candidateBytes(r));
      this.report(r, place.targeted ? 'candidate' : 'current', place);
    }
    const changed: string[] = [];
    for (const [k, v] of next) {
      const old = this.overrides.get(k);
      if (old === undefined || !sameBytes(old, v)) changed.push(k);
    }
    for (const k of this.overrides.keys()) if (!next.has(k)) changed.push(k);
    this.overrides = next;
    const visible = changed.filter((k) => this.raw.has(k)).map((k) => this.rel(k));
    if (apply && visible.length > 0 && this.value_ !== undefined) this.commit(this.revision_, visible, this.source_, false);
  }

  /**
   * Reports the applied variant (with the client's bucket and whether it is selected, which the
   * server calibrates steps on) when it changed, and again every {@link REPORT_REFRESH_MS} so the
   * server keeps counting this client; at most once per `reportIntervalMs` per key; failures
   * are dropped (the next poll retries).
   */
  private report(r: Rollout, variant: 'candidate' | 'current', place: { bucket: number; selected: boolean }): void {
    const what = `${r.id}:${variant}`;
    const last = this.reported.get(r.key);
    const now = Date.now();
    if ((last?.what === what && now - last.at < REPORT_REFRESH_MS) || this.closed) return;
    const interval = this.opts.reportIntervalMs ?? 10_000;
    if (last !== undefined && now - last.at < interval) {
      // Rate-limited: the latest variant is reported once the interval has passed.
      const first = !this.reportLater.has(r.key);
      this.reportLater.set(r.key, { r, variant, place });
      if (first) {
        const t = setTimeout(() => {
          const later = this.reportLater.get(r.key);
          this.reportLater.delete(r.key);
          if (later !== undefined) this.report(later.r, later.variant, later.place);
        }, interval - (now - last.at));
        (t as { unref?: () => void }).unref?.();
      }
      return;
    }
    this.reported.set(r.key, { what, at: now });
    const client = (this.opts.identity as ClientIdentity).id;
    this.client.transport
      .request('POST', '/v1/rollouts/report', { body: { key: r.key, rollout: r.id, client, variant, bucket: place.bucket, selected: place.selected }, signal: this.ctl.signal })
      .catch(() => this.reported.delete(r.key));
  }

  /**
   * Validates the raw state as a whole; when valid, makes it the value, emits `change` (unless
   * nothing changed and `force` is off) and saves the copy. Returns whether it was valid.
   */
  private commit(revision: number, changedKeys: string[], source: 'server' | 'last-known-good', force: boolean): boolean {
    const result = (this.validator as Validator<T>)(this.rawObject());
    if (!result.ok) {
      this.emit('invalid', { revision, errors: result.errors, changedKeys });
      return false;
    }
    const previous = this.value_;
    const changed = changedKeys.length > 0 || previous === undefined;
    this.value_ = result.value;
    this.source_ = source;
    if (changed || force) this.emit('change', { value: result.value, previous, revision, changedKeys, source });
    if (source === 'server') this.save(revision);
    return true;
  }

  /** Writes the copy, one write at a time and in order; a failure is reported, never thrown. */
  private save(revision: number): void {
    const storage = this.storage;
    if (storage === undefined || revision <= this.savedRevision) return;
    this.savedRevision = revision;
    const entries: LkgDocument['entries'] = {};
    for (const kv of this.raw.values()) entries[this.rel(kv.key)] = kv.text !== undefined ? { value: kv.text } : { value: toBase64(kv.value), encoding: 'base64' };
    const doc: LkgDocument = { format: 'beacon-lkg/1', prefix: this.prefix, revision, savedAt: new Date().toISOString(), entries };
    const text = JSON.stringify(doc);
    this.saving = this.saving.then(() => storage.save(text)).catch((err: unknown) => this.emit('error', err));
  }

  /** Resolves once every last-known-good write queued so far has finished. */
  async flushed(): Promise<void> {
    await this.saving;
  }

  private markStale(reason: string): void {
    if (this.stale_) return;
    this.stale_ = true;
    this.emit('stale', { reason });
  }

  private markFresh(): void {
    if (!this.stale_ || this.source_ !== 'server') return;
    this.stale_ = false;
    this.emit('fresh', { revision: this.revision_ });
  }
}

/** The keys whose value differs between two raw states. */
function diffKeys(a: Map<string, KeyValue>, b: Map<string, KeyValue>): string[] {
  const out: string[] = [];
  for (const [k, kv] of b) {
    const old = a.get(k);
    if (old === undefined || !sameBytes(old.value, kv.value)) out.push(k);
  }
  for (const k of a.keys()) if (!b.has(k)) out.push(k);
  return out;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}

function isUnreachable(err: unknown): boolean {
  return err instanceof BeaconError && err.code === ErrorCode.Unavailable;
}
