/** The config layer (`/v1/configs`): versions `v<N>`, expected-version conflicts, history, diff, rollback. */
export { ConfigService } from './service.js';
