/**
 * Alert shapes and the label primitives Alertmanager defines: fingerprints, label-set strings,
 * matchers (`a=b`, `a!=b`, `a=~re`, `a!~re`, RE2, fully anchored) and durations.
 */
import { RE2JS } from 're2js';
import { InvalidArgumentError } from '../../errors.js';

/**
 * One alert as Prometheus sends it to Alertmanager (`POST /api/v2/alerts`) and as the built-in
 * notifier receives it. Times are RFC 3339 strings. An alert whose `endsAt` is in the past is
 * resolved; one without `endsAt` is firing until the notifier's `resolve_timeout` passes.
 */
export interface NotifyAlert {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  startsAt: string;
  endsAt?: string;
  generatorURL?: string;
}

/** Label names as Prometheus and Alertmanager 0.25 accept them. */
export const LABEL_NAME_RE = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** Go's zero time as Alertmanager writes it for a firing alert's `endsAt` in a webhook payload. */
export const ZERO_TIME = '0001-01-01T00:00:00Z';

const GO_ZERO_MS = Date.parse(ZERO_TIME);

/**
 * A time (ms since the epoch) as Go's `time.RFC3339Nano` writes it in UTC, which is how
 * Alertmanager's payloads carry times: trailing zeros of the fraction dropped
 * (`2026-12-06T15:40:00Z`, `2026-12-06T15:40:00.12Z`).
 */
export function goTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.?0+Z$/, 'Z');
}

/**
 * The alert's fingerprint as Alertmanager computes it (prometheus/common `LabelSet.Fingerprint`:
 * FNV-1a 64 over the sorted name/value pairs, each followed by byte 0xff), as 16 hex digits.
 */
export function fingerprint(labels: Record<string, string>): string {
  // FNV-1a 64 in four 16-bit limbs: exact, and an order of magnitude cheaper than BigInt.
  // The prime is 2^40 + 0x1b3, so h * prime = h * 0x1b3 + (h << 40).
  let h0 = 0x2325;
  let h1 = 0x8422;
  let h2 = 0x9ce4;
  let h3 = 0xcbf2;
  const feed = (b: number): void => {
    h0 ^= b;
    const t0 = h0 * 0x1b3;
    let t1 = h1 * 0x1b3;
    let t2 = h2 * 0x1b3 + (h0 << 8);
    const t3 = h3 * 0x1b3 + (h1 << 8);
    t1 += t0 >>> 16;
    h0 = t0 & 0xffff;
    t2 += t1 >>> 16;
    h1 = t1 & 0xffff;
    h3 = (t3 + (t2 >>> 16)) & 0xffff;
    h2 = t2 & 0xffff;
  };
  const feedString = (s: string): void => {
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      if (c < 0x80) feed(c);
      else {
        for (const b of Buffer.from(s.slice(i))) feed(b);
        return;
      }
    }
  };
  for (const n of Object.keys(labels).sort()) {
    feedString(n);
    feed(0xff);
    feedString(labels[n] as string);
    feed(0xff);
  }
  const hex = (x: number): string => x.toString(16).padStart(4, '0');
  return hex(h3) + hex(h2) + hex(h1) + hex(h0);
}

/** Go's `%q` for the strings label values hold (close enough for printable UTF-8, as JSON is). */
function goQuote(s: string): string {
  return JSON.stringify(s);
}

/** A label set as Alertmanager prints it in a group key: `{a="1", b="2"}`, names sorted. */
export function labelSetString(labels: Record<string, string>): string {
  const parts = Object.keys(labels)
    .map((n) => `${n}=${goQuote(labels[n] as string)}`)
    .sort();
  return `{${parts.join(', ')}}`;
}

/** One label matcher in Alertmanager's silence form (`isEqual: false` negates). */
export interface Matcher {
  name: string;
  value: string;
  isRegex: boolean;
  isEqual: boolean;
}

/** A matcher with its regex compiled once. */
export interface CompiledMatcher extends Matcher {
  matches(value: string): boolean;
}

/** The matcher's operator: `=`, `!=`, `=~` or `!~`. */
export function matcherOp(m: Matcher): string {
  return m.isRegex ? (m.isEqual ? '=~' : '!~') : m.isEqual ? '=' : '!=';
}

