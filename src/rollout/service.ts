/**
 * Staged config rollouts (issue 16, DESIGN.md §10): a candidate value released step by step to
 * a share of the SDK clients that match a selector, baked, guarded by alert rules or PromQL
 * conditions, completed by writing it as the config's next version or rolled back at once.
 *
 * A rollout lives in the store as JSON under the system key `\0rollout/<config key>`, so it is
 * versioned, replicated and watched like any key; every transition is a compare-and-swap on
 * that key's `modRevision`, so two nodes (or a user and the driver) never both apply one.
 */
import { randomBytes } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { ConflictError, InvalidArgumentError, NotFoundError } from '../errors.js';
import { SYSTEM_PREFIX, prefixEnd, validateKey, type AuditContext, type KeyValue, type Store } from '../kv/index.js';
import { formatVersion } from '../config/index.js';
import { calibrateThreshold, MIN_CALIBRATION_REPORTS } from './calibration.js';
import { ROLLOUT_BUCKETS, parseSelector, shareThreshold } from './targeting.js';

/** Where rollouts are stored: `ROLLOUT_KEY_PREFIX + configKey`. */
export const ROLLOUT_KEY_PREFIX = `${SYSTEM_PREFIX}rollout/`;
/** The longest bake of one step: 30 days, in ms. */
export const MAX_BAKE_MS = 30 * 86_400_000;
/** The most steps a rollout may have. */
export const MAX_STEPS = 20;
/** The most guards a rollout may have. */
export const MAX_GUARDS = 20;
/** Transitions kept in a rollout's history (the oldest are dropped beyond it). */
export const MAX_HISTORY = 100;

/** The life cycle of a rollout; `running` and `paused` are active (they block plain writes and another rollout). */
export type RolloutState = 'running' | 'paused' | 'rolled_back' | 'completed' | 'aborted';

/** A guard: the name of an alerting rule (rolls back when one of its alerts is firing) or an inline PromQL condition (rolls back when it returns any sample). */
export type RolloutGuard = { alert: string } | { expr: string };

/** One transition of a rollout. `at` is ms since the epoch; `by` a principal or `system`; `cause` says why. */
export interface RolloutTransition {
  at: number;
  from: RolloutState | null;
  to: RolloutState;
  /** The step index after the transition. */
  step: number;
  by: string;
  cause: string;
}

/** A rollout as stored (plus `revision`, the modRevision of its key, when read). Times in ms since the epoch. */
export interface Rollout {
  /** Random id; part of each client's hash, so a new rollout draws new buckets. */
  id: string;
  key: string;
  /** The candidate value, base64 of the bytes the config write would store. */
  candidate: string;
  /** The config's version when the rollout started (what the clients outside the step keep). */
  baseVersion: number;
  /** Shares in percent, increasing, each in (0, 100]. */
  steps: number[];
  bakeMs: number;
  /** Label selector text ('' selects every client with an identity). */
  selector: string;
  guards: RolloutGuard[];
  state: RolloutState;
  /** Index into `steps` of the current step. */
  step: number;
  /**
   * The current step's threshold: clients whose bucket is below it (of 10,000) are in. Set when
   * the step starts, calibrated on the selected clients' reports (docs/rollout.md "Calibrated
   * steps"); absent in rollouts stored before calibration, which use the share's.
   */
  threshold?: number;
  /** When the current step's bake started (reset by resume and by each step change). */
  stepStartedAt: number;
  createdAt: number;
  createdBy: string;
  updatedAt: number;
  /** Set once the rollout completed: the config version that holds the candidate. */
  completedVersion?: number;
  history: RolloutTransition[];
  revision?: number;
}

/** What starting a rollout needs. `candidate` are the bytes to store (already encoded and checked against the namespace policy). */
export interface RolloutSpec {
  candidate: Uint8Array;
  steps: number[];
  bakeMs: number;
  selector?: string;
  guards?: RolloutGuard[];
}

/** Checks guards against the alert engine; the node provides it (the rollout module does not import obs). */
export interface GuardChecker {
  /** @throws InvalidArgumentError when the guard names no alerting rule, or its expression does not parse. */
  validate(guard: RolloutGuard): void;
  /** A sentence saying why the guard is firing now, or undefined when it is not. May throw (the driver logs and retries). */
  firing(guard: RolloutGuard): Promise<string | undefined>;
}

