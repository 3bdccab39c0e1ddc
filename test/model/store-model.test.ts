/**
 * A randomized test of the Store against a small in-memory model of etcd semantics: a revision
 * counter, per-key createRevision/modRevision/version/lease, leases that delete their keys, and
 * compaction. Ops are issued in concurrent bursts (one group commit) and every answer, the full
 * state, historical reads, the event stream and the lease table are checked against the model.
 * Rerun a failure with `BEACON_MODEL_SEED=<seed printed on failure>`.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createBackend } from '../../src/backend/index.js';
import { BeaconError } from '../../src/errors.js';
import { prefixEnd, Store, type Compare, type KeyValue, type OpResult, type RevisionEvents, type TxnOp, type TxnRequest } from '../../src/kv/index.js';
import { prng } from '../helpers/random.js';

// Not test/helpers/node.ts: this test must not depend on the HTTP layer building.
function tempDir(prefix: string): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

const SEED = Number(process.env.BEACON_MODEL_SEED ?? Math.floor(Math.random() * 2 ** 31));
const BATCHES = Number(process.env.BEACON_MODEL_BATCHES ?? 90);


const rnd = prng(SEED);
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)] as T;
const chance = (p: number): boolean => rnd() < p;
const int = (lo: number, hi: number): number => lo + Math.floor(rnd() * (hi - lo + 1));

const KEYS = ['a', 'a/1', 'a/2', 'a/\u{1F600}', 'a/\ue000', 'a/\uffff', 'b', 'b/x', 'é', '\u{10000}', 'z\u0000', 'zz'];
const PREFIXES = ['a/', 'a', 'b', 'z', '\u{10000}', 'a/\u{1F600}'];

const hex = (v: Uint8Array): string => Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('hex');
const utf8Compare = (a: string, b: string): number => Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
function startsWithUtf8(k: string, p: string): boolean {
  const kb = Buffer.from(k, 'utf8');
  const pb = Buffer.from(p, 'utf8');
  return kb.length >= pb.length && kb.subarray(0, pb.length).equals(pb);
}

/** A kv as the model keeps it (value as hex). */
interface MKv {
  key: string;
  value: string;
  createRevision: number;
  modRevision: number;
  version: number;
  lease: number;
}

interface MEvent {
  type: 'put' | 'delete';
  kv: MKv;
  prevKv?: MKv;
}

interface MGroup {
  revision: number;
  events: MEvent[];
}

/** How a test addresses keys: one key, a prefix, or an arbitrary `[key, end)`. */
type Sel = { kind: 'key'; key: string } | { kind: 'prefix'; prefix: string } | { kind: 'range'; key: string; end: string | null };

function selToRange(s: Sel): { key: string; rangeEnd: string | null | undefined } {
  if (s.kind === 'key') return { key: s.key, rangeEnd: undefined };
  if (s.kind === 'prefix') return { key: s.prefix, rangeEnd: prefixEnd(s.prefix) };
  return { key: s.key, rangeEnd: s.end };
}

/** Membership computed independently of compareKeys/prefixEnd. */
function selHas(s: Sel, k: string): boolean {
  if (s.kind === 'key') return k === s.key;
  if (s.kind === 'prefix') return startsWithUtf8(k, s.prefix);
  return utf8Compare(k, s.key) >= 0 && (s.end === null || utf8Compare(k, s.end) < 0);
}

function nkv(kv: KeyValue): MKv {
  return { key: kv.key, value: hex(kv.value), createRevision: kv.createRevision, modRevision: kv.modRevision, version: kv.version, lease: kv.lease };
}

function ngroups(gs: RevisionEvents[]): MGroup[] {
  return gs.map((g) => ({
    revision: g.revision,
    events: g.events.map((e) => ({ type: e.type, kv: nkv(e.kv), ...(e.prevKv ? { prevKv: nkv(e.prevKv) } : {}) })),
  }));
}

class ModelError {
  constructor(readonly code: string) {}
}

