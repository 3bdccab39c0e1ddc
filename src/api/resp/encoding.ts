/**
 * Which string values Redis would hold `raw` whatever their length: the results of in-place
 * edits (APPEND and SETRANGE on an existing key, SETBIT, BITOP), which Redis never re-encodes as
 * `int` or `embstr`. OBJECT ENCODING reads this; the editing commands write it.
 */

/** Held weakly: a replaced value drops out by itself. */
const rawStrings = new WeakSet<Buffer>();

/** Marks `b` as the product of an in-place string edit (OBJECT ENCODING then answers `raw`). */
export function markRaw(b: Buffer): void {
  rawStrings.add(b);
}

/** Whether `b` was marked by {@link markRaw}. */
export function isRaw(b: Buffer): boolean {
  return rawStrings.has(b);
}
