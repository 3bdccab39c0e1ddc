#!/usr/bin/env node
/** The `beacon` command line: `serve`, and client commands that talk to a node over HTTP. */
import { Command } from 'commander';
import { VERSION } from '../node/index.js';
import { registerServeCommand } from './serve.js';

const program = new Command();
program.name('beacon').description('Beacon: versioned keys, watches, leases and configs').version(VERSION);
registerServeCommand(program);

program.parseAsync(process.argv).catch((err: unknown) => {
  process.stderr.write(`beacon: ${(err as Error).message}\n`);
  process.exit(1);
});
