// The seed's journeys 1 (configuration update and propagation) and 2 (rollback), exactly as
// written, with the real curl against the built `beacon serve`, and a service subscribed over
// WebSocket the way the seed's "Config Watcher" notifies services.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { spawnServer, tempDir, type ServerProcess } from '../helpers/node.js';
import { JsonSocket } from '../integration/watch-helpers.js';

const run = promisify(execFile);
let server: ServerProcess;
let data: ReturnType<typeof tempDir>;

before(async () => {
  data = tempDir();
  server = await spawnServer(['--data-dir', data.dir, '--dev']);
});

after(async () => {
  await server.stop();
  data.cleanup();
});

/** Runs curl like a person would; returns the HTTP status and the parsed JSON body. */
async function curl(...args: string[]): Promise<{ status: number; body: any }> {
  const { stdout } = await run('curl', ['-s', '-w', '\n%{http_code}', ...args], { timeout: 10_000 });
  const lines = stdout.trimEnd().split('\n');
  const status = Number(lines.pop());
  return { status, body: JSON.parse(lines.join('\n')) };
}

test('journey 1: admin updates database.url to v2; the subscribed service is notified and fetches v2', async () => {
  const base = server.url;
  // The config exists at v1 before the journey starts.
  const v1 = await curl('-X', 'PUT', `${base}/v1/configs/database.url`, '-H', 'content-type: application/json', '-d', '{"value": "postgresql://old-db:5432/app"}');
  assert.equal(v1.status, 200);
  assert.equal(v1.body.version, 'v1');

  // The user-service subscribes to the key.
  const service = await JsonSocket.open(`${base}/v1/configs/watch?key=database.url`);
  try {
    await service.takeType('subscribed');

    // 1. PUT /v1/configs/database.url with {"value": "postgresql://new-db:5432/app", "version": "v2"}
    const started = Date.now();
    const put = await curl(
      '-X', 'PUT', `${base}/v1/configs/database.url`,
      '-H', 'content-type: application/json',
      '-d', '{"value": "postgresql://new-db:5432/app", "version": "v2"}',
    );
    // 3. 200 OK with {"key": "database.url", "version": "v2", "updated_at": "..."}
    assert.equal(put.status, 200);
    assert.equal(put.body.key, 'database.url');
    assert.equal(put.body.version, 'v2');
    assert.ok(!Number.isNaN(Date.parse(put.body.updated_at)), 'updated_at is a timestamp');

    // 4. Services are notified: {"type": "config_update", "key": "database.url", "version": "v2"}
    const note = await service.takeType('config_update');
    assert.equal(note.type, 'config_update');
    assert.equal(note.key, 'database.url');
    assert.equal(note.version, 'v2');
    // 6. Propagated within 2 seconds.
    assert.ok(Date.now() - started < 2000, `notified after ${Date.now() - started} ms`);

    // 5. The service fetches the new config: GET /v1/configs/database.url → v2
    const got = await curl(`${base}/v1/configs/database.url`);
    assert.equal(got.status, 200);
    assert.equal(got.body.version, 'v2');
    assert.equal(got.body.value, 'postgresql://new-db:5432/app');

    // A second admin still expecting to create v2 loses: 409, and nothing changes.
    const stale = await curl(
      '-X', 'PUT', `${base}/v1/configs/database.url`,
      '-H', 'content-type: application/json',
      '-d', '{"value": "postgresql://other-db:5432/app", "version": "v2"}',
    );
    assert.equal(stale.status, 409);
    assert.equal(stale.body.error.code, 'conflict');
    assert.equal((await curl(`${base}/v1/configs/database.url`)).body.value, 'postgresql://new-db:5432/app');
  } finally {
    await service.close();
  }
});

test('journey 2: admin rolls database.url back to v1; a new version v3 holds v1 value and services hear it', async () => {
  const base = server.url;
  const service = await JsonSocket.open(`${base}/v1/configs/watch?key=database.url`);
  try {
    await service.takeType('subscribed');
    // 1. POST /v1/configs/database.url/rollback with {"version": "v1"}
    const rb = await curl(
      '-X', 'POST', `${base}/v1/configs/database.url/rollback`,
      '-H', 'content-type: application/json',
      '-d', '{"version": "v1"}',
    );
    assert.equal(rb.status, 200);
    // 2. {"event": "config_rolled_back", "key": "database.url", "from_version": "v2", "to_version": "v3"}
    assert.equal(rb.body.key, 'database.url');
    assert.equal(rb.body.from_version, 'v2');
    assert.equal(rb.body.to_version, 'v3');

    // 3. Services are notified that the config was rolled back to v1's value.
    const note = await service.takeType('config_update');
    assert.equal(note.key, 'database.url');
    assert.equal(note.version, 'v3');
    assert.equal(note.event, 'config_rolled_back');
    assert.equal(note.from_version, 'v2');
    assert.equal(note.to_version, 'v3');
    assert.equal(note.restored_version, 'v1');

    // 4. Services reload: the current config is v1's value, as v3.
    const got = await curl(`${base}/v1/configs/database.url`);
    assert.equal(got.body.version, 'v3');
    assert.equal(got.body.value, 'postgresql://old-db:5432/app');

    // Every version stays auditable, newest first.
    const history = await curl(`${base}/v1/configs/database.url/history`);
    assert.deepEqual(
      history.body.versions.map((v: any) => [v.version, v.event]),
      [['v3', 'config_rolled_back'], ['v2', 'config_updated'], ['v1', 'config_updated']],
    );
  } finally {
    await service.close();
  }
});
