/**
 * The baseline of get-http: a trivial Node `http` server, run as its own process, that answers
 * every request with the fixed JSON body in BENCH_TRIVIAL_BODY. Prints `listening on <url>`.
 */
import { createServer } from 'node:http';

const body = Buffer.from(process.env.BENCH_TRIVIAL_BODY ?? '{"ok":true}');
const server = createServer((_req, res) => {
  res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': body.length });
  res.end(body);
});
// Same keep-alive behaviour as fastify's defaults, so the comparison is about request handling.
server.keepAliveTimeout = 72_000;
server.listen(0, '127.0.0.1', () => {
  const addr = server.address();
  const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
  process.stderr.write(`trivial server listening on http://127.0.0.1:${port}\n`);
});
process.on('SIGTERM', () => process.exit(0));
