/** Prometheus durations (`15s`, `1h30m`, `500ms`, `2d`) and times as the HTTP API takes them. */
import { InvalidArgumentError } from '../../errors.js';

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000, y: 31_536_000_000 };

/**
 * Parses a Prometheus duration such as `1h30m` or `500ms` into milliseconds.
 * @throws InvalidArgumentError for anything else, naming `what`.
 */
export function parseDuration(text: string, what = 'duration'): number {
  const t = text.trim();
  if (t === '' || !/^(\d+(ms|s|m|h|d|w|y))+$/.test(t)) throw new InvalidArgumentError(`invalid ${what} '${text}': expected a duration such as 15s, 1m or 1h30m`);
  let ms = 0;
  for (const m of t.matchAll(/(\d+)(ms|s|m|h|d|w|y)/g)) ms += Number(m[1]) * (UNIT_MS[m[2] as string] as number);
  return ms;
}

/**
 * Parses a duration as the query API takes it: a Prometheus duration or a float number of seconds.
 * @throws InvalidArgumentError naming `what`.
 */
export function parseDurationOrSeconds(text: string, what: string): number {
  if (/^[0-9]*\.?[0-9]+([eE][+-]?[0-9]+)?$/.test(text.trim())) return Math.round(Number(text) * 1000);
  return parseDuration(text, what);
}

/**
 * Parses a time as the query API takes it: Unix seconds (float) or RFC 3339, into ms.
 * @throws InvalidArgumentError naming `what`.
 */
export function parseTime(text: string, what: string): number {
  const t = text.trim();
  if (/^-?[0-9]*\.?[0-9]+([eE][+-]?[0-9]+)?$/.test(t)) {
    const ms = Math.round(Number(t) * 1000);
    if (Number.isFinite(ms)) return ms;
  }
  if (/^\d{4}-\d\d-\d\dT/.test(t)) {
    const ms = Date.parse(t);
    if (!Number.isNaN(ms)) return ms;
  }
  throw new InvalidArgumentError(`invalid parameter '${what}': cannot parse "${text}" to a valid timestamp`);
}
