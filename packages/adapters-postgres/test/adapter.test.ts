import { readdir } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { cancellationEffects, decideCancellation, decideOrder, placementEffects, type Order, type OrderSnapshot } from '@shop/domain';
import { uuidV7, type BookWrite, type KeyClaim, type Purgeable } from '@shop/application';
import {
  auditInvariants,
  migrate,
  openDatabase,
  pgOrderBook,
  pgIdempotencyKeyPurge,
  pgOutboxStore,
  pgReadStore,
  PgUnitOfWork,
  writeOrderGroup,
} from '../src/index.ts';
import { batchEntry } from '../src/book-write.ts';
import { createTestDatabase, type TestDatabase } from '../../../test/support/database.ts';

let tdb: TestDatabase;
let uow: PgUnitOfWork;

beforeAll(async () => {
  tdb = await createTestDatabase();
  uow = new PgUnitOfWork(tdb.db.kysely);
});
afterAll(async () => tdb?.drop());

async function seedUser(balance: number): Promise<number> {
  const [row] = await tdb.query<{ id: number }>('INSERT INTO users (name, balance) VALUES ($1, $2) RETURNING id', ['u', balance]);
  if (balance > 0) {
    await tdb.query(
      `INSERT INTO balance_ledger (user_id, type, amount, balance_after, created_at) VALUES ($1, 'CHARGE', $2, $2, now())`,
      [row!.id, balance],
    );
  }
  return row!.id;
}
/** A 300-won coupon, one copy of it held (unused) by `userId`. */
async function seedHeldCoupon(userId: number): Promise<number> {
  const [coupon] = await tdb.query<{ id: number }>(
    `INSERT INTO coupons (name, discount_type, discount_value, total_quantity, issued_quantity, valid_days)
     VALUES ('c', 'FIXED', 300, 5, 1, 7) RETURNING id`,
  );
  await tdb.query(
    `INSERT INTO user_coupons (user_id, coupon_id, issued_at, expires_at) VALUES ($1, $2, now() - interval '1 hour', now() + interval '7 days')`,
    [userId, coupon!.id],
  );
  return coupon!.id;
}
async function seedProduct(price: number, stock: number): Promise<number> {
  const [row] = await tdb.query<{ id: number }>('INSERT INTO products (name, price, stock) VALUES ($1, $2, $3) RETURNING id', ['p', price, stock]);
  return row!.id;
}

describe('migrations', () => {
  test('are applied once even when several processes start together', async () => {
    const pools = [openDatabase({ connectionString: tdb.url }), openDatabase({ connectionString: tdb.url })];
    const applied = await Promise.all(pools.map(async (p) => (await migrate(p.pool)).applied));
    await Promise.all(pools.map((p) => p.close()));
    expect(applied).toEqual([[], []]);
    const rows = await tdb.query<{ name: string }>('SELECT name FROM schema_migrations ORDER BY name');
    const files = (await readdir(new URL('../migrations/', import.meta.url))).filter((f) => f.endsWith('.sql')).sort();
    expect(rows.map((r) => r.name)).toEqual(files);
    expect(files[0]).toBe('0001_init.sql');
  });
});

describe('database constraints as the last line of defence', () => {
  test('refuse negative stock, a negative balance or one past a safe integer, and over-issued coupons', async () => {
    const productId = await seedProduct(100, 1);
    const userId = await seedUser(0);
    await expect(tdb.query('UPDATE products SET stock = -1 WHERE id = $1', [productId])).rejects.toThrow(/check/i);
    await expect(tdb.query('UPDATE users SET balance = -1 WHERE id = $1', [userId])).rejects.toThrow(/check/i);
    await expect(tdb.query('UPDATE users SET balance = 9007199254740992 WHERE id = $1', [userId])).rejects.toThrow(/check/i);
    await expect(
      tdb.query(
        `INSERT INTO coupons (name, discount_type, discount_value, total_quantity, issued_quantity, valid_days)
         VALUES ('c', 'FIXED', 1, 1, 2, 1)`,
      ),
    ).rejects.toThrow(/check/i);
  });
});

/** An order decided on `seen` as the service decides it, ready for the writer (with the order, for the tests' checks). */
type Decided = BookWrite & { readonly order: Order };
function decided(
  userId: number,
  items: { productId: number; quantity: number }[],
  seen: OrderSnapshot,
  options: { couponId?: number; claim?: KeyClaim } = {},
): Decided {
  const decision = decideOrder({ orderId: uuidV7.next(), userId, items, couponId: options.couponId ?? null, now: new Date() }, seen);
  return { order: decision.order, effects: placementEffects(decision, uuidV7.next()), claim: options.claim ?? null };
}

/** One unit at 1,000 won, decided on a snapshot that shows enough of everything. */
const oneUnitOrder = (userId: number, productId: number) =>
  decided(userId, [{ productId, quantity: 1 }], { balance: 1_000_000, products: [{ productId, price: 1_000, stock: 1_000 }], held: null });

describe('the paid-order write', () => {
  test('a second paid event for an order cannot be written: the order it comes with is refused by its primary key', async () => {
    // The outbox is partitioned by event id (migration 0014) and so has no unique index across
    // orders' events: the order's own row is what allows one order.paid.
    const userId = await seedUser(5_000);
    const productId = await seedProduct(1_000, 10);
    const w = oneUnitOrder(userId, productId);
    expect(await writeOrderGroup(tdb.db.kysely, [w], 1_000)).toEqual(['written']);
    const again = { ...w, effects: { ...w.effects, event: { ...w.effects.event, eventId: uuidV7.next() } } };
    await expect(writeOrderGroup(tdb.db.kysely, [again], 1_001)).rejects.toThrow();
    const events = await tdb.query<{ n: number }>(`SELECT count(*)::int AS n FROM outbox_events WHERE aggregate_id = $1`, [w.order.orderId]);
    expect(events).toEqual([{ n: 1 }]);
  });
});