/** The model: etcd's MVCC rules, applied one request at a time in the order requests were made. */
class Model {
  revision = 0;
  compactRevision = 0;
  kvs = new Map<string, MKv>();
  /** State after each revision (index = revision). */
  readonly states: Map<string, MKv>[] = [new Map()];
  readonly groups: MGroup[] = [];
  leases = new Map<number, { ttl: number; expiresAt: number }>();

  sorted(m: Map<string, MKv> = this.kvs): MKv[] {
    return [...m.values()].sort((a, b) => utf8Compare(a.key, b.key));
  }

  select(s: Sel, m: Map<string, MKv> = this.kvs): MKv[] {
    return this.sorted(m).filter((kv) => selHas(s, kv.key));
  }

  private commit(events: MEvent[]): number {
    const revision = ++this.revision;
    events.sort((a, b) => utf8Compare(a.kv.key, b.kv.key));
    this.groups.push({ revision, events });
    this.states[revision] = new Map(this.kvs);
    return revision;
  }

  private compare(c: { sel: Sel; target: Compare['target']; result: Compare['result']; operand: number | string }): boolean {
    const kvs = this.select(c.sel);
    // etcd: a missing key (or an empty range) compares as a zero kv; value compares on it fail.
    const targets: (MKv | undefined)[] = kvs.length === 0 ? [undefined] : kvs;
    return targets.every((kv) => {
      let cmp: number;
      if (c.target === 'value') {
        if (kv === undefined) return false;
        cmp = Buffer.compare(Buffer.from(kv.value, 'hex'), Buffer.from(c.operand as string, 'hex'));
      } else {
        cmp = (kv === undefined ? 0 : kv[c.target]) - (c.operand as number);
      }
      return c.result === '=' ? cmp === 0 : c.result === '!=' ? cmp !== 0 : c.result === '<' ? cmp < 0 : cmp > 0;
    });
  }

  /** Applies a txn; returns the response or throws a ModelError with the expected error code. */
  txn(t: MTxn): { succeeded: boolean; revision: number; results: unknown[] } {
    for (const ops of [t.success, t.failure]) {
      const puts = ops.filter((o) => o.type === 'put').map((o) => (o as MPut).key);
      if (new Set(puts).size !== puts.length) throw new ModelError('invalid_argument');
      for (const d of ops.filter((o) => o.type === 'delete') as MDelete[]) {
        if (puts.some((k) => selHas(d.sel, k))) throw new ModelError('invalid_argument');
      }
    }
    const succeeded = t.compare.every((c) => this.compare(c));
    const ops = succeeded ? t.success : t.failure;
    for (const op of ops) if (op.type === 'put' && op.lease !== 0 && !this.leases.has(op.lease)) throw new ModelError('not_found');
    const next = this.revision + 1;
    const events: MEvent[] = [];
    const results: unknown[] = [];
    for (const op of ops) {
      if (op.type === 'range') {
        const all = this.select(op.sel);
        const kvs = op.countOnly ? [] : (op.limit > 0 ? all.slice(0, op.limit) : all).map((kv) => (op.keysOnly ? { ...kv, value: '' } : kv));
        results.push({ type: 'range', kvs, more: !op.countOnly && kvs.length < all.length, count: all.length });
      } else if (op.type === 'put') {
        const prev = this.kvs.get(op.key);
        const kv: MKv = {
          key: op.key,
          value: op.value,
          createRevision: prev ? prev.createRevision : next,
          modRevision: next,
          version: prev ? prev.version + 1 : 1,
          lease: op.lease,
        };
        this.kvs.set(op.key, kv);
        events.push(prev ? { type: 'put', kv, prevKv: prev } : { type: 'put', kv });
        results.push(op.prevKv && prev ? { type: 'put', prevKv: prev } : { type: 'put' });
      } else {
        const victims = this.select(op.sel);
        for (const prev of victims) {
          this.kvs.delete(prev.key);
          events.push({ type: 'delete', kv: { key: prev.key, value: '', createRevision: 0, modRevision: next, version: 0, lease: 0 }, prevKv: prev });
        }
        results.push(op.prevKv ? { type: 'delete', deleted: victims.length, prevKvs: victims } : { type: 'delete', deleted: victims.length });
      }
    }
    const revision = events.length > 0 ? this.commit(events) : this.revision;
    return { succeeded, revision, results };
  }

