/** Coordination pages: leases with their time to live and keys, locks and elections with holders and queues, sequences. */
import type { JSX } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { href, navigate, useRoute } from '../router.js';
import { admin, can, client } from '../session.js';
import { Link, Loaded, PageHead, act, useAsync } from '../ui.js';

/** `/ui/leases[?id=N]`: every lease, counting down; one lease's keys. */
export function LeasesPage(): JSX.Element {
  const route = useRoute();
  const id = Number(route.params.get('id') ?? 0);
  const list = useAsync((signal) => client.lease.list({ signal }), []);
  useEffect(() => {
    const t = setInterval(() => list.reload(), 2000);
    return () => clearInterval(t);
  }, []);
  return (
    <div>
      <PageHead title="Leases" />
      <Loaded state={list}>
        {(leases) => (
          <table class="grid" aria-label="Leases">
            <thead><tr><th scope="col">Lease</th><th scope="col">Time to live</th><th scope="col">Granted TTL</th><th scope="col">Keys</th></tr></thead>
            <tbody>
              {leases.length === 0 ? <tr><td colSpan={4} class="hint">No leases.</td></tr> : null}
              {leases.map((l) => (
                <tr key={l.id} class={l.id === id ? 'selected' : ''}>
                  <td><Link href={href('leases', { id: l.id })}>{l.id}</Link></td>
                  <td>{l.ttl} s</td>
                  <td>{l.grantedTtl} s</td>
                  <td>{l.keys}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Loaded>
      {id > 0 ? <LeaseDetail id={id} /> : null}
    </div>
  );
}

function LeaseDetail(props: { id: number }): JSX.Element {
  const info = useAsync(() => client.lease.timeToLive(props.id), [props.id]);
  const [error, setError] = useState<string | undefined>(undefined);
  return (
    <section aria-label={`Lease ${props.id}`}>
      <h2>Lease {props.id}</h2>
      <Loaded state={info} missing="This lease has expired or was revoked.">
        {(l) => (
          <>
            <p>{l.ttl > 0 ? `Expires in ${l.ttl} s (granted ${l.grantedTtl} s).` : 'Expired.'}</p>
            <ul>{l.keys.map((k) => <li key={k}><Link href={href('keys', { key: k })}>{k}</Link></li>)}</ul>
            {can('write', '') ? (
              <div class="buttons">
                <button type="button" onClick={() => void act(() => client.lease.keepAlive(props.id)).then((e) => (setError(e), info.reload()))}>Keep alive</button>
                <button type="button" class="danger" onClick={() => void act(() => client.lease.revoke(props.id)).then((e) => (setError(e), navigate(href('leases'))))}>Revoke</button>
              </div>
            ) : null}
            {error !== undefined ? <p class="error" role="alert">{error}</p> : null}
          </>
        )}
      </Loaded>
    </section>
  );
}

/** `/ui/locks?name=…`: a lock's holder (with its fencing token) and queue, and an election's candidates. */
export function LocksPage(): JSX.Element {
  const route = useRoute();
  const name = route.params.get('name') ?? '';
  return (
    <div>
      <PageHead title="Locks & elections" />
      <form class="inline" onSubmit={(e) => {
        e.preventDefault();
        navigate(href('locks', { name: ((e.currentTarget as HTMLFormElement).elements.namedItem('name') as HTMLInputElement).value }));
      }}>
        <label>Lock or election name <input name="name" defaultValue={name} placeholder="jobs/nightly" /></label>
        <button type="submit">Show</button>
      </form>
      {name !== '' ? <LockState name={name} /> : <p class="hint">A lock or election “name” lives under the keys “name/…”.</p>}
    </div>
  );
}

function LockState(props: { name: string }): JSX.Element {
  const lock = useAsync((signal) => admin.lock(props.name, signal), [props.name]);
  const election = useAsync((signal) => admin.electionCandidates(props.name, signal), [props.name]);
  useEffect(() => {
    const t = setInterval(() => {
      lock.reload();
      election.reload();
    }, 2000);
    return () => clearInterval(t);
  }, [props.name]);
  return (
    <div class="two-col">
      <section aria-label="Lock">
        <h2>Lock</h2>
        <Loaded state={lock}>
          {(s) => (
            <>
              <p>Holder: {s.holder === null ? 'none' : <><Link href={href('keys', { key: s.holder.key })}>{s.holder.key}</Link> (fencing token {s.holder.fencingToken}, lease {s.holder.lease})</>}</p>
              <h3>Queue ({s.waiters.length})</h3>
              <ol>{s.waiters.map((w) => <li key={w.key}>{w.key} (lease {w.lease})</li>)}</ol>
            </>
          )}
        </Loaded>
      </section>
      <section aria-label="Election">
        <h2>Election</h2>
        <Loaded state={election}>
          {(c) => (
            c.length === 0 ? <p>No candidates.</p> : (
              <ol>{c.map((kv, i) => <li key={kv.key}>{i === 0 ? <strong>leader: </strong> : null}{kv.key} {kv.text !== undefined && kv.text !== '' ? `— ${kv.text}` : ''}</li>)}</ol>
            )
          )}
        </Loaded>
      </section>
    </div>
  );
}

/** `/ui/sequences?prefix=…`: the sequential keys under a prefix and the next one. */
export function SequencesPage(): JSX.Element {
  const route = useRoute();
  const prefix = route.params.get('prefix') ?? '';
  const keys = useAsync((signal) => (prefix === '' ? Promise.resolve(undefined) : client.range(`${prefix}/`, { limit: 200, signal })), [prefix]);
  const [error, setError] = useState<string | undefined>(undefined);
  return (
    <div>
      <PageHead title="Sequences" />
      <form class="inline" onSubmit={(e) => {
        e.preventDefault();
        navigate(href('sequences', { prefix: ((e.currentTarget as HTMLFormElement).elements.namedItem('prefix') as HTMLInputElement).value }));
      }}>
        <label>Sequence prefix <input name="prefix" defaultValue={prefix} placeholder="queue/jobs" /></label>
        <button type="submit">Show</button>
      </form>
      {prefix === '' ? null : (
        <>
          {can('write', `${prefix}/`) ? (
            <button type="button" onClick={() => void act(() => client.createSequential(prefix, '')).then((e) => (setError(e), keys.reload()))}>Create next</button>
          ) : null}
          {error !== undefined ? <p class="error" role="alert">{error}</p> : null}
          <Loaded state={keys}>
            {(r) => (r === undefined ? null : (
              <table class="grid" aria-label="Sequential keys">
                <thead><tr><th scope="col">Key</th><th scope="col">Revision</th><th scope="col">Lease</th></tr></thead>
                <tbody>{r.kvs.map((kv) => <tr key={kv.key}><td><Link href={href('keys', { key: kv.key })}>{kv.key}</Link></td><td>{kv.modRevision}</td><td>{kv.lease || ''}</td></tr>)}</tbody>
              </table>
            ))}
          </Loaded>
        </>
      )}
    </div>
  );
}
