import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { Pool } from 'undici';
import { signToken } from '@shop/adapters-http';
import { openDatabase, pgOrderBook, pgOutboxStore, pgReadStore, PgUnitOfWork, refreshSalesRollup } from '@shop/adapters-postgres';
import { placeOrder, systemClock, uuidV7 } from '@shop/application';
import { BURST_COUPONS, HOT_STOCK, type Seeded } from './seed.ts';
import { seededRandom } from './random.ts';

/**
 * `pnpm bench --scale`: the data of a service that has been running for a year, written straight
 * into the database with a few set-based statements (generate_series, no round trip per row), so
 * that the order path is measured against big tables rather than the default run's small ones.
 *
 * At factor 1: 1,000,000 users, 100,000 products, 5,000,000 orders over the 365 days before the
 * run, each with its 1–3 items (in product order, as the service writes them), its PAYMENT ledger
 * entry, and — 5 % of them — a coupon copy it used; each user's CHARGE entry; unused coupon
 * copies; the best-seller rollup folded up to the seeded orders (as the service's own rollup job
 * would have left it); and delivered `order.paid` events for the orders of the last 7 days less an
 * hour only. Older events are gone, as the relay's retention (OUTBOX_RETENTION_DAYS, 7 by default)
 * would have purged them; the hour keeps the seeded events clear of the purge during the run.
 * Idempotency keys are not seeded: the service forgets them after 48 h, the keyed workloads use
 * fresh keys, and they are read by primary key only.
 *
 * Every value is a deterministic function of the row's number (hashint8extended), so every table
 * can be written by its own statement and still agree with the others. Foreign keys, primary keys,
 * unique constraints and indexes of the big tables are dropped first and re-created afterwards
 * from their own definitions (as pg_dump's restore does): PostgreSQL checks every one of them
 * when it re-creates it, and the schema is compared before and after. CHECK constraints stay in
 * place throughout. Then VACUUM (FREEZE, ANALYZE) and a CHECKPOINT, as on a service whose old
 * rows autovacuum has long since processed, so no catch-up vacuum or checkpoint falls into the
 * measured windows.
 *
 * The load works on as many users and products as the default run's (`--users`, `--products`),
 * drawn at random from the whole tables (tokens are signed for each), so that the two runs differ
 * in the data's size and not in the load; its hot products and coupons are created through the
 * admin API, as in the default run.
 */

export const SCALE_FULL = { users: 1_000_000, products: 100_000, orders: 5_000_000, coupons: 20 } as const;
const HISTORY_DAYS = 365;
/** OUTBOX_RETENTION_DAYS' default: delivered events older than this have been purged by the relay. */
const RETENTION_DAYS = 7;
const CHARGE = 10_000_000;
const INITIAL_STOCK = 1_000_000;
const COUPON_VALID_DAYS = 30;
const DAY_MS = 86_400_000;
/** The best-seller rollup's advisory lock (packages/adapters-postgres/src/sales.ts). */
const ROLLUP_LOCK = [0x5e7a11, 2] as const;
/** Every table the seed writes; their keys, foreign keys and indexes are re-created after the load. */
const TABLES = ['users', 'products', 'coupons', 'orders', 'order_items', 'user_coupons', 'balance_ledger', 'outbox_events', 'product_sales_hourly'] as const;
/** The tables the order path reads or writes: a Seq Scan on one of them in its plans is flagged. */
const BIG = ['users', 'products', 'orders', 'order_items', 'balance_ledger', 'outbox_events', 'user_coupons'];

export interface ScalePlan {
  /** What ran: the statement as the service sends it, or a statement inside write_orders. */
  readonly what: string;
  readonly plan: string;
  /** Tables of BIG this plan reads with a Seq Scan. */
  readonly seqScans: string[];
  /** False for the background jobs that run beside the orders (relay, best-seller rollup). */
  readonly orderPath: boolean;
}

export interface ScaleInfo {
  readonly factor: number;
  readonly seeded: { users: number; products: number; orders: number; coupons: number };
  /** Exact row counts after seeding (and after the API created the run's hot products and coupons). */
  readonly rows: Record<string, number>;
  readonly tableBytes: Record<string, number>;
  readonly databaseBytes: number;
  readonly seedingSeconds: number;
  readonly steps: Array<{ step: string; seconds: number; rows?: number }>;
  readonly history: { from: string; to: string; eventsRetainedSince: string; retentionDays: number };
  /** Every seeded row was created before this: the run's own events are those created after. */
  readonly seededBefore: string;
  readonly load: { users: number; products: number; couponHolders: number };
  readonly schemaUnchanged: boolean;
  readonly plans: ScalePlan[];
  /** `table (statement)` for every Seq Scan on a big table in the order path's plans; empty = none. */
  readonly seqScansOnBigTables: string[];
  /** The same for the background jobs' plans (relay, best-seller rollup). */
  readonly seqScansOffOrderPath: string[];
}

export interface ScaleSeeded extends Seeded {
  readonly scale: ScaleInfo;
}

interface ScaleTarget {
  readonly baseUrl: string;
  readonly authSecret: string;
  readonly databaseUrl: string;
  readonly pool: pg.Pool;
}

const log = (line: string) => process.stderr.write(`  ${line}\n`);
const secondsSince = (t0: number) => Math.round((performance.now() - t0) / 10) / 100;

