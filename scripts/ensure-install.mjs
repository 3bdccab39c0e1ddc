// Installs npm dependencies when node_modules is missing or does not match package.json and its lock,
// so that `npm start` and `npm test` work from a fresh clone. better-sqlite3 builds from source.
import { execSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

/**
 * Whether node_modules lacks what package.json and package-lock.json ask for. By content, not by
 * modification time: editing package.json's scripts (or a git checkout touching its mtime) must
 * not set off a reinstall, while a changed dependency or lock entry must.
 */
function stale() {
  try {
    const pkg = JSON.parse(readFileSync('package.json', 'utf8'));
    const want = JSON.parse(readFileSync('package-lock.json', 'utf8')).packages ?? {};
    const have = JSON.parse(readFileSync('node_modules/.package-lock.json', 'utf8')).packages ?? {};
    const same = (a = {}, b = {}) => JSON.stringify(Object.entries(a).sort()) === JSON.stringify(Object.entries(b).sort());
    const root = want[''] ?? {};
    if (!same(pkg.dependencies, root.dependencies) || !same(pkg.devDependencies, root.devDependencies)) return true;
    // Optional entries (platform-specific binaries) are legitimately absent.
    return Object.entries(want).some(([path, e]) => path !== '' && e.optional !== true && have[path]?.version !== e.version);
  } catch {
    return true; // no lock, no node_modules, or unreadable: install
  }
}

let nativeOk = true;
try {
  const require = (await import('node:module')).createRequire(import.meta.url);
  const Database = require('better-sqlite3');
  new Database(':memory:').close();
} catch {
  nativeOk = false;
}
if (stale() || !nativeOk) {
  process.stderr.write('beacon: installing npm dependencies (better-sqlite3 builds from source, about a minute)…\n');
  execSync('npm install --no-audit --no-fund', { stdio: 'inherit' });
}
