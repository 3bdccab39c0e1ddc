/**
 * The two built-in integrations: a webhook (Alertmanager's payload, POSTed as JSON) and email
 * over SMTP (nodemailer). Each `send` throws {@link SendError} saying whether a retry may help.
 */
import nodemailer, { type Transporter } from 'nodemailer';
import type { EmailConfig, WebhookConfig } from './config.js';
import { emailHtml, emailSubject, emailText, webhookPayload, type NotificationData } from './render.js';

/** A failed delivery; `retryable` is false where the receiver refused the content (HTTP 4xx, SMTP 5xx). */
export class SendError extends Error {
  override readonly name = 'SendError';
  constructor(
    message: string,
    readonly retryable: boolean,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** One integration of a receiver. */
export interface Integration {
  /** `webhook` or `email`, the `integration` label of the metrics. */
  readonly kind: 'webhook' | 'email';
  /** `webhook[0]`, `email[1]`…: the integration's position in its receiver, shown in the history. */
  readonly name: string;
  readonly sendResolved: boolean;
  /** Delivers one notification; rejects with {@link SendError}. `signal` aborts on shutdown. */
  send(data: NotificationData, signal: AbortSignal): Promise<void>;
  /** Releases connections. */
  close(): void;
}

/** Reads at most `max` bytes of an error response body, for the error message. */
async function snippet(res: Response, max = 200): Promise<string> {
  try {
    const t = await res.text();
    return t.length > max ? `${t.slice(0, max)}…` : t;
  } catch {
    return '';
  }
}

/** Creates a webhook integration. The URL's credentials and `http_config` headers are never put in errors. */
export function webhookIntegration(cfg: WebhookConfig, index: number, userAgent: string): Integration {
  // fetch refuses URLs with credentials: send them as basic auth instead (unless http_config set one).
  const target = new URL(cfg.url);
  const headers: Record<string, string> = { 'content-type': 'application/json', 'user-agent': userAgent };
  if (target.username !== '') headers.authorization = `Basic ${Buffer.from(`${decodeURIComponent(target.username)}:${decodeURIComponent(target.password)}`).toString('base64')}`;
  Object.assign(headers, cfg.headers);
  target.username = '';
  target.password = '';
  const url = target.toString();
  const safeUrl = (() => {
    const u = new URL(url);
    u.search = '';
    return u.toString();
  })();
  return {
    kind: 'webhook',
    name: `webhook[${index}]`,
    sendResolved: cfg.sendResolved,
    async send(data, signal) {
      let body: string;
      try {
        body = JSON.stringify(webhookPayload(data, cfg.maxAlerts));
      } catch (err) {
        throw new SendError(`rendering the webhook payload failed: ${(err as Error).message}`, false, { cause: err });
      }
      let res: Response;
      try {
        res = await fetch(url, {
          method: 'POST',
          headers,
          body,
          signal: AbortSignal.any([signal, AbortSignal.timeout(cfg.timeoutMs)]),
        });
      } catch (err) {
        const e = err as Error;
        const why = e.name === 'TimeoutError' ? `timed out after ${cfg.timeoutMs} ms` : ((e.cause as Error | undefined)?.message ?? e.message);
        throw new SendError(`POST ${safeUrl}: ${why}`, true, { cause: err });
      }
      if (res.status >= 200 && res.status < 300) {
        await res.body?.cancel();
        return;
      }
      const text = await snippet(res);
      // Alertmanager retries a webhook on 5xx (and 429) and gives up on other 4xx: the
      // receiver has rejected this payload and would reject it again.
      const retryable = res.status >= 500 || res.status === 429;
      throw new SendError(`POST ${safeUrl}: unexpected status ${res.status}${text === '' ? '' : `: ${text}`}`, retryable);
    },
    close() {},
  };
}

/** Creates an email integration: one SMTP connection per message, STARTTLS as `require_tls` says. */
export function emailIntegration(cfg: EmailConfig, index: number): Integration {
  const transport: Transporter = nodemailer.createTransport({
    host: cfg.smarthost.host,
    port: cfg.smarthost.port,
    // Port 465 speaks TLS from the first byte (SMTPS); others upgrade with STARTTLS when
    // require_tls is set and stay in plain text otherwise, as Alertmanager does.
    secure: cfg.smarthost.port === 465,
    requireTLS: cfg.requireTls && cfg.smarthost.port !== 465,
    ignoreTLS: !cfg.requireTls && cfg.smarthost.port !== 465,
    name: cfg.hello,
    auth: cfg.authUsername === '' ? undefined : { user: cfg.authUsername, pass: cfg.authPassword },
    tls: { rejectUnauthorized: !cfg.insecureSkipVerify, servername: cfg.smarthost.host },
    connectionTimeout: 10_000,
    greetingTimeout: 10_000,
    socketTimeout: 30_000,
  });
  const header = (name: string): string | undefined => {
    for (const [k, v] of Object.entries(cfg.headers)) if (k.toLowerCase() === name) return v;
    return undefined;
  };
  const extra: Record<string, string> = {};
  for (const [k, v] of Object.entries(cfg.headers)) if (!['subject', 'to', 'from'].includes(k.toLowerCase())) extra[k] = v;
  return {
    kind: 'email',
    name: `email[${index}]`,
    sendResolved: cfg.sendResolved,
    async send(data, signal) {
      // The body has a fixed format; if rendering ever fails the email still goes out, saying so.
      let subject: string;
      let text: string;
      let html: string | undefined;
      try {
        subject = emailSubject(data);
      } catch (err) {
        subject = `[${data.alerts.some((a) => a.status === 'firing') ? 'FIRING' : 'RESOLVED'}] ${data.groupKey} (rendering the subject failed: ${(err as Error).message})`;
      }
      try {
        text = emailText(data);
        html = emailHtml(data);
      } catch (err) {
        text = `Rendering this notification failed: ${(err as Error).message}\n\n${JSON.stringify(data.alerts, null, 2)}\n`;
        html = undefined;
      }
      if (signal.aborted) throw new SendError('aborted', false);
      try {
        await transport.sendMail({
          from: header('from') ?? cfg.from,
          to: header('to') ?? cfg.to,
          subject: header('subject') ?? subject,
          text,
          ...(html === undefined ? {} : { html }),
          headers: extra,
        });
      } catch (err) {
        const e = err as Error & { responseCode?: number; code?: string };
        // SMTP 5xx replies are permanent failures (RFC 5321 §4.2.1); anything else may pass on a retry.
        const permanent = typeof e.responseCode === 'number' && e.responseCode >= 500 && e.responseCode < 600;
        throw new SendError(`SMTP ${cfg.smarthost.host}:${cfg.smarthost.port}: ${e.message}`, !permanent, { cause: err });
      }
    },
    close() {
      transport.close();
    },
  };
}
