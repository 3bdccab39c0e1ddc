/**
 * `AdminClient`: the governance and monitoring APIs the web console uses beyond keys, configs,
 * alerts and dashboards (`client.alerts`, `client.dashboards`) — who am I, users, roles, API keys,
 * the audit log, namespace policies, key-range listings with an explicit end, lock and election
 * state, and the Prometheus query API.
 * Thin typed wrappers over {@link HttpTransport}: every method throws the server's typed errors
 * (`PermissionDeniedError`, `NotFoundError` …) like the rest of the SDK. See docs/api.md for the
 * routes and docs/console.md for how the console uses them.
 */
import type { HttpTransport } from './transport.js';
import { kvFromWire, type KeyValue, type KeyValueWire } from './types.js';
import { encodeKeyPath } from './values.js';

/** `GET /v1/auth/whoami`: the caller's name and roles; `dev` when the node runs with `--dev`. */
export interface WhoAmI {
  name: string;
  roles: string[];
  via: string;
  dev: boolean;
}

/** One grant of a role: `access` (read, write or admin) on every key under `prefix`. */
export interface Permission {
  prefix: string;
  access: 'read' | 'write' | 'admin';
}

/** A role: its grants and whether it may read secret values in the clear. */
export interface RoleInfo {
  name: string;
  permissions: Permission[];
  secrets: boolean;
  builtin: boolean;
}

/** A user as the server shows it (never a password hash). */
export interface UserInfo {
  name: string;
  roles: string[];
  disabled?: boolean;
  createdAt?: string;
  [field: string]: unknown;
}

/** An API key's record; `key` (the secret) only in the answer that created it. */
export interface ApiKeyInfo {
  id: string;
  name: string;
  roles: string[];
  createdAt?: string;
  expiresAt?: string | null;
  createdBy?: string;
  key?: string;
  [field: string]: unknown;
}

/** One audit record (`GET /v1/audit`). */
export interface AuditRecord {
  id: number;
  /** ISO 8601. */
  time: string;
  principal: string;
  action: string;
  outcome: 'ok' | 'denied' | 'failed';
  key: string | null;
  oldVersion?: number | null;
  newVersion?: number | null;
  requestId?: string;
  source?: string;
  details?: unknown;
  [field: string]: unknown;
}

/** Filters of {@link AdminClient.audit}; times are ISO 8601. `key` matches a key prefix. */
export interface AuditFilter {
  from?: string;
  to?: string;
  principal?: string;
  action?: string;
  key?: string;
  outcome?: 'ok' | 'denied' | 'failed';
  /** Oldest first: only records after this id (the previous page's `next`). */
  after?: number;
  /** Newest first: only records before this id (the previous page's `next`). */
  before?: number;
  /** `asc` (default): oldest first; `desc`: newest first. */
  order?: 'asc' | 'desc';
  limit?: number;
}

/** A namespace policy (docs/security.md, docs/configs.md); unknown fields are kept. */
export interface NamespaceInfo {
  prefix: string;
  format?: 'text' | 'json';
  schema?: Record<string, unknown> | boolean;
  secret?: boolean;
  historyRetention?: { versions?: number; days?: number };
  defaultTtl?: number;
  description?: string;
  storage?: 'memory' | 'durable';
  updatedAt?: string;
  updatedBy?: string;
  [field: string]: unknown;
}

/** One page of {@link AdminClient.listRange}; `continue` fetches the next page of the same range. */
export interface RangePage {
  revision: number;
  kvs: KeyValue[];
  count: number;
  more: boolean;
  continue?: string;
}

/** The holder and waiters of a lock (`GET /v1/locks/{name}`), as the server reports them. */
export interface LockStateWire {
  holder: (KeyValueWire & { fencingToken?: number }) | null;
  waiters: KeyValueWire[];
  revision: number;
  [field: string]: unknown;
}

/** A Prometheus HTTP API answer (`/api/v1/query`, `/api/v1/query_range`). */
export interface PromResponse {
  status: 'success' | 'error';
  data?: { resultType: 'matrix' | 'vector' | 'scalar' | 'string'; result: unknown };
  errorType?: string;
  error?: string;
  warnings?: string[];
}

/** The administration and metrics calls of the console; build it from a client's transport. */
export class AdminClient {
  constructor(private readonly http: HttpTransport) {}

  private async get<T>(path: string, query?: Record<string, string | number | boolean | undefined>, signal?: AbortSignal): Promise<T> {
    return (await this.http.request<T>('GET', path, { query, signal })).body;
  }

  private async send<T>(method: string, path: string, body?: unknown): Promise<T> {
    return (await this.http.request<T>(method, path, { body })).body;
  }

  /** The caller: name, roles, and whether the node runs in `--dev` mode. */
  whoami(signal?: AbortSignal): Promise<WhoAmI> {
    return this.get('/v1/auth/whoami', undefined, signal);
  }

  /** Every role (built-in and custom). */
  async roles(signal?: AbortSignal): Promise<RoleInfo[]> {
    return (await this.get<{ roles: RoleInfo[] }>('/v1/roles', undefined, signal)).roles;
  }

  /** Creates or replaces a custom role. @throws InvalidArgumentError for a bad grant; PermissionDeniedError for non-admins. */
  putRole(name: string, role: { permissions: Permission[]; secrets?: boolean }): Promise<RoleInfo> {
    return this.send('PUT', `/v1/roles/${encodeURIComponent(name)}`, role);
  }

