/** `beacon serve`: runs one node in the foreground until SIGINT/SIGTERM. */
import { join } from 'node:path';
import { Option, type Command } from 'commander';
import { ADMIN_PASSWORD_FILE, parseRate, parseRoleMap, type RateSpec, type SecurityOptions } from '../auth/index.js';
import { checkCorsOrigins } from '../api/http/server.js';
import { DEFAULT_MAX_JSON_DEPTH, DEFAULT_MAX_SCHEMA_BYTES, DEFAULT_MAX_SCHEMA_DEPTH, MAX_JSON_DEPTH_CEILING, MAX_SCHEMA_DEPTH_CEILING } from '../config/index.js';
import { DEFAULT_LOCK_LEASE_FLOOR_MS } from '../coord/index.js';
import { parseCacheSettings } from '../cache/index.js';
import { parseDuration } from '../obs/ingest/index.js';

/** A Prometheus duration option (`15d`, `10m`), in ms. */
function durationOpt(what: string) {
  return (v: string): number => {
    try {
      return parseDuration(v, what);
    } catch (err) {
      throw new Error((err as Error).message);
    }
  };
}
import { logFormat } from '../obs/index.js';
import { SERVE_DESCRIPTION } from './context.js';
import { startNode, type BeaconNode } from '../node/index.js';

function port(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new Error(`invalid port '${v}'`);
  return n;
}

function positiveInt(what: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isSafeInteger(n) || n < 0) throw new Error(`invalid ${what} '${v}': expected a non-negative integer`);
    return n;
  };
}

function boundedInt(flag: string, max: number) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isSafeInteger(n) || n < 1 || n > max) throw new Error(`invalid ${flag} '${v}': expected a whole number from 1 to ${max}`);
    return n;
  };
}

function rate(v: string): RateSpec | null {
  try {
    return parseRate(v);
  } catch (err) {
    throw new Error((err as Error).message);
  }
}

/** A number for people: at most 3 significant digits, no trailing zeros (`3`, `0.333`). */
function num(n: number): string {
  return String(Number(n.toPrecision(3)));
}

/**
 * A rate limit for people, e.g. `20 attempts at once, then 1 every 3 s` for `20/m`, or `off`
 * for `null` (shown as the default in `serve --help`). `what` names what is counted.
 */
export function describeRate(spec: RateSpec | null, what = 'requests'): string {
  if (spec === null) return 'off';
  const refill = spec.rate >= 1 ? `${num(spec.rate)} per second` : `1 every ${num(1 / spec.rate)} s`;
  return `${spec.burst} ${what} at once, then ${refill}`;
}

/** `--rate-limit`-style option whose default shows readably in --help. */
function rateOption(flags: string, description: string, spec: RateSpec | null, what: string): Option {
  return new Option(flags, description).argParser(rate).default(spec, describeRate(spec, what));
}

/**
 * The `--dev` warning as a box whose right border lines up, whatever the lines' lengths.
 * @returns the text to write to stderr, with a blank line before and after.
 */
export function devWarningBox(lines: string[]): string {
  const width = Math.max(...lines.map((l) => l.length));
  const edge = `  ${'*'.repeat(width + 6)}`;
  return `\n${edge}\n${lines.map((l) => `  *  ${l.padEnd(width)}  *`).join('\n')}\n${edge}\n\n`;
}

/** A size in bytes, plain or with a KiB/MiB/GiB suffix (`256MiB`); at least 1. */
function byteSize(what: string) {
  return (v: string): number => {
    const m = /^(\d+)\s*(KiB|MiB|GiB)?$/i.exec(v.trim());
    const unit = { kib: 1024, mib: 1024 ** 2, gib: 1024 ** 3 }[(m?.[2] ?? '').toLowerCase() as 'kib'] ?? 1;
    const n = m === null ? NaN : Number(m[1]) * unit;
    if (!Number.isSafeInteger(n) || n < 1) throw new Error(`invalid ${what} '${v}': expected bytes, e.g. 268435456 or 256MiB`);
    return n;
  };
}