  grant(id: number, ttl: number, now: number): { id: number; grantedTtl: number; expiresAt: number } {
    this.leases.set(id, { ttl, expiresAt: now + ttl * 1000 });
    return { id, grantedTtl: ttl, expiresAt: now + ttl * 1000 };
  }

  revoke(id: number): number {
    if (!this.leases.has(id)) throw new ModelError('not_found');
    this.leases.delete(id);
    const victims = this.sorted().filter((kv) => kv.lease === id);
    if (victims.length === 0) return this.revision;
    const next = this.revision + 1;
    for (const v of victims) this.kvs.delete(v.key);
    return this.commit(victims.map((prev) => ({ type: 'delete', kv: { key: prev.key, value: '', createRevision: 0, modRevision: next, version: 0, lease: 0 }, prevKv: prev })));
  }

  keysOf(id: number): string[] {
    return this.sorted()
      .filter((kv) => kv.lease === id)
      .map((kv) => kv.key);
  }

  /** The log entries left after compaction, per key, as (revision, deleted, value, version, lease). */
  history(key: string): unknown[] {
    const all: { revision: number; deleted: boolean; value: string; version: number; lease: number }[] = [];
    for (const g of this.groups) {
      for (const e of g.events) {
        if (e.kv.key !== key) continue;
        all.push({ revision: g.revision, deleted: e.type === 'delete', value: e.kv.value, version: e.kv.version, lease: e.kv.lease });
      }
    }
    const upTo = all.filter((e) => e.revision <= this.compactRevision);
    const last = upTo[upTo.length - 1];
    const kept = last !== undefined && !last.deleted ? [last] : [];
    return [...kept, ...all.filter((e) => e.revision > this.compactRevision)];
  }
}

interface MPut {
  type: 'put';
  key: string;
  value: string;
  lease: number;
  prevKv: boolean;
}
interface MDelete {
  type: 'delete';
  sel: Sel;
  prevKv: boolean;
}
interface MRange {
  type: 'range';
  sel: Sel;
  limit: number;
  keysOnly: boolean;
  countOnly: boolean;
}
type MOp = MPut | MDelete | MRange;
interface MTxn {
  compare: { sel: Sel; target: Compare['target']; result: Compare['result']; operand: number | string }[];
  success: MOp[];
  failure: MOp[];
}

function toTxnOp(op: MOp): TxnOp {
  if (op.type === 'put') return { type: 'put', key: op.key, value: Buffer.from(op.value, 'hex'), lease: op.lease, prevKv: op.prevKv };
  const r = selToRange(op.sel);
  if (op.type === 'delete') return { type: 'delete', key: r.key, rangeEnd: r.rangeEnd, prevKv: op.prevKv };
  return { type: 'range', key: r.key, rangeEnd: r.rangeEnd, limit: op.limit, keysOnly: op.keysOnly, countOnly: op.countOnly };
}

function toTxn(t: MTxn): TxnRequest {
  return {
    compare: t.compare.map((c) => {
      const r = selToRange(c.sel);
      return { key: r.key, rangeEnd: r.rangeEnd, target: c.target, result: c.result, operand: c.target === 'value' ? Buffer.from(c.operand as string, 'hex') : (c.operand as number) };
    }),
    success: t.success.map(toTxnOp),
    failure: t.failure.map(toTxnOp),
  };
}

