// Installs npm dependencies when node_modules is missing or older than package.json,
// so that `npm start` and `npm test` work from a fresh clone. better-sqlite3 builds from source.
import { execSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';

const stamp = 'node_modules/.package-lock.json';
const stale = !existsSync(stamp) || statSync(stamp).mtimeMs < statSync('package.json').mtimeMs;
let nativeOk = true;
try {
  const require = (await import('node:module')).createRequire(import.meta.url);
  const Database = require('better-sqlite3');
  new Database(':memory:').close();
} catch {
  nativeOk = false;
}
if (stale || !nativeOk) {
  process.stderr.write('beacon: installing npm dependencies (better-sqlite3 builds from source, about a minute)…\n');
  execSync('npm install --no-audit --no-fund', { stdio: 'inherit' });
}
