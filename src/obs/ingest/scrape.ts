/**
 * Scraping: the node's own metrics every 15 s, and the static targets of a Prometheus-style
 * `scrape_configs` file, with `up`, `scrape_duration_seconds`, `scrape_samples_scraped` per
 * target and stale markers when a target or one of its series vanishes (Prometheus's staleness).
 */
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { InvalidArgumentError } from '../../errors.js';
import type { Logger } from '../logger.js';
import { STALE_MARKER, type Label } from '../tsdb/index.js';
import { SeriesBatch } from './batch.js';
import { parseDuration } from './duration.js';
import type { Ingester } from './ingester.js';
import { parseTextPush } from './parsers.js';

/** Default scrape interval (Prometheus's global default is 1m; Beacon's own metrics use 15 s, DESIGN §7). */
export const DEFAULT_SCRAPE_INTERVAL_MS = 15_000;
/** Default scrape timeout. */
export const DEFAULT_SCRAPE_TIMEOUT_MS = 10_000;
/** Largest scrape body read, bytes. */
export const MAX_SCRAPE_BYTES = 32 * 1024 * 1024;

/** One scrape target. */
export interface ScrapeTarget {
  job: string;
  /** The URL scraped, e.g. `http://127.0.0.1:9100/metrics`. */
  url: string;
  /** The `instance` label (`host:port`). */
  instance: string;
  intervalMs: number;
  timeoutMs: number;
  /** Keep the target's own `job`/`instance` labels on a clash (else they become `exported_…`). */
  honorLabels: boolean;
  /** Extra labels of the static config. */
  labels: Label[];
  /** In-process source instead of HTTP (the node's own registry). */
  collect?: () => Promise<string>;
}

function str(o: Record<string, unknown>, k: string, where: string): string | undefined {
  const v = o[k];
  if (v === undefined) return undefined;
  if (typeof v !== 'string') throw new InvalidArgumentError(`${where}.${k} must be a string`);
  return v;
}

/**
 * Reads the static targets of a Prometheus-style configuration file: `global.scrape_interval`/
 * `scrape_timeout`, and per `scrape_configs` entry `job_name`, `static_configs` (`targets`,
 * `labels`), `scrape_interval`, `scrape_timeout`, `metrics_path`, `scheme`, `honor_labels`.
 * Other keys (service discovery, relabelling) are refused, so a config is never half-honoured.
 * @throws InvalidArgumentError naming the bad entry.
 */
