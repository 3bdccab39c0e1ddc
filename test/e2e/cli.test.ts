// The built `beacon` CLI against a real `beacon serve` child process: keys, txns, leases,
// configs, import, compaction and the exit code of each kind of failure.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { spawnServer, tempDir, type ServerProcess } from '../helpers/node.js';
import { closedPort, runCli, type CliResult } from './cli-helpers.js';

let server: ServerProcess;
const data = tempDir();

before(async () => {
  server = await spawnServer(['--dev', '--data-dir', data.dir]);
});
after(async () => {
  await server.kill();
  data.cleanup();
});

/** Runs the CLI against the test server. */
function beacon(args: string[], input?: string): Promise<CliResult> {
  return runCli(['--endpoint', server.url, ...args], { input });
}

/** Runs the CLI, asserts exit 0, and returns stdout. */
async function ok(args: string[], input?: string): Promise<string> {
  const r = await beacon(args, input);
  assert.equal(r.code, 0, `beacon ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return r.stdout;
}

// Each test works under its own key prefix, so they run side by side to keep the file quick.
describe('beacon CLI (e2e)', { concurrency: true }, () => {
  it('puts, gets, lists and deletes keys, for people and with --json', async () => {
    assert.match(await ok(['put', 'kv/app/db/host', 'db.local']), /^OK \(revision \d+\)\n$/);
    const put = JSON.parse(await ok(['put', 'kv/app/db/port', '5432', '--json'])) as { revision: number };
    assert.ok(put.revision > 1);
    await ok(['put', 'kv/app/name'], 'multi\nline value'); // the value from stdin, byte for byte
    await ok(['put', 'kv/zeta', 'z']);

    assert.equal(await ok(['get', 'kv/app/db/host']), 'db.local\n');
    const got = JSON.parse(await ok(['get', 'kv/app/name', '--json'])) as { kv: { value: string; version: number } };
    assert.equal(got.kv.value, 'multi\nline value');
    assert.equal(got.kv.version, 1);

    const [all, keys, limited, ls, flat, lsJson] = await Promise.all([
      ok(['get', 'kv/app/', '--prefix']),
      ok(['get', 'kv/app/', '--prefix', '--keys-only']),
      ok(['get', 'kv/app/', '--prefix', '--limit', '2', '--json']),
      beacon(['ls', 'kv/']),
      ok(['ls', 'kv/app/db', '--flat']),
      ok(['ls', 'kv/app/', '--json']),
    ]);
    assert.equal(all, 'kv/app/db/host = db.local\nkv/app/db/port = 5432\nkv/app/name = "multi\\nline value"\n');
    assert.equal(keys, 'kv/app/db/host\nkv/app/db/port\nkv/app/name\n');
    const page = JSON.parse(limited) as { count: number; more: boolean; kvs: unknown[] };
    assert.deepEqual([page.kvs.length, page.count, page.more], [2, 3, true]);
    assert.equal(ls.stdout, 'kv/\n  app/\n    db/\n      host\n      port\n    name\n  zeta\n');
    assert.match(ls.stderr, /4 keys at revision \d+/);
    assert.equal(flat, 'kv/app/db/host\nkv/app/db/port\n');
    assert.deepEqual((JSON.parse(lsJson) as { keys: string[] }).keys, ['kv/app/db/host', 'kv/app/db/port', 'kv/app/name']);

    assert.match(await ok(['del', 'kv/app/db', '--prefix']), /^deleted 2 keys \(revision \d+\)\n$/);
    assert.deepEqual(JSON.parse(await ok(['del', 'kv/app/db/host', '--json'])).deleted, 0);
    assert.equal(await ok(['ls', 'kv/', '--flat']), 'kv/app/name\nkv/zeta\n');
  });

  it('stores a binary value from stdin byte for byte', async () => {
    const bytes = Buffer.from([0, 1, 2, 0xff, 0xfe, 0x80, 10]);
    const r = await runCli(['--endpoint', server.url, 'put', 'bin/blob'], { input: bytes });
    assert.equal(r.code, 0, r.stderr);
    const kv = (JSON.parse(await ok(['get', 'bin/blob', '--json'])) as { kv: { value: string; encoding: string } }).kv;
    assert.deepEqual([kv.encoding, Buffer.from(kv.value, 'base64')], ['base64', bytes]);
    assert.equal(await ok(['get', 'bin/', '--prefix']), 'bin/blob = <7 bytes, binary>\n');
  });

  it('reads the endpoint from BEACON_ENDPOINT and old revisions with --rev', async () => {
    const first = JSON.parse((await runCli(['put', 'env/k', 'one', '--json'], { env: { BEACON_ENDPOINT: server.url } })).stdout) as { revision: number };
    await ok(['put', 'env/k', 'two']);
    assert.equal(await ok(['get', 'env/k', '--rev', String(first.revision)]), 'one\n');
    assert.equal(await ok(['get', 'env/k']), 'two\n');
  });

  it('exits 4 for a missing key, 5 for a failed --if-version, 3 when nothing listens, 2 for bad usage', async () => {
    const port = await closedPort();
    const [missing, refused, badRev, unknown, delAll] = await Promise.all([
      beacon(['get', 'no/such/key']),
      runCli(['--endpoint', `http://127.0.0.1:${port}`, 'status']),
      beacon(['get', 'k', '--rev', 'abc']),
      beacon(['frobnicate']),
      beacon(['del', '', '--prefix']),
    ]);
    assert.equal(missing.code, 4);
    assert.equal(missing.stderr, "beacon: key 'no/such/key' not found\n");
    assert.equal(missing.stdout, '');
    assert.equal(refused.code, 3);
    assert.match(refused.stderr, /cannot reach Beacon at http:\/\/127\.0\.0\.1:\d+: connection refused/);
    assert.equal(badRev.code, 2);
    assert.equal(unknown.code, 2);
    assert.equal(delAll.code, 2, 'deleting everything needs --all');

    await ok(['put', 'cas', 'v1', '--if-version', '0']);
    const conflict = await beacon(['put', 'cas', 'v2', '--if-version', '0']);
    assert.equal(conflict.code, 5);
    assert.match(conflict.stderr, /key 'cas' is at version 1, not 0/);
    await ok(['put', 'cas', 'v2', '--if-version', '1']);
    assert.equal(await ok(['get', 'cas']), 'v2\n');
  });

  it('runs a txn from stdin as JSON and as etcdctl-style lines; a failed compare prints FAILURE and exits 0', async () => {
    const txn = JSON.stringify({
      compare: [{ key: 'txn/lock', target: 'version', result: '=', value: 0 }],
      success: [{ put: { key: 'txn/lock', value: 'holder-1' } }],
      failure: [{ range: { key: 'txn/lock' } }],
    });
    assert.equal(await ok(['txn'], txn), 'SUCCESS\n\nOK\n');
    const second = JSON.parse(await ok(['txn', '--json'], txn)) as { succeeded: boolean; results: { range: { kvs: { value: string }[] } }[] };
    assert.equal(second.succeeded, false);
    assert.equal(second.results[0]?.range.kvs[0]?.value, 'holder-1');

    const lines = 'value("txn/lock") = "holder-1"\n\nput txn/lock "holder 2"\nget txn/lock\n\nget txn/lock\n';
    assert.equal(await ok(['txn'], lines), 'SUCCESS\n\nOK\n\ntxn/lock = holder 2\n');
    assert.equal(await ok(['txn'], lines), 'FAILURE\n\ntxn/lock = holder 2\n');

    const file = join(data.dir, 'txn.json');
    writeFileSync(file, JSON.stringify({ success: [{ delete: { key: 'txn/', prefix: true } }] }));
    assert.equal(await ok(['txn', '--file', file]), 'SUCCESS\n\n1\n');

    const bad = await beacon(['txn'], 'mod("k") ~ 1\n');
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /cannot read compare/);
  });

  it('grants a lease, attaches a key, shows its TTL and revokes it with the key', async () => {
    const grant = JSON.parse(await ok(['lease', 'grant', '60', '--json'])) as { id: number; ttl: number };
    assert.equal(grant.ttl, 60);
    await ok(['put', 'session/worker-1', 'alive', '--lease', String(grant.id)]);
    const ttl = await ok(['lease', 'ttl', String(grant.id)]);
    assert.match(ttl, new RegExp(`^lease ${grant.id}: \\d+s remaining of 60s granted, 1 key\\n  session/worker-1\\n$`));
    assert.match(await ok(['lease', 'ls']), new RegExp(`^${grant.id}  ttl \\d+s/60s  1 key  owner dev$`, 'm'));
    assert.match(await ok(['lease', 'keep-alive', String(grant.id), '--once']), /kept alive with TTL 60s/);
    assert.match(await ok(['lease', 'revoke', String(grant.id)]), new RegExp(`^lease ${grant.id} revoked \\(revision \\d+\\)\\n$`));
    assert.equal((await beacon(['get', 'session/worker-1'])).code, 4, 'the leased key went with the lease');
    const gone = await beacon(['lease', 'revoke', String(grant.id)]);
    assert.equal(gone.code, 4);
    assert.match(gone.stderr, /lease \d+ not found/);
    assert.equal((await beacon(['put', 'x', 'y', '--lease', '12345'])).code, 4);
  });

  it('shows config history, diffs and rolls back', async () => {
    await ok(['put', 'cfg/payment', '{"db":{"host":"a","pool":5}}']);
    await ok(['put', 'cfg/payment', '{"db":{"host":"b","pool":5}}']);
    await ok(['put', 'cfg/payment', '{"db":{"host":"c"}}']);
    const history = (await ok(['history', 'cfg/payment'])).trim().split('\n');
    assert.match(history[0] ?? '', /^VERSION\s+REVISION\s+UPDATED\s+EVENT\s+VALUE$/);
    assert.deepEqual(
      history.slice(1).map((l) => l.split(/\s+/)[0]),
      ['v3', 'v2', 'v1'],
    );
    assert.equal(await ok(['diff', 'cfg/payment', '--from', 'v1', '--to', 'v3']), '--- cfg/payment v1\n+++ cfg/payment v3\n~ /db/host: a → c\n- /db/pool: 5\n');
    assert.match(await ok(['rollback', 'cfg/payment', '--to', 'v1']), /^rolled back cfg\/payment to the value of v1: v3 → v4 \(revision \d+\)\n$/);
    assert.equal(JSON.parse(await ok(['get', 'cfg/payment', '--json'])).kv.value, '{"db":{"host":"a","pool":5}}');
    const conflict = await beacon(['rollback', 'cfg/payment', '--to', 'v2', '--expect-version', 'v3']);
    assert.equal(conflict.code, 5);
    assert.equal((await beacon(['history', 'cfg/none'])).code, 4);
    assert.equal((await beacon(['diff', 'cfg/payment', '--from', 'v9'])).code, 4);
  });

  it('imports JSON lines and a JSON object', async () => {
    const jsonl = '{"key":"imp/a","value":"1"}\n{"key":"imp/b","value":{"nested":true}}\n{"key":"imp/c","value":"AP8=","encoding":"base64"}\n';
    assert.match(await ok(['import', '-'], jsonl), /^imported 3 keys \(revision \d+\)\n$/);
    const file = join(data.dir, 'import.json');
    const many: Record<string, string> = {};
    for (let i = 0; i < 300; i++) many[`imp/many/${String(i).padStart(3, '0')}`] = `value ${i}`;
    writeFileSync(file, JSON.stringify(many));
    const res = JSON.parse(await ok(['import', file, '--json'])) as { imported: number; firstRevision: number; lastRevision: number };
    assert.equal(res.imported, 300);
    assert.equal(await ok(['get', 'imp/b']), '{"nested":true}\n');
    assert.equal(await ok(['get', 'imp/many/299']), 'value 299\n');
    const listing = JSON.parse(await ok(['get', 'imp/many/', '--prefix', '--keys-only', '--json'])) as { count: number; kvs: { modRevision: number }[] };
    assert.equal(listing.count, 300);
    const revisions = [...new Set(listing.kvs.map((kv) => kv.modRevision))];
    assert.equal(revisions.length, 3, '300 puts go in 3 txns of at most 128 (one revision each)');
    assert.deepEqual([Math.min(...revisions), Math.max(...revisions)], [res.firstRevision, res.lastRevision]);
    const bad = await beacon(['import', '-'], '{"key":"a","value":"1"}\nnot json\n');
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /line 2 is not valid JSON/);
    assert.equal((await beacon(['import', join(data.dir, 'missing.json')])).code, 4);
  });

});

