/**
 * The RESP listener with real clients — redis-cli (Debian redis-tools), ioredis and node-redis
 * (RESP3) — on a node on port 0: seed 001's journey byte for byte, every command group on
 * durable keys, one store behind HTTP and RESP, MULTI/EXEC/WATCH atomicity, SCAN completeness
 * under concurrent writes, pub/sub and keyspace notifications for changes made over HTTP.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Redis } from 'ioredis';
import { createClient } from 'redis';
import { http } from '../helpers/node.js';
import { RawClient, frame, redisCli, sleep, startRespNode } from './resp-helpers.js';

describe('RESP with real clients (durable keys)', () => {
  let node: Awaited<ReturnType<typeof startRespNode>>;
  let io: Redis;

  before(async () => {
    node = await startRespNode();
    io = new Redis({ port: node.respPort, host: '127.0.0.1', maxRetriesPerRequest: 1 });
  });
  after(async () => {
    io.disconnect();
    await node.cleanup();
  });

  test('seed 001 journey 1, byte for byte: SET → +OK, GET → $8 John Doe, a query cached with EX 3600 (miss, then hit), expiry', async () => {
    const c = await RawClient.open(node.respPort);
    c.write(frame('SET', 'user:123', 'John Doe'));
    assert.equal((await c.until((b) => b.includes('\r\n'))).toString(), '+OK\r\n');
    c.clear();
    c.write(frame('GET', 'user:123'));
    assert.equal((await c.until((b) => b.length >= 14)).toString(), '$8\r\nJohn Doe\r\n');
    c.clear();
    // Cache-aside for a query: a miss first, then SET with a TTL, then a hit.
    c.write(frame('GET', 'query:123'));
    assert.equal((await c.until((b) => b.includes('\r\n'))).toString(), '$-1\r\n');
    c.clear();
    c.write(frame('SET', 'query:123', 'result', 'EX', '3600'));
    assert.equal((await c.until((b) => b.includes('\r\n'))).toString(), '+OK\r\n');
    c.clear();
    c.write(frame('GET', 'query:123'));
    assert.equal((await c.until((b) => b.length >= 12)).toString(), '$6\r\nresult\r\n');
    c.close();
    const ttl = Number((await redisCli(node.respPort, ['TTL', 'query:123'])).trim());
    assert.ok(ttl > 3590 && ttl <= 3600, `TTL ${ttl}`);
    // Expiry after the TTL (a short one here): the key is gone for GET, and for HTTP too.
    assert.equal((await redisCli(node.respPort, ['SET', 'query:short', 'r', 'EX', '1'])).trim(), 'OK');
    assert.equal((await redisCli(node.respPort, ['GET', 'query:short'])).trim(), 'r');
    await sleep(2600);
    assert.equal((await redisCli(node.respPort, ['GET', 'query:short'])).trim(), '');
    assert.equal((await http(`${node.url}/v1/kv/query:short`)).status, 404);
  });

  test('redis-cli: pipelined stdin, inline commands, errors in Redis wording', async () => {
    const out = await redisCli(node.respPort, [], 'SET a 1\nINCR a\nGET a\nFOO bar baz\nGET\nLPUSH somelist x\n');
    assert.deepEqual(out.trim().split('\n').filter((l) => l !== ''), [
      'OK',
      '2',
      '2',
      "ERR unknown command 'FOO', with args beginning with: 'bar' 'baz' ",
      "ERR wrong number of arguments for 'get' command",
      "ERR 'lpush' needs a memory namespace: 'somelist' is a durable key (lists, sets and sorted sets live in memory namespaces; see docs/resp.md)",
    ]);
    const c = await RawClient.open(node.respPort);
    c.write('PING\r\nECHO "hello world"\r\n');
    assert.equal((await c.until((b) => b.toString().endsWith('world\r\n'))).toString(), '+PONG\r\n$11\r\nhello world\r\n');
    c.close();
  });

  test('one store, many faces: a RESP SET is a kv put (watched, versioned) and HTTP writes are visible over RESP', async () => {
    await io.set('faces/k', 'v1');
    const r = await http(`${node.url}/v1/kv/faces/k`);
    assert.equal(r.status, 200);
    assert.equal(r.body.kv.value, 'v1');
    assert.equal(r.body.kv.version, 1);
    await io.set('faces/k', 'v2');
    assert.equal((await http(`${node.url}/v1/kv/faces/k`)).body.kv.version, 2);
    await http(`${node.url}/v1/kv/faces/h`, { method: 'PUT', body: { value: 'from http' } });
    assert.equal(await io.get('faces/h'), 'from http');
    // SET … EX attaches a lease.
    await io.set('faces/lease', 'x', 'EX', 100);
    const kv = (await http(`${node.url}/v1/kv/faces/lease`)).body.kv;
    assert.notEqual(kv.lease, 0);
  });

  test('strings: SET options, GETEX/GETDEL/GETSET, MSET/MSETNX, ranges, INCR family, APPEND, STRLEN', async () => {
    assert.equal(await io.set('s:nx', 'a', 'NX'), 'OK');
    assert.equal(await io.set('s:nx', 'b', 'NX'), null);
    assert.equal(await io.set('s:xx', 'b', 'XX'), null);
    assert.equal(await io.set('s:nx', 'c', 'XX', 'GET'), 'a');
    assert.equal(await io.get('s:nx'), 'c');
    await io.set('s:ttl', 'v', 'PX', 50_000);
    assert.equal(await io.set('s:ttl', 'w', 'KEEPTTL'), 'OK');
    assert.ok((await io.pttl('s:ttl')) > 40_000);
    await io.set('s:ttl', 'z');
    assert.equal(await io.ttl('s:ttl'), -1, 'SET without KEEPTTL clears the TTL');
    await io.call('SET', 's:exat', 'v', 'EXAT', String(Math.floor(Date.now() / 1000) + 100));
    assert.ok((await io.ttl('s:exat')) > 90);
    assert.equal(await io.getex('s:exat', 'PERSIST'), 'v');
    assert.equal(await io.ttl('s:exat'), -1);
    assert.equal(await io.getdel('s:exat'), 'v');
    assert.equal(await io.exists('s:exat'), 0);
    assert.equal(await io.getset('s:gs', 'new'), null);
    assert.equal(await io.getset('s:gs', 'newer'), 'new');
    assert.equal(await io.mset('s:m1', '1', 's:m2', '2'), 'OK');
    assert.deepEqual(await io.mget('s:m1', 's:m2', 's:none'), ['1', '2', null]);
    assert.equal(await io.msetnx('s:m2', 'x', 's:m3', 'y'), 0);
    assert.equal(await io.exists('s:m3'), 0, 'MSETNX sets nothing when one key exists');
    assert.equal(await io.msetnx('s:m3', 'y', 's:m4', 'z'), 1);
    assert.equal(await io.setrange('s:r', 5, 'hello'), 10);
    assert.equal(await io.get('s:r'), '\0\0\0\0\0hello');
    assert.equal(await io.getrange('s:r', -5, -1), 'hello');
    assert.equal(await io.incrby('s:n', 10), 10);
    assert.equal(await io.decrby('s:n', 3), 7);
    assert.equal(await io.decr('s:n'), 6);
    assert.equal(await io.incrbyfloat('s:n', '1.5'), '7.5');
    await assert.rejects(io.incr('s:r'), /ERR value is not an integer or out of range/);
    await io.set('s:big', '9223372036854775807');
    await assert.rejects(io.incr('s:big'), /ERR increment or decrement would overflow/);
    assert.equal(await io.append('s:ap', 'ab'), 2);
    assert.equal(await io.append('s:ap', 'cd'), 4);
    assert.equal(await io.strlen('s:ap'), 4);
    assert.equal(await io.setnx('s:ap', 'x'), 0);
    assert.equal(await io.setex('s:sx', 100, 'v'), 'OK');
    assert.equal(await io.psetex('s:psx', 100_000, 'v'), 'OK');
    assert.ok((await io.ttl('s:psx')) > 90);
    await assert.rejects(io.set('s:bad', 'v', 'EX', 0), /ERR invalid expire time in 'set' command/);
    await assert.rejects(io.call('SET', 's:bad', 'v', 'NX', 'XX'), /ERR syntax error/);
  });

  test('keys: DEL/UNLINK/EXISTS/TOUCH, EXPIRE family with NX/XX/GT/LT, TTL/PTTL/EXPIRETIME, PERSIST, TYPE, RENAME(NX), KEYS, RANDOMKEY, DBSIZE', async () => {
    await io.mset('k:a', '1', 'k:b', '2', 'k:c', '3');
    assert.equal(await io.exists('k:a', 'k:b', 'k:none'), 2);
    assert.equal(await io.touch('k:a', 'k:none'), 1);
    assert.equal(await io.del('k:a', 'k:none'), 1);
    assert.equal(await io.unlink('k:b'), 1);
    assert.equal(await io.ttl('k:c'), -1);
    assert.equal(await io.ttl('k:none'), -2);
    assert.equal(await io.expire('k:c', 100, 'XX'), 0);
    assert.equal(await io.expire('k:c', 100, 'NX'), 1);
    assert.equal(await io.expire('k:c', 50, 'GT'), 0);
    assert.equal(await io.expire('k:c', 200, 'GT'), 1);
    assert.ok((await io.ttl('k:c')) > 190);
    const et = await io.expiretime('k:c');
    assert.ok(Math.abs(et - (Math.floor(Date.now() / 1000) + 200)) <= 2);
    assert.ok((await io.pexpiretime('k:c')) >= et * 1000 - 1000);
    assert.equal(await io.persist('k:c'), 1);
    assert.equal(await io.ttl('k:c'), -1);
    assert.equal(await io.pexpire('k:c', -1), 1, 'a TTL in the past deletes the key');
    assert.equal(await io.exists('k:c'), 0);
    await io.set('k:r1', 'v');
    assert.equal(await io.rename('k:r1', 'k:r2'), 'OK');
    assert.equal(await io.get('k:r2'), 'v');
    await assert.rejects(io.rename('k:r1', 'k:r3'), /ERR no such key/);
    await io.set('k:r3', 'w');
    assert.equal(await io.renamenx('k:r2', 'k:r3'), 0);
    await io.hset('k:h', 'f', 'v');
    assert.equal(await io.type('k:h'), 'hash');
    assert.equal(await io.type('k:r3'), 'string');
    assert.equal(await io.type('k:none'), 'none');
    assert.deepEqual((await io.keys('k:r*')).sort(), ['k:r2', 'k:r3']);
    assert.ok((await io.randomkey()) !== null);
    assert.ok((await io.dbsize()) >= 4);
  });

  test('hashes on durable keys are JSON objects (visible over HTTP), with WRONGTYPE on a string', async () => {
    assert.equal(await io.hset('h:cfg', 'host', 'db1', 'port', '5432'), 2);
    assert.equal(await io.hset('h:cfg', 'port', '5433'), 0);
    assert.deepEqual(JSON.parse((await http(`${node.url}/v1/kv/h:cfg`)).body.kv.value as string), { host: 'db1', port: '5433' });
    assert.deepEqual(await io.hgetall('h:cfg'), { host: 'db1', port: '5433' });
    assert.equal(await io.hget('h:cfg', 'host'), 'db1');
    assert.deepEqual(await io.hmget('h:cfg', 'host', 'nope'), ['db1', null]);
    assert.equal(await io.hexists('h:cfg', 'port'), 1);
    assert.equal(await io.hlen('h:cfg'), 2);
    assert.deepEqual((await io.hkeys('h:cfg')).sort(), ['host', 'port']);
    assert.deepEqual((await io.hvals('h:cfg')).sort(), ['5433', 'db1']);
    assert.equal(await io.hstrlen('h:cfg', 'host'), 3);
    assert.equal(await io.hincrby('h:cfg', 'port', 2), 5435);
    assert.equal(await io.hincrbyfloat('h:cfg', 'w', '0.5'), '0.5');
    assert.equal(await io.hsetnx('h:cfg', 'host', 'x'), 0);
    assert.equal(await io.hdel('h:cfg', 'w', 'nope'), 1);
    const [cursor, flat] = await io.hscan('h:cfg', 0, 'MATCH', 'h*');
    assert.equal(cursor, '0');
    assert.deepEqual(flat, ['host', 'db1']);
    await io.set('h:str', 'plain');
    await assert.rejects(io.hget('h:str', 'f'), /^ReplyError: WRONGTYPE Operation against a key holding the wrong kind of value/);
    // An HTTP-written JSON object is a hash for RESP.
    await http(`${node.url}/v1/kv/h:http`, { method: 'PUT', body: { value: '{"a":"1","n":2}' } });
    assert.deepEqual(await io.hgetall('h:http'), { a: '1', n: '2' });
    assert.equal(await io.hdel('h:cfg', 'host', 'port'), 2);
    assert.equal(await io.exists('h:cfg'), 0, 'an emptied hash is deleted');
  });

  test('MULTI/EXEC is one revision; WATCH aborts when a watched key changed (also over HTTP)', async () => {
    const before = (await http(`${node.url}/v1/kv/tx:a`)).body;
    void before;
    const res = await io.multi().set('tx:a', '1').incr('tx:a').set('tx:b', 'x').get('tx:a').exec();
    assert.deepEqual(res, [[null, 'OK'], [null, 2], [null, 'OK'], [null, '2']]);
    const a = (await http(`${node.url}/v1/kv/tx:a`)).body.kv;
    const b = (await http(`${node.url}/v1/kv/tx:b`)).body.kv;
    assert.equal(a.modRevision, b.modRevision, 'both keys written at one revision');
    // WATCH + a concurrent HTTP change → EXEC returns null and writes nothing.
    const w = new Redis({ port: node.respPort, host: '127.0.0.1' });
    await w.watch('tx:a');
    await http(`${node.url}/v1/kv/tx:a`, { method: 'PUT', body: { value: 'changed' } });
    assert.equal(await w.multi().set('tx:a', 'mine').set('tx:c', 'mine').exec(), null);
    assert.equal(await io.get('tx:a'), 'changed');
    assert.equal(await io.exists('tx:c'), 0);
    // WATCH without a change commits.
    await w.watch('tx:a');
    assert.deepEqual(await w.multi().set('tx:a', 'mine').exec(), [[null, 'OK']]);
    // Errors while queueing abort the whole transaction.
    const raw = await RawClient.open(node.respPort);
    raw.write(Buffer.concat([frame('MULTI'), frame('SET', 'tx:d', '1'), frame('GET'), frame('EXEC')]));
    const out = (await raw.until((b) => b.includes('EXECABORT'))).toString();
    assert.equal(out, "+OK\r\n+QUEUED\r\n-ERR wrong number of arguments for 'get' command\r\n-EXECABORT Transaction discarded because of previous errors.\r\n");
    raw.close();
    assert.equal(await io.exists('tx:d'), 0);
    w.disconnect();
  });

  test('MULTI/EXEC atomicity: concurrent transfers never lose or create units', async () => {
    await io.mset('acct:1', '1000', 'acct:2', '1000');
    const clients = Array.from({ length: 6 }, () => new Redis({ port: node.respPort, host: '127.0.0.1' }));
    const transfer = async (c: Redis, from: string, to: string): Promise<void> => {
      for (;;) {
        await c.watch(from, to);
        const bal = Number(await c.get(from));
        const r = await c.multi().set(from, String(bal - 1)).incrby(to, 1).exec();
        if (r !== null) return;
      }
    };
    await Promise.all(clients.map((c, i) => (async () => {
      for (let j = 0; j < 10; j++) await transfer(c, i % 2 === 0 ? 'acct:1' : 'acct:2', i % 2 === 0 ? 'acct:2' : 'acct:1');
    })()));
    const [x, y] = await io.mget('acct:1', 'acct:2');
    assert.equal(Number(x) + Number(y), 2000);
    assert.equal(Number(x), 1000, 'three clients each way, ten transfers each');
    for (const c of clients) c.disconnect();
  });

  test('INCR is a compare-and-swap: 200 concurrent increments from 20 clients all count', async () => {
    const clients = Array.from({ length: 20 }, () => new Redis({ port: node.respPort, host: '127.0.0.1' }));
    await Promise.all(clients.map(async (c) => {
      for (let i = 0; i < 10; i++) await c.incr('cas:counter');
    }));
    assert.equal(await io.get('cas:counter'), '200');
    // HTTP writes interleaved with increments are not lost either.
    for (const c of clients) c.disconnect();
  });

  test('SCAN returns every key present throughout, under concurrent writes, with MATCH/COUNT/TYPE', async () => {
    const stable = Array.from({ length: 300 }, (_, i) => `scan:stable:${String(i).padStart(4, '0')}`);
    for (let i = 0; i < stable.length; i += 100) await io.mset(...stable.slice(i, i + 100).flatMap((k) => [k, 'v']));
    await io.hset('scan:hash', 'f', 'v');
    let writing = true;
    const writer = (async () => {
      let i = 0;
      while (writing) {
        await io.set(`scan:churn:${i % 50}`, String(i));
        if (i % 3 === 0) await io.del(`scan:churn:${(i + 7) % 50}`);
        i++;
      }
    })();
    const seen = new Set<string>();
    let cursor = '0';
    let rounds = 0;
    do {
      const [next, keys] = await io.scan(cursor, 'MATCH', 'scan:*', 'COUNT', 17);
      for (const k of keys) seen.add(k);
      cursor = next;
      rounds++;
    } while (cursor !== '0');
    writing = false;
    await writer;
    assert.ok(rounds > 5, 'COUNT bounds each step');
    for (const k of stable) assert.ok(seen.has(k), `SCAN missed ${k}`);
    const hashes: string[] = [];
    cursor = '0';
    do {
      const [next, keys] = (await io.call('SCAN', cursor, 'MATCH', 'scan:*', 'TYPE', 'hash', 'COUNT', '1000')) as [string, string[]];
      hashes.push(...keys);
      cursor = next;
    } while (cursor !== '0');
    assert.deepEqual(hashes, ['scan:hash']);
    await assert.rejects(io.scan('banana'), /ERR invalid cursor/);
  });

  test('pub/sub and keyspace notifications for changes made over HTTP, RESP and lease expiry', async () => {
    const sub = new Redis({ port: node.respPort, host: '127.0.0.1' });
    const got: string[] = [];
    sub.on('message', (ch: string, msg: string) => got.push(`${ch} ${msg}`));
    sub.on('pmessage', (_p: string, ch: string, msg: string) => got.push(`p ${ch} ${msg}`));
    assert.equal(await io.config('SET', 'notify-keyspace-events', 'KEA'), 'OK');
    assert.deepEqual(await io.config('GET', 'notify-keyspace-events'), ['notify-keyspace-events', 'AKE']);
    await sub.subscribe('news', '__keyspace@0__:ks/a');
    await sub.psubscribe('__keyevent@0__:*');
    assert.deepEqual(await io.pubsub('NUMSUB', 'news'), ['news', 1]);
    assert.equal(await io.pubsub('NUMPAT'), 1);
    assert.ok(((await io.pubsub('CHANNELS')) as string[]).includes('news'));
    assert.equal(await io.publish('news', 'hello'), 1);
    await http(`${node.url}/v1/kv/ks/a`, { method: 'PUT', body: { value: '1' } });
    await io.incr('ks/a');
    await http(`${node.url}/v1/kv/ks/a`, { method: 'DELETE' });
    await io.set('ks/short', 'x', 'EX', 1);
    const deadline = Date.now() + 10_000;
    while (!got.includes('p __keyevent@0__:expired ks/short') && Date.now() < deadline) await sleep(50);
    assert.ok(got.includes('news hello'));
    assert.ok(got.includes('__keyspace@0__:ks/a set'), JSON.stringify(got));
    assert.ok(got.includes('__keyspace@0__:ks/a incrby'), JSON.stringify(got));
    assert.ok(got.includes('__keyspace@0__:ks/a del'), JSON.stringify(got));
    assert.ok(got.includes('p __keyevent@0__:set ks/a'));
    assert.ok(got.includes('p __keyevent@0__:expired ks/short'), JSON.stringify(got));
    // In RESP2 subscribed mode only (P)SUBSCRIBE, (P)UNSUBSCRIBE, PING, QUIT, RESET are allowed.
    const raw = await RawClient.open(node.respPort);
    raw.write(Buffer.concat([frame('SUBSCRIBE', 'c1'), frame('GET', 'x')]));
    assert.match((await raw.until((b) => b.includes('allowed'))).toString(), /-ERR Can't execute 'get': only \(P\|S\)SUBSCRIBE \/ \(P\|S\)UNSUBSCRIBE \/ PING \/ QUIT \/ RESET are allowed in this context/);
    raw.close();
    sub.disconnect();
    await io.config('SET', 'notify-keyspace-events', '');
  });

  test('node-redis (RESP3 via HELLO 3): commands, maps, push-frame pub/sub, MULTI', async () => {
    const c = createClient({ socket: { port: node.respPort, host: '127.0.0.1', reconnectStrategy: false }, RESP: 3 });
    await c.connect();
    assert.equal(await c.set('nr:k', 'v'), 'OK');
    assert.equal(await c.get('nr:k'), 'v');
    await c.hSet('nr:h', { a: '1', b: '2' });
    assert.deepEqual({ ...(await c.hGetAll('nr:h')) }, { a: '1', b: '2' });
    assert.equal(await c.incrByFloat('nr:f', 2.5), '2.5');
    const multi = await c.multi().set('nr:m', '1').incr('nr:m').exec();
    assert.deepEqual(multi, ['OK', 2]);
    const sub = c.duplicate();
    await sub.connect();
    const msgs: string[] = [];
    await sub.subscribe('chan', (m) => msgs.push(m));
    // A RESP3 client may keep issuing commands while subscribed: pushes arrive out of band.
    assert.equal(await c.publish('chan', 'm1'), 1);
    const deadline = Date.now() + 5000;
    while (msgs.length === 0 && Date.now() < deadline) await sleep(20);
    assert.deepEqual(msgs, ['m1']);
    assert.equal(await sub.get('nr:k'), 'v');
    await sub.unsubscribe('chan');
    await sub.quit();
    const info = await c.info('persistence');
    assert.match(info, /loading:0/);
    assert.match(await c.clientInfo().then((x) => JSON.stringify(x)), /resp/);
    await c.quit();
  });

  test('INFO, COMMAND, CLIENT, CONFIG, TIME, SELECT, HELLO, RESET as clients use them', async () => {
    const info = await io.info();
    for (const f of ['redis_version:', 'loading:0', 'keyspace_hits:', 'keyspace_misses:', 'evicted_keys:', 'expired_keys:', 'used_memory:', 'db0:keys=']) {
      assert.ok(info.includes(f), `INFO lacks ${f}`);
    }
    assert.ok(((await io.call('COMMAND', 'COUNT')) as number) > 100);
    const ci = (await io.call('COMMAND', 'INFO', 'get')) as unknown[][];
    assert.equal(ci[0]?.[0], 'get');
    assert.equal(ci[0]?.[1], 2);
    assert.equal(await io.client('SETNAME', 'tester'), 'OK');
    assert.equal(await io.client('GETNAME'), 'tester');
    assert.ok(typeof (await io.client('ID')) === 'number');
    assert.match((await io.client('LIST')) as string, /name=tester/);
    // Redis 7 shows a container command's last use with its subcommand.
    assert.match((await io.client('LIST')) as string, / cmd=client\|list /);
    await io.config('GET', 'save');
    assert.match((await io.client('INFO')) as string, / cmd=client\|info /);
    const cpu = (await io.info('cpu')) as string;
    assert.match(cpu, /^# CPU\r\nused_cpu_sys:\d+\.\d{6}\r\nused_cpu_user:\d+\.\d{6}/);
    assert.doesNotMatch(cpu, /used_memory/);
    const two = (await io.call('INFO', 'cpu', 'memory')) as string;
    assert.match(two, /used_cpu_user/);
    assert.match(two, /used_memory/);
    assert.doesNotMatch(two, /connected_clients/);
    assert.match(((await io.call('PUBSUB', 'HELP')) as string[])[0] as string, /^PUBSUB <subcommand>/);
    assert.deepEqual(await io.config('GET', 'save'), ['save', '']);
    assert.deepEqual(await io.config('GET', 'appendonly'), ['appendonly', 'no']);
    const [sec] = (await io.time()) as unknown as [string, string];
    assert.ok(Math.abs(Number(sec) - Date.now() / 1000) < 5);
    assert.equal(await io.select(0), 'OK');
    await assert.rejects(io.select(1), /ERR DB index is out of range/);
    const cli = await redisCli(node.respPort, ['--no-raw', 'HELLO', '3']);
    assert.match(cli, /"proto" => \(integer\) 3/);
    const c = await RawClient.open(node.respPort);
    c.write(frame('HELLO', '3'));
    await c.until((b) => b.includes('modules'));
    assert.ok(c.received.toString().startsWith('%7\r\n'), 'HELLO 3 answers a RESP3 map');
    c.clear();
    c.write(frame('RESET'));
    assert.equal((await c.until((b) => b.includes('\r\n'))).toString(), '+RESET\r\n');
    c.clear();
    c.write(frame('QUIT'));
    assert.equal((await c.until((b) => b.includes('\r\n'))).toString(), '+OK\r\n');
    assert.ok(await c.closedWithin());
  });
});

