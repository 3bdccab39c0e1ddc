/**
 * `beacon lock NAME [--ttl S] [-- command args…]`: runs a command while holding a distributed
 * lock (etcdctl `lock` with a command, flock(1) across machines). The lock is held with a
 * session lease kept alive by this process: when the command ends, or this process gets SIGINT
 * or SIGTERM (forwarded to the command), the lock is released at once; if this process is
 * SIGKILLed, the lease expires after its TTL and the next waiter acquires.
 */
import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import type { Command } from 'commander';
import type { LockInfo, Session } from '../../client/index.js';
import { ConflictError } from '../errors.js';
import { contextOf, note, out, outJson, parsePositive } from './context.js';
import { CliExit, ExitCode } from './exit-codes.js';

/** The session TTL when `--ttl` is not given, in seconds (the server's default for lock requests). */
export const DEFAULT_LOCK_TTL_SECONDS = 30;

/** Exit status of a command killed by `signal`, as shells report it (128 + the signal number). */
export function signalExitCode(signal: NodeJS.Signals): number {
  return 128 + (constants.signals[signal] ?? 0);
}

/**
 * Traps SIGINT, SIGTERM and SIGHUP for the life of a command: each one is passed to `onSignal`
 * (instead of ending this process). `dispose()` restores the default behaviour.
 */
export function trapSignals(onSignal: (signal: NodeJS.Signals) => void): { dispose: () => void } {
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  const handlers = signals.map((s) => {
    const h = (): void => onSignal(s);
    process.on(s, h);
    return [s, h] as const;
  });
  return { dispose: () => handlers.forEach(([s, h]) => process.off(s, h)) };
}

/** Releases the lock and ends the session (revoking the lease); a failure is reported, not thrown: the lease expires anyway. */
async function releaseAll(session: Session, release: () => Promise<unknown>, name: string): Promise<void> {
  try {
    await release();
  } catch (err) {
    note(`could not release lock '${name}' (${(err as Error).message}); it is released when lease ${session.lease} expires in at most ${session.ttl}s`);
  }
  try {
    await session.close();
  } catch {
    // reported above or harmless: the lease expires after its TTL
  }
}

function describeLock(lock: LockInfo): string {
  return `lock '${lock.name}' held (key ${lock.key}, fencing token ${lock.fencingToken}, lease ${lock.lease})`;
}