// Compaction is store-wide, so it runs after the tests above, which read old revisions.
describe('beacon CLI compaction (e2e)', () => {
  it('compacts, then reading below the compact revision exits 6', async () => {
    const first = JSON.parse(await ok(['put', 'compact/k', 'a', '--json'])) as { revision: number };
    await ok(['put', 'compact/k', 'b']);
    assert.match(await ok(['compact', String(first.revision + 1)]), new RegExp(`^compacted up to revision ${first.revision + 1} `));
    const old = await beacon(['get', 'compact/k', '--rev', String(first.revision)]);
    assert.equal(old.code, 6);
    assert.match(old.stderr, /has been compacted/);
    const status = JSON.parse(await ok(['status', '--json'])) as {
      compactRevision: number;
      dev: boolean;
      revision: number;
      cluster: { nodes: { self: boolean; lag: number; appliedRevision: number }[] };
    };
    assert.equal(status.compactRevision, first.revision + 1);
    // One node on SQLite: the cluster is this node, caught up.
    assert.equal(status.cluster.nodes.length, 1);
    assert.equal(status.cluster.nodes[0]?.self, true);
    assert.equal(status.cluster.nodes[0]?.lag, 0);
    const human = await ok(['status']);
    assert.match(human, /^revision:\s+\d+$/m);
    assert.match(human, /^cluster \(head revision \d+\):$/m);
  });
});
