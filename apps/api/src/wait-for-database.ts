import type { Logger } from 'pino';

/**
 * Waits until the database answers, retrying with capped exponential backoff and saying why on
 * every attempt. A service started before its database (a deploy, a host reboot, a database
 * failover) comes up by itself when the database does, instead of exiting and being restarted
 * in a loop by its supervisor.
 */
export async function waitForDatabase(
  ping: () => Promise<void>,
  log: Logger,
  options: { firstDelayMs?: number; maxDelayMs?: number } = {},
): Promise<void> {
  const maxDelayMs = options.maxDelayMs ?? 10_000;
  let delayMs = options.firstDelayMs ?? 500;
  for (let attempt = 1; ; attempt++) {
    try {
      await ping();
      if (attempt > 1) log.info({ attempt }, 'the database answers; starting');
      return;
    } catch (err) {
      const e = err as { code?: string; message?: string };
      log.error(
        { attempt, code: e.code, reason: e.message, retryInMs: delayMs },
        'the database is unreachable at start; retrying',
      );
      await new Promise((resolve) => setTimeout(resolve, delayMs));
      delayMs = Math.min(maxDelayMs, delayMs * 2);
    }
  }
}
