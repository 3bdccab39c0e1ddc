/**
 * PostgreSQL mode of the time-series store: many nodes, one database, every node's samples
 * queryable from every node (docs/metrics.md, "PostgreSQL mode").
 *
 * Each node keeps its local {@link Tsdb} (WAL, head, chunks) as in single-node mode. Every push's
 * samples record also goes to an outbox (a record file in `<dir>/outbox`, written before the push
 * is acknowledged); every `flushIntervalMs` the outbox is flushed to PostgreSQL in one
 * transaction as one Gorilla chunk per series and 2 h block (`beacon_tsdb_chunks`, level 0), and
 * its files are deleted. A node restarted on its data directory flushes what its outbox still
 * holds, so a SIGKILL loses nothing acknowledged; a node that never comes back loses at most the
 * last flush interval. Compaction (one node at a time, under an advisory lock) merges the rows of
 * each (series, block) into one chunk, derives the rollups of closed blocks, and applies the
 * retention. A query reads PostgreSQL's chunks of the matching series and merges them with the
 * node's local store (its own samples not yet flushed), dropping duplicate timestamps.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { UnavailableError } from '../../errors.js';
import {
  ChunkEncoder,
  Postings,
  RecordWriter,
  TooManySamplesError,
  chunkCount,
  decodeChunkInto,
  forEachWalSample,
  labelsKey,
  readRecords,
  sortDedupe,
  walRecordSamples,
  type Labels,
  type Matcher,
  type Querier,
  type RollupSpec,
  type SelectHints,
  type SeriesSamples,
  type Tsdb,
} from '../tsdb/index.js';

/** Default interval between flushes of a node's new samples to PostgreSQL, ms (the cross-node lag). */
export const DEFAULT_FLUSH_INTERVAL_MS = 2000;
/** Default interval between compaction passes (merging, rollups, retention), ms. */
export const DEFAULT_COMPACT_INTERVAL_MS = 60_000;
/** Raw samples are grouped in blocks of 2 h (Prometheus's block length): the unit of compaction. */
export const RAW_BLOCK_MS = 2 * 3_600_000;
/** Block length of each rollup kind in order (5 m → 1 day, 1 h → 30 days; later ones as the last). */
const ROLLUP_BLOCK_MS = [86_400_000, 30 * 86_400_000];
/** Most samples the outbox holds before pushes are refused (PostgreSQL unreachable for long). */
export const MAX_OUTBOX_SAMPLES = 5_000_000;
/** Most samples per merged chunk (a chunk counts its samples in 16 bits). */
const MERGED_CHUNK_SAMPLES = 4000;
/** Rows per INSERT statement of a flush or a compaction. */
const ROWS_PER_INSERT = 5000;
/** Groups merged per compaction transaction. */
const GROUPS_PER_PASS = 2000;
/** Serialises flushes (and series deletion), so series ids become visible in id order. Transaction-scoped. */
const WRITE_LOCK = 0x6265_6163_6e10;
/** Held by the one node compacting. Transaction-scoped. */
const COMPACT_LOCK = 0x6265_6163_6e11;
/** A block counts as closed this long after its end plus the out-of-order window (flushes in flight). */
const CLOSE_SLACK_MS = 60_000;
/** Longest a close waits for the last flush and the pool, ms. */
const CLOSE_TIMEOUT_MS = 5000;
/** Client-side bound on one statement, ms: a PostgreSQL that stopped answering fails the flush (retried) instead of hanging it. */
const QUERY_TIMEOUT_MS = 30_000;
const MIN_T = Number.MIN_SAFE_INTEGER;
const MAX_T = Number.MAX_SAFE_INTEGER;

/** Options of {@link PostgresTsdb}. */
export interface PostgresTsdbOptions {
  /** The `--backend` URL (`postgres://…`; Beacon's `pool_max` parameter is ignored here). */
  url: string;
  /** The node's local store: its pushes feed the outbox; its samples are merged into queries. */
  local: Tsdb;
  /** Directory of the outbox (`<dir>/outbox`); null keeps it in memory only (tests). */
  dir: string | null;
  /** Interval between flushes, ms. Default {@link DEFAULT_FLUSH_INTERVAL_MS}. */
  flushIntervalMs?: number;
  /** Interval between compaction passes, ms; 0 turns compaction off on this node. Default {@link DEFAULT_COMPACT_INTERVAL_MS}. */
  compactIntervalMs?: number;
  /** Connections of this store's pool (besides the backend's). Default 3. */
  poolMax?: number;
  /** Called with a failure of a background flush or compaction (they are retried). */
  onError?: (err: unknown, what: 'flush' | 'compact') => void;
  now?: () => number;
}

