/** Key names shared by the load generators and the benchmarks that seed their keys. */

/** The `n`-th key of a random key space (`<prefix>k00000` …): fixed width, so every key has the same size. */
export function randomSpaceKey(prefix: string, n: number): string {
  return `${prefix}k${String(n).padStart(5, '0')}`;
}
