/** Connection, server and pub/sub commands (no keys, or keys of both kinds). */
import { SYNTAX, intArg, word } from './args.js';
import { scanArgs } from './cmd-strings.js';
import type { ConnState, Ctx } from './context.js';
import { RespError } from './keyspace.js';
import { R, type Reply } from './protocol.js';

const s = (b: Buffer | undefined): string => (b === undefined ? '' : b.toString('utf8'));

export function ping(c: Ctx, a: Buffer[]): Reply {
  if (a.length > 1) throw new RespError("ERR wrong number of arguments for 'ping' command");
  // In RESP2 subscribed mode PING answers as a pub/sub message (Redis does so).
  if (c.conn.protocol === 2 && c.conn.channels.size + c.conn.patterns.size > 0) return R.array([R.bulk('pong'), R.bulk(a[0] ?? '')]);
  return a[0] === undefined ? R.simple('PONG') : R.bulk(a[0]);
}

export const echo = (_c: Ctx, a: Buffer[]): Reply => R.bulk(a[0] as Buffer);

export function time(): Reply {
  const us = BigInt(Date.now()) * 1000n + BigInt(Math.floor((performance.now() % 1) * 1000));
  return R.array([R.bulk(String(us / 1_000_000n)), R.bulk(String(us % 1_000_000n))]);
}

export function select(_c: Ctx, a: Buffer[]): Reply {
  const n = intArg(a[0], 'ERR value is not an integer or out of range');
  if (n !== 0) throw new RespError('ERR DB index is out of range (Beacon has one database, 0)');
  return R.ok;
}

/** HELLO's reply map (server, version, proto, id, mode, role, modules). */
export function helloMap(c: Ctx, version: string): Reply {
  return R.map([
    [R.bulk('server'), R.bulk('redis')],
    [R.bulk('version'), R.bulk(version)],
    [R.bulk('proto'), R.int(c.conn.protocol)],
    [R.bulk('id'), R.int(c.conn.id)],
    [R.bulk('mode'), R.bulk('standalone')],
    [R.bulk('role'), R.bulk('master')],
    [R.bulk('modules'), R.array([])],
  ]);
}

/** The compatible Redis version reported by HELLO and INFO (clients gate features on it). */
export const REDIS_VERSION = '7.2.0';

export async function hello(c: Ctx, a: Buffer[]): Promise<Reply> {
  let proto = c.conn.protocol;
  let i = 0;
  if (a[0] !== undefined) {
    const v = Number(s(a[0]));
    if (!Number.isInteger(v) || !/^[0-9]+$/.test(s(a[0]))) throw new RespError('ERR Protocol version is not an integer or out of range');
    if (v !== 2 && v !== 3) throw new RespError('NOPROTO unsupported protocol version');
    proto = v;
    i = 1;
  }
  let name: string | undefined;
  for (; i < a.length; i++) {
    const w = word(a[i]);
    if (w === 'AUTH' && a[i + 2] !== undefined) {
      const user = s(a[i + 1]);
      const pass = s(a[i + 2]);
      c.conn.principal = await c.srv.authenticate(user, pass, c.conn);
      i += 2;
    } else if (w === 'SETNAME' && a[i + 1] !== undefined) {
      name = checkName(s(a[++i]));
    } else throw new RespError(`ERR Syntax error in HELLO option '${s(a[i])}'`);
  }
  if (c.conn.principal === undefined) throw new RespError('NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time');
  if (name !== undefined) c.conn.name = name;
  c.conn.protocol = proto;
  return helloMap(c, REDIS_VERSION);
}

export async function auth(c: Ctx, a: Buffer[]): Promise<Reply> {
  if (a.length === 0 || a.length > 2) throw new RespError("ERR wrong number of arguments for 'auth' command");
  const user = a.length === 2 ? s(a[0]) : undefined;
  const pass = s(a.length === 2 ? a[1] : a[0]);
  c.conn.principal = await c.srv.authenticate(user, pass, c.conn);
  return R.ok;
}

