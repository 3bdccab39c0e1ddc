/**
 * Silences with Alertmanager's model: a set of matchers and a time window during which alerts
 * whose labels match every matcher are not notified.
 */
import { randomUUID } from 'node:crypto';
import { ConflictError, InvalidArgumentError, NotFoundError } from '../../errors.js';
import { compileMatcher, parseDurationMs, type CompiledMatcher, type Matcher } from './labels.js';

/** A silence's state: `pending` before `startsAt`, `active` until `endsAt`, then `expired`. */
export type SilenceState = 'active' | 'pending' | 'expired';

/**
 * One silence in Alertmanager's API v2 shape (`GET /api/v2/silences`). Times are RFC 3339;
 * `status.state` is computed when the silence is read.
 */
export interface Silence {
  id: string;
  matchers: Matcher[];
  startsAt: string;
  endsAt: string;
  updatedAt: string;
  createdBy: string;
  comment: string;
  status: { state: SilenceState };
}

/**
 * What {@link Silences.add} takes. `startsAt` defaults to now; give `endsAt` or `durationMs`.
 * With an `id` (a silence read back from the store) the silence is stored under that id,
 * replacing any silence with the same id. `isEqual` defaults to true on each matcher.
 */
export interface SilenceInput {
  id?: string;
  matchers: Array<{ name: string; value: string; isRegex?: boolean; isEqual?: boolean }>;
  startsAt?: string;
  endsAt?: string;
  durationMs?: number;
  createdBy?: string;
  comment?: string;
  updatedAt?: string;
}

interface Stored {
  id: string;
  matchers: CompiledMatcher[];
  startsAtMs: number;
  endsAtMs: number;
  updatedAtMs: number;
  createdBy: string;
  comment: string;
}

/** How long expired silences are kept before {@link Silences.gc} drops them: Alertmanager's default retention, 120 h. */
export const SILENCE_RETENTION_MS = 120 * 3_600_000;

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

function parseTimeField(v: unknown, field: string): number {
  if (typeof v !== 'string' || Number.isNaN(Date.parse(v))) throw new InvalidArgumentError(`silence ${field}: expected an RFC 3339 time, got ${JSON.stringify(v)}`);
  return Date.parse(v);
}

/**
 * Checks a silence as Alertmanager does and compiles its matchers.
 * @throws InvalidArgumentError: no matchers, a bad label name, an invalid RE2 regex, all
 *   matchers matching the empty string (the silence would mute every alert), `endsAt` not after
 *   `startsAt`, a bad time.
 */
function validate(input: SilenceInput, nowMs: number): Stored {
  if (input === null || typeof input !== 'object') throw new InvalidArgumentError('silence: expected an object');
  if (!Array.isArray(input.matchers) || input.matchers.length === 0) throw new InvalidArgumentError('silence matchers: at least one matcher is required');
  const matchers = input.matchers.map((m, i) => {
    if (m === null || typeof m !== 'object') throw new InvalidArgumentError(`silence matchers[${i}]: expected {name, value, isRegex, isEqual}`);
    if (m.isRegex !== undefined && typeof m.isRegex !== 'boolean') throw new InvalidArgumentError(`silence matchers[${i}].isRegex: expected a boolean`);
    if (m.isEqual !== undefined && typeof m.isEqual !== 'boolean') throw new InvalidArgumentError(`silence matchers[${i}].isEqual: expected a boolean`);
    return compileMatcher({ name: m.name, value: m.value, isRegex: m.isRegex ?? false, isEqual: m.isEqual ?? true }, `silence matchers[${i}]`);
  });
  if (matchers.every((m) => m.matches(''))) {
    throw new InvalidArgumentError('silence matchers: at least one matcher must not match the empty string (this silence would mute every alert)');
  }
  const startsAtMs = input.startsAt === undefined ? nowMs : parseTimeField(input.startsAt, 'startsAt');
  let endsAtMs: number;
  if (input.endsAt !== undefined) endsAtMs = parseTimeField(input.endsAt, 'endsAt');
  else if (input.durationMs !== undefined) {
    if (typeof input.durationMs !== 'number' || !Number.isFinite(input.durationMs) || input.durationMs <= 0) throw new InvalidArgumentError('silence duration: must be positive');
    endsAtMs = startsAtMs + input.durationMs;
  } else throw new InvalidArgumentError('silence endsAt: an end time (or a duration) is required');
  if (endsAtMs <= startsAtMs) throw new InvalidArgumentError(`silence endsAt: ${iso(endsAtMs)} is not after startsAt ${iso(startsAtMs)}`);
  if (input.createdBy !== undefined && typeof input.createdBy !== 'string') throw new InvalidArgumentError('silence createdBy: expected a string');
  if (input.comment !== undefined && typeof input.comment !== 'string') throw new InvalidArgumentError('silence comment: expected a string');
  if (input.id !== undefined && (typeof input.id !== 'string' || input.id === '')) throw new InvalidArgumentError('silence id: expected a non-empty string');
  return {
    id: input.id ?? randomUUID(),
    matchers,
    startsAtMs,
    endsAtMs,
    updatedAtMs: input.updatedAt === undefined ? nowMs : parseTimeField(input.updatedAt, 'updatedAt'),
    createdBy: input.createdBy ?? '',
    comment: input.comment ?? '',
  };
}