describe('row locks', () => {
  test('an idempotency key cannot be claimed by a second transaction until the first ends; a completed one is completed to all', async () => {
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let claimedFirst!: () => void;
    const firstClaimed = new Promise<void>((r) => (claimedFirst = r));
    const first = uow.run(async (tx) => {
      expect(await tx.idempotency.claim(1, 'k')).toEqual({ state: 'free' });
      claimedFirst();
      await held;
      await tx.idempotency.save(1, 'k', 'f', { done: true });
    });
    await firstClaimed;
    expect(await uow.run((tx) => tx.idempotency.claim(1, 'k'))).toEqual({ state: 'in_flight' });
    expect(await uow.run((tx) => tx.idempotency.claim(2, 'k'))).toEqual({ state: 'free' });
    release();
    await first;
    const completed = { state: 'completed', stored: { fingerprint: 'f', result: { done: true } } };
    expect(await uow.run((tx) => tx.idempotency.claim(1, 'k'))).toEqual(completed);
    // Completed stays completed while another transaction holds the key (a concurrent replay).
    await whileHeld(`SELECT idempotency_claim(1, 'k')`, [], async () => {
      expect(await uow.run((tx) => tx.idempotency.claim(1, 'k'))).toEqual(completed);
    });
  });
});

describe('read store pagination', () => {
  test('walks every product once, in id order, through opaque cursors', async () => {
    for (let i = 0; i < 7; i++) await seedProduct(10 * i, i);
    const reads = pgReadStore(tdb.db.kysely);
    const all = (await tdb.query<{ id: number }>('SELECT id FROM products ORDER BY id')).map((r) => r.id);
    const seen: number[] = [];
    let cursor: string | null = null;
    do {
      const page = await reads.products(3, cursor);
      seen.push(...page.items.map((p) => p.productId));
      cursor = page.nextCursor;
    } while (cursor !== null);
    expect(seen).toEqual(all);
  });

  test('productsByIds (the product cache\'s batches): the products named that exist, as product() reads each', async () => {
    const [a, b] = [await seedProduct(1_000, 3), await seedProduct(2_000, 4)];
    const reads = pgReadStore(tdb.db.kysely);
    const found = await reads.productsByIds([b, 987_654_321, a]);
    expect(found.sort((x, y) => x.productId - y.productId)).toEqual([await reads.product(a), await reads.product(b)]);
    expect(await reads.productsByIds([])).toEqual([]);
  });

  test('refuses a cursor it did not make', async () => {
    const reads = pgReadStore(tdb.db.kysely);
    await expect(reads.products(3, 'not-a-cursor')).rejects.toMatchObject({ code: 'VALIDATION_ERROR' });
    await expect(reads.ordersOf(1, 3, Buffer.from('[1,2]').toString('base64url'))).rejects.toMatchObject({
      code: 'VALIDATION_ERROR',
    });
  });

  test('refuses, as a bad cursor, a time PostgreSQL would refuse: February 31st, hour 24, a year past 9999', async () => {
    const reads = pgReadStore(tdb.db.kysely);
    const outbox = pgOutboxStore(tdb.db.kysely);
    const id = '01234567-89ab-7def-8123-456789abcdef';
    for (const at of ['2026-02-31T00:00:00.000000Z', '2026-01-01T24:00:00Z', '+010000-01-01T00:00:00.000Z', '2026-01-01T00:00:00.1234567Z', '2026-01-01 00:00:00Z']) {
      const cursor = Buffer.from(JSON.stringify([at, id])).toString('base64url');
      await expect(reads.ordersOf(1, 3, cursor), at).rejects.toMatchObject({ code: 'VALIDATION_ERROR' });
      await expect(outbox.list('pending', 3, cursor), at).rejects.toMatchObject({ code: 'VALIDATION_ERROR' });
    }
    // Microseconds and milliseconds (the cursors of earlier versions) are both read.
    for (const at of ['2026-01-01T00:00:00.123456Z', '2026-01-01T00:00:00.123Z', '2026-01-01T00:00:00Z']) {
      const cursor = Buffer.from(JSON.stringify([at, id])).toString('base64url');
      await expect(reads.ordersOf(1, 3, cursor)).resolves.toMatchObject({ items: [] });
    }
  });
});

describe('opaque ids', () => {
  test('an order or event id of any other shape than a uuid names nothing, and never reaches a uuid column', async () => {
    const reads = pgReadStore(tdb.db.kysely);
    const outbox = pgOutboxStore(tdb.db.kysely);
    for (const id of ['not-a-uuid', '123', '-'.repeat(36), '', "1' OR '1'='1", 'a'.repeat(5_000), '01234567-89AB-7DEF-8123-456789ABCDEF', '\u0000']) {
      expect(await reads.order(id), id).toBeNull();
      expect(await outbox.redeliver(id), id).toBeNull();
    }
  });
});

/** Batches until the purge says nothing older than `before` is left; what each dropped. */
async function purgeAll(target: Purgeable, before: Date) {
  const batches: number[] = [];
  for (;;) {
    const batch = await target.purgeBatch(before, 5_000, null);
    batches.push(batch.deleted);
    if (batch.done) return batches;
    if (batches.length > 100) throw new Error('the purge does not end');
  }
}

/** `table`'s partitions, by name. */
const partitionsOf = async (table: string) =>
  (await tdb.query<{ name: string }>(`SELECT inhrelid::regclass::text AS name FROM pg_inherits WHERE inhparent = $1::regclass ORDER BY 1`, [table]))
    .map((r) => r.name);

describe('outbox leases', () => {
  test('records given back (untried when the circuit opened) are due at once with their claim uncounted; one claimed since by another relay is left alone', async () => {
    await tdb.query(`INSERT INTO outbox_events (event_id, event_type, aggregate_id, payload, occurred_at)
                     SELECT uuid_v7(), 'lease.test', 'lease-' || g, '{}', now() FROM generate_series(1, 3) g`);
    const store = pgOutboxStore(tdb.db.kysely);
    const claimed = (await store.claim(100, 60_000)).filter((r) => r.type === 'lease.test');
    expect(claimed).toHaveLength(3);
    // The third was claimed again by another relay since (its lease lapsed): attempts moved on.
    await tdb.query(`UPDATE outbox_events SET attempts = attempts + 1 WHERE event_id = $1`, [claimed[2]!.eventId]);
    await store.releaseLease(claimed);
    const rows = await tdb.query<{ event_id: string; attempts: number; due: boolean }>(
      `SELECT event_id, attempts, next_attempt_at <= now() AS due FROM outbox_events WHERE event_type = 'lease.test'`);
    const state = new Map(rows.map((r) => [r.event_id, [r.attempts, r.due]]));
    expect(claimed.map((c) => state.get(c.eventId))).toEqual([[0, true], [0, true], [2, false]]);
  });
});