function normResult(r: OpResult): unknown {
  if (r.type === 'put') return r.prevKv ? { type: 'put', prevKv: nkv(r.prevKv) } : { type: 'put' };
  if (r.type === 'delete') return r.prevKvs ? { type: 'delete', deleted: r.deleted, prevKvs: r.prevKvs.map(nkv) } : { type: 'delete', deleted: r.deleted };
  return { type: 'range', kvs: r.kvs.map(nkv), more: r.more, count: r.count };
}

function randomValue(): string {
  if (chance(0.1)) return '';
  if (chance(0.2)) return hex(Uint8Array.from({ length: int(1, 6) }, () => int(0, 255)));
  return Buffer.from(`v${int(0, 30)}`).toString('hex');
}

function randomSel(model: Model): Sel {
  const r = rnd();
  if (r < 0.6) return { kind: 'key', key: pick(KEYS) };
  if (r < 0.85) return { kind: 'prefix', prefix: pick(PREFIXES) };
  const a = pick(KEYS);
  const b = pick(KEYS);
  void model;
  return { kind: 'range', key: utf8Compare(a, b) <= 0 ? a : b, end: chance(0.2) ? null : utf8Compare(a, b) <= 0 ? b : a };
}

class FakeClock {
  t = 1_800_000_000_000;
  readonly now = (): number => this.t;
}