/** What one flush wrote. */
export interface FlushResult {
  samples: number;
  rows: number;
  newSeries: number;
}

/** What one compaction pass did. */
export interface CompactResult {
  /** False when another node held the compaction lock. */
  ran: boolean;
  groups: number;
  rowsIn: number;
  rowsOut: number;
  expired: number;
}

interface SeriesSamplesBits {
  t: number[];
  hi: number[];
  lo: number[];
}

interface ChunkRow {
  seriesId: number;
  kind: number;
  block: number;
  minT: number;
  maxT: number;
  samples: number;
  level: number;
  data: Buffer;
}

/**
 * The shared store: a {@link Querier} over every node's samples in PostgreSQL merged with the
 * local store, and the flusher and compactor that keep PostgreSQL current.
 */
export class PostgresTsdb implements Querier {
  /** Samples flushed to PostgreSQL since start. */
  samplesFlushed = 0;
  /** Failed flushes since start (each is retried). */
  flushErrors = 0;
  /** When the last flush succeeded (ms since the epoch), 0 before the first. */
  lastFlushAt = 0;
  private readonly pool: pg.Pool;
  private readonly local: Tsdb;
  private readonly now: () => number;
  private readonly flushIntervalMs: number;
  private readonly compactIntervalMs: number;
  private readonly onError: PostgresTsdbOptions['onError'];
  private readonly outboxDir: string | null;
  private outbox: RecordWriter | undefined;
  private segment = 0;
  private pending: Buffer[] = [];
  private pendingCount = 0;
  /** Local series reference → PostgreSQL series id, and when it was last used (ms). */
  private readonly ids = new Map<number, { id: number; usedAt: number }>();
  private idsSweptAt: number;
  /** Every series in PostgreSQL, followed by id. */
  private readonly mirror = new Postings();
  private mirrorMax = 0;
  private mirrorRefresh: Promise<void> | undefined;
  private flushing: Promise<FlushResult> | undefined;
  private compacting: Promise<CompactResult> | undefined;
  private timers: NodeJS.Timeout[] = [];
  /** Set when close() begins: the loops schedule nothing more. */
  private closing = false;
  private closed = false;

  constructor(opts: PostgresTsdbOptions) {
    this.local = opts.local;
    this.now = opts.now ?? Date.now;
    this.idsSweptAt = this.now();
    this.flushIntervalMs = opts.flushIntervalMs ?? DEFAULT_FLUSH_INTERVAL_MS;
    this.compactIntervalMs = opts.compactIntervalMs ?? DEFAULT_COMPACT_INTERVAL_MS;
    this.onError = opts.onError;
    const u = new URL(opts.url);
    u.searchParams.delete('pool_max');
    this.pool = new pg.Pool({
      connectionString: u.toString(),
      max: opts.poolMax ?? 3,
      connectionTimeoutMillis: 5000,
      statement_timeout: 60_000,
      query_timeout: QUERY_TIMEOUT_MS,
      idle_in_transaction_session_timeout: 60_000,
    });
    this.pool.on('error', () => undefined); // an idle connection died: the next checkout reconnects
    this.outboxDir = opts.dir === null ? null : join(opts.dir, 'outbox');
    if (this.outboxDir !== null) this.openOutbox(this.outboxDir);
    this.local.onWalRecord = (rec) => this.enqueue(rec);
  }

  /** Samples waiting in the outbox for the next flush. */
  get pendingSamples(): number {
    return this.pendingCount;
  }

  /** Starts the flush and compaction loops; the first flush (of what a previous run left in the outbox) runs at once. */
  start(): void {
    const loop = (every: number, what: 'flush' | 'compact', run: () => Promise<unknown>, first: number): void => {
      const tick = (): void => {
        if (this.closing) return;
        run()
          .catch((err: unknown) => this.onError?.(err, what))
          .finally(() => {
            if (this.closing) return;
            const t = setTimeout(tick, every);
            t.unref();
            this.timers.push(t);
          });
      };
      const t = setTimeout(tick, first);
      t.unref();
      this.timers.push(t);
    };
    loop(this.flushIntervalMs, 'flush', () => this.flush(), 0);
    if (this.compactIntervalMs > 0) loop(this.compactIntervalMs, 'compact', () => this.compact(), Math.min(this.compactIntervalMs, 10_000));
  }

  // --- the outbox -------------------------------------------------------------------------------