function stateAt(s: Stored, nowMs: number): SilenceState {
  if (nowMs >= s.endsAtMs) return 'expired';
  if (nowMs < s.startsAtMs) return 'pending';
  return 'active';
}

function view(s: Stored, nowMs: number): Silence {
  return {
    id: s.id,
    matchers: s.matchers.map((m) => ({ name: m.name, value: m.value, isRegex: m.isRegex, isEqual: m.isEqual })),
    startsAt: iso(s.startsAtMs),
    endsAt: iso(s.endsAtMs),
    updatedAt: iso(s.updatedAtMs),
    createdBy: s.createdBy,
    comment: s.comment,
    status: { state: stateAt(s, nowMs) },
  };
}

/**
 * The in-memory set of silences a node applies. The node persists each silence as one kv key
 * (`JSON.stringify(silences.get(id))`) and replays store changes with {@link Silences.add}
 * (`Silences.fromJSON(value)` gives the input back) and {@link Silences.remove}.
 * Times are taken from `now()` (ms since the epoch), injectable for tests.
 *
 * @example
 * const s = new Silences();
 * const { id } = s.add({ matchers: [{ name: 'alertname', value: 'HighLatency' }], durationMs: 2 * 3600_000, createdBy: 'ops' });
 * s.mutes({ alertname: 'HighLatency', job: 'api' }); // → [id]
 */
export class Silences {
  private readonly byId = new Map<string, Stored>();
  private readonly now: () => number;

  constructor(opts: { now?: () => number } = {}) {
    this.now = opts.now ?? Date.now;
  }

  /**
   * Adds a silence (or, with an `id` already present, replaces it) and returns it.
   * @throws InvalidArgumentError when the silence is invalid (see Alertmanager's rules), or is
   *   new (no `id`) and ends in the past: nothing is changed then.
   */
  add(input: SilenceInput): Silence {
    const now = this.now();
    const s = validate(input, now);
    // As Alertmanager's API: a new silence must end in the future. One given with its id is
    // being restored from the store and may have expired already.
    if (input.id === undefined && s.endsAtMs <= now) throw new InvalidArgumentError(`silence endsAt: ${iso(s.endsAtMs)} is in the past`);
    this.byId.set(s.id, s);
    return view(s, now);
  }

  /**
   * Expires a silence now, as Alertmanager does: an active one ends now, a pending one starts
   * and ends now. Returns the expired silence.
   * @throws NotFoundError for an unknown id; ConflictError when it has already expired.
   */
  expire(id: string): Silence {
    const s = this.byId.get(id);
    if (s === undefined) throw new NotFoundError(`silence ${id} not found`, { id });
    const now = this.now();
    const state = stateAt(s, now);
    if (state === 'expired') throw new ConflictError(`silence ${id} has already expired`, { id });
    if (state === 'pending') s.startsAtMs = now;
    s.endsAtMs = now;
    s.updatedAtMs = now;
    return view(s, now);
  }

  /** Forgets a silence altogether (the node calls it when the silence's kv key is deleted). Returns whether it existed. */
  remove(id: string): boolean {
    return this.byId.delete(id);
  }

  /** The silence with this id, or undefined. */
  get(id: string): Silence | undefined {
    const s = this.byId.get(id);
    return s === undefined ? undefined : view(s, this.now());
  }

  /** Every silence (optionally only those in `state`), active first, then pending, then expired, each by `endsAt`. */
  list(state?: SilenceState): Silence[] {
    const now = this.now();
    const order: Record<SilenceState, number> = { active: 0, pending: 1, expired: 2 };
    return [...this.byId.values()]
      .map((s) => view(s, now))
      .filter((s) => state === undefined || s.status.state === state)
      .sort((a, b) => order[a.status.state] - order[b.status.state] || Date.parse(a.endsAt) - Date.parse(b.endsAt));
  }

  /** The ids of the active silences that mute an alert with these labels (empty: not silenced). */
  mutes(labels: Record<string, string>): string[] {
    const now = this.now();
    const ids: string[] = [];
    for (const s of this.byId.values()) {
      if (stateAt(s, now) !== 'active') continue;
      if (s.matchers.every((m) => m.matches(labels[m.name] ?? ''))) ids.push(s.id);
    }
    return ids;
  }

