// The view snapshot file (issue 17 target 5): it round-trips every field of every kv and is
// refused when torn or changed. How a store's start uses it (only when whole and current) is
// tested above the backend, in src/kv/view-snapshot.test.ts.
import assert from 'node:assert/strict';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { KeyValue } from '../../mvcc/index.js';
import { HEADER_BYTES, readViewSnapshot, SLAB_BYTES, ViewSnapshotError, writeViewSnapshot } from './view-snapshot.js';
import { tempDirs } from '../../../test/helpers/temp.js';

const tempDir = tempDirs('beacon-view-snapshot-');

function kv(key: string, value: string | Uint8Array, rev: number, extra: Partial<KeyValue> = {}): KeyValue {
  return { key, value: typeof value === 'string' ? Buffer.from(value) : value, createRevision: rev, modRevision: rev, version: 1, lease: 0, ...extra };
}

function plain(k: KeyValue): unknown {
  return { ...k, value: Buffer.from(k.value).toString('base64') };
}

describe('view snapshot file', () => {
  const kvs: KeyValue[] = [
    kv('a', '', 3),
    kv('b/ünïcødé/🔑', 'x'.repeat(300), 9, { version: 7, createRevision: 2, lease: 2 ** 40 + 5 }),
    kv('big', Buffer.alloc(SLAB_BYTES + 10, 7), 11),
    kv('sealed', Buffer.from([0, 1, 2, 255]), 12, { encrypted: true }),
    ...Array.from({ length: 5000 }, (_, i) => kv(`k/${String(i).padStart(5, '0')}`, `value-${i}-${'y'.repeat(i % 400)}`, 100 + i, { version: 1 + (i % 9) })),
  ];

  it('round-trips every field, in order, with values packed into shared slabs', async () => {
    const path = join(tempDir(), 'beacon.db-view');
    await writeViewSnapshot(path, { id: 77, revision: 6000, compactRevision: 5 }, kvs);
    const read = readViewSnapshot(path);
    assert.deepEqual(read.header, { id: 77, revision: 6000, compactRevision: 5, keys: kvs.length });
    assert.deepEqual(read.kvs.map(plain), kvs.map(plain));
    const buffers = new Set(read.kvs.map((k) => k.value.buffer));
    assert.ok(buffers.size < 20, `${kvs.length} values in ${buffers.size} buffers`);
  });

  it('is refused when truncated anywhere, or with any byte changed', async () => {
    const dir = tempDir();
    const path = join(dir, 'beacon.db-view');
    await writeViewSnapshot(path, { id: 1, revision: 6000, compactRevision: 0 }, kvs);
    const whole = readFileSync(path);
    const probe = join(dir, 'probe');
    for (const cut of [0, 8, HEADER_BYTES - 1, HEADER_BYTES, HEADER_BYTES + 10, Math.floor(whole.length / 2), whole.length - 24, whole.length - 1]) {
      writeFileSync(probe, whole.subarray(0, cut));
      assert.throws(() => readViewSnapshot(probe), ViewSnapshotError, `cut at ${cut}`);
    }
    for (const at of [9, 20, HEADER_BYTES + 3, HEADER_BYTES + 16 + 5, Math.floor(whole.length / 3), whole.length - 300, whole.length - 5]) {
      const bad = Buffer.from(whole);
      bad[at] = (bad[at] as number) ^ 0x20;
      writeFileSync(probe, bad);
      assert.throws(() => readViewSnapshot(probe), ViewSnapshotError, `byte ${at} flipped`);
    }
    writeFileSync(probe, Buffer.concat([whole, Buffer.from('x')]));
    assert.throws(() => readViewSnapshot(probe), /after its end record/);
    const other = Buffer.from(whole);
    other.writeUInt32LE(2, 8);
    writeFileSync(probe, other);
    assert.throws(() => readViewSnapshot(probe), /format version 2/);
  });

  it('is replaced atomically: a torn temporary file from a crash never hides the last whole one', async () => {
    const path = join(tempDir(), 'beacon.db-view');
    await writeViewSnapshot(path, { id: 1, revision: 10, compactRevision: 0 }, kvs.slice(0, 10));
    writeFileSync(`${path}.tmp`, readFileSync(path).subarray(0, 100));
    assert.equal(readViewSnapshot(path).kvs.length, 10);
    await writeViewSnapshot(path, { id: 2, revision: 20, compactRevision: 0 }, kvs.slice(0, 20));
    assert.equal(readViewSnapshot(path).header.id, 2);
    assert.throws(() => statSync(`${path}.tmp`), /ENOENT/);
  });
});
