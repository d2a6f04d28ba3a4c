import { isDeepStrictEqual } from 'node:util';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { orderPaidEvent } from '@shop/domain';
import { auditInvariants, pgReadStore } from '../src/index.ts';
import { seedHistory, type SeededHistory } from '../src/bench/index.ts';
import { describeCatalog } from '../../../test/support/catalog.ts';
import { createTestDatabase, type TestDatabase } from '../../../test/support/database.ts';

/**
 * The benchmark's SQL, written beside the service's own statements, held to what the service and
 * the domain would have written: the --scale history seed, at a tiny factor.
 */

/** Every order.paid event of the database against the domain's event of the order it names: the mismatches. */
async function paidEventsUnlikeTheDomain(tdb: TestDatabase) {
  const events = await tdb.query<{ event_id: string; aggregate_id: string; payload: unknown }>(
    `SELECT event_id::text, aggregate_id, payload FROM outbox_events WHERE event_type = 'order.paid' ORDER BY created_at`,
  );
  const reads = pgReadStore(tdb.db.kysely);
  const unlike = [];
  for (const e of events) {
    const order = await reads.order(e.aggregate_id);
    const expected = order && JSON.parse(JSON.stringify(orderPaidEvent(e.event_id, order)));
    if (!isDeepStrictEqual(e.payload, expected)) unlike.push({ written: e.payload, domain: expected });
  }
  return { events, unlike };
}

describe('the --scale history seed, at a tiny factor', () => {
  let [seeded, fresh] = [null, null] as Array<TestDatabase | null>;
  let history: SeededHistory;
  beforeAll(async () => {
    [seeded, fresh] = await Promise.all([createTestDatabase(), createTestDatabase()]);
    history = await seedHistory(seeded.url, 0.0005);
  });
  afterAll(async () => Promise.all([seeded?.drop(), fresh?.drop()]));

  test('writes what it says, and every invariant holds with events purged before the retention, as the relay would have', async () => {
    const [counts] = await seeded!.query<{ users: number; products: number; orders: number; events: number }>(
      `SELECT (SELECT count(*)::int FROM users) AS users, (SELECT count(*)::int FROM products) AS products,
              (SELECT count(*)::int FROM orders) AS orders, (SELECT count(*)::int FROM outbox_events) AS events`,
    );
    expect(counts).toMatchObject({ users: history.seeded.users, products: history.seeded.products, orders: history.seeded.orders });
    expect(counts!.events).toBeGreaterThan(0);
    const initialStock = new Map(Array.from({ length: history.seeded.products }, (_, i) => [i + 1, history.initialStock] as const));
    const eventsPurgedBefore = new Date(history.history.eventsRetainedSince);
    expect(await auditInvariants(seeded!.db.pool, initialStock, { eventsPurgedBefore })).toEqual([]);
  });

  test("leaves the catalog as a fresh migration's: keys, foreign keys and indexes re-created as they were", async () => {
    expect(history.schemaUnchanged).toBe(true);
    expect(await describeCatalog(seeded!.db.pool)).toEqual(await describeCatalog(fresh!.db.pool));
  });

  test("writes each order.paid event as the domain's orderPaidEvent makes it for that order, coupons and several lines included", async () => {
    const { events, unlike } = await paidEventsUnlikeTheDomain(seeded!);
    expect(unlike.slice(0, 3)).toEqual([]);
    const data = events.map((e) => (e.payload as { data: { couponId: number | null; items: unknown[] } }).data);
    expect(data.some((d) => d.couponId !== null)).toBe(true);
    expect(data.some((d) => d.items.length > 1)).toBe(true);
  });
});
