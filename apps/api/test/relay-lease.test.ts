import { afterAll, beforeAll, expect, test } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../../test/support/database.ts';
import { eventually } from '../../../test/support/eventually.ts';
import { startTestApp, type TestApp } from '../../../test/support/http.ts';
import { assertInvariants } from '../../../test/support/invariants.ts';
import { Receiver } from '../../../test/support/receiver.ts';

/**
 * Two instances' relays on one outbox, a platform that takes 400 ms to answer each delivery, and
 * the shortest lease allowed (2 s, twice the delivery timeout): a batch of 100 records, 16 at a
 * time, takes about 2.8 s, longer than its lease. The relay renews the lease of what it still holds
 * while the batch runs, so the other instance never claims those records: no event is sent twice.
 */
let tdb: TestDatabase;
let receiver: Receiver;
const apps: TestApp[] = [];

beforeAll(async () => {
  tdb = await createTestDatabase();
  receiver = await new Receiver().start();
  receiver.delayMs = 400;
});
afterAll(async () => {
  for (const app of apps) await app.close();
  await receiver?.stop();
  await tdb?.drop();
});

test('batches slower than their lease, two instances: every event delivered once, none sent twice', async () => {
  // 400 orders recorded with no relay running, so that the relays then claim full batches of 100.
  const recording = await startTestApp(tdb.url, { OUTBOX_RELAY: 'off' });
  const { client } = recording;
  const productId = await client.createProduct(100, 10_000);
  const buyers = await Promise.all(Array.from({ length: 10 }, () => client.createUser(1_000_000)));
  await Promise.all(
    buyers.map(async (buyer) => {
      for (let i = 0; i < 40; i++) {
        const res = await client.post('/orders', { userId: buyer.userId, items: [{ productId, quantity: 1 }] }, { token: buyer.token });
        expect(res.status).toBe(201);
      }
    }),
  );
  await recording.close();
  const env = { DATA_PLATFORM_URL: receiver.url, DATA_PLATFORM_TIMEOUT_MS: '1000', OUTBOX_LEASE_MS: '2000', OUTBOX_POLL_MS: '100' };
  apps.push(await startTestApp(tdb.url, env), await startTestApp(tdb.url, env));
  const undelivered = async () => (await tdb.query<{ n: number }>('SELECT count(*)::int AS n FROM outbox_events WHERE delivered_at IS NULL'))[0]!.n;
  await eventually(async () => (await undelivered()) === 0, 'every event delivered', 120_000, 200);
  const recorded = await tdb.query<{ event_id: string; attempts: number }>('SELECT event_id::text, attempts FROM outbox_events');
  expect(recorded).toHaveLength(400);
  expect(new Set(receiver.accepted.map((e) => e.body.eventId))).toEqual(new Set(recorded.map((e) => e.event_id)));
  expect(receiver.duplicates(), 'events delivered more than once').toBe(0);
  // Each claimed once: a second relay's claim would have counted an attempt.
  expect(recorded.filter((e) => e.attempts !== 1)).toEqual([]);
  await assertInvariants(tdb, new Map([[productId, 10_000]]));
}, 180_000);
