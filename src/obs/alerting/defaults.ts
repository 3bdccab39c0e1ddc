/** The default rule file shipped with Beacon (assets/default-rules.yml, copied into dist/ by the build). */
import { readFileSync } from 'node:fs';

/** The name the default rules are shown under (`GET /v1/alerts/rules`, `/api/v1/rules`). */
export const DEFAULT_RULES_FILE = 'beacon-defaults';

/**
 * Reads the default rule file.
 * @throws an fs error when the build is missing it (a broken install).
 */
export function loadDefaultRules(): { name: string; text: string } {
  return { name: DEFAULT_RULES_FILE, text: readFileSync(new URL('./assets/default-rules.yml', import.meta.url), 'utf8') };
}