  private openOutbox(dir: string): void {
    mkdirSync(dir, { recursive: true });
    const segments = readdirSync(dir)
      .map((f) => Number.parseInt(f, 10))
      .filter((n) => Number.isFinite(n))
      .sort((a, b) => a - b);
    for (const seg of segments) {
      for (const rec of readRecords(join(dir, segName(seg))).records) {
        this.pending.push(rec);
        this.pendingCount += walRecordSamples(rec);
      }
    }
    this.segment = (segments[segments.length - 1] ?? 0) + 1;
    this.outbox = new RecordWriter(join(dir, segName(this.segment)), 0);
  }

  /** Takes a push's samples record into the outbox (on disk before the push is acknowledged). @throws UnavailableError when the outbox is full. */
  private enqueue(rec: Buffer): void {
    const n = walRecordSamples(rec);
    if (this.pendingCount + n > MAX_OUTBOX_SAMPLES) {
      throw new UnavailableError(
        `PostgreSQL has not taken this node's samples for a while: ${this.pendingCount} samples wait to be flushed (the limit is ${MAX_OUTBOX_SAMPLES}); nothing was stored`,
        { details: { reason: 'outbox_full' } },
      );
    }
    this.outbox?.append([rec]);
    this.pending.push(rec);
    this.pendingCount += n;
  }

  // --- flush ------------------------------------------------------------------------------------

  /**
   * Writes every sample in the outbox to PostgreSQL in one transaction, then deletes the outbox
   * files it came from. On failure the samples stay in the outbox for the next flush.
   * @throws UnavailableError when PostgreSQL fails (nothing of this flush is committed).
   */
  flush(): Promise<FlushResult> {
    this.flushing ??= this.flushOnce().finally(() => {
      this.flushing = undefined;
    });
    return this.flushing;
  }

  private async flushOnce(): Promise<FlushResult> {
    if (this.pending.length === 0) return { samples: 0, rows: 0, newSeries: 0 };
    const batch = this.pending;
    const count = this.pendingCount;
    this.pending = [];
    this.pendingCount = 0;
    const cut = this.segment;
    if (this.outboxDir !== null && this.outbox !== undefined) {
      this.outbox.close();
      this.segment++;
      this.outbox = new RecordWriter(join(this.outboxDir, segName(this.segment)), 0);
    }
    try {
      const res = await this.write(batch);
      this.samplesFlushed += res.samples;
      this.lastFlushAt = this.now();
      if (this.outboxDir !== null) {
        for (const f of readdirSync(this.outboxDir)) {
          const n = Number.parseInt(f, 10);
          if (Number.isFinite(n) && n <= cut) rmSync(join(this.outboxDir, f), { force: true });
        }
      }
      return res;
    } catch (err) {
      this.flushErrors++;
      // Back to the front of the outbox (their files stay until a flush succeeds).
      this.pending = batch.concat(this.pending);
      this.pendingCount += count;
      throw err instanceof UnavailableError ? err : new UnavailableError('could not flush samples to PostgreSQL; they stay in the outbox', { cause: err });
    }
  }

  private async write(batch: Buffer[]): Promise<FlushResult> {
    // Group by series: the records are in push order; a series' samples are sorted here.
    const bySeries = new Map<number, SeriesSamplesBits>();
    let samples = 0;
    for (const rec of batch) {
      forEachWalSample(rec, (ref, t, hi, lo) => {
        let s = bySeries.get(ref);
        if (s === undefined) {
          s = { t: [], hi: [], lo: [] };
          bySeries.set(ref, s);
        }
        s.t.push(t);
        s.hi.push(hi);
        s.lo.push(lo);
        samples++;
      });
    }
    const now = this.now();
    const unknown: { ref: number; labels: Labels; hash: Buffer }[] = [];
    for (const ref of bySeries.keys()) {
      const cached = this.ids.get(ref);
      if (cached !== undefined) {
        cached.usedAt = now;
        continue;
      }
      const labels = this.local.labelsOfRef(ref);
      if (labels === undefined) {
        bySeries.delete(ref); // forgotten by retention since: nothing to flush
        continue;
      }
      unknown.push({ ref, labels, hash: hashLabels(labels) });
    }
    const client = await this.connect();
    let newSeries = 0;
    let rows = 0;
    try {
      await client.query('BEGIN');
      await client.query('SELECT pg_advisory_xact_lock($1)', [WRITE_LOCK]);
      const resolved = new Map<number, number>();
      if (unknown.length > 0) {
        const ins = await client.query(
          `INSERT INTO beacon_tsdb_series (key_hash, labels)
           SELECT h, l::jsonb FROM unnest($1::bytea[], $2::text[]) AS u(h, l)
           ON CONFLICT (key_hash) DO NOTHING`,
          [unknown.map((u) => u.hash), unknown.map((u) => JSON.stringify(u.labels.map((l) => [l.name, l.value])))],
        );
        newSeries = ins.rowCount ?? 0;
        const got = await client.query<{ id: string; key_hash: Buffer }>('SELECT id, key_hash FROM beacon_tsdb_series WHERE key_hash = ANY($1::bytea[])', [
          unknown.map((u) => u.hash),
        ]);
        const byHash = new Map(got.rows.map((r) => [r.key_hash.toString('hex'), Number(r.id)]));
        for (const u of unknown) {
          const id = byHash.get(u.hash.toString('hex'));
          if (id !== undefined) resolved.set(u.ref, id);
        }
      }
      const out: ChunkRow[] = [];
      for (const [ref, s] of bySeries) {
        const id = this.ids.get(ref)?.id ?? resolved.get(ref);
        if (id === undefined) continue;
        const order = s.t.map((_, i) => i).sort((a, b) => (s.t[a] as number) - (s.t[b] as number) || a - b);
        encodeRows(id, 0, RAW_BLOCK_MS, 0, order.map((i) => s.t[i] as number), order.map((i) => s.hi[i] as number), order.map((i) => s.lo[i] as number), out);
      }
      await insertRows(client, out);
      rows = out.length;
      await client.query('COMMIT');
      for (const [ref, id] of resolved) this.ids.set(ref, { id, usedAt: now });
      client.release();
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      client.release(true);
      throw new UnavailableError('could not flush samples to PostgreSQL; they stay in the outbox', { cause: err });
    }
    // Ids unused for an hour are forgotten (the map stays the size of the recently active series).
    if (now - this.idsSweptAt > 3_600_000) {
      for (const [ref, e] of this.ids) if (now - e.usedAt > 3_600_000) this.ids.delete(ref);
      this.idsSweptAt = now;
    }
    return { samples, rows, newSeries };
  }

