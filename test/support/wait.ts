/** Waiting in tests: a pause, and polling until something holds. */

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
}

/**
 * Resolves once `predicate` holds, checking every `pollMs`; throws `timed out waiting for ${what}`
 * when it still does not after `ms`.
 */
export async function waitFor(
  predicate: () => boolean | Promise<boolean>, ms = 5000, what = 'condition', pollMs = 20,
): Promise<void> {
  const until = Date.now() + ms;
  while (!(await predicate())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(pollMs);
  }
}
