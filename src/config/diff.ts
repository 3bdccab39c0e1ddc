/** The diff of two stored config values: structural for JSON objects/arrays, a line diff for text. */
import { isUtf8 } from 'node:buffer';
import { jsonDiff, type JsonChange } from './json-diff.js';
import { diffTexts, unifiedDiff } from './line-diff.js';
import { DEFAULT_MAX_JSON_DEPTH } from './limits.js';
import { parseContainer } from './value.js';

/** One changed line of a text diff; `line` is 1-based in the old text (removed) or the new text (added). */
export interface TextChange {
  op: 'added' | 'removed';
  line: number;
  text: string;
}

/**
 * The difference between two values:
 * - `json` when both are JSON objects or arrays: `changes` are structural ({@link JsonChange});
 * - `text` otherwise: `changes` are the removed and added lines, `unified` is a unified diff;
 * - `binary` when either is not UTF-8: `changes` is empty or one whole-value change.
 */
export type ValueDiff =
  | { format: 'json'; changes: JsonChange[] }
  | { format: 'text'; changes: TextChange[]; unified: string }
  | { format: 'binary'; changes: { path: ''; op: 'changed' }[] };

/**
 * Diffs two stored values; `fromLabel`/`toLabel` name the sides in the unified diff's header.
 * JSON nested deeper than `maxDepth` (`--max-json-depth`) is diffed as text.
 * @example diffValues(bytes('{"a":1}'), bytes('{"a":2}'), 'v1', 'v2')
 * // → { format: 'json', changes: [{ path: '/a', op: 'changed', from: 1, to: 2 }] }
 */
export function diffValues(from: Uint8Array, to: Uint8Array, fromLabel: string, toLabel: string, maxDepth = DEFAULT_MAX_JSON_DEPTH): ValueDiff {
  const a = Buffer.from(from.buffer, from.byteOffset, from.byteLength);
  const b = Buffer.from(to.buffer, to.byteOffset, to.byteLength);
  if (!isUtf8(a) || !isUtf8(b)) return { format: 'binary', changes: a.equals(b) ? [] : [{ path: '', op: 'changed' }] };
  const ta = a.toString('utf8');
  const tb = b.toString('utf8');
  const ja = parseContainer(ta, maxDepth);
  const jb = parseContainer(tb, maxDepth);
  if (ja !== undefined && jb !== undefined) return { format: 'json', changes: jsonDiff(ja, jb) };
  const changes: TextChange[] = [];
  for (const e of diffTexts(ta, tb).edits) {
    if (e.op === 'removed') changes.push({ op: 'removed', line: e.oldIndex + 1, text: e.text });
    else if (e.op === 'added') changes.push({ op: 'added', line: e.newIndex + 1, text: e.text });
  }
  return { format: 'text', changes, unified: unifiedDiff(ta, tb, fromLabel, toLabel) };
}
