import { sql, type Kysely } from 'kysely';
import type { OrderBook } from '@shop/application';
import type { HeldCoupon, StockedProduct } from '@shop/domain';
import type { Database } from './schema.ts';
import { toHeldCoupon } from './rows.ts';

/** serialization_failure, deadlock_detected: the group was rolled back whole; its orders take the locking path. */
const RETRYABLE = new Set(['40001', '40P01']);

type HeldRow = Parameters<typeof toHeldCoupon>[0];
type JsonHeldRow = Omit<HeldRow, 'issued_at' | 'expires_at' | 'used_at'> & { issued_at: string; expires_at: string; used_at: string | null };

export interface OrderBookOptions {
  /** Group writes in flight at once; more concurrent orders wait and go in the next group. */
  readonly writesInFlight?: number;
  /** Most orders in one group. */
  readonly maxGroup?: number;
}

/**
 * The OrderBook port: one unlocked read, and a guarded write that concurrent orders share.
 * Writes go through `place_orders` (migration 0005) in groups: while `writesInFlight` groups are
 * being written, arriving orders queue and the next group takes them all, so under a flash sale
 * the hot product row is locked and committed once per group instead of once per order, and
 * under light load an order is written at once, alone.
 */
export function pgOrderBook(db: Kysely<Database>, options: OrderBookOptions = {}): OrderBook {
  // 64, not more: each order of a group takes a subtransaction id, and past 64 in one
  // transaction PostgreSQL's per-backend cache overflows, slowing every other session's snapshots.
  const writer = new GroupWriter(db, options.writesInFlight ?? 2, Math.min(64, options.maxGroup ?? 64));
  return {
    async snapshot(userId, productIds, couponId) {
      const { rows } = await sql<{ balance: number | null; products: StockedProduct[]; held: JsonHeldRow | null }>`
        SELECT
          (SELECT balance FROM users WHERE id = ${userId}) AS balance,
          (SELECT coalesce(json_agg(json_build_object('productId', id, 'price', price, 'stock', stock) ORDER BY id), '[]'::json)
             FROM products WHERE id = ANY(${productIds as number[]}::bigint[])) AS products,
          (SELECT json_build_object(
                    'user_id', uc.user_id, 'coupon_id', uc.coupon_id, 'issued_at', uc.issued_at,
                    'expires_at', uc.expires_at, 'used_at', uc.used_at, 'order_id', uc.order_id, 'name', c.name,
                    'discount_type', c.discount_type, 'discount_value', c.discount_value, 'min_order_amount', c.min_order_amount)
             FROM user_coupons uc JOIN coupons c ON c.id = uc.coupon_id
            WHERE uc.user_id = ${userId} AND uc.coupon_id = ${couponId}::bigint) AS held`.execute(db);
      const row = rows[0]!;
      const held: HeldCoupon | null = row.held
        ? toHeldCoupon({
            ...row.held,
            issued_at: new Date(row.held.issued_at),
            expires_at: new Date(row.held.expires_at),
            used_at: row.held.used_at === null ? null : new Date(row.held.used_at),
          })
        : null;
      return { balance: row.balance, products: row.products, held };
    },

    placeIfUnchanged(order, event) {
      return writer.submit(order.orderId, {
        orderId: order.orderId,
        userId: order.userId,
        couponId: order.couponId,
        totalAmount: order.totalAmount,
        discountAmount: order.discountAmount,
        paidAmount: order.paidAmount,
        createdAt: order.createdAt.toISOString(),
        items: order.items,
        eventId: event.eventId,
        event,
      });
    },
  };
}

interface Waiting {
  readonly orderId: string;
  readonly entry: unknown;
  resolve(placed: boolean): void;
  reject(err: unknown): void;
}

class GroupWriter {
  private readonly waiting: Waiting[] = [];
  private inFlight = 0;
  private readonly db: Kysely<Database>;
  private readonly writesInFlight: number;
  private readonly maxGroup: number;

  constructor(db: Kysely<Database>, writesInFlight: number, maxGroup: number) {
    this.db = db;
    this.writesInFlight = writesInFlight;
    this.maxGroup = maxGroup;
  }

  submit(orderId: string, entry: unknown): Promise<boolean> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ orderId, entry, resolve, reject });
      this.pump();
    });
  }

  private pump(): void {
    while (this.inFlight < this.writesInFlight && this.waiting.length > 0) {
      const group = this.waiting.splice(0, this.maxGroup);
      this.inFlight++;
      void this.write(group).finally(() => {
        this.inFlight--;
        this.pump();
      });
    }
  }

  private async write(group: Waiting[]): Promise<void> {
    try {
      const { rows } = await sql<{ outcome: string[] }>`
        SELECT place_orders(${JSON.stringify(group.map((g) => g.entry))}::jsonb) AS outcome`.execute(this.db);
      const outcome = rows[0]!.outcome;
      group.forEach((g, i) => {
        if (outcome[i] === 'placed') g.resolve(true);
        else if (outcome[i] === 'stale') g.resolve(false);
        else g.reject(Object.assign(new Error(`order write failed: ${outcome[i]}`), { code: outcome[i]?.slice(0, 5) }));
      });
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code && RETRYABLE.has(code)) {
        group.forEach((g) => g.resolve(false));
        return;
      }
      // The answer was lost, not necessarily the write: a connection that drops after COMMIT
      // must not turn a whole group of paid orders into errors (their events will be delivered,
      // and a client without a key would buy again). Ask which orders exist before answering.
      try {
        const { rows } = await sql<{ id: string }>`
          SELECT id::text AS id FROM orders WHERE id = ANY(${group.map((g) => g.orderId)}::uuid[])`.execute(this.db);
        const placed = new Set(rows.map((r) => r.id));
        // The missing ones were rolled back with the group: the locking transaction runs them.
        group.forEach((g) => g.resolve(placed.has(g.orderId)));
      } catch {
        group.forEach((g) => g.reject(err));
      }
    }
  }
}
