/**
 * Beacon's own access tokens: short-lived JWTs (jose, HS256) signed with a key generated per
 * installation on first start and kept with the data — never a built-in default (the Nacos
 * lesson). Verification pins the algorithm, issuer and audience, and is cached per token until
 * it expires so authentication stays cheap on the read path.
 */
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { chmodSync, closeSync, fsyncSync, openSync, readFileSync, renameSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { SignJWT, errors as joseErrors, jwtVerify, type JWTHeaderParameters } from 'jose';
import { ConflictError, UnauthenticatedError } from '../errors.js';
import { SYSTEM_PREFIX, type Store } from '../kv/index.js';
import type { Logger } from '../obs/index.js';

/** Default token lifetime, in seconds (15 minutes). */
export const DEFAULT_TOKEN_TTL_SECONDS = 15 * 60;
/** The only algorithm Beacon signs and accepts for its own tokens. */
export const TOKEN_ALG = 'HS256';
/** `iss` and `aud` of Beacon's own tokens. */
export const TOKEN_ISSUER = 'beacon';
/**
 * Default lifetime of a refresh token, in seconds (12 hours: a working day). A refresh token is
 * traded at `POST /v1/auth/refresh` for a new access token, so `beacon login` lasts a session
 * while each bearer token stays short-lived.
 */
export const DEFAULT_REFRESH_TTL_SECONDS = 12 * 60 * 60;
/** `aud` of refresh tokens: distinct from access tokens', so neither is accepted as the other. */
export const REFRESH_AUDIENCE = 'beacon-refresh';
/** The one message for an expired access token, wherever it is refused (issue 10 item 15). */
export const TOKEN_EXPIRED_MESSAGE = 'the token has expired; log in again (beacon login, or POST /v1/auth/token)';
/**
 * A token signed with a key this node does not hold: rotated out, or issued by another
 * installation — which includes the node a snapshot was taken from, since a snapshot does not
 * carry the signing key (docs/security.md, "Backups and the signing key").
 */
export const UNKNOWN_KEY_MESSAGE =
  'the token was signed with a key this node does not hold (rotated out by `signing-key rotate`, or issued by another installation, such as the node a snapshot was restored from); log in again';

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

/** What a verified refresh token says: the user, the user's incarnation, the password stamp it was issued under, and its expiry (ms). */
export interface RefreshClaims extends TokenClaims {
  /** {@link passwordStamp} of the user at login: a password change ends the session. */
  pws: string;
}

/** A short digest of a user's password hash: a refresh token carries it, so changing the password revokes the token. */
export function passwordStamp(passwordHash: string): string {
  return createHash('sha256').update(passwordHash).digest('base64url').slice(0, 16);
}

/**
 * A signing keyring as stored: hex keys of at least 32 bytes, one per line, the key that signs
 * first; the others (at most one: the key before the last rotation) only verify.
 * @throws Error naming `where` when a line is not such a key.
 */
export function parseKeyring(text: string, where: string): Uint8Array[] {
  const keys = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '')
    .map((l) => Buffer.from(l, 'hex'));
  if (keys.length === 0 || keys.some((k) => k.length < 32)) throw new Error(`${where} does not hold signing keys of at least 32 bytes in hex, one per line`);
  return keys;
}

/** The stored form of a keyring (see {@link parseKeyring}). */
export function formatKeyring(keys: readonly Uint8Array[]): string {
  return `${keys.map((k) => Buffer.from(k).toString('hex')).join('\n')}\n`;
}

/** A key's id, the `kid` of the tokens it signs: 12 base64url characters of its SHA-256 (it reveals nothing of the key). */
export function keyId(key: Uint8Array): string {
  return createHash('sha256').update(key).digest('base64url').slice(0, 12);
}

/**
 * Loads the signing keyring from `<dataDir>/jwt-signing.key`, creating it (one key of 32 random
 * bytes, mode 0600) on first start. Warns when the file is readable by others.
 * @throws Error when the file exists but holds no valid key.
 */
