/**
 * The backend conformance suite: one set of node:test tests run against every {@link Backend}
 * (SQLite file, SQLite memory, PostgreSQL). It checks the contract of src/backend/types.ts
 * directly and through a {@link Store}, the backend's main consumer. Nothing in here knows which
 * datastore is underneath: expected results come from small models written against the contract.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import type { Backend, CommitBatch, RetentionRule } from '../../src/backend/index.js';
import { BeaconError, CompactedError, FutureRevisionError, InvalidArgumentError, NotFoundError, TooLargeError } from '../../src/errors.js';
import {
  MAX_KEY_BYTES,
  type AuditRecord,
  prefixEnd,
  Store,
  View,
  type Compare,
  type CompareResult,
  type CompareTarget,
  type KeyValue,
  type Lease,
  type LogEntry,
  type RevisionEvents,
  type TxnResponse,
} from '../../src/kv/index.js';

/** What a backend factory hands the suite for one test. */
export interface BackendHarness {
  /** A fresh, empty, not yet opened backend. */
  backend: Backend;
  /** Removes what the backend stored (temp files, a database schema); called after the suite closed every backend it opened. */
  cleanup: () => Promise<void>;
  /**
   * A new, not yet opened backend over the same durable storage, for backends whose data outlives
   * the object (files, databases). The suite closes the previous one first. Absent for `:memory:`.
   */
  reopen?: () => Promise<Backend>;
  /** A new, not yet opened backend reading a file written by {@link Backend.snapshot}; absent where snapshots are not files a backend opens. */
  openSnapshot?: (path: string) => Promise<Backend>;
}

/** Builds one {@link BackendHarness} per test. */
export type BackendFactory = () => Promise<BackendHarness>;

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const hex = (v: Uint8Array): string => Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('hex');

