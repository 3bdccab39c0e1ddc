/**
 * The hash slot of a key as Redis Cluster computes it: CRC-16/XMODEM with hash tags (pure, and
 * with no Node.js module, so the SDK uses it in browsers too to send a cache key to its owner).
 */

/** The number of hash slots, 0 … 16383 (Redis Cluster spec; `CLUSTER_SLOTS` in `cluster.h`). */
export const SLOT_COUNT = 16384;

const UTF8 = new TextEncoder();

// CRC-16/XMODEM: polynomial 0x1021, init 0, no reflection, no final xor. One table entry per
// byte value, computed bit by bit here rather than written out.
const CRC_TABLE = new Uint16Array(256);
for (let b = 0; b < 256; b++) {
  let c = b << 8;
  for (let bit = 0; bit < 8; bit++) c = c & 0x8000 ? ((c << 1) ^ 0x1021) & 0xffff : (c << 1) & 0xffff;
  CRC_TABLE[b] = c;
}

const OPEN = 0x7b; // '{'
const CLOSE = 0x7d; // '}'

function crcBytes(data: Uint8Array, start: number, end: number): number {
  let crc = 0;
  for (let i = start; i < end; i++) crc = ((crc << 8) & 0xffff) ^ (CRC_TABLE[((crc >>> 8) ^ (data[i] as number)) & 0xff] as number);
  return crc;
}

/** The same over an all-ASCII string, whose UTF-16 code units are its UTF-8 bytes. */
function crcAscii(data: string, start: number, end: number): number {
  let crc = 0;
  for (let i = start; i < end; i++) crc = ((crc << 8) & 0xffff) ^ (CRC_TABLE[((crc >>> 8) ^ data.charCodeAt(i)) & 0xff] as number);
  return crc;
}

function isAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0x7f) return false;
  return true;
}

/**
 * CRC-16/XMODEM (poly 0x1021, init 0, unreflected, no xorout) of `data`'s bytes, 0 … 65535; a
 * string is hashed as its UTF-8 bytes. The check value of `"123456789"` is 0x31C3. This is the
 * CRC Redis Cluster uses (`src/crc16.c`).
 *
 * @example crc16('123456789') // 0x31c3
 */
export function crc16(data: Uint8Array | string): number {
  if (typeof data === 'string') {
    if (isAscii(data)) return crcAscii(data, 0, data.length);
    data = UTF8.encode(data);
  }
  return crcBytes(data, 0, data.length);
}

/**
 * The hash slot of a key, 0 … {@link SLOT_COUNT} − 1: CRC-16/XMODEM of the key's bytes masked
 * with 0x3FFF. A string is hashed as its UTF-8 bytes, so pass the raw bytes of a RESP argument
 * as a Buffer (not a Latin-1 decoding of them).
 *
 * Hash tags, as Redis's `keyHashSlot` (`cluster.c`; Redis Cluster spec, "Hash tags"): if the
 * key has a `{` and, after the first `{`, a `}` that does not follow it immediately, only the
 * bytes strictly between the first `{` and that first `}` are hashed; otherwise (no `{`, no `}`
 * after it, or `{}`) the whole key is. So `{user1000}.following` → 3443 (the slot of
 * `user1000`), `foo{}{bar}` → 8363 (the whole key), `foo{{bar}}` → 4015 (the slot of `{bar`).
 *
 * @example keySlot('foo') // 12182
 */
export function keySlot(key: Uint8Array | string): number {
  if (typeof key === 'string') {
    if (isAscii(key)) {
      const s = key.indexOf('{');
      if (s !== -1) {
        const e = key.indexOf('}', s + 1);
        if (e !== -1 && e !== s + 1) return crcAscii(key, s + 1, e) & 0x3fff;
      }
      return crcAscii(key, 0, key.length) & 0x3fff;
    }
    key = UTF8.encode(key);
  }
  const s = key.indexOf(OPEN);
  if (s !== -1) {
    const e = key.indexOf(CLOSE, s + 1);
    if (e !== -1 && e !== s + 1) return crcBytes(key, s + 1, e) & 0x3fff;
  }
  return crcBytes(key, 0, key.length) & 0x3fff;
}