export function loadOrCreateKeyFile(dataDir: string, logger?: Logger): Uint8Array[] {
  const path = join(dataDir, SIGNING_KEY_FILE);
  try {
    const keys = parseKeyring(readFileSync(path, 'utf8'), path);
    if ((statSync(path).mode & 0o077) !== 0) logger?.warn({ path }, 'the token signing key file is readable by other users; chmod 600 it');
    return keys;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const key = randomBytes(32);
  // 'wx': if two processes race on one data dir, the second fails instead of overwriting.
  writeFileSync(path, formatKeyring([key]), { mode: 0o600, flag: 'wx' });
  chmodSync(path, 0o600);
  return [key];
}

/** Replaces `<dataDir>/jwt-signing.key` atomically (a temporary file renamed over it, mode 0600). */
export function saveKeyFile(dataDir: string, keys: readonly Uint8Array[]): void {
  const path = join(dataDir, SIGNING_KEY_FILE);
  const tmp = `${path}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w', 0o600);
  try {
    writeSync(fd, formatKeyring(keys));
    fsyncSync(fd); // the bytes are on disk before the name points at them
  } finally {
    closeSync(fd);
  }
  chmodSync(tmp, 0o600);
  renameSync(tmp, path);
  const dir = openSync(dataDir, 'r');
  try {
    fsyncSync(dir); // and the rename survives a power loss
  } finally {
    closeSync(dir);
  }
}

/**
 * Loads the signing keyring from the store (shared backends), creating it with a conditional txn
 * so that concurrent first starts of several nodes agree on one key.
 */
export async function loadOrCreateKeyInStore(store: Store): Promise<Uint8Array[]> {
  const existing = store.get(SIGNING_KEY_SYSTEM_KEY);
  if (existing !== undefined) return parseKeyring(Buffer.from(existing.value).toString('utf8'), 'the stored signing key');
  const key = randomBytes(32);
  const res = await store.txn({
    compare: [{ key: SIGNING_KEY_SYSTEM_KEY, target: 'createRevision', result: '=', operand: 0 }],
    success: [{ type: 'put', key: SIGNING_KEY_SYSTEM_KEY, value: Buffer.from(formatKeyring([key])) }],
    failure: [{ type: 'range', key: SIGNING_KEY_SYSTEM_KEY }],
  });
  if (res.succeeded) return [key];
  const r = res.results[0];
  const kv = r?.type === 'range' ? r.kvs[0] : undefined;
  if (kv === undefined) throw new Error('the token signing key vanished while being created');
  return parseKeyring(Buffer.from(kv.value).toString('utf8'), 'the stored signing key');
}

/**
 * Stores a rotated keyring in the store (shared backends) if it still holds `expected`, so two
 * concurrent rotations cannot both win; every node picks the new keyring up from the change feed.
 * @throws ConflictError when the keyring changed meanwhile (rotate again).
 */
export async function saveKeyringInStore(store: Store, expected: readonly Uint8Array[], keys: readonly Uint8Array[]): Promise<void> {
  const current = store.get(SIGNING_KEY_SYSTEM_KEY);
  const conflict = (): ConflictError =>
    new ConflictError('the signing keyring changed while rotating (another rotation?); rotate again', { modRevision: current?.modRevision ?? 0 });
  // Compare what the keys are, not how they are written (a key stored by an older release has no
  // trailing newline), then make the write conditional on the revision that was compared.
  if (current === undefined) throw conflict();
  const stored = parseKeyring(Buffer.from(current.value).toString('utf8'), 'the stored signing key').map(keyId);
  if (stored.length !== expected.length || stored.some((kid, i) => kid !== keyId(expected[i] as Uint8Array))) throw conflict();
  const res = await store.txn({
    compare: [{ key: SIGNING_KEY_SYSTEM_KEY, target: 'modRevision', result: '=', operand: current.modRevision }],
    success: [{ type: 'put', key: SIGNING_KEY_SYSTEM_KEY, value: Buffer.from(formatKeyring(keys)) }],
    failure: [],
  });
  if (!res.succeeded) throw conflict();
}

/** What a rotation did: the id of the new signing key and of the key kept for verification, if any. */
export interface RotationResult {
  kid: string;
  previousKid: string | null;
}

/**
 * Issues and verifies Beacon's own JWTs with a keyring: the first key signs (its id is the
 * token's `kid`); the key before the last rotation still verifies, so tokens issued before a
 * rotation keep working until they expire. Tokens without a `kid` (issued before keyrings) are
 * checked against the oldest key.
 */
export class TokenService {
  private readonly cache = new Map<string, TokenClaims>();
  private keys: { kid: string; key: Uint8Array }[] = [];
  /** Bumped by every keyring change: a verification that straddles one is not cached, and is redone. */
  private generation = 0;
  /** Stores a rotated keyring (file or store); set by the node's security set-up. */
  persist: ((old: Uint8Array[], next: Uint8Array[]) => Promise<void>) | undefined;

  /**
   * @param keys the keyring, the signing key first (each at least 32 bytes).
   * @param ttlSeconds lifetime of issued tokens.
   * @param clock the time in ms since the epoch (tests move it).
   * @param refreshTtlSeconds lifetime of refresh tokens.
   * @throws Error for an empty keyring or a short key.
   */
  constructor(
    keys: Uint8Array | readonly Uint8Array[],
    readonly ttlSeconds: number = DEFAULT_TOKEN_TTL_SECONDS,
    private readonly clock: () => number = Date.now,
    readonly refreshTtlSeconds: number = DEFAULT_REFRESH_TTL_SECONDS,
  ) {
    this.setKeys(keys instanceof Uint8Array ? [keys] : keys);
  }

  /** The id of the key that signs new tokens. */
  get kid(): string {
    return (this.keys[0] as { kid: string }).kid;
  }

  /** Ids of every key that verifies, the signing key first. */
  get kids(): string[] {
    return this.keys.map((k) => k.kid);
  }

  /**
   * Replaces the keyring (a rotation here or on another node). Forgets every verified token, so
   * one signed with a key that is gone is refused at once.
   * @throws Error for an empty keyring or a short key.
   */
  setKeys(keys: readonly Uint8Array[]): void {
    if (keys.length === 0 || keys.some((k) => k.byteLength < 32)) throw new Error('the token signing key must be at least 32 bytes');
    const same = keys.length === this.keys.length && keys.every((k, i) => keyId(k) === this.keys[i]?.kid);
    if (same) return;
    this.keys = keys.map((key) => ({ kid: keyId(key), key }));
    this.generation++;
    this.cache.clear();
  }

  /**
   * Rotates the signing key: a new random key signs from now on. With `keepPrevious` (the
   * default) the current key still verifies, so issued tokens keep working until they expire
   * (rotate again a token lifetime later to retire it); without, every issued token is refused
   * at once and users log in again. Older keys are dropped either way.
   * @throws ConflictError when another rotation won meanwhile (shared store); Error when no
   * persistence is set up.
   */
  async rotate(keepPrevious = true): Promise<RotationResult> {
    if (this.persist === undefined) throw new Error('signing-key rotation is not set up on this node');
    const old = this.keys.map((k) => k.key);
    const fresh = randomBytes(32);
    const next = keepPrevious ? [fresh, old[0] as Uint8Array] : [fresh];
    await this.persist(old, next);
    this.setKeys(next);
    return { kid: keyId(fresh), previousKid: keepPrevious ? keyId(old[0] as Uint8Array) : null };
  }

  private keyFor(header: JWTHeaderParameters): Uint8Array {
    if (header.kid === undefined) return (this.keys[this.keys.length - 1] as { key: Uint8Array }).key;
    const k = this.keys.find((x) => x.kid === header.kid);
    if (k === undefined) throw new UnauthenticatedError(UNKNOWN_KEY_MESSAGE, { reason: 'unknown_key' });
    return k.key;
  }

  /**
   * The secrets the nodes of one cluster authenticate each other's RESP links with (the cache
   * tier across nodes forwards commands): HMAC-SHA256 of a fixed label under each key of the
   * keyring, hex, the signing key's first. Every node that holds the keyring (shared in
   * PostgreSQL mode) derives the same ones; nobody else can.
   */
  peerSecrets(): string[] {
    return this.keys.map((k) => createHmac('sha256', k.key).update('beacon resp peer link v1').digest('hex'));
  }

  /** Issues a token for a user; `expiresAt` in ms since the epoch. */
  async issue(user: { name: string; uid: string }): Promise<{ token: string; expiresAt: number }> {
    const now = Math.floor(this.clock() / 1000);
    const exp = now + this.ttlSeconds;
    const token = await new SignJWT({ uid: user.uid })
      .setProtectedHeader({ alg: TOKEN_ALG, typ: 'JWT', kid: this.kid })
      .setSubject(user.name)
      .setIssuer(TOKEN_ISSUER)
      .setAudience(TOKEN_ISSUER)
      .setIssuedAt(now)
      .setExpirationTime(exp)
      .setJti(randomBytes(9).toString('base64url'))
      .sign((this.keys[0] as { key: Uint8Array }).key);
    return { token, expiresAt: exp * 1000 };
  }

  /**
   * Issues a refresh token for a user (audience {@link REFRESH_AUDIENCE}, lifetime
   * `refreshTtlSeconds`): it is never accepted as a bearer token, only by {@link verifyRefresh}.
   * @param stamp the user's {@link passwordStamp}.
   */
  async issueRefresh(user: { name: string; uid: string }, stamp: string): Promise<{ token: string; expiresAt: number }> {
    const now = Math.floor(this.clock() / 1000);
    const exp = now + this.refreshTtlSeconds;
    const token = await new SignJWT({ uid: user.uid, pws: stamp })
      .setProtectedHeader({ alg: TOKEN_ALG, typ: 'JWT', kid: this.kid })
      .setSubject(user.name)
      .setIssuer(TOKEN_ISSUER)
      .setAudience(REFRESH_AUDIENCE)
      .setIssuedAt(now)
      .setExpirationTime(exp)
      .setJti(randomBytes(9).toString('base64url'))
      .sign((this.keys[0] as { key: Uint8Array }).key);
    return { token, expiresAt: exp * 1000 };
  }

  /**
   * Verifies a refresh token as {@link verify} does an access token (HS256, issuer, this node's
   * keys), but with the refresh audience and without the cache (it is used once per access token).
   * @throws UnauthenticatedError saying why; an expired one says to log in again.
   */
  async verifyRefresh(token: string): Promise<RefreshClaims> {
    let payload;
    try {
      ({ payload } = await jwtVerify(token, (header) => this.keyFor(header), {
        algorithms: [TOKEN_ALG],
        issuer: TOKEN_ISSUER,
        audience: REFRESH_AUDIENCE,
        requiredClaims: ['exp', 'sub'],
        clockTolerance: CLOCK_TOLERANCE_S,
        currentDate: new Date(this.clock()),
      }));
    } catch (err) {
      if (err instanceof UnauthenticatedError) throw err;
      if (err instanceof joseErrors.JWTExpired) throw new UnauthenticatedError('the login session has expired; log in again (beacon login)', { reason: 'expired' });
      throw tokenError(err);
    }
    if (typeof payload.sub !== 'string' || typeof payload.uid !== 'string' || typeof payload.exp !== 'number' || typeof payload.pws !== 'string') {
      throw new UnauthenticatedError('the refresh token is missing its subject, user id or password stamp', { reason: 'malformed' });
    }
    return { sub: payload.sub, uid: payload.uid, exp: payload.exp * 1000, pws: payload.pws };
  }

  /**
   * The claims of a token verified before and not yet expired, without any asynchronous work
   * (the read path's fast case); undefined when it has not been seen.
   * @throws UnauthenticatedError when it was seen and has expired since.
   */
  cached(token: string): TokenClaims | undefined {
    const hit = this.cache.get(token);
    if (hit === undefined) return undefined;
    // The same clock-skew tolerance as a first verification, so a token's end does not depend on
    // whether this node has seen it before.
    if (hit.exp + CLOCK_TOLERANCE_S * 1000 > this.clock()) return hit;
    this.cache.delete(token);
    throw new UnauthenticatedError(TOKEN_EXPIRED_MESSAGE, { reason: 'expired' });
  }

  /**
   * Verifies a token: signature with HS256 only (so `alg: none` and any other algorithm are
   * refused), issuer, audience, expiry. A token verified once is remembered until it expires.
   * @throws UnauthenticatedError saying why (expired, malformed, bad signature).
   */
  async verify(token: string): Promise<TokenClaims> {
    const hit = this.cached(token);
    if (hit !== undefined) return hit;
    const generation = this.generation;
    const now = this.clock();
    let payload;
    try {
      ({ payload } = await jwtVerify(token, (header) => this.keyFor(header), {
        algorithms: [TOKEN_ALG],
        issuer: TOKEN_ISSUER,
        audience: TOKEN_ISSUER,
        requiredClaims: ['exp', 'sub'],
        clockTolerance: CLOCK_TOLERANCE_S,
        currentDate: new Date(now),
      }));
    } catch (err) {
      if (err instanceof UnauthenticatedError) throw err;
      throw tokenError(err);
    }
    if (typeof payload.sub !== 'string' || typeof payload.uid !== 'string' || typeof payload.exp !== 'number') {
      throw new UnauthenticatedError('the token is missing its subject or user id', { reason: 'malformed' });
    }
    const claims: TokenClaims = { sub: payload.sub, uid: payload.uid, exp: payload.exp * 1000 };
    // The keyring changed while the signature was checked (a rotation here, or one on another
    // node arriving through the feed): the key used may be gone. Check again with the keys now.
    if (generation !== this.generation) return this.verify(token);
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
  if (err instanceof joseErrors.JWTExpired) return new UnauthenticatedError(TOKEN_EXPIRED_MESSAGE, { reason: 'expired' });
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
