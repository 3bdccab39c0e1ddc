/**
 * The keys page: the tree on the left, the open key on the right — its value, revision, version,
 * lease and namespace; editing checked against the namespace (JSON, schema) before saving, saved
 * with a compare on the version it was read at so a concurrent change shows as a conflict with the
 * newer value; create and delete; the history timeline with a side-by-side diff of any two
 * versions and rollback after a confirmation naming both versions. Values are always put in the
 * page as text (never as HTML); bytes that are not UTF-8 are shown as base64.
 */
import type { JSX } from 'preact';
import { useEffect, useMemo, useState } from 'preact/hooks';
import { Compare, Op, fromBase64, toBase64, type ConfigHistoryEntry, type KeyValue, type NamespaceInfo } from '../../../client/index.js';
import { sideBySide } from '../diff.js';
import { onLiveEvent } from '../live.js';
import { href, navigate, useRoute } from '../router.js';
import { validate, type Violation } from '../schema.js';
import { admin, can, canReadSecret, client } from '../session.js';
import { Dialog, Link, Loaded, PageHead, act, useAsync } from '../ui.js';
import { KeyTree } from './tree.js';

let nsCache: Promise<NamespaceInfo[]> | undefined;
/** The namespace policies (cached for the session; the namespaces page clears it). */
export function namespaces(): Promise<NamespaceInfo[]> {
  nsCache ??= admin.namespaces().catch((err: unknown) => {
    nsCache = undefined;
    throw err;
  });
  return nsCache;
}
/** Forgets the cached namespace policies. */
export function clearNamespaceCache(): void {
  nsCache = undefined;
}

/** The namespace governing `key`: the longest matching prefix. */
export function namespaceOf(list: NamespaceInfo[], key: string): NamespaceInfo | undefined {
  let best: NamespaceInfo | undefined;
  for (const ns of list) if (key.startsWith(ns.prefix) && (best === undefined || ns.prefix.length > best.prefix.length)) best = ns;
  return best;
}

/** What a value's text fails of its namespace's rules (format json, schema), checked locally. */
function checkValue(text: string, ns: NamespaceInfo | undefined): { parseError?: string; violations: Violation[] } {
  if (ns === undefined || (ns.format !== 'json' && ns.schema === undefined)) return { violations: [] };
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    return { parseError: `not valid JSON: ${(err as Error).message}`, violations: [] };
  }
  return { violations: ns.schema === undefined ? [] : validate(ns.schema, doc) };
}

/** The server's schema violations from an `invalid_argument` error, if it carries them. */
function serverViolations(err: unknown): Violation[] {
  const v = (err as { details?: { violations?: unknown } } | null)?.details?.violations;
  return Array.isArray(v) ? (v as Violation[]).filter((x) => typeof x?.path === 'string') : [];
}

function Violations(props: { items: Violation[]; source: string }): JSX.Element | null {
  if (props.items.length === 0) return null;
  return (
    <ul class="violations" aria-label={`${props.source} problems`}>
      {props.items.map((v) => (
        <li key={v.path + v.message}>
          <code>{v.path}</code> {v.message}
        </li>
      ))}
    </ul>
  );
}

/** A value as text: UTF-8 text as is, anything else as base64 (flagged). */
function shown(kv: KeyValue): { text: string; base64: boolean } {
  return kv.text !== undefined ? { text: kv.text, base64: false } : { text: toBase64(kv.value), base64: true };
}

/** The keys page (`/ui/keys?key=…&tab=history`). */
export function KeysPage(): JSX.Element {
  const route = useRoute();
  const key = route.params.get('key') ?? undefined;
  const [creating, setCreating] = useState<string | undefined>(undefined);
  return (
    <div class="keys-page">
      <KeyTree selected={key} onCreate={can('write', '') || !can('read', '') ? (folder) => setCreating(folder) : undefined} />
      <section class="key-pane" aria-label="Key">
        {key === undefined ? (
          <>
            <PageHead title="Keys" />
            <p class="hint">Choose a key in the tree, or search. Folders are key prefixes split at “/”, with the number of keys under each.</p>
          </>
        ) : (
          <KeyPanel key={key} keyName={key} tab={route.params.get('tab') ?? 'value'} />
        )}
      </section>
      {creating !== undefined ? <CreateDialog folder={creating} onClose={() => setCreating(undefined)} /> : null}
    </div>
  );
}

