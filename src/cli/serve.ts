/** `beacon serve`: runs one node in the foreground until SIGINT/SIGTERM. */
import type { Command } from 'commander';
import { startNode } from '../node/index.js';

function port(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new Error(`invalid port '${v}'`);
  return n;
}

/** Adds the `serve` command. */
export function registerServeCommand(program: Command): void {
  program
    .command('serve')
    .description('run a Beacon node (embedded SQLite in ./data by default)')
    .option('--data-dir <dir>', 'directory for the embedded store', process.env.BEACON_DATA_DIR ?? './data')
    .option('--backend <spec>', 'sqlite:PATH or postgres://… (default: SQLite in --data-dir)', process.env.BEACON_BACKEND)
    .option('--host <host>', 'address to bind', process.env.BEACON_HOST ?? '127.0.0.1')
    .option('--http-port <port>', 'HTTP port (0 picks a free one)', port, Number(process.env.BEACON_HTTP_PORT ?? 7379))
    .option('--max-value-bytes <bytes>', 'largest value in bytes', (v) => Number(v), 1024 * 1024)
    .option('--dev', 'development mode: no authentication (insecure)', false)
    .action(async (o: { dataDir: string; backend?: string; host: string; httpPort: number; maxValueBytes: number; dev: boolean }) => {
      if (o.dev) {
        process.stderr.write(
          '\n  ******************************************************************\n' +
            '  *  WARNING: beacon is running in --dev mode.                      *\n' +
            '  *  Authentication and authorisation are OFF. Never expose this   *\n' +
            '  *  node to a network you do not fully trust.                     *\n' +
            '  ******************************************************************\n\n',
        );
      }
      const node = await startNode({
        dataDir: o.dataDir,
        backend: o.backend,
        host: o.host,
        httpPort: o.httpPort,
        dev: o.dev,
        maxValueBytes: o.maxValueBytes,
      });
      process.stderr.write(
        `beacon listening on ${node.url} (HTTP API, watch at ${node.url.replace('http', 'ws')}/v1/watch)\n` +
          `beacon data: ${node.store.backend.description} (revision ${node.store.revision}, ${node.store.keyCount} keys)\n`,
      );
      let stopping = false;
      const shutdown = (signal: string): void => {
        if (stopping) return;
        stopping = true;
        node.logger.info({ signal }, 'shutting down');
        node.stop().then(
          () => process.exit(0),
          (err: unknown) => {
            node.logger.error({ err }, 'shutdown failed');
            process.exit(1);
          },
        );
      };
      process.on('SIGINT', () => shutdown('SIGINT'));
      process.on('SIGTERM', () => shutdown('SIGTERM'));
    });
}
