/**
 * The web console's entry point: the session gate (login unless `--dev`), the layout (header with
 * the live connection state, navigation, the current view) and the view for each URL.
 */
import type { JSX } from 'preact';
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { liveStatus, onLiveStatus, startLive, stopLive, type LiveStatus } from './live.js';
import { href, useRoute } from './router.js';
import { isAdmin, login, logout, onSession, sessionState, startSession, type SessionState } from './session.js';
import { Link, errorText } from './ui.js';
import { KeysPage } from './views/keys.js';
import { preloadTree, resetTree } from './views/tree.js';
import { LivePage } from './views/live-page.js';
import './styles.css';

/**
 * A view whose code loads when it is first shown (its own chunk), so the first load carries only
 * the keys pages.
 */
function lazyView<M>(load: () => Promise<M>, pick: (m: M) => () => JSX.Element): () => JSX.Element {
  let loaded: (() => JSX.Element) | undefined;
  let pending: Promise<void> | undefined;
  return function LazyView(): JSX.Element {
    const [, setReady] = useState(loaded !== undefined);
    useEffect(() => {
      if (loaded !== undefined) return;
      pending ??= load().then((m) => {
        loaded = pick(m);
      });
      void pending.then(() => setReady(true));
    }, []);
    const View = loaded;
    return View === undefined ? <p class="loading" role="status">Loading…</p> : <View />;
  };
}

const coord = () => import('./views/coord.js');
const adminViews = () => import('./views/admin.js');
const ops = () => import('./views/cluster.js');
const monitoring = () => import('./views/metrics.js');

interface NavItem {
  view: string;
  label: string;
  admin?: boolean;
}

const NAV: { group: string; items: NavItem[] }[] = [
  { group: 'Data', items: [{ view: 'keys', label: 'Keys' }, { view: 'live', label: 'Live events' }] },
  { group: 'Coordination', items: [{ view: 'leases', label: 'Leases' }, { view: 'locks', label: 'Locks & elections' }, { view: 'sequences', label: 'Sequences' }] },
  {
    group: 'Governance',
    items: [
      { view: 'namespaces', label: 'Namespaces' },
      { view: 'users', label: 'Users', admin: true },
      { view: 'roles', label: 'Roles' },
      { view: 'apikeys', label: 'API keys', admin: true },
      { view: 'audit', label: 'Audit log', admin: true },
    ],
  },
  { group: 'Operations', items: [{ view: 'cluster', label: 'Cluster' }, { view: 'cache', label: 'Cache' }] },
  { group: 'Monitoring', items: [{ view: 'metrics', label: 'Query' }, { view: 'dashboards', label: 'Dashboards' }, { view: 'alerts', label: 'Alerts' }] },
];

const VIEWS: Record<string, () => JSX.Element> = {
  keys: KeysPage,
  live: LivePage,
  leases: lazyView(coord, (m) => m.LeasesPage),
  locks: lazyView(coord, (m) => m.LocksPage),
  sequences: lazyView(coord, (m) => m.SequencesPage),
  namespaces: lazyView(adminViews, (m) => m.NamespacesPage),
  users: lazyView(adminViews, (m) => m.UsersPage),
  roles: lazyView(adminViews, (m) => m.RolesPage),
  apikeys: lazyView(adminViews, (m) => m.ApiKeysPage),
  audit: lazyView(adminViews, (m) => m.AuditPage),
  cluster: lazyView(ops, (m) => m.ClusterPage),
  cache: lazyView(ops, (m) => m.CachePage),
  metrics: lazyView(monitoring, (m) => m.QueryPage),
  dashboards: lazyView(monitoring, (m) => m.DashboardsPage),
  alerts: lazyView(monitoring, (m) => m.AlertsPage),
};

function useSession(): SessionState {
  const [s, setS] = useState(sessionState());
  useEffect(() => {
    const off = onSession(setS);
    // The session may have changed between the first render and this subscription (the check
    // starts before the first render, and effects run after a paint, late on a busy machine):
    // without this catch-up the page stayed on "Loading…" for good.
    setS(sessionState());
    return off;
  }, []);
  return s;
}

