/** Where alerting keeps its state in the kv store: system keys, so no client range ever reaches them. */
import { SYSTEM_PREFIX } from '../../kv/index.js';

/** A rule file named `n` is the key `RULE_FILE_PREFIX + n`; its value is the file's text (YAML or JSON). */
export const RULE_FILE_PREFIX = `${SYSTEM_PREFIX}alerts/rules/`;
/** The alert state of rule file `n` (written by the evaluating node on every state change) is the key `ALERT_STATE_PREFIX + n`. */
export const ALERT_STATE_PREFIX = `${SYSTEM_PREFIX}alerts/state/`;
/** A silence with id `i` is the key `SILENCE_PREFIX + i`; its value is the silence as JSON. */
export const SILENCE_PREFIX = `${SYSTEM_PREFIX}alerts/silences/`;

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/**
 * Whether `name` may name a rule file: 1–128 characters of letters, digits, `.`, `_`
 * and `-`, starting with a letter or digit (it is part of a URL path and of a key).
 */
export function isValidName(name: string): boolean {
  return NAME.test(name);
}
