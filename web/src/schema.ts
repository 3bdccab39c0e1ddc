/**
 * A small JSON Schema check for the editor, run as the user types, before anything is sent. It
 * covers the keywords config schemas use most (type, enum, const, required, properties,
 * additionalProperties, items, min/max, length, pattern, min/maxItems, anyOf/oneOf/allOf); the
 * server's ajv check on save stays the authority and its errors are shown at their paths too.
 * (ajv itself compiles schemas to code with `new Function`, which the console's
 * Content-Security-Policy forbids.)
 */

/** One failing place in a document: a JSON Pointer and what is wrong there. */
export interface Violation {
  path: string;
  message: string;
}

type Schema = Record<string, unknown> | boolean;

function typeOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v;
}

function typeMatches(v: unknown, t: string): boolean {
  const actual = typeOf(v);
  return actual === t || (t === 'number' && actual === 'integer');
}

function esc(seg: string): string {
  return seg.replace(/~/g, '~0').replace(/\//g, '~1');
}

/** Checks `doc` against `schema`; returns every violation found (empty when valid). */
export function validate(schema: Schema, doc: unknown, path = ''): Violation[] {
  const at = path === '' ? '/' : path;
  if (schema === true) return [];
  if (schema === false) return [{ path: at, message: 'is not allowed' }];
  const s = schema;
  const out: Violation[] = [];
  const types = s.type === undefined ? undefined : Array.isArray(s.type) ? (s.type as string[]) : [s.type as string];
  if (types !== undefined && !types.some((t) => typeMatches(doc, t))) {
    return [{ path: at, message: `must be ${types.join(' or ')}` }];
  }
  if (Array.isArray(s.enum) && !s.enum.some((e) => JSON.stringify(e) === JSON.stringify(doc))) {
    out.push({ path: at, message: `must be one of ${s.enum.map((e) => JSON.stringify(e)).join(', ')}` });
  }
  if (s.const !== undefined && JSON.stringify(s.const) !== JSON.stringify(doc)) out.push({ path: at, message: `must be ${JSON.stringify(s.const)}` });
  if (typeof doc === 'number') {
    if (typeof s.minimum === 'number' && doc < s.minimum) out.push({ path: at, message: `must be >= ${s.minimum}` });
    if (typeof s.maximum === 'number' && doc > s.maximum) out.push({ path: at, message: `must be <= ${s.maximum}` });
    if (typeof s.exclusiveMinimum === 'number' && doc <= s.exclusiveMinimum) out.push({ path: at, message: `must be > ${s.exclusiveMinimum}` });
    if (typeof s.exclusiveMaximum === 'number' && doc >= s.exclusiveMaximum) out.push({ path: at, message: `must be < ${s.exclusiveMaximum}` });
  }
  if (typeof doc === 'string') {
    const len = [...doc].length;
    if (typeof s.minLength === 'number' && len < s.minLength) out.push({ path: at, message: `must have at least ${s.minLength} characters` });
    if (typeof s.maxLength === 'number' && len > s.maxLength) out.push({ path: at, message: `must have at most ${s.maxLength} characters` });
    if (typeof s.pattern === 'string') {
      try {
        if (!new RegExp(s.pattern, 'u').test(doc)) out.push({ path: at, message: `must match pattern "${s.pattern}"` });
      } catch {
        // a pattern this browser cannot compile: left to the server
      }
    }
  }
  if (Array.isArray(doc)) {
    if (typeof s.minItems === 'number' && doc.length < s.minItems) out.push({ path: at, message: `must have at least ${s.minItems} items` });
    if (typeof s.maxItems === 'number' && doc.length > s.maxItems) out.push({ path: at, message: `must have at most ${s.maxItems} items` });
    if (s.items !== undefined && typeof s.items === 'object' && !Array.isArray(s.items)) {
      doc.forEach((item, i) => out.push(...validate(s.items as Schema, item, `${path}/${i}`)));
    }
  }
  if (doc !== null && typeof doc === 'object' && !Array.isArray(doc)) {
    const o = doc as Record<string, unknown>;
    for (const r of Array.isArray(s.required) ? (s.required as string[]) : []) {
      if (!Object.hasOwn(o, r)) out.push({ path: `${path}/${esc(r)}`, message: 'is required but missing' });
    }
    const props = (s.properties ?? {}) as Record<string, Schema>;
    for (const [k, v] of Object.entries(o)) {
      if (Object.hasOwn(props, k)) out.push(...validate(props[k] as Schema, v, `${path}/${esc(k)}`));
      else if (s.additionalProperties === false) out.push({ path: `${path}/${esc(k)}`, message: 'is not an allowed property' });
      else if (typeof s.additionalProperties === 'object' && s.additionalProperties !== null) {
        out.push(...validate(s.additionalProperties as Schema, v, `${path}/${esc(k)}`));
      }
    }
  }
  if (Array.isArray(s.allOf)) for (const sub of s.allOf as Schema[]) out.push(...validate(sub, doc, path));
  if (Array.isArray(s.anyOf) && !(s.anyOf as Schema[]).some((sub) => validate(sub, doc, path).length === 0)) {
    out.push({ path: at, message: 'must match one of the allowed shapes (anyOf)' });
  }
  if (Array.isArray(s.oneOf) && (s.oneOf as Schema[]).filter((sub) => validate(sub, doc, path).length === 0).length !== 1) {
    out.push({ path: at, message: 'must match exactly one of the allowed shapes (oneOf)' });
  }
  return out;
}
