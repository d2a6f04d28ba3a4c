import { isDeepStrictEqual } from 'node:util';
import { balancesStockCopies, countCancelled, orderEvents, refundedOrders, waitForDelivery } from '@shop/adapters-postgres/bench';
import type { ReceivedEvent } from '../../../../test/support/receiver.ts';
import type { Checked } from '../workloads.ts';
import { CANCEL, latency, ORDER, outcomes, REFUND, round, type Sample } from './stats.ts';
import type { Fixture, Target } from './target.ts';

const KINDS = [['orders', ORDER, 201], ['refunds', REFUND, 201], ['cancels', CANCEL, 200]] as const;
type Kind = (typeof KINDS)[number][0];

/** refund's window (the whole run): orders answered 201, refunds 201 and cancels 200, each kind on its own (and its outcomes), and together. */
export function refundWindow(samples: readonly Sample[], windowMs: number) {
  const seconds = windowMs / 1000;
  const kinds = Object.fromEntries(KINDS.map(([name, kind, ok]) => {
    const [mine, n] = [samples.filter((s) => s[4] === kind), samples.filter((s) => s[4] === kind && s[2] === ok).length];
    return [name, { n, perSecond: round(n / seconds), latencyMs: latency(mine), outcomes: outcomes(mine) }];
  })) as Record<Kind, { n: number; perSecond: number; latencyMs: ReturnType<typeof latency>; outcomes: Record<string, number> }>;
  const operations = kinds.orders.n + kinds.refunds.n + kinds.cancels.n;
  return { seconds: round(seconds), ...kinds, operations, operationsPerSecond: round(operations / seconds) };
}

/** What refund must leave as it found: the fixture's balances, stock and copies of its coupon, and the count of CANCELLED orders. */
export async function refundBefore({ pool, receiver }: Pick<Target, 'pool' | 'receiver'>, f: Fixture) {
  if (receiver) receiver.arrivals = []; // its check compares acceptances with arrivals
  return { ...(await balancesStockCopies(pool, { ...f, couponId: f.refundCouponId })), cancelled: await countCancelled(pool) };
}
export type RefundState = Awaited<ReturnType<typeof refundBefore>>;

export type RefundReport = {
  window: ReturnType<typeof refundWindow>; run: { placed: number; couponOrders: number; requeued: number };
  database: Record<'cancelledAsPaid' | 'balances' | 'stock' | 'copies', number>; events: { recorded: number; inOrder: number } | null;
};
const some = (ids: readonly string[]) => ids.slice(0, 3).join(', ') + (ids.length > 3 ? ', …' : '');
const firstAt = (list: readonly ReceivedEvent[], at = new Map<string, number>()) => {
  for (const e of list) if (!at.has(e.body?.eventId)) at.set(e.body?.eventId, e.at);
  return at;
};

/**
 * refund's invariants once every event is delivered: no step refused but by the rate limit, 2xx bodies as asked; every order CANCELLED, refunded = paid,
 * its refunds those answered 201; balances, stock, coupon copies as before; each order's events as recorded, each accepted before the next arrived.
 */
export async function checkRefund({ run: record, result: { refund: load, samples, windowMs }, target: { pool, receiver }, fixture: f, state }: Checked) {
  if (!load) return ['refund: the load process reported no orders, refunds or cancels'];
  const before = state as RefundState;
  await waitForDelivery(pool); // every event delivered, order.cancelled included
  const [violations, window] = [[] as string[], refundWindow(samples, windowMs)];
  const v = (bad: number | boolean, what: string) => void (bad && violations.push(`refund: ${what}`));
  const refusedOrders = Object.entries(window.orders.outcomes).filter(([k]) => k !== '201' && !k.startsWith('429'));
  v(refusedOrders.length, `orders refused but by the rate limit: ${JSON.stringify(Object.fromEntries(refusedOrders))}`);
  v(load.problems.length, `${load.problems.length} refunds or cancels refused but by the rate limit, answered 5xx, dropped or answered ` +
    `not as asked: ${some(load.problems)}`);
  const rows = await refundedOrders(pool, load.placed);
  const notBack = rows.filter((r) => r.status !== 'CANCELLED' || r.refunded !== r.paid).map((r) => `${r.id} (${r.status}, ${r.refunded} of ${r.paid})`);
  const unlike = rows.filter((r) => !isDeepStrictEqual(r.refund_ids, (load.refundIds[r.id] ?? []).toSorted())).map((r) => r.id);
  v(notBack.length, `${notBack.length} orders placed are not CANCELLED with refunded = paid: ${some(notBack)}`);
  v(unlike.length, `${unlike.length} orders' refunds in the database are not those answered 201: ${some(unlike)}`);
  const after = await refundBefore({ pool, receiver: null }, f);
  v(after.cancelled - before.cancelled !== rows.length, `CANCELLED orders ${before.cancelled} → ${after.cancelled}; ${rows.length} orders placed`);
  const unchanged = { cancelledAsPaid: rows.length - notBack.length, balances: 0, stock: 0, copies: 0 };
  for (const what of ['balances', 'stock', 'copies'] as const) {
    const changed = [...before[what]].filter(([id, was]) => after[what].get(id) !== was).map(([id, was]) => `${id}: ${was} → ${after[what].get(id)}`);
    v(changed.length, `${changed.length} ${what === 'copies' ? "coupon copies' uses" : what} not as before: ${some(changed)}`);
    unchanged[what] = before[what].size - changed.length;
  }

  let events: { recorded: number; inOrder: number } | null = null;
  if (receiver) {
    const [recorded, accepted, arrived] = [await orderEvents(pool, load.placed), firstAt(receiver.accepted), firstAt(receiver.arrivals ?? [])];
    receiver.arrivals = null;
    const byOrder = new Map<string, typeof recorded>();
    for (const e of recorded) byOrder.set(e.order_id, [...(byOrder.get(e.order_id) ?? []), e]);
    const bad: string[] = [];
    for (const id of load.placed) {
      const [mine, types] = [byOrder.get(id) ?? [], ['order.paid', ...(load.refundIds[id] ?? []).map(() => 'order.refunded'), 'order.cancelled']];
      const why = !isDeepStrictEqual(mine.map((e) => e.type), types) ? `recorded: ${mine.map((e) => e.type).join(', ')}`
        : mine.some((e) => !accepted.has(e.event_id)) ? 'an event never accepted'
        : mine.some((e, k) => k > 0 && !(accepted.get(mine[k - 1]!.event_id)! < arrived.get(e.event_id)!)) ? 'one sent before the one before was accepted'
        : null;
      if (why) bad.push(`${id} (${why})`);
    }
    v(bad.length, `${bad.length} orders' events not order.paid, an order.refunded per refund, order.cancelled, each sent once the one before was ` +
      `accepted: ${some(bad)}`);
    events = { recorded: recorded.length, inOrder: load.placed.length - bad.length };
  }
  record.refund = { window, run: { placed: load.placed.length, couponOrders: load.couponOrders, requeued: load.requeued }, database: unchanged, events };
  return violations;
}