describe('purges drop whole partitions (migration 0014)', () => {
  const DAY = 86_400_000;
  const dayName = (table: string, ms: number) => `${table}_p${new Date(ms).toISOString().slice(0, 10).replace(/-/g, '_')}`;

  test('idempotency keys: every day wholly past the retention goes, with its rows; the day the cutoff falls in stays, whole', async () => {
    await tdb.query(`SELECT ensure_partitions(now() - interval '6 days', now(), '{idempotency_keys}')`);
    await tdb.query(`INSERT INTO idempotency_keys (user_id, key, fingerprint, result, created_at)
      SELECT 7, 'old-' || g, 'f', '{}', now() - interval '5 days' + g * interval '30 s' FROM generate_series(1, 12000) g`);
    await tdb.query(`INSERT INTO idempotency_keys (user_id, key, fingerprint, result, created_at)
      SELECT 7, 'kept-' || g, 'f', '{}', now() - interval '1 hour' FROM generate_series(1, 50) g`);
    await tdb.query('ANALYZE idempotency_keys');
    const purge = pgIdempotencyKeyPurge(tdb.db.kysely);
    const now = Date.now();
    const before = new Date(now - 2 * DAY);
    const startOfCutoffDay = new Date(Math.floor(before.getTime() / DAY) * DAY);
    // The rows of the days that end by the cutoff are what goes; the cutoff's own day stays.
    const gone = (await tdb.query<{ n: number }>(`SELECT count(*)::int AS n FROM idempotency_keys WHERE created_at < $1`, [startOfCutoffDay]))[0]!.n;
    expect(gone).toBeGreaterThan(0);
    expect(await purge.estimateExpired(before)).toBe(gone);
    expect((await purgeAll(purge, before)).reduce((n, d) => n + d, 0)).toBe(gone);
    const [left] = await tdb.query<{ oldest: Date; n: number }>(`SELECT min(created_at) AS oldest, count(*)::int AS n FROM idempotency_keys WHERE user_id = 7`);
    expect(left!.n).toBe(12_050 - gone);
    expect(left!.oldest.getTime()).toBeGreaterThanOrEqual(startOfCutoffDay.getTime());
    const names = await partitionsOf('idempotency_keys');
    expect(names).not.toContain(dayName('idempotency_keys', now - 4 * DAY));
    expect(names).toContain(dayName('idempotency_keys', before.getTime()));
    expect(names).toContain(dayName('idempotency_keys', now));
    expect(await purgeAll(purge, before)).toEqual([0]);
  });

  test('delivered events: a day goes whole once every event of it was delivered before the cutoff; of a day with one undelivered, or one delivered since, the rest goes row by row', async () => {
    await tdb.query(`SELECT ensure_partitions(now() - interval '12 days', now(), '{outbox_events}')`);
    // 3,000 events a day, made in the day's first hour (so each day's events share its partition).
    const day = (kind: string, daysAgo: number, delivered: string) => tdb.query(`
      INSERT INTO outbox_events (event_id, event_type, aggregate_id, payload, occurred_at, delivered_at)
      SELECT uuid_v7(date_trunc('day', now() - interval '${daysAgo} days', 'UTC') + g * interval '1 s'), 'purge.test', '${kind}-' || g, '{}', now(), ${delivered}
      FROM generate_series(1, 3000) g`);
    await day('delivered', 11, `now() - interval '10 days'`);
    await day('undelivered', 10, `CASE WHEN g = 1500 THEN NULL ELSE now() - interval '9 days' END`);
    await day('late', 9, `CASE WHEN g = 10 THEN now() - interval '1 day' ELSE now() - interval '9 days' END`);
    await day('recent', 1, `now()`);
    await tdb.query('ANALYZE outbox_events');
    const store = pgOutboxStore(tdb.db.kysely);
    const purge = { purgeBatch: store.purgeDelivered, estimateExpired: store.estimateDelivered };
    const before = new Date(Date.now() - 7 * 86_400_000);
    // The first day dropped whole (3,000 by the planner's count); 2,999 deleted of each of the others.
    expect((await purgeAll(purge, before)).reduce((n, d) => n + d, 0)).toBe(3_000 + 2 * 2_999);
    const left = await tdb.query<{ kind: string; n: number; undelivered: number }>(`
      SELECT split_part(aggregate_id, '-', 1) AS kind, count(*)::int AS n, count(*) FILTER (WHERE delivered_at IS NULL)::int AS undelivered
        FROM outbox_events WHERE event_type = 'purge.test' GROUP BY 1 ORDER BY 1`);
    expect(left).toEqual([
      { kind: 'late', n: 1, undelivered: 0 },
      { kind: 'recent', n: 3_000, undelivered: 0 },
      { kind: 'undelivered', n: 1, undelivered: 1 },
    ]);
    expect(await partitionsOf('outbox_events')).not.toContain(dayName('outbox_events', Date.now() - 11 * DAY));
    // Once delivered before the cutoff, the day held back goes too, whole.
    await tdb.query(`UPDATE outbox_events SET delivered_at = now() - interval '8 days' WHERE aggregate_id = 'undelivered-1500'`);
    await purgeAll(purge, before);
    expect(await partitionsOf('outbox_events')).not.toContain(dayName('outbox_events', Date.now() - 10 * DAY));
    expect(await tdb.query(`SELECT count(*)::int AS n FROM outbox_events WHERE aggregate_id LIKE 'undelivered-%'`)).toEqual([{ n: 0 }]);
  });

  test('a day held back by one event it cannot deliver: its delivered events are deleted a batch at a time, that one kept', async () => {
    await tdb.query(`SELECT ensure_partitions(now() - interval '12 days', now(), '{outbox_events}')`);
    await tdb.query(`
      INSERT INTO outbox_events (event_id, event_type, aggregate_id, payload, occurred_at, delivered_at)
      SELECT uuid_v7(date_trunc('day', now() - interval '11 days', 'UTC') + g * interval '1 s'), 'held.test', 'held-' || g, '{}', now(),
             CASE WHEN g = 7 THEN NULL ELSE now() - interval '10 days' END
      FROM generate_series(1, 2500) g`);
    const store = pgOutboxStore(tdb.db.kysely);
    const before = new Date(Date.now() - 7 * DAY);
    const batches = await purgeAll({ purgeBatch: (b) => store.purgeDelivered(b, 1_000, null), estimateExpired: store.estimateDelivered }, before);
    expect(batches.filter((n) => n > 0)).toEqual([1_000, 1_000, 499]);
    expect(await tdb.query(`SELECT aggregate_id FROM outbox_events WHERE event_type = 'held.test'`)).toEqual([{ aggregate_id: 'held-7' }]);
    expect(await partitionsOf('outbox_events')).toContain(dayName('outbox_events', Date.now() - 11 * DAY));
  });

  test('a day a cut-off purge left detached is dropped, or attached back when it holds an event to deliver', async () => {
    await tdb.query(`SELECT ensure_partitions(now() - interval '5 days', now(), '{idempotency_keys,outbox_events}')`);
    const [keysDay, eventsDay] = [dayName('idempotency_keys', Date.now() - 4 * DAY), dayName('outbox_events', Date.now() - 4 * DAY)];
    await tdb.query(`INSERT INTO idempotency_keys (user_id, key, fingerprint, result, created_at) VALUES (8, 'stranded', 'f', '{}', now() - interval '4 days')`);
    await tdb.query(`INSERT INTO outbox_events (event_id, event_type, aggregate_id, payload, occurred_at)
                     VALUES (uuid_v7(now() - interval '4 days'), 'stranded.test', 'stranded', '{}', now())`);
    const boundOf = async (name: string) =>
      (await tdb.query<{ b: string }>(`SELECT pg_get_expr(relpartbound, oid) AS b FROM pg_class WHERE oid = $1::regclass`, [name]))[0]!.b;
    const madeWith = await boundOf(eventsDay);
    // As a purge cut off between its detach and its drop leaves them: outside their tables.
    await tdb.query(`ALTER TABLE idempotency_keys DETACH PARTITION ${keysDay}`);
    await tdb.query(`ALTER TABLE outbox_events DETACH PARTITION ${eventsDay}`);
    expect(await tdb.query(`SELECT count(*)::int AS n FROM outbox_events WHERE aggregate_id = 'stranded'`)).toEqual([{ n: 0 }]);
    await purgeAll(pgIdempotencyKeyPurge(tdb.db.kysely), new Date(Date.now() - 2 * DAY));
    expect(await tdb.query(`SELECT to_regclass($1) AS t`, [keysDay])).toEqual([{ t: null }]);
    const store = pgOutboxStore(tdb.db.kysely);
    await purgeAll({ purgeBatch: store.purgeDelivered, estimateExpired: store.estimateDelivered }, new Date(Date.now() - 1 * DAY));
    // The undelivered event is the relay's to see again, in its day, with the bounds it was made with.
    expect(await partitionsOf('outbox_events')).toContain(eventsDay);
    expect(await boundOf(eventsDay)).toBe(madeWith);
    expect(await tdb.query(`SELECT delivered_at FROM outbox_events WHERE aggregate_id = 'stranded'`)).toEqual([{ delivered_at: null }]);
  });
});

