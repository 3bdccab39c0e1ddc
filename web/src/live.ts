/**
 * Live updates: one SDK watch per readable prefix (every key for most users), shared by every
 * view. The SDK resumes a lost watch from the last revision it delivered, so nothing is missed
 * across a node restart; while it reconnects the header shows "reconnecting". Views subscribe to
 * the events; the last events are kept for the live stream page. `window.__beaconLive` records
 * when each event was applied and then painted (ms since the epoch), which the browser tests read
 * to measure live-update latency.
 */
import type { Watch, WatchEvent } from '../../client/index.js';
import { client, readablePrefixes } from './session.js';

/** The connection state shown in the header. */
export type LiveStatus = 'connecting' | 'live' | 'reconnecting' | 'off';

let status: LiveStatus = 'off';
let lastRevision = 0;
const watches: Watch[] = [];
const eventListeners = new Set<(ev: WatchEvent) => void>();
const statusListeners = new Set<(s: LiveStatus) => void>();
/** Recent events, newest last (bounded). */
export const recent: WatchEvent[] = [];
const RECENT_MAX = 500;

interface LiveProbe {
  applied: { key: string; type: string; revision: number; at: number; painted?: number }[];
}
const probe: LiveProbe = { applied: [] };
(globalThis as { __beaconLive?: LiveProbe }).__beaconLive = probe;

function setStatus(s: LiveStatus): void {
  status = s;
  for (const l of statusListeners) l(s);
}

/** The current connection state. */
export function liveStatus(): LiveStatus {
  return status;
}

/** The newest revision delivered by the live watch. */
export function liveRevision(): number {
  return lastRevision;
}

/** Calls `l` for each change the live watch delivers; returns the unsubscribe function. */
export function onLiveEvent(l: (ev: WatchEvent) => void): () => void {
  eventListeners.add(l);
  return () => void eventListeners.delete(l);
}

/** Calls `l` when the connection state changes; returns the unsubscribe function. */
export function onLiveStatus(l: (s: LiveStatus) => void): () => void {
  statusListeners.add(l);
  return () => void statusListeners.delete(l);
}

/** Restarts the watches after a watch ended with an error, or a connection attempt went nowhere. */
let restartTimer: ReturnType<typeof setTimeout> | undefined;
/** When the watches last left the `live` state (ms), for the watchdog. */
let notLiveSince = 0;
/** How long a watch may stay without a live connection before it is started afresh (ms). */
const WATCHDOG_MS = 10_000;

function scheduleRestart(delayMs: number): void {
  if (restartTimer !== undefined) return;
  restartTimer = setTimeout(() => {
    restartTimer = undefined;
    if (watches.length > 0 || status !== 'off') startLive(lastRevision > 0 ? lastRevision + 1 : undefined);
  }, delayMs);
}

async function pump(w: Watch): Promise<void> {
  try {
    for await (const ev of w) {
      lastRevision = Math.max(lastRevision, ev.revision);
      recent.push(ev);
      if (recent.length > RECENT_MAX) recent.splice(0, recent.length - RECENT_MAX);
      for (const l of eventListeners) l(ev);
      const entry: LiveProbe['applied'][number] = { key: ev.kv.key, type: ev.type, revision: ev.revision, at: Date.now() };
      probe.applied.push(entry);
      // The next frame after the views re-rendered: when the change is on screen.
      requestAnimationFrame(() => setTimeout(() => (entry.painted = Date.now()), 0));
      if (probe.applied.length > 2000) probe.applied.splice(0, 1000);
    }
  } catch (err) {
    // An unauthenticated end is the session's business (the login comes back); anything else
    // (a refusal, a lost stream the SDK gave up on) is retried from the last revision.
    if ((err as { code?: string }).code === 'unauthenticated') {
      setStatus('off');
      return;
    }
    setStatus('reconnecting');
    scheduleRestart(2000);
  }
}

/**
 * (Re)starts the live watches for the signed-in user's readable prefixes, from `fromRevision`
 * when given (a restart resumes where the last watch stopped, so nothing is missed). A watchdog
 * starts them afresh when they stay without a live connection for {@link WATCHDOG_MS}.
 */
export function startLive(fromRevision?: number): void {
  stopLive();
  setStatus(fromRevision === undefined ? 'connecting' : 'reconnecting');
  notLiveSince = Date.now();
  for (const prefix of readablePrefixes()) {
    const w = client.watch(prefix, {
      prefix: true,
      prevKv: false,
      retryInitial: true,
      ...(fromRevision !== undefined ? { fromRevision } : {}),
      reconnect: { initialDelayMs: 200, maxDelayMs: 2000 },
      onStatus: (s) => {
        if (s.state === 'watching') {
          // A watch started "from now" delivers every change after the node's revision at that
          // moment: a restart from there misses nothing even before the first event arrived
          // (without this, a page that saw no event yet restarted "from now" after an outage and
          // lost the changes made meanwhile). A resumed watch may still be replaying older ones.
          // (With several prefixes one watch's revision says nothing of the others': not used.)
          if (fromRevision === undefined && s.resumedFrom === undefined && watches.length === 1) lastRevision = Math.max(lastRevision, s.revision);
          setStatus('live');
        } else {
          if (status === 'live') notLiveSince = Date.now();
          setStatus('reconnecting');
        }
      },
    });
    watches.push(w);
    void pump(w);
  }
  watchdog = setInterval(() => {
    if (status !== 'live' && Date.now() - notLiveSince > WATCHDOG_MS) startLive(lastRevision > 0 ? lastRevision + 1 : undefined);
  }, 2000);
}

let watchdog: ReturnType<typeof setInterval> | undefined;

/** Stops the live watches (logout). */
export function stopLive(): void {
  clearInterval(watchdog);
  watchdog = undefined;
  clearTimeout(restartTimer);
  restartTimer = undefined;
  for (const w of watches.splice(0)) w.stop();
  setStatus('off');
}
