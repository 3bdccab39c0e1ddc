/**
 * The key tree: prefix folders (split at `/`) with key counts, loaded lazily page by page — a
 * folder's listing skips over each sub-folder's keys in one request, so a folder of 100,000 keys
 * opens with its first page — and drawn as a virtualised list (only the visible rows exist in the
 * page). ARIA `tree`/`treeitem` with keyboard navigation (arrows, Home/End, Enter); search by
 * prefix (server-side range) or substring (a paged scan of key names). Live events insert, remove
 * and mark rows in place.
 */
import type { JSX } from 'preact';
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import type { WatchEvent } from '../../../client/index.js';
import { onLiveEvent } from '../live.js';
import { href, navigate } from '../router.js';
import { admin, can, client, isUnauthenticated, readablePrefixes, tokenExpired } from '../session.js';
import { errorText } from '../ui.js';

/** Height of one row in pixels (fixed: the virtual list computes positions from it). */
export const ROW_HEIGHT = 28;
/** Keys asked for per listing request. */
const PAGE_KEYS = 500;
/** Children gathered before a folder's page is shown. */
const PAGE_CHILDREN = 200;

interface Child {
  kind: 'folder' | 'key';
  /** The folder prefix (ending in `/`) or the key. */
  path: string;
  name: string;
}

interface Folder {
  children: Child[];
  /** Where the next page starts: a key to start from or a continue token; null once complete. */
  next: { key: string; token?: string } | null;
  loading: boolean;
  error?: string;
}

/**
 * The first key after every key that starts with `folder`: for a folder ending in `/` (the usual
 * case) its last character raised to `0`; for a granted prefix that does not end in `/`, its last
 * UTF-16 unit raised by one.
 */
function folderEnd(folder: string): string {
  if (folder.endsWith('/')) return `${folder.slice(0, -1)}0`;
  return folder.slice(0, -1) + String.fromCharCode(folder.charCodeAt(folder.length - 1) + 1);
}

function rangeEndOf(prefix: string): string {
  return prefix === '' ? '\u0000' : folderEnd(prefix);
}

/** The state of the tree, kept across renders and views (module level: reopening the page is instant). */
const folders = new Map<string, Folder>();
const counts = new Map<string, number | 'loading'>();
const expanded = new Set<string>(['']);
/** Keys changed live, with when (ms): marked for a few seconds. */
const changed = new Map<string, number>();
const listeners = new Set<() => void>();
function changedTree(): void {
  for (const l of listeners) l();
}

/** Forgets everything loaded (after a login as someone else). */
export function resetTree(): void {
  folders.clear();
  counts.clear();
  changed.clear();
  expanded.clear();
  expanded.add('');
  changedTree();
}

async function loadPage(prefix: string, quiet = false): Promise<void> {
  if (prefix === '' && !folders.has('') && !quiet && !can('read', '')) {
    // A user who may read only some prefixes cannot list every key: the top level is those prefixes.
    const granted = readablePrefixes().filter((p) => p !== '').sort();
    folders.set('', { children: granted.map((p) => ({ kind: 'folder', path: p, name: p })), next: null, loading: false });
    changedTree();
    return;
  }
  let f = folders.get(prefix);
  if (f === undefined) {
    f = { children: [], next: { key: prefix }, loading: false };
    folders.set(prefix, f);
  }
  if (f.loading || f.next === null) return;
  f.loading = true;
  f.error = undefined;
  changedTree();
  const end = rangeEndOf(prefix);
  let gathered = 0;
  let lastFolder = f.children.length > 0 ? f.children[f.children.length - 1] : undefined;
  try {
    for (let requests = 0; requests < 20 && gathered < PAGE_CHILDREN && f.next !== null; requests++) {
      const page = await admin.listRange(f.next.key, end, { limit: PAGE_KEYS, keysOnly: true, continue: f.next.token });
      for (const kv of page.kvs) {
        const rest = kv.key.slice(prefix.length);
        const slash = rest.indexOf('/');
        if (slash === -1) {
          f.children.push({ kind: 'key', path: kv.key, name: rest === '' ? '(this prefix)' : rest });
          gathered++;
          continue;
        }
        const folder = prefix + rest.slice(0, slash + 1);
        if (lastFolder?.kind === 'folder' && lastFolder.path === folder) continue;
        lastFolder = { kind: 'folder', path: folder, name: rest.slice(0, slash + 1) };
        f.children.push(lastFolder);
        gathered++;
      }
      changedTree(); // show each request's rows as they come
      const last = page.kvs[page.kvs.length - 1];
      if (!page.more || last === undefined) {
        f.next = null;
      } else if (lastFolder?.kind === 'folder' && last.key.startsWith(lastFolder.path)) {
        // The page ended inside a sub-folder: skip the rest of its keys in one step.
        const skip = folderEnd(lastFolder.path);
        f.next = prefix !== '' && skip >= end ? null : { key: skip };
      } else {
        f.next = { key: f.next.key, token: page.continue };
      }
    }
  } catch (err) {
    if (isUnauthenticated(err) && !quiet) tokenExpired();
    f.error = errorText(err);
  } finally {
    f.loading = false;
    changedTree();
  }
}

