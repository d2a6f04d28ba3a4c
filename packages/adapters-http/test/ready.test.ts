import { afterAll, expect, test } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { buildApp, createMetrics, type HttpDeps } from '../src/index.ts';
import { READY_MAX_AGE_MS, sharedCheck } from '../src/routes/health.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A readiness check that stands for one database query: counted, 30 ms long, failing on demand. */
function countedCheck() {
  const startedAt: number[] = [];
  let failing = false;
  return {
    startedAt,
    fail: (on: boolean) => (failing = on),
    check: async () => {
      startedAt.push(Date.now());
      await sleep(30);
      if (failing) throw new Error('connection refused');
    },
  };
}

let server: FastifyInstance | null = null;
afterAll(async () => {
  await server?.close();
});

test('/health/ready under a flood: one check in flight, its answer reused for a second, so at most one query a second', async () => {
  const db = countedCheck();
  const deps = {
    checkReady: db.check,
    authSecret: new TextEncoder().encode('a-secret-of-at-least-thirty-two-bytes!!'),
    metrics: createMetrics({ outboxStats: async () => ({ backlog: 0, failing: 0, oldestUndeliveredSeconds: 0 }) }),
  } as unknown as HttpDeps;
  server = await buildApp(deps);
  const probe = () => server!.inject({ method: 'GET', url: '/health/ready' });

  // 200 probes at once: one query, every one answered from it.
  const burst = await Promise.all(Array.from({ length: 200 }, probe));
  expect(burst.every((r) => r.statusCode === 200)).toBe(true);
  expect(db.startedAt).toHaveLength(1);

  // A steady flood for 2.5 s, 20 probes in flight at all times.
  const until = Date.now() + 2_500;
  let answered = 0;
  await Promise.all(
    Array.from({ length: 20 }, async () => {
      while (Date.now() < until) {
        expect((await probe()).statusCode).toBe(200);
        answered++;
      }
    }),
  );
  expect(answered).toBeGreaterThan(200);
  expect(db.startedAt.length).toBeLessThanOrEqual(4); // the first, then one per second at most
  for (let i = 1; i < db.startedAt.length; i++) {
    expect(db.startedAt[i]! - db.startedAt[i - 1]!).toBeGreaterThanOrEqual(READY_MAX_AGE_MS);
  }

  // A database that stops answering is seen within a second, as 503 with Retry-After.
  db.fail(true);
  await sleep(READY_MAX_AGE_MS + 50);
  const down = await Promise.all(Array.from({ length: 50 }, probe));
  expect(down.every((r) => r.statusCode === 503)).toBe(true);
  expect(down[0]!.json()).toMatchObject({ code: 'SERVICE_UNAVAILABLE', detail: 'the database does not answer' });
  expect(Number(down[0]!.headers['retry-after'])).toBeGreaterThanOrEqual(1);
});

test('sharedCheck: a result is reused until it is maxAge old, then checked again', async () => {
  let now = 0;
  let calls = 0;
  const ready = sharedCheck(async () => void calls++, 1_000, () => now);
  expect(await ready()).toBeNull();
  now = 999;
  expect(await ready()).toBeNull();
  expect(calls).toBe(1);
  now = 1_000;
  expect(await ready()).toBeNull();
  expect(calls).toBe(2);
});