function CreateDialog(props: { folder: string; onClose: () => void }): JSX.Element {
  const [key, setKey] = useState(props.folder);
  const [value, setValue] = useState('');
  const [error, setError] = useState<string | undefined>(undefined);
  const [server, setServer] = useState<Violation[]>([]);
  const ns = useAsync(() => namespaces(), []);
  const policy = ns.data === undefined ? undefined : namespaceOf(ns.data, key);
  const local = checkValue(value, policy);
  const save = async (e: Event): Promise<void> => {
    e.preventDefault();
    setServer([]);
    if (key === '') return setError('The key cannot be empty.');
    if (!can('write', key)) return setError('Your roles may not write this key.');
    let failure: unknown;
    const err = await act(async () => {
      try {
        const res = await client.txn({ compare: [Compare.version(key, '=', 0)], success: [Op.put(key, value)], failure: [] });
        if (!res.succeeded) throw Object.assign(new Error(`'${key}' already exists`), { code: 'conflict' });
      } catch (x) {
        failure = x;
        throw x;
      }
    });
    if (err !== undefined) {
      setServer(serverViolations(failure));
      setError(err);
      return;
    }
    props.onClose();
    navigate(href('keys', { key }));
  };
  return (
    <Dialog title="New key" onClose={props.onClose}>
      <form onSubmit={(e) => void save(e)} class="stack">
        <label>
          Key
          <input value={key} onInput={(e) => setKey((e.currentTarget as HTMLInputElement).value)} required />
        </label>
        {policy !== undefined ? <p class="hint">Namespace <code>{policy.prefix}</code>: {policyText(policy)}</p> : null}
        <label>
          Value
          <textarea rows={8} value={value} onInput={(e) => setValue((e.currentTarget as HTMLTextAreaElement).value)} spellcheck={false} />
        </label>
        {local.parseError !== undefined ? <p class="warn">{local.parseError}</p> : null}
        <Violations items={local.violations} source="Schema" />
        <Violations items={server} source="Server" />
        {error !== undefined ? <p class="error" role="alert">{error}</p> : null}
        <div class="buttons">
          <button type="submit" class="primary">Create</button>
          <button type="button" onClick={props.onClose}>Cancel</button>
        </div>
      </form>
    </Dialog>
  );
}

function policyText(p: NamespaceInfo): string {
  const parts: string[] = [];
  parts.push(p.format ?? (p.schema !== undefined ? 'json' : 'any bytes'));
  if (p.schema !== undefined) parts.push('JSON Schema checked');
  if (p.secret === true) parts.push('secret (encrypted, redacted)');
  if (p.defaultTtl !== undefined) parts.push(`TTL ${p.defaultTtl} s`);
  if (p.storage === 'memory') parts.push('cache (memory)');
  return parts.join(', ');
}

/** A live mark: what changed elsewhere and when, in a line whose height never changes. */
interface LiveMark {
  type: 'put' | 'delete';
  revision: number;
  at: number;
}