/**
 * Starts loading the top level before the session is known (a saved token, or `--dev`), so the
 * tree is ready sooner; a refusal is forgotten and the tree loads again once logged in.
 */
export function preloadTree(): void {
  if (folders.has('')) return;
  void loadPage('', true).then(() => {
    if (folders.get('')?.error !== undefined) folders.delete('');
  });
}

async function loadCount(folder: string): Promise<void> {
  if (counts.has(folder)) return;
  counts.set(folder, 'loading');
  try {
    const page = await admin.listRange(folder, folderEnd(folder), { countOnly: true });
    counts.set(folder, page.count);
  } catch {
    counts.delete(folder);
  }
  changedTree();
}

/** Applies a live change to the loaded folders: new keys and folders appear, deleted keys go, the row is marked. */
function applyEvent(ev: WatchEvent): void {
  const key = ev.kv.key;
  changed.set(key, Date.now());
  // Counts of every folder on the key's path are stale now.
  for (let i = key.indexOf('/'); i !== -1; i = key.indexOf('/', i + 1)) counts.delete(key.slice(0, i + 1));
  // The deepest loaded folder the key is under.
  let prefix = '';
  for (let i = key.indexOf('/'); i !== -1; i = key.indexOf('/', i + 1)) {
    const p = key.slice(0, i + 1);
    if (folders.has(p)) prefix = p;
    else break;
  }
  const f = folders.get(prefix);
  if (f !== undefined) {
    const rest = key.slice(prefix.length);
    const slash = rest.indexOf('/');
    const child: Child = slash === -1 ? { kind: 'key', path: key, name: rest === '' ? '(this prefix)' : rest } : { kind: 'folder', path: prefix + rest.slice(0, slash + 1), name: rest.slice(0, slash + 1) };
    const at = f.children.findIndex((c) => c.path >= child.path);
    const exists = at !== -1 && f.children[at]?.path === child.path;
    if (ev.type === 'put' && !exists) {
      // Beyond the loaded part of an incomplete folder the key arrives with a later page.
      if (at !== -1) f.children.splice(at, 0, child);
      else if (f.next === null) f.children.push(child);
    } else if (ev.type === 'delete' && exists && child.kind === 'key') {
      f.children.splice(at, 1);
    }
  }
  changedTree();
}

onLiveEvent(applyEvent);

/** Whether `key` changed live in the last few seconds. */
export function recentlyChanged(key: string, withinMs = 5000): boolean {
  const t = changed.get(key);
  return t !== undefined && Date.now() - t < withinMs;
}

interface Row {
  kind: 'folder' | 'key' | 'more' | 'error';
  path: string;
  name: string;
  level: number;
  /** The folder a `more`/`error` row belongs to. */
  parent: string;
}

function flatten(prefix: string, level: number, out: Row[]): void {
  const f = folders.get(prefix);
  if (f === undefined) {
    out.push({ kind: 'more', path: `${prefix}\u0000more`, name: 'Loading…', level, parent: prefix });
    return;
  }
  for (const c of f.children) {
    out.push({ kind: c.kind, path: c.path, name: c.name, level, parent: prefix });
    if (c.kind === 'folder' && expanded.has(c.path)) flatten(c.path, level + 1, out);
  }
  if (f.error !== undefined) out.push({ kind: 'error', path: `${prefix}\u0000error`, name: f.error, level, parent: prefix });
  else if (f.next !== null) out.push({ kind: 'more', path: `${prefix}\u0000more`, name: f.loading ? 'Loading…' : 'More…', level, parent: prefix });
  else if (f.children.length === 0 && level === 1) out.push({ kind: 'error', path: `${prefix}\u0000empty`, name: 'No keys yet.', level, parent: prefix });
}

