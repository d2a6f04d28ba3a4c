import net from 'node:net';

export const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

/** PING over a plain socket: no client library needed to know whether Redis answers. */
function ping(url: string, timeoutMs = 2_000): Promise<void> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: hostname.replace(/^\[|\]$/g, ''), port: Number(port || 6379) });
    const fail = (err: Error) => {
      socket.destroy();
      reject(err);
    };
    socket.setTimeout(timeoutMs, () => fail(new Error(`no answer within ${timeoutMs} ms`)));
    socket.once('error', fail);
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.once('data', (data) => {
      socket.end();
      if (data.toString().startsWith('+PONG')) resolve();
      else reject(new Error(`unexpected answer ${JSON.stringify(data.toString().trim())}`));
    });
  });
}

/**
 * The Redis the shared-rate-limit tests need (TEST_REDIS_URL, default the machine's). Under CI it is
 * required: unreachable fails the run. On a developer's machine without one, those tests are
 * reported as skipped, loudly.
 */
export async function redisForTests(): Promise<string | null> {
  try {
    await ping(REDIS_URL);
    return REDIS_URL;
  } catch (err) {
    if (process.env.CI) throw new Error(`Redis at ${REDIS_URL} is required under CI and unreachable: ${(err as Error).message}`);
    process.stderr.write(`\n!!! Redis at ${REDIS_URL} is unreachable: the shared rate-limit tests are SKIPPED (CI would fail).\n\n`);
    return null;
  }
}