/** Options of a {@link RolloutService}. */
export interface RolloutServiceOptions {
  store: Store;
  guards: GuardChecker;
  /** Writes an audit record with the cause of a transition (the node passes `AuditLog.note`). */
  note?: (e: { principal: string; action: string; outcome: 'ok'; key: string; revision: number; requestId?: string | null; source?: string | null; details: string }) => void;
  /** Told after an automatic rollback (the node sends a notification through the alert receivers). */
  onRolledBack?: (r: Rollout, cause: string) => void;
  /** Logs driver failures. */
  logger?: { warn(obj: object, msg: string): void; info(obj: object, msg: string): void };
  now?: () => number;
  /**
   * The buckets of the clients of a rollout that reported matching its selector (the node reads
   * the adoption table); used to calibrate each step's threshold as it starts. Without it, every
   * threshold is the share's.
   */
  selectedBuckets?: (rolloutId: string) => Promise<number[]>;
}

function isActive(r: Rollout | undefined): r is Rollout {
  return r !== undefined && (r.state === 'running' || r.state === 'paused');
}

/** The share (percent) clients get the candidate at: the current step's while active, 0 otherwise. */
export function rolloutShare(r: Rollout): number {
  return isActive(r) ? (r.steps[r.step] ?? 0) : 0;
}

/** The bucket threshold clients are targeted with now: the stored (calibrated) one while active, else the share's; 0 once finished. */
export function rolloutThreshold(r: Rollout): number {
  if (!isActive(r)) return 0;
  return r.threshold ?? shareThreshold(r.steps[r.step] ?? 0);
}

function checkSteps(steps: unknown): number[] {
  if (!Array.isArray(steps) || steps.length === 0) throw new InvalidArgumentError("'steps' must be a non-empty array of percentages, e.g. [1, 10, 50, 100]", { field: 'steps' });
  if (steps.length > MAX_STEPS) throw new InvalidArgumentError(`'steps' has ${steps.length} steps; at most ${MAX_STEPS}`, { field: 'steps' });
  let prev = 0;
  for (const s of steps) {
    if (typeof s !== 'number' || !Number.isFinite(s) || s <= 0 || s > 100) {
      throw new InvalidArgumentError(`step ${JSON.stringify(s)} is not a percentage above 0 and at most 100`, { field: 'steps' });
    }
    if (s <= prev) throw new InvalidArgumentError(`steps must increase: ${s} % comes after ${prev} %`, { field: 'steps' });
    prev = s;
  }
  return steps as number[];
}

function checkGuards(guards: unknown, checker: GuardChecker): RolloutGuard[] {
  if (guards === undefined) return [];
  if (!Array.isArray(guards)) throw new InvalidArgumentError("'guards' must be an array of {\"alert\": NAME} or {\"expr\": PROMQL}", { field: 'guards' });
  if (guards.length > MAX_GUARDS) throw new InvalidArgumentError(`at most ${MAX_GUARDS} guards`, { field: 'guards' });
  return guards.map((g: unknown) => {
    const o = g as Record<string, unknown> | null;
    let guard: RolloutGuard;
    if (o !== null && typeof o === 'object' && typeof o.alert === 'string' && Object.keys(o).length === 1) guard = { alert: o.alert };
    else if (o !== null && typeof o === 'object' && typeof o.expr === 'string' && Object.keys(o).length === 1) guard = { expr: o.expr };
    else throw new InvalidArgumentError(`guard ${JSON.stringify(g)} must be {"alert": NAME} or {"expr": PROMQL}`, { field: 'guards' });
    checker.validate(guard);
    return guard;
  });
}

/** A guard as text: the rule name, or `expr: …`. */
export function guardText(g: RolloutGuard): string {
  return 'alert' in g ? g.alert : `expr: ${g.expr}`;
}

/**
 * Stores, validates and drives rollouts. Routes call `start`, `get`, `pause`, `resume`,
 * `promote`, `abort`; the node calls {@link tick} on the one node that drives lease expiry.
 *
 * @example
 * const rollouts = new RolloutService({ store, guards });
 * await rollouts.start('app/checkout', { candidate, steps: [1, 10, 50, 100], bakeMs: 600_000, selector: 'region=eu', guards: [{ alert: 'CheckoutErrorRateHigh' }] }, audit);
 */