/** A virtualised list of fixed-height rows: only the rows in view (plus a margin) are rendered. */
export function VirtualList<T>(props: {
  rows: T[];
  render: (row: T, index: number) => JSX.Element;
  label: string;
  role: 'tree' | 'listbox';
  activeIndex: number;
  activeId?: string;
  onKeyDown?: (e: KeyboardEvent) => void;
  onNearEnd?: () => void;
  testId?: string;
}): JSX.Element {
  const ref = useRef<HTMLDivElement>(null);
  const [scroll, setScroll] = useState(0);
  const [height, setHeight] = useState(600);
  useEffect(() => {
    const el = ref.current;
    if (el === null) return;
    const ro = new ResizeObserver(() => setHeight(el.clientHeight));
    ro.observe(el);
    return () => ro.disconnect();
  }, []);
  // Keep the active row in view when the keyboard moves it.
  useEffect(() => {
    const el = ref.current;
    if (el === null || props.activeIndex < 0) return;
    const top = props.activeIndex * ROW_HEIGHT;
    if (top < el.scrollTop) el.scrollTop = top;
    else if (top + ROW_HEIGHT > el.scrollTop + el.clientHeight) el.scrollTop = top + ROW_HEIGHT - el.clientHeight;
  }, [props.activeIndex]);
  const first = Math.max(0, Math.floor(scroll / ROW_HEIGHT) - 10);
  const last = Math.min(props.rows.length, Math.ceil((scroll + height) / ROW_HEIGHT) + 10);
  useEffect(() => {
    if (last >= props.rows.length - 5) props.onNearEnd?.();
  });
  const items: JSX.Element[] = [];
  for (let i = first; i < last; i++) items.push(props.render(props.rows[i] as T, i));
  return (
    <div
      class="vlist"
      ref={ref}
      role={props.role}
      aria-label={props.label}
      tabIndex={0}
      aria-activedescendant={props.activeId}
      onKeyDown={props.onKeyDown}
      onScroll={(e) => setScroll((e.currentTarget as HTMLDivElement).scrollTop)}
      data-testid={props.testId}
    >
      <div class="vlist-inner" style={{ height: `${props.rows.length * ROW_HEIGHT}px` }}>
        <div style={{ transform: `translateY(${first * ROW_HEIGHT}px)` }}>{items}</div>
      </div>
    </div>
  );
}

function rowId(i: number): string {
  return `tree-row-${i}`;
}

