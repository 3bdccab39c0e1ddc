/**
 * Authentication and authorisation of one node: turns a credential (Beacon token, OIDC token,
 * API key, client certificate) into a {@link Principal}, issues tokens for a username and
 * password, applies rate limits, and answers authorisation questions through {@link authorize}.
 */
import { timingSafeEqual } from 'node:crypto';
import type { AuditLog } from '../audit/index.js';
import { InvalidArgumentError, PermissionDeniedError, UnauthenticatedError } from '../errors.js';
import { isSystemKey } from '../kv/index.js';
import { authorize, type Access, type Action, type Principal, type Resource, type Role } from './authorize.js';
import { looksLikeApiKey, type IdentityStore } from './identity.js';
import type { OidcVerifier } from './oidc.js';
import { RateLimiter, type RateSpec } from './rate-limit.js';
import { passwordStamp, type TokenClaims, type TokenService } from './tokens.js';

/** The principal of every request in `--dev` mode. */
/** The name another node of the cluster acts under on a forwarding link ({@link AuthService.peer}); `:` is not allowed in user names. */
export const PEER_PRINCIPAL = 'beacon:node';

export const DEV_PRINCIPAL: Principal = Object.freeze({ name: 'dev', roles: ['admin'], via: 'dev' }) as Principal;

/** A credential as an adapter found it. Only one is used, in this order: bearer, API key header, access token, client certificate. */
export interface Credentials {
  /** The `Authorization` header as sent. */
  authorization?: string;
  /** An `x-api-key` header. */
  apiKey?: string;
  /** An `access_token` query parameter (browsers cannot set headers on WebSocket or EventSource). */
  accessToken?: string;
  /** The subject CN of a client certificate that the TLS layer verified against `--tls-client-ca`. */
  clientCertCn?: string;
}

/** Options of {@link AuthService}. */
export interface AuthServiceOptions {
  /** `--dev`: every request is the all-powerful `dev` principal. */
  dev: boolean;
  identity: IdentityStore;
  tokens: TokenService;
  oidc?: OidcVerifier;
  audit: AuditLog;
  /** Roles for client-certificate CNs (`--tls-client-role CN=role`); a CN that names a user gets that user's roles otherwise. */
  clientCertRoles?: Record<string, string[]>;
  /** Per-principal limit on every authenticated request; null or undefined for none. */
  rateLimit?: RateSpec | null;
  /** Per-source-address limit on `POST /v1/auth/token` (against password guessing); null for none. */
  loginRateLimit?: RateSpec | null;
  /** Whether `/metrics` answers without credentials (`--metrics-public`). */
  metricsPublic?: boolean;
}

/** Where a request came from, for the audit log. */
export interface RequestOrigin {
  requestId?: string;
  source?: string;
}

/** The per-address login cap is this many times the per-(address, username) `--auth-rate-limit`. */
export const LOGIN_ADDRESS_FACTOR = 10;

/**
 * The node's authentication and authorisation. Every check reads in-memory state (the identity
 * cache and the token cache), so a request costs a few map lookups once its token was seen.
 */
export class AuthService {
  readonly dev: boolean;
  readonly identity: IdentityStore;
  readonly tokens: TokenService;
  readonly oidc: OidcVerifier | undefined;
  readonly audit: AuditLog;
  readonly metricsPublic: boolean;
  readonly limiter: RateLimiter | undefined;
  /** Login attempts per (source address, username): guessing one name does not lock out another. */
  readonly loginLimiter: RateLimiter | undefined;
  /** Login attempts per source address, whatever the name: {@link LOGIN_ADDRESS_FACTOR} × the per-name spec. */
  readonly loginAddressLimiter: RateLimiter | undefined;
  private readonly clientCertRoles: Record<string, string[]>;

