/** The live event stream of a prefix: every put and delete as it is committed, newest first. */
import type { JSX } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import type { WatchEvent } from '../../../client/index.js';
import { onLiveEvent, recent } from '../live.js';
import { href, navigate, useRoute } from '../router.js';
import { Link, PageHead } from '../ui.js';

const MAX_SHOWN = 300;

/** `/ui/live?prefix=…`: the events under a prefix, arriving live. */
export function LivePage(): JSX.Element {
  const route = useRoute();
  const prefix = route.params.get('prefix') ?? '';
  const [events, setEvents] = useState<WatchEvent[]>(() => recent.filter((e) => e.kv.key.startsWith(prefix)).slice(-MAX_SHOWN).reverse());
  const [paused, setPaused] = useState(false);
  useEffect(() => {
    setEvents(recent.filter((e) => e.kv.key.startsWith(prefix)).slice(-MAX_SHOWN).reverse());
    if (paused) return;
    return onLiveEvent((ev) => {
      if (ev.kv.key.startsWith(prefix)) setEvents((old) => [ev, ...old].slice(0, MAX_SHOWN));
    });
  }, [prefix, paused]);
  return (
    <div>
      <PageHead title="Live events">
        <button type="button" onClick={() => setPaused(!paused)} aria-pressed={paused}>{paused ? 'Resume' : 'Pause'}</button>
      </PageHead>
      <form class="inline" onSubmit={(e) => {
        e.preventDefault();
        const v = ((e.currentTarget as HTMLFormElement).elements.namedItem('prefix') as HTMLInputElement).value;
        navigate(href('live', { prefix: v }));
      }}>
        <label>Prefix <input name="prefix" defaultValue={prefix} placeholder="(every key)" /></label>
        <button type="submit">Watch</button>
      </form>
      <table class="grid" aria-label="Events" data-testid="events">
        <thead><tr><th scope="col">Revision</th><th scope="col">Event</th><th scope="col">Key</th><th scope="col">Value</th></tr></thead>
        <tbody>
          {events.length === 0 ? <tr><td colSpan={4} class="hint">Waiting for changes under “{prefix}”…</td></tr> : null}
          {events.map((ev) => (
            <tr key={`${ev.revision}:${ev.kv.key}`} class={ev.type}>
              <td>{ev.revision}</td>
              <td>{ev.type}</td>
              <td><Link href={href('keys', { key: ev.kv.key })}>{ev.kv.key}</Link></td>
              <td class="clip">{ev.type === 'delete' ? '' : ev.kv.redacted === true ? '(redacted)' : (ev.kv.text ?? '(binary)').slice(0, 200)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
