/** The config layer (`/v1/configs`): versions `v<N>`, expected-version conflicts, history, diff, rollback; namespaces with policies (formats, schemas, secrets). */
export { ConfigService, DEFAULT_PAGE_LIMIT, MAX_PAGE_LIMIT } from './service.js';
export type {
  ConfigDiff,
  ConfigEvent,
  ConfigHistoryPage,
  ConfigListPage,
  ConfigRead,
  ConfigRollbackResult,
  ConfigSummary,
  ConfigVersion,
  ConfigWriteResult,
  HistoryCursor,
} from './service.js';
export { parseVersion, formatVersion } from './version.js';
export { encodeConfigValue, decodeConfigValue, parseContainer } from './value.js';
export type { DecodedConfigValue } from './value.js';
export { diffValues } from './diff.js';
export type { ValueDiff, TextChange } from './diff.js';
export { jsonDiff, jsonEqual } from './json-diff.js';
export type { JsonChange } from './json-diff.js';
export { diffLines, diffTexts, unifiedDiff, splitLines, MAX_DIFF_EDITS } from './line-diff.js';
export type { LineEdit } from './line-diff.js';
export { PolicyStore, parsePolicy, schemaViolations, POLICY_FIELDS, POLICY_KEY_PREFIX, MAX_FAILED_KEYS } from './policy.js';
export {
  DEFAULT_JSON_LIMITS,
  DEFAULT_MAX_JSON_DEPTH,
  DEFAULT_MAX_SCHEMA_BYTES,
  DEFAULT_MAX_SCHEMA_DEPTH,
  MAX_JSON_DEPTH_CEILING,
  MAX_SCHEMA_DEPTH_CEILING,
  resolveJsonLimits,
} from './limits.js';
export type { JsonLimits } from './limits.js';
export type { NamespacePolicy, HistoryRetention, SchemaViolation, ReadView, ReconcileResult } from './policy.js';
export { Keyring, loadKeyring, parseEnvelope } from './secrets.js';
export type { Kek } from './secrets.js';
