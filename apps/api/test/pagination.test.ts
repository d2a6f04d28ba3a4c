import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../../test/support/database.ts';
import { startTestApp, type Client, type TestApp } from '../../../test/support/http.ts';

/**
 * Every paginated endpoint pages exactly: walking nextCursor returns every row once, none twice and
 * none skipped, in the endpoint's order, even when the rows were written in one transaction and
 * share one now(), and when they differ by a microsecond only (timestamptz keeps microseconds; a
 * JavaScript Date keeps milliseconds, so a cursor built from one falls between such rows).
 *
 * The rows are inserted with SQL, not through the API: that is how rows come to share a
 * timestamp. The relay is off so that no event is delivered (and leaves the list) mid-walk.
 */

let tdb: TestDatabase;
let app: TestApp;
let client: Client;

beforeAll(async () => {
  tdb = await createTestDatabase();
  app = await startTestApp(tdb.url, { OUTBOX_RELAY: 'off', TOP_SELLERS_REFRESH_MS: '3600000' });
  client = app.client;
});
afterAll(async () => {
  await app?.close();
  await tdb?.drop();
});

const ROWS = 40;
const PAGE = 3;

/** Follows nextCursor from the first page to the last, with the admin token; returns every item. */
async function walk<T>(path: string, key: (item: any) => T): Promise<T[]> {
  const seen: T[] = [];
  let cursor: string | null = null;
  for (let pages = 0; ; pages++) {
    expect(pages, 'pages').toBeLessThanOrEqual(ROWS);
    const sep = path.includes('?') ? '&' : '?';
    const res: { status: number; body: any } = await client.get(`${path}${sep}limit=${PAGE}${cursor ? `&cursor=${cursor}` : ''}`);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body.items.length).toBeLessThanOrEqual(PAGE);
    seen.push(...res.body.items.map(key));
    cursor = res.body.nextCursor;
    if (cursor === null) return seen;
    expect(res.body.items).toHaveLength(PAGE);
  }
}

/** Rows written in one transaction: one now() for all, some a microsecond or two later. */
const SAME_NOW = `now() + (i % 3) * interval '1 microsecond'`;

describe('paging is exact when rows share a timestamp', () => {
  test('GET /products', async () => {
    await tdb.query(`INSERT INTO products (name, price, stock, created_at, updated_at)
                     SELECT 'p' || i, 100, 1, now(), now() FROM generate_series(1, ${ROWS}) i`);
    const expected = (await tdb.query<{ id: number }>('SELECT id FROM products ORDER BY id')).map((r) => r.id);
    expect(expected).toHaveLength(ROWS);
    expect(await walk('/products', (p) => p.productId)).toEqual(expected);
  });

  test("GET /users/{userId}/orders", async () => {
    const { userId } = await client.createUser(0);
    await tdb.query(
      `INSERT INTO orders (id, user_id, status, total_amount, discount_amount, paid_amount, created_at)
       SELECT uuid_v7(now()), $1, 'PAID', 0, 0, 0, ${SAME_NOW} FROM generate_series(1, ${ROWS}) i`,
      [userId],
    );
    // Listed by id (UUIDv7, newest first; the key orders are partitioned on): ids of one millisecond
    // differ in their random bits only, and the cursor must survive that.
    const rows = await tdb.query<{ id: string }>(`SELECT id FROM orders WHERE user_id = $1 ORDER BY id DESC`, [userId]);
    expect(rows).toHaveLength(ROWS);
    expect(new Set(rows.map((r) => r.id.slice(0, 13))).size).toBe(1);
    expect(await walk(`/users/${userId}/orders`, (o) => o.orderId)).toEqual(rows.map((r) => r.id));
  });

  test('GET /users/{userId}/balance/history', async () => {
    const { userId } = await client.createUser(0);
    await tdb.query(
      `INSERT INTO balance_ledger (user_id, type, amount, balance_after, created_at)
       SELECT $1, 'CHARGE', 1, i, ${SAME_NOW} FROM generate_series(1, ${ROWS}) i`,
      [userId],
    );
    const expected = (await tdb.query<{ balance_after: number }>(
      'SELECT balance_after FROM balance_ledger WHERE user_id = $1 ORDER BY created_at DESC, id DESC',
      [userId],
    )).map((r) => r.balance_after);
    expect(expected).toHaveLength(ROWS);
    expect(await walk(`/users/${userId}/balance/history`, (e) => e.balanceAfter)).toEqual(expected);
  });

  test.each(['pending', 'failed'] as const)('GET /admin/events?status=%s', async (status) => {
    const type = `test.${status}`;
    await tdb.query(
      `INSERT INTO outbox_events (event_id, event_type, aggregate_id, payload, occurred_at, created_at, last_error)
       SELECT uuid_v7(now()), $1, 'aggregate-' || i, '{}'::jsonb, now(), ${SAME_NOW}, $2
       FROM generate_series(1, ${ROWS}) i`,
      [type, status === 'failed' ? 'HTTP 500' : null],
    );
    const rows = await tdb.query<{ event_id: string; us: string }>(
      `SELECT event_id, to_char(created_at, 'US') AS us FROM outbox_events
       WHERE delivered_at IS NULL AND (last_error IS NOT NULL) = $1 ORDER BY created_at, event_id`,
      [status === 'failed'],
    );
    expect(rows).toHaveLength(ROWS);
    expect(new Set(rows.map((r) => r.us)).size).toBeGreaterThan(1);
    expect(await walk(`/admin/events?status=${status}`, (e) => e.eventId)).toEqual(rows.map((r) => r.event_id));
  });
});