export class RolloutService {
  private readonly now: () => number;
  private ticking: Promise<void> | undefined;
  /** Aborted by {@link stop}: ends held long polls so the HTTP server can close. */
  private readonly stopped = new AbortController();

  constructor(private readonly opts: RolloutServiceOptions) {
    this.now = opts.now ?? Date.now;
    // Every held long poll listens on it: thousands of SDK clients are expected.
    setMaxListeners(0, this.stopped.signal);
  }

  /** The latest rollout of `key` (active or finished), or undefined when it never had one. */
  get(key: string): Rollout | undefined {
    const kv = this.opts.store.get(ROLLOUT_KEY_PREFIX + key);
    return kv === undefined ? undefined : decode(kv);
  }

  /** The running or paused rollout of `key`, if any. */
  active(key: string): Rollout | undefined {
    const r = this.get(key);
    return isActive(r) ? r : undefined;
  }

  /**
   * Refuses a plain write to a key with an active rollout.
   * @throws ConflictError (details `{key, rollout, state}`) naming the way out.
   */
  checkPlainWrite(key: string): void {
    const r = this.active(key);
    if (r === undefined) return;
    throw new ConflictError(
      `config '${key}' has a ${r.state} rollout (${r.id}); a plain write would race it: abort it first (POST /v1/configs/${key}/rollouts/current/abort, or send "abortRollout": true with the write), or let it complete`,
      { key, rollout: r.id, state: r.state },
    );
  }

  /** Active rollouts of keys under `prefix`, in key order. */
  async listActive(prefix: string): Promise<Rollout[]> {
    const start = ROLLOUT_KEY_PREFIX + prefix;
    const res = await this.opts.store.range(start, prefixEnd(start));
    return res.kvs.map(decode).filter(isActive);
  }

  /**
   * Resolves when a rollout of a key under `prefix` is written after `afterRevision` (at once when
   * one already was), or after `timeoutMs`, or when `signal` aborts: the SDK's long poll, so a
   * rollback reaches waiting clients as soon as it is committed. Resolves with whether one changed.
   */
  async waitForChange(prefix: string, afterRevision: number, timeoutMs: number, signal?: AbortSignal): Promise<boolean> {
    const start = ROLLOUT_KEY_PREFIX + prefix;
    const changed = new Promise<boolean>((resolve) => {
      const done = (v: boolean): void => {
        unsubscribe();
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        halt.removeEventListener('abort', onAbort);
        resolve(v);
      };
      const onAbort = (): void => done(false);
      const halt = this.stopped.signal;
      // Subscribed before the range below, so a write between the two is not missed.
      const unsubscribe = this.opts.store.subscribe((g) => {
        if (g.revision > afterRevision && g.events.some((e) => e.kv.key.startsWith(start))) done(true);
      });
      const timer = setTimeout(() => done(false), timeoutMs);
      signal?.addEventListener('abort', onAbort, { once: true });
      halt.addEventListener('abort', onAbort, { once: true });
      if (halt.aborted) done(false);
      this.opts.store
        .range(start, prefixEnd(start), { keysOnly: true })
        .then((res) => {
          if (res.kvs.some((kv) => kv.modRevision > afterRevision)) done(true);
        })
        .catch(() => done(false));
    });
    return changed;
  }

  /** Ends every held {@link waitForChange} (node shutdown). */
  stop(): void {
    this.stopped.abort();
  }

