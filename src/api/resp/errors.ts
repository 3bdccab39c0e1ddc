/** The one mapping from errors to RESP error replies (DESIGN.md §9). */
import { BeaconError, ErrorCode, OutOfMemoryError } from '../../errors.js';
import type { Logger } from '../../obs/index.js';
import { RespError } from './keyspace.js';
import { R, type Reply } from './protocol.js';

let seq = 0;

/**
 * Turns anything a command threw into an error reply: a {@link RespError} as it is (Redis's
 * wording); a BeaconError by its code (`NOPERM`, `NOAUTH`, `ERR …`); anything else becomes
 * `ERR internal error (request id N)` with the detail in the log only.
 */
export function toRespError(err: unknown, logger?: Logger): Reply {
  if (err instanceof RespError) return R.error(err.message);
  if (err instanceof OutOfMemoryError) return R.error(`${err.redisPrefix} ${err.message}`);
  if (err instanceof BeaconError) {
    switch (err.code) {
      case ErrorCode.PermissionDenied:
        return R.error(`NOPERM ${err.message}`);
      case ErrorCode.Unauthenticated:
        return R.error('WRONGPASS invalid username-password pair or user is disabled.');
      case ErrorCode.RateLimited:
        return R.error(`ERR ${err.message}`);
      case ErrorCode.Unavailable:
        return R.error(`TRYAGAIN ${err.message}`);
      default:
        return R.error(`ERR ${err.message}`);
    }
  }
  const id = `resp-${++seq}`;
  logger?.error({ err, requestId: id }, 'RESP command failed');
  return R.error(`ERR internal error (request id ${id})`);
}