/** A matcher as Alertmanager prints it: `name="value"`, `name=~"re"`… */
export function matcherString(m: Matcher): string {
  return `${m.name}${matcherOp(m)}${goQuote(m.value)}`;
}

/** A list of matchers as Alertmanager prints it in a route key: `{a="b",c=~"d"}`. */
export function matchersString(ms: readonly Matcher[]): string {
  return `{${ms.map(matcherString).join(',')}}`;
}

/**
 * Compiles a matcher. Regexes are RE2 (re2js, as the tsdb uses), anchored at both ends as
 * Alertmanager anchors them.
 * @throws InvalidArgumentError for a bad label name or an invalid regex, prefixed with `where`.
 */
export function compileMatcher(m: Matcher, where = 'matcher'): CompiledMatcher {
  if (typeof m.name !== 'string' || !LABEL_NAME_RE.test(m.name)) {
    throw new InvalidArgumentError(`${where}: invalid label name ${JSON.stringify(m.name)}`);
  }
  if (typeof m.value !== 'string') throw new InvalidArgumentError(`${where}: value must be a string`);
  let test: (v: string) => boolean;
  if (m.isRegex) {
    let re: RE2JS;
    try {
      re = RE2JS.compile(`^(?:${m.value})$`);
    } catch (err) {
      // re2js reports the anchored pattern; show the user's own.
      const why = (err as Error).message.split(`^(?:${m.value})$`).join(m.value);
      throw new InvalidArgumentError(`${where}: invalid regular expression ${JSON.stringify(m.value)}: ${why}`);
    }
    test = (v) => re.matches(v);
  } else {
    const want = m.value;
    test = (v) => v === want;
  }
  const isEqual = m.isEqual;
  return { name: m.name, value: m.value, isRegex: m.isRegex, isEqual, matches: (v) => test(v) === isEqual };
}

/** Whether every matcher holds for `labels` (a missing label reads as the empty string). */
export function matchesAll(ms: readonly CompiledMatcher[], labels: Record<string, string>): boolean {
  for (const m of ms) if (!m.matches(labels[m.name] ?? '')) return false;
  return true;
}

/**
 * Parses matchers as Alertmanager's config, `amtool` and the `filter` parameter write them:
 * `alertname="High latency"`, `severity=~"crit|page"`, `env!=dev`, several separated by commas,
 * optionally inside `{…}`. Quoted values use JSON/Go escapes; unquoted values run to the next comma.
 * @throws InvalidArgumentError saying which matcher is malformed.
 */
export function parseMatchers(text: string, where = 'matchers'): CompiledMatcher[] {
  let s = text.trim();
  if (s.startsWith('{')) {
    if (!s.endsWith('}')) throw new InvalidArgumentError(`${where}: missing closing '}' in ${JSON.stringify(text)}`);
    s = s.slice(1, -1);
  }
  const out: CompiledMatcher[] = [];
  let i = 0;
  const n = s.length;
  const skipWs = (): void => {
    while (i < n && /\s/.test(s[i] as string)) i++;
  };
  skipWs();
  while (i < n) {
    const nameM = /^[a-zA-Z_][a-zA-Z0-9_]*/.exec(s.slice(i));
    if (!nameM) throw new InvalidArgumentError(`${where}: expected a label name at ${JSON.stringify(s.slice(i))} in ${JSON.stringify(text)}`);
    const name = nameM[0];
    i += name.length;
    skipWs();
    const opM = /^(=~|!~|!=|=)/.exec(s.slice(i));
    if (!opM) throw new InvalidArgumentError(`${where}: expected one of = != =~ !~ after '${name}' in ${JSON.stringify(text)}`);
    const op = opM[0];
    i += op.length;
    skipWs();
    let value: string;
    if (s[i] === '"') {
      let j = i + 1;
      while (j < n && s[j] !== '"') j += s[j] === '\\' ? 2 : 1;
      if (j >= n) throw new InvalidArgumentError(`${where}: unterminated quoted value for '${name}' in ${JSON.stringify(text)}`);
      try {
        value = JSON.parse(s.slice(i, j + 1)) as string;
      } catch {
        throw new InvalidArgumentError(`${where}: invalid quoted value for '${name}' in ${JSON.stringify(text)}`);
      }
      i = j + 1;
    } else {
      let j = i;
      while (j < n && s[j] !== ',') j++;
      value = s.slice(i, j).trim();
      i = j;
    }
    out.push(compileMatcher({ name, value, isRegex: op === '=~' || op === '!~', isEqual: op === '=' || op === '=~' }, where));
    skipWs();
    if (i < n) {
      if (s[i] !== ',') throw new InvalidArgumentError(`${where}: expected ',' after the matcher on '${name}' in ${JSON.stringify(text)}`);
      i++;
      skipWs();
    }
  }
  return out;
}