  constructor(o: AuthServiceOptions) {
    this.dev = o.dev;
    this.identity = o.identity;
    this.tokens = o.tokens;
    this.oidc = o.oidc;
    this.audit = o.audit;
    this.metricsPublic = o.metricsPublic === true;
    this.clientCertRoles = o.clientCertRoles ?? {};
    this.limiter = o.rateLimit ? new RateLimiter(o.rateLimit) : undefined;
    this.loginLimiter = o.loginRateLimit ? new RateLimiter(o.loginRateLimit) : undefined;
    this.loginAddressLimiter = o.loginRateLimit
      ? new RateLimiter({ rate: o.loginRateLimit.rate * LOGIN_ADDRESS_FACTOR, burst: o.loginRateLimit.burst * LOGIN_ADDRESS_FACTOR })
      : undefined;
  }

  /** False in `--dev` mode. */
  get enabled(): boolean {
    return !this.dev;
  }

  /** Every role by name, for {@link authorize}. */
  get roles(): ReadonlyMap<string, Role> {
    return this.identity.roles;
  }

  /**
   * Authenticates a request. In `--dev` mode everyone is {@link DEV_PRINCIPAL}. Answers
   * synchronously when it can (API keys, tokens seen before), so the read path awaits nothing.
   * @throws UnauthenticatedError (or rejects with it) when no credential is given or it is not
   * valid, never echoing it.
   */
  authenticate(c: Credentials): Principal | Promise<Principal> {
    if (this.dev) return DEV_PRINCIPAL;
    let bearer: string | undefined;
    if (c.authorization !== undefined) {
      const m = /^Bearer\s+(\S+)\s*$/i.exec(c.authorization);
      if (m === null) throw new UnauthenticatedError('the Authorization header must be "Bearer <token or API key>"', { reason: 'malformed' });
      bearer = m[1] as string;
    } else if (c.apiKey !== undefined) bearer = c.apiKey;
    else if (c.accessToken !== undefined) bearer = c.accessToken;
    if (bearer !== undefined) return this.fromBearer(bearer);
    if (c.clientCertCn !== undefined) return this.fromClientCert(c.clientCertCn);
    throw new UnauthenticatedError('authentication required: send "Authorization: Bearer <token>" (POST /v1/auth/token) or an API key', {
      reason: 'missing',
    });
  }

  private fromBearer(bearer: string): Principal | Promise<Principal> {
    if (looksLikeApiKey(bearer)) {
      const key = this.identity.verifyApiKey(bearer);
      if (key === undefined) throw new UnauthenticatedError('the API key is not valid (unknown, revoked or expired)', { reason: 'bad_api_key' });
      return { name: `apikey:${key.name}`, roles: key.roles, via: 'apikey', credentialId: key.id };
    }
    const seen = this.tokens.cached(bearer);
    if (seen !== undefined) return this.tokenPrincipal(seen);
    return this.verifyBearer(bearer);
  }

  private async verifyBearer(bearer: string): Promise<Principal> {
    if (this.oidc !== undefined && this.oidc.claims(bearer)) {
      const id = await this.oidc.verify(bearer);
      return { name: id.name, roles: id.roles, via: 'oidc' };
    }
    return this.tokenPrincipal(await this.tokens.verify(bearer));
  }

  private tokenPrincipal(claims: TokenClaims): Principal {
    const user = this.identity.user(claims.sub);
    // A deleted (or deleted and re-created) or disabled user's tokens stop working at once.
    if (user === undefined || user.uid !== claims.uid || user.disabled === true) {
      throw new UnauthenticatedError('the token belongs to a user that no longer exists or is disabled', { reason: 'unknown_user' });
    }
    return { name: user.name, roles: user.roles, via: 'token', credentialId: user.uid, expiresAt: claims.exp };
  }

  private fromClientCert(cn: string): Principal {
    const mapped = this.clientCertRoles[cn];
    if (mapped !== undefined) return { name: cn, roles: mapped, via: 'mtls' };
    const user = this.identity.user(cn);
    return { name: cn, roles: user !== undefined && user.disabled !== true ? user.roles : [], via: 'mtls' };
  }

