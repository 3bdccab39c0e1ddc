/**
 * The append-only file: RESP-encoded write commands (Redis's AOF format, readable by
 * `redis-check-aof`), group-committed per event-loop turn, fsynced as `appendfsync` says, and
 * parsed back at start with a truncated last record tolerated.
 */
import { closeSync, fdatasync, fdatasyncSync, fstatSync, ftruncateSync, openSync, writeSync } from 'node:fs';
import { UnavailableError } from '../errors.js';

/**
 * Encodes one command as a RESP array of bulk strings (`*2\r\n$3\r\nGET\r\n$1\r\nk\r\n`), in
 * one buffer; strings are written as UTF-8.
 */
export function encodeCommand(argv: readonly (Buffer | string)[]): Buffer {
  const out = Buffer.allocUnsafe(encodedSize(argv));
  encodeCommandInto(argv, out, 0);
  return out;
}

/** The bytes {@link encodeCommand} makes of `argv`. */
function encodedSize(argv: readonly (Buffer | string)[]): number {
  let size = 3 + decimalLength(argv.length);
  for (const a of argv) {
    const n = typeof a === 'string' ? Buffer.byteLength(a) : a.length;
    size += 5 + decimalLength(n) + n;
  }
  return size;
}

/** {@link encodeCommand} into `out` at `off`, which has room for {@link encodedSize} bytes; @returns the offset after it. */
function encodeCommandInto(argv: readonly (Buffer | string)[], out: Buffer, at: number): number {
  let off = header(out, at, 0x2a, argv.length);
  for (const a of argv) {
    if (typeof a === 'string') {
      off = header(out, off, 0x24, Buffer.byteLength(a));
      off += out.write(a, off, 'utf8');
    } else {
      off = header(out, off, 0x24, a.length);
      // A short argument (a key, a small value) is copied by hand: cheaper than a native call.
      if (a.length <= 32) for (let i = 0; i < a.length; i++) out[off++] = a[i] as number;
      else off += a.copy(out, off);
    }
    out[off++] = 0x0d;
    out[off++] = 0x0a;
  }
  return off;
}

/** The staging buffer of commands not written yet, in bytes; one that grew past {@link MAX_KEPT_STAGE_BYTES} is given back after its write. */
const STAGE_BYTES = 64 * 1024;
const MAX_KEPT_STAGE_BYTES = 1024 * 1024;

/** Digits of a length or count (≥ 0). */
function decimalLength(n: number): number {
  let d = 1;
  for (let m = n; m >= 10; m = Math.floor(m / 10)) d++;
  return d;
}

/** Writes `<type><n>\r\n` at `off` (digits by hand: no native call per header); @returns the offset after it. */
function header(out: Buffer, off: number, type: number, n: number): number {
  out[off++] = type;
  const d = decimalLength(n);
  for (let i = off + d - 1, m = n; i >= off; i--, m = Math.floor(m / 10)) out[i] = 0x30 + (m % 10);
  off += d;
  out[off++] = 0x0d;
  out[off++] = 0x0a;
  return off;
}

/** What {@link parseAof} found. */
export interface ParsedAof {
  commands: Buffer[][];
  /** Byte offset just after each command. */
  ends: number[];
  /** Byte offset just after the last complete command. */
  validBytes: number;
  /** True when bytes after `validBytes` form an incomplete (truncated) last command. */
  truncated: boolean;
}

/** Reads a `\r\n`-terminated decimal after a type byte at `pos`; undefined when the line is incomplete. */
function readLine(buf: Buffer, pos: number): { n: number; next: number } | undefined | 'bad' {
  const end = buf.indexOf('\r\n', pos);
  if (end < 0) return buf.length - pos > 32 ? 'bad' : undefined;
  const text = buf.toString('latin1', pos, end);
  if (!/^-?\d{1,19}$/.test(text)) return 'bad';
  return { n: Number(text), next: end + 2 };
}

/**
 * Parses an AOF. A command cut off at the end of the file (a crash mid-write) is reported as
 * `truncated`, not as an error, as Redis's `aof-load-truncated yes` does.
 * @throws UnavailableError naming the byte offset when the file is corrupt before its end.
 */
