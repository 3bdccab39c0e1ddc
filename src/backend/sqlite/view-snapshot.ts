/**
 * The view snapshot file (`beacon.db-view`): every live kv of the in-memory view at one revision,
 * packed so that a start reads it in one sequential pass instead of querying the log (issue 17,
 * etcd's approach: a snapshot plus the log after it). It is an optimisation, never the source of
 * truth: the backend uses it only when it is whole (every block's CRC-32, the end record), of
 * this format version, the one the database recorded (`meta.view_snapshot_id`), not ahead of the
 * database and not behind its compaction; otherwise the view is rebuilt from the log.
 *
 * Layout, little-endian:
 * - header, {@link HEADER_BYTES}: magic `BCNVIEW\n`, format version (u32), header size (u32),
 *   snapshot id, revision, compact revision when written, key count (f64 each), CRC-32 of the
 *   bytes before it (u32), padding;
 * - blocks: a 16-byte block header (records, meta bytes, value bytes, CRC-32 of the first 12
 *   header bytes, the meta and the values: u32 each), then the records' meta (per record: key
 *   bytes and value bytes u32, createRevision, modRevision, version, lease f64, flags u8 with bit
 *   0 = encrypted, then the key's UTF-8 bytes), then their values back to back;
 * - end: magic `BCNVEND\n`, records (f64), blocks (u32), CRC-32 of the block CRCs in order (u32).
 *
 * A block's values (up to {@link SLAB_BYTES}, or one larger value) are read into one buffer of
 * their own and each value is a view into it: one allocation per megabyte instead of one per
 * value (see {@link ValueSlabs} for the memory trade-off).
 */
import { randomInt } from 'node:crypto';
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { crc32 } from 'node:zlib';
import type { KeyValue } from '../../mvcc/index.js';

/** The format version this build writes and reads; a file of another version is ignored. */
export const VIEW_SNAPSHOT_VERSION = 1;
/** Bytes of the file header. */
export const HEADER_BYTES = 64;
/** Bytes of a block header. */
export const BLOCK_HEADER_BYTES = 16;
/** Bytes of the end record. */
export const END_BYTES = 24;
/** Values per block (and per slab in memory): about this many bytes, or one value when larger. */
export const SLAB_BYTES = 1 << 20;
/** Fixed bytes of one record's meta before its key. */
const RECORD_FIXED_BYTES = 4 + 4 + 8 * 4 + 1;
const MAGIC = Buffer.from('BCNVIEW\n', 'latin1');
const END_MAGIC = Buffer.from('BCNVEND\n', 'latin1');

/** Why a view snapshot file cannot be used; the backend then rebuilds the view from the log. */
export class ViewSnapshotError extends Error {
  override name = 'ViewSnapshotError';
}

/** What a view snapshot's header says. `id` is random per snapshot; the database records the current one. */
export interface ViewSnapshotHeader {
  id: number;
  /** Every revision up to this one is in the snapshot. */
  revision: number;
  /** The compact revision when it was written (informational: the load checks the database's). */
  compactRevision: number;
  keys: number;
}

/** A fresh snapshot id: a random positive integer that fits SQLite's INTEGER and a double exactly. */
export function newSnapshotId(): number {
  return randomInt(1, 2 ** 47);
}

/**
 * Packs values into shared slabs of {@link SLAB_BYTES}: each value is copied into the current slab
 * and returned as a `Buffer` view of it. Trade-off: a slab's memory is returned only when no
 * value in it is referenced any more, so a few long-lived keys can keep a slab of since-replaced
 * values alive; the slabs never hold more than the values loaded at start, and the next start
 * packs only live values. A slab is never written again once a value is handed out, so a value
 * read never changes.
 */
export class ValueSlabs {
  private slab = Buffer.alloc(0);
  private used = 0;

  /** A copy of `v` in a slab (values above a quarter slab get a buffer of their own). */
  copy(v: Uint8Array): Buffer {
    const n = v.byteLength;
    if (n === 0) return Buffer.alloc(0);
    if (n > SLAB_BYTES / 4) return Buffer.from(v);
    if (this.used + n > this.slab.length) {
      this.slab = Buffer.alloc(SLAB_BYTES);
      this.used = 0;
    }
    this.slab.set(v, this.used);
    const out = this.slab.subarray(this.used, this.used + n);
    this.used += n;
    return out;
  }
}

function writeHeader(h: ViewSnapshotHeader): Buffer {
  const b = Buffer.alloc(HEADER_BYTES);
  MAGIC.copy(b, 0);
  b.writeUInt32LE(VIEW_SNAPSHOT_VERSION, 8);
  b.writeUInt32LE(HEADER_BYTES, 12);
  b.writeDoubleLE(h.id, 16);
  b.writeDoubleLE(h.revision, 24);
  b.writeDoubleLE(h.compactRevision, 32);
  b.writeDoubleLE(h.keys, 40);
  b.writeUInt32LE(crc32(b.subarray(0, 48)), 48);
  return b;
}

