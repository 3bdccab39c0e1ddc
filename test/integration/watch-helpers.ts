/** Test clients for the watch transports: a JSON WebSocket client with awaitable messages, and an SSE reader over fetch. */
import WebSocket from 'ws';

/** Resolves when `cond()` holds; rejects after `ms`. */
export async function until(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** A WebSocket client that parses every text frame as JSON and lets a test await messages. */
export class JsonSocket {
  /** Every message received, in order. */
  readonly received: any[] = [];
  private cursor = 0;
  private readonly taken = new Set<number>();
  private wake: (() => void) | undefined;
  closeCode: number | undefined;

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data) => {
      this.received.push(JSON.parse(String(data)));
      this.wake?.();
    });
    ws.on('close', (code) => {
      this.closeCode = code;
      this.wake?.();
    });
  }

  /** Connects to `url` (http:// or ws://) and waits until the socket is open. */
  static async open(url: string, opts: WebSocket.ClientOptions = {}): Promise<JsonSocket> {
    const ws = new WebSocket(url.replace(/^http/, 'ws'), opts);
    const s = new JsonSocket(ws);
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`could not connect to ${url}`)), 5000);
      ws.once('open', () => {
        clearTimeout(t);
        resolve();
      });
      ws.once('error', (e) => {
        clearTimeout(t);
        reject(e);
      });
    });
    return s;
  }

  /** Sends a JSON frame (or a raw string as is). */
  send(frame: unknown): void {
    this.ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
  }

  /** The next message not yet taken that matches `pred` (messages before it stay available). */
  async take(pred: (m: any) => boolean = () => true, ms = 5000): Promise<any> {
    const end = Date.now() + ms;
    for (;;) {
      for (let i = this.cursor; i < this.received.length; i++) {
        if (this.taken.has(i)) continue;
        const m = this.received[i];
        if (pred(m)) {
          this.taken.add(i);
          while (this.taken.has(this.cursor)) this.taken.delete(this.cursor++);
          return m;
        }
      }
      if (this.closeCode !== undefined) throw new Error(`socket closed (${this.closeCode}) while waiting`);
      const left = end - Date.now();
      if (left <= 0) throw new Error(`no matching message in ${ms} ms; got ${JSON.stringify(this.received.slice(-5))}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        t.unref();
        this.wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
  }

  /** The next message of `type` (and `watchId`, when given). */
  takeType(type: string, watchId?: number, ms?: number): Promise<any> {
    return this.take((m) => m.type === type && (watchId === undefined || m.watchId === watchId), ms);
  }

  /** Every `events` message received so far for `watchId`. */
  events(watchId?: number): any[] {
    return this.received.filter((m) => m.type === 'events' && (watchId === undefined || m.watchId === watchId));
  }

  /** Closes the socket and waits for the close to finish. */
  async close(): Promise<void> {
    if (this.ws.readyState === WebSocket.CLOSED) return;
    const closed = new Promise<void>((r) => this.ws.once('close', () => r()));
    this.ws.close();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([closed, new Promise((r) => (timer = setTimeout(r, 2000)))]);
    clearTimeout(timer);
    if ((this.ws.readyState as number) !== WebSocket.CLOSED) this.ws.terminate();
  }
}

/** One Server-Sent Event. */
export interface SseEvent {
  id?: string;
  event: string;
  data: any;
}

/** Reads an SSE stream with fetch, parsing events as they arrive. */
export class SseReader {
  readonly events: SseEvent[] = [];
  ended = false;
  status = 0;
  headers: Headers | undefined;
  private readonly abort = new AbortController();
  private done: Promise<void> | undefined;

  /** Opens `url` with extra request headers (for example Last-Event-ID). */
  async open(url: string, headers: Record<string, string> = {}): Promise<this> {
    const res = await fetch(url, { headers: { accept: 'text/event-stream', ...headers }, signal: this.abort.signal });
    this.status = res.status;
    this.headers = res.headers;
    if (res.body === null) {
      this.ended = true;
      return this;
    }
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    this.done = (async () => {
      let buf = '';
      try {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += value;
          let i: number;
          while ((i = buf.indexOf('\n\n')) >= 0) {
            const block = buf.slice(0, i);
            buf = buf.slice(i + 2);
            const ev: Partial<SseEvent> & { dataText?: string } = { event: 'message' };
            let hasData = false;
            for (const line of block.split('\n')) {
              const c = line.indexOf(':');
              if (c === 0) continue;
              const field = c < 0 ? line : line.slice(0, c);
              const val = c < 0 ? '' : line.slice(c + 1).replace(/^ /, '');
              if (field === 'id') ev.id = val;
              else if (field === 'event') ev.event = val;
              else if (field === 'data') {
                ev.dataText = (ev.dataText === undefined ? '' : `${ev.dataText}\n`) + val;
                hasData = true;
              }
            }
            if (hasData) this.events.push({ id: ev.id, event: ev.event as string, data: JSON.parse(ev.dataText as string) });
          }
        }
      } catch {
        // aborted
      } finally {
        this.ended = true;
      }
    })();
    return this;
  }

  /** Events of one type so far. */
  of(event: string): SseEvent[] {
    return this.events.filter((e) => e.event === event);
  }

  /** Disconnects. */
  async close(): Promise<void> {
    this.abort.abort();
    await this.done;
  }
}