function checkName(n: string): string {
  if (/[\s]/.test(n) || [...n].some((ch) => ch.charCodeAt(0) < 0x21 || ch.charCodeAt(0) > 0x7e)) {
    throw new RespError('ERR Client names cannot contain spaces, newlines or special characters.');
  }
  return n;
}

/** One CLIENT LIST / CLIENT INFO line. */
export function clientLine(x: ConnState): string {
  const now = Date.now();
  const sub = x.channels.size;
  const psub = x.patterns.size;
  return (
    `id=${x.id} addr=${x.addr} laddr=${x.laddr} fd=0 name=${x.name} age=${Math.floor((now - x.createdAt) / 1000)} ` +
    `idle=${Math.floor((now - x.lastActive) / 1000)} flags=${x.blocked ? 'b' : x.multi !== undefined ? 'x' : 'N'} db=0 sub=${sub} psub=${psub} ssub=0 ` +
    `multi=${x.multi?.length ?? -1} qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem=0 tot-mem=0 ` +
    `events=r cmd=${x.lastCmd} user=${x.principal?.name ?? 'default'} redir=-1 resp=${x.protocol} lib-name=${x.libName} lib-ver=${x.libVer}`
  );
}

/** SLOWLOG GET [count] | LEN | RESET | HELP (administrators: entries show arguments). */
export function slowlog(c: Ctx, a: Buffer[]): Reply {
  const sub = word(a[0]);
  if (sub === 'GET' && a.length <= 2) {
    const count = a[1] === undefined ? 10 : intArg(a[1], 'ERR count should be greater than or equal to -1');
    if (count < -1) throw new RespError('ERR count should be greater than or equal to -1');
    return c.srv.slowlogGet(count);
  }
  if (sub === 'LEN' && a.length === 1) return R.int(c.srv.slowlogLen());
  if (sub === 'RESET' && a.length === 1) {
    c.srv.slowlogReset();
    return R.ok;
  }
  if (sub === 'HELP' && a.length === 1) {
    return R.array(['SLOWLOG <subcommand> [<arg> ...]', 'GET [<count>]', '    Return top <count> entries from the slowlog (default: 10, -1 mean all).', 'LEN', '    Return the length of the slowlog.', 'RESET', '    Reset the slowlog.', 'HELP'].map((x) => R.simple(x)));
  }
  throw new RespError(`ERR unknown subcommand or wrong number of arguments for '${s(a[0])}'. Try SLOWLOG HELP.`);
}

