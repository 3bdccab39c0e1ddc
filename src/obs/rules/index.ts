/** Prometheus rules: the rule-file model and validation, template rendering, the alert/recording rule evaluator and rule unit tests. */
export type { AlertingRule, RecordingRule, Rule, RuleGroup, LoadedRuleFile } from './model.js';
export { loadRuleFile, parseRuleFile, duplicateRules, parseDuration, formatDuration } from './model.js';
export { RuleFileError, TemplateError } from './errors.js';
export type { TemplateData } from './template.js';
export { renderTemplate, expandTemplate, checkTemplate } from './template.js';
export { formatFloat, humanize, humanize1024, humanizeDuration, humanizePercentage, goSprintf } from './format.js';
export type { Alert, AlertState, RuleSample, RuleStatus, EvaluatorOptions } from './evaluator.js';
export { RuleEvaluator, ruleIdentity } from './evaluator.js';
export type { RuleTestResult } from './unittest.js';
export { runRuleTestFile } from './unittest.js';
