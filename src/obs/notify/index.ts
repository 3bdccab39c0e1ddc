/** Notifications: alerts to real Alertmanagers, and a built-in Alertmanager-like notifier (routes, grouping, webhook and email receivers, silences). */
export { AlertmanagerClient, AM_MAX_BATCH, DEFAULT_AM_QUEUE_CAPACITY, DEFAULT_AM_TIMEOUT_MS } from './alertmanager-client.js';
export type { AlertmanagerClientOptions, AlertmanagerMetrics, AlertmanagerLabels, AlertmanagerStatus } from './alertmanager-client.js';
export { Notifier } from './notifier.js';
export type { NotifierOptions, NotifyMetrics, NotificationLabels, ReceiverHistoryEntry } from './notifier.js';
export {
  parseNotifyConfig,
  notifyConfigFromObject,
  DEFAULT_GROUP_WAIT_MS,
  DEFAULT_GROUP_INTERVAL_MS,
  DEFAULT_REPEAT_INTERVAL_MS,
  DEFAULT_RESOLVE_TIMEOUT_MS,
  DEFAULT_WEBHOOK_TIMEOUT_MS,
} from './config.js';
export type { NotifyConfig, NotifyRoute, ReceiverConfig, WebhookConfig, EmailConfig, InhibitRule } from './config.js';
export { Silences, SILENCE_RETENTION_MS, silenceInputFromRequest } from './silences.js';
export type { Silence, SilenceInput, SilenceState } from './silences.js';
export { fingerprint, parseMatchers, compileMatcher, matcherString, parseDurationMs, validateAlert, ZERO_TIME } from './labels.js';
export type { NotifyAlert, Matcher, CompiledMatcher } from './labels.js';
export { webhookPayload, emailSubject, emailText, emailHtml } from './render.js';
export type { WebhookPayload, PayloadAlert, NotificationData } from './render.js';