  /**
   * Checks a username and password and issues a token. Every outcome is audited (the failure
   * names the user only if it exists, so a password typed into the user field is not stored).
   * @throws RateLimitedError (per source address and username, then per source address with a
   *   cap {@link LOGIN_ADDRESS_FACTOR} times higher); UnauthenticatedError for wrong credentials.
   */
  async login(
    username: unknown,
    password: unknown,
    origin: RequestOrigin,
  ): Promise<{ token: string; expiresAt: number; user: string; roles: string[]; refreshToken: string; refreshExpiresAt: number }> {
    if (typeof username !== 'string' || username === '') throw new InvalidArgumentError("'username' is required", { field: 'username' });
    if (typeof password !== 'string' || password === '') throw new InvalidArgumentError("'password' is required", { field: 'password' });
    const source = origin.source ?? 'unknown';
    // The name first: a guesser exhausts its own (address, name) bucket without spending the
    // address's, so a real user on the same address (or behind the same proxy) still logs in.
    this.loginLimiter?.check(`${source}\u0000${username}`);
    this.loginAddressLimiter?.check(source);
    const user = await this.identity.verifyLogin(username, password);
    if (user === undefined) {
      const known = this.identity.user(username) !== undefined;
      this.audit.note({
        principal: known ? username : 'unknown',
        action: 'auth.login',
        outcome: 'failed',
        requestId: origin.requestId ?? null,
        source: origin.source ?? null,
        details: JSON.stringify({ reason: known ? 'bad password or disabled' : 'unknown user' }),
      });
      throw new UnauthenticatedError('wrong username or password', { reason: 'bad_credentials' });
    }
    const { token, expiresAt } = await this.tokens.issue(user);
    const refresh = await this.tokens.issueRefresh(user, passwordStamp(user.passwordHash));
    this.audit.note({ principal: user.name, action: 'auth.login', outcome: 'ok', requestId: origin.requestId ?? null, source: origin.source ?? null });
    return { token, expiresAt, user: user.name, roles: user.roles, refreshToken: refresh.token, refreshExpiresAt: refresh.expiresAt };
  }

  /**
   * Trades a refresh token (from {@link login}) for a new access token, so a login lasts a working
   * session (`beacon login`) while bearer tokens stay short-lived. The user must still exist as
   * the same incarnation, be enabled, and have the password it logged in with; audited as
   * `auth.refresh`.
   * @throws InvalidArgumentError without a token; UnauthenticatedError when it is expired, forged,
   *   signed with a key this node does not hold, or the user changed.
   */
  async refreshLogin(refreshToken: unknown, origin: RequestOrigin): Promise<{ token: string; expiresAt: number; user: string; roles: string[] }> {
    if (typeof refreshToken !== 'string' || refreshToken === '') throw new InvalidArgumentError("'refreshToken' is required", { field: 'refreshToken' });
    const claims = await this.tokens.verifyRefresh(refreshToken);
    const user = this.identity.user(claims.sub);
    if (user === undefined || user.uid !== claims.uid || user.disabled === true || passwordStamp(user.passwordHash) !== claims.pws) {
      throw new UnauthenticatedError('the login session ended: the user was deleted, disabled or changed its password; log in again', { reason: 'unknown_user' });
    }
    const { token, expiresAt } = await this.tokens.issue(user);
    this.audit.note({ principal: user.name, action: 'auth.refresh', outcome: 'ok', requestId: origin.requestId ?? null, source: origin.source ?? null });
    return { token, expiresAt, user: user.name, roles: user.roles };
  }

  /**
   * The principal as it stands now, for connections that outlive a request (watches): current
   * roles of its user or API key, or undefined once the user is deleted or disabled or the API
   * key revoked. OIDC and client-certificate principals are returned as they are.
   */
  refresh(principal: Principal): Principal | undefined {
    switch (principal.via) {
      case 'token':
      case 'password': {
        const u = this.identity.user(principal.name);
        // A user deleted and created again under the same name is someone else (credentialId is the uid).
        if (u === undefined || u.disabled === true || (principal.credentialId !== undefined && u.uid !== principal.credentialId)) return undefined;
        return u.roles === principal.roles ? principal : { ...principal, roles: u.roles };
      }
      case 'apikey': {
        const k = principal.credentialId === undefined ? undefined : this.identity.apiKey(principal.credentialId);
        if (k === undefined || (k.expiresAt !== null && k.expiresAt <= Date.now())) return undefined;
        return k.roles === principal.roles ? principal : { ...principal, roles: k.roles };
      }
      case 'mtls': {
        // A CN mapped by --client-cert-roles keeps its roles; a CN that names a user follows that user.
        const fresh = this.fromClientCert(principal.name);
        return fresh.roles.length === principal.roles.length && fresh.roles.every((r, i) => r === principal.roles[i]) ? principal : fresh;
      }
      default:
        return principal;
    }
  }

