/**
 * Which string values Redis would hold `raw` whatever their length: the results of in-place
 * edits (APPEND and SETRANGE on an existing key, SETBIT, BITOP), which Redis never re-encodes as
 * `int` or `embstr`. OBJECT ENCODING reads this; the editing commands write it. The mark lives
 * with the cache tier's values (src/cache/values.ts), which keeps it on the strings it holds.
 */
export { isRaw, markRaw } from '../../cache/index.js';
