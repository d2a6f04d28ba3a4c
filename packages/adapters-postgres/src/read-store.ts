import { sql, type Kysely } from 'kysely';
import { isIssuedId, type LedgerEntry, type Page, type ProductBatchReads, type ReadStore } from '@shop/application';
import type { RefundRecord } from '@shop/domain';
import type { Database } from './schema.ts';
import type { ReadReplicas } from './read-replicas.ts';
import { cursorTimeOf, decodeCursor, encodeCursor, isCursorTime, isPositiveId } from './cursor.ts';
import { executePrepared } from './prepared.ts';
import { HELD_COUPON_COLUMNS, itemsJson, itemsOfEach, toHeldCoupon, toOrder, toProduct, type IdRange } from './rows.ts';

/**
 * [created_at to the microsecond, id]. A user's orders are listed by id (UUIDv7, so newest first),
 * the key orders are partitioned on (migration 0014): a page reads the newest partitions first and
 * stops, and one after a cursor starts at the cursor's. Only the id orders the list; the time is
 * there because cursors of earlier releases, ordered by (created_at, id), carry it.
 */
type OrderCursor = [string, string];
const isOrderCursor = (v: unknown): v is OrderCursor =>
  Array.isArray(v) && v.length === 2 && isCursorTime(v[0]) && isIssuedId(v[1]);
/**
 * [created_at to the microsecond, id]: a user's ledger is listed by (created_at, id), newest first,
 * created_at being the key the ledger is partitioned on (migration 0014). A bare id is the cursor of
 * an earlier release, listed by id: still honoured, without the partitions' help.
 */
type LedgerCursor = [string, number] | number;
const isLedgerCursor = (v: unknown): v is LedgerCursor =>
  isPositiveId(v) || (Array.isArray(v) && v.length === 2 && isCursorTime(v[0]) && isPositiveId(v[1]));

type ProductRow = { id: number; name: string; price: number; stock: number };
const PRODUCT_COLUMNS = sql.raw('id, name, price, stock');

/** Fetches one row more than asked to know whether another page exists without counting. */
function page<R, T>(rows: R[], limit: number, map: (r: R) => T, cursorOf: (r: R) => unknown): Page<T> {
  const more = rows.length > limit;
  const kept = more ? rows.slice(0, limit) : rows;
  return { items: kept.map(map), nextCursor: more ? encodeCursor(cursorOf(kept[kept.length - 1]!)) : null };
}

/**
 * The read store on the primary, with the catalog (products, their list) read on a replica when one
 * is close enough: the contract lets product reads be a moment old. A user's own data (balance,
 * history, orders, coupons) stays on the primary, so a user's read after their own write sees it
 * whichever instance took the write (ADR 0013).
 */
export function pgReadStoreWithReplicas(primary: Kysely<Database>, replicas: ReadReplicas | null): ReadStore & ProductBatchReads {
  const main = pgReadStore(primary);
  if (!replicas) return main;
  const on = new Map<Kysely<Database>, ReturnType<typeof pgReadStore>>();
  const storeOf = (db: Kysely<Database>) => on.get(db) ?? on.set(db, pgReadStore(db)).get(db)!;
  return {
    ...main,
    product: (productId) => replicas.read((db) => storeOf(db).product(productId)),
    products: (limit, cursor) => replicas.read((db) => storeOf(db).products(limit, cursor)),
    productsByIds: (productIds) => replicas.read((db) => storeOf(db).productsByIds(productIds)),
  };
}

