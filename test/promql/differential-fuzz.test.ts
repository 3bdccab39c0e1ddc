// Randomized differential test: random series and random well-typed PromQL expressions are
// evaluated by Beacon's engine, and the real Prometheus (`promtool test rules`, Debian 2.42)
// checks every answer (see differential.ts). Skipped, with a message, without promtool.
//
//   BEACON_FUZZ_SEED=1234      replay one seed (printed by every run)
//   BEACON_FUZZ_SEEDS=20       run that many seeds (from BEACON_FUZZ_SEED, or a random one)
//   BEACON_FUZZ_EXPRS=600      expressions per seed (default 400)
//   BEACON_FUZZ_KEEP=dir       write each seed's generated evaluation file there
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { formatDivergences, runDifferential } from './differential.js';

const promtool = spawnSync('promtool', ['--version'], { encoding: 'utf8' });
const skip = promtool.error ? 'promtool is not installed (Debian package "prometheus"); no differential test' : false;

const env = process.env;
const firstSeed = env.BEACON_FUZZ_SEED ? Number(env.BEACON_FUZZ_SEED) : Math.floor(Math.random() * 2 ** 31);
const seeds = Number(env.BEACON_FUZZ_SEEDS ?? 1);
const expressions = Number(env.BEACON_FUZZ_EXPRS ?? 400);

describe('Beacon PromQL vs promtool: random differential test', { skip }, () => {
  for (let i = 0; i < seeds; i++) {
    const seed = firstSeed + i;
    it(`seed ${seed} (replay: BEACON_FUZZ_SEED=${seed})`, { timeout: 120_000 }, async () => {
      const r = await runDifferential({ seed, expressions, promtoolTimeoutMs: 60_000 });
      if (env.BEACON_FUZZ_KEEP) writeFileSync(join(env.BEACON_FUZZ_KEEP, `fuzz-${seed}.test`), r.testFile);
      console.log(`seed ${seed}: ${r.expressions} expressions, ${r.checks} promtool checks (${r.nanChecks} NaN-safe, ${r.beaconErrors} expected errors), `
        + `${r.rounding} last-bit differences (documented/known), ${r.ties} topk ties (known), `
        + `${r.divergences.length} divergences; promtool ${r.promtoolMs} ms, total ${r.totalMs} ms`);
      assert.equal(r.divergences.length, 0, `seed ${seed} (replay: BEACON_FUZZ_SEED=${seed}): ${r.divergences.length} divergences from Prometheus:\n${formatDivergences(r)}`);
    });
  }
});