export function parseAof(buf: Buffer): ParsedAof {
  const commands: Buffer[][] = [];
  const ends: number[] = [];
  let pos = 0;
  let validBytes = 0;
  const corrupt = (at: number): never => {
    throw new UnavailableError(`the append-only file is corrupt at byte ${at} (not a RESP command); fix or move it (redis-check-aof --fix can repair it)`);
  };
  outer: while (pos < buf.length) {
    const start = pos;
    if (buf[pos] !== 0x2a /* * */) corrupt(pos);
    const head = readLine(buf, pos + 1);
    if (head === undefined) break;
    if (head === 'bad' || head.n < 1) return corrupt(pos);
    pos = head.next;
    const argv: Buffer[] = [];
    for (let i = 0; i < head.n; i++) {
      if (pos >= buf.length) break outer;
      if (buf[pos] !== 0x24 /* $ */) corrupt(pos);
      const len = readLine(buf, pos + 1);
      if (len === undefined) break outer;
      if (len === 'bad' || len.n < 0) return corrupt(pos);
      if (len.next + len.n + 2 > buf.length) break outer;
      if (buf[len.next + len.n] !== 0x0d || buf[len.next + len.n + 1] !== 0x0a) corrupt(len.next + len.n);
      argv.push(buf.subarray(len.next, len.next + len.n));
      pos = len.next + len.n + 2;
    }
    commands.push(argv);
    ends.push(pos);
    validBytes = pos;
    void start;
  }
  return { commands, ends, validBytes, truncated: validBytes < buf.length };
}

/** A caller of {@link AofFile.durable} waiting until the commands appended before it are fsynced. */
interface Waiter {
  /** The count of commands appended when it asked: it resolves once that many are fsynced. */
  seq: number;
  resolve: () => void;
  reject: (e: Error) => void;
}

/**
 * An open AOF: commands are buffered as they are propagated, written together once per
 * event-loop turn (group commit), and fsynced off the event loop: after every write with
 * `always` (waiters resolve only then), once a second with `everysec`, never with `no`.
 *
 * Durability is tracked by sequence: every appended command takes the next number; a waiter
 * records the number current when it asked and resolves only when an fsync that started after
 * those commands were written has completed (never because "nothing is dirty" while its
 * commands still sit in the buffer).
 */
export class AofFile {
  private fd: number;
  /** Commands appended and not written yet: bytes `[0, staged)` of `stage`. */
  private stage = Buffer.allocUnsafe(STAGE_BYTES);
  private staged = 0;
  private scheduled = false;
  private waiting: Waiter[] = [];
  /** Commands appended, written (to the page cache) and fsynced so far. */
  private appendedSeq = 0;
  private writtenSeq = 0;
  private syncedSeq = 0;
  private syncing = false;
  private closed = false;
  private failure: Error | undefined;
  /** Bytes in the file (as written by this process). */
  size: number;

  /**
   * @param path the file (created 0600 when missing)
   * @param fsync the `appendfsync` mode; change with {@link setFsync}
   */
  constructor(
    readonly path: string,
    private fsync: 'always' | 'everysec' | 'no',
    private readonly onError: (err: Error) => void,
  ) {
    this.fd = openSync(path, 'a', 0o600);
    this.size = fstatSync(this.fd).size;
  }

  /** Changes the `appendfsync` mode. */
  setFsync(mode: 'always' | 'everysec' | 'no'): void {
    this.fsync = mode;
  }

  /** Cuts the file to `bytes` (dropping a truncated last record). */
  truncate(bytes: number): void {
    ftruncateSync(this.fd, bytes);
    this.size = bytes;
  }

  /** Queues one encoded command; it is written at the end of this event-loop turn. */
  append(encoded: Buffer): void {
    if (this.closed) return;
    this.room(encoded.length);
    this.staged += encoded.copy(this.stage, this.staged);
    this.appended();
  }

  /** Queues one command, encoded straight into the bytes to write ({@link encodeCommand}'s form). */
  appendCommand(argv: readonly (Buffer | string)[]): void {
    if (this.closed) return;
    this.room(encodedSize(argv));
    this.staged = encodeCommandInto(argv, this.stage, this.staged);
    this.appended();
  }

  /** Makes room for `n` more staged bytes. */
  private room(n: number): void {
    if (this.staged + n <= this.stage.length) return;
    const grown = Buffer.allocUnsafe(Math.max(2 * this.stage.length, this.staged + n));
    this.stage.copy(grown, 0, 0, this.staged);
    this.stage = grown;
  }

  private appended(): void {
    this.appendedSeq++;
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
  }

