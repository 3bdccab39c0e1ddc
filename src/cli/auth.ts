/** `beacon login`: trades a username and password for a token to use with `--token` / `BEACON_TOKEN`. */
import type { Command } from 'commander';
import { InvalidArgumentError } from '../errors.js';
import { contextOf, note, out, outJson, readStdin } from './context.js';

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

/** Adds the `login` command. */
export function registerAuthCommands(program: Command): void {
  program
    .command('login')
    .description('log in and print a token: export BEACON_TOKEN=$(beacon login --user admin)')
    .requiredOption('--user <name>', 'the user name')
    .addHelpText('after', '\nThe password is read from stdin when it is piped, otherwise asked for without echo.')
    .action(async (o: { user: string }, cmd: Command) => {
      const { client, json } = contextOf(cmd);
      // A piped password file usually ends with a newline that is not part of the password.
      const password = process.stdin.isTTY ? await promptPassword(`password for ${o.user}: `) : (await readStdin('the password')).toString('utf8').replace(/\r?\n$/, '');
      const res = await client.login(o.user, password);
      if (json) {
        outJson(res);
        return;
      }
      out(res.token);
      note(`logged in as ${res.user} (${res.roles.join(', ') || 'no roles'}); the token expires at ${res.expiresAt}. Use it with --token or BEACON_TOKEN.`);
    });
}
