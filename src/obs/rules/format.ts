/** Go's number formatting (`%g`, `%v`, `Sprintf`) and Prometheus's `humanize*` template functions. */

/** Parses a value the way Prometheus's template functions convert their argument (number or numeric string). */
export function toFloat(v: unknown): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'string') {
    const t = v.trim();
    if (/^[-+]?inf(inity)?$/i.test(t)) return t.startsWith('-') ? -Infinity : Infinity;
    if (/^nan$/i.test(t)) return NaN;
    const n = Number(t);
    if (t === '' || Number.isNaN(n)) throw new Error(`strconv.ParseFloat: parsing ${JSON.stringify(v)}: invalid syntax`);
    return n;
  }
  if (typeof v === 'boolean') throw new Error('can\'t convert bool to float');
  throw new Error(`can't convert ${typeof v} to float`);
}

/** Digits (no trailing zeros) and decimal point position of |v| rounded to `prec` significant digits (shortest when < 0). */
function digitsOf(v: number, prec: number): { d: string; dp: number } {
  const e = prec < 0 ? Math.abs(v).toExponential() : Math.abs(v).toExponential(Math.max(prec - 1, 0));
  const [mant = '', exp = '0'] = e.split('e');
  const d = mant.replace('.', '').replace(/0+$/, '') || '0';
  return { d, dp: Number(exp) + 1 };
}

/**
 * Formats like Go's `strconv.FormatFloat(v, 'g', prec, 64)` (`%v` when `prec` < 0, `%.Ng`
 * otherwise): `1e+06`, `300`, `0.5`, `NaN`, `+Inf`.
 */
export function formatFloat(v: number, prec: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  if (prec === 0) prec = 1;
  const neg = v < 0 || Object.is(v, -0) ? '-' : '';
  if (v === 0) return `${neg}0`;
  const { d, dp } = digitsOf(v, prec);
  const nd = d.length;
  const shortest = prec < 0;
  let eprec = shortest ? nd : prec;
  if (eprec > nd && nd >= dp) eprec = nd;
  if (shortest) eprec = 6;
  const exp = dp - 1;
  if (exp < -4 || exp >= eprec) {
    const p = shortest ? nd : Math.min(prec, nd);
    const frac = p > 1 ? `.${d.slice(1).padEnd(p - 1, '0')}` : '';
    const ae = Math.abs(exp);
    return `${neg}${d[0] ?? '0'}${frac}e${exp < 0 ? '-' : '+'}${ae < 10 ? '0' : ''}${ae}`;
  }
  let p = shortest ? nd : prec;
  if (p > dp) p = nd;
  return neg + fixedFromDigits(d, dp, Math.max(p - dp, 0));
}

function fixedFromDigits(d: string, dp: number, decimals: number): string {
  const at = (i: number): string => (i >= 0 && i < d.length ? (d[i] as string) : '0');
  let int = '';
  for (let i = 0; i < dp; i++) int += at(i);
  if (int === '') int = '0';
  let frac = '';
  for (let i = 0; i < decimals; i++) frac += at(dp + i);
  return decimals > 0 ? `${int}.${frac}` : int;
}

/** Prometheus `humanize`: SI prefixes, 4 significant digits (`1.235k`, `12.3m`). */
export function humanize(v: number): string {
  if (v === 0 || !Number.isFinite(v)) return formatFloat(v, 4);
  let prefix = '';
  if (Math.abs(v) >= 1) {
    for (const p of ['k', 'M', 'G', 'T', 'P', 'E', 'Z', 'Y']) {
      if (Math.abs(v) < 1000) break;
      prefix = p;
      v /= 1000;
    }
  } else {
    for (const p of ['m', 'u', 'n', 'p', 'f', 'a', 'z', 'y']) {
      if (Math.abs(v) >= 1) break;
      prefix = p;
      v *= 1000;
    }
  }
  return formatFloat(v, 4) + prefix;
}

