/**
 * INFO commandstats and errorstats, CONFIG RESETSTAT, and the slow log (SLOWLOG GET/LEN/RESET,
 * `slowlog-log-slower-than`, `slowlog-max-len`), with the slow log's argument trimming compared
 * against redis-server's.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Redis } from 'ioredis';
import { startBesideRedis, type SideBySide } from './resp-helpers.js';

let pair: SideBySide;
before(async () => {
  pair = await startBesideRedis({ '': { storage: 'memory' } });
});
after(async () => {
  await pair.stop();
});

/** `field:value` lines of an INFO section as a map. */
function fields(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split(/\r?\n/)) {
    const i = line.indexOf(':');
    if (i > 0 && !line.startsWith('#')) out.set(line.slice(0, i), line.slice(i + 1));
  }
  return out;
}

test('INFO commandstats counts calls, failed and rejected calls per command; errorstats by error code; RESETSTAT clears both', async () => {
  const io = pair.io;
  await io.config('RESETSTAT');
  await io.set('s:a', '1');
  await io.get('s:a');
  await io.get('s:a');
  await assert.rejects(io.lpush('s:a', 'x'), /WRONGTYPE/); // ran and failed
  await assert.rejects(io.call('GET'), /wrong number of arguments/); // refused before running
  await assert.rejects(io.call('NOSUCH'), /unknown command/);
  await io.config('GET', 'maxmemory');
  const cs = fields(await io.info('commandstats'));
  assert.match(cs.get('cmdstat_get') ?? '', /^calls=2,usec=\d+,usec_per_call=[\d.]+,rejected_calls=1,failed_calls=0$/);
  assert.match(cs.get('cmdstat_lpush') ?? '', /^calls=1,.*rejected_calls=0,failed_calls=1$/);
  assert.match(cs.get('cmdstat_config|get') ?? '', /^calls=1,/, 'container commands count per subcommand');
  assert.equal(cs.has('cmdstat_nosuch'), false);
  const es = fields(await io.info('errorstats'));
  assert.equal(es.get('errorstat_WRONGTYPE'), 'count=1');
  assert.equal(es.get('errorstat_ERR'), 'count=2');
  assert.equal(fields(await io.info('stats')).get('total_error_replies'), '3');
  assert.equal(fields(await io.info()).has('cmdstat_get'), false, 'not in the default INFO, as in Redis');
  await io.config('RESETSTAT');
  const after = fields(await io.info('commandstats'));
  assert.equal(after.has('cmdstat_get'), false);
  assert.equal(fields(await io.info('errorstats')).size, 0);
});

test('SLOWLOG: commands at least slowlog-log-slower-than µs, newest first, arguments trimmed as redis-server trims them; credentials redacted', async () => {
  const slowArgs = async (c: Redis): Promise<unknown[]> => {
    await c.config('SET', 'slowlog-log-slower-than', '0');
    await c.slowlog('RESET');
    await c.set('s:long', 'v'.repeat(300));
    await c.call('MSET', ...Array.from({ length: 40 }, (_, i) => `s:${i}`));
    // Refused by redis-server (no such user); accepted by Beacon under --dev. Logged with its arguments redacted.
    await c.call('AUTH', 'nobody', 'secret-password').catch(() => undefined);
    const got = (await c.slowlog('GET', '-1')) as unknown[][];
    await c.config('SET', 'slowlog-log-slower-than', '10000');
    // [id, time, µs, args, addr, name]: compare the arguments, which must not show the password.
    return got.map((e) => e[3]);
  };
  const want = await slowArgs(pair.rd);
  const got = await slowArgs(pair.io);
  assert.deepEqual(got, want);
  assert.equal(JSON.stringify(got).includes('secret-password'), false);

  const io = pair.io;
  await io.config('SET', 'slowlog-log-slower-than', '0');
  await io.config('SET', 'slowlog-max-len', '3');
  for (let i = 0; i < 5; i++) await io.set(`s:n${i}`, '1');
  const entries = (await io.slowlog('GET', '-1')) as [number, number, number, string[], string, string][];
  assert.equal(await io.slowlog('LEN'), 3);
  assert.deepEqual(
    entries.map((e) => e[3]),
    [
      ['set', 's:n4', '1'],
      ['set', 's:n3', '1'],
      ['set', 's:n2', '1'],
    ],
  );
  const [id, time, usec, , addr] = entries[0] as [number, number, number, string[], string, string];
  assert.ok(id > 0 && Math.abs(time - Date.now() / 1000) < 60 && usec >= 0 && /^127\.0\.0\.1:\d+$/.test(addr));
  assert.equal(await io.slowlog('RESET'), 'OK');
  assert.equal(await io.slowlog('LEN'), 1, 'the RESET itself is slower than 0 µs');
  await io.config('SET', 'slowlog-log-slower-than', '-1');
  const before = await io.slowlog('LEN');
  await io.set('s:quiet', '1');
  assert.equal(await io.slowlog('LEN'), before, 'a negative threshold logs nothing');
  await assert.rejects(io.slowlog('GET', '-2'), /count should be greater than or equal to -1/);
  await assert.rejects(io.config('SET', 'slowlog-max-len', '-1'), /slowlog-max-len/);
  await io.config('SET', 'slowlog-log-slower-than', '10000');
  await io.config('SET', 'slowlog-max-len', '128');
});
