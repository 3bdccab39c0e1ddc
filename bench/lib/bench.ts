/** The shape of one benchmark and what the runner hands it. */
import { mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import type { BenchOptions } from './options.js';
import { finishFigures, type BenchResult, type Figure } from './report.js';

/** What a benchmark gets from the runner. */
export interface BenchContext {
  opts: BenchOptions;
  /** Progress lines on stderr (the tables go to stdout). */
  log: (msg: string) => void;
  /** A fresh directory under the run's temporary root (removed when the suite ends). */
  tempDir: (prefix: string) => string;
}

/** One benchmark: a name for the command line, a title for the table, and its run. */
export interface Benchmark {
  name: string;
  title: string;
  run: (ctx: BenchContext) => Promise<BenchResult>;
}

/** Builds a {@link BenchContext} whose temporary dirs live under `root`. */
export function createContext(opts: BenchOptions, root: string): BenchContext {
  return {
    opts,
    log: (msg) => process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${msg}\n`),
    tempDir: (prefix) => mkdtempSync(join(root, prefix)),
  };
}

/** Assembles a {@link BenchResult}. */
export function result(b: Pick<Benchmark, 'name' | 'title'>, params: Record<string, unknown>, figures: Figure[], notes: string[]): BenchResult {
  return { name: b.name, title: b.title, params, figures: finishFigures(figures), notes, finishedAt: new Date().toISOString() };
}

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Rounds to `d` decimals, for notes. */
export function round(v: number, d = 2): number {
  const f = 10 ** d;
  return Math.round(v * f) / f;
}
