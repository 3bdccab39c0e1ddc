/**
 * The console's session: one SDK client for this origin, the login token (kept in
 * sessionStorage — gone when the tab closes, never in a URL), who the user is and what their
 * roles let them do, so the UI offers only what the server would allow (the server still checks
 * every call). A call refused as `unauthenticated` (an expired token) brings the login back over
 * the current view, which stays in the URL and reloads after the login.
 */
import { AdminClient, createClient, type RoleInfo, type SocketFactory, type SocketLike, type WhoAmI } from '../../client/index.js';

const TOKEN_KEY = 'beacon.console.token';

/**
 * Opens the live watch's WebSocket with the token offered as the subprotocol `beacon.bearer.<token>`
 * beside `beacon.v1` (which the server selects): a browser cannot set an Authorization header on
 * a WebSocket, and this keeps the token out of the URL (the SDK's default puts it in `access_token`).
 */
const socketWithToken: SocketFactory = async (url) => {
  const token = client.transport.token;
  return new WebSocket(url, token === undefined ? undefined : ['beacon.v1', `beacon.bearer.${token}`]) as unknown as SocketLike;
};

/** The SDK client every view uses (same origin: the node that served the console). */
export const client = createClient({
  endpoint: location.origin,
  webSocket: socketWithToken,
  timeoutMs: 15_000,
  retry: { retries: 1 },
  circuitBreaker: false,
  healthCheck: false,
});
/** Administration, metrics and alerts calls. */
export const admin = new AdminClient(client.transport);

/** What the UI knows about the signed-in user. */
export interface SessionState {
  status: 'loading' | 'login' | 'ready';
  /** Set when the login is shown because a token expired (the view is kept). */
  expired?: boolean;
  me?: WhoAmI;
  roles: Map<string, RoleInfo>;
  /** Bumped after each login so views reload their data. */
  epoch: number;
}

let state: SessionState = { status: 'loading', roles: new Map(), epoch: 0 };
const listeners = new Set<(s: SessionState) => void>();

function set(next: Partial<SessionState>): void {
  state = { ...state, ...next };
  for (const l of listeners) l(state);
}

/** The current session state. */
export function sessionState(): SessionState {
  return state;
}

/** Calls `l` on every change; returns the unsubscribe function. */
export function onSession(l: (s: SessionState) => void): () => void {
  listeners.add(l);
  return () => void listeners.delete(l);
}

async function loadIdentity(): Promise<void> {
  // Without the role list the UI offers only reads; the server decides anyway.
  const [me, list] = await Promise.all([admin.whoami(), admin.roles().catch(() => [] as RoleInfo[])]);
  const roles = new Map(list.map((r) => [r.name, r]));
  set({ status: 'ready', expired: false, me, roles, epoch: state.epoch + 1 });
}

/** Restores a session from sessionStorage (or `--dev`, which needs none); otherwise shows the login. */
export async function startSession(): Promise<void> {
  const saved = sessionStorage.getItem(TOKEN_KEY);
  if (saved !== null) client.transport.setToken(saved);
  try {
    await loadIdentity();
  } catch (err) {
    if (isUnauthenticated(err)) {
      sessionStorage.removeItem(TOKEN_KEY);
      client.transport.setToken(undefined);
      set({ status: 'login', expired: saved !== null });
      return;
    }
    throw err;
  }
}

/** Logs in with a username and password. @throws UnauthenticatedError for wrong credentials. */
export async function login(username: string, password: string): Promise<void> {
  const res = await client.login(username, password);
  sessionStorage.setItem(TOKEN_KEY, res.token);
  await loadIdentity();
}

/** Forgets the token and shows the login. */
export function logout(): void {
  sessionStorage.removeItem(TOKEN_KEY);
  client.transport.setToken(undefined);
  set({ status: 'login', expired: false, me: undefined, roles: new Map() });
}

/** True for the SDK's `unauthenticated` error (a missing, wrong or expired credential). */
export function isUnauthenticated(err: unknown): boolean {
  return (err as { code?: string } | null)?.code === 'unauthenticated';
}

/** Called by views when a request was refused as unauthenticated: back to the login, keeping the view. */
export function tokenExpired(): void {
  if (state.status !== 'ready' || state.me?.dev === true) return;
  sessionStorage.removeItem(TOKEN_KEY);
  client.transport.setToken(undefined);
  set({ status: 'login', expired: true });
}

const RANK = { read: 1, write: 2, admin: 3 } as const;

/** Whether the user may do `access` on every key under `prefix` (or on the key itself), by their roles. */
export function can(access: 'read' | 'write' | 'admin', prefix: string): boolean {
  const me = state.me;
  if (me === undefined) return false;
  if (me.dev) return true;
  for (const name of me.roles) {
    const role = state.roles.get(name);
    for (const p of role?.permissions ?? []) if (prefix.startsWith(p.prefix) && RANK[p.access] >= RANK[access]) return true;
  }
  return false;
}

/** Whether the user may read secret values under `key` in the clear. */
export function canReadSecret(key: string): boolean {
  const me = state.me;
  if (me === undefined) return false;
  if (me.dev) return true;
  for (const name of me.roles) {
    const role = state.roles.get(name);
    for (const p of role?.permissions ?? []) if (key.startsWith(p.prefix) && (role?.secrets === true || p.access === 'admin')) return true;
  }
  return false;
}

/** Whether the user administers the installation (users, roles, API keys, audit). */
export function isAdmin(): boolean {
  const me = state.me;
  return me !== undefined && (me.dev || me.roles.includes('admin'));
}

/** The prefixes the user may read (`''` when everything), for live watches. */
export function readablePrefixes(): string[] {
  if (can('read', '')) return [''];
  const out = new Set<string>();
  for (const name of state.me?.roles ?? []) for (const p of state.roles.get(name)?.permissions ?? []) out.add(p.prefix);
  return [...out];
}
