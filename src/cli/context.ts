/**
 * What every client command shares: the global options (`--endpoint`, `--json`, `--timeout`, `--token`),
 * the SDK client built from them, output helpers (human text or JSON on stdout, diagnostics on
 * stderr), argument parsers, stdin, Ctrl-C handling and progress bars.
 */
import { InvalidArgumentError as CommanderInvalidArgument, type Command } from 'commander';
import { BeaconClient, DEFAULT_ENDPOINT, DEFAULT_TIMEOUT_MS, type KeyValue } from '../../client/index.js';
import { InvalidArgumentError } from '../errors.js';
import { nodeFetch } from './http-fetch.js';

/** What `beacon serve` does, in `beacon --help` (main.ts lists it without loading the server). */
export const SERVE_DESCRIPTION = 'run a Beacon node (embedded SQLite in ./data by default); authentication is on unless --dev';

/** The options every client command accepts (declared once, on the program). */
export interface GlobalOptions {
  endpoint: string;
  json: boolean;
  timeout: number;
  token?: string;
}

/** Parses a non-negative integer option or argument; commander turns the throw into a usage error (exit 2). */
export function parseCount(value: string): number {
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(Number(value))) throw new CommanderInvalidArgument('expected a non-negative integer');
  return Number(value);
}

/** Parses a positive integer (revisions, lease ids, TTLs). */
export function parsePositive(value: string): number {
  const n = parseCount(value);
  if (n === 0) throw new CommanderInvalidArgument('expected a positive integer');
  return n;
}

function envTimeout(): number {
  const n = Number(process.env.BEACON_TIMEOUT_MS);
  return Number.isSafeInteger(n) && n > 0 ? n : DEFAULT_TIMEOUT_MS;
}

/** Declares the global options on the program. */
export function addGlobalOptions(program: Command): void {
  program
    .option('--endpoint <url>', 'Beacon HTTP endpoint (env BEACON_ENDPOINT)', process.env.BEACON_ENDPOINT || DEFAULT_ENDPOINT)
    .option('--token <token>', 'bearer token or API key for a node with authentication (env BEACON_TOKEN; never shown by --help)')
    .option('--json', 'print machine-readable JSON instead of text', false)
    .option('--timeout <ms>', 'per-request timeout in milliseconds (env BEACON_TIMEOUT_MS)', parsePositive, envTimeout());
}

/** A command's view of the world: its client, output mode, and writers. */
export interface CliContext {
  client: BeaconClient;
  json: boolean;
  endpoint: string;
}

/** Where the command's credential came from: decides the hint when it is refused as expired. */
export type TokenSource = 'option' | 'env' | 'login' | 'none';

/** The access token of the saved login, once {@link resolveCredentials} has fetched it. */
let savedLoginToken: string | undefined;

/**
 * The credential a command uses and where it came from: `--token`, else `BEACON_TOKEN`, else the
 * saved login of `beacon login` (src/cli/session.ts) once {@link resolveCredentials} ran.
 */
export function credentialOf(cmd: Command): { token: string | undefined; source: TokenSource } {
  const o = cmd.optsWithGlobals<GlobalOptions>();
  // BEACON_TOKEN is read here, not as the option's default, so that --help never prints a credential.
  if (o.token !== undefined) return { token: o.token, source: 'option' };
  const env = process.env.BEACON_TOKEN;
  if (env !== undefined && env !== '') return { token: env, source: 'env' };
  return savedLoginToken !== undefined ? { token: savedLoginToken, source: 'login' } : { token: undefined, source: 'none' };
}

/**
 * Before a client command runs: when it has neither `--token` nor `BEACON_TOKEN`, loads the saved
 * login for its endpoint, refreshing its access token when it is about to expire.
 * @throws UnauthenticatedError when the saved login is over (with the hint to log in again).
 */
export async function resolveCredentials(cmd: Command): Promise<void> {
  if (credentialOf(cmd).source !== 'none') return;
  const o = cmd.optsWithGlobals<GlobalOptions>();
  const { sessionToken } = await import('./session.js');
  savedLoginToken = await sessionToken(o.endpoint, o.timeout);
}

/** Builds the context of a command from its (and the program's) options. */
export function contextOf(cmd: Command): CliContext {
  const o = cmd.optsWithGlobals<GlobalOptions>();
  const { token } = credentialOf(cmd);
  const client = new BeaconClient({ endpoint: o.endpoint, timeoutMs: o.timeout, token, fetch: nodeFetch });
  return { client, json: o.json, endpoint: client.endpoint };
}

