import type pg from 'pg';
import type { Ledger, OrderAttempt } from './ledger.ts';

/**
 * The clients' view against the database. `lost`: answered as done and not there (an order, a
 * refund, a cancellation, a charge, a coupon copy). `unexplained`: there although no client was
 * told so, beyond the requests whose answer never came (in doubt), each matched to one of those.
 * `statusMismatches`: orders whose status is not the one their last answer gave.
 */
export interface Reconciliation {
  readonly lost: Record<string, number>;
  readonly unexplained: Record<string, number>;
  readonly inDoubt: Record<string, number>;
  /** Of the in-doubt requests, those the database shows were done. */
  readonly inDoubtDone: Record<string, number>;
  readonly statusMismatches: number;
  readonly examples: string[];
}

const signature = (a: Pick<OrderAttempt, 'userId' | 'couponId'> & { items: ReadonlyArray<{ productId: number; quantity: number }> }) =>
  `${a.userId}|${a.couponId ?? '-'}|${[...a.items].sort((x, y) => x.productId - y.productId).map((i) => `${i.productId}x${i.quantity}`).join(',')}`;

export async function reconcile(pool: pg.Pool, ledger: Ledger, userIds: readonly number[], couponId: number, seedChargesPerUser: number): Promise<Reconciliation> {
  const examples: string[] = [];
  const example = (line: string) => void (examples.length < 10 && examples.push(line));
  const lost = { orders: 0, refunds: 0, cancellations: 0, charges: 0, couponIssues: 0 };
  const unexplained = { orders: 0, refunds: 0, cancellations: 0, charges: 0, couponIssues: 0 };
  const inDoubtDone = { orders: 0, refunds: 0, cancellations: 0, charges: 0, couponIssues: 0 };

  // Orders: every one answered 201 stored; every stored one answered 201, or one of the orders in doubt.
  const { rows: orders } = await pool.query<{ id: string; user_id: number; status: string; coupon_id: number | null; items: Array<{ productId: number; quantity: number }> }>(
    `SELECT o.id::text, o.user_id::int, o.status, o.coupon_id::int,
            json_agg(json_build_object('productId', i.product_id, 'quantity', i.quantity)) AS items
       FROM orders o JOIN order_items i ON i.order_id = o.id
      WHERE o.user_id = ANY($1::bigint[]) GROUP BY o.id`,
    [userIds],
  );
  const stored = new Map(orders.map((o) => [o.id, o]));
  for (const id of ledger.orders.keys()) if (!stored.has(id)) (lost.orders++, example(`order ${id}: answered 201, not stored`));
  const doubtful = new Map<string, number>();
  for (const a of ledger.ordersInDoubt) doubtful.set(signature(a), (doubtful.get(signature(a)) ?? 0) + 1);
  let statusMismatches = 0;
  for (const o of orders) {
    const known = ledger.orders.get(o.id);
    if (known) {
      if (known.status !== 'unknown' && known.status !== o.status) {
        statusMismatches++;
        example(`order ${o.id}: ${o.status} in the database, ${known.status} by its last answer`);
      }
      continue;
    }
    const sig = signature({ userId: o.user_id, couponId: o.coupon_id, items: o.items });
    const n = doubtful.get(sig) ?? 0;
    if (n > 0) (doubtful.set(sig, n - 1), inDoubtDone.orders++);
    else (unexplained.orders++, example(`order ${o.id} (${sig}): stored, never answered 201, no order of its kind in doubt`));
  }

  // Refunds and cancellations.
  const { rows: refunds } = await pool.query<{ id: string; order_id: string }>(
    'SELECT r.id::text, r.order_id::text FROM refunds r JOIN orders o ON o.id = r.order_id WHERE o.user_id = ANY($1::bigint[])',
    [userIds],
  );
  const storedRefunds = new Set(refunds.map((r) => r.id));
  for (const [id, orderId] of ledger.refunds) if (!storedRefunds.has(id)) (lost.refunds++, example(`refund ${id} of ${orderId}: answered 201, not stored`));
  const refundsInDoubt = count(ledger.refundsInDoubt);
  for (const r of refunds) {
    if (ledger.refunds.has(r.id)) continue;
    if (take(refundsInDoubt, r.order_id)) inDoubtDone.refunds++;
    else if (ledger.orders.has(r.order_id) || stored.has(r.order_id)) (unexplained.refunds++, example(`refund ${r.id} of ${r.order_id}: stored, never answered 201`));
  }
  for (const id of ledger.cancelled) if (stored.get(id)?.status !== 'CANCELLED') (lost.cancellations++, example(`order ${id}: cancel answered 200, ${stored.get(id)?.status ?? 'not stored'}`));
  const cancelsInDoubt = count(ledger.cancelsInDoubt);
  for (const o of orders) {
    if (o.status !== 'CANCELLED' || ledger.cancelled.has(o.id)) continue;
    if (take(cancelsInDoubt, o.id)) inDoubtDone.cancellations++;
    // A refund of the last units cancels too; this load leaves two units at least, so it never does.
    else if (ledger.orders.has(o.id)) (unexplained.cancellations++, example(`order ${o.id}: CANCELLED, no cancel answered 200`));
  }

  // Charges, per user: the seed's, plus those answered 200, plus at most those in doubt.
  const { rows: charges } = await pool.query<{ user_id: number; n: string }>(
    "SELECT user_id::int, count(*) AS n FROM balance_ledger WHERE type = 'CHARGE' AND user_id = ANY($1::bigint[]) GROUP BY user_id",
    [userIds],
  );
  const chargesOf = new Map(charges.map((c) => [c.user_id, Number(c.n) - seedChargesPerUser]));
  for (const userId of userIds) {
    const stored = chargesOf.get(userId) ?? -seedChargesPerUser;
    const { confirmed, inDoubt } = ledger.charges.get(userId) ?? { confirmed: 0, inDoubt: 0 };
    if (stored < confirmed) (lost.charges += confirmed - stored, example(`user ${userId}: ${confirmed} charges answered 200, ${stored} stored`));
    else if (stored > confirmed + inDoubt) (unexplained.charges += stored - confirmed - inDoubt, example(`user ${userId}: ${stored} charges stored, ${confirmed} answered, ${inDoubt} in doubt`));
    else inDoubtDone.charges += stored - confirmed;
  }

  // Coupon copies: every user told 201 (or ALREADY_ISSUED after a lost answer) holds one.
  const { rows: copies } = await pool.query<{ user_id: number }>('SELECT user_id::int FROM user_coupons WHERE coupon_id = $1', [couponId]);
  const holders = new Set(copies.map((c) => c.user_id));
  for (const [userId, state] of ledger.coupons) {
    const told = state === 'held' || state === 'used' || state === 'pending' || state === 'use-unknown';
    if (told && !holders.has(userId)) (lost.couponIssues++, example(`user ${userId}: coupon issued by its answer, not held`));
    if (!told && holders.has(userId)) {
      if (state === 'issue-unknown') inDoubtDone.couponIssues++;
      else (unexplained.couponIssues++, example(`user ${userId}: holds the coupon, never told so (${state})`));
    }
  }

  const inDoubt = {
    orders: ledger.ordersInDoubt.length,
    refunds: ledger.refundsInDoubt.length,
    cancellations: ledger.cancelsInDoubt.length,
    charges: [...ledger.charges.values()].reduce((n, c) => n + c.inDoubt, 0),
    couponIssues: [...ledger.coupons.values()].filter((s) => s === 'issue-unknown').length,
  };
  return { lost, unexplained, inDoubt, inDoubtDone, statusMismatches, examples };
}

function count(ids: readonly string[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const id of ids) m.set(id, (m.get(id) ?? 0) + 1);
  return m;
}

function take(m: Map<string, number>, id: string): boolean {
  const n = m.get(id) ?? 0;
  if (n === 0) return false;
  m.set(id, n - 1);
  return true;
}
