/** A structural diff of two JSON values: what was added, removed or changed, at which JSON Pointer. */

/** One structural change. `path` is a JSON Pointer (RFC 6901); "" is the whole value. */
export interface JsonChange {
  path: string;
  op: 'added' | 'removed' | 'changed';
  /** The old value (removed, changed). */
  from?: unknown;
  /** The new value (added, changed). */
  to?: unknown;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** Escapes one JSON Pointer segment (`~` → `~0`, `/` → `~1`). */
function segment(s: string | number): string {
  return String(s).replaceAll('~', '~0').replaceAll('/', '~1');
}

/** Deep equality of two JSON values (objects compare by keys, not key order). */
export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a)) return Array.isArray(b) && a.length === b.length && a.every((x, i) => jsonEqual(x, b[i]));
  if (isObject(a)) {
    if (!isObject(b)) return false;
    const ka = Object.keys(a);
    return ka.length === Object.keys(b).length && ka.every((k) => Object.hasOwn(b, k) && jsonEqual(a[k], b[k]));
  }
  return false;
}

/**
 * Lists the changes from `a` to `b`: object members by name (old order, then new members in
 * their order), array elements by index (an insertion in the middle shows as changes to every
 * later index, then an addition, as JSON Patch would); anything else is `changed` when unequal.
 * @example jsonDiff({ a: 1, b: 2 }, { a: 1, b: 3, c: 4 })
 * // → [{ path: '/b', op: 'changed', from: 2, to: 3 }, { path: '/c', op: 'added', to: 4 }]
 */
export function jsonDiff(a: unknown, b: unknown, path = ''): JsonChange[] {
  const out: JsonChange[] = [];
  walk(a, b, path, out);
  return out;
}

function walk(a: unknown, b: unknown, path: string, out: JsonChange[]): void {
  if (isObject(a) && isObject(b)) {
    for (const k of Object.keys(a)) {
      const p = `${path}/${segment(k)}`;
      if (Object.hasOwn(b, k)) walk(a[k], b[k], p, out);
      else out.push({ path: p, op: 'removed', from: a[k] });
    }
    for (const k of Object.keys(b)) {
      if (!Object.hasOwn(a, k)) out.push({ path: `${path}/${segment(k)}`, op: 'added', to: b[k] });
    }
    return;
  }
  if (Array.isArray(a) && Array.isArray(b)) {
    const common = Math.min(a.length, b.length);
    for (let i = 0; i < common; i++) walk(a[i], b[i], `${path}/${i}`, out);
    // Removals from the end backwards, so applying them in order keeps the indexes valid.
    for (let i = a.length - 1; i >= common; i--) out.push({ path: `${path}/${i}`, op: 'removed', from: a[i] });
    for (let i = common; i < b.length; i++) out.push({ path: `${path}/${i}`, op: 'added', to: b[i] });
    return;
  }
  if (!jsonEqual(a, b)) out.push({ path, op: 'changed', from: a, to: b });
}
