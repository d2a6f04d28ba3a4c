/**
 * Waits until `predicate` holds, polling; fails naming `what` after `timeoutMs`. For effects that
 * land after the reply (a relay marking an event delivered), which a test must wait for, not race.
 */
export async function eventually(predicate: () => boolean | Promise<boolean>, what: string, timeoutMs = 30_000, pollMs = 50): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, pollMs));
  }
}
