/**
 * Beacon's own access tokens: short-lived JWTs (jose, HS256) signed with a key generated per
 * installation on first start and kept with the data — never a built-in default (the Nacos
 * lesson). Verification pins the algorithm, issuer and audience, and is cached per token until
 * it expires so authentication stays cheap on the read path.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SignJWT, errors as joseErrors, jwtVerify } from 'jose';
import { UnauthenticatedError } from '../errors.js';
import { SYSTEM_PREFIX, type Store } from '../kv/index.js';
import type { Logger } from '../obs/index.js';

/** Default token lifetime, in seconds (15 minutes). */
export const DEFAULT_TOKEN_TTL_SECONDS = 15 * 60;
/** The only algorithm Beacon signs and accepts for its own tokens. */
export const TOKEN_ALG = 'HS256';
/** `iss` and `aud` of Beacon's own tokens. */
export const TOKEN_ISSUER = 'beacon';
/** The file in the data directory that holds the signing key (one node, embedded backend). */
export const SIGNING_KEY_FILE = 'jwt-signing.key';
/** The system key that holds the signing key on a shared backend, so every node verifies every node's tokens. */
export const SIGNING_KEY_SYSTEM_KEY = `${SYSTEM_PREFIX}auth/jwt-signing-key`;
/** Verified tokens remembered at most (the oldest are forgotten first). */
const CACHE_MAX = 10_000;
/** Clock skew tolerated between nodes, in seconds. */
const CLOCK_TOLERANCE_S = 5;

/** What a verified token says: the user, the user's incarnation, and the expiry (ms since the epoch). */
export interface TokenClaims {
  sub: string;
  uid: string;
  exp: number;
}

/**
 * Loads the signing key from `<dataDir>/jwt-signing.key`, creating it (32 random bytes, mode
 * 0600) on first start. Warns when the file is readable by others.
 */
