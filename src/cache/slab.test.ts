/** Unit tests of the byte slab behind the cache tier's string values. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { prng, TEST_SEED } from '../../test/helpers/random.js';
import { ByteSlab, MAX_SLOT_BYTES, PAGE_BYTES, slotSize } from './slab.js';

test('slot sizes are 16-byte bands up to 4 KiB; longer values get none', () => {
  assert.equal(slotSize(0), 16);
  assert.equal(slotSize(16), 16);
  assert.equal(slotSize(17), 32);
  assert.equal(slotSize(100), 112);
  assert.equal(slotSize(MAX_SLOT_BYTES), MAX_SLOT_BYTES);
  assert.equal(slotSize(MAX_SLOT_BYTES + 1), -1);
});

test(`[seed ${TEST_SEED}] random allocs, writes and releases never let two live values share bytes`, () => {
  const rnd = prng(TEST_SEED);
  const slab = new ByteSlab();
  const live = new Map<number, Buffer>();
  for (let op = 0; op < 20_000; op++) {
    if (live.size > 0 && rnd() < 0.4) {
      const [h, v] = [...live][Math.floor(rnd() * live.size)] as [number, Buffer];
      assert.deepEqual(slab.read(h, v.length), v);
      slab.release(h, slotSize(v.length));
      live.delete(h);
      continue;
    }
    const len = rnd() < 0.9 ? Math.floor(rnd() * 120) : Math.floor(rnd() * MAX_SLOT_BYTES);
    const v = Buffer.alloc(len, Math.floor(rnd() * 256));
    const h = slab.alloc(slotSize(len));
    assert.ok(h >= 0 && Number.isInteger(h) && h < 2 ** 31);
    assert.ok(!live.has(h));
    slab.write(h, v);
    live.set(h, v);
  }
  for (const [h, v] of live) assert.deepEqual(slab.read(h, v.length), v);
  // Freed slots were reused: far less than one page per 8,000 values of ~60 bytes.
  assert.ok(slab.bytes <= 4 * PAGE_BYTES, `${slab.bytes} bytes of pages`);
  slab.reset();
  assert.equal(slab.bytes, 0);
});

test('a read is a copy: rewriting the slot later does not change it', () => {
  const slab = new ByteSlab();
  const h = slab.alloc(slotSize(3));
  slab.write(h, Buffer.from('abc'));
  const before = slab.read(h, 3);
  slab.write(h, Buffer.from('xyz'));
  assert.equal(before.toString(), 'abc');
  assert.equal(slab.read(h, 3).toString(), 'xyz');
});