  /**
   * Starts a rollout of `key` with the given candidate.
   * @throws InvalidArgumentError for bad steps, bake, selector or guards; NotFoundError when the
   * config does not exist; ConflictError when the key has an active rollout or a guard is
   * already firing (then nothing is written).
   */
  async start(key: string, spec: RolloutSpec, audit: AuditContext): Promise<Rollout> {
    validateKey(key);
    const steps = checkSteps(spec.steps);
    if (typeof spec.bakeMs !== 'number' || !Number.isSafeInteger(spec.bakeMs) || spec.bakeMs <= 0 || spec.bakeMs > MAX_BAKE_MS) {
      throw new InvalidArgumentError(`the bake must be above 0 and at most 30 days (got ${String(spec.bakeMs)} ms)`, { field: 'bake' });
    }
    const selector = spec.selector ?? '';
    parseSelector(selector);
    const guards = checkGuards(spec.guards, this.opts.guards);
    const config = this.opts.store.get(key);
    if (config === undefined) throw new NotFoundError(`config '${key}' not found: a rollout changes an existing config; write its first version plainly`, { key });
    const prev = this.opts.store.get(ROLLOUT_KEY_PREFIX + key);
    const prevRollout = prev === undefined ? undefined : decode(prev);
    if (isActive(prevRollout)) {
      throw new ConflictError(`config '${key}' already has a ${prevRollout.state} rollout (${prevRollout.id}); abort it or let it finish first`, { key, rollout: prevRollout.id, state: prevRollout.state });
    }
    for (const g of guards) {
      const why = await this.opts.guards.firing(g);
      if (why !== undefined) throw new ConflictError(`guard ${guardText(g)} is already firing (${why}); a rollout cannot start under it`, { key, guard: guardText(g) });
    }
    const now = this.now();
    const r: Rollout = {
      id: randomBytes(8).toString('hex'),
      key,
      candidate: Buffer.from(spec.candidate).toString('base64'),
      baseVersion: config.version,
      steps,
      bakeMs: spec.bakeMs,
      selector,
      guards,
      state: 'running',
      step: 0,
      // The buckets of a new rollout id are unknown until clients see it: the first step uses the share's threshold.
      threshold: shareThreshold(steps[0] as number),
      stepStartedAt: now,
      createdAt: now,
      createdBy: audit.principal,
      updatedAt: now,
      history: [{ at: now, from: null, to: 'running', step: 0, by: audit.principal, cause: `started at ${steps[0]} % from ${formatVersion(config.version)}` }],
    };
    return this.write(r, prev?.modRevision ?? 0, audit, 'rollout.start');
  }

  /** Pauses a running rollout: no step advances until resume (guards still roll it back). @throws NotFoundError, ConflictError. */
  pause(key: string, audit: AuditContext): Promise<Rollout> {
    return this.transition(key, audit, 'pause', ['running'], () => ({ to: 'paused', cause: 'paused' }), (r) => r);
  }

  /** Resumes a paused rollout; the current step's bake starts again. @throws NotFoundError, ConflictError. */
  resume(key: string, audit: AuditContext): Promise<Rollout> {
    return this.transition(key, audit, 'resume', ['paused'], () => ({ to: 'running', cause: 'resumed; the bake of the step starts again' }), (r) => ({ ...r, stepStartedAt: this.now() }));
  }

  /**
   * Promotes: the next step starts now (or, with `full` or on the last step, the rollout
   * completes: the candidate becomes the config's next version).
   * @throws NotFoundError; ConflictError unless running or paused.
   */
  async promote(key: string, audit: AuditContext, full = false): Promise<Rollout> {
    const r = this.requireActive(key, 'promote');
    if (full || r.step >= r.steps.length - 1) return this.complete(r, audit, 'promoted to completion');
    const step = r.step + 1;
    const cal = await this.calibrate(r, step);
    return this.transition(
      key,
      audit,
      'promote',
      ['running', 'paused'],
      () => ({ to: 'running', cause: `promoted to ${r.steps[step]} %${cal.note}`, step }),
      (x) => ({ ...x, step, threshold: cal.threshold, stepStartedAt: this.now() }),
      r.revision,
    );
  }

  /** Aborts: every client returns to the current version; nothing is written to the config. @throws NotFoundError, ConflictError. */
  abort(key: string, audit: AuditContext, cause = 'aborted'): Promise<Rollout> {
    return this.transition(key, audit, 'abort', ['running', 'paused'], () => ({ to: 'aborted', cause }), (r) => r);
  }

  /**
   * One pass of the driver (call it on one node only, every second or so): rolls back a rollout
   * whose guard fires, advances one whose bake has passed (measured from the stored step start,
   * so a new driver after a failover never shortens a bake), completes one past its last step.
   */
  tick(): Promise<void> {
    this.ticking ??= this.drive().finally(() => (this.ticking = undefined));
    return this.ticking;
  }

