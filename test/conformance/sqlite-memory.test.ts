/** The backend conformance suite against a private in-memory SQLite database (`sqlite::memory:`). */
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

runConformance('sqlite memory', async () => {
  const tmp = tempDir('beacon-conf-mem-');
  return {
    backend: await createBackend('sqlite::memory:', tmp.dir),
    // Nothing outlives a memory database, so no reopen; its snapshot is an ordinary SQLite file.
    openSnapshot: (path: string) => createBackend(`sqlite:${path}`, tmp.dir),
    cleanup: async () => tmp.cleanup(),
  };
});
