import { sql, type Kysely } from 'kysely';
import type { SalesStats } from '@shop/application';
import type { Database } from './schema.ts';
import type { ReadReplicas } from './read-replicas.ts';

/** The rollup job's advisory lock: one process folds at a time (the --scale seed holds it while it writes). */
export const ROLLUP_LOCK = [0x5e7a11, 2] as const;

/**
 * Folds newly committed orders, refunds and cancellations into product_sales_hourly, at the hour
 * each order was placed. Only transactions whose id is below the snapshot's xmin are taken — every
 * transaction below it has finished, so nothing can still appear there later — and each is taken
 * once (processed_until moves past it): an order adds its units when its placing transaction is
 * folded, a partial refund takes back its units when its own is, and a cancellation the units no
 * refund took back when its own is. A refund or cancellation is decided on a state that shows the
 * order (and the order's earlier refunds) committed, so its transaction id is above theirs and it
 * is never folded before them: whatever commits during a fold, every unit is added once and taken
 * back at most once. Within one fold an hour's net is negative only when an earlier fold counted
 * its units, so its row exists.
 * One process at a time does it; the others find the advisory lock taken and skip.
 */
export async function refreshSalesRollup(db: Kysely<Database>): Promise<{ ran: boolean }> {
  return db.transaction().execute(async (trx) => {
    const { rows } = await sql<{ ok: boolean }>`SELECT pg_try_advisory_xact_lock(${ROLLUP_LOCK[0]}, ${ROLLUP_LOCK[1]}) AS ok`.execute(trx);
    if (!rows[0]!.ok) return { ran: false };
    // After downtime the first fold can be large; it runs off the request path, so no request limit.
    await sql`SET LOCAL statement_timeout = '5min'`.execute(trx);
    // The bounds first, as values: from a CTE the planner cannot see how few orders lie between
    // them, and at millions of orders it scanned every order item on each fold.
    const bounds = await sql<{ lo: string; hi: string }>`
      SELECT s.processed_until::text AS lo, pg_snapshot_xmin(pg_current_snapshot())::text AS hi
      FROM rollup_state s WHERE s.name = 'product_sales_hourly'`.execute(trx);
    const { lo, hi } = bounds.rows[0]!;
    await sql`
      WITH delta AS (
        SELECT date_trunc('hour', o.created_at) AS hour, i.product_id, sum(i.quantity)::bigint AS quantity
        FROM orders o JOIN order_items i ON i.order_id = o.id
        WHERE o.xact_id >= ${lo}::xid8 AND o.xact_id < ${hi}::xid8
        GROUP BY 1, 2
        UNION ALL
        SELECT date_trunc('hour', o.created_at), ri.product_id, -sum(ri.quantity)::bigint
        FROM refunds r JOIN refund_items ri ON ri.refund_id = r.id JOIN orders o ON o.id = r.order_id
        WHERE r.xact_id >= ${lo}::xid8 AND r.xact_id < ${hi}::xid8
        GROUP BY 1, 2
        UNION ALL
        -- No refund follows a cancellation, so every refund of a cancelled order is already counted here.
        SELECT date_trunc('hour', o.created_at), i.product_id, -sum(i.quantity - coalesce(back.quantity, 0))::bigint
        FROM orders o JOIN order_items i ON i.order_id = o.id
        LEFT JOIN LATERAL (
          SELECT sum(ri.quantity) AS quantity FROM refunds r JOIN refund_items ri ON ri.refund_id = r.id
          WHERE r.order_id = o.id AND ri.product_id = i.product_id) back ON true
        WHERE o.cancel_xact_id >= ${lo}::xid8 AND o.cancel_xact_id < ${hi}::xid8
        GROUP BY 1, 2
      ), fresh AS (
        SELECT hour, product_id, sum(quantity)::bigint AS quantity FROM delta GROUP BY 1, 2
      ), added AS (
        INSERT INTO product_sales_hourly (hour, product_id, quantity)
        SELECT hour, product_id, quantity FROM fresh WHERE quantity > 0
        ON CONFLICT (hour, product_id) DO UPDATE SET quantity = product_sales_hourly.quantity + EXCLUDED.quantity
      ), taken_back AS (
        -- Apart from the INSERT: its CHECK (quantity >= 0) refuses a negative proposed row before
        -- ON CONFLICT is considered. A net negative hour was counted by an earlier fold, so its row exists.
        UPDATE product_sales_hourly s SET quantity = s.quantity + f.quantity
        FROM fresh f WHERE f.quantity < 0 AND s.hour = f.hour AND s.product_id = f.product_id
      )
      UPDATE rollup_state SET processed_until = ${hi}::xid8 WHERE name = 'product_sales_hourly'`.execute(trx);
    return { ran: true };
  });
}

/** Best sellers read on a replica when one is close enough (they may be a moment old), else on the primary. */
export function pgSalesStatsWithReplicas(primary: Kysely<Database>, replicas: ReadReplicas | null): SalesStats {
  if (!replicas) return pgSalesStats(primary);
  return { top: (from, limit) => replicas.read((db) => pgSalesStats(db).top(from, limit)) };
}

export function pgSalesStats(db: Kysely<Database>): SalesStats {
  return {
    async top(from, limit) {
      // Whole hours from the rollup; the partial first hour of the window straight from the orders.
      const hour = 3_600_000;
      const wholeFrom = new Date(Math.ceil(from.getTime() / hour) * hour);
      const { rows } = await sql<{ product_id: number; name: string; price: number; sold: number }>`
        WITH sales AS (
          SELECT s.product_id, s.quantity FROM product_sales_hourly s WHERE s.hour >= ${wholeFrom}
          UNION ALL
          SELECT i.product_id, (i.quantity - i.refunded_quantity)::bigint FROM orders o JOIN order_items i ON i.order_id = o.id
          WHERE o.status <> 'CANCELLED' AND o.created_at >= ${from} AND o.created_at < ${wholeFrom}
            -- The same hour as ids (an order's UUIDv7 is made with its created_at, on the same clock;
            -- a minute either side for its milliseconds): orders are partitioned by id (migration 0014).
            AND o.id >= uuid_floor(${from}::timestamptz - interval '1 minute')
            AND o.id < uuid_floor(${wholeFrom}::timestamptz + interval '1 minute')
        )
        SELECT s.product_id, p.name, p.price, sum(s.quantity)::bigint AS sold
        FROM sales s JOIN products p ON p.id = s.product_id
        GROUP BY s.product_id, p.name, p.price
        -- A product whose every sale in the window was given back has sold nothing.
        HAVING sum(s.quantity) > 0
        ORDER BY sold DESC, s.product_id
        LIMIT ${limit}`.execute(db);
      return rows.map((r) => ({ productId: r.product_id, name: r.name, price: r.price, soldQuantity: r.sold }));
    },
  };
}