  private async connect(): Promise<pg.PoolClient> {
    if (this.closed) throw new UnavailableError('the shared time-series store is closed');
    try {
      return await this.pool.connect();
    } catch (err) {
      throw new UnavailableError('PostgreSQL is unreachable for the time-series store', { cause: err });
    }
  }

  private async query<R extends pg.QueryResultRow>(text: string, values: unknown[]): Promise<pg.QueryResult<R>> {
    if (this.closed) throw new UnavailableError('the shared time-series store is closed');
    try {
      return await this.pool.query<R>(text, values);
    } catch (err) {
      throw new UnavailableError('PostgreSQL failed a time-series query', { cause: err });
    }
  }

  // --- compaction, rollups, retention -----------------------------------------------------------

  /**
   * One compaction pass, if no other node is running one: deletes chunks past their kind's
   * retention, then merges the rows of every (series, kind, block) with new rows into one row per
   * {@link MERGED_CHUNK_SAMPLES} samples (duplicate timestamps: the last written wins), and for
   * raw blocks that are closed writes their rollups (the last sample of each interval).
   * @throws UnavailableError when PostgreSQL fails (the transaction is rolled back).
   */
  compact(): Promise<CompactResult> {
    this.compacting ??= this.compactOnce().finally(() => {
      this.compacting = undefined;
    });
    return this.compacting;
  }

  private async compactOnce(): Promise<CompactResult> {
    const total: CompactResult = { ran: false, groups: 0, rowsIn: 0, rowsOut: 0, expired: 0 };
    const started = this.now();
    for (let pass = 0; pass < 50 && !this.closed; pass++) {
      const res = await this.compactBatch(pass === 0);
      total.ran ||= res.ran;
      total.groups += res.groups;
      total.rowsIn += res.rowsIn;
      total.rowsOut += res.rowsOut;
      total.expired += res.expired;
      if (!res.ran || res.groups < GROUPS_PER_PASS || this.now() - started > 20_000) break;
    }
    return total;
  }

