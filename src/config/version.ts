/** Config versions on the wire: the kv `version` counter written as `v<N>` (DESIGN.md §4). */
import { InvalidArgumentError } from '../errors.js';

const VERSION_RE = /^v([1-9][0-9]*)$/;

/**
 * Parses a version string such as `"v2"` into its counter (2).
 * @param field the request field or query parameter it came from, named in the error.
 * @throws InvalidArgumentError when it is not a string `v<N>` with N a positive safe integer
 * (`"2"`, `"vx"`, `"v0"`, `"v01"` are all rejected).
 * @example parseVersion('v3') // → 3
 */
export function parseVersion(raw: unknown, field = 'version'): number {
  if (typeof raw !== 'string') {
    throw new InvalidArgumentError(`'${field}' must be a string like "v2"`, { field });
  }
  const m = VERSION_RE.exec(raw);
  const n = m === null ? NaN : Number(m[1]);
  if (!Number.isSafeInteger(n)) {
    throw new InvalidArgumentError(`'${field}' must look like "v1", "v2", … (got ${JSON.stringify(raw.slice(0, 40))})`, {
      field,
      value: raw.slice(0, 40),
    });
  }
  return n;
}

/**
 * Formats a version counter as `v<N>`.
 * @example formatVersion(2) // → "v2"
 */
export function formatVersion(version: number): string {
  return `v${version}`;
}