function KeyPanel(props: { keyName: string; tab: string }): JSX.Element {
  const key = props.keyName;
  const kvState = useAsync((signal) => client.get(key, { signal }), [key]);
  const ns = useAsync(() => namespaces(), []);
  const [kv, setKv] = useState<KeyValue | undefined>(undefined);
  const [mark, setMark] = useState<LiveMark | undefined>(undefined);
  const [deleted, setDeleted] = useState(false);
  useEffect(() => {
    const loaded = kvState.data?.kv;
    // A live update may have brought a newer revision than this read saw: keep the newer one.
    setKv((shown) => (shown !== undefined && loaded !== undefined && shown.key === loaded.key && shown.modRevision > loaded.modRevision ? shown : loaded));
    setDeleted(false);
  }, [kvState.data]);
  useEffect(() => {
    setMark(undefined);
    return onLiveEvent((ev) => {
      if (ev.kv.key !== key) return;
      setMark({ type: ev.type, revision: ev.revision, at: Date.now() });
      if (ev.type === 'delete') setDeleted(true);
      else {
        setDeleted(false);
        setKv(ev.kv);
      }
    });
  }, [key]);
  const policy = ns.data === undefined ? undefined : namespaceOf(ns.data, key);
  const notFound = (kvState.error as { code?: string } | undefined)?.code === 'not_found';
  const tabs = (
    <nav class="tabs" aria-label="Key views">
      <Link href={href('keys', { key })} aria-current={props.tab !== 'history' && props.tab !== 'rollout' ? 'page' : undefined}>Value</Link>
      <Link href={href('keys', { key, tab: 'history' })} aria-current={props.tab === 'history' ? 'page' : undefined}>History</Link>
      <Link href={href('keys', { key, tab: 'rollout' })} aria-current={props.tab === 'rollout' ? 'page' : undefined}>Rollout</Link>
    </nav>
  );
  return (
    <div class="key-panel">
      <PageHead title={key}>{tabs}</PageHead>
      <p class={`live-mark${mark !== undefined ? ' on' : ''}`} role="status" aria-live="polite" data-testid="live-mark">
        {mark === undefined
          ? ' '
          : mark.type === 'delete'
            ? `Deleted elsewhere at revision ${mark.revision} (${new Date(mark.at).toLocaleTimeString()})`
            : `Updated live: revision ${mark.revision} (${new Date(mark.at).toLocaleTimeString()})`}
      </p>
      {props.tab === 'history' ? (
        <History keyName={key} current={kv} />
      ) : props.tab === 'rollout' ? (
        <RolloutView keyName={key} current={kv} />
      ) : notFound && kv === undefined ? (
        <p class="notice">No key <code>{key}</code>.</p>
      ) : (
        <Loaded state={kvState}>{() => (kv === undefined ? <p class="loading">Loading…</p> : <ValueView kv={kv} policy={policy} deleted={deleted} onSaved={setKv} />)}</Loaded>
      )}
    </div>
  );
}

function ValueView(props: { kv: KeyValue; policy: NamespaceInfo | undefined; deleted: boolean; onSaved: (kv: KeyValue) => void }): JSX.Element {
  const { kv, policy } = props;
  const [revealed, setRevealed] = useState(false);
  const [editing, setEditing] = useState(false);
  const [confirmDelete, setConfirmDelete] = useState(false);
  const secret = policy?.secret === true;
  const value = shown(kv);
  const writable = can('write', kv.key) && !props.deleted && (kv.redacted !== true);
  useEffect(() => setRevealed(false), [kv.key]);
  return (
    <div class="value-view">
      <dl class="meta">
        <dt>Revision</dt>
        <dd data-testid="mod-revision">{kv.modRevision}</dd>
        <dt>Version</dt>
        <dd data-testid="version">{kv.version}</dd>
        <dt>Created at revision</dt>
        <dd>{kv.createRevision}</dd>
        <dt>Lease</dt>
        <dd>{kv.lease === 0 ? 'none' : <Link href={href('leases', { id: kv.lease })}>{kv.lease}</Link>}</dd>
        <dt>Namespace</dt>
        <dd>{policy === undefined ? 'none' : <><code>{policy.prefix}</code> — {policyText(policy)}</>}</dd>
        <dt>Size</dt>
        <dd>{kv.redacted === true ? 'hidden' : `${kv.value.byteLength} bytes${value.base64 ? ' (not UTF-8: shown as base64)' : ''}`}</dd>
      </dl>
      {props.deleted ? <p class="warn">This key was deleted.</p> : null}
      {kv.redacted === true ? (
        <p class="redacted" data-testid="redacted">Secret value redacted: your roles may not read secrets here.</p>
      ) : secret && !revealed ? (
        <p class="redacted">
          Secret value hidden.{' '}
          {canReadSecret(kv.key) ? (
            <button type="button" onClick={() => setRevealed(true)}>Reveal</button>
          ) : null}
        </p>
      ) : editing ? (
        <Editor kv={kv} policy={policy} onDone={(saved) => {
          setEditing(false);
          if (saved !== undefined) props.onSaved(saved);
        }} />
      ) : (
        <pre class={`value${value.base64 ? ' base64' : ''}`} data-testid="value" tabIndex={0} aria-label="Value">{value.text}</pre>
      )}
      {!editing && writable && (!secret || revealed) ? (
        <div class="buttons">
          <button type="button" class="primary" onClick={() => setEditing(true)}>Edit</button>
          <button type="button" class="danger" onClick={() => setConfirmDelete(true)}>Delete</button>
        </div>
      ) : null}
      {confirmDelete ? <DeleteDialog kv={kv} onClose={() => setConfirmDelete(false)} /> : null}
    </div>
  );
}

