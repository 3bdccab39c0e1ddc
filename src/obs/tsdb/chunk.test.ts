import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { ChunkEncoder, chunkCount, decodeChunk, decodeChunkInto, floatBits } from './chunk.js';

function bitsOf(v: number): string {
  const [hi, lo] = floatBits(v);
  return `${hi.toString(16)}:${lo.toString(16)}`;
}

function bitsAt(values: Float64Array, i: number): string {
  const u = new Uint32Array(values.buffer, values.byteOffset + i * 8, 2);
  return `${(u[1] as number).toString(16)}:${(u[0] as number).toString(16)}`;
}

function roundTrip(ts: number[], vs: number[]): void {
  const enc = new ChunkEncoder();
  for (let i = 0; i < ts.length; i++) enc.append(ts[i] as number, vs[i] as number);
  const chunk = enc.bytes();
  assert.equal(chunkCount(chunk), ts.length);
  const out = decodeChunk(chunk);
  assert.deepEqual([...out.timestamps], ts);
  for (let i = 0; i < vs.length; i++) assert.equal(bitsAt(out.values, i), bitsOf(vs[i] as number), `value ${i}`);
}

describe('chunk encoding', () => {
  it('round-trips regular 15 s samples in under 2 bytes per sample', () => {
    const ts: number[] = [];
    const vs: number[] = [];
    for (let i = 0; i < 120; i++) {
      ts.push(1_700_000_000_000 + i * 15_000);
      vs.push(1000 + i); // a counter that moves every scrape
    }
    roundTrip(ts, vs);
    const enc = new ChunkEncoder();
    for (let i = 0; i < ts.length; i++) enc.append(ts[i] as number, vs[i] as number);
    assert.ok(enc.size / 120 < 2, `bytes per sample ${enc.size / 120}`);
    const jittery: number[] = ts.map((t, i) => t + (i % 7 === 0 ? 3 : 0));
    roundTrip(jittery, vs.map((v, i) => v * (i % 3)));
  });

  it('keeps edge values exactly: ±0, ±Inf, NaN payloads, the stale marker, subnormals, extremes', () => {
    const stale = new Float64Array(new Uint32Array([2, 0x7ff00000]).buffer)[0] as number;
    const vs = [0, -0, Infinity, -Infinity, NaN, stale, Number.MIN_VALUE, -Number.MIN_VALUE, Number.MAX_VALUE, -Number.MAX_VALUE, 1, 1, stale, 0.1, 1e300, -1e-300];
    const ts = vs.map((_, i) => 1000 * i);
    roundTrip(ts, vs);
  });

  it('keeps timestamps with large, negative and irregular deltas', () => {
    roundTrip([0], [1]);
    roundTrip([-5, 7], [1, 2]);
    roundTrip([0, 1, 2, 10_000, 10_001, 10_000 + 2 ** 40, 2 ** 41, 2 ** 41 + 1, 8.64e15], [1, 2, 3, 4, 5, 6, 7, 8, 9]);
    roundTrip([1_000, 1_000 + 8192, 1_000 + 8192 * 3, 1_000 + 8192 * 3 + 65_536 * 4, 2_000_000, 2_600_000, 2_600_001], [0, 0, 0, 0, 0, 0, 0]);
  });

  it('round-trips any ascending timestamps and any float bits (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 0, max: 2 ** 36 }), fc.double({ noDefaultInfinity: false, noNaN: false })), { minLength: 1, maxLength: 200 }),
        (pairs) => {
          let t = 1_600_000_000_000;
          const ts: number[] = [];
          const vs: number[] = [];
          for (const [d, v] of pairs) {
            t += d;
            ts.push(t);
            vs.push(v);
          }
          roundTrip(ts, vs);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('decodes only the samples inside a time range', () => {
    const enc = new ChunkEncoder();
    for (let i = 0; i < 10; i++) enc.append(i * 10, i);
    const ts = new Float64Array(10);
    const vs = new Float64Array(10);
    const end = decodeChunkInto(enc.bytes(), ts, vs, 0, 25, 62);
    assert.deepEqual([...ts.subarray(0, end)], [30, 40, 50, 60]);
    assert.deepEqual([...vs.subarray(0, end)], [3, 4, 5, 6]);
  });

  it('refuses a truncated chunk instead of inventing samples', () => {
    const enc = new ChunkEncoder();
    for (let i = 0; i < 50; i++) enc.append(i * 15_000 + (i * 37) % 11, Math.sin(i));
    const bytes = enc.bytes();
    assert.throws(() => decodeChunk(bytes.subarray(0, bytes.length - 20)), RangeError);
  });
});
