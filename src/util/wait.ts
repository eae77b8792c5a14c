/** The one `sleep` and the one wait-until helper (product code, tests, lab and bench share them). */

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Polls `cond` every `intervalMs` until it holds; rejects with `timed out waiting for <what>`
 * after `timeoutMs`. Resolves with the milliseconds it waited (monotonic).
 */
export async function waitUntil(
  what: string,
  cond: () => boolean | Promise<boolean>,
  timeoutMs = 5_000,
  intervalMs = 20,
): Promise<number> {
  const start = performance.now();
  while (!(await cond())) {
    if (performance.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await sleep(intervalMs);
  }
  return performance.now() - start;
}
