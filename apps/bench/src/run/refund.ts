import type pg from 'pg';
import { countCancelled, ordersWithRefunds } from '@shop/adapters-postgres/bench';
import type { Receiver } from '../../../../test/support/receiver.ts';
import type { RefundLoad } from './child.ts';
import { CANCEL, latency, ORDER, round, type Sample } from './stats.ts';

/** refund's measured window: orders answered 201 and cancellations answered 200, each on its own. */
export function refundWindow(samples: readonly Sample[], windowMs: number) {
  const seconds = windowMs / 1000;
  const orders = samples.filter((s) => s[4] === ORDER && s[2] === 201).length;
  const cancels = samples.filter((s) => s[4] === CANCEL && s[2] === 200).length;
  return {
    seconds: round(seconds), orders, ordersPerSecond: round(orders / seconds), cancels, cancelsPerSecond: round(cancels / seconds),
    /** Orders + cancellations that succeeded: what its CPU is divided by. */
    operationsPerSecond: round((orders + cancels) / seconds),
    orderLatencyMs: latency(samples, (s) => s[4] === ORDER),
    cancelLatencyMs: latency(samples, (s) => s[4] === CANCEL),
  };
}

export type RefundReport = Awaited<ReturnType<typeof checkRefund>>['report'];
const some = (ids: readonly string[]) => ids.slice(0, 3).join(', ') + (ids.length > 3 ? ', …' : '');

/**
 * refund's own invariants, once every event is delivered: a cancellation sent for every second
 * order, none answered 5xx or dropped, none refused but by the per-user rate limit (each is the
 * owner's fresh PAID order), every 200 body this order CANCELLED; in the database exactly the
 * orders answered 200 CANCELLED, each refunded once, and as many more CANCELLED orders as 200
 * answers; at the receiver every order's order.paid, and each cancelled one's order.cancelled
 * after it. (Stock + units sold = initial stock is the audit's, at the end of the run.)
 */
export async function checkRefund(pool: pg.Pool, receiver: Receiver | null, load: RefundLoad, cancelledBefore: number, samples: Sample[], windowMs: number) {
  const violations: string[] = [];
  const v = (bad: number | boolean, what: string) => void (bad && violations.push(`refund: ${what}`));
  const expected = Math.floor(load.placed.length / 2);
  v(load.cancelsSent !== expected, `${load.cancelsSent} cancellations sent for ${load.placed.length} orders placed; expected ${expected} (every second one)`);
  const outcomes = Object.entries(load.outcomes);
  const broken = outcomes.filter(([k]) => k.startsWith('5') || k.startsWith('0'));
  v(broken.length, `cancellations answered 5xx or dropped: ${JSON.stringify(Object.fromEntries(broken))}`);
  const refused = outcomes.filter(([k]) => k !== '200' && !k.startsWith('429') && !broken.some(([b]) => b === k));
  const refusedIds = load.refused.filter(([, o]) => refused.some(([k]) => k === o)).map(([id]) => id);
  v(refused.length, `owners' cancellations of their fresh PAID orders refused: ${JSON.stringify(Object.fromEntries(refused))} (e.g. ${some(refusedIds)})`);
  v(load.badBodies, `${load.badBodies} 200 answers were not the order, CANCELLED, with a cancelledAt: ${load.examples.slice(0, 2).join(' | ')}`);

  // Every order placed as the database holds it: status, paid amount, refunds.
  const rows = await ordersWithRefunds(pool, load.placed);
  const answered = new Set(load.cancelled);
  const found = rows.filter((r) => r.status !== null);
  const cancelled = found.filter((r) => r.status === 'CANCELLED');
  const missing = rows.filter((r) => r.status === null).map((r) => r.id);
  const notCancelled = found.filter((r) => answered.has(r.id) && r.status !== 'CANCELLED').map((r) => `${r.id} (${r.status})`);
  const unanswered = new Set(cancelled.filter((r) => !answered.has(r.id)).map((r) => r.id));
  const badRefund = found.filter((r) => (r.status === 'CANCELLED' ? r.refunds !== 1 || r.refunded !== r.paid : r.refunds !== 0));
  v(missing.length, `${missing.length} orders answered 201 are not in the database: ${some(missing)}`);
  v(notCancelled.length, `${notCancelled.length} cancellations answered 200 left their order not CANCELLED: ${some(notCancelled)}`);
  v(unanswered.size, `${unanswered.size} orders are CANCELLED without a 200 answer: ${some([...unanswered])}`);
  v(badRefund.length, `${badRefund.length} orders not refunded exactly once (a CANCELLED order: one REFUND of its paidAmount; a PAID one: none): ` +
    some(badRefund.map((r) => `${r.id} (${r.status}, paid ${r.paid}, ${r.refunds} refunds of ${r.refunded ?? 0})`)));
  const cancelledAfter = await countCancelled(pool);
  const gained = cancelledAfter - cancelledBefore;
  v(gained !== answered.size,
    `the database gained ${gained} CANCELLED orders (${cancelledBefore} → ${cancelledAfter}); ${answered.size} cancellations were answered 200`);

  // The receiver's deliveries in the order it accepted them: each order's first of each type.
  let events: { paidAccepted: number; cancelledAccepted: number } | null = null;
  if (receiver) {
    const placed = new Set(load.placed);
    const first = { 'order.paid': new Map<string, number>(), 'order.cancelled': new Map<string, number>() };
    receiver.accepted.forEach((e, i) => {
      const [id, seen] = [e.body?.data?.orderId as string | undefined, first[e.body?.type as keyof typeof first]];
      if (id && placed.has(id) && seen && !seen.has(id)) seen.set(id, i);
    });
    const [paid, cancels] = [first['order.paid'], first['order.cancelled']];
    const noPaid = load.placed.filter((id) => !paid.has(id));
    const noCancelled = load.placed.filter((id) => answered.has(id) && !cancels.has(id));
    const early = load.placed.filter((id) => answered.has(id) && cancels.has(id) && !(paid.get(id)! <= cancels.get(id)!));
    const stray = load.placed.filter((id) => !answered.has(id) && cancels.has(id) && !unanswered.has(id));
    v(noPaid.length, `${noPaid.length} orders placed never had their order.paid accepted: ${some(noPaid)}`);
    v(noCancelled.length, `${noCancelled.length} cancelled orders never had their order.cancelled accepted: ${some(noCancelled)}`);
    v(early.length, `${early.length} orders.cancelled accepted before their order.paid: ${some(early)}`);
    v(stray.length, `${stray.length} orders not cancelled had an order.cancelled delivered: ${some(stray)}`);
    events = { paidAccepted: paid.size, cancelledAccepted: cancels.size };
  }
  const { cancelsSent, cancelsAfterLoop, outcomes: cancelOutcomes, badBodies } = load;
  const run = { placed: load.placed.length, cancelsSent, cancelsAfterLoop, cancelOutcomes, badBodies };
  const database = { cancelled: cancelled.length, cancelledBefore, cancelledAfter };
  return { report: { window: refundWindow(samples, windowMs), run, database, events }, violations };
}
