/**
 * Secret values at rest: AES-256-GCM under a key-encryption key (KEK) from a file or the
 * environment (DESIGN.md §4). A keyring holds one primary key (encrypts) and any number of
 * older keys (decrypt only), so a KEK can be rotated online without losing old history.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { InvalidArgumentError, UnavailableError } from '../errors.js';

/**
 * The first bytes of every encrypted value: NUL, "BK", format 1. They only say how to parse a
 * value the store recorded as sealed (`KeyValue.encrypted`); they never decide whether a value
 * is ciphertext, since any writer can store them (issue 9 finding 3).
 */
const MAGIC = Buffer.from([0x00, 0x42, 0x4b, 0x01]);
const IV_BYTES = 12;
const TAG_BYTES = 16;
const KEY_BYTES = 32;
const KEY_ID = /^[A-Za-z0-9_-]{1,32}$/;

/** One KEK: its id (stored with every value it encrypts) and its 32 bytes. */
export interface Kek {
  id: string;
  key: Buffer;
}

function decodeKeyMaterial(text: string, where: string): Buffer {
  const t = text.trim();
  let key: Buffer | undefined;
  if (/^[0-9a-fA-F]{64}$/.test(t)) key = Buffer.from(t, 'hex');
  else if (/^[A-Za-z0-9+/_-]{43}=?$/.test(t)) key = Buffer.from(t, t.includes('-') || t.includes('_') ? 'base64url' : 'base64');
  if (key === undefined || key.length !== KEY_BYTES) {
    throw new InvalidArgumentError(`${where}: a key must be 32 bytes written as 64 hex digits or 44 base64 characters`);
  }
  return key;
}

/**
 * A set of KEKs. The first one given is the primary: new secrets are encrypted with it; the
 * others only decrypt values written before a rotation.
 */
export class Keyring {
  private readonly byId = new Map<string, Buffer>();
  readonly primary: Kek;

  constructor(keys: Kek[]) {
    const first = keys[0];
    if (first === undefined) throw new InvalidArgumentError('a keyring needs at least one key');
    for (const k of keys) {
      if (k.key.length !== KEY_BYTES) throw new InvalidArgumentError(`key '${k.id}' is not 32 bytes`);
      if (!KEY_ID.test(k.id)) throw new InvalidArgumentError(`key id '${k.id}' must be 1-32 letters, digits, '-' or '_'`);
      if (this.byId.has(k.id)) throw new InvalidArgumentError(`key id '${k.id}' appears twice in the keyring`);
      this.byId.set(k.id, k.key);
    }
    this.primary = first;
  }