  private async drive(): Promise<void> {
    for (const r of await this.listActive('')) {
      try {
        await this.driveOne(r);
      } catch (err) {
        // A conflict means a user changed it between the read and the write: the next tick sees the new state.
        if (!(err instanceof ConflictError)) this.opts.logger?.warn({ err, key: r.key, rollout: r.id }, 'rollout driver step failed; retrying at the next tick');
      }
    }
  }

  private async driveOne(r: Rollout): Promise<void> {
    const sys: AuditContext = { principal: 'system', action: 'rollout.driver', source: 'rollout driver' };
    for (const g of r.guards) {
      const why = await this.opts.guards.firing(g);
      if (why === undefined) continue;
      const cause = `guard ${guardText(g)} fired during the bake of step ${r.step + 1} (${r.steps[r.step]} %): ${why}`;
      const out = await this.transition(r.key, { ...sys, action: 'rollout.rolled_back' }, 'rolled_back', ['running', 'paused'], () => ({ to: 'rolled_back', cause }), (x) => x, r.revision);
      this.opts.logger?.info({ key: r.key, rollout: r.id, cause }, 'rollout rolled back');
      this.opts.onRolledBack?.(out, cause);
      return;
    }
    if (r.state !== 'running' || this.now() - r.stepStartedAt < r.bakeMs) return;
    if (r.step >= r.steps.length - 1) {
      await this.complete(r, { ...sys, action: 'rollout.complete' }, `the last step baked ${r.bakeMs} ms with no guard firing`);
      return;
    }
    const step = r.step + 1;
    const cal = await this.calibrate(r, step);
    await this.transition(
      r.key,
      { ...sys, action: 'rollout.advance' },
      'advance',
      ['running'],
      () => ({ to: 'running', cause: `step ${r.step + 1} (${r.steps[r.step]} %) baked ${r.bakeMs} ms with no guard firing; now ${r.steps[step]} %${cal.note}`, step }),
      (x) => ({ ...x, step, threshold: cal.threshold, stepStartedAt: this.now() }),
      r.revision,
    );
  }

  /**
   * The threshold of step `step` of `r` as it starts, from the selected clients' reports
   * (docs/rollout.md "Calibrated steps"), never below the current one; and a note for the history.
   */
  private async calibrate(r: Rollout, step: number): Promise<{ threshold: number; note: string }> {
    const share = r.steps[step] as number;
    const buckets = share >= 100 || this.opts.selectedBuckets === undefined ? [] : await this.opts.selectedBuckets(r.id);
    const c = calibrateThreshold(buckets, share, rolloutThreshold(r));
    if (share >= 100) return { threshold: c.threshold, note: '' };
    const note = c.calibrated
      ? ` (threshold ${c.threshold} of ${ROLLOUT_BUCKETS} buckets, calibrated on ${c.reports} selected clients' reports)`
      : ` (threshold ${c.threshold} of ${ROLLOUT_BUCKETS} buckets, the share's: ${c.reports} selected clients reported, fewer than ${MIN_CALIBRATION_REPORTS})`;
    return { threshold: c.threshold, note };
  }

  private requireActive(key: string, verb: string): Rollout {
    validateKey(key);
    const r: Rollout | undefined = this.get(key);
    if (r === undefined) throw new NotFoundError(`config '${key}' has no rollout`, { key });
    if (r.state !== 'running' && r.state !== 'paused') throw new ConflictError(`cannot ${verb} the rollout of '${key}': it is ${r.state.replace('_', ' ')}`, { key, rollout: r.id, state: r.state });
    return r;
  }

