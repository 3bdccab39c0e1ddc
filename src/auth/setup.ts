/**
 * Start-up of a node's security: the identity store, the token signing key (generated on first
 * start, never a default), the first administrator, optional OIDC, rate limits and the audit
 * log with its retention.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AuditLog, DEFAULT_AUDIT_RETENTION_DAYS } from '../audit/index.js';
import { InvalidArgumentError } from '../errors.js';
import type { Store } from '../kv/index.js';
import type { Logger } from '../obs/index.js';
import { IdentityStore } from './identity.js';
import { OidcVerifier, type OidcOptions } from './oidc.js';
import { validatePassword } from './password.js';
import type { RateSpec } from './rate-limit.js';
import { AuthService } from './service.js';
import {
  DEFAULT_TOKEN_TTL_SECONDS,
  SIGNING_KEY_SYSTEM_KEY,
  TokenService,
  loadOrCreateKeyFile,
  loadOrCreateKeyInStore,
  parseKeyring,
  saveKeyFile,
  saveKeyringInStore,
} from './tokens.js';

/** The file a generated first administrator password is written to, in the data directory. */
export const ADMIN_PASSWORD_FILE = 'admin-password';
/** The default per-source-address limit of `POST /v1/auth/token`: 20 attempts a minute. */
export const DEFAULT_LOGIN_RATE: RateSpec = { rate: 20 / 60, burst: 20 };

/** Security options of a node (`beacon serve` flags; docs/security.md). */
export interface SecurityOptions {
  /** Password of the first administrator; default `BEACON_ADMIN_PASSWORD`, else a random one written to `<data-dir>/admin-password`. */
  adminPassword?: string;
  /** Lifetime of issued tokens in seconds (default 900). */
  tokenTtlSeconds?: number;
  /** Per-principal limit on every request (default none). */
  rateLimit?: RateSpec | null;
  /** Per-address limit on `POST /v1/auth/token` (default 20/min; null for none). */
  loginRateLimit?: RateSpec | null;
  /** `/metrics` without credentials. */
  metricsPublic?: boolean;
  /** Roles for client-certificate CNs. */
  clientCertRoles?: Record<string, string[]>;
  oidc?: OidcOptions;
  /** Days audit records are kept (default 365; 0 keeps them forever). */
  auditRetentionDays?: number;
}

/** The first administrator created at this start, if any. */
export interface AdminBootstrap {
  user: 'admin';
  /** The generated password (undefined when it came from BEACON_ADMIN_PASSWORD or the options). */
  generatedPassword?: string;
  /** Where the generated password was written (mode 0600). */
  file?: string;
}

/** What {@link startSecurity} returns. */
export interface Security {
  auth: AuthService;
  audit: AuditLog;
  bootstrap: AdminBootstrap | undefined;
  stop(): void;
}

/**
 * Starts a node's security after the store has opened. With `dev`, no administrator is
 * bootstrapped (a later start without `--dev` does it), but the identity store still loads so
 * a dev node can be switched to secure mode without surprises.
 * @param shared true for a shared backend (PostgreSQL): the signing key then lives in the store
 * so every node of the cluster accepts every node's tokens; otherwise in `<dataDir>/jwt-signing.key`.
 * @throws InvalidArgumentError for a bad admin password or OIDC option.
 */
export async function startSecurity(o: {
  store: Store;
  dataDir: string;
  logger: Logger;
  dev: boolean;
  shared: boolean;
  options?: SecurityOptions;
}): Promise<Security> {
  const opts = o.options ?? {};
  if (opts.tokenTtlSeconds !== undefined && (!Number.isSafeInteger(opts.tokenTtlSeconds) || opts.tokenTtlSeconds < 1)) {
    throw new InvalidArgumentError('the token lifetime must be a positive number of seconds');
  }
  const audit = new AuditLog(o.store.backend, o.logger, opts.auditRetentionDays ?? DEFAULT_AUDIT_RETENTION_DAYS);
  const identity = new IdentityStore(o.store);
  identity.start();
  const keys = o.shared ? await loadOrCreateKeyInStore(o.store) : loadOrCreateKeyFile(o.dataDir, o.logger);
  const tokens = new TokenService(keys, opts.tokenTtlSeconds ?? DEFAULT_TOKEN_TTL_SECONDS);
  let unsubscribeKeys: (() => void) | undefined;
  if (o.shared) {
    tokens.persist = (old, next) => saveKeyringInStore(o.store, old, next);
    // A rotation on any node reaches every node through the change feed.
    unsubscribeKeys = o.store.subscribe((rev) => {
      for (const ev of rev.events) {
        if (ev.kv.key !== SIGNING_KEY_SYSTEM_KEY || ev.type !== 'put') continue;
        try {
          tokens.setKeys(parseKeyring(Buffer.from(ev.kv.value).toString('utf8'), 'the stored signing key'));
        } catch (err) {
          o.logger.error({ err }, 'ignored an unreadable signing keyring from the store');
        }
      }
    });
  } else {
    tokens.persist = async (_old, next) => saveKeyFile(o.dataDir, next);
  }
  const oidc = opts.oidc !== undefined ? new OidcVerifier(opts.oidc) : undefined;
  let bootstrap: AdminBootstrap | undefined;
  if (!o.dev && !identity.hasUsers) {
    const given = opts.adminPassword ?? process.env.BEACON_ADMIN_PASSWORD;
    if (given !== undefined && given !== '') validatePassword(given, 'BEACON_ADMIN_PASSWORD');
    const password = given !== undefined && given !== '' ? given : randomBytes(18).toString('base64url');
    if (await identity.bootstrapAdmin(password)) {
      bootstrap = { user: 'admin' };
      if (given === undefined || given === '') {
        const file = join(o.dataDir, ADMIN_PASSWORD_FILE);
        writeFileSync(file, `${password}\n`, { mode: 0o600 });
        chmodSync(file, 0o600);
        bootstrap.generatedPassword = password;
        bootstrap.file = file;
      }
      await audit.append({ principal: 'system', action: 'user.bootstrap', outcome: 'ok', details: JSON.stringify({ user: 'admin' }) });
      o.logger.info({ user: 'admin', passwordFile: bootstrap.file ?? null }, 'created the first administrator');
    }
  }
  const auth = new AuthService({
    dev: o.dev,
    identity,
    tokens,
    audit,
    ...(oidc !== undefined ? { oidc } : {}),
    clientCertRoles: opts.clientCertRoles ?? {},
    rateLimit: opts.rateLimit ?? null,
    loginRateLimit: opts.loginRateLimit === undefined ? DEFAULT_LOGIN_RATE : opts.loginRateLimit,
    metricsPublic: opts.metricsPublic === true,
  });
  audit.startRetention();
  return {
    auth,
    audit,
    bootstrap,
    stop: () => {
      unsubscribeKeys?.();
      identity.stop();
      audit.stop();
    },
  };
}
