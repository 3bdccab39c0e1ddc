/**
 * The config layer over the kv core: config keys are kv keys, a config's version is the key's
 * `version` counter, every write is one kv revision carrying `meta` JSON that says why it happened.
 */
import { BeaconError, ConflictError, ErrorCode, InvalidArgumentError, NotFoundError } from '../errors.js';
import { FIRST_USER_KEY, compareKeys, prefixEnd, validateKey, type AuditContext, type KeyValue, type LogEntry, type OpResult, type Store } from '../kv/index.js';
import { diffValues, type ValueDiff } from './diff.js';
import { formatVersion } from './version.js';

/** Page size of history and listings when the caller gives none. */
export const DEFAULT_PAGE_LIMIT = 100;
/** The largest page of history or listing one call returns. */
export const MAX_PAGE_LIMIT = 1000;

/** Why a version exists: a write, a rollback, or (for a history entry) the deletion of the config. */
export type ConfigEvent = 'config_updated' | 'config_rolled_back' | 'deleted';

/** One version of a config as read from the revision log. Times are ms since the epoch. */
export interface ConfigVersion {
  key: string;
  /** The version counter (1, 2, …); 0 for a deletion entry. */
  version: number;
  /** The stored bytes (empty for a deletion). */
  value: Uint8Array;
  /** True when the store sealed `value` (ciphertext of a secret namespace; see `KeyValue.encrypted`). */
  encrypted?: true;
  /** The kv revision that wrote this version. */
  revision: number;
  /** The revision that created this incarnation of the key (its v1). */
  createRevision: number;
  /** Commit time of `revision`. */
  updatedAt: number;
  event: ConfigEvent;
  /** For a rollback: the version whose value it restored. */
  restoredVersion?: number;
}

/** A config as `GET /v1/configs/{key}` shows it; `createdAt` is missing when v1 was compacted. */
export interface ConfigRead extends ConfigVersion {
  /** The latest version of the config (equal to `version` unless an older one was asked for). */
  latestVersion: number;
  createdAt?: number;
}

/** The outcome of a config write. */
export interface ConfigWriteResult {
  key: string;
  version: number;
  revision: number;
  /** Commit time of `revision`, ms since the epoch. */
  updatedAt: number;
}

/** The outcome of a rollback: `fromVersion` was current, `toVersion` is the new version holding `restoredVersion`'s value. */
export interface ConfigRollbackResult {
  key: string;
  fromVersion: number;
  toVersion: number;
  restoredVersion: number;
  revision: number;
  updatedAt: number;
}

/** Where the next history page starts: the incarnation it belongs to and the revision to read below. */
export interface HistoryCursor {
  createRevision: number;
  beforeRevision: number;
}

/** One page of history, newest first. `compactRevision` is set when older versions were lost to compaction. */
export interface ConfigHistoryPage {
  key: string;
  versions: ConfigVersion[];
  next?: HistoryCursor;
  compactRevision?: number;
}

/** A diff between two versions of one config. */
export interface ConfigDiff {
  key: string;
  from: number;
  to: number;
  diff: ValueDiff;
}

/** One config in a listing. */
export interface ConfigSummary {
  key: string;
  version: number;
  revision: number;
  createRevision: number;
  /** Commit time of `revision`; missing only if that log entry was compacted while listing an old revision. */
  updatedAt?: number;
}

/** One page of a listing at the pinned revision `revision`; `more` says whether keys remain after the last one. */
export interface ConfigListPage {
  configs: ConfigSummary[];
  revision: number;
  more: boolean;
}

/** The incarnation of a key a read operates on: the entries since its latest createRevision. */
interface Incarnation {
  createRevision: number;
  /** Version of the incarnation's latest put; 0 when unknown (deleted and its puts compacted). */
  latest: number;
  /** Revision of that put. */
  latestRevision: number;
  live: KeyValue | undefined;
}

