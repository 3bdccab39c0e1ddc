/** Test and benchmark helper: bounding a promise in time. */

/**
 * `p`, or a rejection with `timed out after <ms> ms` when it has not settled within `ms`
 * (the timer is cleared either way).
 */
export function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
    }),
  ]);
}
