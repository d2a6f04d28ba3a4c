import { Redis } from 'ioredis';
import type { Logger } from 'pino';

export interface RateLimitRedis {
  readonly client: Redis;
  close(): Promise<void>;
}

/**
 * The Redis the instances share their rate limits through (REDIS_URL). A command fails at once
 * while Redis is away instead of queueing (the limits then let requests through, logged), so an
 * outage of Redis never holds up an order; the client reconnects by itself. The start waits a
 * moment for the first connection, so the limits are shared from the first request.
 */
export async function connectRateLimitRedis(url: string, log: Logger): Promise<RateLimitRedis> {
  const client = new Redis(url, {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: 2_000,
    commandTimeout: 500,
    retryStrategy: (attempt) => Math.min(attempt * 200, 2_000),
  });
  let down = false;
  client.on('error', (err) => {
    if (down) return;
    down = true;
    log.warn({ err: { message: err.message } }, 'Redis (REDIS_URL) does not answer: rate limits are not enforced until it does');
  });
  client.on('ready', () => {
    if (down) log.info('Redis (REDIS_URL) answers again: rate limits are shared again');
    down = false;
  });
  try {
    await client.connect();
  } catch {
    // Logged by the error handler above; the client keeps reconnecting.
  }
  return {
    client,
    async close() {
      client.disconnect();
    },
  };
}