  private async compactBatch(withRetention: boolean): Promise<CompactResult> {
    const now = this.now();
    const specs = this.local.rollupSpecs;
    const res: CompactResult = { ran: false, groups: 0, rowsIn: 0, rowsOut: 0, expired: 0 };
    const client = await this.connect();
    try {
      await client.query('BEGIN');
      const lock = await client.query<{ ok: boolean }>('SELECT pg_try_advisory_xact_lock($1) AS ok', [COMPACT_LOCK]);
      if (lock.rows[0]?.ok !== true) {
        await client.query('COMMIT');
        client.release();
        return res;
      }
      res.ran = true;
      if (withRetention) {
        const floors = [now - this.local.retentionMs, ...specs.map((r) => now - r.retentionMs)];
        for (let kind = 0; kind < floors.length; kind++) {
          const del = await client.query('DELETE FROM beacon_tsdb_chunks WHERE kind = $1 AND max_t < $2', [kind, floors[kind]]);
          res.expired += del.rowCount ?? 0;
        }
      }
      // The groups worth merging: any with a fresh row, and merged-but-open rows of blocks now
      // closed. closed[kind] is the first block of that kind not yet closed.
      const closed = [0, ...specs.map((_, k) => k + 1)].map((kind) => Math.floor((now - this.local.oooWindowMs - CLOSE_SLACK_MS) / blockMs(kind)));
      const closedBelow = (kind: number): number => closed[kind] ?? -Infinity;
      const groups = await client.query<{ series_id: string; kind: number; block: string }>(
        `SELECT series_id, kind, block FROM beacon_tsdb_chunks
          WHERE level < 2 AND (level = 0 OR block < ($2::int8[])[kind + 1])
          GROUP BY series_id, kind, block LIMIT $1`,
        [GROUPS_PER_PASS, closed],
      );
      const chosen = groups.rows;
      res.groups = chosen.length;
      if (chosen.length === 0) {
        await client.query('COMMIT');
        client.release();
        return res;
      }
      const rows = await client.query<{ id: string; series_id: string; kind: number; block: string; data: Buffer }>(
        `SELECT c.id, c.series_id, c.kind, c.block, c.data FROM beacon_tsdb_chunks c
           JOIN unnest($1::int8[], $2::int2[], $3::int8[]) AS g(series_id, kind, block)
             ON c.series_id = g.series_id AND c.kind = g.kind AND c.block = g.block
          ORDER BY c.id`,
        [chosen.map((g) => g.series_id), chosen.map((g) => g.kind), chosen.map((g) => g.block)],
      );
      res.rowsIn = rows.rows.length;
      const byGroup = new Map<string, { seriesId: number; kind: number; block: number; datas: Buffer[] }>();
      for (const r of rows.rows) {
        const key = `${r.series_id}/${r.kind}/${r.block}`;
        let g = byGroup.get(key);
        if (g === undefined) {
          g = { seriesId: Number(r.series_id), kind: r.kind, block: Number(r.block), datas: [] };
          byGroup.set(key, g);
        }
        g.datas.push(r.data);
      }
      const out: ChunkRow[] = [];
      for (const g of byGroup.values()) {
        const merged = mergeChunks(g.datas);
        if (merged.t.length === 0) continue;
        const closed = g.block < closedBelow(g.kind);
        encodeRows(g.seriesId, g.kind, blockMs(g.kind), closed ? 2 : 1, merged.t, merged.hi, merged.lo, out);
        if (closed && g.kind === 0) rollupRows(g.seriesId, specs, merged, out);
      }
      await client.query('DELETE FROM beacon_tsdb_chunks WHERE id = ANY($1::int8[])', [rows.rows.map((r) => r.id)]);
      await insertRows(client, out);
      res.rowsOut = out.length;
      await client.query('COMMIT');
      client.release();
      return res;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      client.release(true);
      throw new UnavailableError('time-series compaction failed in PostgreSQL', { cause: err });
    }
  }

  // --- queries ----------------------------------------------------------------------------------

  /** Reads the series created in PostgreSQL since the last look (coalesced: concurrent queries share one read). */
  private refreshMirror(): Promise<void> {
    this.mirrorRefresh ??= (async () => {
      try {
        for (;;) {
          const r = await this.query<{ id: string; labels: [string, string][] }>(
            'SELECT id, labels FROM beacon_tsdb_series WHERE id > $1 ORDER BY id LIMIT 50000',
            [this.mirrorMax],
          );
          for (const row of r.rows) {
            const id = Number(row.id);
            this.mirror.add(id, row.labels.map(([name, value]) => ({ name, value })));
            this.mirrorMax = Math.max(this.mirrorMax, id);
          }
          if (r.rows.length < 50000) break;
        }
      } finally {
        this.mirrorRefresh = undefined;
      }
    })();
    return this.mirrorRefresh;
  }