describe('partitions made ahead (ensure_partitions)', () => {
  test('orders in flight hold up only the monthly tables, and those no longer than lock_timeout: left for the next call, without failing', async () => {
    const future = (days: number) => `now() + interval '${days} days'`;
    // An order's transaction, open: its inserts and row locks do not conflict with attaching a partition.
    const userId = await seedUser(5_000);
    const productId = await seedProduct(1_000, 10);
    const open = await tdb.db.pool.connect();
    try {
      await open.query('BEGIN');
      await open.query(`UPDATE users SET balance = balance WHERE id = $1`, [userId]);
      await open.query(`UPDATE products SET stock = stock WHERE id = $1`, [productId]);
      await open.query(`INSERT INTO idempotency_keys (user_id, key, fingerprint, result) VALUES ($1, 'open', 'f', '{}')`, [userId]);
      // Days of keys and events: no foreign key, nothing the order holds is waited for.
      const [days] = await tdb.query<{ n: number }>(`SELECT ensure_partitions(${future(40)}, ${future(41)}, '{idempotency_keys,outbox_events}') AS n`);
      expect(days!.n).toBe(4);
      // A month of orders: attaching it adds its foreign keys, which waits for the users row lock
      // the order holds, half a second at most (lock_timeout, under deadlock_timeout), then leaves it.
      const t0 = Date.now();
      const [month] = await tdb.query<{ n: number }>(`SELECT ensure_partitions(${future(40)}, ${future(41)}, '{orders}') AS n`);
      const waited = Date.now() - t0;
      expect(month!.n).toBe(0);
      expect(waited).toBeGreaterThanOrEqual(450);
      expect(waited).toBeLessThan(3_000);
      await open.query('ROLLBACK');
      const [monthLater] = await tdb.query<{ n: number }>(`SELECT ensure_partitions(${future(40)}, ${future(41)}, '{orders}') AS n`);
      expect(monthLater!.n).toBe(1);
      // A lock that conflicts (another instance making or dropping days of the same table): not waited for.
      await open.query('BEGIN');
      await open.query('LOCK TABLE outbox_events IN SHARE UPDATE EXCLUSIVE MODE');
      const [skipped] = await tdb.query<{ n: number }>(`SELECT ensure_partitions(${future(50)}, ${future(51)}, '{outbox_events}') AS n`);
      expect(skipped!.n).toBe(0);
      await open.query('ROLLBACK');
      const [later] = await tdb.query<{ n: number }>(`SELECT ensure_partitions(${future(50)}, ${future(51)}, '{outbox_events}') AS n`);
      expect(later!.n).toBe(2);
    } finally {
      await open.query('ROLLBACK').catch(() => undefined);
      open.release();
    }
  });
});

