/** Shared pieces of the console: links, async data with loading and error states, dialogs, tables. */
import type { ComponentChildren, JSX } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { navigate } from './router.js';
import { isUnauthenticated, onSession, sessionState, tokenExpired } from './session.js';

/** An in-app link: a real `<a href>` (middle-click, copy link) that navigates without a reload. */
export function Link(props: JSX.HTMLAttributes<HTMLAnchorElement> & { href: string }): JSX.Element {
  const { href, onClick, ...rest } = props;
  return (
    <a
      {...rest}
      href={href}
      onClick={(e) => {
        if (e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
        e.preventDefault();
        if (typeof onClick === 'function') onClick.call(e.currentTarget, e);
        navigate(href);
      }}
    />
  );
}

/** The message of an SDK error (its `code` first, so users can look it up). */
export function errorText(err: unknown): string {
  const e = err as { code?: string; message?: string } | null;
  if (e?.code !== undefined && e.message !== undefined) return `${e.code}: ${e.message}`;
  return e?.message ?? String(err);
}

/** The state of an async load: data, error, loading, and `reload`. */
export interface Async<T> {
  data: T | undefined;
  error: unknown;
  loading: boolean;
  reload: () => void;
}

/**
 * Runs `load` when `deps` change (and after each login), with an abort signal; an
 * `unauthenticated` failure sends the user back to the login with the view kept.
 */
export function useAsync<T>(load: (signal: AbortSignal) => Promise<T>, deps: unknown[]): Async<T> {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<unknown>(undefined);
  const [loading, setLoading] = useState(true);
  const [tick, setTick] = useState(0);
  const [epoch, setEpoch] = useState(sessionState().epoch);
  useEffect(() => {
    const off = onSession((s) => setEpoch(s.epoch));
    setEpoch(sessionState().epoch); // a login between the first render and this subscription
    return off;
  }, []);
  useEffect(() => {
    const ctl = new AbortController();
    setLoading(true);
    setError(undefined);
    load(ctl.signal).then(
      (d) => {
        if (ctl.signal.aborted) return;
        setData(d);
        setLoading(false);
      },
      (err: unknown) => {
        if (ctl.signal.aborted) return;
        if (isUnauthenticated(err)) tokenExpired();
        setError(err);
        setLoading(false);
      },
    );
    return () => ctl.abort();
  }, [...deps, tick, epoch]);
  return { data, error, loading, reload: () => setTick((t) => t + 1) };
}

/** Runs an action from a button: reports `unauthenticated` to the session and returns the error text, or undefined. */
export async function act(fn: () => Promise<unknown>): Promise<string | undefined> {
  try {
    await fn();
    return undefined;
  } catch (err) {
    if (isUnauthenticated(err)) tokenExpired();
    return errorText(err);
  }
}

/** Loading / error / content for an {@link Async}. A 404 from a route the node lacks shows `missing`. */
export function Loaded<T>(props: { state: Async<T>; missing?: string; children: (data: T) => ComponentChildren }): JSX.Element {
  const { state } = props;
  if (state.error !== undefined) {
    const notFound = (state.error as { code?: string }).code === 'not_found';
    if (notFound && props.missing !== undefined) return <p class="notice" role="status">{props.missing}</p>;
    return (
      <div class="error" role="alert">
        {errorText(state.error)} <button type="button" onClick={state.reload}>Retry</button>
      </div>
    );
  }
  if (state.data === undefined) return <p class="loading" role="status" aria-live="polite">Loading…</p>;
  return <>{props.children(state.data)}</>;
}

/**
 * A modal dialog (`role="dialog"`, `aria-modal`): focus moves into it and returns afterwards,
 * Escape closes it, Tab stays inside.
 */
export function Dialog(props: { title: string; onClose: () => void; children: ComponentChildren; label?: string }): JSX.Element {
  const ref = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const before = document.activeElement as HTMLElement | null;
    const first = ref.current?.querySelector<HTMLElement>('input, textarea, select, button:not(.close)');
    (first ?? ref.current)?.focus();
    return () => before?.focus();
  }, []);
  const onKey = (e: KeyboardEvent): void => {
    if (e.key === 'Escape') {
      e.stopPropagation();
      props.onClose();
      return;
    }
    if (e.key !== 'Tab' || ref.current === null) return;
    const items = [...ref.current.querySelectorAll<HTMLElement>('a[href], button, input, textarea, select, [tabindex="0"]')].filter((el) => !el.hasAttribute('disabled'));
    const first = items[0];
    const last = items[items.length - 1];
    if (first === undefined || last === undefined) return;
    if (e.shiftKey && document.activeElement === first) {
      e.preventDefault();
      last.focus();
    } else if (!e.shiftKey && document.activeElement === last) {
      e.preventDefault();
      first.focus();
    }
  };
  return (
    <div class="backdrop" onClick={(e) => e.target === e.currentTarget && props.onClose()}>
      <div class="dialog" role="dialog" aria-modal="true" aria-label={props.label ?? props.title} ref={ref} tabIndex={-1} onKeyDown={onKey}>
        <header>
          <h2>{props.title}</h2>
          <button type="button" class="close" aria-label="Close" onClick={props.onClose}>×</button>
        </header>
        {props.children}
      </div>
    </div>
  );
}

/** A relative "in 12 s" / "3 min ago" for an ISO time. */
export function ago(iso: string | undefined): string {
  if (iso === undefined) return '';
  const s = Math.round((Date.now() - Date.parse(iso)) / 1000);
  const a = Math.abs(s);
  const txt = a < 60 ? `${a} s` : a < 3600 ? `${Math.round(a / 60)} min` : a < 86400 ? `${Math.round(a / 3600)} h` : `${Math.round(a / 86400)} d`;
  return s >= 0 ? `${txt} ago` : `in ${txt}`;
}

/** A page title and optional actions. */
export function PageHead(props: { title: string; children?: ComponentChildren }): JSX.Element {
  useEffect(() => {
    document.title = `${props.title} · Beacon`;
  }, [props.title]);
  return (
    <div class="page-head">
      <h1>{props.title}</h1>
      <div class="actions">{props.children}</div>
    </div>
  );
}
