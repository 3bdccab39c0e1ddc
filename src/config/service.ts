/** Placeholder: the config layer is being written (see the configs task). */
import type { Store } from '../kv/index.js';

/** Versioned application configs on top of the kv core. */
export class ConfigService {
  constructor(readonly store: Store) {}
}
