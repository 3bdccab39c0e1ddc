/** Metrics ingestion: the push formats (JSON, text exposition, remote write), limits, and scraping into the time-series store. */
export { SeriesBatch, promName, METRIC_NAME_RE, LABEL_NAME_RE, DEFAULT_LABEL_LIMITS } from './batch.js';
export type { LabelLimits } from './batch.js';
export { parseJsonPush, parseTextPush, parseRemoteWrite, encodeRemoteWrite, MAX_REMOTE_WRITE_BYTES } from './parsers.js';
export { Ingester, DEFAULT_SAMPLES_PER_SECOND } from './ingester.js';
export type { IngestOptions } from './ingester.js';
export { Scraper, loadScrapeConfig, scrapeTargetsFrom, DEFAULT_SCRAPE_INTERVAL_MS, DEFAULT_SCRAPE_TIMEOUT_MS } from './scrape.js';
export type { ScrapeTarget } from './scrape.js';
export { parseDuration, parseDurationOrSeconds, parseTime } from './duration.js';
export { startMetricsStore, DEFAULT_QUERY_TIMEOUT_MS, DEFAULT_QUERY_MAX_SAMPLES } from './service.js';
export type { MetricsStore, MetricsStoreOptions } from './service.js';