  /**
   * {@link Querier.select}: PostgreSQL's chunks of the matching series merged with the local
   * store's samples; for the part of the range older than the raw retention, the finest rollup
   * whose interval is at most `hints.stepMs`, as {@link Tsdb.select} does.
   * @throws TooManySamplesError beyond `hints.maxSamples`; UnavailableError when PostgreSQL fails;
   *   InvalidArgumentError for an invalid regex.
   */
  async select(matchers: readonly Matcher[], startMs: number, endMs: number, hints: SelectHints = {}): Promise<SeriesSamples[]> {
    const local = this.local.select(matchers, startMs, endMs, hints);
    await this.refreshMirror();
    const ids = this.mirror.match(matchers);
    if (ids.length === 0) return local;
    const rawFloor = this.now() - this.local.retentionMs;
    let rollup = -1;
    if (hints.stepMs !== undefined && startMs < rawFloor) {
      this.local.rollupSpecs.forEach((r, k) => {
        if (r.intervalMs <= (hints.stepMs as number)) rollup = k;
      });
    }
    const rawStart = rollup >= 0 ? Math.max(startMs, rawFloor) : startMs;
    const ranges: { kind: number; from: number; to: number }[] = [{ kind: 0, from: rawStart, to: endMs }];
    if (rollup >= 0) ranges.push({ kind: rollup + 1, from: startMs, to: Math.min(endMs, rawFloor - 1) });
    const rows = await this.query<{ series_id: string; kind: number; samples: number; data: Buffer }>(
      `SELECT series_id, kind, samples, data FROM beacon_tsdb_chunks
        WHERE series_id = ANY($1::int8[])
          AND ((kind = 0 AND max_t >= $2 AND min_t <= $3) OR (kind = $4 AND max_t >= $5 AND min_t <= $6))
        ORDER BY id DESC`, // newest first: of equal timestamps the last written wins, as in compaction
      [ids, clampT(rawStart), clampT(endMs), ranges[1]?.kind ?? -1, clampT(ranges[1]?.from ?? 0), clampT(ranges[1]?.to ?? 0)],
    );
    // Per series: the local samples first, then PostgreSQL's (equal timestamps keep the first).
    const merged = new Map<string, { labels: Labels; parts: { ts: ArrayLike<number>; vs: Float64Array }[]; count: number }>();
    for (const s of local) {
      merged.set(labelsKey(s.labels), { labels: s.labels, parts: [{ ts: s.timestamps, vs: toF64(s.values) }], count: s.timestamps.length });
    }
    const byId = new Map<number, { kind: number; samples: number; data: Buffer }[]>();
    for (const r of rows.rows) {
      const id = Number(r.series_id);
      let list = byId.get(id);
      if (list === undefined) {
        list = [];
        byId.set(id, list);
      }
      list.push(r);
    }
    const max = hints.maxSamples ?? Infinity;
    let decoded = 0;
    for (const [id, list] of byId) {
      const labels = this.mirror.labels(id);
      if (labels === undefined) continue;
      let cap = 0;
      for (const r of list) cap += r.samples;
      const ts = new Float64Array(cap);
      const vs = new Float64Array(cap);
      let n = 0;
      for (const r of list) {
        const range = r.kind === 0 ? (ranges[0] as { from: number; to: number }) : (ranges[1] ?? { from: 0, to: -1 });
        n = decodeChunkInto(r.data, ts, vs, n, range.from, range.to);
      }
      if (n === 0) continue;
      // Bounds memory before the exact count below (duplicates not yet dropped, so twice the limit).
      decoded += n;
      if (decoded > 2 * max) throw new TooManySamplesError(max);
      let part: { ts: Float64Array; vs: Float64Array } = { ts: ts.subarray(0, n), vs: vs.subarray(0, n) };
      // Rows overlap (fresh rows beside merged ones, samples flushed twice) and come in id order.
      let sorted = true;
      for (let i = 1; i < n && sorted; i++) if ((ts[i] as number) <= (ts[i - 1] as number)) sorted = false;
      if (!sorted) part = sortDedupe(part.ts, part.vs);
      const key = labelsKey(labels);
      const e = merged.get(key);
      if (e === undefined) merged.set(key, { labels, parts: [part], count: part.ts.length });
      else {
        e.parts.push(part);
        e.count += part.ts.length;
      }
    }
    const out: SeriesSamples[] = [];
    let loaded = 0;
    for (const e of merged.values()) {
      if (e.parts.length === 1) {
        const p = e.parts[0] as { ts: ArrayLike<number>; vs: Float64Array };
        loaded += p.ts.length;
        if (loaded > max) throw new TooManySamplesError(max);
        out.push({ labels: e.labels, timestamps: p.ts, values: p.vs });
        continue;
      }
      const ts = new Float64Array(e.count);
      const vs = new Float64Array(e.count);
      let at = 0;
      for (const p of e.parts) {
        for (let i = 0; i < p.ts.length; i++) ts[at + i] = p.ts[i] as number;
        vs.set(p.vs, at);
        at += p.ts.length;
      }
      const d = sortDedupe(ts, vs);
      loaded += d.ts.length;
      if (loaded > max) throw new TooManySamplesError(max);
      out.push({ labels: e.labels, timestamps: d.ts, values: d.vs });
    }
    return out;
  }