/** The meta JSON written with each kind of config write, read back by the watch hub and history. */
const META_UPDATED = JSON.stringify({ event: 'config_updated' });
const META_DELETED = JSON.stringify({ event: 'config_deleted' });

function parseMeta(meta: string | null): Record<string, unknown> | undefined {
  if (meta === null) return undefined;
  try {
    const v: unknown = JSON.parse(meta);
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** Reads a `v<N>` written by this layer into meta; lenient, since meta is not user input. */
function metaVersion(v: unknown): number | undefined {
  const m = typeof v === 'string' ? /^v(\d+)$/.exec(v) : null;
  return m === null ? undefined : Number(m[1]);
}

function toConfigVersion(e: LogEntry): ConfigVersion {
  const base = { key: e.key, revision: e.revision, createRevision: e.createRevision, updatedAt: e.ts };
  if (e.deleted) return { ...base, version: 0, value: new Uint8Array(0), event: 'deleted' };
  const meta = parseMeta(e.meta);
  const out: ConfigVersion = { ...base, version: e.version, value: e.value, event: 'config_updated' };
  if (e.encrypted === true) out.encrypted = true;
  if (meta?.event === 'config_rolled_back') {
    out.event = 'config_rolled_back';
    const restored = metaVersion(meta.restored_version);
    if (restored !== undefined) out.restoredVersion = restored;
  }
  return out;
}

function notFound(key: string): NotFoundError {
  return new NotFoundError(`config '${key}' not found`, { key });
}

function clampLimit(limit: number | undefined): number {
  if (limit === undefined || limit === 0) return DEFAULT_PAGE_LIMIT;
  if (!Number.isSafeInteger(limit) || limit < 0) throw new InvalidArgumentError('limit must be a non-negative integer', { field: 'limit' });
  return Math.min(limit, MAX_PAGE_LIMIT);
}

function checkVersionArg(v: number | undefined, field: string): void {
  if (v !== undefined && (!Number.isSafeInteger(v) || v < 1)) {
    throw new InvalidArgumentError(`'${field}' must be a version of at least v1`, { field });
  }
}

/**
 * Versioned application configs on top of the kv core (DESIGN.md §4, seed 000 journeys 1–2).
 *
 * A config key is a kv key; `PUT /v1/configs/a` and `PUT /v1/kv/a` write the same key and the
 * same revision history. Versions are the key's `version` counter, so a key that is deleted
 * and re-created starts again at v1: history, diff and versioned reads look at the current
 * incarnation only (the entries since the key's latest createRevision). Conditional writes use
 * a txn compare on `version`, so of two writers expecting the same version exactly one wins.
 *
 * @example
 * const configs = new ConfigService(store);
 * await configs.put('database.url', Buffer.from('postgresql://old-db:5432/app'));            // v1
 * await configs.put('database.url', Buffer.from('postgresql://new-db:5432/app'), { expectVersion: 2 }); // v2
 * await configs.rollback('database.url', 1); // v3 holds v1's value
 */
export class ConfigService {
  constructor(readonly store: Store) {}

  // ---------------------------------------------------------------------------------------------
  // Writes

  /**
   * Writes a new version of `key`. With `expectVersion` N the write applies only if it creates
   * vN, i.e. the key is at v(N-1) (for N = 1: does not exist), checked atomically in the txn.
   * @throws ConflictError (details `{key, expected, current}`) when the version does not match;
   * InvalidArgumentError / TooLargeError for a bad key or an oversized value.
   * `lease` attaches the new version to a lease (a namespace's default TTL); `audit` says who wrote it.
   */
  async put(key: string, value: Uint8Array, opts: { expectVersion?: number; lease?: number; audit?: AuditContext } = {}): Promise<ConfigWriteResult> {
    validateKey(key);
    checkVersionArg(opts.expectVersion, 'version');
    const expect = opts.expectVersion;
    const res = await this.store.txn(
      {
        compare: expect === undefined ? [] : [{ key, target: 'version', result: '=', operand: expect - 1 }],
        success: [{ type: 'put', key, value, prevKv: true, lease: opts.lease ?? 0 }],
        failure: [{ type: 'range', key }],
      },
      opts.audit === undefined ? { meta: META_UPDATED } : { meta: META_UPDATED, audit: opts.audit },
    );
    if (!res.succeeded) {
      const current = (res.results[0] as Extract<OpResult, { type: 'range' }>).kvs[0];
      throw createConflict(key, expect as number, current);
    }
    const prev = (res.results[0] as Extract<OpResult, { type: 'put' }>).prevKv;
    const version = prev === undefined ? 1 : prev.version + 1;
    return { key, version, revision: res.revision, updatedAt: await this.commitTime(key, res.revision) };
  }

  /**
   * Writes the value of `version` again as a new version, atomically: if another write lands
   * first, the rollback fails with a conflict rather than overwriting it. The revision carries
   * meta `{"event":"config_rolled_back","from_version","to_version","restored_version"}`.
   * @throws NotFoundError for an unknown key or version; ConflictError when `expectVersion` is
   * given and is not the current version, or when a concurrent write wins; a `compacted` error
   * when the version's history is gone (compacted, or removed by the namespace's history
   * retention: then `details.reason` is `history_retention`).
   * `prepare` turns the restored version into the clear bytes to write (decrypted, and checked
   * against the namespace's current schema; the store seals them again under the current KEK);
   * `audit` says who asked.
   */
  async rollback(
    key: string,
    version: number,
    opts: { expectVersion?: number; prepare?: (source: ConfigVersion) => Uint8Array; audit?: AuditContext } = {},
  ): Promise<ConfigRollbackResult> {
    validateKey(key);
    checkVersionArg(version, 'version');
    checkVersionArg(opts.expectVersion, 'expectedVersion');
    const kv = this.store.get(key);
    if (kv === undefined) throw notFound(key);
    if (opts.expectVersion !== undefined && opts.expectVersion !== kv.version) {
      throw new ConflictError(
        `config '${key}' is at ${formatVersion(kv.version)}, not ${formatVersion(opts.expectVersion)} as the rollback expected`,
        { key, expected: formatVersion(opts.expectVersion), current: formatVersion(kv.version) },
      );
    }
    const inc: Incarnation = { createRevision: kv.createRevision, latest: kv.version, latestRevision: kv.modRevision, live: kv };
    const source = await this.findVersion(key, inc, version);
    const fromVersion = kv.version;
    const toVersion = fromVersion + 1;
    const meta = JSON.stringify({
      event: 'config_rolled_back',
      from_version: formatVersion(fromVersion),
      to_version: formatVersion(toVersion),
      restored_version: formatVersion(version),
    });
    const res = await this.store.txn(
      {
        // createRevision too: a delete and re-create that reached the same version is another config.
        compare: [
          { key, target: 'version', result: '=', operand: fromVersion },
          { key, target: 'createRevision', result: '=', operand: kv.createRevision },
        ],
        // ignoreLease: a rollback restores the value, not the lease of the old version.
        success: [{ type: 'put', key, value: opts.prepare ? opts.prepare(source) : source.value, ignoreLease: true }],
        failure: [{ type: 'range', key }],
      },
      opts.audit === undefined ? { meta } : { meta, audit: opts.audit },
    );
    if (!res.succeeded) {
      const current = (res.results[0] as Extract<OpResult, { type: 'range' }>).kvs[0];
      const now = current === undefined ? null : formatVersion(current.version);
      throw new ConflictError(
        `config '${key}' changed during the rollback (it is now ${now ?? 'deleted'}, the rollback started from ${formatVersion(fromVersion)}); read it and retry`,
        { key, expected: formatVersion(fromVersion), current: now },
      );
    }
    return { key, fromVersion, toVersion, restoredVersion: version, revision: res.revision, updatedAt: await this.commitTime(key, res.revision) };
  }

  /**
   * Deletes a config (one revision with meta `{"event":"config_deleted"}`). Re-creating it later
   * starts again at v1.
   * @throws NotFoundError when the key does not exist.
   */
  async delete(key: string, opts: { audit?: AuditContext } = {}): Promise<{ key: string; revision: number }> {
    validateKey(key);
    const res = await this.store.deleteRange(key, undefined, opts.audit === undefined ? { meta: META_DELETED } : { meta: META_DELETED, audit: opts.audit });
    if (res.deleted === 0) throw notFound(key);
    return { key, revision: res.revision };
  }

  // ---------------------------------------------------------------------------------------------
  // Reads

  /**
   * Reads the latest version of a live config, or with `version` an older version of its
   * current incarnation (also of a deleted config's last incarnation, so it can be recovered).
   * @throws NotFoundError for an unknown key or version; a `compacted` error (HTTP 410) when
   * the version's history is gone.
   */
  async get(key: string, version?: number): Promise<ConfigRead> {
    validateKey(key);
    checkVersionArg(version, 'version');
    if (version === undefined) {
      const kv = this.store.get(key);
      if (kv === undefined) throw notFound(key);
      const [entry, created] = await Promise.all([
        this.entryAt(key, kv.modRevision),
        kv.version === 1 ? undefined : this.entryAt(key, kv.createRevision),
      ]);
      const latest = entry === undefined ? undefined : toConfigVersion(entry);
      const out: ConfigRead = {
        key,
        version: kv.version,
        latestVersion: kv.version,
        value: kv.value,
        ...(kv.encrypted === true ? { encrypted: true as const } : {}),
        revision: kv.modRevision,
        createRevision: kv.createRevision,
        // The entry at modRevision is the key's newest, so compaction keeps it; the fallback is for a race only.
        updatedAt: entry?.ts ?? Date.now(),
        event: latest?.event ?? 'config_updated',
      };
      if (latest?.restoredVersion !== undefined) out.restoredVersion = latest.restoredVersion;
      const createdAt = kv.version === 1 ? entry?.ts : created?.ts;
      if (createdAt !== undefined) out.createdAt = createdAt;
      return out;
    }
    const inc = await this.incarnation(key);
    const [found, first] = await Promise.all([this.findVersion(key, inc, version), this.entryAt(key, inc.createRevision)]);
    const out: ConfigRead = { ...found, latestVersion: inc.latest };
    if (first !== undefined && !first.deleted) out.createdAt = first.ts;
    return out;
  }

  /**
   * One page of the current incarnation's history, newest first (puts, rollbacks and the
   * deletion that ended it, if any). Pass the returned `next` to read older entries.
   * @throws NotFoundError for a key with no history.
   */
  async history(key: string, opts: { limit?: number; cursor?: HistoryCursor } = {}): Promise<ConfigHistoryPage> {
    validateKey(key);
    const limit = clampLimit(opts.limit);
    const top = opts.cursor === undefined ? this.store.revision : opts.cursor.beforeRevision - 1;
    const entries = await this.log(key, { toRevision: top, reverse: true, limit: limit + 1 });
    const first = entries[0];
    if (first === undefined) {
      if (opts.cursor !== undefined) {
        // The rest of this incarnation was there when the previous page was read: compaction or
        // the namespace's history retention removed it since. Say so, as a first page would.
        await this.store.refreshFloors();
        const compacted = this.store.compactRevisionFor(key, undefined);
        return compacted >= opts.cursor.createRevision ? { key, versions: [], compactRevision: compacted } : { key, versions: [] };
      }
      throw notFound(key);
    }
    const createRevision = opts.cursor?.createRevision ?? first.createRevision;
    const mine: LogEntry[] = [];
    for (const e of entries) {
      // Entries of an older incarnation end this one's history.
      if (e.createRevision !== createRevision || e.revision < createRevision) break;
      mine.push(e);
    }
    const page: ConfigHistoryPage = { key, versions: mine.slice(0, limit).map(toConfigVersion) };
    if (mine.length > limit) {
      page.next = { createRevision, beforeRevision: (mine[limit - 1] as LogEntry).revision };
      return page;
    }
    const oldest = mine[mine.length - 1];
    if (oldest !== undefined && (oldest.deleted || oldest.version > 1)) {
      // Older versions went to compaction or to the namespace's history retention (its floor is the higher).
      await this.store.refreshFloors();
      page.compactRevision = this.store.compactRevisionFor(key, undefined);
    }
    return page;
  }

  /**
   * Diffs two versions of the current incarnation. `to` defaults to the latest version and
   * `from` to the one before `to`. `decode` turns a stored version into the bytes compared
   * (secrets are decrypted first); JSON nested deeper than `maxJsonDepth` is diffed as text.
   * @throws NotFoundError for an unknown key or version; InvalidArgumentError when `from` is
   * left out and `to` is v1; a `compacted` error when a version's history is gone (see {@link rollback}).
   */
  async diff(key: string, opts: { from?: number; to?: number; decode?: (version: ConfigVersion) => Uint8Array; maxJsonDepth?: number } = {}): Promise<ConfigDiff> {
    validateKey(key);
    checkVersionArg(opts.from, 'from');
    checkVersionArg(opts.to, 'to');
    const inc = await this.incarnation(key);
    const to = opts.to ?? inc.latest;
    const from = opts.from ?? to - 1;
    if (from < 1) throw new InvalidArgumentError(`'from' is required: ${formatVersion(to)} has no earlier version`, { field: 'from' });
    const [a, b] = await Promise.all([this.findVersion(key, inc, from), this.findVersion(key, inc, to)]);
    const dec = opts.decode ?? ((v: ConfigVersion) => v.value);
    return { key, from, to, diff: diffValues(dec(a), dec(b), `${key} ${formatVersion(from)}`, `${key} ${formatVersion(to)}`, opts.maxJsonDepth) };
  }

  /**
   * Lists configs whose key starts with `prefix`, in key order, from `start` (inclusive; default
   * `prefix`) at `revision` (default: latest; pin it for consistent pages).
   * @throws a `compacted` error when `revision` is compacted; InvalidArgumentError for a bad limit.
   */
  async list(prefix: string, opts: { limit?: number; start?: string; revision?: number } = {}): Promise<ConfigListPage> {
    const limit = clampLimit(opts.limit);
    const pinned = opts.revision ?? this.store.revision;
    // Keys below U+0001 are Beacon's own (users, policies): never listed.
    let start = opts.start ?? prefix;
    if (compareKeys(start, FIRST_USER_KEY) < 0) start = FIRST_USER_KEY;
    const res = await this.store.range(start, prefixEnd(prefix), {
      revision: pinned === this.store.revision ? 0 : pinned,
      limit,
      keysOnly: true,
    });
    const entries = await Promise.all(res.kvs.map((kv) => this.entryAt(kv.key, kv.modRevision)));
    const configs = res.kvs.map((kv, i): ConfigSummary => {
      const s: ConfigSummary = { key: kv.key, version: kv.version, revision: kv.modRevision, createRevision: kv.createRevision };
      const ts = entries[i]?.ts;
      if (ts !== undefined) s.updatedAt = ts;
      return s;
    });
    return { configs, revision: pinned, more: res.more };
  }

  // ---------------------------------------------------------------------------------------------
  // Internals

  /**
   * Reads a key's log entries up to the view's revision. It goes to the backend because
   * Store.history has no upper bound, which paging backwards and pinned reads need; entries at
   * or below the compact revision may simply be missing, which callers treat as compaction.
   */
  private log(key: string, opts: { fromRevision?: number; toRevision?: number; limit?: number; reverse?: boolean }): Promise<LogEntry[]> {
    const toRevision = Math.min(opts.toRevision ?? this.store.revision, this.store.revision);
    return this.store.backend.history(key, { ...opts, toRevision });
  }

  /** The key's log entry at exactly `revision`, if still stored. */
  private async entryAt(key: string, revision: number): Promise<LogEntry | undefined> {
    const [e] = await this.log(key, { fromRevision: revision, toRevision: revision, limit: 1 });
    return e;
  }

  /** Commit time of a revision this layer just wrote. */
  private async commitTime(key: string, revision: number): Promise<number> {
    return (await this.entryAt(key, revision))?.ts ?? Date.now();
  }

  /** The latest incarnation of `key`: the live key, or the one its newest tombstone ended. */
  private async incarnation(key: string): Promise<Incarnation> {
    const kv = this.store.get(key);
    if (kv !== undefined) return { createRevision: kv.createRevision, latest: kv.version, latestRevision: kv.modRevision, live: kv };
    const [last, prev] = await this.log(key, { reverse: true, limit: 2 });
    if (last === undefined) throw notFound(key);
    if (!last.deleted) return { createRevision: last.createRevision, latest: last.version, latestRevision: last.revision, live: undefined };
    const put = prev !== undefined && !prev.deleted && prev.createRevision === last.createRevision ? prev : undefined;
    return { createRevision: last.createRevision, latest: put?.version ?? 0, latestRevision: put?.revision ?? last.revision, live: undefined };
  }

  /**
   * Finds version `n` of an incarnation. Versions of one incarnation are consecutive and in
   * revision order, so reading `n` entries forward from its createRevision, or `latest - n + 1`
   * backward from its latest put, always reaches vN when it is stored; the cheaper side is read.
   */
  private async findVersion(key: string, inc: Incarnation, n: number): Promise<ConfigVersion> {
    if (inc.latest > 0 && n > inc.latest) {
      throw new NotFoundError(`version ${formatVersion(n)} of config '${key}' does not exist; the latest is ${formatVersion(inc.latest)}`, {
        key,
        version: formatVersion(n),
        latest: formatVersion(inc.latest),
      });
    }
    let entries: LogEntry[] = [];
    if (inc.latest > 0) {
      const back = inc.latest - n + 1;
      entries =
        back <= n
          ? await this.log(key, { toRevision: inc.latestRevision, reverse: true, limit: back })
          : await this.log(key, { fromRevision: inc.createRevision, toRevision: inc.latestRevision, limit: n });
    }
    const e = entries.find((x) => !x.deleted && x.createRevision === inc.createRevision && x.version === n);
    if (e === undefined) {
      // Floors are read after the rows, so a retention pass that removed the version is seen here.
      await this.store.refreshFloors();
      const compactRevision = this.store.compactRevisionFor(key, undefined);
      const retained = compactRevision > this.store.compactRevision;
      throw new BeaconError(
        ErrorCode.Compacted,
        retained
          ? `version ${formatVersion(n)} of config '${key}' was removed by the history retention of its namespace (history at or below revision ${compactRevision} is gone); the history lists the versions kept`
          : `version ${formatVersion(n)} of config '${key}' has been compacted (history at or below revision ${compactRevision} is gone)`,
        { key, version: formatVersion(n), revision: compactRevision, compactRevision, ...(retained ? { reason: 'history_retention' } : {}) },
      );
    }
    return toConfigVersion(e);
  }
}

/** The 409 of a conditional write that expected to create `expected`. */
function createConflict(key: string, expected: number, current: KeyValue | undefined): ConflictError {
  const cur = current === undefined ? null : formatVersion(current.version);
  const want = formatVersion(expected);
  const message =
    cur === null
      ? `config '${key}' does not exist, so a write cannot create ${want}; send "v1" (or no version) to create it`
      : expected === 1
        ? `config '${key}' already exists at ${cur}; "v1" only creates a new config`
        : `config '${key}' is at ${cur}, so it cannot take "version": "${want}" (that writes on top of ${formatVersion(expected - 1)}); send "${formatVersion((current?.version ?? 0) + 1)}" or leave "version" out to write the next version`;
  return new ConflictError(message, { key, expected: want, current: cur });
}
