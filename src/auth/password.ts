/** Password hashing with scrypt (node:crypto), a per-password random salt and a timing-safe compare. */
import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import { InvalidArgumentError } from '../errors.js';

/**
 * scrypt cost parameters: N = 2^14, r = 8, p = 1 (RFC 7914 §2's "interactive login" setting,
 * about 16 MiB and a fifth of a second per hash on a small server). They are stored in every
 * hash, so raising them later keeps old hashes verifiable.
 */
export const SCRYPT_PARAMS = { N: 16384, r: 8, p: 1 } as const;
/** Bytes of salt per password and of derived key. */
const SALT_BYTES = 16;
const KEY_BYTES = 32;
/** The shortest password Beacon accepts, in characters. */
export const MIN_PASSWORD_LENGTH = 8;
/** The longest, in UTF-8 bytes (bounds the work an attacker can ask of scrypt). */
export const MAX_PASSWORD_BYTES = 1024;

function derive(password: string, salt: Buffer, params: { N: number; r: number; p: number }): Promise<Buffer> {
  const opts: ScryptOptions = { ...params, maxmem: 256 * params.N * params.r };
  return new Promise((resolve, reject) => {
    scrypt(password.normalize('NFC'), salt, KEY_BYTES, opts, (err, key) => (err ? reject(err) : resolve(key)));
  });
}

/**
 * Checks a new password: a string of at least {@link MIN_PASSWORD_LENGTH} characters and at
 * most {@link MAX_PASSWORD_BYTES} bytes. The error never repeats the password.
 * @throws InvalidArgumentError naming what is wrong.
 */
export function validatePassword(password: unknown, field = 'password'): string {
  if (typeof password !== 'string') throw new InvalidArgumentError(`'${field}' must be a string`, { field });
  if ([...password].length < MIN_PASSWORD_LENGTH) {
    throw new InvalidArgumentError(`'${field}' must be at least ${MIN_PASSWORD_LENGTH} characters long`, { field });
  }
  if (Buffer.byteLength(password) > MAX_PASSWORD_BYTES) {
    throw new InvalidArgumentError(`'${field}' must be at most ${MAX_PASSWORD_BYTES} bytes long`, { field });
  }
  return password;
}

/**
 * Hashes a password as `scrypt$N$r$p$<salt base64>$<key base64>`.
 * @example await hashPassword('correct horse') // → 'scrypt$16384$8$1$…$…'
 */
export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(SALT_BYTES);
  const key = await derive(password, salt, SCRYPT_PARAMS);
  const { N, r, p } = SCRYPT_PARAMS;
  return `scrypt$${N}$${r}$${p}$${salt.toString('base64')}$${key.toString('base64')}`;
}

/** A hash of a random password, verified against when a user does not exist so that timing does not tell. */
let dummyHash: Promise<string> | undefined;

/**
 * Verifies `password` against a hash from {@link hashPassword}, in constant time for the
 * comparison. With `hash` undefined (unknown user) it still does the full scrypt work and
 * resolves false, so response times do not reveal which user names exist.
 */
export async function verifyPassword(password: string, hash: string | undefined): Promise<boolean> {
  if (Buffer.byteLength(password) > MAX_PASSWORD_BYTES) return false;
  const stored = hash ?? (await (dummyHash ??= hashPassword(randomBytes(12).toString('base64'))));
  const parts = stored.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false;
  const [N, r, p] = [Number(parts[1]), Number(parts[2]), Number(parts[3])];
  // Refuse parameters outside sane bounds rather than let a corrupt record ask for gigabytes.
  if (![N, r, p].every(Number.isSafeInteger) || N < 2 || N > 2 ** 20 || r < 1 || r > 32 || p < 1 || p > 16) return false;
  const salt = Buffer.from(parts[4] as string, 'base64');
  const expected = Buffer.from(parts[5] as string, 'base64');
  if (expected.length !== KEY_BYTES) return false;
  const key = await derive(password, salt, { N, r, p });
  return timingSafeEqual(key, expected) && hash !== undefined;
}
