/** Errors of rule files and templates, in the Beacon error family (`invalid_argument`). */
import { BeaconError, ErrorCode } from '../../errors.js';

/** A template that does not parse or fails to render; `message` reads as Go's (`template: NAME:LINE: reason`). */
export class TemplateError extends BeaconError {
  override readonly name = 'TemplateError';
  constructor(message: string) {
    super(ErrorCode.InvalidArgument, message);
  }
}

/**
 * A rule file that cannot be loaded: `errors` holds every reason, each worded as
 * `promtool check rules` words it (YAML syntax with line, unknown fields, bad expressions…).
 */
export class RuleFileError extends BeaconError {
  override readonly name = 'RuleFileError';
  constructor(readonly errors: string[]) {
    super(ErrorCode.InvalidArgument, errors.join('\n'), { errors });
  }
}
