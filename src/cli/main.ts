#!/usr/bin/env node
/** The `beacon` command line: `serve`, and client commands that talk to a node over HTTP (docs/cli.md). */
import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { BeaconError, ErrorCode } from '../errors.js';
import { registerAdminCommands } from './admin.js';
import { registerAuthCommands } from './auth.js';
import { registerConfigCommands } from './config.js';
import { SERVE_DESCRIPTION, addGlobalOptions, credentialOf, resolveCredentials, type TokenSource } from './context.js';
import { registerElectCommand } from './elect.js';
import { CliExit, ExitCode, exitCodeFor } from './exit-codes.js';
import { registerImportCommand } from './import.js';
import { registerKvCommands } from './kv.js';
import { registerLeaseCommands } from './lease.js';
import { registerLockCommand } from './lock.js';
import { registerQueryCommand } from './query.js';
import { registerRulesCommands } from './rules.js';
import { registerRolloutCommands } from './rollout.js';
import { registerAlertsCommands } from './alerts.js';
import { registerSecurityCommands } from './security.js';
import { loginAgainHint } from './session.js';
import { registerSnapshotCommands } from './snapshot.js';
import { registerTxnCommand } from './txn.js';
import { registerWatchCommand } from './watch.js';

/** Client commands never need the server's modules (fastify, SQLite, pino), which take a while to load. */
const CLIENT_COMMANDS = new Set([
  'get', 'put', 'del', 'delete', 'ls', 'watch', 'history', 'diff', 'rollback', 'txn', 'lease', 'compact', 'status', 'snapshot', 'import', 'login',
  'lock', 'elect', 'user', 'role', 'apikey', 'audit', 'namespace', 'secrets', 'signing-key', 'logout', 'token',
  'query', 'rules', 'alerts',
  'rollout', // issue 16
]);

/** Commands that never use a credential: no saved login is loaded (or refreshed) for them. */
const NO_CREDENTIAL = new Set(['serve', 'login', 'logout', 'snapshot restore', 'rules check', 'rules test']);

function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version?: string };
    return pkg.version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
}

function describe(err: unknown): string {
  if (err instanceof BeaconError && err.code === ErrorCode.Unauthenticated && err.details?.reason === 'expired' && tokenSource !== 'login') {
    // The one hint for an expired token, whichever command met it (issue 10 item 15).
    const from = tokenSource === 'env' ? ' (BEACON_TOKEN holds it: unset it to use the saved login)' : tokenSource === 'option' ? ' (given with --token)' : '';
    return `the token has expired${from}; ${loginAgainHint()}`;
  }
  if (err instanceof BeaconError && err.code === ErrorCode.Unauthenticated && err.details?.reason === 'missing') {
    return `${err.message}; log in first: beacon login --user NAME`;
  }
  if (err instanceof BeaconError && err.code === ErrorCode.Unavailable && (err.details?.endpoint !== undefined || err.details?.endpoints !== undefined)) {
    return `${err.message} (is \`beacon serve\` running there? choose another with --endpoint or BEACON_ENDPOINT)`;
  }
  return err instanceof Error ? err.message : String(err);
}

/** Where the running command's credential came from (for the expired-token hint). */
let tokenSource: TokenSource = 'none';

async function main(argv: string[]): Promise<number> {
  const program = new Command();
  program
    .name('beacon')
    .description('Beacon: versioned keys, watches, leases and configs')
    .version(packageVersion())
    .exitOverride()
    // One prefix for every message (docs/cli.md): commander's own usage errors say `error: …`.
    .configureOutput({ writeErr: (str) => process.stderr.write(str.replace(/^error: /, 'beacon: ')) })
    .showHelpAfterError('(run with --help for usage)')
    .configureHelp({ showGlobalOptions: true });
  addGlobalOptions(program);
  program.hook('preAction', async (_program, action) => {
    const name = action.parent !== null && action.parent !== program ? `${action.parent.name()} ${action.name()}` : action.name();
    if (!NO_CREDENTIAL.has(name) && !NO_CREDENTIAL.has(action.name())) await resolveCredentials(action);
    tokenSource = credentialOf(action).source;
  });
  const args = argv.slice(2);
  if (args.includes('serve')) {
    const { registerServeCommand } = await import('./serve.js');
    registerServeCommand(program);
  } else if (!args.some((a) => CLIENT_COMMANDS.has(a))) {
    // Listed in `beacon --help`; the real command (fastify, SQLite, pino) loads only when it runs.
    program.command('serve').description(SERVE_DESCRIPTION);
  }
  registerKvCommands(program);
  registerWatchCommand(program);
  registerConfigCommands(program);
  registerTxnCommand(program);
  registerLeaseCommands(program);
  registerLockCommand(program);
  registerElectCommand(program);
  registerAdminCommands(program);
  registerSnapshotCommands(program);
  registerImportCommand(program);
  registerAuthCommands(program);
  registerSecurityCommands(program);
  registerQueryCommand(program); // issue 12: PromQL
  registerRulesCommands(program);
  registerAlertsCommands(program);
  registerRolloutCommands(program); // issue 16
  try {
    await program.parseAsync(argv);
    return ExitCode.Ok;
  } catch (err) {
    // commander has already printed its own usage message; --help and --version end with 0.
    if (err instanceof CommanderError) return err.exitCode === 0 ? ExitCode.Ok : ExitCode.Usage;
    // `beacon lock … -- cmd` passes on the command's exit status without a message of its own.
    if (!(err instanceof CliExit && err.message === '')) process.stderr.write(`beacon: ${describe(err)}\n`);
    return exitCodeFor(err);
  }
}

// `beacon ls | head` closes stdout early; that is not an error worth a stack trace.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(ExitCode.Ok);
  throw err;
});

main(process.argv).then(
  (code) => {
    // Leave the event loop to end by itself: `serve` keeps running after its action returns.
    process.exitCode = code;
    if (code !== ExitCode.Ok) process.exit(code);
  },
  (err: unknown) => {
    process.stderr.write(`beacon: ${describe(err)}\n`);
    process.exit(ExitCode.Internal);
  },
);
