/**
 * Issue 9 finding 10 (readiness half): `/readyz` must say what writes can do. On a real, full file
 * system (a small tmpfs mounted for the test) a write answers 503, and so must `/readyz`, with
 * the reason; once space is freed, `/readyz` answers 200 again without any write, and writes work.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, rmdirSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { http, startTestNode } from '../helpers/node.js';

/** Mounts a tmpfs of `size` on a fresh directory; undefined when this machine does not allow it (not root). */
function mountTmpfs(size: string): { dir: string; unmount: () => void } | undefined {
  const dir = mkdtempSync(join(tmpdir(), 'beacon-diskfull-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0700`, 'tmpfs', dir], { stdio: 'pipe' });
  } catch {
    rmdirSync(dir);
    return undefined;
  }
  return {
    dir,
    unmount: () => {
      execFileSync('umount', [dir], { stdio: 'pipe' });
      rmdirSync(dir);
    },
  };
}

/** Writes zeros to `path` until the file system says ENOSPC. */
function fill(path: string): void {
  const fd = openSync(path, 'w');
  try {
    for (const size of [1024 * 1024, 4096, 512]) {
      const chunk = Buffer.alloc(size);
      for (;;) {
        try {
          writeSync(fd, chunk);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'ENOSPC') break;
          throw err;
        }
      }
    }
  } finally {
    closeSync(fd);
  }
}

describe('hardening: /readyz reports what writes can do (disk full)', () => {
  const mount = process.getuid?.() === 0 ? mountTmpfs('24m') : undefined;

  it('answers 503 with the reason while the disk is full, and 200 again once writes work', { skip: mount === undefined ? 'needs root to mount a tmpfs' : false }, async () => {
    const { dir, unmount } = mount as NonNullable<typeof mount>;
    let node: Awaited<ReturnType<typeof startTestNode>> | undefined;
    try {
      node = await startTestNode({ dataDir: join(dir, 'data') });
      const url = node.url;
      assert.equal((await http(`${url}/v1/kv/app/one`, { method: 'PUT', body: { value: 'before' } })).status, 200);
      assert.equal((await http(`${url}/readyz`)).status, 200);

      const filler = join(dir, 'filler');
      fill(filler);
      // A value larger than anything written so far must grow the WAL: the disk has no room for it.
      const big = 'x'.repeat(512 * 1024);
      const put = await http(`${url}/v1/kv/app/big`, { method: 'PUT', body: { value: big } });
      assert.equal(put.status, 503, JSON.stringify(put.body));

      const ready = await http(`${url}/readyz`);
      assert.equal(ready.status, 503, 'readyz must not say ready while writes fail');
      assert.equal(ready.body.ready, false);
      assert.match(String(ready.body.writes?.reason), /full|space/i, JSON.stringify(ready.body));
      // Reads still work meanwhile.
      const read = await http(`${url}/v1/kv/app/one`);
      assert.equal(read.status, 200);
      assert.equal(read.body.kv.value, 'before');

      rmSync(filler);
      // No write is needed to recover: readyz probes the file system (at most once a second).
      let status = 0;
      for (let i = 0; i < 40 && status !== 200; i++) {
        if (i > 0) await new Promise((r) => setTimeout(r, 250));
        status = (await http(`${url}/readyz`)).status;
      }
      assert.equal(status, 200, 'readyz recovers once space is freed');
      assert.equal((await http(`${url}/v1/kv/app/big`, { method: 'PUT', body: { value: big } })).status, 200);
      assert.equal((await http(`${url}/readyz`)).status, 200);
    } finally {
      await node?.stop().catch(() => undefined);
      unmount();
    }
  });
});