function DeleteDialog(props: { kv: KeyValue; onClose: () => void }): JSX.Element {
  const [error, setError] = useState<string | undefined>(undefined);
  const { kv } = props;
  const run = async (): Promise<void> => {
    const err = await act(async () => {
      const res = await client.txn({ compare: [Compare.version(kv.key, '=', kv.version)], success: [Op.delete(kv.key)], failure: [] });
      if (!res.succeeded) throw Object.assign(new Error('the key changed since you opened it; reload and try again'), { code: 'conflict' });
    });
    if (err !== undefined) return setError(err);
    props.onClose();
  };
  return (
    <Dialog title="Delete key" onClose={props.onClose}>
      <p>
        Delete <code>{kv.key}</code> (version {kv.version})? Its history stays until compaction.
      </p>
      {error !== undefined ? <p class="error" role="alert">{error}</p> : null}
      <div class="buttons">
        <button type="button" class="danger" onClick={() => void run()}>Delete</button>
        <button type="button" onClick={props.onClose}>Cancel</button>
      </div>
    </Dialog>
  );
}

/** The value editor: local checks as you type, a version-checked save, conflicts with the newer value. */
function Editor(props: { kv: KeyValue; policy: NamespaceInfo | undefined; onDone: (saved?: KeyValue) => void }): JSX.Element {
  const { kv, policy } = props;
  const original = shown(kv);
  const [text, setText] = useState(original.text);
  const [base64] = useState(original.base64);
  const [baseVersion, setBaseVersion] = useState(kv.version);
  const [error, setError] = useState<string | undefined>(undefined);
  const [server, setServer] = useState<Violation[]>([]);
  const [conflict, setConflict] = useState<KeyValue | null | undefined>(undefined);
  const [saving, setSaving] = useState(false);
  const local = useMemo(() => (base64 ? { violations: [] } : checkValue(text, policy)), [text, policy, base64]);
  const save = async (): Promise<void> => {
    setError(undefined);
    setServer([]);
    setConflict(undefined);
    let bytes: string | Uint8Array = text;
    if (base64) {
      try {
        bytes = fromBase64(text.trim());
      } catch {
        return setError('The value is not valid base64.');
      }
    }
    setSaving(true);
    let failure: unknown;
    let saved: KeyValue | undefined;
    const err = await act(async () => {
      try {
        const res = await client.txn({
          compare: [Compare.version(kv.key, '=', baseVersion)],
          success: [Op.put(kv.key, bytes, kv.lease !== 0 ? { lease: kv.lease } : {})],
          failure: [Op.get(kv.key)],
        });
        if (!res.succeeded) {
          const first = res.results[0];
          setConflict(first?.type === 'range' ? (first.kvs[0] ?? null) : null);
          return;
        }
        saved = (await client.get(kv.key)).kv;
      } catch (x) {
        failure = x;
        throw x;
      }
    });
    setSaving(false);
    if (err !== undefined) {
      setServer(serverViolations(failure));
      setError(err);
      return;
    }
    if (saved !== undefined) props.onDone(saved);
  };
  return (
    <div class="editor">
      <label class="visually-hidden" for="value-editor">Value</label>
      <textarea id="value-editor" rows={16} value={text} spellcheck={false} onInput={(e) => setText((e.currentTarget as HTMLTextAreaElement).value)} />
      {kv.version !== baseVersion ? (
        <p class="warn" role="status" data-testid="changed-while-editing">
          This key changed elsewhere while you edit (now version {kv.version}); saving will show the conflict.
        </p>
      ) : null}
      <p class="hint">
        {base64 ? 'Binary value: edit it as base64.' : policy?.schema !== undefined ? `Checked against the JSON Schema of ${policy.prefix} as you type.` : policy?.format === 'json' ? 'Must be JSON.' : 'Saved exactly as typed (UTF-8).'}{' '}
        Saving checks that the key is still at version {baseVersion}.
      </p>
      {local.parseError !== undefined ? <p class="warn" data-testid="parse-error">{local.parseError}</p> : null}
      <Violations items={local.violations} source="Schema" />
      {error !== undefined ? <p class="error" role="alert">{error}</p> : null}
      <Violations items={server} source="Server" />
      {conflict !== undefined ? (
        <div class="conflict" role="alert" data-testid="conflict">
          {conflict === null ? (
            <p>Conflict: the key was deleted since you opened it at version {baseVersion}.</p>
          ) : (
            <>
              <p>
                Conflict: the key changed elsewhere since you opened it at version {baseVersion}; it is now at version {conflict.version} (revision {conflict.modRevision}). Its newer value:
              </p>
              <pre class="value" data-testid="newer-value">{shown(conflict).text}</pre>
              <div class="buttons">
                <button type="button" onClick={() => {
                  setText(shown(conflict).text);
                  setBaseVersion(conflict.version);
                  setConflict(undefined);
                }}>Take the newer value</button>
                <button type="button" onClick={() => {
                  setBaseVersion(conflict.version);
                  setConflict(undefined);
                }}>Keep my edit (save over version {conflict.version})</button>
              </div>
            </>
          )}
        </div>
      ) : null}
      <div class="buttons">
        <button type="button" class="primary" disabled={saving || local.parseError !== undefined || local.violations.length > 0} onClick={() => void save()}>
          {saving ? 'Saving…' : 'Save'}
        </button>
        <button type="button" onClick={() => props.onDone()}>Cancel</button>
      </div>
    </div>
  );
}

