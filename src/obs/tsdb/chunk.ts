/**
 * Gorilla-style sample chunks: timestamps as delta-of-deltas and values as XOR against the
 * previous value (Pelkonen et al., "Gorilla", VLDB 2015; the scheme Prometheus's XOR chunks use).
 *
 * Layout (bit stream, most significant bit first):
 * - bytes 0–1: the sample count (uint16, big-endian), rewritten on every append;
 * - sample 0: the timestamp as a zig-zag varint, the value as its 64 raw bits;
 * - sample 1: the timestamp delta as a zig-zag varint, the value XOR-encoded;
 * - sample n ≥ 2: the delta-of-delta in a prefix bucket (`0` → 0; `10` + 14 bits; `110` + 17 bits;
 *   `1110` + 20 bits; `1111` + 64 bits, two's complement), the value XOR-encoded.
 * - XOR encoding of a value against the previous one: `0` when equal; `10` + the meaningful bits
 *   when they fit the previous leading/trailing-zero window; else `11` + 5 bits of leading zeros
 *   + 6 bits of meaningful-bit count (0 means 64) + the meaningful bits.
 *
 * Values keep their exact bit patterns (NaN payloads included, so the stale marker survives).
 * Values are handled as two 32-bit halves: BigInt would cost 10× on the ingestion path.
 */

/** Samples per chunk before a new one is cut (Prometheus's figure: ~1–2 bytes per sample at 120). */
export const SAMPLES_PER_CHUNK = 120;

const scratch = new Float64Array(1);
const scratchU32 = new Uint32Array(scratch.buffer);
// Typed arrays are little-endian on every platform Node runs on; checked once.
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
const LO = LITTLE_ENDIAN ? 0 : 1;
const HI = LITTLE_ENDIAN ? 1 : 0;

function ctz32(x: number): number {
  if (x === 0) return 32;
  return 31 - Math.clz32(x & -x);
}

/** Appends bits to a growable byte buffer. */
class BitWriter {
  buf: Uint8Array;
  /** Bits written. */
  pos = 0;

  constructor(initialBytes: number) {
    this.buf = new Uint8Array(initialBytes);
  }

  private ensure(bits: number): void {
    const need = (this.pos + bits + 7) >>> 3;
    if (need <= this.buf.length) return;
    const next = new Uint8Array(Math.max(need, this.buf.length * 2));
    next.set(this.buf);
    this.buf = next;
  }

  /** Writes the low `n` bits of `v` (n ≤ 32), most significant first. */
  write(v: number, n: number): void {
    if (n === 0) return;
    this.ensure(n);
    const buf = this.buf;
    let pos = this.pos;
    let left = n;
    while (left > 0) {
      const byte = pos >>> 3;
      const free = 8 - (pos & 7);
      const take = left < free ? left : free;
      // The `take` bits of v just below bit `left` (take ≤ 8, left ≤ 32).
      const bits = (v >>> (left - take)) & ((1 << take) - 1);
      buf[byte] = (buf[byte] as number) | (bits << (free - take));
      pos += take;
      left -= take;
    }
    this.pos = pos;
  }

  writeBit(b: number): void {
    this.ensure(1);
    if (b !== 0) {
      const byte = this.pos >>> 3;
      this.buf[byte] = (this.buf[byte] as number) | (0x80 >>> (this.pos & 7));
    }
    this.pos++;
  }

  /** Writes a 64-bit word given as two unsigned 32-bit halves. */
  write64(hi: number, lo: number): void {
    this.write(hi >>> 0, 32);
    this.write(lo >>> 0, 32);
  }

  /** Writes a signed integer (safe-integer range) as a zig-zag varint, 8 bits per group. */
  writeVarint(v: number): void {
    // Zig-zag without 32-bit overflow: non-negative → 2v, negative → -2v - 1.
    let u = v >= 0 ? v * 2 : -v * 2 - 1;
    while (u >= 0x80) {
      this.write((u % 0x80) | 0x80, 8);
      u = Math.floor(u / 0x80);
    }
    this.write(u, 8);
  }
}

/** Reads bits from a byte buffer. */
class BitReader {
  pos: number;
  constructor(
    private readonly buf: Uint8Array,
    startBit: number,
  ) {
    this.pos = startBit;
  }

  /** Reads `n` bits (n ≤ 32) as an unsigned number. */
  read(n: number): number {
    let out = 0;
    let left = n;
    let pos = this.pos;
    const buf = this.buf;
    while (left > 0) {
      const byte = buf[pos >>> 3];
      if (byte === undefined) throw new RangeError('chunk truncated');
      const avail = 8 - (pos & 7);
      const take = left < avail ? left : avail;
      const bits = (byte >>> (avail - take)) & ((1 << take) - 1);
      out = out * (1 << take) + bits; // multiplication keeps 32-bit reads unsigned
      pos += take;
      left -= take;
    }
    this.pos = pos;
    return out;
  }