export function loadOrCreateKeyFile(dataDir: string, logger?: Logger): Uint8Array {
  const path = join(dataDir, SIGNING_KEY_FILE);
  try {
    const key = Buffer.from(readFileSync(path, 'utf8').trim(), 'hex');
    if (key.length < 32) throw new Error(`${path} does not hold a key of at least 32 bytes in hex`);
    if ((statSync(path).mode & 0o077) !== 0) logger?.warn({ path }, 'the token signing key file is readable by other users; chmod 600 it');
    return key;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const key = randomBytes(32);
  // 'wx': if two processes race on one data dir, the second fails instead of overwriting.
  writeFileSync(path, `${key.toString('hex')}\n`, { mode: 0o600, flag: 'wx' });
  chmodSync(path, 0o600);
  return key;
}

/**
 * Loads the signing key from the store (shared backends), creating it with a conditional txn
 * so that concurrent first starts of several nodes agree on one key.
 */
export async function loadOrCreateKeyInStore(store: Store): Promise<Uint8Array> {
  const existing = store.get(SIGNING_KEY_SYSTEM_KEY);
  if (existing !== undefined) return Buffer.from(Buffer.from(existing.value).toString('utf8'), 'hex');
  const key = randomBytes(32);
  const res = await store.txn({
    compare: [{ key: SIGNING_KEY_SYSTEM_KEY, target: 'createRevision', result: '=', operand: 0 }],
    success: [{ type: 'put', key: SIGNING_KEY_SYSTEM_KEY, value: Buffer.from(key.toString('hex')) }],
    failure: [{ type: 'range', key: SIGNING_KEY_SYSTEM_KEY }],
  });
  if (res.succeeded) return key;
  const r = res.results[0];
  const kv = r?.type === 'range' ? r.kvs[0] : undefined;
  if (kv === undefined) throw new Error('the token signing key vanished while being created');
  return Buffer.from(Buffer.from(kv.value).toString('utf8'), 'hex');
}

/** Issues and verifies Beacon's own JWTs. */
export class TokenService {
  private readonly cache = new Map<string, TokenClaims>();

  /**
   * @param key the HMAC key (at least 32 bytes).
   * @param ttlSeconds lifetime of issued tokens.
   */
  constructor(
    private readonly key: Uint8Array,
    readonly ttlSeconds: number = DEFAULT_TOKEN_TTL_SECONDS,
    private readonly clock: () => number = Date.now,
  ) {
    if (key.byteLength < 32) throw new Error('the token signing key must be at least 32 bytes');
  }

  /** Issues a token for a user; `expiresAt` in ms since the epoch. */
  async issue(user: { name: string; uid: string }): Promise<{ token: string; expiresAt: number }> {
    const now = Math.floor(this.clock() / 1000);
    const exp = now + this.ttlSeconds;
    const token = await new SignJWT({ uid: user.uid })
      .setProtectedHeader({ alg: TOKEN_ALG, typ: 'JWT' })
      .setSubject(user.name)
      .setIssuer(TOKEN_ISSUER)
      .setAudience(TOKEN_ISSUER)
      .setIssuedAt(now)
      .setExpirationTime(exp)
      .setJti(randomBytes(9).toString('base64url'))
      .sign(this.key);
    return { token, expiresAt: exp * 1000 };
  }

  /**
   * The claims of a token verified before and not yet expired, without any asynchronous work
   * (the read path's fast case); undefined when it has not been seen.
   * @throws UnauthenticatedError when it was seen and has expired since.
   */
  cached(token: string): TokenClaims | undefined {
    const hit = this.cache.get(token);
    if (hit === undefined) return undefined;
    if (hit.exp > this.clock()) return hit;
    this.cache.delete(token);
    throw new UnauthenticatedError('the token has expired; get a new one from POST /v1/auth/token', { reason: 'expired' });
  }

  /**
   * Verifies a token: signature with HS256 only (so `alg: none` and any other algorithm are
   * refused), issuer, audience, expiry. A token verified once is remembered until it expires.
   * @throws UnauthenticatedError saying why (expired, malformed, bad signature).
   */
  async verify(token: string): Promise<TokenClaims> {
    const hit = this.cached(token);
    if (hit !== undefined) return hit;
    const now = this.clock();
    let payload;
    try {
      ({ payload } = await jwtVerify(token, this.key, {
        algorithms: [TOKEN_ALG],
        issuer: TOKEN_ISSUER,
        audience: TOKEN_ISSUER,
        requiredClaims: ['exp', 'sub'],
        clockTolerance: CLOCK_TOLERANCE_S,
        currentDate: new Date(now),
      }));
    } catch (err) {
      throw tokenError(err);
    }
    if (typeof payload.sub !== 'string' || typeof payload.uid !== 'string' || typeof payload.exp !== 'number') {
      throw new UnauthenticatedError('the token is missing its subject or user id', { reason: 'malformed' });
    }
    const claims: TokenClaims = { sub: payload.sub, uid: payload.uid, exp: payload.exp * 1000 };
    if (this.cache.size >= CACHE_MAX) {
      // Drop the oldest entries; a dropped token is simply verified again.
      let n = CACHE_MAX / 10;
      for (const k of this.cache.keys()) {
        if (n-- <= 0) break;
        this.cache.delete(k);
      }
    }
    this.cache.set(token, claims);
    return claims;
  }
}

/** Maps jose's errors to a 401 with a reason, never echoing the token. */
export function tokenError(err: unknown): UnauthenticatedError {
  if (err instanceof joseErrors.JWTExpired) return new UnauthenticatedError('the token has expired; get a new one', { reason: 'expired' });
  if (err instanceof joseErrors.JWSSignatureVerificationFailed) return new UnauthenticatedError('the token signature is not valid', { reason: 'bad_signature' });
  if (err instanceof joseErrors.JOSEAlgNotAllowed) return new UnauthenticatedError('the token is signed with an algorithm that is not accepted', { reason: 'bad_algorithm' });
  if (err instanceof joseErrors.JWTClaimValidationFailed) {
    return new UnauthenticatedError(`the token's '${err.claim}' claim is not valid`, { reason: 'bad_claim', claim: err.claim });
  }
  if (err instanceof joseErrors.JWKSNoMatchingKey) return new UnauthenticatedError('no key of the identity provider matches the token', { reason: 'unknown_key' });
  if (err instanceof joseErrors.JWKSTimeout || !(err instanceof joseErrors.JOSEError)) {
    return new UnauthenticatedError('the token could not be verified', { reason: 'unverifiable' });
  }
  return new UnauthenticatedError('the token is malformed', { reason: 'malformed' });
}
