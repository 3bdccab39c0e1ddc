/**
 * Rollout targeting, pure and shared by the server (validation) and the SDK (evaluation): label
 * selectors in Kubernetes' set-based syntax and the stable hash that places a client in a step.
 * It imports nothing but the error catalogue, so the SDK can bundle it for browsers.
 */
import { InvalidArgumentError } from '../errors.js';

/** One requirement of a selector: `label=value`, `label!=value`, `label in (a,b)`, `label notin (a,b)`. */
export interface SelectorRequirement {
  label: string;
  op: 'in' | 'notin';
  values: string[];
}

/** The number of buckets a client hashes into: a step's share has a resolution of 0.01 %. */
export const ROLLOUT_BUCKETS = 10_000;

const LABEL_RE = /^[A-Za-z0-9_./-]{1,63}$/;
const VALUE_RE = /^[A-Za-z0-9_.:/@+-]{0,63}$/;

/**
 * Parses a label selector: requirements separated by commas, each `l=v` (or `l==v`), `l!=v`,
 * `l in (v1,v2)` or `l notin (v1,v2)` (Kubernetes' set-based selector syntax, without the bare
 * existence forms). The empty selector matches every client.
 * @throws InvalidArgumentError (field `selector`) saying what could not be parsed.
 */
export function parseSelector(text: string): SelectorRequirement[] {
  if (typeof text !== 'string') throw new InvalidArgumentError("'selector' must be a string", { field: 'selector' });
  const out: SelectorRequirement[] = [];
  let rest = text.trim();
  const bad = (why: string): never => {
    throw new InvalidArgumentError(`selector ${JSON.stringify(text)} does not parse: ${why}`, { field: 'selector' });
  };
  while (rest.length > 0) {
    let m = /^([^\s=!,()]+)\s+(in|notin)\s*\(([^)]*)\)\s*/.exec(rest);
    if (m !== null) {
      const values = (m[3] as string).split(',').map((v) => v.trim());
      if (values.length === 0 || values.some((v) => v === '')) bad(`empty value in the set of '${m[1] as string}'`);
      out.push({ label: m[1] as string, op: m[2] === 'in' ? 'in' : 'notin', values });
    } else {
      m = /^([^\s=!,()]+)\s*(==|=|!=)\s*([^\s,()]*)\s*/.exec(rest);
      if (m === null) bad(`expected 'label=value', 'label!=value', 'label in (…)' or 'label notin (…)' at ${JSON.stringify(rest)}`);
      const mm = m as RegExpExecArray;
      out.push({ label: mm[1] as string, op: mm[2] === '!=' ? 'notin' : 'in', values: [mm[3] as string] });
    }
    const req = out[out.length - 1] as SelectorRequirement;
    if (!LABEL_RE.test(req.label)) bad(`'${req.label}' is not a label name (letters, digits, '_', '.', '/', '-'; at most 63)`);
    for (const v of req.values) if (!VALUE_RE.test(v)) bad(`'${v}' is not a label value`);
    rest = rest.slice((m as RegExpExecArray)[0].length);
    if (rest.startsWith(',')) {
      rest = rest.slice(1).trimStart();
      if (rest.length === 0) bad('a trailing comma');
    } else if (rest.length > 0) bad(`expected ',' at ${JSON.stringify(rest)}`);
  }
  return out;
}

/** Whether a client's labels satisfy every requirement (a missing label matches `notin` and `!=`, as in Kubernetes). */
export function matchesSelector(selector: readonly SelectorRequirement[], labels: Readonly<Record<string, string>>): boolean {
  for (const r of selector) {
    const v = Object.hasOwn(labels, r.label) ? labels[r.label] : undefined;
    const inSet = v !== undefined && r.values.includes(v);
    if (r.op === 'in' ? !inSet : inSet) return false;
  }
  return true;
}

/**
 * The bucket of a client in a rollout, in `[0, ROLLOUT_BUCKETS)`: FNV-1a over the UTF-8 of
 * `key \n rolloutId \n clientId`, finished with murmur3's fmix32 so similar ids spread evenly.
 * It depends on nothing else, so a client keeps its bucket across restarts and stays in as a
 * step's share grows; a new rollout (new id) draws new buckets.
 */
export function rolloutBucket(key: string, rolloutId: string, clientId: string): number {
  const bytes = new TextEncoder().encode(`${key}\n${rolloutId}\n${clientId}`);
  let h = 0x811c9dc5;
  for (const b of bytes) h = Math.imul(h ^ b, 0x01000193);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return (h >>> 0) % ROLLOUT_BUCKETS;
}

/** The uncalibrated threshold of a step: `sharePercent` (0–100) of {@link ROLLOUT_BUCKETS}. */
export function shareThreshold(sharePercent: number): number {
  return Math.round(sharePercent * (ROLLOUT_BUCKETS / 100));
}

/** Whether a client with `bucket` is inside a step of `sharePercent` (0–100) by the hash alone (no calibration). */
export function inShare(bucket: number, sharePercent: number): boolean {
  return bucket < shareThreshold(sharePercent);
}

/**
 * Whether a client gets a rollout's candidate value: it matches the selector and its bucket is
 * below the step's threshold — the calibrated `threshold` (buckets, docs/rollout.md
 * "Calibrated steps") when the rollout carries one, else the share's {@link shareThreshold}.
 */
export function isTargeted(
  r: { key: string; id: string; share: number; threshold?: number; selector: string | readonly SelectorRequirement[] },
  identity: { id: string; labels?: Readonly<Record<string, string>> },
): boolean {
  const sel = typeof r.selector === 'string' ? parseSelector(r.selector) : r.selector;
  const threshold = r.threshold ?? shareThreshold(r.share);
  return matchesSelector(sel, identity.labels ?? {}) && rolloutBucket(r.key, r.id, identity.id) < threshold;
}
