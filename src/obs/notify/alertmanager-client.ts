/**
 * Sends alerts to real Alertmanagers (`POST /api/v2/alerts`) as Prometheus's notifier does: a
 * bounded queue per Alertmanager (the oldest alerts dropped, and counted, when it is full),
 * batches of at most 64, a timeout per request, and a failing Alertmanager never holding up the
 * caller or the others.
 */
import type { Logger } from '../logger.js';
import { InvalidArgumentError } from '../../errors.js';
import { validateAlert, type NotifyAlert } from './labels.js';

/** Prometheus's `--alertmanager.notification-queue-capacity` default. */
export const DEFAULT_AM_QUEUE_CAPACITY = 10_000;
/** Prometheus's batch size: at most 64 alerts per request. */
export const AM_MAX_BATCH = 64;
/** Prometheus's default Alertmanager timeout, 10 s. */
export const DEFAULT_AM_TIMEOUT_MS = 10_000;

/** Labels of the Alertmanager client's counters. */
export interface AlertmanagerLabels {
  alertmanager: string;
}

/**
 * Where the client counts its work. `Metrics` (src/obs/metrics.ts) has these fields, so a node
 * passes its `metrics` object as is.
 */
export interface AlertmanagerMetrics {
  /** Alerts accepted by an Alertmanager (`beacon_alertmanager_alerts_sent_total`). */
  alertmanagerAlertsSent: { inc(labels: AlertmanagerLabels, value?: number): void };
  /** Alerts in requests that failed (`beacon_alertmanager_errors_total`). */
  alertmanagerErrors: { inc(labels: AlertmanagerLabels, value?: number): void };
  /** Alerts dropped because the queue was full (`beacon_alertmanager_alerts_dropped_total`). */
  alertmanagerAlertsDropped: { inc(labels: AlertmanagerLabels, value?: number): void };
}

/** Counters of one Alertmanager, as {@link AlertmanagerClient.status} reports them. */
export interface AlertmanagerStatus {
  /** The Alertmanager's base URL as configured (credentials removed). */
  url: string;
  /** Alerts accepted (2xx). */
  sent: number;
  /** Alerts in requests that failed (error status, timeout, connection refused). */
  errors: number;
  /** Alerts dropped from a full queue. */
  dropped: number;
  /** Alerts waiting. */
  queued: number;
  lastError?: string;
  lastErrorAt?: string;
  lastSuccessAt?: string;
}

/** Options of {@link AlertmanagerClient}. */
export interface AlertmanagerClientOptions {
  /** Base URLs (`http://am:9093`, with an optional path prefix); alerts go to `{url}/api/v2/alerts`. */
  urls: string[];
  logger: Logger;
  metrics?: AlertmanagerMetrics;
  /** Alerts held per Alertmanager before the oldest are dropped. Default 10 000. */
  queueCapacity?: number;
  /** Per-request timeout, ms. Default 10 000. */
  timeoutMs?: number;
  /** Extra request headers (e.g. authorization). Never logged. */
  headers?: Record<string, string>;
}

class Target {
  readonly queue: NotifyAlert[] = [];
  readonly status: AlertmanagerStatus;
  readonly endpoint: string;
  running: Promise<void> | undefined;

  constructor(readonly base: string) {
    const u = new URL(base);
    const auth = u.username !== '' ? `Basic ${Buffer.from(`${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`).toString('base64')}` : undefined;
    this.auth = auth;
    u.username = '';
    u.password = '';
    const clean = u.toString().replace(/\/+$/, '');
    this.status = { url: clean, sent: 0, errors: 0, dropped: 0, queued: 0 };
    this.endpoint = `${clean}/api/v2/alerts`;
  }
  readonly auth: string | undefined;
}

/**
 * Queues alerts for one or more Alertmanagers and sends them in the background. `send` never
 * blocks and never throws for a down Alertmanager: failures are counted, logged and visible in
 * {@link AlertmanagerClient.status}. As in Prometheus, a batch that fails is not retried: the rule
 * engine re-sends firing alerts on its own schedule, and resolved ones carry `endsAt`.
 *
 * @example
 * const am = new AlertmanagerClient({ urls: ['http://127.0.0.1:9093'], logger, metrics: node.metrics });
 * am.send([{ labels: { alertname: 'HighLatency' }, annotations: {}, startsAt: new Date().toISOString() }]);
 */
export class AlertmanagerClient {
  private readonly targets: Target[];
  private readonly logger: Logger;
  private readonly metrics: AlertmanagerMetrics | undefined;
  private readonly capacity: number;
  private readonly timeoutMs: number;
  private readonly headers: Record<string, string>;
  private readonly abort = new AbortController();
  private stopped = false;