/** Writes a line (or raw bytes) to stdout. */
export function out(text: string | Uint8Array = ''): void {
  if (typeof text === 'string') process.stdout.write(`${text}\n`);
  else process.stdout.write(text);
}

/** Writes one JSON document on one line to stdout (NDJSON for streams of results). */
export function outJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}

/** Writes a diagnostic line to stderr, prefixed like every CLI message. */
export function note(text: string): void {
  process.stderr.write(`beacon: ${text}\n`);
}

/**
 * A kv in the HTTP API's JSON form: text value, or base64 with `encoding`; no value when
 * `keysOnly`; `redacted: true` and no value for a secret the caller may not read.
 */
export function kvJson(kv: KeyValue, keysOnly = false): Record<string, unknown> {
  const o: Record<string, unknown> = { key: kv.key };
  if (kv.redacted) o.redacted = true; // a secret the caller may not read: no value, as in the HTTP API
  else if (kv.error !== undefined) o.error = kv.error; // a secret the node cannot decrypt: no value, as in the HTTP API
  else if (!keysOnly) {
    if (kv.text !== undefined) o.value = kv.text;
    else {
      o.value = Buffer.from(kv.value.buffer, kv.value.byteOffset, kv.value.byteLength).toString('base64');
      o.encoding = 'base64';
    }
  }
  o.createRevision = kv.createRevision;
  o.modRevision = kv.modRevision;
  o.version = kv.version;
  o.lease = kv.lease;
  return o;
}

/** What human output shows in place of a secret value the caller may not read. */
export const REDACTED = '<redacted>';

/**
 * A value for one line of human output: the text as it is when it fits on one line, JSON-quoted
 * when it holds line breaks, `<N bytes, binary>` when it is not valid UTF-8, and `<redacted>` for
 * a secret the caller may not read, `<error: …>` for one the node cannot decrypt.
 */
export function inlineValue(kv: KeyValue): string {
  if (kv.redacted) return REDACTED;
  if (kv.error !== undefined) return `<error: ${kv.error.message}>`;
  if (kv.text === undefined) return `<${kv.value.byteLength} bytes, binary>`;
  return /[\r\n]/.test(kv.text) ? JSON.stringify(kv.text) : kv.text;
}

/** Formats a byte count for people (`1.5 MiB`). */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(1)} ${units[i]}`;
}

/**
 * Reads all of stdin as bytes.
 * @throws InvalidArgumentError when stdin is a terminal (nothing was piped), naming what was expected.
 */
export async function readStdin(what: string): Promise<Buffer> {
  if (process.stdin.isTTY) throw new InvalidArgumentError(`${what} is missing: give it as an argument or pipe it on stdin`);
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/**
 * An AbortSignal that fires on the first Ctrl-C (SIGINT) or SIGTERM; a second Ctrl-C exits at
 * once. `dispose()` removes the handlers.
 */
export function interruptSignal(): { signal: AbortSignal; dispose: () => void } {
  const controller = new AbortController();
  const onSignal = (): void => {
    if (controller.signal.aborted) process.exit(130);
    controller.abort(new DOMException('interrupted', 'AbortError'));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return {
    signal: controller.signal,
    dispose: () => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
}

/** A progress bar on stderr when it is a terminal and output is for people; a no-op otherwise. */
export interface Progress {
  update(value: number): void;
  stop(): void;
}

/** A progress bar that shows nothing. */
export const NO_PROGRESS: Progress = { update: () => undefined, stop: () => undefined };

/**
 * Starts a progress bar of `total` units; `unit` 'bytes' formats values as sizes. cli-progress
 * is loaded only when a bar is really drawn, to keep every other command's start-up quick.
 */
export async function progressBar(total: number, label: string, unit: 'bytes' | 'keys', enabled: boolean): Promise<Progress> {
  if (!enabled || !process.stderr.isTTY || total <= 0) return NO_PROGRESS;
  const { default: cliProgress } = await import('cli-progress');
  const bar = new cliProgress.SingleBar(
    {
      format: `${label} |{bar}| {percentage}% {done}/{all} ETA {eta_formatted}`,
      stream: process.stderr,
      hideCursor: true,
      clearOnComplete: false,
    },
    cliProgress.Presets.shades_classic,
  );
  const show = (v: number): string => (unit === 'bytes' ? formatBytes(v) : String(v));
  bar.start(total, 0, { done: show(0), all: show(total) });
  return {
    update: (v) => bar.update(v, { done: show(v), all: show(total) }),
    stop: () => bar.stop(),
  };
}
