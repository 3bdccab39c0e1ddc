/** Observability: the Prometheus metrics registry and the structured logger. */
export { Metrics } from './metrics.js';
export type { CacheNamespaceSample, RequestSeries } from './metrics.js';
export { createLogger, logFormat } from './logger.js';
export type { Logger, LogFormat } from './logger.js';