  /** @throws InvalidArgumentError when a URL is not an http(s) URL or the list is empty. */
  constructor(opts: AlertmanagerClientOptions) {
    if (!Array.isArray(opts.urls) || opts.urls.length === 0) throw new InvalidArgumentError('alertmanager: at least one URL is required');
    this.targets = opts.urls.map((u) => {
      let parsed: URL;
      try {
        parsed = new URL(u);
      } catch {
        throw new InvalidArgumentError(`alertmanager URL '${u}' is not a valid URL`);
      }
      if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new InvalidArgumentError(`alertmanager URL '${u}': scheme must be http or https`);
      return new Target(u);
    });
    this.logger = opts.logger;
    this.metrics = opts.metrics;
    this.capacity = opts.queueCapacity ?? DEFAULT_AM_QUEUE_CAPACITY;
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_AM_TIMEOUT_MS;
    this.headers = opts.headers ?? {};
  }

  /**
   * Queues alerts for every Alertmanager and returns at once. When a queue would exceed its
   * capacity, its oldest alerts are dropped and counted.
   * @throws InvalidArgumentError when an alert is malformed (nothing is queued then).
   */
  send(alerts: readonly NotifyAlert[]): void {
    if (this.stopped) return;
    const valid = alerts.map((a, i) => validateAlert(a, i));
    if (valid.length === 0) return;
    for (const t of this.targets) {
      t.queue.push(...valid);
      const over = t.queue.length - this.capacity;
      if (over > 0) {
        t.queue.splice(0, over);
        t.status.dropped += over;
        this.metrics?.alertmanagerAlertsDropped.inc({ alertmanager: t.status.url }, over);
        this.logger.warn({ alertmanager: t.status.url, dropped: over }, 'alert queue full; dropped the oldest alerts');
      }
      t.status.queued = t.queue.length;
      if (t.running === undefined) {
        t.running = this.drain(t).finally(() => {
          t.running = undefined;
          if (t.queue.length > 0 && !this.stopped) t.running = this.drain(t).finally(() => (t.running = undefined));
        });
      }
    }
  }

  private async drain(t: Target): Promise<void> {
    // Let the caller's synchronous burst land in the queue before the first batch is cut.
    await Promise.resolve();
    while (t.queue.length > 0 && !this.stopped) {
      const batch = t.queue.splice(0, AM_MAX_BATCH);
      t.status.queued = t.queue.length;
      await this.post(t, batch);
    }
  }

  private async post(t: Target, batch: NotifyAlert[]): Promise<void> {
    const labels = { alertmanager: t.status.url };
    try {
      const res = await fetch(t.endpoint, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'user-agent': 'Beacon', ...(t.auth === undefined ? {} : { authorization: t.auth }), ...this.headers },
        body: JSON.stringify(batch),
        signal: AbortSignal.any([this.abort.signal, AbortSignal.timeout(this.timeoutMs)]),
      });
      const text = await res.text().catch(() => '');
      if (res.status < 200 || res.status >= 300) throw new Error(`unexpected status ${res.status}${text === '' ? '' : `: ${text.slice(0, 200)}`}`);
      t.status.sent += batch.length;
      t.status.lastSuccessAt = new Date().toISOString();
      this.metrics?.alertmanagerAlertsSent.inc(labels, batch.length);
    } catch (err) {
      const e = err as Error;
      const why = e.name === 'TimeoutError' ? `timed out after ${this.timeoutMs} ms` : ((e.cause as Error | undefined)?.message ?? e.message);
      t.status.errors += batch.length;
      t.status.lastError = why;
      t.status.lastErrorAt = new Date().toISOString();
      this.metrics?.alertmanagerErrors.inc(labels, batch.length);
      this.logger.error({ alertmanager: t.status.url, alerts: batch.length, err: why }, 'error sending alerts to Alertmanager');
    }
  }

  /** Per-Alertmanager counters (copies). */
  status(): AlertmanagerStatus[] {
    return this.targets.map((t) => ({ ...t.status, queued: t.queue.length }));
  }

  /** Resolves when every queue is empty and no request is in flight (for tests and shutdown). */
  async flush(): Promise<void> {
    while (this.targets.some((t) => t.running !== undefined)) await Promise.all(this.targets.map((t) => t.running));
  }

  /**
   * Stops: sends what is queued for at most `timeoutMs` (default 2 000), then aborts requests in
   * flight and drops the rest (counted as dropped).
   */
  async stop(timeoutMs = 2000): Promise<void> {
    if (this.stopped) return;
    let t: NodeJS.Timeout | undefined;
    await Promise.race([this.flush(), new Promise<void>((r) => (t = setTimeout(r, timeoutMs)))]);
    if (t !== undefined) clearTimeout(t);
    this.stopped = true;
    this.abort.abort();
    for (const tg of this.targets) {
      if (tg.queue.length > 0) {
        tg.status.dropped += tg.queue.length;
        this.metrics?.alertmanagerAlertsDropped.inc({ alertmanager: tg.status.url }, tg.queue.length);
        tg.queue.length = 0;
      }
    }
    await Promise.allSettled(this.targets.map((tg) => tg.running));
  }
}
