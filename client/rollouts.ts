/**
 * Staged config rollouts (issue 16, docs/rollout.md): start, read, pause, resume, promote and
 * abort a rollout of a config key, and the targeting the SDK's live config evaluates locally
 * (a stable hash of key, rollout id and client id below the step's threshold, within a selector).
 */
import { InvalidArgumentError } from '../src/errors.js';
import { matchesSelector, parseSelector, rolloutBucket, shareThreshold } from '../src/rollout/targeting.js';
import type { HttpTransport } from './transport.js';
import { fromBase64, isPathUnsafeKey, utf8 } from './values.js';

export { parseSelector, matchesSelector, rolloutBucket, isTargeted, ROLLOUT_BUCKETS } from '../src/rollout/targeting.js';

/** Who a client is for targeting: a stable id (kept across restarts) and labels the selector matches. */
export interface ClientIdentity {
  id: string;
  labels?: Record<string, string>;
}

/** The life cycle of a rollout; `running` and `paused` are active. */
export type RolloutState = 'running' | 'paused' | 'rolled_back' | 'completed' | 'aborted';

/** A guard: an alerting rule's name, or an inline PromQL condition (fires when it returns any sample). */
export type RolloutGuard = { alert: string } | { expr: string };

/** One transition of a rollout; `by` is a principal or `system`, `cause` says why. Times ISO 8601. */
export interface RolloutTransition {
  at: string;
  from: RolloutState | null;
  to: RolloutState;
  step: number;
  share: number;
  by: string;
  cause: string;
}

/**
 * A rollout as the server shows it (snake_case, like the config API). `share` is the percentage
 * of selected clients on the candidate now (0 unless active); `step` indexes `steps`.
 * `adoption` (from `rollouts.get`) counts clients by the variant they reported; `guard_states`
 * says which guards are firing.
 */
export interface Rollout {
  id: string;
  key: string;
  state: RolloutState;
  step: number;
  share: number;
  /**
   * Clients whose bucket (of 10,000) is below it are in the current step: calibrated by the
   * server on the selected clients' reports as the step starts (docs/rollout.md "Calibrated
   * steps"); 0 once finished. Absent from older servers: then the share's (`share × 100`).
   */
  threshold?: number;
  steps: number[];
  bake_ms: number;
  selector: string;
  guards: RolloutGuard[];
  base_version: string;
  candidate: { value: unknown; encoding?: 'base64' };
  step_started_at: string;
  bake_ends_at?: string;
  created_at: string;
  created_by: string;
  updated_at: string;
  completed_version?: string;
  revision: number;
  history: RolloutTransition[];
  adoption?: Record<string, number>;
  guard_states?: { guard: string; firing: boolean; reason?: string }[];
}

/** What starting a rollout takes. `bake` is a duration (`"10m"`) or ms; `steps` are percentages (`[1, 10, 50, 100]` or `["1%", …]`). */
export interface RolloutStart {
  value: unknown;
  steps: (number | string)[];
  bake: string | number;
  selector?: string;
  guards?: RolloutGuard[];
}

function path(key: string, suffix: string): string {
  if (key === '' || isPathUnsafeKey(key)) throw new InvalidArgumentError(`'${key}' cannot be used as a config key`);
  return `/v1/configs/${encodeURIComponent(key)}${suffix}`;
}

/** The bytes of a rollout's candidate as a config write would store them. */
export function candidateBytes(r: Pick<Rollout, 'candidate'>): Uint8Array {
  const c = r.candidate;
  if (c.encoding === 'base64' && typeof c.value === 'string') return fromBase64(c.value);
  return utf8(typeof c.value === 'string' ? c.value : JSON.stringify(c.value));
}

/**
 * Where `identity` stands in a rollout: its stable `bucket` (hash of key, rollout id and client
 * id, in [0, 10000)), whether its labels match the selector (`selected`), and whether it gets
 * the candidate now (`targeted`: selected, bucket below the threshold, and the rollout active).
 * The SDK reports `bucket` and `selected` with the variant it applied, so the server can
 * calibrate the next step's threshold.
 */
