/**
 * A small typed event emitter that runs in Node and browsers alike (Node's `events` module is not
 * in browsers, and `EventTarget` cannot type its payloads).
 */

/** A map from event name to the listener's argument. */
export type EventMap = Record<string, unknown>;

/**
 * Emits typed events to listeners added with `on`/`once`, removed with `off`. A listener that
 * throws does not stop the others; the error is reported to the `error` listeners when there
 * are any, and otherwise rethrown asynchronously (as an uncaught exception, like Node's emitter).
 * @example
 * const e = new Emitter<{ change: { value: number } }>();
 * e.on('change', ({ value }) => console.log(value));
 */
export class Emitter<E extends EventMap> {
  private readonly listeners = new Map<keyof E, Set<(arg: never) => void>>();

  /** Adds a listener; returns a function that removes it. */
  on<K extends keyof E>(event: K, listener: (arg: E[K]) => void): () => void {
    let set = this.listeners.get(event);
    if (set === undefined) this.listeners.set(event, (set = new Set()));
    set.add(listener as (arg: never) => void);
    return () => this.off(event, listener);
  }

  /** Adds a listener called at most once. */
  once<K extends keyof E>(event: K, listener: (arg: E[K]) => void): () => void {
    const off = this.on(event, (arg) => {
      off();
      listener(arg);
    });
    return off;
  }

  /** Removes a listener. */
  off<K extends keyof E>(event: K, listener: (arg: E[K]) => void): void {
    this.listeners.get(event)?.delete(listener as (arg: never) => void);
  }

  /** How many listeners `event` has. */
  listenerCount(event: keyof E): number {
    return this.listeners.get(event)?.size ?? 0;
  }

  /** Calls every listener of `event` with `arg`, in the order they were added. */
  protected emit<K extends keyof E>(event: K, arg: E[K]): void {
    const set = this.listeners.get(event);
    if (set === undefined) return;
    for (const l of [...set]) {
      try {
        (l as (arg: E[K]) => void)(arg);
      } catch (err) {
        if (event !== 'error' && this.listenerCount('error') > 0) this.emit('error' as K, err as E[K]);
        else queueMicrotask(() => { throw err; });
      }
    }
  }
}