async function waitFor(what: string, cond: () => boolean, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

type Outcome = { ok: unknown } | { err: string };

async function outcome(p: () => Promise<unknown>, norm: (v: unknown) => unknown): Promise<Outcome> {
  try {
    return { ok: norm(await p()) };
  } catch (e) {
    if (e instanceof BeaconError) return { err: e.code };
    throw e;
  }
}

function expect(f: () => unknown): Outcome {
  try {
    return { ok: f() };
  } catch (e) {
    if (e instanceof ModelError) return { err: e.code };
    throw e;
  }
}

test(`randomized store operations match a model of etcd semantics (seed ${SEED})`, async (t) => {
  const stats = { calls: 0, errors: 0, txnFailed: 0, expiryRevisions: 0, compactions: 0, revisions: 0 };
  const tmp = tempDir('beacon-model-');
  const spec = `sqlite:${join(tmp.dir, 'beacon.db')}`;
  const clock = new FakeClock();
  let store = new Store({ backend: await createBackend(spec, tmp.dir), clock: clock.now });
  const model = new Model();
  const published: RevisionEvents[] = [];
  const listen = (s: Store): void => void s.subscribe((g) => published.push(g));
  let checkedGroups = 0;
  let nextLease = 1;
  let step = 'open';
  try {
    await store.open();
    listen(store);

    const checkEvents = (): void => {
      assert.deepEqual(ngroups(published.slice(checkedGroups)), model.groups.slice(checkedGroups), `${step}: event stream`);
      checkedGroups = published.length;
    };

    const checkState = async (): Promise<void> => {
      assert.equal(store.revision, model.revision, `${step}: revision`);
      assert.equal(store.compactRevision, model.compactRevision, `${step}: compact revision`);
      assert.deepEqual(store.rangeLatest('', null).kvs.map(nkv), model.sorted(), `${step}: every key`);
      for (let i = 0; i < 4; i++) {
        const sel = randomSel(model);
        const r = selToRange(sel);
        const limit = chance(0.4) ? int(1, 3) : 0;
        const all = model.select(sel);
        const res = await store.range(r.key, r.rangeEnd, { limit });
        assert.deepEqual(res.kvs.map(nkv), limit > 0 ? all.slice(0, limit) : all, `${step}: range ${JSON.stringify(sel)} limit ${limit}`);
        assert.equal(res.count, all.length);
        assert.equal(res.more, limit > 0 && all.length > limit);
        // The same range at an older revision, from the backend.
        if (model.revision > 0) {
          const rev = int(1, model.revision);
          const past = model.states[rev] as Map<string, MKv>;
          const where = `${step}: range ${JSON.stringify(sel)} at revision ${rev} (compacted at ${model.compactRevision})`;
          if (rev < model.compactRevision) {
            await assert.rejects(store.range(r.key, r.rangeEnd, { revision: rev }), (e: unknown) => e instanceof BeaconError && e.code === 'compacted', where);
          } else {
            try {
              const got = await store.range(r.key, r.rangeEnd, { revision: rev, limit });
              const want = model.select(sel, past);
              assert.deepEqual(got.kvs.map(nkv), limit > 0 ? want.slice(0, limit) : want, where);
              assert.equal(got.count, want.length, where);
            } catch (e) {
              // At exactly the compact revision the store may refuse; it must not answer wrongly.
              if (!(rev === model.compactRevision && e instanceof BeaconError && e.code === 'compacted')) throw e;
            }
          }
        }
      }
      const leases = store.leases().map((l) => [l.id, l.grantedTtl, l.keys]);
      const want = [...model.leases.entries()].map(([id, l]) => [id, l.ttl, model.keysOf(id).sort(utf8Compare)]);
      const byId = (a: unknown[], b: unknown[]): number => (a[0] as number) - (b[0] as number);
      assert.deepEqual(leases.sort(byId), want.sort(byId), `${step}: leases and their keys`);
    };

    for (let batch = 0; batch < BATCHES; batch++) {
      step = `batch ${batch}`;
      const atStart = new Map(model.kvs);
      const leasesAtStart = new Set(model.leases.keys());
      const calls: { what: string; run: () => Promise<Outcome>; want: Outcome }[] = [];
      const n = int(1, 8);
      for (let i = 0; i < n; i++) {
        const r = rnd();
        if (r < 0.28) {
          const liveLeases = [...model.leases.keys()];
          const lease = chance(0.3) && liveLeases.length > 0 ? pick(liveLeases) : chance(0.05) ? 999_999 : 0;
          const key = pick(KEYS);
          const value = randomValue();
          const prevKv = chance(0.5);
          const want = expect(() => {
            const res = model.txn({ compare: [], success: [{ type: 'put', key, value, lease, prevKv }], failure: [] });
            const pr = res.results[0] as { prevKv?: MKv };
            return pr.prevKv ? { revision: res.revision, prevKv: pr.prevKv } : { revision: res.revision };
          });
          calls.push({
            what: `put ${JSON.stringify(key)} lease ${lease}`,
            run: () => outcome(() => store.put(key, Buffer.from(value, 'hex'), { lease, prevKv }), (v) => {
              const res = v as { revision: number; prevKv?: KeyValue };
              return res.prevKv ? { revision: res.revision, prevKv: nkv(res.prevKv) } : { revision: res.revision };
            }),
            want,
          });
        } else if (r < 0.42) {
          const sel: Sel = chance(0.6) ? { kind: 'key', key: pick(KEYS) } : { kind: 'prefix', prefix: pick(PREFIXES) };
          const want = expect(() => {
            const res = model.txn({ compare: [], success: [{ type: 'delete', sel, prevKv: false }], failure: [] });
            return { revision: res.revision, deleted: (res.results[0] as { deleted: number }).deleted };
          });
          const range = selToRange(sel);
          calls.push({
            what: `delete ${JSON.stringify(sel)}`,
            run: () => outcome(() => store.deleteRange(range.key, range.rangeEnd), (v) => ({ revision: (v as { revision: number }).revision, deleted: (v as { deleted: number }).deleted })),
            want,
          });
        } else if (r < 0.7) {
          const t = randomTxn(model);
          const want = expect(() => model.txn(t));
          calls.push({
            what: `txn ${JSON.stringify(t)}`,
            run: () =>
              outcome(
                () => store.txn(toTxn(t)),
                (v) => {
                  const res = v as { succeeded: boolean; revision: number; results: OpResult[] };
                  return { succeeded: res.succeeded, revision: res.revision, results: res.results.map(normResult) };
                },
              ),
            want,
          });
        } else if (r < 0.78) {
          const id = nextLease++;
          const ttl = int(1, 20);
          const want = expect(() => model.grant(id, ttl, clock.t));
          calls.push({ what: `grant ${id} ttl ${ttl}`, run: () => outcome(() => store.grantLease(ttl, id), (v) => ({ ...(v as object) })), want });
        } else if (r < 0.84) {
          const id = chance(0.85) && leasesAtStart.size > 0 ? pick([...leasesAtStart]) : 888_888;
          const want = expect(() => model.revoke(id));
          calls.push({ what: `revoke ${id}`, run: () => outcome(() => store.revokeLease(id), (v) => v), want });
        } else if (r < 0.9) {
          // keepAlive is not queued: it acts at once on the leases committed before this burst.
          const id = chance(0.9) && leasesAtStart.size > 0 ? pick([...leasesAtStart]) : 777_777;
          const l = model.leases.get(id);
          const want: Outcome = leasesAtStart.has(id) ? { ok: (l ?? { ttl: -1 }).ttl } : { err: 'not_found' };
          if (leasesAtStart.has(id) && l === undefined) {
            // revoked earlier in this burst: the keep-alive still renews the lease it sees now
            continue;
          }
          if (l !== undefined) l.expiresAt = clock.t + l.ttl * 1000;
          calls.push({ what: `keepAlive ${id}`, run: () => outcome(() => store.keepAlive(id), (v) => v), want });
        } else {
          // A latest read in the middle of a burst sees what was committed before the burst.
          const sel = randomSel(model);
          const range = selToRange(sel);
          const want: Outcome = { ok: model.select(sel, atStart) };
          calls.push({ what: `range ${JSON.stringify(sel)}`, run: () => outcome(() => store.range(range.key, range.rangeEnd), (v) => (v as { kvs: KeyValue[] }).kvs.map(nkv)), want });
        }
      }
      // Issue every call of the burst in order before awaiting any (one group commit).
      const got = await Promise.all(calls.map((c) => c.run()));
      stats.calls += calls.length;
      for (const c of calls) {
        if ('err' in c.want) stats.errors++;
        else if ((c.want.ok as { succeeded?: boolean }).succeeded === false) stats.txnFailed++;
      }
      got.forEach((g, i) => {
        const c = calls[i] as (typeof calls)[number];
        assert.deepEqual(g, c.want, `${step}: call ${i} ${c.what}`);
      });
      checkEvents();
      await checkState();

      // Between bursts: sometimes let time pass so leases expire, sometimes compact.
      if (chance(0.15)) {
        clock.t += int(500, 9000);
        step = `batch ${batch}: expiry at +${clock.t - 1_800_000_000_000} ms`;
        const expired = [...model.leases.entries()].filter(([, l]) => l.expiresAt <= clock.t).sort((a, b) => a[1].expiresAt - b[1].expiresAt);
        const ids = new Set(expired.map(([id]) => id));
        await waitFor('expired leases to be revoked', () => !store.leases().some((l) => ids.has(l.id)));
        // Each expired lease with keys deletes them in one revision, oldest expiry first (ties in any order).
        const remaining = [...expired];
        for (const g of published.slice(checkedGroups)) {
          const keys = g.events.map((e) => e.kv.key);
          const idx = remaining.findIndex(([id]) => JSON.stringify(model.keysOf(id)) === JSON.stringify(keys));
          assert.ok(idx >= 0, `${step}: revision ${g.revision} deletes ${JSON.stringify(keys)}, which is no expired lease's key set`);
          const [id, l] = remaining[idx] as [number, { expiresAt: number }];
          assert.ok(
            remaining.filter(([oid]) => model.keysOf(oid).length > 0).every(([, o]) => o.expiresAt >= l.expiresAt),
            `${step}: lease ${id} expired before an older one`,
          );
          model.revoke(id);
          stats.expiryRevisions++;
          remaining.splice(idx, 1);
        }
        for (const [id] of remaining) {
          assert.deepEqual(model.keysOf(id), [], `${step}: lease ${id} expired but its keys were not deleted`);
          model.revoke(id);
        }
        checkEvents();
        await checkState();
      }
      if (chance(0.06) && model.revision > model.compactRevision) {
        const rev = int(model.compactRevision + 1, model.revision);
        step = `batch ${batch}: compact ${rev}`;
        await store.compact(rev);
        model.compactRevision = rev;
        stats.compactions++;
        await checkState();
      }
    }

    stats.revisions = model.revision;
    t.diagnostic(`seed ${SEED}: ${JSON.stringify(stats)}`);
    step = 'final history';
    for (const key of KEYS) {
      const h = (await store.history(key)).map((e) => ({ revision: e.revision, deleted: e.deleted, value: hex(e.value), version: e.version, lease: e.lease }));
      assert.deepEqual(h, model.history(key), `history of ${JSON.stringify(key)}`);
    }
    step = 'final events';
    const from = model.compactRevision + 1;
    if (from <= model.revision) {
      const fromLog = ngroups(await store.readEvents(from, model.revision, 1_000_000, true));
      assert.deepEqual(fromLog, model.groups.filter((g) => g.revision >= from), 'events read back from the log');
    }
    step = 'reopen';
    await store.close();
    store = new Store({ backend: await createBackend(spec, tmp.dir), clock: clock.now });
    await store.open();
    checkedGroups = published.length;
    await checkState();
  } catch (err) {
    process.stderr.write(`\nstore-model failed at ${step} with seed ${SEED}: rerun with BEACON_MODEL_SEED=${SEED}\n`);
    throw err;
  } finally {
    await store.close().catch(() => undefined);
    tmp.cleanup();
  }
});

function randomTxn(model: Model): MTxn {
  const compare: MTxn['compare'] = [];
  for (let i = 0; i < int(0, 2); i++) {
    const sel: Sel = chance(0.25) ? { kind: 'prefix', prefix: pick(PREFIXES) } : { kind: 'key', key: pick(KEYS) };
    const target = pick(['value', 'version', 'createRevision', 'modRevision', 'lease'] as const);
    const result = pick(['=', '!=', '<', '>'] as const);
    const kv = model.select(sel)[0];
    let operand: number | string;
    if (target === 'value') operand = kv && chance(0.6) ? kv.value : randomValue();
    else {
      const field = kv ? kv[target] : 0;
      operand = pick([field - 1, field, field, field + 1, 0, int(0, model.revision + 1)]);
    }
    compare.push({ sel, target, result, operand });
  }
  const branch = (): MOp[] => {
    const ops: MOp[] = [];
    const puts = new Set<string>();
    const dels: Sel[] = [];
    const conflicts = chance(0.08);
    for (let i = 0; i < int(0, 4); i++) {
      const r = rnd();
      if (r < 0.45) {
        const key = pick(KEYS);
        if (!conflicts && (puts.has(key) || dels.some((d) => selHas(d, key)))) continue;
        puts.add(key);
        const liveLeases = [...model.leases.keys()];
        const lease = chance(0.2) && liveLeases.length > 0 ? pick(liveLeases) : chance(0.03) ? 999_999 : 0;
        ops.push({ type: 'put', key, value: randomValue(), lease, prevKv: chance(0.5) });
      } else if (r < 0.7) {
        const sel: Sel = chance(0.6) ? { kind: 'key', key: pick(KEYS) } : { kind: 'prefix', prefix: pick(PREFIXES) };
        if (!conflicts && [...puts].some((k) => selHas(sel, k))) continue;
        dels.push(sel);
        ops.push({ type: 'delete', sel, prevKv: chance(0.5) });
      } else {
        ops.push({ type: 'range', sel: randomSel(model), limit: chance(0.3) ? int(1, 2) : 0, keysOnly: chance(0.2), countOnly: chance(0.1) });
      }
    }
    return ops;
  };
  return { compare, success: branch(), failure: branch() };
}
