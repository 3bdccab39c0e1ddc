/**
 * A `fetch` for the CLI on `node:http`. Node 20's global fetch loads and compiles undici on its
 * first call, which costs 150–250 ms of a `beacon get` that otherwise takes about as long in all;
 * a CLI process makes one or two requests and exits, so it pays that every time (issue 10 item
 * 16). This covers what the SDK's transport uses — method, headers, a string or byte body, an
 * AbortSignal; `ok`, `status`, `headers.get`, `text()`, `json()`, `arrayBuffer()` and a streamed
 * `body` — and fails the way fetch does (a TypeError whose `cause` is the socket error, or the
 * signal's reason), so the SDK's failover and messages are unchanged. Long-lived programs keep
 * the global fetch.
 */
import type { IncomingMessage, RequestOptions } from 'node:http';
import { request as httpRequest } from 'node:http';
import { Readable } from 'node:stream';

/** The part of the Fetch API's Headers that the SDK reads. */
class LiteHeaders {
  constructor(private readonly raw: IncomingMessage['headers']) {}

  get(name: string): string | null {
    const v = this.raw[name.toLowerCase()];
    if (v === undefined) return null;
    return Array.isArray(v) ? v.join(', ') : v;
  }

  has(name: string): boolean {
    return this.raw[name.toLowerCase()] !== undefined;
  }

  forEach(fn: (value: string, name: string) => void): void {
    for (const name of Object.keys(this.raw)) fn(this.get(name) as string, name);
  }
}

/** The part of the Fetch API's Response that the SDK reads. */
class LiteResponse {
  readonly status: number;
  readonly statusText: string;
  readonly ok: boolean;
  readonly headers: LiteHeaders;
  readonly url: string;
  private used = false;

  constructor(private readonly incoming: IncomingMessage, url: string) {
    this.status = incoming.statusCode ?? 0;
    this.statusText = incoming.statusMessage ?? '';
    this.ok = this.status >= 200 && this.status < 300;
    this.headers = new LiteHeaders(incoming.headers);
    this.url = url;
  }

  get bodyUsed(): boolean {
    return this.used;
  }

  /** The body as a web stream (snapshot downloads read it in chunks). */
  get body(): ReadableStream<Uint8Array> {
    this.used = true;
    return Readable.toWeb(this.incoming) as unknown as ReadableStream<Uint8Array>;
  }

  async arrayBuffer(): Promise<ArrayBuffer> {
    this.used = true;
    const chunks: Buffer[] = [];
    for await (const c of this.incoming) chunks.push(c as Buffer);
    const all = Buffer.concat(chunks);
    return all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength) as ArrayBuffer;
  }

  async text(): Promise<string> {
    return Buffer.from(await this.arrayBuffer()).toString('utf8');
  }

  async json(): Promise<unknown> {
    return JSON.parse(await this.text()) as unknown;
  }
}

function headerRecord(h: RequestInit['headers']): Record<string, string> {
  if (h === undefined || h === null) return {};
  if (Array.isArray(h)) return Object.fromEntries(h.map(([k, v]) => [k, v]));
  if (Object.getPrototypeOf(h) !== Object.prototype && typeof (h as { forEach?: unknown }).forEach === 'function') {
    // A Headers instance.
    const out: Record<string, string> = {};
    (h as { forEach(fn: (v: string, k: string) => void): void }).forEach((v, k) => (out[k] = v));
    return out;
  }
  return { ...(h as Record<string, string>) };
}

/**
 * `fetch(input, init)` over `node:http` / `node:https` (the latter loaded only for https URLs).
 * @throws the signal's reason when aborted; TypeError('fetch failed', { cause }) on a socket error.
 */
export async function nodeFetch(input: string | URL | Request, init: RequestInit = {}): Promise<Response> {
  const url = new URL(typeof input === 'string' || input instanceof URL ? input : input.url);
  const signal = init.signal ?? undefined;
  if (signal?.aborted) throw signal.reason;
  const request = url.protocol === 'https:' ? (await import('node:https')).request : httpRequest;
  let body: Buffer | undefined;
  if (typeof init.body === 'string') body = Buffer.from(init.body);
  else if (init.body instanceof Uint8Array) body = Buffer.from(init.body.buffer, init.body.byteOffset, init.body.byteLength);
  else if (init.body !== undefined && init.body !== null) throw new TypeError('nodeFetch sends string or byte bodies only');
  const headers = headerRecord(init.headers);
  if (body !== undefined) headers['content-length'] = String(body.byteLength);
  const options: RequestOptions = { method: init.method ?? 'GET', headers };
  return new Promise<Response>((resolve, reject) => {
    const req = request(url, options, (incoming) => {
      if (signal !== undefined) {
        // An abort after the answer started ends the body read with the signal's reason, as fetch does.
        const onAbort = (): void => {
          incoming.destroy(signal.reason as Error);
        };
        signal.addEventListener('abort', onAbort, { once: true });
        incoming.once('close', () => signal.removeEventListener('abort', onAbort));
      }
      resolve(new LiteResponse(incoming, url.href) as unknown as Response);
    });
    const onAbort = (): void => {
      req.destroy();
      reject(signal?.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    req.once('response', () => signal?.removeEventListener('abort', onAbort));
    req.once('error', (err) => {
      signal?.removeEventListener('abort', onAbort);
      reject(signal?.aborted ? signal.reason : new TypeError('fetch failed', { cause: err }));
    });
    req.end(body);
  });
}
