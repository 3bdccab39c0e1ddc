/** AbortSignal plumbing shared by the SDK's blocking calls (locks, campaigns, sessions). */

/**
 * One AbortSignal that aborts when any of `signals` does (with that signal's reason), or after
 * `timeoutMs` with `onTimeout()` as the reason. `dispose()` removes the listeners and the timer;
 * call it when the operation ends.
 */
export function linkSignals(
  signals: readonly (AbortSignal | undefined)[],
  timeoutMs?: number,
  onTimeout?: () => unknown,
): { signal: AbortSignal; dispose: () => void } {
  const ctl = new AbortController();
  const cleanups: (() => void)[] = [];
  for (const s of signals) {
    if (s === undefined) continue;
    if (s.aborted) {
      ctl.abort(s.reason);
      break;
    }
    const onAbort = (): void => ctl.abort(s.reason);
    s.addEventListener('abort', onAbort, { once: true });
    cleanups.push(() => s.removeEventListener('abort', onAbort));
  }
  if (timeoutMs !== undefined && !ctl.signal.aborted) {
    // A delay above 2^31 − 1 ms would fire at once; clamp it (about 24.8 days).
    const t = setTimeout(() => ctl.abort(onTimeout?.() ?? new DOMException('timed out', 'TimeoutError')), Math.min(timeoutMs, 2 ** 31 - 1));
    cleanups.push(() => clearTimeout(t));
  }
  return {
    signal: ctl.signal,
    dispose: () => {
      for (const c of cleanups) c();
    },
  };
}