describe('auditInvariants', () => {
  test('names each broken invariant, and passes again once repaired', async () => {
    // Its own database: the tests above leave rows that are deliberately incomplete.
    const outer = tdb;
    tdb = await createTestDatabase();
    try {
      const userId = await seedUser(5_000);
      const productId = await seedProduct(100, 10);
      expect(await auditInvariants(tdb.db.pool, new Map([[productId, 10]]))).toEqual([]);

      await tdb.query('UPDATE users SET balance = balance + 1 WHERE id = $1', [userId]);
      await tdb.query('UPDATE products SET stock = 9 WHERE id = $1', [productId]);
      const violations = await auditInvariants(tdb.db.pool, new Map([[productId, 10]]));
      expect(violations).toEqual([
        `user ${userId}: balance 5001, ledger sum 5000, last balanceAfter 5000`,
        `product ${productId}: stock 9 + sold 0 ≠ initial 10`,
      ]);

      await tdb.query('UPDATE users SET balance = balance - 1 WHERE id = $1', [userId]);
      await tdb.query('UPDATE products SET stock = 10 WHERE id = $1', [productId]);
      expect(await auditInvariants(tdb.db.pool, new Map([[productId, 10]]))).toEqual([]);
    } finally {
      await tdb.drop();
      tdb = outer;
    }
  });
});

/** Runs `work` while another session holds what `lock` takes, in a transaction rolled back after. */
async function whileHeld(lock: string, values: unknown[], work: () => Promise<void>): Promise<void> {
  const holder = await tdb.db.pool.connect();
  await holder.query('BEGIN');
  await holder.query(lock, values);
  try {
    await work();
  } finally {
    await holder.query('ROLLBACK');
    holder.release();
  }
}

describe('a new order event leased at insert (handed over to the writing relay, ADR 0003)', () => {
  test('written with eventLeaseMs: claimed already (attempts 1) and due when its lease ends, so no relay claims it; without: due at once', async () => {
    const userId = await seedUser(100_000);
    const productId = await seedProduct(1_000, 10);
    const [leased, due] = [oneUnitOrder(userId, productId), oneUnitOrder(userId, productId)];
    // One group holding both, as concurrent orders share one.
    expect(await writeOrderGroup(tdb.db.kysely, [{ ...leased, eventLeaseMs: 60_000 }, due], 5_000)).toEqual(['written', 'written']);
    const rows = await tdb.query<{ event_id: string; attempts: number; lease_s: number }>(
      `SELECT event_id::text, attempts, extract(epoch FROM next_attempt_at - now())::float8 AS lease_s FROM outbox_events WHERE event_id = ANY($1::uuid[])`,
      [[leased.effects.event.eventId, due.effects.event.eventId]]);
    const byId = new Map(rows.map((r) => [r.event_id, r]));
    expect(byId.get(leased.effects.event.eventId)).toMatchObject({ attempts: 1 });
    expect(byId.get(leased.effects.event.eventId)!.lease_s).toBeGreaterThan(50);
    expect(byId.get(leased.effects.event.eventId)!.lease_s).toBeLessThanOrEqual(60);
    expect(byId.get(due.effects.event.eventId)).toMatchObject({ attempts: 0 });
    expect(byId.get(due.effects.event.eventId)!.lease_s).toBeLessThanOrEqual(0);
    const claimed = (await pgOutboxStore(tdb.db.kysely).claim(1_000, 60_000)).map((r) => r.eventId);
    expect(claimed).toContain(due.effects.event.eventId);
    expect(claimed).not.toContain(leased.effects.event.eventId);
  });
});