function Login(props: { expired: boolean }): JSX.Element {
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState<string | undefined>(undefined);
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event): Promise<void> => {
    e.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      await login(username, password);
    } catch (err) {
      setError((err as { code?: string }).code === 'unauthenticated' ? 'Wrong username or password.' : errorText(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <main class="login">
      <form onSubmit={(e) => void submit(e)} aria-labelledby="login-title">
        <h1 id="login-title">Beacon</h1>
        {props.expired ? <p class="warn" role="status">Your session expired. Log in again to continue where you were.</p> : null}
        <label>
          Username
          <input name="username" autocomplete="username" value={username} onInput={(e) => setUsername((e.currentTarget as HTMLInputElement).value)} required autofocus />
        </label>
        <label>
          Password
          <input name="password" type="password" autocomplete="current-password" value={password} onInput={(e) => setPassword((e.currentTarget as HTMLInputElement).value)} required />
        </label>
        {error !== undefined ? <p class="error" role="alert">{error}</p> : null}
        <button type="submit" class="primary" disabled={busy}>{busy ? 'Logging in…' : 'Log in'}</button>
      </form>
    </main>
  );
}

function LiveBadge(): JSX.Element {
  const [s, setS] = useState<LiveStatus>(liveStatus());
  useEffect(() => {
    const off = onLiveStatus(setS);
    setS(liveStatus()); // a change between the first render and this subscription
    return off;
  }, []);
  const text = s === 'live' ? 'live' : s === 'reconnecting' ? 'reconnecting…' : s === 'connecting' ? 'connecting…' : 'offline';
  return <span class={`live-badge ${s}`} role="status" aria-live="polite" data-testid="live-status">{text}</span>;
}

function App(): JSX.Element {
  const session = useSession();
  const route = useRoute();
  const [navOpen, setNavOpen] = useState(false);
  useEffect(() => {
    if (session.status === 'ready') startLive();
    else if (session.status === 'login') stopLive();
  }, [session.status, session.epoch]);
  useEffect(() => setNavOpen(false), [route.href]);
  if (session.status === 'loading') return <p class="loading" role="status">Loading…</p>;
  if (session.status === 'login') return <Login expired={session.expired === true} />;
  const me = session.me;
  const View = VIEWS[route.view] ?? KeysPage;
  return (
    <div class={`layout${navOpen ? ' nav-open' : ''}`}>
      <a class="skip" href="#main">Skip to content</a>
      <header class="top">
        <button type="button" class="nav-toggle" aria-expanded={navOpen} aria-controls="nav" onClick={() => setNavOpen(!navOpen)}>☰<span class="visually-hidden">Menu</span></button>
        <Link href={href('keys')} class="brand">Beacon</Link>
        <LiveBadge />
        <span class="who">
          {me?.dev ? <strong class="dev">dev mode: no authentication</strong> : <>{me?.name} <span class="roles">({me?.roles.join(', ')})</span></>}
        </span>
        {me?.dev ? null : <button type="button" onClick={() => {
          logout();
          resetTree();
        }}>Log out</button>}
      </header>
      <nav id="nav" class="side" aria-label="Sections">
        {NAV.map((g) => (
          <div key={g.group}>
            <h2>{g.group}</h2>
            <ul>
              {g.items.filter((i) => i.admin !== true || isAdmin()).map((i) => (
                <li key={i.view}>
                  <Link href={href(i.view)} aria-current={route.view === i.view ? 'page' : undefined}>{i.label}</Link>
                </li>
              ))}
            </ul>
          </div>
        ))}
      </nav>
      <main id="main" tabIndex={-1}>
        <View key={`${route.view}:${session.epoch}`} />
      </main>
    </div>
  );
}

const root = document.getElementById('app');
if (root !== null) {
  // A page the browser brings back from its back/forward cache has requests that were cut off and
  // a live watch that is gone: load it afresh, so Back always shows a current view.
  window.addEventListener('pageshow', (e) => {
    if (e.persisted) location.reload();
  });
  // The session check and the tree's first page go out together, before the first render, so a
  // cold load of the keys view costs one round of parallel requests after the script.
  const session = startSession();
  if (location.pathname === '/ui/' || location.pathname.startsWith('/ui/keys')) preloadTree();
  render(<App />, root);
  session.catch((err: unknown) => {
    root.textContent = `The console cannot reach this Beacon node: ${errorText(err)}`;
  });
}
