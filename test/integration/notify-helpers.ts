/** Real receivers for the notification tests: a webhook HTTP server, an SMTP server (smtp-server) and a real Alertmanager process. */
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import { SMTPServer } from 'smtp-server';
import { pino } from 'pino';
import { freePort, tempDir } from '../helpers/node.js';

/** A silent logger for the library under test (BEACON_TEST_LOG=debug shows it). */
export const quietLogger = pino({ level: process.env.BEACON_TEST_LOG ?? 'silent' });

/** One request the webhook server received. */
export interface WebhookHit {
  at: number;
  body: any;
  headers: Record<string, string | string[] | undefined>;
}

/** A webhook receiver: records every POST; `statuses` (consumed one per request) sets the answers, then 200. */
export interface WebhookServer {
  url: string;
  hits: WebhookHit[];
  statuses: number[];
  /** Resolves with the first hit (from index `from`) that satisfies `pred`, or rejects after `timeoutMs`. */
  waitFor(pred: (h: WebhookHit) => boolean, timeoutMs?: number, from?: number): Promise<WebhookHit>;
  close(): Promise<void>;
}

/** Starts a {@link WebhookServer} on `port` (default: a free one). */
export async function startWebhook(port?: number): Promise<WebhookServer> {
  const hits: WebhookHit[] = [];
  const statuses: number[] = [];
  const waiters: Array<() => void> = [];
  const server: Server = createServer((req, res) => {
    let data = '';
    req.setEncoding('utf8');
    req.on('data', (d: string) => (data += d));
    req.on('end', () => {
      const status = statuses.shift() ?? 200;
      if (status === 200) {
        let body: unknown = data;
        try {
          body = JSON.parse(data);
        } catch {
          // not JSON: keep the text
        }
        hits.push({ at: Date.now(), body, headers: req.headers });
        for (const w of waiters.splice(0)) w();
      }
      res.writeHead(status, { 'content-type': 'text/plain' });
      res.end(status === 200 ? 'ok' : 'failing on purpose');
    });
  });
  const p = port ?? (await freePort());
  await new Promise<void>((r) => server.listen(p, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${p}/hook`,
    hits,
    statuses,
    async waitFor(pred, timeoutMs = 15_000, from = 0) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const h = hits.slice(from).find(pred);
        if (h !== undefined) return h;
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`webhook: no matching request within ${timeoutMs} ms; got ${hits.length}: ${JSON.stringify(hits.map((x) => x.body)).slice(0, 2000)}`);
        await new Promise<void>((r) => {
          const t = setTimeout(r, Math.min(left, 200));
          waiters.push(() => {
            clearTimeout(t);
            r();
          });
        });
      }
    },
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** One message the SMTP server received. */
export interface Mail {
  from: string;
  to: string[];
  raw: string;
}

/** A real SMTP server (smtp-server) on 127.0.0.1, plain text (no STARTTLS), accepting any AUTH PLAIN/LOGIN with the given user. */
export interface SmtpServer {
  port: number;
  mails: Mail[];
  auths: string[];
  waitForMails(n: number, timeoutMs?: number): Promise<Mail[]>;
  close(): Promise<void>;
}

export async function startSmtp(port?: number, user = { name: 'beacon', pass: 'secret' }): Promise<SmtpServer> {
  const mails: Mail[] = [];
  const auths: string[] = [];
  const server = new SMTPServer({
    disabledCommands: ['STARTTLS'],
    authOptional: true,
    allowInsecureAuth: true,
    logger: false,
    onAuth(auth, _session, cb) {
      if (auth.username === user.name && auth.password === user.pass) {
        auths.push(auth.username ?? '');
        cb(null, { user: auth.username });
      } else cb(new Error('Invalid username or password'));
    },
    onData(stream, session, cb) {
      let raw = '';
      stream.setEncoding('utf8');
      stream.on('data', (d: string) => (raw += d));
      stream.on('end', () => {
        mails.push({
          from: session.envelope.mailFrom === false ? '' : session.envelope.mailFrom.address,
          to: session.envelope.rcptTo.map((r) => r.address),
          raw,
        });
        cb();
      });
    },
  });
  const p = port ?? (await freePort());
  await new Promise<void>((r) => server.listen(p, '127.0.0.1', () => r()));
  return {
    port: p,
    mails,
    auths,
    async waitForMails(n, timeoutMs = 20_000) {
      const deadline = Date.now() + timeoutMs;
      while (mails.length < n) {
        if (Date.now() > deadline) throw new Error(`smtp: ${mails.length} of ${n} mails within ${timeoutMs} ms`);
        await new Promise((r) => setTimeout(r, 100));
      }
      return mails.slice(0, n);
    },
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

/** A real Alertmanager (Debian `prometheus-alertmanager`) on a free port, with its own temporary storage. */
export interface AlertmanagerProcess {
  url: string;
  child: ChildProcess;
  stderr: () => string;
  stop(): Promise<void>;
}

export const ALERTMANAGER_BIN = '/usr/bin/prometheus-alertmanager';

/** Starts Alertmanager with `configYaml` and waits (at most `timeoutMs`) for `/-/ready`. */
export async function startAlertmanager(configYaml: string, timeoutMs = 20_000): Promise<AlertmanagerProcess> {
  const tmp = tempDir('beacon-am-');
  const cfg = join(tmp.dir, 'alertmanager.yml');
  writeFileSync(cfg, configYaml);
  const port = await freePort();
  const child = spawn(ALERTMANAGER_BIN, [`--config.file=${cfg}`, `--web.listen-address=127.0.0.1:${port}`, '--cluster.listen-address=', `--storage.path=${tmp.dir}`, '--log.level=warn'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (d: string) => (err += d));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(t);
    }
    tmp.cleanup();
  };
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null) {
      await stop();
      throw new Error(`alertmanager exited with ${child.exitCode}:\n${err}`);
    }
    try {
      const res = await fetch(`${url}/-/ready`);
      if (res.status === 200) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`alertmanager did not become ready within ${timeoutMs} ms:\n${err}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { url, child, stderr: () => err, stop };
}

/** A received email split into what a reader sees: headers (lower-case names, unfolded), the text part and the HTML part, transfer encodings undone. */
export interface ParsedMail {
  headers: Record<string, string>;
  text: string;
  html: string;
}

function decodeBody(body: string, encoding: string | undefined): string {
  const enc = (encoding ?? '7bit').toLowerCase();
  if (enc === 'base64') return Buffer.from(body.replace(/\s+/g, ''), 'base64').toString('utf8');
  if (enc === 'quoted-printable') {
    const bytes = body.replace(/=\r?\n/g, '').replace(/=([0-9A-F]{2})/gi, (_m, h: string) => `%${h}`);
    return decodeURIComponent(bytes.replace(/%(?![0-9A-F]{2})/gi, '%25'));
  }
  return body;
}

function splitHeaders(part: string): { headers: Record<string, string>; body: string } {
  const idx = part.search(/\r?\n\r?\n/);
  const head = idx < 0 ? part : part.slice(0, idx);
  const body = idx < 0 ? '' : part.slice(idx).replace(/^\r?\n\r?\n/, '');
  const headers: Record<string, string> = {};
  for (const line of head.replace(/\r?\n[ \t]+/g, ' ').split(/\r?\n/)) {
    const c = line.indexOf(':');
    if (c > 0) headers[line.slice(0, c).trim().toLowerCase()] = line.slice(c + 1).trim();
  }
  return { headers, body };
}

/** Parses a raw MIME message as nodemailer writes it (text + HTML alternatives), enough for assertions. */
export function parseMail(raw: string): ParsedMail {
  const top = splitHeaders(raw);
  const out: ParsedMail = { headers: top.headers, text: '', html: '' };
  const walk = (headers: Record<string, string>, body: string): void => {
    const ct = headers['content-type'] ?? 'text/plain';
    const b = /boundary="?([^";]+)"?/i.exec(ct);
    if (/^multipart\//i.test(ct) && b !== null) {
      for (const part of body.split(`--${b[1]}`).slice(1)) {
        if (part.startsWith('--')) break;
        const p = splitHeaders(part.replace(/^\r?\n/, ''));
        walk(p.headers, p.body);
      }
    } else if (/^text\/html/i.test(ct)) out.html = decodeBody(body, headers['content-transfer-encoding']);
    else if (/^text\/plain/i.test(ct)) out.text = decodeBody(body, headers['content-transfer-encoding']);
  };
  walk(top.headers, top.body);
  return out;
}