/**
 * Reads and checks the header of the snapshot at `path`.
 * @throws ViewSnapshotError when it is missing, short, not a view snapshot, of another format
 * version or its header checksum fails.
 */
export function readViewSnapshotHeader(path: string): ViewSnapshotHeader {
  const fd = openSnapshot(path);
  try {
    return parseHeader(fd);
  } finally {
    closeSync(fd);
  }
}

/** Opens the snapshot at `path` for reading. @throws ViewSnapshotError when it is missing or cannot be opened. */
function openSnapshot(path: string): number {
  try {
    return openSync(path, 'r');
  } catch (err) {
    throw new ViewSnapshotError((err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no view snapshot' : `cannot open the view snapshot: ${(err as Error).message}`);
  }
}

function readFully(fd: number, buf: Buffer, length: number, position: number): void {
  let done = 0;
  while (done < length) {
    const n = readSync(fd, buf, done, length - done, position + done);
    if (n === 0) throw new ViewSnapshotError(`the view snapshot is truncated (at byte ${position + done})`);
    done += n;
  }
}

function parseHeader(fd: number): ViewSnapshotHeader {
  const b = Buffer.alloc(HEADER_BYTES);
  readFully(fd, b, HEADER_BYTES, 0);
  if (!b.subarray(0, 8).equals(MAGIC)) throw new ViewSnapshotError('not a view snapshot (bad magic)');
  const version = b.readUInt32LE(8);
  if (version !== VIEW_SNAPSHOT_VERSION) throw new ViewSnapshotError(`view snapshot format version ${version}, this build reads ${VIEW_SNAPSHOT_VERSION}`);
  if (b.readUInt32LE(48) !== crc32(b.subarray(0, 48)) || b.readUInt32LE(12) !== HEADER_BYTES) throw new ViewSnapshotError('the view snapshot header checksum does not match');
  return { id: b.readDoubleLE(16), revision: b.readDoubleLE(24), compactRevision: b.readDoubleLE(32), keys: b.readDoubleLE(40) };
}

/**
 * Reads the whole snapshot at `path`, checking every block's checksum and the end record, and
 * returns its kvs in the order written (key order) with each value a view into its block's slab.
 * Nothing is returned unless all of it is whole.
 * @throws ViewSnapshotError when the file is missing, truncated, corrupt or of another version.
 */
export function readViewSnapshot(path: string): { header: ViewSnapshotHeader; kvs: KeyValue[] } {
  const fd = openSnapshot(path);
  try {
    const size = fstatSync(fd).size;
    const header = parseHeader(fd);
    const kvs: KeyValue[] = new Array(header.keys > 0 && header.keys < 2 ** 32 ? header.keys : 0);
    let n = 0;
    let pos = HEADER_BYTES;
    let blocks = 0;
    let chain = 0;
    const bh = Buffer.alloc(BLOCK_HEADER_BYTES);
    let meta = Buffer.alloc(64 * 1024);
    for (;;) {
      if (pos + END_BYTES > size) throw new ViewSnapshotError(`the view snapshot is truncated (no end record after ${n} keys)`);
      readFully(fd, bh, 8, pos);
      if (bh.subarray(0, 8).equals(END_MAGIC)) break;
      readFully(fd, bh, BLOCK_HEADER_BYTES, pos);
      const records = bh.readUInt32LE(0);
      const metaBytes = bh.readUInt32LE(4);
      const valueBytes = bh.readUInt32LE(8);
      const sum = bh.readUInt32LE(12);
      pos += BLOCK_HEADER_BYTES;
      // Lengths are checked against the file before anything is allocated for them.
      if (metaBytes + valueBytes > size - pos - END_BYTES || metaBytes < records * RECORD_FIXED_BYTES) {
        throw new ViewSnapshotError(`the view snapshot is truncated or corrupt (block ${blocks} claims ${metaBytes} + ${valueBytes} bytes)`);
      }
      if (meta.length < metaBytes) meta = Buffer.alloc(Math.max(metaBytes, meta.length * 2));
      readFully(fd, meta, metaBytes, pos);
      pos += metaBytes;
      const slab = Buffer.allocUnsafeSlow(valueBytes);
      readFully(fd, slab, valueBytes, pos);
      pos += valueBytes;
      if (crc32(slab, crc32(meta.subarray(0, metaBytes), crc32(bh.subarray(0, 12)))) !== sum) {
        throw new ViewSnapshotError(`the view snapshot's block ${blocks} fails its checksum`);
      }
      chain = crc32(bh.subarray(12, 16), chain);
      blocks++;
      let m = 0;
      let v = 0;
      for (let i = 0; i < records; i++) {
        const keyBytes = meta.readUInt32LE(m);
        const len = meta.readUInt32LE(m + 4);
        const kv: KeyValue = {
          key: meta.toString('utf8', m + RECORD_FIXED_BYTES, m + RECORD_FIXED_BYTES + keyBytes),
          value: len === 0 ? Buffer.alloc(0) : Buffer.from(slab.buffer, slab.byteOffset + v, len),
          createRevision: meta.readDoubleLE(m + 8),
          modRevision: meta.readDoubleLE(m + 16),
          version: meta.readDoubleLE(m + 24),
          lease: meta.readDoubleLE(m + 32),
        };
        if ((meta[m + 40] as number) & 1) kv.encrypted = true;
        m += RECORD_FIXED_BYTES + keyBytes;
        v += len;
        if (m > metaBytes || v > valueBytes) throw new ViewSnapshotError(`the view snapshot's block ${blocks - 1} is malformed`);
        kvs[n++] = kv;
      }
      if (m !== metaBytes || v !== valueBytes) throw new ViewSnapshotError(`the view snapshot's block ${blocks - 1} is malformed`);
    }
    const end = Buffer.alloc(END_BYTES);
    readFully(fd, end, END_BYTES, pos);
    if (pos + END_BYTES !== size) throw new ViewSnapshotError('the view snapshot has bytes after its end record');
    if (end.readDoubleLE(8) !== n || n !== header.keys || end.readUInt32LE(16) !== blocks || end.readUInt32LE(20) !== chain) {
      throw new ViewSnapshotError(`the view snapshot's end record does not match its blocks (${n} keys in ${blocks} blocks)`);
    }
    kvs.length = n;
    return { header, kvs };
  } finally {
    closeSync(fd);
  }
}

/**
 * Writes `kvs` (every live kv at `header.revision`, in key order) to `path` atomically: into
 * `path.tmp`, fsynced, renamed over `path`, then the directory fsynced. A crash at any point
 * leaves the old file or the new one whole (a torn temporary file is never read). Values are
 * only read, never changed. Yields to the event loop between blocks.
 * @throws the file system's error (the temporary file is removed).
 */
export async function writeViewSnapshot(path: string, header: Omit<ViewSnapshotHeader, 'keys'>, kvs: readonly KeyValue[]): Promise<void> {
  const tmp = `${path}.tmp`;
  const fh = await open(tmp, 'w', 0o600);
  let ok = false;
  try {
    let pos = 0;
    const put = async (b: Buffer): Promise<void> => {
      await fh.write(b, 0, b.length, pos);
      pos += b.length;
    };
    await put(writeHeader({ ...header, keys: kvs.length }));
    let blocks = 0;
    let chain = 0;
    let meta = Buffer.alloc(256 * 1024);
    for (let i = 0; i < kvs.length; ) {
      // One block: records until its values pass SLAB_BYTES (at least one record).
      let m = 0;
      let valueBytes = 0;
      const start = i;
      for (; i < kvs.length; i++) {
        const kv = kvs[i] as KeyValue;
        const len = kv.value.byteLength;
        if (i > start && valueBytes + len > SLAB_BYTES) break;
        const keyBytes = Buffer.byteLength(kv.key);
        if (m + RECORD_FIXED_BYTES + keyBytes > meta.length) {
          const grown = Buffer.alloc(Math.max(meta.length * 2, m + RECORD_FIXED_BYTES + keyBytes));
          meta.copy(grown, 0, 0, m);
          meta = grown;
        }
        meta.writeUInt32LE(keyBytes, m);
        meta.writeUInt32LE(len, m + 4);
        meta.writeDoubleLE(kv.createRevision, m + 8);
        meta.writeDoubleLE(kv.modRevision, m + 16);
        meta.writeDoubleLE(kv.version, m + 24);
        meta.writeDoubleLE(kv.lease, m + 32);
        meta[m + 40] = kv.encrypted === true ? 1 : 0;
        meta.write(kv.key, m + RECORD_FIXED_BYTES, 'utf8');
        m += RECORD_FIXED_BYTES + keyBytes;
        valueBytes += len;
      }
      const values = Buffer.allocUnsafe(valueBytes);
      let v = 0;
      for (let j = start; j < i; j++) {
        const value = (kvs[j] as KeyValue).value;
        values.set(value, v);
        v += value.byteLength;
      }
      const bh = Buffer.alloc(BLOCK_HEADER_BYTES);
      bh.writeUInt32LE(i - start, 0);
      bh.writeUInt32LE(m, 4);
      bh.writeUInt32LE(valueBytes, 8);
      bh.writeUInt32LE(crc32(values, crc32(meta.subarray(0, m), crc32(bh.subarray(0, 12)))), 12);
      chain = crc32(bh.subarray(12, 16), chain);
      blocks++;
      await put(bh);
      await put(meta.subarray(0, m)); // awaited before the next block reuses it
      await put(values);
    }
    const end = Buffer.alloc(END_BYTES);
    END_MAGIC.copy(end, 0);
    end.writeDoubleLE(kvs.length, 8);
    end.writeUInt32LE(blocks, 16);
    end.writeUInt32LE(chain, 20);
    await put(end);
    await fh.sync();
    ok = true;
  } finally {
    await fh.close();
    if (!ok) await rm(tmp, { force: true });
  }
  await rename(tmp, path);
  // The rename is durable only once the directory is.
  const dir = await open(dirname(path), 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}