  /** Why the last read of PostgreSQL by {@link tolerant} failed; undefined once one succeeds. */
  private readFailed: string | undefined;

  /**
   * This store as the Prometheus query API reads it: the same answers, but while PostgreSQL
   * cannot be read it answers from the local store alone (this node's own samples, flushed or
   * not, within its raw retention) instead of failing, and {@link readFailure} says why (the API
   * adds it to the answer's `warnings`, as Prometheus does for a partial answer). Alert and
   * recording rules keep the strict querier: a rule must not fire on part of the data.
   */
  readonly tolerant: Querier = {
    select: (matchers, startMs, endMs, hints) => this.orLocal(() => this.select(matchers, startMs, endMs, hints), () => this.local.select(matchers, startMs, endMs, hints)),
    series: (matchers, startMs, endMs) => this.orLocal(() => this.series(matchers, startMs, endMs), () => this.local.series(matchers, startMs, endMs)),
    labelNames: (matchers, startMs, endMs) => this.orLocal(() => this.labelNames(matchers, startMs, endMs), () => this.local.labelNames(matchers, startMs, endMs)),
    labelValues: (name, matchers, startMs, endMs) =>
      this.orLocal(() => this.labelValues(name, matchers, startMs, endMs), () => this.local.labelValues(name, matchers, startMs, endMs)),
  };

  /** Why answers of {@link tolerant} hold this node's samples only (PostgreSQL could not be read), if they do. */
  readFailure(): string | undefined {
    return this.readFailed;
  }

  private async orLocal<T>(shared: () => Promise<T>, local: () => T | Promise<T>): Promise<T> {
    try {
      const r = await shared();
      this.readFailed = undefined;
      return r;
    } catch (err) {
      if (!(err instanceof UnavailableError) || this.closed) throw err;
      this.readFailed = `PostgreSQL could not be read (${err.message}): this answer holds only the samples of the node that answered`;
      return local();
    }
  }

  /** {@link Querier.series}: label sets of matching series with samples in the range, here or in PostgreSQL. */
  async series(matchers: readonly Matcher[], startMs: number, endMs: number): Promise<Labels[]> {
    const out = new Map<string, Labels>();
    for (const l of this.local.series(matchers, startMs, endMs)) out.set(labelsKey(l), l);
    await this.refreshMirror();
    let ids = this.mirror.match(matchers);
    if (ids.length > 0 && (startMs > MIN_T || endMs < MAX_T)) {
      const r = await this.query<{ series_id: string }>(
        'SELECT DISTINCT series_id FROM beacon_tsdb_chunks WHERE series_id = ANY($1::int8[]) AND max_t >= $2 AND min_t <= $3',
        [ids, clampT(startMs), clampT(endMs)],
      );
      ids = r.rows.map((x) => Number(x.series_id));
    }
    for (const id of ids) {
      const l = this.mirror.labels(id);
      if (l !== undefined) out.set(labelsKey(l), l);
    }
    return [...out.values()];
  }

  /** {@link Querier.labelNames}. */
  async labelNames(matchers: readonly Matcher[], startMs: number, endMs: number): Promise<string[]> {
    const names = new Set<string>();
    for (const l of await this.series(matchers, startMs, endMs)) for (const x of l) names.add(x.name);
    return [...names].sort();
  }

  /** {@link Querier.labelValues}. */
  async labelValues(name: string, matchers: readonly Matcher[], startMs: number, endMs: number): Promise<string[]> {
    const values = new Set<string>();
    for (const l of await this.series(matchers, startMs, endMs)) {
      const v = l.find((x) => x.name === name)?.value;
      if (v !== undefined) values.add(v);
    }
    return [...values].sort();
  }

  /**
   * Stops the loops, flushes what the outbox holds and closes the pool, in at most
   * {@link CLOSE_TIMEOUT_MS} (a PostgreSQL that does not answer must not hold up a shutdown:
   * what is not flushed stays in the outbox files for the next start).
   */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    for (const t of this.timers) clearTimeout(t);
    const deadline = new Promise<void>((resolve) => setTimeout(resolve, CLOSE_TIMEOUT_MS).unref());
    await Promise.race([
      (async () => {
        await this.compacting?.catch(() => undefined);
        await this.flushing?.catch(() => undefined);
        await this.flush().catch(() => undefined);
      })(),
      deadline,
    ]);
    this.closed = true;
    if (this.local.onWalRecord !== undefined) this.local.onWalRecord = undefined;
    this.outbox?.close();
    this.outbox = undefined;
    await Promise.race([this.pool.end().catch(() => undefined), deadline]);
  }
}

function segName(n: number): string {
  return String(n).padStart(8, '0');
}

