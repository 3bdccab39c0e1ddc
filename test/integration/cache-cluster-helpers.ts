/** Helpers of the cache cluster tests (test/integration/cache-cluster-*.test.ts). */
import { Redis } from 'ioredis';
import type { ServerProcess } from '../helpers/node.js';
import { eventually } from '../helpers/postgres.js';

/**
 * Per slot the RESP port of its primary, from `CLUSTER SLOTS` on `c` (-1 for a slot no range
 * covers). The connection becomes cluster-aware: it gets MOVED from then on.
 */
export async function slotPorts(c: Redis): Promise<Int32Array> {
  const map = new Int32Array(16_384).fill(-1);
  const raw = (await c.call('CLUSTER', 'SLOTS')) as [number, number, [string, number]][];
  for (const [start, end, [, port]] of raw) map.fill(port, start, end + 1);
  return map;
}

/**
 * An ioredis client of the node on `port` (127.0.0.1) that fails a command after 8 s rather than
 * hanging, retries once, and ignores 'error' events (a node a test kills); pushed on `clients`
 * so the test can disconnect them all.
 */
export function redisClient(port: number, clients: { disconnect(): void }[], extra: Record<string, unknown> = {}): Redis {
  const c = new Redis({ port, host: '127.0.0.1', maxRetriesPerRequest: 1, connectTimeout: 2000, commandTimeout: 8000, ...extra });
  c.on('error', () => undefined);
  clients.push(c);
  return c;
}

/** The RESP port `beacon serve` printed on stderr (`beacon RESP listening on redis://…:port`). */
export async function respPortOf(p: ServerProcess): Promise<number> {
  let port = 0;
  await eventually('the RESP listening line', () => {
    const m = /beacon RESP listening on rediss?:\/\/[^\s]+:(\d+)/.exec(p.stderr());
    if (m !== null) port = Number(m[1]);
    return m !== null;
  });
  return port;
}