  /**
   * The principal of another node of this cluster that forwards commands it already authorized
   * (the cache tier across nodes), when `secret` is one of {@link TokenService.peerSecrets}
   * (compared in constant time); undefined otherwise.
   */
  peer(secret: string): Principal | undefined {
    const given = Buffer.from(secret, 'utf8');
    let ok = false;
    for (const s of this.tokens.peerSecrets()) {
      const want = Buffer.from(s, 'utf8');
      if (want.length === given.length && timingSafeEqual(want, given)) ok = true;
    }
    return ok ? { name: PEER_PRINCIPAL, roles: ['admin'], via: 'peer' } : undefined;
  }

  /** The secret this node's RESP links to other nodes authenticate with ({@link peer}). */
  peerSecret(): string {
    return this.tokens.peerSecrets()[0] as string;
  }

  /** Applies the per-principal rate limit. @throws RateLimitedError with the seconds to wait. */
  checkRate(principal: Principal): void {
    this.limiter?.check(principal.name);
  }

  /** Whether `principal` may do `action` on `resource` (a key or range; omitted for cluster-wide actions). System keys are never reachable. */
  can(principal: Principal, action: Action, resource?: Resource): boolean {
    if (resource !== undefined && isSystemKey(resource.key)) return false;
    return authorize(principal, action, resource, this.identity.roles);
  }

  /**
   * Throws unless `principal` may do `action` on `resource`.
   * @throws PermissionDeniedError naming the action and the key (never a value).
   */
  authorize(principal: Principal, action: Action, resource?: Resource): void {
    if (this.can(principal, action, resource)) return;
    throw deniedError(principal, action, resource);
  }

  /** Whether `principal` may see `key` at all (for per-event filtering of watches). False for system keys, even in `--dev` mode. */
  canRead(principal: Principal, key: string): boolean {
    return this.can(principal, 'read', { key });
  }

  /** Whether `principal` may see the clear value of a secret `key`. */
  canReadSecret(principal: Principal, key: string): boolean {
    return this.can(principal, 'read_secret', { key });
  }

  /** Whether `principal` holds at least `access` on some prefix (e.g. who may grant leases). */
  hasAnyAccess(principal: Principal, access: Access): boolean {
    if (principal.via === 'dev') return true;
    const rank = { read: 1, write: 2, admin: 3 } as const;
    return principal.roles.some((n) => this.identity.roles.get(n)?.permissions.some((p) => rank[p.access] >= rank[access]) === true);
  }
}

/** The 403 for a denied action; details carry the action and key so clients can tell what was refused. */
export function deniedError(principal: Principal, action: Action, resource?: Resource): PermissionDeniedError {
  if (resource === undefined) {
    // A key-less read or write (a lease grant, a cluster-wide listing) needs that access somewhere, not an administrator.
    if (action === 'read' || action === 'write') {
      return new PermissionDeniedError(`'${principal.name}' may not ${action} anywhere: this needs ${action} access to at least one key prefix, and its roles grant none`, { action });
    }
    return new PermissionDeniedError(`'${principal.name}' may not do '${action}' (an administrator's action)`, { action });
  }
  const what = resource.rangeEnd === undefined ? `key '${resource.key}'` : `the range starting at '${resource.key}'`;
  return new PermissionDeniedError(`'${principal.name}' may not ${action.replace('_', ' ')} ${what}`, {
    action,
    key: resource.key,
    ...(resource.rangeEnd !== undefined ? { rangeEnd: resource.rangeEnd } : {}),
  });
}