/** A count of at least 1. */
function countOf(what: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isSafeInteger(n) || n < 1) throw new Error(`invalid ${what} '${v}': expected a positive integer`);
    return n;
  };
}

function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

/**
 * What `beacon serve` tells the person who started it, on stderr, once the node serves (the logs
 * go to stdout, see src/obs/logger.ts): the first administrator's password when it was generated,
 * a `BEACON_ADMIN_PASSWORD` that was ignored and why, where it listens, its data, authentication
 * and KEK, CORS, and where the logs go. Shown in the README's tour; keep the two in step.
 */
export function startupLines(node: BeaconNode, o: { dev: boolean; corsOrigins: string[]; dataDir: string }): string {
  const lines: string[] = [];
  const boot = node.security.bootstrap;
  const envPassword = process.env.BEACON_ADMIN_PASSWORD;
  if (boot?.generatedPassword !== undefined) {
    // Printed once, on the start that created it; it is also in the file (mode 0600) until the operator deletes it.
    lines.push(
      `\nbeacon: first start — created user 'admin' with password:\n\n    ${boot.generatedPassword}\n\n` +
        `  It is also in ${boot.file} (mode 0600). Log in with \`beacon login --user admin\`,\n` +
        `  change it (\`beacon user passwd admin\`) and delete that file.\n`,
    );
  } else if (boot !== undefined) {
    lines.push(`beacon: first start — created user 'admin' with the password from BEACON_ADMIN_PASSWORD`);
  } else if (!o.dev && envPassword !== undefined && envPassword !== '') {
    // The variable is read on the first start only; saying nothing here let people believe it set the password.
    lines.push(
      `beacon: BEACON_ADMIN_PASSWORD ignored: this node's users were created on an earlier start (the variable is read only then).\n` +
        `  Log in with the password chosen then (a generated one is in ${join(o.dataDir, ADMIN_PASSWORD_FILE)}), change it with\n` +
        `  \`beacon user passwd admin\`, or start afresh with an empty --data-dir.`,
    );
  }
  const store = node.store;
  lines.push(
    `beacon listening on ${node.url} (HTTP API, watch at ${node.url.replace('http', 'ws')}/v1/watch)`,
    `beacon data: ${store.backend.description} (revision ${store.revision}; ${plural(store.keyCount, 'key')}, system keys included)`,
  );
  if (node.resp !== undefined) {
    lines.push(`beacon RESP listening on ${node.resp.url} (redis-cli -p ${node.resp.port}${node.resp.url.startsWith('rediss') ? ' --tls' : ''})`);
  }
  if (!o.dev) {
    const kek = node.policies.keyring;
    lines.push(
      `beacon auth: on (tokens from \`beacon login\` or POST ${node.url}/v1/auth/token); ` +
        (kek ? `secrets: KEK ${kek.primary.id}` : 'secrets: off, no KEK (--kek-file, see docs/security.md)'),
    );
  }
  if (o.corsOrigins.length > 0) lines.push(`beacon CORS: browser apps from ${o.corsOrigins.join(', ')}`);
  const pretty = logFormat() === 'pretty';
  lines.push(
    pretty
      ? `beacon logs: on stdout, ${process.env.BEACON_LOG_LEVEL ?? 'warn'} and above (BEACON_LOG_LEVEL=info for more, BEACON_LOG_FORMAT=json for JSON)`
      : `beacon logs: JSON lines on stdout at level ${process.env.BEACON_LOG_LEVEL ?? 'info'}`,
  );
  return `${lines.join('\n')}\n`;
}

/** `--tls-client-role CN=role[+role]`, repeatable. */
function collectRoles(v: string, prev: Record<string, string[]>): Record<string, string[]> {
  return { ...prev, ...parseRoleMap(v) };
}

