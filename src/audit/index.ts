/** The audit log: who changed what and when, failed logins and denied requests, with retention and export. */
export { AuditLog, auditToJson, DEFAULT_AUDIT_RETENTION_DAYS, MAX_AUDIT_PAGE } from './audit-log.js';
export type { AuditEntry, AuditRecordJson } from './audit-log.js';
