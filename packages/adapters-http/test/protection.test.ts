import type { FastifyInstance } from 'fastify';
import { afterEach, describe, expect, test } from 'vitest';
import { buildApp, createMetrics, type AppOptions, type HttpDeps } from '../src/index.ts';
import { windowMs } from '../src/protection.ts';

/** Only what the routes below touch: the product list, readiness, metrics. */
function fakeDeps(): HttpDeps {
  return {
    reads: { products: async () => ({ items: [], nextCursor: null }) },
    checkReady: async () => undefined,
    authSecret: new TextEncoder().encode('a-secret-of-at-least-thirty-two-bytes!!'),
    metrics: createMetrics({ outboxStats: async () => ({ backlog: 0, failing: 0, oldestUndeliveredSeconds: 0 }) }),
  } as unknown as HttpDeps;
}

const apps: FastifyInstance[] = [];
afterEach(async () => {
  for (const app of apps.splice(0)) await app.close();
});
async function app(options: AppOptions): Promise<FastifyInstance> {
  const built = await buildApp(fakeDeps(), options);
  apps.push(built);
  return built;
}

const perIp = (burst: number) => ({ perIp: { perSecond: 1, burst }, perUser: null, maxInFlight: null });

/** Status codes of `n` GET /products from the socket address `from`, with these headers. */
async function statuses(server: FastifyInstance, n: number, from: string, headers: (i: number) => Record<string, string> = () => ({})) {
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push((await server.inject({ method: 'GET', url: '/products', remoteAddress: from, headers: headers(i) })).statusCode);
  return out;
}

test('RATE_LIMIT_*_PER_SEC and _BURST map onto one window: burst requests per burst / rate seconds', () => {
  expect(windowMs({ perSecond: 20, burst: 100 })).toBe(5_000);
  expect(windowMs({ perSecond: 1_000, burst: 5_000 })).toBe(5_000);
  expect(windowMs({ perSecond: 1, burst: 3 })).toBe(3_000);
  expect(windowMs({ perSecond: 1_000_000, burst: 1 })).toBe(1);
});

test('per address, in process: past the burst 429 RATE_LIMITED as problem+json with Retry-After; probes exempt', async () => {
  const server = await app({ limits: perIp(3) });
  expect(await statuses(server, 4, '198.51.100.1')).toEqual([200, 200, 200, 429]);
  const refused = await server.inject({ method: 'GET', url: '/products', remoteAddress: '198.51.100.1' });
  expect(refused.statusCode).toBe(429);
  expect(refused.headers['content-type']).toMatch(/^application\/problem\+json/);
  expect(refused.json()).toMatchObject({ status: 429, code: 'RATE_LIMITED' });
  expect(Number(refused.headers['retry-after'])).toBeGreaterThanOrEqual(1);
  expect(Number(refused.headers['retry-after'])).toBeLessThanOrEqual(3);
  expect(await statuses(server, 1, '198.51.100.2')).toEqual([200]); // another address has its own
  for (const url of ['/health/live', '/health/ready']) {
    expect((await server.inject({ method: 'GET', url, remoteAddress: '198.51.100.1' })).statusCode).toBe(200);
  }
});

describe('X-Forwarded-For: the address is the one the trusted proxy saw, never what the client wrote', () => {
  const forged = (i: number) => ({ 'x-forwarded-for': `10.0.0.${i}` });

  test('no proxy trusted: the header is ignored, the socket address is the key', async () => {
    const server = await app({ limits: perIp(3) });
    expect(await statuses(server, 4, '198.51.100.1', forged)).toEqual([200, 200, 200, 429]);
  });

  test('one trusted hop: the right-most entry, the one the proxy appended, whatever the client put before it', async () => {
    const server = await app({ limits: perIp(3), trustProxy: 1 });
    const viaProxy = (client: string) => (i: number) => ({ 'x-forwarded-for': `10.0.0.${i}, 192.0.2.${i}, ${client}` });
    expect(await statuses(server, 4, '127.0.0.1', viaProxy('203.0.113.7'))).toEqual([200, 200, 200, 429]);
    expect(await statuses(server, 1, '127.0.0.1', viaProxy('203.0.113.8'))).toEqual([200]);
  });

  test('trusted proxy addresses: a client that connects directly cannot forge its address at all', async () => {
    const server = await app({ limits: perIp(3), trustProxy: ['127.0.0.1'] });
    // Directly from 198.51.100.1, a different forged address each time: still one client.
    expect(await statuses(server, 4, '198.51.100.1', forged)).toEqual([200, 200, 200, 429]);
    // Through the proxy at 127.0.0.1: keyed on what it appended.
    const viaProxy = (i: number) => ({ 'x-forwarded-for': `10.0.0.${i}, 203.0.113.9` });
    expect(await statuses(server, 4, '127.0.0.1', viaProxy)).toEqual([200, 200, 200, 429]);
  });
});

test('a shared store that does not answer lets requests through (the limits must not take the service down)', async () => {
  let asked = 0;
  const brokenRedis = {
    defineCommand() {},
    rateLimit(..._args: unknown[]) {
      asked++;
      const callback = _args.at(-1) as (err: Error) => void;
      callback(new Error("Stream isn't writeable and enableOfflineQueue options is false"));
    },
  };
  const server = await app({ limits: perIp(1), sharedLimits: { redis: brokenRedis, prefix: 'test:' } });
  expect(await statuses(server, 3, '198.51.100.1')).toEqual([200, 200, 200]);
  expect(asked).toBe(3);
});