export function rolloutPlacement(
  r: Pick<Rollout, 'key' | 'id' | 'share' | 'selector' | 'state'> & { threshold?: number },
  identity: ClientIdentity,
): { bucket: number; selected: boolean; targeted: boolean } {
  const bucket = rolloutBucket(r.key, r.id, identity.id);
  const selected = matchesSelector(parseSelector(r.selector), identity.labels ?? {});
  const active = r.state === 'running' || r.state === 'paused';
  const threshold = r.threshold ?? shareThreshold(r.share);
  return { bucket, selected, targeted: active && selected && bucket < threshold };
}

/** Whether `identity` gets the candidate of an active rollout now (false for a finished one). */
export function receivesCandidate(r: Pick<Rollout, 'key' | 'id' | 'share' | 'selector' | 'state'> & { threshold?: number }, identity: ClientIdentity): boolean {
  return rolloutPlacement(r, identity).targeted;
}

/** Rollout operations; reach them as `client.rollouts`. Every method throws the server's typed errors. */
export class RolloutsClient {
  constructor(private readonly http: HttpTransport) {}

  /**
   * Starts a rollout of `key`.
   * @throws InvalidArgumentError for bad steps, bake, selector, guard or a candidate the
   * namespace's schema refuses; ConflictError when a rollout is active or a guard is firing.
   */
  async start(key: string, spec: RolloutStart, opts: { signal?: AbortSignal } = {}): Promise<Rollout> {
    return (await this.http.request<Rollout>('POST', path(key, '/rollouts'), { body: spec, signal: opts.signal })).body;
  }

  /** The latest rollout of `key` with adoption and guard states. @throws NotFoundError when it never had one. */
  async get(key: string, opts: { signal?: AbortSignal } = {}): Promise<Rollout> {
    return (await this.http.request<Rollout>('GET', path(key, '/rollouts/current'), { signal: opts.signal })).body;
  }

  /** Pauses the active rollout. @throws NotFoundError; ConflictError unless running. */
  pause(key: string, opts: { signal?: AbortSignal } = {}): Promise<Rollout> {
    return this.act(key, 'pause', {}, opts.signal);
  }

  /** Resumes a paused rollout (its step bakes again from now). @throws NotFoundError; ConflictError unless paused. */
  resume(key: string, opts: { signal?: AbortSignal } = {}): Promise<Rollout> {
    return this.act(key, 'resume', {}, opts.signal);
  }

  /** Moves to the next step now, or with `full` completes at once. @throws NotFoundError; ConflictError unless active. */
  promote(key: string, opts: { full?: boolean; signal?: AbortSignal } = {}): Promise<Rollout> {
    return this.act(key, 'promote', opts.full === true ? { full: true } : {}, opts.signal);
  }

  /** Aborts: every client returns to the current version. @throws NotFoundError; ConflictError unless active. */
  abort(key: string, opts: { reason?: string; signal?: AbortSignal } = {}): Promise<Rollout> {
    return this.act(key, 'abort', opts.reason !== undefined ? { reason: opts.reason } : {}, opts.signal);
  }

  /** The active rollouts of keys under `prefix` (what live configs evaluate). */
  async list(prefix: string, opts: { signal?: AbortSignal } = {}): Promise<Rollout[]> {
    return (await this.http.request<{ rollouts: Rollout[] }>('GET', '/v1/rollouts', { query: { prefix }, signal: opts.signal })).body.rollouts;
  }

  /** Tells the server which variant this client applied (status shows adoption per version). */
  async report(
    r: { key: string; rollout: string; client: string; variant: 'candidate' | 'current'; bucket?: number; selected?: boolean },
    opts: { signal?: AbortSignal } = {},
  ): Promise<void> {
    await this.http.request('POST', '/v1/rollouts/report', { body: r, signal: opts.signal });
  }

  private async act(key: string, verb: string, body: Record<string, unknown>, signal: AbortSignal | undefined): Promise<Rollout> {
    return (await this.http.request<Rollout>('POST', path(key, `/rollouts/current/${verb}`), { body, signal })).body;
  }
}