export function client(c: Ctx, a: Buffer[]): Reply {
  const sub = word(a[0]);
  switch (sub) {
    case 'ID':
      return R.int(c.conn.id);
    case 'SETNAME':
      if (a.length !== 2) throw new RespError("ERR wrong number of arguments for 'client|setname' command");
      c.conn.name = checkName(s(a[1]));
      return R.ok;
    case 'GETNAME':
      return c.conn.name === '' ? R.null : R.bulk(c.conn.name);
    case 'SETINFO': {
      const attr = word(a[1]);
      const v = s(a[2]);
      if (a.length !== 3) throw new RespError("ERR wrong number of arguments for 'client|setinfo' command");
      if (attr === 'LIB-NAME') c.conn.libName = checkName(v);
      else if (attr === 'LIB-VER') c.conn.libVer = checkName(v);
      else throw new RespError(`ERR Unrecognized option '${s(a[1])}'`);
      return R.ok;
    }
    case 'INFO':
      return R.verbatim(`${clientLine(c.conn)}\n`);
    case 'LIST': {
      let list = c.srv.clients();
      if (word(a[1]) === 'ID') {
        const ids = new Set(a.slice(2).map((b) => intArg(b)));
        list = list.filter((x) => ids.has(x.id));
      } else if (a[1] !== undefined && word(a[1]) !== 'TYPE') throw new RespError(SYNTAX);
      // Other principals' connections are shown to administrators only.
      if (!isAdmin(c)) list = list.filter((x) => x.principal?.name === c.conn.principal?.name);
      return R.verbatim(list.map((x) => `${clientLine(x)}\n`).join(''));
    }
    case 'KILL': {
      const targets = killTargets(c, a.slice(1));
      if (a.length === 2) {
        const t = targets[0];
        if (t === undefined) throw new RespError('ERR No such client');
        t.kill();
        return R.ok;
      }
      for (const t of targets) t.kill();
      return R.int(targets.length);
    }
    case 'UNBLOCK': {
      if (a.length < 2 || a.length > 3) throw new RespError("ERR wrong number of arguments for 'client|unblock' command");
      const id = intArg(a[1]);
      const how = a[2] === undefined ? 'TIMEOUT' : word(a[2]);
      if (how !== 'TIMEOUT' && how !== 'ERROR') throw new RespError('ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR');
      // Another principal's client is out of reach unless the caller is an administrator (as CLIENT KILL).
      const target = c.srv.clients().find((x) => x.id === id);
      if (target === undefined || (!isAdmin(c) && target.principal?.name !== c.conn.principal?.name)) return R.int(0);
      return R.int(c.srv.unblockClient(id, how === 'ERROR') ? 1 : 0);
    }
    case 'NO-EVICT':
    case 'NO-TOUCH': {
      const w = word(a[1]);
      if (w !== 'ON' && w !== 'OFF') throw new RespError(SYNTAX);
      return R.ok;
    }
    case 'REPLY': {
      const w = word(a[1]);
      if (a.length !== 2 || (w !== 'ON' && w !== 'OFF' && w !== 'SKIP')) throw new RespError(SYNTAX);
      c.conn.replyMode = w === 'ON' ? 'on' : w === 'OFF' ? 'off' : 'skip';
      return w === 'ON' ? R.ok : NO_REPLY;
    }
    case 'HELP':
      return R.array(['CLIENT <subcommand> [<arg> ...]', 'ID', 'SETNAME <name>', 'GETNAME', 'SETINFO LIB-NAME|LIB-VER <v>', 'INFO', 'LIST [ID id ...]', 'KILL <ip:port> | ID <id> | ADDR <ip:port> | USER <name>', 'UNBLOCK <id> [TIMEOUT|ERROR]', 'NO-EVICT ON|OFF', 'NO-TOUCH ON|OFF', 'REPLY ON|OFF|SKIP'].map((x) => R.simple(x)));
    default:
      throw new RespError(`ERR unknown subcommand '${s(a[0])}'. Try CLIENT HELP.`);
  }
}

function isAdmin(c: Ctx): boolean {
  return c.srv.dev || c.conn.principal?.roles.includes('admin') === true;
}

function killTargets(c: Ctx, a: Buffer[]): ConnState[] {
  const all = c.srv.clients();
  let found: ConnState[];
  if (a.length === 1) found = all.filter((x) => x.addr === s(a[0]));
  else {
    found = all;
    for (let i = 0; i < a.length; i += 2) {
      const w = word(a[i]);
      const v = s(a[i + 1]);
      if (a[i + 1] === undefined) throw new RespError(SYNTAX);
      if (w === 'ID') found = found.filter((x) => String(x.id) === v);
      else if (w === 'ADDR') found = found.filter((x) => x.addr === v);
      else if (w === 'LADDR') found = found.filter((x) => x.laddr === v);
      else if (w === 'USER') found = found.filter((x) => x.principal?.name === v);
      else if (w === 'SKIPME') {
        if (word(a[i + 1]) === 'YES') found = found.filter((x) => x !== c.conn);
      } else throw new RespError(SYNTAX);
    }
  }
  if (!isAdmin(c) && found.some((x) => x.principal?.name !== c.conn.principal?.name)) {
    throw new RespError("NOPERM only an administrator may kill another principal's connections");
  }
  return found;
}

export function info(c: Ctx, a: Buffer[]): Reply {
  if (a.length <= 1) return R.verbatim(c.srv.info(a[0] === undefined ? undefined : s(a[0]).toLowerCase(), c.conn));
  // Several sections (Redis 7): each once, in the order given.
  const names = [...new Set(a.map((x) => s(x).toLowerCase()))];
  return R.verbatim(names.map((n) => c.srv.info(n, c.conn)).filter((t) => t !== '').join('\r\n'));
}

