/**
 * The key layout the coordination recipes share with the server (`src/coord`, docs/coordination.md):
 * a contender of lock or election `NAME` is the key `NAME/<lease id in lowercase hex>`, and only
 * direct children of `NAME/` take part. Kept in step with the server so that SDK clients, HTTP
 * clients and the server's own waits see one queue.
 */
import { InvalidArgumentError } from '../src/errors.js';
import type { KeyValue } from './types.js';

/** Checks a lock or election name. @throws InvalidArgumentError for an empty or non-string name. */
export function checkName(name: unknown, what: string): string {
  if (typeof name !== 'string' || name.length === 0) throw new InvalidArgumentError(`${what} must be a non-empty string`);
  return name;
}

/** The contender key of `lease` in `name`: `name/<lease hex>`. */
export function contenderKey(name: string, lease: number): string {
  return `${name}/${lease.toString(16)}`;
}

/** The contenders among `kvs` (a range of `name/`): direct children only, in createRevision order. */
export function contendersOf(name: string, kvs: readonly KeyValue[]): KeyValue[] {
  const prefix = `${name}/`;
  return kvs.filter((kv) => kv.key.startsWith(prefix) && !kv.key.includes('/', prefix.length)).sort((a, b) => a.createRevision - b.createRevision);
}
