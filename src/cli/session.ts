/**
 * The CLI's saved login, as `gh auth login` and `vault login` keep one: `beacon login` stores, per
 * endpoint, a short-lived access token and the refresh token of `POST /v1/auth/token` in
 * `credentials.json` (mode 0600, in a 0700 directory) under `BEACON_CONFIG_DIR`, else
 * `$XDG_CONFIG_HOME/beacon`, else `~/.config/beacon`. A command run without `--token` and
 * `BEACON_TOKEN` uses it, trading the refresh token at `POST /v1/auth/refresh` for a new access
 * token when the old one is about to expire, so one login lasts a working session (12 hours by
 * default) while no bearer token lives longer than the node's `--token-ttl`.
 */
import { chmodSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { UnauthenticatedError } from '../errors.js';
import { nodeFetch } from './http-fetch.js';

/** One endpoint's saved login; times in ms since the epoch. */
export interface SavedSession {
  user: string;
  token: string;
  expiresAt: number;
  refreshToken: string;
  refreshExpiresAt: number;
}

interface CredentialsFile {
  sessions: Record<string, SavedSession>;
}

/** An access token this close to its expiry (ms) is refreshed before use, so it does not expire in flight. */
const REFRESH_MARGIN_MS = 60_000;

/** The directory of the CLI's saved logins (see the module comment). */
export function configDir(): string {
  const explicit = process.env.BEACON_CONFIG_DIR;
  if (explicit !== undefined && explicit !== '') return explicit;
  const xdg = process.env.XDG_CONFIG_HOME;
  return join(xdg !== undefined && xdg !== '' ? xdg : join(homedir(), '.config'), 'beacon');
}

/** The file holding the saved logins. */
export function credentialsFile(): string {
  return join(configDir(), 'credentials.json');
}

/** The key a login is saved under: the endpoint as given, without trailing slashes. */
export function endpointKey(endpoint: string): string {
  return endpoint.trim().replace(/\/+$/, '');
}

function readAll(): CredentialsFile {
  try {
    const parsed = JSON.parse(readFileSync(credentialsFile(), 'utf8')) as Partial<CredentialsFile>;
    return { sessions: typeof parsed.sessions === 'object' && parsed.sessions !== null ? parsed.sessions : {} };
  } catch {
    // Missing or unreadable: no saved login (a corrupt file is replaced by the next login).
    return { sessions: {} };
  }
}

function writeAll(f: CredentialsFile): void {
  const dir = configDir();
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = credentialsFile();
  const tmp = `${file}.${process.pid}.tmp`;
  // Written whole and renamed: two CLIs refreshing at once never leave a half-written file.
  writeFileSync(tmp, `${JSON.stringify(f, null, 2)}\n`, { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, file);
}

/** The saved login for `endpoint`, if any (expired or not). */
export function loadSession(endpoint: string): SavedSession | undefined {
  return readAll().sessions[endpointKey(endpoint)];
}

/** Saves (replaces) the login for `endpoint`. @returns the file it is in. */
export function saveSession(endpoint: string, s: SavedSession): string {
  const f = readAll();
  f.sessions[endpointKey(endpoint)] = s;
  writeAll(f);
  return credentialsFile();
}

/** Forgets the login for `endpoint`. @returns whether there was one. */
export function removeSession(endpoint: string): boolean {
  const f = readAll();
  const key = endpointKey(endpoint);
  if (f.sessions[key] === undefined) return false;
  delete f.sessions[key];
  if (Object.keys(f.sessions).length === 0) rmSync(credentialsFile(), { force: true });
  else writeAll(f);
  return true;
}

/** The one hint for a login that is over, wherever it shows. */
export function loginAgainHint(user?: string): string {
  return `log in again: beacon login --user ${user ?? 'NAME'}`;
}

/**
 * A usable access token from the saved login for `endpoint`: the saved one while it has more than
 * a minute left, else a new one from `POST /v1/auth/refresh` (saved for the next command).
 * @returns undefined when there is no saved login.
 * @throws UnauthenticatedError when the login is over (refresh token expired or refused), with
 *   the one hint to log in again; the saved login is then forgotten.
 */
export async function sessionToken(endpoint: string, timeoutMs: number): Promise<string | undefined> {
  const s = loadSession(endpoint);
  if (s === undefined) return undefined;
  const now = Date.now();
  if (s.expiresAt - REFRESH_MARGIN_MS > now) return s.token;
  if (s.refreshExpiresAt <= now) {
    removeSession(endpoint);
    throw new UnauthenticatedError(`your login as ${s.user} at ${endpointKey(endpoint)} has expired; ${loginAgainHint(s.user)}`, { reason: 'login_over' });
  }
  const base = endpointKey(endpoint.split(',')[0] ?? endpoint);
  let res: Response;
  try {
    res = await nodeFetch(`${base}/v1/auth/refresh`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ refreshToken: s.refreshToken }),
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch {
    // The node is unreachable: let the command itself fail with the usual "cannot reach" message.
    return s.token;
  }
  const body = (await res.json().catch(() => ({}))) as { token?: string; expiresAt?: string; error?: { message?: string } };
  if (res.status === 401) {
    removeSession(endpoint);
    throw new UnauthenticatedError(`your login as ${s.user} at ${endpointKey(endpoint)} is over (${body.error?.message ?? 'refused'}); ${loginAgainHint(s.user)}`, {
      reason: 'login_over',
    });
  }
  if (!res.ok || typeof body.token !== 'string' || typeof body.expiresAt !== 'string') return s.token;
  const next = { ...s, token: body.token, expiresAt: Date.parse(body.expiresAt) };
  saveSession(endpoint, next);
  return next.token;
}