export function loadScrapeConfig(path: string): ScrapeTarget[] {
  let doc: unknown;
  try {
    doc = parseYaml(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new InvalidArgumentError(`cannot read scrape config ${path}: ${(err as Error).message}`);
  }
  return scrapeTargetsFrom(doc, path);
}

/** {@link loadScrapeConfig} on an already-parsed document. */
export function scrapeTargetsFrom(doc: unknown, source = 'scrape config'): ScrapeTarget[] {
  if (doc === null || typeof doc !== 'object') throw new InvalidArgumentError(`${source}: expected a mapping with scrape_configs`);
  const root = doc as Record<string, unknown>;
  const global = (root.global ?? {}) as Record<string, unknown>;
  const gInterval = str(global, 'scrape_interval', 'global');
  const gTimeout = str(global, 'scrape_timeout', 'global');
  const defInterval = gInterval !== undefined ? parseDuration(gInterval, 'global.scrape_interval') : DEFAULT_SCRAPE_INTERVAL_MS;
  const defTimeout = gTimeout !== undefined ? parseDuration(gTimeout, 'global.scrape_timeout') : DEFAULT_SCRAPE_TIMEOUT_MS;
  const configs = root.scrape_configs ?? [];
  if (!Array.isArray(configs)) throw new InvalidArgumentError(`${source}: scrape_configs must be a list`);
  const out: ScrapeTarget[] = [];
  const jobs = new Set<string>();
  configs.forEach((c: unknown, i) => {
    const where = `scrape_configs[${i}]`;
    if (c === null || typeof c !== 'object') throw new InvalidArgumentError(`${where} must be a mapping`);
    const o = c as Record<string, unknown>;
    const allowed = new Set(['job_name', 'static_configs', 'scrape_interval', 'scrape_timeout', 'metrics_path', 'scheme', 'honor_labels']);
    for (const k of Object.keys(o)) if (!allowed.has(k)) throw new InvalidArgumentError(`${where}.${k} is not supported (supported: ${[...allowed].join(', ')})`);
    const job = str(o, 'job_name', where);
    if (job === undefined || job === '') throw new InvalidArgumentError(`${where}.job_name is required`);
    if (jobs.has(job)) throw new InvalidArgumentError(`${where}: job_name '${job}' appears twice`);
    jobs.add(job);
    const intervalText = str(o, 'scrape_interval', where);
    const timeoutText = str(o, 'scrape_timeout', where);
    const intervalMs = intervalText !== undefined ? parseDuration(intervalText, `${where}.scrape_interval`) : defInterval;
    const timeoutMs = Math.min(intervalMs, timeoutText !== undefined ? parseDuration(timeoutText, `${where}.scrape_timeout`) : defTimeout);
    if (intervalMs < 1000) throw new InvalidArgumentError(`${where}.scrape_interval must be at least 1s`);
    const path = str(o, 'metrics_path', where) ?? '/metrics';
    const scheme = str(o, 'scheme', where) ?? 'http';
    if (scheme !== 'http' && scheme !== 'https') throw new InvalidArgumentError(`${where}.scheme must be http or https`);
    if (o.honor_labels !== undefined && typeof o.honor_labels !== 'boolean') throw new InvalidArgumentError(`${where}.honor_labels must be true or false`);
    const statics = o.static_configs ?? [];
    if (!Array.isArray(statics)) throw new InvalidArgumentError(`${where}.static_configs must be a list`);
    statics.forEach((sc: unknown, j) => {
      const w = `${where}.static_configs[${j}]`;
      const s = (sc ?? {}) as Record<string, unknown>;
      const targets = s.targets ?? [];
      if (!Array.isArray(targets) || targets.some((t) => typeof t !== 'string')) throw new InvalidArgumentError(`${w}.targets must be a list of host:port strings`);
      const labels: Label[] = [];
      for (const [name, value] of Object.entries((s.labels ?? {}) as Record<string, unknown>)) {
        if (typeof value !== 'string') throw new InvalidArgumentError(`${w}.labels.${name} must be a string`);
        labels.push({ name, value });
      }
      for (const t of targets as string[]) {
        if (!/^[^/\s]+:\d+$/.test(t) && !/^[^/\s:]+$/.test(t)) throw new InvalidArgumentError(`${w}: target '${t}' is not host:port`);
        out.push({ job, url: `${scheme}://${t}${path}`, instance: t, intervalMs, timeoutMs, honorLabels: o.honor_labels === true, labels });
      }
    });
  });
  return out;
}

interface TargetState {
  target: ScrapeTarget;
  /** Series of the last successful scrape, for stale markers. */
  last: Map<string, Label[]>;
  timer?: NodeJS.Timeout;
  running: boolean;
  /** Last result, for tests and status. */
  lastError?: string;
  lastScrapeAt?: number;
}

/** Runs scrape loops into an {@link Ingester}. */
export class Scraper {
  private readonly states: TargetState[];
  private stopped = false;

  constructor(
    private readonly ingester: Ingester,
    targets: ScrapeTarget[],
    private readonly logger?: Logger,
    private readonly now: () => number = Date.now,
  ) {
    this.states = targets.map((target) => ({ target, last: new Map(), running: false }));
  }

  /** Starts every loop; the first scrape of each target is spread over its interval (Prometheus's offset). */
  start(): void {
    this.states.forEach((s, i) => {
      const offset = Math.floor(((i + 1) / (this.states.length + 1)) * Math.min(s.target.intervalMs, 5000));
      const tick = (): void => {
        if (this.stopped) return;
        void this.scrapeOnce(s).finally(() => {
          if (!this.stopped) {
            s.timer = setTimeout(tick, s.target.intervalMs);
            s.timer.unref();
          }
        });
      };
      s.timer = setTimeout(tick, offset);
      s.timer.unref();
    });
  }

  /** Scrapes every target once now (tests, and `start`'s loops). */
  async scrapeAll(): Promise<void> {
    await Promise.all(this.states.map((s) => this.scrapeOnce(s)));
  }

  /** The targets and their last outcome. */
  status(): { job: string; instance: string; url: string; lastError: string | null; lastScrapeAt: number | null }[] {
    return this.states.map((s) => ({
      job: s.target.job,
      instance: s.target.instance,
      url: s.target.collect !== undefined ? 'internal' : s.target.url,
      lastError: s.lastError ?? null,
      lastScrapeAt: s.lastScrapeAt ?? null,
    }));
  }

  private async scrapeOnce(s: TargetState): Promise<void> {
    if (s.running) return;
    s.running = true;
    const t = s.target;
    const ts = this.now();
    const started = performance.now();
    const target: Label[] = [{ name: 'job', value: t.job }, { name: 'instance', value: t.instance }, ...t.labels];
    let batch: SeriesBatch | undefined;
    let error: string | undefined;
    try {
      const text = t.collect !== undefined ? await t.collect() : await fetchText(t.url, t.timeoutMs);
      batch = parseTextPush(text, ts, this.ingester.labelLimits, target, t.honorLabels);
    } catch (err) {
      error = (err as Error).message;
    }
    const seconds = (performance.now() - started) / 1000;
    const out = batch ?? new SeriesBatch(this.ingester.labelLimits);
    const seen = batch?.labelSets() ?? new Map<string, Label[]>();
    const scraped = batch?.samples ?? 0;
    // A series of the previous scrape that is gone now gets a stale marker, so queries stop seeing it at once.
    const stale = new Float64Array(1);
    stale[0] = STALE_MARKER;
    for (const [key, labels] of s.last) if (!seen.has(key)) out.addFrom(labels, ts, stale, 0);
    out.add([{ name: '__name__', value: 'up' }, ...target], ts, error === undefined ? 1 : 0);
    out.add([{ name: '__name__', value: 'scrape_duration_seconds' }, ...target], ts, seconds);
    out.add([{ name: '__name__', value: 'scrape_samples_scraped' }, ...target], ts, scraped);
    try {
      this.ingester.push(null, out, 'scrape');
      s.last = seen;
    } catch (err) {
      error ??= (err as Error).message;
      // The scraped samples were refused (out of order, limits): record the failure all the same.
      try {
        const down = new SeriesBatch(this.ingester.labelLimits);
        down.add([{ name: '__name__', value: 'up' }, ...target], ts, 0);
        this.ingester.push(null, down, 'scrape');
      } catch {
        // Nothing more to record.
      }
    }
    if (error !== undefined && s.lastError === undefined) this.logger?.warn({ job: t.job, instance: t.instance, err: error }, 'scrape failed');
    s.lastError = error;
    s.lastScrapeAt = ts;
    s.running = false;
  }

  /** Stops every loop (a scrape in flight finishes). */
  stop(): void {
    this.stopped = true;
    for (const s of this.states) if (s.timer !== undefined) clearTimeout(s.timer);
  }
}

async function fetchText(url: string, timeoutMs: number): Promise<string> {
  const res = await fetch(url, {
    signal: AbortSignal.timeout(timeoutMs),
    headers: { accept: 'text/plain;version=0.0.4;q=1,*/*;q=0.1', 'x-prometheus-scrape-timeout-seconds': String(timeoutMs / 1000) },
  });
  if (res.status !== 200) throw new Error(`server returned HTTP status ${res.status}`);
  const len = Number(res.headers.get('content-length') ?? 0);
  if (len > MAX_SCRAPE_BYTES) throw new Error(`body of ${len} bytes exceeds the ${MAX_SCRAPE_BYTES}-byte limit`);
  const text = await res.text();
  if (text.length > MAX_SCRAPE_BYTES) throw new Error(`body exceeds the ${MAX_SCRAPE_BYTES}-byte limit`);
  return text;
}
