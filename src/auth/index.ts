/** Users, roles, permissions, tokens, API keys, OIDC and rate limits, with one pure authorize(). */
export { authorize, canReadKey, rangeWithinPrefix, BUILTIN_ROLES, METRICS_RESOURCE_KEY, ALERTS_RESOURCE_KEY, DASHBOARDS_RESOURCE_KEY } from './authorize.js';
export type { Access, Action, Permission, Principal, Resource, Role } from './authorize.js';
export { hashPassword, verifyPassword, validatePassword, MIN_PASSWORD_LENGTH, SCRYPT_PARAMS } from './password.js';
export { RateLimiter, parseRate } from './rate-limit.js';
export type { RateSpec } from './rate-limit.js';
export {
  IdentityStore,
  AUTH_KEY_PREFIX,
  API_KEY_PREFIX,
  apiKeyView,
  userView,
  validateName,
  validatePermissions,
  looksLikeApiKey,
} from './identity.js';
export type { ApiKeyRecord, ApiKeyView, RoleRecord, UserRecord, UserView } from './identity.js';
export {
  TokenService,
  DEFAULT_TOKEN_TTL_SECONDS,
  DEFAULT_REFRESH_TTL_SECONDS,
  REFRESH_AUDIENCE,
  TOKEN_EXPIRED_MESSAGE,
  TOKEN_ALG,
  TOKEN_ISSUER,
  SIGNING_KEY_FILE,
  SIGNING_KEY_SYSTEM_KEY,
  loadOrCreateKeyFile,
  loadOrCreateKeyInStore,
} from './tokens.js';
export type { RefreshClaims, TokenClaims } from './tokens.js';
export { OidcVerifier, OIDC_ALGORITHMS, parseRoleMap } from './oidc.js';
export type { OidcIdentity, OidcOptions } from './oidc.js';
export { AuthService, DEV_PRINCIPAL, PEER_PRINCIPAL, deniedError } from './service.js';
export type { AuthServiceOptions, Credentials, RequestOrigin } from './service.js';
export { startSecurity, ADMIN_PASSWORD_FILE, DEFAULT_LOGIN_RATE } from './setup.js';
export type { AdminBootstrap, Security, SecurityOptions } from './setup.js';
