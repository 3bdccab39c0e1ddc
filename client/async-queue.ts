/** An unbounded single-consumer queue exposed as an async iterator, the shape of every SDK stream. */

/**
 * Values pushed by a producer and pulled with `for await`. `end()` finishes the iteration after
 * the queued values; `fail(err)` makes the pull after the queued values throw `err` (once);
 * `stop()` (or leaving the loop) drops what is queued and ends at once, calling `onStop` once.
 */
export class AsyncQueue<T> implements AsyncIterable<T> {
  private readonly items: T[] = [];
  private waiter: { resolve: (r: IteratorResult<T>) => void; reject: (e: unknown) => void } | undefined;
  private failure: { error: unknown } | undefined;
  private ended = false;
  private stopped = false;

  constructor(private readonly onStop?: () => void) {}

  /** True once the queue has ended, failed or been stopped (nothing more will be pushed). */
  get closed(): boolean {
    return this.ended || this.stopped || this.failure !== undefined;
  }

  /** Queues a value (ignored once closed). */
  push(value: T): void {
    if (this.closed) return;
    const w = this.waiter;
    if (w !== undefined) {
      this.waiter = undefined;
      w.resolve({ done: false, value });
    } else this.items.push(value);
  }

  /** Ends the iteration once the queued values are consumed. */
  end(): void {
    if (this.closed) return;
    this.ended = true;
    this.settle();
  }

  /** Makes the iteration throw `error` once the queued values are consumed. */
  fail(error: unknown): void {
    if (this.closed) return;
    this.failure = { error };
    this.settle();
  }

  /** Drops queued values and ends the iteration now. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.items.length = 0;
    this.failure = undefined;
    this.settle();
    this.onStop?.();
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    return {
      next: () => this.next(),
      return: async () => {
        this.stop();
        return { done: true, value: undefined };
      },
    };
  }

  private next(): Promise<IteratorResult<T>> {
    if (this.items.length > 0) return Promise.resolve({ done: false, value: this.items.shift() as T });
    if (this.failure !== undefined) {
      const { error } = this.failure;
      this.failure = undefined;
      this.ended = true;
      return Promise.reject(error);
    }
    if (this.closed) return Promise.resolve({ done: true, value: undefined });
    return new Promise((resolve, reject) => (this.waiter = { resolve, reject }));
  }

  /** Hands the end or the failure to a waiting pull (only reached with nothing queued). */
  private settle(): void {
    const w = this.waiter;
    if (w === undefined || this.items.length > 0) return;
    this.waiter = undefined;
    if (this.failure !== undefined) {
      const { error } = this.failure;
      this.failure = undefined;
      this.ended = true;
      w.reject(error);
    } else w.resolve({ done: true, value: undefined });
  }
}