  /**
   * Parses a keyring from text (a `--kek-file` or `BEACON_KEK`): one key per line or comma,
   * each `[id:]key` with the key as 64 hex digits or base64 of 32 bytes; `#` starts a comment.
   * Without an id, the id is the first 8 hex digits of the key's SHA-256. The first key is the
   * primary. Error messages never include key material.
   * @throws InvalidArgumentError naming the bad entry by position.
   * @example Keyring.parse('k2:' + newKey + '\nk1:' + oldKey) // k2 encrypts, both decrypt
   */
  static parse(text: string, source = 'KEK'): Keyring {
    const entries = text
      .split(/[\n,]/)
      .map((l) => l.replace(/#.*$/, '').trim())
      .filter((l) => l !== '');
    if (entries.length === 0) throw new InvalidArgumentError(`${source} holds no key`);
    const keys = entries.map((e, i): Kek => {
      const colon = e.indexOf(':');
      const where = `${source} entry ${i + 1}`;
      const key = decodeKeyMaterial(colon < 0 ? e : e.slice(colon + 1), where);
      const id = colon < 0 ? createHash('sha256').update(key).digest('hex').slice(0, 8) : e.slice(0, colon).trim();
      if (!KEY_ID.test(id)) throw new InvalidArgumentError(`${where}: the id must be 1-32 letters, digits, '-' or '_'`);
      return { id, key };
    });
    return new Keyring(keys);
  }

  /** Makes a fresh random key as 64 hex digits (for `beacon` docs and tests). */
  static generateKeyHex(): string {
    return randomBytes(KEY_BYTES).toString('hex');
  }

  /** The ids of every key, primary first. */
  get ids(): string[] {
    return [...this.byId.keys()];
  }

  /**
   * Encrypts `plaintext` for `key` (the kv key is authenticated data, so a ciphertext copied
   * under another key does not decrypt). Layout: magic, id length, id, IV, tag, ciphertext.
   */
  encrypt(key: string, plaintext: Uint8Array): Uint8Array {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.primary.key, iv);
    cipher.setAAD(Buffer.from(key, 'utf8'));
    const ct = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    const id = Buffer.from(this.primary.id, 'ascii');
    return Buffer.concat([MAGIC, Buffer.from([id.length]), id, iv, cipher.getAuthTag(), ct]);
  }

  /**
   * Decrypts a value from {@link encrypt}.
   * @throws UnavailableError when the value was encrypted with a key this keyring lacks, or it
   * fails authentication (tampered, or stored under another key).
   */
  decrypt(key: string, value: Uint8Array): Uint8Array {
    const parsed = parseEnvelope(value);
    if (parsed === undefined) throw new UnavailableError(`the secret value of '${key}' is not in Beacon's encrypted format`);
    const kek = this.byId.get(parsed.keyId);
    if (kek === undefined) {
      throw new UnavailableError(`the secret value of '${key}' was encrypted with KEK '${parsed.keyId}', which is not in the keyring`, {
        details: { key, keyId: parsed.keyId },
      });
    }
    try {
      const d = createDecipheriv('aes-256-gcm', kek, parsed.iv);
      d.setAAD(Buffer.from(key, 'utf8'));
      d.setAuthTag(parsed.tag);
      return Buffer.concat([d.update(parsed.ciphertext), d.final()]);
    } catch {
      throw new UnavailableError(`the secret value of '${key}' failed authentication (tampered or moved from another key)`, { details: { key } });
    }
  }

  /** True when this keyring can decrypt values sealed with `keyId`. */
  has(keyId: string): boolean {
    return this.byId.has(keyId);
  }
}

/** The parts of an encrypted value, or undefined when `value` is not one. */
export function parseEnvelope(value: Uint8Array): { keyId: string; iv: Buffer; tag: Buffer; ciphertext: Buffer } | undefined {
  const b = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  if (b.length < MAGIC.length + 1 || !b.subarray(0, MAGIC.length).equals(MAGIC)) return undefined;
  const idLen = b[MAGIC.length] as number;
  const start = MAGIC.length + 1;
  if (idLen < 1 || b.length < start + idLen + IV_BYTES + TAG_BYTES) return undefined;
  const keyId = b.subarray(start, start + idLen).toString('ascii');
  if (!KEY_ID.test(keyId)) return undefined;
  const ivAt = start + idLen;
  return {
    keyId,
    iv: b.subarray(ivAt, ivAt + IV_BYTES),
    tag: b.subarray(ivAt + IV_BYTES, ivAt + IV_BYTES + TAG_BYTES),
    ciphertext: b.subarray(ivAt + IV_BYTES + TAG_BYTES),
  };
}

/**
 * True when `value` has the encrypted-value layout (whether or not a keyring can open it). For
 * tests and diagnostics only: whether a stored value is ciphertext is `KeyValue.encrypted`.
 */
export function isEncrypted(value: Uint8Array): boolean {
  return parseEnvelope(value) !== undefined;
}

/**
 * Loads the keyring a node starts with: from `file` (`--kek-file`) when given, else from the
 * `BEACON_KEK` environment variable, else none (secret namespaces are then unavailable).
 * @throws InvalidArgumentError when the file cannot be read or holds a bad key.
 */
export function loadKeyring(file: string | undefined, env: string | undefined = process.env.BEACON_KEK): Keyring | undefined {
  if (file !== undefined && file !== '') {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new InvalidArgumentError(`cannot read the KEK file '${file}': ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    return Keyring.parse(text, `KEK file '${file}'`);
  }
  if (env !== undefined && env.trim() !== '') return Keyring.parse(env, 'BEACON_KEK');
  return undefined;
}