/** The key tree with its search box; `selected` is the open key, highlighted. */
export function KeyTree(props: { selected?: string; onCreate?: (folder: string) => void }): JSX.Element {
  const [, setTick] = useState(0);
  const [query, setQuery] = useState('');
  const [mode, setMode] = useState<'prefix' | 'contains'>('prefix');
  const [active, setActive] = useState(0);
  useEffect(() => {
    const l = (): void => setTick((t) => t + 1);
    listeners.add(l);
    l(); // a preload may have finished between the first render and now
    if (!folders.has('') || folders.get('')?.error !== undefined) {
      folders.delete('');
      void loadPage('');
    }
    // Live marks fade: re-render once a second while any are shown.
    const timer = setInterval(() => {
      if ([...changed.values()].some((t) => Date.now() - t < 6000)) l();
    }, 1000);
    return () => {
      listeners.delete(l);
      clearInterval(timer);
    };
  }, []);

  const rows: Row[] = [];
  flatten('', 1, rows);
  const painted = rows.some((r) => r.kind === 'folder' || r.kind === 'key');
  useEffect(() => {
    // When the top level's rows were first on screen (the effect runs after the browser painted
    // them), in ms since navigation start: read by the browser tests (the cold-load figure).
    if (painted) (globalThis as { __beaconTreeReadyMs?: number }).__beaconTreeReadyMs ??= performance.now();
  }, [painted]);
  if (query !== '') return <SearchResults query={query} mode={mode} setQuery={setQuery} setMode={setMode} selected={props.selected} />;

  const visibleFolders = rows.filter((r) => r.kind === 'folder' && !counts.has(r.path)).slice(0, 30);
  for (const r of visibleFolders) void loadCount(r.path);

  const toggle = (row: Row): void => {
    if (expanded.has(row.path)) expanded.delete(row.path);
    else {
      expanded.add(row.path);
      if (!folders.has(row.path)) void loadPage(row.path);
    }
    setTick((t) => t + 1);
  };
  const open = (row: Row): void => {
    if (row.kind === 'folder') toggle(row);
    else if (row.kind === 'key') navigate(href('keys', { key: row.path }));
    else if (row.kind === 'more') void loadPage(row.parent);
  };
  const onKey = (e: KeyboardEvent): void => {
    const row = rows[active];
    let next = active;
    if (e.key === 'ArrowDown') next = Math.min(rows.length - 1, active + 1);
    else if (e.key === 'ArrowUp') next = Math.max(0, active - 1);
    else if (e.key === 'Home') next = 0;
    else if (e.key === 'End') next = rows.length - 1;
    else if (e.key === 'ArrowRight' && row?.kind === 'folder' && !expanded.has(row.path)) toggle(row);
    else if (e.key === 'ArrowLeft' && row !== undefined) {
      if (row.kind === 'folder' && expanded.has(row.path)) toggle(row);
      else next = Math.max(0, rows.findIndex((r) => r.path === row.parent));
    } else if ((e.key === 'Enter' || e.key === ' ') && row !== undefined) open(row);
    else return;
    e.preventDefault();
    setActive(next);
  };
  const activeIndex = Math.min(active, rows.length - 1);

  return (
    <div class="tree-pane">
      <SearchBox query={query} mode={mode} setQuery={setQuery} setMode={setMode} onCreate={props.onCreate} />
      <VirtualList
        rows={rows}
        label="Keys"
        role="tree"
        testId="key-tree"
        activeIndex={activeIndex}
        activeId={activeIndex >= 0 ? rowId(activeIndex) : undefined}
        onKeyDown={onKey}
        onNearEnd={() => {
          for (const r of rows) if (r.kind === 'more' && !folders.get(r.parent)?.loading) void loadPage(r.parent);
        }}
        render={(row, i) => {
          const count = counts.get(row.path);
          const isFolder = row.kind === 'folder';
          const mark = row.kind === 'key' && recentlyChanged(row.path);
          return (
            <div
              id={rowId(i)}
              key={row.path}
              role={row.kind === 'folder' || row.kind === 'key' ? 'treeitem' : 'none'}
              aria-level={row.level}
              aria-expanded={isFolder ? expanded.has(row.path) : undefined}
              aria-selected={row.kind === 'key' ? row.path === props.selected : undefined}
              class={`row ${row.kind}${i === activeIndex ? ' active' : ''}${row.path === props.selected ? ' selected' : ''}${mark ? ' live-changed' : ''}`}
              style={{ paddingLeft: `${(row.level - 1) * 16 + 8}px` }}
              title={row.kind === 'key' || isFolder ? row.path : undefined}
              data-path={row.kind === 'key' || isFolder ? row.path : undefined}
              onClick={() => {
                setActive(i);
                open(row);
              }}
            >
              <span class="twisty" aria-hidden="true">{isFolder ? (expanded.has(row.path) ? '▾' : '▸') : row.kind === 'key' ? '·' : ''}</span>
              <span class="name">{row.name}</span>
              {isFolder && typeof count === 'number' ? <span class="count" aria-label={`${count} keys`}>{count}</span> : null}
              {mark ? <span class="live-dot" aria-label="changed live" /> : null}
            </div>
          );
        }}
      />
    </div>
  );
}

function SearchBox(props: {
  query: string;
  mode: 'prefix' | 'contains';
  setQuery: (q: string) => void;
  setMode: (m: 'prefix' | 'contains') => void;
  onCreate?: (folder: string) => void;
}): JSX.Element {
  return (
    <div class="tree-tools">
      <label class="visually-hidden" for="key-search">Search keys</label>
      <input id="key-search" type="search" placeholder="Search keys…" value={props.query} onInput={(e) => props.setQuery((e.currentTarget as HTMLInputElement).value)} />
      <select aria-label="Search mode" value={props.mode} onChange={(e) => props.setMode((e.currentTarget as HTMLSelectElement).value as 'prefix' | 'contains')}>
        <option value="prefix">starts with</option>
        <option value="contains">contains</option>
      </select>
      {props.onCreate !== undefined ? (
        <button type="button" onClick={() => props.onCreate?.('')}>
          New key
        </button>
      ) : null}
    </div>
  );
}