  /** Drops silences expired for longer than `retentionMs` (default 120 h, as Alertmanager). Returns their ids. */
  gc(retentionMs = SILENCE_RETENTION_MS): string[] {
    const cutoff = this.now() - retentionMs;
    const gone: string[] = [];
    for (const [id, s] of this.byId) {
      if (s.endsAtMs < cutoff) {
        this.byId.delete(id);
        gone.push(id);
      }
    }
    return gone;
  }

  /** Number of silences held (any state). */
  get size(): number {
    return this.byId.size;
  }

  /** The silence as the JSON the node stores under its kv key (the API shape; `status` is recomputed on load). */
  static toJSON(s: Silence): string {
    return JSON.stringify(s);
  }

  /**
   * Parses a stored silence (a JSON string or an already parsed object) into the input that
   * {@link Silences.add} takes, keeping its id and times.
   * @throws InvalidArgumentError when it is not a silence.
   */
  static fromJSON(json: string | unknown): SilenceInput {
    let o: unknown = json;
    if (typeof json === 'string') {
      try {
        o = JSON.parse(json);
      } catch (err) {
        throw new InvalidArgumentError(`silence: invalid JSON: ${(err as Error).message}`);
      }
    }
    if (o === null || typeof o !== 'object' || Array.isArray(o)) throw new InvalidArgumentError('silence: expected an object');
    const r = o as Record<string, unknown>;
    const input: SilenceInput = {
      matchers: r.matchers as SilenceInput['matchers'],
      startsAt: r.startsAt as string,
      endsAt: r.endsAt as string,
      createdBy: (r.createdBy as string | undefined) ?? '',
      comment: (r.comment as string | undefined) ?? '',
    };
    if (r.id !== undefined) input.id = r.id as string;
    if (r.updatedAt !== undefined) input.updatedAt = r.updatedAt as string;
    validate(input, Date.now());
    return input;
  }
}

const REQUEST_FIELDS = ['matchers', 'startsAt', 'endsAt', 'duration', 'comment'];

/**
 * Turns the body of `POST /v1/alerts/silences` into what {@link Silences.add} takes:
 * `{"matchers":[{"name","value","isRegex"?,"isEqual"?}],"startsAt"?,"endsAt"?|"duration"?:"2h","comment"?}`.
 * `createdBy` comes from the caller's principal, never from the body.
 * @throws InvalidArgumentError for an unknown field, a field of the wrong type, both or neither
 *   of `endsAt` and `duration`, or a bad duration. Matchers and times are checked by `add`.
 */
export function silenceInputFromRequest(body: unknown, createdBy: string): SilenceInput {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new InvalidArgumentError('silence: expected a JSON object with matchers and endsAt or duration');
  const o = body as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!REQUEST_FIELDS.includes(k)) throw new InvalidArgumentError(`silence: unknown field '${k}' (expected ${REQUEST_FIELDS.join(', ')})`);
  if (!Array.isArray(o.matchers)) throw new InvalidArgumentError('silence matchers: expected a list of {name, value, isRegex, isEqual}');
  const matchers = o.matchers.map((m: unknown, i) => {
    if (m === null || typeof m !== 'object' || Array.isArray(m)) throw new InvalidArgumentError(`silence matchers[${i}]: expected {name, value, isRegex, isEqual}`);
    const r = m as Record<string, unknown>;
    for (const k of Object.keys(r)) if (!['name', 'value', 'isRegex', 'isEqual'].includes(k)) throw new InvalidArgumentError(`silence matchers[${i}]: unknown field '${k}'`);
    if (typeof r.name !== 'string') throw new InvalidArgumentError(`silence matchers[${i}].name: expected a string`);
    if (typeof r.value !== 'string') throw new InvalidArgumentError(`silence matchers[${i}].value: expected a string`);
    return { name: r.name, value: r.value, isRegex: r.isRegex as boolean | undefined, isEqual: r.isEqual as boolean | undefined };
  });
  const str = (k: string): string | undefined => {
    const v = o[k];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'string') throw new InvalidArgumentError(`silence ${k}: expected a string`);
    return v;
  };
  const endsAt = str('endsAt');
  const duration = str('duration');
  if (endsAt !== undefined && duration !== undefined) throw new InvalidArgumentError('silence: give endsAt or duration, not both');
  if (endsAt === undefined && duration === undefined) throw new InvalidArgumentError('silence: an end time (endsAt) or a duration (e.g. "2h") is required');
  const input: SilenceInput = { matchers, createdBy, comment: str('comment') ?? '' };
  const startsAt = str('startsAt');
  if (startsAt !== undefined) input.startsAt = startsAt;
  if (endsAt !== undefined) input.endsAt = endsAt;
  if (duration !== undefined) {
    const ms = parseDurationMs(duration, 'silence duration');
    if (ms <= 0) throw new InvalidArgumentError('silence duration: must be positive');
    input.durationMs = ms;
  }
  return input;
}
