import { sql, type Kysely, type RawBuilder } from 'kysely';
import type { BookWrite, CompletedKey, OrderBook, WriteOutcome } from '@shop/application';
import type { HeldCoupon, StockedProduct } from '@shop/domain';
import type { Database } from './schema.ts';
import { ITEMS_JSON, toHeldCoupon, toOrder, type OrderRow } from './rows.ts';
import { isUuid } from './cursor.ts';
import { writeOrderGroup, GroupWriteError } from './order-group.ts';

type HeldRow = Parameters<typeof toHeldCoupon>[0];
type JsonHeldRow = Omit<HeldRow, 'issued_at' | 'expires_at' | 'used_at'> & { issued_at: string; expires_at: string; used_at: string | null };

export interface OrderBookOptions {
  /** Group writes in flight at once; more concurrent orders wait and go in the next group. */
  readonly writesInFlight?: number;
  /** Most orders in one group. */
  readonly maxGroup?: number;
  /**
   * How long an order whose write lost its answer (a dropped connection, a restarting server)
   * waits for the database to say whether it committed, before it is answered 503.
   */
  readonly outcomeWaitMs?: number;
}

/**
 * A key's state in `userId`'s keys, as two columns: `completed` (its stored answer, or null) and
 * `key_free`, whether no other request's write holds it now (the claim is taken and, with this
 * statement's transaction, released at once).
 */
const keyState = (userId: RawBuilder<unknown>, key: string | null) => sql`
  (SELECT json_build_object('fingerprint', fingerprint, 'result', result)
     FROM idempotency_keys WHERE user_id = ${userId} AND key = ${key}::text) AS completed,
  (${key}::text IS NULL OR idempotency_claim(${userId}, ${key}::text)) AS key_free`;

/**
 * The OrderBook port: one unlocked read, and a guarded write that concurrent orders share.
 * While `writesInFlight` groups are being written, arriving orders queue and the next group takes
 * them all, so under a flash sale the hot product row is locked and committed once per group
 * instead of once per order, and under light load an order is written at once, alone.
 */
export function pgOrderBook(db: Kysely<Database>, options: OrderBookOptions = {}): OrderBook {
  const writer = new GroupWriter(db, options.writesInFlight ?? 2, options.maxGroup ?? 64, options.outcomeWaitMs ?? 20_000);
  return {
    async snapshot(userId, productIds, couponId, key) {
      const { rows } = await sql<{
        balance: number | null;
        products: StockedProduct[];
        held: JsonHeldRow | null;
        completed: CompletedKey | null;
        key_free: boolean;
      }>`
        SELECT
          (SELECT balance FROM users WHERE id = ${userId}) AS balance,
          (SELECT coalesce(json_agg(json_build_object('productId', id, 'price', price, 'stock', stock) ORDER BY id), '[]'::json)
             FROM products WHERE id = ANY(${productIds as number[]}::bigint[])) AS products,
          (SELECT json_build_object(
                    'user_id', uc.user_id, 'coupon_id', uc.coupon_id, 'issued_at', uc.issued_at,
                    'expires_at', uc.expires_at, 'used_at', uc.used_at, 'order_id', uc.order_id, 'name', c.name,
                    'discount_type', c.discount_type, 'discount_value', c.discount_value, 'min_order_amount', c.min_order_amount)
             FROM user_coupons uc JOIN coupons c ON c.id = uc.coupon_id
            WHERE uc.user_id = ${userId} AND uc.coupon_id = ${couponId}::bigint) AS held,
          ${keyState(sql`${userId}::bigint`, key)}`.execute(db);
      const row = rows[0]!;
      const held: HeldCoupon | null = row.held
        ? toHeldCoupon({
            ...row.held,
            issued_at: new Date(row.held.issued_at),
            expires_at: new Date(row.held.expires_at),
            used_at: row.held.used_at === null ? null : new Date(row.held.used_at),
          })
        : null;
      return { balance: row.balance, products: row.products, held, completedKey: row.completed, keyInFlight: !row.key_free };
    },

    async cancelSnapshot(orderId, key) {
      // Any string names an order or none (the contract): only a uuid can name one.
      if (!isUuid(orderId)) return { order: null, completedKey: null, keyInFlight: false };
      const { rows } = await sql<OrderRow & {
        completed: CompletedKey | null;
        key_free: boolean;
      }>`
        SELECT o.id, o.user_id, o.status, o.total_amount, o.discount_amount, o.paid_amount, o.coupon_id,
               o.created_at, o.cancelled_at, ${ITEMS_JSON} AS items, ${keyState(sql.ref('o.user_id'), key)}
          FROM orders o WHERE o.id = ${orderId}::uuid`.execute(db);
      const row = rows[0];
      if (!row) return { order: null, completedKey: null, keyInFlight: false };
      return {
        order: toOrder(row),
        completedKey: row.completed,
        keyInFlight: !row.key_free,
      };
    },

    write: (w) => writer.submit(w),
  };
}

interface Waiting {
  readonly write: BookWrite;
  resolve(outcome: WriteOutcome): void;
  reject(err: unknown): void;
}

class GroupWriter {
  private readonly waiting: Waiting[] = [];
  private inFlight = 0;
  private readonly db: Kysely<Database>;
  private readonly writesInFlight: number;
  private readonly maxGroup: number;
  private readonly outcomeWaitMs: number;

  constructor(db: Kysely<Database>, writesInFlight: number, maxGroup: number, outcomeWaitMs: number) {
    this.db = db;
    this.writesInFlight = writesInFlight;
    this.maxGroup = maxGroup;
    this.outcomeWaitMs = outcomeWaitMs;
  }

  submit(write: BookWrite): Promise<WriteOutcome> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ write, resolve, reject });
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
      const outcomes = await writeOrderGroup(this.db, group.map((g) => g.write), this.outcomeWaitMs);
      group.forEach((g, i) => g.resolve(outcomes[i]!));
    } catch (err) {
      if (err instanceof GroupWriteError && err.rolledBack === 'order' && group.length > 1) {
        // One order's error took its group-mates with it: write each alone, so it fails alone;
        // one after another, as one write in flight, not a burst of them on the pool.
        for (const g of group) await this.write([g]);
        return;
      }
      group.forEach((g) => g.reject(err instanceof GroupWriteError ? err.cause : err));
    }
  }
}
