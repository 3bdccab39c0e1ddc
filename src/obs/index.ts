/** Observability: the Prometheus metrics registry and the structured logger. */
export { Metrics } from './metrics.js';
export { createLogger } from './logger.js';
export type { Logger } from './logger.js';