interface ServeOptions {
  dataDir: string;
  backend?: string;
  host: string;
  advertiseUrl?: string;
  httpPort: number;
  maxValueBytes: number;
  dev: boolean;
  tlsCert?: string;
  tlsKey?: string;
  tlsClientCa?: string;
  tlsClientRole: Record<string, string[]>;
  metricsPublic: boolean;
  rateLimit: RateSpec | null;
  authRateLimit: RateSpec | null;
  tokenTtl: number;
  kekFile?: string;
  oidcJwksUrl?: string;
  oidcIssuer?: string;
  oidcAudience?: string;
  oidcRoleClaim?: string;
  oidcRoleMap?: string;
  oidcUsernameClaim?: string;
  auditRetentionDays: number;
  retentionInterval: number;
  corsOrigin?: string;
  maxWatchesPerConnection: number;
  maxWatchesPerPrincipal: number;
  watchCatchupBytes: number;
  maxSchemaBytes: number;
  maxSchemaDepth: number;
  maxJsonDepth: number;
  lockLeaseFloor: number;
  // issue 12: the metrics store (docs/metrics.md)
  metricsRetention: number;
  oooWindow: number;
  maxSeries: number;
  maxSeriesPerPush: number;
  ingestRateLimit: string;
  scrapeConfig?: string;
  queryTimeout: number;
  queryMaxSamples: number;
  // cache tier (issue 11)
  maxmemory?: string;
  maxmemoryPolicy?: string;
  appendonly?: string;
  appendfsync?: string;
  respPort?: string;
  // alerting (issue 13)
  rules?: string[];
  defaultRules: boolean;
  evaluationInterval: number;
  externalUrl?: string;
}

/** `--resp-port`: a port number or `off`. @throws Error for anything else. */
function respPortOption(v: string): number | 'off' {
  if (v === 'off') return 'off';
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new Error(`--resp-port must be a port number (0 picks a free one) or off, not '${v}'`);
  return n;
}

