import { readFile } from 'node:fs/promises';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { auditInvariants, migrate } from '@shop/adapters-postgres';
import { describeCatalog } from '../../../test/support/catalog.ts';
import { createTestDatabase, type TestDatabase } from '../../../test/support/database.ts';
import { eventually } from '../../../test/support/eventually.ts';
import { startTestApp, type TestApp } from '../../../test/support/http.ts';
import { startApiProcess } from '../../../test/support/processes.ts';
import { Receiver } from '../../../test/support/receiver.ts';

/**
 * The upgrade an operator runs: a database made and filled by the previous release (853825d, a
 * dump of its own writes through its API: packages/adapters-postgres/test/fixtures/README.md),
 * started on by this code. Nothing may be lost, the schema must end as a new database's, and the
 * old rows must serve as new ones do.
 */
const FIXTURE = new URL('../../../packages/adapters-postgres/test/fixtures/release-853825d.sql', import.meta.url);

/**
 * Every row of every table, as text, per table, over the columns each table had before the
 * upgrade (a column a migration adds is new, not a change): equal digests, equal contents.
 */
async function contents(tdb: TestDatabase, columns: Record<string, string[]>): Promise<Record<string, { rows: number; digest: string }>> {
  const out: Record<string, { rows: number; digest: string }> = {};
  for (const [table, cols] of Object.entries(columns)) {
    const [r] = await tdb.query<{ rows: number; digest: string }>(
      `SELECT count(*)::int AS rows, coalesce(md5(string_agg(t::text, E'\\n' ORDER BY t::text)), '') AS digest
         FROM (SELECT ${cols.map((c) => `"${c}"`).join(', ')} FROM ${table}) t`,
    );
    out[table] = r!;
  }
  return out;
}

let old: TestDatabase;
let fresh: TestDatabase;
let oldColumns: Record<string, string[]>;
let before: Record<string, { rows: number; digest: string }>;
let applied: string[];

beforeAll(async () => {
  old = await createTestDatabase({ migrate: false });
  // Its own connection: the dump empties the session's search_path.
  const loader = new pg.Client({ connectionString: old.url });
  await loader.connect();
  try {
    await loader.query(await readFile(FIXTURE, 'utf8'));
  } finally {
    await loader.end();
  }
  const columns = await old.query<{ t: string; c: string }>(
    `SELECT table_name AS t, column_name AS c FROM information_schema.columns
      WHERE table_schema = 'public' AND table_name <> 'schema_migrations' ORDER BY table_name, ordinal_position`,
  );
  oldColumns = {};
  for (const { t, c } of columns) (oldColumns[t] ??= []).push(c);
  before = await contents(old, oldColumns);
  ({ applied } = await migrate(old.db.pool));
  fresh = await createTestDatabase();
});
afterAll(async () => {
  await old?.drop();
  await fresh?.drop();
});

