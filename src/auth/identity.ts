/**
 * Users, custom roles and API keys, stored as JSON under system keys (`"\u0000auth/users/<name>"`,
 * `"\u0000auth/roles/<name>"`, `"\u0000auth/apikeys/<id>"`) so they are versioned and reach every
 * node through the change feed. Each node keeps an in-memory copy refreshed by `store.subscribe`,
 * which makes the per-request checks (does the user still exist? what are its roles?) map lookups.
 */
import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { ConflictError, InvalidArgumentError, NotFoundError, PermissionDeniedError } from '../errors.js';
import { SYSTEM_PREFIX, prefixEnd, validateKey, type RevisionEvents, type Store } from '../kv/index.js';
import { BUILTIN_ROLES, type Access, type Permission, type Role } from './authorize.js';
import { hashPassword, validatePassword, verifyPassword } from './password.js';

/** The system-key prefix of everything this module stores. */
export const AUTH_KEY_PREFIX = `${SYSTEM_PREFIX}auth/`;
const USERS = `${AUTH_KEY_PREFIX}users/`;
const ROLES = `${AUTH_KEY_PREFIX}roles/`;
const APIKEYS = `${AUTH_KEY_PREFIX}apikeys/`;

/** User and role names: 1-64 letters, digits, `.`, `_`, `-`, `@`. */
const NAME = /^[A-Za-z0-9._@-]{1,64}$/;
/** The prefix of every API key, so leaked keys are easy to grep for (as GitHub's `ghp_`). */
export const API_KEY_PREFIX = 'bk_';
const API_KEY = /^bk_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;
/** The most permissions one role may hold. */
export const MAX_PERMISSIONS = 256;

/** A user as stored. `uid` changes when a user is deleted and re-created, which voids old tokens. */
export interface UserRecord {
  name: string;
  uid: string;
  roles: string[];
  passwordHash: string;
  disabled?: boolean;
  /** ms since the epoch. */
  createdAt: number;
  updatedAt: number;
}

/** A user as the API shows it (never the hash). */
export interface UserView {
  name: string;
  roles: string[];
  disabled: boolean;
  createdAt: string;
  updatedAt: string;
}

/** A custom role as stored. */
export interface RoleRecord extends Role {
  createdAt: number;
  updatedAt: number;
}

/** An API key as stored: only the SHA-256 of its secret part. */
export interface ApiKeyRecord {
  id: string;
  name: string;
  roles: string[];
  /** Hex SHA-256 of the secret part (the key is 256 random bits, so a slow hash adds nothing). */
  hash: string;
  createdAt: number;
  createdBy: string;
  /** ms since the epoch, or null for no expiry. */
  expiresAt: number | null;
}

/** An API key as the API lists it (never the hash). */
export interface ApiKeyView {
  id: string;
  name: string;
  roles: string[];
  createdAt: string;
  createdBy: string;
  expiresAt: string | null;
}

/** Converts a stored user to its public form. */
export function userView(u: UserRecord): UserView {
  return { name: u.name, roles: u.roles, disabled: u.disabled === true, createdAt: new Date(u.createdAt).toISOString(), updatedAt: new Date(u.updatedAt).toISOString() };
}

/** Converts a stored API key to its public form. */
export function apiKeyView(k: ApiKeyRecord): ApiKeyView {
  return {
    id: k.id,
    name: k.name,
    roles: k.roles,
    createdAt: new Date(k.createdAt).toISOString(),
    createdBy: k.createdBy,
    expiresAt: k.expiresAt === null ? null : new Date(k.expiresAt).toISOString(),
  };
}

/** Checks a user, role or API key name. @throws InvalidArgumentError. */
export function validateName(name: unknown, what: string): string {
  if (typeof name !== 'string' || !NAME.test(name)) {
    throw new InvalidArgumentError(`${what} must be 1-64 letters, digits, '.', '_', '-' or '@'`, { field: what });
  }
  return name;
}

/**
 * Checks a role definition's permissions: each `{prefix, access}` with a key prefix (`""` for
 * every key) and access `read`, `write` or `admin`.
 * @throws InvalidArgumentError naming the bad entry.
 */
