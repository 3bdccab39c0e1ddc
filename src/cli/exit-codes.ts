/**
 * The CLI's one mapping from errors to process exit codes (DESIGN.md §9), documented in
 * docs/cli.md. Scripts switch on these numbers, so they never change meaning.
 */
import { BeaconError, ErrorCode } from '../errors.js';

/** Exit codes of the `beacon` client commands. */
export const ExitCode = {
  /** Success (also a txn whose compares failed: it prints FAILURE, like etcdctl). */
  Ok: 0,
  /** An internal or unexpected error. */
  Internal: 1,
  /** Bad usage or arguments (`invalid_argument`, `future_revision`). */
  Usage: 2,
  /** The node cannot be reached, timed out, or is unavailable. */
  Unavailable: 3,
  /** The key, lease, version or file does not exist. */
  NotFound: 4,
  /** A compare-and-set or expected version did not hold, or a restore target is not empty. */
  Conflict: 5,
  /** The revision asked for has been compacted. */
  Compacted: 6,
  /** Not authenticated, or not allowed. */
  Denied: 7,
  /** A key, value or request is too large. */
  TooLarge: 8,
  /** Rate limited; retry later. */
  RateLimited: 9,
  /** Interrupted (Ctrl-C) during work that did not finish, such as a snapshot download. */
  Interrupted: 130,
} as const;

const BY_CODE: Record<string, number> = {
  [ErrorCode.Internal]: ExitCode.Internal,
  [ErrorCode.InvalidArgument]: ExitCode.Usage,
  [ErrorCode.FutureRevision]: ExitCode.Usage,
  [ErrorCode.Unavailable]: ExitCode.Unavailable,
  [ErrorCode.NotFound]: ExitCode.NotFound,
  [ErrorCode.Conflict]: ExitCode.Conflict,
  [ErrorCode.Compacted]: ExitCode.Compacted,
  [ErrorCode.Unauthenticated]: ExitCode.Denied,
  [ErrorCode.PermissionDenied]: ExitCode.Denied,
  [ErrorCode.TooLarge]: ExitCode.TooLarge,
  [ErrorCode.RateLimited]: ExitCode.RateLimited,
  [ErrorCode.TooManyRequests]: ExitCode.RateLimited,
};

/** The exit code for an error: by its Beacon `code`, else 1. */
export function exitCodeFor(err: unknown): number {
  if (err instanceof CliExit) return err.exitCode;
  if (err instanceof BeaconError) return BY_CODE[err.code] ?? ExitCode.Internal;
  return ExitCode.Internal;
}

/**
 * Ends the CLI with a message and a specific exit code, for outcomes that are not Beacon errors
 * (an interrupted download). Other failures are thrown as {@link BeaconError}s.
 */
export class CliExit extends Error {
  override readonly name = 'CliExit';
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
  }
}