describe('pgOrderBook', () => {
  const count = async (table: string) => (await tdb.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table}`))[0]!.n;
  const tables = async () => ({
    orders: await count('orders'),
    ledger: await count('balance_ledger'),
    outbox: await count('outbox_events'),
    keys: await count('idempotency_keys'),
  });

  test('the snapshot reads the balance, the products, the held coupon and a completed key', async () => {
    const book = pgOrderBook(tdb.db.kysely);
    const userId = await seedUser(10_000);
    const productId = await seedProduct(1_000, 3);
    expect(await book.snapshot(userId, [productId, 999_999], null, 'k')).toEqual({
      balance: 10_000,
      products: [{ productId, price: 1_000, stock: 3 }],
      held: null,
      completed: null,
      keyedOrder: null,
    });
    await tdb.query(`INSERT INTO idempotency_keys (user_id, key, fingerprint, result) VALUES ($1, 'k', 'f', '{"orderId":"x"}')`, [userId]);
    expect(await book.snapshot(userId, [productId], null, 'k')).toMatchObject({ completed: { fingerprint: 'f', result: { orderId: 'x' } }, keyedOrder: null });
    expect((await book.snapshot(userId, [productId], null, null)).completed).toBeNull();
  });

  test("a completed key's snapshot carries the order its result names, as written, so a replay reads nothing more", async () => {
    const book = pgOrderBook(tdb.db.kysely);
    const userId = await seedUser(10_000);
    const productId = await seedProduct(1_000, 3);
    const w = decided(userId, [{ productId, quantity: 2 }], await book.snapshot(userId, [productId], null, 'k'));
    const claim = { key: 'k', fingerprint: 'f', result: { orderId: w.order.orderId } };
    expect(await book.write({ ...w, claim })).toBe('written');
    const seen = await book.snapshot(userId, [productId], null, 'k');
    expect(seen.completed).toEqual({ fingerprint: 'f', result: { orderId: w.order.orderId } });
    expect(seen.keyedOrder).toEqual(w.order);
    expect(seen.keyedOrder).toEqual(await pgReadStore(tdb.db.kysely).order(w.order.orderId));
    // Another user's key of the same name names nothing of theirs.
    expect((await book.snapshot(await seedUser(10_000), [productId], null, 'k')).keyedOrder).toBeNull();
  });

  test('the guarded write commits everything when its guard holds, and nothing when any part of it fails', async () => {
    const book = pgOrderBook(tdb.db.kysely);
    const userId = await seedUser(10_000);
    const productId = await seedProduct(1_000, 3);
    const seenWith = (stock: number, price = 1_000, balance = 10_000): OrderSnapshot => ({
      balance,
      products: [{ productId, price, stock }],
      held: null,
    });
    const before = await tables();

    expect(await book.write(decided(userId, [{ productId, quantity: 4 }], seenWith(10)))).toBe('guard_failed'); // stock 3
    expect(await book.write(decided(userId, [{ productId, quantity: 1 }], seenWith(10, 900)))).toBe('guard_failed'); // price 1,000 now
    await tdb.query('UPDATE users SET balance = 500 WHERE id = $1', [userId]);
    expect(await book.write(decided(userId, [{ productId, quantity: 1 }], seenWith(10)))).toBe('guard_failed'); // balance 500
    await tdb.query('UPDATE users SET balance = 10000 WHERE id = $1', [userId]);
    expect(await tables()).toEqual(before);

    const w = decided(userId, [{ productId, quantity: 3 }], seenWith(3), { claim: { key: 'once', fingerprint: 'f', result: { orderId: 'o' } } });
    expect(await book.write(w)).toBe('written');
    const [ledger] = await tdb.query<{ type: string; amount: number; balance_after: number }>(
      'SELECT type, amount, balance_after FROM balance_ledger WHERE order_id = $1',
      [w.order.orderId],
    );
    expect(ledger).toEqual({ type: 'PAYMENT', amount: -3_000, balance_after: 7_000 });
    expect(await book.snapshot(userId, [productId], null, 'once')).toMatchObject({
      balance: 7_000,
      products: [{ stock: 0 }],
      completed: { fingerprint: 'f', result: { orderId: 'o' } },
    });
    expect(await tables()).toEqual({ orders: before.orders + 1, ledger: before.ledger + 1, outbox: before.outbox + 1, keys: before.keys + 1 });

    // The key is completed now: the same key again writes nothing (its caller replays).
    await tdb.query('UPDATE products SET stock = 10 WHERE id = $1', [productId]);
    expect(await book.write({ ...decided(userId, [{ productId, quantity: 1 }], seenWith(10, 1_000, 7_000)), claim: w.claim })).toBe('key_completed');
    // Completed wins over whoever holds the key now (a duplicate's look, a retry's write): replay, not 409.
    await whileHeld(`SELECT idempotency_claim($1, 'once')`, [userId], async () => {
      expect(await book.write({ ...decided(userId, [{ productId, quantity: 1 }], seenWith(10, 1_000, 7_000)), claim: w.claim })).toBe('key_completed');
    });
    expect((await tables()).orders).toBe(before.orders + 1);
  });

  test('concurrent orders are written as one group: each keeps its own outcome, coupon uses and keys included', async () => {
    const book = pgOrderBook(tdb.db.kysely, { writesInFlight: 1 });
    const [buyer, other] = [await seedUser(50_000), await seedUser(50_000)];
    const productId = await seedProduct(1_000, 10);
    const couponId = await seedHeldCoupon(buyer);
    const bookSeen = async (userId: number, withCoupon: boolean) => book.snapshot(userId, [productId], withCoupon ? couponId : null, null);
    const one = [{ productId, quantity: 1 }];
    const claim = (key: string): KeyClaim => ({ key, fingerprint: key, result: {} });
    const writes = [
      decided(other, one, await bookSeen(other, false)),
      decided(buyer, one, await bookSeen(buyer, true), { couponId }),
      decided(other, one, { ...(await bookSeen(other, false)), products: [{ productId, price: 999, stock: 10 }] }),
      decided(buyer, one, await bookSeen(buyer, true), { couponId }),
      decided(other, one, await bookSeen(other, false), { claim: claim('twice') }),
      decided(other, one, await bookSeen(other, false), { claim: claim('twice') }),
    ];
    // The first is written alone; the others queue behind it and go as one group, in which the
    // stale price, the second use of the coupon and the second claim of a key fail alone.
    const outcomes = await Promise.all(writes.map((w) => book.write(w)));
    expect(outcomes).toEqual(['written', 'written', 'guard_failed', 'guard_failed', 'written', 'key_busy']);
    const [used] = await tdb.query<{ order_id: string }>('SELECT order_id FROM user_coupons WHERE user_id = $1', [buyer]);
    expect(used!.order_id).toBe(writes[1]!.order.orderId);
    expect((await bookSeen(buyer, false)).balance).toBe(50_000 - 700);
    expect((await bookSeen(other, false)).products[0]!.stock).toBe(7);
    const written = await tdb.query<{ id: string }>('SELECT id::text AS id FROM orders WHERE id = ANY($1::uuid[])', [writes.map((w) => w.order.orderId)]);
    expect(written.map((r) => r.id).sort()).toEqual([0, 1, 4].map((i) => writes[i]!.order.orderId).sort());
  });

  test('in one group, a cancellation gives a coupon copy back and a later order takes it again', async () => {
    const book = pgOrderBook(tdb.db.kysely, { writesInFlight: 1 });
    const buyer = await seedUser(50_000);
    const productId = await seedProduct(1_000, 10);
    const couponId = await seedHeldCoupon(buyer);
    // Both decided on one snapshot with the copy unused; the first is written alone.
    const seen = await book.snapshot(buyer, [productId], couponId, null);
    const first = decided(buyer, [{ productId, quantity: 1 }], seen, { couponId });
    const second = decided(buyer, [{ productId, quantity: 2 }], seen, { couponId });
    expect(await book.write(first)).toBe('written');
    const cancel: BookWrite = {
      effects: cancellationEffects(decideCancellation(first.order, new Date(), 7), uuidV7.next()),
      claim: null,
    };
    expect(await writeOrderGroup(tdb.db.kysely, [cancel, second], 1_000)).toEqual(['written', 'written']);
    const [copy] = await tdb.query<{ order_id: string; used: boolean }>(
      'SELECT order_id::text, used_at IS NOT NULL AS used FROM user_coupons WHERE user_id = $1',
      [buyer],
    );
    expect(copy).toEqual({ order_id: second.order.orderId, used: true });
    const ledger = await tdb.query<{ type: string; amount: number; balance_after: number }>(
      'SELECT type, amount, balance_after FROM balance_ledger WHERE user_id = $1 ORDER BY id',
      [buyer],
    );
    expect(ledger).toEqual([
      { type: 'CHARGE', amount: 50_000, balance_after: 50_000 },
      { type: 'PAYMENT', amount: -700, balance_after: 49_300 },
      { type: 'REFUND', amount: 700, balance_after: 50_000 },
      { type: 'PAYMENT', amount: -1_700, balance_after: 48_300 },
    ]);
    expect((await book.snapshot(buyer, [productId], null, null)).products[0]!.stock).toBe(8);
  });

  test('a key claimed by another transaction (a charge, another process) makes the order busy, writing nothing, and shows in its state', async () => {
    const book = pgOrderBook(tdb.db.kysely);
    const userId = await seedUser(10_000);
    const productId = await seedProduct(1_000, 5);
    await whileHeld(`SELECT idempotency_claim($1, 'held')`, [userId], async () => {
      // The look at the key takes it only for its own statement: still free afterwards.
      expect(await book.keyState(userId, 'free')).toEqual({ state: 'free' });
      expect(await tdb.query(`SELECT idempotency_claim($1, 'free') AS ok`, [userId])).toEqual([{ ok: true }]);
      const before = await tables();
      const w = decided(userId, [{ productId, quantity: 1 }], await book.snapshot(userId, [productId], null, null), {
        claim: { key: 'held', fingerprint: 'f', result: {} },
      });
      expect(await book.write(w)).toBe('key_busy');
      expect(await tables()).toEqual(before);
      expect(await book.keyState(userId, 'held')).toEqual({ state: 'in_flight' });
      expect(await book.keyState(userId, 'other')).toEqual({ state: 'free' });
      // The order snapshot does not look (ADR 0010): nor does it take the key.
      await book.snapshot(userId, [productId], null, 'held');
      expect(await book.write(w)).toBe('key_busy');
    });
  });

  test("concurrent looks at keys share statements, and each gets its own key's state", async () => {
    const one = openDatabase({ connectionString: tdb.url, max: 1, applicationName: 'key-looks-test' });
    const book = pgOrderBook(one.kysely);
    const userId = await seedUser(10_000);
    await tdb.query(`INSERT INTO idempotency_keys (user_id, key, fingerprint, result) VALUES ($1, 'done', 'f', '{"orderId":"x"}')`, [userId]);
    try {
      await whileHeld(`SELECT idempotency_claim($1, 'held')`, [userId], async () => {
        const keys = ['free-1', 'held', 'done', 'free-2', 'held', 'free-3', 'done', 'free-4', 'free-5', 'free-6'];
        const states = await Promise.all(keys.map((k) => book.keyState(userId, k)));
        expect(states).toEqual(
          keys.map((k) =>
            k === 'done' ? { state: 'completed', stored: { fingerprint: 'f', result: { orderId: 'x' } } } : { state: k === 'held' ? 'in_flight' : 'free' },
          ),
        );
      });
      const { rows } = await one.pool.query<{ runs: number }>(
        `SELECT (generic_plans + custom_plans)::int AS runs FROM pg_prepared_statements WHERE name = 'key_states'`,
      );
      expect(rows[0]!.runs).toBeLessThan(10);
      // A look takes the key only for its own statement.
      expect(await tdb.query(`SELECT idempotency_claim($1, 'free-1') AS ok`, [userId])).toEqual([{ ok: true }]);
    } finally {
      await one.close();
    }
  });

  test("the order path's statements are prepared once per connection, keyed or not, and survive a new connection", async () => {
    const one = openDatabase({ connectionString: tdb.url, max: 1, applicationName: 'prepared-test' });
    const book = pgOrderBook(one.kysely);
    const userId = await seedUser(10_000);
    const productId = await seedProduct(1_000, 5);
    // pool.query takes the pool's only connection: the one the book's statements ran on.
    const statements = async () =>
      Object.fromEntries(
        (
          await one.pool.query<{ name: string; runs: number }>(
            'SELECT name, (generic_plans + custom_plans)::int AS runs FROM pg_prepared_statements ORDER BY name',
          )
        ).rows.map((r) => [r.name, r.runs]),
      );
    try {
      const unkeyed = await book.snapshot(userId, [productId], null, null);
      const keyed = await book.snapshot(userId, [productId], null, 'k1');
      expect(keyed).toEqual(unkeyed);
      const w = decided(userId, [{ productId, quantity: 1 }], keyed, { claim: { key: 'k1', fingerprint: 'f', result: { orderId: 'x' } } });
      expect(await book.write(w)).toBe('written');
      expect((await book.snapshot(userId, [productId], null, 'k1')).completed).toEqual({ fingerprint: 'f', result: { orderId: 'x' } });
      expect(await book.keyState(userId, 'k1')).toEqual({ state: 'completed', stored: { fingerprint: 'f', result: { orderId: 'x' } } });
      expect((await book.changeSnapshot(w.order.orderId, null)).order?.orderId).toBe(w.order.orderId);
      expect(await statements()).toEqual({ change_snapshot: 1, key_states: 1, place_snapshot: 3, write_order_group: 1 });
      // The functions behind them plan their statements once too, whatever the values (migrations 0009, 0010); the
      // group write and the key lookup with sequential scans off, whatever a partition's statistics said (0016).
      const { rows: settings } = await one.pool.query<{ proname: string; proconfig: string[] }>(
        `SELECT proname, proconfig FROM pg_proc WHERE proname IN ('place_snapshot', 'key_state', 'write_order_group', 'completed_key') ORDER BY proname`,
      );
      const generic = 'plan_cache_mode=force_generic_plan';
      expect(settings).toEqual([
        { proname: 'completed_key', proconfig: ['enable_seqscan=off'] },
        { proname: 'key_state', proconfig: [generic] },
        { proname: 'place_snapshot', proconfig: [generic] },
        { proname: 'write_order_group', proconfig: [generic, 'enable_seqscan=off'] },
      ]);

      // The server ends the connection (a restart, an administrator): the pool's next one prepares again.
      await tdb.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1', ['prepared-test']);
      for (let i = 0; i < 200 && one.pool.totalCount > 0; i++) await new Promise((r) => setTimeout(r, 10));
      const again = await book.snapshot(userId, [productId], null, null);
      expect(again.products).toEqual([{ productId, price: 1_000, stock: 4 }]);
      expect(await statements()).toEqual({ place_snapshot: 1 });
    } finally {
      await one.close();
    }
  });

  test('a group cancelled by statement_timeout writes nothing and fails with 57014', async () => {
    // A pool whose statements give up after 300 ms, and a product row held by another session.
    const impatient = openDatabase({ connectionString: tdb.url, max: 2, statementTimeoutMs: 300 });
    const book = pgOrderBook(impatient.kysely);
    const userId = await seedUser(10_000);
    const productId = await seedProduct(1_000, 5);
    try {
      await whileHeld('SELECT 1 FROM products WHERE id = $1 FOR UPDATE', [productId], async () => {
        const w = decided(userId, [{ productId, quantity: 1 }], await book.snapshot(userId, [productId], null, null));
        await expect(book.write(w)).rejects.toMatchObject({ code: '57014' });
        expect(await tdb.query('SELECT 1 FROM orders WHERE id = $1', [w.order.orderId])).toEqual([]);
      });
    } finally {
      await impatient.close();
    }
  });

  test('a group whose connection is killed mid-write: the writer waits for its end, finds nothing written, and reports rolled_back', async () => {
    const book = pgOrderBook(tdb.db.kysely);
    const userId = await seedUser(10_000);
    const productId = await seedProduct(1_000, 5);
    await whileHeld('SELECT 1 FROM products WHERE id = $1 FOR UPDATE', [productId], async () => {
      const w = decided(userId, [{ productId, quantity: 1 }], await book.snapshot(userId, [productId], null, null));
      const outcome = book.write(w);
      let pid: number | undefined;
      for (let i = 0; i < 200 && pid === undefined; i++) {
        [{ pid } = { pid: undefined }] = await tdb.query<{ pid: number }>(
          `SELECT pid FROM pg_stat_activity WHERE query LIKE '%write_order_group(%' AND pid <> pg_backend_pid() AND datname = current_database()`,
        );
        if (pid === undefined) await new Promise((r) => setTimeout(r, 10));
      }
      expect(pid).toBeDefined();
      await tdb.query('SELECT pg_terminate_backend($1)', [pid]);
      expect(await outcome).toBe('rolled_back');
      expect(await tdb.query('SELECT 1 FROM orders WHERE id = $1', [w.order.orderId])).toEqual([]);
    });
  });

  test('an answer lost after the commit is not a failure: the writer finds the orders and reports them placed', async () => {
    // A connection that loses every write_order_group answer after the server has committed it.
    const { Kysely, PostgresDialect } = await import('kysely');
    const lossy = new Kysely<never>({
      dialect: new PostgresDialect({ pool: tdb.db.pool }),
      plugins: [
        {
          transformQuery: (args) => args.node,
          transformResult: async (args) => {
            if (JSON.stringify(args.result.rows).includes('written')) throw new Error('Connection terminated unexpectedly');
            return args.result;
          },
        },
      ],
    });
    const userId = await seedUser(10_000);
    const productId = await seedProduct(1_000, 5);
    const seen = await pgOrderBook(tdb.db.kysely).snapshot(userId, [productId], null, null);
    const writes = [decided(userId, [{ productId, quantity: 1 }], seen), decided(userId, [{ productId, quantity: 2 }], seen)];
    expect(await writeOrderGroup(lossy as never, writes, 5_000)).toEqual(['written', 'written']);
    expect((await tdb.query<{ stock: number }>('SELECT stock FROM products WHERE id = $1', [productId]))[0]!.stock).toBe(2);
  });
});

describe('order write fences', () => {
  test('a group that reaches the database after its sender settled it writes nothing', async () => {
    const userId = await seedUser(10_000);
    const productId = await seedProduct(1_000, 5);
    const w = oneUnitOrder(userId, productId);
    const token = '4242424242';
    await tdb.query('INSERT INTO order_write_fences (token) VALUES ($1)', [token]);
    const batch = JSON.stringify([batchEntry(w)]);
    await expect(tdb.query('SELECT write_order_group($1::jsonb, $2::bigint)', [batch, token])).rejects.toMatchObject({ code: 'OC003' });
    expect(await tdb.query('SELECT 1 FROM orders WHERE id = $1', [w.order.orderId])).toEqual([]);
  });
});

describe('an order whose guard does not describe it (a bug)', () => {
  test('fails alone and loudly; its group-mates commit', async () => {
    const book = pgOrderBook(tdb.db.kysely, { writesInFlight: 1 });
    const userId = await seedUser(10_000);
    const productId = await seedProduct(1_000, 5);
    const good = oneUnitOrder(userId, productId);
    // Takes a unit of a product that does not exist; the guard names a real one instead.
    const bad = oneUnitOrder(userId, productId);
    const broken: Decided = { ...bad, effects: { ...bad.effects, stockChanges: [{ productId: 999_999, change: -1 }] } };
    const outcomes = await Promise.allSettled([book.write(oneUnitOrder(userId, productId)), book.write(good), book.write(broken)]);
    expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'fulfilled', 'rejected']);
    expect((outcomes[1] as PromiseFulfilledResult<string>).value).toBe('written');
    expect(await tdb.query('SELECT 1 FROM orders WHERE id = $1', [broken.order.orderId])).toEqual([]);
    expect(await tdb.query('SELECT 1 FROM orders WHERE id = $1', [good.order.orderId])).toEqual([{ '?column?': 1 }]);
  });
});