/** Adds the `serve` command. */
export function registerServeCommand(program: Command): void {
  program
    .command('serve')
    .description(SERVE_DESCRIPTION)
    .option('--data-dir <dir>', 'directory for the embedded store', process.env.BEACON_DATA_DIR ?? './data')
    .option('--backend <spec>', 'sqlite:PATH or postgres://… (default: SQLite in --data-dir)', process.env.BEACON_BACKEND)
    .option('--host <host>', 'address to bind', process.env.BEACON_HOST ?? '127.0.0.1')
    .option('--advertise-url <url>', 'URL other nodes and clients reach this node at (shown in /v1/cluster)', process.env.BEACON_ADVERTISE_URL)
    .option('--http-port <port>', 'HTTP port (0 picks a free one)', port, Number(process.env.BEACON_HTTP_PORT ?? 7379))
    .option('--max-value-bytes <bytes>', 'largest value in bytes', (v) => Number(v), 1024 * 1024)
    .option('--dev', 'development mode: no authentication (insecure)', false)
    .option('--tls-cert <file>', 'serve HTTPS with this PEM certificate (chain)', process.env.BEACON_TLS_CERT)
    .option('--tls-key <file>', 'the PEM private key of --tls-cert', process.env.BEACON_TLS_KEY)
    .option('--tls-client-ca <file>', 'verify client certificates against this PEM CA (mTLS); the subject CN is the principal', process.env.BEACON_TLS_CLIENT_CA)
    .option('--tls-client-role <cn=role>', 'roles for a client-certificate CN, e.g. billing=developer+viewer (repeatable)', collectRoles, {})
    .option('--metrics-public', 'serve /metrics without authentication', process.env.BEACON_METRICS_PUBLIC === 'true')
    .addOption(rateOption('--rate-limit <rate>', 'per-principal request limit, e.g. 100/s or 10000/h', rate(process.env.BEACON_RATE_LIMIT ?? 'off'), 'requests'))
    .addOption(
      rateOption('--auth-rate-limit <rate>', 'per-address limit of POST /v1/auth/token (password guessing), e.g. 20/m', rate(process.env.BEACON_AUTH_RATE_LIMIT ?? '20/m'), 'attempts'),
    )
    .option('--token-ttl <seconds>', 'lifetime of issued tokens', positiveInt('token TTL'), 900)
    .option('--kek-file <file>', 'key-encryption key(s) for secret namespaces (default: BEACON_KEK)', process.env.BEACON_KEK_FILE)
    .option('--oidc-jwks-url <url>', 'verify external JWTs against this JWKS (OIDC)')
    .option('--oidc-issuer <iss>', 'the issuer (iss) of external JWTs')
    .option('--oidc-audience <aud>', 'the audience (aud) external JWTs must carry')
    .option('--oidc-role-claim <claim>', 'the claim with roles or groups (dotted path)', 'roles')
    .option('--oidc-role-map <map>', 'claim value to Beacon roles, e.g. beacon-admins=admin,devs=developer')
    .option('--oidc-username-claim <claim>', 'the claim naming the user', 'sub')
    .option('--audit-retention-days <days>', 'days audit records are kept (0: forever)', positiveInt('retention'), 365)
    .option(
      '--retention-interval <seconds>',
      "seconds between passes that enforce namespaces' historyRetention (0: off)",
      positiveInt('retention interval'),
      positiveInt('retention interval')(process.env.BEACON_RETENTION_INTERVAL ?? '60'),
    )
    .option(
      '--cors-origin <origins>',
      'comma-separated origins of browser apps allowed to call the API (CORS), e.g. https://console.example.com,http://127.0.0.1:5173; * only with --dev (default: none, or BEACON_CORS_ORIGINS)',
      process.env.BEACON_CORS_ORIGINS,
    )
    // --- watch limits (issue 9): docs/security.md "Limits" ---
    .option('--max-watches-per-connection <n>', 'watches one WebSocket may hold (more: too_many_requests)', countOf('watch limit'), 1000)
    .option('--max-watches-per-principal <n>', 'watches one user or API key may hold on this node (more: 429 too_many_requests)', countOf('watch limit'), 10_000)
    .addOption(
      new Option('--watch-catchup-bytes <bytes>', 'node-wide memory for watch catch-up from the log; watches beyond it wait their turn (e.g. 256MiB)')
        .argParser(byteSize('catch-up budget'))
        .default(256 * 1024 * 1024, '256MiB'),
    )
    // JSON limits (issue 9 findings 6, 7)
    .option('--max-schema-bytes <bytes>', 'largest namespace JSON Schema, in bytes', boundedInt('--max-schema-bytes', 64 * 1024 * 1024), DEFAULT_MAX_SCHEMA_BYTES)
    .option('--max-schema-depth <levels>', `deepest nesting of a namespace JSON Schema (at most ${MAX_SCHEMA_DEPTH_CEILING})`, boundedInt('--max-schema-depth', MAX_SCHEMA_DEPTH_CEILING), DEFAULT_MAX_SCHEMA_DEPTH)
    .option('--max-json-depth <levels>', `deepest nesting of a JSON value the node parses (at most ${MAX_JSON_DEPTH_CEILING})`, boundedInt('--max-json-depth', MAX_JSON_DEPTH_CEILING), DEFAULT_MAX_JSON_DEPTH)
    // --- lock lease floor (issue 9 finding 8) ---
    .option(
      '--lock-lease-floor <ms>',
      'least time a lease must have left for a lock or leadership to be granted on it (capped at half its TTL; 0: off)',
      positiveInt('lock lease floor'),
      DEFAULT_LOCK_LEASE_FLOOR_MS,
    )
    // --- metrics store (issue 12, docs/metrics.md) ---
    .addOption(
      new Option('--metrics-retention <duration>', 'how long raw metric samples are kept (rollups: 5m for 90d, 1h for 400d)')
        .argParser(durationOpt('--metrics-retention'))
        .default(15 * 86_400_000, '15d'),
    )
    .addOption(
      new Option('--ooo-window <duration>', "accept samples this much older than their series' newest (0s: refuse out-of-order samples)")
        .argParser(durationOpt('--ooo-window'))
        .default(600_000, '10m'),
    )
    .option('--max-series <n>', 'most series in the metrics store', positiveInt('series limit'), 1_000_000)
    .option('--max-series-per-push <n>', 'most new series one metrics push may create', positiveInt('series limit'), 10_000)
    .addOption(new Option('--ingest-rate-limit <samples>', 'samples per second per principal, or off').default('100000', '100000 samples/s'))
    .option('--scrape-config <file>', 'Prometheus-style scrape_configs (static targets) to scrape into the metrics store')
    .addOption(new Option('--query-timeout <duration>', 'PromQL query timeout').argParser(durationOpt('--query-timeout')).default(120_000, '2m'))
    .option('--query-max-samples <n>', 'most samples one PromQL query may load', positiveInt('sample limit'), 50_000_000)
    // cache tier (issue 11): docs/cache.md; Redis's names and value forms, as CONFIG SET takes them
    .option('--maxmemory <bytes>', 'cache tier memory limit per node, e.g. 1gb (0: none; default: as last CONFIG SET, else 0)', process.env.BEACON_MAXMEMORY)
    .option('--maxmemory-policy <policy>', 'cache eviction: noeviction, allkeys-lru, allkeys-lfu, volatile-lru, volatile-lfu, volatile-ttl, allkeys-random, volatile-random')
    .option('--appendonly <yes|no>', 'persist cache namespaces in <data-dir>/appendonly.aof')
    .option('--appendfsync <mode>', 'always (no acknowledged write lost), everysec (default) or no')
    // RESP listener (issue 11)
    .option('--resp-port <port>', 'Redis protocol port (0 picks a free one; off disables it); default 6380, or free with --http-port 0', process.env.BEACON_RESP_PORT)
    // alerting (issue 13): docs/alerting.md
    .option('--rules <files...>', 'Prometheus rule files to store and evaluate (checked first; a bad file stops the start)')
    .option('--no-default-rules', "turn off Beacon's default SLO alert rules")
    .addOption(new Option('--evaluation-interval <duration>', 'how often rule groups without an interval are evaluated').argParser(durationOpt('--evaluation-interval')).default(15_000, '15s'))
    .option('--external-url <url>', 'the URL alert notifications link to (default: the advertised URL)', process.env.BEACON_EXTERNAL_URL)
    .action(async (o: ServeOptions) => {
      if (o.dev) {
        process.stderr.write(
          devWarningBox([
            'WARNING: beacon is running in --dev mode.',
            'Authentication and authorisation are OFF. Never expose this',
            'node to a network you do not fully trust.',
          ]),
        );
      }
      if ((o.tlsCert === undefined) !== (o.tlsKey === undefined)) throw new Error('--tls-cert and --tls-key go together');
      if (o.tlsClientCa !== undefined && o.tlsCert === undefined) throw new Error('--tls-client-ca needs --tls-cert and --tls-key');
      if ((o.oidcJwksUrl === undefined) !== (o.oidcIssuer === undefined)) throw new Error('--oidc-jwks-url and --oidc-issuer go together');
      let corsOrigins: string[];
      try {
        corsOrigins = checkCorsOrigins((o.corsOrigin ?? '').split(','), o.dev);
      } catch (err) {
        throw new Error(`--cors-origin: ${(err as Error).message}`);
      }
      const security: SecurityOptions = {
        tokenTtlSeconds: o.tokenTtl,
        rateLimit: o.rateLimit,
        loginRateLimit: o.authRateLimit,
        metricsPublic: o.metricsPublic,
        clientCertRoles: o.tlsClientRole,
        auditRetentionDays: o.auditRetentionDays,
      };
      if (o.oidcJwksUrl !== undefined && o.oidcIssuer !== undefined) {
        security.oidc = {
          jwksUrl: o.oidcJwksUrl,
          issuer: o.oidcIssuer,
          ...(o.oidcAudience !== undefined ? { audience: o.oidcAudience } : {}),
          ...(o.oidcRoleClaim !== undefined ? { roleClaim: o.oidcRoleClaim } : {}),
          ...(o.oidcRoleMap !== undefined ? { roleMap: parseRoleMap(o.oidcRoleMap) } : {}),
          ...(o.oidcUsernameClaim !== undefined ? { usernameClaim: o.oidcUsernameClaim } : {}),
        };
      }
      let cache: Awaited<ReturnType<typeof parseCacheSettings>>;
      try {
        cache = await parseCacheSettings({
          maxmemory: o.maxmemory,
          'maxmemory-policy': o.maxmemoryPolicy,
          appendonly: o.appendonly,
          appendfsync: o.appendfsync,
        });
      } catch (err) {
        throw new Error((err as Error).message);
      }
      const ingestRate = o.ingestRateLimit === 'off' ? null : Number(o.ingestRateLimit);
      if (ingestRate !== null && !(Number.isFinite(ingestRate) && ingestRate > 0)) throw new Error(`invalid --ingest-rate-limit '${o.ingestRateLimit}': a number of samples per second, or off`);
      const node = await startNode({
        cache, // issue 11
        metricsStore: {
          retentionMs: o.metricsRetention,
          oooWindowMs: o.oooWindow,
          maxSeries: o.maxSeries,
          maxSeriesPerPush: o.maxSeriesPerPush,
          samplesPerSecond: ingestRate,
          queryTimeoutMs: o.queryTimeout,
          maxQuerySamples: o.queryMaxSamples,
          ...(o.scrapeConfig !== undefined ? { scrapeConfig: o.scrapeConfig } : {}),
        },
        dataDir: o.dataDir,
        backend: o.backend,
        host: o.host,
        ...(o.advertiseUrl !== undefined ? { advertiseUrl: o.advertiseUrl } : {}),
        httpPort: o.httpPort,
        dev: o.dev,
        maxValueBytes: o.maxValueBytes,
        retentionIntervalSeconds: o.retentionInterval,
        corsOrigins,
        watchLimits: { maxWatchesPerConnection: o.maxWatchesPerConnection, maxWatchesPerPrincipal: o.maxWatchesPerPrincipal, catchUpBudgetBytes: o.watchCatchupBytes },
        lockLeaseFloorMs: o.lockLeaseFloor,
        security,
        maxSchemaBytes: o.maxSchemaBytes,
        maxSchemaDepth: o.maxSchemaDepth,
        maxJsonDepth: o.maxJsonDepth,
        ...(o.respPort !== undefined ? { respPort: respPortOption(o.respPort) } : {}),
        alerting: {
          defaultRules: o.defaultRules,
          evaluationIntervalMs: o.evaluationInterval,
          ...(o.rules !== undefined ? { ruleFiles: o.rules } : {}),
          ...(o.externalUrl !== undefined ? { externalUrl: o.externalUrl } : {}),
        },
        ...(o.kekFile !== undefined ? { kekFile: o.kekFile } : {}),
        ...(o.tlsCert !== undefined && o.tlsKey !== undefined
          ? { tls: { cert: o.tlsCert, key: o.tlsKey, ...(o.tlsClientCa !== undefined ? { clientCa: o.tlsClientCa } : {}) } }
          : {}),
      });
      process.stderr.write(startupLines(node, { dev: o.dev, corsOrigins, dataDir: o.dataDir }));
      let stopping = false;
      const shutdown = (signal: string): void => {
        if (stopping) return;
        stopping = true;
        node.logger.info({ signal }, 'shutting down');
        node.stop().then(
          () => process.exit(0),
          (err: unknown) => {
            node.logger.error({ err }, 'shutdown failed');
            process.exit(1);
          },
        );
      };
      process.on('SIGINT', () => shutdown('SIGINT'));
      process.on('SIGTERM', () => shutdown('SIGTERM'));
    });
}
