/** Helpers for the security tests: a node with authentication on, logins, users with roles, authenticated requests. */
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import type { NodeOptions } from '../../src/node/index.js';
import { http, startTestNode } from '../helpers/node.js';

/** The first administrator's password in these tests. */
export const ADMIN_PASSWORD = 'admin-password-for-tests';

export type SecureNode = Awaited<ReturnType<typeof startTestNode>>;

/** A node with authentication on (no `--dev`), no login rate limit unless given, silent logs unless a logger is given. */
export function startSecureNode(opts: NodeOptions = {}): Promise<SecureNode> {
  return startTestNode({
    ...opts,
    dev: false,
    security: { adminPassword: ADMIN_PASSWORD, loginRateLimit: null, ...(opts.security ?? {}) },
  });
}

/** POST /v1/auth/token; resolves with the token. @throws when the login fails. */
export async function login(url: string, username: string, password: string): Promise<string> {
  const res = await http(`${url}/v1/auth/token`, { method: 'POST', body: { username, password } });
  if (res.status !== 200) throw new Error(`login of ${username} answered ${res.status}: ${JSON.stringify(res.body)}`);
  return res.body.token as string;
}

/** A client bound to one credential: `call(path, init)` adds `Authorization: Bearer …`. */
export function client(url: string, token: string | undefined) {
  return (path: string, init: { method?: string; body?: unknown; raw?: string | Buffer; headers?: Record<string, string> } = {}) =>
    http(`${url}${path}`, { ...init, headers: { ...(token !== undefined ? { authorization: `Bearer ${token}` } : {}), ...(init.headers ?? {}) } });
}

/** Creates a user with `roles` as the admin and logs it in; resolves with its token. */
export async function userToken(url: string, adminToken: string, name: string, roles: string[]): Promise<string> {
  const password = `${name}-password-1`;
  const res = await client(url, adminToken)('/v1/users', { method: 'POST', body: { name, password, roles } });
  if (res.status !== 201) throw new Error(`creating ${name} answered ${res.status}: ${JSON.stringify(res.body)}`);
  return login(url, name, password);
}

/** A pino logger at trace level whose every line is kept in `lines` (to scan what the node logs). */
export function capturingLogger(): { logger: NodeOptions['logger']; text: () => string } {
  const chunks: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk.toString('utf8'));
      cb();
    },
  });
  return { logger: pino({ level: 'trace' }, sink), text: () => chunks.join('') };
}

/** Writes a key-encryption key file (one random 256-bit key, id `k1`, mode 0600) in `dir`; returns its path. */
export function writeKekFile(dir: string): string {
  const kekFile = join(dir, 'kek');
  writeFileSync(kekFile, `k1:${randomBytes(32).toString('hex')}\n`, { mode: 0o600 });
  return kekFile;
}
