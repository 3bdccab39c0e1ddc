/**
 * The application-config API (`/v1/configs`, DESIGN.md §4): versioned values with history, diff
 * and rollback. Versions are written `v<N>`; the SDK also accepts the bare number.
 */
import { InvalidArgumentError } from '../src/errors.js';
import type { HttpTransport } from './transport.js';
import { isPathUnsafeKey } from './values.js';

/** A config version as the API writes it (`v3`) or as a number (3). */
export type ConfigVersionRef = string | number;

/**
 * A config's value at one version. `value` is the text, or the parsed object or array when the
 * text is JSON, or base64 with `encoding: "base64"` when the bytes are not UTF-8. Times are
 * ISO 8601. `latestVersion` is set when an older version was asked for.
 */
export interface Config {
  key: string;
  value: unknown;
  encoding?: 'base64';
  version: string;
  revision: number;
  latestVersion?: string;
  createdAt?: string;
  updatedAt: string;
}

/** The answer of a config write: the version it created and its revision. */
export interface ConfigWrite {
  key: string;
  version: string;
  revision: number;
  updatedAt: string;
}

/**
 * One entry of a config's history. `event` is `config_updated`, `config_rolled_back` (with
 * `restoredVersion`) or `deleted` (then `version` is null and there is no value).
 */
export interface ConfigHistoryEntry {
  version: string | null;
  value?: unknown;
  encoding?: 'base64';
  revision: number;
  updatedAt: string;
  event: string;
  restoredVersion?: string;
  /** Set when the value is a secret the caller may not read: `value` is then `null`. */
  redacted?: true;
}

/**
 * One page of a config's history, newest first. `more` and `continue` fetch the next (older)
 * page; `compactRevision` is set when older versions were compacted away.
 */
export interface ConfigHistory {
  key: string;
  versions: ConfigHistoryEntry[];
  more: boolean;
  continue?: string;
  compactRevision?: number;
}

/**
 * The difference between two versions. For two JSON objects or arrays (`format: "json"`) each
 * change is `{path, op: "added"|"removed"|"changed", from?, to?}` with a JSON Pointer path; for
 * text (`"text"`) each is `{op: "added"|"removed", line, text}` and `unified` is the `diff -u`
 * form; `"binary"` values only say whether they changed.
 */
export interface ConfigDiff {
  key: string;
  from: string;
  to: string;
  format: 'json' | 'text' | 'binary';
  changes: Record<string, unknown>[];
  unified?: string;
}

/** The answer of a rollback: it moved from `fromVersion`, restoring `restoredVersion`'s value as the new `toVersion`. */
export interface ConfigRollback {
  key: string;
  fromVersion: string;
  toVersion: string;
  restoredVersion: string;
  revision: number;
  updatedAt?: string;
}

/**
 * Normalises a version reference to `v<N>`.
 * @throws InvalidArgumentError for anything but `v<N>` or a positive integer.
 */
export function configVersion(ref: ConfigVersionRef): string {
  const s = String(ref).trim();
  if (/^v?\d+$/.test(s) && Number(s.replace(/^v/, '')) > 0) return `v${Number(s.replace(/^v/, ''))}`;
  throw new InvalidArgumentError(`'${String(ref)}' is not a config version; write it as v1, v2 …`);
}

function path(key: string, suffix = ''): string {
  if (key === '' || isPathUnsafeKey(key)) throw new InvalidArgumentError(`'${key}' cannot be used as a config key`);
  // One encoded segment, slashes included, so that the key is never confused with a suffix such
  // as `/history`, whether the server routes on a wildcard or on a `:key` parameter.
  return `/v1/configs/${encodeURIComponent(key)}${suffix}`;
}

interface ConfigWire {
  key: string;
  value: unknown;
  encoding?: 'base64';
  version: string;
  revision: number;
  latest_version?: string;
  created_at?: string;
  updated_at: string;
}

interface HistoryEntryWire {
  version: string | null;
  value?: unknown;
  encoding?: 'base64';
  revision: number;
  updated_at: string;
  event: string;
  restored_version?: string;
  redacted?: true;
}

/** Config operations; reach them as `client.configs`. Every method throws the server's typed errors. */
export class ConfigsClient {
  constructor(private readonly http: HttpTransport) {}

  /**
   * Reads a config, at its latest version or at `version`.
   * @throws NotFoundError when the key or version does not exist; CompactedError for a compacted version.
   */
  async get(key: string, opts: { version?: ConfigVersionRef; signal?: AbortSignal } = {}): Promise<Config> {
    const { body } = await this.http.request<ConfigWire>('GET', path(key), {
      query: { version: opts.version === undefined ? undefined : configVersion(opts.version) },
      signal: opts.signal,
    });
    const out: Config = { key: body.key, value: body.value, version: body.version, revision: body.revision, updatedAt: body.updated_at };
    if (body.encoding !== undefined) out.encoding = body.encoding;
    if (body.latest_version !== undefined) out.latestVersion = body.latest_version;
    if (body.created_at !== undefined) out.createdAt = body.created_at;
    return out;
  }