  /** Deletes a custom role. */
  deleteRole(name: string): Promise<unknown> {
    return this.send('DELETE', `/v1/roles/${encodeURIComponent(name)}`);
  }

  /** Every user (administrators only). */
  async users(signal?: AbortSignal): Promise<UserInfo[]> {
    return (await this.get<{ users: UserInfo[] }>('/v1/users', undefined, signal)).users;
  }

  /** Creates a user. @throws ConflictError when the name is taken. */
  createUser(user: { name: string; password: string; roles: string[] }): Promise<UserInfo> {
    return this.send('POST', '/v1/users', user);
  }

  /** Changes a user's roles, disabled flag or password. */
  updateUser(name: string, patch: { roles?: string[]; disabled?: boolean; password?: string }): Promise<UserInfo> {
    return this.send('PATCH', `/v1/users/${encodeURIComponent(name)}`, patch);
  }

  /** Deletes a user. @throws ConflictError for the last administrator. */
  deleteUser(name: string): Promise<unknown> {
    return this.send('DELETE', `/v1/users/${encodeURIComponent(name)}`);
  }

  /** Every API key's record (never the keys themselves). */
  async apiKeys(signal?: AbortSignal): Promise<ApiKeyInfo[]> {
    return (await this.get<{ apiKeys: ApiKeyInfo[] }>('/v1/apikeys', undefined, signal)).apiKeys;
  }

  /** Creates an API key; the answer's `key` is shown this once (only its hash is stored). */
  createApiKey(spec: { name: string; roles: string[]; expiresAt?: string }): Promise<ApiKeyInfo & { key: string }> {
    return this.send('POST', '/v1/apikeys', spec);
  }

  /** Revokes an API key. */
  revokeApiKey(id: string): Promise<unknown> {
    return this.send('DELETE', `/v1/apikeys/${encodeURIComponent(id)}`);
  }

  /** One page of audit records, newest first; `next` is the `after` of the next page. */
  audit(filter: AuditFilter = {}, signal?: AbortSignal): Promise<{ records: AuditRecord[]; more: boolean; next?: number }> {
    return this.get('/v1/audit', { ...filter }, signal);
  }

  /** The namespace policies the caller may read. */
  async namespaces(signal?: AbortSignal): Promise<NamespaceInfo[]> {
    return (await this.get<{ namespaces: NamespaceInfo[] }>('/v1/namespaces', undefined, signal)).namespaces;
  }

  /** Stores (replaces) the policy of `prefix`. @throws InvalidArgumentError naming the bad field. */
  putNamespace(prefix: string, policy: Omit<NamespaceInfo, 'prefix'>): Promise<NamespaceInfo> {
    return this.send('PUT', `/v1/namespaces/${encodeKeyPath(prefix)}`, policy);
  }

  /** Removes the policy of `prefix` (its keys stay). */
  deleteNamespace(prefix: string): Promise<unknown> {
    return this.send('DELETE', `/v1/namespaces/${encodeKeyPath(prefix)}`);
  }

  /**
   * One page of the keys in `[key, rangeEnd)` in byte order (`rangeEnd` `"\0"`: every key from
   * `key` on), up to `limit` keys; with `countOnly`, only `count`. The console's key tree walks
   * folders with it, skipping over a sub-folder's keys in one step.
   */
  async listRange(
    key: string,
    rangeEnd: string,
    opts: { limit?: number; keysOnly?: boolean; countOnly?: boolean; continue?: string; signal?: AbortSignal } = {},
  ): Promise<RangePage> {
    const path = key === '' ? '/v1/kv' : `/v1/kv/${encodeKeyPath(key)}`;
    const body = await this.get<{ revision: number; kvs: KeyValueWire[]; count: number; more: boolean; continue?: string }>(
      path,
      { rangeEnd, limit: opts.limit || undefined, keysOnly: opts.keysOnly, countOnly: opts.countOnly, continue: opts.continue },
      opts.signal,
    );
    const page: RangePage = { revision: body.revision, kvs: body.kvs.map(kvFromWire), count: body.count, more: body.more };
    if (body.continue !== undefined) page.continue = body.continue;
    return page;
  }

  /** The holder (with its fencing token) and queue of lock `name`. */
  lock(name: string, signal?: AbortSignal): Promise<LockStateWire> {
    return this.get(`/v1/locks/${encodeKeyPath(name)}`, undefined, signal);
  }

  /** The candidates of election `name` in campaign order (the first is the leader); keys only. */
  async electionCandidates(name: string, signal?: AbortSignal): Promise<KeyValue[]> {
    const body = await this.get<{ candidates: KeyValueWire[] }>(`/v1/elections/${encodeKeyPath(name)}/candidates`, undefined, signal);
    return body.candidates.map(kvFromWire);
  }

  /** A PromQL instant query at `time` (seconds since the epoch; default now). */
  query(expr: string, time?: number, signal?: AbortSignal): Promise<PromResponse> {
    return this.get('/api/v1/query', { query: expr, time }, signal);
  }

  /** A PromQL range query over `[start, end]` (seconds) every `step` seconds. */
  queryRange(expr: string, start: number, end: number, step: number, signal?: AbortSignal): Promise<PromResponse> {
    return this.get('/api/v1/query_range', { query: expr, start, end, step }, signal);
  }
}