const DURATION_RE = /^(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?$/;
const DURATION_UNITS_MS = [31_536_000_000, 604_800_000, 86_400_000, 3_600_000, 60_000, 1000, 1];

/**
 * Parses a duration as Alertmanager's config writes it (Prometheus `model.Duration`: units in
 * the order y w d h m s ms, e.g. `30s`, `1h30m`, `200ms`, or `0`) into milliseconds.
 * @throws InvalidArgumentError naming `where`.
 */
export function parseDurationMs(text: string, where = 'duration'): number {
  const t = String(text).trim();
  if (t === '0') return 0;
  const m = DURATION_RE.exec(t);
  if (t === '' || m === null) throw new InvalidArgumentError(`${where}: invalid duration ${JSON.stringify(text)} (expected e.g. 30s, 5m, 1h30m, 200ms)`);
  let ms = 0;
  for (let k = 0; k < DURATION_UNITS_MS.length; k++) {
    const v = m[k + 1];
    if (v !== undefined) ms += Number(v) * (DURATION_UNITS_MS[k] as number);
  }
  return ms;
}

/**
 * Checks an alert's shape (non-empty labels with valid names, string annotations, RFC 3339
 * times) and returns a copy.
 * @throws InvalidArgumentError naming the alert's index and field.
 */
export function validateAlert(a: unknown, index: number): NotifyAlert {
  const where = `alerts[${index}]`;
  if (a === null || typeof a !== 'object' || Array.isArray(a)) throw new InvalidArgumentError(`${where}: expected an object`);
  const o = a as Record<string, unknown>;
  const strMap = (v: unknown, field: string, needLabelNames: boolean): Record<string, string> => {
    if (v === undefined && field === 'annotations') return {};
    if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new InvalidArgumentError(`${where}.${field}: expected an object of strings`);
    const out: Record<string, string> = {};
    for (const [k, val] of Object.entries(v as Record<string, unknown>)) {
      if (typeof val !== 'string') throw new InvalidArgumentError(`${where}.${field}.${k}: expected a string`);
      if (needLabelNames && !LABEL_NAME_RE.test(k)) throw new InvalidArgumentError(`${where}.${field}: invalid label name ${JSON.stringify(k)}`);
      out[k] = val;
    }
    return out;
  };
  const labels = strMap(o.labels, 'labels', true);
  for (const k of Object.keys(labels)) if (labels[k] === '') delete labels[k];
  if (Object.keys(labels).length === 0) throw new InvalidArgumentError(`${where}.labels: at least one non-empty label is required`);
  const annotations = strMap(o.annotations, 'annotations', false);
  const time = (v: unknown, field: string): string => {
    if (typeof v !== 'string' || Number.isNaN(Date.parse(v))) throw new InvalidArgumentError(`${where}.${field}: expected an RFC 3339 time`);
    return v;
  };
  const alert: NotifyAlert = { labels, annotations, startsAt: time(o.startsAt, 'startsAt') };
  // Go's zero time means "not set" in Alertmanager's API, not "resolved in year 1".
  if (o.endsAt !== undefined && o.endsAt !== null && o.endsAt !== '') {
    const endsAt = time(o.endsAt, 'endsAt');
    if (Date.parse(endsAt) > GO_ZERO_MS) alert.endsAt = endsAt;
  }
  if (o.generatorURL !== undefined) {
    if (typeof o.generatorURL !== 'string') throw new InvalidArgumentError(`${where}.generatorURL: expected a string`);
    alert.generatorURL = o.generatorURL;
  }
  return alert;
}
