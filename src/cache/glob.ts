/**
 * Redis's glob patterns (KEYS, SCAN MATCH, PSUBSCRIBE, CONFIG GET): `*` any run, `?` any one
 * character, `[abc]`, `[^abc]`, `[a-z]` classes, `\x` a literal x. Matching is by UTF-16 code
 * unit on JS strings (byte-for-byte on {@link MEMBER_ENCODING} strings) and runs in time
 * O(pattern × subject) at worst: a star backtracks to the last star only, never exponentially.
 */

/** Matches one class `[...]` starting at `p[pi] === '['` against `c`; returns [matched, index after `]`]. */
function matchClass(p: string, pi: number, c: string, nocase: boolean): [boolean, number] {
  let i = pi + 1;
  let negate = false;
  if (p[i] === '^') {
    negate = true;
    i++;
  }
  let matched = false;
  const cc = nocase ? c.toLowerCase() : c;
  for (;;) {
    if (i >= p.length) {
      // Unterminated class: Redis treats the end of pattern as closing it.
      break;
    }
    const ch = p[i] as string;
    if (ch === '\\' && i + 1 < p.length) {
      const lit = nocase ? (p[i + 1] as string).toLowerCase() : (p[i + 1] as string);
      if (lit === cc) matched = true;
      i += 2;
      continue;
    }
    if (ch === ']') {
      i++;
      break;
    }
    // As Redis: `x-y` is a range whatever y is, even `]` (then the class runs to the pattern's end).
    if (p[i + 1] === '-' && i + 2 < p.length) {
      let lo = p[i] as string;
      let hi = p[i + 2] as string;
      if (nocase) {
        lo = lo.toLowerCase();
        hi = hi.toLowerCase();
      }
      if (lo > hi) [lo, hi] = [hi, lo];
      if (cc >= lo && cc <= hi) matched = true;
      i += 3;
      continue;
    }
    if ((nocase ? ch.toLowerCase() : ch) === cc) matched = true;
    i++;
  }
  return [negate ? !matched : matched, i];
}

/**
 * True when `subject` matches the Redis glob `pattern` (`nocase` folds ASCII case, as Redis's
 * `stringmatchlen(..., nocase=1)` does for CONFIG GET).
 * @example globMatch('user:*', 'user:123') // true
 * @example globMatch('h[ae]llo', 'hallo') // true
 */
export function globMatch(pattern: string, subject: string, nocase = false): boolean {
  let pi = 0;
  let si = 0;
  let starP = -1;
  let starS = -1;
  while (si < subject.length) {
    if (pi < pattern.length) {
      const ch = pattern[pi] as string;
      if (ch === '*') {
        while (pattern[pi] === '*') pi++;
        if (pi === pattern.length) return true;
        starP = pi;
        starS = si;
        continue;
      }
      const c = subject[si] as string;
      if (ch === '?') {
        pi++;
        si++;
        continue;
      }
      if (ch === '[') {
        const [ok, next] = matchClass(pattern, pi, c, nocase);
        if (ok) {
          pi = next;
          si++;
          continue;
        }
      } else {
        let lit = ch;
        let adv = 1;
        if (ch === '\\' && pi + 1 < pattern.length) {
          lit = pattern[pi + 1] as string;
          adv = 2;
        }
        if (lit === c || (nocase && lit.toLowerCase() === c.toLowerCase())) {
          pi += adv;
          si++;
          continue;
        }
      }
    }
    // Mismatch: let the last star absorb one more character, or fail.
    if (starP < 0) return false;
    starS++;
    si = starS;
    pi = starP;
  }
  while (pattern[pi] === '*') pi++;
  return pi === pattern.length;
}

/**
 * The literal prefix of a pattern up to its first special character (`*?[\`), so a scan can
 * skip keys that cannot match. `''` when the pattern starts with one.
 */
export function globLiteralPrefix(pattern: string): string {
  const i = pattern.search(/[*?[\\]/);
  return i < 0 ? pattern : pattern.slice(0, i);
}
