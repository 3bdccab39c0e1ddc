/** The backend conformance suite against SQLite in a file (the embedded default of `beacon serve`). */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createBackend } from '../../src/backend/index.js';
import { runConformance } from './suite.js';

// Not test/helpers/node.ts: this suite must not depend on the HTTP layer building.
function tempDir(prefix: string): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

runConformance('sqlite file', async () => {
  const tmp = tempDir('beacon-conf-sqlite-');
  const spec = `sqlite:${join(tmp.dir, 'data', 'beacon.db')}`;
  return {
    backend: await createBackend(spec, tmp.dir),
    reopen: () => createBackend(spec, tmp.dir),
    openSnapshot: (path: string) => createBackend(`sqlite:${path}`, tmp.dir),
    cleanup: async () => rmSync(tmp.dir, { recursive: true, force: true }),
  };
});