export function command(c: Ctx, a: Buffer[]): Reply {
  const sub = word(a[0]);
  if (sub === '') return R.array(c.srv.commandNames().map((n) => c.srv.commandInfo(n) as Reply));
  if (sub === 'COUNT') return R.int(c.srv.commandNames().length);
  if (sub === 'LIST') return R.array(c.srv.commandNames().map((n) => R.bulk(n)));
  if (sub === 'INFO') {
    const names = a.length > 1 ? a.slice(1).map((b) => s(b).toLowerCase()) : c.srv.commandNames();
    return R.array(names.map((n) => c.srv.commandInfo(n) ?? R.nullArray));
  }
  if (sub === 'DOCS') {
    const names = a.length > 1 ? a.slice(1).map((b) => s(b).toLowerCase()) : c.srv.commandNames();
    const out: [Reply, Reply][] = [];
    for (const n of names) {
      const d = c.srv.commandDocs(n);
      if (d !== undefined) out.push([R.bulk(n), d]);
    }
    return R.map(out);
  }
  if (sub === 'GETKEYS') {
    if (a.length < 3) throw new RespError("ERR wrong number of arguments for 'command|getkeys' command");
    return R.array(c.srv.commandKeys(a.slice(1)).map((b) => R.bulk(b)));
  }
  throw new RespError(`ERR unknown subcommand '${s(a[0])}'. Try COMMAND HELP.`);
}

export async function config(c: Ctx, a: Buffer[]): Promise<Reply> {
  const sub = word(a[0]);
  if (sub === 'GET') {
    if (a.length < 2) throw new RespError("ERR wrong number of arguments for 'config|get' command");
    const seen = new Map<string, string>();
    for (const p of a.slice(1)) for (const [k, v] of c.srv.configGet(s(p))) seen.set(k, v);
    return R.map([...seen].map(([k, v]) => [R.bulk(k), R.bulk(v)]));
  }
  if (sub === 'SET') {
    if (a.length < 3 || a.length % 2 !== 1) throw new RespError("ERR wrong number of arguments for 'config|set' command");
    for (let i = 1; i < a.length; i += 2) await c.srv.configSet(s(a[i]).toLowerCase(), s(a[i + 1]));
    return R.ok;
  }
  if (sub === 'RESETSTAT') {
    c.srv.resetStats();
    return R.ok;
  }
  if (sub === 'REWRITE') throw new RespError('ERR CONFIG REWRITE is not supported: Beacon takes its settings from flags (see docs/resp.md)');
  throw new RespError(`ERR unknown subcommand '${s(a[0])}'. Try CONFIG HELP.`);
}

export const dbsize = (c: Ctx): Reply => R.int(c.srv.dbsize(c.conn));

export function keys(c: Ctx, a: Buffer[]): Reply {
  return R.array(c.srv.keys(c.conn, s(a[0])).map((k) => R.bulk(k)));
}

export function scan(c: Ctx, a: Buffer[]): Reply {
  let match: string | undefined;
  let count = 10;
  let type: string | undefined;
  for (let i = 1; i < a.length; i++) {
    const w = word(a[i]);
    if (w === 'MATCH' && a[i + 1] !== undefined) match = s(a[++i]);
    else if (w === 'COUNT' && a[i + 1] !== undefined) {
      count = intArg(a[++i]);
      if (count < 1) throw new RespError(SYNTAX);
    } else if (w === 'TYPE' && a[i + 1] !== undefined) type = s(a[++i]).toLowerCase();
    else throw new RespError(SYNTAX);
  }
  const [next, found] = c.srv.scan(c.conn, (a[0] as Buffer).toString('latin1'), count, match, type);
  return R.array([R.bulk(next), R.array(found.map((k) => R.bulk(k)))]);
}
void scanArgs;

export function randomkey(c: Ctx): Reply {
  const k = c.srv.randomKey(c.conn);
  return k === undefined ? R.null : R.bulk(k);
}

export async function flushall(c: Ctx, a: Buffer[]): Promise<Reply> {
  const w = word(a[0]);
  if (a.length > 1 || (a[0] !== undefined && w !== 'SYNC' && w !== 'ASYNC')) throw new RespError(SYNTAX);
  await c.srv.flushAll(c.conn);
  return R.ok;
}