describe('upgrading a database of the previous release (853825d)', () => {
  test('applies what that release lacks, and records a checksum for every migration, its own included', async () => {
    expect(applied.slice(0, 6)).toEqual([
      '0011_drop_unused_functions.sql', '0012_partial_refunds.sql', '0013_release_compatibility.sql', '0014_partitioned_history.sql',
      '0015_events_leased_at_insert.sql', '0016_key_lookups_by_index.sql',
    ]);
    expect(applied.slice(6).every((a) => a.startsWith('definitions/'))).toBe(true);
    const history = await old.query<{ name: string; checksum: string | null }>('SELECT name, checksum FROM schema_migrations ORDER BY name');
    expect(history).toHaveLength(16);
    expect(history.every((h) => h.checksum !== null)).toBe(true);
  });

  test('partitions the history by time: each table\'s rows in the partition the conversion made, the periods after it made ahead', async () => {
    const tables = ['orders', 'order_items', 'balance_ledger', 'idempotency_keys', 'outbox_events'];
    const partitioned = await old.query<{ t: string }>(`SELECT relname AS t FROM pg_class WHERE relkind = 'p' ORDER BY 1`);
    expect(partitioned.map((r) => r.t)).toEqual([...tables].sort());
    for (const table of tables) {
      // Rows by the partition that holds them (tableoid): all in the first one, named for where it ends.
      const held = await old.query<{ part: string; n: number }>(`SELECT tableoid::regclass::text AS part, count(*)::int AS n FROM ${table} GROUP BY 1`);
      expect(held, table).toHaveLength(1);
      expect(held[0]!.part, table).toMatch(new RegExp(`^${table}_before_\\d{4}_\\d{2}`));
      expect(held[0]!.n, table).toBe(before[table]!.rows);
      // Daily tables: the days after its end, made ahead (monthly ones get next month's three days before it).
      const parts = await old.query<{ name: string }>(`SELECT inhrelid::regclass::text AS name FROM pg_inherits WHERE inhparent = $1::regclass`, [table]);
      if (table === 'idempotency_keys' || table === 'outbox_events') expect(parts.length, table).toBeGreaterThan(1);
    }
    // Writes after the conversion go on in the sequences the identities left.
    const [next] = await old.query<{ ledger: boolean; seq: boolean }>(`
      SELECT nextval('balance_ledger_seq') > (SELECT max(id) FROM balance_ledger) AS ledger,
             nextval('outbox_events_seq') > (SELECT max(seq) FROM outbox_events) AS seq`);
    expect(next).toEqual({ ledger: true, seq: true });
  });

  test('loses and changes no row', async () => {
    expect(before.orders!.rows).toBe(25);
    expect(before.idempotency_keys!.rows).toBe(18);
    expect(await contents(old, oldColumns)).toEqual(before);
    expect(await auditInvariants(old.db.pool, new Map())).toEqual([]);
  });

  test('says of the orders cancelled before refunds existed that they gave everything back', async () => {
    const cancelled = await old.query<{ refunded: boolean; units: boolean }>(
      `SELECT o.refunded_amount = o.paid_amount AS refunded,
              (SELECT bool_and(i.refunded_quantity = i.quantity) FROM order_items i WHERE i.order_id = o.id) AS units
         FROM orders o WHERE o.status = 'CANCELLED'`,
    );
    expect(cancelled).toHaveLength(6);
    expect(cancelled.every((c) => c.refunded && c.units)).toBe(true);
    const paid = await old.query<{ n: number }>(`SELECT count(*)::int AS n FROM orders WHERE status = 'PAID' AND refunded_amount = 0`);
    expect(paid[0]!.n).toBe(19);
  });

  test('ends with the catalog of a new database', async () => {
    expect(await describeCatalog(old.db.pool)).toEqual(await describeCatalog(fresh.db.pool));
  });

  describe('then serves the old rows as its own', () => {
    let receiver: Receiver;
    let app: TestApp;
    beforeAll(async () => {
      receiver = await new Receiver().start();
      // The fixture's orders are from the day it was made: a window of years keeps them cancellable.
      app = await startTestApp(old.url, { DATA_PLATFORM_URL: receiver.url, ORDER_CANCEL_DAYS: '3650', OUTBOX_POLL_MS: '50' });
    });
    afterAll(async () => {
      await app?.close();
      await receiver?.stop();
    });

    test('delivers every event the old release left undelivered, each order.cancelled after its order.paid', async () => {
      const undelivered = await old.query<{ id: string }>(`SELECT event_id::text AS id FROM outbox_events WHERE delivered_at IS NULL`);
      expect(undelivered).toHaveLength(31);
      const ids = () => new Set(receiver.accepted.map((e) => e.idempotencyKey));
      await eventually(() => undelivered.every((e) => ids().has(e.id)), 'the old events to arrive');
      const firstArrival = new Map<string, number>();
      for (const e of receiver.accepted) if (!firstArrival.has(e.idempotencyKey!)) firstArrival.set(e.idempotencyKey!, e.at);
      const pairs = await old.query<{ paid: string; cancelled: string }>(
        `SELECT p.event_id::text AS paid, c.event_id::text AS cancelled FROM outbox_events c JOIN outbox_events p ON p.event_id = c.follows`,
      );
      expect(pairs).toHaveLength(6);
      for (const { paid, cancelled } of pairs) expect(firstArrival.get(paid)!).toBeLessThan(firstArrival.get(cancelled)!);
    });

    test('replays a key the old release completed, for an order and for a cancel, with the first answer', async () => {
      const [keyed] = await old.query<{ user_id: number; key: string; order_id: string; coupon_id: number | null }>(
        `SELECT k.user_id::int, k.key, o.id::text AS order_id, o.coupon_id::int
           FROM idempotency_keys k JOIN orders o ON o.id = (k.result->>'orderId')::uuid
          WHERE k.key = 'fx-order-03'`,
      );
      const items = await old.query<{ productId: number; quantity: number }>(
        `SELECT product_id::int AS "productId", quantity FROM order_items WHERE order_id = $1 ORDER BY line_no`,
        [keyed!.order_id],
      );
      const token = await app.client.userToken(keyed!.user_id);
      const body = { userId: keyed!.user_id, items, ...(keyed!.coupon_id === null ? {} : { couponId: keyed!.coupon_id }) };
      const replay = await app.client.post('/orders', body, { token, headers: { 'idempotency-key': keyed!.key } });
      expect(replay.status).toBe(201);
      expect(replay.headers.get('idempotent-replayed')).toBe('true');
      expect(replay.body).toMatchObject({ orderId: keyed!.order_id, status: 'PAID' });

      const cancelReplay = await app.client.post(`/orders/${keyed!.order_id}/cancel`, undefined, {
        token,
        headers: { 'idempotency-key': 'fx-cancel-03' },
      });
      expect(cancelReplay.status).toBe(200);
      expect(cancelReplay.headers.get('idempotent-replayed')).toBe('true');
      expect(cancelReplay.body).toMatchObject({ orderId: keyed!.order_id, status: 'CANCELLED' });
    });

    test('cancels an order the old release placed, and places a new one on its coupon copy', async () => {
      const [paid] = await old.query<{ id: string; user_id: number; coupon_id: number }>(
        `SELECT id::text, user_id::int, coupon_id::int FROM orders WHERE status = 'PAID' AND coupon_id IS NOT NULL ORDER BY created_at LIMIT 1`,
      );
      const token = await app.client.userToken(paid!.user_id);
      const cancelled = await app.client.post(`/orders/${paid!.id}/cancel`, undefined, { token });
      expect(cancelled.status).toBe(200);
      expect(cancelled.body.status).toBe('CANCELLED');
      const [product] = await old.query<{ id: number }>(
        `SELECT p.id::int FROM products p, coupons c WHERE c.id = $1 AND p.stock > 0 AND p.price >= c.min_order_amount ORDER BY p.price LIMIT 1`,
        [paid!.coupon_id],
      );
      expect((await app.client.post(`/users/${paid!.user_id}/balance/charge`, { amount: 1_000_000 })).status).toBe(200);
      const placed = await app.client.post(
        '/orders',
        { userId: paid!.user_id, items: [{ productId: product!.id, quantity: 1 }], couponId: paid!.coupon_id },
        { token },
      );
      expect(placed.body).toMatchObject({ status: 'PAID', couponId: paid!.coupon_id });
      expect(await auditInvariants(old.db.pool, new Map())).toEqual([]);
    });
  });
});

describe('a start against a database whose migration history this code cannot vouch for', () => {
  test('stops, naming the migration that changed after it was applied, and serves nothing', async () => {
    const tdb = await createTestDatabase();
    try {
      await tdb.query(`UPDATE schema_migrations SET checksum = repeat('0', 64) WHERE name = '0003_best_sellers.sql'`);
      const start = startApiProcess(tdb.url);
      await expect(start).rejects.toThrow(/exited with 1 before it was ready/);
      await expect(start).rejects.toThrow(/migration 0003_best_sellers\.sql was changed after this database applied it/);
    } finally {
      await tdb.drop();
    }
  });
});
