/** The Redis protocol face of Beacon: the RESP2/RESP3 parser and writer, the command table and the listener. */
export { RespParser, RESP_LIMITS, UNAUTH_LIMITS, splitArgs, encode, encodeReply, formatDouble, R, ReplyWriter, writeReply } from './protocol.js';
export type { ParseResult, Protocol, Reply } from './protocol.js';
export { RespServer, DEFAULT_RESP_PORT } from './server.js';
export type { RespServerOptions } from './server.js';
export { COMMANDS } from './commands.js';
export type { CommandSpec } from './commands.js';
export { decodeDurableHash, encodeDurableHash } from './keyspace.js';