  /** Writes the candidate as the config's next version and marks the rollout completed, in one txn. */
  private async complete(r: Rollout, audit: AuditContext, cause: string): Promise<Rollout> {
    const store = this.opts.store;
    const config = store.get(r.key);
    const version = (config?.version ?? 0) + 1;
    const now = this.now();
    const next: Rollout = this.withTransition({ ...r, completedVersion: version }, 'completed', r.step, audit.principal, cause, now);
    const res = await store.txn(
      {
        compare: [
          { key: ROLLOUT_KEY_PREFIX + r.key, target: 'modRevision', result: '=', operand: r.revision ?? 0 },
          { key: r.key, target: 'version', result: '=', operand: config?.version ?? 0 },
        ],
        success: [
          { type: 'put', key: r.key, value: Buffer.from(r.candidate, 'base64'), ignoreLease: config !== undefined && config.lease !== 0 },
          { type: 'put', key: ROLLOUT_KEY_PREFIX + r.key, value: encode(next) },
        ],
        failure: [],
      },
      { meta: JSON.stringify({ event: 'config_updated', rollout: r.id }), audit: { ...audit, action: 'rollout.complete' } },
    );
    if (!res.succeeded) throw new ConflictError(`the rollout of '${r.key}' or its config changed while completing; read it and retry`, { key: r.key });
    await store.waitForRevision(res.revision);
    this.noteTransition(next, audit, 'rollout.complete', res.revision);
    return { ...next, revision: res.revision };
  }

  private async transition(
    key: string,
    audit: AuditContext,
    verb: string,
    from: RolloutState[],
    how: (r: Rollout) => { to: RolloutState; cause: string; step?: number },
    mutate: (r: Rollout) => Rollout,
    expectRevision?: number,
  ): Promise<Rollout> {
    const r = verb === 'rolled_back' || verb === 'advance' ? this.get(key) : this.requireActive(key, verb);
    if (r === undefined || !from.includes(r.state)) {
      throw new ConflictError(`cannot ${verb} the rollout of '${key}': it is ${r?.state ?? 'gone'}`, { key, state: r?.state ?? null });
    }
    if (expectRevision !== undefined && r.revision !== expectRevision) {
      throw new ConflictError(`cannot ${verb} the rollout of '${key}': it changed concurrently; read it and retry`, { key, state: r.state });
    }
    const t = how(r);
    const next = this.withTransition(mutate(r), t.to, t.step ?? r.step, audit.principal, t.cause, this.now());
    return this.write(next, r.revision ?? 0, audit, `rollout.${verb}`);
  }

  private withTransition(r: Rollout, to: RolloutState, step: number, by: string, cause: string, at: number): Rollout {
    const history = [...r.history, { at, from: r.state, to, step, by, cause }].slice(-MAX_HISTORY);
    const out: Rollout = { ...r, state: to, step, updatedAt: at, history };
    delete out.revision;
    return out;
  }

  /** Compare-and-swap of the rollout key on its modRevision (0: must not exist). */
  private async write(r: Rollout, expectModRevision: number, audit: AuditContext, action: string): Promise<Rollout> {
    const key = ROLLOUT_KEY_PREFIX + r.key;
    const res = await this.opts.store.txn(
      { compare: [{ key, target: 'modRevision', result: '=', operand: expectModRevision }], success: [{ type: 'put', key, value: encode(r) }], failure: [] },
      // The audit record is the note below (on the config key, with the cause), not one on the system key.
      { meta: JSON.stringify({ event: action, rollout: r.id }) },
    );
    if (!res.succeeded) throw new ConflictError(`the rollout of '${r.key}' changed concurrently; read it and retry`, { key: r.key });
    await this.opts.store.waitForRevision(res.revision);
    this.noteTransition(r, audit, action, res.revision);
    return { ...r, revision: res.revision };
  }

  private noteTransition(r: Rollout, audit: AuditContext, action: string, revision: number): void {
    const last = r.history[r.history.length - 1];
    this.opts.note?.({
      principal: audit.principal,
      action,
      outcome: 'ok',
      key: r.key,
      revision,
      requestId: audit.requestId ?? null,
      source: audit.source ?? null,
      details: JSON.stringify({ rollout: r.id, state: r.state, step: r.step, share: r.steps[r.step], cause: last?.cause ?? '' }),
    });
  }
}

function encode(r: Rollout): Uint8Array {
  const { revision: _revision, ...stored } = r;
  return Buffer.from(JSON.stringify(stored));
}

function decode(kv: KeyValue): Rollout {
  const r = JSON.parse(Buffer.from(kv.value).toString('utf8')) as Rollout;
  return { ...r, revision: kv.modRevision };
}
