import { sql, type Kysely } from 'kysely';
import { isIssuedId, keyState, RetryLaterError, type BookWrite, type CompletedKey, type OrderBook, type WriteOutcome } from '@shop/application';
import type { HeldCoupon, StockedProduct } from '@shop/domain';
import type { Database } from './schema.ts';
import { orderColumns, toHeldCoupon, toOrder, type OrderRow } from './rows.ts';
import { pgReadStore } from './read-store.ts';
import { writeOrderGroup, GroupWriteError } from './order-group.ts';
import { executePrepared } from './prepared.ts';
import { keyLooks } from './key-looks.ts';
import { Abandoned, Batches, type Pending } from './batches.ts';

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
  /**
   * How long a write may wait in the queue for its group (ORDER_QUEUE_DEADLINE_MS): past it, it is
   * answered `abandoned` unsent, as when its client goes away. Default: no deadline.
   */
  readonly queueDeadlineMs?: number;
  /** Snapshot statements in flight at once; orders arriving meanwhile share the next (default 4). */
  readonly snapshotsInFlight?: number;
}

/**
 * The OrderBook port: one unlocked read, and a guarded write that concurrent orders share.
 * While `writesInFlight` groups are being written, arriving orders queue and the next group takes
 * them all, so under a flash sale the hot product row is locked and committed once per group
 * instead of once per order, and under light load an order is written at once, alone.
 */
export function pgOrderBook(db: Kysely<Database>, options: OrderBookOptions = {}): OrderBook {
  const writer = new GroupWriter(db, options.writesInFlight ?? 2, options.maxGroup ?? 64, options.outcomeWaitMs ?? 20_000, options.queueDeadlineMs);
  const lookAtKey = keyLooks(db);
  const snapshots = new Batches<SnapshotRequest, SnapshotRow>(options.snapshotsInFlight ?? 4, options.maxGroup ?? 64, (batch) => readSnapshots(db, batch));
  const reads = pgReadStore(db);
  return {
    async snapshot(userId, productIds, couponId, key) {
      // Waiting for a statement slot is bounded as a write's queue is (ORDER_QUEUE_DEADLINE_MS): past it, 503 with nothing read.
      const row = await snapshots.submit({ userId, productIds, couponId, key }, { deadlineMs: options.queueDeadlineMs }).catch((err: unknown) => {
        throw err instanceof Abandoned ? new RetryLaterError('the database was too busy to read this order in time; nothing was written, try again') : err;
      });
      const held: HeldCoupon | null = row.held
        ? toHeldCoupon({
            ...row.held,
            issued_at: new Date(row.held.issued_at),
            expires_at: new Date(row.held.expires_at),
            used_at: row.held.used_at === null ? null : new Date(row.held.used_at),
          })
        : null;
      // A replay's order, read apart (by its id: one month's partition) and only for a replay.
      const named = (row.completed?.result as { orderId?: unknown } | undefined)?.orderId;
      const keyedOrder = isIssuedId(named) ? await reads.order(named) : null;
      return { balance: row.balance, products: row.products, held, completed: row.completed, keyedOrder };
    },

    keyState: lookAtKey,

    async changeSnapshot(orderId, key) {
      // Any string names an order or none (the contract): only the exact id the service issued names one.
      if (!isIssuedId(orderId)) return { order: null, key: keyState(null, false) };
      const query = sql<OrderRow & {
        completed: CompletedKey | null;
        key_free: boolean;
      }>`
        SELECT ${orderColumns(orderId)}, k.completed, k.key_free
          FROM orders o CROSS JOIN LATERAL key_state(o.user_id, ${key}::text) k
         WHERE o.id = ${orderId}::uuid`;
      const rows = await executePrepared(db, 'change_snapshot', query);
      const row = rows[0];
      if (!row) return { order: null, key: keyState(null, false) };
      return {
        order: toOrder(row),
        key: keyState(row.completed, !row.key_free),
      };
    },

    write: (w) => writer.submit(w),
  };
}

type SnapshotRequest = { userId: number; productIds: readonly number[]; couponId: number | null; key: string | null };
type SnapshotRow = { balance: number | null; products: StockedProduct[]; held: JsonHeldRow | null; completed: CompletedKey | null };

/**
 * The snapshots of orders arriving together, read in one statement: place_snapshot (a function,
 * migrations/definitions, so that its plan is made once per connection) once per order, each call
 * its own instant (the function is VOLATILE: each of its queries takes a fresh snapshot). Under
 * load one round trip serves a batch instead of each order having its own; alone, an order's goes
 * at once. No join to the order a completed key names: orders are partitioned (migration 0014),
 * and a statement naming them is planned over, or locks, every month at each execution, for the
 * rare replay that needs one.
 */
async function readSnapshots(db: Kysely<Database>, batch: Array<Pending<SnapshotRequest, SnapshotRow>>): Promise<void> {
  try {
    const list = batch.map((p) => p.item);
    const query = sql<SnapshotRow & { i: string }>`SELECT b.i, s.balance, s.products, s.held, s.completed
        FROM unnest(${list.map((r) => r.userId)}::bigint[], ${list.map((r) => `{${r.productIds.join(',')}}`)}::text[],
                    ${list.map((r) => r.couponId)}::bigint[], ${list.map((r) => r.key)}::text[])
             WITH ORDINALITY AS b(user_id, product_ids, coupon_id, key, i)
        CROSS JOIN LATERAL place_snapshot(b.user_id, b.product_ids::bigint[], b.coupon_id, b.key) s
       ORDER BY b.i`;
    const rows = await executePrepared(db, 'place_snapshot', query);
    if (rows.length !== batch.length) throw new Error(`${rows.length} snapshots read for ${batch.length} orders`);
    batch.forEach((p, n) => p.resolve(rows[n]!));
  } catch (err) {
    for (const p of batch) p.reject(err);
  }
}

class GroupWriter {
  private readonly db: Kysely<Database>;
  private readonly outcomeWaitMs: number;
  private readonly groups: Batches<BookWrite, WriteOutcome>;
  private readonly queueDeadlineMs: number | undefined;

  constructor(db: Kysely<Database>, writesInFlight: number, maxGroup: number, outcomeWaitMs: number, queueDeadlineMs: number | undefined) {
    this.db = db;
    this.outcomeWaitMs = outcomeWaitMs;
    this.queueDeadlineMs = queueDeadlineMs;
    this.groups = new Batches(writesInFlight, maxGroup, (group) => this.write(group));
  }

  /** A write taken out of the queue before it was sent changed nothing: `abandoned`. */
  submit(write: BookWrite): Promise<WriteOutcome> {
    return this.groups.submit(write, { signal: write.signal, deadlineMs: this.queueDeadlineMs }).catch((err: unknown) => {
      if (err instanceof Abandoned) return 'abandoned';
      throw err;
    });
  }

  private async write(group: Array<Pending<BookWrite, WriteOutcome>>): Promise<void> {
    try {
      const outcomes = await writeOrderGroup(this.db, group.map((g) => g.item), this.outcomeWaitMs);
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
