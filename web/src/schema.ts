/**
 * The editor's JSON Schema check, run as the user types, before anything is sent: the library
 * `@cfworker/json-schema` (every keyword of drafts 4 to 2020-12; it interprets schemas instead of
 * compiling them to code, so it runs under the console's Content-Security-Policy, which forbids
 * `eval` and `new Function` — ajv's compiled validators would be refused). Its errors are reduced
 * to the ones that say what is wrong where, at their JSON Pointer paths, worded as the server's
 * (ajv's) are. The server's check on save stays the authority and its errors are shown too.
 */
import { Validator, type OutputUnit, type Schema, type SchemaDraft } from '@cfworker/json-schema';

/** One failing place in a document: a JSON Pointer (`/` for the whole document) and what is wrong there. */
export interface Violation {
  path: string;
  message: string;
}

/**
 * Keywords whose error only says that something below them failed ("Property "port" does not
 * match schema."); the failure itself is reported at its own path as well, so these are dropped.
 */
const WRAPPERS = new Set([
  'properties',
  'patternProperties',
  'additionalProperties',
  'items',
  'prefixItems',
  'additionalItems',
  'unevaluatedProperties',
  'unevaluatedItems',
  'contains',
  'allOf',
  '$ref',
  '$recursiveRef',
  '$dynamicRef',
  'dependentSchemas',
  'dependencies',
  'propertyNames',
  'if',
  'then',
  'else',
]);

/** `$schema` URIs to the library's draft names; ajv (the server) defaults to draft-07, and so do we. */
function draftOf(schema: Schema | boolean): SchemaDraft {
  const uri = typeof schema === 'object' && typeof schema.$schema === 'string' ? schema.$schema : '';
  if (uri.includes('draft-04')) return '4';
  if (uri.includes('2019-09')) return '2019-09';
  if (uri.includes('2020-12')) return '2020-12';
  return '7';
}

/** The library's `#/a/b` instance location as a JSON Pointer (`/` for the document itself). */
function pointer(location: string): string {
  const p = location.replace(/^#/, '');
  return p === '' ? '/' : p;
}

function escapeSegment(seg: string): string {
  return seg.replace(/~/g, '~0').replace(/\//g, '~1');
}

/** One library error as the editor shows it, or undefined when it adds nothing. */
function toViolation(e: OutputUnit, all: OutputUnit[]): Violation | undefined {
  if (WRAPPERS.has(e.keyword)) return undefined;
  // The server does not check `format` (ajv with validateFormats off): neither does the editor.
  if (e.keyword === 'format') return undefined;
  // Errors inside anyOf/oneOf/not branches are reported once, as the combinator's own error.
  if (all.some((o) => o !== e && ['anyOf', 'oneOf', 'not'].includes(o.keyword) && e.keywordLocation.startsWith(`${o.keywordLocation}/`))) return undefined;
  const at = pointer(e.instanceLocation);
  switch (e.keyword) {
    case 'required': {
      const m = /required property "(.*)"\.$/.exec(e.error);
      // As the server says it: at the missing property's own path.
      if (m !== null) return { path: `${at === '/' ? '' : at}/${escapeSegment(m[1] as string)}`, message: 'is required but missing' };
      break;
    }
    case 'type': {
      const m = /Expected "(.*)"\.$/.exec(e.error);
      if (m !== null) return { path: at, message: `must be ${(m[1] as string).split('", "').join(' or ')}` };
      break;
    }
    case 'false': {
      // A `false` schema: under additionalProperties it means a property that may not be there.
      const parent = e.instanceLocation.slice(0, e.instanceLocation.lastIndexOf('/'));
      const extra = all.some((o) => o.keyword === 'additionalProperties' && o.instanceLocation === parent);
      return { path: at, message: extra ? 'is not an allowed property' : 'is not allowed' };
    }
    case 'anyOf':
      return { path: at, message: 'must match one of the allowed shapes (anyOf)' };
    case 'oneOf':
      return { path: at, message: 'must match exactly one of the allowed shapes (oneOf)' };
    default:
      break;
  }
  return { path: at, message: e.error };
}

/**
 * Checks `doc` against `schema`; returns every violation found (empty when valid). A schema the
 * library cannot use (a pattern this browser cannot compile, an unresolvable `$ref`) checks
 * nothing here: the server decides on save.
 */
export function validate(schema: Schema | boolean, doc: unknown): Violation[] {
  let errors: OutputUnit[];
  try {
    errors = new Validator(schema, draftOf(schema), false).validate(doc).errors;
  } catch {
    return [];
  }
  const out: Violation[] = [];
  const seen = new Set<string>();
  for (const e of errors) {
    const v = toViolation(e, errors);
    if (v === undefined || seen.has(`${v.path}\u0000${v.message}`)) continue;
    seen.add(`${v.path}\u0000${v.message}`);
    out.push(v);
  }
  return out;
}