  /**
   * Resolves when what was appended so far is durable per the mode (`always`: written and
   * fsynced; otherwise at once).
   * @throws UnavailableError when writing or fsyncing failed.
   */
  durable(): Promise<void> {
    if (this.failure !== undefined) return Promise.reject(new UnavailableError('the append-only file cannot be written', { cause: this.failure }));
    if (this.fsync !== 'always' || this.syncedSeq >= this.appendedSeq) return Promise.resolve();
    const seq = this.appendedSeq;
    return new Promise((resolve, reject) => this.waiting.push({ seq, resolve, reject }));
  }

  /** Writes what is pending now (synchronously, to the page cache) and starts an fsync when `always`. */
  flush(): void {
    this.scheduled = false;
    if (this.closed) return;
    if (this.staged > 0) {
      const buf = this.stage.subarray(0, this.staged);
      const seq = this.appendedSeq;
      this.staged = 0;
      // A burst grew the stage: give the memory back.
      if (this.stage.length > MAX_KEPT_STAGE_BYTES) this.stage = Buffer.allocUnsafe(STAGE_BYTES);
      try {
        let off = 0;
        while (off < buf.length) off += writeSync(this.fd, buf, off, buf.length - off);
        this.size += buf.length;
        this.writtenSeq = seq;
        this.failure = undefined;
      } catch (err) {
        this.fail(err as Error);
        return;
      }
    }
    if (this.fsync === 'always') this.sync();
    else this.resolveUpTo(Infinity);
  }

  private fail(err: Error): void {
    this.failure = err;
    this.onError(err);
    const w = this.waiting;
    this.waiting = [];
    for (const x of w) x.reject(new UnavailableError('the append-only file cannot be written', { cause: err }));
  }

  /** Resolves the waiters whose commands are all within the first `seq` (in order of asking). */
  private resolveUpTo(seq: number): void {
    if (this.waiting.length === 0) return;
    const keep: Waiter[] = [];
    const done: Waiter[] = [];
    for (const w of this.waiting) (w.seq <= seq ? done : keep).push(w);
    this.waiting = keep;
    for (const w of done) w.resolve();
  }

  /**
   * Starts an fsync off the event loop unless one runs or everything written is fsynced already;
   * it covers what was written before it started, and another follows when more was written meanwhile.
   */
  sync(): void {
    if (this.syncing || this.closed) return;
    if (this.syncedSeq >= this.writtenSeq) {
      this.resolveUpTo(this.syncedSeq);
      return;
    }
    this.syncing = true;
    const target = this.writtenSeq;
    fdatasync(this.fd, (err) => {
      this.syncing = false;
      if (this.closed) return;
      if (err !== null) {
        this.fail(err);
        return;
      }
      this.syncedSeq = Math.max(this.syncedSeq, target);
      this.resolveUpTo(this.syncedSeq);
      // Writes that landed during this fsync need another one; those still pending get theirs after their flush.
      if (this.fsync === 'always' && this.writtenSeq > this.syncedSeq) this.sync();
    });
  }

  /** Writes pending commands and fsyncs synchronously (shutdown, before a swap). */
  flushSync(): void {
    if (this.closed) return;
    if (this.scheduled || this.staged > 0) {
      const fsync = this.fsync;
      this.fsync = 'no';
      this.flush();
      this.fsync = fsync;
    }
    if (this.failure !== undefined) return;
    try {
      fdatasyncSync(this.fd);
    } catch (err) {
      this.fail(err as Error);
      return;
    }
    this.syncedSeq = this.writtenSeq;
    this.resolveUpTo(this.syncedSeq);
  }

  /** Flushes, fsyncs and closes. */
  close(): void {
    if (this.closed) return;
    this.flushSync();
    this.closed = true;
    try {
      closeSync(this.fd);
    } catch {
      // already closed by the OS: nothing to lose
    }
    this.resolveUpTo(Infinity);
  }

  /** Closes without writing what is pending (a rewrite replaced this file and holds it all). */
  abandon(): void {
    if (this.closed) return;
    this.closed = true;
    this.staged = 0;
    try {
      closeSync(this.fd);
    } catch {
      // nothing to lose: the file was replaced
    }
  }

  /**
   * Hands the waiters of this file to another (when a rewrite replaces it: what they wait for
   * is in the new file, which was fsynced before the swap).
   */
  takeWaiters(): { resolve: () => void; reject: (e: Error) => void }[] {
    const w = this.waiting;
    this.waiting = [];
    return w;
  }
}
