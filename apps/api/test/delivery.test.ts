import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../../test/support/database.ts';
import { eventually } from '../../../test/support/eventually.ts';
import { startTestApp, type Client, type Reply, type TestApp } from '../../../test/support/http.ts';
import { Receiver } from '../../../test/support/receiver.ts';
import { FAST_RETRIES } from '../../../test/support/relay-env.ts';

/** Delivery of order.paid to a real HTTP receiver, through the relay of an in-process API. */
let tdb: TestDatabase;
let receiver: Receiver;
let app: TestApp;
let client: Client;

beforeAll(async () => {
  tdb = await createTestDatabase();
  receiver = await new Receiver().start();
  app = await startTestApp(tdb.url, { DATA_PLATFORM_URL: receiver.url, ...FAST_RETRIES });
  client = app.client;
});
afterEach(() => {
  receiver.mode = 'ok';
});
afterAll(async () => {
  await app?.close();
  await receiver?.stop();
  await tdb?.drop();
});

async function placeMany(n: number, opts: { failEvery?: number } = {}) {
  const productId = await client.createProduct(100, 1_000_000);
  const buyers = await Promise.all(Array.from({ length: 5 }, () => client.createUser(1_000_000)));
  const replies: Reply[] = await Promise.all(
    Array.from({ length: n }, (_, i) => {
      const buyer = buyers[i % buyers.length]!;
      const failing = opts.failEvery !== undefined && i % opts.failEvery === 0;
      const items = [{ productId: failing ? 999_999 : productId, quantity: 1 }];
      return client.post('/orders', { userId: buyer.userId, items }, { token: buyer.token });
    }),
  );
  return replies;
}

const undelivered = async () =>
  (await tdb.query<{ n: number }>('SELECT count(*)::int AS n FROM outbox_events WHERE delivered_at IS NULL'))[0]!.n;

const paidIds = (replies: Reply[]) => replies.filter((r) => r.status === 201).map((r) => r.body.orderId as string);

describe('delivery to the data platform', () => {
  test('one eventId per paid order, carrying the order, and nothing for failed orders', async () => {
    const replies = await placeMany(40, { failEvery: 4 });
    const paid = paidIds(replies);
    expect(paid).toHaveLength(30);
    await receiver.until(() => paid.every((id) => receiver.eventIdsByOrder().has(id)), 'every paid order delivered');

    const byOrder = receiver.eventIdsByOrder();
    expect([...byOrder.keys()].sort()).toEqual([...paid].sort());
    for (const reply of replies.filter((r) => r.status === 201)) {
      const events = receiver.accepted.filter((e) => e.body.data.orderId === reply.body.orderId);
      const { orderId, userId, items, totalAmount, discountAmount, paidAmount, couponId, createdAt } = reply.body;
      for (const e of events) {
        expect(e.idempotencyKey).toBe(e.body.eventId);
        expect(e.body).toEqual({
          eventId: expect.stringMatching(/^[0-9a-f-]{36}$/),
          type: 'order.paid',
          occurredAt: createdAt,
          // The event's lines are the order's as placed, without what the order body says of refunds.
          data: { orderId, userId, items: items.map(({ refundedQuantity: _, ...l }: { refundedQuantity: number }) => l), totalAmount, discountAmount, paidAmount, couponId, createdAt },
        });
      }
      expect(byOrder.get(reply.body.orderId)!.size).toBe(1);
    }
    // The platform has every event; the relay marks each delivered once its answer is back.
    await eventually(async () => (await undelivered()) === 0, 'every event marked delivered');
    // At least once: a second copy is only ever a retry the relay recorded (an answer slower than
    // DATA_PLATFORM_TIMEOUT_MS on a loaded machine), never two relays sending one claim.
    const attempts = await tdb.query<{ event_id: string; attempts: number }>('SELECT event_id::text, attempts FROM outbox_events');
    for (const { event_id, attempts: tries } of attempts) {
      expect(receiver.accepted.filter((e) => e.body.eventId === event_id).length).toBeLessThanOrEqual(tries);
    }
  });

  test('orders succeed through 503s, hangs past the timeout and a vanished platform; every event arrives after', async () => {
    const lastErrors = async () =>
      (await tdb.query<{ e: string }>('SELECT last_error AS e FROM outbox_events WHERE delivered_at IS NULL AND last_error IS NOT NULL')).map((r) => r.e);
    const untilError = async (pattern: RegExp, what: string) => {
      const deadline = Date.now() + 20_000;
      while (!(await lastErrors()).some((e) => pattern.test(e))) {
        if (Date.now() > deadline) throw new Error(`no delivery failed with ${what}: ${JSON.stringify(await lastErrors())}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    };

    receiver.mode = 'fail';
    const during503 = await placeMany(10);
    await untilError(/503/, 'HTTP 503');
    receiver.mode = 'hang';
    const duringHang = await placeMany(10);
    await untilError(/timeout|abort/i, 'a timeout');
    await receiver.stop();
    const duringOutage = await placeMany(10);
    await untilError(/ECONNREFUSED|connect/i, 'a refused connection');
    for (const r of [...during503, ...duringHang, ...duringOutage]) expect(r.status).toBe(201);

    // The failures are visible to an operator while they last.
    const failed = await client.get('/admin/events?status=failed&limit=100');
    expect(failed.body.items.length).toBeGreaterThan(0);
    expect(failed.body.items[0]).toMatchObject({ type: 'order.paid', lastError: expect.any(String), deliveredAt: null });
    expect(failed.body.items[0].attempts).toBeGreaterThanOrEqual(1);
    const metrics = (await client.get('/metrics')).body as string; // the admin token
    expect(metrics).toMatch(/^outbox_backlog_events [1-9]\d*$/m);
    expect(metrics).toMatch(/^outbox_delivery_failures_total [1-9]\d*$/m);

    receiver.mode = 'ok';
    await receiver.start();
    const paid = paidIds([...during503, ...duringHang, ...duringOutage]);
    await receiver.until(() => paid.every((id) => receiver.eventIdsByOrder().has(id)), 'the backlog to drain', 60_000);
    for (const id of paid) expect(receiver.eventIdsByOrder().get(id)!.size).toBe(1);
    // The platform has every event; the relay marks each delivered once its answer is back.
    await eventually(async () => (await undelivered()) === 0, 'every event marked delivered');
  });

  test('an operator can force a redelivery, which carries the same eventId', async () => {
    const [reply] = await placeMany(1);
    await receiver.until(() => receiver.eventIdsByOrder().has(reply!.body.orderId), 'the first delivery');
    const [eventId] = [...receiver.eventIdsByOrder().get(reply!.body.orderId)!];
    const before = receiver.accepted.length;
    const forced = await client.post(`/admin/events/${eventId}/redeliver`, {});
    expect(forced.status).toBe(202);
    expect(forced.body).toMatchObject({ eventId, deliveredAt: null });
    await receiver.until(() => receiver.accepted.length > before, 'the redelivery');
    expect(receiver.accepted.slice(before).map((e) => e.body.eventId)).toEqual([eventId]);
    expect(receiver.eventIdsByOrder().get(reply!.body.orderId)!.size).toBe(1);
    const missing = await client.post('/admin/events/01234567-89ab-7def-8123-456789abcdef/redeliver', {});
    expect([missing.status, missing.body.code]).toEqual([404, 'EVENT_NOT_FOUND']);
    const userToken = await client.userToken(1);
    expect((await client.get('/admin/events', { token: userToken })).status).toBe(403);
  });
});
