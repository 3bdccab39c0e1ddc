/** promtool's expanding notation for `input_series` values and `load` blocks: `1+2x10`, `_`, `stale`, `1x5 3 _x2`. */
import { PromQLError } from './errors.js';

/**
 * One step of a series: a value, `'stale'` for a staleness marker, or `undefined` for a gap (`_`).
 * The marker is a token, not a NaN payload, because V8 may rewrite a NaN's bits when it stores it
 * in an array.
 */
export type NotationPoint = number | 'stale' | undefined;

const NUM = String.raw`[+-]?(?:inf|nan|0x[0-9a-f]+|(?:\d+(?:\.\d*)?|\.\d+)(?:e[+-]?\d+)?)`;
const SERIES_RE = new RegExp(`^(${NUM})(?:([+-])(${NUM}))?x(\\d+)$`, 'i');
const NUM_RE = new RegExp(`^${NUM}$`, 'i');

function num(text: string): number {
  const t = text.toLowerCase().replace(/^\+/, '');
  if (t === 'inf') return Infinity;
  if (t === '-inf') return -Infinity;
  if (t === 'nan' || t === '-nan') return NaN;
  if (/^-?0x/.test(t)) return (t.startsWith('-') ? -1 : 1) * parseInt(t.replace(/^-?0x/, ''), 16);
  return Number(t);
}

/**
 * Expands promtool's series notation into one point per interval, starting at the first.
 * `a+bxn` is `a, a+b, …, a+n·b` (n+1 points), `axn` repeats `a` n+1 times, `_xn` is n gaps,
 * `_` one gap and `stale` a staleness marker.
 *
 * @throws PromQLError `bad_data` naming the item it cannot read.
 * @example parseSeriesNotation('1+1x3 _ stale') // [1, 2, 3, 4, undefined, 'stale']
 */
export function parseSeriesNotation(values: string): NotationPoint[] {
  const out: NotationPoint[] = [];
  for (const item of values.trim().split(/\s+/)) {
    if (item === '') continue;
    if (item === '_') { out.push(undefined); continue; }
    if (item === 'stale') { out.push('stale'); continue; }
    const gaps = /^_x(\d+)$/.exec(item);
    if (gaps) { for (let i = 0; i < Number(gaps[1]); i++) out.push(undefined); continue; }
    if (NUM_RE.test(item)) { out.push(num(item)); continue; }
    const m = SERIES_RE.exec(item);
    if (!m) throw new PromQLError('bad_data', `invalid series value ${JSON.stringify(item)}: expected a number, _, stale, a+bxn, a-bxn or axn`);
    const start = num(m[1]!);
    const delta = m[2] ? (m[2] === '-' ? -1 : 1) * num(m[3]!) : 0;
    const n = Number(m[4]);
    let v = start;
    for (let i = 0; i <= n; i++) {
      out.push(v);
      v += delta;
    }
  }
  return out;
}
