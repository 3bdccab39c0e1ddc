/**
 * Authorisation in one place: a pure `authorize(principal, action, range)` over roles that grant
 * read / write / admin on key prefixes (DESIGN.md §5; the seeds' RBAC Admin/Developer/Viewer).
 */
import { compareKeys, isCanonicalRange, isSystemKey, prefixEnd } from '../kv/index.js';

/** What a request wants to do. `read_secret` reads a secret value in clear; `admin` is user/role/cluster administration. */
export type Action = 'read' | 'write' | 'read_secret' | 'admin';

/** Access a role grants on a prefix: `read` < `write` < `admin` (admin adds secrets and namespace policy). */
export type Access = 'read' | 'write' | 'admin';

/** One grant: `access` on every key that starts with `prefix` (`""` is every key). */
export interface Permission {
  prefix: string;
  access: Access;
}

/** A named set of grants. `global` marks the built-in admin, who may also manage users, roles and the cluster. */
export interface Role {
  name: string;
  permissions: Permission[];
  /** May read secrets under the role's prefixes (built-in: admin, developer). */
  secrets?: boolean;
  /** Cluster and identity administration (users, roles, API keys, compaction, snapshots, audit). */
  global?: boolean;
  builtin?: boolean;
}

/** Who is calling. `roles` are role names; `via` says how the identity was proven. */
export interface Principal {
  name: string;
  roles: string[];
  via: 'password' | 'token' | 'apikey' | 'oidc' | 'mtls' | 'dev' | 'peer';
  /** For `apikey`: the key's id; for `token`: the user's uid. A long-lived connection tells from it when the key is revoked or the user replaced. */
  credentialId?: string;
  /**
   * When the credential stops being valid, ms since the epoch (an access token's `exp`); absent
   * for credentials checked against the identity store instead (API keys, passwords). Long-lived
   * connections (RESP) end their authentication at this time.
   */
  expiresAt?: number;
}

/**
 * The reserved key that metrics permissions are granted on (issue 12, docs/security.md): `read`
 * on it lets a principal query metrics (the Prometheus API), `write` lets it push samples. Any
 * permission whose prefix covers it grants it, so the built-in roles keep their meaning (viewer
 * queries, developer and admin push and query); a service's API key gets only this with a role
 * such as `{"prefix": "@metrics", "access": "write"}`.
 */
export const METRICS_RESOURCE_KEY = '@metrics';

/**
 * The reserved key that alerting permissions are granted on (issue 13, docs/security.md): `read`
 * lets a principal see rules, alerts, silences and notification history; `write` lets it change
 * rule files and create or expire silences. Any grant whose prefix covers it counts.
 */
export const ALERTS_RESOURCE_KEY = '@alerts';

/** The reserved key of dashboards (issue 13): `read` to view them, `write` to store or remove one. */
export const DASHBOARDS_RESOURCE_KEY = '@dashboards';

/** The built-in roles from the seeds: admin (everything), developer (read/write keys, secrets, no administration), viewer (read, no secrets). */
export const BUILTIN_ROLES: readonly Role[] = [
  { name: 'admin', permissions: [{ prefix: '', access: 'admin' }], secrets: true, global: true, builtin: true },
  { name: 'developer', permissions: [{ prefix: '', access: 'write' }], secrets: true, builtin: true },
  { name: 'viewer', permissions: [{ prefix: '', access: 'read' }], secrets: false, builtin: true },
];

const RANK: Record<Access, number> = { read: 1, write: 2, admin: 3 };

/** A key range `[key, rangeEnd)`: rangeEnd undefined = the single key, null = unbounded. */
export interface Resource {
  key: string;
  rangeEnd?: string | null;
}

/** True when every key of `r` starts with `prefix`. */
export function rangeWithinPrefix(r: Resource, prefix: string): boolean {
  if (prefix === '') return true;
  if (!r.key.startsWith(prefix)) return false;
  if (r.rangeEnd === undefined) return true;
  if (r.rangeEnd === null) return false;
  const end = prefixEnd(prefix);
  return end === null || compareKeys(r.rangeEnd, end) <= 0;
}

/**
 * Decides whether `principal` may do `action` on `resource` (a key or range; omitted for global
 * actions). A range is allowed only when one grant covers all of it, so a prefix read can never
 * reach past what a role grants. Unknown role names grant nothing. System keys (U+0000…) are
 * refused to everyone, even in `--dev` mode: they hold password hashes and API key hashes.
 */
export function authorize(principal: Principal, action: Action, resource: Resource | undefined, roles: ReadonlyMap<string, Role>): boolean {
  if (resource !== undefined && isSystemKey(resource.key)) return false;
  // Only parseRange's canonical form is judged: a wire form such as rangeEnd "" or "\0" could mean
  // something else to the store or the watch hub (issue 9, finding 1), so it is refused.
  if (resource !== undefined && !isCanonicalRange(resource)) return false;
  if (principal.via === 'dev') return true;
  const held = principal.roles.map((n) => roles.get(n)).filter((r): r is Role => r !== undefined);
  if (action === 'admin' && resource === undefined) return held.some((r) => r.global === true);
  if (resource === undefined) return false;
  const need: Access = action === 'read' ? 'read' : action === 'write' ? 'write' : 'admin';
  for (const role of held) {
    for (const p of role.permissions) {
      if (!rangeWithinPrefix(resource, p.prefix)) continue;
      if (action === 'read_secret') {
        if (role.secrets === true || p.access === 'admin') return true;
        continue;
      }
      if (RANK[p.access] >= RANK[need]) return true;
    }
  }
  return false;
}

/**
 * The part of `[key, rangeEnd)` a principal may read is not a single range in general, so a
 * prefix read or watch over a wider range is answered per key: this says whether one key is readable.
 */
export function canReadKey(principal: Principal, key: string, roles: ReadonlyMap<string, Role>): boolean {
  return authorize(principal, 'read', { key }, roles);
}
