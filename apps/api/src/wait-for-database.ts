import type { Logger } from 'pino';

/**
 * Waits until the database answers, retrying with capped exponential backoff and saying why on
 * every attempt. The service already listens meanwhile (answering 503 to what needs the
 * database), so a service started before its database (a deploy, a host reboot, a database
 * failover) comes up by itself when the database does, instead of exiting and being restarted
 * in a loop by its supervisor. Rejects only when `signal` aborts (the service is closing).
 */
export async function waitForDatabase(
  ping: () => Promise<void>,
  log: Logger,
  options: { firstDelayMs?: number; maxDelayMs?: number; signal?: AbortSignal } = {},
): Promise<void> {
  const maxDelayMs = options.maxDelayMs ?? 5_000;
  let delayMs = options.firstDelayMs ?? 500;
  for (let attempt = 1; ; attempt++) {
    options.signal?.throwIfAborted();
    try {
      await ping();
      if (attempt > 1) log.info({ attempt }, 'the database answers; starting');
      return;
    } catch (err) {
      options.signal?.throwIfAborted();
      const e = err as { code?: string; message?: string };
      log.error(
        { attempt, code: e.code, reason: e.message, retryInMs: delayMs },
        'the database is unreachable at start; retrying',
      );
      await sleep(delayMs, options.signal);
      delayMs = Math.min(maxDelayMs, delayMs * 2);
    }
  }
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', aborted);
    };
    const aborted = () => {
      done();
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      done();
      resolve();
    }, ms);
    signal?.addEventListener('abort', aborted, { once: true });
  });
}