/** Seeds the database of `target` at `factor` × SCALE_FULL (1 = the full size; 0.01 for a quick check). */
export async function seedAtScale(
  target: ScaleTarget,
  factor: number,
  load: { readonly users: number; readonly products: number },
): Promise<ScaleSeeded> {
  if (!(factor > 0 && factor <= 10)) throw new Error(`--scale-factor must be in (0, 10], got ${factor}`);
  const U = Math.max(10, Math.round(SCALE_FULL.users * factor));
  const P = Math.max(10, Math.round(SCALE_FULL.products * factor));
  const N = Math.max(10, Math.round(SCALE_FULL.orders * factor));
  const C = Math.max(2, Math.round(SCALE_FULL.coupons * factor));
  const loadUsers = Math.min(U, load.users);
  const loadProducts = Math.min(P, load.products);
  const couponHolders = Math.max(1, Math.floor(loadUsers / 50));

  const t0 = performance.now();
  const steps: ScaleInfo['steps'] = [];
  const seedStart = Date.now();
  const historyEnd = seedStart - 60_000;
  const historyStart = historyEnd - HISTORY_DAYS * DAY_MS;
  const slot = Math.floor((historyEnd - historyStart) / N);
  if (slot < 2) throw new Error('too many orders for the history window');
  const retainedSince = seedStart - RETENTION_DAYS * DAY_MS + 3_600_000;
  const userSlot = Math.floor((HISTORY_DAYS * DAY_MS) / U);
  const productSlot = Math.floor((30 * DAY_MS) / P);

  const client = new pg.Client({ connectionString: target.databaseUrl, application_name: 'bench-scale-seed' });
  await client.connect();
  const q = (text: string, values?: unknown[]) => client.query(text, values);
  const step = async (name: string, text: string, values?: unknown[]) => {
    const t = performance.now();
    const r = await q(text, values);
    const s = { step: name, seconds: secondsSince(t), ...(r.rowCount !== null && r.command !== 'CREATE' ? { rows: r.rowCount } : {}) };
    steps.push(s);
    log(`${name}: ${s.seconds} s${s.rows !== undefined ? `, ${s.rows.toLocaleString('en-US')} rows` : ''}`);
    return r;
  };

  try {
    process.stderr.write(`seeding at scale ${factor}: ${U.toLocaleString('en-US')} users, ${P.toLocaleString('en-US')} products, ${N.toLocaleString('en-US')} orders…\n`);
    const empty = await q(`SELECT (SELECT count(*) FROM users) + (SELECT count(*) FROM products) + (SELECT count(*) FROM orders)
      + (SELECT count(*) FROM coupons) + (SELECT count(*) FROM balance_ledger) + (SELECT count(*) FROM product_sales_hourly) AS n`);
    if (Number(empty.rows[0].n) !== 0) throw new Error('--scale needs a fresh database (users, products, orders, coupons, ledger and rollup empty)');
    // The best-seller rollup job of the running service must not fold the seeded orders while they
    // are being written: its advisory lock is held until the seed has folded them itself.
    await q('SELECT pg_advisory_lock($1::int, $2::int)', [...ROLLUP_LOCK]);
    await q(`SET work_mem = '512MB'`);
    await q(`SET maintenance_work_mem = '2GB'`);
    await q('SET synchronous_commit = off');

    await q(functionsSql({ U, P, C, slot, historyStart, userSlot, productSlot }));

    // Keys, foreign keys and indexes of the seeded tables: saved, dropped, re-created after the load.
    const schemaBefore = await schemaOf(client);
    await q('BEGIN');
    for (const c of schemaBefore.constraints.filter((c) => c.type === 'f')) await q(`ALTER TABLE ${c.table} DROP CONSTRAINT ${c.name}`);
    for (const i of schemaBefore.indexes) await q(`DROP INDEX ${i.name}`);
    for (const c of schemaBefore.constraints.filter((c) => c.type !== 'f')) await q(`ALTER TABLE ${c.table} DROP CONSTRAINT ${c.name}`);
    await q('COMMIT');

    await step(
      'coupons',
      `INSERT INTO coupons (id, name, discount_type, discount_value, total_quantity, issued_quantity, min_order_amount, valid_days, created_at)
       OVERRIDING SYSTEM VALUE
       SELECT c, 'campaign ' || c, pg_temp.c_type(c), pg_temp.c_value(c), 1000000000, 0, 0, ${COUPON_VALID_DAYS}, pg_temp.ts(${historyStart} - ${DAY_MS})
       FROM generate_series(1, ${C}) c`,
    );
    // 5 % of the orders used a coupon copy of their user's; a user holds one copy of a coupon, so a
    // second draw of the same (user, coupon) leaves its order without a coupon.
    await step(
      'staging: coupon uses',
      `CREATE UNLOGGED TABLE scale_seed_coupon_use AS
       SELECT DISTINCT ON (user_id, coupon) k, user_id, coupon FROM (
         SELECT k, pg_temp.o_user(k) AS user_id, 1 + pg_temp.h(k, 21) % ${C} AS coupon
         FROM generate_series(1, ${N}::bigint) k WHERE pg_temp.h(k, 20) % 20 = 0) s
       ORDER BY user_id, coupon, k`,
    );
    await step(
      'staging: orders',
      `CREATE UNLOGGED TABLE scale_seed_orders AS
       SELECT k, pg_temp.uuid7(x.ms, k, 10) AS id, pg_temp.o_user(k) AS user_id, x.ms, x.n, x.a, x.b, x.c, t.total, u.coupon,
              CASE WHEN u.coupon IS NULL THEN 0
                   WHEN pg_temp.c_type(u.coupon) = 'FIXED' THEN least(pg_temp.c_value(u.coupon), t.total)
                   ELSE t.total * pg_temp.c_value(u.coupon) / 100 END AS discount
       FROM generate_series(1, ${N}::bigint) k
       CROSS JOIN LATERAL (SELECT pg_temp.o_ms(k) AS ms, pg_temp.o_lines(k) AS n, pg_temp.cand(k, 1) AS a, pg_temp.cand(k, 2) AS b, pg_temp.cand(k, 3) AS c OFFSET 0) x
       CROSS JOIN LATERAL (SELECT ${lineAmount(1)} + CASE WHEN x.n >= 2 THEN ${lineAmount(2)} ELSE 0 END
                                  + CASE WHEN x.n >= 3 THEN ${lineAmount(3)} ELSE 0 END AS total OFFSET 0) t
       LEFT JOIN scale_seed_coupon_use u USING (k)
       ORDER BY k`,
    );
    await step(
      'orders',
      `INSERT INTO orders (id, user_id, status, total_amount, discount_amount, paid_amount, coupon_id, created_at)
       SELECT id, user_id, 'PAID', total, discount, total - discount, coupon, pg_temp.ts(ms) FROM scale_seed_orders ORDER BY k`,
    );
    await step(
      'order_items',
      `INSERT INTO order_items (order_id, line_no, product_id, quantity, unit_price, line_amount)
       SELECT s.id, j, l.product_id, pg_temp.qty(s.k, j), pg_temp.price(l.product_id), pg_temp.qty(s.k, j) * pg_temp.price(l.product_id)
       FROM scale_seed_orders s CROSS JOIN LATERAL generate_series(1, s.n) j
       CROSS JOIN LATERAL (SELECT ${lineProduct('s', 'j')} AS product_id OFFSET 0) l`,
    );
    // Ids in time order: every user's CHARGE on sign-up (before any order), then the PAYMENTs in
    // order; balance_after runs down each user's payments.
    await step(
      'balance_ledger: CHARGE',
      `INSERT INTO balance_ledger (id, user_id, type, amount, balance_after, order_id, created_at) OVERRIDING SYSTEM VALUE
       SELECT i, i, 'CHARGE', ${CHARGE}, ${CHARGE}, NULL, pg_temp.ts(pg_temp.u_ms(i)) FROM generate_series(1, ${U}::bigint) i`,
    );
    await step(
      'balance_ledger: PAYMENT',
      `INSERT INTO balance_ledger (id, user_id, type, amount, balance_after, order_id, created_at) OVERRIDING SYSTEM VALUE
       SELECT ${U} + k, user_id, 'PAYMENT', -(total - discount),
              ${CHARGE} - sum(total - discount) OVER (PARTITION BY user_id ORDER BY k), id, pg_temp.ts(ms)
       FROM scale_seed_orders ORDER BY k`,
    );
    await step(
      'users',
      `INSERT INTO users (id, name, balance, created_at) OVERRIDING SYSTEM VALUE
       SELECT i, 'user ' || i, ${CHARGE} - coalesce(p.paid, 0), pg_temp.ts(pg_temp.u_ms(i))
       FROM generate_series(1, ${U}::bigint) i
       LEFT JOIN (SELECT user_id, sum(total - discount) AS paid FROM scale_seed_orders GROUP BY user_id) p ON p.user_id = i
       ORDER BY i`,
    );
    // Stock as it stands after the seeded sales: initial stock − units sold.
    await step(
      'products',
      `INSERT INTO products (id, name, price, stock, created_at, updated_at) OVERRIDING SYSTEM VALUE
       SELECT i, 'product ' || i, pg_temp.price(i), ${INITIAL_STOCK} - coalesce(s.sold, 0), pg_temp.ts(pg_temp.p_ms(i)),
              coalesce(s.last_sale, pg_temp.ts(pg_temp.p_ms(i)))
       FROM generate_series(1, ${P}::bigint) i
       LEFT JOIN (SELECT l.product_id, sum(pg_temp.qty(o.k, j)) AS sold, pg_temp.ts(max(o.ms)) AS last_sale
                  FROM scale_seed_orders o CROSS JOIN LATERAL generate_series(1, o.n) j
                  CROSS JOIN LATERAL (SELECT ${lineProduct('o', 'j')} AS product_id OFFSET 0) l
                  GROUP BY l.product_id) s ON s.product_id = i
       ORDER BY i`,
    );
    await step(
      'user_coupons: used',
      `INSERT INTO user_coupons (user_id, coupon_id, issued_at, expires_at, used_at, order_id)
       SELECT user_id, coupon, pg_temp.ts(ms - pg_temp.h(k, 22) % ${15 * DAY_MS}),
              pg_temp.ts(ms - pg_temp.h(k, 22) % ${15 * DAY_MS} + ${COUPON_VALID_DAYS * DAY_MS}), pg_temp.ts(ms), id
       FROM scale_seed_orders WHERE coupon IS NOT NULL ORDER BY k`,
    );
    await step(
      'user_coupons: unused',
      `INSERT INTO user_coupons (user_id, coupon_id, issued_at, expires_at)
       SELECT DISTINCT ON (user_id, coupon) user_id, coupon, pg_temp.ts(ms), pg_temp.ts(ms + ${COUPON_VALID_DAYS * DAY_MS}) FROM (
         SELECT j, 1 + pg_temp.h(j, 40) % ${U} AS user_id, 1 + pg_temp.h(j, 41) % ${C} AS coupon, ${historyStart} + pg_temp.h(j, 42) % ${historyEnd - historyStart} AS ms
         FROM generate_series(1, (SELECT count(*) FROM scale_seed_coupon_use)) j) g
       WHERE NOT EXISTS (SELECT 1 FROM scale_seed_coupon_use u WHERE u.user_id = g.user_id AND u.coupon = g.coupon)
       ORDER BY user_id, coupon, j`,
    );
    await step(
      'coupons: issued counts',
      `UPDATE coupons c SET issued_quantity = n.n, total_quantity = n.n + n.n / 10 + 1
       FROM (SELECT coupon_id, count(*)::int AS n FROM user_coupons GROUP BY coupon_id) n WHERE n.coupon_id = c.id`,
    );
    await step(
      'outbox_events: delivered, last 7 days',
      `INSERT INTO outbox_events (event_id, event_type, aggregate_id, payload, occurred_at, created_at, attempts, next_attempt_at, last_error, delivered_at)
       SELECT e.event_id, 'order.paid', s.id::text,
              jsonb_build_object('eventId', e.event_id, 'type', 'order.paid', 'occurredAt', pg_temp.iso(s.ms), 'data', jsonb_build_object(
                'orderId', s.id, 'userId', s.user_id, 'items', i.items, 'totalAmount', s.total, 'discountAmount', s.discount,
                'paidAmount', s.total - s.discount, 'couponId', s.coupon, 'createdAt', pg_temp.iso(s.ms))),
              pg_temp.ts(s.ms), pg_temp.ts(s.ms), 1, pg_temp.ts(s.ms + 30000), NULL, pg_temp.ts(s.ms + 20 + pg_temp.h(s.k, 51) % 480)
       FROM scale_seed_orders s
       CROSS JOIN LATERAL (SELECT pg_temp.uuid7(s.ms, s.k, 50) AS event_id OFFSET 0) e
       CROSS JOIN LATERAL (
         SELECT jsonb_agg(jsonb_build_object('productId', l.product_id, 'quantity', pg_temp.qty(s.k, j), 'unitPrice', pg_temp.price(l.product_id),
                          'lineAmount', pg_temp.qty(s.k, j) * pg_temp.price(l.product_id)) ORDER BY j) AS items
         FROM generate_series(1, s.n) j CROSS JOIN LATERAL (SELECT ${lineProduct('s', 'j')} AS product_id OFFSET 0) l) i
       WHERE s.ms >= ${retainedSince}
       ORDER BY s.k`,
    );
    // The fold below takes the orders of transactions older than every running one: wait until
    // the seed's own transactions are (the service's are short).
    for (;;) {
      const r = await q(`SELECT pg_snapshot_xmin(pg_current_snapshot()) > (SELECT xact_id FROM orders LIMIT 1) AS past`);
      if (r.rows[0].past) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    // The rollup job's own fold (packages/adapters-postgres/src/sales.ts), over every seeded order:
    // the table starts empty, so a plain INSERT instead of its ON CONFLICT (its key is re-created below).
    await step(
      'product_sales_hourly: rollup fold',
      `WITH bounds AS (
         SELECT s.processed_until AS lo, pg_snapshot_xmin(pg_current_snapshot()) AS hi
         FROM rollup_state s WHERE s.name = 'product_sales_hourly'
       ), fresh AS (
         SELECT date_trunc('hour', o.created_at) AS hour, i.product_id, sum(i.quantity)::bigint AS quantity
         FROM orders o JOIN order_items i ON i.order_id = o.id, bounds b
         WHERE o.status = 'PAID' AND o.xact_id >= b.lo AND o.xact_id < b.hi
         GROUP BY 1, 2
       ), folded AS (
         INSERT INTO product_sales_hourly (hour, product_id, quantity) SELECT hour, product_id, quantity FROM fresh RETURNING 1
       ), moved AS (
         UPDATE rollup_state SET processed_until = (SELECT hi FROM bounds) WHERE name = 'product_sales_hourly'
       )
       SELECT 1 FROM folded`,
    );
    await q('DROP TABLE scale_seed_orders, scale_seed_coupon_use');

    // Keys first (the foreign keys need them), then indexes, then the foreign keys, each checked
    // by PostgreSQL against every row as it is added.
    const tRebuild = performance.now();
    for (const c of schemaBefore.constraints.filter((c) => c.type !== 'f')) await q(`ALTER TABLE ${c.table} ADD CONSTRAINT ${c.name} ${c.def}`);
    for (const i of schemaBefore.indexes) await q(i.def);
    for (const c of schemaBefore.constraints.filter((c) => c.type === 'f')) await q(`ALTER TABLE ${c.table} ADD CONSTRAINT ${c.name} ${c.def}`);
    steps.push({ step: 'keys, indexes, foreign keys re-created and checked', seconds: secondsSince(tRebuild) });
    log(`keys, indexes, foreign keys re-created and checked: ${secondsSince(tRebuild)} s`);
    const schemaAfter = await schemaOf(client);
    const schemaUnchanged = JSON.stringify(schemaAfter) === JSON.stringify(schemaBefore);
    if (!schemaUnchanged) throw new Error(`the schema differs after seeding:\n${JSON.stringify(schemaBefore)}\n${JSON.stringify(schemaAfter)}`);
    for (const t of ['users', 'products', 'coupons', 'balance_ledger']) {
      await q(`SELECT setval(pg_get_serial_sequence('${t}', 'id'), (SELECT max(id) FROM ${t}))`);
    }
    await q('SELECT pg_advisory_unlock($1::int, $2::int)', [...ROLLUP_LOCK]);

    await step('VACUUM (FREEZE, ANALYZE)', `VACUUM (FREEZE, ANALYZE) ${TABLES.join(', ')}, rollup_state`);
    try {
      await step('CHECKPOINT', 'CHECKPOINT');
    } catch (err) {
      log(`CHECKPOINT not allowed here (${(err as Error).message}); skipped`);
    }
    const seedingSeconds = secondsSince(t0);
    log(`seeded in ${seedingSeconds} s`);

    // The run's own rows, through the admin API as in the default run.
    const api = await adminPoster(target.baseUrl, target.authSecret);
    const initialStock = new Map<number, number>();
    for (let i = 1; i <= P; i++) initialStock.set(i, INITIAL_STOCK);
    const product = async (name: string) => {
      const { productId } = await api.post('/admin/products', { name, price: 9_900, stock: HOT_STOCK });
      initialStock.set(productId, HOT_STOCK);
      return productId as number;
    };
    const hotProductId = await product('hot product');
    const hotKeyedProductId = await product('hot product (keyed orders)');
    const serviceSql = await product('hot product (ceiling, service SQL)');
    const plainRowLock = await product('hot product (ceiling, plain row lock)');
    const { couponId } = await api.post('/admin/coupons', { name: 'flash 100', discountType: 'FIXED', discountValue: 1_000, totalQuantity: BURST_COUPONS });
    const { couponId: mixedCouponId } = await api.post('/admin/coupons', { name: 'mixed 10%', discountType: 'RATE', discountValue: 10, totalQuantity: couponHolders });
    // The load's users and products: random samples spread over the whole tables.
    const userIds = sample(U, loadUsers, seededRandom(11));
    const productIds = sample(P, loadProducts, seededRandom(12)).sort((a, b) => a - b);
    const holders = userIds.slice(0, couponHolders);
    await Promise.all(
      Array.from({ length: 16 }, async (_, w) => {
        for (let i = w; i < holders.length; i += 16) await api.post(`/admin/coupons/${mixedCouponId}/grant`, { userId: holders[i] });
      }),
    );
    await api.close();

    const plans = await orderPathPlans(
      target.databaseUrl,
      userIds[0]!,
      [productIds[Math.floor(productIds.length / 3)]!, productIds[Math.floor((2 * productIds.length) / 3)]!, productIds[productIds.length - 1]!],
      userIds.slice(1, 33),
      P,
    );
    const seqScansOf = (orderPath: boolean) => plans.filter((p) => p.orderPath === orderPath).flatMap((p) => p.seqScans.map((t) => `${t} (${p.what})`));
    const seqScansOnBigTables = seqScansOf(true);
    const seqScansOffOrderPath = seqScansOf(false);
    process.stderr.write(`order path plans: ${seqScansOnBigTables.length === 0 ? 'no Seq Scan on a big table' : `Seq Scan on ${seqScansOnBigTables.join('; ')}`}\n`);
    if (seqScansOffOrderPath.length > 0) process.stderr.write(`background jobs' plans: Seq Scan on ${seqScansOffOrderPath.join('; ')}\n`);

    const rows: Record<string, number> = {};
    const tableBytes: Record<string, number> = {};
    for (const t of [...TABLES, 'idempotency_keys']) {
      const r = await q(`SELECT count(*)::bigint AS n, pg_total_relation_size('${t}') AS bytes FROM ${t}`);
      rows[t] = Number(r.rows[0].n);
      tableBytes[t] = Number(r.rows[0].bytes);
    }
    const databaseBytes = Number((await q('SELECT pg_database_size(current_database()) AS b')).rows[0].b);

    const scale: ScaleInfo = {
      factor,
      seeded: { users: U, products: P, orders: N, coupons: C },
      rows,
      tableBytes,
      databaseBytes,
      seedingSeconds,
      steps,
      history: {
        from: new Date(historyStart).toISOString(),
        to: new Date(historyEnd).toISOString(),
        eventsRetainedSince: new Date(retainedSince).toISOString(),
        retentionDays: RETENTION_DAYS,
      },
      seededBefore: new Date(seedStart).toISOString(),
      load: { users: userIds.length, products: productIds.length, couponHolders: holders.length },
      schemaUnchanged,
      plans,
      seqScansOnBigTables,
      seqScansOffOrderPath,
    };
    return {
      fixture: { userIds, productIds, hotProductId, hotKeyedProductId, couponId, couponHolders: holders, mixedCouponId },
      ceilingHotProducts: { serviceSql, plainRowLock },
      initialStock,
      scale,
    };
  } finally {
    await client.end();
  }
}

/** The audit's and the event check's view of the seeded history (see main.ts). */
export function scaleAuditOptions(scale: ScaleInfo): { eventsPurgedBefore: Date } {
  return { eventsPurgedBefore: new Date(scale.history.eventsRetainedSince) };
}

/** `k` distinct ids out of 1..n, uniformly (Floyd's algorithm), in random order. */
function sample(n: number, k: number, rand: () => number): number[] {
  const chosen = new Set<number>();
  for (let j = n - k + 1; j <= n; j++) {
    const t = 1 + Math.floor(rand() * j);
    chosen.add(chosen.has(t) ? j : t);
  }
  const out = [...chosen];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

/**
 * The seed's deterministic functions, in pg_temp (this session only). All are plain SQL
 * expressions, which PostgreSQL inlines into the statements that call them.
 * - h(x, s): 63 pseudo-random bits of x, one stream per s.
 * - o_user(k), o_ms(k): order k's user and time (ms): k-th slot of the history, so times rise with k.
 * - o_lines(k): 1–3 lines; cand(k, m): its m-th product, distinct for m = 1..3 (stride < P/2).
 * - qty(k, j): 1, or 2 for one line in ten; price(p): 1,000–49,000 won, as the default run's.
 * - u_ms(i), p_ms(i): sign-up of user i over the year before the history; products in its last month.
 * - c_type(c), c_value(c): coupon c: odd FIXED 1,000–5,000 won, even RATE 5–20 %.
 * - uuid7(ms, k, s): a UUIDv7 of time ms, as the service's ids; iso(ms): JavaScript's toISOString().
 */
function functionsSql(p: { U: number; P: number; C: number; slot: number; historyStart: number; userSlot: number; productSlot: number }): string {
  const stride = Math.max(1, Math.floor((p.P - 1) / 2));
  const fn = (sig: string, ret: string, body: string) =>
    `CREATE FUNCTION pg_temp.${sig} RETURNS ${ret} LANGUAGE sql IMMUTABLE AS $f$ SELECT ${body} $f$;`;
  return [
    fn('h(x bigint, s bigint)', 'bigint', 'hashint8extended(x, s) & 9223372036854775807'),
    fn('ts(ms bigint)', 'timestamptz', `timestamptz 'epoch' + ms * interval '1 millisecond'`),
    fn('iso(ms bigint)', 'text', `to_char((timestamptz 'epoch' + ms * interval '1 millisecond') AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`),
    fn('o_user(k bigint)', 'bigint', `1 + pg_temp.h(k, 1) % ${p.U}`),
    fn('o_ms(k bigint)', 'bigint', `${p.historyStart} + (k - 1) * ${p.slot} + pg_temp.h(k, 2) % ${p.slot}`),
    fn('o_lines(k bigint)', 'int', `1 + (pg_temp.h(k, 3) % ${Math.min(3, p.P)})::int`),
    fn('cand(k bigint, m int)', 'bigint', `1 + (pg_temp.h(k, 4) + (m - 1) * (1 + pg_temp.h(k, 5) % ${stride})) % ${p.P}`),
    fn('qty(k bigint, j int)', 'int', `CASE WHEN pg_temp.h(k * 4 + j, 6) % 10 = 0 THEN 2 ELSE 1 END`),
    fn('price(p bigint)', 'bigint', `1000 + (pg_temp.h(p, 7) % 49) * 1000`),
    fn('u_ms(i bigint)', 'bigint', `${p.historyStart - HISTORY_DAYS * DAY_MS} + (i - 1) * ${p.userSlot} + pg_temp.h(i, 8) % ${p.userSlot}`),
    fn('p_ms(i bigint)', 'bigint', `${p.historyStart - 30 * DAY_MS} + (i - 1) * ${p.productSlot} + pg_temp.h(i, 9) % ${Math.max(1, p.productSlot)}`),
    fn('c_type(c bigint)', 'text', `CASE WHEN c % 2 = 1 THEN 'FIXED' ELSE 'RATE' END`),
    fn('c_value(c bigint)', 'bigint', `CASE WHEN c % 2 = 1 THEN 1000 * (1 + pg_temp.h(c, 30) % 5) ELSE 5 + pg_temp.h(c, 31) % 16 END`),
    fn(
      'uuid7(ms bigint, k bigint, s bigint)',
      'uuid',
      `(lpad(to_hex(ms), 12, '0') || '7' || lpad(to_hex(pg_temp.h(k, s) % 4096), 3, '0') || to_hex(8 + pg_temp.h(k, s + 1) % 4)
        || lpad(to_hex(pg_temp.h(k, s + 2) % 1152921504606846976), 15, '0'))::uuid`,
    ),
  ].join('\n');
}

/** Line j's product of the order in row `r` (columns n, a, b, c): its candidates in product order. */
function lineProduct(r: string, j: string): string {
  const [a, b, c] = [`${r}.a`, `${r}.b`, `${r}.c`];
  return `CASE WHEN ${r}.n = 1 THEN ${a}
    WHEN ${r}.n = 2 THEN CASE WHEN ${j} = 1 THEN least(${a}, ${b}) ELSE greatest(${a}, ${b}) END
    WHEN ${j} = 1 THEN least(${a}, ${b}, ${c}) WHEN ${j} = 3 THEN greatest(${a}, ${b}, ${c})
    ELSE ${a} + ${b} + ${c} - least(${a}, ${b}, ${c}) - greatest(${a}, ${b}, ${c}) END`;
}

/** Line j's amount (j a literal) of order k, from the lateral `x`. */
function lineAmount(j: 1 | 2 | 3): string {
  const product = lineProduct('x', String(j));
  return `pg_temp.qty(k, ${j}) * pg_temp.price(${product})`;
}

interface SchemaObjects {
  readonly constraints: Array<{ table: string; name: string; type: string; def: string }>;
  readonly indexes: Array<{ table: string; name: string; def: string }>;
}

/** Primary keys, unique constraints and foreign keys touching TABLES, and their other indexes. */
async function schemaOf(client: pg.Client): Promise<SchemaObjects> {
  const tables = TABLES.map((t) => `'${t}'::regclass`).join(', ');
  const constraints = await client.query<{ table: string; name: string; type: string; def: string }>(`
    SELECT c.conrelid::regclass::text AS "table", quote_ident(c.conname) AS name, c.contype::text AS type, pg_get_constraintdef(c.oid) AS def
    FROM pg_constraint c
    WHERE c.contype IN ('p', 'u', 'f') AND (c.conrelid IN (${tables}) OR c.confrelid IN (${tables}))
    ORDER BY 1, 2`);
  const indexes = await client.query<{ table: string; name: string; def: string }>(`
    SELECT i.indrelid::regclass::text AS "table", i.indexrelid::regclass::text AS name, pg_get_indexdef(i.indexrelid) AS def
    FROM pg_index i
    WHERE i.indrelid IN (${tables})
      AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid AND c.contype IN ('p', 'u', 'x'))
    ORDER BY 1, 2`);
  return { constraints: constraints.rows, indexes: indexes.rows };
}

async function adminPoster(baseUrl: string, authSecret: string) {
  const admin = `Bearer ${await signToken(new TextEncoder().encode(authSecret), { admin: true })}`;
  const pool = new Pool(baseUrl, { connections: 16 });
  return {
    async post(path: string, body: unknown): Promise<any> {
      const res = await pool.request({ method: 'POST', path, headers: { authorization: admin, 'content-type': 'application/json' }, body: JSON.stringify(body) });
      const text = await res.body.text();
      if (res.statusCode >= 300) throw new Error(`seed ${path}: ${res.statusCode} ${text}`);
      return JSON.parse(text);
    },
    close: () => pool.close(),
  };
}

class Rollback extends Error {}

/**
 * The plans of the order path on the seeded tables, as the service's own code runs them: one real
 * order (1 unit of each of `productIds`, by `userId`) placed through the order use case and the
 * Postgres adapter — the snapshot query, then write_orders with every statement inside it — and
 * the relay's due-events claim and retention purge in a transaction rolled back afterwards. Each
 * statement's plan comes from auto_explain (ANALYZE, BUFFERS, nested statements), loaded in this
 * session only and sent back as notices. The order is a real one: it is audited with the run's.
 */
async function orderPathPlans(databaseUrl: string, userId: number, productIds: number[], groupUsers: number[], productCount: number): Promise<ScalePlan[]> {
  const url = new URL(databaseUrl);
  url.searchParams.set(
    'options',
    [
      'session_preload_libraries=auto_explain',
      'auto_explain.log_min_duration=0',
      'auto_explain.log_analyze=on',
      'auto_explain.log_buffers=on',
      'auto_explain.log_timing=on',
      'auto_explain.log_nested_statements=on',
      'auto_explain.log_level=notice',
    ]
      .map((o) => `-c ${o}`)
      .join(' '),
  );
  const db = openDatabase({ connectionString: url.toString(), max: 1, applicationName: 'bench-scale-explain' });
  let notices: string[] = [];
  db.pool.on('connect', (c) => c.on('notice', (n) => notices.push(n.message ?? '')));
  const plans: ScalePlan[] = [];
  const queryOf = (text: string) => /Query Text: ([\s\S]*?)\n(?=\S)/.exec(text)?.[1]?.replace(/\s+/g, ' ').trim() ?? '?';
  const take = (label: string, texts = notices, orderPath = true) => {
    for (const text of texts) {
      if (!/plan:/.test(text)) continue;
      const query = queryOf(text);
      const seqScans = [...new Set([...text.matchAll(/Seq Scan on (\w+)/g)].map((m) => m[1]!).filter((t) => BIG.includes(t)))];
      plans.push({ what: `${label}: ${query.length > 160 ? `${query.slice(0, 157)}…` : query}`, plan: text.trim(), seqScans, orderPath });
    }
    notices = [];
  };
  try {
    // The rollup job's lock, held by this session (its only connection) until this session's own
    // fold below: the service's job skips its turns meanwhile, so that fold has these orders to take.
    await db.pool.query('SELECT pg_advisory_lock($1::int, $2::int)', [...ROLLUP_LOCK]);
    notices = [];
    const deps = { uow: new PgUnitOfWork(db.kysely), book: pgOrderBook(db.kysely), reads: pgReadStore(db.kysely), clock: systemClock, ids: uuidV7 };
    await placeOrder(deps, { actor: { role: 'user', userId }, userId, items: productIds.map((productId) => ({ productId, quantity: 1 })) });
    take('POST /orders');
    // Under load the service writes orders in groups: 32 orders at once, two group writes in
    // flight, then the plans of the largest write_orders call (its statements are logged before
    // the call itself).
    const group = pgOrderBook(db.kysely, { writesInFlight: 1 });
    const rand = seededRandom(5);
    await Promise.all(
      Array.from({ length: 32 }, (_, i) => {
        const userId = groupUsers[i % groupUsers.length]!;
        return placeOrder({ ...deps, book: group }, { actor: { role: 'user', userId }, userId, items: [{ productId: 1 + Math.floor(rand() * productCount), quantity: 1 }] });
      }),
    );
    let largest: string[] = [];
    let current: string[] = [];
    let largestSize = 0;
    for (const text of notices) {
      if (/write_orders\(\$1::jsonb/.test(queryOf(text))) {
        const size = Math.max(0, ...[...current.join('\n').matchAll(/Index Scan using users_pkey on users[^\n]*rows=(\d+)/g)].map((m) => Number(m[1])));
        if (size > largestSize) [largest, largestSize] = [[...current, text], size];
        current = [];
      } else if (!/FROM users WHERE id = \$1\) AS balance/.test(text)) current.push(text);
    }
    take(`POST /orders ×32, a group write of ${largestSize} orders`, largest.filter((t) => !/^SELECT 1 FROM ONLY/m.test(queryOf(t))));
    await db.kysely
      .transaction()
      .execute(async (tx) => {
        await pgOutboxStore(tx).claim(100, 30_000);
        await pgOutboxStore(tx).purgeDelivered(new Date(Date.now() - RETENTION_DAYS * DAY_MS));
        throw new Rollback();
      })
      .catch((err) => {
        if (!(err instanceof Rollback)) throw err;
      });
    take('relay (rolled back)', notices, false);
    // The service folds new orders into the best-seller rollup every TOP_SELLERS_REFRESH_MS (2 s):
    // the fold of the orders above, as its job runs it.
    notices = [];
    const { ran } = await refreshSalesRollup(db.kysely);
    take(`best-seller rollup job${ran ? ', folding the orders above' : ' (did not run)'}`, notices, false);
    await db.pool.query('SELECT pg_advisory_unlock($1::int, $2::int)', [...ROLLUP_LOCK]);
    notices = [];
  } finally {
    await db.close();
  }
  return plans;
}

/** The scale section of bench.md. */
export function scaleMarkdown(s: ScaleInfo): string {
  const n = (x: number) => x.toLocaleString('en-US');
  const mib = (b: number) => `${n(Math.round(b / 2 ** 20))} MiB`;
  const lines = [
    '',
    `## Data at scale (--scale, factor ${s.factor})`,
    '',
    `Seeded straight into the database in **${n(s.seedingSeconds)} s**: ${n(s.seeded.users)} users, ${n(s.seeded.products)} products, ` +
      `${n(s.seeded.orders)} orders between ${s.history.from.slice(0, 10)} and ${s.history.to.slice(0, 16)}Z, ${n(s.seeded.coupons)} coupon campaigns. ` +
      `Database size after seeding: **${mib(s.databaseBytes)}** (pg_database_size). Delivered events are kept for the orders since ` +
      `${s.history.eventsRetainedSince.slice(0, 16)}Z only (the relay's ${s.history.retentionDays}-day retention would have purged older ones); ` +
      `the audit requires exactly one event of every order placed since then, at most one of older ones. ` +
      `The load: ${n(s.load.users)} users drawn at random from all ${n(s.seeded.users)}, ${n(s.load.products)} products from all ${n(s.seeded.products)} (as many as the default run's). ` +
      `Schema after seeding identical to the migrations': ${s.schemaUnchanged ? 'yes' : '**no**'}.`,
    '',
    '| table | rows | size |',
    '|---|---:|---:|',
    ...Object.keys(s.rows).map((t) => `| ${t} | ${n(s.rows[t]!)} | ${mib(s.tableBytes[t]!)} |`),
    '',
    '| seeding step | s | rows |',
    '|---|---:|---:|',
    ...s.steps.map((st) => `| ${st.step} | ${n(st.seconds)} | ${st.rows === undefined ? '' : n(st.rows)} |`),
    '',
    `### Order path plans on the seeded tables (auto_explain, ANALYZE, BUFFERS)`,
    '',
    s.seqScansOnBigTables.length === 0
      ? `Order path: no Seq Scan on ${BIG.join(', ')} in any of its ${s.plans.filter((p) => p.orderPath).length} plans below.`
      : `**Order path, Seq Scan on a big table:** ${s.seqScansOnBigTables.join('; ')}.`,
    '',
    s.seqScansOffOrderPath.length === 0
      ? 'Background jobs beside it (relay, best-seller rollup): no Seq Scan on those tables either.'
      : `**Background jobs beside it, Seq Scan on a big table:** ${s.seqScansOffOrderPath.join('; ')}.`,
    '',
    ...s.plans.flatMap((p) => ['<details><summary>' + p.what.replace(/</g, '&lt;') + (p.seqScans.length ? ` — **Seq Scan on ${p.seqScans.join(', ')}**` : '') + '</summary>', '', '```', p.plan, '```', '</details>', '']),
  ];
  return `${lines.join('\n')}\n`;
}
