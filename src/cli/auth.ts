/**
 * `beacon login` (keeps the login in a 0600 file, see session.ts), `beacon logout`, and
 * `beacon token` (a bearer token for curl and scripts).
 */
import type { Command } from 'commander';
import type { LoginResponse } from '../../client/index.js';
import { InvalidArgumentError, UnauthenticatedError } from '../errors.js';
import { contextOf, credentialOf, note, out, outJson, readStdin } from './context.js';
import { loginAgainHint } from './session.js';

/** Reads a password from the terminal without echoing it. */
function promptPassword(prompt: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const stdin = process.stdin;
    process.stderr.write(prompt);
    stdin.setRawMode(true);
    stdin.resume();
    stdin.setEncoding('utf8');
    let value = '';
    const done = (err?: Error): void => {
      stdin.setRawMode(false);
      stdin.pause();
      stdin.off('data', onData);
      process.stderr.write('\n');
      if (err) reject(err);
      else resolve(value);
    };
    const onData = (chunk: string): void => {
      for (const ch of chunk) {
        if (ch === '\r' || ch === '\n') return done();
        if (ch === '\u0003') return done(new InvalidArgumentError('login cancelled'));
        if (ch === '\u007f' || ch === '\b') value = value.slice(0, -1);
        else value += ch;
      }
    };
    stdin.on('data', onData);
  });
}

/** Adds `login`, `logout` and `token`. */
export function registerAuthCommands(program: Command): void {
  program
    .command('login')
    .description('log in and keep the login for this endpoint (12 h by default) in a file only you can read')
    .requiredOption('--user <name>', 'the user name')
    .addHelpText(
      'after',
      '\nThe password is read from stdin when it is piped, otherwise asked for without echo.\n' +
        'Later commands without --token or BEACON_TOKEN use the saved login, renewing their short-lived\n' +
        'token as needed; `beacon token` prints one for curl. When stdout is not a terminal the token\n' +
        'is also printed, for export BEACON_TOKEN=$(beacon login --user NAME) (it lasts --token-ttl only).',
    )
    .action(async (o: { user: string }, cmd: Command) => {
      const { client, json, endpoint } = contextOf(cmd);
      // A piped password file usually ends with a newline that is not part of the password.
      const password = process.stdin.isTTY ? await promptPassword(`password for ${o.user}: `) : (await readStdin('the password')).toString('utf8').replace(/\r?\n$/, '');
      const res = (await client.login(o.user, password)) as LoginResponse & { refreshToken?: string; refreshExpiresAt?: string };
      let saved: string | undefined;
      if (typeof res.refreshToken === 'string' && typeof res.refreshExpiresAt === 'string') {
        const { saveSession } = await import('./session.js');
        saved = saveSession(cmd.optsWithGlobals<{ endpoint: string }>().endpoint, {
          user: res.user,
          token: res.token,
          expiresAt: Date.parse(res.expiresAt),
          refreshToken: res.refreshToken,
          refreshExpiresAt: Date.parse(res.refreshExpiresAt),
        });
      }
      if (json) {
        outJson(res);
        return;
      }
      // On a terminal the token is not shown (it would stay in the scroll-back); in $(…) it is the output.
      if (!process.stdout.isTTY) out(res.token);
      const roles = res.roles.join(', ') || 'no roles';
      note(
        saved !== undefined
          ? `logged in as ${res.user} (${roles}) to ${endpoint} until ${res.refreshExpiresAt}; saved in ${saved} (mode 0600). ` +
              'Commands without --token or BEACON_TOKEN use it; `beacon token` prints a bearer token for curl.'
          : `logged in as ${res.user} (${roles}); the token expires at ${res.expiresAt}. Use it with --token or BEACON_TOKEN.`,
      );
    });

  program
    .command('logout')
    .description('forget the saved login for this endpoint')
    .action(async (_o: unknown, cmd: Command) => {
      const { removeSession } = await import('./session.js');
      const endpoint = cmd.optsWithGlobals<{ endpoint: string }>().endpoint;
      note(removeSession(endpoint) ? `logged out of ${endpoint}` : `no saved login for ${endpoint}`);
    });

  program
    .command('token')
    .description('print a bearer token from the saved login (renewed when needed), e.g. curl -H "authorization: Bearer $(beacon token)"')
    .action(async (_o: unknown, cmd: Command) => {
      const { token, source } = credentialOf(cmd);
      if (token === undefined) throw new UnauthenticatedError(`not logged in to ${cmd.optsWithGlobals<{ endpoint: string }>().endpoint}; ${loginAgainHint().replace('log in again', 'log in')}`, { reason: 'missing' });
      if (source === 'env' || source === 'option') note('printing the token given by ' + (source === 'env' ? 'BEACON_TOKEN' : '--token') + ', not the saved login');
      out(token);
    });
}