  readBit(): number {
    const byte = this.buf[this.pos >>> 3];
    if (byte === undefined) throw new RangeError('chunk truncated');
    const b = (byte >>> (7 - (this.pos & 7))) & 1;
    this.pos++;
    return b;
  }

  readVarint(): number {
    let u = 0;
    let mul = 1;
    for (;;) {
      const b = this.read(8);
      u += (b & 0x7f) * mul;
      if (b < 0x80) break;
      mul *= 0x80;
      if (mul > 2 ** 63) throw new RangeError('varint too long');
    }
    return u % 2 === 0 ? u / 2 : -(u + 1) / 2;
  }
}

/** Sign-extends the low `n` bits of `v`. */
function signExtend(v: number, n: number): number {
  return v > 2 ** (n - 1) ? v - 2 ** n : v;
}

/**
 * Encodes samples into one chunk. Append in ascending timestamp order (the caller checks order);
 * `bytes()` is a valid chunk after every append.
 */
export class ChunkEncoder {
  private readonly w: BitWriter;
  /** Samples appended. */
  count = 0;
  /** First and last timestamp (ms); meaningful once count > 0. */
  minT = 0;
  maxT = 0;
  private tDelta = 0;
  private vHi = 0;
  private vLo = 0;
  private leading = 0xff;
  private trailing = 0;

  constructor(initialBytes = 32) {
    this.w = new BitWriter(Math.max(initialBytes, 16));
    this.w.pos = 16;
  }

  /** Appends a sample: timestamp in ms, value as a float64 (its bits are kept exactly). */
  append(t: number, v: number): void {
    scratch[0] = v;
    this.appendBits(t, scratchU32[HI] as number, scratchU32[LO] as number);
  }

  /** Appends a sample whose value is given as the two 32-bit halves of its float64 bits. */
  appendBits(t: number, hi: number, lo: number): void {
    const w = this.w;
    const n = this.count;
    if (n === 0) {
      w.writeVarint(t);
      w.write64(hi, lo);
      this.minT = t;
    } else if (n === 1) {
      const d = t - this.maxT;
      w.writeVarint(d);
      this.writeXor(hi, lo);
      this.tDelta = d;
    } else {
      const d = t - this.maxT;
      const dod = d - this.tDelta;
      if (dod === 0) w.writeBit(0);
      else if (dod >= -8191 && dod <= 8192) {
        w.write(0b10, 2);
        w.write(dod & 0x3fff, 14);
      } else if (dod >= -65535 && dod <= 65536) {
        w.write(0b110, 3);
        w.write(dod & 0x1ffff, 17);
      } else if (dod >= -524287 && dod <= 524288) {
        w.write(0b1110, 4);
        w.write(dod & 0xfffff, 20);
      } else {
        w.write(0b1111, 4);
        w.write64(Math.floor(dod / 2 ** 32) >>> 0, dod >>> 0);
      }
      this.writeXor(hi, lo);
      this.tDelta = d;
    }
    this.maxT = t;
    this.vHi = hi >>> 0;
    this.vLo = lo >>> 0;
    this.count = n + 1;
    w.buf[0] = (this.count >>> 8) & 0xff;
    w.buf[1] = this.count & 0xff;
  }

  private writeXor(hi: number, lo: number): void {
    const w = this.w;
    const xHi = (hi ^ this.vHi) >>> 0;
    const xLo = (lo ^ this.vLo) >>> 0;
    if (xHi === 0 && xLo === 0) {
      w.writeBit(0);
      return;
    }
    w.writeBit(1);
    let leading = xHi !== 0 ? Math.clz32(xHi) : 32 + Math.clz32(xLo);
    const trailing = xLo !== 0 ? ctz32(xLo) : 32 + ctz32(xHi);
    if (leading >= 32) leading = 31; // 5 bits hold at most 31
    if (this.leading !== 0xff && leading >= this.leading && trailing >= this.trailing) {
      w.writeBit(0);
      this.writeMeaningful(xHi, xLo, this.leading, this.trailing);
      return;
    }
    this.leading = leading;
    this.trailing = trailing;
    w.writeBit(1);
    w.write(leading, 5);
    const sig = 64 - leading - trailing;
    w.write(sig === 64 ? 0 : sig, 6);
    this.writeMeaningful(xHi, xLo, leading, trailing);
  }

