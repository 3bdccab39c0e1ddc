/**
 * The console's router: one URL per view under `/ui/` (path = view, query = its state), driven
 * by the History API so deep links, reload and the back button work. Keys travel in the query
 * string (URL-encoded by URLSearchParams), never in the path, so any key — `/`, `%`, `?`, `#`,
 * spaces, emoji — survives the round trip.
 */
import { useEffect, useState } from 'preact/hooks';

/** The base path the server mounts the console at. */
export const BASE = '/ui/';

/** A parsed location: `view` is the first path segment after `/ui/`, `rest` the remaining segments. */
export interface Route {
  view: string;
  rest: string[];
  params: URLSearchParams;
  href: string;
}

function current(): Route {
  const path = location.pathname.startsWith(BASE) ? location.pathname.slice(BASE.length) : '';
  const parts = path.split('/').filter((p) => p !== '').map((p) => decodeURIComponent(p));
  return { view: parts[0] ?? 'keys', rest: parts.slice(1), params: new URLSearchParams(location.search), href: location.pathname + location.search };
}

const listeners = new Set<() => void>();
addEventListener('popstate', () => {
  for (const l of listeners) l();
});

/** Builds a console URL from a view and query parameters (empty values are left out). */
export function href(view: string, params: Record<string, string | number | undefined> = {}): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== '') q.set(k, String(v));
  const s = q.toString();
  return `${BASE}${view}${s === '' ? '' : `?${s}`}`;
}

/** Goes to `to` (a path under /ui/); `replace` rewrites the current history entry instead of adding one. */
export function navigate(to: string, replace = false): void {
  if (to === location.pathname + location.search) return;
  if (replace) history.replaceState(null, '', to);
  else history.pushState(null, '', to);
  for (const l of listeners) l();
}

/** The current route; re-renders the caller when it changes. */
export function useRoute(): Route {
  const [route, setRoute] = useState(current);
  useEffect(() => {
    const l = (): void =>
      setRoute((shown) => {
        const now = current();
        return now.href === shown.href ? shown : now;
      });
    listeners.add(l);
    l(); // a navigation between the first render and this subscription
    return () => void listeners.delete(l);
  }, []);
  return route;
}