/** Adds the `lock` command. */
export function registerLockCommand(program: Command): void {
  program
    .command('lock')
    .description('hold a distributed lock while a command runs (or until Ctrl-C without one); waiters queue in FIFO order')
    .argument('<name>', 'the lock name (a key prefix)')
    .argument('[command...]', 'the command to run while holding the lock, after --')
    .option('--ttl <seconds>', 'TTL of the lease that holds the lock: how long it outlives this process if it is killed', parsePositive, DEFAULT_LOCK_TTL_SECONDS)
    .option('--wait-timeout <ms>', 'give up (exit 5) if the lock is not acquired within this many milliseconds', parsePositive)
    .addHelpText(
      'after',
      `
The command gets BEACON_LOCK_NAME, BEACON_LOCK_KEY, BEACON_LOCK_LEASE and BEACON_FENCING_TOKEN
(pass the fencing token to what the lock protects). The exit status is the command's.

Examples:
  beacon lock jobs/nightly -- ./run-nightly.sh --full
  beacon lock deploy --ttl 10 -- sh -c 'echo "token $BEACON_FENCING_TOKEN"; make deploy'`,
    )
    .action(async (name: string, command: string[], o: { ttl: number; waitTimeout?: number }, cmd: Command) => {
      const { client, json } = contextOf(cmd);
      // Until the command runs, a signal means "stop waiting"; after, it is forwarded.
      const ctl = new AbortController();
      let forward: ((s: NodeJS.Signals) => void) | undefined;
      let interrupted: NodeJS.Signals | undefined;
      const trap = trapSignals((s) => {
        if (forward !== undefined) forward(s);
        else if (interrupted === undefined) {
          interrupted = s;
          ctl.abort(new DOMException('interrupted', 'AbortError'));
        } else process.exit(ExitCode.Interrupted); // a second Ctrl-C while leaving: go now
      });
      const session = await client.session({ ttl: o.ttl, signal: ctl.signal }).catch((err: unknown) => {
        trap.dispose();
        if (ctl.signal.aborted) throw new CliExit('interrupted while starting a session', ExitCode.Interrupted);
        throw err;
      });
      const mutex = session.mutex(name);
      let lock: LockInfo;
      try {
        if (!json) note(`waiting for lock '${name}' (lease ${session.lease}, TTL ${session.ttl}s)`);
        lock = await mutex.lock({ signal: ctl.signal, timeoutMs: o.waitTimeout });
      } catch (err) {
        trap.dispose();
        await session.close().catch(() => undefined);
        if (ctl.signal.aborted && !(err instanceof ConflictError)) throw new CliExit(`interrupted while waiting for lock '${name}'`, ExitCode.Interrupted);
        throw err;
      }

      if (command.length === 0) {
        // No command: hold the lock until Ctrl-C (or until it is lost).
        if (json) outJson(lock);
        else out(describeLock(lock));
        const lost = new Promise<Error>((resolve) => session.once('lost', resolve));
        const stop = new Promise<void>((resolve) => (forward = () => resolve()));
        const why = await Promise.race([lost, stop.then(() => undefined)]);
        trap.dispose();
        await releaseAll(session, () => mutex.unlock(), name);
        if (why !== undefined) throw new CliExit(`lost lock '${name}': ${why.message}`, ExitCode.Unavailable);
        if (!json) note(`released lock '${name}'`);
        return;
      }

      if (!json) note(`${describeLock(lock)}; running ${command.join(' ')}`);
      const [file, ...args] = command as [string, ...string[]];
      const child = spawn(file, args, {
        stdio: 'inherit',
        env: {
          ...process.env,
          BEACON_LOCK_NAME: name,
          BEACON_LOCK_KEY: lock.key,
          BEACON_LOCK_LEASE: String(lock.lease),
          BEACON_FENCING_TOKEN: String(lock.fencingToken),
        },
      });
      forward = (s) => {
        if (child.exitCode === null && child.signalCode === null) child.kill(s);
      };
      let lostError: Error | undefined;
      const onLost = (err: Error): void => {
        // The lock can no longer be trusted: stop the command rather than let it run unguarded.
        lostError = err;
        note(`lost lock '${name}' (${err.message}); stopping the command`);
        forward?.('SIGTERM');
        const t = setTimeout(() => forward?.('SIGKILL'), 10_000);
        t.unref();
      };
      session.once('lost', onLost);
      const result = await new Promise<{ code: number | null; signal: NodeJS.Signals | null; error?: Error }>((resolve) => {
        child.once('error', (error) => resolve({ code: null, signal: null, error }));
        child.once('exit', (code, signal) => resolve({ code, signal }));
      });
      trap.dispose();
      session.off('lost', onLost);
      await releaseAll(session, () => mutex.unlock(), name);
      if (result.error !== undefined) {
        const missing = (result.error as NodeJS.ErrnoException).code === 'ENOENT';
        throw new CliExit(missing ? `command not found: ${file}` : `could not run ${file}: ${result.error.message}`, missing ? 127 : 126);
      }
      if (lostError !== undefined) throw new CliExit(`lost lock '${name}' while the command ran: ${lostError.message}`, ExitCode.Unavailable);
      const code = result.signal !== null ? signalExitCode(result.signal) : (result.code ?? 1);
      if (!json) note(`released lock '${name}'; the command exited ${result.signal !== null ? `on ${result.signal}` : `with ${code}`}`);
      if (code !== 0) throw new CliExit('', code);
    });
}
