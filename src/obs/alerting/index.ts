/** The alert engine at run time: rule files in the store, evaluation on one node per cluster, alerts to the notifiers. */
export { RuleManager, checkRuleFileText, addRuleToText } from './manager.js';
export type { RuleManagerOptions, RuleFileInfo, GroupStatus, ActiveAlert, OutgoingAlert } from './manager.js';
export { RULE_FILE_PREFIX, SILENCE_PREFIX, isValidName } from './keys.js';
export { loadDefaultRules, DEFAULT_RULES_FILE } from './defaults.js';
