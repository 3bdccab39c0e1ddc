/**
 * The time-series store: an index of series by label set, Gorilla chunks per series, a
 * write-ahead log of every accepted push, periodic checkpoints, retention and 5 m / 1 h rollups.
 *
 * On disk (`dir`): `series.log` (one record per series ever created), `chunks-NNNNNN` (closed
 * chunks, appended at each checkpoint), `head.ckpt` (the open chunks at the last checkpoint and the
 * WAL segment to replay from), `wal/NNNNNNNN` (the samples of every push since, written before
 * the push is acknowledged). A push is in the operating system before it is acknowledged (a
 * SIGKILL loses nothing acknowledged) and on the disk within `fsyncIntervalMs` (power loss).
 */
import { fsyncSync, mkdirSync, openSync, closeSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { RE2JS } from 're2js';
import { InvalidArgumentError, TooLargeError, UnavailableError } from '../../errors.js';
import { ChunkEncoder, SAMPLES_PER_CHUNK, chunkCount, decodeChunkInto } from './chunk.js';
import { RecordWriter, frameRecords, readRecords } from './records.js';
import { STALE_NAN_BITS, TooManySamplesError, type Labels, type Matcher, type Querier, type SelectHints, type SeriesSamples } from './types.js';

/** Default retention of raw samples: 15 days (Prometheus's default). */
export const DEFAULT_RETENTION_MS = 15 * 86_400_000;
/** Default out-of-order window: a sample up to 10 minutes older than its series' newest is accepted. */
export const DEFAULT_OOO_WINDOW_MS = 10 * 60_000;
/** Default cap on series in the store. */
export const DEFAULT_MAX_SERIES = 1_000_000;
/** Default cap on new series one push may create. */
export const DEFAULT_MAX_NEW_SERIES_PER_PUSH = 10_000;

/** A rollup: the last sample of every `intervalMs` bucket, kept for `retentionMs`. */
export interface RollupSpec {
  intervalMs: number;
  retentionMs: number;
}

/** Default rollups: 5 minutes kept 90 days, 1 hour kept 400 days. */
export const DEFAULT_ROLLUPS: readonly RollupSpec[] = [
  { intervalMs: 5 * 60_000, retentionMs: 90 * 86_400_000 },
  { intervalMs: 3_600_000, retentionMs: 400 * 86_400_000 },
];

/** Options of {@link Tsdb}. */
export interface TsdbOptions {
  /** Directory for the files; null keeps everything in memory (nothing survives a restart). */
  dir: string | null;
  /** How long raw samples are kept, ms. Default {@link DEFAULT_RETENTION_MS}. */
  retentionMs?: number;
  /** How much older than a series' newest sample a sample may be and still be accepted, ms; 0 refuses every out-of-order sample. */
  oooWindowMs?: number;
  /** Most series in the store (`--max-series`). */
  maxSeries?: number;
  /** Most new series one push may create. */
  maxNewSeriesPerPush?: number;
  /** Rollups kept besides raw samples; `[]` for none. */
  rollups?: readonly RollupSpec[];
  /** Interval of `fsync` of the WAL, ms. Default 10 000. */
  fsyncIntervalMs?: number;
  /** Interval between checkpoints (closed chunks written, WAL truncated), ms. Default 5 minutes. */
  checkpointIntervalMs?: number;
  /** A checkpoint also runs when the WAL grows past this many bytes. Default 64 MiB. */
  checkpointWalBytes?: number;
  /** The clock, ms. */
  now?: () => number;
}

/** One series of a push: its label set (sorted by name, with `__name__`) and its samples. */
export interface SeriesInput {
  labels: Labels;
  /** Timestamps in ms. */
  timestamps: ArrayLike<number>;
  /** Values, in a typed array so NaN payloads (the stale marker) keep their bits. */
  values: Float64Array;
}

/** What an accepted push did. */
export interface AppendResult {
  samples: number;
  newSeries: number;
  /** Samples identical to one already stored (same timestamp and value), ignored as Prometheus does. */
  duplicates: number;
}

interface StoredChunk {
  minT: number;
  maxT: number;
  count: number;
  bytes: Uint8Array;
}

interface RollupState {
  spec: RollupSpec;
  chunks: StoredChunk[];
  head: ChunkEncoder | null;
  /** The bucket (t / interval, floored) of `lastT`; -Infinity before the first sample. */
  bucket: number;
  lastT: number;
  lastHi: number;
  lastLo: number;
}

class MemSeries {
  chunks: StoredChunk[] = [];
  head: ChunkEncoder | null = null;
  /** Out-of-order samples not yet in a chunk. */
  oooT: number[] = [];
  oooV: number[] = []; // bits as [hi, lo] pairs: a plain number array would quiet a signalling NaN
  /** Whether chunks may overlap in time (out-of-order samples were stored). */
  overlapping = false;
  lastT = -Infinity;
  lastHi = 0;
  lastLo = 0;
  rollups: RollupState[];
  constructor(
    readonly ref: number,
    readonly labels: Labels,
    readonly key: string,
    rollups: readonly RollupSpec[],
  ) {
    this.rollups = rollups.map((spec) => ({ spec, chunks: [], head: null, bucket: -Infinity, lastT: 0, lastHi: 0, lastLo: 0 }));
  }
}

const scratch = new Float64Array(1);
const scratchU32 = new Uint32Array(scratch.buffer);
const OOO_FLAG = 0x80000000;
const STALE_HI = Number(STALE_NAN_BITS >> 32n);
const STALE_LO = Number(STALE_NAN_BITS & 0xffffffffn);

/** Whether a value is Prometheus's stale marker (by its bits: other NaNs are ordinary values). */
export function isStaleMarker(v: number): boolean {
  scratch[0] = v;
  return scratchU32[1] === STALE_HI && scratchU32[0] === STALE_LO;
}

/** The stale marker as a number (store it only through typed arrays: a plain array may quiet it). */
export const STALE_MARKER: number = (() => {
  const f = new Float64Array(1);
  const u = new Uint32Array(f.buffer);
  u[0] = STALE_LO;
  u[1] = STALE_HI;
  return f[0] as number;
})();

/** The identity string of a label set (sorted labels). */
export function labelsKey(labels: Labels): string {
  let s = '';
  for (const l of labels) s += `${l.name}\u00fe${l.value}\u00ff`;
  return s;
}

function encodeLabels(ref: number, labels: Labels): Buffer {
  const json = Buffer.from(JSON.stringify(labels.map((l) => [l.name, l.value])));
  const out = Buffer.allocUnsafe(4 + json.length);
  out.writeUInt32LE(ref, 0);
  out.set(json, 4);
  return out;
}

function encodeChunkRecord(ref: number, kind: number, c: StoredChunk): Buffer {
  const out = Buffer.allocUnsafe(4 + 1 + 16 + c.bytes.length);
  out.writeUInt32LE(ref, 0);
  out.writeUInt8(kind, 4);
  out.writeDoubleLE(c.minT, 5);
  out.writeDoubleLE(c.maxT, 13);
  out.set(c.bytes, 21);
  return out;
}

function toStored(enc: ChunkEncoder): StoredChunk {
  return { minT: enc.minT, maxT: enc.maxT, count: enc.count, bytes: enc.bytes() };
}

function chunkFromBytes(bytes: Uint8Array): ChunkEncoder {
  const n = chunkCount(bytes);
  const ts = new Float64Array(n);
  const vs = new Float64Array(n);
  decodeChunkInto(bytes, ts, vs, 0);
  const u = new Uint32Array(vs.buffer);
  const enc = new ChunkEncoder(bytes.length + 16);
  for (let i = 0; i < n; i++) enc.appendBits(ts[i] as number, u[i * 2 + 1] as number, u[i * 2] as number);
  return enc;
}

type Predicate = (value: string) => boolean;

const regexCache = new Map<string, RE2JS>();

function compileRegex(pattern: string): RE2JS {
  let re = regexCache.get(pattern);
  if (re === undefined) {
    try {
      re = RE2JS.compile(`^(?:${pattern})$`);
    } catch (err) {
      throw new InvalidArgumentError(`invalid regular expression '${pattern}': ${(err as Error).message}`);
    }
    if (regexCache.size > 1000) regexCache.clear();
    regexCache.set(pattern, re);
  }
  return re;
}

const EMPTY_REFS: ReadonlySet<number> = new Set();

/** A matcher as a predicate over a label's value ('' when the series lacks the label). */
export function matcherPredicate(m: Matcher): Predicate {
  switch (m.op) {
    case '=':
      return (v) => v === m.value;
    case '!=':
      return (v) => v !== m.value;
    case '=~': {
      const re = compileRegex(m.value);
      return (v) => re.matches(v);
    }
    case '!~': {
      const re = compileRegex(m.value);
      return (v) => !re.matches(v);
    }
  }
}

/**
 * The store. It implements {@link Querier} for the PromQL engine (synchronously).
 * Single-threaded by design: a push is checked whole, then written to the WAL and applied in the
 * same tick, so no reader ever sees half of it.
 */
export class Tsdb implements Querier {
  readonly retentionMs: number;
  readonly oooWindowMs: number;
  readonly maxSeries: number;
  readonly maxNewSeriesPerPush: number;
  readonly rollupSpecs: readonly RollupSpec[];
  private readonly dir: string | null;
  private readonly now: () => number;
  private readonly byKey = new Map<string, MemSeries>();
  private readonly byRef = new Map<number, MemSeries>();
  /** label name → value → refs. */
  private readonly postings = new Map<string, Map<string, Set<number>>>();
  private nextRef = 1;
  private seriesLog: RecordWriter | undefined;
  private wal: RecordWriter | undefined;
  private walSegment = 0;
  private chunkFile: RecordWriter | undefined;
  private chunkFileIndex = 0;
  /** Closed chunks not yet written to a chunk file (their samples are in the WAL meanwhile). */
  private pending: { ref: number; kind: number; chunk: StoredChunk }[] = [];
  private timers: NodeJS.Timeout[] = [];
  private closed = false;
  /** Samples accepted since start (for metrics). */
  samplesAppended = 0;
  /** Out-of-order samples accepted since start. */
  oooAppended = 0;
  /** Duration of the last open (load + WAL replay), ms. */
  openMs = 0;

  constructor(opts: TsdbOptions) {
    this.dir = opts.dir;
    this.retentionMs = opts.retentionMs ?? DEFAULT_RETENTION_MS;
    this.oooWindowMs = opts.oooWindowMs ?? DEFAULT_OOO_WINDOW_MS;
    this.maxSeries = opts.maxSeries ?? DEFAULT_MAX_SERIES;
    this.maxNewSeriesPerPush = opts.maxNewSeriesPerPush ?? DEFAULT_MAX_NEW_SERIES_PER_PUSH;
    this.rollupSpecs = opts.rollups ?? DEFAULT_ROLLUPS;
    this.now = opts.now ?? Date.now;
    if (this.dir !== null) this.load(this.dir, opts);
  }

  /** Series in the store. */
  get seriesCount(): number {
    return this.byKey.size;
  }

  // --- ingestion ----------------------------------------------------------------------------------

  /**
   * Appends a push whole, or refuses it whole. Each series' samples must be in ascending
   * timestamp order. A sample older than its series' newest is accepted when within the
   * out-of-order window, as are identical duplicates (ignored).
   * @throws InvalidArgumentError naming the first offending series and sample (out of order beyond
   *   the window, a different value at an existing timestamp, older than retention, more than 1 h in
   *   the future, unsorted); TooLargeError when the push would create more series than allowed per
   *   push or in total; UnavailableError when the WAL cannot be written (nothing is applied).
   */
  append(batch: readonly SeriesInput[]): AppendResult {
    if (this.closed) throw new UnavailableError('the time-series store is closed');
    const now = this.now();
    const oldest = now - this.retentionMs;
    const newest = now + 3_600_000;
    let newSeries = 0;
    const targets: (MemSeries | undefined)[] = new Array(batch.length);
    const keys: string[] = new Array(batch.length);
    const newKeys = new Set<string>();
    // 1. Check everything; change nothing.
    for (let i = 0; i < batch.length; i++) {
      const s = batch[i] as SeriesInput;
      const key = labelsKey(s.labels);
      keys[i] = key;
      const existing = this.byKey.get(key);
      targets[i] = existing;
      if (existing === undefined && !newKeys.has(key)) {
        newKeys.add(key);
        newSeries++;
        if (newSeries > this.maxNewSeriesPerPush) {
          throw new TooLargeError(`the push creates more than ${this.maxNewSeriesPerPush} new series (the per-push limit, --max-series-per-push); nothing was stored`, {
            limit: this.maxNewSeriesPerPush,
          });
        }
      }
      let prevT = existing?.lastT ?? -Infinity;
      const u = new Uint32Array(s.values.buffer, s.values.byteOffset, s.values.length * 2);
      for (let j = 0; j < s.timestamps.length; j++) {
        const t = s.timestamps[j] as number;
        if (!Number.isSafeInteger(t)) throw new InvalidArgumentError(`sample timestamp ${t} of ${describe(s.labels)} is not an integer number of milliseconds`);
        if (t < oldest) {
          throw new InvalidArgumentError(`sample of ${describe(s.labels)} at ${iso(t)} is older than the retention (${Math.round(this.retentionMs / 3_600_000)} h); nothing was stored`, { reason: 'too_old' });
        }
        if (t > newest) throw new InvalidArgumentError(`sample of ${describe(s.labels)} at ${iso(t)} is more than 1 h in the future; nothing was stored`, { reason: 'too_new' });
        if (j > 0 && t <= (s.timestamps[j - 1] as number)) {
          throw new InvalidArgumentError(`samples of ${describe(s.labels)} are not in ascending timestamp order within the push; nothing was stored`, { reason: 'unsorted' });
        }
        if (existing !== undefined && t <= prevT) {
          if (t === existing.lastT) {
            if (u[j * 2 + 1] === existing.lastHi && u[j * 2] === existing.lastLo) continue; // identical duplicate
            throw new InvalidArgumentError(`duplicate sample for timestamp ${iso(t)} of ${describe(s.labels)} with a different value; nothing was stored`, { reason: 'duplicate' });
          }
          if (existing.lastT - t > this.oooWindowMs) {
            throw new InvalidArgumentError(
              `out of order sample: ${describe(s.labels)} at ${iso(t)} is ${existing.lastT - t} ms older than the series' newest sample, beyond the out-of-order window of ${this.oooWindowMs} ms (--ooo-window); nothing was stored`,
              { reason: 'out_of_order' },
            );
          }
        }
        prevT = Math.max(prevT, t);
      }
    }
    if (this.byKey.size + newSeries > this.maxSeries) {
      throw new TooLargeError(
        `the store holds ${this.byKey.size} series and the push would add ${newSeries}; the limit is ${this.maxSeries} (--max-series); nothing was stored`,
        { limit: this.maxSeries },
      );
    }
    // 2. Durable first: series records, then one WAL record with every sample.
    const created: MemSeries[] = [];
    for (let i = 0; i < batch.length; i++) {
      if (targets[i] !== undefined) continue;
      const key = keys[i] as string;
      const again = this.byKey.get(key) ?? created.find((c) => c.key === key);
      if (again !== undefined) {
        targets[i] = again;
        continue;
      }
      const s = new MemSeries(this.nextRef++, (batch[i] as SeriesInput).labels, key, this.rollupSpecs);
      created.push(s);
      targets[i] = s;
    }
    let total = 0;
    for (const s of batch) total += s.timestamps.length;
    if (this.dir !== null) {
      try {
        if (created.length > 0) this.seriesLog?.append(created.map((c) => encodeLabels(c.ref, c.labels)));
        if (total > 0) this.wal?.append([encodeSamples(batch, targets as MemSeries[], total)]);
      } catch (err) {
        throw new UnavailableError('the time-series write-ahead log could not be written; nothing was stored', { cause: err });
      }
    }
    // 3. Apply.
    for (const c of created) this.index(c);
    let samples = 0;
    let duplicates = 0;
    for (let i = 0; i < batch.length; i++) {
      const s = batch[i] as SeriesInput;
      const ms = targets[i] as MemSeries;
      const u = new Uint32Array(s.values.buffer, s.values.byteOffset, s.values.length * 2);
      for (let j = 0; j < s.timestamps.length; j++) {
        const r = this.appendOne(ms, s.timestamps[j] as number, u[j * 2 + 1] as number, u[j * 2] as number);
        if (r) samples++;
        else duplicates++;
      }
    }
    this.samplesAppended += samples;
    if (this.wal !== undefined && this.wal.size > this.checkpointWalBytes) this.checkpoint();
    return { samples, newSeries: created.length, duplicates };
  }

  private checkpointWalBytes = 64 * 1024 * 1024;

  /** @returns false for an identical duplicate (not stored). */
  private appendOne(s: MemSeries, t: number, hi: number, lo: number): boolean {
    if (t > s.lastT) {
      let head = s.head;
      if (head === null || head.count >= SAMPLES_PER_CHUNK) {
        if (head !== null) this.closeChunk(s, 0, head);
        head = new ChunkEncoder(64);
        s.head = head;
      }
      head.appendBits(t, hi, lo);
      s.lastT = t;
      s.lastHi = hi;
      s.lastLo = lo;
      for (let k = 0; k < s.rollups.length; k++) this.rollupAppend(s, k, t, hi, lo);
      return true;
    }
    if (t === s.lastT) return false;
    // Out of order (the window was checked): kept aside, sorted into a chunk of its own later.
    s.oooT.push(t);
    s.oooV.push(hi, lo);
    this.oooAppended++;
    if (s.oooT.length >= SAMPLES_PER_CHUNK) this.flushOoo(s);
    return true;
  }

  private flushOoo(s: MemSeries): void {
    if (s.oooT.length === 0) return;
    const order = s.oooT.map((_, i) => i).sort((a, b) => (s.oooT[a] as number) - (s.oooT[b] as number));
    const enc = new ChunkEncoder(64);
    let last = -Infinity;
    for (const i of order) {
      const t = s.oooT[i] as number;
      if (t === last) continue;
      enc.appendBits(t, s.oooV[i * 2] as number, s.oooV[i * 2 + 1] as number);
      last = t;
    }
    s.oooT = [];
    s.oooV = [];
    s.overlapping = true;
    this.closeChunk(s, 0, enc);
  }

  /** A rollup keeps the last sample of each interval: it is appended once the next interval starts. */
  private rollupAppend(s: MemSeries, k: number, t: number, hi: number, lo: number): void {
    const r = s.rollups[k] as RollupState;
    const bucket = Math.floor(t / r.spec.intervalMs);
    if (bucket !== r.bucket && r.bucket !== -Infinity) {
      let head = r.head;
      if (head === null || head.count >= SAMPLES_PER_CHUNK) {
        if (head !== null) this.closeChunk(s, k + 1, head);
        head = new ChunkEncoder(32);
        r.head = head;
      }
      head.appendBits(r.lastT, r.lastHi, r.lastLo);
    }
    r.bucket = bucket;
    r.lastT = t;
    r.lastHi = hi;
    r.lastLo = lo;
  }

  private closeChunk(s: MemSeries, kind: number, enc: ChunkEncoder): void {
    const c = toStored(enc);
    if (kind === 0) s.chunks.push(c);
    else (s.rollups[kind - 1] as RollupState).chunks.push(c);
    if (this.dir !== null) this.pending.push({ ref: s.ref, kind, chunk: c });
  }

  private index(s: MemSeries): void {
    this.byKey.set(s.key, s);
    this.byRef.set(s.ref, s);
    for (const l of s.labels) {
      let values = this.postings.get(l.name);
      if (values === undefined) {
        values = new Map();
        this.postings.set(l.name, values);
      }
      let refs = values.get(l.value);
      if (refs === undefined) {
        refs = new Set();
        values.set(l.value, refs);
      }
      refs.add(s.ref);
    }
  }

  private unindex(s: MemSeries): void {
    this.byKey.delete(s.key);
    this.byRef.delete(s.ref);
    for (const l of s.labels) {
      const values = this.postings.get(l.name);
      const refs = values?.get(l.value);
      refs?.delete(s.ref);
      if (refs !== undefined && refs.size === 0) values?.delete(l.value);
      if (values !== undefined && values.size === 0) this.postings.delete(l.name);
    }
  }

  // --- queries ------------------------------------------------------------------------------------

  /** The series matching every matcher (a series lacking a label has it as ''). */
  private matching(matchers: readonly Matcher[]): MemSeries[] {
    // Postings of matchers that need the label; `=` uses the index's own set (no copy), so a
    // selector such as {__name__="x", rule="r17"} costs the smaller set, not the sum of both.
    const lists: ReadonlySet<number>[] = [];
    const rest: { name: string; pred: Predicate }[] = [];
    for (const m of matchers) {
      const pred = matcherPredicate(m);
      const values = this.postings.get(m.name);
      if (!pred('')) {
        if (m.op === '=') {
          lists.push(values?.get(m.value) ?? EMPTY_REFS);
        } else {
          const refs = new Set<number>();
          if (values !== undefined) for (const [v, rs] of values) if (pred(v)) for (const r of rs) refs.add(r);
          lists.push(refs);
        }
      } else {
        rest.push({ name: m.name, pred });
      }
    }
    let out: MemSeries[] = [];
    if (lists.length === 0) out = [...this.byRef.values()];
    else {
      lists.sort((a, b) => a.size - b.size);
      const [smallest, ...others] = lists as [ReadonlySet<number>, ...ReadonlySet<number>[]];
      for (const r of smallest) {
        if (!others.every((o) => o.has(r))) continue;
        const s = this.byRef.get(r);
        if (s !== undefined) out.push(s);
      }
    }
    if (rest.length > 0) {
      out = out.filter((s) => rest.every(({ name, pred }) => pred(s.labels.find((l) => l.name === name)?.value ?? '')));
    }
    return out;
  }

  private hasDataIn(s: MemSeries, startMs: number, endMs: number): boolean {
    if (s.head !== null && s.head.count > 0 && s.head.minT <= endMs && s.head.maxT >= startMs) return true;
    for (const c of s.chunks) if (c.minT <= endMs && c.maxT >= startMs) return true;
    for (const t of s.oooT) if (t >= startMs && t <= endMs) return true;
    return false;
  }

  /**
   * {@link Querier.select}: raw samples, or for the part of the range older than the raw retention,
   * the finest rollup whose interval is at most `hints.stepMs`.
   * @throws TooManySamplesError beyond `hints.maxSamples`; InvalidArgumentError for an invalid regex.
   */
  select(matchers: readonly Matcher[], startMs: number, endMs: number, hints: SelectHints = {}): SeriesSamples[] {
    const series = this.matching(matchers);
    const out: SeriesSamples[] = [];
    const max = hints.maxSamples ?? Infinity;
    let loaded = 0;
    const rawFloor = this.now() - this.retentionMs;
    let rollup = -1;
    if (hints.stepMs !== undefined && startMs < rawFloor) {
      for (let k = 0; k < this.rollupSpecs.length; k++) if ((this.rollupSpecs[k] as RollupSpec).intervalMs <= hints.stepMs) rollup = k;
    }
    for (const s of series) {
      // Each piece is decoded within its own bounds: a rollup below the raw floor, raw samples above it.
      const pieces: { bytes: Uint8Array; from: number; to: number }[] = [];
      let count = 0;
      const rawStart = rollup >= 0 ? Math.max(startMs, rawFloor) : startMs;
      if (rollup >= 0) {
        const r = s.rollups[rollup] as RollupState;
        const to = Math.min(endMs, rawFloor - 1);
        for (const c of r.chunks) {
          if (c.minT <= to && c.maxT >= startMs) {
            pieces.push({ bytes: c.bytes, from: startMs, to });
            count += c.count;
          }
        }
        if (r.head !== null && r.head.count > 0 && r.head.minT <= to) {
          pieces.push({ bytes: r.head.bytes(), from: startMs, to });
          count += r.head.count;
        }
      }
      for (const c of s.chunks) {
        if (c.minT <= endMs && c.maxT >= rawStart) {
          pieces.push({ bytes: c.bytes, from: rawStart, to: endMs });
          count += c.count;
        }
      }
      if (s.head !== null && s.head.count > 0 && s.head.minT <= endMs && s.head.maxT >= rawStart) {
        pieces.push({ bytes: s.head.bytes(), from: rawStart, to: endMs });
        count += s.head.count;
      }
      const ooo = s.oooT.length;
      if (count === 0 && ooo === 0) continue;
      const ts = new Float64Array(count + ooo);
      const vs = new Float64Array(count + ooo);
      let n = 0;
      let mixed = rollup >= 0 || s.overlapping;
      for (const p of pieces) n = decodeChunkInto(p.bytes, ts, vs, n, p.from, p.to);
      if (ooo > 0) {
        const u = new Uint32Array(vs.buffer);
        for (let i = 0; i < ooo; i++) {
          const t = s.oooT[i] as number;
          if (t < startMs || t > endMs) continue;
          ts[n] = t;
          u[n * 2 + 1] = s.oooV[i * 2] as number;
          u[n * 2] = s.oooV[i * 2 + 1] as number;
          n++;
        }
        mixed = true;
      }
      if (n === 0) continue;
      loaded += n;
      if (loaded > max) throw new TooManySamplesError(max);
      if (mixed) {
        const merged = sortDedupe(ts.subarray(0, n), vs.subarray(0, n));
        out.push({ labels: s.labels, timestamps: merged.ts, values: merged.vs });
      } else {
        out.push({ labels: s.labels, timestamps: ts.subarray(0, n), values: vs.subarray(0, n) });
      }
    }
    return out;
  }

  /** {@link Querier.series}: label sets of matching series with samples in the range. */
  series(matchers: readonly Matcher[], startMs: number, endMs: number): Labels[] {
    return this.matching(matchers).filter((s) => this.hasDataIn(s, startMs, endMs)).map((s) => s.labels);
  }

  /** {@link Querier.labelNames}. */
  labelNames(matchers: readonly Matcher[], startMs: number, endMs: number): string[] {
    const names = new Set<string>();
    if (matchers.length === 0 && startMs === -Infinity) return [...this.postings.keys()].sort();
    for (const s of this.matching(matchers)) {
      if (!this.hasDataIn(s, startMs, endMs)) continue;
      for (const l of s.labels) names.add(l.name);
    }
    return [...names].sort();
  }

  /** {@link Querier.labelValues}. */
  labelValues(name: string, matchers: readonly Matcher[], startMs: number, endMs: number): string[] {
    const values = new Set<string>();
    for (const s of this.matching(matchers)) {
      const v = s.labels.find((l) => l.name === name)?.value;
      if (v === undefined || values.has(v) || !this.hasDataIn(s, startMs, endMs)) continue;
      values.add(v);
    }
    return [...values].sort();
  }

  /** Bytes of chunk data held: raw samples (closed and open chunks) and rollups. */
  chunkBytes(): { raw: number; rollups: number } {
    let raw = 0;
    let rollups = 0;
    for (const s of this.byKey.values()) {
      for (const c of s.chunks) raw += c.bytes.length;
      if (s.head !== null) raw += s.head.size;
      for (const r of s.rollups) {
        for (const c of r.chunks) rollups += c.bytes.length;
        if (r.head !== null) rollups += r.head.size;
      }
    }
    return { raw, rollups };
  }

  /** Raw samples held (closed and open chunks and out-of-order buffers; rollups excluded). */
  sampleCount(): number {
    let n = 0;
    for (const s of this.byKey.values()) {
      for (const c of s.chunks) n += c.count;
      if (s.head !== null) n += s.head.count;
      n += s.oooT.length;
    }
    return n;
  }

  /** Bytes of the store's files (0 in memory). */
  diskBytes(): number {
    if (this.dir === null) return 0;
    let n = 0;
    const walk = (d: string): void => {
      for (const e of readdirSync(d, { withFileTypes: true })) {
        const p = join(d, e.name);
        if (e.isDirectory()) walk(p);
        else n += statSync(p).size;
      }
    };
    walk(this.dir);
    return n;
  }

  // --- retention ----------------------------------------------------------------------------------

  /**
   * Drops raw chunks older than the retention and rollup chunks older than theirs, forgets series
   * with nothing left, and deletes chunk files whose every chunk is gone.
   * @returns how many series were forgotten.
   */
  applyRetention(): number {
    const now = this.now();
    const floor = now - this.retentionMs;
    let forgotten = 0;
    for (const s of [...this.byKey.values()]) {
      if (s.chunks.length > 0 && (s.chunks[0] as StoredChunk).maxT < floor) s.chunks = s.chunks.filter((c) => c.maxT >= floor);
      for (const r of s.rollups) {
        const rf = now - r.spec.retentionMs;
        if (r.chunks.length > 0 && (r.chunks[0] as StoredChunk).maxT < rf) r.chunks = r.chunks.filter((c) => c.maxT >= rf);
      }
      const rollupLeft = s.rollups.some((r) => r.chunks.length > 0 || (r.head !== null && r.head.maxT >= now - r.spec.retentionMs));
      if (s.chunks.length === 0 && s.lastT < floor && s.oooT.length === 0 && !rollupLeft) {
        this.unindex(s);
        forgotten++;
      }
    }
    if (this.dir !== null) this.deleteExpiredChunkFiles(now);
    return forgotten;
  }

  private chunkFileMaxT = new Map<number, number>();

  private deleteExpiredChunkFiles(now: number): void {
    const keep = Math.max(this.retentionMs, ...this.rollupSpecs.map((r) => r.retentionMs));
    for (const [idx, maxT] of this.chunkFileMaxT) {
      if (idx === this.chunkFileIndex || maxT >= now - keep) continue;
      rmSync(join(this.dir as string, chunkFileName(idx)), { force: true });
      this.chunkFileMaxT.delete(idx);
    }
  }

  // --- persistence --------------------------------------------------------------------------------

  /**
   * Writes closed chunks to the chunk file, snapshots the open chunks to `head.ckpt`, starts a new
   * WAL segment and deletes the older ones. Synchronous: the node does it between requests.
   */
  checkpoint(): void {
    if (this.dir === null || this.closed) return;
    const dir = this.dir;
    // Close out-of-order buffers into chunks so the checkpoint needs no third format.
    for (const s of this.byKey.values()) if (s.oooT.length > 0) this.flushOoo(s);
    if (this.pending.length > 0) {
      const file = this.chunkFile as RecordWriter;
      file.append(this.pending.map((p) => encodeChunkRecord(p.ref, p.kind, p.chunk)));
      file.sync();
      let maxT = this.chunkFileMaxT.get(this.chunkFileIndex) ?? -Infinity;
      for (const p of this.pending) maxT = Math.max(maxT, p.chunk.maxT);
      this.chunkFileMaxT.set(this.chunkFileIndex, maxT);
      this.pending = [];
      if (file.size > 64 * 1024 * 1024) {
        file.close();
        this.chunkFileIndex++;
        this.chunkFile = new RecordWriter(join(dir, chunkFileName(this.chunkFileIndex)), 0);
      }
    }
    this.seriesLog?.sync();
    const nextSegment = this.walSegment + 1;
    const records: Buffer[] = [];
    const header = Buffer.allocUnsafe(4);
    header.writeUInt32LE(nextSegment, 0);
    records.push(header);
    for (const s of this.byKey.values()) {
      if (s.head !== null && s.head.count > 0) records.push(encodeChunkRecord(s.ref, 0, toStored(s.head)));
      for (let k = 0; k < s.rollups.length; k++) {
        const r = s.rollups[k] as RollupState;
        if (r.head !== null && r.head.count > 0) records.push(encodeChunkRecord(s.ref, k + 1, toStored(r.head)));
      }
    }
    const tmp = join(dir, 'head.ckpt.tmp');
    writeFileSync(tmp, frameRecords(records));
    const fd = openSync(tmp, 'r+');
    fsyncSync(fd);
    closeSync(fd);
    // Segment first, then the checkpoint that points at it: a crash between them replays a little twice at worst (skipped as duplicates).
    this.wal?.sync();
    this.wal?.close();
    this.walSegment = nextSegment;
    this.wal = new RecordWriter(join(dir, 'wal', walName(nextSegment)), 0);
    renameSync(tmp, join(dir, 'head.ckpt'));
    for (const f of readdirSync(join(dir, 'wal'))) {
      const n = Number.parseInt(f, 10);
      if (Number.isFinite(n) && n < nextSegment) rmSync(join(dir, 'wal', f), { force: true });
    }
  }

  private load(dir: string, opts: TsdbOptions): void {
    const started = performance.now();
    mkdirSync(join(dir, 'wal'), { recursive: true });
    if (opts.checkpointWalBytes !== undefined) this.checkpointWalBytes = opts.checkpointWalBytes;
    // Series.
    const sl = readRecords(join(dir, 'series.log'));
    for (const rec of sl.records) {
      const ref = rec.readUInt32LE(0);
      const pairs = JSON.parse(rec.subarray(4).toString('utf8')) as [string, string][];
      const labels = pairs.map(([name, value]) => ({ name, value }));
      const s = new MemSeries(ref, labels, labelsKey(labels), this.rollupSpecs);
      this.index(s);
      this.nextRef = Math.max(this.nextRef, ref + 1);
    }
    this.seriesLog = new RecordWriter(join(dir, 'series.log'), sl.validBytes);
    // Closed chunks.
    const chunkFiles = readdirSync(dir)
      .filter((f) => /^chunks-\d+$/.test(f))
      .map((f) => Number(f.slice(7)))
      .sort((a, b) => a - b);
    for (const idx of chunkFiles) {
      const { records, validBytes } = readRecords(join(dir, chunkFileName(idx)));
      let maxT = -Infinity;
      for (const rec of records) {
        const c = decodeChunkRecord(rec);
        maxT = Math.max(maxT, c.chunk.maxT);
        const s = this.byRef.get(c.ref);
        if (s === undefined) continue;
        this.attach(s, c.kind, c.chunk);
      }
      this.chunkFileMaxT.set(idx, maxT);
      this.chunkFileIndex = idx;
      if (idx === chunkFiles[chunkFiles.length - 1]) this.chunkFile = new RecordWriter(join(dir, chunkFileName(idx)), validBytes);
    }
    this.chunkFile ??= new RecordWriter(join(dir, chunkFileName(this.chunkFileIndex)), 0);
    // Open chunks at the last checkpoint.
    let replayFrom = 0;
    const ck = readRecords(join(dir, 'head.ckpt'));
    if (ck.records.length > 0) {
      replayFrom = (ck.records[0] as Buffer).readUInt32LE(0);
      for (const rec of ck.records.slice(1)) {
        const c = decodeChunkRecord(rec);
        const s = this.byRef.get(c.ref);
        if (s === undefined) continue;
        const enc = chunkFromBytes(c.chunk.bytes);
        if (c.kind === 0) {
          s.head = enc;
          this.noteLast(s, enc);
        } else {
          const r = s.rollups[c.kind - 1];
          if (r !== undefined) r.head = enc;
        }
      }
    }
    for (const s of this.byKey.values()) {
      s.chunks.sort((a, b) => a.minT - b.minT);
      if (s.head === null && s.chunks.length > 0) this.noteLastFromChunk(s, s.chunks[s.chunks.length - 1] as StoredChunk);
      for (let i = 1; i < s.chunks.length; i++) if ((s.chunks[i] as StoredChunk).minT <= (s.chunks[i - 1] as StoredChunk).maxT) s.overlapping = true;
      for (const r of s.rollups) r.chunks.sort((a, b) => a.minT - b.minT);
      this.resumeRollups(s);
    }
    // The WAL since.
    const segments = readdirSync(join(dir, 'wal'))
      .map((f) => Number.parseInt(f, 10))
      .filter((n) => Number.isFinite(n))
      .sort((a, b) => a - b);
    let last = replayFrom;
    let lastValid = 0;
    const loadedLastT = new Map<number, number>();
    for (const s of this.byKey.values()) if (s.lastT !== -Infinity) loadedLastT.set(s.ref, s.lastT);
    for (const seg of segments) {
      if (seg < replayFrom) {
        rmSync(join(dir, 'wal', walName(seg)), { force: true });
        continue;
      }
      const { records, validBytes } = readRecords(join(dir, 'wal', walName(seg)));
      for (const rec of records) this.replaySamples(rec, loadedLastT);
      last = seg;
      lastValid = validBytes;
    }
    this.walSegment = last;
    this.wal = new RecordWriter(join(dir, 'wal', walName(last)), segments.includes(last) ? lastValid : 0);
    this.openMs = performance.now() - started;
    const fsyncEvery = opts.fsyncIntervalMs ?? 10_000;
    const ckEvery = opts.checkpointIntervalMs ?? 5 * 60_000;
    const t1 = setInterval(() => this.syncQuietly(), fsyncEvery);
    const t2 = setInterval(() => {
      try {
        this.checkpoint();
        this.applyRetention();
      } catch {
        // Retried at the next interval; the WAL still holds everything.
      }
    }, ckEvery);
    t1.unref();
    t2.unref();
    this.timers.push(t1, t2);
  }

  private syncQuietly(): void {
    try {
      this.wal?.sync();
      this.seriesLog?.sync();
    } catch {
      // The next interval tries again.
    }
  }

  private attach(s: MemSeries, kind: number, c: StoredChunk): void {
    if (kind === 0) s.chunks.push(c);
    else s.rollups[kind - 1]?.chunks.push(c);
  }

  private noteLast(s: MemSeries, enc: ChunkEncoder): void {
    if (enc.count === 0 || enc.maxT <= s.lastT) return;
    this.noteLastFromChunk(s, toStored(enc));
  }

  private noteLastFromChunk(s: MemSeries, c: StoredChunk): void {
    if (c.maxT <= s.lastT) return;
    const ts = new Float64Array(c.count);
    const vs = new Float64Array(c.count);
    const n = decodeChunkInto(c.bytes, ts, vs, 0);
    const u = new Uint32Array(vs.buffer);
    s.lastT = ts[n - 1] as number;
    s.lastHi = u[(n - 1) * 2 + 1] as number;
    s.lastLo = u[(n - 1) * 2] as number;
  }

  /** After a restart, a rollup resumes from the series' last sample (its bucket's last sample so far). */
  private resumeRollups(s: MemSeries): void {
    if (s.lastT === -Infinity) return;
    for (const r of s.rollups) {
      r.bucket = Math.floor(s.lastT / r.spec.intervalMs);
      r.lastT = s.lastT;
      r.lastHi = s.lastHi;
      r.lastLo = s.lastLo;
    }
  }

  /**
   * Replays one WAL record. An in-order sample at or before the series' newest sample as loaded
   * from the checkpoint and chunk files is already there (a crash between cutting the WAL and
   * renaming the checkpoint replays a segment twice); an out-of-order one is re-added and
   * duplicates are dropped when read.
   */
  private replaySamples(rec: Buffer, loadedLastT: Map<number, number>): void {
    // [u32 n][n × (u32 ref | OOO_FLAG, f64 t, u32 hi, u32 lo)]
    const n = rec.readUInt32LE(0);
    let at = 4;
    for (let i = 0; i < n; i++) {
      const word = rec.readUInt32LE(at);
      const t = rec.readDoubleLE(at + 4);
      const hi = rec.readUInt32LE(at + 12);
      const lo = rec.readUInt32LE(at + 16);
      at += 20;
      const ooo = (word & OOO_FLAG) !== 0;
      const s = this.byRef.get((word & ~OOO_FLAG) >>> 0);
      if (s === undefined) continue;
      if (!ooo && t <= (loadedLastT.get(s.ref) ?? -Infinity)) continue;
      this.appendOne(s, t, hi, lo);
    }
  }

  /** Stops the timers, writes a checkpoint and closes the files. */
  close(): void {
    if (this.closed) return;
    for (const t of this.timers) clearInterval(t);
    try {
      this.checkpoint();
    } finally {
      this.closed = true;
      this.wal?.close();
      this.seriesLog?.close();
      this.chunkFile?.close();
    }
  }
}

function encodeSamples(batch: readonly SeriesInput[], targets: readonly MemSeries[], total: number): Buffer {
  const out = Buffer.allocUnsafe(4 + total * 20);
  out.writeUInt32LE(total, 0);
  let at = 4;
  for (let i = 0; i < batch.length; i++) {
    const s = batch[i] as SeriesInput;
    const ref = (targets[i] as MemSeries).ref;
    const u = new Uint32Array(s.values.buffer, s.values.byteOffset, s.values.length * 2);
    const lastT = (targets[i] as MemSeries).lastT;
    for (let j = 0; j < s.timestamps.length; j++) {
      // The top bit marks a sample older than its series' newest at the time (out of order), so a
      // replay tells it from a sample that a checkpoint may already hold.
      out.writeUInt32LE(((s.timestamps[j] as number) < lastT ? OOO_FLAG | ref : ref) >>> 0, at);
      out.writeDoubleLE(s.timestamps[j] as number, at + 4);
      out.writeUInt32LE(u[j * 2 + 1] as number, at + 12);
      out.writeUInt32LE(u[j * 2] as number, at + 16);
      at += 20;
    }
  }
  return out;
}

function decodeChunkRecord(rec: Buffer): { ref: number; kind: number; chunk: StoredChunk } {
  const bytes = new Uint8Array(rec.subarray(21));
  return {
    ref: rec.readUInt32LE(0),
    kind: rec.readUInt8(4),
    chunk: { minT: rec.readDoubleLE(5), maxT: rec.readDoubleLE(13), count: chunkCount(bytes), bytes },
  };
}

function chunkFileName(i: number): string {
  return `chunks-${String(i).padStart(6, '0')}`;
}

function walName(i: number): string {
  return String(i).padStart(8, '0');
}

function sortDedupe(ts: Float64Array, vs: Float64Array): { ts: Float64Array; vs: Float64Array } {
  const n = ts.length;
  const idx = new Uint32Array(n);
  for (let i = 0; i < n; i++) idx[i] = i;
  idx.sort((a, b) => (ts[a] as number) - (ts[b] as number) || a - b);
  const ots = new Float64Array(n);
  const ovs = new Float64Array(n);
  const inU = new Uint32Array(vs.buffer, vs.byteOffset, n * 2);
  const outU = new Uint32Array(ovs.buffer);
  let m = 0;
  for (let k = 0; k < n; k++) {
    const i = idx[k] as number;
    const t = ts[i] as number;
    if (m > 0 && ots[m - 1] === t) continue;
    ots[m] = t;
    outU[m * 2] = inU[i * 2] as number;
    outU[m * 2 + 1] = inU[i * 2 + 1] as number;
    m++;
  }
  return { ts: ots.subarray(0, m), vs: ovs.subarray(0, m) };
}

function describe(labels: Labels): string {
  const name = labels.find((l) => l.name === '__name__')?.value ?? '';
  const rest = labels.filter((l) => l.name !== '__name__').map((l) => `${l.name}=${JSON.stringify(l.value)}`);
  const text = `${name}{${rest.join(', ')}}`;
  return text.length > 200 ? `${text.slice(0, 200)}…` : text;
}

function iso(t: number): string {
  const d = new Date(t);
  return Number.isNaN(d.getTime()) ? String(t) : d.toISOString();
}
