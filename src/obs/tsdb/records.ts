/**
 * Framed record files: each record is `[u32 length][u32 crc32][payload]` (little-endian), so a
 * reader after a crash finds where the last complete record ends and ignores a torn tail.
 */
import { closeSync, existsSync, fsyncSync, openSync, readFileSync, ftruncateSync, writeSync } from 'node:fs';
import { crc32 } from 'node:zlib';

const HEADER = 8;

/** Frames payloads into one buffer ready to be written in a single call. */
export function frameRecords(payloads: readonly Uint8Array[]): Buffer {
  let total = 0;
  for (const p of payloads) total += HEADER + p.length;
  const out = Buffer.allocUnsafe(total);
  let at = 0;
  for (const p of payloads) {
    out.writeUInt32LE(p.length, at);
    out.writeUInt32LE(crc32(p), at + 4);
    out.set(p, at + HEADER);
    at += HEADER + p.length;
  }
  return out;
}

/**
 * Reads every complete, intact record of a file.
 * @returns the payloads and the byte length of the valid prefix (a torn or corrupt tail after it is ignored).
 */
export function readRecords(path: string): { records: Buffer[]; validBytes: number; totalBytes: number } {
  if (!existsSync(path)) return { records: [], validBytes: 0, totalBytes: 0 };
  const buf = readFileSync(path);
  const records: Buffer[] = [];
  let at = 0;
  while (at + HEADER <= buf.length) {
    const len = buf.readUInt32LE(at);
    const sum = buf.readUInt32LE(at + 4);
    if (at + HEADER + len > buf.length) break;
    const payload = buf.subarray(at + HEADER, at + HEADER + len);
    if (crc32(payload) !== sum) break;
    records.push(payload);
    at += HEADER + len;
  }
  return { records, validBytes: at, totalBytes: buf.length };
}

/** An append-only record file written with synchronous writes (each append is in the OS before it returns). */
export class RecordWriter {
  private fd: number;
  /** Bytes in the file. */
  size: number;

  /** Opens `path` for appending, first cutting it to `validBytes` (drops a torn tail left by a crash). */
  constructor(readonly path: string, validBytes?: number) {
    this.fd = openSync(path, 'a+');
    if (validBytes !== undefined) ftruncateSync(this.fd, validBytes);
    this.size = validBytes ?? readRecords(path).validBytes;
  }

  /** Appends records in one `write`; once it returns, a process crash (SIGKILL) cannot lose them. */
  append(payloads: readonly Uint8Array[]): void {
    const buf = frameRecords(payloads);
    let off = 0;
    while (off < buf.length) off += writeSync(this.fd, buf, off, buf.length - off);
    this.size += buf.length;
  }

  /** Flushes to the disk (survives power loss). */
  sync(): void {
    fsyncSync(this.fd);
  }

  close(): void {
    if (this.fd < 0) return;
    closeSync(this.fd);
    this.fd = -1;
  }
}