export function validatePermissions(raw: unknown): Permission[] {
  if (!Array.isArray(raw)) throw new InvalidArgumentError("'permissions' must be an array of {\"prefix\", \"access\"}", { field: 'permissions' });
  if (raw.length > MAX_PERMISSIONS) throw new InvalidArgumentError(`a role may hold at most ${MAX_PERMISSIONS} permissions`, { field: 'permissions' });
  return raw.map((p: unknown, i) => {
    const where = `permissions[${i}]`;
    if (p === null || typeof p !== 'object' || Array.isArray(p)) throw new InvalidArgumentError(`${where} must be an object`, { field: where });
    const o = p as Record<string, unknown>;
    for (const k of Object.keys(o)) {
      if (k !== 'prefix' && k !== 'access') throw new InvalidArgumentError(`unknown field '${k}' in ${where}; allowed: prefix, access`, { field: where });
    }
    if (typeof o.prefix !== 'string') throw new InvalidArgumentError(`${where}.prefix must be a string ("" for every key)`, { field: where });
    if (o.prefix !== '') validateKey(o.prefix, `${where}.prefix`);
    if (o.access !== 'read' && o.access !== 'write' && o.access !== 'admin') {
      throw new InvalidArgumentError(`${where}.access must be read, write or admin`, { field: where });
    }
    return { prefix: o.prefix, access: o.access as Access };
  });
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

function parseJson<T>(value: Uint8Array): T | undefined {
  try {
    return JSON.parse(Buffer.from(value).toString('utf8')) as T;
  } catch {
    return undefined;
  }
}

/**
 * The identity store of one node. Writes go through the kv core (conditional txns, so two
 * nodes creating the same user cannot both win); reads come from memory.
 */
export class IdentityStore {
  private readonly users = new Map<string, UserRecord>();
  private readonly customRoles = new Map<string, RoleRecord>();
  private readonly apiKeys = new Map<string, ApiKeyRecord>();
  private roleMap: ReadonlyMap<string, Role> = new Map();
  /** Presented API keys that verified, with the record they matched. */
  private readonly verifiedKeys = new Map<string, ApiKeyRecord>();
  private unsubscribe: (() => void) | undefined;
  private gen = 0;

  constructor(private readonly store: Store) {
    this.rebuildRoles();
  }

  /** Loads every record and follows changes, including those made on other nodes. */
  start(): void {
    for (const kv of this.store.rangeLatest(AUTH_KEY_PREFIX, prefixEnd(AUTH_KEY_PREFIX)).kvs) this.apply(kv.key, kv.value);
    this.rebuildRoles();
    this.unsubscribe = this.store.subscribe((rev) => this.onCommit(rev));
  }

  /** Stops following the store. */
  stop(): void {
    this.unsubscribe?.();
  }

  private onCommit(rev: RevisionEvents): void {
    for (const ev of rev.events) {
      if (ev.kv.key.startsWith(AUTH_KEY_PREFIX)) this.apply(ev.kv.key, ev.type === 'put' ? ev.kv.value : undefined);
    }
  }

  /**
   * A counter bumped on every change of a user, role or API key (local or from another node),
   * before any watcher sees a later revision. Long-lived connections compare it on each event and
   * re-check their access only when it moved, so the hot path is one integer comparison.
   */
  get generation(): number {
    return this.gen;
  }

  private apply(key: string, value: Uint8Array | undefined): void {
    this.gen++;
    const table: [string, Map<string, unknown>][] = [
      [USERS, this.users],
      [ROLES, this.customRoles],
      [APIKEYS, this.apiKeys],
    ];
    for (const [prefix, map] of table) {
      if (!key.startsWith(prefix)) continue;
      const name = key.slice(prefix.length);
      const rec = value === undefined ? undefined : parseJson<unknown>(value);
      if (rec === undefined) map.delete(name);
      else map.set(name, rec);
      if (prefix === ROLES) this.rebuildRoles();
      return;
    }
  }

  private rebuildRoles(): void {
    const m = new Map<string, Role>();
    for (const r of BUILTIN_ROLES) m.set(r.name, r);
    for (const r of this.customRoles.values()) if (!m.has(r.name)) m.set(r.name, { name: r.name, permissions: r.permissions, secrets: r.secrets === true });
    this.roleMap = m;
  }

  /** Every role by name (built-in and custom), for {@link authorize}. */
  get roles(): ReadonlyMap<string, Role> {
    return this.roleMap;
  }

  // --- users ---------------------------------------------------------------------------------

  /** The user called `name`, if any. */
  user(name: string): UserRecord | undefined {
    return this.users.get(name);
  }

  /** Every user, by name. */
  listUsers(): UserRecord[] {
    return [...this.users.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /** True when at least one user exists (the bootstrap has happened). */
  get hasUsers(): boolean {
    return this.users.size > 0;
  }

  private checkRoles(roles: unknown): string[] {
    if (!Array.isArray(roles) || roles.some((r) => typeof r !== 'string')) {
      throw new InvalidArgumentError("'roles' must be an array of role names", { field: 'roles' });
    }
    const unknown = (roles as string[]).filter((r) => !this.roleMap.has(r));
    if (unknown.length > 0) throw new InvalidArgumentError(`unknown role(s): ${unknown.join(', ')}`, { field: 'roles', unknown });
    return [...new Set(roles as string[])];
  }

  /**
   * Creates a user with a scrypt-hashed password.
   * @throws ConflictError when the name is taken; InvalidArgumentError for a bad name, password or role.
   */
  async createUser(name: string, password: string, roles: unknown): Promise<UserRecord> {
    validateName(name, 'user name');
    validatePassword(password);
    const checked = this.checkRoles(roles);
    const now = Date.now();
    const rec: UserRecord = { name, uid: randomUUID(), roles: checked, passwordHash: await hashPassword(password), createdAt: now, updatedAt: now };
    const res = await this.store.txn({
      compare: [{ key: USERS + name, target: 'createRevision', result: '=', operand: 0 }],
      success: [{ type: 'put', key: USERS + name, value: Buffer.from(JSON.stringify(rec)) }],
      failure: [],
    });
    if (!res.succeeded) throw new ConflictError(`user '${name}' already exists`, { user: name });
    return rec;
  }

  /**
   * Changes a user's password, roles or disabled flag (conditional on the record not having
   * changed meanwhile).
   * @throws NotFoundError for an unknown user; ConflictError on a concurrent change.
   */
  async updateUser(name: string, change: { password?: string; roles?: unknown; disabled?: boolean }): Promise<UserRecord> {
    const cur = this.users.get(name);
    const kv = this.store.get(USERS + name);
    if (cur === undefined || kv === undefined) throw new NotFoundError(`user '${name}' not found`, { user: name });
    const next: UserRecord = { ...cur, updatedAt: Date.now() };
    if (change.roles !== undefined) next.roles = this.checkRoles(change.roles);
    if (change.disabled !== undefined) next.disabled = change.disabled;
    if (change.password !== undefined) next.passwordHash = await hashPassword(validatePassword(change.password));
    const res = await this.store.txn({
      compare: [{ key: USERS + name, target: 'modRevision', result: '=', operand: kv.modRevision }],
      success: [{ type: 'put', key: USERS + name, value: Buffer.from(JSON.stringify(next)) }],
      failure: [],
    });
    if (!res.succeeded) throw new ConflictError(`user '${name}' changed meanwhile; retry`, { user: name });
    return next;
  }

  /** Deletes a user; its tokens stop working at once. @throws NotFoundError for an unknown user. */
  async deleteUser(name: string): Promise<void> {
    const res = await this.store.deleteRange(USERS + name, undefined);
    if (res.deleted === 0) throw new NotFoundError(`user '${name}' not found`, { user: name });
  }

  /**
   * Checks a username and password; resolves with the user when both match and the user is
   * enabled. Takes the same time whether or not the user exists.
   */
  async verifyLogin(name: string, password: string): Promise<UserRecord | undefined> {
    const u = typeof name === 'string' ? this.users.get(name) : undefined;
    const ok = await verifyPassword(password, u?.passwordHash);
    return ok && u !== undefined && u.disabled !== true ? u : undefined;
  }

  /**
   * Creates the first administrator when no user exists yet. Only one node of a cluster wins
   * (the create is conditional), so only that one reports `created`.
   */
  async bootstrapAdmin(password: string): Promise<boolean> {
    if (this.users.size > 0) return false;
    try {
      await this.createUser('admin', password, ['admin']);
      return true;
    } catch (err) {
      if (err instanceof ConflictError) return false;
      throw err;
    }
  }

  // --- roles ---------------------------------------------------------------------------------

  /** A role by name (built-in or custom). @throws NotFoundError. */
  role(name: string): Role {
    const r = this.roleMap.get(name);
    if (r === undefined) throw new NotFoundError(`role '${name}' not found`, { role: name });
    return r;
  }

  /** Every role, built-in first. */
  listRoles(): Role[] {
    return [...this.roleMap.values()];
  }

  /**
   * Creates or replaces a custom role.
   * @throws PermissionDeniedError for a built-in role name; InvalidArgumentError for bad permissions.
   */
  async putRole(name: string, body: { permissions: unknown; secrets?: unknown }): Promise<{ role: Role; created: boolean }> {
    validateName(name, 'role name');
    if (BUILTIN_ROLES.some((r) => r.name === name)) throw new PermissionDeniedError(`role '${name}' is built in and cannot be changed`, { role: name });
    const permissions = validatePermissions(body.permissions);
    if (body.secrets !== undefined && typeof body.secrets !== 'boolean') throw new InvalidArgumentError("'secrets' must be true or false", { field: 'secrets' });
    const prev = this.customRoles.get(name);
    const now = Date.now();
    const rec: RoleRecord = { name, permissions, secrets: body.secrets === true, createdAt: prev?.createdAt ?? now, updatedAt: now };
    await this.store.put(ROLES + name, Buffer.from(JSON.stringify(rec)));
    return { role: this.role(name), created: prev === undefined };
  }

  /**
   * Deletes a custom role that no user or API key holds.
   * @throws PermissionDeniedError for a built-in role; NotFoundError; ConflictError while in use.
   */
  async deleteRole(name: string): Promise<void> {
    if (BUILTIN_ROLES.some((r) => r.name === name)) throw new PermissionDeniedError(`role '${name}' is built in and cannot be deleted`, { role: name });
    if (!this.customRoles.has(name)) throw new NotFoundError(`role '${name}' not found`, { role: name });
    const users = [...this.users.values()].filter((u) => u.roles.includes(name)).map((u) => u.name);
    const keys = [...this.apiKeys.values()].filter((k) => k.roles.includes(name)).map((k) => k.id);
    if (users.length > 0 || keys.length > 0) {
      throw new ConflictError(`role '${name}' is still held by ${users.length} user(s) and ${keys.length} API key(s); take it away first`, {
        role: name,
        users,
        apiKeys: keys,
      });
    }
    await this.store.deleteRange(ROLES + name, undefined);
  }

  // --- API keys ------------------------------------------------------------------------------

  /**
   * Creates an API key. The returned `key` (`bk_<id>_<secret>`) is shown once: only the hash
   * of its secret is stored.
   * @throws InvalidArgumentError for a bad name, role or expiry.
   */
  async createApiKey(o: { name: string; roles: unknown; expiresAt?: number | null; createdBy: string }): Promise<{ record: ApiKeyRecord; key: string }> {
    validateName(o.name, 'API key name');
    const roles = this.checkRoles(o.roles);
    if (o.expiresAt !== undefined && o.expiresAt !== null && (!Number.isSafeInteger(o.expiresAt) || o.expiresAt <= Date.now())) {
      throw new InvalidArgumentError("'expiresAt' must be in the future", { field: 'expiresAt' });
    }
    const id = randomBytes(8).toString('hex');
    const secret = randomBytes(32).toString('base64url');
    const record: ApiKeyRecord = {
      id,
      name: o.name,
      roles,
      hash: sha256(secret).toString('hex'),
      createdAt: Date.now(),
      createdBy: o.createdBy,
      expiresAt: o.expiresAt ?? null,
    };
    await this.store.put(APIKEYS + id, Buffer.from(JSON.stringify(record)));
    return { record, key: `${API_KEY_PREFIX}${id}_${secret}` };
  }

  /** The API key with id `id`, if it exists. */
  apiKey(id: string): ApiKeyRecord | undefined {
    return this.apiKeys.get(id);
  }

  /** Every API key (without secrets). */
  listApiKeys(): ApiKeyRecord[] {
    return [...this.apiKeys.values()].sort((a, b) => a.createdAt - b.createdAt);
  }

  /** Revokes an API key at once. @throws NotFoundError. */
  async revokeApiKey(id: string): Promise<ApiKeyRecord> {
    const rec = this.apiKeys.get(id);
    if (rec === undefined || !/^[0-9a-f]{16}$/.test(id)) throw new NotFoundError(`API key '${id}' not found`, { id });
    await this.store.deleteRange(APIKEYS + id, undefined);
    return rec;
  }

  /**
   * The live, unexpired API key that `presented` is, or undefined (compared in constant time).
   * A key that verified once is remembered with the record it matched; the entry counts only
   * while that very record is still stored, so a revoked or replaced key fails at once.
   */
  verifyApiKey(presented: string, now = Date.now()): ApiKeyRecord | undefined {
    let rec = this.verifiedKeys.get(presented);
    if (rec === undefined || this.apiKeys.get(rec.id) !== rec) {
      rec = undefined;
      const m = API_KEY.exec(presented);
      if (m === null) return undefined;
      const found = this.apiKeys.get(m[1] as string);
      if (found === undefined) return undefined;
      const given = sha256(m[2] as string);
      const stored = Buffer.from(found.hash, 'hex');
      if (stored.length !== given.length || !timingSafeEqual(given, stored)) return undefined;
      rec = found;
      if (this.verifiedKeys.size >= 10_000) this.verifiedKeys.clear();
      this.verifiedKeys.set(presented, rec);
    }
    if (rec.expiresAt !== null && rec.expiresAt <= now) return undefined;
    return rec;
  }
}

/** True when `text` looks like a Beacon API key (for routing a bearer credential). */
export function looksLikeApiKey(text: string): boolean {
  return text.startsWith(API_KEY_PREFIX);
}

/** `"\u0000auth/users/"` etc., exported for tests that check nothing leaks from them. */
export const SYSTEM_KEYS = { USERS, ROLES, APIKEYS } as const;