export function pgReadStore(db: Kysely<Database>): ReadStore & ProductBatchReads {
  /** Orders aliased `o` with their items: those of `one` (its id) or, with a range, of each row in it. */
  const orders = (one: string | IdRange) =>
    db
      .selectFrom('orders as o')
      .select([
        'o.id',
        'o.user_id',
        'o.status',
        'o.total_amount',
        'o.discount_amount',
        'o.paid_amount',
        'o.coupon_id',
        'o.created_at',
        'o.cancelled_at',
        'o.refunded_amount',
        (typeof one === 'string' ? itemsJson(sql`${one}::uuid`) : itemsOfEach(one)).as('items'),
      ]);

  return {
    async userExists(userId) {
      return (await db.selectFrom('users').select('id').where('id', '=', userId).executeTakeFirst()) !== undefined;
    },
    async balance(userId) {
      const row = await db.selectFrom('users').select('balance').where('id', '=', userId).executeTakeFirst();
      return row?.balance ?? null;
    },
    async ledger(userId, limit, cursor) {
      let q = db
        .selectFrom('balance_ledger')
        .select(['id', 'type', 'amount', 'balance_after', 'order_id', 'created_at', cursorTimeOf('created_at').as('cursor_at')])
        .where('user_id', '=', userId)
        .orderBy('created_at', 'desc')
        .orderBy('id', 'desc')
        .limit(limit + 1);
      if (cursor !== null) {
        const after = decodeCursor(cursor, isLedgerCursor);
        if (typeof after === 'number') q = q.where('id', '<', after);
        else {
          // The bare bound on created_at is what prunes; the row comparison alone would not.
          q = q.where('created_at', '<=', sql<Date>`${after[0]}::timestamptz`)
            .where(sql<boolean>`(created_at, id) < (${after[0]}::timestamptz, ${after[1]}::bigint)`);
        }
      }
      const rows = await q.execute();
      return page(
        rows,
        limit,
        (r): LedgerEntry => ({
          type: r.type,
          amount: r.amount,
          balanceAfter: r.balance_after,
          orderId: r.order_id,
          createdAt: r.created_at,
        }),
        (r) => [r.cursor_at, r.id],
      );
    },
    // The catalog is most of what a shop's clients read: prepared (planned once per connection),
    // and only the columns a product shows (no timestamps parsed into Dates nobody reads).
    async product(productId) {
      const [row] = await executePrepared(db, 'product_by_id', sql<ProductRow>`SELECT ${PRODUCT_COLUMNS} FROM products WHERE id = ${productId}`);
      return row ? toProduct(row) : null;
    },
    async productsByIds(productIds) {
      const rows = await executePrepared(db, 'products_by_ids', sql<ProductRow>`SELECT ${PRODUCT_COLUMNS} FROM products WHERE id = ANY(${productIds}::bigint[])`);
      return rows.map(toProduct);
    },
    async products(limit, cursor) {
      const after = cursor === null ? null : decodeCursor(cursor, isPositiveId);
      const query = after === null
        ? executePrepared(db, 'products_first', sql<ProductRow>`SELECT ${PRODUCT_COLUMNS} FROM products ORDER BY id LIMIT ${limit + 1}`)
        : executePrepared(db, 'products_after', sql<ProductRow>`SELECT ${PRODUCT_COLUMNS} FROM products WHERE id > ${after} ORDER BY id LIMIT ${limit + 1}`);
      return page(await query, limit, toProduct, (r) => r.id);
    },
    async order(orderId) {
      if (!isIssuedId(orderId)) return null;
      // Every idempotent replay of an order reads it here.
      const [row] = await executePrepared(db, 'order_by_id', orders(orderId).where('o.id', '=', orderId));
      return row ? toOrder(row) : null;
    },
    async refunds(orderId) {
      if (!isIssuedId(orderId)) return [];
      const query = db
        .selectFrom('refunds as r')
        .select([
          'r.id',
          'r.order_id',
          'r.amount',
          'r.created_at',
          sql<RefundRecord['items']>`(
            SELECT json_agg(json_build_object('productId', i.product_id, 'quantity', i.quantity) ORDER BY i.line_no)
            FROM refund_items i WHERE i.refund_id = r.id)`.as('items'),
        ])
        .where('r.order_id', '=', orderId)
        // In the order they were written: a refund's transaction id is above that of every refund
        // its decision saw, whatever the clocks of the instances that made their UUIDv7 ids.
        .orderBy('r.xact_id')
        .orderBy('r.id');
      const rows = await executePrepared(db, 'refunds_of_order', query);
      return rows.map((r) => ({ refundId: r.id, orderId: r.order_id, items: r.items, amount: r.amount, createdAt: r.created_at }));
    },
    async ordersOf(userId, limit, cursor) {
      // The page's ids first (prepared: planned once, not over every month at each call), then
      // those orders with their items, bounded by the page's first and last id so that the items
      // are planned over the page's months only. In one statement, as before, a page of 20 at 25
      // monthly partitions took 1.9 ms a call; in these two, 0.55 (one connection, one after
      // another). An order is read with its items in one statement, one snapshot, so its refunded
      // amount and its lines' refunded quantities always agree.
      const ids = db.selectFrom('orders').select('id').where('user_id', '=', userId).orderBy('id', 'desc').limit(limit + 1);
      const found = (
        cursor === null
          ? await executePrepared(db, 'orders_of_user_first', ids)
          : await executePrepared(db, 'orders_of_user_after', ids.where('id', '<', decodeCursor(cursor, isOrderCursor)[1]))
      ).map((r) => r.id);
      if (found.length === 0) return { items: [], nextCursor: null };
      const within: IdRange = [found[found.length - 1]!, found[0]!];
      const rows = await executePrepared(db, 'orders_of_user_page', orders(within)
        .select(cursorTimeOf('o.created_at').as('cursor_at'))
        .where('o.user_id', '=', userId)
        .where('o.id', '>=', within[0])
        .where('o.id', '<=', within[1])
        .where(sql<boolean>`o.id = ANY(${found}::uuid[])`)
        .orderBy('o.id', 'desc'));
      return page(rows, limit, toOrder, (r) => [r.cursor_at, r.id]);
    },
    async heldCoupons(userId) {
      const rows = await db
        .selectFrom('user_coupons as uc')
        .innerJoin('coupons as c', 'c.id', 'uc.coupon_id')
        .select(HELD_COUPON_COLUMNS)
        .where('uc.user_id', '=', userId)
        .orderBy('uc.issued_at', 'desc')
        .orderBy('uc.coupon_id', 'desc')
        .execute();
      return rows.map(toHeldCoupon);
    },
  };
}
