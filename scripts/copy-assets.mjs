// Copies non-TypeScript assets (SQL migrations) next to the compiled code in dist/.
import { cpSync, existsSync } from 'node:fs';

for (const dir of ['src/backend/sqlite/migrations', 'src/backend/postgres/migrations', 'src/obs/alerting/assets']) {
  if (existsSync(dir)) cpSync(dir, `dist/${dir}`, { recursive: true });
}
