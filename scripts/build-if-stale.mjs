// `npm start`'s build step: runs `npm run build` only when a source file changed since the last
// successful build, so a second `npm start` serves in about a second instead of waiting ~20 s
// for tsc (issue 10 item 16). The stamp dist/.build-stamp is written after a build succeeds; a
// file newer than it (or a missing dist/) means build. `--force` always builds.
import { execSync } from 'node:child_process';
import { existsSync, readdirSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const STAMP = 'dist/.build-stamp';
/** What tsconfig.json compiles, copy-assets.mjs copies and Vite bundles (web/, the console), and the files that steer the build. */
const INPUTS = ['src', 'client', 'test', 'bench', 'examples', 'web', 'tsconfig.json', 'package.json', 'scripts/copy-assets.mjs'];

/** The newest modification time (ms) of a file or of any file under a directory. */
function newest(path) {
  let st;
  try {
    st = statSync(path);
  } catch {
    return 0;
  }
  if (!st.isDirectory()) return st.mtimeMs;
  let max = st.mtimeMs; // a deleted or renamed file shows as a change of its directory
  for (const e of readdirSync(path, { withFileTypes: true })) {
    if (e.name === 'node_modules' || e.name.startsWith('.')) continue;
    max = Math.max(max, newest(join(path, e.name)));
  }
  return max;
}

const force = process.argv.includes('--force');
const stamp = existsSync(STAMP) ? statSync(STAMP).mtimeMs : 0;
const changed = force || stamp === 0 || INPUTS.some((p) => newest(p) > stamp);
if (!changed) {
  process.stderr.write('beacon: build is up to date (nothing changed since the last one); starting\n');
} else {
  const started = Date.now();
  process.stderr.write(
    stamp === 0
      ? 'beacon: building (TypeScript → dist/, about 20 s the first time; later starts skip it when nothing changed)…\n'
      : 'beacon: sources changed since the last build; rebuilding (incremental)…\n',
  );
  execSync('npm run --silent build', { stdio: 'inherit' });
  // The stamp carries the time the build started: a file saved during the build is newer, and rebuilt next time.
  writeFileSync(STAMP, `${new Date(started).toISOString()}\n`);
  utimesSync(STAMP, started / 1000, started / 1000);
  process.stderr.write(`beacon: built in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
}