/**
 * DEBUG PROTOCOL <type>: one reply of each RESP3 type, the values Redis's debug.c sends, so a
 * client library can test its parser against Beacon (RESP2 clients get the RESP2 forms).
 */
function debugProtocol(c: Ctx, type: string): Reply {
  const n = (i: number): Reply => R.int(i);
  switch (type) {
    case 'STRING':
      return R.bulk('Hello World');
    case 'INTEGER':
      return R.int(12345);
    case 'DOUBLE':
      return R.double(3.141);
    case 'BIGNUM':
      return { t: 'bignum', v: '1234567999999999999999999999999999999' };
    case 'NULL':
      return R.null;
    case 'ARRAY':
      return R.array([n(0), n(1), n(2)]);
    case 'SET':
      return R.set([n(0), n(1), n(2)]);
    case 'MAP':
      return R.map([0, 1, 2].map((i) => [n(i), R.bool(i === 1)]));
    case 'ATTRIB':
      return { t: 'attribute', attrs: [[R.bulk('key-popularity'), R.array([R.bulk('key:123'), n(90)])]], v: R.bulk('Some real reply following the attribute') };
    case 'PUSH':
      if (c.conn.protocol !== 3) throw new RespError('ERR RESP2 is not supported by this command');
      c.conn.push(R.push([R.bulk('server-cpu-usage'), n(42)]));
      return R.bulk('Some real reply following the push reply');
    case 'TRUE':
      return R.bool(true);
    case 'FALSE':
      return R.bool(false);
    case 'VERBATIM':
      return R.verbatim('This is a verbatim\nstring');
    default:
      throw new RespError("ERR Wrong protocol type name. Please use one of the following: string|integer|double|bignum|null|array|set|map|attrib|push|verbatim|true|false");
  }
}

/**
 * DEBUG (administrators only): `SET-ACTIVE-EXPIRE 0|1` stops or resumes the cache tier's active
 * expiry (keys then expire only when touched, as Redis's tests of lazy expiry need);
 * `PROTOCOL <type>` answers one reply of a RESP3 type. No other DEBUG subcommand is built.
 */
export function debug(c: Ctx, a: Buffer[]): Reply {
  const sub = word(a[0]);
  if (sub === 'SET-ACTIVE-EXPIRE' && a.length === 2) {
    const v = s(a[1] as Buffer);
    if (v !== '0' && v !== '1') throw new RespError(SYNTAX);
    c.srv.setActiveExpire(v === '1');
    return R.ok;
  }
  if (sub === 'PROTOCOL' && a.length === 2) return debugProtocol(c, word(a[1]));
  if (sub === 'HELP') return R.array(['DEBUG <subcommand> [<arg> ...]', 'SET-ACTIVE-EXPIRE <0|1>', 'PROTOCOL <type>'].map((x) => R.simple(x)));
  throw new RespError(`ERR unknown subcommand or wrong number of arguments for '${s(a[0] as Buffer)}'. Try DEBUG HELP.`);
}

/** A handler for a Redis command Beacon knows but does not run over RESP: an error saying what to use. */
export function notHere(name: string, instead: string): (c: Ctx, a: Buffer[]) => Reply {
  return () => {
    throw new RespError(`ERR ${name} is not available on Beacon's RESP port: ${instead}`);
  };
}

// --- pub/sub -------------------------------------------------------------------------------------

function subscribeGeneric(pattern: boolean) {
  return (c: Ctx, a: Buffer[]): Reply => {
    const kind = pattern ? 'psubscribe' : 'subscribe';
    for (const b of a) {
      const ch = b.toString('latin1');
      c.srv.subscribe(c.conn, ch, pattern);
      c.conn.push(R.push([R.bulk(kind), R.bulk(b), R.int(c.conn.channels.size + c.conn.patterns.size)]));
    }
    return NO_REPLY;
  };
}
export const subscribe = subscribeGeneric(false);
export const psubscribe = subscribeGeneric(true);