/** A history entry's value as text for the diff. */
function entryText(e: ConfigHistoryEntry): string {
  if (e.redacted === true) return '(secret: redacted)';
  if (e.value === undefined || e.value === null) return '';
  return typeof e.value === 'string' ? e.value : JSON.stringify(e.value, null, 2);
}

/**
 * A config's staged rollout (issue 16, docs/rollout.md): state, step and share, bake, selector,
 * guards with their state, adoption per version and the transitions; pause, resume, promote and
 * abort for those who may write the key. Refreshed every 2 s while a rollout is active.
 */
function RolloutView(props: { keyName: string; current: KeyValue | undefined }): JSX.Element {
  const key = props.keyName;
  const [tick, setTick] = useState(0);
  const state = useAsync((signal) => client.rollouts.get(key, { signal }), [key, tick, props.current?.modRevision]);
  const [error, setError] = useState<string | undefined>(undefined);
  const [confirmAbort, setConfirmAbort] = useState(false);
  const active = state.data !== undefined && (state.data.state === 'running' || state.data.state === 'paused');
  useEffect(() => {
    if (!active) return undefined;
    const t = setInterval(() => setTick((n) => n + 1), 2000);
    return () => clearInterval(t);
  }, [active]);
  const run = (fn: () => Promise<unknown>): void => {
    void act(fn).then((e) => {
      setError(e);
      setTick((n) => n + 1);
    });
  };
  return (
    <Loaded state={state} missing="No rollout of this key. Start one with beacon rollout start (docs/rollout.md).">
      {(r) => (
        <div class="rollout" data-testid="rollout">
          {error !== undefined ? <p class="error" role="alert">{error}</p> : null}
          <dl class="facts">
            <dt>State</dt>
            <dd data-testid="rollout-state">{r.state}</dd>
            <dt>Step</dt>
            <dd>
              {r.step + 1} of {r.steps.length}: {r.share}% of the selected clients ({r.steps.map((x) => `${x}%`).join(' → ')})
            </dd>
            <dt>Bake</dt>
            <dd>
              {Math.round(r.bake_ms / 1000)} s a step{r.bake_ends_at !== undefined && r.state === 'running' ? `; this step ends ${new Date(r.bake_ends_at).toLocaleTimeString()}` : ''}
            </dd>
            <dt>Selector</dt>
            <dd>{r.selector === '' ? 'every client with an identity' : <code>{r.selector}</code>}</dd>
            <dt>From</dt>
            <dd>{r.base_version}{r.completed_version !== undefined ? ` → ${r.completed_version}` : ''}</dd>
            <dt>Guards</dt>
            <dd>
              {r.guards.length === 0
                ? 'none'
                : (r.guard_states ?? []).map((g) => (
                    <span key={g.guard} class={g.firing ? 'bad' : 'good'}>
                      {g.guard}: {g.firing ? `firing${g.reason !== undefined ? ` (${g.reason})` : ''}` : 'quiet'}{' '}
                    </span>
                  ))}
            </dd>
            <dt>Adoption</dt>
            <dd>
              {r.adoption === undefined || Object.keys(r.adoption).length === 0
                ? 'no client has reported yet'
                : Object.entries(r.adoption)
                    .map(([v, n]) => `${v}: ${n}`)
                    .join(', ')}
            </dd>
          </dl>
          {active && can('write', key) ? (
            <p class="actions">
              {r.state === 'running' ? (
                <button type="button" onClick={() => run(() => client.rollouts.pause(key))}>Pause</button>
              ) : (
                <button type="button" onClick={() => run(() => client.rollouts.resume(key))}>Resume</button>
              )}
              <button type="button" onClick={() => run(() => client.rollouts.promote(key))}>Promote to the next step</button>
              <button type="button" class="danger" onClick={() => setConfirmAbort(true)}>Abort</button>
            </p>
          ) : null}
          {confirmAbort ? (
            <Dialog title="Abort the rollout?" onClose={() => setConfirmAbort(false)}>
              <p>Every client returns to {r.base_version}; the candidate is not applied.</p>
              <p class="actions">
                <button
                  type="button"
                  class="danger"
                  onClick={() => {
                    setConfirmAbort(false);
                    run(() => client.rollouts.abort(key, { reason: 'aborted from the console' }));
                  }}
                >
                  Abort the rollout
                </button>
                <button type="button" onClick={() => setConfirmAbort(false)}>Cancel</button>
              </p>
            </Dialog>
          ) : null}
          <ol class="timeline" aria-label="Rollout history">
            {r.history.map((h, i) => (
              <li key={i}>
                <span class="when">{new Date(h.at).toLocaleString()}</span> <span class="event">{h.to}</span> <span class="hint">{h.by}{h.cause !== '' ? `: ${h.cause}` : ''}</span>
              </li>
            ))}
          </ol>
        </div>
      )}
    </Loaded>
  );
}