  /** Writes bits [63-leading … trailing] of the 64-bit word (hi, lo). */
  private writeMeaningful(hi: number, lo: number, leading: number, trailing: number): void {
    const sig = 64 - leading - trailing;
    // Shift right by `trailing`, then write the low `sig` bits.
    let sHi: number;
    let sLo: number;
    if (trailing === 0) {
      sHi = hi;
      sLo = lo;
    } else if (trailing < 32) {
      sLo = ((lo >>> trailing) | (hi << (32 - trailing))) >>> 0;
      sHi = hi >>> trailing;
    } else {
      sLo = hi >>> (trailing - 32);
      sHi = 0;
    }
    if (sig > 32) {
      this.w.write(sHi & (sig - 32 === 32 ? 0xffffffff : (1 << (sig - 32)) - 1), sig - 32);
      this.w.write(sLo, 32);
    } else {
      this.w.write(sig === 32 ? sLo : sLo & ((1 << sig) - 1), sig);
    }
  }

  /** The chunk so far (a copy, trimmed to its length). */
  bytes(): Uint8Array {
    return this.w.buf.slice(0, (this.w.pos + 7) >>> 3);
  }

  /** Bytes the chunk uses. */
  get size(): number {
    return (this.w.pos + 7) >>> 3;
  }
}

/** The number of samples in an encoded chunk. */
export function chunkCount(chunk: Uint8Array): number {
  return (((chunk[0] ?? 0) << 8) | (chunk[1] ?? 0)) >>> 0;
}

/**
 * Decodes a chunk's samples with timestamps in `[minT, maxT]` into `ts`/`vs` starting at `at`
 * (the arrays must have room for the chunk's count). Values are written through their bits, so NaN
 * payloads survive.
 * @returns the index after the last sample written.
 * @throws RangeError when the chunk is truncated or corrupt.
 */
export function decodeChunkInto(chunk: Uint8Array, ts: Float64Array, vs: Float64Array, at: number, minT = -Infinity, maxT = Infinity): number {
  const n = chunkCount(chunk);
  if (n === 0) return at;
  const vsU32 = new Uint32Array(vs.buffer, vs.byteOffset, vs.length * 2);
  const r = new BitReader(chunk, 16);
  let t = r.readVarint();
  let hi = r.read(32);
  let lo = r.read(32);
  let out = at;
  const emit = (): void => {
    if (t < minT || t > maxT) return;
    ts[out] = t;
    vsU32[out * 2 + HI] = hi;
    vsU32[out * 2 + LO] = lo;
    out++;
  };
  emit();
  let delta = 0;
  let leading = 0;
  let trailing = 0;
  for (let i = 1; i < n; i++) {
    if (i === 1) {
      delta = r.readVarint();
    } else {
      // The bucket prefix: 0, 10, 110, 1110 or 1111.
      let ones = 0;
      while (ones < 4 && r.readBit() === 1) ones++;
      let dod: number;
      if (ones === 0) dod = 0;
      else if (ones === 1) dod = signExtend(r.read(14), 14);
      else if (ones === 2) dod = signExtend(r.read(17), 17);
      else if (ones === 3) dod = signExtend(r.read(20), 20);
      else {
        const dHi = r.read(32) | 0;
        const dLo = r.read(32);
        dod = dHi * 2 ** 32 + dLo;
      }
      delta += dod;
    }
    t += delta;
    if (r.readBit() === 1) {
      if (r.readBit() === 1) {
        leading = r.read(5);
        const s = r.read(6);
        trailing = 64 - leading - (s === 0 ? 64 : s);
      }
      const sig = 64 - leading - trailing;
      let mHi = 0;
      let mLo: number;
      if (sig > 32) {
        mHi = r.read(sig - 32);
        mLo = r.read(32);
      } else {
        mLo = r.read(sig);
      }
      // Shift (mHi, mLo) left by `trailing` and XOR into the previous value.
      let xHi: number;
      let xLo: number;
      if (trailing === 0) {
        xHi = mHi;
        xLo = mLo;
      } else if (trailing < 32) {
        xHi = ((mHi << trailing) | (mLo >>> (32 - trailing))) >>> 0;
        xLo = (mLo << trailing) >>> 0;
      } else {
        xHi = (mLo << (trailing - 32)) >>> 0;
        xLo = 0;
      }
      hi = (hi ^ xHi) >>> 0;
      lo = (lo ^ xLo) >>> 0;
    }
    if (t > maxT) break; // ascending: nothing later can be in range
    emit();
  }
  return out;
}

/** Decodes a whole chunk. */
export function decodeChunk(chunk: Uint8Array): { timestamps: Float64Array; values: Float64Array } {
  const n = chunkCount(chunk);
  const ts = new Float64Array(n);
  const vs = new Float64Array(n);
  decodeChunkInto(chunk, ts, vs, 0);
  return { timestamps: ts, values: vs };
}

/** The two 32-bit halves (hi, lo) of a float64's bits. */
export function floatBits(v: number): [number, number] {
  scratch[0] = v;
  return [scratchU32[HI] as number, scratchU32[LO] as number];
}