/** UTF-8 byte order, computed independently of the code under test. */
function utf8Compare(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

function inRangeUtf8(k: string, key: string, end: string | null | undefined): boolean {
  if (end === undefined) return k === key;
  return utf8Compare(k, key) >= 0 && (end === null || utf8Compare(k, end) < 0);
}

/** A kv with its value as hex, so Buffers and Uint8Arrays compare equal. */
function nkv(kv: KeyValue): Record<string, unknown> {
  return {
    key: kv.key,
    value: hex(kv.value),
    createRevision: kv.createRevision,
    modRevision: kv.modRevision,
    version: kv.version,
    lease: kv.lease,
  };
}

function nentry(e: LogEntry): Record<string, unknown> {
  return {
    revision: e.revision,
    key: e.key,
    value: hex(e.value),
    createRevision: e.createRevision,
    version: e.version,
    lease: e.lease,
    deleted: e.deleted,
    ts: e.ts,
    meta: e.meta,
  };
}

function nevents(groups: RevisionEvents[], withPrev = true): unknown[] {
  return groups.map((g) => ({
    revision: g.revision,
    events: g.events.map((e) => ({
      type: e.type,
      kv: nkv(e.kv),
      ...(withPrev && e.prevKv ? { prevKv: nkv(e.prevKv) } : {}),
    })),
  }));
}

function nlease(l: Lease): Record<string, unknown> {
  return { id: l.id, grantedTtl: l.grantedTtl, expiresAt: l.expiresAt };
}

const byId = (a: Lease, b: Lease): number => a.id - b.id;

/** A fake millisecond clock for lease expiry. */
class FakeClock {
  t = 1_700_000_000_000;
  readonly now = (): number => this.t;
  advance(ms: number): void {
    this.t += ms;
  }
}

async function waitFor(what: string, cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** One test's resources: the harness, every backend and store it opened, closed at the end. */
class Ctx {
  private readonly backends = new Set<Backend>();
  private readonly stores = new Set<Store>();
  constructor(readonly h: BackendHarness) {}

  get backend(): Backend {
    return this.h.backend;
  }

  /** Opens a backend (the harness's by default) and remembers to close it. */
  async open(b: Backend = this.h.backend): Promise<Awaited<ReturnType<Backend['open']>>> {
    this.backends.add(b);
    return b.open();
  }

  async close(b: Backend): Promise<void> {
    if (!this.backends.delete(b)) return;
    await b.close();
  }

  /** Opens a Store over a backend (the harness's by default). */
  async store(opts: { backend?: Backend; clock?: FakeClock } = {}): Promise<Store> {
    const backend = opts.backend ?? this.h.backend;
    const store = new Store({ backend, ...(opts.clock ? { clock: opts.clock.now } : {}) });
    this.backends.add(backend);
    this.stores.add(store);
    await store.open();
    return store;
  }

  async closeStore(s: Store): Promise<void> {
    if (!this.stores.delete(s)) return;
    this.backends.delete(s.backend);
    await s.close();
  }

  /** Closes the harness backend (or store) and opens the same storage again; undefined when the backend cannot be reopened. */
  async reopenBackend(current: Backend | Store): Promise<Backend | undefined> {
    if (this.h.reopen === undefined) return undefined;
    if (current instanceof Store) await this.closeStore(current);
    else await this.close(current);
    return this.h.reopen();
  }

  async dispose(): Promise<void> {
    for (const s of this.stores) {
      this.backends.delete(s.backend);
      await s.close().catch(() => undefined);
    }
    for (const b of this.backends) await b.close().catch(() => undefined);
    await this.h.cleanup();
  }
}

/**
 * Builds log entries the way the store would: createRevision and version follow etcd, deletes
 * are tombstones carrying the deleted key's createRevision. Also the model the backend's answers
 * are checked against.
 */
class LogBuilder {
  revision = 0;
  ts = 1_700_000_000_000;
  readonly all: LogEntry[] = [];
  private readonly latest = new Map<string, LogEntry>();

  /** One revision: puts (`value` undefined deletes) applied together; entries in UTF-8 key order. */
  rev(ops: { key: string; value?: Uint8Array; lease?: number }[], meta: string | null = null): LogEntry[] {
    const revision = ++this.revision;
    this.ts += 7;
    const out: LogEntry[] = [];
    for (const op of ops) {
      const prev = this.latest.get(op.key);
      const live = prev !== undefined && !prev.deleted;
      let e: LogEntry;
      if (op.value === undefined) {
        if (!live) throw new Error(`test bug: delete of missing key ${op.key}`);
        e = { revision, key: op.key, value: new Uint8Array(0), createRevision: prev.createRevision, version: 0, lease: 0, deleted: true, ts: this.ts, meta };
      } else {
        e = {
          revision,
          key: op.key,
          value: op.value,
          createRevision: live ? prev.createRevision : revision,
          version: live ? prev.version + 1 : 1,
          lease: op.lease ?? 0,
          deleted: false,
          ts: this.ts,
          meta,
        };
      }
      this.latest.set(op.key, e);
      out.push(e);
    }
    out.sort((a, b) => utf8Compare(a.key, b.key));
    this.all.push(...out);
    return out;
  }

  live(key: string): boolean {
    const e = this.latest.get(key);
    return e !== undefined && !e.deleted;
  }

  keys(): string[] {
    return [...this.latest.keys()];
  }

  /** The kvs of `[key, end)` as of `revision`, in UTF-8 order (the contract of Backend.range). */
  range(key: string, end: string | null | undefined, revision: number, log: LogEntry[] = this.all): KeyValue[] {
    const at = new Map<string, LogEntry>();
    for (const e of log) if (e.revision <= revision && inRangeUtf8(e.key, key, end)) at.set(e.key, e);
    return [...at.values()]
      .filter((e) => !e.deleted)
      .sort((a, b) => utf8Compare(a.key, b.key))
      .map((e) => ({ key: e.key, value: e.value, createRevision: e.createRevision, modRevision: e.revision, version: e.version, lease: e.lease }));
  }

  /** The log in `[from, to]` in revision then UTF-8 key order. */
  log(from: number, to: number, log: LogEntry[] = this.all): LogEntry[] {
    return log
      .filter((e) => e.revision >= from && e.revision <= to)
      .sort((a, b) => a.revision - b.revision || utf8Compare(a.key, b.key));
  }

  /** What is left after compacting at `rev`: for each key the latest entry at or below it unless a tombstone, and everything above. */
  compacted(rev: number): LogEntry[] {
    const keep = new Map<string, LogEntry>();
    for (const e of this.all) if (e.revision <= rev) keep.set(e.key, e);
    const kept = [...keep.values()].filter((e) => !e.deleted);
    return [...kept, ...this.all.filter((e) => e.revision > rev)];
  }
}

/** Commits whole revisions (and lease changes) through Backend.commit as the store would, checking what the planner is told. */
async function commitRevisions(
  backend: Backend,
  head: number,
  revisions: LogEntry[][],
  leases: { grants?: Lease[]; revokes?: number[] } = {},
): Promise<CommitBatch> {
  const entries = revisions.flat();
  const last = revisions.length > 0 ? (revisions[revisions.length - 1] as LogEntry[])[0]?.revision ?? head : head;
  let planned = 0;
  const batch = await backend.commit(head, (missed, headRevision) => {
    planned++;
    assert.equal(headRevision, head, 'the planner is told the committed head revision');
    assert.deepEqual(missed, [], 'nothing was committed elsewhere, so nothing is missed');
    return { revision: last, entries, leaseGrants: leases.grants ?? [], leaseRevokes: leases.revokes ?? [] };
  });
  assert.ok(planned >= 1, 'commit runs the planner');
  assert.equal(batch.revision, last);
  return batch;
}

// Keys whose UTF-8 order differs from JavaScript's UTF-16 order, and multi-byte edges.
const UNICODE_KEYS = [
  'u/a',
  'u/z',
  'u/\u007f',
  'u/\u0080',
  'u/é',
  'u/\u07ff',
  'u/\u0800',
  'u/\ud7ff',
  'u/\ue000',
  'u/\uf8ff',
  'u/\ufffd',
  'u/\uffff',
  'u/\u{10000}',
  'u/\u{1F600}',
  'u/\u{1F600}x',
  'u/\u{1F601}',
  'u/\u{10FFFF}',
  'u/a\u0000b',
  'u/a\u0000',
  'u/\uffff\u{10000}',
];

/** Registers the conformance tests for one backend under `describe(name)`. */
export function runConformance(name: string, makeBackend: BackendFactory): void {
  const withCtx = (fn: (ctx: Ctx) => Promise<void>) => async (): Promise<void> => {
    const ctx = new Ctx(await makeBackend());
    try {
      await fn(ctx);
    } finally {
      await ctx.dispose();
    }
  };

  describe(`backend conformance: ${name}`, () => {
    // -------------------------------------------------------------------------------------------
    // The Backend contract, called directly.

    describe('Backend contract', () => {
      test('an empty store opens at revision 0 with nothing in it', withCtx(async (ctx) => {
        const state = await ctx.open();
        assert.deepEqual(state, { revision: 0, compactRevision: 0 });
        assert.equal(await ctx.backend.headRevision(), 0);
        const seen: KeyValue[] = [];
        assert.equal(await ctx.backend.loadView((kv) => seen.push(kv)), 0);
        assert.deepEqual(seen, []);
        assert.deepEqual(await ctx.backend.loadLeases(), []);
        assert.deepEqual(await ctx.backend.readLog(1, 1000, 100), []);
        assert.deepEqual(await ctx.backend.range({ key: '', rangeEnd: null, revision: 0, limit: 0 }), { kvs: [], more: false, count: 0 });
        assert.deepEqual(await ctx.backend.history('a', {}), []);
        assert.equal(await ctx.backend.previous('a', 10), undefined);
        assert.equal(typeof ctx.backend.description, 'string');
        const size = await ctx.backend.sizeBytes();
        assert.ok(size === undefined || (Number.isSafeInteger(size) && size >= 0));
      }));

      test('commit stores entries at consecutive revisions and lease grants/revokes; loadView and loadLeases read them back', withCtx(async (ctx) => {
        await ctx.open();
        const b = ctx.backend;
        const log = new LogBuilder();
        const leaseA: Lease = { id: 1, grantedTtl: 10, expiresAt: 1_700_000_010_000 };
        const leaseB: Lease = { id: 2 ** 47 - 1, grantedTtl: 9_000_000_000, expiresAt: 1_700_000_000_123 + 9_000_000_000 * 1000 };
        const first = [
          log.rev([{ key: 'a', value: enc('a1') }, { key: 'c', value: enc('c1') }, { key: 'b', value: enc('b1'), lease: leaseA.id }]),
          log.rev([{ key: 'a', value: enc('a2') }], '{"why":"test"}'),
          log.rev([{ key: 'd', value: enc('d1'), lease: leaseB.id }]),
        ];
        const batch = await commitRevisions(b, 0, first, { grants: [leaseA, leaseB] });
        assert.equal(batch.entries.length, 5);
        assert.equal(await b.headRevision(), 3);
        const seen: KeyValue[] = [];
        assert.equal(await b.loadView((kv) => seen.push(kv)), 3);
        assert.deepEqual(
          seen.map(nkv).sort((x, y) => utf8Compare(x.key as string, y.key as string)),
          log.range('', null, 3).map(nkv),
        );
        assert.deepEqual((await b.loadLeases()).sort(byId).map(nlease), [leaseA, leaseB].map(nlease));
        assert.deepEqual((await b.readLog(1, 3, 100)).map(nentry), log.log(1, 3).map(nentry), 'ts and meta round-trip');

        // A second batch: delete b, revoke lease A, and a lease-only change with no revision.
        await commitRevisions(b, 3, [log.rev([{ key: 'b' }])], { revokes: [leaseA.id] });
        const leaseC: Lease = { id: 3, grantedTtl: 5, expiresAt: 1_700_000_005_000 };
        await commitRevisions(b, 4, [], { grants: [leaseC] });
        assert.equal(await b.headRevision(), 4);
        assert.deepEqual((await b.loadLeases()).sort(byId).map(nlease), [leaseC, leaseB].sort(byId).map(nlease));
        const seen2: KeyValue[] = [];
        assert.equal(await b.loadView((kv) => seen2.push(kv)), 4);
        assert.deepEqual(seen2.map((kv) => kv.key).sort(utf8Compare), ['a', 'c', 'd']);
        assert.deepEqual((await b.readLog(4, 4, 10)).map(nentry), log.log(4, 4).map(nentry), 'a tombstone is a log entry with deleted=true');
      }));

      test('commit tells the planner the head and either nothing missed or exactly the entries after the applied revision', withCtx(async (ctx) => {
        await ctx.open();
        const log = new LogBuilder();
        await commitRevisions(ctx.backend, 0, [log.rev([{ key: 'a', value: enc('1') }]), log.rev([{ key: 'b', value: enc('2') }])]);
        // A caller that has applied only revision 1: a shared backend hands it revision 2 to apply first.
        let missedSeen: LogEntry[] | undefined;
        await ctx.backend.commit(1, (missed, head) => {
          missedSeen = missed;
          assert.equal(head, 2);
          return { revision: head, entries: [], leaseGrants: [], leaseRevokes: [] };
        });
        assert.ok(missedSeen !== undefined);
        assert.ok(
          missedSeen.length === 0 || JSON.stringify(missedSeen.map(nentry)) === JSON.stringify(log.log(2, 2).map(nentry)),
          `missed is [] or the entries of revision 2, got ${JSON.stringify(missedSeen.map(nentry))}`,
        );
        assert.equal(await ctx.backend.headRevision(), 2);
      }));

      test('range at older revisions: deleted keys, tombstones, re-created keys, limit/more/count, single keys', withCtx(async (ctx) => {
        await ctx.open();
        const log = new LogBuilder();
        const revs = [
          log.rev([{ key: 'a', value: enc('a1') }, { key: 'b', value: enc('b1') }, { key: 'c', value: enc('c1') }]),
          log.rev([{ key: 'a', value: enc('a2') }]),
          log.rev([{ key: 'b' }]),
          log.rev([{ key: 'd', value: enc('d1') }, { key: 'c' }]),
          log.rev([{ key: 'b', value: enc('b-again') }]),
          log.rev([{ key: 'a', value: enc('a3') }, { key: 'e', value: enc('e1') }]),
        ];
        await commitRevisions(ctx.backend, 0, revs.slice(0, 2));
        await commitRevisions(ctx.backend, 2, revs.slice(2));
        const ranges: [string, string | null | undefined][] = [
          ['', null],
          ['a', null],
          ['b', 'd'],
          ['b', 'b\u0000'],
          ['a', undefined],
          ['b', undefined],
          ['c', undefined],
          ['zz', null],
          ['c', 'a'],
        ];
        for (let rev = 1; rev <= log.revision; rev++) {
          for (const [key, end] of ranges) {
            const want = log.range(key, end, rev);
            for (const limit of [0, 1, 2, 10]) {
              const got = await ctx.backend.range({ key, rangeEnd: end, revision: rev, limit });
              const where = `range(${JSON.stringify(key)}, ${JSON.stringify(end)}) at ${rev} limit ${limit}`;
              const wantKvs = limit > 0 ? want.slice(0, limit) : want;
              assert.deepEqual(got.kvs.map(nkv), wantKvs.map(nkv), where);
              assert.equal(got.count, want.length, `${where}: count`);
              assert.equal(got.more, wantKvs.length < want.length, `${where}: more`);
            }
          }
        }
        // The re-created key b starts over: createRevision 5, version 1.
        const b5 = await ctx.backend.range({ key: 'b', rangeEnd: undefined, revision: 5, limit: 0 });
        assert.deepEqual(b5.kvs.map((kv) => [kv.createRevision, kv.modRevision, kv.version]), [[5, 5, 1]]);
      }));

      test('randomized log: range at every revision, readLog, history and previous match the model', withCtx(async (ctx) => {
        await ctx.open();
        const log = new LogBuilder();
        let seed = 12345;
        const rnd = (): number => {
          seed = (seed * 1103515245 + 12345) % 2147483648;
          return seed / 2147483648;
        };
        const pool = ['k/a', 'k/b', 'k/c', 'k/é', 'k/\ue000', 'k/\u{1F600}', 'k/\uffff', 'j', 'l'];
        let head = 0;
        for (let batch = 0; batch < 8; batch++) {
          const revs: LogEntry[][] = [];
          for (let i = 0; i < 1 + Math.floor(rnd() * 8); i++) {
            const keys = [...new Set(Array.from({ length: 1 + Math.floor(rnd() * 3) }, () => pool[Math.floor(rnd() * pool.length)] as string))];
            const ops = keys.map((key) => (log.live(key) && rnd() < 0.3 ? { key } : { key, value: rnd() < 0.2 ? new Uint8Array(0) : enc(`${key}@${log.revision + 1}`) }));
            revs.push(log.rev(ops));
          }
          await commitRevisions(ctx.backend, head, revs);
          head = log.revision;
        }
        const b = ctx.backend;
        for (let rev = 1; rev <= head; rev++) {
          for (const [key, end] of [['', null], ['k/', prefixEnd('k/')], ['k/b', 'k/\uffff'], ['k/\u{1F600}', undefined]] as [string, string | null | undefined][]) {
            const got = await b.range({ key, rangeEnd: end, revision: rev, limit: 0 });
            assert.deepEqual(got.kvs.map(nkv), log.range(key, end, rev).map(nkv), `range ${key}..${end} at ${rev}`);
          }
        }
        assert.deepEqual((await b.readLog(1, head, 1_000_000)).map(nentry), log.log(1, head).map(nentry));
        assert.deepEqual((await b.readLog(3, 5, 1_000_000)).map(nentry), log.log(3, 5).map(nentry));
        for (const key of pool) {
          const all = log.all.filter((e) => e.key === key);
          assert.deepEqual((await b.history(key, {})).map(nentry), all.map(nentry), `history ${key}`);
          assert.deepEqual((await b.history(key, { reverse: true })).map(nentry), [...all].reverse().map(nentry), `history ${key} reverse`);
          const mid = Math.floor(head / 2);
          assert.deepEqual(
            (await b.history(key, { fromRevision: mid })).map(nentry),
            all.filter((e) => e.revision >= mid).map(nentry),
            `history ${key} from ${mid}`,
          );
          assert.deepEqual(
            (await b.history(key, { fromRevision: 2, toRevision: mid, limit: 2 })).map(nentry),
            all.filter((e) => e.revision >= 2 && e.revision <= mid).slice(0, 2).map(nentry),
            `history ${key} [2, ${mid}] limit 2`,
          );
          assert.deepEqual(
            (await b.history(key, { toRevision: mid, limit: 2, reverse: true })).map(nentry),
            all.filter((e) => e.revision <= mid).reverse().slice(0, 2).map(nentry),
            `history ${key} up to ${mid}, newest 2`,
          );
          for (let rev = 1; rev <= head + 1; rev++) {
            const want = all.filter((e) => e.revision < rev).pop();
            const got = await b.previous(key, rev);
            assert.deepEqual(got && nentry(got), want && nentry(want), `previous(${key}, ${rev})`);
          }
        }
      }));

      test('readLog orders by revision then UTF-8 key and never splits a revision, whatever the limit', withCtx(async (ctx) => {
        await ctx.open();
        const log = new LogBuilder();
        const revs: LogEntry[][] = [];
        for (let i = 0; i < 12; i++) {
          const n = 1 + (i % 5);
          const ops = Array.from({ length: n }, (_, j) => ({ key: UNICODE_KEYS[(i * 3 + j * 7) % UNICODE_KEYS.length] as string, value: enc(`${i}.${j}`) }));
          revs.push(log.rev([...new Map(ops.map((o) => [o.key, o])).values()]));
        }
        await commitRevisions(ctx.backend, 0, revs);
        const full = log.log(1, log.revision);
        for (let i = 1; i < full.length; i++) {
          const a = full[i - 1] as LogEntry;
          const c = full[i] as LogEntry;
          assert.ok(a.revision < c.revision || utf8Compare(a.key, c.key) < 0);
        }
        for (const from of [1, 4]) {
          const want = log.log(from, log.revision);
          for (let limit = 1; limit <= want.length + 1; limit++) {
            const got = (await ctx.backend.readLog(from, log.revision, limit)).map(nentry);
            const where = `readLog(${from}, ${log.revision}, ${limit})`;
            assert.ok(got.length > 0, `${where} makes progress`);
            assert.deepEqual(got, want.slice(0, got.length).map(nentry), `${where} is a prefix of the log`);
            const lastRev = got[got.length - 1]?.revision as number;
            assert.equal(got.length, want.filter((e) => e.revision <= lastRev).length, `${where} ends on a whole revision`);
            if (limit >= want.length) assert.equal(got.length, want.length, `${where} returns everything`);
          }
        }
        // Paging by "next revision after the last one read" reads the whole log exactly once.
        const paged: Record<string, unknown>[] = [];
        for (let from = 1; from <= log.revision; ) {
          const page = await ctx.backend.readLog(from, log.revision, 3);
          paged.push(...page.map(nentry));
          from = (page[page.length - 1] as LogEntry).revision + 1;
        }
        assert.deepEqual(paged, full.map(nentry));
      }));

      test('readLog with a key range returns only that range, in order, never splitting a revision (watch catch-up, issue 9)', withCtx(async (ctx) => {
        await ctx.open();
        const log = new LogBuilder();
        const revs: LogEntry[][] = [];
        for (let i = 0; i < 12; i++) {
          const n = 1 + (i % 5);
          const ops = Array.from({ length: n }, (_, j) => ({ key: UNICODE_KEYS[(i * 3 + j * 7) % UNICODE_KEYS.length] as string, value: enc(`${i}.${j}`) }));
          revs.push(log.rev([...new Map(ops.map((o) => [o.key, o])).values()]));
        }
        await commitRevisions(ctx.backend, 0, revs);
        const ranges: { key: string; rangeEnd?: string | null }[] = [
          { key: 'u/a' },
          { key: 'u/\u{1F600}' },
          { key: 'u/\u0080', rangeEnd: 'u/\ue000' },
          { key: 'u/\uffff', rangeEnd: null },
          { key: '', rangeEnd: null },
          { key: 'u/a', rangeEnd: 'u/b' },
          { key: 'v/', rangeEnd: 'v0' },
        ];
        for (const r of ranges) {
          const want = log.log(1, log.revision).filter((e) => inRangeUtf8(e.key, r.key, r.rangeEnd));
          for (let limit = 1; limit <= want.length + 1; limit++) {
            const where = `readLog(1, ${log.revision}, ${limit}, ${JSON.stringify(r)})`;
            const got = (await ctx.backend.readLog(1, log.revision, limit, r)).map(nentry);
            assert.deepEqual(got, want.slice(0, got.length).map(nentry), `${where} is a prefix of the range's log`);
            if (want.length > 0) assert.ok(got.length > 0, `${where} makes progress`);
            const lastRev = (got[got.length - 1]?.revision as number | undefined) ?? 0;
            assert.equal(got.length, want.filter((e) => e.revision <= lastRev).length, `${where} ends on a whole revision`);
            if (limit >= want.length) assert.equal(got.length, want.length, `${where} returns all of it`);
          }
        }
      }));

      test('compact drops superseded entries and tombstones at or below the revision and keeps the latest of each key', withCtx(async (ctx) => {
        await ctx.open();
        const b = ctx.backend;
        const log = new LogBuilder();
        // Over 4000 revisions, so a backend that compacts in steps crosses step boundaries.
        const revs: LogEntry[][] = [];
        revs.push(log.rev([{ key: 'gone', value: enc('g') }, { key: 'stays', value: enc('s1') }]));
        for (let i = 0; i < 4200; i++) {
          const key = `k/${i % 37}`;
          if (i === 2100) revs.push(log.rev([{ key: 'gone' }]));
          else if (i % 101 === 0 && log.live(key)) revs.push(log.rev([{ key }]));
          else revs.push(log.rev([{ key, value: enc(`${i}`) }]));
        }
        revs.push(log.rev([{ key: 'stays', value: enc('s2') }, { key: 'gone', value: enc('back') }]));
        await commitRevisions(b, 0, revs);
        const head = log.revision;
        const at = 4000;
        const before = new Map<number, unknown>();
        for (const r of [at, at + 1, at + 100, head]) before.set(r, (await b.range({ key: '', rangeEnd: null, revision: r, limit: 0 })).kvs.map(nkv));
        await b.compact(at);
        const left = await b.readLog(0, head, 1_000_000);
        const want = log.compacted(at).sort((x, y) => x.revision - y.revision || utf8Compare(x.key, y.key));
        assert.deepEqual(left.map(nentry), want.map(nentry));
        assert.ok(!left.some((e) => e.key === 'gone' && e.revision <= at), "a key deleted below the compact revision leaves nothing behind");
        assert.ok(left.some((e) => e.key === 'stays' && e.revision === 1), 'the latest entry of a key at or below the compact revision survives');
        for (const [r, kvs] of before) {
          assert.deepEqual((await b.range({ key: '', rangeEnd: null, revision: r, limit: 0 })).kvs.map(nkv), kvs, `range at ${r} after compaction`);
        }
        assert.equal(await b.headRevision(), head);
        const seen: KeyValue[] = [];
        await b.loadView((kv) => seen.push(kv));
        assert.deepEqual(seen.map(nkv).sort((x, y) => utf8Compare(x.key as string, y.key as string)), log.range('', null, head).map(nkv));
        // Compacting at or below an earlier compaction changes nothing.
        await b.compact(at - 10);
        assert.deepEqual((await b.readLog(0, head, 1_000_000)).map(nentry), want.map(nentry));
        const reopened = await ctx.reopenBackend(b);
        if (reopened !== undefined) {
          assert.deepEqual(await ctx.open(reopened), { revision: head, compactRevision: at });
          assert.deepEqual((await reopened.readLog(0, head, 1_000_000)).map(nentry), want.map(nentry));
        }
      }));

      test('keys beyond the BMP and in U+E000–U+FFFF sort in UTF-8 byte order in range and readLog', withCtx(async (ctx) => {
        await ctx.open();
        const log = new LogBuilder();
        const r1 = log.rev(UNICODE_KEYS.map((key, i) => ({ key, value: enc(`v${i}`) })));
        const r2 = log.rev([{ key: 'v', value: enc('later') }]);
        await commitRevisions(ctx.backend, 0, [r1, r2]);
        const sorted = [...UNICODE_KEYS].sort(utf8Compare);
        const got = await ctx.backend.range({ key: 'u/', rangeEnd: prefixEnd('u/'), revision: 2, limit: 0 });
        assert.deepEqual(got.kvs.map((kv) => kv.key), sorted);
        assert.deepEqual((await ctx.backend.readLog(1, 1, 1000)).map((e) => e.key), sorted);
        // Boundaries in the region where UTF-16 and UTF-8 disagree.
        for (const [key, end] of [
          ['u/\ue000', 'u/\u{10000}'],
          ['u/\u{10000}', 'u/\u{10FFFF}'],
          ['u/\uffff', 'u/\uffff\u{10000}'],
          ['u/\u{1F600}', prefixEnd('u/\u{1F600}')],
          ['u/a\u0000', 'u/a\u0000c'],
          ['u/a', 'u/a\u0000'],
        ] as [string, string | null][]) {
          const want = sorted.filter((k) => inRangeUtf8(k, key, end));
          const res = await ctx.backend.range({ key, rangeEnd: end, revision: 1, limit: 0 });
          assert.deepEqual(res.kvs.map((kv) => kv.key), want, `range [${JSON.stringify(key)}, ${JSON.stringify(end)})`);
        }
        // The view, loaded from the backend, scans in the same order.
        const view = new View();
        await ctx.backend.loadView((kv) => view.set(kv));
        const scanned: string[] = [];
        view.scan('u/', prefixEnd('u/'), (kv) => void scanned.push(kv.key));
        assert.deepEqual(scanned, sorted);
      }));

      test('binary values, an empty value and a 4096-byte key round-trip exactly', withCtx(async (ctx) => {
        await ctx.open();
        const log = new LogBuilder();
        const allBytes = Uint8Array.from({ length: 256 }, (_, i) => i);
        const backing = Uint8Array.from([9, 9, 9, 0xff, 0xfe, 0x00, 0x80, 9, 9]);
        const sliced = backing.subarray(3, 7); // a view with a byteOffset: only these 4 bytes belong to the value
        const longKey = 'k'.repeat(MAX_KEY_BYTES);
        const longWide = '\u{1F600}'.repeat(MAX_KEY_BYTES / 4);
        const values: [string, Uint8Array][] = [
          ['bin/all', allBytes],
          ['bin/empty', new Uint8Array(0)],
          ['bin/invalid-utf8', Uint8Array.from([0xc3, 0x28, 0xa0, 0xa1])],
          ['bin/sliced', sliced],
          ['bin/nul', Uint8Array.from([0, 0, 0])],
          [longKey, enc('long')],
          [longWide, enc('wide')],
        ];
        await commitRevisions(ctx.backend, 0, [log.rev(values.map(([key, value]) => ({ key, value }))), log.rev([{ key: 'x', value: enc('x') }])]);
        const want = log.range('', null, 1).map(nkv);
        assert.deepEqual((await ctx.backend.range({ key: '', rangeEnd: null, revision: 1, limit: 0 })).kvs.map(nkv), want);
        const seen: KeyValue[] = [];
        await ctx.backend.loadView((kv) => seen.push(kv));
        assert.deepEqual(seen.map(nkv).filter((kv) => kv.key !== 'x').sort((a, b) => utf8Compare(a.key as string, b.key as string)), want);
        assert.deepEqual((await ctx.backend.readLog(1, 1, 100)).map(nentry), log.log(1, 1).map(nentry));
        for (const [key, value] of values) {
          const h = await ctx.backend.history(key, {});
          assert.equal(h.length, 1);
          assert.equal(hex((h[0] as LogEntry).value), hex(value), `value of ${key.slice(0, 20)}`);
          assert.ok((h[0] as LogEntry).value instanceof Uint8Array);
        }
      }));

      test('reopening the same storage finds every revision, key, tombstone and lease', withCtx(async (ctx) => {
        if (ctx.h.reopen === undefined) return; // nothing outlives a memory store
        await ctx.open();
        const log = new LogBuilder();
        const lease: Lease = { id: 77, grantedTtl: 30, expiresAt: 1_700_000_030_000 };
        await commitRevisions(ctx.backend, 0, [
          log.rev([{ key: 'a', value: enc('1') }, { key: 'b', value: enc('2'), lease: 77 }]),
          log.rev([{ key: 'a' }], '{"m":1}'),
          log.rev([{ key: 'c', value: Uint8Array.from([0, 255]) }]),
        ], { grants: [lease] });
        const reopened = await ctx.reopenBackend(ctx.backend);
        assert.ok(reopened);
        assert.deepEqual(await ctx.open(reopened), { revision: 3, compactRevision: 0 });
        assert.equal(await reopened.headRevision(), 3);
        const seen: KeyValue[] = [];
        assert.equal(await reopened.loadView((kv) => seen.push(kv)), 3);
        assert.deepEqual(seen.map(nkv).sort((x, y) => utf8Compare(x.key as string, y.key as string)), log.range('', null, 3).map(nkv));
        assert.deepEqual((await reopened.loadLeases()).map(nlease), [nlease(lease)]);
        assert.deepEqual((await reopened.readLog(1, 3, 100)).map(nentry), log.log(1, 3).map(nentry));
        // Writing continues at the next revision.
        await commitRevisions(reopened, 3, [log.rev([{ key: 'd', value: enc('4') }])]);
        assert.equal(await reopened.headRevision(), 4);
      }));

      test('snapshot writes a point-in-time copy that a fresh backend opens with the same data', withCtx(async (ctx) => {
        if (ctx.h.openSnapshot === undefined) return; // not applicable to this backend
        await ctx.open();
        const log = new LogBuilder();
        const lease: Lease = { id: 5, grantedTtl: 60, expiresAt: 1_700_000_060_000 };
        const revs: LogEntry[][] = [];
        for (let i = 0; i < 300; i++) revs.push(log.rev([{ key: `s/${i % 17}`, value: Buffer.alloc(200, i) }]));
        revs.push(log.rev([{ key: 's/3' }]));
        await commitRevisions(ctx.backend, 0, revs, { grants: [lease] });
        await ctx.backend.compact(100);
        const dir = mkdtempSync(join(tmpdir(), 'beacon-snap-'));
        try {
          const path = join(dir, 'snap.db');
          const progress: [number, number][] = [];
          const state = await ctx.backend.snapshot(path, (done, total) => progress.push([done, total]));
          assert.deepEqual(state, { revision: log.revision, compactRevision: 100 });
          for (const [done, total] of progress) assert.ok(done >= 0 && done <= total, `progress ${done}/${total}`);
          // Later writes do not reach the snapshot.
          await commitRevisions(ctx.backend, log.revision, [log.rev([{ key: 'after', value: enc('x') }])]);
          const copy = await ctx.h.openSnapshot(path);
          assert.deepEqual(await ctx.open(copy), state);
          const seen: KeyValue[] = [];
          assert.equal(await copy.loadView((kv) => seen.push(kv)), state.revision);
          assert.deepEqual(
            seen.map(nkv).sort((x, y) => utf8Compare(x.key as string, y.key as string)),
            log.range('', null, state.revision).map(nkv),
          );
          assert.deepEqual((await copy.loadLeases()).map(nlease), [nlease(lease)]);
          assert.deepEqual(
            (await copy.readLog(0, state.revision, 1_000_000)).map(nentry),
            (await ctx.backend.readLog(0, state.revision, 1_000_000)).map(nentry),
          );
          await ctx.close(copy);
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
      }));

      test('audit records: appendAudit, queryAudit filters and pagination, pruneAudit', withCtx(async (ctx) => {
        await ctx.open();
        const b = ctx.backend;
        const base: AuditRecord = { ts: 1000, principal: 'alice', action: 'kv.put', key: 'cfg/a', oldVersion: null, newVersion: 1, revision: 1, requestId: 'req-1', source: '127.0.0.1', outcome: 'ok', details: null };
        const records: AuditRecord[] = [
          base,
          { ...base, ts: 2000, key: 'cfg/b', oldVersion: 1, newVersion: 2, revision: 2, requestId: null, source: null },
          { ...base, ts: 3000, principal: 'bob', action: 'auth.login', key: null, newVersion: null, revision: null, outcome: 'denied', details: '{"reason":"bad password"}' },
          { ...base, ts: 4000, principal: 'bob', key: 'cfgx', outcome: 'failed' },
          { ...base, ts: 5000, action: 'kv.delete', key: 'cfg/é', newVersion: null },
          { ...base, ts: 6000, key: 'other', details: '{"x":[1,2]}' },
        ];
        await b.appendAudit(records.slice(0, 3));
        await b.appendAudit(records.slice(3));
        const all = await b.queryAudit({ limit: 100 });
        assert.equal(all.length, records.length);
        const ids = all.map((r) => r.id as number);
        assert.ok(ids.every((id, i) => Number.isSafeInteger(id) && (i === 0 || id > (ids[i - 1] as number))), `ids increase: ${ids}`);
        assert.deepEqual(all.map(({ id: _id, ...r }) => r), records, 'every field round-trips, nulls included');
        const keysOf = (rs: AuditRecord[]): (string | null)[] => rs.map((r) => r.key);
        assert.deepEqual(keysOf(await b.queryAudit({ principal: 'bob', limit: 100 })), [null, 'cfgx']);
        assert.deepEqual(keysOf(await b.queryAudit({ action: 'kv.delete', limit: 100 })), ['cfg/é']);
        assert.deepEqual(keysOf(await b.queryAudit({ outcome: 'denied', limit: 100 })), [null]);
        assert.deepEqual(keysOf(await b.queryAudit({ fromTs: 2000, toTs: 4000, limit: 100 })), ['cfg/b', null, 'cfgx'], 'time bounds are inclusive');
        assert.deepEqual(keysOf(await b.queryAudit({ keyPrefix: 'cfg/', limit: 100 })), ['cfg/a', 'cfg/b', 'cfg/é']);
        assert.deepEqual(keysOf(await b.queryAudit({ keyPrefix: 'cfg/', principal: 'alice', fromTs: 1500, limit: 100 })), ['cfg/b', 'cfg/é']);
        assert.deepEqual(await b.queryAudit({ keyPrefix: 'nothing', limit: 100 }), []);
        assert.deepEqual(keysOf(await b.queryAudit({ limit: 2 })), ['cfg/a', 'cfg/b'], 'limit keeps the oldest');
        const paged: AuditRecord[] = [];
        for (let after: number | undefined; ; ) {
          const page = await b.queryAudit({ limit: 4, ...(after !== undefined ? { afterId: after } : {}) });
          if (page.length === 0) break;
          paged.push(...page);
          after = page[page.length - 1]?.id;
        }
        assert.deepEqual(paged, all, 'afterId pages through every record once');
        assert.equal(await b.pruneAudit(3000), 2, 'records strictly older than the cut are pruned');
        assert.deepEqual((await b.queryAudit({ limit: 100 })).map((r) => r.ts), [3000, 4000, 5000, 6000]);
        assert.equal(await b.pruneAudit(0), 0);
      }));

      test('audit keyPrefix matches keys with characters beyond the BMP', withCtx(async (ctx) => {
        await ctx.open();
        const rec: AuditRecord = { ts: 1, principal: 'p', action: 'kv.put', key: null, oldVersion: null, newVersion: 1, revision: 1, requestId: null, source: null, outcome: 'ok', details: null };
        await ctx.backend.appendAudit(['u/\u{1F600}x', 'u/\u{1F600}', 'u/\u{1F601}', 'u/\uffff', 'u/a'].map((key) => ({ ...rec, key })));
        assert.deepEqual((await ctx.backend.queryAudit({ keyPrefix: 'u/\u{1F600}', limit: 10 })).map((r) => r.key), ['u/\u{1F600}x', 'u/\u{1F600}']);
        assert.deepEqual((await ctx.backend.queryAudit({ keyPrefix: 'u/\uffff', limit: 10 })).map((r) => r.key), ['u/\uffff']);
      }));

      test('audit queries by key prefix see every record, however many (indexed or not yet), in id order, across pruning and reopening', withCtx(async (ctx) => {
        await ctx.open();
        const rec: AuditRecord = { ts: 0, principal: 'p', action: 'kv.put', key: null, oldVersion: null, newVersion: 1, revision: null, requestId: null, source: null, outcome: 'ok', details: null };
        // 7,000 records over 70 keys in 7 prefixes, appended in batches and through commits,
        // interleaved as spread writes are: more than any deferred index leaves unindexed.
        const keyOf = (i: number): string => `k${i % 7}/${String((i * 37) % 10).padStart(2, '0')}`;
        const made: { key: string; ts: number }[] = [];
        const log = new LogBuilder();
        for (let i = 0; i < 7000; i += 500) {
          const batch = Array.from({ length: 500 }, (_, j) => ({ ...rec, ts: i + j, key: keyOf(i + j) }));
          if ((i / 500) % 2 === 0) await ctx.backend.appendAudit(batch);
          else {
            const entries = log.rev([{ key: `commit/${i}`, value: enc('v') }]);
            const head = await ctx.backend.headRevision();
            await ctx.backend.commit(head, (_m, h) => ({ revision: h + 1, entries: entries.map((e) => ({ ...e, revision: h + 1, createRevision: h + 1 })), leaseGrants: [], leaseRevokes: [], audit: batch }));
          }
          made.push(...batch.map((r) => ({ key: r.key as string, ts: r.ts })));
        }
        const expect = (prefix: string, minTs = 0): number[] => made.filter((m) => m.key.startsWith(prefix) && m.ts >= minTs).map((m) => m.ts);
        const query = async (b: Backend, prefix: string): Promise<number[]> => {
          const out: number[] = [];
          for (let after: number | undefined; ; ) {
            const page = await b.queryAudit({ keyPrefix: prefix, limit: 333, ...(after !== undefined ? { afterId: after } : {}) });
            if (page.length === 0) return out;
            const ids = page.map((r) => r.id as number);
            assert.ok(ids.every((id, i) => i === 0 || id > (ids[i - 1] as number)), 'in id order');
            out.push(...page.map((r) => r.ts));
            after = page[page.length - 1]?.id;
          }
        };
        for (const prefix of ['k3/', 'k0/05', 'k6/0']) assert.deepEqual(await query(ctx.backend, prefix), expect(prefix), prefix);
        assert.deepEqual((await ctx.backend.queryAudit({ keyPrefix: 'k2/', fromTs: 3000, toTs: 3100, limit: 1000 })).map((r) => r.ts), expect('k2/').filter((t) => t >= 3000 && t <= 3100));
        assert.equal(await ctx.backend.pruneAudit(2500), 2500);
        assert.deepEqual(await query(ctx.backend, 'k3/'), expect('k3/', 2500), 'pruned records are gone from key queries too');
        const reopened = await ctx.reopenBackend(ctx.backend);
        if (reopened !== undefined) {
          await ctx.open(reopened);
          assert.deepEqual(await query(reopened, 'k4/'), expect('k4/', 2500), 'after reopening');
        }
      }));

      test('audit records in a commit batch are stored with it, atomically', withCtx(async (ctx) => {
        await ctx.open();
        const log = new LogBuilder();
        const rec: AuditRecord = { ts: 10, principal: 'carol', action: 'kv.put', key: 'a', oldVersion: null, newVersion: 1, revision: 1, requestId: 'r', source: 's', outcome: 'ok', details: null };
        const entries = log.rev([{ key: 'a', value: enc('1') }]);
        await ctx.backend.commit(0, (_missed, head) => ({ revision: head + 1, entries, leaseGrants: [], leaseRevokes: [], audit: [rec] }));
        // A batch with no revision (a lease grant) may carry audit records too.
        const grant: Lease = { id: 9, grantedTtl: 5, expiresAt: 99_000 };
        await ctx.backend.commit(1, (_missed, head) => ({ revision: head, entries: [], leaseGrants: [grant], leaseRevokes: [], audit: [{ ...rec, action: 'lease.grant', key: null, newVersion: null, revision: null }] }));
        const got = await ctx.backend.queryAudit({ limit: 10 });
        assert.deepEqual(got.map((r) => [r.action, r.key, r.revision]), [['kv.put', 'a', 1], ['lease.grant', null, null]]);
        assert.equal(await ctx.backend.headRevision(), 1);
      }));

      test('a closed backend rejects calls with unavailable', withCtx(async (ctx) => {
        await ctx.open();
        await ctx.close(ctx.backend);
        const calls: [string, () => Promise<unknown>][] = [
          ['headRevision', () => ctx.backend.headRevision()],
          ['loadView', () => ctx.backend.loadView(() => undefined)],
          ['loadLeases', () => ctx.backend.loadLeases()],
          ['readLog', () => ctx.backend.readLog(1, 10, 10)],
          ['history', () => ctx.backend.history('a', {})],
          ['previous', () => ctx.backend.previous('a', 5)],
          ['range', () => ctx.backend.range({ key: 'a', rangeEnd: undefined, revision: 1, limit: 0 })],
          ['commit', () => ctx.backend.commit(0, (_m, head) => ({ revision: head, entries: [], leaseGrants: [], leaseRevokes: [] }))],
        ];
        for (const [what, call] of calls) {
          await assert.rejects(call, (err: unknown) => err instanceof BeaconError && err.code === 'unavailable', `${what} after close`);
        }
      }));
    });

    // -------------------------------------------------------------------------------------------
    // History retention (namespace policies' historyRetention): Backend.pruneHistory and floors.

    describe('history retention', () => {
      const DAY = 86_400_000;

      /**
       * The model of a retention pass, written from the rule (not from the code under test):
       * which entries of `[key, end)` go, and the floor (highest revision of a successor of a
       * removed entry).
       */
      function modelPrune(log: LogEntry[], key: string, end: string | null, rule: RetentionRule, now: number): { left: LogEntry[]; removed: number; floor: number } {
        const byKey = new Map<string, LogEntry[]>();
        for (const e of log) {
          if (!inRangeUtf8(e.key, key, end)) continue;
          const list = byKey.get(e.key) ?? [];
          list.push(e);
          byKey.set(e.key, list);
        }
        const gone = new Set<LogEntry>();
        let floor = 0;
        for (const list of byKey.values()) {
          list.sort((a, b) => a.revision - b.revision);
          list.forEach((e, i) => {
            const succ = list[i + 1];
            if (succ === undefined) return; // the latest entry of a key always stays
            const newer = list.length - i - 1; // entries newer than this one
            const beyondVersions = rule.versions === undefined || newer >= rule.versions;
            const age = now - succ.ts;
            const oldEnough = age >= rule.graceMs && (rule.maxAgeMs === undefined || age >= rule.maxAgeMs);
            if (beyondVersions && oldEnough) {
              gone.add(e);
              floor = Math.max(floor, succ.revision);
            }
          });
        }
        return { left: log.filter((e) => !gone.has(e)), removed: gone.size, floor };
      }

      const sorted = (log: LogEntry[]): LogEntry[] => [...log].sort((x, y) => x.revision - y.revision || utf8Compare(x.key, y.key));

      test('pruneHistory keeps the newest N entries of each key (tombstones count) inside the range only, and records the floor', withCtx(async (ctx) => {
        await ctx.open();
        const b = ctx.backend;
        const log = new LogBuilder();
        const revs: LogEntry[][] = [];
        for (let i = 0; i < 10; i++) {
          revs.push(log.rev([{ key: 'ns/a', value: enc(`a${i}`) }, { key: 'other/x', value: enc(`x${i}`) }]));
          if (i === 2) revs.push(log.rev([{ key: 'ns/b', value: enc('b1') }, { key: 'ns0', value: enc('edge1') }]));
          if (i === 4) revs.push(log.rev([{ key: 'ns/b' }]));
          if (i === 6) revs.push(log.rev([{ key: 'ns/b', value: enc('b2') }, { key: 'ns0', value: enc('edge2') }]));
          if (i === 7) revs.push(log.rev([{ key: 'ns/b', value: enc('b3') }, { key: 'ns/\u{1F600}', value: enc('e1') }]));
          if (i === 8) revs.push(log.rev([{ key: 'ns/\u{1F600}', value: enc('e2') }, { key: 'ns/c', value: enc('c1') }]));
        }
        await commitRevisions(b, 0, revs);
        const head = log.revision;
        const full = sorted(log.all);
        const rule: RetentionRule = { versions: 3, graceMs: 0 };
        const now = log.ts + 1000;
        const want = modelPrune(full, 'ns/', 'ns0', rule, now);
        assert.ok(want.removed > 0 && want.floor > 0, 'test bug: the model removes something');

        const res = await b.pruneHistory('ns/', 'ns0', rule, now);
        assert.deepEqual(res, { removed: want.removed, floor: want.floor });
        const left = await b.readLog(0, head, 1_000_000);
        assert.deepEqual(left.map(nentry), sorted(want.left).map(nentry));
        assert.equal(left.filter((e) => e.key === 'ns/a').length, 3, 'the newest 3 versions of ns/a stay');
        assert.deepEqual(left.filter((e) => e.key === 'ns/b').map((e) => e.deleted), [true, false, false], 'a tombstone counts as one of the 3');
        assert.equal(left.filter((e) => e.key === 'other/x').length, 10, 'a key outside the range keeps its history');
        assert.equal(left.filter((e) => e.key === 'ns0').length, 2, 'the range end is exclusive');
        assert.deepEqual(await b.historyFloors(), [{ key: 'ns/', rangeEnd: 'ns0', revision: want.floor }]);
        // At and above the floor the range reads as before; everything else is untouched.
        for (const r of [want.floor, want.floor + 1, head]) {
          assert.deepEqual((await b.range({ key: '', rangeEnd: null, revision: r, limit: 0 })).kvs.map(nkv), log.range('', null, r).map(nkv), `range at ${r}`);
        }
        for (let r = 1; r <= head; r++) {
          assert.deepEqual((await b.range({ key: 'other/', rangeEnd: 'other0', revision: r, limit: 0 })).kvs.map(nkv), log.range('other/', 'other0', r).map(nkv));
        }
        const seen: KeyValue[] = [];
        await b.loadView((kv) => seen.push(kv));
        assert.deepEqual(seen.map(nkv).sort((x, y) => utf8Compare(x.key as string, y.key as string)), log.range('', null, head).map(nkv), 'the latest state is intact');

        // A second pass finds nothing; the floor stays where it is.
        assert.deepEqual(await b.pruneHistory('ns/', 'ns0', rule, now), { removed: 0, floor: 0 });
        assert.deepEqual(await b.historyFloors(), [{ key: 'ns/', rangeEnd: 'ns0', revision: want.floor }]);
        // An unbounded range has a null rangeEnd.
        await b.pruneHistory('other/', null, { versions: 9, graceMs: 0 }, now);
        const floors = (await b.historyFloors()).sort((x, y) => utf8Compare(x.key, y.key));
        assert.equal(floors.length, 2);
        assert.equal(floors[1]?.rangeEnd, null);
        const reopened = await ctx.reopenBackend(b);
        if (reopened !== undefined) {
          await ctx.open(reopened);
          assert.deepEqual((await reopened.historyFloors()).sort((x, y) => utf8Compare(x.key, y.key)), floors, 'floors are durable');
          assert.equal((await reopened.readLog(0, head, 1_000_000)).filter((e) => e.key === 'ns/a').length, 3);
        }
      }));

      test('the days bound keeps versions superseded less than D days ago; every bound given must be passed; the grace protects recent rows', withCtx(async (ctx) => {
        await ctx.open();
        const b = ctx.backend;
        const log = new LogBuilder();
        const now = 1_800_000_000_000;
        // Commit times of the six versions of d/k: 10, 9, 5 and 2 days ago, then 30 s and 10 s ago.
        const ages = [10 * DAY, 9 * DAY, 5 * DAY, 2 * DAY, 30_000, 10_000];
        const revs = ages.map((age, i) => {
          log.ts = now - age - 7; // LogBuilder adds 7 ms per revision
          return log.rev([{ key: 'd/k', value: enc(`v${i + 1}`) }]);
        });
        await commitRevisions(b, 0, revs);
        const revOf = (v: number): number => (revs[v - 1]?.[0] as LogEntry).revision;
        const versionsLeft = async (): Promise<string[]> => (await b.history('d/k', {})).map((e) => Buffer.from(e.value).toString());

        // days 3: v1 and v2 were superseded 9 and 5 days ago; v3 only 2 days ago.
        assert.deepEqual(await b.pruneHistory('d/', 'd0', { maxAgeMs: 3 * DAY, graceMs: 60_000 }, now), { removed: 2, floor: revOf(3) });
        assert.deepEqual(await versionsLeft(), ['v3', 'v4', 'v5', 'v6']);
        // versions 2 and days 1: v3 and v4 are beyond 2 versions, but v4 was superseded only 30 s ago.
        assert.deepEqual(await b.pruneHistory('d/', 'd0', { versions: 2, maxAgeMs: DAY, graceMs: 60_000 }, now), { removed: 1, floor: revOf(4) });
        assert.deepEqual(await versionsLeft(), ['v4', 'v5', 'v6']);
        // versions 1 alone: the 60 s grace still keeps v4 and v5 (superseded 30 s and 10 s ago).
        assert.deepEqual(await b.pruneHistory('d/', 'd0', { versions: 1, graceMs: 60_000 }, now), { removed: 0, floor: 0 });
        assert.deepEqual(await versionsLeft(), ['v4', 'v5', 'v6']);
        // Two minutes later the grace has passed: only the latest version is left.
        assert.deepEqual(await b.pruneHistory('d/', 'd0', { versions: 1, graceMs: 60_000 }, now + 120_000), { removed: 2, floor: revOf(6) });
        assert.deepEqual(await versionsLeft(), ['v6']);
        assert.deepEqual(await b.historyFloors(), [{ key: 'd/', rangeEnd: 'd0', revision: revOf(6) }]);
      }));

      test('pruneHistory pages through many keys and through a key with more entries than a page', withCtx(async (ctx) => {
        await ctx.open();
        const b = ctx.backend;
        const log = new LogBuilder();
        const revs: LogEntry[][] = [];
        const many = (p: string, n: number, round: number): { key: string; value: Uint8Array }[] =>
          Array.from({ length: n }, (_, i) => ({ key: `${p}${String(i).padStart(4, '0')}`, value: enc(`${round}`) }));
        for (let round = 0; round < 3; round++) revs.push(log.rev([...many('big/a/', 700, round), ...many('big/m/', 700, round)]));
        for (let i = 0; i < 2500; i++) revs.push(log.rev([{ key: 'big/k', value: enc(`${i}`) }]));
        await commitRevisions(b, 0, revs);
        const rule: RetentionRule = { versions: 2, graceMs: 0 };
        const now = log.ts + 1;
        const want = modelPrune(sorted(log.all), 'big/', 'big0', rule, now);
        assert.deepEqual(await b.pruneHistory('big/', 'big0', rule, now), { removed: want.removed, floor: want.floor });
        assert.equal(want.removed, 1400 + 2498);
        const left = await b.readLog(0, log.revision, 1_000_000);
        assert.deepEqual(left.map(nentry), sorted(want.left).map(nentry));
      }));

      test('through the Store: reads, history and events of the pruned range below its floor fail with CompactedError; other ranges are untouched; the floor survives a reopen', withCtx(async (ctx) => {
        const store = await ctx.store();
        for (let i = 1; i <= 6; i++) {
          await store.put('ns/a', enc(`a${i}`));
          await store.put('x/a', enc(`x${i}`));
        }
        await store.put('ns/b', enc('b1'));
        const head = store.revision;
        const before = new Map<string, unknown>();
        for (let r = 1; r <= head; r++) {
          before.set(`all@${r}`, (await store.range('', null, { revision: r })).kvs.map(nkv));
          before.set(`x@${r}`, (await store.range('x/', 'x0', { revision: r })).kvs.map(nkv));
        }
        const aRevs = (await store.history('ns/a')).map((e) => e.revision);
        const res = await store.pruneHistory('ns/', 'ns0', { versions: 2, graceMs: 0 }, Date.now() + 1000);
        const floor = aRevs[4] as number; // v5 superseded v4, the newest entry removed
        assert.deepEqual(res, { removed: 4, floor });
        assert.equal(store.compactRevision, 0, 'the global compact revision does not move');
        assert.equal(store.compactRevisionFor('ns/a', undefined), floor);
        assert.equal(store.compactRevisionFor('ns/', 'ns0'), floor);
        assert.equal(store.compactRevisionFor('', null), floor, 'a range overlapping the namespace');
        assert.equal(store.compactRevisionFor('x/a', undefined), 0);
        assert.equal(store.compactRevisionFor('x/', 'x0'), 0);
        assert.equal(store.compactRevisionFor('ns0', undefined), 0, 'the prefix end is outside');

        for (const r of [1, floor - 1]) {
          await assert.rejects(store.range('ns/', 'ns0', { revision: r }), (e: unknown) => e instanceof CompactedError && e.compactRevision === floor, `range at ${r}`);
          await assert.rejects(store.range('ns/a', undefined, { revision: r }), CompactedError);
          await assert.rejects(store.range('', null, { revision: r }), CompactedError);
        }
        for (let r = floor; r <= head; r++) assert.deepEqual((await store.range('', null, { revision: r })).kvs.map(nkv), before.get(`all@${r}`), `range at ${r}`);
        for (let r = 1; r <= head; r++) assert.deepEqual((await store.range('x/', 'x0', { revision: r })).kvs.map(nkv), before.get(`x@${r}`), `x/ at ${r}`);
        await assert.rejects(store.history('ns/a', { fromRevision: floor }), (e: unknown) => e instanceof CompactedError && e.compactRevision === floor);
        assert.deepEqual((await store.history('ns/a', { fromRevision: floor + 1 })).map((e) => e.revision), aRevs.slice(5));
        assert.deepEqual((await store.history('ns/a')).map((e) => e.revision), aRevs.slice(4), 'history lists the versions kept');
        assert.equal((await store.history('x/a')).length, 6);
        assert.equal((await store.history('x/a', { fromRevision: 1 })).length, 6);

        const backend = await ctx.reopenBackend(store);
        if (backend !== undefined) {
          const again = await ctx.store({ backend });
          assert.equal(again.compactRevisionFor('ns/a', undefined), floor, 'the floor is durable');
          await assert.rejects(again.range('ns/', 'ns0', { revision: floor - 1 }), CompactedError);
          assert.deepEqual((await again.range('x/', 'x0', { revision: 1 })).kvs.map(nkv), before.get('x@1'));
        }
      }));

      test('a historical read racing a retention pass answers whole or fails with CompactedError, never wrongly', withCtx(async (ctx) => {
        const store = await ctx.store();
        for (let i = 0; i < 200; i++) await store.put(`ns/${i % 5}`, enc(`${i}`));
        const head = store.revision;
        const want = new Map<number, unknown>();
        for (const r of [50, 100, 150, head - 1]) want.set(r, (await store.range('ns/', 'ns0', { revision: r })).kvs.map(nkv));
        const reads = [...want.keys()].map((r) =>
          store.range('ns/', 'ns0', { revision: r }).then(
            (res) => ({ r, kvs: res.kvs.map(nkv) as unknown }),
            (err: unknown) => ({ r, err }),
          ),
        );
        const pruning = store.pruneHistory('ns/', 'ns0', { versions: 1, graceMs: 0 }, Date.now() + 1000);
        for (const out of await Promise.all(reads)) {
          if ('err' in out) assert.ok(out.err instanceof CompactedError, `read at ${out.r}: ${String(out.err)}`);
          else assert.deepEqual(out.kvs, want.get(out.r), `read at ${out.r}`);
        }
        await pruning;
        await assert.rejects(store.range('ns/', 'ns0', { revision: 50 }), CompactedError);
      }));
    });

    // -------------------------------------------------------------------------------------------
    // Through the Store, the backend's main consumer.

    describe('through the Store', () => {
      test('a value the sealer marks as ciphertext keeps the flag on every read path and across a reopen; a caller cannot set it', withCtx(async (ctx) => {
        const store = await ctx.store();
        // A toy sealer: keys under s/ are "sealed" (bytes reversed); the flag is what is checked.
        store.setSealer((key, value) => (key.startsWith('s/') ? { value: Uint8Array.from(value).reverse(), encrypted: true } : { value, encrypted: false }));
        const events: RevisionEvents[] = [];
        store.subscribe((r) => events.push(r));
        const r1 = await store.put('s/a', enc('one'));
        await store.put('s/a', enc('two'));
        // ignoreValue keeps the value and its flag; a forged field on the op is ignored.
        await store.txn({ compare: [], success: [{ type: 'put', key: 's/a', value: new Uint8Array(0), ignoreValue: true }], failure: [] });
        await store.txn({ compare: [], success: [{ type: 'put', key: 'p/x', value: enc('plain'), encrypted: true } as never], failure: [] });
        const head = store.revision;
        const flags = (kvs: { key: string; encrypted?: true }[]): [string, boolean][] => kvs.map((kv) => [kv.key, kv.encrypted === true]);
        assert.deepEqual(flags([store.get('s/a') as KeyValue, store.get('p/x') as KeyValue]), [['s/a', true], ['p/x', false]]);
        assert.equal(hex((store.get('s/a') as KeyValue).value), hex(enc('owt')));
        assert.deepEqual(flags((await store.range('', null, { revision: r1.revision })).kvs), [['s/a', true]]);
        assert.deepEqual(flags((await store.backend.range({ key: '', rangeEnd: null, revision: head, limit: 0 })).kvs), [['p/x', false], ['s/a', true]]);
        assert.deepEqual((await store.backend.readLog(1, head, 100)).map((e) => e.encrypted === true), [true, true, true, false]);
        assert.deepEqual((await store.backend.history('s/a', {})).map((e) => e.encrypted === true), [true, true, true]);
        assert.equal((await store.backend.previous('s/a', head))?.encrypted, true);
        const read = await store.readEvents(1, head, 100, true);
        assert.deepEqual(read.map((r) => [r.events[0]?.kv.encrypted === true, r.events[0]?.prevKv?.encrypted === true]), [[true, false], [true, true], [true, true], [false, false]]);
        assert.deepEqual(events.map((r) => r.events[0]?.kv.encrypted === true), [true, true, true, false], 'the commit stream carries it');
        const reopened = await ctx.reopenBackend(store);
        if (reopened !== undefined) {
          const again = await ctx.store({ backend: reopened });
          assert.deepEqual(flags([again.get('s/a') as KeyValue, again.get('p/x') as KeyValue]), [['s/a', true], ['p/x', false]], 'loadView reads the flag');
        }
      }));

      test('a new store is empty at revision 0; puts bump the revision and read back from view and backend', withCtx(async (ctx) => {
        const store = await ctx.store();
        assert.equal(store.revision, 0);
        assert.equal(store.compactRevision, 0);
        assert.deepEqual(store.rangeLatest('', null), { revision: 0, kvs: [], more: false, count: 0 });
        const r1 = await store.put('a', enc('1'));
        const r2 = await store.put('a', enc('2'), { prevKv: true });
        assert.equal(r1.revision, 1);
        assert.equal(r2.revision, 2);
        assert.deepEqual(r2.prevKv && nkv(r2.prevKv), nkv({ key: 'a', value: enc('1'), createRevision: 1, modRevision: 1, version: 1, lease: 0 }));
        assert.deepEqual(nkv(store.get('a') as KeyValue), nkv({ key: 'a', value: enc('2'), createRevision: 1, modRevision: 2, version: 2, lease: 0 }));
        const old = await store.range('a', undefined, { revision: 1 });
        assert.deepEqual(old.kvs.map(nkv), [nkv({ key: 'a', value: enc('1'), createRevision: 1, modRevision: 1, version: 1, lease: 0 })]);
        assert.equal(old.revision, 2, 'the header revision is the current one');
        const del = await store.deleteRange('a', undefined, { prevKv: true });
        assert.equal(del.revision, 3);
        assert.equal(del.deleted, 1);
        const none = await store.deleteRange('a', undefined);
        assert.equal(none.deleted, 0);
        assert.equal(none.revision, 3, 'a delete that deletes nothing makes no revision');
        assert.equal(await store.backend.headRevision(), 3);
        const r4 = await store.put('a', enc('3'));
        assert.deepEqual(nkv(store.get('a') as KeyValue), nkv({ key: 'a', value: enc('3'), createRevision: 4, modRevision: r4.revision, version: 1, lease: 0 }));
        await assert.rejects(store.range('a', undefined, { revision: 5 }), FutureRevisionError);
        const at3 = await store.range('a', undefined, { revision: 3 });
        assert.deepEqual(at3.kvs, []);
        assert.equal(at3.count, 0);
      }));

      test('range at older revisions through the store: limit, more, count, keysOnly, countOnly', withCtx(async (ctx) => {
        const store = await ctx.store();
        for (const k of ['p/a', 'p/b', 'p/c', 'p/d', 'q']) await store.put(k, enc(`${k}!`));
        await store.deleteRange('p/b', undefined);
        await store.put('p/e', enc('e'));
        const end = prefixEnd('p/');
        const at5 = await store.range('p/', end, { revision: 5, limit: 2 });
        assert.deepEqual(at5.kvs.map((kv) => kv.key), ['p/a', 'p/b']);
        assert.equal(at5.count, 4);
        assert.equal(at5.more, true);
        const at6 = await store.range('p/', end, { revision: 6 });
        assert.deepEqual(at6.kvs.map((kv) => kv.key), ['p/a', 'p/c', 'p/d']);
        assert.equal(at6.more, false);
        const keysOnly = await store.range('p/', end, { revision: 6, keysOnly: true });
        assert.deepEqual(keysOnly.kvs.map((kv) => kv.value.byteLength), [0, 0, 0]);
        const countOnly = await store.range('p/', end, { revision: 6, countOnly: true });
        assert.deepEqual([countOnly.kvs, countOnly.count, countOnly.more], [[], 3, false]);
        const latest = await store.range('p/', end, { limit: 3 });
        assert.deepEqual(latest.kvs.map((kv) => kv.key), ['p/a', 'p/c', 'p/d']);
        assert.equal(latest.more, true);
        assert.equal(latest.count, 4);
      }));

      test('txn compares on value/version/createRevision/modRevision/lease with = != < >, missing keys as zeros (etcd)', withCtx(async (ctx) => {
        const store = await ctx.store();
        const lease = await store.grantLease(60);
        await store.put('k', enc('v1'));
        await store.put('other', enc('x'));
        await store.put('k', enc('v2'), { lease: lease.id });
        const k = store.get('k') as KeyValue;
        assert.deepEqual([k.version, k.createRevision, k.modRevision, k.lease], [2, 1, 3, lease.id]);
        const cases: { c: Compare; want: boolean }[] = [];
        const results: CompareResult[] = ['=', '!=', '<', '>'];
        const holds = (cmp: number, r: CompareResult): boolean => (r === '=' ? cmp === 0 : r === '!=' ? cmp !== 0 : r === '<' ? cmp < 0 : cmp > 0);
        const numeric: CompareTarget[] = ['version', 'createRevision', 'modRevision', 'lease'];
        for (const [key, kv] of [['k', k], ['missing', undefined]] as [string, KeyValue | undefined][]) {
          for (const target of numeric) {
            const field = kv === undefined ? 0 : (kv[target] as number);
            for (const operand of [field - 1, field, field + 1]) {
              for (const result of results) cases.push({ c: { key, target, result, operand }, want: holds(field - operand, result) });
            }
          }
          for (const operand of [enc('v1'), enc('v2'), enc('v3'), enc('v10'), enc(''), enc('v2\u0000')]) {
            for (const result of results) {
              // etcd: a value compare against a missing key is always false.
              const want = kv === undefined ? false : holds(Buffer.compare(Buffer.from(kv.value), Buffer.from(operand)), result);
              cases.push({ c: { key, target: 'value', result, operand }, want });
            }
          }
        }
        const before = store.revision;
        const outcomes = await Promise.all(cases.map(({ c }) => store.txn({ compare: [c], success: [{ type: 'range', key: 'k' }], failure: [] })));
        outcomes.forEach((res, i) => {
          const { c, want } = cases[i] as { c: Compare; want: boolean };
          const operand = c.operand instanceof Uint8Array ? JSON.stringify(Buffer.from(c.operand).toString()) : c.operand;
          assert.equal(res.succeeded, want, `${c.key}.${c.target} ${c.result} ${operand}`);
          assert.equal(res.revision, before, 'a read-only txn makes no revision');
        });
        // Several compares must all hold.
        const both = await store.txn({
          compare: [
            { key: 'k', target: 'version', result: '=', operand: 2 },
            { key: 'missing', target: 'createRevision', result: '=', operand: 0 },
          ],
          success: [],
          failure: [],
        });
        assert.equal(both.succeeded, true);
        const oneFails = await store.txn({
          compare: [
            { key: 'k', target: 'version', result: '=', operand: 2 },
            { key: 'other', target: 'version', result: '>', operand: 1 },
          ],
          success: [],
          failure: [],
        });
        assert.equal(oneFails.succeeded, false);
      }));

      test('value compares are unsigned bytewise', withCtx(async (ctx) => {
        const store = await ctx.store();
        await store.put('b', Uint8Array.from([0x80]));
        const res = await store.txn({ compare: [{ key: 'b', target: 'value', result: '>', operand: Uint8Array.from([0x7f]) }], success: [], failure: [] });
        assert.equal(res.succeeded, true);
        const shorter = await store.txn({ compare: [{ key: 'b', target: 'value', result: '<', operand: Uint8Array.from([0x80, 0x00]) }], success: [], failure: [] });
        assert.equal(shorter.succeeded, true);
      }));

      test('a compare over a range requires every key in it to match', withCtx(async (ctx) => {
        const store = await ctx.store();
        await store.put('r/a', enc('1'));
        await store.put('r/b', enc('1'));
        await store.put('r/b', enc('2'));
        const end = prefixEnd('r/');
        const v1 = await store.txn({ compare: [{ key: 'r/', rangeEnd: end, target: 'version', result: '=', operand: 1 }], success: [], failure: [] });
        assert.equal(v1.succeeded, false);
        const pos = await store.txn({ compare: [{ key: 'r/', rangeEnd: end, target: 'version', result: '>', operand: 0 }], success: [], failure: [] });
        assert.equal(pos.succeeded, true);
        const mod = await store.txn({ compare: [{ key: 'r/', rangeEnd: end, target: 'modRevision', result: '<', operand: 4 }], success: [], failure: [] });
        assert.equal(mod.succeeded, true);
        // "Nothing under this prefix yet" (createRevision = 0 on an empty range) is the usual etcd idiom.
        const empty = await store.txn({ compare: [{ key: 'none/', rangeEnd: prefixEnd('none/'), target: 'createRevision', result: '=', operand: 0 }], success: [], failure: [] });
        assert.equal(empty.succeeded, true);
      }));

      test('a compare over an empty range sees one zero kv, as etcd does', withCtx(async (ctx) => {
        const store = await ctx.store();
        const end = prefixEnd('none/');
        const gt = await store.txn({ compare: [{ key: 'none/', rangeEnd: end, target: 'version', result: '>', operand: 0 }], success: [], failure: [] });
        assert.equal(gt.succeeded, false, 'version > 0 over an empty range');
        const val = await store.txn({ compare: [{ key: 'none/', rangeEnd: end, target: 'value', result: '!=', operand: enc('x') }], success: [], failure: [] });
        assert.equal(val.succeeded, false, 'a value compare over an empty range');
      }));

      test('txn runs the success or the failure branch as one revision', withCtx(async (ctx) => {
        const store = await ctx.store();
        await store.put('flag', enc('on'));
        const events: RevisionEvents[] = [];
        store.subscribe((e) => events.push(e));
        const ok = await store.txn({
          compare: [{ key: 'flag', target: 'value', result: '=', operand: enc('on') }],
          success: [
            { type: 'put', key: 's/1', value: enc('a') },
            { type: 'put', key: 's/2', value: enc('b') },
            { type: 'delete', key: 'flag', prevKv: true },
          ],
          failure: [{ type: 'put', key: 'f/1', value: enc('c') }],
        });
        assert.equal(ok.succeeded, true);
        assert.equal(ok.revision, 2);
        assert.deepEqual(ok.results.map((r) => r.type), ['put', 'put', 'delete']);
        const delRes = ok.results[2] as Extract<TxnResponse['results'][number], { type: 'delete' }>;
        assert.equal(delRes.deleted, 1);
        assert.deepEqual(delRes.prevKvs?.map((kv) => kv.key), ['flag']);
        assert.equal(store.get('f/1'), undefined);
        assert.equal((store.get('s/1') as KeyValue).modRevision, 2);
        assert.equal((store.get('s/2') as KeyValue).modRevision, 2);
        const failed = await store.txn({
          compare: [{ key: 'flag', target: 'value', result: '=', operand: enc('on') }],
          success: [{ type: 'put', key: 's/3', value: enc('x') }],
          failure: [{ type: 'put', key: 'f/1', value: enc('c') }, { type: 'delete', key: 's/', rangeEnd: prefixEnd('s/') }],
        });
        assert.equal(failed.succeeded, false);
        assert.equal(failed.revision, 3);
        assert.equal(store.get('s/3'), undefined);
        assert.equal(store.rangeLatest('s/', prefixEnd('s/')).count, 0);
        assert.deepEqual(events.map((g) => [g.revision, g.events.map((e) => `${e.type}:${e.kv.key}`)]), [
          [2, ['delete:flag', 'put:s/1', 'put:s/2']],
          [3, ['put:f/1', 'delete:s/1', 'delete:s/2']],
        ]);
        const h = await store.history('s/1');
        assert.deepEqual(h.map((e) => [e.revision, e.deleted]), [[2, false], [3, true]]);
      }));

      test('a range inside a txn sees the writes made earlier in the same txn', withCtx(async (ctx) => {
        const store = await ctx.store();
        await store.put('t/old', enc('o'));
        await store.put('t/z', enc('z'));
        const res = await store.txn({
          compare: [],
          success: [
            { type: 'range', key: 't/', rangeEnd: prefixEnd('t/') },
            { type: 'delete', key: 't/old' },
            { type: 'put', key: 't/new', value: enc('n') },
            { type: 'range', key: 't/', rangeEnd: prefixEnd('t/') },
            { type: 'range', key: 't/new' },
            { type: 'range', key: 't/', rangeEnd: prefixEnd('t/'), limit: 1 },
            { type: 'range', key: 't/', rangeEnd: prefixEnd('t/'), countOnly: true },
            { type: 'range', key: 't/', rangeEnd: prefixEnd('t/'), keysOnly: true },
          ],
          failure: [],
        });
        const ranges = res.results.filter((r) => r.type === 'range') as Extract<TxnResponse['results'][number], { type: 'range' }>[];
        assert.deepEqual(ranges[0]?.kvs.map((kv) => kv.key), ['t/old', 't/z']);
        assert.deepEqual(ranges[1]?.kvs.map((kv) => kv.key), ['t/new', 't/z']);
        assert.deepEqual(ranges[2]?.kvs.map(nkv), [nkv({ key: 't/new', value: enc('n'), createRevision: 3, modRevision: 3, version: 1, lease: 0 })]);
        assert.deepEqual([ranges[3]?.kvs.map((kv) => kv.key), ranges[3]?.more, ranges[3]?.count], [['t/new'], true, 2]);
        assert.deepEqual([ranges[4]?.kvs, ranges[4]?.count, ranges[4]?.more], [[], 2, false]);
        assert.deepEqual(ranges[5]?.kvs.map((kv) => [kv.key, kv.value.byteLength]), [['t/new', 0], ['t/z', 0]]);
        assert.equal(res.revision, 3);
      }));

      test('invalid txns are rejected and write nothing: duplicate put keys, put+delete overlap, unknown lease, oversized key', withCtx(async (ctx) => {
        const store = await ctx.store();
        await store.put('base', enc('0'));
        const rev = store.revision;
        const bad: [string, () => Promise<unknown>, new (...args: never[]) => Error][] = [
          ['duplicate put', () => store.txn({ compare: [], success: [{ type: 'put', key: 'd', value: enc('1') }, { type: 'put', key: 'd', value: enc('2') }], failure: [] }), InvalidArgumentError],
          ['duplicate put in failure', () => store.txn({ compare: [], success: [], failure: [{ type: 'put', key: 'd', value: enc('1') }, { type: 'put', key: 'd', value: enc('2') }] }), InvalidArgumentError],
          ['put inside a deleted range', () => store.txn({ compare: [], success: [{ type: 'delete', key: 'p/', rangeEnd: prefixEnd('p/') }, { type: 'put', key: 'p/x', value: enc('1') }], failure: [] }), InvalidArgumentError],
          ['put and delete of one key', () => store.txn({ compare: [], success: [{ type: 'put', key: 'base', value: enc('1') }, { type: 'delete', key: 'base' }], failure: [] }), InvalidArgumentError],
          ['unknown lease', () => store.txn({ compare: [], success: [{ type: 'put', key: 'l/a', value: enc('1') }, { type: 'put', key: 'l/b', value: enc('1'), lease: 424242 }], failure: [] }), NotFoundError],
          ['key of 4097 bytes', () => store.put('k'.repeat(MAX_KEY_BYTES + 1), enc('x')), TooLargeError],
          ['value over the limit', () => store.put('big', new Uint8Array(store.maxValueBytes + 1)), TooLargeError],
          ['empty key', () => store.put('', enc('x')), InvalidArgumentError],
        ];
        for (const [what, call, cls] of bad) {
          await assert.rejects(async () => call(), cls, what);
          assert.equal(store.revision, rev, `${what}: no revision`);
        }
        assert.deepEqual(store.rangeLatest('', null).kvs.map((kv) => kv.key), ['base']);
        assert.equal(await store.backend.headRevision(), rev);
        // A put and a delete of one key in different branches is fine.
        const ok = await store.txn({ compare: [], success: [{ type: 'put', key: 'base', value: enc('1') }], failure: [{ type: 'delete', key: 'base' }] });
        assert.equal(ok.succeeded, true);
        // The 4096-byte key itself is accepted, read from the view and from the backend.
        const long = 'k'.repeat(MAX_KEY_BYTES);
        const wide = '\u{1F600}'.repeat(MAX_KEY_BYTES / 4);
        const r1 = await store.put(long, enc('long'));
        await store.put(wide, enc('wide'));
        await store.put('after', enc('1'));
        assert.equal((store.get(long) as KeyValue).modRevision, r1.revision);
        const old = await store.range(long, undefined, { revision: store.revision - 1 });
        assert.deepEqual(old.kvs.map((kv) => kv.key), [long]);
        const oldWide = await store.range(wide, undefined, { revision: store.revision - 1 });
        assert.deepEqual(oldWide.kvs.map((kv) => kv.key), [wide]);
      }));

      test('a rejected request in a batch does not fail the others', withCtx(async (ctx) => {
        const store = await ctx.store();
        const settled = await Promise.allSettled([
          store.put('x', enc('1')),
          store.put('y', enc('1'), { lease: 999 }),
          store.put('z', enc('1')),
        ]);
        assert.equal(settled[0].status, 'fulfilled');
        assert.equal(settled[1].status, 'rejected');
        assert.ok(settled[1].status === 'rejected' && settled[1].reason instanceof NotFoundError);
        assert.equal(settled[2].status, 'fulfilled');
        const revs = settled.filter((s) => s.status === 'fulfilled').map((s) => (s as PromiseFulfilledResult<{ revision: number }>).value.revision);
        assert.deepEqual(revs, [1, 2]);
        assert.equal(store.get('y'), undefined);
      }));

      test('store.txn with a malformed request returns a rejected promise instead of throwing', withCtx(async (ctx) => {
        const store = await ctx.store();
        let p: Promise<unknown> | undefined;
        assert.doesNotThrow(() => {
          p = store.txn({ compare: [], success: [{ type: 'put', key: '', value: enc('x') }], failure: [] });
        });
        await assert.rejects(p as Promise<unknown>, InvalidArgumentError);
        assert.doesNotThrow(() => void store.revokeLease(123456).catch(() => undefined));
        assert.doesNotThrow(() => void store.grantLease(0).catch(() => undefined));
      }));

      test('group commit: hundreds of concurrent puts and txns get distinct consecutive revisions matching the event stream', withCtx(async (ctx) => {
        const store = await ctx.store();
        await store.put('seed', enc('s'));
        const start = store.revision;
        const events: RevisionEvents[] = [];
        store.subscribe((e) => events.push(e));
        const batches: number[] = [];
        store.onBatch = (n) => batches.push(n);
        const N = 400;
        const calls: Promise<{ revision: number; keys: string[] }>[] = [];
        for (let i = 0; i < N; i++) {
          if (i % 3 === 0) {
            const keys = [`g/${i}/a`, `g/${i}/b`, `g/${i}/c`];
            calls.push(
              store
                .txn({ compare: [{ key: 'seed', target: 'version', result: '=', operand: 1 }], success: keys.map((key) => ({ type: 'put' as const, key, value: enc(`${i}`) })), failure: [] })
                .then((r) => {
                  assert.equal(r.succeeded, true);
                  return { revision: r.revision, keys };
                }),
            );
          } else if (i % 7 === 1 && i > 3 && (i - 1) % 3 !== 0) {
            // Delete a key put by the previous request of the same burst.
            const key = `g/${i - 1}`;
            calls.push(store.deleteRange(key, undefined).then((r) => ({ revision: r.revision, keys: r.deleted === 1 ? [key] : [] })));
          } else {
            const key = `g/${i}`;
            calls.push(store.put(key, enc(`${i}`)).then((r) => ({ revision: r.revision, keys: [key] })));
          }
        }
        const results = await Promise.all(calls);
        const revs = results.map((r) => r.revision);
        assert.equal(new Set(revs).size, N, 'every write has its own revision');
        assert.deepEqual([...revs].sort((a, b) => a - b), Array.from({ length: N }, (_, i) => start + 1 + i), 'revisions are consecutive');
        assert.deepEqual(revs, [...revs].sort((a, b) => a - b), 'revisions follow the order the requests were made');
        assert.equal(store.revision, start + N);
        assert.deepEqual(events.map((e) => e.revision), Array.from({ length: N }, (_, i) => start + 1 + i), 'one event group per revision, in order');
        const byRev = new Map(events.map((e) => [e.revision, e]));
        for (const r of results) {
          assert.deepEqual(byRev.get(r.revision)?.events.map((e) => e.kv.key), r.keys, `events of revision ${r.revision}`);
          assert.ok(byRev.get(r.revision)?.events.every((e) => e.kv.modRevision === r.revision));
        }
        for (const r of results.filter((x) => x.keys.length === 1 && store.get(x.keys[0] as string) !== undefined)) {
          assert.equal((store.get(r.keys[0] as string) as KeyValue).modRevision, r.revision);
        }
        assert.ok(batches.some((n) => n > 1), `concurrent writes were grouped (batch sizes ${batches.slice(0, 10).join(',')}…)`);
        // The backend log says the same as the stream.
        const fromLog = await store.readEvents(start + 1, store.revision, 1_000_000, true);
        assert.deepEqual(nevents(fromLog), nevents(events));
        assert.equal(await store.backend.headRevision(), start + N);
      }));

      test('a compare in a later request sees an earlier request of the same batch', withCtx(async (ctx) => {
        const store = await ctx.store();
        await store.put('cas', enc('0'));
        const N = 100;
        // Compare-and-swap chain issued all at once: request i expects the value request i-1 wrote.
        const all = await Promise.all(
          Array.from({ length: N }, (_, i) =>
            store.txn({
              compare: [{ key: 'cas', target: 'value', result: '=', operand: enc(`${i}`) }],
              success: [{ type: 'put', key: 'cas', value: enc(`${i + 1}`) }],
              failure: [{ type: 'range', key: 'cas' }],
            }),
          ),
        );
        assert.ok(all.every((r) => r.succeeded), `failed at ${all.findIndex((r) => !r.succeeded)}`);
        assert.equal(Buffer.from((store.get('cas') as KeyValue).value).toString(), `${N}`);
        assert.equal((store.get('cas') as KeyValue).version, N + 1);
        // And a burst of creates guarded by "does not exist": exactly one wins.
        const racers = await Promise.all(
          Array.from({ length: 50 }, (_, i) =>
            store.txn({ compare: [{ key: 'leader', target: 'createRevision', result: '=', operand: 0 }], success: [{ type: 'put', key: 'leader', value: enc(`${i}`) }], failure: [] }),
          ),
        );
        assert.equal(racers.filter((r) => r.succeeded).length, 1);
        assert.equal(racers[0]?.succeeded, true);
      }));

      test('leases: grant, keepAlive, timeToLive, revoke deletes the attached keys in one revision', withCtx(async (ctx) => {
        const store = await ctx.store();
        const lease = await store.grantLease(30);
        assert.ok(Number.isSafeInteger(lease.id) && lease.id > 0);
        assert.equal(lease.grantedTtl, 30);
        const fixed = await store.grantLease(5, 4242);
        assert.equal(fixed.id, 4242);
        await assert.rejects(async () => store.grantLease(5, 4242), InvalidArgumentError);
        await assert.rejects(async () => store.grantLease(0), InvalidArgumentError);
        for (const k of ['l/a', 'l/b', 'l/c']) await store.put(k, enc(k), { lease: lease.id });
        await store.put('l/moved', enc('m'), { lease: lease.id });
        await store.put('l/moved', enc('m2')); // re-put without the lease detaches it
        await store.put('l/other', enc('o'), { lease: fixed.id });
        assert.equal(await store.keepAlive(lease.id), 30);
        const info = store.timeToLive(lease.id);
        assert.deepEqual(info.keys, ['l/a', 'l/b', 'l/c']);
        assert.ok(info.ttl > 0 && info.ttl <= 30);
        assert.deepEqual((await store.backend.loadLeases()).map((l) => l.id).sort((a, b) => a - b), [fixed.id, lease.id].sort((a, b) => a - b));
        const events: RevisionEvents[] = [];
        store.subscribe((e) => events.push(e));
        const before = store.revision;
        const rev = await store.revokeLease(lease.id);
        assert.equal(rev, before + 1);
        assert.deepEqual(events.map((e) => [e.revision, e.events.map((x) => `${x.type}:${x.kv.key}`)]), [[rev, ['delete:l/a', 'delete:l/b', 'delete:l/c']]]);
        assert.deepEqual(store.rangeLatest('l/', prefixEnd('l/')).kvs.map((kv) => kv.key), ['l/moved', 'l/other']);
        assert.throws(() => store.timeToLive(lease.id), NotFoundError);
        await assert.rejects(async () => store.keepAlive(lease.id), NotFoundError);
        await assert.rejects(async () => store.revokeLease(lease.id), NotFoundError);
        await assert.rejects(async () => store.put('l/x', enc('x'), { lease: lease.id }), NotFoundError);
        assert.deepEqual((await store.backend.loadLeases()).map((l) => l.id), [fixed.id]);
        // A lease with no keys is revoked without a revision.
        const empty = await store.grantLease(10);
        const r2 = await store.revokeLease(empty.id);
        assert.equal(r2, store.revision);
        assert.equal(events.length, 1);
        assert.deepEqual(store.leases().map((l) => l.id), [fixed.id]);
      }));

      test('a lease that expires (real clock, TTL 1 s) deletes its keys once, in one revision', withCtx(async (ctx) => {
        const store = await ctx.store();
        const t0 = Date.now();
        const lease = await store.grantLease(1);
        await store.put('e/a', enc('1'), { lease: lease.id });
        await store.put('e/b', enc('2'), { lease: lease.id });
        await store.put('e/keep', enc('3'));
        const events: RevisionEvents[] = [];
        store.subscribe((e) => events.push(e));
        await waitFor('the leased keys to expire', () => store.get('e/a') === undefined, 4000);
        // Measured from before the grant: the puts may take long on a loaded machine.
        assert.ok(Date.now() - t0 >= 950, 'not expired early');
        await sleep(600); // long enough for a second, wrong, expiry to show up
        assert.deepEqual(events.map((e) => e.events.map((x) => `${x.type}:${x.kv.key}`)), [['delete:e/a', 'delete:e/b']]);
        assert.equal(store.get('e/b'), undefined);
        assert.ok(store.get('e/keep'));
        assert.throws(() => store.timeToLive(lease.id), NotFoundError);
        assert.deepEqual(await store.backend.loadLeases(), []);
      }));

      test('keepAlive postpones expiry; expiry after that deletes the keys (fake clock)', withCtx(async (ctx) => {
        const clock = new FakeClock();
        const store = await ctx.store({ clock });
        const lease = await store.grantLease(2);
        await store.put('f/a', enc('1'), { lease: lease.id });
        clock.advance(1500);
        assert.equal(await store.keepAlive(lease.id), 2);
        clock.advance(1000); // 2.5 s after the grant, 1 s after the keep-alive
        await sleep(350);
        assert.ok(store.get('f/a'), 'a renewed lease does not expire at its first deadline');
        assert.equal(store.timeToLive(lease.id).ttl, 1);
        clock.advance(1500);
        await waitFor('the lease to expire', () => store.get('f/a') === undefined, 3000);
        await assert.rejects(async () => store.keepAlive(lease.id), NotFoundError);
      }));

      test('expired leases are revoked in expiry order, each in its own revision (fake clock)', withCtx(async (ctx) => {
        const clock = new FakeClock();
        const store = await ctx.store({ clock });
        const ids: number[] = [];
        for (const ttl of [5, 3, 4]) {
          const l = await store.grantLease(ttl);
          ids.push(l.id);
          await store.put(`o/${ttl}`, enc(`${ttl}`), { lease: l.id });
          await store.put(`o/${ttl}/x`, enc(`${ttl}`), { lease: l.id });
        }
        const events: RevisionEvents[] = [];
        store.subscribe((e) => events.push(e));
        clock.advance(10_000);
        await waitFor('all leases to expire', () => store.leaseCount === 0, 3000);
        assert.deepEqual(events.map((e) => e.events.map((x) => x.kv.key)), [['o/3', 'o/3/x'], ['o/4', 'o/4/x'], ['o/5', 'o/5/x']]);
        assert.equal(store.rangeLatest('o/', prefixEnd('o/')).count, 0);
      }));

      test('reopening re-arms leases with their full TTL (one node) or keeps their stored expiry (shared store)', withCtx(async (ctx) => {
        if (ctx.h.reopen === undefined) return;
        const clock = new FakeClock();
        const store = await ctx.store({ clock });
        const lease = await store.grantLease(3);
        await store.put('r/a', enc('1'), { lease: lease.id });
        await store.put('r/b', enc('2'));
        const backend = await ctx.reopenBackend(store);
        assert.ok(backend);
        if (backend.shared === true) {
          // Other nodes keep leases alive and persist the expiry: a restarted node trusts it.
          const again = await ctx.store({ backend, clock });
          assert.equal(again.timeToLive(lease.id).ttl, 3);
          clock.advance(3000);
          await waitFor('the lease to expire at its stored deadline', () => again.get('r/a') === undefined, 3000);
          assert.ok(again.get('r/b'));
          return;
        }
        clock.advance(60_000); // the process was down for a minute: far past the lease's deadline
        const again = await ctx.store({ backend, clock });
        assert.equal(again.revision, 2);
        assert.ok(again.get('r/a'), 'a restart never expires a lease early');
        const info = again.timeToLive(lease.id);
        assert.equal(info.ttl, 3);
        assert.deepEqual(info.keys, ['r/a']);
        await sleep(300);
        assert.ok(again.get('r/a'));
        const events: RevisionEvents[] = [];
        again.subscribe((e) => events.push(e));
        clock.advance(3000);
        await waitFor('the re-armed lease to expire', () => again.get('r/a') === undefined, 3000);
        await sleep(300);
        assert.deepEqual(events.map((e) => [e.revision, e.events.map((x) => `${x.type}:${x.kv.key}`)]), [[3, ['delete:r/a']]]);
        assert.ok(again.get('r/b'));
      }));

      test('compact: reads, history and events below it fail with CompactedError; later reads are unchanged', withCtx(async (ctx) => {
        const store = await ctx.store();
        await store.put('a', enc('1')); // 1
        await store.put('a', enc('2')); // 2
        await store.put('b', enc('1')); // 3
        await store.deleteRange('b', undefined); // 4
        await store.put('c', enc('1')); // 5
        await store.put('a', enc('3')); // 6
        await store.put('d', enc('1')); // 7
        const before = new Map<number, unknown>();
        for (let r = 1; r <= 7; r++) before.set(r, (await store.range('', null, { revision: r })).kvs.map(nkv));
        const streamBefore = await store.readEvents(5, 7, 100, true);
        await store.compact(4);
        assert.equal(store.compactRevision, 4);
        for (const r of [1, 2, 3]) {
          await assert.rejects(store.range('', null, { revision: r }), (e: unknown) => e instanceof CompactedError && e.compactRevision === 4, `range at ${r}`);
        }
        // At the compact revision itself the store may refuse, but must never answer wrongly.
        try {
          const at4 = await store.range('', null, { revision: 4 });
          assert.deepEqual(at4.kvs.map(nkv), before.get(4));
        } catch (err) {
          assert.ok(err instanceof CompactedError);
        }
        for (const r of [5, 6, 7]) assert.deepEqual((await store.range('', null, { revision: r })).kvs.map(nkv), before.get(r), `range at ${r}`);
        assert.deepEqual(nevents(await store.readEvents(5, 7, 100, true)), nevents(streamBefore));
        await assert.rejects(store.readEvents(2, 7, 100, false), CompactedError);
        await assert.rejects(store.history('a', { fromRevision: 2 }), CompactedError);
        assert.deepEqual((await store.history('a')).map((e) => e.revision), [2, 6], 'the latest entry at or below the compact revision survives');
        assert.deepEqual(await store.history('b'), [], 'a key deleted before the compact revision has no history left');
        assert.deepEqual((await store.history('a', { fromRevision: 5 })).map((e) => e.revision), [6]);
        await assert.rejects(store.compact(4), CompactedError);
        await assert.rejects(store.compact(3), CompactedError);
        await assert.rejects(store.compact(8), FutureRevisionError);
        assert.deepEqual(store.rangeLatest('', null).kvs.map((kv) => kv.key), ['a', 'c', 'd']);
        const backend = await ctx.reopenBackend(store);
        if (backend !== undefined) {
          const again = await ctx.store({ backend });
          assert.equal(again.compactRevision, 4);
          assert.equal(again.revision, 7);
          await assert.rejects(again.range('', null, { revision: 3 }), CompactedError);
          assert.deepEqual((await again.range('', null, { revision: 5 })).kvs.map(nkv), before.get(5));
        }
      }));

      test('reading events while a compaction runs fails with CompactedError or returns them whole, never without prevKv', withCtx(async (ctx) => {
        const store = await ctx.store();
        for (let i = 0; i < 10; i++) await store.put('a', enc(`${i}`));
        const want = nevents(await store.readEvents(2, 10, 100, true));
        const reading = store.readEvents(2, 10, 100, true);
        const compacting = store.compact(8);
        try {
          assert.deepEqual(nevents(await reading), want);
        } catch (err) {
          if (!(err instanceof CompactedError)) throw err;
        }
        await compacting;
      }));

      test('put with ignoreValue/ignoreLease keeps the current value/lease and needs an existing key', withCtx(async (ctx) => {
        const store = await ctx.store();
        const lease = await store.grantLease(100);
        await store.put('i', enc('keep'), { lease: lease.id });
        await store.txn({ compare: [], success: [{ type: 'put', key: 'i', value: new Uint8Array(0), ignoreValue: true }], failure: [] });
        let kv = store.get('i') as KeyValue;
        assert.deepEqual([Buffer.from(kv.value).toString(), kv.version, kv.lease], ['keep', 2, 0]);
        await store.txn({ compare: [], success: [{ type: 'put', key: 'i', value: enc('new'), lease: lease.id }], failure: [] });
        await store.txn({ compare: [], success: [{ type: 'put', key: 'i', value: enc('newer'), ignoreLease: true }], failure: [] });
        kv = store.get('i') as KeyValue;
        assert.deepEqual([Buffer.from(kv.value).toString(), kv.version, kv.lease], ['newer', 4, lease.id]);
        const rev = store.revision;
        await assert.rejects(
          async () => store.txn({ compare: [], success: [{ type: 'put', key: 'absent', value: new Uint8Array(0), ignoreValue: true }], failure: [] }),
          InvalidArgumentError,
        );
        assert.equal(store.revision, rev);
        await store.revokeLease(lease.id);
        assert.equal(store.get('i'), undefined, 'a key that kept its lease goes with it');
      }));

      test('reopen persists keys, history, leases and revision; writing continues at the next revision', withCtx(async (ctx) => {
        if (ctx.h.reopen === undefined) return;
        const store = await ctx.store();
        const lease = await store.grantLease(600);
        await Promise.all(Array.from({ length: 50 }, (_, i) => store.put(`p/${i}`, enc(`v${i}`), i % 5 === 0 ? { lease: lease.id } : {})));
        await store.deleteRange('p/1', prefixEnd('p/1'));
        await store.txn({ compare: [], success: [{ type: 'put', key: 'bin', value: Uint8Array.from([0, 0xff, 0x80]) }, { type: 'put', key: 'empty', value: new Uint8Array(0) }], failure: [] }, { meta: '{"who":"test"}' });
        const snapshot = store.rangeLatest('', null).kvs.map(nkv);
        const log = await store.readEvents(1, store.revision, 1_000_000, true);
        const rev = store.revision;
        const backend = await ctx.reopenBackend(store);
        assert.ok(backend);
        const again = await ctx.store({ backend });
        assert.equal(again.revision, rev);
        assert.deepEqual(again.rangeLatest('', null).kvs.map(nkv), snapshot);
        assert.deepEqual(nevents(await again.readEvents(1, rev, 1_000_000, true)), nevents(log));
        assert.equal((await again.readEvents(rev, rev, 10, false))[0]?.meta, '{"who":"test"}');
        assert.deepEqual(again.timeToLive(lease.id).keys, ['p/0', 'p/20', 'p/25', 'p/30', 'p/35', 'p/40', 'p/45', 'p/5']);
        const next = await again.put('p/new', enc('n'));
        assert.equal(next.revision, rev + 1);
        await again.revokeLease(lease.id);
        assert.equal(again.rangeLatest('p/', prefixEnd('p/')).count, 50 - 11 - 8 + 1);
      }));

      test('unicode keys sort in UTF-8 byte order in the view and in backend reads alike', withCtx(async (ctx) => {
        const store = await ctx.store();
        await Promise.all(UNICODE_KEYS.map((k, i) => store.put(k, enc(`${i}`))));
        await store.put('w', enc('last')); // so revision-1 reads go to the backend
        const sorted = [...UNICODE_KEYS].sort(utf8Compare);
        const old = store.revision - 1;
        const ranges: [string, string | null][] = [
          ['u/', prefixEnd('u/')],
          ['u/\ue000', 'u/\u{10000}'],
          ['u/\u{10000}', 'u/\u{10FFFF}'],
          ['u/\u{1F600}', prefixEnd('u/\u{1F600}')],
          ['u/\uffff', prefixEnd('u/\uffff')],
          ['u/a', 'u/a\u0000c'],
          ['u/\u0080', 'u/\ud7ff\u0000'],
        ];
        for (const [key, end] of ranges) {
          const want = sorted.filter((k) => inRangeUtf8(k, key, end));
          const latest = await store.range(key, end);
          const past = await store.range(key, end, { revision: old });
          const where = `[${JSON.stringify(key)}, ${JSON.stringify(end)})`;
          assert.deepEqual(latest.kvs.map((kv) => kv.key), want, `view ${where}`);
          assert.deepEqual(past.kvs.map((kv) => kv.key), want, `backend ${where}`);
          for (const limit of [1, 3]) {
            const a = await store.range(key, end, { limit });
            const b = await store.range(key, end, { limit, revision: old });
            assert.deepEqual(a.kvs.map((kv) => kv.key), b.kvs.map((kv) => kv.key), `limit ${limit} ${where}`);
            assert.equal(a.more, b.more);
            assert.equal(a.count, b.count);
          }
        }
        // Paging with "last key + \0" as the next start key (what the HTTP API's continuation does).
        const paged: string[] = [];
        let start = 'u/';
        for (;;) {
          const page = await store.range(start, prefixEnd('u/'), { limit: 3, revision: old });
          paged.push(...page.kvs.map((kv) => kv.key));
          if (!page.more) break;
          start = `${(page.kvs[page.kvs.length - 1] as KeyValue).key}\u0000`;
        }
        assert.deepEqual(paged, sorted);
        const events = await store.readEvents(1, UNICODE_KEYS.length, 1000, false);
        assert.deepEqual(events.flatMap((g) => g.events.map((e) => e.kv.key)).sort(utf8Compare), sorted);
      }));

      test('binary and empty values round-trip through view, backend reads, history and events', withCtx(async (ctx) => {
        const store = await ctx.store();
        const allBytes = Uint8Array.from({ length: 256 }, (_, i) => 255 - i);
        const sliced = Uint8Array.from([7, 7, 0xc3, 0x28, 0, 7]).subarray(2, 5);
        await store.put('v/bin', allBytes);
        await store.put('v/empty', new Uint8Array(0));
        await store.put('v/sliced', sliced);
        await store.put('w/end', enc('end'));
        const want = [
          ['v/bin', hex(allBytes)],
          ['v/empty', ''],
          ['v/sliced', 'c32800'],
        ];
        const viewKvs = store.rangeLatest('v/', prefixEnd('v/')).kvs.map((kv) => [kv.key, hex(kv.value)]);
        assert.deepEqual(viewKvs, want);
        const past = await store.range('v/', prefixEnd('v/'), { revision: 3 });
        assert.deepEqual(past.kvs.map((kv) => [kv.key, hex(kv.value)]), want);
        const hist = await store.history('v/empty');
        assert.equal(hist.length, 1);
        assert.equal(hex((hist[0] as LogEntry).value), '');
        assert.equal((hist[0] as LogEntry).deleted, false);
        const evs = await store.readEvents(1, 3, 100, false);
        assert.deepEqual(evs.map((g) => g.events.map((e) => [e.type, e.kv.key, hex(e.kv.value)])), want.map((w) => [['put', ...w]]));
        const eq = await store.txn({ compare: [{ key: 'v/empty', target: 'value', result: '=', operand: new Uint8Array(0) }], success: [], failure: [] });
        assert.equal(eq.succeeded, true, 'an empty value equals the empty operand');
      }));

      test('events read back from the log equal the events published to subscribers', withCtx(async (ctx) => {
        const store = await ctx.store();
        const events: RevisionEvents[] = [];
        store.subscribe((e) => events.push(e));
        const lease = await store.grantLease(100);
        await store.put('a', enc('1'), { lease: lease.id });
        await store.put('a', enc('2'), { lease: lease.id });
        await store.put('b', enc('1'));
        await store.txn({ compare: [], success: [{ type: 'delete', key: 'b' }, { type: 'put', key: 'c', value: enc('c') }], failure: [] });
        await store.revokeLease(lease.id);
        await store.put('a', enc('again'));
        assert.deepEqual(events.map((e) => e.revision), [1, 2, 3, 4, 5, 6]);
        const fromLog = await store.readEvents(1, store.revision, 1000, true);
        assert.deepEqual(nevents(fromLog), nevents(events));
        for (const g of events) for (const e of g.events.filter((x) => x.type === 'delete')) {
          assert.deepEqual([e.kv.value.byteLength, e.kv.modRevision, e.kv.version, e.kv.createRevision], [0, g.revision, 0, 0]);
        }
        const ts = fromLog.map((g) => g.ts);
        assert.ok(ts.every((t, i) => i === 0 || t >= (ts[i - 1] as number)), 'commit times do not go backwards');
      }));

      test('writes with an audit context record who changed which key, with versions and revision; failed writes record nothing', withCtx(async (ctx) => {
        const clock = new FakeClock();
        const store = await ctx.store({ clock });
        const who = { principal: 'alice', action: 'kv.put', requestId: 'req-7', source: '10.0.0.1' };
        await store.put('a', enc('1'), { audit: who });
        await store.put('a', enc('2'), { audit: who });
        await store.put('b', enc('1')); // no audit context: no record
        await store.put('p/1', enc('x'), { audit: who });
        await store.put('p/2', enc('x'), { audit: who });
        await store.deleteRange('p/', prefixEnd('p/'), { audit: { principal: 'bob', action: 'kv.delete' } });
        await assert.rejects(store.put('c', enc('1'), { lease: 31337, audit: who }), NotFoundError);
        await store.txn({ compare: [{ key: 'a', target: 'version', result: '=', operand: 99 }], success: [{ type: 'put', key: 'x', value: enc('1') }], failure: [] }, { audit: who });
        const lease = await store.grantLease(2, 0, { principal: 'carol', action: 'lease.grant' });
        await store.put('l/1', enc('1'), { lease: lease.id });
        await store.put('l/2', enc('1'), { lease: lease.id });
        clock.advance(3000);
        await waitFor('the lease to expire', () => store.leaseCount === 0, 3000);
        const got = await store.backend.queryAudit({ limit: 100 });
        const row = (r: AuditRecord): unknown[] => [r.principal, r.action, r.key, r.oldVersion, r.newVersion, r.revision, r.requestId, r.source, r.outcome];
        assert.deepEqual(got.map(row), [
          ['alice', 'kv.put', 'a', null, 1, 1, 'req-7', '10.0.0.1', 'ok'],
          ['alice', 'kv.put', 'a', 1, 2, 2, 'req-7', '10.0.0.1', 'ok'],
          ['alice', 'kv.put', 'p/1', null, 1, 4, 'req-7', '10.0.0.1', 'ok'],
          ['alice', 'kv.put', 'p/2', null, 1, 5, 'req-7', '10.0.0.1', 'ok'],
          ['bob', 'kv.delete', 'p/1', 1, null, 6, null, null, 'ok'],
          ['bob', 'kv.delete', 'p/2', 1, null, 6, null, null, 'ok'],
          ['carol', 'lease.grant', null, null, null, null, null, null, 'ok'],
          ['system', 'lease.expire', 'l/1', 1, null, 9, null, null, 'ok'],
          ['system', 'lease.expire', 'l/2', 1, null, 9, null, null, 'ok'],
        ]);
        assert.ok(got.every((r) => r.ts >= 1_700_000_000_000), 'records carry the commit time');
        assert.ok((got[6]?.details ?? '').includes(String(lease.id)), 'a lease record names the lease');
      }));

      test('readBarrier answers the backend head once the view has it', withCtx(async (ctx) => {
        const store = await ctx.store();
        await store.put('a', enc('1'));
        await store.put('b', enc('1'));
        assert.equal(await store.readBarrier(), 2);
        assert.equal(await store.backend.headRevision(), store.revision);
      }));

      test('writes after close are rejected with unavailable', withCtx(async (ctx) => {
        const store = await ctx.store();
        await store.put('a', enc('1'));
        // Observe the outcome at once, so a refusal during the close is never an unhandled rejection.
        const pending = store.put('b', enc('2')).then(
          (r) => ({ ok: true as const, revision: r.revision }),
          (e: unknown) => ({ ok: false as const, error: e }),
        );
        await ctx.closeStore(store);
        // The pending write either committed before the close or was refused; it never hangs.
        const outcome = await pending;
        if (outcome.ok) assert.equal(outcome.revision, 2);
        else assert.ok(outcome.error instanceof BeaconError && outcome.error.code === 'unavailable');
        await assert.rejects(store.put('c', enc('3')), (e: unknown) => e instanceof BeaconError && e.code === 'unavailable');
      }));
    });
  });
}
