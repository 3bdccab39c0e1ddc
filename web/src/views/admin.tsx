/** Governance pages: namespaces and their policies, users, roles, API keys (shown once), the audit log with filters. */
import type { JSX } from 'preact';
import { useState } from 'preact/hooks';
import type { ApiKeyInfo, AuditFilter, NamespaceInfo, Permission, RoleInfo } from '../../../client/index.js';
import { href, navigate, useRoute } from '../router.js';
import { admin, can, isAdmin } from '../session.js';
import { Dialog, Loaded, PageHead, act, useAsync } from '../ui.js';
import { clearNamespaceCache } from './keys.js';

function field(form: HTMLFormElement, name: string): string {
  const el = form.elements.namedItem(name) as HTMLInputElement | HTMLTextAreaElement | HTMLSelectElement | null;
  return el?.value.trim() ?? '';
}

function checked(form: HTMLFormElement, name: string): boolean {
  return (form.elements.namedItem(name) as HTMLInputElement | null)?.checked === true;
}

/** `/ui/namespaces`: policies (format, schema, secret, retention, TTL, storage). */
export function NamespacesPage(): JSX.Element {
  const list = useAsync((signal) => admin.namespaces(signal), []);
  const [editing, setEditing] = useState<NamespaceInfo | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);
  return (
    <div>
      <PageHead title="Namespaces">
        {isAdmin() ? <button type="button" class="primary" onClick={() => setEditing({ prefix: '' })}>New namespace</button> : null}
      </PageHead>
      {error !== undefined ? <p class="error" role="alert">{error}</p> : null}
      <Loaded state={list}>
        {(nss) => (
          <table class="grid" aria-label="Namespaces">
            <thead><tr><th scope="col">Prefix</th><th scope="col">Format</th><th scope="col">Schema</th><th scope="col">Secret</th><th scope="col">Retention</th><th scope="col">TTL</th><th scope="col">Storage</th><th scope="col" /></tr></thead>
            <tbody>
              {nss.length === 0 ? <tr><td colSpan={8} class="hint">No namespaces: keys take any bytes.</td></tr> : null}
              {nss.map((n) => (
                <tr key={n.prefix}>
                  <td><code>{n.prefix}</code>{n.description !== undefined ? <div class="hint">{n.description}</div> : null}</td>
                  <td>{n.format ?? (n.schema !== undefined ? 'json' : 'any')}</td>
                  <td>{n.schema !== undefined ? 'yes' : ''}</td>
                  <td>{n.secret === true ? 'secret' : ''}</td>
                  <td>{n.historyRetention === undefined ? 'all' : [n.historyRetention.versions !== undefined ? `${n.historyRetention.versions} versions` : '', n.historyRetention.days !== undefined ? `${n.historyRetention.days} days` : ''].filter(Boolean).join(', ')}</td>
                  <td>{n.defaultTtl !== undefined ? `${n.defaultTtl} s` : ''}</td>
                  <td>{n.storage ?? 'durable'}</td>
                  <td>
                    {can('admin', n.prefix) ? (
                      <>
                        <button type="button" onClick={() => setEditing(n)}>Edit</button>{' '}
                        <button type="button" class="danger" onClick={() => {
                          if (!confirm(`Remove the policy of ${n.prefix}? Its keys stay.`)) return;
                          void act(() => admin.deleteNamespace(n.prefix)).then((e) => (setError(e), clearNamespaceCache(), list.reload()));
                        }}>Remove</button>
                      </>
                    ) : null}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Loaded>
      {editing !== undefined ? <NamespaceDialog ns={editing} onClose={() => setEditing(undefined)} onSaved={() => {
        setEditing(undefined);
        clearNamespaceCache();
        list.reload();
      }} /> : null}
    </div>
  );
}

function NamespaceDialog(props: { ns: NamespaceInfo; onClose: () => void; onSaved: () => void }): JSX.Element {
  const { ns } = props;
  const [error, setError] = useState<string | undefined>(undefined);
  const submit = async (e: Event): Promise<void> => {
    e.preventDefault();
    const f = e.currentTarget as HTMLFormElement;
    const prefix = field(f, 'prefix');
    const policy: Omit<NamespaceInfo, 'prefix'> = {};
    const format = field(f, 'format');
    if (format !== '') policy.format = format as 'text' | 'json';
    const schema = field(f, 'schema');
    if (schema !== '') {
      try {
        policy.schema = JSON.parse(schema) as Record<string, unknown>;
      } catch (err) {
        return setError(`The schema is not valid JSON: ${(err as Error).message}`);
      }
    }
    if (checked(f, 'secret')) policy.secret = true;
    const versions = field(f, 'versions');
    const days = field(f, 'days');
    if (versions !== '' || days !== '') policy.historyRetention = { ...(versions !== '' ? { versions: Number(versions) } : {}), ...(days !== '' ? { days: Number(days) } : {}) };
    const ttl = field(f, 'ttl');
    if (ttl !== '') policy.defaultTtl = Number(ttl);
    const storage = field(f, 'storage');
    if (storage === 'memory') policy.storage = 'memory';
    const description = field(f, 'description');
    if (description !== '') policy.description = description;
    const err = await act(() => admin.putNamespace(prefix, policy));
    if (err !== undefined) return setError(err);
    props.onSaved();
  };
  return (
    <Dialog title={ns.prefix === '' ? 'New namespace' : `Namespace ${ns.prefix}`} onClose={props.onClose}>
      <form class="stack" onSubmit={(e) => void submit(e)}>
        <label>Prefix <input name="prefix" defaultValue={ns.prefix} required readOnly={ns.prefix !== ''} placeholder="app/" /></label>
        <label>Format
          <select name="format" defaultValue={ns.format ?? ''}>
            <option value="">any bytes</option>
            <option value="text">text (UTF-8)</option>
            <option value="json">JSON</option>
          </select>
        </label>
        <label>JSON Schema <textarea name="schema" rows={6} spellcheck={false} defaultValue={ns.schema === undefined ? '' : JSON.stringify(ns.schema, null, 2)} /></label>
        <label class="check"><input type="checkbox" name="secret" defaultChecked={ns.secret === true} /> Secret values (encrypted at rest, redacted for readers without secret access)</label>
        <fieldset>
          <legend>History retention (empty: keep every version)</legend>
          <label>Versions <input name="versions" type="number" min={1} defaultValue={ns.historyRetention?.versions?.toString() ?? ''} /></label>
          <label>Days <input name="days" type="number" min={1} defaultValue={ns.historyRetention?.days?.toString() ?? ''} /></label>
        </fieldset>
        <label>Default TTL (seconds) <input name="ttl" type="number" min={1} defaultValue={ns.defaultTtl?.toString() ?? ''} /></label>
        <label>Storage
          <select name="storage" defaultValue={ns.storage ?? 'durable'}>
            <option value="durable">durable (versioned kv)</option>
            <option value="memory">memory (cache tier)</option>
          </select>
        </label>
        <label>Description <input name="description" defaultValue={ns.description ?? ''} /></label>
        {error !== undefined ? <p class="error" role="alert">{error}</p> : null}
        <div class="buttons"><button type="submit" class="primary">Save</button><button type="button" onClick={props.onClose}>Cancel</button></div>
      </form>
    </Dialog>
  );
}

function rolesChooser(all: RoleInfo[], selected: string[]): JSX.Element {
  return (
    <fieldset>
      <legend>Roles</legend>
      {all.map((r) => <label class="check" key={r.name}><input type="checkbox" name="role" value={r.name} defaultChecked={selected.includes(r.name)} /> {r.name}</label>)}
    </fieldset>
  );
}

function chosenRoles(form: HTMLFormElement): string[] {
  return [...form.querySelectorAll<HTMLInputElement>('input[name="role"]:checked')].map((i) => i.value);
}

/** `/ui/users`: users with their roles; create, change roles, disable, delete (administrators). */
export function UsersPage(): JSX.Element {
  const users = useAsync((signal) => admin.users(signal), []);
  const roles = useAsync((signal) => admin.roles(signal), []);
  const [editing, setEditing] = useState<{ name: string; roles: string[]; isNew: boolean } | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);
  const submit = async (e: Event): Promise<void> => {
    e.preventDefault();
    if (editing === undefined) return;
    const f = e.currentTarget as HTMLFormElement;
    const chosen = chosenRoles(f);
    const err = editing.isNew
      ? await act(() => admin.createUser({ name: field(f, 'name'), password: field(f, 'password'), roles: chosen }))
      : await act(() => admin.updateUser(editing.name, { roles: chosen, ...(field(f, 'password') !== '' ? { password: field(f, 'password') } : {}) }));
    setError(err);
    if (err === undefined) {
      setEditing(undefined);
      users.reload();
    }
  };
  return (
    <div>
      <PageHead title="Users"><button type="button" class="primary" onClick={() => setEditing({ name: '', roles: ['viewer'], isNew: true })}>New user</button></PageHead>
      {error !== undefined && editing === undefined ? <p class="error" role="alert">{error}</p> : null}
      <Loaded state={users}>
        {(list) => (
          <table class="grid" aria-label="Users">
            <thead><tr><th scope="col">Name</th><th scope="col">Roles</th><th scope="col">State</th><th scope="col">Created</th><th scope="col" /></tr></thead>
            <tbody>
              {list.map((u) => (
                <tr key={u.name}>
                  <td>{u.name}</td>
                  <td>{u.roles.join(', ')}</td>
                  <td>{u.disabled === true ? 'disabled' : 'active'}</td>
                  <td>{u.createdAt ?? ''}</td>
                  <td>
                    <button type="button" onClick={() => setEditing({ name: u.name, roles: u.roles, isNew: false })}>Edit</button>{' '}
                    <button type="button" onClick={() => void act(() => admin.updateUser(u.name, { disabled: u.disabled !== true })).then((e) => (setError(e), users.reload()))}>{u.disabled === true ? 'Enable' : 'Disable'}</button>{' '}
                    <button type="button" class="danger" onClick={() => {
                      if (confirm(`Delete user ${u.name}?`)) void act(() => admin.deleteUser(u.name)).then((e) => (setError(e), users.reload()));
                    }}>Delete</button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Loaded>
      {editing !== undefined ? (
        <Dialog title={editing.isNew ? 'New user' : `User ${editing.name}`} onClose={() => setEditing(undefined)}>
          <form class="stack" onSubmit={(e) => void submit(e)}>
            {editing.isNew ? <label>Name <input name="name" required autocomplete="off" /></label> : null}
            <label>{editing.isNew ? 'Password' : 'New password (empty: unchanged)'} <input name="password" type="password" autocomplete="new-password" required={editing.isNew} /></label>
            {rolesChooser(roles.data ?? [], editing.roles)}
            {error !== undefined ? <p class="error" role="alert">{error}</p> : null}
            <div class="buttons"><button type="submit" class="primary">Save</button><button type="button" onClick={() => setEditing(undefined)}>Cancel</button></div>
          </form>
        </Dialog>
      ) : null}
    </div>
  );
}

function parsePermissions(text: string): Permission[] {
  return text.split('\n').map((l) => l.trim()).filter((l) => l !== '').map((l) => {
    const m = /^(\S*)\s+(read|write|admin)$/.exec(l) ?? /^(read|write|admin)\s*$/.exec(l);
    if (m === null) throw new Error(`"${l}": write each grant as "prefix access", e.g. "team-a/ write"`);
    return m.length === 3 ? { prefix: m[1] as string, access: m[2] as Permission['access'] } : { prefix: '', access: m[1] as Permission['access'] };
  });
}

/** `/ui/roles`: built-in and custom roles with their grants; administrators edit custom ones. */
export function RolesPage(): JSX.Element {
  const roles = useAsync((signal) => admin.roles(signal), []);
  const [editing, setEditing] = useState<RoleInfo | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);
  const submit = async (e: Event): Promise<void> => {
    e.preventDefault();
    const f = e.currentTarget as HTMLFormElement;
    let permissions: Permission[];
    try {
      permissions = parsePermissions(field(f, 'permissions'));
    } catch (err) {
      return setError((err as Error).message);
    }
    const err = await act(() => admin.putRole(editing?.name || field(f, 'name'), { permissions, secrets: checked(f, 'secrets') }));
    setError(err);
    if (err === undefined) {
      setEditing(undefined);
      roles.reload();
    }
  };
  return (
    <div>
      <PageHead title="Roles">{isAdmin() ? <button type="button" class="primary" onClick={() => setEditing({ name: '', permissions: [], secrets: false, builtin: false })}>New role</button> : null}</PageHead>
      <Loaded state={roles}>
        {(list) => (
          <table class="grid" aria-label="Roles">
            <thead><tr><th scope="col">Role</th><th scope="col">Grants</th><th scope="col">Secrets</th><th scope="col" /></tr></thead>
            <tbody>
              {list.map((r) => (
                <tr key={r.name}>
                  <td>{r.name}{r.builtin ? ' (built-in)' : ''}</td>
                  <td>{r.permissions.map((p) => `${p.prefix === '' ? '(every key)' : p.prefix} ${p.access}`).join('; ')}</td>
                  <td>{r.secrets ? 'may read' : ''}</td>
                  <td>{isAdmin() && !r.builtin ? <>
                    <button type="button" onClick={() => setEditing(r)}>Edit</button>{' '}
                    <button type="button" class="danger" onClick={() => {
                      if (confirm(`Delete role ${r.name}?`)) void act(() => admin.deleteRole(r.name)).then((e) => (setError(e), roles.reload()));
                    }}>Delete</button>
                  </> : null}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Loaded>
      {error !== undefined && editing === undefined ? <p class="error" role="alert">{error}</p> : null}
      {editing !== undefined ? (
        <Dialog title={editing.name === '' ? 'New role' : `Role ${editing.name}`} onClose={() => setEditing(undefined)}>
          <form class="stack" onSubmit={(e) => void submit(e)}>
            {editing.name === '' ? <label>Name <input name="name" required /></label> : null}
            <label>Grants, one per line: “prefix access” (read, write or admin)
              <textarea name="permissions" rows={5} spellcheck={false} defaultValue={editing.permissions.map((p) => `${p.prefix} ${p.access}`).join('\n')} />
            </label>
            <label class="check"><input type="checkbox" name="secrets" defaultChecked={editing.secrets} /> May read secret values</label>
            {error !== undefined ? <p class="error" role="alert">{error}</p> : null}
            <div class="buttons"><button type="submit" class="primary">Save</button><button type="button" onClick={() => setEditing(undefined)}>Cancel</button></div>
          </form>
        </Dialog>
      ) : null}
    </div>
  );
}

/** `/ui/apikeys`: API keys; a new key is shown once, then only its record. */
export function ApiKeysPage(): JSX.Element {
  const keys = useAsync((signal) => admin.apiKeys(signal), []);
  const roles = useAsync((signal) => admin.roles(signal), []);
  const [creating, setCreating] = useState(false);
  const [created, setCreated] = useState<(ApiKeyInfo & { key: string }) | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);
  const submit = async (e: Event): Promise<void> => {
    e.preventDefault();
    const f = e.currentTarget as HTMLFormElement;
    const expires = field(f, 'expires');
    let res: (ApiKeyInfo & { key: string }) | undefined;
    const err = await act(async () => {
      res = await admin.createApiKey({ name: field(f, 'name'), roles: chosenRoles(f), ...(expires !== '' ? { expiresAt: new Date(expires).toISOString() } : {}) });
    });
    setError(err);
    if (err === undefined) {
      setCreating(false);
      setCreated(res);
      keys.reload();
    }
  };
  return (
    <div>
      <PageHead title="API keys"><button type="button" class="primary" onClick={() => setCreating(true)}>New API key</button></PageHead>
      <Loaded state={keys}>
        {(list) => (
          <table class="grid" aria-label="API keys">
            <thead><tr><th scope="col">Name</th><th scope="col">Id</th><th scope="col">Roles</th><th scope="col">Created</th><th scope="col">Expires</th><th scope="col" /></tr></thead>
            <tbody>
              {list.length === 0 ? <tr><td colSpan={6} class="hint">No API keys.</td></tr> : null}
              {list.map((k) => (
                <tr key={k.id}>
                  <td>{k.name}</td><td><code>{k.id}</code></td><td>{k.roles.join(', ')}</td><td>{k.createdAt ?? ''} {k.createdBy !== undefined ? `by ${k.createdBy}` : ''}</td><td>{k.expiresAt ?? 'never'}</td>
                  <td><button type="button" class="danger" onClick={() => {
                    if (confirm(`Revoke API key ${k.name}?`)) void act(() => admin.revokeApiKey(k.id)).then((e) => (setError(e), keys.reload()));
                  }}>Revoke</button></td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Loaded>
      {error !== undefined && !creating ? <p class="error" role="alert">{error}</p> : null}
      {creating ? (
        <Dialog title="New API key" onClose={() => setCreating(false)}>
          <form class="stack" onSubmit={(e) => void submit(e)}>
            <label>Name <input name="name" required placeholder="billing-service" /></label>
            {rolesChooser(roles.data ?? [], ['viewer'])}
            <label>Expires (optional) <input name="expires" type="datetime-local" /></label>
            {error !== undefined ? <p class="error" role="alert">{error}</p> : null}
            <div class="buttons"><button type="submit" class="primary">Create</button><button type="button" onClick={() => setCreating(false)}>Cancel</button></div>
          </form>
        </Dialog>
      ) : null}
      {created !== undefined ? (
        <Dialog title="API key created" onClose={() => setCreated(undefined)}>
          <p>This is the only time the key is shown. Copy it now; Beacon keeps only its hash.</p>
          <pre class="value secret-once" data-testid="new-api-key" tabIndex={0}>{created.key}</pre>
          <div class="buttons">
            <button type="button" onClick={() => void navigator.clipboard?.writeText(created.key)}>Copy</button>
            <button type="button" class="primary" onClick={() => setCreated(undefined)}>Done</button>
          </div>
        </Dialog>
      ) : null}
    </div>
  );
}

/** Records per audit page. */
const AUDIT_PAGE = 100;
const AUDIT_FIELDS = ['principal', 'action', 'key', 'outcome', 'from', 'to'] as const;

/** `/ui/audit?principal=…&action=…`: the audit log, newest first, filtered; filters live in the URL. */
export function AuditPage(): JSX.Element {
  const route = useRoute();
  const filter: AuditFilter = {};
  for (const f of AUDIT_FIELDS) {
    const v = route.params.get(f);
    if (v !== null && v !== '') (filter as Record<string, string>)[f] = f === 'from' || f === 'to' ? new Date(v).toISOString() : v;
  }
  const [pages, setPages] = useState<number[]>([]);
  const before = pages[pages.length - 1];
  const state = useAsync((signal) => admin.audit({ ...filter, order: 'desc', limit: AUDIT_PAGE, ...(before !== undefined ? { before } : {}) }, signal), [route.href, before]);
  return (
    <div>
      <PageHead title="Audit log" />
      <form class="filters" aria-label="Filters" onSubmit={(e) => {
        e.preventDefault();
        const f = e.currentTarget as HTMLFormElement;
        const params: Record<string, string> = {};
        for (const name of AUDIT_FIELDS) params[name] = field(f, name);
        setPages([]);
        navigate(href('audit', params));
      }}>
        <label>Principal <input name="principal" defaultValue={route.params.get('principal') ?? ''} /></label>
        <label>Action <input name="action" defaultValue={route.params.get('action') ?? ''} placeholder="config.put" /></label>
        <label>Key prefix <input name="key" defaultValue={route.params.get('key') ?? ''} /></label>
        <label>Outcome
          <select name="outcome" defaultValue={route.params.get('outcome') ?? ''}>
            <option value="">any</option><option value="ok">ok</option><option value="denied">denied</option><option value="failed">failed</option>
          </select>
        </label>
        <label>From <input name="from" type="datetime-local" defaultValue={route.params.get('from') ?? ''} /></label>
        <label>To <input name="to" type="datetime-local" defaultValue={route.params.get('to') ?? ''} /></label>
        <button type="submit" class="primary">Filter</button>
      </form>
      <Loaded state={state}>
        {(res) => (
          <>
            {/* Newest first: each next page holds the records before the last one shown (`before` an id). */}
            <p class="hint" data-testid="audit-page">
              {res.records.length === 0 ? '' : `Newest first: records ${pages.length * AUDIT_PAGE + 1}–${pages.length * AUDIT_PAGE + res.records.length}${res.more ? ', older ones on the next page' : ''}.`}
            </p>
            <table class="grid" aria-label="Audit records" data-testid="audit">
              <thead><tr><th scope="col">Time</th><th scope="col">Principal</th><th scope="col">Action</th><th scope="col">Outcome</th><th scope="col">Key</th><th scope="col">Versions</th><th scope="col">Source</th><th scope="col">Request</th></tr></thead>
              <tbody>
                {res.records.length === 0 ? <tr><td colSpan={8} class="hint">No records match.</td></tr> : null}
                {res.records.map((r) => (
                  <tr key={r.id} class={r.outcome}>
                    <td>{new Date(r.time).toLocaleString()}</td>
                    <td>{r.principal}</td>
                    <td>{r.action}</td>
                    <td>{r.outcome}</td>
                    <td class="clip">{r.key ?? ''}</td>
                    <td>{r.oldVersion != null || r.newVersion != null ? `${r.oldVersion ?? '–'} → ${r.newVersion ?? '–'}` : ''}</td>
                    <td>{r.source ?? ''}</td>
                    <td class="clip"><code>{r.requestId ?? ''}</code></td>
                  </tr>
                ))}
              </tbody>
            </table>
            <div class="buttons">
              {pages.length > 0 ? <button type="button" onClick={() => setPages(pages.slice(0, -1))}>Previous page</button> : null}
              {res.more && res.next !== undefined ? <button type="button" onClick={() => setPages([...pages, res.next as number])}>Next page</button> : null}
            </div>
          </>
        )}
      </Loaded>
    </div>
  );
}