/** Search results: keys starting with the query (a server range), or containing it (a paged scan of names). */
function SearchResults(props: {
  query: string;
  mode: 'prefix' | 'contains';
  setQuery: (q: string) => void;
  setMode: (m: 'prefix' | 'contains') => void;
  selected?: string;
}): JSX.Element {
  const [keys, setKeys] = useState<string[]>([]);
  const [status, setStatus] = useState('Searching…');
  const [active, setActive] = useState(0);
  const more = useRef<(() => void) | undefined>(undefined);
  const { query, mode } = props;
  useEffect(() => {
    const ctl = new AbortController();
    setKeys([]);
    setActive(0);
    const found: string[] = [];
    let token: string | undefined;
    let scanned = 0;
    let busy = false;
    const step = async (): Promise<void> => {
      if (busy || ctl.signal.aborted) return;
      busy = true;
      try {
        if (mode === 'prefix') {
          const page = await client.range(query, { keysOnly: true, limit: 500, continue: token, signal: ctl.signal });
          for (const kv of page.kvs) found.push(kv.key);
          token = page.more ? page.continue : undefined;
          setStatus(`${page.count + found.length - page.kvs.length} keys start with this`);
          more.current = token === undefined ? undefined : () => void step();
        } else {
          // Substring: scan key names page by page until 500 matches or the end.
          while (found.length < 500 && !ctl.signal.aborted) {
            const page = await admin.listRange('', '\u0000', { keysOnly: true, limit: 2000, continue: token, signal: ctl.signal });
            scanned += page.kvs.length;
            for (const kv of page.kvs) if (kv.key.includes(query)) found.push(kv.key);
            token = page.more ? page.continue : undefined;
            setStatus(`${found.length} ${found.length === 1 ? 'match' : 'matches'} in ${scanned} keys scanned${token === undefined ? '' : '…'}`);
            setKeys([...found]);
            if (token === undefined) break;
          }
          more.current = token === undefined ? undefined : () => void step();
        }
        setKeys([...found]);
      } catch (err) {
        if (!ctl.signal.aborted) {
          if (isUnauthenticated(err)) tokenExpired();
          setStatus(errorText(err));
        }
      } finally {
        busy = false;
      }
    };
    const t = setTimeout(() => void step(), 200);
    return () => {
      clearTimeout(t);
      ctl.abort();
    };
  }, [query, mode]);
  const rows = useMemo(() => keys, [keys]);
  const onKey = (e: KeyboardEvent): void => {
    if (e.key === 'ArrowDown') setActive((a) => Math.min(rows.length - 1, a + 1));
    else if (e.key === 'ArrowUp') setActive((a) => Math.max(0, a - 1));
    else if (e.key === 'Enter' && rows[active] !== undefined) navigate(href('keys', { key: rows[active] }));
    else return;
    e.preventDefault();
  };
  return (
    <div class="tree-pane">
      <SearchBox query={props.query} mode={props.mode} setQuery={props.setQuery} setMode={props.setMode} />
      <p class="search-status" role="status" aria-live="polite">{status}</p>
      <VirtualList
        rows={rows}
        label="Search results"
        role="listbox"
        activeIndex={active}
        activeId={rows.length > 0 ? `search-row-${active}` : undefined}
        onKeyDown={onKey}
        onNearEnd={() => more.current?.()}
        render={(key, i) => (
          <div
            id={`search-row-${i}`}
            key={key}
            role="option"
            aria-selected={key === props.selected}
            class={`row key${i === active ? ' active' : ''}${key === props.selected ? ' selected' : ''}`}
            title={key}
            data-path={key}
            onClick={() => {
              setActive(i);
              navigate(href('keys', { key }));
            }}
          >
            <span class="name">{key}</span>
          </div>
        )}
      />
    </div>
  );
}
