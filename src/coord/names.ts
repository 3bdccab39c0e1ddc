/** Key layout of the coordination recipes: contender keys, contender ordering, sequential key names. */
import { InvalidArgumentError } from '../errors.js';
import { SYSTEM_PREFIX, prefixEnd, validateKey, validateStoreKey, type KeyValue, type Store } from '../kv/index.js';

/**
 * Where sequence counters live: the system key `\u0000seq/<prefix>`. No client API can name a
 * system key, so a listing of `prefix/` shows only the sequential keys and nobody can reset or
 * corrupt the counter.
 */
export const SEQUENCE_COUNTER_PREFIX = `${SYSTEM_PREFIX}seq/`;

/** Digits of the zero-padded counter in a sequential key (enough for any 64-bit number). */
export const SEQUENCE_DIGITS = 20;

/**
 * Checks a lock or election name: a non-empty string that, with `/` and a lease id appended,
 * is a valid key.
 * @throws InvalidArgumentError / TooLargeError naming `what`.
 */
export function validateName(name: unknown, what = 'name'): string {
  if (typeof name !== 'string' || name.length === 0) throw new InvalidArgumentError(`${what} must be a non-empty string`);
  // Room for `/` and the longest hex lease id, so a valid name never yields an invalid key.
  validateKey(`${name}/${'f'.repeat(13)}`, what);
  return name;
}

/** Checks a lease id given to a recipe: a positive safe integer. @throws InvalidArgumentError otherwise. */
export function validateLease(lease: unknown): number {
  if (typeof lease !== 'number' || !Number.isSafeInteger(lease) || lease <= 0) {
    throw new InvalidArgumentError('a lock or election needs a lease: a positive integer id', { lease });
  }
  return lease;
}

/** The key a contender holding `lease` puts under `name`: `name/<lease id in lowercase hex>` (etcd's layout). */
export function contenderKey(name: string, lease: number): string {
  return `${name}/${lease.toString(16)}`;
}

/**
 * Every contender of a lock or election, ordered by createRevision (the queue; the first is the
 * holder). Only direct children of `name/` count, so a lock `a` is not disturbed by a lock `a/b`.
 */
export function contenders(store: Store, name: string): KeyValue[] {
  const prefix = `${name}/`;
  const out: KeyValue[] = [];
  for (const kv of store.rangeLatest(prefix, prefixEnd(prefix)).kvs) {
    if (!kv.key.includes('/', prefix.length)) out.push(kv);
  }
  return out.sort((a, b) => a.createRevision - b.createRevision);
}

/** The contender with the lowest createRevision (the holder or leader), or undefined. */
export function firstContender(store: Store, name: string): KeyValue | undefined {
  const prefix = `${name}/`;
  let first: KeyValue | undefined;
  for (const kv of store.rangeLatest(prefix, prefixEnd(prefix)).kvs) {
    if (kv.key.includes('/', prefix.length)) continue;
    if (first === undefined || kv.createRevision < first.createRevision) first = kv;
  }
  return first;
}

/** The contender with the highest createRevision below `createRevision` (the one to wait for), or undefined. */
export function predecessor(store: Store, name: string, createRevision: number): KeyValue | undefined {
  const prefix = `${name}/`;
  let pred: KeyValue | undefined;
  for (const kv of store.rangeLatest(prefix, prefixEnd(prefix)).kvs) {
    if (kv.key.includes('/', prefix.length)) continue;
    if (kv.createRevision < createRevision && (pred === undefined || kv.createRevision > pred.createRevision)) pred = kv;
  }
  return pred;
}

/**
 * Checks a sequence prefix: a non-empty key-like string not ending in `/` (the `/` is added).
 * @throws InvalidArgumentError / TooLargeError.
 */
export function validateSequencePrefix(prefix: unknown): string {
  if (typeof prefix !== 'string' || prefix.length === 0) throw new InvalidArgumentError('sequence prefix must be a non-empty string');
  if (prefix.endsWith('/')) {
    throw new InvalidArgumentError(`sequence prefix '${prefix}' must not end with '/': keys are created as '<prefix>/<counter>'`);
  }
  validateStoreKey(`${SEQUENCE_COUNTER_PREFIX}${prefix}`, 'sequence prefix');
  validateKey(`${prefix}/${'0'.repeat(SEQUENCE_DIGITS)}`, 'sequence prefix');
  return prefix;
}

/** The key of sequence number `n` under `prefix`: `prefix/` and `n` zero-padded to {@link SEQUENCE_DIGITS} digits. */
export function sequentialKey(prefix: string, n: number): string {
  return `${prefix}/${String(n).padStart(SEQUENCE_DIGITS, '0')}`;
}
