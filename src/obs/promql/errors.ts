/** The one error the PromQL engine raises, carrying Prometheus's API `errorType`. */
import { BeaconError, ErrorCode } from '../../errors.js';

/** Prometheus HTTP API error types an evaluation can end with. */
export type PromQLErrorType = 'bad_data' | 'execution' | 'timeout' | 'canceled';

const CODE: Record<PromQLErrorType, (typeof ErrorCode)[keyof typeof ErrorCode]> = {
  bad_data: ErrorCode.InvalidArgument,
  execution: ErrorCode.InvalidArgument,
  timeout: ErrorCode.Unavailable,
  canceled: ErrorCode.Unavailable,
};

/**
 * A query that cannot be parsed (`bad_data`, message `line:col: parse error: …` as Prometheus
 * words it), that fails while evaluating (`execution`, e.g. many-to-many matching or too many
 * samples), that ran past its timeout (`timeout`) or whose signal aborted (`canceled`). The HTTP
 * adapter answers `{"status":"error","errorType":…,"error":message}` from it; `code` is the
 * Beacon error code of the same condition (bad input → `invalid_argument`, too many samples →
 * `too_large`, timeout and cancel → `unavailable`).
 */
export class PromQLError extends BeaconError {
  override readonly name = 'PromQLError';
  readonly errorType: PromQLErrorType;
  /** 0-based character offset of a parse error in the query, when there is one. */
  readonly position: number | undefined;

  constructor(errorType: PromQLErrorType, message: string, options?: { position?: number; tooLarge?: boolean; cause?: unknown }) {
    super(options?.tooLarge ? ErrorCode.TooLarge : CODE[errorType], message, options?.position === undefined ? undefined : { position: options.position }, { cause: options?.cause });
    this.errorType = errorType;
    this.position = options?.position;
  }
}