function unsubscribeGeneric(pattern: boolean) {
  return (c: Ctx, a: Buffer[]): Reply => {
    const kind = pattern ? 'punsubscribe' : 'unsubscribe';
    const set = pattern ? c.conn.patterns : c.conn.channels;
    const targets = a.length > 0 ? a.map((b) => b.toString('latin1')) : [...set];
    if (targets.length === 0) {
      c.conn.push(R.push([R.bulk(kind), R.null, R.int(c.conn.channels.size + c.conn.patterns.size)]));
    }
    for (const ch of targets) {
      c.srv.unsubscribe(c.conn, ch, pattern);
      c.conn.push(R.push([R.bulk(kind), R.bulk(Buffer.from(ch, 'latin1')), R.int(c.conn.channels.size + c.conn.patterns.size)]));
    }
    return NO_REPLY;
  };
}
export const unsubscribe = unsubscribeGeneric(false);
export const punsubscribe = unsubscribeGeneric(true);

/** Channels only the server publishes to (keyspace notifications); a client's PUBLISH could forge them. */
const SERVER_CHANNEL = /^__key(space|event)@/;

export function publish(c: Ctx, a: Buffer[]): Reply {
  const ch = a[0] as Buffer;
  if (SERVER_CHANNEL.test(ch.toString('latin1'))) {
    throw new RespError(`NOPERM '${c.conn.principal?.name ?? 'default'}' may not publish to '${ch.toString('utf8')}': keyspace notification channels are published by the server only`);
  }
  return R.int(c.srv.publish(ch, a[1] as Buffer));
}

/** PUBSUB HELP's lines (Redis 7's, for the subcommands Beacon answers). */
const PUBSUB_HELP = [
  'PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:',
  'CHANNELS [<pattern>]',
  "    Return the currently active channels matching a <pattern> (default: '*').",
  'NUMPAT',
  '    Return number of subscriptions to patterns.',
  'NUMSUB [<channel> ...]',
  '    Return the number of subscribers for the specified channels, excluding',
  '    pattern subscriptions(default: no channels).',
  'SHARDCHANNELS [<pattern>]',
  '    Return the currently active shard level channels matching a <pattern> (default: \'*\').',
  'SHARDNUMSUB [<shardchannel> ...]',
  '    Return the number of subscribers for the specified shard level channel(s)',
  'HELP',
  '    Prints this help.',
];

export function pubsub(c: Ctx, a: Buffer[]): Reply {
  const sub = word(a[0]);
  if (sub === 'CHANNELS') return R.array(c.srv.pubsubChannels(c.conn, a[1] === undefined ? undefined : a[1].toString('latin1')).map((x) => R.bulk(Buffer.from(x, 'latin1'))));
  if (sub === 'NUMSUB') return R.map(a.slice(1).map((b) => [R.bulk(b), R.int(c.srv.pubsubNumsub(c.conn, b.toString('latin1')))]));
  if (sub === 'NUMPAT') return R.int(c.srv.pubsubNumpat());
  if (sub === 'SHARDCHANNELS') return R.array([]);
  if (sub === 'SHARDNUMSUB') return R.map(a.slice(1).map((b) => [R.bulk(b), R.int(0)]));
  if (sub === 'HELP' && a.length === 1) return R.array(PUBSUB_HELP.map((l) => R.simple(l)));
  throw new RespError(`ERR unknown subcommand '${s(a[0])}'. Try PUBSUB HELP.`);
}

/** A marker reply: the handler already sent its replies as pushes (SUBSCRIBE with many channels). */
export const NO_REPLY: Reply = { t: 'simple', v: '\u0000noreply' };

/** FUNCTION: Beacon runs no server-side functions; FLUSH and LIST answer as for an empty library set. */
export function fn(_c: Ctx, a: Buffer[]): Reply {
  const sub = word(a[0]);
  if (sub === 'FLUSH') return R.ok;
  if (sub === 'LIST') return R.array([]);
  throw new RespError(`ERR FUNCTION ${s(a[0]).toUpperCase()} is not supported: Beacon runs no server-side functions or scripts`);
}