/** Prometheus `humanize1024`: binary prefixes (`1ki`, `1.5Mi`). */
export function humanize1024(v: number): string {
  if (Math.abs(v) <= 1 || !Number.isFinite(v)) return formatFloat(v, 4);
  let prefix = '';
  for (const p of ['ki', 'Mi', 'Gi', 'Ti', 'Pi', 'Ei', 'Zi', 'Yi']) {
    if (Math.abs(v) < 1024) break;
    prefix = p;
    v /= 1024;
  }
  return formatFloat(v, 4) + prefix;
}

/** Prometheus `humanizeDuration`: seconds as `1d 2h 3m 4s`, `1.5s`, `250ms`. */
export function humanizeDuration(v: number): string {
  if (!Number.isFinite(v)) return formatFloat(v, 4);
  if (v === 0) return `${formatFloat(v, 4)}s`;
  if (Math.abs(v) >= 1) {
    const sign = v < 0 ? '-' : '';
    v = Math.abs(v);
    const d = Math.trunc(v);
    const s = d % 60;
    const m = Math.trunc(d / 60) % 60;
    const h = Math.trunc(d / 3600) % 24;
    const days = Math.trunc(d / 86400);
    if (days !== 0) return `${sign}${days}d ${h}h ${m}m ${s}s`;
    if (h !== 0) return `${sign}${h}h ${m}m ${s}s`;
    if (m !== 0) return `${sign}${m}m ${s}s`;
    return `${sign}${formatFloat(v, 4)}s`;
  }
  let prefix = '';
  for (const p of ['m', 'u', 'n', 'p', 'f', 'a', 'z', 'y']) {
    if (Math.abs(v) >= 1) break;
    prefix = p;
    v *= 1000;
  }
  return `${formatFloat(v, 4)}${prefix}s`;
}

/** Prometheus `humanizePercentage`: a ratio as a percentage (`0.1234` → `12.34%`). */
export function humanizePercentage(v: number): string {
  return `${formatFloat(v * 100, 4)}%`;
}

/** Go's `fmt.Sprintf` for the verbs templates use: `%s %v %d %f %g %e %q %x %%`, with flags, width and precision. */
export function goSprintf(format: string, args: unknown[]): string {
  let i = 0;
  return format.replace(/%([-+ 0#]*)(\d+)?(?:\.(\d+))?([a-zA-Z%])/g, (_m, flags: string, width?: string, precS?: string, verb?: string) => {
    if (verb === '%') return '%';
    if (i >= args.length) return `%!${verb ?? ''}(MISSING)`;
    const a = args[i++];
    const prec = precS === undefined ? -1 : Number(precS);
    let s: string;
    switch (verb) {
      case 'd':
        s = typeof a === 'number' && Number.isInteger(a) ? String(a) : `%!d(${typeof a === 'number' ? 'float64' : 'string'}=${String(a)})`;
        break;
      case 'f':
      case 'F':
        s = typeof a === 'number' ? (Number.isFinite(a) ? a.toFixed(prec < 0 ? 6 : prec) : formatFloat(a, -1)) : `%!f(string=${String(a)})`;
        break;
      case 'e':
        s = typeof a === 'number' ? a.toExponential(prec < 0 ? 6 : prec).replace(/e([+-])(\d)$/, 'e$10$2') : `%!e(string=${String(a)})`;
        break;
      case 'g':
        s = typeof a === 'number' ? formatFloat(a, prec) : `%!g(string=${String(a)})`;
        break;
      case 'q':
        s = JSON.stringify(String(a));
        break;
      case 'x':
        s = typeof a === 'number' ? Math.trunc(a).toString(16) : Buffer.from(String(a)).toString('hex');
        break;
      default:
        s = typeof a === 'number' ? formatFloat(a, -1) : typeof a === 'string' ? a : String(a);
        if (prec >= 0 && typeof a === 'string') s = s.slice(0, prec);
    }
    if (flags.includes('+') && typeof a === 'number' && a >= 0 && verb !== 's' && verb !== 'v') s = `+${s}`;
    const w = width === undefined ? 0 : Number(width);
    if (s.length < w) s = flags.includes('-') ? s.padEnd(w) : flags.includes('0') && typeof a === 'number' ? s.padStart(w, '0') : s.padStart(w);
    return s;
  });
}
