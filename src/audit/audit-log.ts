/**
 * The audit log service over the backend's audit table: records that are not part of a kv
 * write (logins, identity and policy changes, denied requests), queries with filters and
 * pagination, export as JSON lines, and retention (seed 000: one year).
 */
import type { Backend } from '../backend/index.js';
import type { AuditQuery, AuditRecord } from '../kv/index.js';
import type { Logger } from '../obs/index.js';

/** Audit records are kept this many days unless configured otherwise (seed 000: 1-year retention). */
export const DEFAULT_AUDIT_RETENTION_DAYS = 365;
/** How often old records are pruned, in ms. */
const PRUNE_INTERVAL_MS = 6 * 60 * 60 * 1000;
/** The largest page one query returns. */
export const MAX_AUDIT_PAGE = 1000;

/** A record to append: everything but the id, with `ts` defaulting to now and nullable fields to null. */
export type AuditEntry = Pick<AuditRecord, 'principal' | 'action' | 'outcome'> & Partial<Omit<AuditRecord, 'id' | 'principal' | 'action' | 'outcome'>>;

/** An audit record as the HTTP API and the JSON-lines export show it: `time` in ISO 8601 instead of `ts`, `details` parsed. */
export type AuditRecordJson = Omit<AuditRecord, 'id' | 'ts' | 'details'> & { id: number; time: string; details: unknown };

/** The JSON form of a record; `details` is parsed when it is JSON. */
export function auditToJson(r: AuditRecord): AuditRecordJson {
  let details: unknown = r.details;
  if (r.details !== null) {
    try {
      details = JSON.parse(r.details);
    } catch {
      // left as the stored text
    }
  }
  return {
    id: r.id ?? 0,
    time: new Date(r.ts).toISOString(),
    principal: r.principal,
    action: r.action,
    key: r.key,
    oldVersion: r.oldVersion,
    newVersion: r.newVersion,
    revision: r.revision,
    requestId: r.requestId,
    source: r.source,
    outcome: r.outcome,
    details,
  };
}

/**
 * Appends, reads and prunes audit records. Writes made through the kv core are audited by the
 * store in the same transaction; this service records everything else. Callers must never put
 * secret values (passwords, tokens, API keys, secret config values) in `details`.
 */
export class AuditLog {
  private timer: NodeJS.Timeout | undefined;

  /**
   * @param retentionDays records older than this many days are deleted (0 keeps them forever).
   */
  constructor(
    private readonly backend: Backend,
    private readonly logger: Logger,
    readonly retentionDays: number = DEFAULT_AUDIT_RETENTION_DAYS,
  ) {}

  /** Appends one record durably. @throws UnavailableError when the backend cannot write it. */
  async append(e: AuditEntry): Promise<void> {
    await this.backend.appendAudit([
      {
        ts: e.ts ?? Date.now(),
        principal: e.principal,
        action: e.action,
        key: e.key ?? null,
        oldVersion: e.oldVersion ?? null,
        newVersion: e.newVersion ?? null,
        revision: e.revision ?? null,
        requestId: e.requestId ?? null,
        source: e.source ?? null,
        outcome: e.outcome,
        details: e.details ?? null,
      },
    ]);
  }

  /** Appends without waiting (denied requests, failed logins); a failure is logged, never thrown. */
  note(e: AuditEntry): void {
    this.append(e).catch((err: unknown) => this.logger.error({ err, action: e.action }, 'could not write an audit record'));
  }

  /** Records matching `q`, oldest first (page with `afterId`), or newest first with `order: 'desc'` (page with `beforeId`). */
  query(q: AuditQuery): Promise<AuditRecord[]> {
    return this.backend.queryAudit({ ...q, limit: Math.min(Math.max(1, q.limit), MAX_AUDIT_PAGE) });
  }

  /** Every record matching `q` (ignoring its limit), page by page, for export. */
  async *export(q: Omit<AuditQuery, 'limit'>): AsyncGenerator<AuditRecord> {
    let afterId = q.afterId;
    while (true) {
      const page = await this.backend.queryAudit({ ...q, ...(afterId !== undefined ? { afterId } : {}), limit: MAX_AUDIT_PAGE });
      for (const r of page) yield r;
      if (page.length < MAX_AUDIT_PAGE) return;
      afterId = page[page.length - 1]?.id;
    }
  }

  /** Deletes records older than the retention; resolves with how many. */
  async prune(now = Date.now()): Promise<number> {
    if (this.retentionDays <= 0) return 0;
    return this.backend.pruneAudit(now - this.retentionDays * 86_400_000);
  }

  /** Prunes now and then every few hours until {@link stop}. */
  startRetention(): void {
    const run = (): void => {
      this.prune().then(
        (n) => {
          if (n > 0) this.logger.info({ deleted: n, retentionDays: this.retentionDays }, 'pruned old audit records');
        },
        (err: unknown) => this.logger.warn({ err }, 'audit retention pruning failed'),
      );
    };
    run();
    this.timer = setInterval(run, PRUNE_INTERVAL_MS);
    this.timer.unref();
  }

  /** Stops the retention timer. */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}