  /**
   * Writes a new version: a string is stored as its text, an object or array as JSON.
   * `expectVersion` is the version this write expects to create (e.g. `v3`).
   * @throws ConflictError when it does not match; InvalidArgumentError when the value is rejected.
   */
  async put(key: string, value: unknown, opts: { expectVersion?: ConfigVersionRef; signal?: AbortSignal } = {}): Promise<ConfigWrite> {
    const body: Record<string, unknown> = { value };
    if (opts.expectVersion !== undefined) body.version = configVersion(opts.expectVersion);
    const res = await this.http.request<Omit<ConfigWire, 'value'>>('PUT', path(key), { body, signal: opts.signal });
    return { key: res.body.key, version: res.body.version, revision: res.body.revision, updatedAt: res.body.updated_at };
  }

  /**
   * Reads one page of a config's history, newest first (`limit` entries, default 100); pass
   * `continue` from the previous page for the next. See {@link ConfigsClient.historyAll}.
   * @throws NotFoundError for an unknown key.
   */
  async history(key: string, opts: { limit?: number; continue?: string; signal?: AbortSignal } = {}): Promise<ConfigHistory> {
    const { body } = await this.http.request<{ key: string; versions: HistoryEntryWire[]; more?: boolean; continue?: string; compact_revision?: number }>(
      'GET',
      path(key, '/history'),
      { query: { limit: opts.limit, continue: opts.continue }, signal: opts.signal },
    );
    const out: ConfigHistory = {
      key: body.key,
      versions: (body.versions ?? []).map((v) => {
        const e: ConfigHistoryEntry = { version: v.version, revision: v.revision, updatedAt: v.updated_at, event: v.event };
        if ('value' in v) e.value = v.value;
        if (v.encoding !== undefined) e.encoding = v.encoding;
        if (v.restored_version !== undefined) e.restoredVersion = v.restored_version;
        if (v.redacted === true) e.redacted = true;
        return e;
      }),
      more: body.more ?? false,
    };
    if (body.continue !== undefined) out.continue = body.continue;
    if (body.compact_revision !== undefined) out.compactRevision = body.compact_revision;
    return out;
  }

  /** Iterates over a config's whole history, newest first, page by page. @throws as {@link ConfigsClient.history}. */
  async *historyAll(key: string, opts: { pageSize?: number; signal?: AbortSignal } = {}): AsyncGenerator<ConfigHistoryEntry> {
    let token: string | undefined;
    do {
      const page = await this.history(key, { limit: opts.pageSize, continue: token, signal: opts.signal });
      yield* page.versions;
      token = page.more ? page.continue : undefined;
    } while (token !== undefined);
  }

  /**
   * Compares two versions; `to` defaults to the latest and `from` to the version before `to`.
   * @throws NotFoundError when either version does not exist; CompactedError when it was compacted.
   */
  async diff(key: string, opts: { from?: ConfigVersionRef; to?: ConfigVersionRef; signal?: AbortSignal } = {}): Promise<ConfigDiff> {
    const { body } = await this.http.request<ConfigDiff>('GET', path(key, '/diff'), {
      query: {
        from: opts.from === undefined ? undefined : configVersion(opts.from),
        to: opts.to === undefined ? undefined : configVersion(opts.to),
      },
      signal: opts.signal,
    });
    const out: ConfigDiff = { key: body.key, from: body.from, to: body.to, format: body.format, changes: Array.isArray(body.changes) ? body.changes : [] };
    if (body.unified !== undefined) out.unified = body.unified;
    return out;
  }

  /**
   * Writes `version`'s value again as a new version; with `expectVersion`, only if the config is
   * still at that version.
   * @throws NotFoundError when the key or version does not exist; ConflictError when another write got there first.
   */
  async rollback(key: string, version: ConfigVersionRef, opts: { expectVersion?: ConfigVersionRef; signal?: AbortSignal } = {}): Promise<ConfigRollback> {
    const req: Record<string, string> = { version: configVersion(version) };
    if (opts.expectVersion !== undefined) req.expectedVersion = configVersion(opts.expectVersion);
    const { body } = await this.http.request<{
      key: string;
      from_version: string;
      to_version: string;
      restored_version: string;
      revision: number;
      updated_at?: string;
    }>('POST', path(key, '/rollback'), { body: req, signal: opts.signal });
    const out: ConfigRollback = {
      key: body.key,
      fromVersion: body.from_version,
      toVersion: body.to_version,
      restoredVersion: body.restored_version,
      revision: body.revision,
    };
    if (body.updated_at !== undefined) out.updatedAt = body.updated_at;
    return out;
  }
}
