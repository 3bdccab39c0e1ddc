/**
 * Per-attempt timeouts that requests share, so that the common request (no signal of the
 * caller's, the client's default timeout) costs neither its own AbortController nor its own timer.
 *
 * Why: handing `fetch` a signal is what makes a timeout able to abort the request (free its
 * socket, stop the download), but each new AbortController, its timer and the listener fetch adds
 * to it cost about a tenth of a keep-alive GET's client CPU (bench/sdk-get.ts). Requests that
 * start within one short slice of time instead join one {@link DeadlineBatch}: one controller, one
 * timer set to the slice's end plus the timeout. When it fires while any of the batch's requests is
 * still running, it aborts them all, and each of those has then run for at least the timeout (it
 * started within the slice) and at most the timeout plus the slice. Requests of the batch that
 * have already finished are unaffected: aborting the signal of a finished fetch does nothing.
 */
import { unrefTimer } from './resilience.js';

/** Most requests one batch takes: fetch adds a listener per request to the signal and scans them all on the next one. */
const MAX_PER_BATCH = 16;
/** The longest delay a timer takes (2^31 − 1 ms, about 24.8 days); a longer one fires at once. */
export const MAX_TIMER_MS = 2 ** 31 - 1;
/** Longest slice, in milliseconds; the slice is also at most 5 % of the timeout. */
const MAX_SLICE_MS = 50;

/** One shared deadline: the signal given to the fetch of every request in the batch. */
export class DeadlineBatch {
  readonly controller = new AbortController();
  /** Requests that started in this batch and have not ended. */
  private inFlight = 0;
  /** Requests that started in this batch. */
  private started = 0;
  /** Whether new requests may still join (until the slice ends, the batch is full or it fired). */
  private joinable = true;
  private readonly timer: ReturnType<typeof setTimeout>;

  constructor(
    /** `performance.now()` at which the slice ends and the batch takes no more requests. */
    private readonly closesAt: number,
    timeoutMs: number,
    sliceMs: number,
  ) {
    this.timer = setTimeout(() => {
      this.joinable = false;
      if (this.inFlight > 0) this.controller.abort(new DOMException(`timed out after ${timeoutMs} ms`, 'TimeoutError'));
    }, Math.min(sliceMs + timeoutMs, MAX_TIMER_MS));
    // A batch whose requests have all ended must not keep a Node process alive; a request that
    // is still running keeps it alive through its own socket.
    unrefTimer(this.timer);
  }

  /** The signal to hand to fetch. */
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** Whether the deadline has passed with requests of this batch still running (all of them timed out). */
  get timedOut(): boolean {
    return this.controller.signal.aborted;
  }

  /** Joins a request if the batch still takes them; true when it did. */
  join(now: number): boolean {
    if (!this.joinable || now >= this.closesAt || this.started >= MAX_PER_BATCH) {
      this.close();
      return false;
    }
    this.started++;
    this.inFlight++;
    return true;
  }

  /** Ends one request of the batch (exactly once per successful {@link DeadlineBatch.join}). */
  end(): void {
    this.inFlight--;
    if (this.inFlight === 0 && !this.joinable) clearTimeout(this.timer);
  }

  /** Takes no more requests; once none is running, the timer is not needed. */
  private close(): void {
    this.joinable = false;
    if (this.inFlight === 0) clearTimeout(this.timer);
  }
}

/**
 * Hands out the {@link DeadlineBatch} of the current slice for one timeout (in milliseconds),
 * starting a new batch when the slice has ended or the batch is full.
 * @example
 * const deadlines = new SharedDeadlines(10_000);
 * const batch = deadlines.start();
 * try { await fetch(url, { signal: batch.signal }); } finally { batch.end(); }
 */
export class SharedDeadlines {
  private current: DeadlineBatch | undefined;
  private readonly sliceMs: number;

  constructor(readonly timeoutMs: number) {
    this.sliceMs = Math.min(MAX_SLICE_MS, timeoutMs / 20);
  }

  /** Starts one request: returns the batch it belongs to; call `end()` on it when the request ends. */
  start(): DeadlineBatch {
    const now = performance.now();
    if (this.current?.join(now)) return this.current;
    const batch = new DeadlineBatch(now + this.sliceMs, this.timeoutMs, this.sliceMs);
    batch.join(now);
    this.current = batch;
    return batch;
  }
}
