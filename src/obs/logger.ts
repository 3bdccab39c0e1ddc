/** Structured JSON logs (pino); `BEACON_LOG_LEVEL` sets the level (default info, silent under tests). */
import { pino, type Logger } from 'pino';

export type { Logger };

/** Creates the node's logger. `level` overrides `BEACON_LOG_LEVEL`. */
export function createLogger(level?: string): Logger {
  return pino({ level: level ?? process.env.BEACON_LOG_LEVEL ?? 'info', base: { service: 'beacon' } });
}
