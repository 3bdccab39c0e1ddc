/**
 * The node's logs (pino). Two forms, chosen by `BEACON_LOG_FORMAT`:
 * - `json` (the default when stdout is not a terminal: systemd, Docker, a pipe, a file): one JSON
 *   object per line on stdout, at `BEACON_LOG_LEVEL` (default info);
 * - `pretty` (the default when stdout is a terminal): one short line per event,
 *   `12:49:09 WARN  message  key=value …`, at `BEACON_LOG_LEVEL` (default warn, so the human
 *   start-up lines of `beacon serve` on stderr are not buried under routine events).
 */
import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';

export type { Logger };

/** The two log forms (see the module comment). */
export type LogFormat = 'json' | 'pretty';

/**
 * The log form in effect: `BEACON_LOG_FORMAT` when it is `json` or `pretty`, else `pretty` when
 * stdout is a terminal and `json` otherwise.
 */
export function logFormat(): LogFormat {
  const f = process.env.BEACON_LOG_FORMAT;
  if (f === 'json' || f === 'pretty') return f;
  return process.stdout.isTTY === true ? 'pretty' : 'json';
}

/** pino's numeric levels, as printed in the pretty form. */
const LEVEL_NAMES: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };
/** Fields every record has, left out of the pretty line. */
const SKIPPED = new Set(['level', 'time', 'msg', 'service', 'pid', 'hostname']);

function field(v: unknown): string {
  if (typeof v === 'string') return /[\s"=]/.test(v) || v === '' ? JSON.stringify(v) : v;
  if (v !== null && typeof v === 'object' && typeof (v as { message?: unknown }).message === 'string') return JSON.stringify((v as { message: string }).message);
  return JSON.stringify(v);
}

/**
 * One JSON log record as a line for people: local time, level, message, then the other fields as
 * `key=value` (an error shows its message; its stack only at debug level and below).
 * @returns the line with its newline, or the input unchanged when it is not a JSON object.
 */
export function prettyLine(json: string): string {
  let rec: Record<string, unknown>;
  try {
    rec = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json.endsWith('\n') ? json : `${json}\n`;
  }
  const time = typeof rec.time === 'number' ? new Date(rec.time).toTimeString().slice(0, 8) : '';
  const level = (LEVEL_NAMES[rec.level as number] ?? String(rec.level)).padEnd(5);
  const rest = Object.entries(rec)
    .filter(([k]) => !SKIPPED.has(k))
    .map(([k, v]) => `${k}=${field(v)}`)
    .join(' ');
  return `${time} ${level} ${String(rec.msg ?? '')}${rest === '' ? '' : `  ${rest}`}\n`;
}

/** A destination that turns pino's JSON lines into {@link prettyLine}s on `out`. */
function prettyDestination(out: NodeJS.WritableStream): Writable {
  return new Writable({
    write(chunk: Buffer | string, _enc, done) {
      for (const line of chunk.toString().split('\n')) if (line !== '') out.write(prettyLine(line));
      done();
    },
  });
}

/**
 * Creates the node's logger. `level` overrides `BEACON_LOG_LEVEL`; the form follows
 * {@link logFormat}.
 */
export function createLogger(level?: string): Logger {
  const format = logFormat();
  const lvl = level ?? process.env.BEACON_LOG_LEVEL ?? (format === 'pretty' ? 'warn' : 'info');
  const opts = { level: lvl, base: { service: 'beacon' } };
  return format === 'pretty' ? pino(opts, prettyDestination(process.stdout)) : pino(opts);
}
