/** The one mapping from errors to HTTP: status, `{"error":{"code","message","details"}}`, no internals in a 500. */
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { BeaconError, ErrorCode } from '../../errors.js';

/** HTTP status for each error code (DESIGN.md §9). */
export const STATUS_BY_CODE: Record<string, number> = {
  [ErrorCode.NotFound]: 404,
  [ErrorCode.Conflict]: 409,
  [ErrorCode.Compacted]: 410,
  [ErrorCode.FutureRevision]: 400,
  [ErrorCode.InvalidArgument]: 400,
  [ErrorCode.Unauthenticated]: 401,
  [ErrorCode.PermissionDenied]: 403,
  [ErrorCode.RateLimited]: 429,
  [ErrorCode.TooManyRequests]: 429,
  [ErrorCode.TooLarge]: 413,
  [ErrorCode.Unavailable]: 503,
  [ErrorCode.Internal]: 500,
};

/** The JSON body of an error response. */
export interface ErrorBody {
  error: { code: string; message: string; details?: Record<string, unknown> };
}

/** Turns any thrown value into a status and body. Unknown errors become an `internal` 500 with the request id only. */
export function toHttpError(err: unknown, requestId: string): { status: number; body: ErrorBody } {
  if (err instanceof BeaconError) {
    const body: ErrorBody = { error: { code: err.code, message: err.message } };
    if (err.details !== undefined) body.error.details = err.details;
    return { status: STATUS_BY_CODE[err.code] ?? 500, body };
  }
  const fe = err as Partial<FastifyError> & { status?: number };
  const status = fe.statusCode ?? fe.status;
  // fastify's own errors: bad JSON, body too large, unsupported media type, bad URL…
  if (typeof status === 'number' && status >= 400 && status < 500) {
    const code = status === 413 ? ErrorCode.TooLarge : status === 404 ? ErrorCode.NotFound : ErrorCode.InvalidArgument;
    const message = fe.code === 'FST_ERR_CTP_INVALID_JSON_BODY' || (fe.message ?? '').includes('JSON')
      ? `invalid JSON body: ${fe.message ?? ''}`
      : (fe.message ?? 'bad request');
    return { status, body: { error: { code, message } } };
  }
  return { status: 500, body: { error: { code: ErrorCode.Internal, message: `internal error (request id ${requestId})` } } };
}

/**
 * The error code a client is answered with for `err` (`too_large` for fastify's body-too-large,
 * `invalid_argument` for bad JSON…): the label of `beacon_errors_total`, so the metric counts
 * what clients saw and a client's mistake never shows as `internal`.
 */
export function errorCodeOf(err: unknown): string {
  return toHttpError(err, '').body.error.code;
}

/** Fastify error handler built on {@link toHttpError}; logs 5xx with the full error. */
export function errorHandler(err: unknown, request: FastifyRequest, reply: FastifyReply): void {
  const { status, body } = toHttpError(err, String(request.id));
  // 503 is an expected condition (backend unreachable, shutting down, a client that went away
  // mid-wait): a warning. Anything else at 500 or above is a bug and logged as an error.
  if (status === 503) request.log.warn({ err }, 'request answered unavailable');
  else if (status >= 500) request.log.error({ err }, 'request failed');
  if (status === 429 || status === 503) {
    const retry = (err as BeaconError).details?.retryAfterSeconds;
    if (typeof retry === 'number') void reply.header('retry-after', String(Math.ceil(retry)));
  }
  const raw = request.raw;
  const declared = Number(raw.headers['content-length']);
  if (status === 413 && !raw.readableEnded && !raw.destroyed && Number.isFinite(declared) && declared <= DRAIN_MAX_BYTES) {
    // The body was refused by its declared length before it was read. Clients that write the
    // whole body before reading the answer (fetch/undici, most SDKs) see a broken pipe instead of
    // the 413 when the server answers and closes first, so read and discard it (bounded in bytes
    // and time) and answer then.
    let sent = false;
    const send = (): void => {
      if (sent) return;
      sent = true;
      clearTimeout(timer);
      void reply.status(status).send(body);
    };
    const timer = setTimeout(send, DRAIN_TIMEOUT_MS);
    raw.once('end', send);
    raw.once('error', send);
    raw.resume();
    return;
  }
  void reply.status(status).send(body);
}

/** A body refused as too large is still read (and discarded) up to this size, so the client sees the 413. */
const DRAIN_MAX_BYTES = 64 * 1024 * 1024;
/** …and for at most this long, in ms. */
const DRAIN_TIMEOUT_MS = 10_000;
