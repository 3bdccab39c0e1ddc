/**
 * Verification of externally issued JWTs (OIDC access or ID tokens) against the identity
 * provider's JWKS, with a claim-to-role mapping. Only asymmetric algorithms are accepted, so a
 * token "signed" with the provider's public key as an HMAC secret, or with `alg: none`, fails.
 */
import { createRemoteJWKSet, decodeJwt, jwtVerify, type JWTPayload } from 'jose';
import { InvalidArgumentError, UnauthenticatedError } from '../errors.js';
import { tokenError } from './tokens.js';

/** The asymmetric algorithms accepted from an identity provider. */
export const OIDC_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'];
/** Verified external tokens remembered at most. */
const CACHE_MAX = 10_000;

/** How to trust an identity provider. */
export interface OidcOptions {
  /** URL of the provider's JWKS (e.g. `https://idp.example.com/.well-known/jwks.json`). */
  jwksUrl: string;
  /** The exact `iss` the provider puts in its tokens. */
  issuer: string;
  /** The `aud` Beacon's tokens must carry, if the provider sets one. */
  audience?: string;
  /** The claim holding roles or groups; a dotted path reaches nested claims (`realm_access.roles`). Default `roles`. */
  roleClaim?: string;
  /** Maps claim values to Beacon roles; without it, claim values are taken as role names. */
  roleMap?: Record<string, string[]>;
  /** The claim naming the user (default `sub`); the principal is `oidc:<value>`. */
  usernameClaim?: string;
}

/** Who an external token names: the principal name, the mapped roles and the expiry (ms). */
export interface OidcIdentity {
  name: string;
  roles: string[];
  exp: number;
}

/**
 * Parses `--oidc-role-map` entries `claimValue=role[+role…]` (comma separated).
 * @throws InvalidArgumentError for an entry without `=`.
 * @example parseRoleMap('beacon-admins=admin,devs=developer') // → { 'beacon-admins': ['admin'], devs: ['developer'] }
 */
export function parseRoleMap(text: string): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const part of text.split(',').map((s) => s.trim()).filter((s) => s !== '')) {
    const eq = part.lastIndexOf('=');
    if (eq <= 0 || eq === part.length - 1) throw new InvalidArgumentError(`role map entry '${part}' is not like claimValue=role`);
    const k = part.slice(0, eq).trim();
    out[k] = [...(out[k] ?? []), ...part.slice(eq + 1).split('+').map((r) => r.trim()).filter((r) => r !== '')];
  }
  return out;
}

function claimAt(payload: JWTPayload, path: string): unknown {
  let v: unknown = payload;
  for (const part of path.split('.')) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<string, unknown>)[part];
  }
  return v;
}

/** Verifies tokens from one identity provider. */
export class OidcVerifier {
  private readonly jwks: ReturnType<typeof createRemoteJWKSet>;
  private readonly cache = new Map<string, OidcIdentity>();

  constructor(
    readonly options: OidcOptions,
    private readonly clock: () => number = Date.now,
  ) {
    let url: URL;
    try {
      url = new URL(options.jwksUrl);
    } catch {
      throw new InvalidArgumentError(`--oidc-jwks-url '${options.jwksUrl}' is not a URL`);
    }
    if (options.issuer === '') throw new InvalidArgumentError('--oidc-issuer is required with --oidc-jwks-url');
    this.jwks = createRemoteJWKSet(url, { timeoutDuration: 5000, cooldownDuration: 30_000, cacheMaxAge: 10 * 60_000 });
  }

  /** True when an unverified token claims to come from this provider (so it is sent here, not to Beacon's own verifier). */
  claims(token: string): boolean {
    try {
      return decodeJwt(token).iss === this.options.issuer;
    } catch {
      return false;
    }
  }

  /**
   * Verifies `token` against the JWKS and maps its claims.
   * @throws UnauthenticatedError when the signature, issuer, audience or expiry is wrong.
   */
  async verify(token: string): Promise<OidcIdentity> {
    const now = this.clock();
    const hit = this.cache.get(token);
    if (hit !== undefined) {
      if (hit.exp > now) return hit;
      this.cache.delete(token);
      throw new UnauthenticatedError('the token has expired', { reason: 'expired' });
    }
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, this.jwks, {
        algorithms: OIDC_ALGORITHMS,
        issuer: this.options.issuer,
        ...(this.options.audience !== undefined ? { audience: this.options.audience } : {}),
        requiredClaims: ['exp'],
        clockTolerance: 5,
        currentDate: new Date(now),
      }));
    } catch (err) {
      throw tokenError(err);
    }
    const user = claimAt(payload, this.options.usernameClaim ?? 'sub');
    if (typeof user !== 'string' || user === '') {
      throw new UnauthenticatedError(`the token has no '${this.options.usernameClaim ?? 'sub'}' claim to name the user`, { reason: 'bad_claim' });
    }
    const raw = claimAt(payload, this.options.roleClaim ?? 'roles');
    const values = typeof raw === 'string' ? raw.split(/[\s,]+/).filter((s) => s !== '') : Array.isArray(raw) ? raw.filter((v): v is string => typeof v === 'string') : [];
    const map = this.options.roleMap;
    const roles = [...new Set(map === undefined ? values : values.flatMap((v) => map[v] ?? []))];
    const identity: OidcIdentity = { name: `oidc:${user}`, roles, exp: (payload.exp as number) * 1000 };
    if (this.cache.size >= CACHE_MAX) this.cache.clear();
    this.cache.set(token, identity);
    return identity;
  }
}
