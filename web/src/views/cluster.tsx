/** Operations pages: the cluster's nodes, and the cache tier's namespaces (hit rate, memory, evictions). */
import type { JSX } from 'preact';
import { useEffect } from 'preact/hooks';
import { admin, client } from '../session.js';
import { Loaded, PageHead, useAsync } from '../ui.js';

/** `/ui/cluster`: every node sharing the store, its applied revision and lag. */
export function ClusterPage(): JSX.Element {
  const cluster = useAsync((signal) => client.cluster({ signal }), []);
  const status = useAsync((signal) => client.status({ signal }), []);
  useEffect(() => {
    const t = setInterval(() => {
      cluster.reload();
      status.reload();
    }, 5000);
    return () => clearInterval(t);
  }, []);
  return (
    <div>
      <PageHead title="Cluster" />
      <Loaded state={status}>
        {(s) => (
          <dl class="meta">
            <dt>Version</dt><dd>{s.version}</dd>
            <dt>Revision</dt><dd>{s.revision}</dd>
            <dt>Compacted to</dt><dd>{s.compactRevision}</dd>
            {Object.entries(s).filter(([k, v]) => !['version', 'revision', 'compactRevision'].includes(k) && (typeof v === 'string' || typeof v === 'number')).map(([k, v]) => (
              <><dt key={`${k}t`}>{k}</dt><dd key={`${k}d`}>{String(v)}</dd></>
            ))}
          </dl>
        )}
      </Loaded>
      <Loaded state={cluster}>
        {(c) => (
          <table class="grid" aria-label="Nodes">
            <thead><tr><th scope="col">Node</th><th scope="col">URL</th><th scope="col">Version</th><th scope="col">Applied revision</th><th scope="col">Lag</th><th scope="col">Ready</th><th scope="col">Lease expiry</th><th scope="col">Last seen</th></tr></thead>
            <tbody>
              {c.nodes.map((n) => (
                <tr key={n.id} class={n.self ? 'selected' : ''}>
                  <td>{n.id}{n.self ? ' (this node)' : ''}</td><td>{n.url}</td><td>{n.version}</td><td>{n.appliedRevision}</td><td>{n.lag}</td>
                  <td>{n.ready ? 'ready' : 'not ready'}</td><td>{n.expiryLeader ? 'drives expiry' : ''}</td><td>{Math.round(n.lastSeenMs / 1000)} s ago</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Loaded>
    </div>
  );
}

interface CacheRow {
  namespace: string;
  hits?: number;
  misses?: number;
  keys?: number;
  memory?: number;
  evicted?: number;
  expired?: number;
}

async function cacheStats(signal: AbortSignal): Promise<CacheRow[]> {
  const series: [keyof CacheRow, string][] = [
    ['hits', 'beacon_cache_hits_total'],
    ['misses', 'beacon_cache_misses_total'],
    ['keys', 'beacon_cache_keys'],
    ['memory', 'beacon_cache_memory_bytes'],
    ['evicted', 'beacon_cache_evicted_total'],
    ['expired', 'beacon_cache_expired_total'],
  ];
  const rows = new Map<string, CacheRow>();
  await Promise.all(
    series.map(async ([field, metric]) => {
      const res = await admin.query(`sum by (namespace) (${metric})`, undefined, signal);
      for (const s of (res.data?.result ?? []) as { metric: Record<string, string>; value: [number, string] }[]) {
        const ns = s.metric.namespace ?? '';
        const row = rows.get(ns) ?? { namespace: ns };
        (row as unknown as Record<string, number>)[field] = Number(s.value[1]);
        rows.set(ns, row);
      }
    }),
  );
  return [...rows.values()].sort((a, b) => a.namespace.localeCompare(b.namespace));
}

function bytes(n: number | undefined): string {
  if (n === undefined) return '';
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

/** `/ui/cache`: memory namespaces from the node's own metrics (scraped every 15 s). */
export function CachePage(): JSX.Element {
  const stats = useAsync((signal) => cacheStats(signal), []);
  return (
    <div>
      <PageHead title="Cache"><button type="button" onClick={stats.reload}>Refresh</button></PageHead>
      <p class="hint">From the node's own metrics, scraped every 15 s.</p>
      <Loaded state={stats} missing="Metrics are not available on this node.">
        {(rows) => (
          <table class="grid" aria-label="Cache namespaces">
            <thead><tr><th scope="col">Namespace</th><th scope="col">Hit rate</th><th scope="col">Hits</th><th scope="col">Misses</th><th scope="col">Keys</th><th scope="col">Memory</th><th scope="col">Evictions</th><th scope="col">Expired</th></tr></thead>
            <tbody>
              {rows.length === 0 ? <tr><td colSpan={8} class="hint">No cache (memory) namespaces have reported yet.</td></tr> : null}
              {rows.map((r) => {
                const total = (r.hits ?? 0) + (r.misses ?? 0);
                return (
                  <tr key={r.namespace}>
                    <td>{r.namespace === '' ? '(default)' : r.namespace}</td>
                    <td>{total === 0 ? '–' : `${(((r.hits ?? 0) / total) * 100).toFixed(1)} %`}</td>
                    <td>{r.hits ?? ''}</td><td>{r.misses ?? ''}</td><td>{r.keys ?? ''}</td><td>{bytes(r.memory)}</td><td>{r.evicted ?? ''}</td><td>{r.expired ?? ''}</td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        )}
      </Loaded>
    </div>
  );
}
