/**
 * Limits on the JSON the config layer parses: the size and nesting depth of a namespace's JSON
 * Schema and the nesting depth of JSON values (issue 9 findings 6 and 7). Nesting deeper than
 * these would make ajv or `JSON.stringify` overflow the stack; the limits turn that into a
 * clear 400 `invalid_argument` naming the limit and its `beacon serve` flag.
 */
import { InvalidArgumentError } from '../errors.js';

/** The largest namespace JSON Schema by default, in bytes of its compact JSON text (`--max-schema-bytes`). */
export const DEFAULT_MAX_SCHEMA_BYTES = 256 * 1024;
/** How deep a namespace JSON Schema may nest objects and arrays by default (`--max-schema-depth`). */
export const DEFAULT_MAX_SCHEMA_DEPTH = 64;
/** How deep a JSON value the node parses may nest objects and arrays by default (`--max-json-depth`). */
export const DEFAULT_MAX_JSON_DEPTH = 512;
/** The highest `--max-schema-depth`: ajv compiles a schema recursively, and ~600 levels overflow its stack. */
export const MAX_SCHEMA_DEPTH_CEILING = 256;
/** The highest `--max-json-depth`: `JSON.stringify` and the structural diff recurse, and ~5,000 levels overflow the stack. */
export const MAX_JSON_DEPTH_CEILING = 2048;

/** The limits a node enforces; see the constants above for the defaults. */
export interface JsonLimits {
  /** Bytes of a schema's compact JSON text. */
  maxSchemaBytes: number;
  /** Nesting depth of a schema (an object or array is one level). */
  maxSchemaDepth: number;
  /** Nesting depth of a JSON value: config writes, values of `json` namespaces, and values parsed for reads and diffs. */
  maxJsonDepth: number;
}

/** The defaults of {@link JsonLimits}. */
export const DEFAULT_JSON_LIMITS: Readonly<JsonLimits> = Object.freeze({
  maxSchemaBytes: DEFAULT_MAX_SCHEMA_BYTES,
  maxSchemaDepth: DEFAULT_MAX_SCHEMA_DEPTH,
  maxJsonDepth: DEFAULT_MAX_JSON_DEPTH,
});

/**
 * Fills in and checks limits given to a node.
 * @throws InvalidArgumentError naming the flag when a limit is not a whole number in its range.
 */
export function resolveJsonLimits(given: Partial<JsonLimits> = {}): JsonLimits {
  const pick = (v: number | undefined, def: number, max: number, flag: string): number => {
    const n = v ?? def;
    if (!Number.isSafeInteger(n) || n < 1 || n > max) throw new InvalidArgumentError(`${flag} must be a whole number from 1 to ${max}`, { field: flag });
    return n;
  };
  return {
    maxSchemaBytes: pick(given.maxSchemaBytes, DEFAULT_MAX_SCHEMA_BYTES, 64 * 1024 * 1024, '--max-schema-bytes'),
    maxSchemaDepth: pick(given.maxSchemaDepth, DEFAULT_MAX_SCHEMA_DEPTH, MAX_SCHEMA_DEPTH_CEILING, '--max-schema-depth'),
    maxJsonDepth: pick(given.maxJsonDepth, DEFAULT_MAX_JSON_DEPTH, MAX_JSON_DEPTH_CEILING, '--max-json-depth'),
  };
}

/**
 * True when a parsed JSON value nests objects and arrays deeper than `limit` (a scalar is depth
 * 0, `{}` and `[]` depth 1). Iterative, so it is safe on any depth; it stops at the first
 * container past the limit.
 */
export function depthExceeds(value: unknown, limit: number): boolean {
  const stack: [unknown, number][] = [[value, 0]];
  for (let top = stack.pop(); top !== undefined; top = stack.pop()) {
    const [v, d] = top;
    if (v === null || typeof v !== 'object') continue;
    if (d + 1 > limit) return true;
    for (const child of Array.isArray(v) ? v : Object.values(v as Record<string, unknown>)) {
      if (child !== null && typeof child === 'object') stack.push([child, d + 1]);
    }
  }
  return false;
}

/**
 * True when JSON text nests objects and arrays deeper than `limit`, counted on the text before
 * it is parsed (brackets inside strings do not count). For valid JSON it agrees with
 * {@link depthExceeds} on the parsed value.
 */
export function textDepthExceeds(text: string, limit: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // a backslash escapes the next character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) {
      if (++depth > limit) return true;
    } else if (c === 0x7d || c === 0x5d) depth--;
  }
  return false;
}

/** The 400 for JSON nested past `limit`: `what` names the value, `flag` the `beacon serve` flag that sets the limit. */
export function tooDeep(what: string, limit: number, flag: string, details: Record<string, unknown> = {}): InvalidArgumentError {
  return new InvalidArgumentError(`${what} is nested more than ${limit} levels deep (the limit is ${limit}, set by ${flag})`, { ...details, limit, limitName: limitName(flag) });
}

/** The metric label of a limit: `--max-json-depth` → `max_json_depth`. */
export function limitName(flag: string): string {
  return flag.replace(/^--/, '').replaceAll('-', '_');
}

/** The limit an error from this module (or a schema check) reports in `details.limitName`, if any. */
export function exceededLimit(err: unknown): string | undefined {
  if (!(err instanceof InvalidArgumentError)) return undefined;
  const name = err.details?.limitName;
  return typeof name === 'string' ? name : undefined;
}