function blockMs(kind: number): number {
  if (kind === 0) return RAW_BLOCK_MS;
  return ROLLUP_BLOCK_MS[Math.min(kind - 1, ROLLUP_BLOCK_MS.length - 1)] as number;
}

function clampT(t: number): number {
  return Math.min(MAX_T, Math.max(MIN_T, Math.round(t)));
}

function toF64(v: ArrayLike<number>): Float64Array {
  return v instanceof Float64Array ? v : Float64Array.from(v);
}

/** The SHA-256 of a label set's identity string: the series' key in PostgreSQL. */
function hashLabels(labels: Labels): Buffer {
  return createHash('sha256').update(labelsKey(labels)).digest();
}

/** Encodes sorted samples (duplicates already dropped or kept first) into chunk rows, one or more per block. */
function encodeRows(seriesId: number, kind: number, blockLen: number, level: number, t: readonly number[], hi: readonly number[], lo: readonly number[], out: ChunkRow[]): void {
  let enc: ChunkEncoder | undefined;
  let block = 0;
  let last = -Infinity;
  const cut = (): void => {
    if (enc === undefined || enc.count === 0) return;
    out.push({ seriesId, kind, block, minT: enc.minT, maxT: enc.maxT, samples: enc.count, level, data: Buffer.from(enc.bytes()) });
    enc = undefined;
  };
  for (let i = 0; i < t.length; i++) {
    const ti = t[i] as number;
    if (ti === last) continue;
    last = ti;
    const b = Math.floor(ti / blockLen);
    if (enc !== undefined && (b !== block || enc.count >= MERGED_CHUNK_SAMPLES)) cut();
    if (enc === undefined) {
      enc = new ChunkEncoder(64);
      block = b;
    }
    enc.appendBits(ti, hi[i] as number, lo[i] as number);
  }
  cut();
}

/** Decodes chunks (in write order) into one sorted sample list; of equal timestamps the last written wins. */
function mergeChunks(datas: readonly Buffer[]): { t: number[]; hi: number[]; lo: number[] } {
  const byT = new Map<number, [number, number]>();
  for (const d of datas) {
    const n = chunkCount(d);
    const ts = new Float64Array(n);
    const vs = new Float64Array(n);
    const got = decodeChunkInto(d, ts, vs, 0);
    const u = new Uint32Array(vs.buffer);
    for (let i = 0; i < got; i++) byT.set(ts[i] as number, [u[i * 2 + 1] as number, u[i * 2] as number]);
  }
  const keys = [...byT.keys()].sort((a, b) => a - b);
  const hi: number[] = new Array(keys.length);
  const lo: number[] = new Array(keys.length);
  keys.forEach((k, i) => {
    const v = byT.get(k) as [number, number];
    hi[i] = v[0];
    lo[i] = v[1];
  });
  return { t: keys, hi, lo };
}

/** The rollups of a closed raw block: for each spec, the last sample of every interval, as fresh rows of its kind. */
function rollupRows(seriesId: number, specs: readonly RollupSpec[], m: { t: number[]; hi: number[]; lo: number[] }, out: ChunkRow[]): void {
  specs.forEach((spec, k) => {
    const t: number[] = [];
    const hi: number[] = [];
    const lo: number[] = [];
    for (let i = 0; i < m.t.length; i++) {
      const next = m.t[i + 1];
      if (next !== undefined && Math.floor(next / spec.intervalMs) === Math.floor((m.t[i] as number) / spec.intervalMs)) continue;
      t.push(m.t[i] as number);
      hi.push(m.hi[i] as number);
      lo.push(m.lo[i] as number);
    }
    encodeRows(seriesId, k + 1, blockMs(k + 1), 0, t, hi, lo, out);
  });
}

async function insertRows(client: pg.PoolClient, rows: readonly ChunkRow[]): Promise<void> {
  for (let i = 0; i < rows.length; i += ROWS_PER_INSERT) {
    const part = rows.slice(i, i + ROWS_PER_INSERT);
    await client.query(
      `INSERT INTO beacon_tsdb_chunks (series_id, kind, block, min_t, max_t, samples, level, data)
       SELECT * FROM unnest($1::int8[], $2::int2[], $3::int8[], $4::int8[], $5::int8[], $6::int4[], $7::int2[], $8::bytea[])`,
      [
        part.map((r) => r.seriesId),
        part.map((r) => r.kind),
        part.map((r) => r.block),
        part.map((r) => r.minT),
        part.map((r) => r.maxT),
        part.map((r) => r.samples),
        part.map((r) => r.level),
        part.map((r) => r.data),
      ],
    );
  }
}
