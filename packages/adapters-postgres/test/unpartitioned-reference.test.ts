import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { cancelOrder, placeOrder, refundOrder, systemClock, uuidV7 } from '@shop/application';
import { auditInvariants, migrate, pgOrderBook, pgReadStore, PgUnitOfWork } from '../src/index.ts';
import {
  fingerprintDifferences, migrateUnpartitioned, partitionedTables, REFERENCE_MARKER, referenceViolations, seedHistory, type SeededHistory,
} from '../src/bench/index.ts';
import { describeCatalog } from '../../../test/support/catalog.ts';
import { createTestDatabase, type TestDatabase } from '../../../test/support/database.ts';

/**
 * `pnpm bench --scale --unpartitioned-reference` sets the order path on the partitioned history
 * against the same history in a database migrated to 0013 only (the current definitions on top).
 * That database must be what it says: tables not partitioned, the same functions, the same seeded
 * rows, left so by the service's own migrate at its start, and the order path working on it.
 */
describe('the unpartitioned reference database, at a tiny factor', () => {
  let [partitioned, reference] = [null, null] as Array<TestDatabase | null>;
  let [p, r] = [null, null] as unknown as [SeededHistory, SeededHistory];
  beforeAll(async () => {
    [partitioned, reference] = await Promise.all([createTestDatabase(), createTestDatabase({ migrate: false })]);
    await migrateUnpartitioned(reference.db.pool);
    p = await seedHistory(partitioned.url, 0.0005, undefined, { fingerprint: true });
    r = await seedHistory(reference.url, 0.0005, undefined, { fingerprint: true, seedStart: Date.parse(p.seededBefore) });
  });
  afterAll(async () => Promise.all([partitioned?.drop(), reference?.drop()]));

  test('is migrated to 0013 and the marker, its history tables not partitioned, with the same functions as the partitioned one', async () => {
    expect(await partitionedTables(partitioned!.db.pool)).toEqual(['balance_ledger', 'idempotency_keys', 'order_items', 'orders', 'outbox_events']);
    expect(await partitionedTables(reference!.db.pool)).toEqual([]);
    const applied = (await reference!.query<{ name: string }>('SELECT name FROM schema_migrations ORDER BY name')).map((m) => m.name);
    expect(applied.at(-2)).toMatch(/^0013_/);
    expect(applied.at(-1)).toBe(REFERENCE_MARKER);
    expect(applied.filter((m) => m.startsWith('0014_'))).toEqual([REFERENCE_MARKER]);
    const [a, b] = [await describeCatalog(partitioned!.db.pool), await describeCatalog(reference!.db.pool)];
    expect(b.functions).toEqual(a.functions);
    expect(b.functions?.length).toBeGreaterThan(5);
  });

  test("the service's migrate at its start takes it for a newer release's: applies nothing, 0014 included, and may serve", async () => {
    expect(await migrate(reference!.db.pool)).toEqual({ applied: [], newer: [REFERENCE_MARKER], tooOld: null });
    expect(await partitionedTables(reference!.db.pool)).toEqual([]);
  });

  test('the seed writes the same rows into both, keys and indexes re-created as they were, every invariant held', async () => {
    expect(r.history).toEqual(p.history);
    expect(r.schemaUnchanged).toBe(true);
    expect(p.fingerprint!.orders!.rows).toBe(p.seeded.orders);
    expect(p.fingerprint!.balance_ledger!.rows).toBeGreaterThan(p.seeded.orders);
    expect(fingerprintDifferences(p.fingerprint!, r.fingerprint!)).toEqual([]);
    const initialStock = new Map(Array.from({ length: r.seeded.products }, (_, i) => [i + 1, r.initialStock] as const));
    const eventsPurgedBefore = new Date(r.history.eventsRetainedSince);
    expect(await auditInvariants(reference!.db.pool, initialStock, { eventsPurgedBefore })).toEqual([]);
  });

  test('takes orders through the adapters, keyed or not, and refunds and cancels them; the invariants still hold', async () => {
    const db = reference!.db;
    const deps = { uow: new PgUnitOfWork(db.kysely), book: pgOrderBook(db.kysely, { writesInFlight: 2 }), reads: pgReadStore(db.kysely),
      clock: systemClock, ids: uuidV7, cancelDays: 7 };
    const [before] = await reference!.query<{ n: number }>('SELECT count(*)::int AS n FROM orders');
    const placed = await Promise.all([1, 2, 3, 4, 5, 6].map((userId) => placeOrder(deps, {
      actor: { role: 'user', userId }, userId, items: [{ productId: userId, quantity: 1 }, { productId: userId + 1, quantity: 2 }],
      idempotencyKey: userId % 2 === 0 ? `key-${userId}` : undefined,
    })));
    const replay = await placeOrder(deps, { actor: { role: 'user', userId: 2 }, userId: 2, items: [{ productId: 2, quantity: 1 }, { productId: 3, quantity: 2 }],
      idempotencyKey: 'key-2' });
    expect(replay.order.orderId).toBe(placed[1]!.order.orderId);
    const [first] = placed.map((x) => x.order);
    await refundOrder(deps, { actor: { role: 'user', userId: 1 }, orderId: first!.orderId, items: [{ productId: 2, quantity: 1 }] });
    await cancelOrder(deps, { actor: { role: 'user', userId: 1 }, orderId: first!.orderId });
    const [after] = await reference!.query<{ n: number; cancelled: number }>(
      `SELECT count(*)::int AS n, count(*) FILTER (WHERE status = 'CANCELLED')::int AS cancelled FROM orders`);
    expect(after).toEqual({ n: before!.n + 6, cancelled: 1 });
    expect(await partitionedTables(reference!.db.pool)).toEqual([]);
    const initialStock = new Map(Array.from({ length: r.seeded.products }, (_, i) => [i + 1, r.initialStock] as const));
    expect(await auditInvariants(db.pool, initialStock, { eventsPurgedBefore: new Date(r.history.eventsRetainedSince) })).toEqual([]);
    // The benchmark's own check of the reference: the seeds' fingerprints and the invariants.
    expect(await referenceViolations(db.pool, initialStock, p, r)).toEqual([]);
    expect(await referenceViolations(db.pool, initialStock, p, { ...r, fingerprint: { ...r.fingerprint, orders: { rows: 1, hash: '1' } } }))
      .toEqual([expect.stringMatching(/^unpartitioned reference: seeded rows differ, orders: /)]);
  });
});
