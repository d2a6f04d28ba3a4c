import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { orderPaidEvent } from '@shop/domain';
import { auditInvariants, insertSelect, pgReadStore } from '../src/index.ts';
import { addPendingEvents, pgbenchEnv, pgbenchScript, pgbenchVars, seedHistory, type SeededHistory } from '../src/bench/index.ts';
import { describeCatalog } from '../../../test/support/catalog.ts';
import { createTestDatabase, type TestDatabase } from '../../../test/support/database.ts';
import { makeTempDir, removeTempDir } from '../../../test/support/temp.ts';

/**
 * The benchmark's SQL, written beside the service's own statements, held to what the service and
 * the domain would have written: the --scale history seed (at a tiny factor) and pgbench's script.
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
    // describeCatalog leaves partitions out: each must have its table's every index (none left `ON ONLY` the table).
    const short = await seeded!.query(`SELECT c.relname AS partition FROM pg_inherits h JOIN pg_class c ON c.oid = h.inhrelid
      WHERE (SELECT count(*) FROM pg_index WHERE indrelid = h.inhrelid) <> (SELECT count(*) FROM pg_index WHERE indrelid = h.inhparent)`);
    expect(short).toEqual([]);
  });

  test("writes each order.paid event as the domain's orderPaidEvent makes it for that order, coupons and several lines included", async () => {
    const { events, unlike } = await paidEventsUnlikeTheDomain(seeded!);
    expect(unlike.slice(0, 3)).toEqual([]);
    const data = events.map((e) => (e.payload as { data: { couponId: number | null; items: unknown[] } }).data);
    expect(data.some((d) => d.couponId !== null)).toBe(true);
    expect(data.some((d) => d.items.length > 1)).toBe(true);
  });
});

describe("the relay script's backlog", () => {
  let tdb: TestDatabase;
  beforeAll(async () => {
    tdb = await createTestDatabase();
  });
  afterAll(async () => tdb?.drop());

  test("n undelivered order.paid events, each of its own order, shaped as the domain's orderPaidEvent of that order", async () => {
    await addPendingEvents(tdb.db.pool, 50);
    const rows = await tdb.query<{ event_id: string; aggregate_id: string; payload: { occurredAt: string; data: { userId: number; items: Array<{ productId: number }> } }; delivered_at: Date | null }>(
      'SELECT event_id::text, aggregate_id, payload, delivered_at FROM outbox_events ORDER BY aggregate_id',
    );
    expect(rows).toHaveLength(50);
    expect(new Set(rows.map((r) => r.aggregate_id)).size).toBe(50);
    expect(rows.every((r) => r.delivered_at === null)).toBe(true);
    for (const r of rows.slice(0, 5)) {
      const { userId, items } = r.payload.data;
      const order = {
        orderId: r.aggregate_id, userId, status: 'PAID', items: [{ productId: items[0]!.productId, quantity: 1, unitPrice: 5000, lineAmount: 5000, refundedQuantity: 0 }],
        totalAmount: 5000, discountAmount: 0, paidAmount: 5000, couponId: null, createdAt: new Date(r.payload.occurredAt), cancelledAt: null, refundedAmount: 0,
      };
      expect(r.payload).toEqual(JSON.parse(JSON.stringify(orderPaidEvent(r.event_id, order as unknown as Parameters<typeof orderPaidEvent>[1]))));
    }
  });
});

const pgbench = spawnSync('pgbench', ['--version']);
describe.skipIf(pgbench.error !== undefined)("pgbench's uniform script", () => {
  let tdb: TestDatabase;
  beforeAll(async () => {
    tdb = await createTestDatabase();
  });
  afterAll(async () => tdb?.drop());

  test("places orders the audit accepts, each with the domain's order.paid event", async () => {
    // Ten users charged as the service charges them (balance = ledger), twenty products.
    await tdb.query(insertSelect('users', { id: 'g', name: `'u' || g`, balance: '1000000' }, 'FROM generate_series(1, 10) g'));
    await tdb.query(insertSelect('balance_ledger', {
      user_id: 'g', type: "'CHARGE'", amount: '1000000', balance_after: '1000000', order_id: 'NULL', created_at: 'now()',
    }, 'FROM generate_series(1, 10) g'));
    await tdb.query(insertSelect('products', { id: 'g', name: `'p' || g`, price: '1000 * g', stock: '100' }, 'FROM generate_series(1, 20) g'));
    const dir = makeTempDir('bench-pgbench-');
    try {
      writeFileSync(path.join(dir, 'uniform.sql'), pgbenchScript('uniform'));
      const args = ['-n', '-M', 'prepared', '-t', '5', '-c', '2', '-f', 'uniform.sql', ...pgbenchVars({ ufirst: 1, ulast: 10, pfirst: 1, plast: 20 })];
      const run = spawnSync('pgbench', args, { cwd: dir, env: { ...process.env, ...pgbenchEnv(tdb.url) }, encoding: 'utf8' });
      expect(run.status, run.stderr).toBe(0);
    } finally {
      await removeTempDir(dir);
    }
    const [{ n }] = (await tdb.query<{ n: number }>('SELECT count(*)::int AS n FROM orders')) as [{ n: number }];
    expect(n).toBe(10);
    const initialStock = new Map(Array.from({ length: 20 }, (_, i) => [i + 1, 100] as const));
    expect(await auditInvariants(tdb.db.pool, initialStock)).toEqual([]);
    const { events, unlike } = await paidEventsUnlikeTheDomain(tdb);
    expect(events).toHaveLength(10);
    expect(unlike.slice(0, 3)).toEqual([]);
  });
});