function History(props: { keyName: string; current: KeyValue | undefined }): JSX.Element {
  const key = props.keyName;
  const state = useAsync((signal) => client.configs.history(key, { limit: 200, signal }), [key, props.current?.modRevision]);
  const [from, setFrom] = useState<string | undefined>(undefined);
  const [to, setTo] = useState<string | undefined>(undefined);
  const [rollback, setRollback] = useState<ConfigHistoryEntry | undefined>(undefined);
  const [done, setDone] = useState<string | undefined>(undefined);
  return (
    <Loaded state={state}>
      {(h) => {
        const versions = h.versions.filter((v) => v.version !== null);
        // Newest first on the page, whatever order the server sends.
        versions.sort((a, b) => b.revision - a.revision);
        const latest = versions[0];
        const a = versions.find((v) => v.version === (from ?? versions[1]?.version)) ?? versions[1];
        const b = versions.find((v) => v.version === (to ?? latest?.version)) ?? latest;
        const rows = a !== undefined && b !== undefined ? sideBySide(entryText(a), entryText(b)) : [];
        return (
          <div class="history">
            {done !== undefined ? <p class="ok" role="status">{done}</p> : null}
            <ol class="timeline" aria-label="Versions">
              {h.versions.slice().sort((x, y) => y.revision - x.revision).map((v) => (
                <li key={v.revision} class={v.event === 'deleted' ? 'deleted' : ''}>
                  <span class="version">{v.version ?? 'deleted'}</span>
                  <span class="when">{new Date(v.updatedAt).toLocaleString()}</span>
                  <span class="rev">revision {v.revision}</span>
                  <span class="event">{v.event}{v.restoredVersion !== undefined ? ` (value of ${v.restoredVersion})` : ''}</span>
                  {v.version !== null ? (
                    <span class="pick">
                      <label><input type="radio" name="from" checked={a?.version === v.version} onChange={() => setFrom(v.version ?? undefined)} /> from</label>
                      <label><input type="radio" name="to" checked={b?.version === v.version} onChange={() => setTo(v.version ?? undefined)} /> to</label>
                      {latest !== undefined && v.version !== latest.version && can('write', key) ? (
                        <button type="button" onClick={() => setRollback(v)}>Roll back to {v.version}</button>
                      ) : null}
                    </span>
                  ) : null}
                </li>
              ))}
            </ol>
            {h.more ? <p class="hint">Older versions exist; showing the newest {h.versions.length}.</p> : null}
            {a !== undefined && b !== undefined ? (
              <table class="diff" aria-label={`Differences from ${a.version} to ${b.version}`}>
                <thead>
                  <tr>
                    <th scope="col">{a.version}</th>
                    <th scope="col">{b.version}</th>
                  </tr>
                </thead>
                <tbody>
                  {rows.map((r, i) => (
                    <tr key={i} class={r.kind}>
                      <td><pre>{r.left ?? ''}</pre></td>
                      <td><pre>{r.right ?? ''}</pre></td>
                    </tr>
                  ))}
                </tbody>
              </table>
            ) : (
              <p class="hint">Only one version so far: nothing to compare.</p>
            )}
            {rollback !== undefined && latest !== undefined ? (
              <RollbackDialog keyName={key} target={rollback} current={latest} onClose={() => setRollback(undefined)} onDone={(msg) => {
                setRollback(undefined);
                setDone(msg);
                state.reload();
              }} />
            ) : null}
          </div>
        );
      }}
    </Loaded>
  );
}

function RollbackDialog(props: { keyName: string; target: ConfigHistoryEntry; current: ConfigHistoryEntry; onClose: () => void; onDone: (msg: string) => void }): JSX.Element {
  const [error, setError] = useState<string | undefined>(undefined);
  const { target, current } = props;
  const run = async (): Promise<void> => {
    let msg = '';
    const err = await act(async () => {
      const res = await client.configs.rollback(props.keyName, target.version as string, { expectVersion: current.version as string });
      msg = `Rolled back ${props.keyName} from ${res.fromVersion} to ${res.toVersion} (the value of ${res.restoredVersion}).`;
    });
    if (err !== undefined) return setError(err);
    props.onDone(msg);
  };
  return (
    <Dialog title="Roll back" onClose={props.onClose}>
      <p data-testid="rollback-question">
        Roll back <code>{props.keyName}</code> from {current.version} to the value of {target.version}? The current value stays in the history; the rollback is saved as a new version.
      </p>
      {error !== undefined ? <p class="error" role="alert">{error}</p> : null}
      <div class="buttons">
        <button type="button" class="primary" onClick={() => void run()}>Roll back to {target.version}</button>
        <button type="button" onClick={props.onClose}>Cancel</button>
      </div>
    </Dialog>
  );
}
