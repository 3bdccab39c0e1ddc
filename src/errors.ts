/**
 * Beacon's error catalogue: one base class with a stable `code`, one subclass per condition.
 * Every adapter (HTTP, CLI, SDK) maps these codes in exactly one place; see DESIGN.md §9.
 */

/** The stable error codes that cross the wire. Clients switch on these, never on messages. */
export const ErrorCode = {
  NotFound: 'not_found',
  Conflict: 'conflict',
  Compacted: 'compacted',
  FutureRevision: 'future_revision',
  InvalidArgument: 'invalid_argument',
  Unauthenticated: 'unauthenticated',
  PermissionDenied: 'permission_denied',
  RateLimited: 'rate_limited',
  TooManyRequests: 'too_many_requests',
  TooLarge: 'too_large',
  Unavailable: 'unavailable',
  Internal: 'internal',
} as const;

/** One of the values of {@link ErrorCode}. */
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** Free-form, JSON-serialisable context attached to an error (never secrets). */
export type ErrorDetails = Record<string, unknown>;

/**
 * The base of every error Beacon raises on purpose. `code` is stable; `message` is for people;
 * `details` carries machine-readable context such as the compact revision.
 */
export class BeaconError extends Error {
  override readonly name: string = 'BeaconError';
  readonly code: ErrorCode;
  readonly details: ErrorDetails | undefined;

  constructor(code: ErrorCode, message: string, details?: ErrorDetails, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.details = details;
  }
}

/** The key, lease, version or resource does not exist. HTTP 404. */
export class NotFoundError extends BeaconError {
  override readonly name = 'NotFoundError';
  constructor(message: string, details?: ErrorDetails) {
    super(ErrorCode.NotFound, message, details);
  }
}

/** An expected version or compare did not hold. HTTP 409. */
export class ConflictError extends BeaconError {
  override readonly name = 'ConflictError';
  constructor(message: string, details?: ErrorDetails) {
    super(ErrorCode.Conflict, message, details);
  }
}

/**
 * The requested revision's history is gone: a read below the compact revision, or a watch or
 * history from at or below it. `details.compactRevision` says from where a client may resume
 * (watch from compactRevision + 1). HTTP 410.
 */
export class CompactedError extends BeaconError {
  override readonly name = 'CompactedError';
  readonly compactRevision: number;
  constructor(revision: number, compactRevision: number) {
    super(
      ErrorCode.Compacted,
      `revision ${revision} has been compacted (compact revision ${compactRevision}); watch from ${compactRevision + 1} or read at ${compactRevision} or later`,
      { revision, compactRevision },
    );
    this.compactRevision = compactRevision;
  }
}

/** The requested revision is newer than the store's current revision. HTTP 400. */
export class FutureRevisionError extends BeaconError {
  override readonly name = 'FutureRevisionError';
  constructor(revision: number, currentRevision: number) {
    super(
      ErrorCode.FutureRevision,
      `revision ${revision} is in the future; the current revision is ${currentRevision}`,
      { revision, currentRevision },
    );
  }
}

/** The request is malformed: wrong type, unknown field, bad key, out-of-range number. HTTP 400. */
export class InvalidArgumentError extends BeaconError {
  override readonly name = 'InvalidArgumentError';
  constructor(message: string, details?: ErrorDetails) {
    super(ErrorCode.InvalidArgument, message, details);
  }
}

/** No valid credentials were presented. HTTP 401. */
export class UnauthenticatedError extends BeaconError {
  override readonly name = 'UnauthenticatedError';
  constructor(message = 'authentication required', details?: ErrorDetails) {
    super(ErrorCode.Unauthenticated, message, details);
  }
}

/** The principal may not do this. HTTP 403. */
export class PermissionDeniedError extends BeaconError {
  override readonly name = 'PermissionDeniedError';
  constructor(message = 'permission denied', details?: ErrorDetails) {
    super(ErrorCode.PermissionDenied, message, details);
  }
}

/** Too many requests; `details.retryAfterSeconds` says when to retry. HTTP 429. */
export class RateLimitedError extends BeaconError {
  override readonly name = 'RateLimitedError';
  constructor(retryAfterSeconds: number) {
    super(ErrorCode.RateLimited, `rate limit exceeded; retry after ${retryAfterSeconds}s`, { retryAfterSeconds });
  }
}

/**
 * A count limit on concurrent things is reached, such as watches per connection or per principal
 * (`details.limit` names it, `details.max` its value); retry once some have ended. HTTP 429.
 */
export class TooManyRequestsError extends BeaconError {
  override readonly name = 'TooManyRequestsError';
  constructor(message: string, details?: ErrorDetails) {
    super(ErrorCode.TooManyRequests, message, details);
  }
}

/** A key, value, request or frame exceeds its limit. HTTP 413. */
export class TooLargeError extends BeaconError {
  override readonly name = 'TooLargeError';
  constructor(message: string, details?: ErrorDetails) {
    super(ErrorCode.TooLarge, message, details);
  }
}

/** The backend cannot be reached or the node is shutting down; safe to retry elsewhere. HTTP 503. */
export class UnavailableError extends BeaconError {
  override readonly name = 'UnavailableError';
  constructor(message: string, options?: { cause?: unknown; details?: ErrorDetails }) {
    super(ErrorCode.Unavailable, message, options?.details, { cause: options?.cause });
  }
}

/**
 * The cache tier is over `maxmemory` and its policy (`noeviction`, or a volatile policy with no
 * volatile keys) cannot free memory: Redis's OOM refusal. The RESP listener answers
 * `-OOM command not allowed when used memory > 'maxmemory'.` (prefix {@link OutOfMemoryError.redisPrefix}); HTTP 503.
 */
export class OutOfMemoryError extends BeaconError {
  override readonly name = 'OutOfMemoryError';
  /** The RESP error prefix (`-OOM …`). */
  readonly redisPrefix = 'OOM';
  constructor() {
    super(ErrorCode.Unavailable, "command not allowed when used memory > 'maxmemory'.");
  }
}

/** Rebuilds a typed error from its wire form `{code, message, details}` (used by the SDK). */
export function errorFromWire(code: string, message: string, details?: ErrorDetails): BeaconError {
  switch (code) {
    case ErrorCode.NotFound:
      return new NotFoundError(message, details);
    case ErrorCode.Conflict:
      return new ConflictError(message, details);
    case ErrorCode.Compacted: {
      const err = new CompactedError(Number(details?.revision ?? 0), Number(details?.compactRevision ?? 0));
      return err;
    }
    case ErrorCode.FutureRevision:
      return new FutureRevisionError(Number(details?.revision ?? 0), Number(details?.currentRevision ?? 0));
    case ErrorCode.InvalidArgument:
      return new InvalidArgumentError(message, details);
    case ErrorCode.Unauthenticated:
      return new UnauthenticatedError(message, details);
    case ErrorCode.PermissionDenied:
      return new PermissionDeniedError(message, details);
    case ErrorCode.RateLimited:
      return new RateLimitedError(Number(details?.retryAfterSeconds ?? 1));
    case ErrorCode.TooManyRequests:
      return new TooManyRequestsError(message, details);
    case ErrorCode.TooLarge:
      return new TooLargeError(message, details);
    case ErrorCode.Unavailable:
      return new UnavailableError(message, { details });
    default:
      return new BeaconError(ErrorCode.Internal, message, details);
  }
}

/** The message of a thrown value: an Error's `message`, anything else as a string (for logs and error replies). */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
