/** Seeded randomness for randomized tests, so a failure can be replayed from the printed seed. */

/** A small seeded PRNG (mulberry32): returns a function yielding numbers in [0, 1). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The seed of this run: `BEACON_TEST_SEED` when given, else one derived from the clock. */
export const TEST_SEED = Number(process.env.BEACON_TEST_SEED ?? Date.now() % 1_000_000);
